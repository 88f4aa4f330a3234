/* test_kernels.c - every kernel path against the scalar reference, thread
 * determinism, the elementwise ops against double precision, the pool.
 *
 * Error metric for matmuls: normalised MSE over the whole output,
 *     NMSE = sum (out - ref)^2 / sum ref^2      (test_nmse in testutil.h)
 * where ref is finch_matmul_ref on the same stored weights.  Bounds:
 *   F32, F16, BF16: 1e-7  - the weights are the same values on both sides,
 *                           only the summation order differs;
 *   Q8_0:           1e-4  - finch_matmul also quantizes the activations to
 *                           Q8_0 (relative step 1/254 of each block's max),
 *                           which the reference does not.
 *
 * FINCH_TEST_VERBOSE=1 prints the worst NMSE per ISA and dtype;
 * FINCH_BENCH=1 (make bench) runs only a small benchmark; no timing is
 * ever asserted. */
#include "testutil.h"

#include <stdatomic.h>
#include <time.h>

#include "kernels.h"
#include "kernels_internal.h" /* the per-ISA quantizer */

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { /* splitmix64 scramble: small seeds are fine */
    s += 0x9E3779B97F4A7C15ULL;
    s = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9ULL;
    s = (s ^ (s >> 27)) * 0x94D049BB133111EBULL;
    rng_state = (s ^ (s >> 31)) | 1;
}
static uint64_t rng_next(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static float rng_uniform(void) { /* [-1, 1) */
    return (float)((double)(rng_next() >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
}
static float *random_floats(size_t n) {
    float *v = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform();
    return v;
}

/* A random weight stored as `type` (owned: free w.data). */
static finch_weight make_weight(finch_dtype type, size_t rows, size_t cols) {
    size_t rb = finch_row_bytes(type, cols);
    assert_true(rb > 0);
    void *data = malloc(rows * rb);
    assert_non_null(data);
    float *row = random_floats(cols);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) row[c] = rng_uniform();
        finch_row_from_f32(type, row, (char *)data + r * rb, cols);
    }
    free(row);
    return (finch_weight){data, type, rows, cols};
}

static const finch_dtype all_types[] = {FINCH_F32, FINCH_F16, FINCH_BF16, FINCH_Q8_0};
#define N_TYPES (sizeof all_types / sizeof all_types[0])
static const finch_isa all_isas[] = {FINCH_ISA_SCALAR, FINCH_ISA_AVX2, FINCH_ISA_AVX512,
                                     FINCH_ISA_NEON};
#define N_ISAS (sizeof all_isas / sizeof all_isas[0])

static double bound_for(finch_dtype t) { return t == FINCH_Q8_0 ? 1e-4 : 1e-7; }

static bool verbose(void) {
    const char *v = getenv("FINCH_TEST_VERBOSE");
    return v && *v && *v != '0';
}

/* Every test leaves the defaults behind it. */
static int restore_defaults(void **state) {
    (void)state;
    finch_isa_set(finch_isa_detect());
    finch_set_use_blas(true);
    return 0;
}

/* ---------------------------------------------------------------------- ISA */

static void test_isa_dispatch(void **state) {
    (void)state;
    finch_isa best = finch_isa_detect();
    assert_true(finch_isa_set(best));
    assert_int_equal(finch_isa_current(), best);
    assert_true(finch_isa_set(FINCH_ISA_SCALAR));
    assert_int_equal(finch_isa_current(), FINCH_ISA_SCALAR);
    for (size_t i = 0; i < N_ISAS; i++) assert_non_null(finch_isa_name(all_isas[i]));
    assert_string_equal(finch_isa_name(FINCH_ISA_AVX512), "avx512");
#if defined(__x86_64__)
    assert_false(finch_isa_set(FINCH_ISA_NEON));
    assert_int_equal(finch_isa_current(), FINCH_ISA_SCALAR); /* unchanged */
    assert_true(best == FINCH_ISA_AVX512 || best == FINCH_ISA_AVX2 || best == FINCH_ISA_SCALAR);
#elif defined(__aarch64__)
    assert_false(finch_isa_set(FINCH_ISA_AVX2));
    assert_false(finch_isa_set(FINCH_ISA_AVX512));
    assert_int_equal(best, FINCH_ISA_NEON);
#endif
    assert_false(finch_isa_set((finch_isa)42));
    if (verbose()) fprintf(stderr, "isa: detected %s\n", finch_isa_name(best));
}

/* ---------------------------------------------------------- matmul vs ref */

typedef struct {
    size_t rows, cols;
} shape;

/* Rows never a multiple of the 4-row tile; cols exact multiples of every
 * vector width, and (for the float types) tails shorter than one vector. */
static const shape shapes[] = {{13, 32}, {37, 96}, {21, 4096 + 32}, {6, 37}, {5, 3}};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])
static const size_t token_counts[] = {1, 7, 64};
#define N_TOKENS (sizeof token_counts / sizeof token_counts[0])

