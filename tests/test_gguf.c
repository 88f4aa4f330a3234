/* test_gguf.c - GGUF writer -> reader round trips, real vocab-only files,
 * and malformed inputs that must each fail with the right status. */
#include "testutil.h"

#include "gguf.h"

#include <dirent.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static char *make_tmpdir(void) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/finch-gguf-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static size_t count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tmpdir(const char *dir) { test_remove_tmpdir(dir); }

/* A little-endian byte builder for hand-made files. */
typedef struct {
    uint8_t b[4096];
    size_t n;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    assert_true(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put_le(bytes *b, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) b->b[b->n + i] = (uint8_t)(v >> (8 * i));
    assert_true(b->n + n <= sizeof b->b);
    b->n += n;
}
static void put_u32(bytes *b, uint32_t v) { put_le(b, v, 4); }
static void put_u64(bytes *b, uint64_t v) { put_le(b, v, 8); }
static void put_str(bytes *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void put_pad(bytes *b, size_t align) { while (b->n % align) put_le(b, 0, 1); }

/* Knobs for one small hand-built file: a string key, optional extras, one
 * 1-D tensor "t0" and 256 bytes of data. */
typedef struct {
    const char *magic;
    uint32_t version;
    uint64_t str_len_extra;   /* added to the declared string length      */
    uint32_t align;           /* 0: no general.alignment key              */
    uint32_t align_type;
    bool dup_key;
    bool dup_tensor;
    uint32_t n_dims;
    uint64_t ne0;
    uint32_t ttype;
    uint64_t offset;
} spec;

static spec base_spec(void) {
    return (spec){.magic = "GGUF", .version = 3, .align_type = GGUF_UINT32,
                  .n_dims = 1, .ne0 = 32, .ttype = FINCH_F32};
}

static void build(const spec *s, bytes *b) {
    b->n = 0;
    put(b, s->magic, 4);
    put_u32(b, s->version);
    put_u64(b, s->dup_tensor ? 2 : 1);
    put_u64(b, 1 + (s->align ? 1 : 0) + (s->dup_key ? 1 : 0));
    put_str(b, "general.architecture");
    put_u32(b, GGUF_STRING);
    put_u64(b, 5 + s->str_len_extra);
    put(b, "llama", 5);
    if (s->align) {
        put_str(b, "general.alignment");
        put_u32(b, s->align_type);
        put_le(b, s->align, s->align_type == GGUF_UINT64 ? 8 : 4);
    }
    if (s->dup_key) {
        put_str(b, "general.architecture");
        put_u32(b, GGUF_UINT8);
        put_le(b, 7, 1);
    }
    for (int i = 0; i < (s->dup_tensor ? 2 : 1); i++) {
        put_str(b, "t0");
        put_u32(b, s->n_dims);
        for (uint32_t d = 0; d < s->n_dims; d++) put_u64(b, d == 0 ? s->ne0 : 1);
        put_u32(b, s->ttype);
        put_u64(b, s->offset + (uint64_t)i * 128);
    }
    put_pad(b, s->align && (s->align & (s->align - 1)) == 0 ? s->align : 32);
    for (int i = 0; i < 256; i++) put_le(b, 0, 1);
}

/* Parse a copy of exactly `n` bytes (so sanitizers see any over-read). */
static finch_status parse_copy(const uint8_t *data, size_t n) {
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n) memcpy(copy, data, n);
    gguf_file g;
    finch_status st = gguf_parse(copy, n, &g);
    if (st == FINCH_OK) gguf_close(&g);
    free(copy);
    return st;
}

static finch_status parse_spec(const spec *s) {
    bytes b;
    build(s, &b);
    return parse_copy(b.b, b.n);
}

/* ------------------------------------------------------------ round trips */

/* One value of every metadata type, written and read back. */
static const uint64_t meta_u64 = 0xfedcba9876543210ull;
static const int64_t meta_i64 = INT64_MIN + 5;
static const double meta_f64 = -1.0 / 3.0;
static const char *const meta_strs[] = {"<unk>", "", "a b"};
static const float meta_af[] = {0.5f, -2.25f, 1e30f};
static const int32_t meta_ai[] = {-1, 0, 2147483647};

static void write_metadata(const char *path) {
    gguf_writer *w;
    assert_ok(gguf_writer_new(&w));
    uint8_t u8 = 250; int8_t i8 = -120; uint16_t u16 = 65000; int16_t i16 = -32000;
    assert_ok(gguf_set_val(w, "t.u8", GGUF_UINT8, &u8));
    assert_ok(gguf_set_val(w, "t.i8", GGUF_INT8, &i8));
    assert_ok(gguf_set_val(w, "t.u16", GGUF_UINT16, &u16));
    assert_ok(gguf_set_val(w, "t.i16", GGUF_INT16, &i16));
    assert_ok(gguf_set_u32(w, "t.u32", 4000000000u));
    assert_ok(gguf_set_i32(w, "t.i32", -2000000000));
    assert_ok(gguf_set_f32(w, "t.f32", 1e-5f));
    assert_ok(gguf_set_bool(w, "t.bool", true));
    assert_ok(gguf_set_str(w, "t.str", "h\xc3\xa9llo"));
    assert_ok(gguf_set_val(w, "t.u64", GGUF_UINT64, &meta_u64));
    assert_ok(gguf_set_val(w, "t.i64", GGUF_INT64, &meta_i64));
    assert_ok(gguf_set_val(w, "t.f64", GGUF_FLOAT64, &meta_f64));
    assert_ok(gguf_set_arr_str(w, "t.astr", meta_strs, 3));
    assert_ok(gguf_set_arr_f32(w, "t.af32", meta_af, 3));
    assert_ok(gguf_set_arr_i32(w, "t.ai32", meta_ai, 3));
    bool ab[] = {true, false};
    assert_ok(gguf_set_arr(w, "t.abool", GGUF_BOOL, ab, 2));
    uint64_t au[] = {UINT64_MAX, 1};
    assert_ok(gguf_set_arr(w, "t.au64", GGUF_UINT64, au, 2));
    assert_ok(gguf_set_arr(w, "t.aempty", GGUF_INT16, NULL, 0));
    /* Errors leave the writer unchanged. */
    assert_int_equal(gguf_set_u32(w, "t.u32", 1), FINCH_ERR_ARG);
    assert_int_equal(gguf_set_str(w, "", "x"), FINCH_ERR_ARG);
    assert_int_equal(gguf_set_u32(w, "general.alignment", 48), FINCH_ERR_ARG);
    assert_int_equal(gguf_set_str(w, "general.alignment", "32"), FINCH_ERR_ARG);
    assert_ok(gguf_write_file(w, path));
    gguf_writer_free(w);
}

static void check_scalars(const gguf_file *g) {
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 18);
    assert_int_equal(g->n_tensors, 0);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(gguf_find(g, "t.u8")->v.u, 250);
    assert_int_equal(gguf_find(g, "t.i8")->v.i, -120);
    assert_int_equal(gguf_find(g, "t.u16")->v.u, 65000);
    assert_int_equal(gguf_find(g, "t.i16")->v.i, -32000);
    assert_int_equal(gguf_find(g, "t.u32")->v.u, 4000000000u);
    assert_int_equal(gguf_find(g, "t.i32")->v.i, -2000000000);
    assert_true(gguf_find(g, "t.f32")->v.f == (double)1e-5f);
    assert_int_equal(gguf_find(g, "t.bool")->type, GGUF_BOOL);
    assert_int_equal(gguf_find(g, "t.bool")->v.u, 1);
    assert_true(gguf_find(g, "t.u64")->v.u == meta_u64);
    assert_true(gguf_find(g, "t.i64")->v.i == meta_i64);
    assert_true(gguf_find(g, "t.f64")->v.f == meta_f64);
    gguf_str s;
    assert_true(gguf_get_str(g, "t.str", &s));
    assert_true(gguf_str_eq(s, "h\xc3\xa9llo"));
}

