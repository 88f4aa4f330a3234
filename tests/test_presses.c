/* test_presses.c - the scorer interface and the baseline presses
 * (src/presses.h, src/presses.c, docs/presses.md).
 *
 *   1. each attention scorer against a brute force on a constructed cache:
 *      full causal attention matrices in double, the formula of
 *      docs/presses.md written out directly, the kept rows by a full sort;
 *   2. the scorers without attention (truncate, streaming, knorm, random):
 *      exact kept rows worked out by hand or recomputed independently;
 *   3. whole presses on tiny-llama-gqa: oneshot kept positions of every
 *      press equal a brute force over the attention captured from a plain
 *      prefill; iterative kept positions of the static presses equal a
 *      simulation of the schedule; question-unaware presses ignore the
 *      question; full keeps everything. */
#include "testutil.h"

#include "finch_press.h"
#include "presses.h"
#include "topk.h"

#include "press_scene.h"

/* docs/presses.md, written out: the scores of KV head g of layer l for
 * candidates 0..n_cols-1, rows row0.. fed in the step, n_q question rows. */
static void brute_scores(const scene *s, const double *A, finch_scorer_id id, const finch_press_params *p,
                         size_t l, size_t g, size_t row0, size_t n_cols, size_t n_q, const int32_t *orig,
                         double *out) {
    size_t group = s->H / s->G;
    switch (id) {
    case FINCH_SCORER_FINCH:
        for (size_t j = 0; j < n_cols; j++) {
            double sum = 0;
            for (size_t r = n_cols; r < n_cols + n_q; r++) sum += (p->normalize ? (double)r : 1.0) * group_attn(s, A, g, r, j);
            out[j] = p->mode == FINCH_PRESS_ONESHOT ? sum / (double)(n_q * group) : sum;
        }
        break;
    case FINCH_SCORER_SNAPKV:
    case FINCH_SCORER_TOVA: {
        size_t w = id == FINCH_SCORER_SNAPKV ? 64 : 1;
        size_t lo = n_cols - row0 > w ? n_cols - w : row0, nw = n_cols - lo;
        double *mean = calloc(n_cols, sizeof *mean);
        for (size_t j = 0; j < lo; j++) {
            for (size_t r = lo; r < n_cols; r++) mean[j] += group_attn(s, A, g, r, j);
            mean[j] /= (double)(nw * group);
        }
        for (size_t j = 0; j < lo; j++) {
            if (id == FINCH_SCORER_TOVA) { out[j] = mean[j]; continue; }
            double sum = 0; /* avg_pool1d(5, padding 2), zeros outside */
            for (long t = (long)j - 2; t <= (long)j + 2; t++)
                if (t >= 0 && t < (long)lo) sum += mean[t];
            out[j] = sum / 5;
        }
        for (size_t j = lo; j < n_cols; j++) out[j] = 2.0 + (double)(j - lo);
        free(mean);
        break;
    }
    case FINCH_SCORER_H2O:
        for (size_t j = 0; j < n_cols; j++) {
            double sum = 0;
            size_t seen = 0;
            for (size_t r = row0; r < n_cols; r++)
                if (r >= j) {
                    sum += group_attn(s, A, g, r, j);
                    seen++;
                }
            out[j] = sum / (double)(seen * group);
        }
        break;
    case FINCH_SCORER_KNORM:
        for (size_t j = 0; j < n_cols; j++) {
            double sq = 0;
            for (size_t i = 0; i < s->d; i++) sq += pow(finch_kv_k(&s->kv, l, g, j)[i], 2);
            out[j] = -sqrt(sq);
        }
        break;
    default:
        (void)orig;
        fail_msg("no brute force for press %d", (int)id);
    }
}