/* One comparison; returns the NMSE (and fails past the bound). */
static double check_matmul(finch_pool *pool, const finch_weight *w, size_t n, const char *what) {
    float *x = random_floats(n * w->cols);
    float *out = malloc(n * w->rows * sizeof(float)), *ref = malloc(n * w->rows * sizeof(float));
    assert_non_null(out);
    assert_non_null(ref);
    assert_ok(finch_matmul(pool, out, x, n, w));
    finch_matmul_ref(ref, x, n, w);
    double e = test_nmse(out, ref, n * w->rows);
    if (!(e <= bound_for(w->type)))
        fail_msg("%s: %s %zux%zu n=%zu: nmse %.3g > %.1g", what, finch_dtype_name(w->type),
                 w->rows, w->cols, n, e, bound_for(w->type));
    free(x);
    free(out);
    free(ref);
    return e;
}

static void test_matmul_vs_ref(void **state) {
    (void)state;
    finch_pool *pool;
    assert_ok(finch_pool_new(2, &pool));
    finch_set_use_blas(false); /* our own kernels here; BLAS has its own test */
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        for (size_t d = 0; d < N_TYPES; d++) {
            double worst = 0;
            for (size_t s = 0; s < N_SHAPES; s++) {
                if (all_types[d] == FINCH_Q8_0 && shapes[s].cols % FINCH_QK8_0) continue;
                rng_seed(1000 + 10 * d + s); /* the same data for every ISA */
                finch_weight w = make_weight(all_types[d], shapes[s].rows, shapes[s].cols);
                for (size_t k = 0; k < N_TOKENS; k++) {
                    double e = check_matmul(pool, &w, token_counts[k], finch_isa_name(all_isas[i]));
                    if (e > worst) worst = e;
                }
                free((void *)w.data);
            }
            if (verbose())
                fprintf(stderr, "matmul %-6s %-4s max nmse %.3g (bound %.0e)\n",
                        finch_isa_name(all_isas[i]), finch_dtype_name(all_types[d]), worst,
                        bound_for(all_types[d]));
        }
    }
    finch_pool_free(pool);
}

static void test_blas_vs_ref(void **state) {
    (void)state;
    if (!finch_blas_available()) SKIP_MSG("built without BLAS");
    finch_pool *pool;
    assert_ok(finch_pool_new(2, &pool));
    finch_set_use_blas(true);
    rng_seed(99);
    double worst = 0;
    for (size_t s = 0; s < N_SHAPES; s++) {
        finch_weight w = make_weight(FINCH_F32, shapes[s].rows, shapes[s].cols);
        for (size_t k = 0; k < N_TOKENS; k++) {
            double e = check_matmul(pool, &w, token_counts[k], "blas");
            if (e > worst) worst = e;
        }
        free((void *)w.data);
    }
    /* More rows than one BLAS block, not a multiple of it. */
    finch_weight w = make_weight(FINCH_F32, 203, 256);
    double e = check_matmul(pool, &w, 9, "blas");
    if (e > worst) worst = e;
    free((void *)w.data);
    if (verbose()) fprintf(stderr, "matmul blas   f32  max nmse %.3g (bound 1e-07)\n", worst);
    finch_pool_free(pool);
}

