/* kernels_avx512.c - AVX-512 (F, BW, VL, DQ) + FMA + F16C inner loops.
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c;
 * kernels.c only calls into this file when cpuid says the CPU (and OS)
 * support all of them (and the VNNI tile only when it says VNNI too).
 *
 * Two matmul inner loops (kernels_internal.h): decode and small batches
 * run the lane-order tiles (4 W rows x up to 6 tokens, one accumulator per
 * output); prefill of F32/F16/BF16 packs W into column-major f32 panels
 * once per call and runs a 32-row x 12-token register tile on them (24 FMAs
 * per 2 vector loads and 12 broadcasts, where the 4 x 6 lane tile needs 10
 * vector loads, and no horizontal sums).  Q8_0's tiles use the lane order
 * (exact integer sums per block), on VNNI where the CPU has it; there its
 * prefill runs the quantized GEMM (kernels_qgemm_x86.h).  Without VNNI the
 * quantized types' prefill runs AVX2's quantized GEMM (kernels_qgemm_avx2.h,
 * the same bits), which needs only what this file's flags include. */
#include "kernels_internal.h"
#include "kernels_quant_x86.h"
#include "kernels_quant_rows_x86.h"
#include "kernels_quant_pack_x86.h" /* decode on packed weights */
#define KR_NAME(n) n##_x86
#define KR_ATTR
#define KR_MADD_ADD(acc, p16, sc16) _mm256_add_epi32(acc, _mm256_madd_epi16(p16, sc16))
#define KR_MADD_ADD512(acc, p16, sc16) _mm512_add_epi32(acc, _mm512_madd_epi16(p16, sc16))
#include "kernels_quant_krows_x86.h" /* decode's K-quant matvec */

#include <immintrin.h>
#include <math.h>

#define LANES 16
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Lanes [0, n) set, n < 16. */
static inline __mmask16 tail_mask(size_t n) { return (__mmask16)((1u << n) - 1); }
/* Lanes [0, min(n, 16)) set. */
static inline __mmask16 lanes_mask(size_t n) { return n >= LANES ? 0xFFFF : tail_mask(n); }

/* ------------------------------------------------------ float-like weights */

/* 16 weights of `row` from column c as f32.  `t` is a constant once the
 * caller is inlined into its per-dtype wrapper, so the switch folds away. */
static ALWAYS_INLINE __m512 load_w(finch_dtype t, const void *row, size_t c) {
    switch (t) {
    case FINCH_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
    case FINCH_BF16: /* bf16 is the top half of an f32: widen and shift */
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c))), 16));
    default: return _mm512_loadu_ps((const float *)row + c);
    }
}

/* The same for the last columns: lanes outside `m` are 0 and never read. */
static ALWAYS_INLINE __m512 load_w_tail(finch_dtype t, const void *row, size_t c, __mmask16 m) {
    switch (t) {
    case FINCH_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
    case FINCH_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c)), 16));
    default: return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    }
}

/* ---- lane-order tile: decode and small batches (kernels_internal.h) ---- */
#define TOKENS 6 /* 4 x 6 accumulators + 4 weights + 1 activation: 29 of 32 registers */
/* A matvec streams 8 rows at once: twice the misses in flight per core of
 * the 4-row tile, with registers to spare at one token.  (Rows never
 * change how an output is summed, so the tile sizes may differ.) */
#define MATVEC_ROWS 8

/* An R-row x T-token register tile (R <= 8, T <= 6): R*T accumulators of
 * 16 lanes.  Each step loads (and converts) R weight vectors once and
 * reuses them for T tokens, which is what makes prefill cheaper per token
 * than T matvecs. */
static ALWAYS_INLINE void tile_float(finch_dtype t, size_t R, size_t T, const void *w, size_t ws,
                                     size_t nr, const void *x, size_t xs, size_t cols,
                                     float *out, size_t ldo) {
    const void *wr[MATVEC_ROWS];
    const float *xt[TOKENS];
    __m512 acc[MATVEC_ROWS][TOKENS];
#pragma GCC unroll 8
    for (size_t r = 0; r < R; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) acc[r][j] = _mm512_setzero_ps();
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++) xt[j] = (const float *)((const char *)x + j * xs);

    const size_t wsize = t == FINCH_F32 ? sizeof(float) : sizeof(uint16_t);
    size_t c = 0;
    for (; c + LANES <= cols; c += LANES) {
        if (T == 1 && (c * wsize) % 64 == 0) { /* matvec: one hint per line */
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) finch_prefetch_row(wr[r], c * wsize, cols * wsize, R * ws);
        }
        __m512 wv[MATVEC_ROWS];
