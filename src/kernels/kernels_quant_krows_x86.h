/* kernels_quant_krows_x86.h - decode's matvec for the K-quants (Q2_K ..
 * Q6_K): one token against KR_ROWS weight rows side by side (vec_dotr,
 * kernels_internal.h), included by kernels_avx2.c and kernels_avx512.c
 * after kernels_quant_x86.h, whose unpacking it shares.
 *
 * Per super-block and row: the quants (unsigned, in the activations'
 * order) meet the activations in vpmaddubsw (pairs to int16, exact) and
 * the row's scales, broadcast per sub-block by one vpshufb from the
 * decoded scale bytes (no general-purpose register, no array in memory),
 * in vpmaddwd (or on VNNI vpdpwssd, the same multiply-add into the
 * accumulator): 8 int32 lanes whose sum is the reference's exact isum;
 * the mins (or, for the shifted Q3_K/Q6_K, the scales) times the
 * activations' 16-value sums likewise.  The KR_ROWS rows' lanes are
 * reduced together (qx_hsum8) and finch_kq_step runs lane by lane = row
 * by row (qx_kstep8): the same exact integers and the same IEEE operations
 * in the same order as the scalar reference, so its bits.  One row's steps
 * are a dependency chain; eight rows side by side keep the units busy, and
 * the activations of a super-block are read from L1 once per row.
 *
 * The part below the include guard is a template: instantiated once per
 * including file with KR_NAME(n) (the functions' names), KR_ATTR (their
 * target) and KR_MADD_ADD(acc, p16, sc16) (acc + vpmaddwd(p16, sc16)),
 * and, in kernels_avx512.c, again with vpdpwssd for the VNNI table. */
#ifndef FINCH_KERNELS_QUANT_KROWS_X86_H
#define FINCH_KERNELS_QUANT_KROWS_X86_H

#include "kernels_quant_x86.h"

#define KR_ROWS FINCH_DOTR_ROWS /* rows side by side: one float lane each */
_Static_assert(KR_ROWS == 8, "one row per lane of a 256-bit float vector (qx_hsum8, qx_kstep8)");
#define KR_INLINE inline __attribute__((always_inline))

static inline __m256i kr_bcast128(__m128i v) { return _mm256_inserti128_si256(_mm256_castsi128_si256(v), v, 1); }

/* Q4_K/Q5_K's 12 scale bytes (finch_k4_scale_min) decoded at once: bytes
 * 0-7 the 8 scales, bytes 8-15 the 8 mins (6 bits each).  Scale/min j < 4
 * is the low 6 bits of s[j] / s[j + 4]; j >= 4 takes its low 4 bits from
 * s[j + 4] (scale: low nibble, min: high nibble) and bits 4-5 from the top
 * two bits of s[j - 4] / s[j].  Reads 16 bytes (the block goes on). */
static KR_INLINE __m128i kr_scales_q45(const uint8_t *s12) {
    __m128i s = _mm_loadu_si128((const __m128i *)s12);
    __m128i lo = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    __m128i hi = _mm_shuffle_epi8(s, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i keep = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
    const __m128i high_nib = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
    lo = _mm_or_si128(_mm_and_si128(lo, keep), _mm_and_si128(_mm_srli_epi16(lo, 4), high_nib));
    hi = _mm_srli_epi16(_mm_and_si128(hi, _mm_set1_epi8((char)0xC0)), 2); /* (s >> 6) << 4 */
    return _mm_or_si128(lo, hi);
}

/* vpshufb indices: every int16 lane = byte s of the source (< 16, both
 * 128-bit halves alike), zero-extended. */
static KR_INLINE __m256i kr_byte_idx(int s) { return _mm256_set1_epi16((short)(0x8000 | s)); }
/* Low half: byte s0, high half: byte s1, as int16 lanes. */
static KR_INLINE __m256i kr_byte_idx2(int s0, int s1) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(0x8000 | s0))),
                                   _mm_set1_epi16((short)(0x8000 | s1)), 1);
}
/* Low half: int16 lane j0 of the source half, high half: lane j1. */
static KR_INLINE __m256i kr_i16_idx2(int j0, int j1) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(2 * j0 | (2 * j0 + 1) << 8))),
                                   _mm_set1_epi16((short)(2 * j1 | (2 * j1 + 1) << 8)), 1);
}

