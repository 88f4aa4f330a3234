/* test_wpack_k.c - the K-quants' packed 16-row groups (kernels_wpack_k.h):
 * pack then unpack gives the rows back byte for byte, and every packed
 * matvec (the scalar twin, AVX-512 with and without VNNI, AVX2)
 * gives the bits of finch_vec_dot_ref on each row: random blocks, extreme
 * quants, scales and mins, f16 d of both signs, zero and subnormal. */
#include "kernelutil.h"
#include "kernels_wpack_k.h"

#include <string.h>

#define ROWS FINCH_WPACK_ROWS

static const finch_dtype packed_types[] = {FINCH_Q4_K, FINCH_Q5_K, FINCH_Q6_K};
static const size_t test_cols[] = {256, 512, 256 * 11};

/* f16 scales worth testing: ordinary of both signs, zeros, subnormals,
 * the largest finite. */
static uint16_t pick_f16(void) {
    static const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x7BFF, 0xFBFF, 0x3C00};
    uint64_t r = rng_next() >> 33;
    if (r % 4 == 0) return special[(r / 4) % (sizeof special / sizeof *special)];
    float v = 0.002f + 0.01f * (rng_uniform() + 1.0f);
    return finch_f32_to_f16(r % 4 == 1 ? -v : v);
}

/* 16 rows of type t: mode 0 random bytes, 1 all bits set (largest quants,
 * scales and mins), 2 all clear, 3 random with every byte 0xFF or 0x00;
 * the f16 fields from pick_f16, except in mode 1 (0x7BFF: 65504). */
static uint8_t *random_rows(finch_dtype t, size_t cols, int mode) {
    const finch_quant_traits *q = finch_quant_traits_of(t);
    size_t nb = ROWS * cols / q->block;
    uint8_t *p = malloc(nb * q->bytes);
    assert_non_null(p);
    for (size_t i = 0; i < nb * q->bytes; i++) {
        uint8_t r = (uint8_t)(rng_next() >> 32);
        p[i] = mode == 0 ? r : mode == 1 ? 0xFF : mode == 2 ? 0 : (r & 1 ? 0xFF : 0);
    }
    for (size_t b = 0; b < nb; b++)
        for (size_t s = 0; s < q->n_scales; s++) {
            uint16_t h = mode == 1 ? 0x7BFF : pick_f16();
            memcpy(p + b * q->bytes + q->scale_off[s], &h, 2);
        }
    return p;
}

/* A token of cols values quantized to Q8_K: mode 1 all -1 (quants -128),
 * else random, with some huge and some zero values. */
static void *random_token(size_t cols, int mode) {
    float *x = random_floats(cols);
    for (size_t i = 0; i < cols; i++) {
        if (mode == 1) x[i] = -1.0f;
        else if (i % 37 == 5) x[i] *= 1e4f;
        else if (i % 41 == 7) x[i] = 0.0f;
    }
    void *xq = malloc(finch_row_bytes(FINCH_Q8_K, cols));
    assert_non_null(xq);
    finch_quantize_act(FINCH_Q8_K, x, xq, cols);
    free(x);
    return xq;
}

static void test_supported(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof packed_types / sizeof *packed_types; i++)
        assert_true(finch_wpack_k_supported(packed_types[i]));
    assert_false(finch_wpack_k_supported(FINCH_Q2_K));
    assert_false(finch_wpack_k_supported(FINCH_Q8_0));
    assert_false(finch_wpack_k_supported(FINCH_F32));
}