static void check_arrays(const gguf_file *g) {
    const gguf_kv *kv = gguf_find(g, "t.astr");
    assert_int_equal(kv->v.arr.type, GGUF_STRING);
    assert_int_equal(kv->v.arr.n, 3);
    for (int i = 0; i < 3; i++) assert_true(gguf_str_eq(kv->v.arr.strs[i], meta_strs[i]));
    kv = gguf_find(g, "t.af32");
    for (size_t i = 0; i < 3; i++) {
        float f;
        assert_true(gguf_arr_get_f32(kv, i, &f));
        assert_true(f == meta_af[i]);
    }
    float f;
    int64_t v;
    assert_false(gguf_arr_get_f32(kv, 3, &f));
    assert_false(gguf_arr_get_i64(kv, 0, &v));
    kv = gguf_find(g, "t.ai32");
    for (size_t i = 0; i < 3; i++) {
        assert_true(gguf_arr_get_i64(kv, i, &v));
        assert_int_equal(v, meta_ai[i]);
    }
    kv = gguf_find(g, "t.abool");
    assert_true(gguf_arr_get_i64(kv, 0, &v) && v == 1);
    assert_true(gguf_arr_get_i64(kv, 1, &v) && v == 0);
    kv = gguf_find(g, "t.au64");
    assert_false(gguf_arr_get_i64(kv, 0, &v)); /* above INT64_MAX */
    assert_true(gguf_arr_get_i64(kv, 1, &v) && v == 1);
    assert_int_equal(gguf_find(g, "t.aempty")->v.arr.n, 0);
}

