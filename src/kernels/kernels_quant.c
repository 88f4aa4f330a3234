/* kernels_quant.c - matrix products with ggml's quantized weight types
 * (quants.h), for prefill and decode alike.
 *
 * Two arithmetics (finch_set_quant_math):
 *  - Q8 (default, as llama.cpp's CPU backend): the activations of each
 *    token are quantized once to the weight type's partner (Q8_0, Q8_1 or
 *    Q8_K), and every output is one call of the ISA table's dot product
 *    for the type (the scalar reference where the table has none), or,
 *    for prefill where the table has one, the quantized GEMM
 *    (kernels_qgemm.c), which gives the same bits.
 *  - FP32: every weight row is dequantized (finch_dequantize_row) into a
 *    scratch row and meets the f32 activations in the ISA's f32 dot
 *    product, as GPU backends compute.
 * In both, an output is one call on one weight row and one token row, so
 * it cannot depend on the thread count or on how the work was cut: the
 * rows and tokens are cut into fixed tasks only for cache reuse (a task's
 * weight rows stay in L1/L2 while its tokens stream past). */
#include "kernels_internal.h"
#include "quants.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic int quant_math = FINCH_QUANT_MATH_Q8;

void finch_set_quant_math(finch_quant_math m) { atomic_store(&quant_math, (int)m); }
finch_quant_math finch_get_quant_math(void) { return (finch_quant_math)atomic_load(&quant_math); }

bool finch_matmul_is_quant(finch_dtype t) {
    const finch_quant_traits *q = finch_quant_traits_of(t);
    if (!q || !finch_weight_type_supported((uint32_t)t)) return false;
    /* Q8_0 in Q8 arithmetic keeps its tiles (kernels.c) for decode and
     * small batches; its prefill comes here only for the quantized GEMM
     * (kernels.c, quant_runs). */
    return t != FINCH_Q8_0 || finch_get_quant_math() == FINCH_QUANT_MATH_FP32;
}

finch_vec_dot_fn finch_vec_dot_for(const finch_kernels *k, finch_dtype t) {
    return k->vec_dot[t] ? k->vec_dot[t] : finch_vec_dot_ref(t);
}

#define QTASK_ROWS_BYTES (64u * 1024) /* W bytes per task                */
#define QTASK_TOKENS 16               /* tokens per task                 */

typedef struct {
    finch_vec_dot_fn dot;          /* Q8 arithmetic                        */
    finch_vec_dotn_fn dotn;        /* ... several tokens at once, or NULL  */
    finch_vec_dotr_fn dotr;        /* ... one token, several rows, or NULL */
    finch_vec_dotp_fn dotp;        /* ... one token, a packed group, or NULL */
    float (*dot_f32)(const float *, const float *, size_t); /* FP32       */
    finch_dtype type;
    const char *w;
    size_t w_stride, rows, cols;
    const char *x; /* quantized activation rows, or f32 rows               */
    size_t x_stride, n;
    float *out;
    size_t task_rows, n_row_tasks;
    float *scratch; /* FP32: one dequantized row per thread              */
    bool packed;    /* w packed (kernels_wpack.c): groups of 16 rows      */
    char *groups;   /* packed w without dotp: one unpacked group per thread */
} qjob;

