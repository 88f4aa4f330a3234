/* presses.c - the baseline presses in the scorer interface (src/press/presses.h).
 *
 * Each one is driven by src/press/finch.c exactly as Finch is: the same chunks,
 * the same k_t schedule, top-k with ties to the smaller row, compaction and
 * key re-rotation.  None of them reads the question: the attention-based
 * ones observe context rows of the current step only.  docs/presses.md has
 * the formulas; tests/test_presses.c checks each against a brute force.
 *
 *   names      the --press names
 *   helpers    shared by the scorers below
 *   full       never selects (the budget is N)
 *   position   truncate, streaming: scores from the context position
 *   window     snapkv, tova: the attention of the last context rows;
 *              snapkv-q: the last rows of chunk ++ question
 *   h2o        the mean attention over the rows that see a key
 *   knorm      the negative key norm
 *   random     a seeded hash of (seed, layer, head, position)
 *   lookup     a scorer by id; a step's observing rows from its scorer
 */
#include "presses.h"

#include <math.h>
#include <string.h>

#include "util.h"

/* ================================================================= names */

static const char *const scorer_names[FINCH_SCORER_COUNT] = {
    "finch", "full", "truncate", "streaming", "snapkv", "h2o", "tova", "knorm", "random",
    "snapkv-q", "keydiff", "chunkkv", "rag", "lingua", "pyramidkv", "adakv", "adakv-finch",
};

const char *finch_scorer_name(finch_scorer_id s) {
    return (unsigned)s < FINCH_SCORER_COUNT ? scorer_names[s] : "unknown";
}

finch_status finch_scorer_parse(const char *s, finch_scorer_id *out) {
    for (unsigned i = 0; s && i < FINCH_SCORER_COUNT; i++)
        if (!strcmp(s, scorer_names[i])) {
            *out = (finch_scorer_id)i;
            return FINCH_OK;
        }
    return finch_fail(FINCH_ERR_ARG, "unknown press '%s' (finch, full, truncate, streaming, snapkv, "
                      "h2o, tova, knorm, random, snapkv-q, keydiff, chunkkv, rag, lingua, pyramidkv, adakv "
                      "or adakv-finch)", s ? s : "");
}

/* =============================================================== helpers */

static size_t group_size(const finch_score_step *s) { return s->n_head / s->kv->n_kv_head; }

/* Context position of every candidate row of layer l, KV head g. */
static const int32_t *orig_positions(const finch_score_step *s, size_t l, size_t g) {
    return s->orig + (l * s->kv->n_kv_head + g) * s->orig_stride;
}

/* Scores that depend only on the context position (the same for every
 * head): acc[g][j] = f(s, position of row j). */
static void score_by_position(const finch_score_step *s, size_t l, double *acc,
                              double (*f)(const finch_score_step *s, size_t pos)) {
    for (size_t g = 0; g < s->kv->n_kv_head; g++) {
        const int32_t *pos = orig_positions(s, l, g);
        for (size_t j = 0; j < s->n_cols; j++) acc[g * s->n_cols + j] = f(s, (size_t)pos[j]);
    }
}

/* ================================================================== full */

/* K = N (finch_press_resolve_budget): nothing is scored, nothing evicted. */
static const finch_scorer full_scorer = { .id = FINCH_SCORER_FULL };

/* ============================================================== position */

/* truncate: rank positions 0, N-1, 1, N-2, 2, ...: the best k are the first
 * ceil(k/2) and the last floor(k/2) positions of the context.  With a
 * protected prefix of P tokens (always kept, never ranked) "first" counts
 * from position P. */
static double truncate_score(const finch_score_step *s, size_t pos) {
    size_t P = s->p->protect;
    if (pos < P) return 0; /* a protected row: not a candidate */
    size_t from_start = 2 * (pos - P), from_end = 2 * (s->n_ctx - 1 - pos) + 1;
    return -(double)(from_start < from_end ? from_start : from_end);
}

static void truncate_finish(const finch_score_step *s, size_t l, double *acc) {
    score_by_position(s, l, acc, truncate_score);
}

static const finch_scorer truncate_scorer = { .id = FINCH_SCORER_TRUNCATE, .finish = truncate_finish };

