/* test_safetensors.c - Hugging Face directories: config.json parsing,
 * safetensors headers (hand-built, good and malformed), sharded indexes, and
 * the real TinyStories-656K checkpoint when present. */
#include "testutil.h"

#include "safetensors.h"

#include <dirent.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static char tmpdir[64];

static void make_tmpdir(void) { test_make_tmpdir(tmpdir, sizeof tmpdir, "finch-st"); }

static void remove_tmpdir(void) { test_remove_tmpdir(tmpdir); }

static void write_file(const char *name, const void *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text) { write_file(name, text, strlen(text)); }

/* A safetensors image: u64 header length, the JSON header padded with
 * spaces so the data section starts 8-byte aligned, then the data. */
typedef struct {
    uint8_t b[8192];
    size_t n;
} image;

static void make_image(image *im, const char *header, const void *data, size_t data_len) {
    size_t h = strlen(header), padded = h + (8 - h % 8) % 8;
    assert_true(8 + padded + data_len <= sizeof im->b);
    for (int i = 0; i < 8; i++) im->b[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(im->b + 8, header, h);
    memset(im->b + 8 + h, ' ', padded - h);
    if (data_len) memcpy(im->b + 8 + padded, data, data_len);
    im->n = 8 + padded + data_len;
}

/* Parse a copy of exactly n bytes (so sanitizers see any over-read). */
static finch_status parse_bytes(const uint8_t *data, size_t n, finch_tensor_list *l) {
    uint8_t *copy = malloc(n ? n : 1); /* malloc aligns to 16 */
    assert_non_null(copy);
    memcpy(copy, data, n);
    memset(l, 0, sizeof *l);
    finch_status st = hf_parse_safetensors(copy, n, l);
    finch_tensor_list_free(l);
    free(copy);
    return st;
}

static finch_status parse_header_with(const char *header, size_t data_len) {
    static uint8_t zeros[1024];
    image im;
    finch_tensor_list l;
    make_image(&im, header, zeros, data_len);
    return parse_bytes(im.b, im.n, &l);
}

/* Data for the three-tensor file: f32 [4, 8], f16 [2, 3], bf16 [3]. */
typedef struct {
    float emb[32];
    uint16_t h[6];
    uint16_t bf[3];
    uint16_t pad;
} tiny_data;

static const char TINY_HEADER[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},"
    "\"w.f16\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[128,140]},"
    "\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[140,146]}}";

static void tiny_fill(tiny_data *d) {
    memset(d, 0, sizeof *d);
    for (int i = 0; i < 32; i++) d->emb[i] = (float)i * 0.5f;
    for (int i = 0; i < 6; i++) d->h[i] = finch_f32_to_f16((float)i - 2.0f);
    for (int i = 0; i < 3; i++) d->bf[i] = finch_f32_to_bf16((float)i * 4.0f);
}

static const char LLAMA_CONFIG[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"num_hidden_layers\":1,"
    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":16,"
    "\"vocab_size\":4,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-05,"
    "\"rope_theta\":500000.0,\"rope_scaling\":null,\"tie_word_embeddings\":true,\"hidden_act\":\"silu\"}";

/* ------------------------------------------------------------ safetensors */

static void test_parse_tensors(void **state) {
    (void)state;
    tiny_data d;
    tiny_fill(&d);
    image im;
    make_image(&im, TINY_HEADER, &d, 146);
    uint8_t *copy = malloc(sizeof im.b);
    memcpy(copy, im.b, im.n);
    finch_tensor_list l = {0};
    assert_ok(hf_parse_safetensors(copy, im.n, &l));
    assert_int_equal(l.n, 3);
    const finch_tensor_ref *t = finch_tensor_list_find(&l, "model.embed_tokens.weight");
    assert_non_null(t);
    assert_int_equal(t->type, FINCH_F32);
    assert_int_equal(t->n_dims, 2);
    assert_true(t->ne[0] == 8 && t->ne[1] == 4 && t->ne[2] == 1 && t->ne[3] == 1);
    assert_int_equal(t->nbytes, 128);
    assert_memory_equal(t->data, d.emb, 128);
    t = finch_tensor_list_find(&l, "w.f16");
    assert_true(t->type == FINCH_F16 && t->ne[0] == 3 && t->ne[1] == 2);
    float out[6];
    finch_row_to_f32(t->type, t->data, out, 6);
    for (int i = 0; i < 6; i++) assert_true(out[i] == (float)i - 2.0f);
    t = finch_tensor_list_find(&l, "w.bf16");
    assert_true(t->type == FINCH_BF16 && t->n_dims == 1 && t->ne[0] == 3 && t->nbytes == 6);
    finch_row_to_f32(t->type, t->data, out, 3);
    assert_true(out[2] == 8.0f);
    assert_null(finch_tensor_list_find(&l, "__metadata__"));
    assert_null(finch_tensor_list_find(&l, "w"));
    finch_tensor_list_free(&l);

    /* Every proper prefix fails cleanly with FORMAT. */
    for (size_t len = 0; len < im.n; len++) {
        finch_status st = parse_bytes(im.b, len, &l);
        if (st != FINCH_ERR_FORMAT) fail_msg("prefix of %zu bytes gave %d (%s)", len, st, finch_last_error());
    }
    free(copy);
}

/* Tied weights saved by safetensors.torch.save_model: one copy plus a
 * {"removed": "kept"} entry in __metadata__. */
static void test_metadata_alias(void **state) {
    (void)state;
    static const char header[] =
        "{\"__metadata__\":{\"format\":\"pt\",\"model.embed_tokens.weight\":\"lm_head.weight\","
        "\"unrelated\":\"not a tensor\"},"
        "\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    float w[4] = {1, 2, 3, 4};
    image im;
    make_image(&im, header, w, sizeof w);
    uint8_t *copy = malloc(sizeof im.b);
    memcpy(copy, im.b, im.n);
    finch_tensor_list l = {0};
    assert_ok(hf_parse_safetensors(copy, im.n, &l));
    assert_int_equal(l.n, 2);
    const finch_tensor_ref *a = finch_tensor_list_find(&l, "model.embed_tokens.weight");
    const finch_tensor_ref *b = finch_tensor_list_find(&l, "lm_head.weight");
    assert_non_null(a);
    assert_ptr_equal(a->data, b->data);
    assert_true(a->ne[0] == 2 && a->ne[1] == 2 && a->nbytes == 16);
    assert_null(finch_tensor_list_find(&l, "unrelated"));
    finch_tensor_list_free(&l);
    free(copy);
    assert_int_equal(parse_header_with("{\"__metadata__\":{\"x\":1}}", 0), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with("{\"__metadata__\":[]}", 0), FINCH_ERR_FORMAT);
}

#define ENTRY(dtype, shape, offs) "{\"t\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static void test_malformed_headers(void **state) {
    (void)state;
    assert_ok(parse_header_with(ENTRY("F32", "[2,2]", "[0,16]"), 16));
    assert_ok(parse_header_with(ENTRY("F32", "[]", "[0,4]"), 4));     /* a scalar */
    assert_ok(parse_header_with(ENTRY("F16", "[0,3]", "[0,0]"), 0));  /* empty    */
    assert_ok(parse_header_with("{}", 0));
    /* header length past the end of the file */
    image im;
    finch_tensor_list l;
    make_image(&im, ENTRY("F32", "[2,2]", "[0,16]"), "0123456789abcdef", 16);
    im.b[0] = (uint8_t)(im.n - 7);
    assert_int_equal(parse_bytes(im.b, im.n, &l), FINCH_ERR_FORMAT);
    memset(im.b, 0xff, 8);
    assert_int_equal(parse_bytes(im.b, im.n, &l), FINCH_ERR_FORMAT);
    assert_int_equal(parse_bytes(im.b, 5, &l), FINCH_ERR_FORMAT);
    /* offsets out of range or reversed */
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,2]", "[0,16]"), 12), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,2]", "[16,0]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,2]", "[0,18446744073709551615]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,2]", "[0]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,2]", "[0,-16]"), 16), FINCH_ERR_FORMAT);
    /* size mismatch, bad shapes */
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,2]", "[0,12]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F16", "[2,2]", "[0,16]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,1.5]", "[0,12]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[2,-2]", "[0,16]"), 16), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[4294967296,4294967296,4294967296]", "[0,16]"), 16),
                     FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with(ENTRY("F32", "[1,1,1,1,1]", "[0,4]"), 16), FINCH_ERR_UNSUPPORTED);
    /* misaligned f32 data */
    assert_int_equal(parse_header_with(ENTRY("F32", "[2]", "[2,10]"), 16), FINCH_ERR_FORMAT);
    /* dtypes */
    assert_int_equal(parse_header_with(ENTRY("I64", "[2]", "[0,16]"), 16), FINCH_ERR_UNSUPPORTED);
    assert_non_null(strstr(finch_last_error(), "I64"));
    assert_int_equal(parse_header_with(ENTRY("F8_E4M3", "[2]", "[0,2]"), 16), FINCH_ERR_UNSUPPORTED);
    assert_int_equal(parse_header_with("{\"t\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 16),
                     FINCH_ERR_FORMAT);
    /* not JSON, not an object, entries that are not objects */
    assert_int_equal(parse_header_with("{not json at all", 0), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with("[1,2,3]", 0), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with("{\"t\":3}", 0), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header_with("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), FINCH_ERR_FORMAT);
    /* duplicate names */
    assert_int_equal(parse_header_with("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                       "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                     FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "duplicate"));
}

/* ----------------------------------------------------------- config.json */

static finch_status parse_config(const char *json, finch_config *c) {
    return hf_parse_config(json, strlen(json), c);
}

static void test_config(void **state) {
    (void)state;
    finch_config c;
    assert_ok(parse_config(LLAMA_CONFIG, &c));
    assert_string_equal(c.arch, "llama");
    assert_true(c.dim == 8 && c.n_layer == 1 && c.n_head == 2 && c.n_kv_head == 1);
    assert_true(c.head_dim == 4 && c.rope_dim == 4 && c.ffn_dim == 16 && c.vocab == 4 && c.ctx_len == 64);
    assert_true(c.rms_eps == 1e-5f && c.rope_base == 500000.0f);
    assert_int_equal(c.rope_pairing, FINCH_ROPE_HALF);
    assert_int_equal(c.tied_output, 1);
    assert_int_equal(c.has_qkv_bias, 0);

    /* Defaults: kv heads = heads, theta 1e4, eps 1e-6, head_dim = dim/heads, untied. */
    assert_ok(parse_config("{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,"
                           "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":96,"
                           "\"vocab_size\":100,\"max_position_embeddings\":32768,\"sliding_window\":4096}", &c));
    assert_string_equal(c.arch, "llama");
    assert_true(c.n_kv_head == 4 && c.head_dim == 16 && c.rope_base == 10000.0f && c.rms_eps == 1e-6f);
    assert_int_equal(c.tied_output, 0);
    assert_int_equal(c.ctx_len, 32768);
    assert_true(c.sliding_window == 4096 && c.swa_period == 0); /* every layer windowed */

    assert_ok(parse_config("{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                           "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                           "\"intermediate_size\":96,\"vocab_size\":100,\"max_position_embeddings\":32768,"
                           "\"sliding_window\":4096,\"use_sliding_window\":false,\"head_dim\":32,"
                           "\"rope_theta\":1000000.0,\"tie_word_embeddings\":true,\"rope_scaling\":null}", &c));
    assert_string_equal(c.arch, "qwen2");
    assert_true(c.has_qkv_bias == 1 && c.tied_output == 1 && c.head_dim == 32 && c.ctx_len == 32768);
    assert_true(c.rope_base == 1e6f && c.rope_pairing == FINCH_ROPE_HALF);
}

static void test_config_errors(void **state) {
    (void)state;
    finch_config c;
    char buf[2048];
    struct { const char *from, *to; finch_status want; } cases[] = {
        {"\"rope_scaling\":null", "\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2.0}", FINCH_ERR_UNSUPPORTED},
        {"LlamaForCausalLM", "GPT2LMHeadModel", FINCH_ERR_UNSUPPORTED},
        {"\"silu\"", "\"gelu\"", FINCH_ERR_UNSUPPORTED},
        {"\"hidden_size\":8", "\"hidden_sizes\":8", FINCH_ERR_FORMAT},
        {"\"hidden_size\":8", "\"hidden_size\":-8", FINCH_ERR_FORMAT},
        {"\"hidden_size\":8", "\"hidden_size\":8.5", FINCH_ERR_FORMAT},
        {"\"hidden_size\":8", "\"hidden_size\":9", FINCH_ERR_FORMAT},        /* not a multiple of heads */
        {"\"num_key_value_heads\":1", "\"num_key_value_heads\":3", FINCH_ERR_FORMAT},
        {"\"rms_norm_eps\":1e-05", "\"rms_norm_eps\":\"small\"", FINCH_ERR_FORMAT},
        {"\"tie_word_embeddings\":true", "\"tie_word_embeddings\":1", FINCH_ERR_FORMAT},
        {"[\"LlamaForCausalLM\"]", "[]", FINCH_ERR_FORMAT},
        {"{", "[", FINCH_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *at = strstr(LLAMA_CONFIG, cases[i].from);
        assert_non_null(at);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - LLAMA_CONFIG), LLAMA_CONFIG, cases[i].to,
                 at + strlen(cases[i].from));
        finch_status st = parse_config(buf, &c);
        if (st != cases[i].want) fail_msg("case %zu (%s) gave %d: %s", i, cases[i].to, st, finch_last_error());
    }
    assert_int_equal(hf_parse_config(LLAMA_CONFIG, 20, &c), FINCH_ERR_FORMAT); /* cut short */
}

/* ------------------------------------------------------- model directory */

static void test_open_single(void **state) {
    (void)state;
    make_tmpdir();
    tiny_data d;
    tiny_fill(&d);
    image im;
    make_image(&im, TINY_HEADER, &d, 146);
    hf_model_files m;
    assert_int_equal(hf_open(tmpdir, &m), FINCH_ERR_IO); /* no config.json */
    char long_dir[HF_PATH_MAX + 8];
    memset(long_dir, 'a', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = 0;
    assert_int_equal(hf_open(long_dir, &m), FINCH_ERR_ARG);
    write_text("config.json", LLAMA_CONFIG);
    assert_int_equal(hf_open(tmpdir, &m), FINCH_ERR_IO); /* no weights */
    write_file("model.safetensors", im.b, im.n);
    assert_ok(hf_open(tmpdir, &m));
    assert_int_equal(m.cfg.dim, 8);
    assert_int_equal(m.n_maps, 1);
    assert_string_equal(m.tokenizer_json, "");
    assert_string_equal(m.tokenizer_config, "");
    const finch_tensor_ref *t = hf_find(&m, "model.embed_tokens.weight");
    assert_non_null(t);
    assert_true(t->ne[0] == 8 && t->ne[1] == 4);
    assert_memory_equal(t->data, d.emb, sizeof d.emb);
    hf_close(&m);

    write_text("tokenizer.json", "{}");
    write_text("tokenizer_config.json", "{}");
    assert_ok(hf_open(tmpdir, &m));
    assert_non_null(strstr(m.tokenizer_json, "/tokenizer.json"));
    assert_non_null(strstr(m.tokenizer_config, "/tokenizer_config.json"));
    hf_close(&m);

    /* A broken weights file is a format error naming the file. */
    im.b[0] ^= 0x40;
    write_file("model.safetensors", im.b, im.n);
    assert_int_equal(hf_open(tmpdir, &m), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "model.safetensors"));
    write_text("config.json", "{\"architectures\":[\"LlamaForCausalLM\"]");
    assert_int_equal(hf_open(tmpdir, &m), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "config.json"));
    remove_tmpdir();
}