#pragma GCC unroll 8
        for (size_t r = 0; r < R; r++) wv[r] = load_w(t, wr[r], c);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512 xv = _mm512_loadu_ps(xt[j] + c);
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
        }
    }
    if (c < cols) {
        __mmask16 m = tail_mask(cols - c);
        __m512 wv[MATVEC_ROWS];
#pragma GCC unroll 8
        for (size_t r = 0; r < R; r++) wv[r] = load_w_tail(t, wr[r], c, m);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, xt[j] + c);
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
        }
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr && r < R; r++) out[j * ldo + r] = _mm512_reduce_add_ps(acc[r][j]);
}

/* F16 decode: one token x MATVEC_ROWS rows, each row's sum in the tile's
 * order (the same FMAs, the same bits), but with the row loop kept rolled,
 * so that the accumulators live in memory.  Measured on one Zen 4 core
 * (docs/bench.md, "Decode's matvec, second look"): streaming TinyLlama's F16
 * weights in decode order this form reads 24-25 GB/s, the fully unrolled
 * tile (accumulators in registers, 8 half-line loads back to back per
 * step) 20-21, a full-line step unrolled 22, with the same hints.  F32 and
 * BF16 (full-line steps) read less this way, so they keep the tile. */
static void matvec_f16(const void *w, size_t ws, size_t nr, const float *x, size_t cols, float *out) {
    const finch_dtype t = FINCH_F16;
    const size_t R = MATVEC_ROWS, wsize = sizeof(uint16_t);
    const void *wr[MATVEC_ROWS];
    __m512 acc[MATVEC_ROWS];
#pragma GCC unroll 8
    for (size_t r = 0; r < R; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
        acc[r] = _mm512_setzero_ps();
    }
    size_t c = 0;
    for (; c + LANES <= cols; c += LANES) {
        if ((c * wsize) % 64 == 0) { /* one hint per line */
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) finch_prefetch_row_far(wr[r], c * wsize, cols * wsize, R * ws);
        }
        __m512 xv = _mm512_loadu_ps(x + c);
#pragma GCC unroll 1 /* rolled: see above */
        for (size_t r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(load_w(t, wr[r], c), xv, acc[r]);
    }
    if (c < cols) {
        __mmask16 m = tail_mask(cols - c);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
#pragma GCC unroll 1
        for (size_t r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(load_w_tail(t, wr[r], c, m), xv, acc[r]);
    }
    for (size_t r = 0; r < nr && r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* One wrapper per dtype: one token runs the 8-row matvec tile (up to 8
 * rows), more tokens a 4-row tile (up to 4 rows), the token count picking
 * a fully unrolled one. */
#define TILE_WRAPPER(name, dtype)                                                            \
    static void name(const void *w, size_t ws, size_t nr, const void *x, size_t xs,         \
                     size_t nt, size_t cols, float *out, size_t ldo) {                      \
        switch (nt) {                                                                        \
        case 1:                                                                              \
            if (dtype == FINCH_F16) matvec_f16(w, ws, nr, x, cols, out);                     \
            else tile_float(dtype, MATVEC_ROWS, 1, w, ws, nr, x, xs, cols, out, ldo);        \
            break;                                                                           \
        case 2: tile_float(dtype, 4, 2, w, ws, nr, x, xs, cols, out, ldo); break;           \
        case 3: tile_float(dtype, 4, 3, w, ws, nr, x, xs, cols, out, ldo); break;           \
        case 4: tile_float(dtype, 4, 4, w, ws, nr, x, xs, cols, out, ldo); break;           \
        case 5: tile_float(dtype, 4, 5, w, ws, nr, x, xs, cols, out, ldo); break;           \
        default: tile_float(dtype, 4, 6, w, ws, nr, x, xs, cols, out, ldo); break;          \
        }                                                                                    \
    }
TILE_WRAPPER(tile_f32_avx512, FINCH_F32)
TILE_WRAPPER(tile_f16_avx512, FINCH_F16)
TILE_WRAPPER(tile_bf16_avx512, FINCH_BF16)

/* ---- packing: W block -> column-major f32 panel ----
 *
 * Full 16 x 16 blocks go through pack_block16 below; the edges (a panel of
 * fewer than 16 rows, the last columns) through this general transpose:
 * v[i] = 16 columns of row i  ->  v[c] = column c of the 16 rows.
 * Pairs of rows, then quads (64-bit unpacks) give, per 128-bit lane L,
 * rows 4q..4q+3 of column 4L+c' in u[4q+c']; two rounds of 128-bit
 * shuffles then gather lane L of u[c'], u[4+c'], u[8+c'], u[12+c']. */
static ALWAYS_INLINE void transpose16(__m512 v[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]);
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
        __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
        u[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 s0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);  /* A0 A1 B0 B1 */
        __m512 s1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);  /* A2 A3 B2 B3 */
        __m512 s2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 s3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        v[c] = _mm512_shuffle_f32x4(s0, s2, 0x88);      /* lane 0 of A, B, C, D */
        v[4 + c] = _mm512_shuffle_f32x4(s0, s2, 0xDD);  /* lane 1 */
        v[8 + c] = _mm512_shuffle_f32x4(s1, s3, 0x88);  /* lane 2 */
        v[12 + c] = _mm512_shuffle_f32x4(s1, s3, 0xDD); /* lane 3 */
    }
}