/* streaming (StreamingLLM): the 4 attention sinks first (ties: the smaller
 * position), then the most recent positions. */
enum { N_SINK = 4 };

static double streaming_score(const finch_score_step *s, size_t pos) {
    (void)s;
    return pos < N_SINK ? INFINITY : (double)pos;
}

static void streaming_finish(const finch_score_step *s, size_t l, double *acc) {
    score_by_position(s, l, acc, streaming_score);
}

static const finch_scorer streaming_scorer = { .id = FINCH_SCORER_STREAMING, .finish = streaming_finish };

/* ================================================================ window */

enum { SNAPKV_WINDOW = 64 };

/* Attention scores below are means of probabilities, at most 1: a window
 * row scored WINDOW_BASE + its rank in the window outranks all of them, the
 * most recent first (when the budget cannot hold the whole window). */
static const double WINDOW_BASE = 2.0;

/* The last w rows of the step's context rows (fewer when the chunk is
 * shorter): the observation window. */
static void last_rows(const finch_score_step *s, size_t w, size_t *lo, size_t *hi) {
    *hi = s->n_cols;
    *lo = s->n_cols - s->row0 > w ? s->n_cols - w : s->row0;
}

static void snapkv_rows(const finch_score_step *s, size_t *lo, size_t *hi) {
    last_rows(s, SNAPKV_WINDOW, lo, hi);
}

static void tova_rows(const finch_score_step *s, size_t *lo, size_t *hi) { last_rows(s, 1, lo, hi); }

/* Query-aware SnapKV (kvpress SnapKVPress run on context ++ question): the
 * window is the last 64 rows of what this step fed, question included, so
 * it is the question and, when the question is shorter, the end of the
 * chunk. */
static void snapkv_q_rows(const finch_score_step *s, size_t *lo, size_t *hi) {
    *hi = s->n_cols + s->n_question;
    *lo = *hi - s->row0 > SNAPKV_WINDOW ? *hi - SNAPKV_WINDOW : s->row0;
}

/* avg_pool1d(kernel 5, stride 1, padding 2, count_include_pad): out[j] is
 * the sum of in[j-2..j+2] that exist, over 5.  In place: the two inputs left
 * of j are kept aside before they are overwritten. */
static void pool5(double *a, size_t n) {
    double left2 = 0, left1 = 0;
    for (size_t j = 0; j < n; j++) {
        double cur = a[j];
        double sum = left2 + left1 + cur + (j + 1 < n ? a[j + 1] : 0) + (j + 2 < n ? a[j + 2] : 0);
        a[j] = sum / 5.0;
        left2 = left1;
        left1 = cur;
    }
}

/* Columns before the window: the mean over the window rows and the query
 * heads of the group (pooled for snapkv); window columns: protected. */
static void window_finish(const finch_score_step *s, size_t l, double *acc, int pool) {
    (void)l;
    size_t w = s->row_hi - s->row_lo, nc = s->n_cols;
    size_t lo = s->row_lo < nc ? s->row_lo : nc; /* snapkv-q: the window may be all question */
    double scale = 1.0 / ((double)w * (double)group_size(s));
    for (size_t g = 0; g < s->kv->n_kv_head; g++) {
        double *a = acc + g * nc;
        for (size_t j = 0; j < lo; j++) a[j] *= scale;
        if (pool) pool5(a, lo);
        for (size_t j = lo; j < nc; j++) a[j] = WINDOW_BASE + (double)(j - lo);
    }
}

static void snapkv_finish(const finch_score_step *s, size_t l, double *acc) { window_finish(s, l, acc, 1); }
static void tova_finish(const finch_score_step *s, size_t l, double *acc) { window_finish(s, l, acc, 0); }

static const finch_scorer snapkv_scorer = {
    .id = FINCH_SCORER_SNAPKV, .rows = snapkv_rows, .finish = snapkv_finish,
};
static const finch_scorer tova_scorer = { .id = FINCH_SCORER_TOVA, .rows = tova_rows, .finish = tova_finish };
static const finch_scorer snapkv_q_scorer = {
    .id = FINCH_SCORER_SNAPKV_Q, .question_aware = 1, .rows = snapkv_q_rows, .finish = snapkv_finish,
};

/* =================================================================== h2o */