static void write_shards(void) {
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    image im;
    make_image(&im, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", a, sizeof a);
    write_file("model-00001-of-00002.safetensors", im.b, im.n);
    make_image(&im, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", b, sizeof b);
    write_file("model-00002-of-00002.safetensors", im.b, im.n);
    write_text("config.json", LLAMA_CONFIG);
}

static void test_open_sharded(void **state) {
    (void)state;
    make_tmpdir();
    write_shards();
    write_text("model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":28},\"weight_map\":{"
               "\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\","
               "\"c\":\"model-00002-of-00002.safetensors\"}}");
    hf_model_files m;
    assert_ok(hf_open(tmpdir, &m));
    assert_int_equal(m.n_maps, 2);
    assert_int_equal(m.tensors.n, 3);
    const finch_tensor_ref *a = hf_find(&m, "a"), *b = hf_find(&m, "b");
    assert_true(a && b && a->ne[0] == 2 && a->ne[1] == 2 && b->ne[0] == 2);
    assert_true(((const float *)a->data)[3] == 4.0f && ((const float *)b->data)[1] == 6.0f);
    hf_close(&m);

    struct { const char *index; finch_status want; } bad[] = {
        {"{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"z\":\"model-00002-of-00002.safetensors\"}}",
         FINCH_ERR_FORMAT}, /* z is in no shard */
        {"{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}", FINCH_ERR_FORMAT},
        {"{\"weight_map\":{\"a\":\"missing.safetensors\"}}", FINCH_ERR_IO},
        {"{\"weight_map\":{\"a\":3}}", FINCH_ERR_FORMAT},
        {"{\"weight_map\":[]}", FINCH_ERR_FORMAT},
        {"not json", FINCH_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text("model.safetensors.index.json", bad[i].index);
        finch_status st = hf_open(tmpdir, &m);
        if (st != bad[i].want) fail_msg("index case %zu gave %d: %s", i, st, finch_last_error());
    }

    /* The same tensor in two shards. */
    float x = 1;
    image im;
    make_image(&im, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &x, sizeof x);
    write_file("model-00002-of-00002.safetensors", im.b, im.n);
    write_text("model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
    assert_int_equal(hf_open(tmpdir, &m), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "duplicate"));
    remove_tmpdir();
}

/* -------------------------------------------------------------- real model */

static void test_tinystories(void **state) {
    (void)state;
    const char *dir = test_asset("models/tinystories-656k");
    if (!dir) SKIP_MSG("models/tinystories-656k not found");
    hf_model_files m;
    assert_ok(hf_open(dir, &m));
    const finch_config *c = &m.cfg;
    assert_string_equal(c->arch, "llama");
    assert_int_equal(c->dim, 128);
    assert_int_equal(c->n_layer, 2);
    assert_int_equal(c->n_head, 8);
    assert_int_equal(c->n_kv_head, 4);
    assert_int_equal(c->head_dim, 16);
    assert_int_equal(c->ffn_dim, 384);
    assert_int_equal(c->vocab, 2048);
    assert_int_equal(c->ctx_len, 512);
    assert_true(c->rms_eps == 1e-6f && c->rope_base == 10000.0f);
    assert_int_equal(c->tied_output, 1);
    assert_int_equal(c->rope_pairing, FINCH_ROPE_HALF);
    assert_non_null(strstr(m.tokenizer_json, "/tokenizer.json"));
    assert_non_null(strstr(m.tokenizer_config, "/tokenizer_config.json"));
    const finch_tensor_ref *k = hf_find(&m, "model.layers.0.self_attn.k_proj.weight");
    assert_non_null(k);
    assert_int_equal(k->type, FINCH_F32);
    assert_true(k->n_dims == 2 && k->ne[0] == 128 && k->ne[1] == 64);
    const finch_tensor_ref *down = hf_find(&m, "model.layers.1.mlp.down_proj.weight");
    assert_true(down->ne[0] == 384 && down->ne[1] == 128);
    /* The file stores lm_head once and names embed_tokens in __metadata__. */
    const finch_tensor_ref *emb = hf_find(&m, "model.embed_tokens.weight");
    const finch_tensor_ref *head = hf_find(&m, "lm_head.weight");
    assert_true(emb && head && emb->data == head->data);
    assert_true(emb->ne[0] == 128 && emb->ne[1] == 2048);
    assert_int_equal(m.tensors.n, 21); /* 20 stored + 1 alias */
    hf_close(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_tensors),
        cmocka_unit_test(test_metadata_alias),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_open_single),
        cmocka_unit_test(test_open_sharded),
        cmocka_unit_test(test_tinystories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
