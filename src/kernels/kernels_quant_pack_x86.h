/* kernels_quant_pack_x86.h - decode's matvec on packed weights
 * (finch_vec_dotp_fn; the layout: kernels_wpack.c) for the 32-value types
 * Q4_0, IQ4_NL, Q4_1, Q5_0, Q5_1 on AVX-512 VNNI, included by
 * kernels_avx512.c after kernels_quant_rows_x86.h, and on AVX2 (the
 * AVX2 table and AVX-512 without VNNI) as two halves of 8 rows.
 *
 * Per block of the 16 rows: four 64-byte loads of quants (rows k, k+4,
 * k+8, k+12 in the 128-bit lanes of load k), the token's block broadcast
 * once (its 16 low and 16 high quants in every lane), vpdpbusd on the low
 * and high nibbles (unsigned quants x signed activations, int32, exact),
 * an in-lane 4 x 4 transpose-reduce that leaves row r's integer sum in
 * lane r, and one 32-byte load of the 16 rows' d (vcvtph2ps, lane r = row
 * r).  The offset of Q4_0 (8), Q5_0 (16) and IQ4_NL (its table + 128, to
 * make it unsigned) is taken back once per block through the sum of the
 * activation quants: sum (u - o) x = sum u x - o sum x, exact (the
 * accumulators start at -o times the activations' 4-byte sums, which the
 * reduction adds up to -o sum x in every row).  The float
 * steps are finch_vec_dot_ref's per block and in block order, lane by lane
 * (the same as qr_dotr16_vnni's): every out[r] has the reference's bits.
 *
 * AVX2: per block and half of 8 rows, each row's 16 quant bytes expanded
 * to its 32 values as qr_dotr8 does (vpmaddubsw, IQ4_NL's sign trick),
 * the 8 rows reduced together (qx_hsum8: row 8h + i in lane i) and one
 * 16-byte load of the half's d; the same float steps. */
#ifndef FINCH_KERNELS_QUANT_PACK_X86_H
#define FINCH_KERNELS_QUANT_PACK_X86_H

#include "kernels_quant_rows_x86.h"

/* One packed group, blocks [0, nb), 8 rows at a time: out[r], r < 16. */
static QR_INLINE void qp_dotp_avx2(finch_dtype t, const uint8_t *g, size_t nb, const void *vx, float *out) {
    const bool q81 = t == FINCH_Q4_1 || t == FINCH_Q5_1, q5 = t == FINCH_Q5_0 || t == FINCH_Q5_1;
    const int off = t == FINCH_Q4_0 ? 8 : t == FINCH_Q5_0 ? 16 : 0;
    const size_t bytes = FINCH_WPACK_ROWS * qr_block_bytes(t), oqh = finch_wpack_qh(t), oqs = finch_wpack_qs(t);
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
    __m256 sumf[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *p = g + b * bytes;
        for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch(p + FINCH_PREFETCH_BYTES + l, 0, FINCH_PREFETCH_LOCALITY);
        float dx, sx;
        __m256i xq = qr_xblock(t, vx, b, &dx, &sx);
        int32_t sumx = off ? qx_hsum(qx_dot_u8(ones8, xq)) : 0;
        for (size_t h = 0; h < 2; h++) {
            __m256i acc[QR_ROWS];
#pragma GCC unroll 8 /* the rows in registers */
            for (size_t i = 0; i < QR_ROWS; i++) {
                size_t s = finch_wpack_slot(8 * h + i);
                __m256i q = qr_nibbles(p + oqs + 16 * s);
                if (q5) q = _mm256_or_si256(q, qx_fifth_bits(p + oqh + 4 * s));
                if (t == FINCH_IQ4_NL) {
                    q = _mm256_shuffle_epi8(kv, q);
                    acc[i] = qx_dot_u8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
                } else {
                    acc[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xq), ones16);
                }
            }
            __m256i isum = qx_hsum8(acc);
            if (off) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(off * sumx));
            __m256 fsum = _mm256_cvtepi32_ps(isum), vdx = _mm256_set1_ps(dx);
            __m256 vdw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
            __m256 step; /* finch_vec_dot_ref's float step of each type (quants.c), as in qr_dotr8 */
            if (t == FINCH_Q4_0) step = _mm256_mul_ps(_mm256_mul_ps(fsum, vdw), vdx);
            else if (t == FINCH_IQ4_NL) step = _mm256_mul_ps(_mm256_mul_ps(vdx, vdw), fsum);
            else step = _mm256_mul_ps(_mm256_mul_ps(vdw, vdx), fsum);
            if (q81)
                step = _mm256_add_ps(step, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 32 + 16 * h))),
                                                         _mm256_set1_ps(sx)));
            sumf[h] = _mm256_add_ps(sumf[h], step);
        }
    }
    _mm256_storeu_ps(out, sumf[0]);
    _mm256_storeu_ps(out + 8, sumf[1]);
}

#define QP_DOTP_AVX2(T, name)                                                                    \
    static void dotp_##name##_x86(const void *g, size_t cols, const void *x, float *out) {         \
        qp_dotp_avx2(T, (const uint8_t *)g, cols / FINCH_QK, x, out);                            \
    }
QP_DOTP_AVX2(FINCH_Q4_0, q4_0)
QP_DOTP_AVX2(FINCH_Q4_1, q4_1)
QP_DOTP_AVX2(FINCH_Q5_0, q5_0)
QP_DOTP_AVX2(FINCH_Q5_1, q5_1)
QP_DOTP_AVX2(FINCH_IQ4_NL, iq4_nl)

