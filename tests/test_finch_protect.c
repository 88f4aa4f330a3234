/* test_finch_protect.c - Finch's protected prefix (finch_press_params.protect):
 * the first P context tokens (BOS and a chat template's system and user
 * header) are always kept at positions 0..P-1, never compete with the rest,
 * and do not count against K (docs/finch.md, docs/chat-templates.md).
 *
 *   1. budget arithmetic with a prefix (exact numbers, the refusal);
 *   2. on tiny-llama-gqa, both modes, both selections: the kept set starts
 *      with 0..P-1, K more positions follow, the prefix rows of the cache
 *      are the plain prefill's keys and values (not re-rotated);
 *   3. position presses with a prefix, exact kept positions: streaming keeps
 *      the prefix and the most recent K; truncate the first ceil(K/2) after
 *      the prefix and the last floor(K/2).
 * Values against the PyTorch twin: the protect cases of
 * tests/test_finch_fixtures.c. */
#include "testutil.h"

#include "finch_press.h"

enum { N_CTX = 60, N_Q = 6, P = 7, K = 12 };

static finch_model *model;
static int32_t ctx_ids[N_CTX], q_ids[N_Q];

static int setup(void **state) {
    (void)state;
    if (finch_model_load(test_data("models/tiny-llama-gqa.gguf"), &model)) return -1;
    uint64_t x = 12345;
    for (size_t i = 0; i < N_CTX + N_Q; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int32_t id = (int32_t)((x >> 33) % model->cfg.vocab);
        if (i < N_CTX) ctx_ids[i] = id;
        else q_ids[i - N_CTX] = id;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    finch_model_free(model);
    return 0;
}

/* ------------------------------------------------------- 1. the budget */

static void test_resolve_with_prefix(void **state) {
    (void)state;
    finch_press_params p = finch_press_defaults();
    size_t k, nk;
    p.protect = 5;
    p.budget = 10;
    assert_ok(finch_press_resolve_budget(&p, 50, 4, &k, &nk));
    assert_int_equal(k, 10);
    assert_int_equal(nk, 15);
    p.budget = 100; /* more than the 45 unprotected tokens: all stay */
    assert_ok(finch_press_resolve_budget(&p, 50, 4, &k, &nk));
    assert_int_equal(k, 45);
    assert_int_equal(nk, 50);
    p.budget_kind = FINCH_BUDGET_RATIO;
    p.ratio = 4; /* ceil(45 / 4) */
    assert_ok(finch_press_resolve_budget(&p, 50, 4, &k, &nk));
    assert_int_equal(k, 12);
    assert_int_equal(nk, 17);
    p.mode = FINCH_PRESS_ONESHOT;
    p.budget_kind = FINCH_BUDGET_CR;
    p.cr = 0.5; /* kvpress on the 45 + 4: floor(49 * 0.5) = 24 positions, 4 of them Q */
    assert_ok(finch_press_resolve_budget(&p, 50, 4, &k, &nk));
    assert_int_equal(k, 20);
    assert_int_equal(nk, 29);
    p.protect = 50;
    assert_int_equal(finch_press_resolve_budget(&p, 50, 4, &k, &nk), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "the protected prefix (50 tokens) leaves no context to compress (N = 50)");
}

/* ------------------------------------------------ 2. a press with a prefix */

/* The context of the press under test, freed with it. */
static finch_ctx *the_ctx;

static finch_press *run_press(finch_press_params p) {
    assert_ok(finch_ctx_new(model, 1, 64, &the_ctx));
    finch_press *fp;
    assert_ok(finch_press_new(model, the_ctx, &p, &fp));
    assert_ok(finch_press_compress(fp, ctx_ids, N_CTX, q_ids, N_Q, NULL, NULL));
    return fp;
}

static void free_press(finch_press *fp) {
    finch_press_free(fp);
    finch_ctx_free(the_ctx);
    the_ctx = NULL;
}

/* kept[l][g] = 0..P-1, then `rest` ascending positions >= P (each list
 * given by `want` when non-NULL), then the question's when oneshot. */
static void check_kept(const finch_press *fp, const int32_t *want, size_t rest, int oneshot) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    const finch_kv_cache *kv = finch_press_cache(fp);
    size_t nk = P + rest + (oneshot ? N_Q : 0);
    assert_int_equal(s->n_kept, nk);
    assert_int_equal(s->n_protected, P);
    assert_int_equal(s->budget, rest);
    const int32_t *kept = finch_press_kept(fp);
    for (size_t lg = 0; lg < kv->n_layer * kv->n_kv_head; lg++) {
        const int32_t *k = kept + lg * nk;
        for (size_t r = 0; r < P; r++) assert_int_equal(k[r], r);
        for (size_t r = P; r < P + rest; r++) {
            assert_true(k[r] >= P && k[r] < N_CTX && k[r] > k[r - 1]);
            if (want) assert_int_equal(k[r], want[r - P]);
        }
        for (size_t e = 0; oneshot && e < N_Q; e++) assert_int_equal(k[P + rest + e], N_CTX + e);
    }
}

