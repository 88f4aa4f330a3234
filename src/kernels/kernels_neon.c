/* kernels_neon.c - AArch64 Advanced SIMD (NEON) inner loops.
 *
 * NEON (with FMA and f16 conversion) is part of every AArch64 CPU, so
 * nothing needs detecting.  Only baseline ARMv8.0 instructions are used
 * (no dot-product extension).  Each loop mirrors its scalar twin in
 * kernels_scalar.c; the lane layout every output follows is described in
 * kernels_internal.h (4 lanes here; the last partial vector is zero-filled).
 * 32 vector registers hold a 4-row x 4-token tile. */
#include "kernels_internal.h"

#include <arm_neon.h>
#include <string.h>

#define LANES 4
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* ------------------------------------------------------ float-like weights */

static ALWAYS_INLINE float32x4_t cvt_w(finch_dtype t, uint16x4_t h) {
    if (t == FINCH_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); /* bf16: top half of an f32 */
}

/* 4 weights of `row` from column c as f32 (`t` folds away once inlined). */
static ALWAYS_INLINE float32x4_t load_w(finch_dtype t, const void *row, size_t c) {
    if (t == FINCH_F32) return vld1q_f32((const float *)row + c);
    return cvt_w(t, vld1_u16((const uint16_t *)row + c));
}

/* The last n < 4 weights (or activations), zero-filled through a buffer:
 * NEON has no masked loads. */
static ALWAYS_INLINE float32x4_t load_w_tail(finch_dtype t, const void *row, size_t c, size_t n) {
    if (t == FINCH_F32) {
        float buf[LANES] = {0};
        memcpy(buf, (const float *)row + c, n * sizeof(float));
        return vld1q_f32(buf);
    }
    uint16_t buf[LANES] = {0};
    memcpy(buf, (const uint16_t *)row + c, n * sizeof(uint16_t));
    return cvt_w(t, vld1_u16(buf));
}

/* A 4-row x T-token register tile: 4*T accumulators of 4 lanes; each step's
 * 4 weight vectors are loaded and converted once for T tokens. */
static ALWAYS_INLINE void tile_float(finch_dtype t, size_t T, const void *w, size_t ws,
                                     size_t nr, const void *x, size_t xs, size_t cols,
                                     float *out, size_t ldo) {
    const void *wr[FINCH_TILE_ROWS];
    const float *xt[4];
    float32x4_t acc[4][4];
#pragma GCC unroll 4
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 4
        for (size_t j = 0; j < T; j++) acc[r][j] = vdupq_n_f32(0);
    }
#pragma GCC unroll 4
    for (size_t j = 0; j < T; j++) xt[j] = (const float *)((const char *)x + j * xs);

    const size_t wsize = t == FINCH_F32 ? sizeof(float) : sizeof(uint16_t);
    size_t c = 0;
    for (; c + LANES <= cols; c += LANES) {
        if (T == 1 && (c * wsize) % 64 == 0) { /* matvec: one hint per line */
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                finch_prefetch((const char *)wr[r] + c * wsize + FINCH_PREFETCH_BYTES);
        }
        float32x4_t wv[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wv[r] = load_w(t, wr[r], c);
#pragma GCC unroll 4
        for (size_t j = 0; j < T; j++) {
            float32x4_t xv = vld1q_f32(xt[j] + c);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++) acc[r][j] = vfmaq_f32(acc[r][j], wv[r], xv);
        }
    }
    if (c < cols) {
        size_t n = cols - c;
        float32x4_t wv[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wv[r] = load_w_tail(t, wr[r], c, n);
#pragma GCC unroll 4
        for (size_t j = 0; j < T; j++) {
            float32x4_t xv = load_w_tail(FINCH_F32, xt[j], c, n);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++) acc[r][j] = vfmaq_f32(acc[r][j], wv[r], xv);
        }
    }
#pragma GCC unroll 4
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = vaddvq_f32(acc[r][j]);
}