/* 16 int16 scales of 16-value sub-blocks (Q2_K, Q3_K, Q6_K) as the pair
 * for values 32i .. 32i + 31: sub-block 2i in the low half, 2i + 1 in the
 * high half.  lo8/hi8: scales 0-7 / 8-15 in both halves. */
static KR_INLINE __m256i kr_scale_pair16(__m256i lo8, __m256i hi8, int i) {
    return _mm256_shuffle_epi8(i < 4 ? lo8 : hi8, kr_i16_idx2(2 * (i % 4), 2 * (i % 4) + 1));
}

static KR_INLINE size_t kr_block_bytes(finch_dtype t) {
    switch (t) {
    case FINCH_Q2_K: return sizeof(finch_block_q2_K);
    case FINCH_Q3_K: return sizeof(finch_block_q3_K);
    case FINCH_Q4_K: return sizeof(finch_block_q4_K);
    case FINCH_Q5_K: return sizeof(finch_block_q5_K);
    default: return sizeof(finch_block_q6_K);
    }
}

/* The block's d and dmin (f16; dmin 0 where the type has none). */
static KR_INLINE void kr_block_d(finch_dtype t, const uint8_t *blk, uint16_t *d, uint16_t *dmin) {
    switch (t) {
    case FINCH_Q2_K: *d = ((const finch_block_q2_K *)blk)->d, *dmin = ((const finch_block_q2_K *)blk)->dmin; break;
    case FINCH_Q3_K: *d = ((const finch_block_q3_K *)blk)->d, *dmin = 0; break;
    case FINCH_Q4_K: *d = ((const finch_block_q4_K *)blk)->d, *dmin = ((const finch_block_q4_K *)blk)->dmin; break;
    case FINCH_Q5_K: *d = ((const finch_block_q5_K *)blk)->d, *dmin = ((const finch_block_q5_K *)blk)->dmin; break;
    default: *d = ((const finch_block_q6_K *)blk)->d, *dmin = 0; break;
    }
}

static KR_INLINE int kr_shift(finch_dtype t) { return t == FINCH_Q6_K ? 32 : t == FINCH_Q3_K ? 4 : 0; }

#ifdef __AVX512BW__
/* vpshufb / vpsllvw index of int16 lanes: 128-bit lane l's words all
 * v[l] (as 16-bit patterns). */
static KR_INLINE __m512i kr_words4(unsigned v0, unsigned v1, unsigned v2, unsigned v3) {
#define KR_W2(v) (int)((v) | (v) << 16)
    return _mm512_setr_epi32(KR_W2(v0), KR_W2(v0), KR_W2(v0), KR_W2(v0), KR_W2(v1), KR_W2(v1), KR_W2(v1), KR_W2(v1),
                             KR_W2(v2), KR_W2(v2), KR_W2(v2), KR_W2(v2), KR_W2(v3), KR_W2(v3), KR_W2(v3), KR_W2(v3));
#undef KR_W2
}
/* vpshufb index: int16 word m of each 128-bit lane's source, per lane. */
static KR_INLINE unsigned kr_word_of(int m) { return (unsigned)(2 * m | (2 * m + 1) << 8); }
/* The words of v shifted left by lo (words 0-15) and hi (words 16-31), or
 * right by -lo and -hi: both >= 0 or both <= 0. */
static KR_INLINE __m512i kr_shift_halves(__m512i v, int lo, int hi) {
    if (lo > 0 || hi > 0) return _mm512_sllv_epi16(v, kr_words4((unsigned)lo, (unsigned)lo, (unsigned)hi, (unsigned)hi));
    return _mm512_srlv_epi16(v, kr_words4((unsigned)-lo, (unsigned)-lo, (unsigned)-hi, (unsigned)-hi));
}
#endif

