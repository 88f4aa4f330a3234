/* kernels_qgemm_x86.h - the quantized GEMM (kernels_internal.h) on AVX-512
 * VNNI, included by kernels_avx512.c after kernels_quant_x86.h (whose
 * 256-bit unpacking it reuses) and the VNNI target attribute.
 *
 * The pack holds a tile of 16 weight rows: one 64-byte vector per 4
 * columns, 4 unsigned bytes of each row.  vpdpbusd multiplies it by 4
 * activation bytes broadcast to every lane (unsigned x signed, exact int32
 * sums that cannot overflow: |sum| < 2^31 for a whole super-block), so one
 * instruction does 64 multiply-adds for 16 outputs, and the weights, loaded
 * once, serve FINCH_QG_TOKENS tokens.  Then, per row and token (one lane
 * each), the scalar reference's integer sums (quants.c) and its float steps
 * in its order: the same bits. */
#ifndef FINCH_KERNELS_QGEMM_X86_H
#define FINCH_KERNELS_QGEMM_X86_H

#include "kernels_internal.h"
#include "kernels_quant_x86.h"
#include "kernels_qgemm_pack_x86.h"

#define QG_T FINCH_QG_TOKENS

/* Chunk c of 16 rows' unpacked values (v[r][c]: 32 bytes, 8 groups of 4
 * columns) as the pack's 8 groups q[8c .. 8c+7] (lane r: row r): two 8 x 8
 * transposes of int32, rows 0-7 in the low halves, 8-15 in the high. */
static inline void qg_transpose(const __m256i (*v)[8], size_t c, uint8_t (*q)[FINCH_QG_ROWS][4]) {
    __m512i z[8], t[8], s[8];
    for (int i = 0; i < 8; i++) z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(v[i][c]), v[i + 8][c], 1);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(z[2 * i], z[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(z[2 * i], z[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) /* s[4h + g]: rows 4h..4h+3 (and +8), groups g and g + 4 */
        for (int g = 0; g < 4; g++) {
            __m512i a = t[4 * h + (g >> 1)], b = t[4 * h + 2 + (g >> 1)];
            s[4 * h + g] = g & 1 ? _mm512_unpackhi_epi64(a, b) : _mm512_unpacklo_epi64(a, b);
        }
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int g = 0; g < 4; g++) {
        _mm512_storeu_si512(q[8 * c + g], _mm512_permutex2var_epi64(s[g], lo, s[g + 4]));
        _mm512_storeu_si512(q[8 * c + g + 4], _mm512_permutex2var_epi64(s[g], hi, s[g + 4]));
    }
}

static void qgemm_pack_avx512(finch_dtype t, const void *w, size_t ws, size_t nr, size_t cols, void *pack) {
    if (finch_quant_traits_of(t)->block == FINCH_QK_K) qg_pack_k(qg_transpose, t, w, ws, nr, cols, pack);
    else qg_pack_b32(qg_transpose, t, w, ws, nr, cols, pack);
}

/* One super-block of a K-quant pack against QG_T tokens (x[t]: their
 * blocks): isum = sum_s sc_s * (sum of sub-block s), m = sum_j mp_j .
 * (bsums 2j, 2j+1), then finch_kq_step per lane. */
static VNNI ALWAYS_INLINE void qg_k_block(size_t sub, int shift, const finch_qg_kpack *p,
                                          const finch_block_q8_K *const *x, __m512 *sumf) {
    __m512i isum[QG_T], acc[QG_T];
#pragma GCC unroll 8
    for (size_t t = 0; t < QG_T; t++) isum[t] = _mm512_setzero_si512();
    for (size_t s = 0; s < FINCH_QK_K / sub; s++) {
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++) acc[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (size_t g = s * sub / 4; g < (s + 1) * sub / 4; g++) {
            __m512i wq = _mm512_loadu_si512(p->q[g]);
#pragma GCC unroll 8
            for (size_t t = 0; t < QG_T; t++)
                acc[t] = _mm512_dpbusd_epi32(acc[t], wq, _mm512_set1_epi32(qg_load32(x[t]->qs + 4 * g)));
        }
        __m512i sc = _mm512_loadu_si512(p->sc[s]);
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(acc[t], sc));
    }
#pragma GCC unroll 8
    for (size_t t = 0; t < QG_T; t++) acc[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (size_t j = 0; j < 8; j++) {
        __m512i mp = _mm512_loadu_si512(p->mp[j]);
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++)
            acc[t] = _mm512_dpwssd_epi32(acc[t], mp, _mm512_set1_epi32(qg_load32(x[t]->bsums + 2 * j)));
    }
    __m512 d = _mm512_loadu_ps(p->d), dmin = _mm512_loadu_ps(p->dmin);
#pragma GCC unroll 8
    for (size_t t = 0; t < QG_T; t++) {
        __m512 xd = _mm512_set1_ps(x[t]->d);
        __m512i is = isum[t], m = acc[t];
        if (shift) {
            is = _mm512_sub_epi32(is, _mm512_mullo_epi32(m, _mm512_set1_epi32(shift)));
            m = _mm512_setzero_si512();
        }
        __m512 step = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(d, xd), _mm512_cvtepi32_ps(is)),
                                    _mm512_mul_ps(_mm512_mul_ps(dmin, xd), _mm512_cvtepi32_ps(m)));
        sumf[t] = _mm512_add_ps(sumf[t], step);
    }
}