#define TILE_WRAPPER(name, dtype)                                                            \
    static void name(const void *w, size_t ws, size_t nr, const void *x, size_t xs,         \
                     size_t nt, size_t cols, float *out, size_t ldo) {                      \
        switch (nt) {                                                                        \
        case 1: tile_float(dtype, 1, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 2: tile_float(dtype, 2, w, ws, nr, x, xs, cols, out, ldo); break;              \
        case 3: tile_float(dtype, 3, w, ws, nr, x, xs, cols, out, ldo); break;              \
        default: tile_float(dtype, 4, w, ws, nr, x, xs, cols, out, ldo); break;             \
        }                                                                                    \
    }
TILE_WRAPPER(tile_f32_neon, FINCH_F32)
TILE_WRAPPER(tile_f16_neon, FINCH_F16)
TILE_WRAPPER(tile_bf16_neon, FINCH_BF16)

/* -------------------------------------------------------------------- Q8_0 */

/* Integer dot of one block as 4 lanes of 8-product sums: widening 8x8->16
 * multiplies, pairwise-added into 32 bits (exact; a 16-bit pair sum of
 * int8 products would overflow only for -128 * -128 twice). */
static ALWAYS_INLINE int32x4_t dot_q(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
    s = vpadalq_s16(s, vmull_high_s8(w0, x0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
    return vpadalq_s16(s, vmull_high_s8(w1, x1));
}

static ALWAYS_INLINE float f16_scalar(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

static ALWAYS_INLINE void tile_q8_0(size_t T, const void *w, size_t ws, size_t nr,
                                    const void *x, size_t xs, size_t cols, float *out,
                                    size_t ldo) {
    const finch_block_q8_0 *wr[4], *xt[4];
    float32x4_t acc[4][4];
#pragma GCC unroll 4
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
        wr[r] = finch_tile_row(w, ws, r, nr);
#pragma GCC unroll 4
        for (size_t j = 0; j < T; j++) acc[r][j] = vdupq_n_f32(0);
    }
#pragma GCC unroll 4
    for (size_t j = 0; j < T; j++) xt[j] = (const void *)((const char *)x + j * xs);

    for (size_t b = 0; b < cols / FINCH_QK8_0; b++) {
        if (T == 1) { /* matvec: memory-bound (kernels_internal.h) */
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++)
                finch_prefetch((const char *)(wr[r] + b) + FINCH_PREFETCH_BYTES);
        }
        int8x16_t w0[FINCH_TILE_ROWS], w1[FINCH_TILE_ROWS];
        float dw[FINCH_TILE_ROWS];
#pragma GCC unroll 4
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
            w0[r] = vld1q_s8(wr[r][b].qs);
            w1[r] = vld1q_s8(wr[r][b].qs + 16);
            dw[r] = f16_scalar(wr[r][b].d);
        }
#pragma GCC unroll 4
        for (size_t j = 0; j < T; j++) {
            int8x16_t x0 = vld1q_s8(xt[j][b].qs), x1 = vld1q_s8(xt[j][b].qs + 16);
            float dx = f16_scalar(xt[j][b].d);
#pragma GCC unroll 4
            for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
                float32x4_t s = vcvtq_f32_s32(dot_q(w0[r], w1[r], x0, x1));
                acc[r][j] = vfmaq_n_f32(acc[r][j], s, dw[r] * dx);
            }
        }
    }
#pragma GCC unroll 4
    for (size_t j = 0; j < T; j++)
        for (size_t r = 0; r < nr; r++) out[j * ldo + r] = vaddvq_f32(acc[r][j]);
}

static void tile_q8_0_neon(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                           size_t nt, size_t cols, float *out, size_t ldo) {
    switch (nt) {
    case 1: tile_q8_0(1, w, ws, nr, x, xs, cols, out, ldo); break;
    case 2: tile_q8_0(2, w, ws, nr, x, xs, cols, out, ldo); break;
    case 3: tile_q8_0(3, w, ws, nr, x, xs, cols, out, ldo); break;
    default: tile_q8_0(4, w, ws, nr, x, xs, cols, out, ldo); break;
    }
}