/* Typed getters convert what they can and refuse the rest. */
static void check_getters(const gguf_file *g) {
    uint64_t u;
    float f;
    gguf_str s;
    assert_true(gguf_get_u64(g, "t.u16", &u) && u == 65000);
    assert_true(gguf_get_u64(g, "t.bool", &u) && u == 1);
    assert_false(gguf_get_u64(g, "t.i32", &u));
    assert_false(gguf_get_u64(g, "t.str", &u));
    assert_false(gguf_get_u64(g, "missing", &u));
    assert_true(gguf_get_f32(g, "t.f64", &f) && f == (float)meta_f64);
    assert_true(gguf_get_f32(g, "t.i32", &f) && f == -2e9f);
    assert_false(gguf_get_str(g, "t.u8", &s));
    assert_null(gguf_find(g, "t.u"));
}

static void test_roundtrip_metadata(void **state) {
    (void)state;
    char *dir = make_tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/meta.gguf", dir);
    write_metadata(path);
    assert_int_equal(count_entries(dir), 1); /* no temporary left behind */
    gguf_file g;
    assert_ok(gguf_open(path, &g));
    check_scalars(&g);
    check_arrays(&g);
    check_getters(&g);
    gguf_close(&g);
    remove_tmpdir(dir);
}

/* Tensors of every type come back with the same bytes, aligned. */
static void check_tensors(uint32_t align) {
    char *dir = make_tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/tensors.gguf", dir);
    float a[15], b[7], c[16], q[128];
    for (int i = 0; i < 15; i++) a[i] = (float)i * 0.25f - 1.0f;
    uint16_t h[7], bf[16];
    for (int i = 0; i < 7; i++) { b[i] = (float)(i * i) / 8.0f; h[i] = finch_f32_to_f16(b[i]); }
    for (int i = 0; i < 16; i++) { c[i] = -3.0f + (float)i; bf[i] = finch_f32_to_bf16(c[i]); }
    for (int i = 0; i < 128; i++) q[i] = (float)((i * 37) % 255 - 127) / 64.0f;
    finch_block_q8_0 q8[4];
    finch_row_from_f32(FINCH_Q8_0, q, q8, 64);
    finch_row_from_f32(FINCH_Q8_0, q + 64, q8 + 2, 64);

    gguf_writer *w;
    assert_ok(gguf_writer_new(&w));
    if (align) assert_ok(gguf_set_u32(w, "general.alignment", align));
    assert_ok(gguf_add_tensor(w, "a.f32", FINCH_F32, (uint64_t[]){5, 3}, 2, a));
    assert_ok(gguf_add_tensor(w, "b.f16", FINCH_F16, (uint64_t[]){7}, 1, h));
    assert_ok(gguf_add_tensor(w, "c.bf16", FINCH_BF16, (uint64_t[]){4, 2, 1, 2}, 4, bf));
    assert_ok(gguf_add_tensor(w, "d.q8_0", FINCH_Q8_0, (uint64_t[]){64, 2}, 2, q8));
    assert_int_equal(gguf_add_tensor(w, "a.f32", FINCH_F32, (uint64_t[]){1}, 1, a), FINCH_ERR_ARG);
    assert_int_equal(gguf_add_tensor(w, "e", FINCH_Q8_0, (uint64_t[]){48}, 1, q8), FINCH_ERR_ARG);
    assert_int_equal(gguf_add_tensor(w, "e", FINCH_F32, (uint64_t[]){0}, 1, a), FINCH_ERR_ARG);
    assert_int_equal(gguf_add_tensor(w, "e", FINCH_F32, (uint64_t[]){1, 1, 1, 1, 1}, 5, a), FINCH_ERR_ARG);
    assert_int_equal(gguf_add_tensor(w, "e", (finch_dtype)16, (uint64_t[]){32}, 1, a), FINCH_ERR_ARG);
    assert_ok(gguf_write_file(w, path));
    gguf_writer_free(w);

    gguf_file g;
    assert_ok(gguf_open(path, &g));
    assert_int_equal(g.n_tensors, 4);
    assert_int_equal(g.alignment, align ? align : 32);
    const gguf_tensor *t = gguf_find_tensor(&g, "a.f32");
    assert_int_equal(t->type, FINCH_F32);
    assert_int_equal(t->n_dims, 2);
    assert_true(t->ne[0] == 5 && t->ne[1] == 3 && t->ne[2] == 1 && t->ne[3] == 1);
    assert_int_equal(t->nbytes, sizeof a);
    assert_memory_equal(t->data, a, sizeof a);
    t = gguf_find_tensor(&g, "b.f16");
    float out[64];
    finch_row_to_f32(t->type, t->data, out, 7);
    for (int i = 0; i < 7; i++) assert_true(out[i] == b[i]); /* all exact in f16 */
    t = gguf_find_tensor(&g, "c.bf16");
    assert_true(t->n_dims == 4 && t->ne[0] == 4 && t->ne[1] == 2 && t->ne[2] == 1 && t->ne[3] == 2);
    finch_row_to_f32(t->type, t->data, out, 16);
    for (int i = 0; i < 16; i++) assert_true(out[i] == c[i]);
    t = gguf_find_tensor(&g, "d.q8_0");
    assert_int_equal(t->type, FINCH_Q8_0);
    assert_int_equal(t->nbytes, sizeof q8);
    assert_memory_equal(t->data, q8, sizeof q8);
    finch_row_to_f32(t->type, (const finch_block_q8_0 *)t->data + 2, out, 64);
    assert_true(fabsf(out[5] - q[69]) < 0.01f);
    for (size_t i = 0; i < g.n_tensors; i++) {
        assert_int_equal(g.tensors[i].offset % g.alignment, 0);
        assert_int_equal(((const uint8_t *)g.tensors[i].data - g.map.data) % g.alignment, 0);
    }
    assert_null(gguf_find_tensor(&g, "a"));
    gguf_close(&g);
    remove_tmpdir(dir);
}

