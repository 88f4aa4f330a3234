/* test_run_plan.c - the run plan (include/finch_run.h) that `finch run`,
 * `finch eval` and `finch bench` share: budget, default chunk, window
 * checks, the answer cut to the window, cache capacity and peak. */
#include "testutil.h"
#include "finch_run.h"

static finch_model model_with_window(size_t ctx_len) {
    finch_model m;
    memset(&m, 0, sizeof m);
    m.cfg.ctx_len = ctx_len;
    return m;
}

static finch_run_params params(finch_budget_kind kind, double v, size_t N, size_t mq) {
    finch_run_params p = finch_run_defaults();
    p.press.budget_kind = kind;
    if (kind == FINCH_BUDGET_TOKENS) p.press.budget = (size_t)v;
    else if (kind == FINCH_BUDGET_RATIO) p.press.ratio = v;
    else p.press.cr = v;
    p.n_ctx = N;
    p.n_question = mq;
    return p;
}

static void test_defaults(void **state) {
    (void)state;
    finch_run_params p = finch_run_defaults();
    assert_int_equal(p.n_predict, 32);
    assert_int_equal(p.press.seed, 1);
    assert_int_equal(p.press.mode, FINCH_PRESS_ITERATIVE);
    assert_int_equal(p.press.scorer, FINCH_SCORER_FINCH);
    assert_int_equal(p.press.chunk, 0);
    assert_int_equal(finch_plan_default_chunk(100), 100);
    assert_int_equal(finch_plan_default_chunk(10000), 512);
}

/* make run's job: 2974 context and 16 question tokens at 32x, chunks of 256. */
static void test_main_job(void **state) {
    (void)state;
    finch_model m = model_with_window(4096);
    finch_run_params p = params(FINCH_BUDGET_RATIO, 32, 2974, 16);
    p.press.chunk = 256;
    p.n_predict = 2;
    finch_run_plan o;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.K, 93);
    assert_int_equal(o.n_kept, 93);
    assert_int_equal(o.chunk, 256);
    assert_int_equal(o.n_chunks, 12);
    assert_int_equal(o.capacity, 93 + 256 + 16);
    assert_int_equal(o.batch, 256 + 16);
    assert_int_equal(o.n_predict, 2);
    assert_false(o.n_predict_reduced);
    assert_int_equal(o.peak, 365); /* the answer fits in the rows of compression */
}

/* Without --chunk: min(512, what the budget and the question leave, N). */
static void test_default_chunk(void **state) {
    (void)state;
    finch_model small = model_with_window(512), big = model_with_window(4096);
    const struct { finch_model *m; size_t budget, N, chunk; } cases[] = {
        { &small, 400, 1000, 102 }, { &small, 100, 1000, 402 }, { &small, 10, 1000, 492 },
        { &big, 100, 1000, 512 }, { &big, 10, 50, 50 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        finch_run_params p = params(FINCH_BUDGET_TOKENS, (double)cases[i].budget, cases[i].N, 10);
        finch_run_plan o;
        assert_ok(finch_plan_run(cases[i].m, &p, &o));
        assert_int_equal(o.chunk, cases[i].chunk);
    }
}

static void test_window_refusals(void **state) {
    (void)state;
    finch_model m = model_with_window(512);
    finch_run_plan o;
    finch_run_params p = params(FINCH_BUDGET_TOKENS, 10, 1000, 512);
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(),
                        "the question has 512 tokens; the model's 512 positions leave no room for the context");
    p = params(FINCH_BUDGET_TOKENS, 500, 1000, 12);
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(),
                        "the question (12 tokens) and the budget (500) leave no room for a chunk in the model's 512 positions");
    p = params(FINCH_BUDGET_TOKENS, 100, 1000, 12);
    p.press.chunk = 450;
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "--chunk 450 + budget 100 + question 12 exceed the model's 512 positions");
    p = params(FINCH_BUDGET_TOKENS, 100, 600, 12);
    p.press.mode = FINCH_PRESS_ONESHOT;
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(),
                        "oneshot needs context + question = 612 positions but the model has 512; use --mode iterative");
    p = params(FINCH_BUDGET_TOKENS, 100, 600, 12);
    p.n_forced = 401; /* 100 kept + 12 prompt + 401 > 512 */
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_non_null(strstr(finch_last_error(), "the reference answer (401 tokens)"));
    p = params(FINCH_BUDGET_TOKENS, 100, 600, 12);
    assert_int_equal(finch_plan_run(NULL, &p, &o), FINCH_ERR_ARG); /* no model, no window */
    p.window = 1 << 20;                                             /* bench: a window of its own */
    assert_ok(finch_plan_run(NULL, &p, &o));
    assert_int_equal(o.chunk, 512);
}

