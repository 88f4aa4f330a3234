/* kernels_qgemm.c - the driver of the quantized GEMM (kernels_internal.h):
 * prefill with quantized weights on tables that have one (AVX-512 VNNI:
 * kernels_qgemm_x86.h; AVX2: kernels_qgemm_avx2.h).
 *
 * A task is one tile of FINCH_QG_ROWS weight rows and up to QG_TASK_TOKENS
 * tokens: the tile is unpacked once (into its thread's pack buffer) and
 * every token of the task meets it.  Each output is the scalar reference's
 * dot product, bit for bit, so neither the thread count nor the cut of the
 * work can change a result, and decode (the dot products) agrees with it. */
#include "kernels_internal.h"

#include <stdlib.h>
#include <string.h>

#define QG_TASK_TOKENS 512 /* tokens per task: a tile is packed per task */
/* Fewer tokens run the dot products (vec_dotn), which unpack a row once
 * per 8 tokens without the pack's transposition: measured on 2048 x 2048,
 * one thread (Zen, VNNI), the GEMM overtakes them between 8 and 16 tokens
 * for the K-quants (0.85x at 8, 1.35x at 16) and below 4 for Q4_0. */
#define QG_MIN_TOKENS_K 12
#define QG_MIN_TOKENS_32 4
/* Q8_0's smaller batches run its lane-order tiles (kernels.c) instead:
 * QG_MIN_TOKENS_Q8_0 is where the GEMM overtakes them (measured below). */
#ifndef QG_MIN_TOKENS_Q8_0 /* -D for experiments */
#define QG_MIN_TOKENS_Q8_0 FINCH_GEMM_MIN_TOKENS
#endif

bool finch_qgemm_runs(const finch_kernels *k, finch_dtype t, size_t n) {
    if ((size_t)t >= FINCH_DTYPE_SLOTS || !k->qgemm[t] || !k->qgemm_pack) return false;
    if (t == FINCH_Q8_0) return n >= QG_MIN_TOKENS_Q8_0;
    return n >= (finch_quant_traits_of(t)->block == FINCH_QK_K ? QG_MIN_TOKENS_K : QG_MIN_TOKENS_32);
}

size_t finch_qgemm_pack_bytes(finch_dtype t, size_t cols) {
    const finch_quant_traits *q = finch_quant_traits_of(t);
    if (q && q->block == FINCH_QK_K) return cols / FINCH_QK_K * sizeof(finch_qg_kpack);
    return (cols + FINCH_QK_K - 1) / FINCH_QK_K * sizeof(finch_qg_bpack);
}

/* What the packer adds to a 32-value type's values to make them unsigned
 * (taken back with the activations' block sums: finch_qg_xaux). */
int finch_qgemm_offset(finch_dtype t) {
    switch (t) {
    case FINCH_Q4_0: return 8;
    case FINCH_Q5_0: return 16;
    case FINCH_IQ4_NL:
    case FINCH_Q8_0: return 128;
    default: return 0;
    }
}

typedef struct {
    const finch_kernels *k;
    finch_dtype type;
    const char *w;
    size_t w_stride, rows, cols;
    const char *x;
    size_t x_stride, n;
    const finch_qg_xaux *aux; /* n rows of cols / 32, or NULL */
    float *out;
    size_t n_row_tasks;
    char *packs; /* pack_bytes per thread */
    size_t pack_bytes;
    bool packed;  /* w packed (kernels_wpack.c) */
    char *groups; /* ... a layout the pack cannot read: one unpacked group per thread */
} qg_job;

static void qg_task(void *arg, size_t task) {
    const qg_job *j = arg;
    size_t r0 = (task % j->n_row_tasks) * FINCH_QG_ROWS;
    size_t t0 = (task / j->n_row_tasks) * QG_TASK_TOKENS;
    size_t nr = j->rows - r0 < FINCH_QG_ROWS ? j->rows - r0 : FINCH_QG_ROWS;
    size_t nt = j->n - t0 < QG_TASK_TOKENS ? j->n - t0 : QG_TASK_TOKENS;
    void *pack = j->packs + finch_pool_worker() * j->pack_bytes;
    const char *w = j->w + r0 * j->w_stride;
    size_t ws = j->w_stride;
    if (j->packed && !j->groups) ws = 0; /* a task's 16 rows are one packed group, read as it lies */
    if (j->groups) { /* ... unpacked first (the K-quants) */
        char *rows = j->groups + finch_pool_worker() * FINCH_WPACK_ROWS * j->w_stride;
        finch_wunpack_group(j->type, w, j->cols, rows);
        w = rows;
    }
    j->k->qgemm_pack(j->type, w, ws, nr, j->cols, pack);
    const finch_qg_xaux *aux = j->aux ? j->aux + t0 * (j->cols / FINCH_QK) : NULL;
    j->k->qgemm[j->type](j->type, pack, j->cols, j->x + t0 * j->x_stride, j->x_stride, aux, nt,
                j->out + t0 * j->rows + r0, j->rows, nr);
}

