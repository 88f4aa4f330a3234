/* quants.h - ggml's quantized block types: layouts, the type table, the
 * scalar reference dequantizers, activation quantizers and dot products.
 *
 * Every block layout below is ggml's (ggml-common.h): the byte sizes are
 * checked by static asserts and the GGUF data is read in place.  A weight
 * row of type T meets an activation row quantized to T's partner (Q8_0,
 * Q8_1 or Q8_K, as in llama.cpp's CPU backend); the dot product sums
 * integer products exactly and applies the scales in a fixed order
 * (docs/quantization.md).  The SIMD dot products in kernels_avx2.c and
 * kernels_avx512.c compute the same integer sums and the same float steps,
 * so they return the same bits as these. */
#ifndef FINCH_QUANTS_H
#define FINCH_QUANTS_H

#include "util.h"

#define FINCH_QK 32    /* values per block of the 32-value types */
#define FINCH_QK_K 256 /* values per super-block of the K-quants and IQ4_XS */

typedef struct { uint16_t d; uint8_t qs[16]; } finch_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } finch_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } finch_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } finch_block_q5_1;
/* s = d * sum(qs), used for the min term of Q4_1/Q5_1. */
typedef struct { uint16_t d, s; int8_t qs[32]; } finch_block_q8_1;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } finch_block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } finch_block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } finch_block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } finch_block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } finch_block_q6_K;
/* d is f32 here; bsums[j] = sum of qs[16j .. 16j+15]. */
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } finch_block_q8_K;
typedef struct { uint16_t d; uint8_t qs[16]; } finch_block_iq4_nl;
typedef struct { uint16_t d, scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } finch_block_iq4_xs;

/* The 16 values of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl). */
extern const int8_t finch_iq4nl_values[16];

typedef struct {
    finch_dtype type;
    const char *name;     /* ggml's type name, as llama.cpp prints it */
    size_t block;         /* values per block                          */
    size_t bytes;         /* bytes per block                           */
    finch_dtype partner;  /* activation type of the dot product        */
    uint8_t n_scales;     /* f16 scale fields per block (NaN/Inf scan) */
    uint8_t scale_off[2]; /* their byte offsets in the block           */
} finch_quant_traits;

/* The traits of a quantized type (weights and the activation-only Q8_1,
 * Q8_K); NULL for F32/F16/BF16 and unknown ids. */
const finch_quant_traits *finch_quant_traits_of(finch_dtype t);
/* Whether a tensor of this ggml type id can be loaded from a file. */
bool finch_weight_type_supported(uint32_t id);
/* ggml's name of any type id ("q4_K", "iq2_xxs", "type 4 (removed)"). */
const char *finch_ggml_type_name(uint32_t id);
/* "f32, f16, bf16, q4_0, ...": the loadable types. */
const char *finch_supported_types(void);

/* Reference dequantization of one row of n values (n a multiple of the
 * block), with ggml's float operations in ggml's order. */
void finch_dequantize_row(finch_dtype t, const void *row, float *out, size_t n);
/* Quantize n activations to Q8_0, Q8_1 or Q8_K (ggml's reference rules:
 * docs/quantization.md). */
void finch_quantize_act(finch_dtype partner, const float *x, void *out, size_t n);
/* Weight quantizers for `finch convert` (ggml's reference Q4_0 rule). */
void finch_quantize_q4_0(const float *x, void *out, size_t n);

/* dot(weight row w of type T, activation row x of T's partner), n values. */
typedef float (*finch_vec_dot_fn)(const void *w, const void *x, size_t n);
finch_vec_dot_fn finch_vec_dot_ref(finch_dtype t);

/* A K-quant super-block as integers: value e is (d * sc[e / sub]) * q[e] -
 * dmin * mn[e / sub], the form every K-quant reduces to. */
typedef struct {
    int8_t q[FINCH_QK_K];
    int sc[16], mn[16];
    size_t sub; /* values per scale: 16 or 32 */
    float d, dmin;
} finch_kblock;
/* Only the scales of a Q2_K..Q6_K block: sc, mn, sub, d and dmin of k
 * (and of an IQ4_XS block: sc = its 8 signed scales, sub 32, no min). */
void finch_kblock_scales(finch_dtype t, const void *blk, finch_kblock *k);

/* The K-quants' 6-bit scale and min j (0..7) of a Q4_K/Q5_K block. */
static inline void finch_k4_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* The final float steps of the K-quant dot products, shared with the SIMD
 * twins so that they cannot drift apart: isum/summ are exact integers. */
static inline float finch_kq_step(float sumf, float d, int32_t isum, float dmin, int32_t summ) {
    return sumf + (d * (float)isum - dmin * (float)summ);
}

#endif