/* The same arithmetic as finch_quantize_act (quants.c); vrndnq rounds ties
 * to even. */
static void quantize_q8_0_neon(const float *x, void *blocks, size_t n) {
    finch_block_q8_0 *y = blocks;
    for (size_t b = 0; b < n / FINCH_QK8_0; b++, x += FINCH_QK8_0) {
        float32x4_t v[8], m = vdupq_n_f32(0);
        for (size_t i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + 4 * i);
            m = vmaxq_f32(m, vabsq_f32(v[i]));
        }
        float amax = vmaxvq_f32(m);
        float id = amax != 0 ? 127.0f / amax : 0.0f;
        y[b].d = finch_f32_to_f16(amax / 127.0f);
        for (size_t i = 0; i < 8; i += 2) {
            int32x4_t q0 = vcvtq_s32_f32(vrndnq_f32(vmulq_n_f32(v[i], id)));
            int32x4_t q1 = vcvtq_s32_f32(vrndnq_f32(vmulq_n_f32(v[i + 1], id)));
            int16x8_t q16 = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
            vst1_s8(y[b].qs + 4 * i, vmovn_s16(q16));
        }
    }
}

/* ------------------------------------------------------------- vector ops */

/* Four independent accumulators hide the FMA latency; they are combined in
 * a fixed order, so the result only depends on n. */
static float dot_f32_neon(const float *a, const float *b, size_t n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    float32x4_t s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + LANES <= n; i += LANES) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    if (i < n)
        s1 = vfmaq_f32(s1, load_w_tail(FINCH_F32, a, i, n - i), load_w_tail(FINCH_F32, b, i, n - i));
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

static void axpy_neon(float *y, float a, const float *x, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] = __builtin_fmaf(a, x[i], y[i]); /* same rounding as the lanes */
}

/* Same two roundings as the scalar loop (no FMA). */
static void scale_mul_neon(float *out, const float *x, const float *w, float s, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        vst1q_f32(out + i, vmulq_f32(vld1q_f32(w + i), vmulq_n_f32(vld1q_f32(x + i), s)));
    for (; i < n; i++) out[i] = w[i] * (s * x[i]);
}

const finch_kernels finch_kernels_neon = {
    .isa = FINCH_ISA_NEON,
    .tile_f32 = {.fn = tile_f32_neon, .rows = 4, .tokens = 4, .matvec_rows = 4},
    .tile_f16 = {.fn = tile_f16_neon, .rows = 4, .tokens = 4, .matvec_rows = 4},
    .tile_bf16 = {.fn = tile_bf16_neon, .rows = 4, .tokens = 4, .matvec_rows = 4},
    .tile_q8_0 = {.fn = tile_q8_0_neon, .rows = 4, .tokens = 4, .matvec_rows = 4},
    /* Attention's packed GEMM and the exp-based ops in portable C (which
     * the compiler vectorizes for NEON); prefill keeps the tiles (or BLAS). */
    .gemm_prefill = false,
    .gemm_tokens = FINCH_GEMM_GENERIC_TOKENS,
    .pack_f32 = finch_pack_f32_generic,
    .gemm = finch_gemm_generic,
    .quantize_q8_0 = quantize_q8_0_neon,
    .dot_f32 = dot_f32_neon,
    .axpy = axpy_neon,
    .scale_mul = scale_mul_neon,
    .exp_sum = finch_exp_sum_generic,
    .max = finch_max_generic,
    .silu_mul = finch_silu_mul_generic,
    .f16_to_f32 = finch_f16_to_f32_generic,
    .f32_to_f16 = finch_f32_to_f16_generic,
    .pack_kv_f16 = finch_pack_f16_generic,
};