#endif

/* ------------------------------------------------------------- template */

#ifdef KR_MADD_ADD512
/* Q4_K, Q5_K and Q6_K in 512-bit vectors: 64 values (two 32-value or four
 * 16-value sub-blocks) per vpmaddubsw, the scales per 128-bit lane by one
 * vpshufb; the same exact sums as kr_block's 256-bit ones, folded to 8
 * lanes at the end. */
static KR_ATTR KR_INLINE __m256i KR_NAME(kr_block_zmm)(finch_dtype t, const uint8_t *blk, const finch_block_q8_K *x,
                                                       __m256i *ms) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    __m512i a = _mm512_setzero_si512();
    if (t == FINCH_Q6_K) {
        const finch_block_q6_K *w = (const void *)blk;
        __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
        __m512i lo8 = _mm512_broadcast_i32x4(_mm256_castsi256_si128(s16));
        __m512i hi8 = _mm512_broadcast_i32x4(_mm256_extracti128_si256(s16, 1));
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) { /* values 64k..: j = 2(k % 2), +1 of qx_q6_values */
            __m512i l4 = _mm512_loadu_si512(w->ql + 64 * (k / 2));
            __m512i nib = _mm512_and_si512(k % 2 ? _mm512_srli_epi16(l4, 4) : l4, m4);
            __m512i qh = _mm512_broadcast_i64x4(qx_load(w->qh + 32 * (k / 2)));
            /* bits 2j, 2j + 1 of qh to bits 4, 5 */
            __m512i top = k % 2 ? kr_shift_halves(qh, 0, -2) : kr_shift_halves(qh, 4, 2);
            __m512i q = _mm512_or_si512(nib, _mm512_and_si512(top, _mm512_set1_epi8(0x30)));
            int m = (4 * k) % 8;
            __m512i sc = _mm512_shuffle_epi8(k < 2 ? lo8 : hi8, kr_words4(kr_word_of(m), kr_word_of(m + 1),
                                                                          kr_word_of(m + 2), kr_word_of(m + 3)));
            a = KR_MADD_ADD512(a, _mm512_maddubs_epi16(q, _mm512_loadu_si512(x->qs + 64 * k)), sc);
        }
        *ms = _mm256_madd_epi16(s16, qx_load(x->bsums));
    } else {
        const finch_block_q4_K *w4 = (const void *)blk;
        const finch_block_q5_K *w5 = (const void *)blk;
        __m128i sm = kr_scales_q45(w4->scales);
        __m512i sm4 = _mm512_broadcast_i32x4(sm), qh = _mm512_setzero_si512();
        if (t == FINCH_Q5_K) qh = _mm512_broadcast_i64x4(qx_load(w5->qh));
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) { /* low nibbles in the low half, high in the high */
            __m512i v = _mm512_broadcast_i64x4(qx_load((t == FINCH_Q5_K ? w5->qs : w4->qs) + 32 * c));
            __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xFFFF0000u, v, 4), m4);
            if (t == FINCH_Q5_K) /* bit 2c (low half), 2c + 1 (high half) of qh to bit 4 */
                q = _mm512_or_si512(q, _mm512_and_si512(kr_shift_halves(qh, 4 - 2 * c, 3 - 2 * c), _mm512_set1_epi8(0x10)));
            unsigned s0 = 0x8000u | (unsigned)(2 * c), s1 = 0x8000u | (unsigned)(2 * c + 1);
            a = KR_MADD_ADD512(a, _mm512_maddubs_epi16(q, _mm512_loadu_si512(x->qs + 64 * c)),
                               _mm512_shuffle_epi8(sm4, kr_words4(s0, s0, s1, s1)));
        }
        const __m256i mins = _mm256_setr_epi8(8, -1, 8, -1, 9, -1, 9, -1, 10, -1, 10, -1, 11, -1, 11, -1,
                                              12, -1, 12, -1, 13, -1, 13, -1, 14, -1, 14, -1, 15, -1, 15, -1);
        *ms = _mm256_madd_epi16(_mm256_shuffle_epi8(kr_bcast128(sm), mins), qx_load(x->bsums));
    }
    return _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
}
#endif

