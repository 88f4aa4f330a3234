/* test_bench.c - the yardsticks of `finch bench` (exact FLOPs of a forward
 * pass, exact weight bytes of a decoded token, the probes' contracts) and
 * the command itself: its JSON carries every key of issue 5's contract with
 * the right types, and bad input fails with one line and exit code 2.
 * Nothing here asserts a time or a speed: measured figures are only
 * checked to be positive numbers. */
#include "cliutil.h"
#include "finch_bench.h"

#include <cjson/cJSON.h>

#define TINY "testdata/models/tiny-llama.gguf"
/* Small enough to run in a blink on the 0.4 MB fixture. */
#define SMALL_RUN "--prefill 8 --decode 2 --finch-text 64 --chunk 32 --question 4 -t 1"

/* ------------------------------------------------------------- the work */

/* dim 8, 3 layers, 2 query heads and 1 KV head of head_dim 4, ffn 12,
 * vocab 10: qdim 8, kvdim 4. */
static finch_config hand_config(void) {
    return (finch_config){ .dim = 8, .n_layer = 3, .n_head = 2, .n_kv_head = 1, .head_dim = 4,
                           .ffn_dim = 12, .vocab = 10 };
}

static void test_forward_flops_by_hand(void **state) {
    (void)state;
    finch_config c = hand_config();
    /* Multiply-adds per token per layer: q 8*8 = 64, k and v 2*8*4 = 64,
     * o 8*8 = 64, gate/up/down 3*8*12 = 288: 480, i.e. 960 FLOPs.
     * 5 tokens after 2 cached, 3 layers: 960 * 5 * 3 = 14400.
     * Attention: the tokens see 3, 4, 5, 6, 7 keys = 25; per key and head
     * 4 * head_dim = 16 FLOPs, 2 heads, 3 layers: 25 * 16 * 2 * 3 = 2400.
     * Output head for the last token: 2 * 10 * 8 = 160. */
    assert_int_equal(finch_forward_flops(&c, 5, 2, 1), 14400 + 2400 + 160);
    /* logits for all 5 tokens: 5 * 160 */
    assert_int_equal(finch_forward_flops(&c, 5, 2, 5), 14400 + 2400 + 800);
    /* one decoded token at position 0 sees 1 key: 960*3 + 16*2*3 + 160 */
    assert_int_equal(finch_forward_flops(&c, 1, 0, 1), 2880 + 96 + 160);
    /* no logits, past 0, 2 tokens: keys 1 + 2 = 3 */
    assert_int_equal(finch_forward_flops(&c, 2, 0, 0), 960 * 2 * 3 + 3 * 16 * 2 * 3);
}

/* A present weight needs a non-NULL data pointer; it is never read. */
static const char present;

static finch_weight weight(finch_dtype t, size_t rows, size_t cols) {
    return (finch_weight){ &present, t, rows, cols, false };
}

/* dim 64, qdim 64, kvdim 32, ffn 96, vocab 100.  Layer 0
 * in Q8_0 with f32 biases, layer 1 in F16 without; norms f32. */
static void hand_layer(finch_layer *L, finch_dtype t, bool bias) {
    *L = (finch_layer){ .attn_norm = weight(FINCH_F32, 1, 64), .wq = weight(t, 64, 64),
                        .wk = weight(t, 32, 64), .wv = weight(t, 32, 64), .wo = weight(t, 64, 64),
                        .ffn_norm = weight(FINCH_F32, 1, 64), .w_gate = weight(t, 96, 64),
                        .w_up = weight(t, 96, 64), .w_down = weight(t, 64, 96) };
    if (bias) {
        L->bq = weight(FINCH_F32, 1, 64);
        L->bk = weight(FINCH_F32, 1, 32);
        L->bv = weight(FINCH_F32, 1, 32);
    }
}