/* The scalar path is the reference's arithmetic: equal bit for bit. */
static void test_scalar_is_ref(void **state) {
    (void)state;
    finch_set_use_blas(false);
    assert_true(finch_isa_set(FINCH_ISA_SCALAR));
    rng_seed(5);
    const finch_dtype types[] = {FINCH_F32, FINCH_F16, FINCH_BF16};
    for (size_t d = 0; d < 3; d++) {
        finch_weight w = make_weight(types[d], 11, 100);
        float *x = random_floats(5 * 100), out[5 * 11], ref[5 * 11];
        assert_ok(finch_matmul(NULL, out, x, 5, &w));
        finch_matmul_ref(ref, x, 5, &w);
        assert_memory_equal(out, ref, sizeof out);
        free(x);
        free((void *)w.data);
    }
}

/* Our kernels compute each output the same way whatever the batch: row t
 * of an n-token product equals the 1-token product of x[t] bit for bit
 * (n = 2 and 11 cover every short token tile of every ISA). */
static void test_batch_invariance(void **state) {
    (void)state;
    finch_set_use_blas(false);
    rng_seed(77);
    const size_t rows = 30, cols = 4096 + 32 + 16;
    const size_t batches[] = {2, 11};
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        for (size_t d = 0; d < N_TYPES; d++) {
            size_t c = all_types[d] == FINCH_Q8_0 ? cols - 16 : cols;
            finch_weight w = make_weight(all_types[d], rows, c);
            for (size_t b = 0; b < 2; b++) {
                size_t n = batches[b];
                float *x = random_floats(n * c), *all = malloc(n * rows * sizeof(float));
                float one[30];
                assert_non_null(all);
                assert_ok(finch_matmul(NULL, all, x, n, &w));
                for (size_t t = 0; t < n; t++) {
                    assert_ok(finch_matmul(NULL, one, x + t * c, 1, &w));
                    if (memcmp(one, all + t * rows, sizeof one) != 0)
                        fail_msg("%s %s: token %zu differs between n=1 and n=%zu",
                                 finch_isa_name(all_isas[i]), finch_dtype_name(all_types[d]), t, n);
                }
                free(x);
                free(all);
            }
            free((void *)w.data);
        }
    }
}

/* Every ISA's activation quantizer gives the bits of finch_row_from_f32,
 * ties (x/d exactly k + 1/2) included. */
static void test_quantize_q8_0(void **state) {
    (void)state;
    enum { N = 32 * 70 };
    float *x = malloc(N * sizeof(float));
    finch_block_q8_0 want[N / 32], got[N / 32];
    assert_non_null(x);
    rng_seed(8);
    for (size_t i = 0; i < N; i++) x[i] = rng_uniform() * (float)(1 + i % 7);
    /* Blocks with max|x| = 127 (so d = 1) holding exact halves, one all
     * zero, one with a lone negative maximum, one tiny. */
    for (size_t i = 0; i < 32; i++) x[i] = (i == 0) ? 127.0f : (float)((int)i * 4 - 64) + 0.5f;
    for (size_t i = 32; i < 64; i++) x[i] = 0.0f;
    for (size_t i = 64; i < 96; i++) x[i] = (i == 70) ? -3.0f : 0.25f * (float)(i % 5);
    for (size_t i = 96; i < 128; i++) x[i] *= 1e-6f;
    finch_row_from_f32(FINCH_Q8_0, x, want, N);
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        memset(got, 0x55, sizeof got);
        finch_kernels_get()->quantize_q8_0(x, got, N);
        for (size_t b = 0; b < N / 32; b++)
            if (memcmp(&want[b], &got[b], sizeof want[b]) != 0)
                fail_msg("%s: q8_0 block %zu differs from finch_row_from_f32",
                         finch_isa_name(all_isas[i]), b);
    }
    free(x);
}

