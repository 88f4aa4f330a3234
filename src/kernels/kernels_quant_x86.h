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
 * at most 127 in magnitude (IQ4's table; Q3_K/Q6_K shifted to unsigned
 * 0..7/0..63) and activations at most 127, so a pair is at most 32258
 * (the quantizers never produce -128, which the sign trick of the signed
 * products could not negate). */
#ifndef FINCH_KERNELS_QUANT_X86_H
#define FINCH_KERNELS_QUANT_X86_H

#include "quants.h"

#include <immintrin.h>
#include <string.h>

static inline int32_t qx_hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* r[t] = the sum of the 8 lanes of v[t], t < 8 (exact integer adds). */
static inline __m256i qx_hsum8(const __m256i *v) {
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
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

/* 16 bytes of nibbles -> 32 values: low nibbles (values 0-15), then high. */
static inline __m256i qx_nibbles(const uint8_t *qs) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)),
                                   _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
}

/* Bit j of the 32-bit qh as 0x10 in byte j (the fifth bit of Q5_0/Q5_1). */
static inline __m256i qx_fifth_bits(const uint8_t *qh4) {
    uint32_t h;
    memcpy(&h, qh4, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
                                    _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                       0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* The sum over 32 bytes of signed w times signed x (|w|, |x| <= 127):
 * |w| * (x with w's sign), unsigned x signed. */
static inline int32_t qx_dot_i8(__m256i w, __m256i x) {
    return qx_hsum(qx_dot_u8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));
}

/* One 32-value block against 8 tokens (x_stride bytes apart): the integer
 * sums reduced together, then dotn_32_x86's float step for the type, lane
 * by lane (the same IEEE operations in the same order). */
static inline __m256 qx_block32_dot8(finch_dtype t, __m256i q, float dw, float mw, const void *vx, size_t xs,
                                     size_t b, __m256 sumf) {
    __m256i acc[8];
    uint16_t xd[8], xsum[8];
    bool q81 = t == FINCH_Q4_1 || t == FINCH_Q5_1;
    __m256i aq = _mm256_sign_epi8(q, q);
    for (int i = 0; i < 8; i++) {
        const char *xb = (const char *)vx + i * xs;
        if (q81) {
            const finch_block_q8_1 *x = (const finch_block_q8_1 *)xb + b;
            acc[i] = qx_dot_u8(q, qx_load(x->qs));
            xd[i] = x->d;
            xsum[i] = x->s;
        } else {
            const finch_block_q8_0 *x = (const finch_block_q8_0 *)xb + b;
            acc[i] = qx_dot_u8(aq, _mm256_sign_epi8(qx_load(x->qs), q));
            xd[i] = x->d;
        }
    }
    __m256 isum = _mm256_cvtepi32_ps(qx_hsum8(acc));
    __m256 vxd = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xd)), vdw = _mm256_set1_ps(dw);
    if (t == FINCH_Q4_0) return _mm256_add_ps(sumf, _mm256_mul_ps(_mm256_mul_ps(isum, vdw), vxd));
    if (t == FINCH_IQ4_NL) return _mm256_add_ps(sumf, _mm256_mul_ps(_mm256_mul_ps(vxd, vdw), isum));
    __m256 step = _mm256_mul_ps(_mm256_mul_ps(vdw, vxd), isum);
    if (q81)
        step = _mm256_add_ps(step, _mm256_mul_ps(_mm256_set1_ps(mw),
                                                 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xsum))));
    return _mm256_add_ps(sumf, step);
}

/* The 32-value types, nt (<= FINCH_DOTN_TOKENS) tokens x_stride bytes apart against one
 * weight row: each block is unpacked once; each output is the scalar
 * reference's bits (its integer sums and float steps, quants.c). */
