/* quants.c - ggml's quantized types: the type table, reference
 * dequantization, activation quantization and dot products (quants.h).
 *
 * Written from the block layouts in ggml-common.h and the arithmetic of
 * ggml-quants.c / ggml-cpu/quants.c (read, not copied).  The K-quants are
 * unpacked into a plain super-block (256 small integers, one scale and one
 * min per sub-block) that both the dequantizer and the dot product read,
 * so one unpacking defines each layout. */
#include "quants.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(finch_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(finch_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(finch_block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(finch_block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(finch_block_q8_1) == 36, "q8_1 block");
_Static_assert(sizeof(finch_block_q2_K) == 84, "q2_K block");
_Static_assert(sizeof(finch_block_q3_K) == 110, "q3_K block");
_Static_assert(sizeof(finch_block_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(finch_block_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(finch_block_q6_K) == 210, "q6_K block");
_Static_assert(sizeof(finch_block_q8_K) == 292, "q8_K block");
_Static_assert(sizeof(finch_block_iq4_nl) == 18, "iq4_nl block");
_Static_assert(sizeof(finch_block_iq4_xs) == 136, "iq4_xs block");

const int8_t finch_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                       1,    13,   25,  38,  53,  69,  89,  113};

/* ------------------------------------------------------------ type table */

#define Q(T, name, blk, partner, ns, o0, o1) \
    {T, #name, blk, sizeof(finch_block_##name), partner, ns, {o0, o1}}
static const finch_quant_traits traits[] = {
    Q(FINCH_Q4_0, q4_0, FINCH_QK, FINCH_Q8_0, 1, 0, 0),
    Q(FINCH_Q4_1, q4_1, FINCH_QK, FINCH_Q8_1, 2, 0, 2),
    Q(FINCH_Q5_0, q5_0, FINCH_QK, FINCH_Q8_0, 1, 0, 0),
    Q(FINCH_Q5_1, q5_1, FINCH_QK, FINCH_Q8_1, 2, 0, 2),
    Q(FINCH_Q8_0, q8_0, FINCH_QK, FINCH_Q8_0, 1, 0, 0),
    Q(FINCH_Q8_1, q8_1, FINCH_QK, FINCH_Q8_1, 2, 0, 2),
    Q(FINCH_Q2_K, q2_K, FINCH_QK_K, FINCH_Q8_K, 2, 80, 82),
    Q(FINCH_Q3_K, q3_K, FINCH_QK_K, FINCH_Q8_K, 1, 108, 0),
    Q(FINCH_Q4_K, q4_K, FINCH_QK_K, FINCH_Q8_K, 2, 0, 2),
    Q(FINCH_Q5_K, q5_K, FINCH_QK_K, FINCH_Q8_K, 2, 0, 2),
    Q(FINCH_Q6_K, q6_K, FINCH_QK_K, FINCH_Q8_K, 1, 208, 0),
    Q(FINCH_Q8_K, q8_K, FINCH_QK_K, FINCH_Q8_K, 0, 0, 0),
    Q(FINCH_IQ4_NL, iq4_nl, FINCH_QK, FINCH_Q8_0, 1, 0, 0),
    Q(FINCH_IQ4_XS, iq4_xs, FINCH_QK_K, FINCH_Q8_K, 1, 0, 0),
};
#undef Q
_Static_assert(sizeof(finch_block_q8_0) == 34, "q8_0 block");

const finch_quant_traits *finch_quant_traits_of(finch_dtype t) {
    for (size_t i = 0; i < sizeof traits / sizeof traits[0]; i++)
        if (traits[i].type == t) return &traits[i];
    return NULL;
}

bool finch_weight_type_supported(uint32_t id) {
    if (id == FINCH_F32 || id == FINCH_F16 || id == FINCH_BF16) return true;
    return id != FINCH_Q8_1 && id != FINCH_Q8_K && finch_quant_traits_of((finch_dtype)id);
}

const char *finch_ggml_type_name(uint32_t id) {
    static const char *names[] = {
        "f32", "f16", "q4_0", "q4_1", "type 4 (removed)", "type 5 (removed)", "q5_0", "q5_1",
        "q8_0", "q8_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs",
        "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64",
        "f64", "iq1_m", "bf16", "q4_0_4_4 (removed)", "q4_0_4_8 (removed)", "q4_0_8_8 (removed)",
        "tq1_0", "tq2_0", "iq4_nl_4_4 (removed)", "iq4_nl_4_8 (removed)", "iq4_nl_8_8 (removed)",
        "mxfp4", "nvfp4", "q1_0", "q2_0"};
    return id < sizeof names / sizeof names[0] ? names[id] : "unknown";
}

const char *finch_supported_types(void) {
    return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_nl, iq4_xs";
}

/* ---------------------------------------------- K-quant super-block unpack */

typedef finch_kblock kblock; /* quants.h */

/* Q2_K and Q3_K share one bit layout: 2-bit fields, value e = 128h + 32j +
 * l lives in qs[32h + l] at bits 2j (h: which 128, j: 0..3, l: 0..31). */
static int q2_field(const uint8_t *qs, size_t e) {
    size_t h = e / 128, j = (e % 128) / 32, l = e % 32;
    return (qs[32 * h + l] >> (2 * j)) & 3;
}

static void scales_q2_K(const finch_block_q2_K *b, kblock *k) {
    for (size_t s = 0; s < 16; s++) {
        k->sc[s] = b->scales[s] & 0xF;
        k->mn[s] = b->scales[s] >> 4;
    }
    k->sub = 16;
    k->d = finch_f16_to_f32(b->d);
    k->dmin = finch_f16_to_f32(b->dmin);
}

static void unpack_q2_K(const finch_block_q2_K *b, kblock *k) {
    for (size_t e = 0; e < FINCH_QK_K; e++) k->q[e] = (int8_t)q2_field(b->qs, e);
    scales_q2_K(b, k);
}

/* Q3_K: the high bit of value e = 128h + 32j + l is bit 4h + j of hmask[l]
 * (set: +0, clear: -4); 16 6-bit scales (minus 32) packed in 12 bytes. */
static void scales_q3_K(const finch_block_q3_K *b, kblock *k) {
    for (size_t s = 0; s < 16; s++) {
        int lo = s < 8 ? b->scales[s] & 0xF : b->scales[s - 8] >> 4;
        int hi = (b->scales[8 + s % 4] >> (2 * (s / 4))) & 3;
        k->sc[s] = (lo | hi << 4) - 32;
        k->mn[s] = 0;
    }
    k->sub = 16;
    k->d = finch_f16_to_f32(b->d);
    k->dmin = 0;
}

static void unpack_q3_K(const finch_block_q3_K *b, kblock *k) {
    for (size_t e = 0; e < FINCH_QK_K; e++) {
        size_t bit = 4 * (e / 128) + (e % 128) / 32;
        int hi = (b->hmask[e % 32] >> bit) & 1;
        k->q[e] = (int8_t)(q2_field(b->qs, e) - (hi ? 0 : 4));
    }
    scales_q3_K(b, k);
}

/* Q4_K/Q5_K: value e = 64c + 32u + l is the low (u = 0) or high (u = 1)
 * nibble of qs[32c + l]; Q5_K adds 16 when bit 2c + u of qh[l] is set. */
static void scales_q45_K(const uint8_t *scales, uint16_t d, uint16_t dmin, kblock *k) {
    for (int s = 0; s < 8; s++) finch_k4_scale_min(s, scales, &k->sc[s], &k->mn[s]);
    k->sub = 32;
    k->d = finch_f16_to_f32(d);
    k->dmin = finch_f16_to_f32(dmin);
}

static void unpack_q45_K(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh,
                         uint16_t d, uint16_t dmin, kblock *k) {
    for (size_t e = 0; e < FINCH_QK_K; e++) {
        size_t c = e / 64, u = (e % 64) / 32, l = e % 32;
        int v = (qs[32 * c + l] >> (4 * u)) & 0xF;
        if (qh && (qh[l] >> (2 * c + u) & 1)) v += 16;
        k->q[e] = (int8_t)v;
    }
    scales_q45_K(scales, d, dmin, k);
}

/* Q6_K: value e = 128h + 32j + l: low nibble of ql[64h + l + 32(j & 1)]
 * (high nibble when j >= 2), top 2 bits at bits 2j of qh[32h + l]; minus
 * 32.  16 int8 scales, one per 16 values. */
static void scales_q6_K(const finch_block_q6_K *b, kblock *k) {
    for (size_t s = 0; s < 16; s++) {
        k->sc[s] = b->scales[s];
        k->mn[s] = 0;
    }
    k->sub = 16;
    k->d = finch_f16_to_f32(b->d);
    k->dmin = 0;
}

static void unpack_q6_K(const finch_block_q6_K *b, kblock *k) {
    for (size_t e = 0; e < FINCH_QK_K; e++) {
        size_t h = e / 128, j = (e % 128) / 32, l = e % 32;
        int lo = (b->ql[64 * h + l + 32 * (j & 1)] >> (4 * (j >> 1))) & 0xF;
        int hi = (b->qh[32 * h + l] >> (2 * j)) & 3;
        k->q[e] = (int8_t)((lo | hi << 4) - 32);
    }
    scales_q6_K(b, k);
}

static void unpack_k(finch_dtype t, const void *blk, kblock *k) {
    switch (t) {
    case FINCH_Q2_K: unpack_q2_K(blk, k); break;
    case FINCH_Q3_K: unpack_q3_K(blk, k); break;
    case FINCH_Q4_K: {
        const finch_block_q4_K *b = blk;
        unpack_q45_K(b->scales, b->qs, NULL, b->d, b->dmin, k);
        break;
    }
    case FINCH_Q5_K: {
        const finch_block_q5_K *b = blk;
        unpack_q45_K(b->scales, b->qs, b->qh, b->d, b->dmin, k);
        break;
    }
    default: unpack_q6_K(blk, k); break;
    }
}

static int iq4_xs_scale(const finch_block_iq4_xs *b, int ib);

/* IQ4_XS in the same form: 8 scales ls - 32 per 32 values, no min. */
static void scales_iq4_xs(const finch_block_iq4_xs *b, kblock *k) {
    for (int s = 0; s < 8; s++) {
        k->sc[s] = iq4_xs_scale(b, s);
        k->mn[s] = 0;
    }
    k->sub = 32;
    k->d = finch_f16_to_f32(b->d);
    k->dmin = 0;
}

void finch_kblock_scales(finch_dtype t, const void *blk, finch_kblock *k) {
    switch (t) {
    case FINCH_IQ4_XS: scales_iq4_xs(blk, k); break;
    case FINCH_Q2_K: scales_q2_K(blk, k); break;
    case FINCH_Q3_K: scales_q3_K(blk, k); break;
    case FINCH_Q4_K: {
        const finch_block_q4_K *b = blk;
        scales_q45_K(b->scales, b->d, b->dmin, k);
        break;
    }
    case FINCH_Q5_K: {
        const finch_block_q5_K *b = blk;
        scales_q45_K(b->scales, b->d, b->dmin, k);
        break;
    }
    default: scales_q6_K(blk, k); break;
    }
}

/* ggml's float order: (d * sc) * q - dmin * mn (Q3_K and Q6_K have no
 * min: the subtraction of 0 changes nothing). */
static void dequant_k(const kblock *k, float *out) {
    for (size_t e = 0; e < FINCH_QK_K; e++) {
        size_t s = e / k->sub;
        float dl = k->d * (float)k->sc[s];
        out[e] = dl * (float)k->q[e] - k->dmin * (float)k->mn[s]; /* "- 0" is exact */
    }
}

/* ------------------------------------------------------- dequantization */

static void dequant_q4_0(const finch_block_q4_0 *b, float *y) {
    float d = finch_f16_to_f32(b->d);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b->qs[j] & 0xF) - 8) * d;
        y[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
    }
}