/* ------------------------------------------------------ thread determinism */

static void test_threads_bit_identical(void **state) {
    (void)state;
    finch_pool *pools[4];
    for (size_t p = 0; p < 4; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    rng_seed(4242);
    const size_t rows = 203, cols = 4096 + 32; /* many tasks, a short last one */
    for (int blas = 0; blas <= (finch_blas_available() ? 1 : 0); blas++) {
        finch_set_use_blas(blas);
        for (size_t i = 0; i < N_ISAS; i++) {
            if (!finch_isa_set(all_isas[i])) continue;
            for (size_t d = 0; d < N_TYPES; d++) {
                if (blas && all_types[d] != FINCH_F32) continue;
                finch_weight w = make_weight(all_types[d], rows, cols);
                for (size_t k = 0; k < N_TOKENS; k++) {
                    size_t n = token_counts[k];
                    float *x = random_floats(n * cols);
                    float *first = malloc(n * rows * sizeof(float));
                    float *out = malloc(n * rows * sizeof(float));
                    assert_non_null(first);
                    assert_non_null(out);
                    assert_ok(finch_matmul(pools[0], first, x, n, &w));
                    for (size_t p = 1; p < 4; p++) {
                        /* Twice per pool: scheduling differs from run to run. */
                        for (int rep = 0; rep < 2; rep++) {
                            memset(out, 0xff, n * rows * sizeof(float));
                            assert_ok(finch_matmul(pools[p], out, x, n, &w));
                            if (memcmp(first, out, n * rows * sizeof(float)) != 0)
                                fail_msg("%s %s n=%zu blas=%d: %zu threads differ from 1",
                                         finch_isa_name(all_isas[i]),
                                         finch_dtype_name(all_types[d]), n, blas, p + 1);
                        }
                    }
                    free(x);
                    free(first);
                    free(out);
                }
                free((void *)w.data);
            }
        }
    }
    for (size_t p = 0; p < 4; p++) finch_pool_free(pools[p]);
}

static void test_matmul_errors(void **state) {
    (void)state;
    float x[40] = {0}, out[4];
    int8_t buf[64] = {0};
    finch_weight w = {buf, FINCH_Q8_0, 1, 40};
    assert_int_equal(finch_matmul(NULL, out, x, 1, &w), FINCH_ERR_FORMAT);
    w.type = (finch_dtype)7;
    assert_int_equal(finch_matmul(NULL, out, x, 1, &w), FINCH_ERR_UNSUPPORTED);
    w = (finch_weight){NULL, FINCH_F32, 4, 8};
    assert_int_equal(finch_matmul(NULL, out, x, 1, &w), FINCH_ERR_ARG);
    /* Empty shapes are fine and write nothing (or zeros for cols == 0). */
    w = (finch_weight){buf, FINCH_F32, 4, 0};
    memset(out, 0xff, sizeof out);
    assert_ok(finch_matmul(NULL, out, x, 1, &w));
    for (size_t i = 0; i < 4; i++) assert_true(out[i] == 0.0f);
    assert_ok(finch_matmul(NULL, out, x, 0, &w));
}

/* ------------------------------------------------------------ elementwise */

static const size_t vec_sizes[] = {1, 3, 5, 16, 17, 33, 2048, 4099};
#define N_VEC (sizeof vec_sizes / sizeof vec_sizes[0])

static void test_elementwise(void **state) {
    (void)state;
    rng_seed(31337);
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        for (size_t s = 0; s < N_VEC; s++) {
            size_t n = vec_sizes[s];
            float *x = random_floats(n), *y = random_floats(n), *w = random_floats(n);
            float *out = malloc(n * sizeof(float));
            assert_non_null(out);
            for (size_t k = 0; k < n; k++) x[k] *= 3.0f;

            /* dot: relative to sum |a*b| (the scale of the rounding error) */
            double dd = 0, da = 0;
            for (size_t k = 0; k < n; k++) {
                dd += (double)x[k] * y[k];
                da += fabs((double)x[k] * y[k]);
            }
            assert_true(fabs(finch_dot_f32(x, y, n) - dd) <= 1e-6 * da + 1e-30);

            /* rmsnorm, also in place */
            const float eps = 1e-5f;
            finch_rmsnorm(out, x, w, n, eps);
            double ss = 0;
            for (size_t k = 0; k < n; k++) ss += (double)x[k] * x[k];
            double inv = 1.0 / sqrt(ss / (double)n + eps);
            for (size_t k = 0; k < n; k++) {
                double e = (double)x[k] * inv * w[k];
                assert_true(fabs(out[k] - e) <= 1e-5 * (fabs(e) + 1e-3));
            }
            float *xc = malloc(n * sizeof(float));
            assert_non_null(xc);
            memcpy(xc, x, n * sizeof(float));
            finch_rmsnorm(xc, xc, w, n, eps);
            assert_memory_equal(xc, out, n * sizeof(float));

            /* silu_mul */
            memcpy(out, x, n * sizeof(float));
            finch_silu_mul(out, y, n);
            for (size_t k = 0; k < n; k++) {
                double g = x[k], e = g / (1.0 + exp(-g)) * y[k];
                assert_true(fabs(out[k] - e) <= 1e-6 * (fabs(e) + 1e-6));
            }

            /* softmax of large logits: max-subtraction keeps it finite */
            double mx = -INFINITY, sum = 0;
            for (size_t k = 0; k < n; k++) {
                out[k] = x[k] * 40.0f;
                if (out[k] > mx) mx = out[k];
            }
            for (size_t k = 0; k < n; k++) sum += exp((double)out[k] - mx);
            memcpy(xc, out, n * sizeof(float));
            finch_softmax(out, n);
            double total = 0;
            for (size_t k = 0; k < n; k++) {
                double e = exp((double)xc[k] - mx) / sum;
                assert_true(fabs(out[k] - e) <= 1e-5 * e + 1e-9);
                total += out[k];
            }
            assert_true(fabs(total - 1.0) < 1e-5);

            /* axpy */
            memcpy(out, y, n * sizeof(float));
            finch_axpy(out, 0.75f, x, n);
            for (size_t k = 0; k < n; k++) {
                double e = (double)y[k] + 0.75 * x[k];
                assert_true(fabs(out[k] - e) <= 1e-6 * (fabs(e) + 1.0));
            }
            free(x);
            free(y);
            free(w);
            free(out);
            free(xc);
        }
    }
    float one = 7.0f;
    finch_softmax(&one, 1);
    assert_true(one == 1.0f);
    finch_softmax(NULL, 0); /* no-op */
}