/* Columns [c, c+16) of 16 rows starting at row0 (ws bytes apart; rows past
 * nr repeat row nr-1), transposed: v[k] = column c+k.  Columns past `cols`
 * are zero (and never used).  The row address advances by adding ws, which
 * keeps the general registers free (a table of 16 row pointers spills). */
static ALWAYS_INLINE void load_cols(finch_dtype t, const char *row0, size_t ws, size_t nr,
                                    size_t c, size_t cols, __m512 v[16]) {
    const char *q = row0;
    if (c + LANES <= cols) {
#pragma GCC unroll 16
        for (size_t i = 0; i < 16; i++) {
            v[i] = load_w(t, q, c);
            q += i + 1 < nr ? ws : 0;
        }
    } else {
        __mmask16 m = tail_mask(cols - c);
#pragma GCC unroll 16
        for (size_t i = 0; i < 16; i++) {
            v[i] = load_w_tail(t, q, c, m);
            q += i + 1 < nr ? ws : 0;
        }
    }
    transpose16(v);
}



/* Columns [c, c+4) of rows p, p + s4, p + 2 s4, p + 3 s4 as f32, one row
 * per 128-bit lane: merge-masked broadcast loads do this part of the
 * transpose on the load ports instead of the shuffle units. */
static ALWAYS_INLINE __m512 load_quad(finch_dtype t, const char *p, size_t s4, size_t c) {
    if (t == FINCH_F32) {
        const float *f = (const float *)p + c;
        __m512 z = _mm512_castps128_ps512(_mm_loadu_ps(f));
        z = _mm512_mask_broadcast_f32x4(z, 0x00F0, _mm_loadu_ps((const float *)((const char *)f + s4)));
        z = _mm512_mask_broadcast_f32x4(z, 0x0F00, _mm_loadu_ps((const float *)((const char *)f + 2 * s4)));
        return _mm512_mask_broadcast_f32x4(z, 0xF000, _mm_loadu_ps((const float *)((const char *)f + 3 * s4)));
    }
    const char *h = p + c * sizeof(uint16_t);
    __m256i v = _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)h));
    v = _mm256_mask_broadcastq_epi64(v, 0x2, _mm_loadl_epi64((const __m128i *)(h + s4)));
    v = _mm256_mask_broadcastq_epi64(v, 0x4, _mm_loadl_epi64((const __m128i *)(h + 2 * s4)));
    v = _mm256_mask_broadcastq_epi64(v, 0x8, _mm_loadl_epi64((const __m128i *)(h + 3 * s4)));
    if (t == FINCH_F16) return _mm512_cvtph_ps(v);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* A full 16 x 16 block (16 rows from row0, columns [c, c+16)) into the
 * panel: lane L of quad i holds row 4L + i, so one 4 x 4 transpose inside
 * the 128-bit lanes (8 shuffles per 4 columns, against 16 for
 * transpose16) leaves column k with rows 0..15 in order. */
static ALWAYS_INLINE void pack_block16(finch_dtype t, const char *row0, size_t ws, size_t c,
                                       float *wp) {
    const size_t s4 = 4 * ws;
#pragma GCC unroll 4
    for (size_t q = 0; q < 4; q++) {
        __m512 z0 = load_quad(t, row0, s4, c + 4 * q), z1 = load_quad(t, row0 + ws, s4, c + 4 * q);
        __m512 z2 = load_quad(t, row0 + 2 * ws, s4, c + 4 * q);
        __m512 z3 = load_quad(t, row0 + 3 * ws, s4, c + 4 * q);
        __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(z0, z1));
        __m512d t1 = _mm512_castps_pd(_mm512_unpackhi_ps(z0, z1));
        __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(z2, z3));
        __m512d t3 = _mm512_castps_pd(_mm512_unpackhi_ps(z2, z3));
        float *o = wp + 4 * q * FINCH_PANEL_ROWS;
        _mm512_storeu_ps(o, _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)));
        _mm512_storeu_ps(o + FINCH_PANEL_ROWS, _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)));
        _mm512_storeu_ps(o + 2 * FINCH_PANEL_ROWS, _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)));
        _mm512_storeu_ps(o + 3 * FINCH_PANEL_ROWS, _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3)));
    }
}