static void test_roundtrip_tensors(void **state) { (void)state; check_tensors(0); }
static void test_roundtrip_tensors_align64(void **state) { (void)state; check_tensors(64); }

static void test_write_failures(void **state) {
    (void)state;
    gguf_writer *w;
    assert_ok(gguf_writer_new(&w));
    assert_ok(gguf_set_str(w, "general.name", "x"));
    assert_int_equal(gguf_write_file(w, "/nonexistent-dir/x.gguf"), FINCH_ERR_IO);
    gguf_writer_free(w);
    gguf_file g;
    assert_int_equal(gguf_open("/nonexistent-dir/x.gguf", &g), FINCH_ERR_IO);
}

/* --------------------------------------------------------------- real files */

static void test_vocab_llama_spm(void **state) {
    (void)state;
    const char *path = test_asset("tokenizers/llamacpp/ggml-vocab-llama-spm.gguf");
    if (!path) SKIP_MSG("ggml-vocab-llama-spm.gguf not found");
    gguf_file g;
    assert_ok(gguf_open(path, &g));
    assert_int_equal(g.version, 3);
    assert_int_equal(g.n_tensors, 0);
    assert_int_equal(g.n_kv, 22);
    gguf_str s;
    assert_true(gguf_get_str(&g, "tokenizer.ggml.model", &s));
    assert_true(gguf_str_eq(s, "llama"));
    assert_true(gguf_get_str(&g, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    const gguf_kv *tok = gguf_find(&g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->v.arr.type, GGUF_STRING);
    assert_int_equal(tok->v.arr.n, 32000);
    assert_true(gguf_str_eq(tok->v.arr.strs[0], "<unk>"));
    assert_true(gguf_str_eq(tok->v.arr.strs[1], "<s>"));
    assert_true(gguf_str_eq(tok->v.arr.strs[2], "</s>"));
    const gguf_kv *scores = gguf_find(&g, "tokenizer.ggml.scores");
    assert_int_equal(scores->v.arr.n, 32000);
    int64_t type;
    assert_true(gguf_arr_get_i64(gguf_find(&g, "tokenizer.ggml.token_type"), 0, &type));
    assert_int_equal(type, 2); /* <unk> is UNKNOWN */
    uint64_t u;
    assert_true(gguf_get_u64(&g, "tokenizer.ggml.bos_token_id", &u) && u == 1);
    assert_true(gguf_get_u64(&g, "llama.block_count", &u) && u == 32);
    float eps;
    assert_true(gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
    assert_true(gguf_find(&g, "tokenizer.ggml.add_bos_token")->v.u == 1);
    gguf_close(&g);
}

static void test_vocab_gpt2(void **state) {
    (void)state;
    const char *path = test_asset("tokenizers/llamacpp/ggml-vocab-gpt-2.gguf");
    if (!path) SKIP_MSG("ggml-vocab-gpt-2.gguf not found");
    gguf_file g;
    assert_ok(gguf_open(path, &g));
    gguf_str s;
    assert_true(gguf_get_str(&g, "tokenizer.ggml.model", &s) && gguf_str_eq(s, "gpt2"));
    const gguf_kv *tok = gguf_find(&g, "tokenizer.ggml.tokens");
    assert_int_equal(tok->v.arr.n, 50257);
    assert_true(gguf_str_eq(tok->v.arr.strs[0], "!"));
    const gguf_kv *merges = gguf_find(&g, "tokenizer.ggml.merges");
    assert_int_equal(merges->v.arr.n, 50000);
    assert_true(gguf_str_eq(merges->v.arr.strs[0], "\xc4\xa0 t"));
    uint64_t u;
    assert_true(gguf_get_u64(&g, "tokenizer.ggml.eos_token_id", &u) && u == 50256);
    gguf_close(&g);
}

/* ------------------------------------------------------------- malformed */

static void test_base_spec_is_valid(void **state) {
    (void)state;
    spec s = base_spec();
    assert_ok(parse_spec(&s));
    s.version = 2;
    assert_ok(parse_spec(&s));
    s.align = 64;
    assert_ok(parse_spec(&s));
}

static void test_bad_magic_and_version(void **state) {
    (void)state;
    spec s = base_spec();
    s.magic = "GGUG";
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s = base_spec();
    s.version = 1;
    assert_int_equal(parse_spec(&s), FINCH_ERR_UNSUPPORTED);
    assert_non_null(strstr(finch_last_error(), "version 1"));
    s.version = 4;
    assert_int_equal(parse_spec(&s), FINCH_ERR_UNSUPPORTED);
    s.version = 0x03000000; /* a big-endian file */
    assert_int_equal(parse_spec(&s), FINCH_ERR_UNSUPPORTED);
}

/* Every proper prefix of a valid file fails cleanly with FORMAT. */
static void test_truncated_prefixes(void **state) {
    (void)state;
    char *dir = make_tmpdir(), path[128];
    snprintf(path, sizeof path, "%s/small.gguf", dir);
    gguf_writer *w;
    assert_ok(gguf_writer_new(&w));
    const char *strs[] = {"a", "bc"};
    float fs[] = {1, 2};
    assert_ok(gguf_set_str(w, "general.architecture", "llama"));
    assert_ok(gguf_set_bool(w, "b", false));
    assert_ok(gguf_set_arr_str(w, "s", strs, 2));
    assert_ok(gguf_set_arr_f32(w, "f", fs, 2));
    assert_ok(gguf_add_tensor(w, "t", FINCH_F32, (uint64_t[]){2}, 1, fs));
    assert_ok(gguf_add_tensor(w, "u", FINCH_F16, (uint64_t[]){3, 1}, 2, fs));
    assert_ok(gguf_write_file(w, path));
    gguf_writer_free(w);
    char *data;
    size_t n;
    assert_ok(finch_read_file(path, &data, &n));
    /* Bytes after the last tensor's data are padding, not needed. */
    gguf_file g;
    assert_ok(gguf_parse((const uint8_t *)data, n, &g));
    const gguf_tensor *last = gguf_find_tensor(&g, "u");
    size_t end = (size_t)((const char *)last->data - data) + last->nbytes;
    gguf_close(&g);
    assert_true(end < n);
    for (size_t len = 0; len < end; len++) {
        finch_status st = parse_copy((const uint8_t *)data, len);
        if (st != FINCH_ERR_FORMAT) fail_msg("prefix of %zu bytes gave %d (%s)", len, st, finch_last_error());
    }
    free(data);
    remove_tmpdir(dir);
}

static void test_count_overflows(void **state) {
    (void)state;
    spec s = base_spec();
    bytes b;
    build(&s, &b);
    memset(b.b + 16, 0xff, 8); /* n_kv = UINT64_MAX */
    assert_int_equal(parse_copy(b.b, b.n), FINCH_ERR_FORMAT);
    build(&s, &b);
    memset(b.b + 8, 0xff, 8); /* n_tensors = UINT64_MAX */
    assert_int_equal(parse_copy(b.b, b.n), FINCH_ERR_FORMAT);

    /* An array of 2^61 u64: count * 8 wraps to 0 on 64-bit. */
    bytes a = {.n = 0};
    put(&a, "GGUF", 4);
    put_u32(&a, 3);
    put_u64(&a, 0);
    put_u64(&a, 1);
    put_str(&a, "x");
    put_u32(&a, GGUF_ARRAY);
    put_u32(&a, GGUF_UINT64);
    put_u64(&a, 1ull << 61);
    put_u64(&a, 0);
    assert_int_equal(parse_copy(a.b, a.n), FINCH_ERR_FORMAT);

    /* Tensor dims whose product overflows. */
    a.n = 0;
    put(&a, "GGUF", 4);
    put_u32(&a, 3);
    put_u64(&a, 1);
    put_u64(&a, 0);
    put_str(&a, "t");
    put_u32(&a, 3);
    put_u64(&a, 1ull << 32);
    put_u64(&a, 1ull << 32);
    put_u64(&a, 1ull << 32);
    put_u32(&a, FINCH_F32);
    put_u64(&a, 0);
    put_pad(&a, 32);
    put_u64(&a, 0);
    assert_int_equal(parse_copy(a.b, a.n), FINCH_ERR_FORMAT);
}

static void test_string_past_end(void **state) {
    (void)state;
    spec s = base_spec();
    s.str_len_extra = 1000000;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s.str_len_extra = UINT64_MAX - 4; /* length + pos would wrap */
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
}

static void test_tensor_offsets(void **state) {
    (void)state;
    spec s = base_spec();
    s.offset = 128; /* 128 + 32*4 = 256: exactly the data we have */
    assert_ok(parse_spec(&s));
    s.offset = 160; /* one element past the end */
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s.offset = 1ull << 40;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s.offset = UINT64_MAX - 31; /* aligned, but wraps when added */
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s.offset = 4; /* misaligned */
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "alignment"));
    /* Aligned to the file's alignment (2) but not for f32. */
    s.align = 2;
    s.offset = 0;
    bytes b;
    build(&s, &b);
    s.offset = (b.n - 256) % 4 == 0 ? 2 : 0;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "misaligned"));
}

