/* test_llama2c.c - llama2.c legacy checkpoints: a hand-built one with an
 * unshared classifier, malformed headers, and the real aidreams-260K model
 * (with truncated copies) when present. */
#include "testutil.h"

#include "llama2c.h"

#include <unistd.h>

/* A checkpoint with 7 header ints and `n_floats` floats valued 0, 1, 2, ... */
typedef struct {
    uint8_t *b;
    size_t n;
} ckpt;

static ckpt make_ckpt(const int32_t h[7], size_t n_floats) {
    ckpt c = {malloc(28 + 4 * n_floats), 28 + 4 * n_floats};
    assert_non_null(c.b);
    memcpy(c.b, h, 28);
    for (size_t i = 0; i < n_floats; i++) {
        float f = (float)i;
        memcpy(c.b + 28 + 4 * i, &f, 4);
    }
    return c;
}

/* Floats in a file of dim d, hidden f, L layers, kv dim k, vocab v, seq s, head size hs. */
static size_t n_floats(size_t d, size_t f, size_t L, size_t k, size_t v, size_t s, size_t hs, int shared) {
    return v * d + L * (d + 2 * d * d + 2 * k * d + d + 3 * f * d) + d + s * hs + (shared ? 0 : v * d);
}

static float first(const finch_tensor_ref *t) {
    float f;
    memcpy(&f, t->data, 4);
    return f;
}

static void test_synthetic_unshared(void **state) {
    (void)state;
    /* dim 4, hidden 6, 2 layers, 2 heads, 1 kv head, vocab 5 (unshared), seq 3 */
    const int32_t h[7] = {4, 6, 2, 2, 1, -5, 3};
    size_t n = n_floats(4, 6, 2, 2, 5, 3, 2, 0);
    ckpt c = make_ckpt(h, n);
    llama2c_file f;
    assert_ok(llama2c_parse(c.b, c.n, &f));
    assert_string_equal(f.cfg.arch, "llama");
    assert_true(f.cfg.dim == 4 && f.cfg.ffn_dim == 6 && f.cfg.n_layer == 2 && f.cfg.n_head == 2);
    assert_true(f.cfg.n_kv_head == 1 && f.cfg.head_dim == 2 && f.cfg.vocab == 5 && f.cfg.ctx_len == 3);
    assert_int_equal(f.cfg.tied_output, 0);
    assert_int_equal(f.cfg.rope_pairing, FINCH_ROPE_ADJACENT);
    assert_int_equal(f.tensors.n, 9 * 2 + 3);
    /* Offsets (in floats) follow the file order. */
    assert_true(first(llama2c_find(&f, "token_embd.weight")) == 0.0f);
    assert_true(first(llama2c_find(&f, "blk.0.attn_norm.weight")) == 20.0f);
    assert_true(first(llama2c_find(&f, "blk.1.attn_norm.weight")) == 24.0f);
    assert_true(first(llama2c_find(&f, "blk.0.attn_q.weight")) == 28.0f);
    assert_true(first(llama2c_find(&f, "blk.1.attn_q.weight")) == 44.0f);
    assert_true(first(llama2c_find(&f, "blk.0.attn_k.weight")) == 60.0f);
    assert_true(first(llama2c_find(&f, "blk.1.attn_k.weight")) == 68.0f);
    const finch_tensor_ref *k = llama2c_find(&f, "blk.1.attn_k.weight");
    assert_true(k->n_dims == 2 && k->ne[0] == 4 && k->ne[1] == 2 && k->nbytes == 32);
    const finch_tensor_ref *down = llama2c_find(&f, "blk.0.ffn_down.weight");
    assert_true(down->ne[0] == 6 && down->ne[1] == 4 && down->type == FINCH_F32);
    const finch_tensor_ref *out = llama2c_find(&f, "output.weight");
    assert_non_null(out);
    assert_true(out->ne[0] == 4 && out->ne[1] == 5);
    assert_true(first(out) == (float)(n - 20)); /* the last vocab x dim floats */
    assert_true(llama2c_find(&f, "output_norm.weight")->ne[0] == 4);
    assert_null(llama2c_find(&f, "blk.2.attn_q.weight"));
    llama2c_close(&f);
    free(c.b);
}

static finch_status parse_header(const int32_t h[7], size_t floats) {
    ckpt c = make_ckpt(h, floats);
    llama2c_file f;
    finch_status st = llama2c_parse(c.b, c.n, &f);
    if (st == FINCH_OK) llama2c_close(&f);
    free(c.b);
    return st;
}

