/* kernels_quant_x86.h - 256-bit integer dot products of quantized weight
 * rows with their partner-quantized activations (quants.h), included by
 * kernels_avx2.c and kernels_avx512.c (each compiles them with its own
 * flags; the AVX-512 table uses these 256-bit loops too).
 *
 * Each one is the twin of the scalar reference in quants.c: the same exact
 * integer sum per block (or super-block) and then the same float steps in
 * the same order, so the result is bit-identical (tests/test_quants.c).
 * Products go through vpmaddubsw (unsigned x signed bytes, pairs summed to
 * int16) and vpmaddwd (to int32): no sum can saturate because weights are
 * at most 63 in magnitude (Q6_K shifted to 0..63) and activations at most
 * 127 (ggml's quantizers never produce -128, which the sign trick of the
 * signed Q4_0 product would need). */
#ifndef FINCH_KERNELS_QUANT_X86_H
#define FINCH_KERNELS_QUANT_X86_H

#include "quants.h"

#include <immintrin.h>

static inline int32_t qx_hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Unsigned bytes u times signed bytes b: 8 int32 lanes, lane k the sum of
 * bytes 4k .. 4k+3. */
static inline __m256i qx_dot_u8(__m256i u, __m256i b) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, b), _mm256_set1_epi16(1));
}

static inline __m256i qx_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Unsigned bytes u times signed bytes b, pairs summed (int16, exact: |u|
 * <= 63, |b| <= 127), then times the int16 scales sc and pairs summed
 * again: 8 int32 lanes of sc-weighted sums (exact). */
static inline __m256i qx_dot_scaled(__m256i u, __m256i b, __m256i sc) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, b), sc);
}

/* sum_g bsums[g] * m[g] over 16 groups (int16 x int16, exact in int32). */
static inline int32_t qx_bsum_dot(const int16_t *bsums, __m256i m16) {
    return qx_hsum(_mm256_madd_epi16(qx_load(bsums), m16));
}
static inline float qx_f16(uint16_t h) { return _cvtsh_ss(h); } /* exact, as finch_f16_to_f32 */

static float dot_q4_0_x86(const void *vw, const void *vx, size_t n) {
    const finch_block_q4_0 *w = vw;
    const finch_block_q8_0 *x = vx;
    const __m128i m4 = _mm_set1_epi8(0xF);
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        __m128i q = _mm_loadu_si128((const __m128i *)w[b].qs);
        __m256i wq = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)),
                                             _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
        wq = _mm256_sub_epi8(wq, _mm256_set1_epi8(8));
        __m256i xq = qx_load(x[b].qs);
        /* |w| * (x with w's sign): unsigned x signed */
        int sumi = qx_hsum(qx_dot_u8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq)));
        sumf += (float)sumi * qx_f16(w[b].d) * qx_f16(x[b].d);
    }
    return sumf;
}

/* Q4_K and Q5_K: 4 chunks of 64 values, each the low and the high nibbles
 * of 32 bytes (plus the fifth bit from qh for Q5_K). */
static inline float dot_q45_K_x86(const finch_block_q4_K *w4, const finch_block_q5_K *w5,
                                  const finch_block_q8_K *x, float sumf) {
    const uint8_t *scales = w4 ? w4->scales : w5->scales, *qs = w4 ? w4->qs : w5->qs;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    __m256i qh = w5 ? qx_load(w5->qh) : _mm256_setzero_si256();
    int sc[8], mn[8];
    int16_t mn16[16];
    for (int s = 0; s < 8; s++) {
        finch_k4_scale_min(s, scales, &sc[s], &mn[s]);
        mn16[2 * s] = mn16[2 * s + 1] = (int16_t)mn[s];
    }
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        __m256i q = qx_load(qs + 32 * c);
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (w5) {
            __m256i b0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
            __m256i b1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(b0, 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(b1, 4));
        }
        acc = _mm256_add_epi32(acc, qx_dot_scaled(lo, qx_load(x->qs + 64 * c), _mm256_set1_epi16((int16_t)sc[2 * c])));
        acc = _mm256_add_epi32(acc, qx_dot_scaled(hi, qx_load(x->qs + 64 * c + 32),
                                                  _mm256_set1_epi16((int16_t)sc[2 * c + 1])));
    }
    int32_t summ = qx_bsum_dot(x->bsums, qx_load(mn16));
    uint16_t d = w4 ? w4->d : w5->d, dmin = w4 ? w4->dmin : w5->dmin;
    return finch_kq_step(sumf, qx_f16(d) * x->d, qx_hsum(acc), qx_f16(dmin) * x->d, summ);
}

static float dot_q4_K_x86(const void *vw, const void *vx, size_t n) {
    const finch_block_q4_K *w = vw;
    const finch_block_q8_K *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK_K; b++) sumf = dot_q45_K_x86(&w[b], NULL, &x[b], sumf);
    return sumf;
}

static float dot_q5_K_x86(const void *vw, const void *vx, size_t n) {
    const finch_block_q5_K *w = vw;
    const finch_block_q8_K *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK_K; b++) sumf = dot_q45_K_x86(NULL, &w[b], &x[b], sumf);
    return sumf;
}

/* Q6_K: the quants shifted to 0..63 (unsigned), 32 at a time = two
 * sub-blocks of 16 (lanes 0-3 and 4-7); the shift is taken back exactly
 * with the activations' 16-value sums: sum (q + 32) x - 32 sum x. */
static float dot_q6_K_x86(const void *vw, const void *vx, size_t n) {
    const finch_block_q6_K *w = vw;
    const finch_block_q8_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK_K; b++) {
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = qx_load(w[b].ql + 64 * h), ql1 = qx_load(w[b].ql + 64 * h + 32);
            __m256i qh = qx_load(w[b].qh + 32 * h);
            for (int j = 0; j < 4; j++) {
                __m256i l4 = j & 1 ? ql1 : ql0;
                __m256i nib = j >= 2 ? _mm256_and_si256(_mm256_srli_epi16(l4, 4), m4) : _mm256_and_si256(l4, m4);
                __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), m2);
                __m256i q = _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
                int s0 = 8 * h + 2 * j;
                __m256i sc = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(w[b].scales[s0])),
                                                     _mm_set1_epi16(w[b].scales[s0 + 1]), 1);
                acc = _mm256_add_epi32(acc, qx_dot_scaled(q, qx_load(x[b].qs + 128 * h + 32 * j), sc));
            }
        }
        int32_t shift = qx_bsum_dot(x[b].bsums, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w[b].scales)));
        float xd = x[b].d;
        sumf = finch_kq_step(sumf, qx_f16(w[b].d) * xd, qx_hsum(acc) - 32 * shift, 0.0f * xd, 0);
    }
    return sumf;
}

/* The table entries: vec_dot = {QX_VEC_DOT}. */
#define QX_VEC_DOT \
    [FINCH_Q4_0] = dot_q4_0_x86, [FINCH_Q4_K] = dot_q4_K_x86, [FINCH_Q5_K] = dot_q5_K_x86, \
    [FINCH_Q6_K] = dot_q6_K_x86

#endif