static VNNI ALWAYS_INLINE void qg_k_tile(size_t sub, int shift, const finch_qg_kpack *p, size_t nsb,
                                         const char *x, size_t xs, size_t nt, float *out, size_t ldo,
                                         __mmask16 rows) {
    __m512 sumf[QG_T];
#pragma GCC unroll 8
    for (size_t t = 0; t < QG_T; t++) sumf[t] = _mm512_setzero_ps();
    for (size_t b = 0; b < nsb; b++) {
        const finch_block_q8_K *xb[QG_T];
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++) xb[t] = (const finch_block_q8_K *)(x + qg_tok(t, nt) * xs) + b;
        qg_k_block(sub, shift, p + b, xb, sumf);
    }
    for (size_t t = 0; t < nt; t++) _mm512_mask_storeu_ps(out + t * ldo, rows, sumf[t]);
}

static VNNI void qg_k_tile16(int shift, const finch_qg_kpack *p, size_t nsb, const char *x, size_t xs,
                             size_t nt, float *out, size_t ldo, __mmask16 rows) {
    qg_k_tile(16, shift, p, nsb, x, xs, nt, out, ldo, rows);
}
static VNNI void qg_k_tile32(const finch_qg_kpack *p, size_t nsb, const char *x, size_t xs, size_t nt,
                             float *out, size_t ldo, __mmask16 rows) {
    qg_k_tile(32, 0, p, nsb, x, xs, nt, out, ldo, rows);
}

/* IQ4_XS: per 32 values the exact sum minus 128 * (the activations' two
 * 16-value sums), then the reference's step (d_w d_x ls) isum, added in
 * sub-block order. */
