/* kernels_qgemm_avx2.h - the quantized GEMM (kernels_internal.h) on AVX2,
 * included by kernels_avx2.c: the VNNI GEMM's pack (kernels_qgemm_pack_x86.h)
 * read as two halves of 8 rows, one 32-byte vector per 4 columns.
 *
 * Without vpdpbusd the products go through vpmaddubsw (unsigned x signed
 * bytes, pairs summed to int16) and vpmaddwd (to int32).  The sum of two
 * vpmaddubsw results (8 products) must fit int16: 4 u 127 <= 32767, so u
 * (the packed, unsigned weight) <= 64 and activations |q| <= 127 (the
 * quantizers never give -128).  That holds for Q2_K..Q6_K (Q6_K + 32 <= 63)
 * and Q4_0, Q4_1, Q5_0, Q5_1 (<= 31); not for Q8_0 (+ 128) and the IQ4
 * types (+ 128), which keep their tiles and dot products here.  The
 * K-quants' sub-block scales (int8 at most) enter through vpmaddwd, in
 * place of its ones.  Integer sums are exact, so their order is free; the
 * float steps are the scalar reference's per row and token, in block order
 * (the same operations as the VNNI loops): every output has the bits of
 * finch_vec_dot_ref. */
#ifndef FINCH_KERNELS_QGEMM_AVX2_H
#define FINCH_KERNELS_QGEMM_AVX2_H

#include "kernels_internal.h"
#include "kernels_quant_x86.h"
#include "kernels_qgemm_pack_x86.h"

#define QG2_T 4 /* tokens per register tile: 3 x 4 accumulators */

/* 8 x 8 int32 transpose of rows h8 .. h8+7 (lane r of group g: row h8 + r). */
static inline void qg2_transpose8(const __m256i (*v)[8], size_t c, size_t h8, uint8_t (*q)[FINCH_QG_ROWS][4]) {
    __m256i t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[h8 + 2 * i][c], v[h8 + 2 * i + 1][c]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[h8 + 2 * i][c], v[h8 + 2 * i + 1][c]);
    }
    for (int h = 0; h < 2; h++) { /* s[4h + g]: rows 4h..4h+3, groups g and g + 4 */
        s[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
        s[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
        s[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
        s[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
    }
    for (int g = 0; g < 4; g++) {
        _mm256_storeu_si256((__m256i *)q[8 * c + g][h8], _mm256_permute2x128_si256(s[g], s[g + 4], 0x20));
        _mm256_storeu_si256((__m256i *)q[8 * c + g + 4][h8], _mm256_permute2x128_si256(s[g], s[g + 4], 0x31));
    }
}

static void qg2_transpose(const __m256i (*v)[8], size_t c, uint8_t (*q)[FINCH_QG_ROWS][4]) {
    qg2_transpose8(v, c, 0, q);
    qg2_transpose8(v, c, 8, q);
}

static void qgemm_pack_avx2(finch_dtype t, const void *w, size_t ws, size_t nr, size_t cols, void *pack) {
    if (finch_quant_traits_of(t)->block == FINCH_QK_K) qg_pack_k(qg2_transpose, t, w, ws, nr, cols, pack);
    else qg_pack_b32(qg2_transpose, t, w, ws, nr, cols, pack);
}

static inline __m256i qg2_bcast(const int8_t *p) { return _mm256_set1_epi32(qg_load32(p)); }

/* Groups g and g + 1 of half h against 4 activation bytes each: 8 products
 * per row in int16 (exact, above), then times the int16 pairs sc. */
static ALWAYS_INLINE __m256i qg2_dot2(const uint8_t (*q)[FINCH_QG_ROWS][4], size_t g, size_t h8,
                                      const int8_t *x, __m256i sc) {
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(qx_load(q[g][h8]), qg2_bcast(x)),
                                 _mm256_maddubs_epi16(qx_load(q[g + 1][h8]), qg2_bcast(x + 4)));
    return _mm256_madd_epi16(p, sc);
}

/* Rows' outputs of lanes r < nr (of 8) for nt tokens. */
static inline void qg2_store(const __m256 *sumf, size_t nt, float *out, size_t ldo, size_t nr) {
    for (size_t t = 0; t < nt; t++) {
        float v[8];
        _mm256_storeu_ps(v, sumf[t]);
        memcpy(out + t * ldo, v, nr * sizeof(float));
    }
}

/* One super-block of half h of a K-quant pack against QG2_T tokens: as the
 * VNNI qg_k_block, with the scales applied per pair of groups. */
static ALWAYS_INLINE void qg2_k_block(size_t sub, int shift, const finch_qg_kpack *p, size_t h8,
                                      const finch_block_q8_K *const *x, __m256 *sumf) {
    __m256i isum[QG2_T], m[QG2_T];
    for (size_t t = 0; t < QG2_T; t++) isum[t] = m[t] = _mm256_setzero_si256();
    for (size_t s = 0; s < FINCH_QK_K / sub; s++) {
        __m256i sc = qx_load(p->sc[s] + h8); /* int32 -> the same int16 in both halves */
        sc = _mm256_blend_epi16(sc, _mm256_slli_epi32(sc, 16), 0xAA);
        for (size_t g = s * sub / 4; g < (s + 1) * sub / 4; g += 2)
            for (size_t t = 0; t < QG2_T; t++)
                isum[t] = _mm256_add_epi32(isum[t], qg2_dot2(p->q, g, h8, x[t]->qs + 4 * g, sc));
    }
    for (size_t j = 0; j < 8; j++) {
        __m256i mp = qx_load(p->mp[j][h8]);
        for (size_t t = 0; t < QG2_T; t++)
            m[t] = _mm256_add_epi32(m[t], _mm256_madd_epi16(mp, _mm256_set1_epi32(qg_load32(x[t]->bsums + 2 * j))));
    }
    __m256 d = _mm256_loadu_ps(p->d + h8), dmin = _mm256_loadu_ps(p->dmin + h8);
    for (size_t t = 0; t < QG2_T; t++) {
        __m256 xd = _mm256_set1_ps(x[t]->d);
        __m256i is = isum[t], mm = m[t];
        if (shift) {
            is = _mm256_sub_epi32(is, _mm256_mullo_epi32(mm, _mm256_set1_epi32(shift)));
            mm = _mm256_setzero_si256();
        }
        __m256 step = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(d, xd), _mm256_cvtepi32_ps(is)),
                                    _mm256_mul_ps(_mm256_mul_ps(dmin, xd), _mm256_cvtepi32_ps(mm)));
        sumf[t] = _mm256_add_ps(sumf[t], step);
    }
}

