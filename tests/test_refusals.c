/* test_refusals.c - never a silent wrong answer: every GGUF key, tensor and
 * Hugging Face config field that changes the arithmetic and is not
 * implemented is refused with a message naming it.  Each case writes its
 * own file (a tiny one-layer model plus the one key, tensor or field) and
 * checks the exact message; the control case without it loads. */
#include "testutil.h"

#include "gguf.h"

static char tmpdir[64];

/* A one-layer llama-shaped model: dim 8, 2 heads of 4, ffn 8, vocab 4. */
enum { DIM = 8, FFN = 8, VOCAB = 4 };
static float zeros[64 * 64];

typedef struct { const char *name; uint64_t ne0, ne1; } tdesc;
static const tdesc base_tensors[] = {
    { "token_embd.weight", DIM, VOCAB }, { "output_norm.weight", DIM, 0 },
    { "blk.0.attn_norm.weight", DIM, 0 }, { "blk.0.attn_q.weight", DIM, DIM },
    { "blk.0.attn_k.weight", DIM, DIM },  { "blk.0.attn_v.weight", DIM, DIM },
    { "blk.0.attn_output.weight", DIM, DIM }, { "blk.0.ffn_norm.weight", DIM, 0 },
    { "blk.0.ffn_gate.weight", DIM, FFN }, { "blk.0.ffn_up.weight", DIM, FFN },
    { "blk.0.ffn_down.weight", FFN, DIM },
};
#define N_BASE (sizeof base_tensors / sizeof base_tensors[0])

typedef enum { K_NONE, K_STR, K_F32, K_U32, K_ARR } key_kind;
typedef struct {
    const char *key; key_kind kind; const char *s; float f; /* the extra key, if any */
    const char *key2; float f2;                             /* a second f32 key       */
    const char *tensor; uint64_t ne0;                       /* an extra 1-D tensor    */
    const char *want;                                       /* message after "path: " */
} gguf_case;

static void write_gguf(const char *path, const char *arch, const gguf_case *k) {
    gguf_writer *w;
    char key[128];
    assert_ok(gguf_writer_new(&w));
    assert_ok(gguf_set_str(w, "general.architecture", arch));
    const struct { const char *k; uint32_t v; } sizes[] = {
        { "context_length", 64 }, { "embedding_length", DIM }, { "block_count", 1 },
        { "feed_forward_length", FFN }, { "attention.head_count", 2 }, { "attention.head_count_kv", 2 } };
    for (size_t i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, sizes[i].k);
        if (!(k && k->key && !strcmp(key, k->key))) assert_ok(gguf_set_u32(w, key, sizes[i].v));
    }
    if (k && k->kind == K_STR) assert_ok(gguf_set_str(w, k->key, k->s));
    if (k && k->kind == K_F32) assert_ok(gguf_set_f32(w, k->key, k->f));
    if (k && k->kind == K_U32) assert_ok(gguf_set_u32(w, k->key, (uint32_t)k->f));
    if (k && k->kind == K_ARR) { int32_t v[1] = { 2 }; assert_ok(gguf_set_arr_i32(w, k->key, v, 1)); }
    if (k && k->key2) assert_ok(gguf_set_f32(w, k->key2, k->f2));
    for (size_t i = 0; i < N_BASE; i++) {
        uint64_t ne[2] = { base_tensors[i].ne0, base_tensors[i].ne1 };
        assert_ok(gguf_add_tensor(w, base_tensors[i].name, FINCH_F32, ne, ne[1] ? 2 : 1, zeros));
    }
    if (k && k->tensor) {
        uint64_t ne[1] = { k->ne0 };
        assert_ok(gguf_add_tensor(w, k->tensor, FINCH_F32, ne, 1, zeros));
    }
    assert_ok(gguf_write_file(w, path));
    gguf_writer_free(w);
}

static void expect_refusal(const char *path, finch_status want_st, const char *want) {
    finch_model *m = NULL;
    finch_status st = finch_model_load(path, &m);
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, want);
    if (st != want_st || strcmp(finch_last_error(), full))
        fail_msg("%s: got %s '%s', want %s '%s'", path, finch_status_name(st), finch_last_error(),
                 finch_status_name(want_st), full);
    assert_null(m);
}