static VNNI void qg_iq4_xs_tile(const finch_qg_kpack *p, size_t nsb, const char *x, size_t xs, size_t nt,
                                float *out, size_t ldo, __mmask16 rows) {
    __m512 sumf[QG_T];
    __m512i acc[QG_T];
#pragma GCC unroll 8
    for (size_t t = 0; t < QG_T; t++) sumf[t] = _mm512_setzero_ps();
    for (size_t b = 0; b < nsb; b++, p++) {
        const finch_block_q8_K *xb[QG_T];
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++) xb[t] = (const finch_block_q8_K *)(x + qg_tok(t, nt) * xs) + b;
        __m512 d = _mm512_loadu_ps(p->d);
        for (size_t s = 0; s < 8; s++) {
#pragma GCC unroll 8
            for (size_t t = 0; t < QG_T; t++) acc[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (size_t g = 8 * s; g < 8 * s + 8; g++) {
                __m512i wq = _mm512_loadu_si512(p->q[g]);
#pragma GCC unroll 8
                for (size_t t = 0; t < QG_T; t++)
                    acc[t] = _mm512_dpbusd_epi32(acc[t], wq, _mm512_set1_epi32(qg_load32(xb[t]->qs + 4 * g)));
            }
            __m512 ls = _mm512_cvtepi32_ps(_mm512_loadu_si512(p->sc[s]));
#pragma GCC unroll 8
            for (size_t t = 0; t < QG_T; t++) {
                int32_t corr = 128 * (xb[t]->bsums[2 * s] + xb[t]->bsums[2 * s + 1]);
                __m512 is = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[t], _mm512_set1_epi32(corr)));
                __m512 d4d8 = _mm512_mul_ps(d, _mm512_set1_ps(xb[t]->d));
                sumf[t] = _mm512_add_ps(sumf[t], _mm512_mul_ps(_mm512_mul_ps(d4d8, ls), is));
            }
        }
    }
    for (size_t t = 0; t < nt; t++) _mm512_mask_storeu_ps(out + t * ldo, rows, sumf[t]);
}

static void qgemm_k_vnni(finch_dtype t, const void *pack, size_t cols, const void *x, size_t xs,
                         const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo, size_t nr) {
    (void)aux;
    __mmask16 rows = lanes_mask(nr);
    int shift = t == FINCH_Q6_K ? 32 : t == FINCH_Q3_K ? 4 : 0;
    for (size_t i = 0; i < nt; i += QG_T) {
        size_t n = nt - i < QG_T ? nt - i : QG_T;
        const char *xi = (const char *)x + i * xs;
        if (t == FINCH_IQ4_XS) qg_iq4_xs_tile(pack, cols / FINCH_QK_K, xi, xs, n, out + i * ldo, ldo, rows);
        else if (t == FINCH_Q4_K || t == FINCH_Q5_K) qg_k_tile32(pack, cols / FINCH_QK_K, xi, xs, n, out + i * ldo, ldo, rows);
        else qg_k_tile16(shift, pack, cols / FINCH_QK_K, xi, xs, n, out + i * ldo, ldo, rows);
    }
}

/* The 32-value types: per block the exact sum minus offset * (sum of the
 * activations), then the reference's step, by `kind`: 0 Q4_0 (isum d_w)
 * d_x, 1 Q5_0, Q8_0 and IQ4_NL (d_w d_x) isum, 2 Q4_1 and Q5_1 (Q8_1
 * activations) (d_w d_x) isum + m_w s_x.  (Q8_0: (w + 128) in [0, 255]
 * times x in [-127, 127], 32 products: |sum| < 2^21, exact in int32.) */
