/* kernels_avx2.c - AVX2 + FMA + F16C inner loops.
 *
 * Compiled with -mavx2 -mfma -mf16c; kernels.c only calls into this file
 * when cpuid says the CPU supports them.  Each loop mirrors its scalar twin
 * in kernels_scalar.c; the lane layout every output follows is described in
 * kernels_internal.h (8 lanes here; the last partial vector is zero-filled).
 * With 16 vector registers the register tile is 4 rows x 2 tokens. */
#include "kernels_internal.h"
#include "kernels_quant_x86.h"
#include "kernels_quant_rows_x86.h"
#include "kernels_quant_pack_x86.h" /* decode on packed weights */
#define KR_NAME(n) n##_x86
#define KR_ATTR
#define KR_MADD_ADD(acc, p16, sc16) _mm256_add_epi32(acc, _mm256_madd_epi16(p16, sc16))
#include "kernels_quant_krows_x86.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define LANES 8
#define TOKENS 2
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Fixed-order horizontal sum: halves, then pairs, then the last two. */
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Load mask for the first n < 8 lanes (sign bit set = load). */
static inline __m256i tail_mask(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ------------------------------------------------------ float-like weights */

static ALWAYS_INLINE __m256 cvt_w(finch_dtype t, __m128i h) {
    if (t == FINCH_F16) return _mm256_cvtph_ps(h);
    /* bf16 is the top half of an f32: widen and shift */
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* 8 weights of `row` from column c as f32 (`t` folds away once inlined). */
static ALWAYS_INLINE __m256 load_w(finch_dtype t, const void *row, size_t c) {
    if (t == FINCH_F32) return _mm256_loadu_ps((const float *)row + c);
    return cvt_w(t, _mm_loadu_si128((const __m128i *)((const uint16_t *)row + c)));
}

/* The last n < 8 weights, zero-filled.  AVX2 has no 16-bit masked load, so
 * half types go through a small zeroed buffer (once per row and call). */
static ALWAYS_INLINE __m256 load_w_tail(finch_dtype t, const void *row, size_t c, size_t n) {
    if (t == FINCH_F32) return _mm256_maskload_ps((const float *)row + c, tail_mask(n));
    uint16_t buf[LANES] = {0};
    memcpy(buf, (const uint16_t *)row + c, n * sizeof(uint16_t));
    return cvt_w(t, _mm_loadu_si128((const __m128i *)buf));
}

/* A 4-row x T-token register tile (T <= 2): 4*T accumulators of 8 lanes;
 * each step's 4 weight vectors are loaded and converted once for T tokens. */
static ALWAYS_INLINE void tile_float(finch_dtype t, size_t T, const void *w, size_t ws,
                                     size_t nr, const void *x, size_t xs, size_t cols,
                                     float *out, size_t ldo) {
    const void *wr[FINCH_TILE_ROWS];
    const float *xt[TOKENS];
    __m256 acc[FINCH_TILE_ROWS][TOKENS];
#pragma GCC unroll 4
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) acc[r][j] = _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (size_t j = 0; j < T; j++) xt[j] = (const float *)((const char *)x + j * xs);

    const size_t wsize = t == FINCH_F32 ? sizeof(float) : sizeof(uint16_t);
    size_t c = 0;
    for (; c + LANES <= cols; c += LANES) {
        if (T == 1 && (c * wsize) % 64 == 0) { /* matvec: one hint per line */
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                finch_prefetch_row(wr[r], c * wsize, cols * wsize, FINCH_TILE_ROWS * ws);
        }
        __m256 wv[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wv[r] = load_w(t, wr[r], c);
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) {
            __m256 xv = _mm256_loadu_ps(xt[j] + c);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                acc[r][j] = _mm256_fmadd_ps(wv[r], xv, acc[r][j]);
        }
    }
    if (c < cols) {
        size_t n = cols - c;
        __m256 wv[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wv[r] = load_w_tail(t, wr[r], c, n);
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) {
            __m256 xv = _mm256_maskload_ps(xt[j] + c, tail_mask(n));
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                acc[r][j] = _mm256_fmadd_ps(wv[r], xv, acc[r][j]);
        }
    }
#pragma GCC unroll 2
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = hsum(acc[r][j]);
}

#define TILE_WRAPPER(name, dtype)                                                            \
    static void name(const void *w, size_t ws, size_t nr, const void *x, size_t xs,         \
                     size_t nt, size_t cols, float *out, size_t ldo) {                      \
        if (nt == 1) tile_float(dtype, 1, w, ws, nr, x, xs, cols, out, ldo);                 \
        else tile_float(dtype, 2, w, ws, nr, x, xs, cols, out, ldo);                         \
    }
TILE_WRAPPER(tile_f32_avx2, FINCH_F32)
TILE_WRAPPER(tile_f16_avx2, FINCH_F16)
TILE_WRAPPER(tile_bf16_avx2, FINCH_BF16)

/* -------------------------------------------------------------------- Q8_0 */

/* Integer dot of one block as 8 lanes of 4-product sums.  There is no
 * signed x signed byte multiply, so (as in ggml) multiply |w| (unsigned)
 * by x carrying w's sign: vpmaddubsw, then vpmaddwd with ones.  Quants are
 * in [-127, 127], so the 16-bit pair sums cannot saturate. */
static ALWAYS_INLINE __m256i dot_q(__m256i wabs, __m256i wq, __m256i xq) {
    __m256i p16 = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(xq, wq));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

static ALWAYS_INLINE void tile_q8_0(size_t T, const void *w, size_t ws, size_t nr,
                                    const void *x, size_t xs, size_t cols, float *out,
                                    size_t ldo) {
    const finch_block_q8_0 *wr[FINCH_TILE_ROWS], *xt[TOKENS];
    __m256 acc[FINCH_TILE_ROWS][TOKENS];
#pragma GCC unroll 4
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) acc[r][j] = _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (size_t j = 0; j < T; j++) xt[j] = (const void *)((const char *)x + j * xs);

    for (size_t b = 0; b < cols / FINCH_QK8_0; b++) {
        if (T == 1) { /* matvec: memory-bound (kernels_internal.h) */
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                finch_prefetch_row(wr[r], b * sizeof *wr[r], cols / FINCH_QK8_0 * sizeof *wr[r],
                                   FINCH_TILE_ROWS * ws);
        }
        __m256i wq[FINCH_TILE_ROWS], wabs[FINCH_TILE_ROWS];
        __m256 dw[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
            wq[r] = _mm256_loadu_si256((const __m256i *)wr[r][b].qs);
            wabs[r] = _mm256_abs_epi8(wq[r]);
            dw[r] = _mm256_set1_ps(_cvtsh_ss(wr[r][b].d));
        }
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) {
            __m256i xq = _mm256_loadu_si256((const __m256i *)xt[j][b].qs);
            __m256 dx = _mm256_set1_ps(_cvtsh_ss(xt[j][b].d));
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
                __m256 s = _mm256_cvtepi32_ps(dot_q(wabs[r], wq[r], xq));
                acc[r][j] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw[r], dx), acc[r][j]);
            }
        }
    }
