/* test_tinystories.c - the real tinystories-656k model (skipped when
 * ../shared/assets is absent): the Hugging Face directory against the
 * PyTorch twin's logits, a greedy-generation golden test, and the GGUF that
 * `finch convert` writes giving the same logits as the directory. */
#include "testutil.h"

#include "model.h"

#include <unistd.h>

static const char *model_dir(void) { return test_asset("models/tinystories-656k"); }

static void *load_fixture(const char *name, finch_npy_type t, size_t *shape, size_t *ndim) {
    char path[256];
    void *data = NULL;
    snprintf(path, sizeof path, "testdata/fixtures/tinystories/%s", name);
    assert_ok(finch_npy_read(path, t, &data, shape, ndim));
    return data;
}

/* Logits of every prompt position from one prefill. */
static float *prefill_logits(const finch_model *m, const int32_t *ids, size_t n) {
    finch_ctx *ctx;
    finch_kv_cache kv;
    assert_ok(finch_ctx_new(m, 2, n, &ctx));
    assert_ok(finch_kv_init(&kv, &m->cfg, n));
    float *logits = malloc(n * m->cfg.vocab * sizeof(float));
    assert_ok(finch_forward(ctx, &kv, ids, n, 0, NULL, logits, n));
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
    return logits;
}

static void test_hf_logits_match_reference(void **state) {
    (void)state;
    const char *dir = model_dir();
    if (!dir) SKIP_MSG("tinystories-656k not found under ../shared/assets");
    finch_model *m;
    assert_ok(finch_model_load(dir, &m));
    size_t shape[8], ndim;
    int32_t *ids = load_fixture("tokens.npy", FINCH_NPY_I32, shape, &ndim);
    size_t n = shape[0];
    float *ref = load_fixture("logits.npy", FINCH_NPY_F32, shape, &ndim);
    assert_int_equal(shape[1], m->cfg.vocab);
    float *logits = prefill_logits(m, ids, n);
    double err = test_max_abs_diff(logits, ref, n * m->cfg.vocab);
    fprintf(stderr, "  tinystories HF logits max |err| %.3g over %zu positions\n", err, n);
    if (err > 1e-4) fail_msg("logits max error %g > 1e-4", err);
    free(logits); free(ref); free(ids);
    finch_model_free(m);
}

static void test_greedy_generation_golden(void **state) {
    (void)state;
    const char *dir = model_dir();
    if (!dir) SKIP_MSG("tinystories-656k not found under ../shared/assets");
    finch_model *m;
    assert_ok(finch_model_load(dir, &m));
    size_t shape[8], ndim;
    int32_t *ids = load_fixture("tokens.npy", FINCH_NPY_I32, shape, &ndim);
    size_t n = shape[0];
    int32_t *golden = load_fixture("generated.npy", FINCH_NPY_I32, shape, &ndim);
    size_t n_gold = shape[0];
    finch_ctx *ctx;
    finch_kv_cache kv;
    finch_sampler s;
    assert_ok(finch_ctx_new(m, 2, n, &ctx));
    assert_ok(finch_kv_init(&kv, &m->cfg, n + n_gold));
    assert_ok(finch_sampler_init(&s, (finch_sampler_params){ 0, 1, 1 }, m->cfg.vocab));
    float *logits = malloc(m->cfg.vocab * sizeof(float));
    assert_ok(finch_feed(ctx, &kv, ids, n, 0, logits));
    int32_t *gen;
    size_t n_gen;
    assert_ok(finch_decode(ctx, &kv, n, logits, &s, n_gold, -1, NULL, NULL, &gen, &n_gen));
    assert_int_equal(n_gen, n_gold);
    assert_memory_equal(gen, golden, n_gold * sizeof(int32_t));
    /* And it reads as English: the decoded text starts like a story. */
    char text[4096] = "";
    size_t len = 0;
    for (size_t i = 0; i < n_gen && len < sizeof text - 64; i++)
        len += finch_token_to_bytes(m->tokenizer, i ? gen[i - 1] : ids[n - 1], gen[i], text + len, 63);
    text[len] = 0;
    fprintf(stderr, "  greedy: %s\n", text);
    free(gen); free(logits); free(golden); free(ids);
    finch_sampler_free(&s);
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* HF directory -> `finch convert` GGUF (q/k permuted to adjacent pairs) ->
 * the same logits. */
static void test_converted_gguf_matches_hf(void **state) {
    (void)state;
    const char *dir = model_dir();
    if (!dir) SKIP_MSG("tinystories-656k not found under ../shared/assets");
    char dir_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    finch_model *hf, *gg;
    assert_ok(finch_model_load(dir_copy, &hf));
    char tmp[] = "/tmp/finch-conv-XXXXXX", path[256];
    assert_non_null(mkdtemp(tmp));
    snprintf(path, sizeof path, "%s/ts.gguf", tmp);
    assert_ok(finch_convert(hf, FINCH_F32, path));
    assert_ok(finch_model_load(path, &gg));
    assert_int_equal(gg->cfg.rope_pairing, FINCH_ROPE_ADJACENT);
    assert_int_equal(hf->cfg.rope_pairing, FINCH_ROPE_HALF);
    size_t shape[8], ndim;
    int32_t *ids = load_fixture("tokens.npy", FINCH_NPY_I32, shape, &ndim);
    size_t n = shape[0];
    /* the converted tokenizer encodes the same text to the same ids */
    const char *text = "Once upon a time, there was a little girl named Lily.";
    int32_t *a, *b;
    size_t na, nb;
    assert_ok(finch_tokenize(hf->tokenizer, text, strlen(text), 1, &a, &na));
    assert_ok(finch_tokenize(gg->tokenizer, text, strlen(text), 1, &b, &nb));
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(int32_t));
    float *l1 = prefill_logits(hf, ids, n), *l2 = prefill_logits(gg, ids, n);
    double err = test_max_abs_diff(l1, l2, n * hf->cfg.vocab);
    fprintf(stderr, "  converted GGUF vs HF logits max |err| %.3g\n", err);
    /* Same weights, same arithmetic per pair; only the order of the q.k sums
     * differs (permuted dimensions), so the bound is float rounding. */
    if (err > 5e-5) fail_msg("converted GGUF logits differ by %g", err);
    free(a); free(b); free(l1); free(l2); free(ids);
    finch_model_free(hf);
    finch_model_free(gg);
    unlink(path);
    rmdir(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_logits_match_reference),
        cmocka_unit_test(test_greedy_generation_golden),
        cmocka_unit_test(test_converted_gguf_matches_hf),
    };
    return cmocka_run_group_tests_name("tinystories", tests, NULL, NULL);
}
