/* kernels_quant_rows_x86.h - decode's matvec for the 32-value quantized
 * types (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) and IQ4_XS: one token against several
 * weight rows side by side (finch_vec_dotr_fn), included after
 * kernels_quant_x86.h by kernels_avx2.c and kernels_avx512.c.
 *
 * One row at a time (vec_dot) is one dependency chain of float steps, one
 * per 32-value block, each waiting on a horizontal sum: about a third of
 * the memory bandwidth.  Here 8 rows go side by side: per block, each
 * row's exact integer sum (the x block loaded once for all of them), the
 * 8 sums reduced together (qx_hsum8, rows in lanes), then the scalar
 * reference's float step lane by lane (lane = row; the same IEEE
 * operations in the same order as finch_vec_dot_ref, so its bits).
 *
 * Unsigned quants meet the activations directly (vpmaddubsw: unsigned x
 * signed); the offset of Q4_0 (8) and Q5_0 (16) is taken back once per
 * block for all rows through the sum of the activation quants, exactly:
 * sum (u - o) x = sum u x - o sum x.  IQ4_NL's signed table values use the
 * sign trick of qx_dot_i8.  A group of fewer than 8 rows (the tail) reads
 * copies of its last row and stores only its own lanes. */
#ifndef FINCH_KERNELS_QUANT_ROWS_X86_H
#define FINCH_KERNELS_QUANT_ROWS_X86_H

#include "kernels_internal.h"
#include "kernels_quant_x86.h"

#define QR_ROWS 8 /* rows side by side (one ymm lane each) */
/* inlined into each type's entry, so that the type's branches fold away */
#define QR_INLINE inline __attribute__((always_inline))

static inline size_t qr_block_bytes(finch_dtype t) {
    return t == FINCH_Q4_1 ? 20 : t == FINCH_Q5_0 ? 22 : t == FINCH_Q5_1 ? 24 : 18;
}

/* 16 bytes of nibbles -> 32 unsigned values (low nibbles, then high): one
 * broadcast load, one variable shift, one and. */
static inline __m256i qr_nibbles(const uint8_t *qs) {
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    q = _mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4));
    return _mm256_and_si256(q, _mm256_set1_epi8(0xF));
}

/* The quants of block w (one row) in the form that meets x: unsigned
 * 0..15 / 0..31 (the offset, if any, is taken back later), or IQ4_NL's
 * signed table values. */
static QR_INLINE __m256i qr_quants(finch_dtype t, const uint8_t *w, __m256i kv) {
    switch (t) {
    case FINCH_Q4_0: return qr_nibbles(w + 2);
    case FINCH_IQ4_NL: return _mm256_shuffle_epi8(kv, qr_nibbles(w + 2));
    case FINCH_Q4_1: return qr_nibbles(w + 4);
    case FINCH_Q5_0: return _mm256_or_si256(qr_nibbles(w + 6), qx_fifth_bits(w + 2));
    default: return _mm256_or_si256(qr_nibbles(w + 8), qx_fifth_bits(w + 4));
    }
}

/* The low halves of 8 dwords (the f16 at the start of 8 rows' blocks,
 * gathered at once) as 8 floats (exact). */
static inline __m256 qr_f16_lo(__m256i v) {
    v = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
    v = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08); /* the 8 halves in the low 128 */
    return _mm256_cvtph_ps(_mm256_castsi256_si128(v));
}

/* Block b of the token: its 32 quants, d and (Q8_1) s as floats. */
static QR_INLINE __m256i qr_xblock(finch_dtype t, const void *vx, size_t b, float *dx, float *sx) {
    if (t == FINCH_Q4_1 || t == FINCH_Q5_1) {
        const finch_block_q8_1 *x = (const finch_block_q8_1 *)vx + b;
        *dx = qx_f16(x->d), *sx = qx_f16(x->s);
        return qx_load(x->qs);
    }
    const finch_block_q8_0 *x = (const finch_block_q8_0 *)vx + b;
    *dx = qx_f16(x->d), *sx = 0;
    return qx_load(x->qs);
}

/* Prefetch once per at most 64 bytes of each row: every `qr_pf_step`
 * blocks. */
