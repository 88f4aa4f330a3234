/* test_presses_budget.c - PyramidKV and AdaKV (src/press/presses_budget.c) and
 * the masked rows they rely on (finch_kv_cache.dead):
 *
 *   1. the pyramid against kvpress's get_layer_budget evaluated in Python
 *      (the numbers below, 2026-12), fallback included;
 *   2. AdaKV's per-head budgets against a brute force written here (a full
 *      sort of every (head, row) pair after forcing each head's best);
 *   3. a masked row is out of attention: its K/V do not change the logits,
 *      an unmasked one does;
 *   4. whole presses on tiny-llama-gqa (oneshot): each head's live kept
 *      positions are the top b of SnapKV's scores of a plain prefill, with
 *      b the brute-force budgets; masked rows read -1 in the kept array. */
#include "press_scene.h"

#include <float.h>

#include "finch_run.h"
#include "topk.h"

/* ================================================================ pyramid */

static void test_pyramid_budgets(void **state) {
    (void)state;
    static const struct { size_t n, T, L, want[8]; } cases[] = {
        { 2000, 1500, 4, { 1936, 1645, 1355, 1064 } },              /* clamped at n - 64 */
        { 5000, 2000, 8, { 3900, 3357, 2814, 2271, 1729, 1186, 643, 100 } },
        { 2000, 125, 4, { 125, 125, 125, 125 } },                   /* T / 20 < 64: SnapKV's */
        { 300, 200, 2, { 236, 164 } },
        { 300, 200, 3, { 236, 200, 164 } },
        { 4000, 1400, 5, { 2730, 2065, 1400, 735, 70 } },
        { 300, 200, 1, { 200 } },                                    /* one layer: no pyramid */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t l = 0; l < cases[c].L; l++)
            if (finch_pyramid_budget(cases[c].n, cases[c].T, cases[c].L, l) != cases[c].want[l])
                fail_msg("n %zu T %zu L %zu layer %zu: %zu, kvpress %zu", cases[c].n, cases[c].T, cases[c].L, l,
                         finch_pyramid_budget(cases[c].n, cases[c].T, cases[c].L, l), cases[c].want[l]);
}

/* ================================================================== adakv */

typedef struct { double v; size_t head, row; } entry;
static int by_value(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    if (x->head != y->head) return x->head < y->head ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* kvpress AdaKVPress.compress written out: force each head's best
 * int(k * alpha) rows, prune the bottom of all heads together. */
static void brute_adakv(const double *score, size_t G, size_t nc, size_t P, size_t k, size_t *b) {
    size_t n = nc - P, n_safe = (size_t)((double)k * 0.2);
    entry *e = malloc(G * n * sizeof *e);
    for (size_t g = 0; g < G; g++) {
        for (size_t j = 0; j < n; j++) e[g * n + j] = (entry){ score[g * nc + P + j], g, P + j };
        qsort(e + g * n, n, sizeof *e, by_value);
        for (size_t i = 0; i < n_safe; i++) e[g * n + i].v = DBL_MAX;
        b[g] = 0;
    }
    qsort(e, G * n, sizeof *e, by_value);
    for (size_t i = 0; i < G * k; i++) b[e[i].head]++;
    free(e);
}

static void test_adakv_budgets(void **state) {
    (void)state;
    enum { G = 3, NC = 40 };
    for (size_t P = 0; P <= 4; P += 4)
        for (size_t k = 1; k <= 30; k += 7) {
            double acc[G * NC], copy[G * NC];
            for (size_t i = 0; i < G * NC; i++) acc[i] = rng_unif() * (1.0 + (double)(i / NC)); /* heads differ */
            memcpy(copy, acc, sizeof acc);
            size_t b[G], want[G], scratch[G * NC], sum = 0;
            finch_adakv_budgets(acc, G, NC, P, k, 0.2, b, scratch);
            brute_adakv(copy, G, NC, P, k, want);
            for (size_t g = 0; g < G; g++) {
                assert_int_equal(b[g], want[g]);
                assert_true(b[g] >= (size_t)((double)k * 0.2)); /* the safeguard */
                sum += b[g];
            }
            assert_int_equal(sum, G * k);
        }
}

/* ================================================================= masks */

static finch_model *load_gqa(void) { return test_load_data_model("models/tiny-llama-gqa.gguf"); }

/* Logits of one token fed after 6 cached positions whose row 2 of every
 * head is overwritten with v (masked or not). */
static void logits_after(finch_model *m, finch_ctx *ctx, int mask, float v, float *out) {
    const int32_t x[7] = { 5, 17, 33, 60, 8, 91, 42 };
    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, &m->cfg, 8));
    assert_ok(finch_forward(ctx, &kv, x, 6, 0, NULL, NULL, 0));
    if (mask) assert_ok(finch_kv_enable_mask(&kv));
    for (size_t l = 0; l < kv.n_layer; l++)
        for (size_t g = 0; g < kv.n_kv_head; g++) {
            for (size_t i = 0; i < kv.head_dim; i++) finch_kv_k(&kv, l, g, 2)[i] = finch_kv_v(&kv, l, g, 2)[i] = v;
            if (mask) kv.dead[(l * kv.n_kv_head + g) * kv.capacity + 2] = 1;
        }
    assert_ok(finch_forward(ctx, &kv, x + 6, 1, 6, NULL, out, 1));
    if (mask) assert_int_equal(kv.dead[6], 0); /* the row just written is live */
    finch_kv_free(&kv);
}