static ALWAYS_INLINE void qg2_k_tile(size_t sub, int shift, const finch_qg_kpack *p, size_t nsb, size_t h8,
                                     const char *x, size_t xs, size_t nt, float *out, size_t ldo, size_t nr) {
    __m256 sumf[QG2_T];
    for (size_t t = 0; t < QG2_T; t++) sumf[t] = _mm256_setzero_ps();
    for (size_t b = 0; b < nsb; b++) {
        const finch_block_q8_K *xb[QG2_T];
        for (size_t t = 0; t < QG2_T; t++) xb[t] = (const finch_block_q8_K *)(x + qg_tok(t, nt) * xs) + b;
        qg2_k_block(sub, shift, p + b, h8, xb, sumf);
    }
    qg2_store(sumf, nt, out, ldo, nr);
}

static void qg2_k_tile16(int shift, const finch_qg_kpack *p, size_t nsb, size_t h8, const char *x, size_t xs,
                         size_t nt, float *out, size_t ldo, size_t nr) {
    qg2_k_tile(16, shift, p, nsb, h8, x, xs, nt, out, ldo, nr);
}
static void qg2_k_tile32(const finch_qg_kpack *p, size_t nsb, size_t h8, const char *x, size_t xs, size_t nt,
                         float *out, size_t ldo, size_t nr) {
    qg2_k_tile(32, 0, p, nsb, h8, x, xs, nt, out, ldo, nr);
}

static void qgemm_k_avx2(finch_dtype t, const void *pack, size_t cols, const void *x, size_t xs,
                         const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo, size_t nr) {
    (void)aux;
    int shift = t == FINCH_Q6_K ? 32 : t == FINCH_Q3_K ? 4 : 0;
    for (size_t h8 = 0; h8 < nr; h8 += 8)
        for (size_t i = 0; i < nt; i += QG2_T) {
            size_t n = nt - i < QG2_T ? nt - i : QG2_T, r = nr - h8 < 8 ? nr - h8 : 8;
            const char *xi = (const char *)x + i * xs;
            float *o = out + i * ldo + h8;
            if (t == FINCH_Q4_K || t == FINCH_Q5_K) qg2_k_tile32(pack, cols / FINCH_QK_K, h8, xi, xs, n, o, ldo, r);
            else qg2_k_tile16(shift, pack, cols / FINCH_QK_K, h8, xi, xs, n, o, ldo, r);
        }
}

/* The 32-value types of half h: as the VNNI qg_b32_tile (kind 0 Q4_0, 1
 * Q5_0, 2 Q4_1 and Q5_1). */
