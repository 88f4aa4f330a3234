/* press_trace.c - recording a press's selections (src/press_trace.h). */
#include "press_trace.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

finch_status finch_trace_init(finch_press_trace *t, size_t L, size_t G, size_t N, size_t steps_cap,
                              size_t k_max, int with_steps) {
    memset(t, 0, sizeof *t);
    size_t LG = L * G, lgn, per_step_kept;
    if (!finch_mul_ok(LG, N, &lgn) || !finch_mul_ok(LG, k_max ? k_max : 1, &per_step_kept))
        return finch_fail(FINCH_ERR_NOMEM, "trace: %zu heads x %zu positions overflow", LG, N);
    *t = (finch_press_trace){ .n_layer = L, .n_kv_head = G, .n_ctx = N, .steps_cap = steps_cap, .k_max = k_max };
    t->schedule = finch_zalloc(steps_cap ? steps_cap : 1, sizeof(int32_t));
    t->margins = finch_alloc(LG ? LG : 1, sizeof(float));
    t->scores = finch_alloc(lgn ? lgn : 1, sizeof(float));
    if (!t->schedule || !t->margins || !t->scores) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < LG; i++) t->margins[i] = INFINITY;
    fill_nan(t->scores, lgn);
    if (!with_steps) return FINCH_OK;
    t->steps_kept = finch_alloc(steps_cap ? steps_cap : 1, per_step_kept * sizeof(int32_t));
    t->steps_scores = finch_alloc(steps_cap ? steps_cap : 1, (lgn ? lgn : 1) * sizeof(float));
    if (!t->steps_kept || !t->steps_scores) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < steps_cap * per_step_kept; i++) t->steps_kept[i] = -1;
    fill_nan(t->steps_scores, steps_cap * lgn);
    return FINCH_OK;
}

void finch_trace_free(finch_press_trace *t) {
    free(t->schedule); free(t->margins); free(t->scores);
    free(t->steps_kept); free(t->steps_scores);
    memset(t, 0, sizeof *t);
}

void finch_trace_begin_step(finch_press_trace *t, size_t k_t) {
    if (!t->schedule || t->n_steps >= t->steps_cap) return;
    t->step = t->n_steps++;
    t->schedule[t->step] = (int32_t)k_t;
    fill_nan(t->scores, t->n_layer * t->n_kv_head * t->n_ctx); /* only this step's candidates */
}

/* (last kept - first dropped) / max |score|: how far the cut is from a tie.
 * +inf when every candidate is kept. */
static double relative_margin(const double *s, size_t n, const size_t *idx, size_t k, size_t base) {
    if (k >= n) return INFINITY;
    double lo_kept = INFINITY, hi_dropped = -INFINITY, top = 0;
    size_t next = 0;
    for (size_t j = 0; j < n; j++) {
        if (fabs(s[j]) > top) top = fabs(s[j]);
        if (next < k && idx[next] - base == j) {
            next++;
            if (s[j] < lo_kept) lo_kept = s[j];
        } else if (s[j] > hi_dropped) hi_dropped = s[j];
    }
    return (lo_kept - hi_dropped) / (top > 1e-30 ? top : 1e-30);
}

void finch_trace_select(finch_press_trace *t, size_t l, size_t g, const double *scores, size_t n_cols,
                        const int32_t *rows, const size_t *idx, size_t k, size_t base) {
    if (!t->scores || l >= t->n_layer || g >= t->n_kv_head) return;
    size_t lg = l * t->n_kv_head + g, N = t->n_ctx;
    double mg = relative_margin(scores, n_cols, idx, k, base);
    if (mg < t->margins[lg]) t->margins[lg] = (float)mg;
    float *dst = t->scores + lg * N;
    float *step_dst = t->steps_scores ? t->steps_scores + (t->step * t->n_layer * t->n_kv_head + lg) * N : NULL;
    for (size_t r = 0; r < n_cols; r++) {
        size_t pos = (size_t)rows[r];
        if (pos >= N) continue;
        dst[pos] = (float)scores[r];
        if (step_dst) step_dst[pos] = (float)scores[r];
    }
    if (!t->steps_kept) return;
    int32_t *kept = t->steps_kept + (t->step * t->n_layer * t->n_kv_head + lg) * t->k_max;
    size_t at = 0; /* after what earlier calls of this step kept (kvpress chunks) */
    while (at < t->k_max && kept[at] >= 0) at++;
    for (size_t r = 0; r < k && at + r < t->k_max; r++) kept[at + r] = rows[idx[r] - base];
}