typedef struct {
    const char *x;
    size_t x_stride, blocks;
    int offset;
    bool q8_1;
    finch_qg_xaux *aux;
} qg_aux_job;

/* One token's Q8_0 blocks: d in f32 and offset * (the sum of the quants);
 * or its Q8_1 blocks (offset 0): d and s in f32. */
static void qg_aux_task(void *arg, size_t t) {
    const qg_aux_job *a = arg;
    finch_qg_xaux *aux = a->aux + t * a->blocks;
    if (a->q8_1) {
        const finch_block_q8_1 *x = (const finch_block_q8_1 *)(a->x + t * a->x_stride);
        for (size_t b = 0; b < a->blocks; b++)
            aux[b] = (finch_qg_xaux){finch_f16_to_f32(x[b].d), 0, finch_f16_to_f32(x[b].s)};
        return;
    }
    const finch_block_q8_0 *x = (const finch_block_q8_0 *)(a->x + t * a->x_stride);
    for (size_t b = 0; b < a->blocks; b++) {
        int32_t s = 0;
        for (int i = 0; i < FINCH_QK8_0; i++) s += x[b].qs[i];
        aux[b] = (finch_qg_xaux){finch_f16_to_f32(x[b].d), a->offset * s, 0};
    }
}

static void qg_free_job(void *arg) {
    qg_job *j = arg;
    free((void *)j->x);
    free((void *)j->aux);
    free(j->packs);
    free(j->groups);
    free(j);
}

finch_status finch_qgemm_plan(finch_pool *act_pool, size_t threads, const finch_kernels *k, float *out,
                              void *xq, size_t x_stride, size_t n, const finch_weight *w, finch_qplan *pl) {
    const finch_quant_traits *q = finch_quant_traits_of(w->type);
    qg_job *j = finch_alloc(1, sizeof *j);
    if (!j) return FINCH_ERR_NOMEM;
    *j = (qg_job){k, w->type, w->data, finch_row_bytes(w->type, w->cols), w->rows, w->cols, xq, x_stride,
                  n, NULL, out, (w->rows + FINCH_QG_ROWS - 1) / FINCH_QG_ROWS, NULL,
                  finch_qgemm_pack_bytes(w->type, w->cols), w->packed, NULL};
    finch_qg_xaux *aux = NULL;
    j->packs = finch_alloc(threads, j->pack_bytes);
    _Static_assert(FINCH_QG_ROWS == FINCH_WPACK_ROWS, "a GEMM task is one packed group");
    bool direct = q->block == FINCH_QK; /* the packs read the 32-value types' groups (finch_qgemm_pack_fn) */
    if (w->packed && !direct && j->packs && !(j->groups = finch_alloc(threads, FINCH_WPACK_ROWS * j->w_stride))) {
        free(j->packs);
        j->packs = NULL;
    }
    if (q->block != FINCH_QK_K && j->packs) {
        size_t blocks = w->cols / FINCH_QK;
        if ((aux = finch_alloc(n * blocks, sizeof *aux))) {
            qg_aux_job a = {xq, x_stride, blocks, finch_qgemm_offset(w->type), q->partner == FINCH_Q8_1, aux};
            finch_pool_run(act_pool, n, qg_aux_task, &a);
        }
        j->aux = aux;
    }
    if (!j->packs || (q->block != FINCH_QK_K && !aux)) {
        free(j->packs);
        free(j->groups);
        free(j);
        return FINCH_ERR_NOMEM;
    }
    size_t n_tok_tasks = (n + QG_TASK_TOKENS - 1) / QG_TASK_TOKENS;
    *pl = (finch_qplan){qg_task, j, j->n_row_tasks * n_tok_tasks, qg_free_job};
    return FINCH_OK;
}
