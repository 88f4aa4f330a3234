/* bench_wpack_k.c - decode's K-quant matvec, one thread: the packed
 * 16-row groups (kernels_quant_kpack_x86.h with and without VNNI, _avx2.h)
 * against the row-major 8-row kernel (vec_dotr of the VNNI table,
 * kernels_quant_krows_x86.h) on the same random Q4_K, Q5_K and Q6_K
 * matrices of TinyLlama's shapes, alternated, enough copies (>= 256 MiB)
 * that the weights come from DRAM.  GB/s of weights; the outputs are
 * checked equal bit for bit.  Numbers only (make bench-kernels); skipped
 * without AVX-512 VNNI.  FINCH_BENCH_MIB=N: N MiB of copies (1: L3). */
#include "kernelutil.h"
#include "kernels_internal.h"
#include "kernels_wpack_k.h"

#include <string.h>

enum { REPS = 7 };

typedef struct {
    finch_dtype t;
    size_t rows, cols, rb, copies;
    uint8_t **plain, **packed;
    void *x;
} matvec_case;

/* variant 0: row-major vec_dotr; packed: 1 VNNI, 2 plain AVX-512, 3 AVX2 */
static double run_once(const matvec_case *c, int variant, float *out) {
    const finch_kernels *k = variant == 1   ? &finch_kernels_avx512_vnni
                             : variant == 2 ? &finch_kernels_avx512
                                            : &finch_kernels_avx2;
    finch_vec_dotp_fn dotp = k->vec_dotp[c->t];
    finch_vec_dotr_fn dotr = finch_kernels_avx512_vnni.vec_dotr[c->t];
    double t0 = finch_now();
    for (size_t i = 0; i < c->copies; i++) {
        if (variant == 0) {
            dotr(c->plain[i], c->rb, c->rows, c->x, c->cols, out);
            continue;
        }
        for (size_t g = 0; g < c->rows / FINCH_WPACK_ROWS; g++)
            dotp(c->packed[i] + g * FINCH_WPACK_ROWS * c->rb, c->cols, c->x, out + g * FINCH_WPACK_ROWS);
    }
    return (finch_now() - t0) / (double)c->copies;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_case(finch_dtype t, size_t rows, size_t cols) {
    matvec_case c = {t, rows, cols, finch_row_bytes(t, cols), 0, NULL, NULL, NULL};
    size_t bytes = rows * c.rb;
    const char *mib = getenv("FINCH_BENCH_MIB"); /* 1: the weights stay in the cache */
    c.copies = ((size_t)(mib && atoi(mib) > 0 ? atoi(mib) : 256) << 20) / bytes + 1;
    c.plain = malloc(c.copies * sizeof *c.plain), c.packed = malloc(c.copies * sizeof *c.packed);
    assert_non_null(c.plain), assert_non_null(c.packed);
    finch_weight w = random_qweight(t, rows, cols);
    uint8_t *tmp = malloc(FINCH_WPACK_ROWS * c.rb);
    assert_non_null(tmp);
    for (size_t i = 0; i < c.copies; i++) {
        c.plain[i] = malloc(bytes), c.packed[i] = malloc(bytes);
        assert_non_null(c.plain[i]), assert_non_null(c.packed[i]);
        memcpy(c.plain[i], w.data, bytes), memcpy(c.packed[i], w.data, bytes);
        for (size_t g = 0; g < rows / FINCH_WPACK_ROWS; g++)
            finch_wpack_k_group(t, c.packed[i] + g * FINCH_WPACK_ROWS * c.rb, cols, tmp);
    }
    float *x = random_floats(cols), *o1 = malloc(rows * sizeof(float)), *o2 = malloc(rows * sizeof(float));
    assert_non_null(o1), assert_non_null(o2);
    c.x = malloc(finch_row_bytes(FINCH_Q8_K, cols));
    finch_quantize_act(FINCH_Q8_K, x, c.x, cols);
    static const char *names[4] = {"row-major 8 (vnni)", "packed 16 (vnni)", "packed 16 (avx512)", "packed 16 (avx2)"};
    run_once(&c, 0, o1);
    for (int p = 1; p < 4; p++) {
        run_once(&c, p, o2);
        assert_memory_equal(o1, o2, rows * sizeof(float));
    }
    double dt[4][REPS];
    for (int rep = 0; rep < REPS; rep++)
        for (int p = 0; p < 4; p++) dt[p][rep] = run_once(&c, p, p ? o2 : o1);
    for (int p = 0; p < 4; p++) {
        qsort(dt[p], REPS, sizeof(double), cmp_double);
        fprintf(stderr, "bench decode 1 thread %-4s %5zux%-5zu %-19s best %6.3f ms %5.1f GB/s, median %6.3f ms %5.1f GB/s\n",
                finch_dtype_name(t), rows, cols, names[p], dt[p][0] * 1e3,
                bytes / dt[p][0] * 1e-9, dt[p][REPS / 2] * 1e3, bytes / dt[p][REPS / 2] * 1e-9);
    }
    for (size_t i = 0; i < c.copies; i++) free(c.plain[i]), free(c.packed[i]);
    free(c.plain), free(c.packed), free(tmp), free((void *)w.data), free(x), free(o1), free(o2), free(c.x);
}

static void test_bench(void **state) {
    (void)state;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vnni")) skip();
    rng_seed(1);
    static const finch_dtype types[] = {FINCH_Q4_K, FINCH_Q6_K, FINCH_Q5_K};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        bench_case(types[i], 5632, 2048);
        bench_case(types[i], 2048, 5632);
    }
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest bench[] = {cmocka_unit_test(test_bench)};
    return cmocka_run_group_tests_name("wpack-k-bench", bench, NULL, NULL);
}
