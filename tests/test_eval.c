/* test_eval.c - the metrics of `finch eval` (src/eval/eval.c) and the SVG writer
 * (src/cli/svg.c): SQuAD normalisation, exact match and F1 on strings whose
 * values come from the official SQuAD v2 script; KL and NLL on known
 * distributions; the elements of the SVG files; teacher-forced NLL against
 * a plain forward pass; one press on two generated items with tiny-llama;
 * Finch against streaming on the needle model. */
#include "testutil.h"

#include "finch_eval.h"
#include "svg.h"

/* ======================================================== answer text */

static void expect_norm(const char *in, const char *want) {
    char out[128];
    size_t n = finch_eval_normalize(in, out, sizeof out);
    if (strcmp(out, want)) fail_msg("normalize('%s') = '%s', want '%s'", in, out, want);
    assert_int_equal(n, strlen(want));
}

/* Values from SQuAD v2's evaluate script (normalize_answer), run on the
 * same strings. */
static void test_normalize_like_squad(void **state) {
    (void)state;
    expect_norm("The Eiffel Tower!", "eiffel tower");
    expect_norm("  A  cat_sat,\tan apple;\nTHE end. ", "catsat apple end");
    expect_norm("theater and another", "theater and another");
    expect_norm("U.S.A.", "usa");
    expect_norm("a-the b", "athe b");
    expect_norm("x(the)y", "xthey");
    expect_norm("An", "");
    expect_norm("the a an", "");
    expect_norm("", "");
    expect_norm("RNA interference pathway", "rna interference pathway");
    /* ASCII rules: Python would also lower-case the U-umlaut */
    expect_norm("\xc3\x9c" "ber the caf\xc3\xa9", "\xc3\x9c" "ber caf\xc3\xa9");
    char small[6];
    assert_int_equal(finch_eval_normalize("The Eiffel Tower", small, sizeof small), 5);
    assert_string_equal(small, "eiffe");
}

static void test_exact_and_f1(void **state) {
    (void)state;
    assert_true(finch_eval_exact("The Eiffel Tower!", "eiffel  tower") == 1.0);
    assert_true(finch_eval_exact("Eiffel Tower in Paris", "eiffel tower") == 0.0);
    /* compute_f1(gold, pred) of the official script */
    assert_true(fabs(finch_eval_f1("the cat sat on the mat", "cat on mat") - 6.0 / 7.0) < 1e-15);
    assert_true(fabs(finch_eval_f1("cat cat the dog", "the the cat") - 0.5) < 1e-15); /* multiset overlap */
    assert_true(fabs(finch_eval_f1("RNA interference pathway", "rna interference") - 0.8) < 1e-15);
    assert_true(fabs(finch_eval_f1("63", "63 days") - 2.0 / 3.0) < 1e-15);
    assert_true(finch_eval_f1("z", "x y") == 0.0);
    assert_true(finch_eval_f1("the", "a") == 1.0); /* both empty after normalisation */
    assert_true(finch_eval_f1("x", "the") == 0.0);
    double em, f1;
    const char *answers[] = { "to clean them", "clean them", "to clean them of plants and sediments" };
    finch_eval_best("They clean them.", answers, 3, &em, &f1);
    assert_true(em == 0.0);
    assert_true(fabs(f1 - 0.8) < 1e-15); /* vs "clean them": P 2/3, R 1 */
    finch_eval_best("Clean them", answers, 3, &em, &f1);
    assert_true(em == 1.0 && f1 == 1.0);
    finch_eval_best("", NULL, 0, &em, &f1); /* unanswerable: against "" */
    assert_true(em == 1.0 && f1 == 1.0);
    finch_eval_best("no idea", NULL, 0, &em, &f1);
    assert_true(em == 0.0 && f1 == 0.0);
}

/* ====================================================== distributions */

