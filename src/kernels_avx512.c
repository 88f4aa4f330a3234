/* kernels_avx512.c - AVX-512 (F, BW, VL, DQ) + FMA + F16C inner loops.
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c;
 * kernels.c only calls into this file when cpuid says the CPU (and OS)
 * support all of them.  Each loop mirrors its scalar twin in kernels.c;
 * the lane layout every output follows is described in kernels_internal.h
 * (16 lanes here; the last partial vector is a masked, zero-filled load). */
#include "kernels_internal.h"

#include <immintrin.h>

#define LANES 16
#define TOKENS 6 /* 4 x 6 accumulators + 4 weights + 1 activation: 29 of 32 registers */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Lanes [0, n) set, n < 16. */
static inline __mmask16 tail_mask(size_t n) { return (__mmask16)((1u << n) - 1); }

/* ------------------------------------------------------ float-like weights */

/* 16 weights of `row` from column c as f32.  `t` is a constant once the
 * tile is inlined into its per-dtype wrapper, so the switch folds away. */
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

/* A 4-row x T-token register tile (T <= 6): 4*T accumulators of 16 lanes.  Each step
 * loads (and converts) 4 weight vectors once and reuses them for T tokens,
 * which is what makes prefill cheaper per token than T matvecs. */
static ALWAYS_INLINE void tile_float(finch_dtype t, size_t T, const void *w, size_t ws,
                                     size_t nr, const void *x, size_t xs, size_t cols,
                                     float *out, size_t ldo) {
    const void *wr[FINCH_TILE_ROWS];
    const float *xt[TOKENS];
    __m512 acc[FINCH_TILE_ROWS][TOKENS];
#pragma GCC unroll 4
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
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
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                finch_prefetch((const char *)wr[r] + c * wsize + FINCH_PREFETCH_BYTES);
        }
        __m512 wv[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wv[r] = load_w(t, wr[r], c);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512 xv = _mm512_loadu_ps(xt[j] + c);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
        }
    }
    if (c < cols) {
        __mmask16 m = tail_mask(cols - c);
        __m512 wv[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wv[r] = load_w_tail(t, wr[r], c, m);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, xt[j] + c);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
        }
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = _mm512_reduce_add_ps(acc[r][j]);
}

/* One wrapper per dtype: the token count picks a fully unrolled tile. */
#define TILE_WRAPPER(name, dtype)                                                            \
    static void name(const void *w, size_t ws, size_t nr, const void *x, size_t xs,         \
                     size_t nt, size_t cols, float *out, size_t ldo) {                      \
        switch (nt) {                                                                        \
        case 1: tile_float(dtype, 1, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 2: tile_float(dtype, 2, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 3: tile_float(dtype, 3, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 4: tile_float(dtype, 4, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 5: tile_float(dtype, 5, w, ws, nr, x, xs, cols, out, ldo); break;              \
        default: tile_float(dtype, 6, w, ws, nr, x, xs, cols, out, ldo); break;             \
        }                                                                                    \
    }
TILE_WRAPPER(tile_f32_avx512, FINCH_F32)
TILE_WRAPPER(tile_f16_avx512, FINCH_F16)
TILE_WRAPPER(tile_bf16_avx512, FINCH_BF16)

/* -------------------------------------------------------------------- Q8_0 */

/* Two Q8_0 blocks side by side in one register: quants of block b in the
 * low 256 bits, block b+1 (or zeros, for an odd last block) in the high. */
static ALWAYS_INLINE __m512i load_q2(const finch_block_q8_0 *b, bool pair) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)b[0].qs);
    if (!pair) return _mm512_inserti64x4(_mm512_setzero_si512(), lo, 0);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                              _mm256_loadu_si256((const __m256i *)b[1].qs), 1);
}

/* The matching scales: d of block b in lanes 0-7, of block b+1 in 8-15. */
static ALWAYS_INLINE __m512 load_d2(const finch_block_q8_0 *b, bool pair) {
    __m512 lo = _mm512_set1_ps(_cvtsh_ss(b[0].d));
    __m512 hi = pair ? _mm512_set1_ps(_cvtsh_ss(b[1].d)) : _mm512_setzero_ps();
    return _mm512_mask_blend_ps(0xFF00, lo, hi);
}