static void test_masked_rows_out_of_attention(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 8, &ctx));
    size_t V = m->cfg.vocab;
    float *a = malloc(4 * V * sizeof *a), *b = a + V, *c = a + 2 * V, *d = a + 3 * V;
    logits_after(m, ctx, 1, 0.5f, a);
    logits_after(m, ctx, 1, -3.0f, b);
    logits_after(m, ctx, 0, 0.5f, c);
    logits_after(m, ctx, 0, -3.0f, d);
    for (size_t i = 0; i < V; i++) assert_true(a[i] == b[i]); /* masked: its content is never read */
    double diff = 0;
    for (size_t i = 0; i < V; i++) diff += fabs(c[i] - d[i]);
    assert_true(diff > 1e-3); /* unmasked: it is */
    free(a);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* ========================================================= whole presses */

static finch_status capture_q(void *user, size_t layer, const float *q, size_t n, size_t pos0,
                              const finch_kv_cache *kv) {
    scene *s = user;
    (void)kv;
    memcpy(s->q + (layer * s->T + pos0) * s->H * s->d, q, n * s->H * s->d * sizeof(float));
    return FINCH_OK;
}

/* Oneshot on C ++ Q: per layer and head, the live kept positions are the
 * top b of SnapKV's scores (rows 0..N-1 observed by the last 64 context
 * rows), b from the pyramid or AdaKV brute force; the rest of the largest
 * budget reads -1; the question follows. */
static void check_whole_press(finch_scorer_id id, size_t N, size_t M, size_t K) {
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    size_t T = N + M, L = m->cfg.n_layer, G = m->cfg.n_kv_head;
    int32_t *x = malloc(T * sizeof *x);
    for (size_t i = 0; i < T; i++) x[i] = (int32_t)(3 + rng_next() % (m->cfg.vocab - 3));
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, T, &ctx));
    scene s = { L, m->cfg.n_head, G, m->cfg.head_dim, T, { 0 }, NULL };
    assert_ok(finch_kv_init(&s.kv, &m->cfg, T));
    s.q = malloc(L * T * s.H * s.d * sizeof *s.q);
    finch_hooks h = { &s, capture_q, NULL };
    assert_ok(finch_forward(ctx, &s.kv, x, T, 0, &h, NULL, 0));
    finch_press_params p = finch_press_defaults();
    p.mode = FINCH_PRESS_ONESHOT;
    p.scorer = id;
    p.budget = K;
    finch_press *fp;
    assert_ok(finch_press_new(m, ctx, &p, &fp));
    assert_ok(finch_press_compress(fp, x, N, x + N, M, NULL, NULL));
    const finch_press_stats *st = finch_press_get_stats(fp);
    size_t nk = st->n_kept, live_total = 0, *b = malloc(G * sizeof *b), *top = malloc(N * sizeof *top);
    double *acc = malloc(G * N * sizeof *acc), *copy = malloc(G * N * sizeof *copy), gap;
    int32_t *orig = malloc(L * G * T * sizeof *orig);
    for (size_t i = 0; i < L * G * T; i++) orig[i] = (int32_t)(i % T);
    for (size_t l = 0; l < L; l++) {
        library_scores(&s, FINCH_SCORER_SNAPKV, &p, l, 0, N, M, N, orig, T, acc); /* tested against brute force */
        memcpy(copy, acc, G * N * sizeof *acc);
        if (id == FINCH_SCORER_ADAKV) brute_adakv(copy, G, N, 0, K, b);
        for (size_t g = 0; g < G; g++) {
            if (id == FINCH_SCORER_PYRAMIDKV) b[g] = finch_pyramid_budget(N, K, L, l);
            sort_topk(acc + g * N, N, b[g], top, &gap);
            const int32_t *row = finch_press_kept(fp) + (l * G + g) * nk;
            size_t r = 0;
            for (size_t i = 0; i < nk - M; i++)
                if (row[i] >= 0) {
                    if (r >= b[g] || row[i] != (int32_t)top[r])
                        fail_msg("%s L%zu H%zu: kept %d at %zu, want %zu live", finch_scorer_name(id), l, g, row[i], i,
                                 b[g]);
                    r++;
                }
            assert_int_equal(r, b[g]);
            live_total += r;
            for (size_t i = 0; i < M; i++) assert_int_equal(row[nk - M + i], (int32_t)(N + i));
        }
    }
    assert_int_equal(st->n_masked, L * G * (nk - M) - live_total);
    assert_int_equal(st->kv_bytes_kept, 2 * (live_total + L * G * M) * s.d * sizeof(float));
    if (id == FINCH_SCORER_ADAKV) assert_int_equal(live_total, L * G * K);
    assert_ok(finch_press_prompt(fp, x + N, M, NULL)); /* generation runs on the masked cache */
    finch_press_free(fp);
    free(x); free(b); free(top); free(acc); free(copy); free(orig);
    scene_free(&s);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

