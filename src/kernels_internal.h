/* kernels_internal.h - what each instruction-set file gives kernels.c.
 *
 * One table of function pointers per ISA (scalar, AVX2, AVX-512, NEON).
 * kernels.c picks a table at run time and drives it; the ISA files only
 * contain inner loops.
 *
 * The matmul micro-kernel ("tile") computes a small block of outputs
 *     out[t * ldo + r] = dot(x row t, W row r),   r < nr <= 4, t < nt
 * keeping one vector accumulator per output.  Every output element is
 * summed the same way whatever the tile size, the token count or the
 * thread that runs it: lane j of its accumulator takes columns j, j + L,
 * j + 2L, ... in order (L = vector width), a zero-padded last vector takes
 * the tail, and one fixed horizontal reduction ends it.  (Q8_0: exact
 * integer sums per block, then one scaled FMA per block into the lanes,
 * block by block in order.)  So within one ISA an output never depends on
 * how the work was cut (n == 1 and n > 1 agree bit for bit) and threads
 * cannot change results.  The OpenBLAS path for f32 prefill is different
 * arithmetic, made thread-independent by cutting W into fixed row blocks
 * (kernels.c). */
#ifndef FINCH_KERNELS_INTERNAL_H
#define FINCH_KERNELS_INTERNAL_H

#include "kernels.h"

#define FINCH_TILE_ROWS 4       /* W rows per micro-kernel call            */
#define FINCH_TILE_TOKENS_MAX 6 /* the most tokens any ISA's tile takes    */

/* Micro-kernel.  w: first of nr rows, w_stride bytes apart (rows past nr
 * are never read).  x: nt token rows, x_stride bytes apart: floats for
 * F32/F16/BF16 weights, Q8_0 blocks for Q8_0 weights.  1 <= nt <= the
 * table's tile_tokens. */
typedef void (*finch_tile_fn)(const void *w, size_t w_stride, size_t nr, const void *x,
                              size_t x_stride, size_t nt, size_t cols, float *out,
                              size_t ldo);

typedef struct {
    finch_isa isa;
    size_t tile_tokens; /* tokens per register tile (<= FINCH_TILE_TOKENS_MAX) */
    finch_tile_fn tile_f32, tile_f16, tile_bf16, tile_q8_0;
    /* Quantize n activations (n % 32 == 0) to Q8_0 blocks, bit-identical
     * to finch_row_from_f32 (ggml's rule: d = max|x| / 127, q = round(x/d)
     * with ties away from zero), so every ISA sees the same quants. */
    void (*quantize_q8_0)(const float *x, void *blocks, size_t n);
    float (*dot_f32)(const float *a, const float *b, size_t n);
    void (*axpy)(float *y, float a, const float *x, size_t n);
    /* out[i] = w[i] * (s * x[i]): the second half of RMSNorm. */
    void (*scale_mul)(float *out, const float *x, const float *w, float s, size_t n);
} finch_kernels;

extern const finch_kernels finch_kernels_scalar;
#if defined(__x86_64__)
extern const finch_kernels finch_kernels_avx2;
extern const finch_kernels finch_kernels_avx512;
#endif
#if defined(__aarch64__)
extern const finch_kernels finch_kernels_neon;
#endif

/* The table in use (set by finch_isa_set, else the detected best). */
const finch_kernels *finch_kernels_get(void);

/* A matvec (one token) streams W from DRAM once.  Prefetching each of the
 * tile's rows this far ahead keeps more misses in flight than the hardware
 * prefetcher does alone (+15-30% decode bandwidth for f16 and q8_0 when
 * measured).  A prefetch never faults and never changes a result. */
#define FINCH_PREFETCH_BYTES 1024
static inline void finch_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* Clamp a row index of a tile to the last valid row: tiles always run four
 * rows and discard the duplicates, so a short tile costs no extra code path
 * (and an output is computed identically in a full or a short tile). */
static inline const void *finch_tile_row(const void *w, size_t w_stride, size_t r, size_t nr) {
    return (const char *)w + (r < nr ? r : nr - 1) * w_stride;
}

#endif