static void test_tensor_types_and_shapes(void **state) {
    (void)state;
    spec s = base_spec();
    s.ttype = 16; /* iq2_xxs */
    assert_int_equal(parse_spec(&s), FINCH_ERR_UNSUPPORTED);
    assert_non_null(strstr(finch_last_error(), "t0"));
    assert_non_null(strstr(finch_last_error(), "iq2_xxs"));
    s.ttype = 1234;
    assert_int_equal(parse_spec(&s), FINCH_ERR_UNSUPPORTED);
    assert_non_null(strstr(finch_last_error(), "1234"));
    s = base_spec();
    s.ttype = FINCH_Q8_0;
    assert_ok(parse_spec(&s));
    s.ne0 = 48;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s = base_spec();
    s.ne0 = 0;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s = base_spec();
    s.n_dims = 5;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s.n_dims = 0;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
}

static void test_duplicates(void **state) {
    (void)state;
    spec s = base_spec();
    s.dup_key = true;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "duplicate"));
    s = base_spec();
    s.dup_tensor = true;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "duplicate tensor"));
}

static void test_bad_alignment(void **state) {
    (void)state;
    spec s = base_spec();
    s.align = 48;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    s.align = 32;
    s.align_type = GGUF_UINT64;
    assert_int_equal(parse_spec(&s), FINCH_ERR_FORMAT);
    /* 0 means "no key" to build(): patch a present key's value instead. */
    s = base_spec();
    s.align = 32;
    bytes b;
    build(&s, &b);
    static const char key[] = "general.alignment";
    uint8_t *k = memmem(b.b, b.n, key, sizeof key - 1);
    assert_non_null(k);
    memset(k + sizeof key - 1 + 4, 0, 4);
    assert_int_equal(parse_copy(b.b, b.n), FINCH_ERR_FORMAT);
}