static void test_pyramidkv_press(void **state) {
    (void)state;
    check_whole_press(FINCH_SCORER_PYRAMIDKV, 300, 4, 200); /* budgets 236 and 164 */
}

static void test_adakv_press(void **state) {
    (void)state;
    check_whole_press(FINCH_SCORER_ADAKV, 120, 5, 20);
}

/* AdaKV per head refuses one shared set per layer; iterative runs. */
static void test_adakv_select_and_iterative(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 64, &ctx));
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_ADAKV;
    p.select = FINCH_SELECT_LAYER;
    p.budget = 10;
    finch_press *fp = NULL;
    assert_int_equal(finch_press_new(m, ctx, &p, &fp), FINCH_ERR_ARG);
    assert_non_null(strstr(finch_last_error(), "adakv allocates budgets per head"));
    int32_t C[150], Q[4] = { 9, 8, 7, 6 };
    for (size_t i = 0; i < 150; i++) C[i] = (int32_t)(3 + i % 200);
    const finch_scorer_id ids[] = { FINCH_SCORER_ADAKV, FINCH_SCORER_ADAKV_FINCH, FINCH_SCORER_PYRAMIDKV };
    for (size_t t = 0; t < 3; t++) {
        p = finch_press_defaults();
        p.scorer = ids[t];
        p.budget = 30;
        p.chunk = 40;
        assert_ok(finch_press_new(m, ctx, &p, &fp));
        assert_ok(finch_press_run(fp, C, 150, Q, 4, NULL, 0, NULL, NULL));
        const finch_press_stats *st = finch_press_get_stats(fp);
        size_t LG = m->cfg.n_layer * m->cfg.n_kv_head, live = LG * st->n_kept - st->n_masked;
        if (ids[t] != FINCH_SCORER_PYRAMIDKV) assert_int_equal(live, LG * 30); /* G k per layer, exactly */
        for (size_t i = 0; i < LG * st->n_kept; i++) assert_true(finch_press_kept(fp)[i] >= -1 && finch_press_kept(fp)[i] < 150);
        finch_press_free(fp);
    }
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* The rows a head may hold, and the run plan's window check built on it. */
static void test_rows_bound_and_plan(void **state) {
    (void)state;
    assert_int_equal(finch_press_rows_bound(FINCH_SCORER_SNAPKV, 8, 1000, 100), 100);
    assert_int_equal(finch_press_rows_bound(FINCH_SCORER_PYRAMIDKV, 8, 1000, 100), 200);
    assert_int_equal(finch_press_rows_bound(FINCH_SCORER_ADAKV, 8, 1000, 100), 800);
    assert_int_equal(finch_press_rows_bound(FINCH_SCORER_ADAKV_FINCH, 8, 1000, 200), 1000); /* never above N */
    assert_int_equal(finch_press_rows_bound(FINCH_SCORER_ADAKV, SIZE_MAX, 1000, 2), 1000);
    finch_run_params rp = finch_run_defaults();
    rp.press.scorer = FINCH_SCORER_ADAKV;
    rp.press.budget = 100;
    rp.press.chunk = 64;
    rp.n_ctx = 1000;
    rp.n_question = 10;
    rp.n_predict = 4;
    rp.window = 512;
    finch_run_plan plan;
    /* no model: G unknown, the bound is N, which does not fit in 512 */
    assert_int_equal(finch_plan_run(NULL, &rp, &plan), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "the question (10 tokens) and the budget (1000) leave no room for a "
                        "chunk in the model's 512 positions");
    rp.window = 2048;
    assert_ok(finch_plan_run(NULL, &rp, &plan));
    assert_int_equal(plan.K_rows, 1000);
    assert_int_equal(plan.capacity, 1000 + 10); /* kept + chunk: never more than the context */
    rp.press.scorer = FINCH_SCORER_SNAPKV;
    assert_ok(finch_plan_run(NULL, &rp, &plan));
    assert_int_equal(plan.K_rows, 100);
    assert_int_equal(plan.capacity, 100 + 64 + 10);
}