/* Scores within 1e-5 (relative) of the brute force, and the same k best. */
static void check_scorer(scene *s, finch_scorer_id id, const finch_press_params *p, size_t row0, size_t n_cols,
                         size_t n_q, size_t k, const size_t *want_kept) {
    const size_t l = 1;
    double *A = attention(s, l);
    double *want = malloc(n_cols * sizeof *want), *got = malloc(s->G * n_cols * sizeof *got);
    int32_t *orig = malloc(s->L * s->G * s->T * sizeof *orig);
    for (size_t i = 0; i < s->L * s->G * s->T; i++) orig[i] = (int32_t)(i % s->T);
    size_t *kw = malloc(n_cols * sizeof *kw), *kg = malloc(n_cols * sizeof *kg);
    for (size_t batch = 3; batch <= s->T; batch += s->T - 3) { /* split and whole */
        library_scores(s, id, p, l, row0, n_cols, n_q, n_cols, orig, batch, got);
        for (size_t g = 0; g < s->G; g++) {
            brute_scores(s, A, id, p, l, g, row0, n_cols, n_q, orig, want);
            for (size_t j = 0; j < n_cols; j++) {
                double e = fabs(got[g * n_cols + j] - want[j]) / (fabs(want[j]) + 1e-6);
                if (e > 1e-5) fail_msg("%s head %zu col %zu: %.9g, brute force %.9g", finch_scorer_name(id), g, j,
                                       got[g * n_cols + j], want[j]);
            }
            double gap;
            sort_topk(want, n_cols, k, kw, &gap);
            if (gap < 1e-6) fail_msg("%s head %zu: the cut is a near tie (%g): pick another seed", finch_scorer_name(id), g, gap);
            finch_topk(got + g * n_cols, n_cols, k, kg);
            for (size_t i = 0; i < k; i++) assert_int_equal(kg[i], kw[i]);
            if (want_kept && g == 0)
                for (size_t i = 0; i < k; i++) assert_int_equal(kg[i], want_kept[i]);
        }
    }
    free(A); free(want); free(got); free(orig); free(kw); free(kg);
}

/* ============================================ 1. the attention scorers */

static void test_finch_scorer_vs_brute(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 4, 2, 8, 40);
    finch_press_params p = finch_press_defaults();
    for (int mode = 0; mode <= 1; mode++)
        for (int norm = 0; norm <= 1; norm++) {
            p.mode = (finch_press_mode)mode;
            p.normalize = norm;
            /* iterative: 10 cached rows, a chunk of 24, 6 question rows */
            check_scorer(&s, FINCH_SCORER_FINCH, &p, mode ? 0 : 10, 34, 6, 9, NULL);
        }
    scene_free(&s);
}

static void test_snapkv_vs_brute(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 4, 2, 8, 100);
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_SNAPKV;
    /* window rows 36..99 (64): columns 0..35 pooled; 70 kept = the window and
     * the 6 best before it */
    check_scorer(&s, FINCH_SCORER_SNAPKV, &p, 10, 100, 0, 70, NULL);
    /* a budget below the window keeps its most recent rows */
    const size_t last[5] = { 95, 96, 97, 98, 99 };
    check_scorer(&s, FINCH_SCORER_SNAPKV, &p, 10, 100, 0, 5, last);
    /* a chunk shorter than the window: the window is the chunk (rows 80..99) */
    check_scorer(&s, FINCH_SCORER_SNAPKV, &p, 80, 100, 0, 30, NULL);
    /* the question rows, fed in oneshot, do not observe */
    p.mode = FINCH_PRESS_ONESHOT;
    check_scorer(&s, FINCH_SCORER_SNAPKV, &p, 0, 90, 10, 70, NULL);
    scene_free(&s);
}

static void test_h2o_vs_brute(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 6, 2, 8, 45);
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_H2O;
    check_scorer(&s, FINCH_SCORER_H2O, &p, 12, 40, 0, 15, NULL);  /* iterative: rows 12..39 */
    check_scorer(&s, FINCH_SCORER_H2O, &p, 0, 40, 5, 15, NULL);   /* oneshot: every context row */
    scene_free(&s);
}

static void test_tova_vs_brute(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 4, 4, 8, 30);
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_TOVA;
    check_scorer(&s, FINCH_SCORER_TOVA, &p, 5, 30, 0, 8, NULL);
    check_scorer(&s, FINCH_SCORER_TOVA, &p, 0, 25, 5, 1, (const size_t[]){ 24 }); /* the last token first */
    scene_free(&s);
}

/* ==================================== 2. the scorers without attention */

