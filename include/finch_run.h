/*
 * finch_run.h - the run plan: everything a compress-then-answer run decides
 * before it does any work, computed in one place for `finch run`,
 * `finch eval`, `finch bench` and any other caller.
 *
 * From the press parameters (mode, press, budget, chunk), the sizes of the
 * inputs and the model's context length, finch_plan_run computes:
 *
 *   K, n_kept   the budget resolved (finch_press_resolve_budget)
 *   chunk       iterative: S context tokens per chunk; when not given,
 *               min(FINCH_DEFAULT_CHUNK_MAX, free positions, N - P), where
 *               the free positions are those the protected prefix P
 *               (press.protect), the budget and the question leave in the
 *               window; oneshot: N
 *   capacity    cache rows while compressing (what finch_press allocates)
 *   n_predict   the answer's length, reduced so that it stays in the window
 *   peak        cache rows at the peak: compressing, then growing for the
 *               prompt, the answer and any teacher-forced tokens
 *   batch       tokens per forward call
 *
 * and refuses (FINCH_ERR_ARG, one line) a run whose question, budget, chunk
 * or prompt do not fit the window.  The defaults of the flags the commands
 * share are here too, so that every command shows and uses the same ones.
 */
#ifndef FINCH_RUN_H
#define FINCH_RUN_H

#include "finch_press.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------- the shared defaults */

#define FINCH_DEFAULT_N_PREDICT 32   /* -n: tokens generated                    */
#define FINCH_DEFAULT_SEED 1         /* --seed: sampling and the random press   */
#define FINCH_DEFAULT_TEMP 0.0       /* --temp: 0 is greedy                     */
#define FINCH_DEFAULT_TOP_P 1.0      /* --top-p: 1 keeps every token            */
#define FINCH_DEFAULT_CHUNK_MAX 512  /* --chunk: at most this many per chunk    */
#define FINCH_DEFAULT_BATCH_MAX 512  /* tokens per forward call, at most        */

/* ------------------------------------------------------------- the plan */

typedef struct {
    finch_press_params press; /* mode, press, budget; press.chunk 0: default */
    size_t n_ctx;             /* N context tokens (> 0)                      */
    size_t n_question;        /* m question tokens (> 0)                     */
    size_t n_prompt;          /* tokens fed after compression; 0: the
                                 question (iterative only)                   */
    size_t n_predict;         /* answer tokens asked for                     */
    size_t n_forced;          /* tokens read by teacher forcing after the
                                 prompt (eval's reference answer), 0: none   */
    size_t window;            /* positions the run may use; 0: the model's
                                 context length (a larger one is allowed:
                                 the benchmark reads past it)                */
} finch_run_params;

typedef struct {
    size_t K;            /* context tokens kept (<= N)                        */
    size_t K_rows;       /* rows a head holds for K: K, or for pyramidkv and
                            adakv the largest budget they pad every head to
                            (finch_press_rows_bound)                         */
    size_t n_kept;       /* cache positions after compression (at most)       */
    size_t chunk;        /* S (oneshot: N)                                    */
    size_t n_chunks;
    size_t capacity;     /* cache rows while compressing                      */
    size_t n_predict;    /* the answer's length, within the window            */
    int n_predict_reduced; /* 1 when n_predict was reduced to fit             */
    size_t peak;         /* cache rows at the peak of the run                 */
    size_t batch;        /* tokens per forward call                           */
    size_t window;       /* the positions the plan was made for               */
} finch_run_plan;

/* Parameters with the shared defaults: finch_press_defaults(), seed
 * FINCH_DEFAULT_SEED, n_predict FINCH_DEFAULT_N_PREDICT, sizes 0. */
finch_run_params finch_run_defaults(void);

/* The plan of a run of p on model m (see the top of this file).  Fails with
 * FINCH_ERR_ARG and a one-line reason when the run cannot fit the window.
 * m is only read for its context length: it may be NULL when p->window is
 * set. */
finch_status finch_plan_run(const finch_model *m, const finch_run_params *p, finch_run_plan *out);

/* The chunk when none is given: min(FINCH_DEFAULT_CHUNK_MAX, the positions
 * the budget and the question leave free). */
size_t finch_plan_default_chunk(size_t free_positions);

/* Rows the press's cache holds while compressing N context tokens (the
 * first P of them protected) and m question tokens with budget K (of the
 * N - P) and chunk S (0 or more than N - P: N - P): iterative
 * P + min(K + S, N - P) + m (the rows kept were read before the chunk),
 * oneshot N + m.  finch_press allocates exactly this. */
size_t finch_plan_compress_rows(finch_press_mode mode, size_t P, size_t K, size_t S, size_t N, size_t m);

/* Peak rows of a cache that holds `compress` rows while compressing, then
 * grows to `answer` rows for the prompt and the answer: the press grows it
 * to 1.25x the need plus 16, both caches alive while the rows are copied. */
size_t finch_plan_cache_peak(size_t compress, size_t answer);

/* The rows a grown cache gets for `need` positions (finch_press). */
size_t finch_plan_grow_rows(size_t need);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_RUN_H */