static inline size_t qr_pf_step(finch_dtype t) { return 64 / qr_block_bytes(t); }

/* The 8 rows of a group (clamped to nr: short groups repeat their last
 * row) into wr, and their byte offsets from w, for the gathers of their
 * scales. */
static QR_INLINE __m256i qr_rows8(const uint8_t *w, size_t ws, size_t nr, const uint8_t **wr) {
    int32_t idx[QR_ROWS];
    for (size_t r = 0; r < QR_ROWS; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
        idx[r] = (int32_t)(wr[r] - w);
    }
    return _mm256_loadu_si256((const __m256i *)idx);
}

/* 8 rows (clamped to nr), blocks [0, nb) of one token: sums into out[r]
 * for r < nr (at most 8). */
static QR_INLINE void qr_dotr8(finch_dtype t, const uint8_t *w, size_t ws, size_t nr, const void *vx, size_t nb,
                            float *out) {
    const size_t bytes = qr_block_bytes(t);
    const bool q81 = t == FINCH_Q4_1 || t == FINCH_Q5_1;
    const int off = t == FINCH_Q4_0 ? 8 : t == FINCH_Q5_0 ? 16 : 0;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
    const uint8_t *wr[QR_ROWS];
    const __m256i vidx = qr_rows8(w, ws, nr, wr);
    __m256 sumf = _mm256_setzero_ps();
    for (size_t b = 0, pf = 0; b < nb; b++) {
        size_t at = b * bytes;
        if (pf-- == 0) {
            pf = qr_pf_step(t) - 1;
#pragma GCC unroll 8
            for (size_t r = 0; r < QR_ROWS; r++) finch_prefetch_row(wr[r], at, nb * bytes, QR_ROWS * ws);
        }
        __m256i acc[QR_ROWS];
        float dx, sx;
        __m256i xq = qr_xblock(t, vx, b, &dx, &sx);
#pragma GCC unroll 8 /* the rows in registers */
        for (size_t r = 0; r < QR_ROWS; r++) {
            __m256i q = qr_quants(t, wr[r] + at, kv);
            if (t == FINCH_IQ4_NL) acc[r] = qx_dot_u8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
            else acc[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xq), ones16);
        }
        __m256i isum = qx_hsum8(acc);
        if (off) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(off * qx_hsum(qx_dot_u8(ones8, xq))));
        __m256i dm = _mm256_i32gather_epi32((const int *)(w + at), vidx, 1); /* d (and m) of the 8 rows */
        __m256 fsum = _mm256_cvtepi32_ps(isum), vdw = qr_f16_lo(dm), vdx = _mm256_set1_ps(dx);
        __m256 step; /* finch_vec_dot_ref's float step of each type (quants.c) */
        if (t == FINCH_Q4_0) step = _mm256_mul_ps(_mm256_mul_ps(fsum, vdw), vdx);
        else if (t == FINCH_IQ4_NL) step = _mm256_mul_ps(_mm256_mul_ps(vdx, vdw), fsum);
        else step = _mm256_mul_ps(_mm256_mul_ps(vdw, vdx), fsum);
        if (q81) step = _mm256_add_ps(step, _mm256_mul_ps(qr_f16_lo(_mm256_srli_epi32(dm, 16)), _mm256_set1_ps(sx)));
        sumf = _mm256_add_ps(sumf, step);
    }
    float r8[QR_ROWS];
    _mm256_storeu_ps(r8, sumf);
    for (size_t r = 0; r < nr && r < QR_ROWS; r++) out[r] = r8[r];
}

static QR_INLINE void qr_dotr_32(finch_dtype t, const void *w, size_t ws, size_t nr, const void *x, size_t n,
                              float *out) {
    if (ws > INT32_MAX / QR_ROWS) { /* the gathers' int32 offsets: row by row */
        for (size_t r = 0; r < nr; r++) dotn_32_x86(t, (const uint8_t *)w + r * ws, x, 0, 1, n, out + r, 1);
        return;
    }
    for (size_t r0 = 0; r0 < nr; r0 += QR_ROWS)
        qr_dotr8(t, (const uint8_t *)w + r0 * ws, ws, nr - r0, x, n / FINCH_QK, out + r0);
}