/* The AVX2 table's (and AVX-512 without VNNI's) vec_dotp entries. */
#define QP_VEC_DOTP_X86                                                                        \
    [FINCH_Q4_0] = dotp_q4_0_x86, [FINCH_Q4_1] = dotp_q4_1_x86, [FINCH_Q5_0] = dotp_q5_0_x86, \
    [FINCH_Q5_1] = dotp_q5_1_x86, [FINCH_IQ4_NL] = dotp_iq4_nl_x86

#if defined(__AVX512BW__)
/* Row r's int32 sum in lane r from acc[k] (lane L: 4 partial sums of row
 * 4L + k). */
static QR_VNNI QR_INLINE __m512i qp_reduce4(const __m512i *acc) {
    __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[0], acc[1]), _mm512_unpackhi_epi32(acc[0], acc[1]));
    __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2], acc[3]), _mm512_unpackhi_epi32(acc[2], acc[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

/* One packed group, blocks [0, nb): out[r] for the 16 rows. */
static QR_VNNI QR_INLINE void qp_dotp_vnni(finch_dtype t, const uint8_t *g, size_t nb, const void *vx, float *out) {
    const bool q81 = t == FINCH_Q4_1 || t == FINCH_Q5_1, q5 = t == FINCH_Q5_0 || t == FINCH_Q5_1;
    const int off = t == FINCH_Q4_0 ? 8 : t == FINCH_Q5_0 ? 16 : t == FINCH_IQ4_NL ? 128 : 0;
    const size_t bytes = FINCH_WPACK_ROWS * qr_block_bytes(t);
    const size_t oqh = finch_wpack_qh(t), oqs = finch_wpack_qs(t);
    const __m512i kvu = _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)finch_iq4nl_values), _mm_set1_epi8((char)0x80)));
    const __m512i m4 = _mm512_set1_epi8(0xF), b16 = _mm512_set1_epi8(16), ones8 = _mm512_set1_epi8(1);
    __m512 sumf = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *p = g + b * bytes;
#pragma GCC unroll 6
        for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch(p + FINCH_PREFETCH_BYTES + l, 0, FINCH_PREFETCH_LOCALITY);
        float dx, sx;
        __m256i xq = qr_xblock(t, vx, b, &dx, &sx);
        __m512i xlo = _mm512_broadcast_i32x4(_mm256_castsi256_si128(xq));
        __m512i xhi = _mm512_broadcast_i32x4(_mm256_extracti128_si256(xq, 1)), acc[4];
        __m512i init = _mm512_setzero_si512(); /* -offset x the activations' 4-byte sums: in each row's sum once */
        if (off) {
            __m512i xs = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(init, ones8, xlo), ones8, xhi);
            init = _mm512_sub_epi32(init, _mm512_slli_epi32(xs, off == 8 ? 3 : off == 16 ? 4 : 7));
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512i q = _mm512_loadu_si512(p + oqs + 64 * k);
            __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            if (q5) { /* fifth bit j of a row's qh: its value j (low nibbles j < 16, high j - 16) */
                __m128i h = _mm_loadu_si128((const __m128i *)(p + oqh + 16 * k));
                __mmask64 ml = (__mmask64)_mm_cvtsi128_si64(_mm_cvtepi32_epi16(h));
                __mmask64 mh = (__mmask64)_mm_cvtsi128_si64(_mm_cvtepi32_epi16(_mm_srli_epi32(h, 16)));
                lo = _mm512_mask_add_epi8(lo, ml, lo, b16);
                hi = _mm512_mask_add_epi8(hi, mh, hi, b16);
            }
            if (t == FINCH_IQ4_NL) lo = _mm512_shuffle_epi8(kvu, lo), hi = _mm512_shuffle_epi8(kvu, hi);
            acc[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(init, lo, xlo), hi, xhi);
        }
        __m512i isum = qp_reduce4(acc);
        __m512 fsum = _mm512_cvtepi32_ps(isum), vdx = _mm512_set1_ps(dx);
        __m512 vdw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        __m512 step; /* finch_vec_dot_ref's float step of each type (quants.c), as in qr_dotr16_vnni */
        if (t == FINCH_Q4_0) step = _mm512_mul_ps(_mm512_mul_ps(fsum, vdw), vdx);
        else if (t == FINCH_IQ4_NL) step = _mm512_mul_ps(_mm512_mul_ps(vdx, vdw), fsum);
        else step = _mm512_mul_ps(_mm512_mul_ps(vdw, vdx), fsum);
        if (q81)
            step = _mm512_add_ps(step, _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32))),
                                                     _mm512_set1_ps(sx)));
        sumf = _mm512_add_ps(sumf, step);
    }
    _mm512_storeu_ps(out, sumf);
}

#define QP_DOTP_VNNI(T, name)                                                                     \
    static QR_VNNI void dotp_##name##_vnni(const void *g, size_t cols, const void *x, float *out) { \
        qp_dotp_vnni(T, (const uint8_t *)g, cols / FINCH_QK, x, out);                             \
    }
QP_DOTP_VNNI(FINCH_Q4_0, q4_0)
QP_DOTP_VNNI(FINCH_Q4_1, q4_1)
QP_DOTP_VNNI(FINCH_Q5_0, q5_0)
QP_DOTP_VNNI(FINCH_Q5_1, q5_1)
QP_DOTP_VNNI(FINCH_IQ4_NL, iq4_nl)

/* The AVX-512 VNNI table's vec_dotp entries (the types a load packs for it). */
#define QP_VEC_DOTP_VNNI                                                                          \
    [FINCH_Q4_0] = dotp_q4_0_vnni, [FINCH_Q4_1] = dotp_q4_1_vnni, [FINCH_Q5_0] = dotp_q5_0_vnni, \
    [FINCH_Q5_1] = dotp_q5_1_vnni, [FINCH_IQ4_NL] = dotp_iq4_nl_vnni
#endif

#endif