/* The kept rows of KV head g with the library's scores and top-k. */
static void kept_rows(const scene *s, finch_scorer_id id, const finch_press_params *p, size_t l, size_t n_cols,
                      size_t n_ctx, const int32_t *orig, size_t k, size_t g, size_t *out) {
    double *acc = malloc(s->G * n_cols * sizeof *acc);
    library_scores(s, id, p, l, 0, n_cols, 0, n_ctx, orig, s->T, acc);
    finch_topk(acc + g * n_cols, n_cols, k, out);
    free(acc);
}

static void expect_rows(const size_t *got, const size_t *want, size_t k) {
    for (size_t i = 0; i < k; i++) assert_int_equal(got[i], want[i]);
}

static void test_positional_presses(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 1, 2, 1, 4, 20);
    finch_press_params p = finch_press_defaults();
    int32_t orig[20];
    size_t got[8];
    for (int i = 0; i < 20; i++) orig[i] = i;
    /* N = 20, k = 6: truncate keeps 3 + 3, streaming 4 sinks + 2 recent */
    kept_rows(&s, FINCH_SCORER_TRUNCATE, &p, 0, 20, 20, orig, 6, 0, got);
    expect_rows(got, (const size_t[]){ 0, 1, 2, 17, 18, 19 }, 6);
    kept_rows(&s, FINCH_SCORER_TRUNCATE, &p, 0, 20, 20, orig, 7, 0, got);
    expect_rows(got, (const size_t[]){ 0, 1, 2, 3, 17, 18, 19 }, 7);
    kept_rows(&s, FINCH_SCORER_STREAMING, &p, 0, 20, 20, orig, 6, 0, got);
    expect_rows(got, (const size_t[]){ 0, 1, 2, 3, 18, 19 }, 6);
    kept_rows(&s, FINCH_SCORER_STREAMING, &p, 0, 20, 20, orig, 3, 0, got);
    expect_rows(got, (const size_t[]){ 0, 1, 2 }, 3);
    /* mid-run (iterative): rows hold positions 0, 2, 5, 9 kept earlier and a
     * chunk 13..18 of a context of N = 20; scores follow the positions */
    const int32_t mid[10] = { 0, 2, 5, 9, 13, 14, 15, 16, 17, 18 };
    kept_rows(&s, FINCH_SCORER_TRUNCATE, &p, 0, 10, 20, mid, 5, 0, got);
    /* truncate ranks 0 (0), 18 (-3), 2 (-4), 17 (-5), 16 (-7), 5 (-10) */
    expect_rows(got, (const size_t[]){ 0, 1, 7, 8, 9 }, 5);
    kept_rows(&s, FINCH_SCORER_STREAMING, &p, 0, 10, 20, mid, 5, 0, got);
    /* streaming: sinks 0, 2, then 18, 17, 16 */
    expect_rows(got, (const size_t[]){ 0, 1, 7, 8, 9 }, 5);
    kept_rows(&s, FINCH_SCORER_STREAMING, &p, 0, 10, 20, mid, 3, 0, got);
    expect_rows(got, (const size_t[]){ 0, 1, 9 }, 3);
    scene_free(&s);
}

static void test_knorm_exact(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 4, 2, 4, 8);
    const double norms[2][8] = { { 3, 1, 4, 1.5, 5, 9, 2, 6 }, { 2, 7, 1, 8, 2.5, 8, 1.8, 2.8 } };
    for (size_t g = 0; g < 2; g++)
        for (size_t j = 0; j < 8; j++) { /* a key of the given norm in a random direction */
            float *k = finch_kv_k(&s.kv, 1, g, j);
            double n2 = 0;
            for (size_t i = 0; i < 4; i++) n2 += (double)k[i] * k[i];
            for (size_t i = 0; i < 4; i++) k[i] = (float)(k[i] / sqrt(n2) * norms[g][j]);
        }
    finch_press_params p = finch_press_defaults();
    int32_t orig[2 * 2 * 8] = { 0 };
    size_t got[3];
    kept_rows(&s, FINCH_SCORER_KNORM, &p, 1, 8, 8, orig, 3, 0, got);
    expect_rows(got, (const size_t[]){ 1, 3, 6 }, 3); /* norms 1, 1.5, 2 */
    kept_rows(&s, FINCH_SCORER_KNORM, &p, 1, 8, 8, orig, 3, 1, got);
    expect_rows(got, (const size_t[]){ 0, 2, 6 }, 3); /* norms 2, 1, 1.8 */
    check_scorer(&s, FINCH_SCORER_KNORM, &p, 0, 8, 0, 3, NULL);
    scene_free(&s);
}