static inline void dotn_32_x86(finch_dtype t, const void *vw, const void *vx, size_t xs, size_t nt, size_t n,
                               float *out, size_t os) {
    const uint8_t *w = vw;
    size_t bytes = t == FINCH_Q4_1 ? 20 : t == FINCH_Q5_0 ? 22 : t == FINCH_Q5_1 ? 24 : 18;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    float sumf[FINCH_DOTN_TOKENS] = {0};
    __m256 sum8 = _mm256_setzero_ps();
    for (size_t b = 0; b < n / FINCH_QK; b++, w += bytes) {
        float dw = qx_f16(*(const uint16_t *)w), mw = 0;
        __m256i q;
        if (t == FINCH_Q4_0) q = _mm256_sub_epi8(qx_nibbles(w + 2), _mm256_set1_epi8(8));
        else if (t == FINCH_IQ4_NL) q = _mm256_shuffle_epi8(kv, qx_nibbles(w + 2));
        else if (t == FINCH_Q4_1) q = qx_nibbles(w + 4);
        else if (t == FINCH_Q5_0) q = _mm256_sub_epi8(_mm256_or_si256(qx_nibbles(w + 6), qx_fifth_bits(w + 2)), _mm256_set1_epi8(16));
        else q = _mm256_or_si256(qx_nibbles(w + 8), qx_fifth_bits(w + 4));
        if (t == FINCH_Q4_1 || t == FINCH_Q5_1) mw = qx_f16(*(const uint16_t *)(w + 2));
        if (nt == 8) { /* eight tokens reduced and stepped together: the same bits */
            sum8 = qx_block32_dot8(t, q, dw, mw, vx, xs, b, sum8);
            continue;
        }
        for (size_t i = 0; i < nt; i++) {
            const char *xb = (const char *)vx + i * xs;
            if (t == FINCH_Q4_1 || t == FINCH_Q5_1) { /* unsigned quants, Q8_1 activations */
                const finch_block_q8_1 *x = (const finch_block_q8_1 *)xb + b;
                int32_t sumi = qx_hsum(qx_dot_u8(q, qx_load(x->qs)));
                sumf[i] += (dw * qx_f16(x->d)) * (float)sumi + mw * qx_f16(x->s);
                continue;
            }
            const finch_block_q8_0 *x = (const finch_block_q8_0 *)xb + b;
            int32_t sumi = qx_dot_i8(q, qx_load(x->qs));
            if (t == FINCH_Q4_0) sumf[i] += (float)sumi * dw * qx_f16(x->d);
            else if (t == FINCH_IQ4_NL) sumf[i] += (qx_f16(x->d) * dw) * (float)sumi;
            else sumf[i] += (dw * qx_f16(x->d)) * (float)sumi;
        }
    }
    if (nt == 8) _mm256_storeu_ps(sumf, sum8);
    for (size_t i = 0; i < nt; i++) out[i * os] = sumf[i];
}

/* IQ4_XS: per 32-value sub-block, kvalues looked up by vpshufb, one exact
 * integer sum and the reference's float step. */
static void dotn_iq4_xs_x86(const void *vw, const void *vx, size_t xs, size_t nt, size_t n, float *out,
                            size_t os) {
    const finch_block_iq4_xs *w = vw;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)finch_iq4nl_values));
    float sumf[FINCH_DOTN_TOKENS] = {0};
    for (size_t b = 0; b < n / FINCH_QK_K; b++) {
        __m256i q[8];
        float ls[8];
        for (int ib = 0; ib < 8; ib++) {
            q[ib] = _mm256_shuffle_epi8(kv, qx_nibbles(w[b].qs + 16 * ib));
            ls[ib] = (float)((((w[b].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                              (((w[b].scales_h >> (2 * ib)) & 3) << 4)) - 32);
        }
        float dw = qx_f16(w[b].d);
        __m256i aq[8];
        for (int ib = 0; ib < 8; ib++) aq[ib] = _mm256_sign_epi8(q[ib], q[ib]);
        for (size_t i = 0; i < nt; i++) {
            const finch_block_q8_K *x = (const finch_block_q8_K *)((const char *)vx + i * xs) + b;
            /* the 8 sub-block sums reduced together; their float steps
             * lane by lane, added to sumf in sub-block order (same bits) */
            __m256i acc[8];
            for (int ib = 0; ib < 8; ib++)
                acc[ib] = qx_dot_u8(aq[ib], _mm256_sign_epi8(qx_load(x->qs + 32 * ib), q[ib]));
            float d4d8 = dw * x->d, step[8];
            _mm256_storeu_ps(step, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(d4d8), _mm256_loadu_ps(ls)),
                                                 _mm256_cvtepi32_ps(qx_hsum8(acc))));
            for (int ib = 0; ib < 8; ib++) sumf[i] += step[ib];
        }
    }
    for (size_t i = 0; i < nt; i++) out[i * os] = sumf[i];
}

