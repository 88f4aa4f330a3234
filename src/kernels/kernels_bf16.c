/* kernels_bf16.c - BF16 weights in bf16 arithmetic: the scalar twin, the
 * activations' rounding and the choice of the arithmetic.
 *
 * Two arithmetics for BF16 weights (finch_set_quant_math, as for the
 * quantized types):
 *  - BF16 (default, as llama.cpp's CPU backend,
 *    whose BF16 vec_dot_type is BF16): each token's activations are
 *    rounded once to bf16 (finch_act_to_bf16), and every output is one
 *    dot product in the "pair-lane order" below, on AVX-512 BF16 with
 *    vdpbf16ps, on AVX2 with FMAs under MXCSR's DAZ and FTZ
 *    (kernels_bf16_avx2.c; also on AVX-512 without BF16), on the scalar
 *    table and NEON with finch_bf16_dot_ref: the same bits wherever it
 *    runs, so that the default never depends on the CPU.
 *  - FP32 (--quant-math fp32): the weights widened to f32, the F32
 *    kernels (lane-order tiles and packed GEMM, kernels_internal.h), exact
 *    f32 activations; the fast choice on AVX-512 without BF16 (its packed
 *    GEMM prefills several times faster than the AVX2 bf16 tile) and on
 *    NEON (no NEON bf16 tile yet).
 *
 * Pair-lane order.  16 lanes; lane j takes the column pairs (2j, 2j+1),
 * (32 + 2j, 32 + 2j + 1), ... in order (columns past the row's end are
 * zero), and each pair is two steps
 *     acc = ftz(fma(w[2i+1], x[2i+1], acc));  acc = ftz(fma(w[2i], x[2i], acc))
 * with bf16 inputs whose denormals count as zero (DAZ) and tiny results
 * flushed to zero of the same sign (FTZ).  A product of two bf16 values is
 * exact (8 x 8 significant bits), so each step is one rounding (to nearest
 * even) of acc + w x: an fma.  "Tiny" is x86's rule: the exact sum rounded
 * to 24 bits with an unbounded exponent is below 2^-126, so a sum just
 * below 2^-126 that an fma rounds up to 2^-126 is still flushed (dp_step).
 * That is vdpbf16ps as Intel documents it, and as measured on the Zen 4
 * EPYC (32 million lanes of random, huge, tiny, denormal, infinite and NaN
 * inputs, cancelling pairs and sums near 2^-126: every bit equal;
 * odd-first matters, even-first differs in 15-20% of the lanes).  The lanes are then summed as a tree: lane i += lane i + h
 * for h = 8, 4, 2, 1.  A NaN result stays NaN; its payload bits are not
 * specified.
 *
 * An output does not depend on the token count, the tile or the thread:
 * prefill and decode give the same bits for a token (unlike the f32 lane
 * and column orders), so finch_matmul_rows_agree holds for any batch. */
#include "kernels_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* A denormal becomes zero of its sign (DAZ on inputs, FTZ on results). */
static float flush_denormal(float f) {
    uint32_t u = finch_f32_bits(f);
    return (u & 0x7f800000u) == 0 ? finch_f32_from_bits(u & 0x80000000u) : f;
}

uint16_t finch_act_to_bf16(float f) {
    uint32_t u = finch_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000);        /* DAZ       */
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

void finch_act_to_bf16_row(const float *x, void *out, size_t n) {
    uint16_t *h = out;
    for (size_t i = 0; i < n; i++) h[i] = finch_act_to_bf16(x[i]);
}

#define PAIR_LANES 16
#define TINY_BELOW (0x1p-126 - 0x1p-151) /* x86: tiny iff |sum| < this */

/* Whether acc + a b (exact) is tiny by x86's rule, given that the fma
 * rounded it to +-2^-126: the sum as a double-double (the product is exact
 * in double, TwoSum adds acc exactly), compared with TINY_BELOW (near it,
 * |s| - TINY_BELOW is exact). */
static bool tiny_sum(float acc, float a, float b) {
    double p = (double)a * (double)b, s = (double)acc + p;
    double bb = s - acc, err = ((double)acc - (s - bb)) + (p - bb);
    if (s < 0) s = -s, err = -err;
    return (s - TINY_BELOW) + err < 0;
}

/* One step of a lane: fma with vdpbf16ps's flush of tiny results. */
static float dp_step(float acc, float a, float b) {
    float r = fmaf(a, b, acc);
    if (fabsf(r) == 0x1p-126f && tiny_sum(acc, a, b)) return copysignf(0.0f, r);
    return flush_denormal(r);
}

static float bf16_in(const uint16_t *v, size_t c, size_t n) {
    return c < n ? flush_denormal(finch_f32_from_bits((uint32_t)v[c] << 16)) : 0.0f;
}

float finch_bf16_dot_ref(const uint16_t *w, const uint16_t *x, size_t n) {
    float lane[PAIR_LANES] = {0};
    for (size_t c0 = 0; c0 < n; c0 += 2 * PAIR_LANES)
        for (size_t j = 0; j < PAIR_LANES; j++) {
            size_t c = c0 + 2 * j;
            float acc = flush_denormal(lane[j]);
            acc = dp_step(acc, bf16_in(w, c + 1, n), bf16_in(x, c + 1, n));
            lane[j] = dp_step(acc, bf16_in(w, c, n), bf16_in(x, c, n));
        }
    for (size_t h = PAIR_LANES / 2; h >= 1; h /= 2)
        for (size_t i = 0; i < h; i++) lane[i] += lane[i + h];
    return lane[0];
}

/* The scalar table's tile: one finch_bf16_dot_ref per output. */
static void tile_bf16_dot_scalar(const void *w, size_t ws, size_t nr, const void *x, size_t xs,
                                 size_t nt, size_t cols, float *out, size_t ldo) {
    for (size_t r = 0; r < nr; r++)
        for (size_t t = 0; t < nt; t++)
            out[t * ldo + r] = finch_bf16_dot_ref((const uint16_t *)((const char *)w + r * ws),
                                                  (const uint16_t *)((const char *)x + t * xs), cols);
}

static const finch_bf16_dot bf16_dot_scalar = {
    {.fn = tile_bf16_dot_scalar, .rows = FINCH_TILE_ROWS, .tokens = 4, .matvec_rows = FINCH_TILE_ROWS},
    finch_act_to_bf16_row,
};

#if defined(__x86_64__)
/* AVX512_BF16: cpuid leaf 7, sub-leaf 1, EAX bit 5 (older compilers have
 * no feature string for it). */
static bool cpu_has_avx512_bf16(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
}
#endif

const finch_bf16_dot *finch_bf16_dot_for(const finch_kernels *k) {
    if (finch_get_quant_math() == FINCH_QUANT_MATH_FP32) return NULL;
    switch (k->isa) {
    case FINCH_ISA_SCALAR: return &bf16_dot_scalar;
#if defined(__x86_64__)
    case FINCH_ISA_AVX2: return &finch_bf16_dot_avx2;
    case FINCH_ISA_AVX512: {
        static _Atomic int has = -1; /* racing first calls store the same value */
        if (atomic_load(&has) < 0) atomic_store(&has, cpu_has_avx512_bf16());
        /* without AVX-512 BF16, the AVX2 twin: the default arithmetic
         * gives the same bits on every CPU */
        return atomic_load(&has) ? &finch_bf16_dot_avx512 : &finch_bf16_dot_avx2;
    }
#endif
    default: return &bf16_dot_scalar; /* NEON: the twin (no NEON tile yet) */
    }
}
