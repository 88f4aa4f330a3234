/* kernels.h - the compute kernels and their dispatch; the map of
 * src/kernels/:
 *
 *   kernels_scalar.c    the scalar reference of every kernel (the readable
 *                       definition), one table of the ISA interface
 *   kernels_avx2.c, kernels_avx512.c, kernels_neon.c
 *                       the same inner loops per instruction set, one table
 *                       each (kernels_internal.h: what a table holds)
 *   kernels.c           dispatch (cpuid, once), the matmul driver (own
 *                       tiles, packed GEMM or OpenBLAS), elementwise ops,
 *                       attention over f32 or f16 (--cache-type) rows
 *   quants.c/.h         ggml's quantized block types: layouts, reference
 *                       dequantization and dot products
 *   kernels_quant.c     matrix products with quantized weights
 *                       (kernels_quant_x86.h: their AVX2/AVX-512 loops)
 *   kernels_qgemm.c     their prefill as a register-blocked GEMM, where
 *                       the table has one (kernels_qgemm_x86.h: AVX-512
 *                       VNNI packs and loops)
 *   threadpool.c        the fork-join pool every driver runs on
 *
 * Every kernel has a plain scalar reference (kernels_scalar.c) that stays alive;
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
/* out[j] = finch_dot_f32(q, k + j * d, d) * scale for the n key rows k:
 * the same bits, the kernel table read once. */
void finch_dot_rows_f32(const float *q, const float *k, size_t n, size_t d, float scale, float *out);

/* ---- matrix products ----
 * out [n][W->rows] = x [n][W->cols] * W^T.  Results do not depend on the
 * number of threads: rows are split in fixed blocks and each output element
 * is always computed by the same code in the same order. */
/* Row r of w row-major (finch_row_bytes(w->type, w->cols) bytes): a
 * pointer into w->data, or for a packed weight (finch_weight.packed) the
 * row unpacked into scratch (that many bytes). */
const void *finch_weight_row(const finch_weight *w, size_t r, void *scratch);
/* Packed weights (kernels_wpack.c): whether a model load packs w for the
 * kernels in use, and packing it in place: data is w's bytes made
 * writable (w->data then points to it and w->packed is set), its groups
 * cut on pool (NULL: this thread). */
bool finch_weight_pack_wanted(const finch_weight *w);
finch_status finch_weight_pack(finch_pool *pool, finch_weight *w, void *data);
finch_status finch_matmul(finch_pool *pool, float *out, const float *x, size_t n,
                          const finch_weight *w);
/* m products of the same x (q, k and v; gate and up) in one pool run: the
 * threads wait once for the slowest instead of once per product.  out[i]
 * gets exactly the bits finch_matmul(pool, out[i], x, n, w[i]) gives. */
#define FINCH_MATMUL_MANY_MAX 4
finch_status finch_matmul_many(finch_pool *pool, size_t m, float *const out[], const float *x,
                               size_t n, const finch_weight *const w[]);
/* Whether a product of n_sub tokens gives each of them exactly the bits
 * the same token gets in a product of n tokens by w (the same arithmetic:
 * both below or both at/above the packed GEMM's batch, no OpenBLAS), so
 * that a caller may compute only the rows it needs. */
bool finch_matmul_rows_agree(const finch_weight *w, size_t n, size_t n_sub);
/* Reference: scalar, single-threaded, f32 accumulation in index order. */
void finch_matmul_ref(float *out, const float *x, size_t n, const finch_weight *w);

/* OpenBLAS cblas_sgemm for f32 prefill (when compiled with BLAS=1):
 * AUTO uses it only where it beats our own kernels (ISAs without a packed
 * GEMM: AVX2, NEON, scalar); NEVER and ALWAYS force the choice (tests). */
typedef enum { FINCH_BLAS_AUTO = 0, FINCH_BLAS_NEVER, FINCH_BLAS_ALWAYS } finch_blas_mode;
void finch_set_blas_mode(finch_blas_mode mode);
bool finch_blas_available(void);
/* Whether a prefill (n > 1) matmul with weights of type t runs on OpenBLAS
 * under the current ISA and mode. */