/* Rows [r0, r1) of W, row-major at w (row r0 first), tokens [t0, t1). */
static void qrows(const qjob *j, const char *w, size_t r0, size_t r1, size_t t0, size_t t1) {
    float *row = j->scratch ? j->scratch + finch_pool_worker() * j->cols : NULL;
    if (!row && j->dotr && t1 - t0 == 1) { /* decode: the same bits, rows side by side */
        j->dotr(w, j->w_stride, r1 - r0, j->x + t0 * j->x_stride, j->cols, j->out + t0 * j->rows + r0);
        return;
    }
    for (size_t r = r0; r < r1; r++) {
        const char *wr = w + (r - r0) * j->w_stride;
        if (r + 1 < r1) finch_prefetch(wr + j->w_stride);
        if (row) finch_dequantize_row(j->type, wr, row, j->cols);
        for (size_t t = t0; t < t1;) {
            const char *xt = j->x + t * j->x_stride;
            if (!row && j->dotn && t1 - t > 1) { /* same bits as one at a time */
                size_t nt = t1 - t < FINCH_DOTN_TOKENS ? t1 - t : FINCH_DOTN_TOKENS;
                j->dotn(wr, xt, j->x_stride, nt, j->cols, j->out + t * j->rows + r, j->rows);
                t += nt;
                continue;
            }
            j->out[t * j->rows + r] = row ? j->dot_f32(row, (const float *)xt, j->cols)
                                          : j->dot(wr, xt, j->cols);
            t++;
        }
    }
}

/* A packed W (task rows are whole groups): decode's vec_dotp group by
 * group, else each group unpacked into the thread's scratch and computed
 * as row-major rows (the same bits either way). */
static void qgroups(const qjob *j, size_t r0, size_t r1, size_t t0, size_t t1) {
    size_t gb = FINCH_WPACK_ROWS * j->w_stride;
    char *rows = j->groups ? j->groups + finch_pool_worker() * gb : NULL;
    for (size_t r = r0; r < r1; r += FINCH_WPACK_ROWS) {
        const char *g = j->w + r * j->w_stride;
        if (!rows) {
            for (size_t t = t0; t < t1; t++) j->dotp(g, j->cols, j->x + t * j->x_stride, j->out + t * j->rows + r);
            continue;
        }
        finch_wunpack_group(j->type, g, j->cols, rows);
        qrows(j, rows, r, r + FINCH_WPACK_ROWS, t0, t1);
    }
}

static void qtask(void *arg, size_t task) {
    const qjob *j = arg;
    size_t r0 = (task % j->n_row_tasks) * j->task_rows;
    size_t t0 = (task / j->n_row_tasks) * QTASK_TOKENS;
    size_t r1 = r0 + j->task_rows < j->rows ? r0 + j->task_rows : j->rows;
    size_t t1 = t0 + QTASK_TOKENS < j->n ? t0 + QTASK_TOKENS : j->n;
    if (j->packed) qgroups(j, r0, r1, t0, t1);
    else qrows(j, j->w + r0 * j->w_stride, r0, r1, t0, t1);
}

typedef struct {
    const finch_kernels *k;
    finch_dtype partner;
    const float *x;
    size_t cols;
    char *xq;
    size_t xq_stride;
} qact_job;

static void qact_task(void *arg, size_t t) {
    const qact_job *q = arg;
    const float *x = q->x + t * q->cols;
    void *out = q->xq + t * q->xq_stride;
    if (q->partner == FINCH_Q8_0) q->k->quantize_q8_0(x, out, q->cols); /* same bits on every ISA */
    else if (q->partner == FINCH_Q8_K && q->k->quantize_q8_K) q->k->quantize_q8_K(x, out, q->cols);
    else finch_quantize_act(q->partner, x, out, q->cols);
}

/* The job of a plan (finch_qplan): the dot products' job and its buffers. */
typedef struct {
    qjob j;
    void *xq;
} qplan_job;

static void qplan_task(void *arg, size_t task) { qtask(&((qplan_job *)arg)->j, task); }

static void qplan_free_job(void *arg) {
    qplan_job *q = arg;
    free(q->xq);
    free(q->j.scratch);
    free(q->j.groups);
    free(q);
}

/* Quantizes x (Q8 arithmetic) on act_pool; the quantized GEMM's plan for
 * prefill where the table has one, else the dot products' tasks. */
