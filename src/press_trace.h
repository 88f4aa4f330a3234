/* press_trace.h - what a press records about its selections for the dump
 * (docs/dump-format.md): the k_t schedule, the scores the last selection
 * ranked by, each head's selection margin, and optionally every step's
 * scores and kept set.  src/finch.c calls it from its selection; src/dump.c
 * reads it back.  Library-internal. */
#ifndef FINCH_PRESS_TRACE_H
#define FINCH_PRESS_TRACE_H

#include "finch_press.h"

typedef struct {
    size_t n_layer, n_kv_head, n_ctx; /* L, G, N                                  */
    size_t n_steps;                   /* steps begun so far (<= steps_cap)        */
    size_t steps_cap;                 /* iterative: the chunks; oneshot: 1        */
    size_t k_max;                     /* the largest k of a step (steps_kept pad) */
    size_t step;                      /* the step in progress                     */
    int32_t *schedule;                /* [steps_cap] k_t of each step              */
    float *margins;                   /* [L][G] smallest relative margin; +inf when
                                         a head never dropped a candidate        */
    float *scores;                    /* [L][G][N] last step's scores by context
                                         position; NaN where not a candidate     */
    int32_t *steps_kept;              /* [T][L][G][k_max] or NULL; -1 padded       */
    float *steps_scores;              /* [T][L][G][N] or NULL; NaN padded         */
} finch_press_trace;

/* Allocate for L x G heads, N context tokens, up to steps_cap steps that
 * keep at most k_max candidates; with_steps: also every step's arrays. */
finch_status finch_trace_init(finch_press_trace *t, size_t L, size_t G, size_t N, size_t steps_cap,
                              size_t k_max, int with_steps);
void finch_trace_free(finch_press_trace *t);

/* A new selection step that keeps k_t candidates per head. */
void finch_trace_begin_step(finch_press_trace *t, size_t k_t);

/* Head (l, g) of the current step ranked n_cols candidate rows by
 * scores[0..n_cols) and kept rows idx[0..k) - base (ascending); rows[r]
 * is the context position of row r.  Called again for the same head and step (one
 * call per kvpress chunk), the kept positions are appended. */
void finch_trace_select(finch_press_trace *t, size_t l, size_t g, const double *scores, size_t n_cols,
                        const int32_t *rows, const size_t *idx, size_t k, size_t base);

/* What src/dump.c reads of a press (src/finch.c): its trace, its
 * parameters as resolved (batch filled in), its model and context. */
const finch_press_trace *finch_press_get_trace(const finch_press *fp);
const finch_press_params *finch_press_get_params(const finch_press *fp);
const finch_model *finch_press_model(const finch_press *fp);
const finch_ctx *finch_press_ctx(const finch_press *fp);

#endif