/* A file with one key holding `depth` nested arrays around one u8. */
static finch_status parse_nested(int depth, uint32_t leaf_type, uint8_t leaf) {
    bytes a = {.n = 0};
    put(&a, "GGUF", 4);
    put_u32(&a, 3);
    put_u64(&a, 0);
    put_u64(&a, 1);
    put_str(&a, "nested");
    put_u32(&a, depth ? GGUF_ARRAY : leaf_type);
    for (int d = 0; d < depth; d++) {
        put_u32(&a, d + 1 < depth ? GGUF_ARRAY : leaf_type);
        put_u64(&a, 1);
    }
    put_le(&a, leaf, 1);
    return parse_copy(a.b, a.n);
}

static void test_values(void **state) {
    (void)state;
    assert_ok(parse_nested(1, GGUF_UINT8, 7));
    assert_ok(parse_nested(2, GGUF_UINT8, 7)); /* array of arrays */
    assert_int_equal(parse_nested(3, GGUF_UINT8, 7), FINCH_ERR_UNSUPPORTED);
    assert_ok(parse_nested(0, GGUF_BOOL, 1));
    assert_int_equal(parse_nested(0, GGUF_BOOL, 2), FINCH_ERR_FORMAT);
    assert_int_equal(parse_nested(1, GGUF_BOOL, 2), FINCH_ERR_FORMAT);
    assert_int_equal(parse_nested(0, 13, 0), FINCH_ERR_FORMAT);
    assert_int_equal(parse_nested(1, 99, 0), FINCH_ERR_FORMAT);
}