static void dequant_q4_1(const finch_block_q4_1 *b, float *y) {
    float d = finch_f16_to_f32(b->d), m = finch_f16_to_f32(b->m);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b->qs[j] & 0xF) * d + m;
        y[j + 16] = (float)(b->qs[j] >> 4) * d + m;
    }
}

/* The fifth bit of value j (0..31) is bit j of qh. */
static int q5_value(const uint8_t *qs, const uint8_t *qh, int j) {
    uint32_t h;
    memcpy(&h, qh, 4);
    int lo = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
    return lo | (int)((h >> j) & 1) << 4;
}

static void dequant_q5_0(const finch_block_q5_0 *b, float *y) {
    float d = finch_f16_to_f32(b->d);
    for (int j = 0; j < 32; j++) y[j] = (float)(q5_value(b->qs, b->qh, j) - 16) * d;
}

static void dequant_q5_1(const finch_block_q5_1 *b, float *y) {
    float d = finch_f16_to_f32(b->d), m = finch_f16_to_f32(b->m);
    for (int j = 0; j < 32; j++) y[j] = (float)q5_value(b->qs, b->qh, j) * d + m;
}

static void dequant_iq4_nl(const finch_block_iq4_nl *b, float *y) {
    float d = finch_f16_to_f32(b->d);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)finch_iq4nl_values[b->qs[j] & 0xF];
        y[j + 16] = d * (float)finch_iq4nl_values[b->qs[j] >> 4];
    }
}