static ALWAYS_INLINE void qg2_b32_tile(int kind, const finch_qg_bpack *p, size_t nb, size_t h8, const char *x,
                                       size_t xs, const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo,
                                       size_t nr) {
    size_t xbs = kind == 2 ? sizeof(finch_block_q8_1) : sizeof(finch_block_q8_0), qoff = kind == 2 ? 4 : 2;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 sumf[QG2_T];
    const int8_t *xt[QG2_T];
    const finch_qg_xaux *at[QG2_T];
    for (size_t t = 0; t < QG2_T; t++) {
        sumf[t] = _mm256_setzero_ps();
        xt[t] = (const int8_t *)(x + qg_tok(t, nt) * xs + qoff);
        at[t] = aux + qg_tok(t, nt) * nb;
    }
    for (size_t b = 0; b < nb; b++) {
        const finch_qg_bpack *pb = p + b / 8;
        __m256i acc[QG2_T];
        for (size_t t = 0; t < QG2_T; t++) acc[t] = _mm256_setzero_si256();
        for (size_t g = 0; g < 8; g += 2)
            for (size_t t = 0; t < QG2_T; t++)
                acc[t] = _mm256_add_epi32(acc[t], qg2_dot2(pb->q, (b % 8) * 8 + g, h8, xt[t] + b * xbs + 4 * g, ones));
        __m256 dw = _mm256_loadu_ps(pb->d[b % 8] + h8), mw = _mm256_loadu_ps(pb->m[b % 8] + h8);
        for (size_t t = 0; t < QG2_T; t++) {
            __m256 is = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[t], _mm256_set1_epi32(at[t][b].corr)));
            __m256 dx = _mm256_set1_ps(at[t][b].d), step;
            if (kind == 0) step = _mm256_mul_ps(_mm256_mul_ps(is, dw), dx);
            else step = _mm256_mul_ps(_mm256_mul_ps(dw, dx), is);
            if (kind == 2) step = _mm256_add_ps(step, _mm256_mul_ps(mw, _mm256_set1_ps(at[t][b].s)));
            sumf[t] = _mm256_add_ps(sumf[t], step);
        }
    }
    qg2_store(sumf, nt, out, ldo, nr);
}

#define QG2_B32_TILE(kind, name)                                                                          \
    static void name(const finch_qg_bpack *p, size_t nb, size_t h8, const char *x, size_t xs,              \
                     const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo, size_t nr) {             \
        qg2_b32_tile(kind, p, nb, h8, x, xs, aux, nt, out, ldo, nr);                                       \
    }
QG2_B32_TILE(0, qg2_b32_tile_q4_0)
QG2_B32_TILE(1, qg2_b32_tile_d)
QG2_B32_TILE(2, qg2_b32_tile_q8_1)

static void qgemm_b32_avx2(finch_dtype t, const void *pack, size_t cols, const void *x, size_t xs,
                           const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo, size_t nr) {
    size_t nb = cols / FINCH_QK;
    for (size_t h8 = 0; h8 < nr; h8 += 8)
        for (size_t i = 0; i < nt; i += QG2_T) {
            size_t n = nt - i < QG2_T ? nt - i : QG2_T, r = nr - h8 < 8 ? nr - h8 : 8;
            const char *xi = (const char *)x + i * xs;
            const finch_qg_xaux *a = aux + i * nb;
            float *o = out + i * ldo + h8;
            if (t == FINCH_Q4_0) qg2_b32_tile_q4_0(pack, nb, h8, xi, xs, a, n, o, ldo, r);
            else if (t == FINCH_Q4_1 || t == FINCH_Q5_1) qg2_b32_tile_q8_1(pack, nb, h8, xi, xs, a, n, o, ldo, r);
            else qg2_b32_tile_d(pack, nb, h8, xi, xs, a, n, o, ldo, r);
        }
}

/* The AVX2 table's entries: qgemm = {QG_AVX2} (no Q8_0, IQ4_NL, IQ4_XS:
 * their unsigned values pass 64). */
#define QG_AVX2 \
    [FINCH_Q4_0] = qgemm_b32_avx2, [FINCH_Q5_0] = qgemm_b32_avx2, [FINCH_Q4_1] = qgemm_b32_avx2, \
    [FINCH_Q5_1] = qgemm_b32_avx2, [FINCH_Q2_K] = qgemm_k_avx2, [FINCH_Q3_K] = qgemm_k_avx2, \
    [FINCH_Q4_K] = qgemm_k_avx2, [FINCH_Q5_K] = qgemm_k_avx2, [FINCH_Q6_K] = qgemm_k_avx2

#endif
