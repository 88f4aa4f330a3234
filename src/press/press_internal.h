/* press_internal.h - the inside of a press, shared by the selection
 * (finch.c) and the session around it (press_session.c), and the building
 * blocks the unit tests call (the tests build with -Isrc/press).  Not part
 * of the installed API (include/finch_press.h). */
#ifndef FINCH_PRESS_INTERNAL_H
#define FINCH_PRESS_INTERNAL_H

#include "finch_press.h"
#include "press_trace.h"
#include "presses.h"

struct finch_press {
    const finch_model *m;
    finch_ctx *ctx;
    finch_press_params p;
    const finch_scorer *scorer;
    finch_press_stats st;
    finch_kv_cache kv;
    int compressed, prompted;
    size_t pos;              /* position of the next token fed                 */
    size_t prompt_end;       /* pos after the prompt (finch_press_rewind)      */
    int32_t *question;       /* copy of Q: the default generation prompt      */
    int32_t *kept;           /* [L][G][n_kept] original positions             */
    int32_t *orig;           /* [L][G][kv.capacity] original position per row */
    double *token_score;     /* [N] static scores (rag, lingua), or NULL      */
    size_t *head_budget;     /* [L][G] live rows per head (scorer->budgets)    */
    size_t *flat;            /* [G * cols_cap] scratch of scorer->budgets      */
    float *logits;           /* [vocab] at the last fed position              */
    float *prompt_logits;    /* [vocab] at the last prompt position           */
    /* scoring state (finch.c) */
    finch_score_step step;   /* the step in progress                           */
    double *acc;             /* [L][G][n_cols]                                 */
    double *layer_score;     /* [cols_cap] (select = layer)                    */
    size_t *idx;             /* [threads][kv.capacity] kept rows of one head    */
    float *scratch;          /* [kv.capacity] one attention row               */
    float *keys32;           /* f16 cache: [threads][kv.capacity][head_dim]
                                (finch_score_step.keys32)                     */
    int32_t *piece;          /* [batch] ids of one forward call                */
    size_t cols_cap;
    double *chunk_vec;       /* [N + m] kvpress chunk_length: scores of C ++ Q */
    long key_shift;          /* no_rerotate: kept keys rotated by n_kept - (N + m + 1) */
    finch_press_trace trace; /* schedule, scores, margins: for the dump    */
};

/* --------------------------------------------- finch.c: the selection */

/* The iterative schedule: after a chunk of chunk_len tokens that brings the
 * context read so far to c_t tokens, with `past` positions cached before it,
 *   k_t = min(past + chunk_len, max(1, floor(K * c_t / N))).
 * The last chunk (c_t = N) ends at exactly min(K, N). */
finch_status finch_press_chunk_budget(size_t K, size_t N, size_t past, size_t chunk_len,
                                      size_t c_t, size_t *k_t);

/* The authors' schedule: k_t = past + floor(chunk_len / cf), cf = ceil(N / K)
 * (an integer factor; K clamped to 1..N).  A chunk shorter than cf adds
 * nothing; the cache ends at or below K. */
finch_status finch_press_chunk_budget_authors(size_t K, size_t N, size_t past, size_t chunk_len, size_t *k_t);

/* Move the kept rows idx[0..n) (ascending) of layer l, head g to rows 0..n-1
 * and re-rotate each key from position idx[r] to position r. */
void finch_press_compact_head(const finch_ctx *c, finch_kv_cache *kv, size_t l, size_t g,
                              const size_t *idx, size_t n);

/* ------------------------------------- press_session.c: the session */

/* Feed a ++ b at positions fp->pos.. in calls of at most p.batch tokens
 * (the engine's feed loop; the pieces are causal, so splitting does not
 * change the result); logits: NULL or [vocab] for the last token.  A feed
 * that scores is finch.c's feed_and_score. */
finch_status press_feed(finch_press *fp, const int32_t *a, size_t na, const int32_t *b, size_t nb,
                        float *logits);

/* Buffers of a compression: the cache (capacity rows), the original
 * position of every row, the score accumulators for up to cols_cap
 * columns; the scoring step bound to them. */
finch_status press_alloc_state(finch_press *fp, size_t capacity, size_t cols_cap);

/* A scoring step: candidate rows 0..n_cols-1, rows row0.. fed now,
 * n_question question rows after them; the accumulators cleared. */
void press_begin_step(finch_press *fp, size_t row0, size_t n_cols, size_t n_question);
/* Rows past..past+n-1 of every layer and head hold context positions c0.. */
void press_mark_rows(finch_press *fp, size_t past, size_t n, size_t c0);
/* The protected prefix C[0..P) into rows 0..P-1, before the first chunk
 * (no row of it observes a candidate, so nothing is scored). */
finch_status press_feed_prefix(finch_press *fp, const int32_t *C, size_t P);

/* Before the modes run: the question kept (the default generation prompt)
 * and the stats of the budget.  After: the stats of what was kept, the
 * kept positions, the scoring buffers freed. */
finch_status press_begin(finch_press *fp, const int32_t *question, size_t n_q, size_t n_ctx, size_t K,
                         size_t n_kept);
finch_status press_end(finch_press *fp, size_t n_ctx, size_t n_q, size_t K);

/* The compressed cache as [n_layer][n_kv_head][n_kept][head_dim].  With
 * no_rerotate the keys are those of the original positions (the cache
 * holds them shifted by finch_press_key_shift, see src/press/finch.c). */
void finch_press_copy_kv(const finch_press *fp, float *keys, float *values);
/* Positions the cache's keys are rotated by against the positions the model
 * sees them at: 0, or with no_rerotate n_kept - (N + m + 1). */
long finch_press_key_shift(const finch_press *fp);

#endif
