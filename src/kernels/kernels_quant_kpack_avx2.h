/* kernels_quant_kpack_avx2.h - the packed K-quant matvec (kernels_quant_
 * kpack_x86.h) for the AVX2 table: the same block groups, each 64-byte
 * line taken as two 32-byte halves (rows 0-7, rows 8-15), one row per
 * int32 lane of a 256-bit vector; vpmaddubsw + vpmaddwd with ones for
 * vpdpbusd (exact: a pair of products is at most 2 x 63 x 128 < 2^15).
 * The same integers and finch_kq_step's float operations lane by lane, so
 * finch_vec_dot_ref's bits.  Included by kernels_avx2.c. */
#ifndef FINCH_KERNELS_QUANT_KPACK_AVX2_H
#define FINCH_KERNELS_QUANT_KPACK_AVX2_H

#include "kernels_wpack_k.h"

#include <immintrin.h>
#include <string.h>

#define KP2_INLINE inline __attribute__((always_inline))

static KP2_INLINE __m256i kp2_load(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
/* The token's 4 activations at p in every int32 lane. */
static KP2_INLINE __m256i kp2_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}
/* Bytes of v moved left by n bits (right by -n), as kp_shift. */
static KP2_INLINE __m256i kp2_shift(__m256i v, int n) {
    return n >= 0 ? _mm256_slli_epi16(v, n) : _mm256_srli_epi16(v, -n);
}
static KP2_INLINE __m256i kp2_or_and(__m256i a, __m256i b, __m256i c) { return _mm256_or_si256(a, _mm256_and_si256(b, c)); }
/* acc + per int32 lane the sum of 4 unsigned u x signed s byte products */
static KP2_INLINE __m256i kp2_dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

/* kp_scales45 in 32-byte halves: the same 256 bytes U. */
static KP2_INLINE void kp2_scales45(const uint8_t *p, uint8_t *u) {
    const __m256i m4 = _mm256_set1_epi8(15), top = _mm256_set1_epi8(0x30);
    for (int i = 0; i < 2; i++) {
        __m256i l0 = kp2_load(p + 32 * i), l1 = kp2_load(p + 64 + 32 * i), h = kp2_load(p + 128 + 32 * i);
        _mm256_store_si256((__m256i *)(u + 32 * i), kp2_or_and(_mm256_and_si256(l0, m4), _mm256_slli_epi16(h, 4), top));
        _mm256_store_si256((__m256i *)(u + 64 + 32 * i),
                           kp2_or_and(_mm256_and_si256(l1, m4), _mm256_slli_epi16(h, 2), top));
        _mm256_store_si256((__m256i *)(u + 128 + 32 * i),
                           kp2_or_and(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h, top));
        _mm256_store_si256((__m256i *)(u + 192 + 32 * i),
                           kp2_or_and(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_srli_epi16(h, 2), top));
    }
}

/* Rows 8hf .. 8hf + 7 of a Q4_K/Q5_K block group (u: its decoded scales),
 * as kp_block_q45. */
static KP2_INLINE void kp2_block_q45(finch_dtype t, const uint8_t *g, const uint8_t *u, int hf,
                                     const finch_block_q8_K *x, __m256i *isum, __m256i *m) {
    const __m256i m4 = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(0x10);
    const size_t unit = t == FINCH_Q5_K ? 320 : 256, qs_at = (t == FINCH_Q5_K ? 256 + 64 : 256) + 32 * hf;
    __m256i a0[4], a1[4], acc = _mm256_setzero_si256(), mm = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) a0[c] = a1[c] = _mm256_setzero_si256();
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
        __m256i h = _mm256_setzero_si256();
        if (t == FINCH_Q5_K) h = kp2_load(g + 256 + unit * j + 32 * hf);
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            __m256i v = kp2_load(g + qs_at + unit * j + 64 * c);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (t == FINCH_Q5_K) {
                lo = kp2_or_and(lo, kp2_shift(h, 4 - 2 * c), bit4);
                hi = kp2_or_and(hi, kp2_shift(h, 3 - 2 * c), bit4);
            }
            a0[c] = kp2_dot(a0[c], lo, kp2_bcast4(x->qs + 64 * c + 4 * j));
            a1[c] = kp2_dot(a1[c], hi, kp2_bcast4(x->qs + 64 * c + 32 + 4 * j));
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
        __m256i s0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(u + 16 * (2 * c) + 8 * hf)));
        __m256i s1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(u + 16 * (2 * c + 1) + 8 * hf)));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(a0[c], s0));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(a1[c], s1));
    }
    int16_t ps[8];
    for (int s = 0; s < 8; s++) ps[s] = (int16_t)(x->bsums[2 * s] + x->bsums[2 * s + 1]);
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
        __m256i mn = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(u + 128 + 32 * k + 16 * hf)));
        mm = _mm256_add_epi32(mm, _mm256_madd_epi16(mn, kp2_bcast4(ps + 2 * k)));
    }
    *isum = acc;
    *m = mm;
}