/* IQ4_XS: 8 sub-blocks of 32, 6-bit scales (low 4 bits in scales_l, high
 * 2 in scales_h) minus 32. */
static int iq4_xs_scale(const finch_block_iq4_xs *b, int ib) {
    return (((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b->scales_h >> (2 * ib)) & 3) << 4)) - 32;
}

static void dequant_iq4_xs(const finch_block_iq4_xs *b, float *y) {
    float d = finch_f16_to_f32(b->d);
    for (int ib = 0; ib < 8; ib++) {
        float dl = d * (float)iq4_xs_scale(b, ib);
        const uint8_t *qs = b->qs + 16 * ib;
        for (int j = 0; j < 16; j++) {
            y[32 * ib + j] = dl * (float)finch_iq4nl_values[qs[j] & 0xF];
            y[32 * ib + j + 16] = dl * (float)finch_iq4nl_values[qs[j] >> 4];
        }
    }
}

void finch_dequantize_row(finch_dtype t, const void *row, float *out, size_t n) {
    const finch_quant_traits *tr = finch_quant_traits_of(t);
    if (!tr) return;
    const uint8_t *p = row;
    for (size_t b = 0; b < n / tr->block; b++, p += tr->bytes, out += tr->block) {
        switch (t) {
        case FINCH_Q4_0: dequant_q4_0((const void *)p, out); break;
        case FINCH_Q4_1: dequant_q4_1((const void *)p, out); break;
        case FINCH_Q5_0: dequant_q5_0((const void *)p, out); break;
        case FINCH_Q5_1: dequant_q5_1((const void *)p, out); break;
        case FINCH_IQ4_NL: dequant_iq4_nl((const void *)p, out); break;
        case FINCH_IQ4_XS: dequant_iq4_xs((const void *)p, out); break;
        case FINCH_Q8_0: {
            const finch_block_q8_0 *q = (const void *)p;
            float d = finch_f16_to_f32(q->d);
            for (int j = 0; j < 32; j++) out[j] = d * (float)q->qs[j];
            break;
        }
        case FINCH_Q2_K: case FINCH_Q3_K: case FINCH_Q4_K: case FINCH_Q5_K: case FINCH_Q6_K: {
            kblock k;
            unpack_k(t, p, &k);
            dequant_k(&k, out);
            break;
        }
        default: memset(out, 0, tr->block * sizeof(float)); break; /* activation-only types */
        }
    }
}

