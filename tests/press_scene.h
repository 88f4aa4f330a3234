/* press_scene.h - shared by the press tests: a constructed cache with the
 * queries of every row, its attention in double, the library's scores of one
 * step, and a full-sort top-k (ties: the smaller index).  static inline:
 * a test file may use only some of them. */
#ifndef FINCH_TEST_PRESS_SCENE_H
#define FINCH_TEST_PRESS_SCENE_H

#include "testutil.h"

#include "finch_press.h"
#include "presses.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static inline uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static inline double rng_unif(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }
static inline float rng_normalish(void) { return (float)(rng_unif() + rng_unif() + rng_unif() - 1.5) * 2.0f; }

/* ====================================================== the brute force */

/* A cache of T rows for L layers with the queries of every row of every
 * layer: what the forward pass would hand the scorer. */
typedef struct {
    size_t L, H, G, d, T;
    finch_kv_cache kv;
    float *q; /* [L][T][H*d] post-RoPE queries */
} scene;

static inline void scene_random(scene *s, size_t L, size_t H, size_t G, size_t d, size_t T) {
    finch_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_layer = L; cfg.n_head = H; cfg.n_kv_head = G; cfg.head_dim = d;
    *s = (scene){ L, H, G, d, T, { 0 }, NULL };
    assert_ok(finch_kv_init(&s->kv, &cfg, T));
    for (size_t l = 0; l < L; l++) {
        s->kv.n_pos[l] = T;
        for (size_t g = 0; g < G; g++)
            for (size_t j = 0; j < T; j++)
                for (size_t i = 0; i < d; i++) finch_kv_k(&s->kv, l, g, j)[i] = rng_normalish();
    }
    s->q = malloc(L * T * H * d * sizeof *s->q);
    for (size_t i = 0; i < L * T * H * d; i++) s->q[i] = 1.5f * rng_normalish();
}

static inline void scene_free(scene *s) {
    finch_kv_free(&s->kv);
    free(s->q);
}

/* A[h][r][j]: the causal softmax of every row of layer l, in double. */
static inline double *attention(const scene *s, size_t l) {
    size_t T = s->T, d = s->d, group = s->H / s->G;
    double *A = calloc(s->H * T * T, sizeof *A);
    for (size_t h = 0; h < s->H; h++)
        for (size_t r = 0; r < T; r++) {
            double *row = A + (h * T + r) * T, mx = -INFINITY, sum = 0;
            const float *q = s->q + ((l * T + r) * s->H + h) * d;
            for (size_t j = 0; j <= r; j++) {
                double dot = 0;
                for (size_t i = 0; i < d; i++) dot += (double)q[i] * finch_kv_k(&s->kv, l, h / group, j)[i];
                row[j] = dot / sqrt((double)d);
                mx = fmax(mx, row[j]);
            }
            for (size_t j = 0; j <= r; j++) sum += row[j] = exp(row[j] - mx);
            for (size_t j = 0; j <= r; j++) row[j] /= sum;
        }
    return A;
}

/* Sum over the query heads of group g of A[h][r][j]. */
static inline double group_attn(const scene *s, const double *A, size_t g, size_t r, size_t j) {
    size_t group = s->H / s->G, T = s->T;
    double a = 0;
    for (size_t h = g * group; h < (g + 1) * group; h++) a += A[(h * T + r) * T + j];
    return a;
}

/* The library: a step over rows row0..n_cols+n_q-1 of layer l, the rows
 * handed to the scorer in batches of `batch`, then its final transform. */
static inline void library_scores(const scene *s, finch_scorer_id id, const finch_press_params *p, size_t l, size_t row0,
                           size_t n_cols, size_t n_q, size_t n_ctx, const int32_t *orig, size_t batch,
                           double *acc) {
    const finch_scorer *sc = finch_scorer_get(id);
    assert_non_null(sc);
    finch_score_step st = { &s->kv, p, s->H, row0, n_cols, n_q, n_ctx, orig, s->T, 0, 0, NULL, NULL, 0 };
    finch_score_step_begin(sc, &st);
    memset(acc, 0, s->G * n_cols * sizeof *acc);
    /* The pool's path (KV groups over 3 threads) gives the same bits. */
    finch_pool *pool;
    assert_ok(finch_pool_new(3, &pool));
    double *pooled = calloc(s->G * n_cols, sizeof *pooled);
    float *scratch = malloc(3 * s->T * sizeof *scratch);
    for (size_t pos0 = row0; pos0 < n_cols + n_q; pos0 += batch) {
        size_t n = n_cols + n_q - pos0 < batch ? n_cols + n_q - pos0 : batch;
        const float *q = s->q + (l * s->T + pos0) * s->H * s->d;
        finch_score_accumulate(sc, &st, l, q, n, pos0, acc, scratch);
        finch_score_accumulate_pool(pool, sc, &st, l, q, n, pos0, pooled, scratch, s->T);
    }
    assert_memory_equal(acc, pooled, s->G * n_cols * sizeof *acc);
    finch_pool_free(pool);
    free(pooled);
    free(scratch);
    if (sc->finish) sc->finish(&st, l, acc);
}

/* The k best of s[0..n) by a full sort (ties: the smaller index), sorted
 * ascending; *gap: the gap between the last kept and the first dropped
 * score, relative to them (infinite when the last kept is infinite). */
static const double *sort_scores;
static inline int by_rank(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (sort_scores[x] != sort_scores[y]) return sort_scores[x] > sort_scores[y] ? -1 : 1;
    return (x > y) - (x < y);
}
static inline int by_index(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}
static inline void sort_topk(const double *s, size_t n, size_t k, size_t *out, double *gap) {
    size_t *all = malloc(n * sizeof *all);
    for (size_t i = 0; i < n; i++) all[i] = i;
    sort_scores = s;
    qsort(all, n, sizeof *all, by_rank);
    *gap = INFINITY;
    if (k < n && k && !isinf(s[all[k - 1]])) {
        double a = s[all[k - 1]], b = s[all[k]];
        *gap = (a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-300);
    }
    memcpy(out, all, k * sizeof *out);
    qsort(out, k, sizeof *out, by_index);
    free(all);
}

#endif