/* docs/presses.md's hash, written out again. */
static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static double random_ref(uint64_t seed, size_t l, size_t g, size_t pos) {
    uint64_t x = mix(mix(mix(mix(seed) ^ l) ^ g) ^ pos);
    return (double)(x >> 11) / 9007199254740992.0;
}

static void test_random_exact(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 2, 2, 4, 30);
    finch_press_params p = finch_press_defaults();
    int32_t orig[2 * 2 * 30];
    for (size_t i = 0; i < 2 * 2 * 30; i++) orig[i] = (int32_t)(3 * (i % 30) + 1); /* positions 1, 4, 7, ... */
    size_t got[10], want[10];
    int differs = 0;
    for (uint64_t seed = 0; seed < 3; seed++) {
        p.seed = seed;
        for (size_t g = 0; g < 2; g++) {
            double sc[30], gap;
            for (size_t j = 0; j < 30; j++) sc[j] = random_ref(seed, 1, g, 3 * j + 1);
            assert_true(finch_random_score(seed, 1, g, 3 * 7 + 1) == sc[7]);
            sort_topk(sc, 30, 10, want, &gap);
            kept_rows(&s, FINCH_SCORER_RANDOM, &p, 1, 30, 100, orig, 10, g, got);
            expect_rows(got, want, 10);
        }
        size_t again[10];
        kept_rows(&s, FINCH_SCORER_RANDOM, &p, 1, 30, 100, orig, 10, 0, again);
        p.seed = seed + 100;
        size_t other[10];
        kept_rows(&s, FINCH_SCORER_RANDOM, &p, 1, 30, 100, orig, 10, 0, other);
        differs += memcmp(again, other, sizeof other) != 0;
    }
    assert_int_equal(differs, 3); /* another seed, another selection */
    for (size_t i = 0; i < 1000; i++) {
        double r = finch_random_score(7, i % 3, i % 5, i);
        assert_true(r >= 0 && r < 1);
    }
    scene_free(&s);
}

static void test_names(void **state) {
    (void)state;
    const char *names[] = { "finch", "full", "truncate", "streaming", "snapkv", "h2o", "tova", "knorm", "random",
                            "snapkv-q", "keydiff", "chunkkv", "rag", "lingua", "pyramidkv", "adakv",
                            "adakv-finch" };
    for (int i = 0; i < FINCH_SCORER_COUNT; i++) {
        finch_scorer_id id;
        assert_ok(finch_scorer_parse(names[i], &id));
        assert_int_equal(id, i);
        assert_string_equal(finch_scorer_name(id), names[i]);
        assert_int_equal(finch_scorer_get(id)->id, id);
        /* fed the question with every chunk: those that read its attention */
        assert_int_equal(finch_scorer_get(id)->question_aware,
                         id == FINCH_SCORER_FINCH || id == FINCH_SCORER_SNAPKV_Q || id == FINCH_SCORER_ADAKV_FINCH);
    }
    finch_scorer_id id;
    assert_int_equal(finch_scorer_parse("snap", &id), FINCH_ERR_ARG);
    assert_null(finch_scorer_get(FINCH_SCORER_COUNT));
    assert_int_equal(finch_press_defaults().scorer, FINCH_SCORER_FINCH);
}

/* ======================================== 3. whole presses on a model */

static finch_model *load_gqa(void) { return test_load_data_model("models/tiny-llama-gqa.gguf"); }

/* The queries of every layer of one forward call. */
static finch_status capture_q(void *user, size_t layer, const float *q, size_t n, size_t pos0,
                              const finch_kv_cache *kv) {
    scene *s = user;
    (void)kv;
    memcpy(s->q + (layer * s->T + pos0) * s->H * s->d, q, n * s->H * s->d * sizeof(float));
    return FINCH_OK;
}

