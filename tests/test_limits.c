/* test_limits.c - the guards against silent garbage and against runs that
 * cannot fit: NaN and Inf in stored weights (every type), non-finite
 * logits, the memory estimate (exact bytes for the tiny model), the memory
 * available, and sizes as written on the command line. */
#include "modelfile.h"

#include "finite.h"

#include <unistd.h>

#define TINY "testdata/models/tiny-llama.gguf"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-limits-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

/* A copy of `model` (under testdata/models) with `n` bytes written at byte
 * `skip` of tensor `name`'s data; loading it must fail with FORMAT and the
 * message "<path>: <want>". */
static void expect_refused(const char *model, const char *name, size_t skip, const void *bytes, size_t n,
                           const char *want) {
    char src[256], dst[256], msg[512];
    snprintf(src, sizeof src, "testdata/models/%s", model);
    snprintf(dst, sizeof dst, "%s/%s", tmpdir, model);
    copy_file(src, dst);
    patch(dst, tensor_offset(dst, name, skip), bytes, n);
    finch_model *m = NULL;
    assert_int_equal(finch_model_load(dst, &m), FINCH_ERR_FORMAT);
    assert_null(m);
    snprintf(msg, sizeof msg, "%s: %s", dst, want);
    assert_string_equal(finch_last_error(), msg);
    unlink(dst);
}

/* ------------------------------------------------------- the value scan */

static void test_scan_every_type(void **state) {
    (void)state;
    enum { N = 3000 }; /* two full scan blocks and a tail */
    static float f[N];
    static uint16_t h[N];
    static finch_block_q8_0 q[N / 32];
    const char *kind = NULL;
    for (size_t i = 0; i < N; i++) f[i] = (float)i - 1500.0f;
    assert_int_equal(finch_first_nonfinite(FINCH_F32, f, N, &kind), N);
    size_t spots[] = { 0, 1023, 1024, 2047, 2048, 2999 };
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
        f[spots[s]] = NAN;
        assert_int_equal(finch_first_nonfinite(FINCH_F32, f, N, &kind), spots[s]);
        assert_string_equal(kind, "NaN");
        f[spots[s]] = -INFINITY;
        assert_int_equal(finch_first_nonfinite(FINCH_F32, f, N, &kind), spots[s]);
        assert_string_equal(kind, "-Inf");
        f[spots[s]] = 3.4e38f; /* the largest values are finite */
        assert_int_equal(finch_first_nonfinite(FINCH_F32, f, N, &kind), N);
    }
    /* F16: 0x7bff (65504) is finite, 0x7c00 is +Inf, 0xfe00 a NaN. */
    for (size_t i = 0; i < N; i++) h[i] = 0x7bff;
    assert_int_equal(finch_first_nonfinite(FINCH_F16, h, N, &kind), N);
    h[2500] = 0xfe00;
    h[2600] = 0x7c00;
    assert_int_equal(finch_first_nonfinite(FINCH_F16, h, N, &kind), 2500);
    assert_string_equal(kind, "NaN");
    assert_int_equal(finch_first_nonfinite(FINCH_F16, h, 2500, &kind), 2500); /* only the first 2500 */
    /* BF16: 0x7f7f is finite; 0x7f80 is +Inf.  As F16 the same bits are Inf. */
    for (size_t i = 0; i < N; i++) h[i] = 0x7f7f;
    assert_int_equal(finch_first_nonfinite(FINCH_BF16, h, N, &kind), N);
    assert_int_equal(finch_first_nonfinite(FINCH_F16, h, N, &kind), 0);
    h[1100] = 0x7f80;
    assert_int_equal(finch_first_nonfinite(FINCH_BF16, h, N, &kind), 1100);
    assert_string_equal(kind, "+Inf");
    /* Q8_0: only the scales count; quants of any value are fine. */
    memset(q, 0x80, sizeof q);
    for (size_t b = 0; b < N / 32; b++) q[b].d = 0x3c00; /* 1.0 */
    assert_int_equal(finch_first_nonfinite(FINCH_Q8_0, q, N / 32 * 32, &kind), N / 32 * 32);
    q[40].d = 0xfc00;
    assert_int_equal(finch_first_nonfinite(FINCH_Q8_0, q, N / 32 * 32, &kind), 40 * 32);
    assert_string_equal(kind, "-Inf");
    assert_int_equal(finch_first_nonfinite((finch_dtype)77, q, 10, &kind), 10); /* unknown type */
}

