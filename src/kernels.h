/* kernels.h - the compute kernels and their dispatch.
 *
 * Every kernel has a plain scalar reference (kernels.c) that stays alive;
 * SIMD paths (AVX2+FMA, AVX-512, NEON) sit beside it and are chosen once at
 * run time from cpuid.  Tests compare every path with the scalar one.
 *
 * Matrix products use the layout out[t][r] = sum_c x[t][c] * W[r][c]
 * (x: n tokens of `cols` inputs; W: rows x cols, any finch_dtype). */
#ifndef FINCH_KERNELS_H
#define FINCH_KERNELS_H

#include "util.h"

typedef struct finch_pool finch_pool;

typedef enum { FINCH_ISA_SCALAR = 0, FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON } finch_isa;

/* The best ISA this CPU supports (and this build compiled). */
finch_isa finch_isa_detect(void);
const char *finch_isa_name(finch_isa isa);
/* Force an ISA (tests, --kernels); returns false if unsupported here. */
bool finch_isa_set(finch_isa isa);
finch_isa finch_isa_current(void);

/* ---- dot products: the inner loop of every matmul ---- */
float finch_dot_f32(const float *a, const float *b, size_t n);

/* ---- matrix products ----
 * out [n][W->rows] = x [n][W->cols] * W^T.  Results do not depend on the
 * number of threads: rows are split in fixed blocks and each output element
 * is always computed by the same code in the same order. */
finch_status finch_matmul(finch_pool *pool, float *out, const float *x, size_t n,
                          const finch_weight *w);
/* Reference: scalar, single-threaded, f32 accumulation in index order. */
void finch_matmul_ref(float *out, const float *x, size_t n, const finch_weight *w);

/* Use OpenBLAS cblas_sgemm for f32 prefill (when compiled with BLAS=1). */
void finch_set_use_blas(bool on);
bool finch_blas_available(void);

/* ---- elementwise ---- */
void finch_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps);
void finch_silu_mul(float *gate, const float *up, size_t n); /* gate = silu(gate)*up */
void finch_softmax(float *x, size_t n);
void finch_axpy(float *y, float a, const float *x, size_t n); /* y += a*x */

/* ---- thread pool: run fn(arg, i) for i in [0, n_tasks) ---- */
finch_status finch_pool_new(size_t n_threads, finch_pool **out);
void finch_pool_free(finch_pool *p);
size_t finch_pool_threads(const finch_pool *p);
void finch_pool_run(finch_pool *p, size_t n_tasks, void (*fn)(void *arg, size_t task),
                    void *arg);

#endif