#define QR_32_DOTR(T, name)                                                                         \
    static void dotr_##name##_x86(const void *w, size_t ws, size_t nr, const void *x, size_t n,     \
                                  float *out) {                                                     \
        qr_dotr_32(T, w, ws, nr, x, n, out);                                                        \
    }
QR_32_DOTR(FINCH_Q4_0, q4_0)
QR_32_DOTR(FINCH_Q4_1, q4_1)
QR_32_DOTR(FINCH_Q5_0, q5_0)
QR_32_DOTR(FINCH_Q5_1, q5_1)
QR_32_DOTR(FINCH_IQ4_NL, iq4_nl)

/* IQ4_XS (256-value super-blocks of 8 sub-blocks, Q8_K activations): 8
 * rows side by side the same way, per sub-block; the rows' d and 6-bit
 * sub-block scales come in two gathers per super-block, and the steps are
 * the reference's (d_w d_x ls) isum, in sub-block order. */
static QR_INLINE void qr_iq4_xs_dotr8(const uint8_t *w, size_t ws, size_t nr, const void *vx, size_t nsb,
                                      float *out) {
    const size_t bytes = sizeof(finch_block_iq4_xs);
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    const uint8_t *wr[QR_ROWS];
    const __m256i vidx = qr_rows8(w, ws, nr, wr);
    __m256 sumf = _mm256_setzero_ps();
    for (size_t b = 0; b < nsb; b++) {
        size_t at = b * bytes;
#pragma GCC unroll 8
        for (size_t r = 0; r < QR_ROWS; r++)
            for (size_t l = 0; l < bytes; l += 64) finch_prefetch_row(wr[r], at + l, nsb * bytes, QR_ROWS * ws);
        const finch_block_q8_K *x = (const finch_block_q8_K *)vx + b;
        __m256i dsh = _mm256_i32gather_epi32((const int *)(w + at), vidx, 1);    /* d, scales_h */
        __m256i sl = _mm256_i32gather_epi32((const int *)(w + at + 4), vidx, 1); /* scales_l */
        __m256i sh = _mm256_srli_epi32(dsh, 16);
        __m256 d4d8 = _mm256_mul_ps(qr_f16_lo(dsh), _mm256_set1_ps(x->d));
        for (int ib = 0; ib < 8; ib++) {
            __m256i xq = qx_load(x->qs + 32 * ib), acc[QR_ROWS];
#pragma GCC unroll 8 /* the rows in registers */
            for (size_t r = 0; r < QR_ROWS; r++) {
                __m256i q = _mm256_shuffle_epi8(kv, qr_nibbles(wr[r] + at + 8 + 16 * ib));
                acc[r] = qx_dot_u8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
            }
            __m256i lo = _mm256_and_si256(_mm256_srl_epi32(sl, _mm_cvtsi32_si128(4 * ib)), _mm256_set1_epi32(0xF));
            __m256i hi = _mm256_and_si256(_mm256_srl_epi32(sh, _mm_cvtsi32_si128(2 * ib)), _mm256_set1_epi32(3));
            __m256i ls = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
            __m256 step = _mm256_mul_ps(_mm256_mul_ps(d4d8, _mm256_cvtepi32_ps(ls)), _mm256_cvtepi32_ps(qx_hsum8(acc)));
            sumf = _mm256_add_ps(sumf, step);
        }
    }
    float r8[QR_ROWS];
    _mm256_storeu_ps(r8, sumf);
    for (size_t r = 0; r < nr && r < QR_ROWS; r++) out[r] = r8[r];
}

static void dotr_iq4_xs_x86(const void *w, size_t ws, size_t nr, const void *x, size_t n, float *out) {
    if (ws > INT32_MAX / QR_ROWS) { /* the gathers' int32 offsets: row by row */
        for (size_t r = 0; r < nr; r++) dotn_iq4_xs_x86((const uint8_t *)w + r * ws, x, 0, 1, n, out + r, 1);
        return;
    }
    for (size_t r0 = 0; r0 < nr; r0 += QR_ROWS)
        qr_iq4_xs_dotr8((const uint8_t *)w + r0 * ws, ws, nr - r0, x, n / FINCH_QK_K, out + r0);
}