/* Integer dot of a pair of blocks, as 16 lanes of 4-product sums.  There is
 * no signed x signed byte multiply, so (as in ggml) multiply |w| (unsigned)
 * by x with w's sign moved onto it: vpmaddubsw then vpmaddwd with ones.
 * Quants are in [-127, 127], so the 16-bit pair sums cannot saturate. */
static ALWAYS_INLINE __m512i dot_q2(__m512i wabs, __mmask64 wneg, __m512i xq) {
    __m512i xs = _mm512_mask_sub_epi8(xq, wneg, _mm512_setzero_si512(), xq);
    __m512i p16 = _mm512_maddubs_epi16(wabs, xs);
    return _mm512_madd_epi16(p16, _mm512_set1_epi16(1));
}

static ALWAYS_INLINE void tile_q8_0(size_t T, const void *w, size_t ws, size_t nr,
                                    const void *x, size_t xs, size_t cols, float *out,
                                    size_t ldo) {
    const finch_block_q8_0 *wr[FINCH_TILE_ROWS], *xt[TOKENS];
    __m512 acc[FINCH_TILE_ROWS][TOKENS];
#pragma GCC unroll 4
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) acc[r][j] = _mm512_setzero_ps();
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++) xt[j] = (const void *)((const char *)x + j * xs);

    size_t nb = cols / FINCH_QK8_0;
    for (size_t b = 0; b < nb; b += 2) {
        bool pair = b + 1 < nb;
        if (T == 1) { /* matvec: a block pair spans up to two lines per row */
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
                finch_prefetch((const char *)(wr[r] + b) + FINCH_PREFETCH_BYTES);
                finch_prefetch((const char *)(wr[r] + b) + FINCH_PREFETCH_BYTES + 64);
            }
        }
        __m512i wabs[FINCH_TILE_ROWS];
        __mmask64 wneg[FINCH_TILE_ROWS];
        __m512 dw[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
            __m512i q = load_q2(wr[r] + b, pair);
            wabs[r] = _mm512_abs_epi8(q);
            wneg[r] = _mm512_movepi8_mask(q);
            dw[r] = load_d2(wr[r] + b, pair);
        }
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512i xq = load_q2(xt[j] + b, pair);
            __m512 dx = load_d2(xt[j] + b, pair);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
                __m512 s = _mm512_cvtepi32_ps(dot_q2(wabs[r], wneg[r], xq));
                acc[r][j] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw[r], dx), acc[r][j]);
            }
        }
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = _mm512_reduce_add_ps(acc[r][j]);
}

static void tile_q8_0_avx512(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                             size_t nt, size_t cols, float *out, size_t ldo) {
    switch (nt) {
    case 1: tile_q8_0(1, w, ws, nr, x, xs, cols, out, ldo); break;
    case 2: tile_q8_0(2, w, ws, nr, x, xs, cols, out, ldo); break;
    case 3: tile_q8_0(3, w, ws, nr, x, xs, cols, out, ldo); break;
    case 4: tile_q8_0(4, w, ws, nr, x, xs, cols, out, ldo); break;
    case 5: tile_q8_0(5, w, ws, nr, x, xs, cols, out, ldo); break;
    default: tile_q8_0(6, w, ws, nr, x, xs, cols, out, ldo); break;
    }
}

/* round(v) with ties away from zero, as C's roundf: truncate, then step
 * away from zero when the (exact) remainder is at least one half. */
static inline __m512 round_away(__m512 v) {
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* The same arithmetic as finch_row_from_f32 (util.c), 16 lanes at a time. */
static void quantize_q8_0_avx512(const float *x, void *blocks, size_t n) {
    finch_block_q8_0 *y = blocks;
    for (size_t b = 0; b < n / FINCH_QK8_0; b++, x += FINCH_QK8_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = finch_f32_to_f16(d);
        __m512 vid = _mm512_set1_ps(id);
        __m512i q0 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, vid)));
        __m512i q1 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtepi32_epi8(q1));
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

const finch_kernels finch_kernels_avx512 = {
    .isa = FINCH_ISA_AVX512,
    .tile_tokens = TOKENS,
    .tile_f32 = tile_f32_avx512,
    .tile_f16 = tile_f16_avx512,
    .tile_bf16 = tile_bf16_avx512,
    .tile_q8_0 = tile_q8_0_avx512,
    .quantize_q8_0 = quantize_q8_0_avx512,
    .dot_f32 = dot_f32_avx512,
    .axpy = axpy_avx512,
    .scale_mul = scale_mul_avx512,
};
