/* test_truncation.c - every prefix of every file a run reads fails cleanly
 * with FINCH_ERR_FORMAT: .npy arrays, llama2.c checkpoints, and each file of
 * a sharded Hugging Face directory (config.json, the index, both shards).
 * GGUF has its own every-prefix test (test_gguf.c), safetensors images
 * theirs (test_safetensors.c).  The same hand-built files then carry a NaN
 * to show the loaders name the tensor in every format. */
#include "testutil.h"

#include "llama2c.h"
#include "model.h"
#include "npy.h"

#include <dirent.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static char tmpdir[64];

static void make_tmpdir(void) { test_make_tmpdir(tmpdir, sizeof tmpdir, "finch-trunc"); }

static void remove_tmpdir(void) { test_remove_tmpdir(tmpdir); }

static const char *tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *name, const void *data, size_t n) {
    FILE *f = fopen(tmp_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A growing byte buffer. */
typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n);
        b->b = realloc(b->b, b->cap);
        assert_non_null(b->b);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void put_text(buf *b, const char *s) { put(b, s, strlen(s)); }

/* ------------------------------------------------------------------ .npy */

static finch_status parse_npy_copy(const uint8_t *data, size_t n, finch_npy_type want) {
    uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: sanitizers see any over-read */
    assert_non_null(copy);
    if (n) memcpy(copy, data, n);
    void *out = NULL;
    size_t shape[8], ndim;
    finch_status st = finch_npy_parse(copy, n, want, &out, shape, &ndim);
    free(out);
    free(copy);
    return st;
}

static void check_npy_prefixes(const char *name, finch_npy_type t, const void *data, const size_t *shape,
                               size_t ndim) {
    assert_ok(finch_npy_write(tmp_path(name), t, data, shape, ndim));
    char *bytes = NULL;
    size_t n = 0;
    assert_ok(finch_read_file(tmp_path(name), &bytes, &n));
    assert_ok(parse_npy_copy((const uint8_t *)bytes, n, t));
    for (size_t len = 0; len < n; len++) {
        finch_status st = parse_npy_copy((const uint8_t *)bytes, len, t);
        if (st != FINCH_ERR_FORMAT) fail_msg("%s: prefix of %zu bytes gave %s (%s)", name, len,
                                             finch_status_name(st), finch_last_error());
    }
    free(bytes);
}

static void test_npy_every_prefix(void **state) {
    (void)state;
    make_tmpdir();
    const float f[6] = { 1, 2, 3, 4, 5, 6 };
    const int32_t ids[5] = { 1, 17, 300, 2, 0 };
    const size_t s2[2] = { 2, 3 }, s1[1] = { 5 };
    check_npy_prefixes("f.npy", FINCH_NPY_F32, f, s2, 2);
    check_npy_prefixes("i.npy", FINCH_NPY_I32, ids, s1, 1);
    remove_tmpdir();
}

/* -------------------------------------------------------------- llama2.c */

/* dim 8, hidden 16, 1 layer, 2 heads, 1 KV head, vocab 16 (shared
 * classifier), seq 4: 744 floats after the 28-byte header, valued i / 64. */
enum { L2C_FLOATS = 16 * 8 + (8 + 2 * 64 + 2 * 32 + 8 + 3 * 128) + 8 + 4 * 2 * 2 };

static void make_llama2c(buf *b) {
    const int32_t h[7] = { 8, 16, 1, 2, 1, 16, 4 };
    put(b, h, sizeof h);
    for (size_t i = 0; i < L2C_FLOATS; i++) {
        float v = (float)i / 64.0f;
        put(b, &v, 4);
    }
}

static void test_llama2c_every_prefix(void **state) {
    (void)state;
    buf b = { 0 };
    make_llama2c(&b);
    for (size_t len = 0; len <= b.n; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* malloc aligns as the mapping would */
        assert_non_null(copy);
        memcpy(copy, b.b, len);
        llama2c_file f;
        finch_status st = llama2c_parse(copy, len, &f);
        if (len == b.n) {
            assert_ok(st);
            llama2c_close(&f);
        } else if (st != FINCH_ERR_FORMAT) {
            fail_msg("prefix of %zu bytes gave %s (%s)", len, finch_status_name(st), finch_last_error());
        }
        free(copy);
    }
    free(b.b);
}

static void test_llama2c_nan(void **state) {
    (void)state;
    make_tmpdir();
    buf b = { 0 };
    make_llama2c(&b);
    /* wq follows the embedding (128 floats) and rms_att (8): float 136. */
    const float nan = NAN;
    memcpy(b.b + 28 + 4 * (136 + 3), &nan, 4);
    write_file("nan.bin", b.b, b.n);
    finch_model *m = NULL;
    assert_int_equal(finch_model_load_llama2c(tmp_path("nan.bin"), NULL, &m), FINCH_ERR_FORMAT);
    assert_null(m);
    char want[600];
    snprintf(want, sizeof want, "%s: tensor blk.0.attn_q.weight: element 3 (row 0, column 3) is NaN",
             tmp_path("nan.bin"));
    assert_string_equal(finch_last_error(), want);
    free(b.b);
    remove_tmpdir();
}

/* ------------------------------------------- sharded Hugging Face model */

static const char HF_CONFIG[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"num_hidden_layers\":1,"
    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":16,\"vocab_size\":16,"
    "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"rope_scaling\":null,"
    "\"tie_word_embeddings\":false,\"hidden_act\":\"silu\"}";

typedef struct {
    const char *name;
    size_t rows, cols; /* rows 0: a vector of cols */
    int shard;         /* 1 or 2 */
} hf_tensor;

static const hf_tensor HF_TENSORS[] = {
    { "model.embed_tokens.weight", 16, 8, 1 },
    { "model.layers.0.input_layernorm.weight", 0, 8, 1 },
    { "model.layers.0.self_attn.q_proj.weight", 8, 8, 1 },
    { "model.layers.0.self_attn.k_proj.weight", 4, 8, 1 },
    { "model.layers.0.self_attn.v_proj.weight", 4, 8, 1 },
    { "model.layers.0.self_attn.o_proj.weight", 8, 8, 1 },
    { "model.layers.0.post_attention_layernorm.weight", 0, 8, 1 },
    { "model.layers.0.mlp.gate_proj.weight", 16, 8, 1 },
    { "model.layers.0.mlp.up_proj.weight", 16, 8, 1 },
    { "model.layers.0.mlp.down_proj.weight", 8, 16, 1 },
    { "model.norm.weight", 0, 8, 2 },
    { "lm_head.weight", 16, 8, 2 },
};
#define N_HF_TENSORS (sizeof HF_TENSORS / sizeof HF_TENSORS[0])
#define SHARD(i) ((i) == 1 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors")

/* One shard as a safetensors image: u64 header length, the JSON header
 * padded with spaces to 8 bytes, f32 data valued (i % 7 - 3) / 8.  When
 * nan_tensor names a tensor of this shard, its element nan_at is NaN. */
static void make_shard(int shard, const char *nan_tensor, size_t nan_at, buf *out) {
    buf h = { 0 }, d = { 0 };
    char entry[256];
    put_text(&h, "{");
    for (size_t i = 0; i < N_HF_TENSORS; i++) {
        const hf_tensor *t = &HF_TENSORS[i];
        if (t->shard != shard) continue;
        size_t n = (t->rows ? t->rows : 1) * t->cols, begin = d.n;
        for (size_t k = 0; k < n; k++) {
            float v = (float)((int)(k % 7) - 3) / 8.0f;
            if (nan_tensor && !strcmp(nan_tensor, t->name) && k == nan_at) v = NAN;
            put(&d, &v, 4);
        }
        if (t->rows) snprintf(entry, sizeof entry, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                              h.n > 1 ? "," : "", t->name, t->rows, t->cols, begin, d.n);
        else snprintf(entry, sizeof entry, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                      h.n > 1 ? "," : "", t->name, t->cols, begin, d.n);
        put_text(&h, entry);
    }
    put_text(&h, "}");
    while (h.n % 8) put_text(&h, " ");
    uint64_t len = h.n;
    put(out, &len, 8);
    put(out, h.b, h.n);
    put(out, d.b, d.n);
    free(h.b);
    free(d.b);
}

static void make_index(buf *out) {
    char entry[256];
    put_text(out, "{\"metadata\":{\"total_size\":3104},\"weight_map\":{");
    for (size_t i = 0; i < N_HF_TENSORS; i++) {
        snprintf(entry, sizeof entry, "%s\"%s\":\"%s\"", i ? "," : "", HF_TENSORS[i].name, SHARD(HF_TENSORS[i].shard));
        put_text(out, entry);
    }
    put_text(out, "}}");
}

/* The four files of the directory: config.json, index, shard 1, shard 2. */
typedef struct {
    const char *name;
    buf bytes;
} hf_file;

static void make_hf_dir(hf_file files[4], const char *nan_tensor, size_t nan_at) {
    memset(files, 0, 4 * sizeof *files);
    files[0].name = "config.json";
    put_text(&files[0].bytes, HF_CONFIG);
    files[1].name = "model.safetensors.index.json";
    make_index(&files[1].bytes);
    files[2].name = SHARD(1);
    make_shard(1, nan_tensor, nan_at, &files[2].bytes);
    files[3].name = SHARD(2);
    make_shard(2, nan_tensor, nan_at, &files[3].bytes);
    for (int i = 0; i < 4; i++) write_file(files[i].name, files[i].bytes.b, files[i].bytes.n);
}

static void free_hf_dir(hf_file files[4]) {
    for (int i = 0; i < 4; i++) free(files[i].bytes.b);
}

static finch_status load_dir(void) {
    finch_model *m = NULL;
    finch_status st = finch_model_load(tmpdir, &m);
    finch_model_free(m);
    return st;
}

static void test_hf_dir_every_prefix(void **state) {
    (void)state;
    make_tmpdir();
    hf_file files[4];
    make_hf_dir(files, NULL, 0);
    assert_ok(load_dir());
    for (int f = 0; f < 4; f++) {
        for (size_t len = 0; len < files[f].bytes.n; len++) {
            write_file(files[f].name, files[f].bytes.b, len);
            finch_status st = load_dir();
            if (st != FINCH_ERR_FORMAT)
                fail_msg("%s cut to %zu bytes gave %s (%s)", files[f].name, len, finch_status_name(st),
                         finch_last_error());
        }
        write_file(files[f].name, files[f].bytes.b, files[f].bytes.n);
    }
    assert_ok(load_dir()); /* every file restored */
    free_hf_dir(files);
    remove_tmpdir();
}

static void test_hf_dir_nan(void **state) {
    (void)state;
    make_tmpdir();
    hf_file files[4];
    make_hf_dir(files, "model.layers.0.self_attn.q_proj.weight", 5);
    assert_int_equal(load_dir(), FINCH_ERR_FORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s: tensor model.layers.0.self_attn.q_proj.weight: element 5 (row 0, column 5) is NaN",
             tmpdir);
    assert_string_equal(finch_last_error(), want);
    free_hf_dir(files);
    remove_tmpdir();
    make_tmpdir();
    make_hf_dir(files, "model.norm.weight", 7); /* the second shard, a vector */
    assert_int_equal(load_dir(), FINCH_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: tensor model.norm.weight: element 7 is NaN", tmpdir);
    assert_string_equal(finch_last_error(), want);
    free_hf_dir(files);
    remove_tmpdir();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_every_prefix),
        cmocka_unit_test(test_llama2c_every_prefix),
        cmocka_unit_test(test_llama2c_nan),
        cmocka_unit_test(test_hf_dir_every_prefix),
        cmocka_unit_test(test_hf_dir_nan),
    };
    return cmocka_run_group_tests_name("truncation", tests, NULL, NULL);
}