static void test_decode_bytes_by_hand(void **state) {
    (void)state;
    finch_layer layers[2];
    hand_layer(&layers[0], FINCH_Q8_0, true);
    hand_layer(&layers[1], FINCH_F16, false);
    finch_model m = { .cfg = { .dim = 64, .n_layer = 2, .vocab = 100 }, .layers = layers,
                      .tok_embd = weight(FINCH_Q8_0, 100, 64), .out_norm = weight(FINCH_F32, 1, 64),
                      .output = weight(FINCH_F32, 100, 64) };
    /* Q8_0 rows: 64 values = 2 blocks of 34 bytes = 68, 96 values = 102.
     * Layer 0: norms 2*256, q 64*68 = 4352, k, v 32*68 = 2176 each,
     * biases 256 + 128 + 128, o 4352, gate, up 96*68 = 6528 each, down
     * 64*102 = 6528: 33664.
     * Layer 1 (f16 rows: 64 values 128 bytes, 96 values 192): norms 512,
     * q 8192, k, v 4096 each, o 8192, gate, up 96*128 = 12288 each, down
     * 64*192 = 12288: 61952.
     * Final norm 256, output f32 100*64*4 = 25600, one Q8_0 embedding row 68. */
    assert_int_equal(finch_decode_weight_bytes(&m), 33664 + 61952 + 256 + 25600 + 68);
    /* Tied: the output is the Q8_0 embedding, 100 * 68 = 6800, counted once. */
    m.output = m.tok_embd;
    assert_int_equal(finch_decode_weight_bytes(&m), 33664 + 61952 + 256 + 6800 + 68);
}

static void test_decode_bytes_of_a_file(void **state) {
    (void)state;
    finch_model *m = NULL;
    assert_ok(finch_model_load(TINY, &m));
    /* dim 64, 2 layers, 4 heads and 4 KV heads (qdim = kvdim = 64), ffn 64,
     * vocab 348, all f32.  Per layer: norms 2*256, q k v o 4*64*64*4 =
     * 65536, gate up down 3*64*64*4 = 49152: 115200.  Then the final norm
     * 256, the output 348*64*4 = 89088 and one embedding row 256. */
    assert_int_equal(finch_decode_weight_bytes(m), 2 * 115200 + 256 + 89088 + 256);
    finch_model_free(m);
}

/* ----------------------------------------------------------- the probes */

static void test_probes_return_rates(void **state) {
    (void)state;
    const char *isa = finch_probe_isa();
    assert_true(!strcmp(isa, "avx512") || !strcmp(isa, "avx2") || !strcmp(isa, "neon") ||
                !strcmp(isa, "scalar"));
    double gflops = -1, gbs = -1;
    assert_ok(finch_probe_fma(1, 0.01, &gflops));
    assert_true(gflops > 0 && isfinite(gflops));
    assert_ok(finch_probe_read_bw(2, 1 << 20, 2, &gbs));
    assert_true(gbs > 0 && isfinite(gbs));
    /* bad arguments: no time, a buffer smaller than one slice, no pass */
    assert_int_equal(finch_probe_fma(1, 0, &gflops), FINCH_ERR_ARG);
    assert_int_equal(finch_probe_read_bw(2, 100, 1, &gbs), FINCH_ERR_ARG);
    assert_int_equal(finch_probe_read_bw(1, 1 << 20, 0, &gbs), FINCH_ERR_ARG);
}

/* ---------------------------------------------------------- the command */

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) fail_msg("missing key \"%s\"", key);
    return v;
}

static double positive(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) fail_msg("\"%s\" is not a positive number", key);
    return v->valuedouble;
}

/* A fraction of a machine limit: a positive number when probed, else null. */
static void fraction(const cJSON *o, const char *key, bool probed) {
    if (probed) positive(o, key);
    else if (!cJSON_IsNull(item(o, key))) fail_msg("\"%s\" should be null without the probes", key);
}

/* Every contract key of one "models" entry, with its type. */
static void check_model_entry(const cJSON *e, bool probed) {
    assert_true(cJSON_IsString(item(e, "model")));
    assert_true(cJSON_IsString(item(e, "type")));
    assert_int_equal((int)positive(e, "threads"), 1);
    positive(e, "prefill_tok_s");
    positive(e, "prefill_gflops");
    fraction(e, "prefill_frac_peak", probed);
    positive(e, "decode_tok_s");
    positive(e, "decode_gbs");
    /* CPU time may read 0 for a tiny model where it is counted in ticks */
    assert_true(cJSON_IsNumber(item(e, "decode_cpu_seconds")) && item(e, "decode_cpu_seconds")->valuedouble >= 0);
    fraction(e, "decode_frac_bw", probed);
    positive(e, "finch_over_prefill");
    positive(e, "peak_rss_mb");
}