static void test_malformed(void **state) {
    (void)state;
    size_t n = n_floats(4, 6, 1, 4, 5, 3, 2, 1);
    const int32_t good[7] = {4, 6, 1, 2, 2, 5, 3};
    assert_ok(parse_header(good, n));
    assert_int_equal(parse_header(good, n + 1), FINCH_ERR_FORMAT); /* trailing bytes */
    assert_int_equal(parse_header(good, n - 1), FINCH_ERR_FORMAT);
    for (int i = 0; i < 7; i++) { /* zero or negative fields (vocab may be negative) */
        int32_t h[7];
        memcpy(h, good, sizeof h);
        h[i] = i == 5 ? 0 : -1;
        assert_int_equal(parse_header(h, n), FINCH_ERR_FORMAT);
    }
    const int32_t kv3[7] = {4, 6, 1, 2, 3, 5, 3};   /* heads % kv heads */
    const int32_t odd[7] = {6, 6, 1, 2, 2, 5, 3};   /* head size 3 */
    const int32_t nodiv[7] = {5, 6, 1, 2, 2, 5, 3}; /* dim % heads */
    const int32_t huge[7] = {INT32_MAX, INT32_MAX, INT32_MAX, 1, 1, INT32_MIN, INT32_MAX};
    assert_int_equal(parse_header(kv3, n), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header(odd, n), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header(nodiv, n), FINCH_ERR_FORMAT);
    assert_int_equal(parse_header(huge, n), FINCH_ERR_FORMAT);
    const int32_t ak42[7] = {0x616b3432, 2, 0, 0, 0, 0, 0};
    assert_int_equal(parse_header(ak42, n), FINCH_ERR_UNSUPPORTED);
    llama2c_file f;
    uint8_t small[27] = {0};
    assert_int_equal(llama2c_parse(small, sizeof small, &f), FINCH_ERR_FORMAT);
    assert_int_equal(llama2c_open("/nonexistent/model.bin", &f), FINCH_ERR_IO);
}

static void test_aidreams(void **state) {
    (void)state;
    const char *path = test_asset("models/aidreams-260k/aidreams260K.bin");
    if (!path) SKIP_MSG("models/aidreams-260k/aidreams260K.bin not found");
    llama2c_file f;
    assert_ok(llama2c_open(path, &f));
    const finch_config *c = &f.cfg;
    assert_string_equal(c->arch, "llama");
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->ffn_dim, 172);
    assert_int_equal(c->n_layer, 4);
    assert_int_equal(c->n_head, 4);
    assert_int_equal(c->n_kv_head, 4);
    assert_int_equal(c->head_dim, 16);
    assert_int_equal(c->rope_dim, 16);
    assert_int_equal(c->vocab, 512);
    assert_int_equal(c->ctx_len, 128);
    assert_int_equal(c->tied_output, 1);
    assert_true(c->rms_eps == 1e-5f && c->rope_base == 10000.0f);
    assert_int_equal(c->rope_pairing, FINCH_ROPE_ADJACENT);
    assert_int_equal(f.tensors.n, 9 * 4 + 2);
    assert_null(llama2c_find(&f, "output.weight"));
    const finch_tensor_ref *e = llama2c_find(&f, "token_embd.weight");
    assert_true(e->ne[0] == 64 && e->ne[1] == 512 && e->data == f.map.data + 28);
    const finch_tensor_ref *g = llama2c_find(&f, "blk.3.ffn_gate.weight");
    assert_true(g->ne[0] == 64 && g->ne[1] == 172 && g->nbytes == 64 * 172 * 4);
    const finch_tensor_ref *n = llama2c_find(&f, "output_norm.weight");
    /* rms_final is followed by the two RoPE tables, 128 x 8 floats each. */
    assert_true((const uint8_t *)n->data + 64 * 4 + 2 * 128 * 8 * 4 == f.map.data + f.map.size);
    /* RMSNorm gains of a trained model are positive. */
    float w;
    memcpy(&w, n->data, 4);
    assert_true(w > 0.0f && w < 100.0f);

    /* Truncated copies fail with FORMAT. */
    char dir[] = "/tmp/finch-l2c-XXXXXX", cut[64];
    assert_non_null(mkdtemp(dir));
    snprintf(cut, sizeof cut, "%s/cut.bin", dir);
    size_t lens[] = {f.map.size - 1, f.map.size / 2, 100, 28, 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        FILE *o = fopen(cut, "wb");
        assert_non_null(o);
        assert_int_equal(fwrite(f.map.data, 1, lens[i], o), lens[i]);
        fclose(o);
        llama2c_file t;
        assert_int_equal(llama2c_open(cut, &t), FINCH_ERR_FORMAT);
        assert_non_null(strstr(finch_last_error(), "cut.bin"));
    }
    unlink(cut);
    rmdir(dir);
    llama2c_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_unshared),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_aidreams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
