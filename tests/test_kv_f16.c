/* test_kv_f16.c - the F16 KV cache (--cache-type f16).
 *
 * Conversions: every ISA's f16 -> f32 of all 65536 halves, and f32 -> f16
 * of the boundary values and a million random bit patterns, bit for bit
 * against the scalar twins (finch_f16_to_f32 / finch_f32_to_f16, round to
 * nearest even, quiet NaNs with the payload's top bits as F16C).
 * Attention: with f16 keys and values it gives exactly the bits of the f32
 * path on the same (rounded) values, on every ISA, key counts across the
 * value blocks included.  The cache: its rows read back as their f16
 * values, gather / copy / re-rotation keep that, its bytes are half.
 * The forward pass: layer 0's stored K/V are the f32 cache's rounded; the
 * logits move by a bounded amount.  The full model against the PyTorch
 * twin's emulation of f16 storage is in test_finch_fixtures.c.  The CLI:
 * --cache-type on run, eval, generate and bench, a bad value refused by
 * name, the dump's meta.json saying which cache made it. */
#include "kernelutil.h"
#include "cliutil.h"
#include "kernels_internal.h"

static const finch_isa all_isas[] = {FINCH_ISA_SCALAR, FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};
#define N_ISAS (sizeof all_isas / sizeof all_isas[0])


/* Every half, through every ISA (all at once and with odd tails). */
static void test_f16_to_f32_every_value(void **state) {
    (void)state;
    enum { N = 65536 };
    uint16_t *h = malloc(N * sizeof *h);
    float *out = malloc(N * sizeof *out);
    assert_true(h && out);
    for (size_t i = 0; i < N; i++) h[i] = (uint16_t)i;
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        const size_t cuts[] = {N, 37, 1};
        for (size_t c = 0; c < 3; c++) {
            for (size_t at = 0; at < N; at += cuts[c]) {
                size_t n = N - at < cuts[c] ? N - at : cuts[c];
                finch_f16_to_f32_row(h + at, out + at, n);
            }
            for (size_t j = 0; j < N; j++)
                if (finch_f32_bits(out[j]) != finch_f32_bits(finch_f16_to_f32(h[j])))
                    fail_msg("%s: f16 %04zx -> %08x, scalar %08x", finch_isa_name(all_isas[i]), j,
                             finch_f32_bits(out[j]), finch_f32_bits(finch_f16_to_f32(h[j])));
        }
    }
    free(h);
    free(out);
}

/* The roundings that matter: ties at every scale, the overflow edge, the
 * subnormal halves and below, NaN payloads; then random bit patterns. */
static void test_f32_to_f16_matches_scalar(void **state) {
    (void)state;
    static const uint32_t edges[] = {
        0x00000000, 0x80000000, 0x00000001, 0x33000000, 0x33000001, 0x337fffff, 0x33800000, 0x387fc000,
        0x387fe000, 0x387ff000, 0x38800000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f801001, 0x477fe000,
        0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7f800001,
        0x7fc00000, 0xffa00001, 0x7fffffff, 0x7f801000, 0xc2f61000, 0x3eaaaaab,
    };
    enum { N = 1 << 20, E = sizeof edges / sizeof edges[0] };
    float *x = malloc(N * sizeof *x);
    uint16_t *h = malloc(N * sizeof *h);
    assert_true(x && h);
    rng_seed(16);
    for (size_t j = 0; j < N; j++)
        x[j] = j < E ? finch_f32_from_bits(edges[j]) : finch_f32_from_bits((uint32_t)(rng_next() >> 32));
    for (size_t j = E; j < N / 2; j++) /* half of them in the halves' range */
        x[j] = finch_f32_from_bits((finch_f32_bits(x[j]) & 0x807fffffu) | ((uint32_t)(100 + j % 45) << 23));
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        memset(h, 0, N * sizeof *h);
        finch_f32_to_f16_row(x, h, 19); /* a tail alone */
        finch_f32_to_f16_row(x + 19, h + 19, N - 19);
        for (size_t j = 0; j < N; j++)
            if (h[j] != finch_f32_to_f16(x[j]))
                fail_msg("%s: f32 %08x -> %04x, scalar %04x", finch_isa_name(all_isas[i]), finch_f32_bits(x[j]),
                         h[j], finch_f32_to_f16(x[j]));
    }
    /* round to nearest even: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 */
    assert_int_equal(finch_f32_to_f16(finch_f32_from_bits(0x3f801000)), 0x3c00);
    assert_int_equal(finch_f32_to_f16(finch_f32_from_bits(0x3f803000)), 0x3c02);
    assert_int_equal(finch_f32_to_f16(65520.0f), 0x7c00); /* rounds up past 65504: inf */
    assert_int_equal(finch_f32_to_f16(65519.0f), 0x7bff);
    free(x);
    free(h);
}

