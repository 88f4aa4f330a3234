/* kernels_scalar.c - the scalar reference kernels: the readable definition
 * of every operation (tiles of the matmul per stored type, the portable
 * packed GEMM, the vector ops, exp).  kernels_avx2.c, kernels_avx512.c and
 * kernels_neon.c hold the same loops in SIMD form and are compared with
 * these by tests/test_kernels.c; kernels.c picks a table and drives it. */
#include "kernels_internal.h"

#include <math.h>
#include <string.h>

/* =================================================== scalar reference tiles */

#define SCALAR_ROWS FINCH_TILE_ROWS
#define SCALAR_TOKENS 4

/* One weight as f32; `t` is a constant after inlining, so the switch
 * disappears from the inner loop. */
static inline float scalar_weight(finch_dtype t, const void *row, size_t c) {
    switch (t) {
    case FINCH_F16: return finch_f16_to_f32(((const uint16_t *)row)[c]);
    case FINCH_BF16: return finch_bf16_to_f32(((const uint16_t *)row)[c]);
    default: return ((const float *)row)[c];
    }
}

/* Plain dot products, one accumulator per output in column order: the same
 * arithmetic as finch_matmul_ref, so the scalar path equals the reference
 * bit for bit for F32/F16/BF16. */
static inline void tile_scalar(finch_dtype t, const void *w, size_t w_stride, size_t nr,
                               const void *x, size_t x_stride, size_t nt, size_t cols,
                               float *out, size_t ldo) {
    const void *wr[SCALAR_ROWS];
    const float *xt[SCALAR_TOKENS];
    float acc[SCALAR_ROWS][SCALAR_TOKENS] = {{0}};
    for (size_t r = 0; r < SCALAR_ROWS; r++) wr[r] = finch_tile_row(w, w_stride, r, nr);
    for (size_t j = 0; j < nt; j++) xt[j] = (const float *)((const char *)x + j * x_stride);
    for (size_t c = 0; c < cols; c++) {
        for (size_t r = 0; r < SCALAR_ROWS; r++) {
            float wv = scalar_weight(t, wr[r], c);
            for (size_t j = 0; j < nt; j++) acc[r][j] += wv * xt[j][c];
        }
    }
    for (size_t j = 0; j < nt; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = acc[r][j];
}

static void tile_f32_scalar(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                            size_t nt, size_t cols, float *out, size_t ldo) {
    tile_scalar(FINCH_F32, w, ws, nr, x, xs, nt, cols, out, ldo);
}
static void tile_f16_scalar(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                            size_t nt, size_t cols, float *out, size_t ldo) {
    tile_scalar(FINCH_F16, w, ws, nr, x, xs, nt, cols, out, ldo);
}
static void tile_bf16_scalar(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                             size_t nt, size_t cols, float *out, size_t ldo) {
    tile_scalar(FINCH_BF16, w, ws, nr, x, xs, nt, cols, out, ldo);
}

/* Q8_0 x Q8_0: the integer dot of each 32-value block is exact; only the
 * per-block float accumulation (d_w * d_x) * isum rounds. */
static void tile_q8_0_scalar(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                             size_t nt, size_t cols, float *out, size_t ldo) {
    const finch_block_q8_0 *wr[SCALAR_ROWS], *xt[SCALAR_TOKENS];
    float acc[SCALAR_ROWS][SCALAR_TOKENS] = {{0}};
    for (size_t r = 0; r < SCALAR_ROWS; r++) wr[r] = finch_tile_row(w, ws, r, nr);
    for (size_t j = 0; j < nt; j++) xt[j] = (const void *)((const char *)x + j * xs);
    for (size_t b = 0; b < cols / FINCH_QK8_0; b++) {
        for (size_t r = 0; r < SCALAR_ROWS; r++) {
            float dw = finch_f16_to_f32(wr[r][b].d);
            for (size_t j = 0; j < nt; j++) {
                int32_t isum = 0;
                for (size_t i = 0; i < FINCH_QK8_0; i++)
                    isum += (int32_t)wr[r][b].qs[i] * (int32_t)xt[j][b].qs[i];
                acc[r][j] += (dw * finch_f16_to_f32(xt[j][b].d)) * (float)isum;
            }
        }
    }
    for (size_t j = 0; j < nt; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = acc[r][j];
}

static void quantize_q8_0_scalar(const float *x, void *blocks, size_t n) {
    finch_quantize_act(FINCH_Q8_0, x, blocks, n);
}

/* ---- portable packed GEMM (attention everywhere; see kernels_internal.h) */

void finch_pack_f32_generic(const void *w, size_t ws, size_t nr, size_t k0, size_t kc,
                            float *wp) {
    for (size_t r = 0; r < FINCH_PANEL_ROWS; r++) {
        const float *row = finch_tile_row(w, ws, r, nr);
        for (size_t k = 0; k < kc; k++) wp[k * FINCH_PANEL_ROWS + r] = row[k0 + k];
    }
}

void finch_pack_f16_generic(const void *w, size_t ws, size_t nr, size_t k0, size_t kc,
                            float *wp) {
    for (size_t r = 0; r < FINCH_PANEL_ROWS; r++) {
        const uint16_t *row = finch_tile_row(w, ws, r, nr);
        for (size_t k = 0; k < kc; k++) wp[k * FINCH_PANEL_ROWS + r] = finch_f16_to_f32(row[k0 + k]);
    }
}

/* Outputs in the inner loop (contiguous in wp and c), so a vectorizing
 * compiler runs it across outputs; each output is still one chain over k. */
void finch_gemm_generic(const float *wp, size_t wps, size_t kc, const float *x, size_t xs,
                        size_t nt, float *c, size_t ldc, size_t nr, bool first) {
    for (size_t t = 0; t < nt; t++) {
        float acc[FINCH_PANEL_ROWS];
        for (size_t r = 0; r < nr; r++) acc[r] = first ? 0.0f : c[t * ldc + r];
        for (size_t k = 0; k < kc; k++) {
            float xv = x[t * xs + k];
            for (size_t r = 0; r < nr; r++) acc[r] += wp[k * wps + r] * xv;
        }
        for (size_t r = 0; r < nr; r++) c[t * ldc + r] = acc[r];
    }
}

/* ---- vector ops ---- */

void finch_f16_to_f32_generic(const uint16_t *h, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = finch_f16_to_f32(h[i]);
}

void finch_f32_to_f16_generic(const float *x, uint16_t *h, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = finch_f32_to_f16(x[i]);
}

static float dot_f32_scalar(const float *a, const float *b, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_mul_scalar(float *out, const float *x, const float *w, float s, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = w[i] * (s * x[i]);
}

/* The scalar twin of every ISA's vector exp (kernels_internal.h). */
float finch_expf(float x) {
    if (x != x) return x;
    if (x > FINCH_EXP_HI) return INFINITY;
    if (x < FINCH_EXP_LO) return 0.0f;
    float n = floorf(x * FINCH_LOG2E + 0.5f);
    float r = x - n * FINCH_EXP_C1;
    r = r - n * FINCH_EXP_C2;
    float z = r * r;
    float y = FINCH_EXP_P0;
    y = y * r + FINCH_EXP_P1;
    y = y * r + FINCH_EXP_P2;
    y = y * r + FINCH_EXP_P3;
    y = y * r + FINCH_EXP_P4;
    y = y * r + FINCH_EXP_P5;
    y = (y * z + r) + 1.0f;
    union { uint32_t u; float f; } e = {(uint32_t)((int32_t)n + 127) << 23};
    return y * e.f;
}

float finch_exp_sum_generic(float *x, size_t n, float s, float m) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = finch_expf(s * x[i] - m);
        sum += x[i];
    }
    return sum;
}

float finch_max_generic(const float *x, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

void finch_silu_mul_generic(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + finch_expf(-g)) * up[i];
    }
}