/* --------------------------------------------------------------- the pool */

typedef struct {
    atomic_uint *hits;
    atomic_size_t sum;
} count_job;

static void count_task(void *arg, size_t i) {
    count_job *j = arg;
    atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->sum, i);
}

static void test_pool(void **state) {
    (void)state;
    finch_pool *p;
    assert_ok(finch_pool_new(0, &p));
    assert_int_equal(finch_pool_threads(p), finch_num_cores());
    finch_pool_free(p);
    assert_int_equal(finch_pool_threads(NULL), 1);
    finch_pool_free(NULL);

    enum { MAX_TASKS = 1000 };
    atomic_uint hits[MAX_TASKS];
    for (size_t threads = 1; threads <= 5; threads++) {
        assert_ok(finch_pool_new(threads, &p));
        assert_int_equal(finch_pool_threads(p), threads);
        /* Back-to-back runs of varying size, some with sleeping workers. */
        for (size_t run = 0; run < 200; run++) {
            size_t n = (run * 37) % MAX_TASKS;
            if (run % 50 == 49) n = 0;
            count_job j = {hits, 0};
            for (size_t i = 0; i < MAX_TASKS; i++) atomic_init(&hits[i], 0);
            finch_pool_run(run % 3 == 2 ? NULL : p, n, count_task, &j);
            for (size_t i = 0; i < MAX_TASKS; i++) assert_int_equal(atomic_load(&hits[i]), i < n);
            assert_int_equal(atomic_load(&j.sum), n ? n * (n - 1) / 2 : 0);
            if (run % 67 == 0) { /* let the workers fall asleep */
                struct timespec ts = {0, 2 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        finch_pool_free(p);
    }
}

/* -------------------------------------------------------------- benchmark */

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

static void test_bench(void **state) {
    (void)state;
    size_t threads = 2;
    const char *tenv = getenv("FINCH_BENCH_THREADS");
    if (tenv && atoi(tenv) > 0) threads = (size_t)atoi(tenv);
    finch_pool *pool;
    assert_ok(finch_pool_new(threads, &pool));
    rng_seed(1);
    fprintf(stderr, "bench: %zu threads, isa %s\n", threads, finch_isa_name(finch_isa_current()));

    /* Prefill: x [512 x 2048] times W^T, W [2048 x 2048]. */
    {
        const size_t n = 512, rows = 2048, cols = 2048;
        float *x = random_floats(n * cols), *out = malloc(n * rows * sizeof(float));
        assert_non_null(out);
        for (size_t d = 0; d < N_TYPES; d++) {
            finch_weight w = make_weight(all_types[d], rows, cols);
            for (int blas = 1; blas >= 0; blas--) {
                if (blas && (!finch_blas_available() || all_types[d] != FINCH_F32)) continue;
                finch_set_use_blas(blas);
                double dt = bench_matmul(pool, &w, x, n, out);
                fprintf(stderr, "bench prefill %-4s %-4s 512x2048 @ 2048x2048: %7.2f ms %7.1f GFLOP/s\n",
                        finch_dtype_name(all_types[d]), blas ? "blas" : "own", dt * 1e3,
                        2.0 * n * rows * cols / dt * 1e-9);
            }
            free((void *)w.data);
        }
        free(x);
        free(out);
    }
    /* Decode: one token through W [2048 x 5632] (TinyLlama's down
     * projection), cycling through enough copies (>= 1 GiB) that they come
     * from DRAM as a real model's weights would, not from the L3 cache. */
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
            fprintf(stderr, "bench decode  %-4s matvec 2048x5632: %7.3f ms %6.1f GB/s of weights\n",
                    finch_dtype_name(all_types[d]), best * 1e3, bytes / best * 1e-9);
            for (size_t i = 0; i < copies; i++) free((void *)w[i].data);
            free(w);
        }
        free(x);
    }
    finch_set_use_blas(true);
    finch_pool_free(pool);
}

int main(void) {
    /* `make bench` runs the benchmark alone; the suite never times anything. */
    const char *b = getenv("FINCH_BENCH");
    if (b && *b && *b != '0') {
        const struct CMUnitTest bench[] = { cmocka_unit_test_teardown(test_bench, restore_defaults) };
        return cmocka_run_group_tests_name("kernels-bench", bench, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_isa_dispatch, restore_defaults),
        cmocka_unit_test_teardown(test_matmul_vs_ref, restore_defaults),
        cmocka_unit_test_teardown(test_blas_vs_ref, restore_defaults),
        cmocka_unit_test_teardown(test_scalar_is_ref, restore_defaults),
        cmocka_unit_test_teardown(test_batch_invariance, restore_defaults),
        cmocka_unit_test_teardown(test_quantize_q8_0, restore_defaults),
        cmocka_unit_test_teardown(test_threads_bit_identical, restore_defaults),
        cmocka_unit_test_teardown(test_matmul_errors, restore_defaults),
        cmocka_unit_test_teardown(test_elementwise, restore_defaults),
        cmocka_unit_test_teardown(test_pool, restore_defaults),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
