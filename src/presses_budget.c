/* presses_budget.c - presses whose budgets differ between layers or heads,
 * as NVIDIA kvpress computes them (read from kvpress/presses/; our code):
 *
 *   pyramidkv    PyramidKVPress: SnapKV's scores, a per-layer budget that
 *                falls linearly from the first layer to the last
 *                (get_layer_budget, beta = 20, window 64)
 *   adakv        AdaKVPress(SnapKVPress()): one top-k over all KV heads of a
 *                layer after each head's best int(k * 0.2) are forced in
 *   adakv-finch  the same allocation over Finch's scores
 *
 * The cache holds the same number of rows in every layer and head (the
 * forward pass requires it), so the driver (src/finch.c) keeps the largest
 * budget of the step in every head and masks the rows beyond each head's
 * own budget out of attention (finch_kv_cache.dead), as kvpress masks
 * AdaKV's pruned keys.  docs/presses.md states the formulas;
 * tests/test_presses_budget.c checks them against brute forces. */
#include "presses.h"

#include <float.h>
#include <math.h>

#include "topk.h"
#include "util.h"

/* ================================================================ pyramid */

size_t finch_pyramid_budget(size_t n, size_t T, size_t n_layer, size_t l) {
    const double window = 64, beta = 20;
    /* kvpress: max_capacity_prompt = window + q_len (1 - cr), with
     * q_len (1 - cr) = T, the mean budget of a layer */
    double min_num = (double)T / beta, max_num = 2.0 * (double)T - min_num;
    if (max_num >= (double)n - window) {
        max_num = (double)n - window;
        min_num = 2.0 * (double)T - max_num;
    }
    if (n_layer < 2 || !((double)n >= max_num && max_num >= min_num && min_num >= window))
        return T; /* kvpress falls back to SnapKV's budget: round(q_len (1 - cr)) */
    double steps = (max_num - min_num) / (double)(n_layer - 1);
    double b = nearbyint(max_num - (double)l * steps); /* Python's round: halves to even */
    return b < 0 ? 0 : (size_t)b;
}

static void pyramid_budgets(const finch_score_step *s, size_t l, size_t k, double *acc, size_t *b,
                            size_t *scratch) {
    (void)acc;
    (void)scratch;
    /* n: the step's candidate rows, the same for every layer (kvpress's
     * k_len, which all layers share), so that the layers share one pyramid
     * and it sums to about L k.  A layer's live rows may be fewer (an
     * earlier step gave it less, masked rows included in n): its top-b
     * then reaches masked rows, which stay masked. */
    size_t P = s->p->protect < s->n_cols ? s->p->protect : s->n_cols, n = s->n_cols - P;
    size_t bl = finch_pyramid_budget(n, k, s->kv->n_layer, l);
    if (bl > n) bl = n;
    for (size_t g = 0; g < s->kv->n_kv_head; g++) b[g] = bl;
}

/* ================================================================== adakv */

void finch_adakv_budgets(double *acc, size_t G, size_t nc, size_t P, size_t k, double alpha, size_t *b,
                         size_t *scratch) {
    size_t n = nc - P, n_safe = (size_t)((double)k * alpha); /* kvpress: int(n_kept * alpha) */
    for (size_t g = 0; g < G; g++) {
        double *a = acc + g * nc;
        for (size_t j = 0; j < P; j++) a[j] = -INFINITY; /* the protected prefix never competes */
        finch_topk(a + P, n, n_safe, scratch);
        for (size_t i = 0; i < n_safe; i++) a[P + scratch[i]] = DBL_MAX; /* forced in */
        b[g] = 0;
    }
    /* One top-k over the heads of the layer: ties go to the smaller head,
     * then the smaller row (the flat index). */
    finch_topk(acc, G * nc, G * k, scratch);
    for (size_t i = 0; i < G * k; i++) b[scratch[i] / nc]++;
    for (size_t g = 0; g < G; g++)
        if (b[g] > n) b[g] = n;
}

static void adakv_budgets(const finch_score_step *s, size_t l, size_t k, double *acc, size_t *b, size_t *scratch) {
    (void)l;
    size_t P = s->p->protect < s->n_cols ? s->p->protect : s->n_cols;
    finch_adakv_budgets(acc, s->kv->n_kv_head, s->n_cols, P, k, FINCH_ADAKV_ALPHA, b, scratch);
}