#define QX_32_DOTS(T, name)                                                                            \
    static void dotn_##name##_x86(const void *w, const void *x, size_t xs, size_t nt, size_t n,        \
                                  float *out, size_t os) {                                           \
        dotn_32_x86(T, w, x, xs, nt, n, out, os);                                                    \
    }                                                                                                \
    static float dot_##name##_x86(const void *w, const void *x, size_t n) {                          \
        float r;                                                                                     \
        dotn_##name##_x86(w, x, 0, 1, n, &r, 1);                                                     \
        return r;                                                                                    \
    }
QX_32_DOTS(FINCH_Q4_0, q4_0)
QX_32_DOTS(FINCH_Q4_1, q4_1)
QX_32_DOTS(FINCH_Q5_0, q5_0)
QX_32_DOTS(FINCH_Q5_1, q5_1)
QX_32_DOTS(FINCH_IQ4_NL, iq4_nl)

static float dot_iq4_xs_x86(const void *w, const void *x, size_t n) {
    float r;
    dotn_iq4_xs_x86(w, x, 0, 1, n, &r, 1);
    return r;
}

/* A K-quant super-block unpacked for the integer dot: 8 x 32 unsigned
 * quants (in the activations' order) with their int16 scales, and as 16
 * int16 for the bsums product either the mins (Q2_K/Q4_K/Q5_K) or, for the
 * types whose quants were shifted to be unsigned (Q3_K by 4, Q6_K by 32),
 * the scales again. */
typedef struct {
    __m256i q[8], sc[8], m16;
    float d, dmin;
    int shift; /* 0, 4 (Q3_K) or 32 (Q6_K) */
} qx_kblock;

/* The two int16 scales of a 32-value chunk of 16-value sub-blocks. */
static inline __m256i qx_scale_pair(int a, int b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((int16_t)a)), _mm_set1_epi16((int16_t)b), 1);
}

/* Q2_K and Q3_K: chunk i = 4h + j (values 32i .. 32i + 31) is bits 2j of
 * the 32 bytes qs[32h..]; Q3_K adds 4 where bit i of hmask is set (q + 4 =
 * q2 + 4 * hbit). */
static inline __m256i qx_q23_values(const uint8_t *qs, const uint8_t *hmask, int i) {
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256i v = _mm256_and_si256(_mm256_srl_epi16(qx_load(qs + 32 * (i / 4)), _mm_cvtsi32_si128(2 * (i % 4))), m2);
    if (!hmask) return v;
    __m256i hb = _mm256_and_si256(_mm256_srl_epi16(qx_load(hmask), _mm_cvtsi32_si128(i)), one);
    return _mm256_add_epi8(v, _mm256_slli_epi16(hb, 2));
}

static inline void qx_unpack_q23_K(const uint8_t *qs, const uint8_t *hmask, qx_kblock *k) {
    for (int i = 0; i < 8; i++) k->q[i] = qx_q23_values(qs, hmask, i);
}

