/* kernels_quant_kpack_x86.h - decode's matvec on packed K-quant groups
 * (kernels_wpack_k.h): 16 rows of Q4_K, Q5_K or Q6_K against one token
 * (Q8_K), AVX-512 (VNNI, and plain AVX-512BW), included by kernels_avx512.c
 * once per table (the template below the include guard).
 *
 * In a block group every 64-byte load holds 4 quant bytes of each of the
 * 16 rows (int32 lane r = row r), so vpdpbusd of the unsigned quants with
 * the token's 4 activations broadcast gives, lane by lane, each row's
 * partial sum: no horizontal reduction, no per-row pointer.  A sub-block's
 * sums times its scale (vpmulld, the scales decoded for 16 rows at once)
 * make each row's exact isum; the mins (Q4_K, Q5_K) or scales (Q6_K,
 * whose quants are stored + 32) times the activations' 16-value sums
 * (vpdpwssd) its exact m; then finch_kq_step's float operations lane by
 * lane, as qx_kstep8 does for 8 rows: the same integers and the same IEEE
 * operations in the same order as finch_vec_dot_ref, so its bits.  A block
 * group is read front to back (kernels_wpack_k.c orders the lines so), a
 * single stream that the hardware prefetches: prefetching every line 2-8
 * block groups ahead measured no faster. */
#ifndef FINCH_KERNELS_QUANT_KPACK_X86_H
#define FINCH_KERNELS_QUANT_KPACK_X86_H

#include "kernels_wpack_k.h"

#include <immintrin.h>
#include <string.h>

#define KP_INLINE inline __attribute__((always_inline))
_Static_assert(FINCH_WPACK_ROWS == 16, "one row per int32 lane of a 512-bit vector");

/* The token's 4 activations at p in every int32 lane. */
static KP_INLINE __m512i kp_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
/* Bytes of v moved left by n bits (right by -n), |n| < 8: the bits that
 * a field mask keeps come from the same byte. */
static KP_INLINE __m512i kp_shift(__m512i v, int n) {
    return n >= 0 ? _mm512_slli_epi16(v, (unsigned)n) : _mm512_srli_epi16(v, (unsigned)-n);
}
/* a | (b & c) */
static KP_INLINE __m512i kp_or_and(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi32(a, b, c, 0xF8); }

/* Q4_K/Q5_K: the packed scales (L, H: kernels_wpack_k.c) to U, 256
 * bytes: scales 0-7 (16 rows each) at u + 16s, the mins in row pairs (min
 * 2k, 2k + 1 of row r in bytes 2r, 2r + 1 of u + 128 + 32k).  Stored, so
 * that each scale is one vpmovzx from memory (an extract's lane must be
 * an immediate, which -O1 builds do not unroll into). */
static KP_INLINE void kp_scales45(const uint8_t *p, uint8_t *u) {
    const __m512i m4 = _mm512_set1_epi8(15), top = _mm512_set1_epi8(0x30);
    __m512i l0 = _mm512_loadu_si512(p), l1 = _mm512_loadu_si512(p + 64), h = _mm512_loadu_si512(p + 128);
    _mm512_store_si512(u, kp_or_and(_mm512_and_si512(l0, m4), _mm512_slli_epi16(h, 4), top));
    _mm512_store_si512(u + 64, kp_or_and(_mm512_and_si512(l1, m4), _mm512_slli_epi16(h, 2), top));
    _mm512_store_si512(u + 128, kp_or_and(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), h, top));
    _mm512_store_si512(u + 192, kp_or_and(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_srli_epi16(h, 2), top));
}

/* Scale s (0..7) of the 16 rows as int32 lanes. */
#define KP_SCALE45(u, s) _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)((u) + 16 * (s))))

#endif

/* ------------------------------------------------------------- template */
/* Instantiated once per table with KP_NAME(n) (the functions' names),
 * KP_ATTR (their target), KP_DPBUSD(acc, u8, s8) (acc + the sums of 4
 * unsigned x signed byte products per int32 lane) and KP_DPWSSD(acc, a,
 * b) (acc + the sums of 2 int16 products per lane): vpdpbusd/vpdpwssd on
 * VNNI, vpmaddubsw + vpmaddwd with ones / vpmaddwd + vpaddd on plain
 * AVX-512 (exact: a pair of products is at most 2 x 63 x 128 < 2^15). */