static void test_kl_nll_argmax(void **state) {
    (void)state;
    float p[3] = { logf(0.5f), logf(0.25f), logf(0.25f) }, q[3] = { logf(0.25f), logf(0.5f), logf(0.25f) };
    /* KL = 0.5 ln 2 + 0.25 ln 0.5 = 0.25 ln 2 */
    assert_true(fabs(finch_eval_kl(p, q, 3) - 0.25 * log(2.0)) < 1e-7);
    assert_true(fabs(finch_eval_kl(q, p, 3) - 0.25 * log(2.0)) < 1e-7); /* symmetric here by construction */
    float shifted[3] = { p[0] + 40, p[1] + 40, p[2] + 40 };
    assert_true(finch_eval_kl(p, shifted, 3) < 1e-12); /* logits are defined up to a constant */
    assert_true(finch_eval_kl(p, p, 3) == 0.0);
    float r[2] = { 0.0f, logf(3.0f) }, s[2] = { 0.0f, 0.0f }; /* (1/4, 3/4) vs (1/2, 1/2) */
    double want = 0.25 * log(0.5) + 0.75 * log(1.5);
    assert_true(fabs(finch_eval_kl(r, s, 2) - want) < 1e-7);
    assert_true(fabs(finch_eval_nll(p, 3, 1) - log(4.0)) < 1e-7);
    assert_true(fabs(finch_eval_nll(p, 3, 0) - log(2.0)) < 1e-7);
    float t[5] = { 1, 7, 3, 7, -2 };
    assert_int_equal(finch_eval_argmax(t, 5), 1); /* ties to the smaller id */
}

/* ================================================================ SVG */

static char *render(finch_status (*fn)(FILE *, const void *), const void *arg, finch_status *st) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *st = fn(f, arg);
    fclose(f);
    return text;
}
static finch_status chart_fn(FILE *f, const void *c) { return finch_svg_line_chart(f, c); }
static finch_status kept_fn(FILE *f, const void *k) { return finch_svg_kept_map(f, k); }

static size_t count(const char *hay, const char *needle) {
    size_t n = 0, at = 0, len = strlen(hay), k = strlen(needle);
    for (; at + k <= len; at++) n += !memcmp(hay + at, needle, k);
    return n;
}

static void test_svg_line_chart(void **state) {
    (void)state;
    const double x[4] = { 2, 4, 8, 16 }, a[4] = { 0.9, 0.8, 0.5, 0.2 }, b[4] = { 0.7, NAN, 0.4, 0.1 };
    const double fx[2] = { 2, 16 }, fy[2] = { 1, 1 };
    finch_svg_series series[3] = {
        { "finch", x, a, 4, 0, NULL, NULL }, { "snap<kv>&co", x, b, 4, 0, NULL, NULL }, { "full", fx, fy, 2, 1, NULL, NULL },
    };
    finch_svg_chart c = { "Accuracy vs compression", "compression", "exact match", 1, 0, 1, series, 3, NULL };
    finch_status st;
    char *svg = render(chart_fn, &c, &st);
    assert_ok(st);
    assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    assert_non_null(strstr(svg, "</svg>\n"));
    /* finch: one line; snapkv: two (the NaN breaks it); full: one, dashed */
    assert_int_equal(count(svg, "<polyline"), 4);
    assert_int_equal(count(svg, "stroke-dasharray"), 2); /* the full line and its legend entry */
    /* finch: circles; an unknown name: grey circles; none for NaN nor for the
     * dashed line; one in the legend per marked series */
    assert_int_equal(count(svg, "<circle"), 4 + 3 + 2);
    assert_non_null(strstr(svg, ">snap&lt;kv&gt;&amp;co</text>"));
    assert_non_null(strstr(svg, ">finch</text>"));
    assert_non_null(strstr(svg, ">Accuracy vs compression</text>"));
    for (const char *tick = ">2<\0>4<\0>8<\0>16<\0>0.2<\0>1<\0"; *tick; tick += strlen(tick) + 1)
        if (!strstr(svg, tick)) fail_msg("tick %s missing", tick);
    assert_null(strstr(svg, ">3<")); /* log2 axis: powers of two only */
    free(svg);
    const double bad[1] = { 0 };
    finch_svg_series s0 = { "x", bad, a, 1, 0, NULL, NULL };
    c.series = &s0;
    c.n_series = 1;
    svg = render(chart_fn, &c, &st);
    assert_int_equal(st, FINCH_ERR_ARG); /* log2 of 0 */
    free(svg);
}