const finch_kernels finch_kernels_scalar = {
    .isa = FINCH_ISA_SCALAR,
    .tile_f32 = {.fn = tile_f32_scalar, .rows = SCALAR_ROWS, .tokens = SCALAR_TOKENS, .matvec_rows = SCALAR_ROWS},
    .tile_f16 = {.fn = tile_f16_scalar, .rows = SCALAR_ROWS, .tokens = SCALAR_TOKENS, .matvec_rows = SCALAR_ROWS},
    .tile_bf16 = {.fn = tile_bf16_scalar, .rows = SCALAR_ROWS, .tokens = SCALAR_TOKENS, .matvec_rows = SCALAR_ROWS},
    .tile_q8_0 = {.fn = tile_q8_0_scalar, .rows = SCALAR_ROWS, .tokens = SCALAR_TOKENS, .matvec_rows = SCALAR_ROWS},
    .gemm_prefill = false,
    .gemm_tokens = FINCH_GEMM_GENERIC_TOKENS,
    .pack_f32 = finch_pack_f32_generic,
    .gemm = finch_gemm_generic,
    .quantize_q8_0 = quantize_q8_0_scalar,
    .dot_f32 = dot_f32_scalar,
    .axpy = axpy_scalar,
    .scale_mul = scale_mul_scalar,
    .exp_sum = finch_exp_sum_generic,
    .max = finch_max_generic,
    .silu_mul = finch_silu_mul_generic,
    .f16_to_f32 = finch_f16_to_f32_generic,
    .f32_to_f16 = finch_f32_to_f16_generic,
    .pack_kv_f16 = finch_pack_f16_generic,
};