static ALWAYS_INLINE void pack_panel(finch_dtype t, const void *w, size_t ws, size_t nr,
                                     size_t k0, size_t kc, float *wp) {
    for (size_t h = 0; h < FINCH_PANEL_ROWS / LANES; h++) {
        float *wh = wp + h * LANES;
        if (h * LANES >= nr) { /* a short panel: defined lanes, never stored */
            for (size_t k = 0; k < kc; k++)
                _mm512_storeu_ps(wh + k * FINCH_PANEL_ROWS, _mm512_setzero_ps());
            continue;
        }
        const char *row0 = (const char *)w + h * LANES * ws;
        size_t k = 0;
        if (nr - h * LANES >= LANES)
            for (; k + LANES <= kc; k += LANES) pack_block16(t, row0, ws, k0 + k, wh + k * FINCH_PANEL_ROWS);
        for (; k < kc; k += LANES) { /* short rows or the last columns */
            __m512 v[16];
            load_cols(t, row0, ws, nr - h * LANES, k0 + k, k0 + kc, v);
            size_t nc = kc - k < LANES ? kc - k : LANES;
            for (size_t i = 0; i < nc; i++) _mm512_storeu_ps(wh + (k + i) * FINCH_PANEL_ROWS, v[i]);
        }
    }
}

static void pack_f32_avx512(const void *w, size_t ws, size_t nr, size_t k0, size_t kc, float *wp) {
    pack_panel(FINCH_F32, w, ws, nr, k0, kc, wp);
}
static void pack_f16_avx512(const void *w, size_t ws, size_t nr, size_t k0, size_t kc, float *wp) {
    pack_panel(FINCH_F16, w, ws, nr, k0, kc, wp);
}
static void pack_bf16_avx512(const void *w, size_t ws, size_t nr, size_t k0, size_t kc, float *wp) {
    pack_panel(FINCH_BF16, w, ws, nr, k0, kc, wp);
}

/* ---- packed GEMM register tile: 32 rows x up to 12 tokens ---- */
#define GEMM_TOKENS 12 /* 24 accumulators + 2 weights + broadcasts: 32 registers */

static ALWAYS_INLINE void gemm_tile(size_t T, const float *wp, size_t wps, size_t kc,
                                    const float *x, size_t xs, float *c, size_t ldc, size_t nr,
                                    bool first) {
    __mmask16 m0 = lanes_mask(nr), m1 = nr > LANES ? lanes_mask(nr - LANES) : 0;
    __m512 a0[GEMM_TOKENS], a1[GEMM_TOKENS];
#pragma GCC unroll 12
    for (size_t j = 0; j < T; j++) {
        a0[j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, c + j * ldc);
        a1[j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, c + j * ldc + LANES);
    }
    /* Token j's activations at xq[j / 3] + (j % 3) * xs: four pointers
     * and two strides fit the general registers, twelve pointers do not. */
    const float *xq[4] = {x, x + 3 * xs, x + 6 * xs, x + 9 * xs};
    const size_t xs2 = 2 * xs;
    for (size_t k = 0; k < kc; k++) {
        __m512 w0 = _mm512_maskz_loadu_ps(m0, wp);
        __m512 w1 = _mm512_maskz_loadu_ps(m1, wp + LANES);
        wp += wps;
#pragma GCC unroll 12
        for (size_t j = 0; j < T; j++) {
            const float *p = xq[j / 3];
            __m512 b = _mm512_set1_ps(j % 3 == 0 ? p[0] : j % 3 == 1 ? p[xs] : p[xs2]);
            a0[j] = _mm512_fmadd_ps(w0, b, a0[j]);
            a1[j] = _mm512_fmadd_ps(w1, b, a1[j]);
        }
#pragma GCC unroll 4
        for (size_t q = 0; q < 4; q++) xq[q]++;
    }
#pragma GCC unroll 12
    for (size_t j = 0; j < T; j++) {
        _mm512_mask_storeu_ps(c + j * ldc, m0, a0[j]);
        _mm512_mask_storeu_ps(c + j * ldc + LANES, m1, a1[j]);
    }
}