/* Rows 8hf .. 8hf + 7 of a Q6_K block group, as kp_block_q6. */
static KP2_INLINE void kp2_block_q6(const uint8_t *g, int hf, const finch_block_q8_K *x, __m256i *isum, __m256i *m) {
    const __m256i m4 = _mm256_set1_epi8(15), top = _mm256_set1_epi8(0x30);
    const uint8_t *sc = g + 32 + 16 * hf, *qs = g + 288 + 32 * hf;
    __m256i acc = _mm256_setzero_si256(), ms = _mm256_setzero_si256();
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)
    _Pragma("GCC unroll 2") for (int half = 0; half < 2; half++) {
        __m256i a[4];
        for (int j = 0; j < 4; j++) a[j] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
            int l4 = 4 * half + q;
            const uint8_t *p = qs + 64 * (24 * h + 3 * l4);
            __m256i v0 = kp2_load(p), v1 = kp2_load(p + 64), qh = kp2_load(p + 128);
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                __m256i v = j & 1 ? v1 : v0;
                __m256i nib = _mm256_and_si256(j >= 2 ? _mm256_srli_epi16(v, 4) : v, m4);
                __m256i q6 = kp2_or_and(nib, kp2_shift(qh, 4 - 2 * j), top);
                a[j] = kp2_dot(a[j], q6, kp2_bcast4(x->qs + 128 * h + 32 * j + 4 * l4));
            }
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            int s = 8 * h + 2 * j + half;
            __m256i p = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(sc + 32 * (s / 2))));
            __m256i scs = s % 2 ? _mm256_srai_epi32(p, 16) : _mm256_srai_epi32(_mm256_slli_epi32(p, 16), 16);
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(a[j], scs));
        }
    }
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        __m256i p = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(sc + 32 * k)));
        ms = _mm256_add_epi32(ms, _mm256_madd_epi16(p, kp2_bcast4(x->bsums + 2 * k)));
    }
    *isum = _mm256_sub_epi32(acc, _mm256_slli_epi32(ms, 5));
    *m = _mm256_setzero_si256();
}

/* Type t's packed matvec: finch_kq_step per block group, 8 lanes per half. */
static KP2_INLINE void kp2_dotp(finch_dtype t, const void *group, size_t cols, const void *vx, float *out) {
    const finch_block_q8_K *x = vx;
    const size_t gb = FINCH_WPACK_ROWS * finch_quant_traits_of(t)->bytes;
    _Alignas(32) uint8_t u[256];
    __m256 sumf[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (size_t b = 0; b < cols / FINCH_QK_K; b++) {
        const uint8_t *g = (const uint8_t *)group + b * gb;
        if (t != FINCH_Q6_K) kp2_scales45(g + 64, u);
        for (int hf = 0; hf < 2; hf++) {
            __m256i isum, m;
            __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16 * hf))), dmin = _mm256_setzero_ps();
            if (t == FINCH_Q6_K) {
                kp2_block_q6(g, hf, x + b, &isum, &m);
            } else {
                kp2_block_q45(t, g, u, hf, x + b, &isum, &m);
                dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 32 + 16 * hf)));
            }
            __m256 xd = _mm256_set1_ps(x[b].d);
            __m256 dd = _mm256_mul_ps(d, xd), dm = _mm256_mul_ps(dmin, xd);
            __m256 step =
                _mm256_sub_ps(_mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum)), _mm256_mul_ps(dm, _mm256_cvtepi32_ps(m)));
            sumf[hf] = _mm256_add_ps(sumf[hf], step);
        }
    }
    _mm256_storeu_ps(out, sumf[0]);
    _mm256_storeu_ps(out + 8, sumf[1]);
}

#define KP2_DOTP(T, name)                                                                  \
    static void dotp_##name##_avx2(const void *g, size_t cols, const void *x, float *out) { \
        kp2_dotp(T, g, cols, x, out);                                                      \
    }
KP2_DOTP(FINCH_Q4_K, q4_K)
KP2_DOTP(FINCH_Q5_K, q5_K)
KP2_DOTP(FINCH_Q6_K, q6_K)
#undef KP2_DOTP

/* The table entries (vec_dotp = {QX_VEC_DOTP_K_AVX2}). */
#define QX_VEC_DOTP_K_AVX2 \
    [FINCH_Q4_K] = dotp_q4_K_avx2, [FINCH_Q5_K] = dotp_q5_K_avx2, [FINCH_Q6_K] = dotp_q6_K_avx2

#endif