size_t finch_press_rows_bound(finch_scorer_id id, size_t n_kv_head, size_t N, size_t K) {
    const finch_scorer *sc = finch_scorer_get(id);
    if (!sc || !sc->budgets) return K < N ? K : N;
    size_t f = sc->budgets == pyramid_budgets ? 2 : n_kv_head, rows;
    if (f < 1) f = 1;
    if (!finch_mul_ok(K, f, &rows) || rows > N) return N;
    return rows;
}

/* ========================================================== the driver's */

void finch_masked_softmax(float *x, const uint8_t *dead, size_t n) {
    float mx = -INFINITY, sum = 0;
    for (size_t j = 0; j < n; j++)
        if (!dead[j] && x[j] > mx) mx = x[j];
    for (size_t j = 0; j < n; j++) sum += x[j] = dead[j] ? 0.0f : expf(x[j] - mx);
    for (size_t j = 0; j < n; j++) x[j] /= sum;
}

size_t finch_scorer_budgets(const finch_scorer *sc, const finch_score_step *s, size_t k, double *acc_all,
                            size_t *head_budget, size_t *scratch) {
    const finch_kv_cache *kv = s->kv;
    size_t L = kv->n_layer, G = kv->n_kv_head, nc = s->n_cols, kmax = 0;
    for (size_t l = 0; l < L; l++) {
        double *acc = acc_all + l * G * nc;
        for (size_t g = 0; g < G; g++) {
            const uint8_t *dead = kv->dead + (l * G + g) * kv->capacity;
            for (size_t j = 0; j < nc; j++)
                if (dead[j]) acc[g * nc + j] = -INFINITY; /* never live again */
        }
        size_t *b = head_budget + l * G;
        sc->budgets(s, l, k, acc, b, scratch);
        for (size_t g = 0; g < G; g++) kmax = b[g] > kmax ? b[g] : kmax;
    }
    return kmax;
}

void finch_mask_beyond_budget(finch_kv_cache *kv, size_t l, size_t g, const double *score, size_t nc, size_t P,
                              const size_t *kept, size_t k, size_t bg, size_t *scratch) {
    uint8_t *dead = kv->dead + (l * kv->n_kv_head + g) * kv->capacity;
    finch_topk(score + P, nc - P, bg, scratch); /* the bg best, ascending: a subset of the k best */
    for (size_t i = 0, r = 0; i < k; i++) {
        size_t row = kept[i];
        int live = r < bg && scratch[r] + P == row;
        r += live;
        dead[row] = dead[row] || !live;
    }
}

size_t finch_kept_mark_masked(const finch_kv_cache *kv, int32_t *kept, size_t n_kept) {
    size_t masked = 0;
    for (size_t lg = 0; kv->dead && lg < kv->n_layer * kv->n_kv_head; lg++)
        for (size_t r = 0; r < n_kept; r++)
            if (kv->dead[lg * kv->capacity + r]) {
                kept[lg * n_kept + r] = -1; /* a masked row holds no position */
                masked++;
            }
    return masked;
}

/* ================================================================ vtables */

static void snapkv_rows(const finch_score_step *s, size_t *lo, size_t *hi) {
    finch_scorer_get(FINCH_SCORER_SNAPKV)->rows(s, lo, hi);
}
static void snapkv_finish(const finch_score_step *s, size_t l, double *acc) {
    finch_scorer_get(FINCH_SCORER_SNAPKV)->finish(s, l, acc);
}
static void finch_rows(const finch_score_step *s, size_t *lo, size_t *hi) { finch_scorer_finch.rows(s, lo, hi); }
static double base_finch_weight(const finch_score_step *s, size_t pos) { return finch_scorer_finch.row_weight(s, pos); }
static void finch_finish(const finch_score_step *s, size_t l, double *acc) { finch_scorer_finch.finish(s, l, acc); }

const finch_scorer finch_scorer_pyramidkv = {
    .id = FINCH_SCORER_PYRAMIDKV, .rows = snapkv_rows, .finish = snapkv_finish, .budgets = pyramid_budgets };
const finch_scorer finch_scorer_adakv = {
    .id = FINCH_SCORER_ADAKV, .rows = snapkv_rows, .finish = snapkv_finish, .budgets = adakv_budgets };
const finch_scorer finch_scorer_adakv_finch = { .id = FINCH_SCORER_ADAKV_FINCH, .question_aware = 1,
                                                .rows = finch_rows, .row_weight = base_finch_weight,
                                                .finish = finch_finish, .budgets = adakv_budgets };