static void test_logits_check(void **state) {
    (void)state;
    float l[348];
    for (size_t i = 0; i < 348; i++) l[i] = (float)i * 0.01f;
    assert_ok(finch_check_logits(l, 348, "x"));
    l[347] = INFINITY;
    assert_int_equal(finch_check_logits(l, 348, "the logits after the prompt"), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "the logits after the prompt: the logit of token 347 is +Inf "
                                            "(the forward pass overflowed float32)");
    l[7] = NAN;
    assert_int_equal(finch_check_logits(l, 348, "y"), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "y: the logit of token 7 is NaN (the forward pass overflowed float32)");
}

/* ------------------------------------------ non-finite weights at load */

static void test_gguf_nonfinite_weights(void **state) {
    (void)state;
    make_tmpdir();
    /* blk.1.attn_q.weight is [64, 64]: element 1234 is row 19, column 18. */
    const uint32_t f32_nan = 0x7fc00000u, f32_inf = 0x7f800000u;
    const uint16_t f16_nan = 0x7e00, f16_ninf = 0xfc00, bf16_nan = 0x7fc0;
    expect_refused("tiny-llama.gguf", "blk.1.attn_q.weight", 4 * 1234, &f32_nan, 4,
                   "tensor blk.1.attn_q.weight: element 1234 (row 19, column 18) is NaN");
    expect_refused("tiny-llama.gguf", "output_norm.weight", 4 * 5, &f32_inf, 4,
                   "tensor output_norm.weight: element 5 is +Inf");
    expect_refused("tiny-llama-f16.gguf", "blk.1.attn_q.weight", 2 * 1234, &f16_nan, 2,
                   "tensor blk.1.attn_q.weight: element 1234 (row 19, column 18) is NaN");
    expect_refused("tiny-llama-f16.gguf", "token_embd.weight", 2 * 7, &f16_ninf, 2,
                   "tensor token_embd.weight: element 7 (row 0, column 7) is -Inf");
    expect_refused("tiny-llama-bf16.gguf", "blk.0.ffn_down.weight", 2 * 4095, &bf16_nan, 2,
                   "tensor blk.0.ffn_down.weight: element 4095 (row 63, column 63) is NaN");
    /* Q8_0 block 38 of a [64, 64] tensor: 34 bytes per block, scale first. */
    expect_refused("tiny-llama-q8_0.gguf", "blk.1.attn_q.weight", 34 * 38, &f16_nan, 2,
                   "tensor blk.1.attn_q.weight: a scale of q8_0 block 38 (elements 1216..1247) is NaN");
    /* A quant byte of any value is an ordinary number. */
    char src[] = "testdata/models/tiny-llama-q8_0.gguf", dst[256];
    snprintf(dst, sizeof dst, "%s/q8.gguf", tmpdir);
    copy_file(src, dst);
    const uint8_t q = 0x80;
    patch(dst, tensor_offset(dst, "blk.1.attn_q.weight", 34 * 38 + 2), &q, 1);
    finch_model *m = NULL;
    assert_ok(finch_model_load(dst, &m));
    finch_model_free(m);
    unlink(dst);
    rmdir(tmpdir);
}

/* ----------------------------------------------------------- memory */

static void test_memory_estimate_exact(void **state) {
    (void)state;
    finch_model *m = NULL;
    assert_ok(finch_model_load(TINY, &m));
    /* dim 64, 2 layers, 4 heads, 4 KV heads, head dim 16, ffn 64, vocab 348,
     * all f32: embedding and output 348 x 64 each, the final norm 64, per
     * layer two norms of 64, four 64 x 64 attention and three 64 x 64 MLP
     * matrices: (2 * 22272 + 64 + 2 * 28800) floats. */
    assert_int_equal(finch_model_weight_bytes(m), 102208 * 4);
    finch_memory r = finch_memory_estimate(m, 100, 8);
    assert_int_equal(r.weights, 408832);
    assert_int_equal(r.kv_cache, 2 * 2 * 4 * 16 * 4 * 100); /* K and V, L x G x d floats per position */
    /* batch: 8 tokens x 544 floats (x, xn, q, att, k, v, gate, up of 64, RoPE
     * 16 for each of the two sets, global and local); logits 4 x 348 floats; 548 bytes per position: attention scratch
     * (4 KV heads x 16 + 4 heads) x 6, press bookkeeping 2 x 4 x 16 + 12. */
    assert_int_equal(r.scratch, 8 * 544 * 4 + 348 * 16 + 548 * 100);
    assert_int_equal(r.total, 408832 + 102400 + 77776);
    r = finch_memory_estimate(m, SIZE_MAX / 2, 8); /* saturates instead of wrapping */
    assert_true(r.kv_cache == SIZE_MAX && r.total == SIZE_MAX);
    finch_model_free(m);
}