static VNNI ALWAYS_INLINE void qg_b32_tile(int kind, const finch_qg_bpack *p, size_t nb, const char *x,
                                           size_t xs, const finch_qg_xaux *aux, size_t nt, float *out,
                                           size_t ldo, __mmask16 rows) {
    size_t xbs = kind == 2 ? sizeof(finch_block_q8_1) : sizeof(finch_block_q8_0), qoff = kind == 2 ? 4 : 2;
    __m512 sumf[QG_T];
    __m512i acc[QG_T];
    const char *xt[QG_T];
    const finch_qg_xaux *at[QG_T];
#pragma GCC unroll 8
    for (size_t t = 0; t < QG_T; t++) {
        sumf[t] = _mm512_setzero_ps();
        xt[t] = x + qg_tok(t, nt) * xs + qoff;
        at[t] = aux + qg_tok(t, nt) * nb;
    }
    for (size_t b = 0; b < nb; b++) {
        const finch_qg_bpack *pb = p + b / 8;
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++) acc[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (size_t g = 0; g < 8; g++) {
            __m512i wq = _mm512_loadu_si512(pb->q[(b % 8) * 8 + g]);
#pragma GCC unroll 8
            for (size_t t = 0; t < QG_T; t++)
                acc[t] = _mm512_dpbusd_epi32(acc[t], wq, _mm512_set1_epi32(qg_load32(xt[t] + b * xbs + 4 * g)));
        }
        __m512 dw = _mm512_loadu_ps(pb->d[b % 8]), mw = _mm512_loadu_ps(pb->m[b % 8]);
#pragma GCC unroll 8
        for (size_t t = 0; t < QG_T; t++) {
            __m512 is = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[t], _mm512_set1_epi32(at[t][b].corr)));
            __m512 dx = _mm512_set1_ps(at[t][b].d), step;
            if (kind == 0) step = _mm512_mul_ps(_mm512_mul_ps(is, dw), dx);
            else step = _mm512_mul_ps(_mm512_mul_ps(dw, dx), is);
            if (kind == 2) step = _mm512_add_ps(step, _mm512_mul_ps(mw, _mm512_set1_ps(at[t][b].s)));
            sumf[t] = _mm512_add_ps(sumf[t], step);
        }
    }
    for (size_t t = 0; t < nt; t++) _mm512_mask_storeu_ps(out + t * ldo, rows, sumf[t]);
}

#define QG_B32_TILE(kind, name)                                                                        \
    static VNNI void name(const finch_qg_bpack *p, size_t nb, const char *x, size_t xs,                \
                          const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo, __mmask16 rows) { \
        qg_b32_tile(kind, p, nb, x, xs, aux, nt, out, ldo, rows);                                      \
    }
QG_B32_TILE(0, qg_b32_tile_q4_0)
QG_B32_TILE(1, qg_b32_tile_d)
QG_B32_TILE(2, qg_b32_tile_q8_1)

static void qgemm_b32_vnni(finch_dtype t, const void *pack, size_t cols, const void *x, size_t xs,
                           const finch_qg_xaux *aux, size_t nt, float *out, size_t ldo, size_t nr) {
    __mmask16 rows = lanes_mask(nr);
    size_t nb = cols / FINCH_QK;
    for (size_t i = 0; i < nt; i += QG_T) {
        size_t n = nt - i < QG_T ? nt - i : QG_T;
        const char *xi = (const char *)x + i * xs;
        if (t == FINCH_Q4_0) qg_b32_tile_q4_0(pack, nb, xi, xs, aux + i * nb, n, out + i * ldo, ldo, rows);
        else if (t == FINCH_Q4_1 || t == FINCH_Q5_1)
            qg_b32_tile_q8_1(pack, nb, xi, xs, aux + i * nb, n, out + i * ldo, ldo, rows);
        else qg_b32_tile_d(pack, nb, xi, xs, aux + i * nb, n, out + i * ldo, ldo, rows);
    }
}

/* The VNNI table's entries: qgemm = {QG_VNNI}. */
#define QG_VNNI \
    [FINCH_Q4_0] = qgemm_b32_vnni, [FINCH_Q5_0] = qgemm_b32_vnni, [FINCH_IQ4_NL] = qgemm_b32_vnni, \
    [FINCH_Q4_1] = qgemm_b32_vnni, [FINCH_Q5_1] = qgemm_b32_vnni, [FINCH_Q8_0] = qgemm_b32_vnni, \
    [FINCH_Q2_K] = qgemm_k_vnni, [FINCH_Q3_K] = qgemm_k_vnni, [FINCH_Q4_K] = qgemm_k_vnni, \
    [FINCH_Q5_K] = qgemm_k_vnni, [FINCH_Q6_K] = qgemm_k_vnni, [FINCH_IQ4_XS] = qgemm_k_vnni

#endif