static void test_gguf_refusals(void **state) {
    (void)state;
    static const gguf_case cases[] = {
        { "llama.rope.scaling.type", K_STR, "longrope", 0, "llama.rope.scaling.factor", 4, NULL, 0,
          "RoPE scaling 'longrope' (llama.rope.scaling.type) is not supported (linear, yarn, llama3 factors)" },
        { "llama.rope.scaling.type", K_STR, "dynamic", 0, "llama.rope.scaling.factor", 2, NULL, 0,
          "RoPE scaling 'dynamic' (llama.rope.scaling.type) is not supported (linear, yarn, llama3 factors)" },
        { "llama.rope.scaling.type", K_STR, "yarn", 0, "llama.rope.scaling.yarn_ext_factor", 0.5f, NULL, 0,
          "llama.rope.scaling.yarn_ext_factor 0.5 is not supported (only 1)" },
        { "llama.rope.scaling.type", K_STR, "linear", 0, "llama.rope.scaling.factor", 0.5f, NULL, 0,
          "llama.rope.scaling.factor 0.5 is not supported (must be > 1)" },
        { "llama.rope.scaling.yarn_log_multiplier", K_F32, NULL, 0.1f, NULL, 0, NULL, 0,
          "GGUF key llama.rope.scaling.yarn_log_multiplier is not supported by this engine" },
        { "llama.rope.scaling.alpha", K_F32, NULL, 1000, NULL, 0, NULL, 0,
          "GGUF key llama.rope.scaling.alpha is not supported by this engine" },
        { "llama.rope.dimension_sections", K_ARR, NULL, 0, NULL, 0, NULL, 0,
          "GGUF key llama.rope.dimension_sections is not supported by this engine" },
        { "llama.attention.head_count_kv", K_ARR, NULL, 0, NULL, 0, NULL, 0,
          "GGUF key llama.attention.head_count_kv: per-layer arrays are not supported" },
        { "llama.attention.sliding_window_pattern", K_U32, NULL, 2, NULL, 0, NULL, 0,
          "GGUF key llama.attention.sliding_window_pattern is not supported by this engine" },
        { "llama.attn_logit_softcapping", K_F32, NULL, 50, NULL, 0, NULL, 0,
          "GGUF key llama.attn_logit_softcapping is not supported by this engine" },
        { "llama.expert_count", K_U32, NULL, 8, NULL, 0, NULL, 0,
          "GGUF key llama.expert_count is not supported by this engine" },
        { "llama.attention.value_length", K_U32, NULL, 8, NULL, 0, NULL, 0,
          "llama.attention.value_length 8 differs from the key length 4" },
        { NULL, K_NONE, NULL, 0, NULL, 0, "rope_factors_long.weight", 2,
          "tensor rope_factors_long.weight is not used by the llama architecture (not supported)" },
        { NULL, K_NONE, NULL, 0, NULL, 0, "blk.0.attn_q_norm.weight", 4,
          "tensor blk.0.attn_q_norm.weight is not used by the llama architecture (not supported)" },
    };
    char path[128];
    snprintf(path, sizeof path, "%s/control.gguf", tmpdir);
    write_gguf(path, "llama", NULL);
    finch_model *m = NULL;
    assert_ok(finch_model_load(path, &m));
    finch_model_free(m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/case%zu.gguf", tmpdir, i);
        write_gguf(path, "llama", &cases[i]);
        expect_refusal(path, FINCH_ERR_UNSUPPORTED, cases[i].want);
    }
    gguf_case str_num = { "llama.rope.freq_base", K_STR, "10000", 0, NULL, 0, NULL, 0, NULL };
    snprintf(path, sizeof path, "%s/string-number.gguf", tmpdir);
    write_gguf(path, "llama", &str_num);
    expect_refusal(path, FINCH_ERR_FORMAT, "GGUF key llama.rope.freq_base has type string");
    /* An architecture outside the list is refused by name. */
    snprintf(path, sizeof path, "%s/phi2.gguf", tmpdir);
    write_gguf(path, "phi2", NULL);
    expect_refusal(path, FINCH_ERR_UNSUPPORTED,
                   "architecture 'phi2' is not supported (llama, qwen2, qwen3, gemma2, gemma3, phi3)");
}

/* A Llama 3.x GGUF's rope_freqs.weight is used: the logits change. */
static void test_gguf_rope_freqs_used(void **state) {
    (void)state;
    finch_model *m = test_load_data_model("models/families/llama3.gguf");
    if (!m) SKIP_MSG("families/llama3.gguf absent");
    assert_non_null(m->rope_freqs.data);
    assert_int_equal(m->rope_freqs.cols, m->cfg.rope_dim / 2);
    const float *ff = m->rope_freqs.data;
    assert_true(ff[0] == 1.0f && ff[m->rope_freqs.cols - 1] == 8.0f);
    finch_model_free(m);
}

/* ------------------------------------------------------------------ HF */