/* One Q4_K/Q5_K block group: *isum, *m per row (lane).  Per 4 values j
 * of each 32-byte chunk c of qs (values 64c + 4j .. (low nibbles, sub-
 * block 2c) and 64c + 32 + 4j .. (high nibbles, 2c + 1)): Q5_K's qh line
 * j, then the four qs lines, in memory order. */
static KP_ATTR KP_INLINE void KP_NAME(kp_block_q45)(finch_dtype t, const uint8_t *g, const finch_block_q8_K *x, __m512i *isum,
                                        __m512i *m) {
    const __m512i m4 = _mm512_set1_epi8(15), bit4 = _mm512_set1_epi8(0x10);
    const size_t unit = t == FINCH_Q5_K ? 320 : 256, qs_at = t == FINCH_Q5_K ? 256 + 64 : 256;
    _Alignas(64) uint8_t u[256];
    __m512i a0[4], a1[4], acc = _mm512_setzero_si512();
    kp_scales45(g + 64, u);
    for (int c = 0; c < 4; c++) a0[c] = a1[c] = _mm512_setzero_si512();
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
        __m512i h = _mm512_setzero_si512();
        if (t == FINCH_Q5_K) h = _mm512_loadu_si512(g + 256 + unit * j);
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            __m512i v = _mm512_loadu_si512(g + qs_at + unit * j + 64 * c);
            __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (t == FINCH_Q5_K) { /* bit 2c (low) and 2c + 1 (high) of qh to bit 4 */
                lo = kp_or_and(lo, kp_shift(h, 4 - 2 * c), bit4);
                hi = kp_or_and(hi, kp_shift(h, 3 - 2 * c), bit4);
            }
            a0[c] = KP_DPBUSD(a0[c], lo, kp_bcast4(x->qs + 64 * c + 4 * j));
            a1[c] = KP_DPBUSD(a1[c], hi, kp_bcast4(x->qs + 64 * c + 32 + 4 * j));
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(a0[c], KP_SCALE45(u, 2 * c)));
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(a1[c], KP_SCALE45(u, 2 * c + 1)));
    }
    /* min s meets bsums 2s and 2s + 1: their sum, paired as the mins are */
    int16_t ps[8];
    for (int s = 0; s < 8; s++) ps[s] = (int16_t)(x->bsums[2 * s] + x->bsums[2 * s + 1]);
    __m512i mm = _mm512_setzero_si512();
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)
        mm = KP_DPWSSD(mm, _mm512_cvtepu8_epi16(_mm256_load_si256((const __m256i *)(u + 128 + 32 * k))),
                                 kp_bcast4(ps + 2 * k));
    *isum = acc;
    *m = mm;
}

/* One Q6_K block group: *isum (the quants stored + 32, the 32 taken back
 * through the scales and bsums: exact) and *m = 0.  Per half h and 4
 * values l4 of each 32: ql's lines a = 0, 1 and qh's, in memory order,
 * which hold values 128h + 32j + 4l4 .. for j = 0..3 (sub-block 8h + 2j +
 * l4 / 4). */