/* ------------------------------------------------- activation quantizers */

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 puts
 * the integer in the low mantissa bits (ggml's nearest_int; the result
 * does not depend on the CPU since f32 addition is IEEE everywhere). */
static int nearest_int(float v) {
    float f = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* The activation rule of Q8_0 and Q8_1 (llama.cpp's x86 quantize_row_q8_0
 * and quantize_row_q8_1, chosen for every CPU: docs/quantization.md), per
 * 32 values: d = max|x| / 127 (stored as f16), id = 127 / max|x| (one
 * division, not 1/d), q = x * id rounded half to even.  Returns sum(q). */
static float quantize_32_act(const float *x, uint16_t *d16, int8_t *qs, int *sum) {
    float amax = 0;
    for (int j = 0; j < FINCH_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
    *d16 = finch_f32_to_f16(d);
    *sum = 0;
    for (int j = 0; j < FINCH_QK; j++) {
        qs[j] = (int8_t)nearest_int(x[j] * id);
        *sum += qs[j];
    }
    return d;
}

/* Q8_1: the Q8_0 rule, plus s = f16(d * sum(q)) with the f32 d. */
static void quantize_q8_1(const float *x, finch_block_q8_1 *y, size_t n) {
    for (size_t i = 0; i < n / FINCH_QK; i++, x += FINCH_QK) {
        int sum;
        float d = quantize_32_act(x, &y[i].d, y[i].qs, &sum);
        y[i].s = finch_f32_to_f16(d * (float)sum);
    }
}

static void quantize_q8_0_act(const float *x, finch_block_q8_0 *y, size_t n) {
    int sum;
    for (size_t i = 0; i < n / FINCH_QK; i++, x += FINCH_QK) quantize_32_act(x, &y[i].d, y[i].qs, &sum);
}

/* Q8_K (ggml's quantize_row_q8_K_ref, which llama.cpp's x86 backend also
 * uses): iscale = -127 / x_max with x_max the signed value of largest
 * magnitude, q = min(127, nearest_int(iscale * x)), d = 1 / iscale. */
static void quantize_q8_K(const float *x, finch_block_q8_K *y, size_t n) {
    for (size_t i = 0; i < n / FINCH_QK_K; i++, x += FINCH_QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < FINCH_QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(&y[i], 0, sizeof y[i]);
        if (amax == 0) continue;
        float iscale = -127.0f / max;
        for (int j = 0; j < FINCH_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

void finch_quantize_act(finch_dtype partner, const float *x, void *out, size_t n) {
    switch (partner) {
    case FINCH_Q8_0: quantize_q8_0_act(x, out, n); break;
    case FINCH_Q8_1: quantize_q8_1(x, out, n); break;
    case FINCH_Q8_K: quantize_q8_K(x, out, n); break;
    default: break;
    }
}

/* Q4_0 weights (ggml's quantize_row_q4_0_ref): d = x_max / -8 with x_max
 * the signed value of largest magnitude, q = min(15, (int)(x / d + 8.5)). */
void finch_quantize_q4_0(const float *x, void *out, size_t n) {
    finch_block_q4_0 *y = out;
    for (size_t i = 0; i < n / FINCH_QK; i++, x += FINCH_QK) {
        float amax = 0, max = 0;
        for (int j = 0; j < FINCH_QK; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
        y[i].d = finch_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int a = (int)(x[j] * id + 8.5f), b = (int)(x[j + 16] * id + 8.5f);
            y[i].qs[j] = (uint8_t)((a < 15 ? a : 15) | (b < 15 ? b : 15) << 4);
        }
    }
}

/* ------------------------------------------------------------ dot products
 * w: weight row, x: activation row of the partner type, n values.  Integer
 * sums per block are exact; the float steps follow ggml's generic code
 * for the 32-value types and IQ4_XS.  For the K-quants each super-block
 * gives one exact integer sum of scale * q_w * q_x (and one of min *
 * bsum), then sumf += d * isum - dmin * summ (finch_kq_step); ggml's
 * generic code splits the first sum over 8 float lanes, its x86 code over
 * other lanes: the same value up to f32 rounding (docs/quantization.md). */

static float dot_q4_0(const void *vw, const void *vx, size_t n) {
    const finch_block_q4_0 *w = vw;
    const finch_block_q8_0 *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        sumf += (float)sumi * finch_f16_to_f32(w[b].d) * finch_f16_to_f32(x[b].d);
    }
    return sumf;
}

static float dot_q4_1(const void *vw, const void *vx, size_t n) {
    const finch_block_q4_1 *w = vw;
    const finch_block_q8_1 *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += (w[b].qs[j] & 0xF) * x[b].qs[j] + (w[b].qs[j] >> 4) * x[b].qs[j + 16];
        sumf += (finch_f16_to_f32(w[b].d) * finch_f16_to_f32(x[b].d)) * (float)sumi +
                finch_f16_to_f32(w[b].m) * finch_f16_to_f32(x[b].s);
    }
    return sumf;
}

static float dot_q5_0(const void *vw, const void *vx, size_t n) {
    const finch_block_q5_0 *w = vw;
    const finch_block_q8_0 *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += (q5_value(w[b].qs, w[b].qh, j) - 16) * x[b].qs[j];
        sumf += (finch_f16_to_f32(w[b].d) * finch_f16_to_f32(x[b].d)) * (float)sumi;
    }
    return sumf;
}

static float dot_q5_1(const void *vw, const void *vx, size_t n) {
    const finch_block_q5_1 *w = vw;
    const finch_block_q8_1 *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += q5_value(w[b].qs, w[b].qh, j) * x[b].qs[j];
        sumf += (finch_f16_to_f32(w[b].d) * finch_f16_to_f32(x[b].d)) * (float)sumi +
                finch_f16_to_f32(w[b].m) * finch_f16_to_f32(x[b].s);
    }
    return sumf;
}

static float dot_q8_0(const void *vw, const void *vx, size_t n) {
    const finch_block_q8_0 *w = vw, *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += w[b].qs[j] * x[b].qs[j];
        sumf += (finch_f16_to_f32(w[b].d) * finch_f16_to_f32(x[b].d)) * (float)sumi;
    }
    return sumf;
}