finch_status finch_matmul_quant_plan(finch_pool *act_pool, size_t threads, const finch_kernels *k,
                                     float *out, const float *x, size_t n, const finch_weight *w,
                                     finch_qplan *pl) {
    const finch_quant_traits *q = finch_quant_traits_of(w->type);
    bool fp32 = finch_get_quant_math() == FINCH_QUANT_MATH_FP32;
    qplan_job *pj = finch_zalloc(1, sizeof *pj);
    if (!pj) return FINCH_ERR_NOMEM;
    pj->j = (qjob){finch_vec_dot_for(k, w->type), k->vec_dotn[w->type], k->vec_dotr[w->type], NULL,
                   k->dot_f32, w->type, w->data,
                   finch_row_bytes(w->type, w->cols), w->rows, w->cols, (const char *)x,
                   w->cols * sizeof(float), n, out, 0, 0, NULL, w->packed, NULL};
    qjob *j = &pj->j;
    /* vec_dotp for decode in Q8 arithmetic; otherwise groups are unpacked */
    j->dotp = w->packed && n == 1 && !fp32 ? k->vec_dotp[w->type] : NULL;
    if (w->packed && !j->dotp && !(j->groups = finch_alloc(threads, FINCH_WPACK_ROWS * j->w_stride)))
        return free(pj), FINCH_ERR_NOMEM;
    if (fp32) {
        j->scratch = finch_alloc(threads, w->cols * sizeof(float));
        if (!j->scratch) return qplan_free_job(pj), FINCH_ERR_NOMEM;
    } else {
        j->x_stride = finch_row_bytes(q->partner, w->cols);
        if (!(pj->xq = finch_alloc(n, j->x_stride))) return qplan_free_job(pj), FINCH_ERR_NOMEM;
        qact_job a = {k, q->partner, x, w->cols, pj->xq, j->x_stride};
        finch_pool_run(act_pool, n, qact_task, &a);
        j->x = pj->xq;
        if (finch_qgemm_runs(k, w->type, n)) { /* prefill: the same bits, faster */
            finch_status st = finch_qgemm_plan(act_pool, threads, k, out, pj->xq, j->x_stride, n, w, pl);
            if (st == FINCH_OK) pj->xq = NULL; /* the plan owns it now */
            qplan_free_job(pj);
            return st;
        }
    }
    size_t task_bytes = n == 1 ? finch_matvec_task_bytes(j->w_stride * w->rows, threads) : QTASK_ROWS_BYTES;
    j->task_rows = j->w_stride ? task_bytes / j->w_stride : 1;
    if (j->task_rows < FINCH_TILE_ROWS) j->task_rows = FINCH_TILE_ROWS;
    if (j->dotr && n == 1) /* whole groups of vec_dotr's rows (a short group repeats a row) */
        j->task_rows = (j->task_rows + FINCH_DOTR_ROWS - 1) / FINCH_DOTR_ROWS * FINCH_DOTR_ROWS;
    if (w->packed) /* whole packed groups */
        j->task_rows = (j->task_rows + FINCH_WPACK_ROWS - 1) / FINCH_WPACK_ROWS * FINCH_WPACK_ROWS;
    j->n_row_tasks = (w->rows + j->task_rows - 1) / j->task_rows;
    size_t n_tok_tasks = (n + QTASK_TOKENS - 1) / QTASK_TOKENS;
    *pl = (finch_qplan){qplan_task, pj, j->n_row_tasks * n_tok_tasks, qplan_free_job};
    return FINCH_OK;
}

finch_status finch_matmul_quant(finch_pool *pool, finch_pool *act_pool, const finch_kernels *k,
                                float *out, const float *x, size_t n, const finch_weight *w) {
    finch_qplan pl;
    finch_status st = finch_matmul_quant_plan(act_pool, finch_pool_threads(pool), k, out, x, n, w, &pl);
    if (st != FINCH_OK) return st;
    finch_pool_run(pool, pl.n_tasks, pl.fn, pl.job);
    pl.free_job(pl.job);
    return FINCH_OK;
}