static cJSON *parse_stdout(void) {
    cJSON *doc = cJSON_Parse(out_text);
    if (!doc) fail_msg("stdout is not one JSON document: %.200s", out_text);
    return doc;
}

static void test_json_contract_without_probes(void **state) {
    (void)state;
    assert_int_equal(run_finch("bench -m " TINY " " SMALL_RUN " --no-probe --json"), 0);
    cJSON *doc = parse_stdout();
    const cJSON *machine = item(doc, "machine");
    assert_true(cJSON_IsNull(item(machine, "peak_fma_gflops")));
    assert_true(cJSON_IsNull(item(machine, "read_bw_gbs")));
    assert_string_equal(item(doc, "cache_type")->valuestring, "f32");
    const cJSON *models = item(doc, "models");
    assert_true(cJSON_IsArray(models));
    assert_int_equal(cJSON_GetArraySize(models), 1);
    const cJSON *e = cJSON_GetArrayItem(models, 0);
    check_model_entry(e, false);
    assert_string_equal(item(e, "model")->valuestring, "tiny-llama");
    assert_string_equal(item(e, "type")->valuestring, "f32");
    /* the exact work, as test_forward_flops_by_hand counts it: 8 tokens,
     * (7*64*64 multiply-adds) * 2 * 2 layers * 8 = 917504, attention
     * 36 keys * 4*16 * 4 heads * 2 layers = 18432, output 2*348*64 = 44544 */
    assert_int_equal((long)positive(e, "prefill_flop"), 917504 + 18432 + 44544);
    assert_int_equal((long)positive(e, "decode_weight_bytes"), 320000);
    assert_int_equal((long)positive(e, "finch_budget"), 8); /* 64 tokens / 8 */
    assert_true(cJSON_IsNull(item(doc, "rss_64k_over_4k")));
    cJSON_Delete(doc);
}

static void test_json_contract_with_probes_and_rss(void **state) {
    (void)state;
    assert_int_equal(run_finch("bench -m " TINY " " SMALL_RUN " --probe-mib 4 --json --rss " TINY
                               " --rss-short 64 --rss-long 512"), 0);
    cJSON *doc = parse_stdout();
    const cJSON *machine = item(doc, "machine");
    positive(machine, "peak_fma_gflops");
    positive(machine, "read_bw_gbs");
    check_model_entry(cJSON_GetArrayItem(item(doc, "models"), 0), true);
    positive(doc, "rss_64k_over_4k");
    const cJSON *rss = item(doc, "rss");
    assert_int_equal((int)positive(rss, "short_tokens"), 64);
    assert_int_equal((int)positive(rss, "long_tokens"), 512);
    assert_int_equal((int)positive(rss, "budget"), 8); /* the short text's K, for both */
    cJSON_Delete(doc);
}

/* --models-dir takes every .gguf in byte order of the names. */
static void test_models_dir_order(void **state) {
    (void)state;
    assert_int_equal(run_finch("bench --models-dir testdata/models " SMALL_RUN " --no-probe --json"), 0);
    cJSON *doc = parse_stdout();
    const char *expected[] = { "needle", "tiny-llama-bf16", "tiny-llama-f16", "tiny-llama-gqa",
                               "tiny-llama-q8_0", "tiny-llama", "tiny-qwen2" };
    const cJSON *models = item(doc, "models");
    assert_int_equal(cJSON_GetArraySize(models), 7);
    for (int i = 0; i < 7; i++) {
        const cJSON *e = cJSON_GetArrayItem(models, i);
        check_model_entry(e, false);
        assert_string_equal(item(e, "model")->valuestring, expected[i]);
    }
    assert_string_equal(item(cJSON_GetArrayItem(models, 4), "type")->valuestring, "q8_0");
    cJSON_Delete(doc);
}

