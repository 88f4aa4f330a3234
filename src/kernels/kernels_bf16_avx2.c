/* kernels_bf16_avx2.c - BF16 weights in bf16 arithmetic on AVX2 + FMA:
 * the pair-lane order of kernels_bf16.c with FMAs, the bits of the scalar
 * twin finch_bf16_dot_ref and of vdpbf16ps (used by the AVX2 table; AVX-512
 * without BF16 keeps the fp32 arithmetic and its packed GEMM).
 *
 * A 256-bit load holds 16 bf16 columns, 8 pairs: shifting each 32-bit
 * element left by 16 gives the even columns as f32, masking off its low
 * half the odd ones (no shuffles).  Pair-lanes 0-7 of a 32-column step are
 * one accumulator, 8-15 a second.  vdpbf16ps's DAZ and FTZ (with x86's
 * tininess rule) are MXCSR's DAZ and FTZ bits, set (with rounding to
 * nearest) while the lanes accumulate and restored before they are summed
 * (the twin's sum neither reads nor makes denormals as zero).  ldmxcsr is
 * a volatile instruction to the compiler, which keeps the arithmetic on
 * its side (the tests compare the bits). */
#include "kernels_internal.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define MXCSR_DAZ 0x0040u
#define MXCSR_FTZ 0x8000u
#define MXCSR_RC 0x6000u /* rounding control: 00 = to nearest even */
/* 4 rows x 1 token, 8 accumulators: a second token would need 16, all of
 * AVX2's registers; batches reread the 4 rows from L1 per token. */
#define TOKENS 1
#define TILE_ROWS FINCH_TILE_ROWS
#define MATVEC_ROWS FINCH_TILE_ROWS

/* The even and odd columns of 16 bf16 values as f32. */
static ALWAYS_INLINE void split(__m256i v, __m256 *even, __m256 *odd) {
    *even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    *odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000u)));
}

/* Columns [c, c + 16) of a row; `tail`: zero past n (a constant after
 * inlining, so the main loop has no branch). */
static ALWAYS_INLINE __m256i load16(const uint16_t *row, size_t c, size_t n, bool tail) {
    if (!tail) return _mm256_loadu_si256((const __m256i *)(row + c));
    uint16_t buf[16] = {0};
    if (c < n) memcpy(buf, row + c, (n - c < 16 ? n - c : 16) * sizeof(uint16_t));
    return _mm256_loadu_si256((const __m256i *)buf);
}

/* The lanes (lo: 0-7, hi: 8-15) summed as the twin does. */
static ALWAYS_INLINE float reduce_tree(__m256 lo, __m256 hi) {
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* One 32-column step of R rows x T tokens into acc (2 per output). */
static ALWAYS_INLINE void step(size_t R, size_t T, const uint16_t *const *wr, const uint16_t *const *xt,
                               size_t c, size_t cols, bool tail, __m256 acc[][TOKENS][2]) {
#pragma GCC unroll 2
    for (size_t h = 0; h < 2; h++) {
        __m256 xe[TOKENS], xo[TOKENS];
#pragma GCC unroll 2
        for (size_t j = 0; j < T; j++) split(load16(xt[j], c + 16 * h, cols, tail), &xe[j], &xo[j]);
#pragma GCC unroll 4
        for (size_t r = 0; r < R; r++) {
            __m256 we, wo;
            split(load16(wr[r], c + 16 * h, cols, tail), &we, &wo);
#pragma GCC unroll 2
            for (size_t j = 0; j < T; j++) {
                acc[r][j][h] = _mm256_fmadd_ps(wo, xo[j], acc[r][j][h]);
                acc[r][j][h] = _mm256_fmadd_ps(we, xe[j], acc[r][j][h]);
            }
        }
    }
}

/* R rows x T tokens, two accumulators (pair-lanes 0-7, 8-15) per output. */
static ALWAYS_INLINE void tile_dot(size_t R, size_t T, const void *w, size_t ws, size_t nr,
                                   const void *x, size_t xs, size_t cols, float *out, size_t ldo) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr((csr | MXCSR_DAZ | MXCSR_FTZ) & ~MXCSR_RC);
    const uint16_t *wr[MATVEC_ROWS], *xt[TOKENS];
    __m256 acc[MATVEC_ROWS][TOKENS][2];
#pragma GCC unroll 4
    for (size_t r = 0; r < R; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
        for (size_t j = 0; j < T; j++) acc[r][j][0] = acc[r][j][1] = _mm256_setzero_ps();
    }
    for (size_t j = 0; j < T; j++) xt[j] = (const uint16_t *)((const char *)x + j * xs);
    const size_t row_bytes = cols * sizeof(uint16_t);
    size_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        if (T == 1)
#pragma GCC unroll 4
            for (size_t r = 0; r < R; r++) finch_prefetch_row(wr[r], c * sizeof(uint16_t), row_bytes, R * ws);
        step(R, T, wr, xt, c, cols, false, acc);
    }
    if (c < cols) step(R, T, wr, xt, c, cols, true, acc);
    _mm_setcsr(csr); /* the lane sums without DAZ and FTZ, as the twin's */
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr && r < R; r++) out[j * ldo + r] = reduce_tree(acc[r][j][0], acc[r][j][1]);
}

static void tile_bf16_dot_avx2(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                               size_t nt, size_t cols, float *out, size_t ldo) {
    (void)nt; /* always 1: the tile takes one token */
    tile_dot(MATVEC_ROWS, 1, w, ws, nr, x, xs, cols, out, ldo);
}

const finch_bf16_dot finch_bf16_dot_avx2 = {
    {.fn = tile_bf16_dot_avx2, .rows = TILE_ROWS, .tokens = TOKENS, .matvec_rows = MATVEC_ROWS},
    finch_act_to_bf16_row,
};