/* One row's super-block against the token's: *acc, 8 int32 lanes summing
 * to the exact sum of scale * q * x, and *ms, 8 lanes summing to the mins
 * (Q3_K/Q6_K: the scales) times the activations' 16-value sums. */
static KR_ATTR KR_INLINE void KR_NAME(kr_block)(finch_dtype t, const uint8_t *blk, const finch_block_q8_K *x,
                                                __m256i *acc, __m256i *ms) {
#ifdef KR_MADD_ADD512
    if (t == FINCH_Q4_K || t == FINCH_Q5_K || t == FINCH_Q6_K) {
        *acc = KR_NAME(kr_block_zmm)(t, blk, x, ms);
        return;
    }
#endif
    __m256i a = _mm256_setzero_si256();
    if (t == FINCH_Q4_K || t == FINCH_Q5_K) {
        const finch_block_q4_K *w4 = (const void *)blk;
        const finch_block_q5_K *w5 = (const void *)blk;
        __m256i sm = kr_bcast128(kr_scales_q45(w4->scales)), qh; /* same offset in Q5_K */
        if (t == FINCH_Q5_K) qh = qx_load(w5->qh);
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            qx_q45_chunk(t == FINCH_Q5_K ? w5->qs : w4->qs, t == FINCH_Q5_K ? &qh : NULL, c, &lo, &hi);
            a = KR_MADD_ADD(a, _mm256_maddubs_epi16(lo, qx_load(x->qs + 64 * c)), _mm256_shuffle_epi8(sm, kr_byte_idx(2 * c)));
            a = KR_MADD_ADD(a, _mm256_maddubs_epi16(hi, qx_load(x->qs + 64 * c + 32)),
                            _mm256_shuffle_epi8(sm, kr_byte_idx(2 * c + 1)));
        }
        /* the mins (bytes 8-15), each for its two 16-value sums */
        const __m256i mins = _mm256_setr_epi8(8, -1, 8, -1, 9, -1, 9, -1, 10, -1, 10, -1, 11, -1, 11, -1,
                                              12, -1, 12, -1, 13, -1, 13, -1, 14, -1, 14, -1, 15, -1, 15, -1);
        *ms = _mm256_madd_epi16(_mm256_shuffle_epi8(sm, mins), qx_load(x->bsums));
    } else if (t == FINCH_Q2_K) {
        const finch_block_q2_K *w = (const void *)blk;
        __m128i s = _mm_loadu_si128((const __m128i *)w->scales);
        __m256i sc = kr_bcast128(_mm_and_si128(s, _mm_set1_epi8(0xF)));
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)
            a = KR_MADD_ADD(a, _mm256_maddubs_epi16(qx_q23_values(w->qs, NULL, i), qx_load(x->qs + 32 * i)),
                            _mm256_shuffle_epi8(sc, kr_byte_idx2(2 * i, 2 * i + 1)));
        __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0xF)));
        *ms = _mm256_madd_epi16(mn, qx_load(x->bsums));
    } else { /* Q3_K, Q6_K: signed 16-value scales, quants shifted */
        __m256i s16;
        if (t == FINCH_Q3_K) {
            s16 = qx_scales_q3(((const finch_block_q3_K *)blk)->scales);
        } else {
            s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((const finch_block_q6_K *)blk)->scales));
        }
        __m256i lo8 = _mm256_permute4x64_epi64(s16, 0x44), hi8 = _mm256_permute4x64_epi64(s16, 0xEE);
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
            __m256i q = t == FINCH_Q3_K ? qx_q23_values(((const finch_block_q3_K *)blk)->qs,
                                                        ((const finch_block_q3_K *)blk)->hmask, i)
                                        : qx_q6_values((const void *)blk, i);
            a = KR_MADD_ADD(a, _mm256_maddubs_epi16(q, qx_load(x->qs + 32 * i)), kr_scale_pair16(lo8, hi8, i));
        }
        *ms = _mm256_madd_epi16(s16, qx_load(x->bsums));
    }
    *acc = a;
}

