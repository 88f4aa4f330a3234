/* test_kernels_bf16.c - BF16 weights in bf16 arithmetic (kernels_bf16.c):
 * the activations' rounding and the scalar twin finch_bf16_dot_ref on
 * hand-computed values, the AVX2 and AVX-512 BF16 tiles against the twin bit for bit
 * (random, special and edge-case inputs), and finch_matmul on BF16 weights:
 * the scalar table, AVX2 and AVX-512 give the same bits, independent of the
 * thread count and the batch (finch_matmul_rows_agree), and within the
 * stated error of the f32 reference.
 *
 * Error metric against finch_matmul_ref (exact f32 activations): NMSE (as
 * test_kernels.c and ggml's test-backend-ops) <= 1e-5.  Rounding an
 * activation to bf16 moves it by at most 2^-9 of itself (about 1.1e-3 rms
 * for uniform mantissas), so NMSE ~ 1.3e-6 for random data. */
#include "kernelutil.h"
#include "kernels_internal.h"

#define BF16_NMSE 1e-5

static uint16_t bf_of(float f) { return (uint16_t)(finch_f32_bits(f) >> 16); } /* exact values only */

static int teardown(void **state) {
    finch_set_quant_math(FINCH_QUANT_MATH_Q8);
    return restore_defaults(state);
}

/* The bf16 arithmetic of an ISA where this CPU has it (AVX-512: with
 * AVX512_BF16), else NULL. */
static const finch_bf16_dot *dot_of(finch_isa isa) {
    if (!finch_isa_set(isa)) return NULL;
    const finch_bf16_dot *d = finch_bf16_dot_for(finch_kernels_get());
    restore_defaults(NULL);
    return d;
}
static const finch_bf16_dot *hw_dot(void) { return dot_of(FINCH_ISA_AVX512); }
static const finch_isa simd_isas[] = {FINCH_ISA_AVX2, FINCH_ISA_AVX512};

static void test_act_to_bf16(void **state) {
    (void)state;
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, /* tie: to even            */
        {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81}, /* tie up; above the tie   */
        {0xbf80ffff, 0xbf81}, {0x7f7fffff, 0x7f80}, /* overflow to +inf         */
        {0x00000001, 0x0000}, {0x807fffff, 0x8000}, /* denormals: signed zero   */
        {0x00800000, 0x0080}, {0x7f800000, 0x7f80}, /* smallest normal; inf     */
        {0x7f800001, 0x7fc0}, {0xffa12345, 0xffe1}, /* NaN: quiet, top bits     */
    };
    const finch_bf16_dot *hw = hw_dot();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(finch_act_to_bf16(finch_f32_from_bits(cases[i].in)), cases[i].out);
        if (!hw) continue;
        uint16_t h;
        float x = finch_f32_from_bits(cases[i].in);
        hw->to_bf16(&x, &h, 1);
        assert_int_equal(h, cases[i].out);
    }
    if (!hw) return;
    rng_seed(21); /* random bit patterns, a tail of every length */
    float x[37];
    uint16_t h[37];
    for (int rep = 0; rep < 2000; rep++) {
        size_t n = 1 + (size_t)rep % 37;
        for (size_t i = 0; i < n; i++) x[i] = finch_f32_from_bits((uint32_t)(rng_next() >> 32) & (rep % 3 ? ~0u : 0x807fffffu));
        hw->to_bf16(x, h, n);
        for (size_t i = 0; i < n; i++) assert_int_equal(h[i], finch_act_to_bf16(x[i]));
    }
}