/* The prefix rows of the compressed cache are those of a plain prefill of
 * the prefix: kept where they were, never re-rotated. */
static void check_prefix_rows(const finch_press *fp) {
    finch_ctx *c;
    assert_ok(finch_ctx_new(model, 1, 64, &c));
    finch_kv_cache plain;
    assert_ok(finch_kv_init(&plain, &model->cfg, P));
    assert_ok(finch_feed(c, &plain, ctx_ids, P, 0, NULL));
    const finch_kv_cache *kv = finch_press_cache(fp);
    size_t d = kv->head_dim;
    for (size_t l = 0; l < kv->n_layer; l++)
        for (size_t g = 0; g < kv->n_kv_head; g++) {
            assert_true(test_max_abs_diff(finch_kv_k(kv, l, g, 0), finch_kv_k(&plain, l, g, 0), P * d) < 1e-5);
            assert_true(test_max_abs_diff(finch_kv_v(kv, l, g, 0), finch_kv_v(&plain, l, g, 0), P * d) < 1e-5);
        }
    finch_kv_free(&plain);
    finch_ctx_free(c);
}

static void test_prefix_kept_both_modes(void **state) {
    (void)state;
    for (int oneshot = 0; oneshot < 2; oneshot++)
        for (int layer = 0; layer < 2; layer++) {
            finch_press_params p = finch_press_defaults();
            p.mode = oneshot ? FINCH_PRESS_ONESHOT : FINCH_PRESS_ITERATIVE;
            p.select = layer ? FINCH_SELECT_LAYER : FINCH_SELECT_HEAD;
            p.budget = K;
            p.chunk = 10;
            p.protect = P;
            finch_press *fp = run_press(p);
            check_kept(fp, NULL, K, oneshot);
            check_prefix_rows(fp);
            const finch_press_stats *s = finch_press_get_stats(fp);
            assert_true(fabs(s->compression - (double)(N_CTX - P) / K) < 1e-12);
            assert_int_equal(s->n_chunks, oneshot ? 1 : (N_CTX - P + 9) / 10);
            /* the prompt goes on after the P + K kept positions */
            int32_t a = q_ids[0];
            assert_ok(finch_press_prompt(fp, &a, 1, NULL));
            for (size_t l = 0; l < model->cfg.n_layer; l++)
                assert_int_equal(finch_press_cache(fp)->n_pos[l], P + K + (oneshot ? N_Q : 0) + 1);
            free_press(fp);
        }
}

/* ------------------------------------------------- 3. position presses */

static void test_position_presses_with_prefix(void **state) {
    (void)state;
    int32_t want[K];
    finch_press_params p = finch_press_defaults();
    p.budget = K;
    p.chunk = 10;
    p.protect = P;
    p.scorer = FINCH_SCORER_STREAMING; /* the sinks are in the prefix: the most recent K */
    for (size_t i = 0; i < K; i++) want[i] = (int32_t)(N_CTX - K + i);
    finch_press *fp = run_press(p);
    check_kept(fp, want, K, 0);
    free_press(fp);
    p.scorer = FINCH_SCORER_TRUNCATE; /* the first K/2 after the prefix, the last K/2 */
    for (size_t i = 0; i < K / 2; i++) {
        want[i] = (int32_t)(P + i);
        want[K / 2 + i] = (int32_t)(N_CTX - K / 2 + i);
    }
    p.chunk = 0; /* one chunk: the iterative schedule cannot drop a first token early */
    fp = run_press(p);
    check_kept(fp, want, K, 0);
    free_press(fp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_with_prefix),
        cmocka_unit_test(test_prefix_kept_both_modes),
        cmocka_unit_test(test_position_presses_with_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
