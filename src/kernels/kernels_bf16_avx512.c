/* kernels_bf16_avx512.c - BF16 weights in bf16 arithmetic on AVX-512 BF16
 * (vdpbf16ps): the pair-lane order of kernels_bf16.c, whose scalar twin
 * finch_bf16_dot_ref gives the same bits.
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16;
 * used only when cpuid says AVX512_BF16 (kernels_bf16.c) and the AVX-512
 * table is active.  One vdpbf16ps takes 32 columns of a row (64 bytes of
 * weights, no conversion), where the f32 path widens 16 at a time and
 * reads 64 bytes of f32 activations per 16 columns. */
/* The matvec's hints: finch_prefetch_row_far, 2 KB ahead of each row
 * (kernels_internal.h).  The loaded Zen 4 of the first measurement (a
 * 2048 x 5632 matvec, one thread, 256 B ... 2 KB) preferred 512 B; the
 * quiet one of 2026-12-07 22:00, TinyLlama's weights in decode order,
 * reads 22.2-22.6 GB/s at 512 B and 24.3-26.0 at 2 KB (docs/bench.md,
 * "Decode's matvec, second look"). */
#include "kernels_internal.h"

#include <immintrin.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define COLS 32         /* bf16 values per vector */
/* Prefill: 4 rows x 6 tokens, 24 accumulators + 4 weights + 1 activation.
 * 512 x 2048 @ 2048 x 2048, one thread (loaded Zen 4, GFLOP/s): 4 x 6
 * 164, 6 x 4 169, 8 x 3 100, 2 x 6 118. */
#define TOKENS 6
#define TILE_ROWS FINCH_TILE_ROWS
#define MATVEC_ROWS 8   /* one token: 8 rows' streams in flight per core */

/* Lanes [0, n) of 32, n < 32. */
static inline __mmask32 tail_mask32(size_t n) { return (__mmask32)((1u << n) - 1); }

/* The lanes summed as the twin does: i += i + h for h = 8, 4, 2, 1. */
static ALWAYS_INLINE float reduce_tree(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

static ALWAYS_INLINE __m512 dp(__m512 acc, __m512i w, __m512i x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
}

/* R rows x T tokens (R <= 8, T <= 6), one accumulator per output.  x:
 * bf16 activation rows, xs bytes apart. */
static ALWAYS_INLINE void tile_dot(size_t R, size_t T, const void *w, size_t ws, size_t nr,
                                   const void *x, size_t xs, size_t cols, float *out, size_t ldo) {
    const uint16_t *wr[MATVEC_ROWS], *xt[TOKENS];
    __m512 acc[MATVEC_ROWS][TOKENS];
#pragma GCC unroll 8
    for (size_t r = 0; r < R; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) acc[r][j] = _mm512_setzero_ps();
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++) xt[j] = (const uint16_t *)((const char *)x + j * xs);
    const size_t row_bytes = cols * sizeof(uint16_t);
    size_t c = 0;
    for (; c + COLS <= cols; c += COLS) {
        if (T == 1) { /* matvec: one 64-byte line per row and step */
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) finch_prefetch_row_far(wr[r], c * sizeof(uint16_t), row_bytes, R * ws);
        }
        __m512i wv[MATVEC_ROWS];
#pragma GCC unroll 8
        for (size_t r = 0; r < R; r++) wv[r] = _mm512_loadu_si512(wr[r] + c);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512i xv = _mm512_loadu_si512(xt[j] + c);
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) acc[r][j] = dp(acc[r][j], wv[r], xv);
        }
    }
    if (c < cols) { /* zero columns past the end: products 0, the same steps */
        __mmask32 m = tail_mask32(cols - c);
        __m512i wv[MATVEC_ROWS];
#pragma GCC unroll 8
        for (size_t r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_epi16(m, wr[r] + c);
#pragma GCC unroll 6
        for (size_t j = 0; j < T; j++) {
            __m512i xv = _mm512_maskz_loadu_epi16(m, xt[j] + c);
#pragma GCC unroll 8
            for (size_t r = 0; r < R; r++) acc[r][j] = dp(acc[r][j], wv[r], xv);
        }
    }
#pragma GCC unroll 6
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr && r < R; r++) out[j * ldo + r] = reduce_tree(acc[r][j]);
}

static void tile_bf16_dot_avx512(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                                 size_t nt, size_t cols, float *out, size_t ldo) {
    switch (nt) {
    case 1: tile_dot(MATVEC_ROWS, 1, w, ws, nr, x, xs, cols, out, ldo); break;
    case 2: tile_dot(TILE_ROWS, 2, w, ws, nr, x, xs, cols, out, ldo); break;
    case 3: tile_dot(TILE_ROWS, 3, w, ws, nr, x, xs, cols, out, ldo); break;
    case 4: tile_dot(TILE_ROWS, 4, w, ws, nr, x, xs, cols, out, ldo); break;
    case 5: tile_dot(TILE_ROWS, 5, w, ws, nr, x, xs, cols, out, ldo); break;
    default: tile_dot(TILE_ROWS, TOKENS, w, ws, nr, x, xs, cols, out, ldo); break;
    }
}

/* finch_act_to_bf16's bits: vcvtneps2bf16 rounds to nearest even, makes
 * denormals zero and NaNs quiet (measured on every pattern class). */
static void act_to_bf16_avx512(const float *x, void *out, size_t n) {
    uint16_t *h = out;
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(h + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(h + i, m, v);
    }
}

const finch_bf16_dot finch_bf16_dot_avx512 = {
    {.fn = tile_bf16_dot_avx512, .rows = TILE_ROWS, .tokens = TOKENS, .matvec_rows = MATVEC_ROWS},
    act_to_bf16_avx512,
};
