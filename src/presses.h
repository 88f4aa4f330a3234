/* presses.h - the scorer interface: what decides which cached positions a
 * press keeps.  src/finch.c drives every press the same way (chunks, the
 * k_t schedule, top-k, compaction, key re-rotation); a scorer only says
 *
 *   1. which rows observe: the absolute positions whose attention rows are
 *      accumulated during the forward pass (none for the static scorers),
 *   2. how one row counts: its weight (Finch's normalisation; else 1),
 *   3. the final transform of one layer's accumulated attention into scores
 *      (means, pooling, protected windows, or scores that need no attention
 *      at all: key norms, positions, seeded random numbers).
 *
 * Higher scores are kept; ties go to the smaller row (src/topk.h).
 * Finch's own scorer is in src/finch.c, the baselines in src/presses.c;
 * docs/presses.md states every formula. */
#ifndef FINCH_PRESSES_H
#define FINCH_PRESSES_H

#include "finch_press.h"
#include "kernels.h"

/* One scoring step: a chunk in iterative mode, the whole prefill in oneshot.
 * Cache rows 0..n_cols-1 of every layer/head are the candidates (context
 * positions); rows row0..n_cols-1 were fed in this step (the chunk; oneshot:
 * the whole context, row0 = 0); rows n_cols..n_cols+n_question-1 hold the
 * question when it was fed (n_question = 0 when it was not). */
typedef struct {
    const finch_kv_cache *kv;
    const finch_press_params *p;
    size_t n_head;           /* query heads H (KV group size H / G)           */
    size_t row0;             /* first row fed in this step                     */
    size_t n_cols;           /* candidate rows                                 */
    size_t n_question;       /* question rows fed after them                   */
    size_t n_ctx;            /* N, the whole context                           */
    const int32_t *orig;     /* [L][G][orig_stride] context position per row  */
    size_t orig_stride;
    size_t row_lo, row_hi;   /* observing rows [row_lo, row_hi), set by
                                finch_score_step_begin from the scorer        */
} finch_score_step;

typedef struct {
    finch_scorer_id id;
    /* 1: the scores come from the question rows, so the question is fed in
     * every iterative chunk; 0: it is fed only where it stays (oneshot). */
    int question_aware;
    /* The observing rows of this step, [*lo, *hi); *lo == *hi: none (no
     * attention is computed). NULL: none. */
    void (*rows)(const finch_score_step *s, size_t *lo, size_t *hi);
    /* The weight of the observing row at absolute position pos; NULL: 1. */
    double (*row_weight)(const finch_score_step *s, size_t pos);
    /* Turn layer l's accumulated attention acc [G][n_cols] (the weighted
     * sums of probabilities over the observing rows and the query heads of
     * each group) into scores, in place.  NULL: the sums are the scores. */
    void (*finish)(const finch_score_step *s, size_t l, double *acc);
} finch_scorer;

/* The scorer of an id; NULL when the id is unknown. */
const finch_scorer *finch_scorer_get(finch_scorer_id id);

/* Finch itself (src/finch.c). */
extern const finch_scorer finch_scorer_finch;

/* Set s->row_lo / row_hi from the scorer (the other fields must be set). */
void finch_score_step_begin(const finch_scorer *sc, finch_score_step *s);

/* Accumulate into acc [G][n_cols] (layer `layer`) the attention of the
 * observing rows among the batch's rows pos0..pos0+n-1, whose post-RoPE
 * queries are q [n][n_head*head_dim]; kv holds at least pos0+n rows.
 * scratch: pos0 + n floats.  Called from inside the forward pass. */
void finch_score_accumulate(const finch_scorer *sc, const finch_score_step *s, size_t layer,
                            const float *q, size_t n, size_t pos0, double *acc, float *scratch);

/* The same, KV groups spread over the pool's threads (the same bits);
 * scratch: scratch_stride >= pos0 + n floats per thread of the pool. */
void finch_score_accumulate_pool(finch_pool *pool, const finch_scorer *sc, const finch_score_step *s,
                                 size_t layer, const float *q, size_t n, size_t pos0, double *acc,
                                 float *scratch, size_t scratch_stride);
/* The forward pass's thread pool (src/transformer.c). */
finch_pool *finch_ctx_pool(const finch_ctx *c);

/* The random scorer's number for (seed, layer, KV head, context position):
 * splitmix64 of a mix of the four, as a double in [0, 1).  Exposed so the
 * tests can recompute it. */
double finch_random_score(uint64_t seed, size_t layer, size_t head, size_t pos);

#endif