static float dot_iq4_nl(const void *vw, const void *vx, size_t n) {
    const finch_block_iq4_nl *w = vw;
    const finch_block_q8_0 *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK; b++) {
        float d = finch_f16_to_f32(x[b].d) * finch_f16_to_f32(w[b].d);
        int s1 = 0, s2 = 0;
        for (int j = 0; j < 16; j++) {
            s1 += x[b].qs[j] * finch_iq4nl_values[w[b].qs[j] & 0xF];
            s2 += x[b].qs[j + 16] * finch_iq4nl_values[w[b].qs[j] >> 4];
        }
        sumf += d * (float)(s1 + s2);
    }
    return sumf;
}

static float dot_iq4_xs(const void *vw, const void *vx, size_t n) {
    const finch_block_iq4_xs *w = vw;
    const finch_block_q8_K *x = vx;
    float sumf = 0;
    for (size_t b = 0; b < n / FINCH_QK_K; b++) {
        float d4d8 = finch_f16_to_f32(w[b].d) * x[b].d;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = w[b].qs + 16 * ib;
            const int8_t *q8 = x[b].qs + 32 * ib;
            int s1 = 0, s2 = 0;
            for (int j = 0; j < 16; j++) {
                s1 += q8[j] * finch_iq4nl_values[qs[j] & 0xF];
                s2 += q8[j + 16] * finch_iq4nl_values[qs[j] >> 4];
            }
            sumf += (d4d8 * (float)iq4_xs_scale(&w[b], ib)) * (float)(s1 + s2);
        }
    }
    return sumf;
}

