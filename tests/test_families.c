/* test_families.c - each supported family (Llama 3 RoPE, Mistral window,
 * Qwen3 + YaRN, Gemma 2, Gemma 3, Phi-3) in both layouts against the twin's
 * logits (testdata/fixtures/families/NAME, tools/make_family_models.py): one
 * prefill, a chunked feed, one decode step through the cache. */
#include "testutil.h"
#include "cliutil.h"

#include "model.h"
#include "rope.h"
#include "safetensors.h"

#define TOL 1e-4

static const char *const families[] = { "llama3", "mistral", "qwen3", "gemma2", "gemma3", "phi3" };
#define N_FAMILIES (sizeof families / sizeof families[0])

static float *load_f32(const char *fam, const char *file, size_t *n) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/families/%s/%s", fam, file);
    void *data;
    size_t shape[8], ndim;
    assert_ok(finch_npy_read(test_data(rel), FINCH_NPY_F32, &data, shape, &ndim));
    *n = 1;
    for (size_t i = 0; i < ndim; i++) *n *= shape[i];
    return data;
}

static int32_t *load_i32(const char *fam, const char *file, size_t *n) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/families/%s/%s", fam, file);
    void *data;
    size_t shape[8], ndim;
    assert_ok(finch_npy_read(test_data(rel), FINCH_NPY_I32, &data, shape, &ndim));
    *n = shape[0];
    return data;
}

/* Prefill all tokens, then the same tokens as 5 + rest, then one decode. */
static void check_model_at(const char *fam, const char *rel, finch_model *m) {
    size_t n, n_logits, n_dec, n_tok;
    int32_t *tokens = load_i32(fam, "tokens.npy", &n);
    int32_t *dtok = load_i32(fam, "decode_token.npy", &n_tok);
    float *want = load_f32(fam, "logits.npy", &n_logits);
    float *want_chunked = load_f32(fam, "logits_chunked.npy", &n_logits);
    float *want_dec = load_f32(fam, "decode.npy", &n_dec);
    size_t V = m->cfg.vocab;
    assert_int_equal(n_logits, n * V);
    float *got = malloc(n * V * sizeof(float));
    finch_ctx *c;
    finch_kv_cache kv;
    assert_ok(finch_ctx_new(m, 2, n, &c));
    assert_ok(finch_kv_init(&kv, &m->cfg, n + 1));
    assert_ok(finch_forward(c, &kv, tokens, n, 0, NULL, got, n));
    double d = test_max_abs_diff(got, want, n * V);
    assert_ok(finch_forward(c, &kv, dtok, 1, n, NULL, got, 1));
    double dd = test_max_abs_diff(got, want_dec, V);
    for (size_t l = 0; l < m->cfg.n_layer; l++) kv.n_pos[l] = 0;
    assert_ok(finch_forward(c, &kv, tokens, 5, 0, NULL, got, 5));
    assert_ok(finch_forward(c, &kv, tokens + 5, n - 5, 5, NULL, got + 5 * V, n - 5));
    double dc = test_max_abs_diff(got, want_chunked, n * V);
    fprintf(stderr, "  %-24s logits %.2e, chunked %.2e, decode %.2e\n", rel, d, dc, dd);
    if (d > TOL || dc > TOL || dd > TOL) fail_msg("%s: differs from the twin", rel);
    finch_kv_free(&kv);
    finch_ctx_free(c);
    free(got); free(tokens); free(dtok); free(want); free(want_chunked); free(want_dec);
    finch_model_free(m);
}

static void check_model(const char *fam, const char *rel) {
    finch_model *m = test_load_data_model(rel);
    if (!m) SKIP_MSG("%s absent", rel);
    check_model_at(fam, rel, m);
}

static void test_family_gguf(void **state) {
    (void)state;
    char rel[128];
    for (size_t i = 0; i < N_FAMILIES; i++) {
        snprintf(rel, sizeof rel, "models/families/%s.gguf", families[i]);
        check_model(families[i], rel);
    }
}

static void test_family_hf(void **state) {
    (void)state;
    char rel[128];
    for (size_t i = 0; i < N_FAMILIES; i++) {
        snprintf(rel, sizeof rel, "models/families/%s-hf", families[i]);
        check_model(families[i], rel);
    }
}