/* The table on stdout, the same figures as JSON in --json-file. */
static void test_table_and_json_file(void **state) {
    (void)state;
    char path[64], cmd[256];
    snprintf(path, sizeof path, "/tmp/finch-bench-test.%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd, "bench -m " TINY " " SMALL_RUN " --no-probe --json-file %s", path);
    assert_int_equal(run_finch(cmd), 0);
    assert_non_null(strstr(out_text, "tiny-llama"));
    assert_non_null(strstr(out_text, "finch/"));
    assert_null(strstr(out_text, "{"));
    static char file[1 << 16];
    slurp(path, file, sizeof file);
    unlink(path);
    cJSON *doc = cJSON_Parse(file);
    assert_non_null(doc);
    check_model_entry(cJSON_GetArrayItem(item(doc, "models"), 0), false);
    cJSON_Delete(doc);
}

/* The smallest sizes still fit the batch (the decode prompt is longer). */
/* --cache-type f16: every cache the bench makes, said in the table and the JSON. */
static void test_f16_cache(void **state) {
    (void)state;
    assert_int_equal(run_finch("bench -m " TINY " " SMALL_RUN " --no-probe --cache-type f16 --json"), 0);
    cJSON *doc = parse_stdout();
    assert_string_equal(item(doc, "cache_type")->valuestring, "f16");
    check_model_entry(cJSON_GetArrayItem(item(doc, "models"), 0), false);
    cJSON_Delete(doc);
    assert_int_equal(run_finch("bench -m " TINY " " SMALL_RUN " --no-probe --cache-type f16"), 0);
    assert_non_null(strstr(out_text, "KV cache: f16."));
}

static void test_smallest_sizes(void **state) {
    (void)state;
    assert_int_equal(run_finch("bench -m " TINY " --prefill 1 --decode 1 --finch-text 1 --chunk 1 "
                               "--question 1 -t 1 --no-probe --json"), 0);
    cJSON *doc = parse_stdout();
    check_model_entry(cJSON_GetArrayItem(item(doc, "models"), 0), false);
    cJSON_Delete(doc);
}

static void expect_bad_input(const char *args, const char *fragment) {
    if (run_finch(args) != 2) fail_msg("finch %s: exit code not 2", args);
    assert_one_line_error();
    if (fragment && !strstr(err_text, fragment)) fail_msg("finch %s: error lacks '%s': %s", args, fragment, err_text);
}

static void test_bad_input(void **state) {
    (void)state;
    expect_bad_input("bench", "no models");
    expect_bad_input("bench -m " TINY " --bogus", "unknown option");
    expect_bad_input("bench -m " TINY " --prefill 0", "--prefill");
    expect_bad_input("bench -m " TINY " --decode many", "--decode");
    expect_bad_input("bench -m " TINY " --chunk", "needs a value");
    expect_bad_input("bench -m " TINY " --question 4 --question 5", "more than once");
    expect_bad_input("bench -m " TINY " -t 0", "-t");
    expect_bad_input("bench -m " TINY " --ratio 0.5", "--ratio");
    expect_bad_input("bench -m " TINY " --rss " TINY " --rss-short 500 --rss-long 400", "--rss-short");
    expect_bad_input("bench -m /nonexistent/model.gguf", "/nonexistent/model.gguf");
    expect_bad_input("bench -m " TINY " --rss /nonexistent/model.gguf", "--rss");
    expect_bad_input("bench --models-dir /nonexistent", "/nonexistent");
    expect_bad_input("bench --models-dir tests", "no .gguf");
    /* found, but not a model: the measuring process reports it */
    expect_bad_input("bench -m testdata/README.md " SMALL_RUN " --no-probe", "cannot load model");
    expect_bad_input("bench -m " TINY " " SMALL_RUN " --no-probe --json-file /nonexistent/dir/b.json",
                     "--json-file");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_flops_by_hand),
        cmocka_unit_test(test_decode_bytes_by_hand),
        cmocka_unit_test(test_decode_bytes_of_a_file),
        cmocka_unit_test(test_probes_return_rates),
        cmocka_unit_test(test_json_contract_without_probes),
        cmocka_unit_test(test_json_contract_with_probes_and_rss),
        cmocka_unit_test(test_models_dir_order),
        cmocka_unit_test(test_table_and_json_file),
        cmocka_unit_test(test_f16_cache),
        cmocka_unit_test(test_smallest_sizes),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests_name("bench", tests, NULL, NULL);
}