/* Hand-computed outputs of the twin: the pair order, DAZ and FTZ. */
static void test_dot_ref_values(void **state) {
    (void)state;
    uint16_t w[40] = {0}, x[40] = {0};
    for (size_t c = 0; c < 5; c++) w[c] = bf_of((float)(c + 1)), x[c] = bf_of(0.5f);
    assert_true(finch_bf16_dot_ref(w, x, 5) == 7.5f);
    /* Lane 0: -2^25 (column 1), then 0 (column 0); then 2^25 (column 33)
     * and 1 (column 32).  Odd first: -2^25 + 2^25 + 1 = 1; even first
     * would round -2^25 + 1 back to -2^25 and give 0. */
    memset(w, 0, sizeof w);
    memset(x, 0, sizeof x);
    w[1] = bf_of(-0x1p25f), w[33] = bf_of(0x1p25f), w[32] = bf_of(1.0f);
    x[1] = x[33] = x[32] = bf_of(1.0f);
    assert_true(finch_bf16_dot_ref(w, x, 34) == 1.0f);
    /* DAZ: a denormal bf16 weight counts as zero against a huge x. */
    w[1] = 0x0001, x[1] = bf_of(0x1p100f), w[32] = w[33] = 0;
    assert_true(finch_bf16_dot_ref(w, x, 34) == 0.0f);
    /* FTZ: 2^-100 * 2^-30 is a denormal f32: flushed, where an fma keeps it. */
    w[1] = bf_of(0x1p-100f), x[1] = bf_of(0x1p-30f);
    assert_int_equal(finch_f32_bits(finch_bf16_dot_ref(w, x, 2)), 0);
    w[1] = bf_of(-0x1p-100f);
    assert_int_equal(finch_f32_bits(finch_bf16_dot_ref(w, x, 2)), 0); /* -0 + +0 in the tree */
    /* x86's tininess: 2^-126 - 2^-150 is tiny (flushed) though an fma
     * rounds it to 2^-126; 2^-126 - 2^-250 rounds to 2^-126 in 24 bits. */
    w[1] = x[1] = bf_of(0x1p-63f), w[0] = bf_of(0x1p-75f), x[0] = bf_of(-0x1p-75f);
    assert_int_equal(finch_f32_bits(finch_bf16_dot_ref(w, x, 2)), 0);
    w[0] = bf_of(0x1p-125f), x[0] = bf_of(-0x1p-125f);
    assert_true(finch_bf16_dot_ref(w, x, 2) == 0x1p-126f);
    /* The lane tree: lanes 0, 1, 8, 9 hold 2^24, -2^24, 1, 1.  Lane 0 +
     * lane 8 first (2^24 + 1 rounds to 2^24), lane 1 + lane 9 (-2^24 + 1
     * exact), then lane 0 + lane 1: 1, where lanes in order give 2. */
    memset(w, 0, sizeof w);
    w[0] = bf_of(0x1p24f), w[2] = bf_of(-0x1p24f), w[16] = w[18] = bf_of(1.0f);
    for (size_t c = 0; c < 20; c++) x[c] = bf_of(1.0f);
    assert_true(finch_bf16_dot_ref(w, x, 20) == 1.0f);
}

/* A value of a class: ordinary, tiny (denormal or near), huge, products
 * near 2^-126 (the flush of tiny sums), any bits. */
static uint16_t random_bf16(int cls) {
    uint16_t h = (uint16_t)(rng_next() >> 48);
    switch (cls) {
    case 0: return (uint16_t)((h & 0x807f) | ((120 + (h >> 8) % 16) << 7));
    case 1: return (uint16_t)((h & 0x807f) | (((h >> 8) % 4) << 7));
    case 2: return (uint16_t)((h & 0x807f) | ((250 + (h >> 8) % 5) << 7));
    case 3: return (uint16_t)((h & 0x807f) | ((59 + (h >> 8) % 10) << 7)); /* sums near 2^-126 */
    default: return h;
    }
}

/* An ISA's tile against the twin, every row count and every token count
 * of its tiles for every value class, lengths around the 32-column steps;
 * NaN only as NaN. */
enum { TWIN_MAX_TOKENS = 8 };
static void check_tile_vs_twin(const finch_bf16_dot *hw) {
    rng_seed(22);
    const size_t lens[] = {1, 2, 31, 32, 33, 63, 64, 100, 2048 + 17};
    assert_true(hw->tile.tokens <= TWIN_MAX_TOKENS);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (int cls = 0; cls < 6; cls++)
            for (size_t nt = 1; nt <= hw->tile.tokens; nt++) {
                size_t n = lens[li], rows = 11;
                uint16_t *w = malloc(rows * n * 2), *x = malloc(nt * n * 2);
                float out[TWIN_MAX_TOKENS * 11];
                assert_non_null(w);
                assert_non_null(x);
                for (size_t i = 0; i < rows * n; i++) w[i] = random_bf16(cls % 5);
                for (size_t i = 0; i < nt * n; i++) x[i] = random_bf16(cls % 5);
                if (cls == 5) /* cancelling pairs */
                    for (size_t i = 0; i + 1 < n; i += 2) w[i] = w[i + 1] ^ 0x8000, x[i] = x[i + 1];
                size_t step = nt == 1 ? hw->tile.matvec_rows : hw->tile.rows;
                for (size_t r = 0; r < rows; r += step) {
                    size_t nr = rows - r < step ? rows - r : step;
                    hw->tile.fn(w + r * n, n * 2, nr, x, n * 2, nt, n, out + r, rows);
                }
                for (size_t t = 0; t < nt; t++)
                    for (size_t r = 0; r < rows; r++) {
                        float want = finch_bf16_dot_ref(w + r * n, x + t * n, n), got = out[t * rows + r];
                        if (isnan(want) && isnan(got)) continue;
                        if (finch_f32_bits(want) != finch_f32_bits(got))
                            fail_msg("n %zu class %d tokens %zu row %zu token %zu: %a, twin %a", n, cls, nt, r, t,
                                     got, want);
                    }
                free(w);
                free(x);
            }
}