/* Random rows rounded to f16, and their f32 values. */
static void random_half_rows(size_t n, uint16_t **h, float **f) {
    *f = random_floats(n);
    *h = malloc((n ? n : 1) * sizeof **h);
    assert_non_null(*h);
    for (size_t i = 0; i < n; i++) {
        (*h)[i] = finch_f32_to_f16((*f)[i] * 3.0f);
        (*f)[i] = finch_f16_to_f32((*h)[i]);
    }
}

/* f16 keys and values give the f32 path's bits on their values: packing
 * converts exactly, the value blocks continue each output's FMA chain.  Key
 * rows packed a panel at a time (f32 or f16) give the packed keys' bits. */
static void test_attention_f16_is_f32_on_rounded(void **state) {
    (void)state;
    const size_t dims[] = {64, 7, 80}, keys[] = {1, 33, 128, 129, 300}, NQ = 5;
    rng_seed(1616);
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 5; b++) {
                size_t d = dims[a], nk = keys[b];
                uint16_t *k16, *v16;
                float *k, *v, *q = random_floats(NQ * d);
                random_half_rows(nk * d, &k16, &k);
                random_half_rows(nk * d, &v16, &v);
                float *kp = malloc(finch_attn_kpack_floats(nk, d) * sizeof(float));
                float *kp16 = malloc(finch_attn_kpack_floats(nk, d) * sizeof(float));
                float *sc = malloc(NQ * nk * sizeof(float)), *vbuf = malloc(FINCH_ATTN_VBLOCK * d * sizeof(float));
                float *want = malloc(NQ * d * sizeof(float)), *got = malloc(NQ * d * sizeof(float));
                assert_true(kp && kp16 && sc && vbuf && want && got);
                float scale = 1.0f / sqrtf((float)d);
                finch_attn_pack_keys(k, 0, nk, d, kp);
                finch_attn_pack_keys_f16(k16, 0, nk, d, kp16);
                finch_attn_rows(kp, v, nk, d, q, d, NQ, scale, sc, want, d);
                finch_attn_rows_keys(k, v, nk, d, q, d, NQ, scale, sc, got, d, vbuf); /* f32 rows, panels */
                if (memcmp(want, got, NQ * d * sizeof(float)) != 0)
                    fail_msg("%s: attention d=%zu keys=%zu with key panels differs from packed keys",
                             finch_isa_name(all_isas[i]), d, nk);
                for (int panels = 0; panels < 2; panels++) { /* packed keys, or a panel at a time */
                    finch_attn_rows_f16(panels ? NULL : kp16, k16, v16, nk, d, q, d, NQ, scale, sc, got, d, vbuf);
                    if (memcmp(want, got, NQ * d * sizeof(float)) != 0)
                        fail_msg("%s: f16 attention d=%zu keys=%zu (%s) differs from f32 on the same values",
                                 finch_isa_name(all_isas[i]), d, nk, panels ? "panels" : "packed");
                }
                free(k16); free(v16); free(k); free(v); free(q); free(kp); free(kp16);
                free(sc); free(vbuf); free(want); free(got);
            }
    }
}

static finch_config small_config(void) {
    finch_config c = { 0 };
    c.n_layer = 2, c.n_kv_head = 2, c.head_dim = 8;
    return c;
}

/* Rows read back as their f16 values; gather and growing keep them; the
 * bytes are half an f32 cache's. */