/* Every context row fed in this step observes. */
static void h2o_rows(const finch_score_step *s, size_t *lo, size_t *hi) {
    *lo = s->row0;
    *hi = s->n_cols;
}

/* Divide by the number of observing query rows (times the group's heads)
 * that see each key: all of them for a key cached before the step, the
 * rows from j on for a key j of the step (causal). */
static void h2o_finish(const finch_score_step *s, size_t l, double *acc) {
    (void)l;
    size_t lo = s->row_lo, hi = s->row_hi, nc = s->n_cols;
    double group = (double)group_size(s);
    for (size_t g = 0; g < s->kv->n_kv_head; g++)
        for (size_t j = 0; j < nc; j++) acc[g * nc + j] /= group * (double)(hi - (j > lo ? j : lo));
}

static const finch_scorer h2o_scorer = { .id = FINCH_SCORER_H2O, .rows = h2o_rows, .finish = h2o_finish };

/* ================================================================= knorm */

/* Low-norm keys draw attention (Devoto et al. 2024): keep them.  The norm
 * does not change under re-rotation, so cached keys keep their score. */
static void knorm_finish(const finch_score_step *s, size_t l, double *acc) {
    size_t d = s->kv->head_dim;
    for (size_t g = 0; g < s->kv->n_kv_head; g++)
        for (size_t j = 0; j < s->n_cols; j++) {
            float row[FINCH_KV_MAX_HEAD_DIM];
            const float *k = finch_kv_key_f32(s->kv, l, g, j, row);
            double sq = 0;
            for (size_t i = 0; i < d; i++) sq += (double)k[i] * (double)k[i];
            acc[g * s->n_cols + j] = -sqrt(sq);
        }
}

static const finch_scorer knorm_scorer = { .id = FINCH_SCORER_KNORM, .finish = knorm_finish };

/* ================================================================ random */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A hash, not a stream: the score of a position does not depend on the
 * order of the calls, so a position keeps its score from chunk to chunk. */
double finch_random_score(uint64_t seed, size_t layer, size_t head, size_t pos) {
    uint64_t x = splitmix64(seed);
    x = splitmix64(x ^ (uint64_t)layer);
    x = splitmix64(x ^ (uint64_t)head);
    x = splitmix64(x ^ (uint64_t)pos);
    return (double)(x >> 11) * 0x1.0p-53;
}

static void random_finish(const finch_score_step *s, size_t l, double *acc) {
    for (size_t g = 0; g < s->kv->n_kv_head; g++) {
        const int32_t *pos = orig_positions(s, l, g);
        for (size_t j = 0; j < s->n_cols; j++)
            acc[g * s->n_cols + j] = finch_random_score(s->p->seed, l, g, (size_t)pos[j]);
    }
}

static const finch_scorer random_scorer = { .id = FINCH_SCORER_RANDOM, .finish = random_finish };

/* ================================================================ lookup */

const finch_scorer *finch_scorer_get(finch_scorer_id id) {
    static const finch_scorer *const all[FINCH_SCORER_COUNT] = {
        &finch_scorer_finch, &full_scorer, &truncate_scorer, &streaming_scorer, &snapkv_scorer,
        &h2o_scorer, &tova_scorer, &knorm_scorer, &random_scorer, &snapkv_q_scorer,
        &finch_scorer_keydiff, &finch_scorer_chunkkv, &finch_scorer_rag, &finch_scorer_lingua,
        &finch_scorer_pyramidkv, &finch_scorer_adakv, &finch_scorer_adakv_finch,
    };
    return (unsigned)id < FINCH_SCORER_COUNT ? all[id] : NULL;
}

void finch_score_step_begin(const finch_scorer *sc, finch_score_step *s) {
    s->row_lo = s->row_hi = 0;
    if (sc->rows) sc->rows(s, &s->row_lo, &s->row_hi);
}

/* The accumulation of finch.c on the calling thread (the tests' entry). */
void finch_score_accumulate(const finch_scorer *sc, const finch_score_step *s, size_t layer,
                            const float *q, size_t n, size_t pos0, double *acc, float *scratch) {
    finch_score_accumulate_pool(NULL, sc, s, layer, q, n, pos0, acc, scratch, 0);
}