/* A plain prefill of x[0..T) in one call, queries captured: the scene a
 * oneshot press sees. */
static void prefill_scene(finch_model *m, finch_ctx *ctx, const int32_t *x, size_t T, scene *s) {
    const finch_config *c = &m->cfg;
    *s = (scene){ c->n_layer, c->n_head, c->n_kv_head, c->head_dim, T, { 0 }, NULL };
    assert_ok(finch_kv_init(&s->kv, c, T));
    s->q = malloc(s->L * T * s->H * s->d * sizeof *s->q);
    finch_hooks h = { s, capture_q, NULL };
    assert_ok(finch_forward(ctx, &s->kv, x, T, 0, &h, NULL, 0));
}

static double truncate_ref(size_t N, size_t pos) {
    size_t a = 2 * pos, b = 2 * (N - 1 - pos) + 1;
    return -(double)(a < b ? a : b);
}

static int is_static(finch_scorer_id id) {
    return id == FINCH_SCORER_TRUNCATE || id == FINCH_SCORER_STREAMING || id == FINCH_SCORER_RANDOM;
}

/* Static scores of context position pos (truncate, streaming, random). */
static double static_score(finch_scorer_id id, uint64_t seed, size_t N, size_t l, size_t g, size_t pos) {
    if (id == FINCH_SCORER_TRUNCATE) return truncate_ref(N, pos);
    if (id == FINCH_SCORER_STREAMING) return pos < 4 ? INFINITY : (double)pos;
    return random_ref(seed, l, g, pos);
}

static finch_press *compress(finch_model *m, finch_ctx *ctx, finch_press_params p, const int32_t *C, size_t N,
                             const int32_t *Q, size_t M) {
    finch_press *fp;
    assert_ok(finch_press_new(m, ctx, &p, &fp));
    assert_ok(finch_press_compress(fp, C, N, Q, M, NULL, NULL));
    return fp;
}

/* Oneshot: every press's kept positions equal the brute force over the
 * attention of a plain prefill of C ++ Q. */
static void test_oneshot_presses_vs_brute(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 90, M = 6, K = 20, T = N + M };
    int32_t x[T];
    for (size_t i = 0; i < T; i++) x[i] = (int32_t)(3 + rng_next() % (m->cfg.vocab - 3));
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, T, &ctx));
    scene s;
    prefill_scene(m, ctx, x, T, &s);
    const finch_scorer_id ids[] = { FINCH_SCORER_FINCH, FINCH_SCORER_SNAPKV, FINCH_SCORER_H2O, FINCH_SCORER_TOVA,
                                    FINCH_SCORER_KNORM, FINCH_SCORER_TRUNCATE, FINCH_SCORER_STREAMING,
                                    FINCH_SCORER_RANDOM };
    double *want = malloc(N * sizeof *want);
    size_t kw[K];
    for (size_t t = 0; t < sizeof ids / sizeof ids[0]; t++) {
        finch_press_params p = finch_press_defaults();
        p.mode = FINCH_PRESS_ONESHOT;
        p.scorer = ids[t];
        p.budget = K;
        p.batch = T;
        p.seed = 5;
        finch_press *fp = compress(m, ctx, p, x, N, x + N, M);
        const int32_t *kept = finch_press_kept(fp);
        assert_int_equal(finch_press_get_stats(fp)->n_kept, K + M);
        for (size_t l = 0; l < s.L; l++) {
            double *A = attention(&s, l);
            for (size_t g = 0; g < s.G; g++) {
                if (is_static(ids[t]))
                    for (size_t j = 0; j < N; j++) want[j] = static_score(ids[t], 5, N, l, g, j);
                else
                    brute_scores(&s, A, ids[t], &p, l, g, 0, N, M, NULL, want);
                double gap;
                sort_topk(want, N, K, kw, &gap);
                if (gap < 1e-5) fail_msg("%s L%zu H%zu: near tie at the cut (%g)", finch_scorer_name(ids[t]), l, g, gap);
                const int32_t *row = kept + (l * s.G + g) * (K + M);
                for (size_t i = 0; i < K; i++)
                    if (row[i] != (int32_t)kw[i])
                        fail_msg("%s L%zu H%zu rank %zu: kept %d, brute force %zu", finch_scorer_name(ids[t]), l, g, i,
                                 row[i], kw[i]);
                for (size_t i = 0; i < M; i++) assert_int_equal(row[K + i], (int32_t)(N + i)); /* the question */
            }
            free(A);
        }
        finch_press_free(fp);
    }
    free(want);
    scene_free(&s);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* The iterative schedule on static scores, per head: top-k_t of what is
 * cached plus the chunk, ties to the smaller position. */
