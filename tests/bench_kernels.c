/* bench_kernels.c - kernel throughput (make bench-kernels): prefill GFLOP/s
 * of a 512x2048 @ 2048x2048 matmul per stored type (own kernels and
 * OpenBLAS; Q4_K, Q5_K, Q6_K, Q4_0 and IQ4_XS too), decode GB/s of a 2048x5632 matvec streamed from DRAM beside a
 * plain streaming read by the same pool.  Numbers only: nothing is asserted
 * about time, so it is not one of the suites of `make test` (which builds
 * it, so that it keeps compiling).  FINCH_BENCH_THREADS=N sets the pool. */
#include "kernelutil.h"

#include <stdatomic.h>

static double bench_matmul(finch_pool *pool, const finch_weight *w, const float *x, size_t n,
                           float *out) {
    assert_ok(finch_matmul(pool, out, x, n, w)); /* warm up */
    double best = INFINITY, t_end = finch_now() + 1.0;
    int reps = 0;
    while (reps < 3 || finch_now() < t_end) {
        double t0 = finch_now();
        assert_ok(finch_matmul(pool, out, x, n, w));
        double dt = finch_now() - t0;
        if (dt < best) best = dt;
        reps++;
    }
    return best;
}

typedef struct {
    const uint64_t *const *buf;
    size_t chunk, per_buf; /* uint64 words per task, tasks per buffer */
    _Atomic uint64_t sink;
} stream_job;

/* Read one task's chunk as 8 interleaved streams (as the 8-row matvec
 * does), prefetching each 1 KiB ahead; AVX2 loads where the CPU has them
 * (so that only memory limits it), plain C elsewhere. */
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static uint64_t stream_avx2(const uint64_t *p, size_t len) {
    __m256i s[8];
    for (size_t r = 0; r < 8; r++) s[r] = _mm256_setzero_si256();
    for (size_t k = 0; k + 4 <= len; k += 4) {
        if (k % 8 == 0)
            for (size_t r = 0; r < 8; r++) __builtin_prefetch(p + r * len + k + 128, 0, 3);
        for (size_t r = 0; r < 8; r++)
            s[r] = _mm256_add_epi64(s[r], _mm256_loadu_si256((const __m256i *)(p + r * len + k)));
    }
    for (size_t r = 1; r < 8; r++) s[0] = _mm256_add_epi64(s[0], s[r]);
    return (uint64_t)_mm256_extract_epi64(s[0], 0);
}
#endif

static void stream_task(void *arg, size_t i) {
    stream_job *j = arg;
    const uint64_t *p = j->buf[i / j->per_buf] + (i % j->per_buf) * j->chunk;
    const size_t len = j->chunk / 8;
    uint64_t total = 0;
#if defined(__x86_64__)
    if (finch_isa_current() != FINCH_ISA_SCALAR) {
        atomic_fetch_add(&j->sink, stream_avx2(p, len));
        return;
    }
#endif
    for (size_t k = 0; k < len; k++)
        for (size_t r = 0; r < 8; r++) total += p[r * len + k];
    atomic_fetch_add(&j->sink, total);
}

/* GB/s of reading 1 GiB (16 buffers of 64 MiB, 256 KiB per task) with the
 * bench's pool, best of 8: the reference for the decode figures. */
static double bench_stream(finch_pool *pool) {
    enum { BUFS = 16 };
    const size_t words = (64u << 20) / sizeof(uint64_t), chunk = (256u << 10) / sizeof(uint64_t);
    uint64_t *buf[BUFS];
    for (size_t b = 0; b < BUFS; b++) {
        buf[b] = malloc(words * sizeof(uint64_t));
        assert_non_null(buf[b]);
        for (size_t i = 0; i < words; i++) buf[b][i] = i;
    }
    stream_job j = {(const uint64_t *const *)buf, chunk, words / chunk, 0};
    double best = INFINITY;
    for (int rep = 0; rep < 8; rep++) {
        double t0 = finch_now();
        finch_pool_run(pool, BUFS * j.per_buf, stream_task, &j);
        double dt = finch_now() - t0;
        if (dt < best) best = dt;
    }
    for (size_t b = 0; b < BUFS; b++) free(buf[b]);
    return (double)BUFS * words * sizeof(uint64_t) / best * 1e-9;
}