static void test_cache_rows(void **state) {
    (void)state;
    finch_config c = small_config();
    finch_kv_cache kv, big, f32;
    assert_ok(finch_kv_init_type(&kv, &c, 6, FINCH_CACHE_F16));
    assert_ok(finch_kv_init_type(&f32, &c, 6, FINCH_CACHE_F32));
    assert_null(kv.k);
    assert_int_equal(finch_kv_bytes(&kv, 6) * 2, finch_kv_bytes(&f32, 6));
    float rows[6][8], back[6][8], tmp[8];
    for (size_t p = 0; p < 6; p++)
        for (size_t i = 0; i < 8; i++) rows[p][i] = 0.1f * (float)(p * 8 + i) + 1e-3f;
    for (size_t l = 0; l < 2; l++)
        for (size_t g = 0; g < 2; g++) finch_kv_write(&kv, l, g, 0, 6, rows[0], rows[0]);
    kv.n_pos[0] = kv.n_pos[1] = 6;
    finch_kv_read(&kv, 1, 1, 0, 6, back[0], NULL);
    for (size_t p = 0; p < 6; p++)
        for (size_t i = 0; i < 8; i++) assert_true(back[p][i] == finch_f16_to_f32(finch_f32_to_f16(rows[p][i])));
    assert_memory_equal(finch_kv_value_f32(&kv, 0, 1, 3, tmp), back[3], sizeof back[3]);
    const size_t idx[] = {1, 4, 5};
    finch_kv_gather(&kv, 1, 0, idx, 3);
    assert_memory_equal(finch_kv_key_f32(&kv, 1, 0, 1, tmp), back[4], sizeof back[4]);
    assert_ok(finch_kv_init_type(&big, &c, 10, FINCH_CACHE_F16));
    finch_kv_copy_rows(&big, &kv);
    assert_int_equal(big.n_pos[1], 6);
    assert_memory_equal(finch_kv_value_f32(&big, 1, 0, 2, tmp), back[5], sizeof back[5]);
    assert_memory_equal(finch_kv_key_f32(&big, 0, 1, 5, tmp), back[5], sizeof back[5]);
    finch_kv_free(&kv);
    finch_kv_free(&big);
    finch_kv_free(&f32);
}

static void test_cache_type_names(void **state) {
    (void)state;
    finch_cache_type t = FINCH_CACHE_F32;
    assert_ok(finch_cache_type_parse("f16", &t));
    assert_int_equal(t, FINCH_CACHE_F16);
    assert_string_equal(finch_cache_type_name(t), "f16");
    assert_ok(finch_cache_type_parse("f32", &t));
    assert_string_equal(finch_cache_type_name(t), "f32");
    assert_int_equal(finch_cache_type_parse("q8_0", &t), FINCH_ERR_ARG);
    assert_non_null(strstr(finch_last_error(), "'q8_0'"));
}

/* Re-rotation of an f16 key: its f32 value rotated (finch_rope_shift),
 * rounded back. */