static void simulate_iterative(finch_scorer_id id, uint64_t seed, size_t N, size_t S, size_t K, size_t l, size_t g,
                               size_t *kept, size_t *n_kept) {
    size_t past = 0, cand[512], top[512];
    double sc[512];
    for (size_t c0 = 0; c0 < N; c0 += S) {
        size_t len = N - c0 < S ? N - c0 : S, n = 0, k_t;
        for (size_t i = 0; i < past; i++) cand[n++] = kept[i];
        for (size_t i = 0; i < len; i++) cand[n++] = c0 + i;
        for (size_t i = 0; i < n; i++) sc[i] = static_score(id, seed, N, l, g, cand[i]);
        assert_ok(finch_press_chunk_budget(K, N, past, len, c0 + len, &k_t));
        double gap;
        sort_topk(sc, n, k_t, top, &gap);
        for (size_t i = 0; i < k_t; i++) kept[i] = cand[top[i]];
        past = k_t;
    }
    *n_kept = past;
}

static void test_iterative_static_presses(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 70, M = 4, S = 12 };
    int32_t C[N], Q[M];
    for (size_t i = 0; i < N; i++) C[i] = (int32_t)(3 + rng_next() % 300);
    for (size_t i = 0; i < M; i++) Q[i] = (int32_t)(3 + rng_next() % 300);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 32, &ctx));
    const finch_scorer_id ids[] = { FINCH_SCORER_TRUNCATE, FINCH_SCORER_STREAMING, FINCH_SCORER_RANDOM };
    const size_t budgets[] = { 9, 30 };
    for (size_t t = 0; t < 3; t++)
        for (size_t b = 0; b < 2; b++) {
            finch_press_params p = finch_press_defaults();
            p.scorer = ids[t];
            p.budget = budgets[b];
            p.chunk = S;
            p.seed = 11;
            finch_press *fp = compress(m, ctx, p, C, N, Q, M);
            const int32_t *kept = finch_press_kept(fp);
            for (size_t l = 0; l < m->cfg.n_layer; l++)
                for (size_t g = 0; g < m->cfg.n_kv_head; g++) {
                    size_t want[N], nw;
                    simulate_iterative(ids[t], 11, N, S, budgets[b], l, g, want, &nw);
                    assert_int_equal(nw, budgets[b]);
                    for (size_t i = 0; i < nw; i++)
                        assert_int_equal(kept[(l * m->cfg.n_kv_head + g) * nw + i], (int32_t)want[i]);
                }
            finch_press_free(fp);
        }
    /* streaming holds its sinks whenever the schedule keeps 4 from the start:
     * K = 30 keeps 0..3 and the 26 most recent */
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_STREAMING;
    p.budget = 30;
    p.chunk = S;
    finch_press *fp = compress(m, ctx, p, C, N, Q, M);
    for (size_t i = 0; i < 30; i++) assert_int_equal(finch_press_kept(fp)[i], (int32_t)(i < 4 ? i : N - 30 + i));
    finch_press_free(fp);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* The baselines never read the question: another question, the same cache.
 * Finch's (and AdaKV over Finch's scores) change; snapkv-q and rag read it
 * too, but need not change on this case. */
