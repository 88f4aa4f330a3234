/* kernels.c - ISA dispatch, the matmul driver (own tiled kernels or
 * OpenBLAS) and the elementwise operations.
 *
 * The scalar reference kernels, the readable definition of every operation,
 * are in kernels_scalar.c; kernels_avx2.c, kernels_avx512.c and
 * kernels_neon.c hold the same loops in SIMD form and are compared with
 * them by tests/test_kernels.c. */
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
/* VNNI is cpuid leaf 7, ECX bit 11 (read directly, like F16C: older
 * compilers have no feature string for it). */
static bool cpu_has_avx512_vnni(void) {
    unsigned a, b, c, d;
    return cpu_has_avx512() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11));
}
#endif

static const finch_kernels *kernels_for(finch_isa isa) {
    switch (isa) {
    case FINCH_ISA_SCALAR: return &finch_kernels_scalar;
#if defined(__x86_64__)
    case FINCH_ISA_AVX2: return cpu_has_avx2() ? &finch_kernels_avx2 : NULL;
    case FINCH_ISA_AVX512:
        if (!cpu_has_avx512()) return NULL;
        return cpu_has_avx512_vnni() ? &finch_kernels_avx512_vnni : &finch_kernels_avx512;
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

void finch_dot_rows_f32(const float *q, const float *k, size_t n, size_t d, float scale, float *out) {
    float (*dot)(const float *, const float *, size_t) = finch_kernels_get()->dot_f32;
    for (size_t j = 0; j < n; j++) out[j] = dot(q, k + j * d, d) * scale;
}

/* ==================================================================== BLAS */

static _Atomic int blas_mode = FINCH_BLAS_AUTO;

/* Below this many multiply-adds a matmul runs on the calling thread. */
#define SMALL_MATMUL_MACS (256.0 * 1024.0)

void finch_set_blas_mode(finch_blas_mode mode) { atomic_store(&blas_mode, (int)mode); }
bool finch_blas_available(void) { return FINCH_BLAS ? true : false; }

/* Whether an f32 product of n > 1 tokens goes to OpenBLAS.  Automatic: only
 * where this ISA has no packed GEMM of its own.  Measured on a 2-core Zen 5
 * (AVX-512), 512 x 2048 @ 2048 x 2048, 2 threads: our packed GEMM is ~2x
 * OpenBLAS's single-threaded sgemm run block by block in our pool.  The
 * AVX2, NEON and scalar tables only have the 4-row lane-order tiles, which
 * OpenBLAS beats (with OPENBLAS_CORETYPE=Haswell on the same machine: see
 * docs/engine.md), so they keep it. */
static bool blas_for(const finch_kernels *k, finch_dtype t) {
    if (!FINCH_BLAS || t != FINCH_F32) return false;
    switch ((finch_blas_mode)atomic_load(&blas_mode)) {
    case FINCH_BLAS_NEVER: return false;
    case FINCH_BLAS_ALWAYS: return true;
    default: return !k->gemm_prefill;
    }
}

bool finch_prefill_uses_blas(finch_dtype t) { return blas_for(finch_kernels_get(), t); }

const char *finch_kernels_describe(void) {
    const finch_kernels *k = finch_kernels_get();
    bool blas = blas_for(k, FINCH_F32);
#if defined(__x86_64__)
    if (k == &finch_kernels_avx512_vnni || k == &finch_kernels_avx512) {
        /* [vnni][bf16 dot for BF16 weights][OpenBLAS] */
        static const char *const names[2][2][2] = {
            {{"avx512, own packed GEMM for prefill", "avx512, OpenBLAS sgemm for f32 prefill"},
             {"avx512 (bf16 dot for bf16), own packed GEMM for prefill",
              "avx512 (bf16 dot for bf16), OpenBLAS sgemm for f32 prefill"}},
            {{"avx512 (vnni for q8_0 and quantized prefill), own packed GEMM for prefill",
              "avx512 (vnni for q8_0 and quantized prefill), OpenBLAS sgemm for f32 prefill"},
             {"avx512 (vnni for q8_0 and quantized prefill, bf16 dot for bf16), own packed GEMM for prefill",
              "avx512 (vnni for q8_0 and quantized prefill, bf16 dot for bf16), OpenBLAS sgemm for f32 prefill"}}};
        return names[k == &finch_kernels_avx512_vnni][finch_bf16_dot_for(k) != NULL][blas];
    }
#endif
    switch (k->isa) {
    case FINCH_ISA_AVX2: return blas ? "avx2, OpenBLAS sgemm for f32 prefill" : "avx2";
    case FINCH_ISA_NEON: return blas ? "neon, OpenBLAS sgemm for f32 prefill" : "neon";
    default: return blas ? "scalar, OpenBLAS sgemm for f32 prefill" : "scalar";
    }
}

#if FINCH_BLAS
/* Our pool does the threading; OpenBLAS threads inside it would
 * oversubscribe the cores and make its blocking depend on their count. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_init(void) { openblas_set_num_threads(1); }
#endif

/* ================================================================== matmul */

/* Work is cut into fixed blocks that do not depend on the thread count;
 * for our own kernels the cut never changes a result (kernels_internal.h),
 * it keeps a block of W in cache while the block's tokens stream past. */
#define TILE_TASK_BYTES (128u * 1024)   /* W block per task when n > 1       */
#define TILE_TASK_TOKENS 48             /* tokens per task (multiple of tiles) */
#define BLAS_TASK_ROWS 128              /* W rows per cblas_sgemm call        */

/* Packed GEMM (kernels_internal.h).  A task is a few panels of 32 W rows
 * and about GEMM_TASK_TOKENS tokens.  Columns go in blocks of GEMM_KC: the
 * panel's block, packed (32 x 1024 f32 = 128 KB, on the stack), stays in
 * L2 while every token of the task streams past it (a register tile takes
 * 12 tokens, 48 KB of x).  Measured on 512 x 2048 x 2048, one thread:
 * 1024 columns per block ~199 GFLOP/s, 512 ~195, 256 ~184, 128 ~175 (fewer
 * packs and accumulator reloads; a row's block is also one 4 KB page). */
#define GEMM_KC 1024
#define GEMM_TASK_TOKENS 512
#define GEMM_TASK_PANELS 4

typedef struct {
    finch_tile_fn tile;
    size_t tile_rows, tile_tokens;
    const char *w;
    size_t w_stride, rows, cols;
    const char *x;      /* f32 rows or quantized Q8_0 rows */
    size_t x_stride, n; /* bytes per token row, tokens     */
    float *out;
    size_t task_rows, task_tokens, n_tok_tasks;
} matmul_job;

static void matmul_task(void *arg, size_t task) {
    const matmul_job *j = arg;
    /* Token blocks fastest: consecutive tasks share a block of W, which then
     * comes from L2, not DRAM (docs/bench.md, "BF16 prefill's task order"). */
    size_t r0 = (task / j->n_tok_tasks) * j->task_rows;
    size_t t0 = (task % j->n_tok_tasks) * j->task_tokens;
    size_t r1 = r0 + j->task_rows < j->rows ? r0 + j->task_rows : j->rows;
    size_t t1 = t0 + j->task_tokens < j->n ? t0 + j->task_tokens : j->n;
    /* Rows outside, tokens inside: a tile of W rows stays in L1 while the
     * block's token rows stream past it from L2. */
    for (size_t r = r0; r < r1; r += j->tile_rows) {
        size_t nr = r1 - r < j->tile_rows ? r1 - r : j->tile_rows;
        for (size_t t = t0; t < t1; t += j->tile_tokens) {
            size_t nt = t1 - t < j->tile_tokens ? t1 - t : j->tile_tokens;
            j->tile(j->w + r * j->w_stride, j->w_stride, nr, j->x + t * j->x_stride,
                    j->x_stride, nt, j->cols, j->out + t * j->rows + r, j->rows);
        }
    }
}

/* Rows per task: about `bytes` of W, a multiple of the tile rows. */
static size_t task_rows_for(size_t row_bytes, size_t bytes, size_t tile_rows) {
    size_t r = row_bytes ? bytes / row_bytes : tile_rows;
    r -= r % tile_rows;
    return r < tile_rows ? tile_rows : r;
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

typedef struct {
    finch_pack_fn pack;
    finch_gemm_fn gemm;
    size_t gemm_tokens;
    const char *w;
    size_t w_stride, elem_bytes, rows, cols;
    const float *x;
    size_t n;
    float *out;
    size_t n_panels, task_panels, task_tokens;
    float *wp; /* GEMM_KC x 32 floats per thread of the run */
} gemm_job;

/* Prefetch the `part`-th of `parts` pieces of the W block (rows r0 ..
 * r0+nr, columns from k0) that the next pack reads, spread over the token
 * tiles of the current block so that the misses overlap with arithmetic.
 * Packing waits on DRAM and on page walks (the 32 rows of a panel lie in
 * 32 pages of a mapped file): measured on TinyLlama F32, one thread, packs
 * take ~11% of the GEMM's time with this and ~13% without.  Touching the
 * lines with loads instead makes the packs cheap (3%) but stalls the
 * register tile behind the misses, which costs more. */
static void prefetch_block(const gemm_job *g, size_t r0, size_t nr, size_t k0, size_t part,
                           size_t parts) {
    size_t kc = g->cols - k0 < GEMM_KC ? g->cols - k0 : GEMM_KC;
    size_t lines = (kc * g->elem_bytes + 63) / 64, total = nr * lines;
    const char *w = g->w + r0 * g->w_stride + k0 * g->elem_bytes;
    for (size_t i = total * part / parts; i < total * (part + 1) / parts; i++)
        __builtin_prefetch(w + (i / lines) * g->w_stride + (i % lines) * 64, 0, 2);
}

/* One panel (32 rows from r0) against tokens [t0, t1), block by block of
 * GEMM_KC columns; while a block computes, the next one is prefetched: the
 * panel's next block, or the first block of the task's next panel (at r1,
 * none when r1 == r0). */
static void gemm_panel(const gemm_job *g, size_t r0, size_t r1, size_t t0, size_t t1, float *wp) {
    size_t nr = g->rows - r0 < FINCH_PANEL_ROWS ? g->rows - r0 : FINCH_PANEL_ROWS;
    size_t nr1 = g->rows - r1 < FINCH_PANEL_ROWS ? g->rows - r1 : FINCH_PANEL_ROWS;
    size_t tiles = (t1 - t0 + g->gemm_tokens - 1) / g->gemm_tokens;
    for (size_t k0 = 0; k0 < g->cols; k0 += GEMM_KC) {
        size_t kc = g->cols - k0 < GEMM_KC ? g->cols - k0 : GEMM_KC;
        bool last = k0 + kc == g->cols;
        g->pack(g->w + r0 * g->w_stride, g->w_stride, nr, k0, kc, wp);
        for (size_t t = t0, i = 0; t < t1; t += g->gemm_tokens, i++) {
            size_t nt = t1 - t < g->gemm_tokens ? t1 - t : g->gemm_tokens;
            if (!last) prefetch_block(g, r0, nr, k0 + kc, i, tiles);
            else if (r1 != r0) prefetch_block(g, r1, nr1, 0, i, tiles);
            g->gemm(wp, FINCH_PANEL_ROWS, kc, g->x + t * g->cols + k0, g->cols, nt,
                    g->out + t * g->rows + r0, g->rows, nr, k0 == 0);
        }
    }
}

/* A task: g->task_panels panels (consecutive, so that each one's first
 * block is prefetched during the one before) x g->task_tokens tokens,
 * packing into its thread's buffer. */
static void gemm_task(void *arg, size_t task) {
    const gemm_job *g = arg;
    float *wp = g->wp + finch_pool_worker() * (GEMM_KC * FINCH_PANEL_ROWS);
    size_t n_groups = (g->n_panels + g->task_panels - 1) / g->task_panels;
    size_t p0 = (task % n_groups) * g->task_panels;
    size_t p1 = p0 + g->task_panels < g->n_panels ? p0 + g->task_panels : g->n_panels;
    size_t t0 = (task / n_groups) * g->task_tokens;
    size_t t1 = t0 + g->task_tokens < g->n ? t0 + g->task_tokens : g->n;
    for (size_t p = p0; p < p1; p++)
        gemm_panel(g, p * FINCH_PANEL_ROWS, (p + 1 < p1 ? p + 1 : p) * FINCH_PANEL_ROWS, t0, t1, wp);
}

static finch_pack_fn pack_for(const finch_kernels *k, finch_dtype t) {
    switch (t) {
    case FINCH_F32: return k->pack_f32;
    case FINCH_F16: return k->pack_f16;
    case FINCH_BF16: return k->pack_bf16;
    default: return NULL;
    }
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
    default: {
        const finch_quant_traits *q = finch_quant_traits_of(w->type);
        if (!q || !finch_weight_type_supported((uint32_t)w->type))
            return finch_fail(FINCH_ERR_UNSUPPORTED, "matmul: unsupported weight type %d", (int)w->type);
        if (w->cols % q->block)
            return finch_fail(FINCH_ERR_FORMAT, "%s weight with %zu columns (not a multiple of %zu)",
                              q->name, w->cols, q->block);
        break;
    }
    }
    if (!w->data && w->rows && w->cols) return finch_fail(FINCH_ERR_ARG, "matmul: weight without data");
    return FINCH_OK;
}

/* A small product costs less than waking the workers: the caller runs
 * every task itself (the same tasks, so the same bits). */
static finch_pool *pool_for(finch_pool *pool, double macs) {
    return macs < SMALL_MATMUL_MACS ? NULL : pool;
}

static double macs_of(size_t n, const finch_weight *w) {
    return (double)w->rows * (double)w->cols * (double)n;
}

/* Panels per task: up to GEMM_TASK_PANELS, fewer when that would leave
 * fewer than four tasks per thread (the cut never changes a result). */
static size_t task_panels_for(size_t n_panels, size_t threads) {
    size_t per = n_panels / (4 * threads);
    return per < 1 ? 1 : per > GEMM_TASK_PANELS ? GEMM_TASK_PANELS : per;
}

/* One product, cut into tasks, ready to run in a pool run of its own or
 * beside others (finch_matmul_many): the cut depends only on the shapes
 * (and, for the packed GEMM, on the run's thread count, which never
 * changes a result). */
typedef struct {
    void (*fn)(void *arg, size_t task);
    size_t n_tasks;
    union {
        matmul_job tiles;
        gemm_job gemm;
    } job;
    void *scratch; /* quantized activations or packing buffers */
    finch_qplan quant; /* the other quantized types: job on the heap, or NULL */
} mm_plan;

/* Tokens per task: the batch in equal parts of about GEMM_TASK_TOKENS (a
 * multiple of the register tile), never a short remainder: every task
 * packs its panels once, so a 544-token batch (Finch's chunk of 512 and
 * its question of 32) cut 512 + 32 packed every panel twice for 6% more
 * tokens (5.3% of Finch's time in pack_f16 against 2.9% for the plain
 * 512-token chunks, perf on TinyLlama F16). */
static size_t task_tokens_for(size_t n, size_t tile) {
    size_t parts = (n + GEMM_TASK_TOKENS / 2) / GEMM_TASK_TOKENS;
    if (parts < 1) parts = 1;
    size_t per = (n + parts - 1) / parts;
    return (per + tile - 1) / tile * tile;
}

static void *plan_arg(const mm_plan *pl) { return pl->quant.job ? pl->quant.job : (void *)&pl->job; }

static void plan_free(mm_plan *pl) {
    free(pl->scratch);
    if (pl->quant.job) pl->quant.free_job(pl->quant.job);
}

static finch_status plan_packed(const finch_kernels *k, size_t threads, float *out,
                                const float *x, size_t n, const finch_weight *w, mm_plan *pl) {
    gemm_job g = {pack_for(k, w->type), k->gemm, k->gemm_tokens, w->data,
                  finch_row_bytes(w->type, w->cols), finch_row_bytes(w->type, 1), w->rows, w->cols, x, n, out,
                  (w->rows + FINCH_PANEL_ROWS - 1) / FINCH_PANEL_ROWS, 1, task_tokens_for(n, k->gemm_tokens),
                  NULL};
    /* 128 KB per thread: too much for the stack of every caller. */
    g.wp = finch_alloc(threads, GEMM_KC * FINCH_PANEL_ROWS * sizeof(float));
    if (!g.wp) return FINCH_ERR_NOMEM;
    g.task_panels = task_panels_for(g.n_panels, threads);
    size_t n_groups = (g.n_panels + g.task_panels - 1) / g.task_panels;
    size_t n_tok = (n + g.task_tokens - 1) / g.task_tokens;
    *pl = (mm_plan){gemm_task, n_groups * n_tok, {.gemm = g}, g.wp, {0}};
    return FINCH_OK;
}

/* The bf16 arithmetic of a BF16 product (kernels_bf16.c), or NULL. */
static const finch_bf16_dot *bf16_dot_of(const finch_kernels *k, const finch_weight *w) {
    return w->type == FINCH_BF16 ? finch_bf16_dot_for(k) : NULL;
}

static finch_status plan_tiles(finch_pool *pool, const finch_kernels *k, size_t threads, float *out,
                               const float *x, size_t n, const finch_weight *w, mm_plan *pl) {
    const finch_tile *tile;
    switch (w->type) {
    case FINCH_F16: tile = &k->tile_f16; break;
    case FINCH_BF16: tile = &k->tile_bf16; break;
    case FINCH_Q8_0: tile = &k->tile_q8_0; break;
    default: tile = &k->tile_f32; break;
    }
    const finch_bf16_dot *bd = bf16_dot_of(k, w);
    if (bd) tile = &bd->tile;
    matmul_job j = {tile->fn, n == 1 ? tile->matvec_rows : tile->rows, tile->tokens, w->data,
                    finch_row_bytes(w->type, w->cols),
                    w->rows, w->cols, (const char *)x, w->cols * sizeof(float), n, out, 0, 0, 0};
    void *xq = NULL;
    void (*convert)(const float *x, void *to, size_t n) = NULL;
    if (w->type == FINCH_Q8_0) { /* activations quantized to the same layout */
        convert = k->quantize_q8_0;
        j.x_stride = j.w_stride;
    } else if (bd) { /* activations rounded to bf16 */
        convert = bd->to_bf16;
        j.x_stride = w->cols * sizeof(uint16_t);
    }
    if (convert) {
        xq = finch_alloc(n, j.x_stride);
        if (!xq) return FINCH_ERR_NOMEM;
        quant_job q = {convert, x, w->cols, xq, j.x_stride};
        finch_pool_run(n > 1 ? pool : NULL, n, quant_task, &q);
        j.x = xq;
    }
    size_t task_bytes = n == 1 ? finch_matvec_task_bytes(j.w_stride * w->rows, threads) : TILE_TASK_BYTES;
    j.task_rows = task_rows_for(j.w_stride, task_bytes, j.tile_rows);
    j.task_tokens = n == 1 ? 1 : TILE_TASK_TOKENS - TILE_TASK_TOKENS % j.tile_tokens;
    j.n_tok_tasks = (n + j.task_tokens - 1) / j.task_tokens;
    size_t n_row_tasks = (w->rows + j.task_rows - 1) / j.task_rows;
    *pl = (mm_plan){matmul_task, n_row_tasks * j.n_tok_tasks, {.tiles = j}, xq, {0}};
    return FINCH_OK;
}

typedef struct {
    const mm_plan *plans;
    size_t m;
} plan_set;

/* Task indices run through the plans in order: a task of plan i is the
 * same task, with the same bits, as in a run of plan i alone. */
static void plan_set_task(void *arg, size_t task) {
    const plan_set *s = arg;
    size_t i = 0;
    while (task >= s->plans[i].n_tasks) task -= s->plans[i++].n_tasks;
    s->plans[i].fn(plan_arg(&s->plans[i]), task);
}

static void run_plans(finch_pool *pool, const mm_plan *plans, size_t m) {
    size_t total = 0;
    for (size_t i = 0; i < m; i++) total += plans[i].n_tasks;
    if (m == 1) {
        finch_pool_run(pool, total, plans[0].fn, plan_arg(&plans[0]));
        return;
    }
    plan_set s = {plans, m};
    finch_pool_run(pool, total, plan_set_task, &s);
}

/* Checks a product's arguments; *skip: nothing to compute (zeros written
 * where the inner dimension is empty). */
static finch_status check_product(float *out, size_t n, const finch_weight *w, bool *skip) {
    *skip = true;
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
    *skip = false;
    return FINCH_OK;
}

/* Whether this product runs on OpenBLAS. */
static bool blas_runs(const finch_kernels *k, size_t n, const finch_weight *w) {
    return n > 1 && blas_for(k, w->type);
}

/* Whether the quantized driver (kernels_quant.c) runs this product: the
 * quantized types, Q8_0 in fp32 arithmetic, and Q8_0 prefill batches that
 * the table's quantized GEMM takes (the scalar reference's bits, faster than
 * the tiles there); Q8_0's decode and smaller batches keep the tiles. */
static bool quant_runs(const finch_kernels *k, size_t n, const finch_weight *w) {
    return finch_matmul_is_quant(w->type) || (w->type == FINCH_Q8_0 && finch_qgemm_runs(k, w->type, n));
}

/* Whether the tiles and GEMM of this file run this product: a type they
 * know (other types have their own driver), not on OpenBLAS. */
static bool own_kernels_for(const finch_kernels *k, size_t n, const finch_weight *w) {
    if (quant_runs(k, n, w)) return false;
    switch (w->type) {
    case FINCH_F32:
    case FINCH_F16:
    case FINCH_BF16:
    case FINCH_Q8_0: return !blas_runs(k, n, w);
    default: return false;
    }
}

static finch_status plan_for(finch_pool *pool, const finch_kernels *k, size_t threads,
                             float *out, const float *x, size_t n, const finch_weight *w,
                             mm_plan *pl) {
    if (quant_runs(k, n, w)) {
        *pl = (mm_plan){0};
        finch_status st = finch_matmul_quant_plan(n > 1 ? pool : NULL, threads, k, out, x, n, w, &pl->quant);
        pl->fn = pl->quant.fn;
        pl->n_tasks = pl->quant.n_tasks;
        return st;
    }
    if (n >= FINCH_GEMM_MIN_TOKENS && k->gemm_prefill && pack_for(k, w->type) && !bf16_dot_of(k, w))
        return plan_packed(k, threads, out, x, n, w, pl);
    return plan_tiles(pool, k, threads, out, x, n, w, pl);
}

/* The tiles (lane order) and the packed GEMM (column order) differ in the
 * last bits, and so do Q8_0's tiles and the quantized GEMM; OpenBLAS's
 * blocking may depend on the token count; the quantized drivers and BF16's
 * bf16 arithmetic compute every output as one dot product whatever n is
 * (kernels_internal.h, kernels_bf16.c). */
bool finch_matmul_rows_agree(const finch_weight *w, size_t n, size_t n_sub) {
    if (n_sub == 0 || n_sub == n || finch_matmul_is_quant(w->type)) return true;
    const finch_kernels *k = finch_kernels_get();
    if (w->type == FINCH_Q8_0) return quant_runs(k, n, w) == quant_runs(k, n_sub, w);
    if (bf16_dot_of(k, w)) return true;
    if (blas_runs(k, n, w) || blas_runs(k, n_sub, w)) return false;
    bool packed = k->gemm_prefill && pack_for(k, w->type);
    return !packed || (n >= FINCH_GEMM_MIN_TOKENS) == (n_sub >= FINCH_GEMM_MIN_TOKENS);
}

finch_status finch_matmul(finch_pool *pool, float *out, const float *x, size_t n,
                          const finch_weight *w) {
    bool skip;
    finch_status st = check_product(out, n, w, &skip);
    if (st != FINCH_OK || skip) return st;
    const finch_kernels *k = finch_kernels_get();
    if (quant_runs(k, n, w))
        return finch_matmul_quant(pool_for(pool, macs_of(n, w)), n > 1 ? pool : NULL, k, out, x, n, w);
#if FINCH_BLAS
    if (blas_runs(k, n, w)) {
        pthread_once(&blas_once, blas_init);
        blas_job b = {x, w->data, out, n, w->rows, w->cols};
        finch_pool_run(pool, (w->rows + BLAS_TASK_ROWS - 1) / BLAS_TASK_ROWS, blas_task, &b);
        return FINCH_OK;
    }
#endif
    finch_pool *p = pool_for(pool, macs_of(n, w));
    mm_plan pl;
    if ((st = plan_for(pool, k, finch_pool_threads(p), out, x, n, w, &pl)) != FINCH_OK) return st;
    run_plans(p, &pl, 1);
    plan_free(&pl);
    return FINCH_OK;
}

finch_status finch_matmul_many(finch_pool *pool, size_t m, float *const out[], const float *x,
                               size_t n, const finch_weight *const w[]) {
    if (m > FINCH_MATMUL_MANY_MAX)
        return finch_fail(FINCH_ERR_ARG, "matmul: %zu products in one run (at most %d)", m,
                          FINCH_MATMUL_MANY_MAX);
    const finch_kernels *k = finch_kernels_get();
    bool together = true, skip;
    double macs = 0;
    finch_status st = FINCH_OK;
    for (size_t i = 0; i < m; i++) {
        if ((st = check_product(out[i], n, w[i], &skip)) != FINCH_OK) return st;
        together = together && !skip && (own_kernels_for(k, n, w[i]) || quant_runs(k, n, w[i]));
        macs += macs_of(n, w[i]);
    }
    if (!together) { /* OpenBLAS or an empty product: one at a time */
        for (size_t i = 0; i < m; i++)
            if ((st = finch_matmul(pool, out[i], x, n, w[i])) != FINCH_OK) return st;
        return FINCH_OK;
    }
    finch_pool *p = pool_for(pool, macs);
    mm_plan pl[FINCH_MATMUL_MANY_MAX];
    size_t planned = 0;
    for (; planned < m; planned++)
        if ((st = plan_for(pool, k, finch_pool_threads(p), out[planned], x, n, w[planned],
                           &pl[planned])) != FINCH_OK)
            break;
    if (planned == m) run_plans(p, pl, m);
    for (size_t i = 0; i < planned; i++) plan_free(&pl[i]);
    return planned == m ? FINCH_OK : st;
}

/* The definition of a matmul: each W row converted to f32, then one f32
 * accumulator per output in column order.  For Q8_0 this is the dot with
 * the dequantized weights and the exact f32 activations; finch_matmul also
 * quantizes the activations to Q8_0 (as ggml does), so it differs from this
 * by the activation rounding, not only by summation order. */
void finch_matmul_ref(float *out, const float *x, size_t n, const finch_weight *w) {
    float *row = malloc((w->cols ? w->cols : 1) * sizeof(float));
    void *packed_row = w->packed ? malloc(finch_row_bytes(w->type, w->cols)) : NULL;
    if (!row || (w->packed && !packed_row)) { /* no status to return: poison the output instead */
        for (size_t i = 0; i < n * w->rows; i++) out[i] = NAN;
        free(row);
        free(packed_row);
        return;
    }
    for (size_t r = 0; r < w->rows; r++) {
        finch_row_to_f32(w->type, finch_weight_row(w, r, packed_row), row, w->cols);
        for (size_t t = 0; t < n; t++) {
            const float *xt = x + t * w->cols;
            float s = 0;
            for (size_t c = 0; c < w->cols; c++) s += row[c] * xt[c];
            out[t * w->rows + r] = s;
        }
    }
    free(row);
    free(packed_row);
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
    finch_kernels_get()->silu_mul(gate, up, n);
}

/* softmax(s * x), max-subtracted so that exp never overflows. */
void finch_softmax_scaled(float *x, size_t n, float s) {
    if (n == 0) return;
    const finch_kernels *k = finch_kernels_get();
    float mx = k->max(x, n);
    float inv = 1.0f / k->exp_sum(x, n, s, s * mx);
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

void finch_softmax(float *x, size_t n) { finch_softmax_scaled(x, n, 1.0f); }

/* finch_softmax_scaled at s = 1 up to the exponentials; each probability
 * is then the same float product x[j] * inv, widened as the caller would
 * widen the stored one.  Saves the pass that stores them. */
void finch_softmax_accumulate(float *x, size_t n, double w, double *acc, size_t n_acc) {
    if (n == 0) return;
    const finch_kernels *k = finch_kernels_get();
    float mx = k->max(x, n);
    float inv = 1.0f / k->exp_sum(x, n, 1.0f, mx);
    for (size_t j = 0; j < n_acc && j < n; j++) acc[j] += w * (double)(x[j] * inv);
}

void finch_axpy(float *y, float a, const float *x, size_t n) {
    finch_kernels_get()->axpy(y, a, x, n);
}

/* =============================================================== attention */

size_t finch_attn_kpack_floats(size_t n_keys, size_t d) {
    return (n_keys + FINCH_PANEL_ROWS - 1) / FINCH_PANEL_ROWS * FINCH_PANEL_ROWS * d;
}

void finch_attn_pack_keys(const float *k, size_t key0, size_t key1, size_t d, float *kp) {
    const finch_kernels *kt = finch_kernels_get();
    for (size_t j = key0; j < key1; j += FINCH_PANEL_ROWS) {
        size_t nr = key1 - j < FINCH_PANEL_ROWS ? key1 - j : FINCH_PANEL_ROWS;
        kt->pack_f32(k + j * d, d * sizeof(float), nr, 0, d, kp + j * d);
    }
}

void finch_attn_pack_keys_f16(const uint16_t *k, size_t key0, size_t key1, size_t d, float *kp) {
    const finch_kernels *kt = finch_kernels_get();
    for (size_t j = key0; j < key1; j += FINCH_PANEL_ROWS) {
        size_t nr = key1 - j < FINCH_PANEL_ROWS ? key1 - j : FINCH_PANEL_ROWS;
        kt->pack_kv_f16(k + j * d, d * sizeof(uint16_t), nr, 0, d, kp + j * d);
    }
}

void finch_f16_to_f32_row(const uint16_t *h, float *out, size_t n) { finch_kernels_get()->f16_to_f32(h, out, n); }
void finch_f32_to_f16_row(const float *x, uint16_t *h, size_t n) { finch_kernels_get()->f32_to_f16(x, h, n); }

/* out rows of the weighted sum of V rows (f32 v, or f16 v16 converted
 * FINCH_ATTN_VBLOCK rows at a time into vbuf): each output is one chain of
 * FMAs over the keys in order, a block continuing where the last stopped,
 * so both give the same bits for the same values. */
static void attn_values(const finch_kernels *k, const float *v, const uint16_t *v16, size_t n_keys,
                        size_t d, const float *si, size_t nt, float *out, size_t out_stride, float *vbuf) {
    size_t block = v ? n_keys : FINCH_ATTN_VBLOCK;
    for (size_t j = 0; j < n_keys; j += block) {
        size_t nb = n_keys - j < block ? n_keys - j : block;
        const float *vb = v;
        if (!v) {
            k->f16_to_f32(v16 + j * d, vbuf, nb * d);
            vb = vbuf;
        }
        for (size_t c = 0; c < d; c += FINCH_PANEL_ROWS) {
            size_t nr = d - c < FINCH_PANEL_ROWS ? d - c : FINCH_PANEL_ROWS;
            k->gemm(vb + c, d, nb, si + j, n_keys, nt, out + c, out_stride, nr, j == 0);
        }
    }
}

/* Where attention reads keys and values: packed keys kp, or key rows (f32
 * k or f16 k16) packed one 32-key panel at a time into buf (the same
 * floats, without a packed copy of every key written and read back); V
 * rows f32 v or f16 v16 (attn_values). */
typedef struct {
    const float *kp, *k, *v;
    const uint16_t *k16, *v16;
    float *buf; /* FINCH_ATTN_VBLOCK * d floats, when kp or v is NULL */
} attn_src;

/* Scores against 32 keys at a time, softmax per row, then the weighted sum
 * of V rows, 32 output dimensions at a time: V rows are already the panel
 * layout the GEMM reads (one row per key). */
static void attn_rows(const attn_src *src, size_t n_keys, size_t d, const float *q, size_t q_stride, size_t nq,
                      float scale, float *scores, float *out, size_t out_stride) {
    const finch_kernels *k = finch_kernels_get();
    for (size_t i0 = 0; i0 < nq; i0 += k->gemm_tokens) {
        size_t nt = nq - i0 < k->gemm_tokens ? nq - i0 : k->gemm_tokens;
        const float *qi = q + i0 * q_stride;
        float *si = scores + i0 * n_keys;
        for (size_t j = 0; j < n_keys; j += FINCH_PANEL_ROWS) {
            size_t nr = n_keys - j < FINCH_PANEL_ROWS ? n_keys - j : FINCH_PANEL_ROWS;
            const float *panel = src->kp ? src->kp + j * d : src->buf;
            if (src->k) k->pack_f32(src->k + j * d, d * sizeof(float), nr, 0, d, src->buf);
            else if (!src->kp) k->pack_kv_f16(src->k16 + j * d, d * sizeof(uint16_t), nr, 0, d, src->buf);
            k->gemm(panel, FINCH_PANEL_ROWS, d, qi, q_stride, nt, si + j, n_keys, nr, true);
        }
        for (size_t i = 0; i < nt; i++) finch_softmax_scaled(si + i * n_keys, n_keys, scale);
        attn_values(k, src->v, src->v16, n_keys, d, si, nt, out + i0 * out_stride, out_stride, src->buf);
    }
}

void finch_attn_rows(const float *kp, const float *v, size_t n_keys, size_t d, const float *q,
                     size_t q_stride, size_t nq, float scale, float *scores, float *out,
                     size_t out_stride) {
    attn_src src = { .kp = kp, .v = v };
    attn_rows(&src, n_keys, d, q, q_stride, nq, scale, scores, out, out_stride);
}

void finch_attn_rows_keys(const float *k, const float *v, size_t n_keys, size_t d, const float *q,
                          size_t q_stride, size_t nq, float scale, float *scores, float *out,
                          size_t out_stride, float *buf) {
    attn_src src = { .k = k, .v = v, .buf = buf };
    attn_rows(&src, n_keys, d, q, q_stride, nq, scale, scores, out, out_stride);
}

void finch_attn_rows_f16(const float *kp, const uint16_t *k, const uint16_t *v, size_t n_keys, size_t d,
                         const float *q, size_t q_stride, size_t nq, float scale, float *scores, float *out,
                         size_t out_stride, float *vbuf) {
    attn_src src = { .kp = kp, .k16 = k, .v16 = v, .buf = vbuf };
    attn_rows(&src, n_keys, d, q, q_stride, nq, scale, scores, out, out_stride);
}