static void gemm_avx512(const float *wp, size_t wps, size_t kc, const float *x, size_t xs,
                        size_t nt, float *c, size_t ldc, size_t nr, bool first) {
    switch (nt) {
#define GEMM_CASE(T) case T: gemm_tile(T, wp, wps, kc, x, xs, c, ldc, nr, first); break;
        GEMM_CASE(1) GEMM_CASE(2) GEMM_CASE(3) GEMM_CASE(4) GEMM_CASE(5) GEMM_CASE(6)
        GEMM_CASE(7) GEMM_CASE(8) GEMM_CASE(9) GEMM_CASE(10) GEMM_CASE(11)
        default: gemm_tile(GEMM_TOKENS, wp, wps, kc, x, xs, c, ldc, nr, first); break;
#undef GEMM_CASE
    }
}

/* -------------------------------------------------------------------- Q8_0 */

#define Q8_TOKENS 6 /* 4 x 6 accumulators + 4 x 3 weight registers + x: 32 registers */

/* Two Q8_0 blocks side by side in one register: quants of block b in the
 * low 256 bits, block b+1 (or zeros, for an odd last block) in the high. */
static ALWAYS_INLINE __m512i load_q2(const finch_block_q8_0 *b, bool pair) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)b[0].qs);
    if (!pair) return _mm512_inserti64x4(_mm512_setzero_si512(), lo, 0);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                              _mm256_loadu_si256((const __m256i *)b[1].qs), 1);
}

/* The matching scales: d of block b in lanes 0-7, of block b+1 in 8-15.
 * A pair of blocks is 68 bytes, so one 64-byte load holds both scales
 * (f16 words 0 and 17): one permute puts them in place for one widening
 * conversion (where two scalar loads, conversions, broadcasts and a blend
 * cost twice the instructions in the matvec's hot loop).  A lone last block
 * reads only its own 34 bytes. */
static ALWAYS_INLINE __m512 load_d2(const finch_block_q8_0 *b, bool pair) {
    if (!pair) {
        __m512 lo = _mm512_set1_ps(_cvtsh_ss(b[0].d));
        return _mm512_maskz_mov_ps(0x00FF, lo);
    }
    const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i d = _mm512_permutexvar_epi16(idx, _mm512_loadu_si512(b));
    return _mm512_cvtph_ps(_mm512_castsi512_si256(d));
}

/* Integer dot of a pair of blocks, as 16 lanes of 4-product sums.  There is
 * no signed x signed byte multiply, so (as in ggml) multiply |w| (unsigned)
 * by x with w's sign moved onto it: vpmaddubsw then vpmaddwd with ones.
 * Quants are in [-127, 127], so the 16-bit pair sums cannot saturate. */
static ALWAYS_INLINE __m512i dot_q2(__m512i wq, __m512i xq) {
    __m512i xs = _mm512_mask_sub_epi8(xq, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xq);
    __m512i p16 = _mm512_maddubs_epi16(_mm512_abs_epi8(wq), xs);
    return _mm512_madd_epi16(p16, _mm512_set1_epi16(1));
}

/* The same lane sums with VNNI (tile_q8_0_vnni below): vpdpbusd
 * multiplies unsigned by signed bytes, so one operand is shifted by 128
 * and the shift taken back. */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

#include "kernels_qgemm_x86.h" /* the quantized GEMM, on VNNI */
#include "kernels_qgemm_avx2.h" /* ... and without VNNI */

/* decode's K-quant matvec with vpdpwssd (the same int32 multiply-adds) */
#define KR_NAME(n) n##_vnni
#define KR_ATTR VNNI
#define KR_MADD_ADD(acc, p16, sc16) _mm256_dpwssd_epi32(acc, p16, sc16)
#define KR_MADD_ADD512(acc, p16, sc16) _mm512_dpwssd_epi32(acc, p16, sc16)
#include "kernels_quant_krows_x86.h"

/* decode's K-quant matvec on packed 16-row groups, VNNI and plain AVX-512 */
#define KP_NAME(n) n##_vnni
#define KP_ATTR VNNI
#define KP_DPBUSD(acc, u8, s8) _mm512_dpbusd_epi32(acc, u8, s8)
#define KP_DPWSSD(acc, a, b) _mm512_dpwssd_epi32(acc, a, b)
#include "kernels_quant_kpack_x86.h"
#define KP_NAME(n) n##_avx512
#define KP_ATTR
#define KP_DPBUSD(acc, u8, s8) \
    _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1)))
#define KP_DPWSSD(acc, a, b) _mm512_add_epi32(acc, _mm512_madd_epi16(a, b))
#include "kernels_quant_kpack_x86.h"


