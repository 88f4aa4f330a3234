/* kernels_qgemm_pack_x86.h - the quantized GEMM's pack (kernels_internal.h)
 * in 256-bit code, shared by the AVX-512 VNNI loops (kernels_qgemm_x86.h)
 * and the AVX2 ones (kernels_qgemm_avx2.h): each includer compiles it with
 * its own flags and gives the pack loops its own transposer (tr: chunk c
 * of 16 rows' unpacked values v[r][c], 8 groups of 4 columns, into the
 * pack's groups q[8c .. 8c+7], lane r: row r).  Included after
 * kernels_quant_x86.h and the includer's ALWAYS_INLINE. */
#ifndef FINCH_KERNELS_QGEMM_PACK_X86_H
#define FINCH_KERNELS_QGEMM_PACK_X86_H

#include "kernels_internal.h"
#include "kernels_quant_x86.h"

typedef void (*qg_transpose_fn)(const __m256i (*v)[8], size_t c, uint8_t (*q)[FINCH_QG_ROWS][4]);

static inline int32_t qg_load32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A K-quant block's values as qx_unpack_k gives them (unsigned: Q3_K + 4,
 * Q6_K + 32), without its scales; IQ4_XS's + 128. */
static inline void qg_values_k(finch_dtype t, const void *blk, __m256i *q) {
    qx_kblock k;
    switch (t) {
    case FINCH_Q2_K: qx_unpack_q23_K(((const finch_block_q2_K *)blk)->qs, NULL, &k); break;
    case FINCH_Q3_K: {
        const finch_block_q3_K *b = blk;
        qx_unpack_q23_K(b->qs, b->hmask, &k);
        break;
    }
    case FINCH_IQ4_XS: { /* the table's signed values + 128 */
        const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
        for (int ib = 0; ib < 8; ib++)
            q[ib] = _mm256_xor_si256(_mm256_shuffle_epi8(kv, qx_nibbles(((const finch_block_iq4_xs *)blk)->qs + 16 * ib)),
                                     _mm256_set1_epi8((char)0x80));
        return;
    }
    case FINCH_Q4_K: qx_values_q45_K(((const finch_block_q4_K *)blk)->qs, NULL, q); return;
    case FINCH_Q5_K: {
        const finch_block_q5_K *b = blk;
        qx_values_q45_K(b->qs, b->qh, q);
        return;
    }
    default: qx_values_q6_K(blk, q); return;
    }
    memcpy(q, k.q, sizeof k.q);
}

/* Row r's scales: the reference's integers (finch_kblock_scales). */
static void qg_pack_scales(finch_dtype t, const void *blk, size_t r, finch_qg_kpack *p) {
    finch_kblock s;
    finch_kblock_scales(t, blk, &s);
    for (size_t i = 0; i < FINCH_QK_K / s.sub; i++) p->sc[i][r] = s.sc[i];
    const int *m = t == FINCH_Q6_K || t == FINCH_Q3_K ? s.sc : s.mn;
    for (size_t j = 0; j < 8; j++) {
        p->mp[j][r][0] = (int16_t)(s.sub == 32 ? m[j] : m[2 * j]);
        p->mp[j][r][1] = (int16_t)(s.sub == 32 ? m[j] : m[2 * j + 1]);
    }
    p->d[r] = s.d;
    p->dmin[r] = s.dmin;
}

static ALWAYS_INLINE void qg_pack_k(qg_transpose_fn tr, finch_dtype t, const void *w, size_t ws, size_t nr, size_t cols, void *vpack) {
    finch_qg_kpack *p = vpack;
    size_t bytes = finch_quant_traits_of(t)->bytes;
    __m256i v[FINCH_QG_ROWS][8];
    for (size_t b = 0; b < cols / FINCH_QK_K; b++, p++) {
        for (size_t r = 0; r < FINCH_QG_ROWS; r++) {
            const char *blk = (const char *)finch_tile_row(w, ws, r, nr) + b * bytes;
            qg_values_k(t, blk, v[r]);
            qg_pack_scales(t, blk, r, p);
        }
        for (size_t c = 0; c < 8; c++) tr((const __m256i (*)[8])v, c, p->q);
    }
}