static KP_ATTR KP_INLINE void KP_NAME(kp_block_q6)(const uint8_t *g, const finch_block_q8_K *x, __m512i *isum, __m512i *m) {
    const __m512i m4 = _mm512_set1_epi8(15), top = _mm512_set1_epi8(0x30);
    const uint8_t *sc = g + 32, *qs = g + 288;
    __m512i acc = _mm512_setzero_si512(), ms = _mm512_setzero_si512(), pair[8];
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)
    _Pragma("GCC unroll 2") for (int half = 0; half < 2; half++) {
        __m512i a[4];
        for (int j = 0; j < 4; j++) a[j] = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
            int l4 = 4 * half + q;
            const uint8_t *p = qs + 64 * (24 * h + 3 * l4);
            __m512i v0 = _mm512_loadu_si512(p), v1 = _mm512_loadu_si512(p + 64), qh = _mm512_loadu_si512(p + 128);
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                __m512i v = j & 1 ? v1 : v0;
                __m512i nib = _mm512_and_si512(j >= 2 ? _mm512_srli_epi16(v, 4) : v, m4);
                __m512i q6 = kp_or_and(nib, kp_shift(qh, 4 - 2 * j), top);
                a[j] = KP_DPBUSD(a[j], q6, kp_bcast4(x->qs + 128 * h + 32 * j + 4 * l4));
            }
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            int s = 8 * h + 2 * j + half; /* scales 2k, 2k + 1 of row r: int16 lane pair r of pair k */
            __m512i p = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(sc + 32 * (s / 2))));
            __m512i scs = s % 2 ? _mm512_srai_epi32(p, 16) : _mm512_srai_epi32(_mm512_slli_epi32(p, 16), 16);
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(a[j], scs));
        }
    }
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        pair[k] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(sc + 32 * k)));
        ms = KP_DPWSSD(ms, pair[k], kp_bcast4(x->bsums + 2 * k));
    }
    *isum = _mm512_sub_epi32(acc, _mm512_slli_epi32(ms, 5)); /* isum - 32 m */
    *m = _mm512_setzero_si512();
}

/* Type t's packed matvec: finch_kq_step per block group, 16 lanes. */
static KP_ATTR KP_INLINE void KP_NAME(kp_dotp)(finch_dtype t, const void *group, size_t cols, const void *vx, float *out) {
    const finch_block_q8_K *x = vx;
    const size_t gb = FINCH_WPACK_ROWS * finch_quant_traits_of(t)->bytes;
    __m512 sumf = _mm512_setzero_ps();
    for (size_t b = 0; b < cols / FINCH_QK_K; b++) {
        const uint8_t *g = (const uint8_t *)group + b * gb;
        __m512i isum, m;
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g)), dmin = _mm512_setzero_ps();
        if (t == FINCH_Q6_K) {
            KP_NAME(kp_block_q6)(g, x + b, &isum, &m);
        } else {
            KP_NAME(kp_block_q45)(t, g, x + b, &isum, &m);
            dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + 32)));
        }
        __m512 xd = _mm512_set1_ps(x[b].d);
        __m512 dd = _mm512_mul_ps(d, xd), dm = _mm512_mul_ps(dmin, xd);
        __m512 step =
            _mm512_sub_ps(_mm512_mul_ps(dd, _mm512_cvtepi32_ps(isum)), _mm512_mul_ps(dm, _mm512_cvtepi32_ps(m)));
        sumf = _mm512_add_ps(sumf, step);
    }
    _mm512_storeu_ps(out, sumf);
}

#define KP_DOTP(T, name)                                                                      \
    static KP_ATTR void KP_NAME(dotp_##name)(const void *g, size_t cols, const void *x, float *out) { \
        KP_NAME(kp_dotp)(T, g, cols, x, out);                                                     \
    }
KP_DOTP(FINCH_Q4_K, q4_K)
KP_DOTP(FINCH_Q5_K, q5_K)
KP_DOTP(FINCH_Q6_K, q6_K)
#undef KP_DOTP
#undef KP_NAME
#undef KP_ATTR
#undef KP_DPBUSD
#undef KP_DPWSSD

/* The table entries (vec_dotp = {QX_VEC_DOTP_K_VNNI}), for the instances
 * named with _vnni and _avx512. */
#define QX_VEC_DOTP_K_VNNI \
    [FINCH_Q4_K] = dotp_q4_K_vnni, [FINCH_Q5_K] = dotp_q5_K_vnni, [FINCH_Q6_K] = dotp_q6_K_vnni
#define QX_VEC_DOTP_K_AVX512 \
    [FINCH_Q4_K] = dotp_q4_K_avx512, [FINCH_Q5_K] = dotp_q5_K_avx512, [FINCH_Q6_K] = dotp_q6_K_avx512