/* The body of both Q8_0 tiles, which differ only in the integer dot:
 * DOT_SETUP prepares row r's weights once per block pair (shared by the
 * tile's tokens), X_SETUP token j's activations (shared by the tile's
 * rows, in xc), DOT gives the 16 exact lane sums of row r and token j. */
#define Q8_TILE_BODY(DOT_SETUP, X_SETUP, DOT)                                                  \
    const finch_block_q8_0 *wr[MATVEC_ROWS], *xt[Q8_TOKENS];                                   \
    __m512 acc[MATVEC_ROWS][Q8_TOKENS];                                                        \
    _Pragma("GCC unroll 8") for (size_t r = 0; r < R; r++) {                                   \
        wr[r] = finch_tile_row(w, ws, r, nr);                                                  \
        _Pragma("GCC unroll 6") for (size_t j = 0; j < T; j++) acc[r][j] = _mm512_setzero_ps(); \
    }                                                                                          \
    _Pragma("GCC unroll 6") for (size_t j = 0; j < T; j++)                                     \
        xt[j] = (const void *)((const char *)x + j * xs);                                      \
    size_t nb = cols / FINCH_QK8_0;                                                            \
    for (size_t b = 0; b < nb; b += 2) {                                                       \
        bool pair = b + 1 < nb;                                                                \
        if (T == 1) { /* matvec: a block pair spans up to two lines per row */                 \
            _Pragma("GCC unroll 8") for (size_t r = 0; r < R; r++) {                           \
                finch_prefetch_row_far(wr[r], b * sizeof *wr[r], nb * sizeof *wr[r], R * ws);  \
                finch_prefetch_row_far(wr[r], b * sizeof *wr[r] + 64, nb * sizeof *wr[r], R * ws); \
            }                                                                                  \
        }                                                                                      \
        __m512i wq[MATVEC_ROWS], wc[MATVEC_ROWS];                                              \
        __m512 dw[MATVEC_ROWS];                                                                \
        (void)wc; /* unused by the plain AVX-512 dot */                                        \
        _Pragma("GCC unroll 8") for (size_t r = 0; r < R; r++) {                               \
            wq[r] = load_q2(wr[r] + b, pair);                                                  \
            DOT_SETUP;                                                                         \
            dw[r] = load_d2(wr[r] + b, pair);                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 6") for (size_t j = 0; j < T; j++) {                               \
            __m512i xq = load_q2(xt[j] + b, pair);                                             \
            __m512 dx = load_d2(xt[j] + b, pair);                                              \
            __m512i xc = X_SETUP;                                                              \
            (void)xc; /* unused by the plain AVX-512 dot */                                    \
            _Pragma("GCC unroll 8") for (size_t r = 0; r < R; r++) {                           \
                __m512 s = _mm512_cvtepi32_ps(DOT);                                            \
                acc[r][j] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw[r], dx), acc[r][j]);           \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    _Pragma("GCC unroll 6") for (size_t j = 0; j < T; j++)                                     \
        for (size_t r = 0; r < nr && r < R; r++) out[j * ldo + r] = _mm512_reduce_add_ps(acc[r][j]);

static ALWAYS_INLINE void tile_q8_0(size_t R, size_t T, const void *w, size_t ws, size_t nr,
                                    const void *x, size_t xs, size_t cols, float *out,
                                    size_t ldo) {
    Q8_TILE_BODY((void)0, _mm512_setzero_si512(), dot_q2(wq[r], xq))
}

/* -128 * (the sum of v's 4 bytes) per lane. */
static VNNI ALWAYS_INLINE __m512i q2_corr(__m512i v) {
    __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), v);
    return _mm512_sub_epi32(_mm512_setzero_si512(), s);
}
/* w + 128 as unsigned bytes (w ^ 0x80): vpdpbusd's unsigned operand. */
static VNNI ALWAYS_INLINE __m512i q2_unsigned(__m512i wq) {
    return _mm512_xor_si512(wq, _mm512_set1_epi8((char)0x80));
}

/* The weights are made unsigned, the activations' share of the shift
 * taken back once per token and block pair (xc = q2_corr(x), the sums'
 * start value): sum (w + 128) x - 128 sum x = sum w x, exactly (|sums| <
 * 2^17), for any int8 w.  Per row and block pair that is one xor and one
 * vpdpbusd, where shifting x instead (x + 128, then - 128 sum w) cost a
 * second vpdpbusd and a subtraction per row: the matvec runs 8 rows per
 * token. */