/* Load modes (finch_set_load_mode): a 64 MB file (sparse: quick) is read
 * under READ, not mapped, with the file's size and bytes; mapped under
 * MMAP; under AUTO read exactly when it takes at most half the memory
 * available.  Smaller files are mapped in every mode. */
static void test_read_mode(void **state) {
    (void)state;
    char path[] = "/tmp/finch_read_mode_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const size_t size = ((size_t)64 << 20) + 3;
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    assert_int_equal(pwrite(fd, "head", 4, 0), 4);
    assert_int_equal(pwrite(fd, "end", 3, (off_t)(size - 3)), 3);
    close(fd);
    assert_int_equal(finch_get_load_mode(), FINCH_LOAD_MMAP); /* the library's default */
    finch_set_load_mode(FINCH_LOAD_READ);
    assert_true(finch_load_reads(size));
    assert_false(finch_load_reads(((size_t)64 << 20) - 1));
    finch_map m;
    assert_ok(finch_map_file(path, &m));
    assert_int_equal(m.size, size);
    assert_true(m.mapped >= size && m.mapped % 4096 == 0);
    assert_memory_equal(m.data, "head", 4);
    assert_memory_equal(m.data + size - 3, "end", 3);
    assert_int_equal(m.data[size / 2], 0);
    finch_unmap(&m);
    assert_null(m.data);
    size_t avail;
    assert_ok(finch_memory_available(&avail));
    finch_set_load_mode(FINCH_LOAD_AUTO);
    assert_int_equal(finch_load_reads(size), size <= avail / 2);
    assert_false(finch_load_reads(avail)); /* more than half: mapped */
    finch_set_load_mode(FINCH_LOAD_MMAP);
    assert_false(finch_load_reads(size));
    assert_ok(finch_map_file(path, &m));
    assert_int_equal(m.size, size);
    assert_int_equal(m.mapped, size);
    finch_unmap(&m);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_metadata),
        cmocka_unit_test(test_roundtrip_tensors),
        cmocka_unit_test(test_roundtrip_tensors_align64),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_vocab_llama_spm),
        cmocka_unit_test(test_vocab_gpt2),
        cmocka_unit_test(test_base_spec_is_valid),
        cmocka_unit_test(test_bad_magic_and_version),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_count_overflows),
        cmocka_unit_test(test_string_past_end),
        cmocka_unit_test(test_tensor_offsets),
        cmocka_unit_test(test_tensor_types_and_shapes),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_read_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