static inline void qx_unpack_q2_K(const finch_block_q2_K *w, qx_kblock *k) {
    qx_unpack_q23_K(w->qs, NULL, k);
    int16_t mn16[16];
    for (int s = 0; s < 16; s++) mn16[s] = (int16_t)(w->scales[s] >> 4);
    for (int i = 0; i < 8; i++) k->sc[i] = qx_scale_pair(w->scales[2 * i] & 0xF, w->scales[2 * i + 1] & 0xF);
    k->m16 = qx_load(mn16);
    k->d = qx_f16(w->d);
    k->dmin = qx_f16(w->dmin);
    k->shift = 0;
}

/* Q3_K's 16 6-bit scales (minus 32), packed in 12 bytes, decoded at once
 * to 16 int16: scale
 * s has its low 4 bits from the low (s < 8) or high nibble of byte s % 8
 * and bits 4-5 from bits 2(s / 4) of byte 8 + s % 4; minus 32.  Reads the
 * 12 bytes only (the block ends 2 bytes after them). */
static inline __m256i qx_scales_q3(const uint8_t *s12) {
    uint32_t tail;
    memcpy(&tail, s12 + 8, 4);
    __m128i s = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)s12), (int)tail, 2);
    __m128i lo = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7));
    const __m128i low_nib = _mm_setr_epi8(15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0, 0, 0, 0);
    lo = _mm_or_si128(_mm_and_si128(lo, low_nib), _mm_andnot_si128(low_nib, _mm_and_si128(_mm_srli_epi16(lo, 4), _mm_set1_epi8(15))));
    __m128i h = _mm_shuffle_epi8(s, _mm_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11));
    /* group g (bytes 4g..4g+3) wants bits 2g, 2g + 1 at bits 4, 5 */
    const __m128i g0 = _mm_setr_epi32(0x30303030, 0, 0, 0), g1 = _mm_setr_epi32(0, 0x30303030, 0, 0);
    const __m128i g2 = _mm_setr_epi32(0, 0, 0x30303030, 0), g3 = _mm_setr_epi32(0, 0, 0, 0x30303030);
    __m128i hi = _mm_or_si128(_mm_or_si128(_mm_and_si128(_mm_slli_epi16(h, 4), g0), _mm_and_si128(_mm_slli_epi16(h, 2), g1)),
                              _mm_or_si128(_mm_and_si128(h, g2), _mm_and_si128(_mm_srli_epi16(h, 2), g3)));
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32)));
}

static inline void qx_unpack_q3_K(const finch_block_q3_K *w, qx_kblock *k) {
    qx_unpack_q23_K(w->qs, w->hmask, k);
    int16_t sc[16];
    k->m16 = qx_scales_q3(w->scales);
    _mm256_storeu_si256((__m256i *)sc, k->m16);
    for (int i = 0; i < 8; i++) k->sc[i] = qx_scale_pair(sc[2 * i], sc[2 * i + 1]);
    k->d = qx_f16(w->d);
    k->dmin = 0;
    k->shift = 4;
}

/* Q4_K and Q5_K: chunk c (of 4) of 64 values is the low (*lo) and the
 * high (*hi) nibbles of the 32 bytes qs[32c..], plus for Q5_K (qh: its 32
 * bytes, else zero) 16 where bit 2c (lo) or 2c + 1 (hi) of qh is set. */
static inline void qx_q45_chunk(const uint8_t *qs, const __m256i *qh5, int c, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0xF), b4 = _mm256_set1_epi8(0x10);
    __m256i q = qx_load(qs + 32 * c);
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (!qh5) return;
    __m256i qh = *qh5;
    /* bit 2c (2c + 1) to bit 4 of each byte: a 16-bit shift, then the mask */
    __m256i l5 = c < 2 ? _mm256_sll_epi16(qh, _mm_cvtsi32_si128(4 - 2 * c)) : _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c - 4));
    __m256i h5 = c < 2 ? _mm256_sll_epi16(qh, _mm_cvtsi32_si128(3 - 2 * c)) : _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c - 3));
    *lo = _mm256_or_si256(*lo, _mm256_and_si256(l5, b4));
    *hi = _mm256_or_si256(*hi, _mm256_and_si256(h5, b4));
}