/* A text is counted before it is read: 80 bytes per byte (3 for the text
 * and its read buffer, 64 for the tokenizer's arrays, 8 for the ids, 5 of
 * margin), saturating. */
static void test_memory_text_exact(void **state) {
    (void)state;
    assert_int_equal(finch_memory_text(0), 0);
    assert_int_equal(finch_memory_text(20), 1600);
    assert_int_equal(finch_memory_text(476367), 476367 * 80);
    assert_true(finch_memory_text(SIZE_MAX / 2) == SIZE_MAX);
}

static void test_memory_available(void **state) {
    (void)state;
    size_t avail = 0;
    assert_ok(finch_memory_available(&avail));
    assert_true(avail > (1u << 20)); /* a machine that runs the tests has more than 1 MiB */
}

static void test_parse_size(void **state) {
    (void)state;
    static const struct { const char *s; size_t bytes; } good[] = {
        { "4096", 4096 },         { "1", 1 },           { "100B", 100 },
        { "64K", 65536 },         { "64KiB", 65536 },   { "64kb", 65536 },
        { "512M", 512u << 20 },   { "512MB", 512u << 20 }, { "2G", 2ull << 30 },
        { "1.5G", 1610612736 },   { "1.5g", 1610612736 }, { "0.5K", 512 },
        { "1T", 1ull << 40 },     { "3.", 3 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t b = 0;
        if (finch_parse_size(good[i].s, &b) != FINCH_OK || b != good[i].bytes)
            fail_msg("'%s' gave %zu (%s), want %zu", good[i].s, b, finch_last_error(), good[i].bytes);
    }
    static const char *const bad[] = { "", "abc", "-1", "+5", " 5", "5 ", "1.5.5", "12Q", "1e9", "0x10",
                                       "G", ".", "5MiBs", "5iB", "1E" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t b = 7;
        if (finch_parse_size(bad[i], &b) != FINCH_ERR_ARG) fail_msg("'%s' was accepted as %zu", bad[i], b);
        assert_int_equal(b, 7);
    }
    size_t b;
    assert_int_equal(finch_parse_size("abc", &b), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "'abc' is not a size (bytes, or a number with K, M, G or T: 512M, 2G, 1.5G)");
    assert_int_equal(finch_parse_size("0", &b), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(), "size '0' is out of range");
    assert_int_equal(finch_parse_size("0.1", &b), FINCH_ERR_ARG);
    assert_int_equal(finch_parse_size("99999999999999999999999", &b), FINCH_ERR_ARG);
    assert_int_equal(finch_parse_size("16777216T", &b), FINCH_ERR_ARG); /* 2^64 */
}

static void test_format_size(void **state) {
    (void)state;
    char buf[32];
    assert_string_equal(finch_format_size(0, buf, sizeof buf), "0 B");
    assert_string_equal(finch_format_size(1023, buf, sizeof buf), "1023 B");
    assert_string_equal(finch_format_size(1024, buf, sizeof buf), "1.00 KiB");
    assert_string_equal(finch_format_size(512u << 20, buf, sizeof buf), "512.0 MiB");
    assert_string_equal(finch_format_size(1610612736, buf, sizeof buf), "1.50 GiB");
    assert_string_equal(finch_format_size(SIZE_MAX, buf, sizeof buf), "16.0 EiB");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_every_type),
        cmocka_unit_test(test_logits_check),
        cmocka_unit_test(test_gguf_nonfinite_weights),
        cmocka_unit_test(test_memory_estimate_exact),
        cmocka_unit_test(test_memory_text_exact),
        cmocka_unit_test(test_memory_available),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_format_size),
    };
    return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