/* Pack in place, then unpack (the group, each row): the same bytes. */
static void test_roundtrip(void **state) {
    (void)state;
    rng_seed(18);
    for (size_t ti = 0; ti < sizeof packed_types / sizeof *packed_types; ti++)
        for (size_t ci = 0; ci < sizeof test_cols / sizeof *test_cols; ci++)
            for (int mode = 0; mode < 4; mode++) {
                finch_dtype t = packed_types[ti];
                size_t cols = test_cols[ci], rb = finch_row_bytes(t, cols);
                uint8_t *rows = random_rows(t, cols, mode), *g = malloc(ROWS * rb), *tmp = malloc(ROWS * rb),
                        *back = malloc(ROWS * rb);
                assert_non_null(g), assert_non_null(tmp), assert_non_null(back);
                memcpy(g, rows, ROWS * rb);
                finch_wpack_k_group(t, g, cols, tmp);
                if (mode == 0) assert_memory_not_equal(g, rows, ROWS * rb); /* it did move bytes */
                finch_wunpack_k_group(t, g, cols, back);
                assert_memory_equal(back, rows, ROWS * rb);
                for (size_t r = 0; r < ROWS; r++) {
                    memset(back, 0xA5, rb);
                    finch_wunpack_k_row(t, g, cols, r, back);
                    assert_memory_equal(back, rows + r * rb, rb);
                }
                free(rows), free(g), free(tmp), free(back);
            }
}

/* Every packed group of every type, cols and mode against each row's
 * finch_vec_dot_ref: out of table k's vec_dotp (or of the scalar twin when
 * k is NULL) bit for bit. */
static void check_kernels(const finch_kernels *k, uint64_t seed) {
    rng_seed(seed);
    for (size_t ti = 0; ti < sizeof packed_types / sizeof *packed_types; ti++)
        for (size_t ci = 0; ci < sizeof test_cols / sizeof *test_cols; ci++)
            for (int mode = 0; mode < 4; mode++) {
                finch_dtype t = packed_types[ti];
                size_t cols = test_cols[ci], rb = finch_row_bytes(t, cols);
                uint8_t *rows = random_rows(t, cols, mode), *g = malloc(ROWS * rb), *tmp = malloc(ROWS * rb);
                assert_non_null(g), assert_non_null(tmp);
                void *x = random_token(cols, mode == 1);
                memcpy(g, rows, ROWS * rb);
                finch_wpack_k_group(t, g, cols, tmp);
                float want[ROWS], got[ROWS];
                for (size_t r = 0; r < ROWS; r++) want[r] = finch_vec_dot_ref(t)(rows + r * rb, x, cols);
                if (k) {
                    finch_vec_dotp_fn fn = k->vec_dotp[t];
                    assert_non_null(fn);
                    fn(g, cols, x, got);
                } else {
                    finch_vec_dotp_k_ref(t, g, cols, x, got);
                }
                for (size_t r = 0; r < ROWS; r++)
                    if (memcmp(&want[r], &got[r], sizeof(float)) != 0)
                        fail_msg("%s cols=%zu mode=%d row %zu: %.9g, reference %.9g", finch_quant_traits_of(t)->name,
                                 cols, mode, r, (double)got[r], (double)want[r]);
                free(rows), free(g), free(tmp), free(x);
            }
}

static void test_ref_bits(void **state) {
    (void)state;
    check_kernels(NULL, 1);
}

static void test_avx512vnni_bits(void **state) {
    (void)state;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vnni")) skip();
    for (uint64_t seed = 2; seed < 5; seed++) check_kernels(&finch_kernels_avx512_vnni, seed);
#else
    skip();
#endif
}

static void test_avx512_bits(void **state) {
    (void)state;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
        skip();
    for (uint64_t seed = 5; seed < 7; seed++) check_kernels(&finch_kernels_avx512, seed);
#else
    skip();
#endif
}

static void test_avx2_bits(void **state) {
    (void)state;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c")) skip();
    for (uint64_t seed = 7; seed < 9; seed++) check_kernels(&finch_kernels_avx2, seed);
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supported),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_ref_bits),
        cmocka_unit_test(test_avx512vnni_bits),
        cmocka_unit_test(test_avx512_bits),
        cmocka_unit_test(test_avx2_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