/* AVX2 (FMA under MXCSR's DAZ and FTZ) and AVX-512 BF16 (vdpbf16ps). */
static void test_tile_vs_twin(void **state) {
    (void)state;
    size_t tested = 0;
    for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
        const finch_bf16_dot *hw = dot_of(simd_isas[i]);
        if (!hw) continue;
        check_tile_vs_twin(hw);
        tested++;
    }
    if (!tested) skip();
}

/* One product of n tokens on `threads` threads (0: no pool). */
static float *product(const finch_weight *w, const float *x, size_t n, size_t threads) {
    float *out = malloc(n * w->rows * sizeof(float));
    assert_non_null(out);
    finch_pool *pool = NULL;
    if (threads) assert_ok(finch_pool_new(threads, &pool));
    assert_ok(finch_matmul(pool, out, x, n, w));
    finch_pool_free(pool);
    return out;
}

/* finch_matmul on BF16: scalar, AVX2 and AVX-512 (BF16) agree bit for bit, for
 * 1 to 3 threads and any batch; within BF16_NMSE of the reference; the
 * fp32 arithmetic stays reachable and is the reference on the scalar ISA. */
static void test_matmul_bf16(void **state) {
    (void)state;
    rng_seed(23);
    const size_t rows = 77, cols = 300, n = 40;
    finch_weight w = make_weight(FINCH_BF16, rows, cols);
    float *x = random_floats(n * cols), *ref = malloc(n * rows * sizeof(float));
    assert_non_null(ref);
    finch_matmul_ref(ref, x, n, &w);
    assert_true(finch_isa_set(FINCH_ISA_SCALAR));
    float *scalar = product(&w, x, n, 0);
    assert_true(test_nmse(scalar, ref, n * rows) <= BF16_NMSE);
    assert_true(test_nmse(scalar, ref, n * rows) > 0); /* the activations were rounded */
    assert_true(finch_matmul_rows_agree(&w, n, 1));
    bool hw = hw_dot() != NULL;
    for (size_t i = 0, threads = 0; i < 2 * 4; i++, threads = i % 4) {
        if (!dot_of(simd_isas[i / 4])) continue;
        assert_true(finch_isa_set(simd_isas[i / 4]));
        assert_true(finch_matmul_rows_agree(&w, n, 1));
        float *all = product(&w, x, n, threads);
        assert_memory_equal(all, scalar, n * rows * sizeof(float));
        for (size_t t = 0; t < n; t += 13) { /* one token: the matvec tile */
            float *one = product(&w, x + t * cols, 1, threads);
            assert_memory_equal(one, scalar + t * rows, rows * sizeof(float));
            free(one);
        }
        free(all);
    }
    finch_set_quant_math(FINCH_QUANT_MATH_FP32); /* the f32 kernels again */
    assert_true(finch_isa_set(FINCH_ISA_SCALAR));
    float *f32 = product(&w, x, n, 0);
    assert_memory_equal(f32, ref, n * rows * sizeof(float));
    if (hw) {
        assert_true(finch_isa_set(FINCH_ISA_AVX512));
        assert_false(finch_matmul_rows_agree(&w, n, 1)); /* packed GEMM vs tiles */
    }
    free(f32);
    free(scalar);
    free(ref);
    free(x);
    free((void *)w.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_act_to_bf16, teardown),
        cmocka_unit_test_teardown(test_dot_ref_values, teardown),
        cmocka_unit_test_teardown(test_tile_vs_twin, teardown),
        cmocka_unit_test_teardown(test_matmul_bf16, teardown),
    };
    return cmocka_run_group_tests_name("kernels-bf16", tests, NULL, NULL);
}