/* The table entries of the 32-value types and IQ4_XS: vec_dotr = {..., QX_VEC_DOTR_32}. */
#define QX_VEC_DOTR_32 \
    [FINCH_Q4_0] = dotr_q4_0_x86, [FINCH_Q4_1] = dotr_q4_1_x86, [FINCH_Q5_0] = dotr_q5_0_x86, \
    [FINCH_Q5_1] = dotr_q5_1_x86, [FINCH_IQ4_NL] = dotr_iq4_nl_x86, [FINCH_IQ4_XS] = dotr_iq4_xs_x86

#if defined(__AVX512BW__) /* kernels_avx512.c: 16 rows on AVX-512 VNNI */
/* Two rows per zmm (row k in the low 256 bits, row k + 8 in the high),
 * 16 rows side by side; vpdpbusd (unsigned x signed bytes, summed in
 * int32, exact) takes the quants as unsigned: IQ4_NL's table values + 128,
 * whose offset is taken back like Q4_0's.  Lane l of the reduced sums is
 * row qr_lane_row[l] (qr_hsum16's order). */
#define QR_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define QR_ROWS16 16
static const int32_t qr_lane_row[QR_ROWS16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

/* r[l] = the sum of the 8 int32 of row qr_lane_row[l] (v[k]: rows k, k+8). */
static QR_INLINE __m512i qr_hsum16(const __m512i *v) {
    __m512i a[4], b[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1])); /* 128-bit lane: 4 rows' halves */
    return _mm512_add_epi32(_mm512_shuffle_i64x2(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i64x2(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The unsigned quants of rows p and p8 (one block each) in one zmm. */
static QR_INLINE __m512i qr_quants2(finch_dtype t, const uint8_t *p, const uint8_t *p8, __m512i kvu) {
    size_t qs = t == FINCH_Q4_0 || t == FINCH_IQ4_NL ? 2 : t == FINCH_Q4_1 ? 4 : t == FINCH_Q5_0 ? 6 : 8;
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + qs)))),
                                   _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p8 + qs))), 1);
    q = _mm512_and_si512(_mm512_srlv_epi64(q, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(0xF));
    if (t == FINCH_IQ4_NL) return _mm512_shuffle_epi8(kvu, q);
    if (t == FINCH_Q5_0 || t == FINCH_Q5_1) { /* fifth bit j of qh: value j, byte j */
        uint32_t h, h8;
        memcpy(&h, p + qs - 4, 4), memcpy(&h8, p8 + qs - 4, 4);
        q = _mm512_mask_add_epi8(q, (__mmask64)h | (__mmask64)h8 << 32, q, _mm512_set1_epi8(16));
    }
    return q;
}