static void test_svg_kept_map(void **state) {
    (void)state;
    /* 2 layers x 2 heads, 5 kept of 20 positions; oneshot-like: the last
     * 2 kept are the question positions 20, 21 */
    const int32_t kept[4][5] = { { 0, 1, 2, 20, 21 }, { 3, 9, 10, 20, 21 }, { 0, 5, 7, 20, 21 }, { 17, 18, 19, 20, 21 } };
    finch_svg_kept k = { "kept <positions>", &kept[0][0], 2, 2, 5, 20, 2, 7 };
    finch_status st;
    char *svg = render(kept_fn, &k, &st);
    assert_ok(st);
    /* runs of consecutive positions: {0-2}{20-21} / {3}{9-10}{20-21} / {0}{5}{7}{20-21} / {17-21} */
    assert_int_equal(count(svg, "fill=\"#0072B2\""), 2 + 3 + 4 + 1);
    /* the "all" row: one rect per position kept anywhere (0,1,2,3,5,7,9,10,17,18,19,20,21) */
    /* equal fractions share a rect: {0: .5} {1-3: .25} {5} {7} {9-10} {17-19} {20-21: 1} */
    assert_int_equal(count(svg, "fill=\"#D55E00\""), 7);
    assert_non_null(strstr(svg, "fill-opacity=\"1.000\"")); /* 20 and 21: every row */
    assert_non_null(strstr(svg, "fill-opacity=\"0.250\""));
    assert_non_null(strstr(svg, ">L1 H1</text>"));
    assert_non_null(strstr(svg, ">mark 7</text>"));
    assert_non_null(strstr(svg, "stroke=\"red\""));
    assert_non_null(strstr(svg, "#f3e6c8")); /* the question band */
    assert_non_null(strstr(svg, ">kept &lt;positions&gt;</text>"));
    free(svg);
    k.mark = -1;
    svg = render(kept_fn, &k, &st);
    assert_null(strstr(svg, "stroke=\"red\""));
    free(svg);
    /* masked rows (-1: pyramidkv, adakv) draw nothing: {0}{2}{20-21} / {3}{9-10}{20-21} / {5}{20-21} / {17-21} */
    const int32_t masked[4][5] = { { 0, -1, 2, 20, 21 }, { 3, 9, 10, 20, 21 }, { -1, 5, -1, 20, 21 },
                                   { 17, 18, 19, 20, 21 } };
    k.kept = &masked[0][0];
    svg = render(kept_fn, &k, &st);
    assert_ok(st);
    assert_int_equal(count(svg, "fill=\"#0072B2\""), 3 + 3 + 2 + 1);
    /* position -1 would sit one cell (1000 / 22) left of the map's edge at 60 */
    assert_int_equal(count(svg, "<rect x=\"14.55\""), 0);
    free(svg);
}

/* ============================================== through a compressed cache */

static finch_model *load_tiny(void) { return test_load_data_model("models/tiny-llama.gguf"); }

/* Teacher forcing through the full press equals a plain forward pass of
 * C ++ Q ++ answer; after the rewind, decoding is as if nothing had been
 * appended. */