static VNNI ALWAYS_INLINE void tile_q8_0_vnni(size_t R, size_t T, const void *w, size_t ws, size_t nr,
                                              const void *x, size_t xs, size_t cols, float *out,
                                              size_t ldo) {
    Q8_TILE_BODY(wc[r] = q2_unsigned(wq[r]), q2_corr(xq), _mm512_dpbusd_epi32(xc, wc[r], xq))
}

/* As TILE_WRAPPER: 8 rows for one token, 4 rows for more. */
#define Q8_WRAPPER(attr, name, tile)                                                         \
    static attr void name(const void *w, size_t ws, size_t nr, const void *x, size_t xs,    \
                          size_t nt, size_t cols, float *out, size_t ldo) {                 \
        switch (nt) {                                                                        \
        case 1: tile(MATVEC_ROWS, 1, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 2: tile(4, 2, w, ws, nr, x, xs, cols, out, ldo); break;                        \
        case 3: tile(4, 3, w, ws, nr, x, xs, cols, out, ldo); break;                        \
        case 4: tile(4, 4, w, ws, nr, x, xs, cols, out, ldo); break;                        \
        case 5: tile(4, 5, w, ws, nr, x, xs, cols, out, ldo); break;                        \
        default: tile(4, 6, w, ws, nr, x, xs, cols, out, ldo); break;                       \
        }                                                                                    \
    }
Q8_WRAPPER(, tile_q8_0_avx512, tile_q8_0)
Q8_WRAPPER(VNNI, tile_q8_0_avx512_vnni, tile_q8_0_vnni)

/* The same arithmetic as finch_quantize_act (quants.c), 16 lanes at a time. */
static void quantize_q8_0_avx512(const float *x, void *blocks, size_t n) {
    finch_block_q8_0 *y = blocks;
    for (size_t b = 0; b < n / FINCH_QK8_0; b++, x += FINCH_QK8_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float id = amax != 0 ? 127.0f / amax : 0.0f;
        y[b].d = finch_f32_to_f16(amax / 127.0f);
        __m512 vid = _mm512_set1_ps(id);
#define ROUND_EVEN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) /* a literal for clang */
        __m512i q0 = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, vid), ROUND_EVEN));
        __m512i q1 = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, vid), ROUND_EVEN));
#undef ROUND_EVEN
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtepi32_epi8(q1));
    }
}

/* Q8_K with finch_quantize_act's arithmetic (quants.c): max = the first
 * value of largest magnitude, iscale = -127 / max, q = min(127, x * iscale
 * rounded half to even), bsums, d = 1 / iscale.  A block holding NaN or
 * Inf takes the scalar code, whose integer rounding trick such values
 * would not survive alike. */
static void quantize_q8_K_avx512(const float *x, void *blocks, size_t n) {
    finch_block_q8_K *y = blocks;
    for (size_t b = 0; b < n / FINCH_QK_K; b++, x += FINCH_QK_K) {
        __m512 v[16], am = _mm512_setzero_ps();
        __mmask16 bad = 0;
        for (int j = 0; j < 16; j++) {
            v[j] = _mm512_loadu_ps(x + 16 * j);
            am = _mm512_max_ps(am, _mm512_abs_ps(v[j]));
            bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(v[j]), _mm512_set1_ps(INFINITY), _CMP_NLT_UQ);
        }
        float amax = _mm512_reduce_max_ps(am), max = 0;
        if (bad || amax == 0) {
            finch_quantize_act(FINCH_Q8_K, x, &y[b], FINCH_QK_K);
            continue;
        }
        for (int j = 0; j < 16; j++) {
            __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(v[j]), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (m) {
                max = x[16 * j + __builtin_ctz(m)];
                break;
            }
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < 16; j++) {
            __m512i q = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_set1_ps(iscale), v[j]),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * j), _mm512_cvtepi32_epi8(q));
            y[b].bsums[j] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[b].d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------- vector ops */

/* Four independent accumulators hide the FMA latency; they are combined in
 * a fixed order, so the result only depends on n. */
static float dot_f32_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + LANES <= n; i += LANES)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static void axpy_avx512(float *y, float a, const float *x, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

/* Same two roundings as the scalar loop (no FMA), so RMSNorm's scaling is
 * identical on every path. */
static void scale_mul_avx512(float *out, const float *x, const float *w, float s, size_t n) {
    __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(w + i),
                                                _mm512_mul_ps(vs, _mm512_loadu_ps(x + i))));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i),
                                 _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* finch_expf (kernels_scalar.c) on 16 lanes. */