#define HF_BASE "{\"architectures\":[\"%s\"],\"hidden_size\":8,\"num_hidden_layers\":1," \
                "\"num_attention_heads\":2,\"intermediate_size\":8,\"vocab_size\":4," \
                "\"max_position_embeddings\":64%s}"

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* model.safetensors of the base tensors in HF names (+ one extra 1-D). */
static void write_safetensors(const char *path, const char *extra, size_t extra_n) {
    static const char *const hf[N_BASE] = {
        "model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight" };
    char header[4096];
    size_t off = 0, len = 0;
    len += (size_t)snprintf(header + len, sizeof header - len, "{");
    for (size_t i = 0; i <= N_BASE; i++) {
        const char *name = i < N_BASE ? hf[i] : extra;
        if (!name) break;
        size_t rows = i < N_BASE ? (base_tensors[i].ne1 ? base_tensors[i].ne1 : 0) : 0;
        size_t cols = i < N_BASE ? base_tensors[i].ne0 : extra_n, n = (rows ? rows : 1) * cols * 4;
        if (rows)
            len += (size_t)snprintf(header + len, sizeof header - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", name, rows, cols, off, off + n);
        else
            len += (size_t)snprintf(header + len, sizeof header - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", name, cols, off, off + n);
        off += n;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    while (len % 8) header[len++] = ' ';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, len, f);
    char *data = calloc(1, off);
    fwrite(data, 1, off, f);
    free(data);
    fclose(f);
}

typedef struct { const char *arch, *fields, *extra_tensor; size_t extra_n; const char *want; } hf_case;

static void test_hf_refusals(void **state) {
    (void)state;
    static const hf_case cases[] = {
        { "LlamaForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"dynamic\",\"factor\":2.0}", NULL, 0,
          "config.json rope_scaling type 'dynamic' is not supported (linear, llama3, yarn)" },
        { "Phi3ForCausalLM", ",\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1],\"long_factor\":[1]}", NULL, 0,
          "config.json rope_scaling type 'longrope' is not supported (linear, llama3, yarn)" },
        { "LlamaForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"mscale_all_dim\":1.0}", NULL, 0,
          "config.json rope_scaling.mscale_all_dim is not supported" },
        { "LlamaForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2.0,\"extra\":1}", NULL, 0,
          "config.json rope_scaling.extra is not supported" },
        { "LlamaForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"truncate\":false}", NULL, 0,
          "config.json rope_scaling.truncate false is not supported" },
        { "LlamaForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":0.5}", NULL, 0,
          "config.json rope_scaling.factor 0.5 is not supported (must be >= 1)" },
        { "LlamaForCausalLM", ",\"hidden_act\":\"gelu\"", NULL, 0, "config.json hidden_act is not silu" },
        { "Gemma2ForCausalLM", ",\"hidden_activation\":\"gelu\"", NULL, 0,
          "config.json hidden_act is not gelu_pytorch_tanh" },
        { "LlamaForCausalLM", ",\"partial_rotary_factor\":0.25", NULL, 0,
          "config.json partial_rotary_factor 0.25 gives 1 rotated dims of 4" },
        { "LlamaForCausalLM", ",\"attention_bias\":true", NULL, 0,
          "config.json attention_bias / mlp_bias are not supported" },
        { "Gemma3ForCausalLM", ",\"layer_types\":[\"chunked_attention\"]", NULL, 0,
          "config.json layer_types[0] is not supported" },
        { "Qwen3ForCausalLM", ",\"layer_types\":[\"sliding_attention\"]", NULL, 0,
          "config.json layer_types: layer 0 differs from the window pattern this engine implements" },
        { "LlamaForCausalLM", "", "model.layers.0.self_attn.q_norm.weight", 4,
          "tensor model.layers.0.self_attn.q_norm.weight is not used by the llama architecture (not supported)" },
        { "GemmaForCausalLM", "", NULL, 0,
          "architecture GemmaForCausalLM is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
          "Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM)" },
    };
    char dir[64], path[192], cfg[1024];
    for (size_t i = 0; i <= sizeof cases / sizeof cases[0]; i++) {
        test_make_tmpdir(dir, sizeof dir, "finch-refuse-hf");
        bool control = i == sizeof cases / sizeof cases[0];
        const hf_case *k = control ? NULL : &cases[i];
        snprintf(cfg, sizeof cfg, HF_BASE, control ? "LlamaForCausalLM" : k->arch, control ? "" : k->fields);
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_text(path, cfg);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        write_safetensors(path, control ? NULL : k->extra_tensor, control ? 0 : k->extra_n);
        if (control) {
            finch_model *m = NULL;
            assert_ok(finch_model_load(dir, &m));
            finch_model_free(m);
            test_remove_tmpdir(dir);
            continue;
        }
        finch_model *m = NULL;
        finch_status st = finch_model_load(dir, &m);
        if (m) fail_msg("case %zu (%s) loaded", i, k->want);
        const char *msg = finch_last_error();
        const char *tail = strlen(msg) >= strlen(k->want) ? msg + strlen(msg) - strlen(k->want) : msg;
        if (st != FINCH_ERR_UNSUPPORTED || strcmp(tail, k->want) || strncmp(msg, dir, strlen(dir)))
            fail_msg("case %zu: got %s '%s', want '%s'", i, finch_status_name(st), msg, k->want);
        test_remove_tmpdir(dir);
    }
}

static int setup(void **state) {
    (void)state;
    test_make_tmpdir(tmpdir, sizeof tmpdir, "finch-refuse");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_remove_tmpdir(tmpdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_refusals),
        cmocka_unit_test(test_gguf_rope_freqs_used),
        cmocka_unit_test(test_hf_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