static inline void qx_values_q45_K(const uint8_t *qs, const uint8_t *qh5, __m256i *out) {
    __m256i qh = qh5 ? qx_load(qh5) : _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) qx_q45_chunk(qs, qh5 ? &qh : NULL, c, &out[2 * c], &out[2 * c + 1]);
}

static inline void qx_unpack_q45_K(const finch_block_q4_K *w4, const finch_block_q5_K *w5, qx_kblock *k) {
    const uint8_t *scales = w4 ? w4->scales : w5->scales;
    int16_t mn16[16];
    for (int s = 0; s < 8; s++) {
        int sc, mn;
        finch_k4_scale_min(s, scales, &sc, &mn);
        k->sc[s] = _mm256_set1_epi16((int16_t)sc);
        mn16[2 * s] = mn16[2 * s + 1] = (int16_t)mn;
    }
    k->m16 = qx_load(mn16);
    qx_values_q45_K(w4 ? w4->qs : w5->qs, w5 ? w5->qh : NULL, k->q);
    k->d = qx_f16(w4 ? w4->d : w5->d);
    k->dmin = qx_f16(w4 ? w4->dmin : w5->dmin);
    k->shift = 0;
}

/* Q6_K: the quants shifted to 0..63 (unsigned), 32 at a time = two
 * sub-blocks of 16; the shift is taken back exactly with the activations'
 * 16-value sums: sum (q + 32) x - 32 sum x.  Values 32i .. 32i + 31. */
static inline __m256i qx_q6_values(const finch_block_q6_K *w, int i) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    int h = i / 4, j = i % 4;
    __m256i l4 = qx_load(w->ql + 64 * h + 32 * (j & 1)), qh = qx_load(w->qh + 32 * h);
    __m256i nib = j >= 2 ? _mm256_and_si256(_mm256_srli_epi16(l4, 4), m4) : _mm256_and_si256(l4, m4);
    __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), m2);
    return _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
}

static inline void qx_values_q6_K(const finch_block_q6_K *w, __m256i *out) {
    for (int i = 0; i < 8; i++) out[i] = qx_q6_values(w, i);
}

static inline void qx_unpack_q6_K(const finch_block_q6_K *w, qx_kblock *k) {
    qx_values_q6_K(w, k->q);
    for (int i = 0; i < 8; i++) {
        int s0 = 8 * (i / 4) + 2 * (i % 4);
        k->sc[i] = qx_scale_pair(w->scales[s0], w->scales[s0 + 1]);
    }
    k->m16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
    k->d = qx_f16(w->d);
    k->dmin = 0;
    k->shift = 32;
}

/* One token's super-block: the scalar reference's integers and float step. */
static inline float qx_kblock_dot(const qx_kblock *k, const finch_block_q8_K *x, float sumf) {
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < 8; i++) acc = _mm256_add_epi32(acc, qx_dot_scaled(k->q[i], qx_load(x->qs + 32 * i), k->sc[i]));
    int32_t m = qx_bsum_dot(x->bsums, k->m16);
    if (k->shift) return finch_kq_step(sumf, k->d * x->d, qx_hsum(acc) - k->shift * m, k->dmin * x->d, 0);
    return finch_kq_step(sumf, k->d * x->d, qx_hsum(acc), k->dmin * x->d, m);
}

/* finch_kq_step lane by lane (the same IEEE operations in the same order):
 * sumf + ((d * xd) * isum - (dmin * xd) * m), the integers exact; for the
 * shifted types (Q3_K, Q6_K: shift 4 or 32, no mins) isum - shift * m and
 * no min term, as qx_kblock_dot. */