/* One 32-value block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or IQ4_NL as 32
 * unsigned values (plus finch_qgemm_offset) and its f16 scale d and min m
 * (Q4_1, Q5_1: the f16 after d; other types: ignored). */
static inline __m256i qg_unpack_b32(finch_dtype t, const uint8_t *blk, uint16_t *d, uint16_t *m) {
    memcpy(d, blk, 2);
    memcpy(m, blk + 2, 2);
    if (t == FINCH_Q8_0) /* int8 + 128 */
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), _mm256_set1_epi8((char)0x80));
    if (t == FINCH_Q5_0) return _mm256_or_si256(qx_nibbles(blk + 6), qx_fifth_bits(blk + 2));
    if (t == FINCH_Q5_1) return _mm256_or_si256(qx_nibbles(blk + 8), qx_fifth_bits(blk + 4));
    if (t == FINCH_Q4_0) return qx_nibbles(blk + 2);
    if (t == FINCH_Q4_1) return qx_nibbles(blk + 4);
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    return _mm256_xor_si256(_mm256_shuffle_epi8(kv, qx_nibbles(blk + 2)), _mm256_set1_epi8((char)0x80));
}

/* The same for row r of a packed block pk (kernels_wpack.c). */
static inline __m256i qg_unpack_b32_packed(finch_dtype t, const uint8_t *pk, size_t r, uint16_t *d, uint16_t *m) {
    size_t s = finch_wpack_slot(r);
    memcpy(d, pk + 2 * r, 2);
    memcpy(m, pk + 2 * FINCH_WPACK_ROWS + 2 * r, 2); /* (other types: quant bytes, ignored) */
    __m256i q = qx_nibbles(pk + finch_wpack_qs(t) + 16 * s);
    if (t == FINCH_Q5_0 || t == FINCH_Q5_1) return _mm256_or_si256(q, qx_fifth_bits(pk + finch_wpack_qh(t) + 4 * s));
    if (t != FINCH_IQ4_NL) return q;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    return _mm256_xor_si256(_mm256_shuffle_epi8(kv, q), _mm256_set1_epi8((char)0x80));
}

/* ws == 0: w is a packed group (finch_qgemm_pack_fn). */
static ALWAYS_INLINE void qg_pack_b32(qg_transpose_fn tr, finch_dtype t, const void *w, size_t ws, size_t nr, size_t cols, void *vpack) {
    finch_qg_bpack *p = vpack;
    size_t bytes = finch_quant_traits_of(t)->bytes, nb = cols / FINCH_QK;
    __m256i v[FINCH_QG_ROWS][8];
    for (size_t b0 = 0; b0 < nb; b0 += 8, p++) {
        size_t m = nb - b0 < 8 ? nb - b0 : 8;
        for (size_t r = 0; r < FINCH_QG_ROWS; r++) {
            const uint8_t *row = ws ? (const uint8_t *)finch_tile_row(w, ws, r, nr) + b0 * bytes : NULL;
            for (size_t i = 0; i < m; i++) {
                uint16_t d, mn;
                v[r][i] = ws ? qg_unpack_b32(t, row + i * bytes, &d, &mn)
                             : qg_unpack_b32_packed(t, (const uint8_t *)w + (b0 + i) * FINCH_WPACK_ROWS * bytes, r, &d, &mn);
                p->d[i][r] = qx_f16(d);
                p->m[i][r] = qx_f16(mn); /* read only for Q4_1/Q5_1 */
            }
        }
        for (size_t c = 0; c < m; c++) tr((const __m256i (*)[8])v, c, p->q);
    }
}

/* Tokens of a tile past the last are copies of it (computed, not stored). */
static inline size_t qg_tok(size_t t, size_t nt) { return t < nt ? t : nt - 1; }

#endif