/* The switches each file turns on, as loaded. */
static void test_family_switches(void **state) {
    (void)state;
    finch_model *m = test_load_data_model("models/families/gemma3.gguf");
    if (!m) SKIP_MSG("families/gemma3 absent");
    const finch_config *c = &m->cfg;
    assert_true(c->qk_norm && c->post_norms && c->ffn_act == FINCH_ACT_GELU_TANH);
    assert_true(c->sliding_window == 4 && c->swa_period == 3 && c->rope_base_local == 10000.0f);
    assert_true(finch_layer_is_local(c, 0) && finch_layer_is_local(c, 1) && !finch_layer_is_local(c, 2));
    assert_true(c->rope_scaling == FINCH_ROPE_SCALING_LINEAR && c->rope_factor == 2.0f);
    finch_model_free(m);
    assert_non_null(m = test_load_data_model("models/families/qwen3-hf"));
    assert_true(m->cfg.head_dim == 16 && m->cfg.rope_scaling == FINCH_ROPE_SCALING_YARN);
    assert_true(m->cfg.rope_orig_ctx == 64 && fabsf(m->cfg.rope_mscale - (1.0f + 0.1f * logf(4.0f))) < 1e-6f);
    finch_model_free(m);
    assert_non_null(m = test_load_data_model("models/families/llama3.gguf"));
    assert_non_null(m->rope_freqs.data);
    finch_model *h = test_load_data_model("models/families/llama3-hf");
    assert_non_null(h);
    for (size_t i = 0; i < m->cfg.rope_dim / 2; i++)
        assert_true(fabsf(((const float *)m->rope_freqs.data)[i] - ((const float *)h->rope_freqs.data)[i]) < 1e-5f);
    finch_model_free(h);
    finch_model_free(m);
}

/* finch convert keeps the RoPE scaling: Llama 3 factors as rope_freqs.weight
 * (the converted file gives the twin's logits), linear and YaRN as keys. */
static void test_convert_scaling(void **state) {
    (void)state;
    char dir[64], path[128];
    test_make_tmpdir(dir, sizeof dir, "finch-fam-convert");
    snprintf(path, sizeof path, "%s/llama3.gguf", dir);
    finch_model *m = test_load_data_model("models/families/llama3-hf");
    if (!m) SKIP_MSG("families/llama3-hf absent");
    assert_ok(finch_convert(m, FINCH_F32, path));
    finch_model_free(m);
    assert_ok(finch_model_load(path, &m));
    assert_non_null(m->rope_freqs.data);
    check_model_at("llama3", "llama3-hf converted", m);
    /* YaRN and linear: the keys round-trip */
    finch_model *h = test_load_data_model("models/families/llama3-hf");
    h->rope_freqs.data = NULL;
    h->cfg.rope_scaling = FINCH_ROPE_SCALING_YARN;
    h->cfg.rope_factor = 4.0f; h->cfg.rope_orig_ctx = 128; h->cfg.yarn_beta_fast = 16.0f;
    h->cfg.yarn_beta_slow = 2.0f; h->cfg.rope_mscale = 1.25f;
    snprintf(path, sizeof path, "%s/yarn.gguf", dir);
    assert_ok(finch_convert(h, FINCH_F32, path));
    assert_ok(finch_model_load(path, &m));
    assert_true(m->cfg.rope_scaling == FINCH_ROPE_SCALING_YARN && m->cfg.rope_factor == 4.0f &&
                m->cfg.rope_orig_ctx == 128 && m->cfg.yarn_beta_fast == 16.0f && m->cfg.yarn_beta_slow == 2.0f &&
                m->cfg.rope_mscale == 1.25f && !m->rope_freqs.data);
    finch_model_free(m);
    h->cfg.rope_scaling = FINCH_ROPE_SCALING_LINEAR;
    snprintf(path, sizeof path, "%s/linear.gguf", dir);
    assert_ok(finch_convert(h, FINCH_F32, path));
    assert_ok(finch_model_load(path, &m));
    assert_true(m->cfg.rope_scaling == FINCH_ROPE_SCALING_LINEAR && m->cfg.rope_factor == 4.0f);
    finch_model_free(m);
    finch_model_free(h);
    test_remove_tmpdir(dir);
}

/* transformers v5 configs: RoPE parameters keyed by layer type. */
static void test_rope_parameters_v5(void **state) {
    (void)state;
    const char *g3 = "{\"architectures\":[\"Gemma3ForCausalLM\"],\"hidden_size\":32,\"num_hidden_layers\":6,"
                     "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":8,\"intermediate_size\":64,"
                     "\"vocab_size\":348,\"max_position_embeddings\":512,\"sliding_window\":4,"
                     "\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"linear\",\"factor\":8.0,"
                     "\"rope_theta\":1000000.0},\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":20000.0}}}";
    finch_config c;
    assert_ok(hf_parse_config(g3, strlen(g3), &c));
    assert_true(c.rope_scaling == FINCH_ROPE_SCALING_LINEAR && c.rope_factor == 8.0f && c.rope_base == 1e6f);
    assert_true(c.rope_base_local == 20000.0f && c.swa_period == 6 && c.sliding_window == 4);
    const char *mistral = "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":32,\"num_hidden_layers\":2,"
                          "\"num_attention_heads\":4,\"intermediate_size\":64,\"vocab_size\":348,"
                          "\"max_position_embeddings\":512,\"rope_parameters\":{\"full_attention\":{\"rope_type\":"
                          "\"default\",\"rope_theta\":1e6},\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":1e4}}}";
    assert_int_equal(hf_parse_config(mistral, strlen(mistral), &c), FINCH_ERR_UNSUPPORTED);
    assert_string_equal(finch_last_error(), "config.json rope_parameters.sliding_attention differs from "
                                            "full_attention (only Gemma 3 has local RoPE)");
}