/* Every K-quant: unpack, then the two exact integer sums. */
static float dot_k(finch_dtype t, size_t bytes, const void *vw, const void *vx, size_t n) {
    const uint8_t *w = vw;
    const finch_block_q8_K *x = vx;
    float sumf = 0;
    kblock k;
    for (size_t b = 0; b < n / FINCH_QK_K; b++, w += bytes) {
        unpack_k(t, w, &k);
        int32_t isum = 0, summ = 0;
        for (size_t s = 0; s < FINCH_QK_K / k.sub; s++) {
            int32_t si = 0;
            for (size_t e = s * k.sub; e < (s + 1) * k.sub; e++) si += k.q[e] * x[b].qs[e];
            isum += k.sc[s] * si;
            for (size_t g = s * k.sub / 16; g < (s + 1) * k.sub / 16; g++) summ += k.mn[s] * x[b].bsums[g];
        }
        sumf = finch_kq_step(sumf, k.d * x[b].d, isum, k.dmin * x[b].d, summ);
    }
    return sumf;
}

static float dot_q2_K(const void *w, const void *x, size_t n) {
    return dot_k(FINCH_Q2_K, sizeof(finch_block_q2_K), w, x, n);
}
static float dot_q3_K(const void *w, const void *x, size_t n) {
    return dot_k(FINCH_Q3_K, sizeof(finch_block_q3_K), w, x, n);
}
static float dot_q4_K(const void *w, const void *x, size_t n) {
    return dot_k(FINCH_Q4_K, sizeof(finch_block_q4_K), w, x, n);
}
static float dot_q5_K(const void *w, const void *x, size_t n) {
    return dot_k(FINCH_Q5_K, sizeof(finch_block_q5_K), w, x, n);
}
static float dot_q6_K(const void *w, const void *x, size_t n) {
    return dot_k(FINCH_Q6_K, sizeof(finch_block_q6_K), w, x, n);
}

finch_vec_dot_fn finch_vec_dot_ref(finch_dtype t) {
    switch (t) {
    case FINCH_Q4_0: return dot_q4_0;
    case FINCH_Q4_1: return dot_q4_1;
    case FINCH_Q5_0: return dot_q5_0;
    case FINCH_Q5_1: return dot_q5_1;
    case FINCH_Q8_0: return dot_q8_0;
    case FINCH_Q2_K: return dot_q2_K;
    case FINCH_Q3_K: return dot_q3_K;
    case FINCH_Q4_K: return dot_q4_K;
    case FINCH_Q5_K: return dot_q5_K;
    case FINCH_Q6_K: return dot_q6_K;
    case FINCH_IQ4_NL: return dot_iq4_nl;
    case FINCH_IQ4_XS: return dot_iq4_xs;
    default: return NULL;
    }
}