static void test_answer_nll_and_rewind(void **state) {
    (void)state;
    finch_model *m = load_tiny();
    if (!m) SKIP_MSG("testdata/models/tiny-llama.gguf not found");
    enum { N = 25, M = 4, R = 5 };
    int32_t x[N + M + R];
    for (size_t i = 0; i < N + M + R; i++) x[i] = (int32_t)(3 + (i * 37 + 11) % 340);
    size_t V = m->cfg.vocab;
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 64, &ctx));
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_FULL;
    finch_press *fp;
    assert_ok(finch_press_new(m, ctx, &p, &fp));
    assert_int_equal(finch_press_rewind(fp), FINCH_ERR_ARG); /* nothing fed yet */
    assert_ok(finch_press_run(fp, x, N, x + N, M, NULL, 0, NULL, NULL));
    double nll;
    assert_ok(finch_eval_answer_nll(m, fp, x + N + M, R, &nll));

    float *logits = malloc((M + R) * V * sizeof *logits);
    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, &m->cfg, N + M + R));
    assert_ok(finch_forward(ctx, &kv, x, N, 0, NULL, NULL, 0));
    assert_ok(finch_forward(ctx, &kv, x + N, M + R, N, NULL, logits, M + R));
    double want = 0;
    for (size_t i = 0; i < R; i++) want += finch_eval_nll(logits + (M - 1 + i) * V, V, x[N + M + i]);
    want /= R;
    fprintf(stderr, "answer NLL %.6f, plain forward %.6f\n", nll, want);
    assert_true(fabs(nll - want) < 1e-4);

    /* greedy after the rewind = greedy of the plain pass from the question */
    finch_sampler smp;
    assert_ok(finch_sampler_init(&smp, (finch_sampler_params){ 0.0f, 1.0f, 0 }, V));
    int32_t got[4];
    size_t n_got;
    assert_ok(finch_press_decode(fp, &smp, 4, -1, NULL, NULL, got, &n_got));
    assert_int_equal(n_got, 4);
    assert_int_equal(got[0], finch_eval_argmax(logits + (M - 1) * V, V));
    assert_ok(finch_press_rewind(fp));
    int32_t again[4];
    assert_ok(finch_press_decode(fp, &smp, 4, -1, NULL, NULL, again, &n_got));
    assert_memory_equal(got, again, sizeof got);
    int32_t bad = (int32_t)V;
    assert_int_equal(finch_eval_answer_nll(m, fp, &bad, 1, &nll), FINCH_ERR_ARG);
    finch_sampler_free(&smp);
    finch_kv_free(&kv);
    free(logits);
    finch_press_free(fp);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* Two generated items: full against itself has KL 0 and top-1 agreement;
 * a press at ratio 1 (K = N) gives the full answer; compression shrinks
 * the cache as stated. */
static void test_eval_run_two_items(void **state) {
    (void)state;
    finch_model *m = load_tiny();
    if (!m) SKIP_MSG("testdata/models/tiny-llama.gguf not found");
    const char *contexts[2] = { "Once upon a time the magic number was 42 and the dog ran home fast.",
                                "The river was calm and the road was long, so they walked all day." };
    const char *questions[2] = { " What was the magic number?", " How was the road?" };
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 64, &ctx));
    for (size_t it = 0; it < 2; it++) {
        int32_t *C, *Q;
        size_t N, M;
        assert_ok(finch_tokenize(m->tokenizer, contexts[it], strlen(contexts[it]), 1, &C, &N));
        assert_ok(finch_tokenize(m->tokenizer, questions[it], strlen(questions[it]), 0, &Q, &M));
        int32_t ref[2] = { 300, 301 };
        finch_eval_input in = { .p = finch_press_defaults(), .context = C, .question = Q, .n_context = N,
                                .n_question = M, .reference = ref, .n_reference = 2, .max_new = 6 };
        in.p.budget_kind = FINCH_BUDGET_RATIO;
        in.p.chunk = 8;
        in.p.scorer = FINCH_SCORER_FULL;
        finch_eval_output full, again, press, one;
        assert_ok(finch_eval_run(m, ctx, &in, &full));
        assert_ok(finch_eval_run(m, ctx, &in, &again));
        assert_true(finch_eval_kl(full.logits, again.logits, m->cfg.vocab) == 0.0);
        assert_string_equal(full.answer, again.answer);
        assert_null(strchr(full.answer, '\n'));
        assert_int_equal(full.K, N);
        assert_true(full.compression == 1.0);
        assert_true(isfinite(full.nll) && full.nll > 0);
        in.p.scorer = FINCH_SCORER_SNAPKV;
        in.p.ratio = 4;
        assert_ok(finch_eval_run(m, ctx, &in, &press));
        assert_int_equal(press.K, (N + 3) / 4);
        assert_int_equal(press.kv_bytes * N, full.kv_bytes * press.K);
        assert_true(finch_eval_kl(full.logits, press.logits, m->cfg.vocab) > 0);
        in.p.scorer = FINCH_SCORER_FINCH;
        in.p.ratio = 1;
        assert_ok(finch_eval_run(m, ctx, &in, &one));
        assert_true(finch_eval_kl(full.logits, one.logits, m->cfg.vocab) < 1e-9);
        assert_string_equal(one.answer, full.answer);
        assert_int_equal(one.n_generated, full.n_generated);
        finch_eval_output_free(&full); finch_eval_output_free(&again);
        finch_eval_output_free(&press); finch_eval_output_free(&one);
        free(C);
        free(Q);
    }
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* The needle model (testdata/models/needle.gguf) answers from a full cache;
 * at 30x compression Finch keeps the needle in the middle of the text and
 * still answers, streaming (sinks + recent) loses it. */