static inline __m256 qx_kstep8(__m256i isum, __m256i m, __m256 d, __m256 dmin, __m256 xd, int shift, __m256 sumf) {
    __m256 dd = _mm256_mul_ps(d, xd), dm = _mm256_mul_ps(dmin, xd);
    if (shift) {
        isum = _mm256_sub_epi32(isum, _mm256_mullo_epi32(m, _mm256_set1_epi32(shift)));
        m = _mm256_setzero_si256();
    }
    __m256 step = _mm256_sub_ps(_mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum)), _mm256_mul_ps(dm, _mm256_cvtepi32_ps(m)));
    return _mm256_add_ps(sumf, step);
}

/* Eight tokens of one super-block at once: the per-token integers reduced
 * together, then finch_kq_step's float operations lane by lane (the same
 * IEEE operations in the same order, so the same bits as one at a time). */
static inline __m256 qx_kblock_dot8(const qx_kblock *k, const finch_block_q8_K *const *x, __m256 sumf) {
    __m256i acc[8], ms[8];
    float xd[8];
    for (int t = 0; t < 8; t++) {
        __m256i a = _mm256_setzero_si256();
        for (int i = 0; i < 8; i++) a = _mm256_add_epi32(a, qx_dot_scaled(k->q[i], qx_load(x[t]->qs + 32 * i), k->sc[i]));
        acc[t] = a;
        ms[t] = _mm256_madd_epi16(qx_load(x[t]->bsums), k->m16);
        xd[t] = x[t]->d;
    }
    return qx_kstep8(qx_hsum8(acc), qx_hsum8(ms), _mm256_set1_ps(k->d), _mm256_set1_ps(k->dmin), _mm256_loadu_ps(xd),
                     k->shift, sumf);
}

static inline void qx_unpack_k(finch_dtype t, const void *vw, size_t b, qx_kblock *k) {
    if (t == FINCH_Q6_K) qx_unpack_q6_K((const finch_block_q6_K *)vw + b, k);
    else if (t == FINCH_Q2_K) qx_unpack_q2_K((const finch_block_q2_K *)vw + b, k);
    else if (t == FINCH_Q3_K) qx_unpack_q3_K((const finch_block_q3_K *)vw + b, k);
    else if (t == FINCH_Q5_K) qx_unpack_q45_K(NULL, (const finch_block_q5_K *)vw + b, k);
    else qx_unpack_q45_K((const finch_block_q4_K *)vw + b, NULL, k);
}

/* One token, super-blocks b .. b+7: their integer sums reduced together,
 * the float steps computed lane by lane, then added to sumf in block order
 * (the scalar reference's operations, so its bits). */
static inline float qx_kblocks_dot8(finch_dtype t, const void *vw, size_t b, const void *vx, float sumf) {
    const finch_block_q8_K *x = (const finch_block_q8_K *)vx + b;
    __m256i acc[8], ms[8];
    float d[8], dmin[8], xd[8];
    int shift = 0;
    for (int j = 0; j < 8; j++) {
        qx_kblock k;
        qx_unpack_k(t, vw, b + (size_t)j, &k);
        __m256i a = _mm256_setzero_si256();
        for (int i = 0; i < 8; i++) a = _mm256_add_epi32(a, qx_dot_scaled(k.q[i], qx_load(x[j].qs + 32 * i), k.sc[i]));
        acc[j] = a;
        ms[j] = _mm256_madd_epi16(qx_load(x[j].bsums), k.m16);
        d[j] = k.d, dmin[j] = k.dmin, xd[j] = x[j].d, shift = k.shift;
    }
    float step[8]; /* the steps lane by lane (-0 + s is s), then added in block order */
    _mm256_storeu_ps(step, qx_kstep8(qx_hsum8(acc), qx_hsum8(ms), _mm256_loadu_ps(d), _mm256_loadu_ps(dmin),
                                     _mm256_loadu_ps(xd), shift, _mm256_set1_ps(-0.0f)));
    for (int j = 0; j < 8; j++) sumf += step[j];
    return sumf;
}