static ALWAYS_INLINE __m512 exp_ps(__m512 x) {
    __mmask16 hi = _mm512_cmp_ps_mask(x, _mm512_set1_ps(FINCH_EXP_HI), _CMP_GT_OQ);
    __mmask16 lo = _mm512_cmp_ps_mask(x, _mm512_set1_ps(FINCH_EXP_LO), _CMP_LT_OQ);
    __m512 n = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(FINCH_LOG2E)),
                                                  _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(FINCH_EXP_C1), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(FINCH_EXP_C2), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 y = _mm512_set1_ps(FINCH_EXP_P0);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(FINCH_EXP_P1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(FINCH_EXP_P2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(FINCH_EXP_P3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(FINCH_EXP_P4));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(FINCH_EXP_P5));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, z, r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    y = _mm512_mask_mov_ps(y, hi, _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(y, lo, _mm512_setzero_ps());
}

static float exp_sum_avx512(float *x, size_t n, float s, float m) {
    __m512 vs = _mm512_set1_ps(s), vm = _mm512_set1_ps(m), sum = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(x + i)), vm));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, x + i)), vm));
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(sum);
}

static float max_avx512(const float *x, size_t n) {
    __m512 m = _mm512_set1_ps(x[0]);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) m = _mm512_mask_max_ps(m, tail_mask(n - i), m, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return _mm512_reduce_max_ps(m);
}

static void silu_mul_avx512(float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m512 g = _mm512_loadu_ps(gate + i);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_storeu_ps(gate + i, _mm512_mul_ps(s, _mm512_loadu_ps(up + i)));
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(gate + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, up + i)));
    }
}

/* ---- f16 <-> f32 rows (the F16 KV cache), the scalar twin's bits ---- */

static void f16_to_f32_avx512(const uint16_t *h, float *out, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + i)));
    }
}

static void f32_to_f16_avx512(const float *x, uint16_t *h, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_si256((__m256i *)(h + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(h + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT));
    }
}

#define AVX512_TABLE(q8_tile, dotr32, k_dotr)                                               \
    .isa = FINCH_ISA_AVX512,                                                                 \
    .tile_f32 = {.fn = tile_f32_avx512, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = MATVEC_ROWS}, \
    .tile_f16 = {.fn = tile_f16_avx512, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = MATVEC_ROWS}, \
    .tile_bf16 = {.fn = tile_bf16_avx512, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = MATVEC_ROWS}, \
    .tile_q8_0 = {.fn = q8_tile, .rows = FINCH_TILE_ROWS, .tokens = Q8_TOKENS, .matvec_rows = MATVEC_ROWS}, \
    .gemm_prefill = true,                                                                    \
    .gemm_tokens = GEMM_TOKENS,                                                              \
    .pack_f32 = pack_f32_avx512,                                                             \
    .pack_f16 = pack_f16_avx512,                                                             \
    .pack_bf16 = pack_bf16_avx512,                                                           \
    .gemm = gemm_avx512,                                                                     \
    .quantize_q8_0 = quantize_q8_0_avx512,                                                   \
    .quantize_q8_K = quantize_q8_K_avx512,                                                   \
    .dot_f32 = dot_f32_avx512,                                                               \
    .axpy = axpy_avx512,                                                                     \
    .scale_mul = scale_mul_avx512,                                                           \
    .exp_sum = exp_sum_avx512,                                                               \
    .max = max_avx512,                                                                       \
    .silu_mul = silu_mul_avx512,                                                             \
    .vec_dot = {QX_VEC_DOT},                                                                 \
    .vec_dotn = {QX_VEC_DOTN},                                                               \
    .vec_dotr = {dotr32, k_dotr},                                                            \
    .f16_to_f32 = f16_to_f32_avx512,                                                         \
    .f32_to_f16 = f32_to_f16_avx512,                                                         \
    .pack_kv_f16 = pack_f16_avx512,

const finch_kernels finch_kernels_avx512 = {
    AVX512_TABLE(tile_q8_0_avx512, QX_VEC_DOTR_32, QX_VEC_DOTR_K) .qgemm = {QG_AVX2},
    .qgemm_pack = qgemm_pack_avx2, .vec_dotp = {QP_VEC_DOTP_X86, QX_VEC_DOTP_K_AVX512}};
const finch_kernels finch_kernels_avx512_vnni = {
    AVX512_TABLE(tile_q8_0_avx512_vnni, QX_VEC_DOTR_32_VNNI, QX_VEC_DOTR_K_VNNI) .qgemm = {QG_VNNI},
    .qgemm_pack = qgemm_pack_avx512, .vec_dotp = {QP_VEC_DOTP_VNNI, QX_VEC_DOTP_K_VNNI}};