static void test_needle_finch_vs_streaming(void **state) {
    (void)state;
    const char *path = test_data("models/needle.gguf");
    FILE *f = fopen(path, "rb");
    if (!f) SKIP_MSG("%s not found", path);
    fclose(f);
    finch_model *m;
    assert_ok(finch_model_load(path, &m));
    static const char *filler[] = { "The grass is green.", "The sky is blue.", "Here we go.",
                                    "The house is on the hill.", "They came home after the rain.",
                                    "Rest now, for it is late." };
    char text[4096] = "";
    for (size_t i = 0; i < 40; i++) {
        if (i == 20) strcat(text, "The special magic number for violin is 9319. ");
        strcat(text, filler[(i * 5) % 6]);
        strcat(text, " ");
    }
    const char *q = "What is the special magic number for violin? The special magic number for violin is";
    const char *answers[1] = { "9319" };
    int32_t *C, *Q, *ref;
    size_t N, M, R;
    assert_ok(finch_tokenize(m->tokenizer, text, strlen(text), 1, &C, &N));
    assert_ok(finch_tokenize(m->tokenizer, q, strlen(q), 0, &Q, &M));
    assert_ok(finch_tokenize_ex(m->tokenizer, " 9319", 5, 0, 1, &ref, &R));
    assert_int_equal(R, 1);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 128, &ctx));
    finch_eval_input in = { .p = finch_press_defaults(), .context = C, .question = Q, .n_context = N,
                            .n_question = M, .reference = ref, .n_reference = R, .max_new = 4 };
    in.p.budget_kind = FINCH_BUDGET_RATIO;
    in.p.ratio = 30;
    in.p.chunk = 64;
    finch_eval_output full, fin, str;
    in.p.scorer = FINCH_SCORER_FULL;
    assert_ok(finch_eval_run(m, ctx, &in, &full));
    in.p.scorer = FINCH_SCORER_FINCH;
    assert_ok(finch_eval_run(m, ctx, &in, &fin));
    in.p.scorer = FINCH_SCORER_STREAMING;
    assert_ok(finch_eval_run(m, ctx, &in, &str));
    double em, f1;
    fprintf(stderr, "needle, N %zu, K %zu: full '%s', finch '%s' (NLL %.3g), streaming '%s' (NLL %.3g)\n", N, fin.K,
            full.answer, fin.answer, fin.nll, str.answer, str.nll);
    finch_eval_best(full.answer, answers, 1, &em, &f1);
    assert_true(em == 1.0);
    finch_eval_best(fin.answer, answers, 1, &em, &f1);
    assert_true(em == 1.0);
    assert_true(fin.nll < 0.01 && finch_eval_kl(full.logits, fin.logits, m->cfg.vocab) < 0.01);
    finch_eval_best(str.answer, answers, 1, &em, &f1);
    assert_true(em == 0.0);
    assert_true(str.nll > 1.0);
    finch_eval_output_free(&full); finch_eval_output_free(&fin); finch_eval_output_free(&str);
    free(C); free(Q); free(ref);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_like_squad),
        cmocka_unit_test(test_exact_and_f1),
        cmocka_unit_test(test_kl_nll_argmax),
        cmocka_unit_test(test_svg_line_chart),
        cmocka_unit_test(test_svg_kept_map),
        cmocka_unit_test(test_answer_nll_and_rewind),
        cmocka_unit_test(test_eval_run_two_items),
        cmocka_unit_test(test_needle_finch_vs_streaming),
    };
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