/* 16 rows (clamped to nr), blocks [0, nb): out[r] for r < nr (<= 16). */
static QR_VNNI QR_INLINE void qr_dotr16_vnni(finch_dtype t, const uint8_t *w, size_t ws, size_t nr, const void *vx,
                                             size_t nb, float *out) {
    const size_t bytes = qr_block_bytes(t);
    const bool q81 = t == FINCH_Q4_1 || t == FINCH_Q5_1;
    const int off = t == FINCH_Q4_0 ? 8 : t == FINCH_Q5_0 ? 16 : t == FINCH_IQ4_NL ? 128 : 0;
    const __m512i kvu = _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)finch_iq4nl_values), _mm_set1_epi8((char)0x80)));
    const uint8_t *wr[QR_ROWS16];
    int32_t idx[QR_ROWS16];
    for (size_t r = 0; r < QR_ROWS16; r++) wr[r] = finch_tile_row(w, ws, r, nr);
    for (size_t l = 0; l < QR_ROWS16; l++) idx[l] = (int32_t)(wr[qr_lane_row[l]] - w);
    const __m512i vidx = _mm512_loadu_si512(idx);
    __m512 sumf = _mm512_setzero_ps();
    for (size_t b = 0, pf = 0; b < nb; b++) {
        size_t at = b * bytes;
        if (pf-- == 0) {
            pf = qr_pf_step(t) - 1;
#pragma GCC unroll 16
            for (size_t r = 0; r < QR_ROWS16; r++) finch_prefetch_row(wr[r], at, nb * bytes, QR_ROWS16 * ws);
        }
        float dx, sx;
        __m256i xq = qr_xblock(t, vx, b, &dx, &sx);
        __m512i xz = _mm512_broadcast_i64x4(xq), acc[8];
#pragma GCC unroll 8 /* the rows in registers */
        for (size_t k = 0; k < 8; k++)
            acc[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qr_quants2(t, wr[k] + at, wr[k + 8] + at, kvu), xz);
        __m512i isum = qr_hsum16(acc);
        if (off) {
            int32_t sumx = qx_hsum(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), xq));
            isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(off * sumx));
        }
        __m512i dm = _mm512_i32gather_epi32(vidx, (const void *)(w + at), 1); /* d (and m) per lane's row */
        __m512 fsum = _mm512_cvtepi32_ps(isum), vdx = _mm512_set1_ps(dx);
        __m512 vdw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_and_si512(dm, _mm512_set1_epi32(0xFFFF))));
        __m512 step; /* finch_vec_dot_ref's float step of each type (quants.c), as in qr_dotr8 */
        if (t == FINCH_Q4_0) step = _mm512_mul_ps(_mm512_mul_ps(fsum, vdw), vdx);
        else if (t == FINCH_IQ4_NL) step = _mm512_mul_ps(_mm512_mul_ps(vdx, vdw), fsum);
        else step = _mm512_mul_ps(_mm512_mul_ps(vdw, vdx), fsum);
        if (q81)
            step = _mm512_add_ps(step, _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16))),
                                                     _mm512_set1_ps(sx)));
        sumf = _mm512_add_ps(sumf, step);
    }
    float r16[QR_ROWS16];
    _mm512_storeu_ps(r16, sumf);
    for (size_t l = 0; l < QR_ROWS16; l++)
        if ((size_t)qr_lane_row[l] < nr) out[qr_lane_row[l]] = r16[l];
}

/* Groups of 16 rows; a tail of 8 or fewer rows in qr_dotr8 (the same bits). */
static QR_VNNI QR_INLINE void qr_dotr_32_vnni(finch_dtype t, const void *w, size_t ws, size_t nr, const void *x,
                                              size_t n, float *out) {
    if (ws > INT32_MAX / QR_ROWS16) {
        qr_dotr_32(t, w, ws, nr, x, n, out);
        return;
    }
    size_t r0 = 0;
    for (; r0 + QR_ROWS < nr; r0 += QR_ROWS16)
        qr_dotr16_vnni(t, (const uint8_t *)w + r0 * ws, ws, nr - r0, x, n / FINCH_QK, out + r0);
    if (r0 < nr) qr_dotr8(t, (const uint8_t *)w + r0 * ws, ws, nr - r0, x, n / FINCH_QK, out + r0);
}

#define QR_32_DOTR_VNNI(T, name)                                                                    \
    static QR_VNNI void dotr_##name##_vnni(const void *w, size_t ws, size_t nr, const void *x,      \
                                           size_t n, float *out) {                                  \
        qr_dotr_32_vnni(T, w, ws, nr, x, n, out);                                                   \
    }
QR_32_DOTR_VNNI(FINCH_Q4_0, q4_0)
QR_32_DOTR_VNNI(FINCH_Q4_1, q4_1)
QR_32_DOTR_VNNI(FINCH_Q5_0, q5_0)
QR_32_DOTR_VNNI(FINCH_Q5_1, q5_1)
QR_32_DOTR_VNNI(FINCH_IQ4_NL, iq4_nl)

/* The AVX-512 VNNI table's entries (the plain AVX-512 table keeps
 * QX_VEC_DOTR_32, which test_matvec_rows checks through AVX2's). */
#define QX_VEC_DOTR_32_VNNI \
    [FINCH_Q4_0] = dotr_q4_0_vnni, [FINCH_Q4_1] = dotr_q4_1_vnni, [FINCH_Q5_0] = dotr_q5_0_vnni, \
    [FINCH_Q5_1] = dotr_q5_1_vnni, [FINCH_IQ4_NL] = dotr_iq4_nl_vnni, [FINCH_IQ4_XS] = dotr_iq4_xs_x86
#endif

#endif