#pragma GCC unroll 2
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = hsum(acc[r][j]);
}

static void tile_q8_0_avx2(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                           size_t nt, size_t cols, float *out, size_t ldo) {
    if (nt == 1) tile_q8_0(1, w, ws, nr, x, xs, cols, out, ldo);
    else tile_q8_0(2, w, ws, nr, x, xs, cols, out, ldo);
}

/* The same arithmetic as finch_quantize_act (quants.c), 8 lanes at a time. */
static void quantize_q8_0_avx2(const float *x, void *blocks, size_t n) {
    finch_block_q8_0 *y = blocks;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t b = 0; b < n / FINCH_QK8_0; b++, x += FINCH_QK8_0) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (size_t i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 8 * i);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float id = amax != 0 ? 127.0f / amax : 0.0f;
        y[b].d = finch_f32_to_f16(amax / 127.0f);
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (size_t i = 0; i < 4; i++)
            q[i] = _mm256_cvttps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* The packs work within 128-bit lanes; a final permute restores order. */
        __m256i q16a = _mm256_packs_epi32(q[0], q[1]), q16b = _mm256_packs_epi32(q[2], q[3]);
        __m256i q8 = _mm256_packs_epi16(q16a, q16b);
        q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, q8);
    }
}

/* ------------------------------------------------------------- vector ops */

/* Four independent accumulators hide the FMA latency; they are combined in
 * a fixed order, so the result only depends on n. */
static float dot_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + LANES <= n; i += LANES)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static void axpy_avx2(float *y, float a, const float *x, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]); /* same rounding as the FMA lanes */
}

/* Same two roundings as the scalar loop (no FMA). */
static void scale_mul_avx2(float *out, const float *x, const float *w, float s, size_t n) {
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(w + i),
                                                _mm256_mul_ps(vs, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) out[i] = w[i] * (s * x[i]);
}

/* ---- packed GEMM for attention: 32 rows (4 vectors) x up to 2 tokens ---- */
#define GEMM_TOKENS 2

static ALWAYS_INLINE void gemm_tile(size_t T, const float *wp, size_t wps, size_t kc,
                                    const float *x, size_t xs, float *c, size_t ldc, size_t nr,
                                    bool first) {
    __m256i m[4];
    __m256 acc[4][GEMM_TOKENS];
#pragma GCC unroll 4
    for (size_t v = 0; v < 4; v++) {
        size_t lo = v * LANES, left = nr > lo ? nr - lo : 0;
        m[v] = tail_mask(left < LANES ? left : LANES); /* all lanes for 8 */
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++)
            acc[v][j] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(c + j * ldc + lo, m[v]);
    }
    for (size_t k = 0; k < kc; k++) {
        __m256 w[4];
#pragma GCC unroll 4
        for (size_t v = 0; v < 4; v++) w[v] = _mm256_maskload_ps(wp + k * wps + v * LANES, m[v]);
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) {
            __m256 b = _mm256_set1_ps(x[j * xs + k]);
#pragma GCC unroll 4
            for (size_t v = 0; v < 4; v++) acc[v][j] = _mm256_fmadd_ps(w[v], b, acc[v][j]);
        }
    }