/* vec_dotr for type t: rows r < nr (w_stride apart), KR_ROWS at a time
 * (a short last group repeats its last row), each output the reference's
 * bits. */
static KR_ATTR KR_INLINE void KR_NAME(kr_dotr)(finch_dtype t, const void *w, size_t ws, size_t nr, const void *vx,
                                               size_t n, float *out) {
    const size_t bytes = kr_block_bytes(t), nb = n / FINCH_QK_K;
    const finch_block_q8_K *x = vx;
    for (size_t r0 = 0; r0 < nr; r0 += KR_ROWS) {
        const uint8_t *row[KR_ROWS];
        for (size_t r = 0; r < KR_ROWS; r++) row[r] = finch_tile_row((const char *)w + r0 * ws, ws, r, nr - r0);
        __m256 sumf = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            __m256i acc[KR_ROWS], ms[KR_ROWS];
            uint16_t d[KR_ROWS], dmin[KR_ROWS];
            _Pragma("GCC unroll 8") for (size_t r = 0; r < KR_ROWS; r++) {
                const uint8_t *blk = row[r] + b * bytes;
                for (size_t o = 0; o < bytes; o += 64) finch_prefetch_row(row[r], b * bytes + o, nb * bytes, KR_ROWS * ws);
                KR_NAME(kr_block)(t, blk, x + b, &acc[r], &ms[r]);
                kr_block_d(t, blk, &d[r], &dmin[r]);
            }
            sumf = qx_kstep8(qx_hsum8(acc), qx_hsum8(ms), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d)),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dmin)), _mm256_set1_ps(x[b].d),
                             kr_shift(t), sumf);
        }
        float r8[KR_ROWS];
        _mm256_storeu_ps(r8, sumf);
        for (size_t r = 0; r < KR_ROWS && r0 + r < nr; r++) out[r0 + r] = r8[r];
    }
}

#define KR_DOTR(T, name)                                                                                      \
    static KR_ATTR void KR_NAME(dotr_##name)(const void *w, size_t ws, size_t nr, const void *x, size_t n, \
                                             float *out) {                                                \
        KR_NAME(kr_dotr)(T, w, ws, nr, x, n, out);                                                        \
    }
KR_DOTR(FINCH_Q2_K, q2_K)
KR_DOTR(FINCH_Q3_K, q3_K)
KR_DOTR(FINCH_Q4_K, q4_K)
KR_DOTR(FINCH_Q5_K, q5_K)
KR_DOTR(FINCH_Q6_K, q6_K)
#undef KR_DOTR
#undef KR_NAME
#undef KR_ATTR
#undef KR_MADD_ADD
#undef KR_MADD_ADD512

/* The table entries (vec_dotr = {QX_VEC_DOTR_K}), for the instances
 * named with _x86 and _vnni. */
#define QX_VEC_DOTR_K                                                                            \
    [FINCH_Q2_K] = dotr_q2_K_x86, [FINCH_Q3_K] = dotr_q3_K_x86, [FINCH_Q4_K] = dotr_q4_K_x86, \
    [FINCH_Q5_K] = dotr_q5_K_x86, [FINCH_Q6_K] = dotr_q6_K_x86
#define QX_VEC_DOTR_K_VNNI                                                                          \
    [FINCH_Q2_K] = dotr_q2_K_vnni, [FINCH_Q3_K] = dotr_q3_K_vnni, [FINCH_Q4_K] = dotr_q4_K_vnni, \
    [FINCH_Q5_K] = dotr_q5_K_vnni, [FINCH_Q6_K] = dotr_q6_K_vnni