static inline void dotn_k_x86(finch_dtype t, const void *vw, const void *vx, size_t xs, size_t nt, size_t n,
                              float *out, size_t os) {
    qx_kblock k;
    if (nt == 8) {
        __m256 sumf = _mm256_setzero_ps();
        const finch_block_q8_K *x[8];
        for (size_t b = 0; b < n / FINCH_QK_K; b++) {
            qx_unpack_k(t, vw, b, &k);
            for (int i = 0; i < 8; i++) x[i] = (const finch_block_q8_K *)((const char *)vx + i * xs) + b;
            sumf = qx_kblock_dot8(&k, x, sumf);
        }
        float r[8];
        _mm256_storeu_ps(r, sumf);
        for (size_t i = 0; i < 8; i++) out[i * os] = r[i];
        return;
    }
    float sumf[FINCH_DOTN_TOKENS] = {0};
    size_t b = 0;
    if (nt == 1) /* one token: eight super-blocks reduced together */
        for (; b + 8 <= n / FINCH_QK_K; b += 8) sumf[0] = qx_kblocks_dot8(t, vw, b, vx, sumf[0]);
    for (; b < n / FINCH_QK_K; b++) {
        qx_unpack_k(t, vw, b, &k);
        for (size_t i = 0; i < nt; i++)
            sumf[i] = qx_kblock_dot(&k, (const finch_block_q8_K *)((const char *)vx + i * xs) + b, sumf[i]);
    }
    for (size_t i = 0; i < nt; i++) out[i * os] = sumf[i];
}

#define QX_K_DOTS(T, name)                                                                             \
    static void dotn_##name##_x86(const void *w, const void *x, size_t xs, size_t nt, size_t n,        \
                                  float *out, size_t os) {                                           \
        dotn_k_x86(T, w, x, xs, nt, n, out, os);                                                     \
    }                                                                                                \
    static float dot_##name##_x86(const void *w, const void *x, size_t n) {                          \
        float r;                                                                                     \
        dotn_k_x86(T, w, x, 0, 1, n, &r, 1);                                                         \
        return r;                                                                                    \
    }
QX_K_DOTS(FINCH_Q2_K, q2_K)
QX_K_DOTS(FINCH_Q3_K, q3_K)
QX_K_DOTS(FINCH_Q4_K, q4_K)
QX_K_DOTS(FINCH_Q5_K, q5_K)
QX_K_DOTS(FINCH_Q6_K, q6_K)

/* The table entries: vec_dot = {QX_VEC_DOT}, vec_dotn = {QX_VEC_DOTN}. */
#define QX_VEC_DOT \
    [FINCH_Q4_0] = dot_q4_0_x86, [FINCH_Q4_1] = dot_q4_1_x86, [FINCH_Q5_0] = dot_q5_0_x86, \
    [FINCH_Q5_1] = dot_q5_1_x86, [FINCH_IQ4_NL] = dot_iq4_nl_x86, [FINCH_IQ4_XS] = dot_iq4_xs_x86, \
    [FINCH_Q2_K] = dot_q2_K_x86, [FINCH_Q3_K] = dot_q3_K_x86, [FINCH_Q4_K] = dot_q4_K_x86, \
    [FINCH_Q5_K] = dot_q5_K_x86, [FINCH_Q6_K] = dot_q6_K_x86
#define QX_VEC_DOTN \
    [FINCH_Q4_0] = dotn_q4_0_x86, [FINCH_Q4_1] = dotn_q4_1_x86, [FINCH_Q5_0] = dotn_q5_0_x86, \
    [FINCH_Q5_1] = dotn_q5_1_x86, [FINCH_IQ4_NL] = dotn_iq4_nl_x86, [FINCH_IQ4_XS] = dotn_iq4_xs_x86, \
    [FINCH_Q2_K] = dotn_q2_K_x86, [FINCH_Q3_K] = dotn_q3_K_x86, [FINCH_Q4_K] = dotn_q4_K_x86, \
    [FINCH_Q5_K] = dotn_q5_K_x86, [FINCH_Q6_K] = dotn_q6_K_x86

#endif