#pragma GCC unroll 2
    for (size_t j = 0; j < T; j++)
#pragma GCC unroll 4
        for (size_t v = 0; v < 4; v++) _mm256_maskstore_ps(c + j * ldc + v * LANES, m[v], acc[v][j]);
}

static void gemm_avx2(const float *wp, size_t wps, size_t kc, const float *x, size_t xs,
                      size_t nt, float *c, size_t ldc, size_t nr, bool first) {
    if (nt == 1) gemm_tile(1, wp, wps, kc, x, xs, c, ldc, nr, first);
    else gemm_tile(2, wp, wps, kc, x, xs, c, ldc, nr, first);
}

/* ---- exp-based ops: finch_expf (kernels_scalar.c) on 8 lanes ---- */

static ALWAYS_INLINE __m256 exp_ps(__m256 x) {
    __m256 hi = _mm256_cmp_ps(x, _mm256_set1_ps(FINCH_EXP_HI), _CMP_GT_OQ);
    __m256 lo = _mm256_cmp_ps(x, _mm256_set1_ps(FINCH_EXP_LO), _CMP_LT_OQ);
    __m256 n = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(FINCH_LOG2E)),
                                             _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(FINCH_EXP_C1), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(FINCH_EXP_C2), r);
    __m256 z = _mm256_mul_ps(r, r);
    __m256 y = _mm256_set1_ps(FINCH_EXP_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(FINCH_EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(FINCH_EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(FINCH_EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(FINCH_EXP_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(FINCH_EXP_P5));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, z, r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), hi);
    return _mm256_andnot_ps(lo, y);
}

static float exp_sum_avx2(float *x, size_t n, float s, float m) {
    __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + i)), vm));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = hsum(sum);
    return total + finch_exp_sum_generic(x + i, n - i, s, m); /* the last n % 8 */
}

static float max_avx2(const float *x, size_t n) {
    __m256 m = _mm256_set1_ps(x[0]);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

static void silu_mul_avx2(float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 sg = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(sg, _mm256_loadu_ps(up + i)));
    }
    finch_silu_mul_generic(gate + i, up + i, n - i);
}

/* ---- f16 <-> f32 rows (F16C), the scalar twin's bits ---- */

static void f16_to_f32_avx2(const uint16_t *h, float *out, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    finch_f16_to_f32_generic(h + i, out + i, n - i);
}

static void f32_to_f16_avx2(const float *x, uint16_t *h, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    finch_f32_to_f16_generic(x + i, h + i, n - i);
}

#include "kernels_qgemm_avx2.h" /* the quantized GEMM of prefill */
#include "kernels_quant_kpack_avx2.h" /* decode's K-quant matvec on packed 16-row groups */

const finch_kernels finch_kernels_avx2 = {
    .isa = FINCH_ISA_AVX2,
    .tile_f32 = {.fn = tile_f32_avx2, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = FINCH_TILE_ROWS},
    .tile_f16 = {.fn = tile_f16_avx2, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = FINCH_TILE_ROWS},
    .tile_bf16 = {.fn = tile_bf16_avx2, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = FINCH_TILE_ROWS},
    .tile_q8_0 = {.fn = tile_q8_0_avx2, .rows = FINCH_TILE_ROWS, .tokens = TOKENS, .matvec_rows = FINCH_TILE_ROWS},
    .gemm_prefill = false, /* prefill: the lane-order tiles, or OpenBLAS for f32 */
    .gemm_tokens = GEMM_TOKENS,
    .pack_f32 = finch_pack_f32_generic,
    .gemm = gemm_avx2,
    .quantize_q8_0 = quantize_q8_0_avx2,
    .dot_f32 = dot_f32_avx2,
    .axpy = axpy_avx2,
    .scale_mul = scale_mul_avx2,
    .exp_sum = exp_sum_avx2,
    .max = max_avx2,
    .silu_mul = silu_mul_avx2,
    .vec_dot = {QX_VEC_DOT},
    .vec_dotn = {QX_VEC_DOTN},
    .vec_dotr = {QX_VEC_DOTR_32, QX_VEC_DOTR_K},
    .vec_dotp = {QP_VEC_DOTP_X86, QX_VEC_DOTP_K_AVX2},
    .qgemm = {QG_AVX2},
    .qgemm_pack = qgemm_pack_avx2,
    .f16_to_f32 = f16_to_f32_avx2,
    .f32_to_f16 = f32_to_f16_avx2,
    .pack_kv_f16 = finch_pack_f16_generic,
};
