/* kernels.c - scalar reference kernels, ISA dispatch, the matmul driver
 * (own tiled kernels or OpenBLAS) and the elementwise operations.
 *
 * The scalar kernels here are the readable definition of every operation;
 * kernels_avx2.c, kernels_avx512.c and kernels_neon.c hold the same loops
 * in SIMD form and are compared with these by tests/test_kernels.c. */
#include "kernels_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#ifndef FINCH_BLAS
#define FINCH_BLAS 0
#endif
#if FINCH_BLAS
#include <cblas.h>
/* Declared by OpenBLAS's cblas.h, but not by every cblas.h: say it here. */
void openblas_set_num_threads(int num_threads);
#endif

/* =================================================== scalar reference tiles */

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
    const void *wr[FINCH_TILE_ROWS];
    const float *xt[FINCH_TILE_TOKENS_MAX];
    float acc[FINCH_TILE_ROWS][FINCH_TILE_TOKENS_MAX] = {{0}};
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wr[r] = finch_tile_row(w, w_stride, r, nr);
    for (size_t j = 0; j < nt; j++) xt[j] = (const float *)((const char *)x + j * x_stride);
    for (size_t c = 0; c < cols; c++) {
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
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
    const finch_block_q8_0 *wr[FINCH_TILE_ROWS], *xt[FINCH_TILE_TOKENS_MAX];
    float acc[FINCH_TILE_ROWS][FINCH_TILE_TOKENS_MAX] = {{0}};
    for (size_t r = 0; r < FINCH_TILE_ROWS; r++) wr[r] = finch_tile_row(w, ws, r, nr);
    for (size_t j = 0; j < nt; j++) xt[j] = (const void *)((const char *)x + j * xs);
    for (size_t b = 0; b < cols / FINCH_QK8_0; b++) {
        for (size_t r = 0; r < FINCH_TILE_ROWS; r++) {
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
    finch_row_from_f32(FINCH_Q8_0, x, blocks, n);
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

const finch_kernels finch_kernels_scalar = {
    .isa = FINCH_ISA_SCALAR,
    .tile_tokens = 4,
    .tile_f32 = tile_f32_scalar,
    .tile_f16 = tile_f16_scalar,
    .tile_bf16 = tile_bf16_scalar,
    .tile_q8_0 = tile_q8_0_scalar,
    .quantize_q8_0 = quantize_q8_0_scalar,
    .dot_f32 = dot_f32_scalar,
    .axpy = axpy_scalar,
    .scale_mul = scale_mul_scalar,
};

/* ================================================================ dispatch */

#if defined(__x86_64__)
/* __builtin_cpu_supports checks the CPU and that the OS saves the wide
 * registers; F16C has no feature string in every compiler (clang 14 lacks
 * it), so read its cpuid bit directly.  Every AVX2 CPU has it in practice. */
static bool cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
static bool cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}
static bool cpu_has_avx512(void) {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
}
#endif

static const finch_kernels *kernels_for(finch_isa isa) {
    switch (isa) {
    case FINCH_ISA_SCALAR: return &finch_kernels_scalar;
#if defined(__x86_64__)
    case FINCH_ISA_AVX2: return cpu_has_avx2() ? &finch_kernels_avx2 : NULL;
    case FINCH_ISA_AVX512: return cpu_has_avx512() ? &finch_kernels_avx512 : NULL;
#endif
#if defined(__aarch64__)
    case FINCH_ISA_NEON: return &finch_kernels_neon; /* baseline on AArch64 */
#endif
    default: return NULL;
    }
}

finch_isa finch_isa_detect(void) {
    static const finch_isa best_first[] = {FINCH_ISA_AVX512, FINCH_ISA_AVX2, FINCH_ISA_NEON};
    for (size_t i = 0; i < sizeof best_first / sizeof best_first[0]; i++)
        if (kernels_for(best_first[i])) return best_first[i];
    return FINCH_ISA_SCALAR;
}

const char *finch_isa_name(finch_isa isa) {
    switch (isa) {
    case FINCH_ISA_SCALAR: return "scalar";
    case FINCH_ISA_AVX2: return "avx2";
    case FINCH_ISA_AVX512: return "avx512";
    case FINCH_ISA_NEON: return "neon";
    }
    return "unknown";
}

/* The table in use.  Atomic so that reading it from pool threads is
 * well-defined; finch_isa_set is meant to be called between runs. */
static _Atomic(const finch_kernels *) active_kernels;

const finch_kernels *finch_kernels_get(void) {
    const finch_kernels *k = atomic_load_explicit(&active_kernels, memory_order_acquire);
    if (!k) {
        k = kernels_for(finch_isa_detect());
        /* Racing first calls all store the same table. */
        atomic_store_explicit(&active_kernels, k, memory_order_release);
    }
    return k;
}

bool finch_isa_set(finch_isa isa) {
    const finch_kernels *k = kernels_for(isa);
    if (!k) return false;
    atomic_store_explicit(&active_kernels, k, memory_order_release);
    return true;
}

finch_isa finch_isa_current(void) { return finch_kernels_get()->isa; }

float finch_dot_f32(const float *a, const float *b, size_t n) {
    return finch_kernels_get()->dot_f32(a, b, n);
}

/* ==================================================================== BLAS */

static atomic_bool use_blas = true;

/* Below this many multiply-adds a matmul runs on the calling thread. */
#define SMALL_MATMUL_MACS (256.0 * 1024.0)

void finch_set_use_blas(bool on) { atomic_store(&use_blas, on); }

bool finch_blas_available(void) { return FINCH_BLAS ? true : false; }

#if FINCH_BLAS
/* Our pool does the threading; OpenBLAS threads inside it would
 * oversubscribe the cores and make its blocking depend on their count. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_init(void) { openblas_set_num_threads(1); }
#endif

/* ================================================================== matmul */

/* Work is cut into fixed blocks that do not depend on the thread count.
 * For our own kernels the cut does not even matter for the results (see
 * kernels_internal.h); it only keeps a block of W in cache while the
 * block's tokens stream past it. */
#define MATVEC_TASK_BYTES (64u * 1024)  /* W bytes per task when n == 1       */
#define GEMM_TASK_BYTES (128u * 1024)   /* W block per task when n > 1       */
#define GEMM_TASK_TOKENS 48             /* tokens per task (multiple of tiles) */
#define BLAS_TASK_ROWS 128              /* W rows per cblas_sgemm call        */

typedef struct {
    finch_tile_fn tile;
    size_t tile_tokens;
    const char *w;
    size_t w_stride, rows, cols;
    const char *x;      /* f32 rows or quantized Q8_0 rows */
    size_t x_stride, n; /* bytes per token row, tokens     */
    float *out;
    size_t task_rows, task_tokens, n_row_tasks;
} matmul_job;

static void matmul_task(void *arg, size_t task) {
    const matmul_job *j = arg;
    size_t r0 = (task % j->n_row_tasks) * j->task_rows;
    size_t t0 = (task / j->n_row_tasks) * j->task_tokens;
    size_t r1 = r0 + j->task_rows < j->rows ? r0 + j->task_rows : j->rows;
    size_t t1 = t0 + j->task_tokens < j->n ? t0 + j->task_tokens : j->n;
    /* Rows outside, tokens inside: a quad of W rows stays in L1 while the
     * block's token rows stream past it from L2. */
    for (size_t r = r0; r < r1; r += FINCH_TILE_ROWS) {
        size_t nr = r1 - r < FINCH_TILE_ROWS ? r1 - r : FINCH_TILE_ROWS;
        for (size_t t = t0; t < t1; t += j->tile_tokens) {
            size_t nt = t1 - t < j->tile_tokens ? t1 - t : j->tile_tokens;
            j->tile(j->w + r * j->w_stride, j->w_stride, nr, j->x + t * j->x_stride,
                    j->x_stride, nt, j->cols, j->out + t * j->rows + r, j->rows);
        }
    }
}

/* Rows per task: about `bytes` of W, a multiple of the tile rows. */
static size_t task_rows_for(size_t row_bytes, size_t bytes, size_t rows) {
    size_t r = row_bytes ? bytes / row_bytes : rows;
    r -= r % FINCH_TILE_ROWS;
    if (r < FINCH_TILE_ROWS) r = FINCH_TILE_ROWS;
    return r;
}

typedef struct {
    void (*quantize)(const float *x, void *blocks, size_t n);
    const float *x;
    size_t cols;
    char *xq;
    size_t xq_stride;
} quant_job;

/* Activations are quantized once per call (not per dot product), one token
 * per task; every ISA's quantizer gives the same bits. */
static void quant_task(void *arg, size_t t) {
    const quant_job *q = arg;
    q->quantize(q->x + t * q->cols, q->xq + t * q->xq_stride, q->cols);
}

#if FINCH_BLAS
typedef struct {
    const float *x, *w;
    float *out;
    size_t n, rows, cols;
} blas_job;

/* out[:, r0:r1] = x * W[r0:r1]^T: one single-threaded sgemm per fixed block
 * of W rows, so the calls (and their results) do not depend on threads. */
static void blas_task(void *arg, size_t task) {
    const blas_job *b = arg;
    size_t r0 = task * BLAS_TASK_ROWS;
    size_t nr = b->rows - r0 < BLAS_TASK_ROWS ? b->rows - r0 : BLAS_TASK_ROWS;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b->n, (int)nr, (int)b->cols,
                1.0f, b->x, (int)b->cols, b->w + r0 * b->cols, (int)b->cols, 0.0f,
                b->out + r0, (int)b->rows);
}
#endif

static finch_status check_weight(const finch_weight *w) {
    switch (w->type) {
    case FINCH_F32:
    case FINCH_F16:
    case FINCH_BF16: break;
    case FINCH_Q8_0:
        if (w->cols % FINCH_QK8_0)
            return finch_fail(FINCH_ERR_FORMAT, "q8_0 weight with %zu columns (not a multiple of %d)",
                              w->cols, FINCH_QK8_0);
        break;
    default: return finch_fail(FINCH_ERR_UNSUPPORTED, "matmul: unsupported weight type %d", (int)w->type);
    }
    if (!w->data && w->rows && w->cols) return finch_fail(FINCH_ERR_ARG, "matmul: weight without data");
    return FINCH_OK;
}

finch_status finch_matmul(finch_pool *pool, float *out, const float *x, size_t n,
                          const finch_weight *w) {
    finch_status st = check_weight(w);
    if (st != FINCH_OK) return st;
    size_t rows = w->rows, cols = w->cols;
    if (n == 0 || rows == 0) return FINCH_OK;
    size_t out_n;
    if (!finch_mul_ok(n, rows, &out_n) || n > INT32_MAX || rows > INT32_MAX || cols > INT32_MAX)
        return finch_fail(FINCH_ERR_ARG, "matmul: %zu x %zu x %zu is too large", n, rows, cols);
    if (cols == 0) {
        memset(out, 0, out_n * sizeof(float));
        return FINCH_OK;
    }

#if FINCH_BLAS
    if (w->type == FINCH_F32 && n > 1 && atomic_load(&use_blas)) {
        pthread_once(&blas_once, blas_init);
        blas_job b = {x, w->data, out, n, rows, cols};
        finch_pool_run(pool, (rows + BLAS_TASK_ROWS - 1) / BLAS_TASK_ROWS, blas_task, &b);
        return FINCH_OK;
    }
#endif

    const finch_kernels *k = finch_kernels_get();
    matmul_job j = {0};
    j.w = w->data;
    j.w_stride = finch_row_bytes(w->type, cols);
    j.rows = rows;
    j.cols = cols;
    j.x = (const char *)x;
    j.x_stride = cols * sizeof(float);
    j.n = n;
    j.out = out;
    j.tile_tokens = k->tile_tokens;
    void *xq = NULL;
    switch (w->type) {
    case FINCH_F32: j.tile = k->tile_f32; break;
    case FINCH_F16: j.tile = k->tile_f16; break;
    case FINCH_BF16: j.tile = k->tile_bf16; break;
    case FINCH_Q8_0: {
        j.tile = k->tile_q8_0;
        j.x_stride = j.w_stride; /* activations quantized to the same layout */
        xq = finch_alloc(n, j.x_stride);
        if (!xq) return FINCH_ERR_NOMEM;
        quant_job q = {k->quantize_q8_0, x, cols, xq, j.x_stride};
        finch_pool_run(n > 1 ? pool : NULL, n, quant_task, &q);
        j.x = xq;
        break;
    }
    }
    if (n == 1) {
        j.task_rows = task_rows_for(j.w_stride, MATVEC_TASK_BYTES, rows);
        j.task_tokens = 1;
    } else {
        j.task_rows = task_rows_for(j.w_stride, GEMM_TASK_BYTES, rows);
        j.task_tokens = GEMM_TASK_TOKENS;
    }
    j.n_row_tasks = (rows + j.task_rows - 1) / j.task_rows;
    size_t n_tok_tasks = (n + j.task_tokens - 1) / j.task_tokens;
    /* A small product costs less than waking the workers: the caller runs
     * every task itself (the same tasks, so the same bits). */
    bool small = (double)rows * (double)w->cols * (double)n < SMALL_MATMUL_MACS;
    finch_pool_run(small ? NULL : pool, j.n_row_tasks * n_tok_tasks, matmul_task, &j);
    free(xq);
    return FINCH_OK;
}

/* The definition of a matmul: each W row converted to f32, then one f32
 * accumulator per output in column order.  For Q8_0 this is the dot with
 * the dequantized weights and the exact f32 activations; finch_matmul also
 * quantizes the activations to Q8_0 (as ggml does), so it differs from this
 * by the activation rounding, not only by summation order. */
void finch_matmul_ref(float *out, const float *x, size_t n, const finch_weight *w) {
    float *row = malloc((w->cols ? w->cols : 1) * sizeof(float));
    if (!row) { /* no status to return: poison the output instead */
        for (size_t i = 0; i < n * w->rows; i++) out[i] = NAN;
        return;
    }
    size_t rb = finch_row_bytes(w->type, w->cols);
    for (size_t r = 0; r < w->rows; r++) {
        finch_row_to_f32(w->type, (const char *)w->data + r * rb, row, w->cols);
        for (size_t t = 0; t < n; t++) {
            const float *xt = x + t * w->cols;
            float s = 0;
            for (size_t c = 0; c < w->cols; c++) s += row[c] * xt[c];
            out[t * w->rows + r] = s;
        }
    }
    free(row);
}

/* ============================================================= elementwise */

/* out = x / sqrt(mean(x^2) + eps) * w.  The sum of squares is a float dot
 * product with the ISA's fixed lane order (deterministic, and more accurate
 * than one running sum); the scaling is (x * s) * w as in llama2.c. */
void finch_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps) {
    if (n == 0) return;
    const finch_kernels *k = finch_kernels_get();
    float ss = k->dot_f32(x, x, n) / (float)n + eps;
    k->scale_mul(out, x, w, 1.0f / sqrtf(ss), n);
}

void finch_silu_mul(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* Max-subtracted so that exp never overflows; sum in index order. */
void finch_softmax(float *x, size_t n) {
    if (n == 0) return;
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

void finch_axpy(float *y, float a, const float *x, size_t n) {
    finch_kernels_get()->axpy(y, a, x, n);
}