static void test_unaware_presses_ignore_question(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 60, M = 5, K = 10 };
    int32_t C[N], Q1[M], Q2[M];
    for (size_t i = 0; i < N; i++) C[i] = (int32_t)(3 + rng_next() % 300);
    for (size_t i = 0; i < M; i++) Q1[i] = (int32_t)(3 + rng_next() % 300), Q2[i] = (int32_t)(3 + rng_next() % 300);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 32, &ctx));
    size_t LG = m->cfg.n_layer * m->cfg.n_kv_head;
    for (int id = FINCH_SCORER_FINCH; id < FINCH_SCORER_COUNT; id++) {
        if (id == FINCH_SCORER_FULL) continue;
        finch_press_params p = finch_press_defaults();
        p.scorer = (finch_scorer_id)id;
        p.budget = K;
        p.chunk = 16;
        finch_press *a = compress(m, ctx, p, C, N, Q1, M), *b = compress(m, ctx, p, C, N, Q2, M);
        size_t nk = finch_press_get_stats(a)->n_kept;
        int same = nk == finch_press_get_stats(b)->n_kept &&
                   !memcmp(finch_press_kept(a), finch_press_kept(b), LG * nk * sizeof(int32_t));
        int finch_scores = id == FINCH_SCORER_FINCH || id == FINCH_SCORER_ADAKV_FINCH;
        if (id != FINCH_SCORER_SNAPKV_Q && id != FINCH_SCORER_RAG && same != !finch_scores)
            fail_msg("%s: the question %s the kept positions", finch_scorer_name((finch_scorer_id)id),
                     same ? "did not change" : "changed");
        assert_string_equal(finch_scorer_name(finch_press_get_stats(a)->scorer), finch_scorer_name((finch_scorer_id)id));
        finch_press_free(a);
        finch_press_free(b);
    }
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* full: whatever the budget, every position stays; iterative gives the
 * logits of a plain prefill of C ++ Q. */
static void test_full_keeps_everything(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 40, M = 4 };
    int32_t x[N + M];
    for (size_t i = 0; i < N + M; i++) x[i] = (int32_t)(3 + rng_next() % 300);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 64, &ctx));
    for (int mode = 0; mode <= 1; mode++) {
        finch_press_params p = finch_press_defaults();
        p.mode = (finch_press_mode)mode;
        p.scorer = FINCH_SCORER_FULL;
        p.budget = 3;
        p.chunk = 7;
        finch_press *fp = compress(m, ctx, p, x, N, x + N, M);
        const finch_press_stats *st = finch_press_get_stats(fp);
        size_t nk = mode ? N + M : N;
        assert_int_equal(st->budget, N);
        assert_int_equal(st->n_kept, nk);
        assert_true(st->compression == 1.0);
        for (size_t i = 0; i < nk; i++) assert_int_equal(finch_press_kept(fp)[i], (int32_t)i);
        if (!mode) {
            float *want = malloc(m->cfg.vocab * sizeof *want);
            finch_kv_cache kv;
            assert_ok(finch_kv_init(&kv, &m->cfg, N + M));
            assert_ok(finch_forward(ctx, &kv, x, N + M, 0, NULL, want, 1));
            assert_ok(finch_press_prompt(fp, NULL, 0, NULL));
            assert_true(test_max_abs_diff(finch_press_prompt_logits(fp), want, m->cfg.vocab) <= 1e-4);
            finch_kv_free(&kv);
            free(want);
        }
        finch_press_free(fp);
    }
    finch_press_params p = finch_press_defaults();
    p.scorer = (finch_scorer_id)99;
    finch_press *fp;
    assert_int_equal(finch_press_new(m, ctx, &p, &fp), FINCH_ERR_ARG);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finch_scorer_vs_brute),
        cmocka_unit_test(test_snapkv_vs_brute),
        cmocka_unit_test(test_h2o_vs_brute),
        cmocka_unit_test(test_tova_vs_brute),
        cmocka_unit_test(test_positional_presses),
        cmocka_unit_test(test_knorm_exact),
        cmocka_unit_test(test_random_exact),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_oneshot_presses_vs_brute),
        cmocka_unit_test(test_iterative_static_presses),
        cmocka_unit_test(test_unaware_presses_ignore_question),
        cmocka_unit_test(test_full_keeps_everything),
    };
    return cmocka_run_group_tests_name("presses", tests, NULL, NULL);
}