/* Re-rotation with every scaled RoPE equals rotating at the new position
 * directly (1e-5): rotate a random key to p, shift by q - p. */
static void test_rerotation_scaled(void **state) {
    (void)state;
    static const char *const files[] = { "models/families/llama3.gguf", "models/families/qwen3.gguf",
                                         "models/families/gemma3.gguf", "models/families/phi3-hf" };
    for (size_t f = 0; f < 4; f++) {
        finch_model *m = test_load_data_model(files[f]);
        if (!m) SKIP_MSG("%s absent", files[f]);
        finch_ctx *c;
        assert_ok(finch_ctx_new(m, 1, 1, &c));
        const finch_config *cfg = &m->cfg;
        size_t hd = cfg->head_dim, half = cfg->rope_dim / 2;
        float key[64], a[64], b[64], cosv[32], sinv[32];
        double inv[32];
        const long cases[][2] = { { 5, 0 }, { 300, 2 }, { 4000, 17 }, { 70000, 1 }, { 3, 9 } };
        double worst = 0;
        for (size_t l = 0; l < cfg->n_layer; l++) {
            finch_rope_set set = { inv, 1.0f };
            finch_rope_set_init(m, finch_rope_layer_local(cfg, l), &set);
            for (size_t t = 0; t < 5; t++) {
                for (size_t i = 0; i < hd; i++) key[i] = sinf((float)(i * 7 + t + 1));
                memcpy(a, key, sizeof key);
                memcpy(b, key, sizeof key);
                finch_rope_angles(&set, half, (double)cases[t][0], set.mscale, cosv, sinv);
                finch_rope_rotate(a, cosv, sinv, cfg->rope_dim, cfg->rope_pairing);
                finch_rope_shift(c, l, a, cases[t][1] - cases[t][0]);
                finch_rope_angles(&set, half, (double)cases[t][1], set.mscale, cosv, sinv);
                finch_rope_rotate(b, cosv, sinv, cfg->rope_dim, cfg->rope_pairing);
                double d = test_max_abs_diff(a, b, hd);
                if (d > worst) worst = d;
            }
        }
        fprintf(stderr, "  %-24s re-rotation vs direct: max %.2e\n", files[f], worst);
        assert_true(worst < 1e-5);
        finch_ctx_free(c);
        finch_model_free(m);
    }
}

/* `finch run` in both modes on every family, GGUF and HF: exit 0 and the
 * summary line; `finch info` names the switches. */
static void test_family_cli(void **state) {
    (void)state;
    char args[512];
    for (size_t i = 0; i < N_FAMILIES; i++)
        for (int run = 0; run < 4; run++) {
            int hf = run & 1, oneshot = run >> 1;
            snprintf(args, sizeof args, "run -m testdata/models/families/%s%s --context \"Once upon a time "
                     "there was a little girl named Lily. She liked the sun.\" -q \"Who was there?\" "
                     "--mode %s --ratio 2 -n 3", families[i], hf ? "-hf" : ".gguf", oneshot ? "oneshot" : "iterative");
            int rc = run_finch(args);
            if (rc != 0) fail_msg("finch %s -> %d: %s", args, rc, err_text);
            assert_non_null(strstr(err_text, oneshot ? "mode oneshot" : "mode iterative"));
        }
    assert_int_equal(run_finch("info -m testdata/models/families/gemma2.gguf"), 0);
    assert_non_null(strstr(out_text, "sliding window: 4 positions"));
    assert_non_null(strstr(out_text, "soft-caps 2 / 3"));
    assert_int_equal(run_finch("convert testdata/models/families/qwen3-hf /tmp/finch-never-written.gguf"), 2);
    assert_non_null(strstr(err_text, "only llama and qwen2 models without family switches can be written; this one has qwen3"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_gguf),
        cmocka_unit_test(test_family_hf),
        cmocka_unit_test(test_family_switches),
        cmocka_unit_test(test_rope_parameters_v5),
        cmocka_unit_test(test_convert_scaling),
        cmocka_unit_test(test_rerotation_scaled),
        cmocka_unit_test(test_family_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