bool finch_prefill_uses_blas(finch_dtype t);
/* One line naming the kernels in use, e.g. "avx512 (vnni for q8_0), own
 * packed GEMM for prefill" (static storage). */
const char *finch_kernels_describe(void);

/* ---- elementwise ---- */
void finch_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps);
void finch_silu_mul(float *gate, const float *up, size_t n); /* gate = silu(gate)*up */
void finch_softmax(float *x, size_t n);
void finch_softmax_scaled(float *x, size_t n, float s); /* softmax(s * x), s > 0 */
/* acc[j] += w * p[j] for j < n_acc, p = finch_softmax(x, n) with its bits;
 * x is left holding the exponentials (p is never stored). */
void finch_softmax_accumulate(float *x, size_t n, double w, double *acc, size_t n_acc);
void finch_axpy(float *y, float a, const float *x, size_t n); /* y += a*x */

/* ---- attention ----
 * Keys of one KV head (rows of d floats) are packed once per forward call,
 * finch_attn_kpack_floats(n_keys, d) floats; key0 must be a multiple of 32
 * (packing can be split between tasks at such boundaries). */
size_t finch_attn_kpack_floats(size_t n_keys, size_t d);
void finch_attn_pack_keys(const float *k, size_t key0, size_t key1, size_t d, float *kp);
/* nq query rows (q_stride floats apart) that all see keys [0, n_keys):
 *     out_i = sum_j softmax_j(scale * q_i . k_j) v_j
 * v: n_keys rows of d floats; scores: scratch of nq * n_keys floats; out
 * rows out_stride floats apart.  Each output does not depend on nq or on
 * the other rows. */
void finch_attn_rows(const float *kp, const float *v, size_t n_keys, size_t d, const float *q,
                     size_t q_stride, size_t nq, float scale, float *scores, float *out,
                     size_t out_stride);

/* finch_attn_rows with the key rows k (n_keys rows of d floats) packed one
 * 32-key panel at a time into buf (FINCH_ATTN_VBLOCK * d floats) instead
 * of a packed copy: the same bits, less memory traffic (one decoded
 * token reads every key once). */
void finch_attn_rows_keys(const float *k, const float *v, size_t n_keys, size_t d, const float *q,
                          size_t q_stride, size_t nq, float scale, float *scores, float *out,
                          size_t out_stride, float *buf);
/* The F16 KV cache: keys packed from f16 rows (the same floats
 * finch_attn_pack_keys packs from their f32 values), and finch_attn_rows
 * with f16 V rows, converted FINCH_ATTN_VBLOCK rows at a time into vbuf
 * (FINCH_ATTN_VBLOCK * d floats), and either packed keys kp or (kp NULL)
 * the f16 key rows k, packed one 32-key panel at a time into vbuf: the
 * same bits as finch_attn_rows on the rows' f32 values. */
#define FINCH_ATTN_VBLOCK 128
void finch_attn_pack_keys_f16(const uint16_t *k, size_t key0, size_t key1, size_t d, float *kp);
void finch_attn_rows_f16(const float *kp, const uint16_t *k, const uint16_t *v, size_t n_keys, size_t d,
                         const float *q, size_t q_stride, size_t nq, float scale, float *scores, float *out,
                         size_t out_stride, float *vbuf);
/* n values f16 -> f32, f32 -> f16 (round to nearest even, as
 * finch_f16_to_f32 / finch_f32_to_f16, bit for bit on every ISA; F16C on
 * x86). */
void finch_f16_to_f32_row(const uint16_t *h, float *out, size_t n);
void finch_f32_to_f16_row(const float *x, uint16_t *h, size_t n);

/* ---- thread pool: run fn(arg, i) for i in [0, n_tasks) ---- */
finch_status finch_pool_new(size_t n_threads, finch_pool **out);
void finch_pool_free(finch_pool *p);
size_t finch_pool_threads(const finch_pool *p);
void finch_pool_run(finch_pool *p, size_t n_tasks, void (*fn)(void *arg, size_t task),
                    void *arg);
/* Inside a task: the index of the thread running it, < finch_pool_threads
 * of the run's pool (0 for the calling thread, and for runs without a
 * pool).  For per-thread scratch; results must not depend on it. */
size_t finch_pool_worker(void);

#endif