/* A padded press at 2x (bound: the whole context) holds at most the
 * context and the question while compressing: a window that holds them
 * takes the run with the default chunk (before: refused when the window
 * held exactly N + m, a chunk of window - N - m tokens otherwise). */
static void test_padded_plan_holds_the_context(void **state) {
    (void)state;
    finch_run_params rp = finch_run_defaults();
    rp.press.scorer = FINCH_SCORER_ADAKV;
    rp.press.budget_kind = FINCH_BUDGET_RATIO;
    rp.press.ratio = 2;
    rp.n_ctx = 1000;
    rp.n_question = 10;
    rp.n_predict = 4;
    rp.window = 1014; /* N + m + the 4 answer tokens */
    finch_run_plan plan;
    assert_ok(finch_plan_run(NULL, &rp, &plan));
    assert_int_equal(plan.K, 500);
    assert_int_equal(plan.K_rows, 1000);
    assert_int_equal(plan.chunk, 504); /* min(512, 1014 - 500 kept - 10) */
    assert_int_equal(plan.n_chunks, 2);
    assert_int_equal(plan.capacity, 1000 + 10);
    assert_int_equal(plan.n_kept, 1000);
    assert_int_equal(plan.n_predict, 4);
    rp.window = 1010; /* N + m: the answer cut to nothing, but the plan stands */
    assert_ok(finch_plan_run(NULL, &rp, &plan));
    assert_int_equal(plan.chunk, 500);
    assert_int_equal(plan.n_predict, 0);
    rp.window = 1009; /* less than the context and the question: the padded bound refuses */
    assert_int_equal(finch_plan_run(NULL, &rp, &plan), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "the question (10 tokens) and the budget (1000) leave no room for a "
                        "chunk in the model's 1009 positions");
    /* a smaller budget: the padded rows and a chunk cut to what is left */
    rp.press.ratio = 4; /* K 250, K_rows 1000 (G unknown) */
    rp.window = 1009;
    assert_int_equal(finch_plan_run(NULL, &rp, &plan), FINCH_ERR_ARG);
    rp.press.budget_kind = FINCH_BUDGET_TOKENS;
    rp.press.budget = 100;
    rp.press.scorer = FINCH_SCORER_PYRAMIDKV; /* 2 K = 200 rows */
    rp.window = 260;
    assert_ok(finch_plan_run(NULL, &rp, &plan));
    assert_int_equal(plan.K_rows, 200);
    assert_int_equal(plan.chunk, 260 - 200 - 10); /* the default 150 cut to the padded rows' room */
    assert_int_equal(plan.capacity, 200 + 50 + 10);
    rp.press.chunk = 100; /* given: refused naming the padded rows */
    assert_int_equal(finch_plan_run(NULL, &rp, &plan), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "--chunk 100 + budget 200 + question 10 exceed the model's 260 positions");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyramid_budgets),
        cmocka_unit_test(test_adakv_budgets),
        cmocka_unit_test(test_masked_rows_out_of_attention),
        cmocka_unit_test(test_pyramidkv_press),
        cmocka_unit_test(test_adakv_press),
        cmocka_unit_test(test_adakv_select_and_iterative),
        cmocka_unit_test(test_rows_bound_and_plan),
        cmocka_unit_test(test_padded_plan_holds_the_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