/* The answer stops at the window; the full press keeps every token and
 * reads without the question, so the window only has to hold the context
 * (then the prompt): its chunk is a batch cut, not a share of the window. */
static void test_answer_and_full(void **state) {
    (void)state;
    finch_model m = model_with_window(512);
    finch_run_plan o;
    finch_run_params p = params(FINCH_BUDGET_TOKENS, 400, 1000, 10);
    p.n_predict = 200;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.n_predict, 102); /* 512 - 400 kept - 10 question fed again */
    assert_true(o.n_predict_reduced);
    p = params(FINCH_BUDGET_RATIO, 2, 500, 10);
    p.press.scorer = FINCH_SCORER_FULL;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.K, 500);
    assert_int_equal(o.chunk, 500); /* min(512, the whole context) */
    assert_int_equal(o.n_predict, 2);
    p = params(FINCH_BUDGET_RATIO, 2, 468, 33); /* --chunk 64 beside 468 + 33 in 512: fits */
    p.press.scorer = FINCH_SCORER_FULL;
    p.press.chunk = 64;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.chunk, 64);
    assert_int_equal(o.n_predict, 11); /* 512 - 468 - 33 */
    p = params(FINCH_BUDGET_RATIO, 2, 513, 10);
    p.press.scorer = FINCH_SCORER_FULL;
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "the full cache needs the whole context (513 tokens) but the model has "
                                            "512 positions");
}

/* When the answer outgrows the rows of compression, the cache is grown to
 * 1.25x the need + 16 while the old one is alive. */
static void test_peak(void **state) {
    (void)state;
    finch_model m = model_with_window(4096);
    finch_run_params p = params(FINCH_BUDGET_TOKENS, 93, 2974, 16);
    p.press.chunk = 10;
    p.n_predict = 100;
    finch_run_plan o;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.capacity, 119);
    size_t answer = 93 + 16 + 100;
    assert_int_equal(o.peak, 119 + answer + answer / 4 + 17);
    assert_int_equal(finch_plan_grow_rows(answer), answer + answer / 4 + 16);
    p.press.mode = FINCH_PRESS_ONESHOT;
    p.n_prompt = 1;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.capacity, 2974 + 16);
    assert_int_equal(o.chunk, 2974);
    assert_int_equal(o.n_kept, 93 + 16);
    assert_int_equal(o.batch, 512);
}

/* A protected prefix (BOS and a chat template's head) is kept outright:
 * the budget and the chunks count the N - P tokens after it, the window
 * and the cache hold it besides. */
static void test_protected_prefix(void **state) {
    (void)state;
    finch_model m = model_with_window(512);
    finch_run_params p = params(FINCH_BUDGET_RATIO, 4, 410, 10); /* P 10: K = ceil(400 / 4) = 100 */
    p.press.protect = 10;
    finch_run_plan o;
    assert_ok(finch_plan_run(&m, &p, &o));
    assert_int_equal(o.K, 100);
    assert_int_equal(o.n_kept, 110);
    assert_int_equal(o.chunk, 392); /* 512 - 10 protected - 100 kept - 10 question */
    assert_int_equal(o.n_chunks, 2);
    /* the rows kept are rows read before the chunk: with it, at most the 400
     * after the prefix (the second chunk's 8 join at most 100 + 292 kept) */
    assert_int_equal(o.capacity, 10 + 400 + 10);
    assert_int_equal(finch_plan_compress_rows(FINCH_PRESS_ITERATIVE, 10, 100, 0, 410, 10), 10 + 400 + 10);
    assert_int_equal(finch_plan_compress_rows(FINCH_PRESS_ITERATIVE, 10, 100, 64, 410, 10), 10 + 100 + 64 + 10);
    p.press.chunk = 1000; /* more than the 400 after the prefix, and than the room */
    assert_int_equal(finch_plan_run(&m, &p, &o), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "--chunk 1000 + budget 110 + question 10 exceed the model's 512 positions");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_main_job),
        cmocka_unit_test(test_default_chunk),
        cmocka_unit_test(test_window_refusals),
        cmocka_unit_test(test_answer_and_full),
        cmocka_unit_test(test_peak),
        cmocka_unit_test(test_protected_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