/* Prefill: x [512 x 2048] times W^T, W [2048 x 2048]. */
static void bench_prefill(finch_pool *pool) {
    const size_t n = 512, rows = 2048, cols = 2048;
    float *x = random_floats(n * cols), *out = malloc(n * rows * sizeof(float));
    assert_non_null(out);
    for (size_t d = 0; d < N_TYPES; d++) {
        finch_weight w = make_weight(all_types[d], rows, cols);
        for (int blas = 1; blas >= 0; blas--) {
            if (blas && (!finch_blas_available() || all_types[d] != FINCH_F32)) continue;
            finch_set_blas_mode(blas ? FINCH_BLAS_ALWAYS : FINCH_BLAS_NEVER);
            double dt = bench_matmul(pool, &w, x, n, out);
            fprintf(stderr, "bench prefill %-4s %-4s 512x2048 @ 2048x2048: %7.2f ms %7.1f GFLOP/s\n",
                    finch_dtype_name(all_types[d]), blas ? "blas" : "own", dt * 1e3,
                    2.0 * n * rows * cols / dt * 1e-9);
        }
        free((void *)w.data);
    }
    /* The other quantized types (random blocks): the quantized GEMM on
     * AVX-512 VNNI, the dot products elsewhere. */
    static const finch_dtype qtypes[] = {FINCH_Q4_K, FINCH_Q5_K, FINCH_Q6_K, FINCH_Q4_0, FINCH_IQ4_XS};
    for (size_t d = 0; d < sizeof qtypes / sizeof qtypes[0]; d++) {
        finch_weight w = random_qweight(qtypes[d], rows, cols);
        double dt = bench_matmul(pool, &w, x, n, out);
        fprintf(stderr, "bench prefill %-6s own  512x2048 @ 2048x2048: %7.2f ms %7.1f GFLOP/s\n",
                finch_dtype_name(qtypes[d]), dt * 1e3, 2.0 * n * rows * cols / dt * 1e-9);
        free((void *)w.data);
    }
    free(x);
    free(out);
}

static void test_bench(void **state) {
    (void)state;
    size_t threads = 2;
    const char *tenv = getenv("FINCH_BENCH_THREADS");
    if (tenv && atoi(tenv) > 0) threads = (size_t)atoi(tenv);
    finch_pool *pool;
    assert_ok(finch_pool_new(threads, &pool));
    rng_seed(1);
    fprintf(stderr, "bench: %zu threads, isa %s\n", threads, finch_isa_name(finch_isa_current()));

    bench_prefill(pool);
    /* Decode: one token through W [2048 x 5632] (TinyLlama's down
     * projection), cycling through enough copies (>= 1 GiB) that they come
     * from DRAM as a real model's weights would, not from the L3 cache.
     * The reference is a streaming read of 1 GiB by the same pool (the
     * bandwidth a shared machine gives varies from minute to minute). */
    double stream = bench_stream(pool);
    fprintf(stderr, "bench stream read (8 streams per task, same pool): %6.1f GB/s\n", stream);
    /* (measured again after the matvecs: the larger figure is the reference) */
    {
        const size_t rows = 2048, cols = 5632;
        float *x = random_floats(cols), out[2048];
        for (size_t d = 0; d < N_TYPES; d++) {
            double bytes = (double)rows * finch_row_bytes(all_types[d], cols);
            size_t copies = (size_t)((1u << 30) / bytes) + 1;
            finch_weight *w = malloc(copies * sizeof *w);
            assert_non_null(w);
            w[0] = make_weight(all_types[d], rows, cols);
            for (size_t i = 1; i < copies; i++) { /* same values, new memory */
                void *data = malloc((size_t)bytes);
                assert_non_null(data);
                memcpy(data, w[0].data, (size_t)bytes);
                w[i] = w[0];
                w[i].data = data;
            }
            double best = INFINITY;
            for (int rep = 0; rep < 8; rep++) {
                double t0 = finch_now();
                for (size_t i = 0; i < copies; i++) assert_ok(finch_matmul(pool, out, x, 1, &w[i]));
                double dt = (finch_now() - t0) / (double)copies;
                if (dt < best) best = dt;
            }
            fprintf(stderr, "bench decode  %-4s matvec 2048x5632: %7.3f ms %6.1f GB/s of weights (%.0f%% of the stream)\n",
                    finch_dtype_name(all_types[d]), best * 1e3, bytes / best * 1e-9,
                    100.0 * bytes / best * 1e-9 / stream);
            double again = bench_stream(pool);
            if (again > stream) stream = again;
            for (size_t i = 0; i < copies; i++) free((void *)w[i].data);
            free(w);
        }
        free(x);
    }
    finch_set_blas_mode(FINCH_BLAS_AUTO);
    finch_pool_free(pool);
}
int main(void) {
    const struct CMUnitTest bench[] = { cmocka_unit_test_teardown(test_bench, restore_defaults) };
    return cmocka_run_group_tests_name("kernels-bench", bench, NULL, NULL);
}