static void test_shift_key_rounds_back(void **state) {
    (void)state;
    finch_model *m = test_load_data_model("models/tiny-llama.gguf");
    if (!m) skip();
    finch_ctx *ctx;
    finch_kv_cache kv;
    size_t d = m->cfg.head_dim;
    assert_ok(finch_ctx_new(m, 1, 4, &ctx));
    assert_ok(finch_kv_init_type(&kv, &m->cfg, 4, FINCH_CACHE_F16));
    float *row = random_floats(d), *want = malloc(d * sizeof(float)), *got = malloc(d * sizeof(float));
    finch_kv_write(&kv, 0, 0, 2, 1, row, row);
    finch_kv_read(&kv, 0, 0, 2, 1, want, NULL);
    finch_rope_shift(ctx, 0, want, -2);
    for (size_t i = 0; i < d; i++) want[i] = finch_f16_to_f32(finch_f32_to_f16(want[i]));
    finch_kv_shift_key(ctx, &kv, 0, 0, 2, -2);
    finch_kv_read(&kv, 0, 0, 2, 1, got, NULL);
    assert_memory_equal(got, want, d * sizeof(float));
    free(row); free(want); free(got);
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* Prefill then one decode step into a cache of type t: the logits of both
 * and the cache. */
static void run_forward(finch_ctx *ctx, const finch_model *m, finch_cache_type t, const int32_t *ids, size_t n,
                        float *logits, finch_kv_cache *kv) {
    assert_ok(finch_kv_init_type(kv, &m->cfg, n + 1, t));
    assert_ok(finch_forward(ctx, kv, ids, n, 0, NULL, logits, 1));
    assert_ok(finch_forward(ctx, kv, ids + n, 1, n, NULL, logits + m->cfg.vocab, 1));
}

/* Layer 0's K/V do not depend on the cache: the f16 cache holds the f32
 * cache's rounded.  Later layers read rounded keys and values; the logits
 * move by less than 1e-2 here (measured ~1e-3 on this random model with
 * logits of magnitude ~8; bound stated, not tight). */
static void test_forward_f16_cache(void **state) {
    (void)state;
    finch_model *m = test_load_data_model("models/tiny-llama-gqa.gguf");
    if (!m) skip();
    enum { N = 40 };
    int32_t ids[N + 1];
    for (size_t i = 0; i <= N; i++) ids[i] = (int32_t)((i * 7919 + 3) % m->cfg.vocab);
    size_t V = m->cfg.vocab, d = m->cfg.head_dim;
    float *l32 = malloc(2 * V * sizeof(float)), *l16 = malloc(2 * V * sizeof(float));
    float *a = malloc((N + 1) * d * sizeof(float)), *b = malloc((N + 1) * d * sizeof(float));
    finch_ctx *ctx;
    finch_kv_cache k32, k16;
    assert_ok(finch_ctx_new(m, 2, N, &ctx));
    run_forward(ctx, m, FINCH_CACHE_F32, ids, N, l32, &k32);
    run_forward(ctx, m, FINCH_CACHE_F16, ids, N, l16, &k16);
    for (size_t g = 0; g < m->cfg.n_kv_head; g++)
        for (int keys = 0; keys < 2; keys++) {
            finch_kv_read(&k32, 0, g, 0, N + 1, keys ? a : NULL, keys ? NULL : a);
            finch_kv_read(&k16, 0, g, 0, N + 1, keys ? b : NULL, keys ? NULL : b);
            for (size_t i = 0; i < (N + 1) * d; i++) a[i] = finch_f16_to_f32(finch_f32_to_f16(a[i]));
            assert_memory_equal(a, b, (N + 1) * d * sizeof(float));
        }
    double e = test_max_abs_diff(l32, l16, 2 * V);
    fprintf(stderr, "f16 cache: logits max |f16 - f32| %.3g (prefill + one decode step)\n", e);
    assert_true(e > 0 && e < 1e-2);
    free(l32); free(l16); free(a); free(b);
    finch_kv_free(&k32);
    finch_kv_free(&k16);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

#define GGUF "testdata/models/tiny-llama.gguf"


/* Runs finch ARGS (exit 0), then DIR/FILE says "cache_type": "f16". */
static void assert_writes_f16(const char *args, const char *dir, const char *file) {
    char path[512];
    assert_int_equal(run_finch(args), 0);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    slurp(path, out_text, sizeof out_text);
    assert_non_null(strstr(out_text, "\"cache_type\":\t\"f16\""));
}
static void test_cli_flag(void **state) {
    (void)state;
    static const char *const cmds[] = {
        "run -m " GGUF " --context abc -q d --budget 1", "eval -m " GGUF " --task x.jsonl",
        "generate -m " GGUF " -p hi", "bench -m " GGUF " --no-probe",
    };
    for (size_t i = 0; i < 4; i++) {
        char args[512];
        snprintf(args, sizeof args, "%s --cache-type q8", cmds[i]);
        assert_int_equal(run_finch(args), 2);
        assert_string_equal(err_text, "finch: error: --cache-type must be f32 or f16, got 'q8'\n");
    }
    assert_int_equal(run_finch("tokenize -m " GGUF " --cache-type f16 hi"), 2);
    assert_one_line_error();
    assert_int_equal(run_finch("generate -m " GGUF " -p hi -n 3 --cache-type f16"), 0);
    char dir[64], path[512];
    test_make_tmpdir(dir, sizeof dir, "finch-kvf16");
    snprintf(path, sizeof path, "run -m " GGUF " --context 'a b c d e f' -q d --budget 2 -n 1 --cache-type f16 "
             "--dump %s/d", dir);
    assert_writes_f16(path, dir, "d/meta.json");
    /* eval: the sweep's config says it (and a resume with f32 is refused) */
    snprintf(path, sizeof path, "eval -m " GGUF " --task testdata/bench/ruler.jsonl --press finch --ratio 2 -t 1 "
             "--cache-type f16 --out %s/e", dir);
    assert_writes_f16(path, dir, "e/results.json");
    snprintf(path, sizeof path, "eval -m " GGUF " --task testdata/bench/ruler.jsonl --press finch --ratio 2 -t 1 "
             "--out %s/e --resume", dir);
    assert_int_equal(run_finch(path), 2);
    assert_non_null(strstr(err_text, "was made with other settings"));
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_f16_to_f32_every_value, restore_defaults),
        cmocka_unit_test_teardown(test_f32_to_f16_matches_scalar, restore_defaults),
        cmocka_unit_test_teardown(test_attention_f16_is_f32_on_rounded, restore_defaults),
        cmocka_unit_test(test_cache_rows),
        cmocka_unit_test(test_cache_type_names),
        cmocka_unit_test(test_shift_key_rounds_back),
        cmocka_unit_test(test_forward_f16_cache),
        cmocka_unit_test(test_cli_flag),
    };
    return cmocka_run_group_tests_name("f16 KV cache", tests, NULL, NULL);
}
