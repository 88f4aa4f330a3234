/* test_kernels.c - every kernel path against the scalar reference, thread
 * determinism, the elementwise ops against double precision.
 *
 * Error metric for matmuls: normalised MSE over the whole output,
 *     NMSE = sum (out - ref)^2 / sum ref^2      (test_nmse in testutil.h)
 * where ref is finch_matmul_ref on the same stored weights.  Bounds:
 *   F32, F16, BF16: 1e-7  - the weights are the same values on both sides,
 *                           only the summation order differs;
 *   Q8_0:           1e-4  - finch_matmul also quantizes the activations to
 *                           Q8_0 (relative step 1/254 of each block's max),
 *                           which the reference does not;
 *   BF16 in bf16 arithmetic (scalar, AVX-512 BF16; kernels_bf16.c):
 *                   1e-5  - the activations are rounded to bf16 (relative
 *                           error <= 2^-9; NMSE ~1.3e-6 for random data).
 *
 * The packed GEMM (prefill from FINCH_GEMM_MIN_TOKENS tokens, AVX-512) and
 * the tiles sum in different orders (kernels_internal.h); both are held to
 * these bounds, and each is tested for bit-identical results across thread
 * counts and batch sizes within its own regime.
 *
 * exp (softmax, SiLU): max relative error 1.2e-7 against double exp over
 * the range where the result is a normal float (measured ~8.4e-8, 1.4 ulp).
 * Attention: max |out - ref| <= 1e-5 * max |ref| against a double-precision
 * softmax(q k^T / sqrt(d)) v.
 *
 * FINCH_TEST_VERBOSE=1 prints the worst NMSE per ISA and dtype.  The thread
 * pool's own tests are in test_pool.c, the kernel benchmark (make
 * bench-kernels) in bench_kernels.c: no timing is ever asserted. */
#include "kernelutil.h"
#include "kernels_internal.h" /* the per-ISA quantizer */

/* ------------------------------------------------------------------ helpers */

static const finch_isa all_isas[] = {FINCH_ISA_SCALAR, FINCH_ISA_AVX2, FINCH_ISA_AVX512,
                                     FINCH_ISA_NEON};
#define N_ISAS (sizeof all_isas / sizeof all_isas[0])

static double bound_for(finch_dtype t) {
    if (t == FINCH_BF16 && finch_bf16_dot_for(finch_kernels_get())) return 1e-5; /* bf16 activations */
    return t == FINCH_Q8_0 ? 1e-4 : 1e-7;
}

static bool verbose(void) {
    const char *v = getenv("FINCH_TEST_VERBOSE");
    return v && *v && *v != '0';
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
    finch_set_blas_mode(FINCH_BLAS_NEVER); /* our own kernels here; BLAS has its own test */
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
    finch_set_blas_mode(FINCH_BLAS_ALWAYS);
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

/* The scalar path is the reference's arithmetic: equal bit for bit (BF16
 * in its fp32 arithmetic; its bf16 arithmetic: test_kernels_bf16.c). */
static void test_scalar_is_ref(void **state) {
    (void)state;
    finch_set_blas_mode(FINCH_BLAS_NEVER);
    finch_set_quant_math(FINCH_QUANT_MATH_FP32);
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

/* Row t of an n-token product equals the 1-token product of x[t] bit for
 * bit as long as both run the lane-order tiles (n < FINCH_GEMM_MIN_TOKENS:
 * n = 2, 5, 7 cover every short token tile of every ISA). */
static void check_tile_batches(const finch_weight *w, size_t rows, size_t c) {
    const size_t batches[] = {2, 5, FINCH_GEMM_MIN_TOKENS - 1};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        size_t n = batches[b];
        float *x = random_floats(n * c), *all = malloc(n * rows * sizeof(float));
        float one[30];
        assert_non_null(all);
        assert_ok(finch_matmul(NULL, all, x, n, w));
        for (size_t t = 0; t < n; t++) {
            assert_ok(finch_matmul(NULL, one, x + t * c, 1, w));
            if (memcmp(one, all + t * rows, sizeof one) != 0)
                fail_msg("%s %s: token %zu differs between n=1 and n=%zu",
                         finch_isa_name(finch_isa_current()), finch_dtype_name(w->type), t, n);
        }
        free(x);
        free(all);
    }
}

/* From FINCH_GEMM_MIN_TOKENS tokens on, every batch agrees with every other
 * (whatever the packed GEMM's token tiles and task blocks): the first n
 * rows of a 1100-token product (two tasks of about 512 tokens) equal the
 * n-token product. */
static void check_gemm_batches(const finch_weight *w, size_t rows, size_t c) {
    const size_t big = 1100, batches[] = {FINCH_GEMM_MIN_TOKENS, 13, 64};
    float *x = random_floats(big * c), *all = malloc(big * rows * sizeof(float));
    float *part = malloc(64 * rows * sizeof(float));
    assert_non_null(all);
    assert_non_null(part);
    assert_ok(finch_matmul(NULL, all, x, big, w));
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        size_t n = batches[b];
        assert_ok(finch_matmul(NULL, part, x, n, w));
        if (memcmp(part, all, n * rows * sizeof(float)) != 0)
            fail_msg("%s %s: n=%zu differs from the first rows of n=%zu",
                     finch_isa_name(finch_isa_current()), finch_dtype_name(w->type), n, big);
    }
    free(x);
    free(all);
    free(part);
}

static void test_batch_invariance(void **state) {
    (void)state;
    finch_set_blas_mode(FINCH_BLAS_NEVER);
    rng_seed(77);
    const size_t rows = 30, cols = 4096 + 32 + 16;
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        for (size_t d = 0; d < N_TYPES; d++) {
            size_t c = all_types[d] == FINCH_Q8_0 ? cols - 16 : cols;
            finch_weight w = make_weight(all_types[d], rows, c);
            check_tile_batches(&w, rows, c);
            check_gemm_batches(&w, rows, c);
            free((void *)w.data);
            if (all_types[d] == FINCH_Q8_0) continue;
            /* a last step of 7 columns: the tiles' masked tails */
            w = make_weight(all_types[d], rows, cols + 7);
            check_tile_batches(&w, rows, cols + 7);
            free((void *)w.data);
        }
    }
}

/* finch_matmul_rows_agree's promise: where it says a product of the last
 * `sub` tokens agrees with the whole batch, it does bit for bit; it says
 * so for no tokens and for the whole batch, and (packed GEMM) not across
 * the GEMM's smallest batch. */
static void check_rows_agree(const finch_weight *w, size_t rows, size_t c) {
    const size_t pairs[][2] = {{20, 0}, {20, 1}, {20, 7}, {20, 8}, {20, 12}, {20, 20}, {7, 3}, {530, 40}};
    float *x = random_floats(530 * c), *all = malloc(530 * rows * sizeof(float));
    float *part = malloc(40 * rows * sizeof(float));
    assert_non_null(all);
    assert_non_null(part);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t n = pairs[i][0], sub = pairs[i][1];
        if (sub == 0 || sub == n) assert_true(finch_matmul_rows_agree(w, n, sub));
        if (!finch_matmul_rows_agree(w, n, sub)) continue;
        assert_ok(finch_matmul(NULL, all, x, n, w));
        assert_ok(finch_matmul(NULL, part, x + (n - sub) * c, sub, w));
        if (memcmp(part, all + (n - sub) * rows, sub * rows * sizeof(float)) != 0)
            fail_msg("%s %s: the last %zu of %zu tokens alone differ", finch_isa_name(finch_isa_current()),
                     finch_dtype_name(w->type), sub, n);
    }
    free(x);
    free(all);
    free(part);
}

static void test_rows_agree(void **state) {
    (void)state;
    rng_seed(78);
    const size_t rows = 30, cols = 256 + 32;
    const finch_blas_mode modes[] = {FINCH_BLAS_NEVER, FINCH_BLAS_AUTO, FINCH_BLAS_ALWAYS};
    for (size_t b = 0; b < (finch_blas_available() ? 3u : 1u); b++) {
        finch_set_blas_mode(modes[b]);
        for (size_t i = 0; i < N_ISAS; i++) {
            if (!finch_isa_set(all_isas[i])) continue;
            for (size_t d = 0; d < N_TYPES; d++) {
                finch_weight w = make_weight(all_types[d], rows, cols);
                check_rows_agree(&w, rows, cols);
                if (all_isas[i] == FINCH_ISA_AVX512 && modes[b] == FINCH_BLAS_NEVER && all_types[d] == FINCH_F32) {
                    assert_false(finch_matmul_rows_agree(&w, 20, 7)); /* tiles against the packed GEMM */
                    assert_true(finch_matmul_rows_agree(&w, 20, 8));
                }
                if (all_types[d] == FINCH_Q8_0) /* decode's tiles against prefill's quantized GEMM */
                    assert_true(finch_matmul_rows_agree(&w, 20, 1) ==
                                !finch_qgemm_runs(finch_kernels_get(), FINCH_Q8_0, 20));
                free((void *)w.data);
            }
        }
    }
}

/* The VNNI Q8_0 tile gives the plain AVX-512 tile's bits (both integer lane
 * sums are exact), for every row and token count of a tile. */
static void test_q8_0_vnni(void **state) {
    (void)state;
#if defined(__x86_64__)
    if (!finch_isa_set(FINCH_ISA_AVX512) || finch_kernels_get() != &finch_kernels_avx512_vnni)
        SKIP_MSG("no AVX-512 VNNI here");
    enum { COLS = 32 * 67, ROWS = 8, TOK = 6 }; /* an odd number of blocks */
    rng_seed(9);
    finch_weight w = make_weight(FINCH_Q8_0, ROWS, COLS);
    size_t rb = finch_row_bytes(FINCH_Q8_0, COLS);
    float *x = random_floats(TOK * COLS);
    char *xq = malloc(TOK * rb);
    assert_non_null(xq);
    for (size_t t = 0; t < TOK; t++) finch_row_from_f32(FINCH_Q8_0, x + t * COLS, xq + t * rb, COLS);
    const finch_tile *plain = &finch_kernels_avx512.tile_q8_0;
    /* Pass 1 adds the extremes: weight quants of -128 (which no
     * quantizer writes but a file may hold; the VNNI tile shifts the
     * weights by 128) and 127 against activations of +-127. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            finch_block_q8_0 *wb = (finch_block_q8_0 *)w.data, *xb = (finch_block_q8_0 *)xq;
            for (size_t i = 0; i < ROWS * COLS / 32; i++)
                for (size_t k = 0; k < 32; k += 3) wb[i].qs[k] = (int8_t)(k % 2 ? 127 : -128);
            for (size_t i = 0; i < TOK * COLS / 32; i++)
                for (size_t k = 0; k < 32; k += 5) xb[i].qs[k] = (int8_t)(k % 2 ? -127 : 127);
        }
        for (size_t nt = 1; nt <= TOK; nt++)
            for (size_t nr = 1; nr <= (nt == 1 ? plain->matvec_rows : plain->rows); nr++) {
                float a[ROWS * TOK], b[ROWS * TOK];
                memset(a, 0, sizeof a);
                memset(b, 0, sizeof b);
                finch_kernels_avx512.tile_q8_0.fn(w.data, rb, nr, xq, rb, nt, COLS, a, ROWS);
                finch_kernels_avx512_vnni.tile_q8_0.fn(w.data, rb, nr, xq, rb, nt, COLS, b, ROWS);
                if (memcmp(a, b, sizeof a) != 0) fail_msg("vnni differs: nr=%zu nt=%zu pass %d", nr, nt, pass);
            }
    }
    free(x);
    free(xq);
    free((void *)w.data);
#else
    SKIP_MSG("x86-64 only");
#endif
}

/* Every ISA's activation quantizer gives the bits of finch_quantize_act,
 * ties (x * 127/max exactly k + 1/2, rounded to even) included. */
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
    finch_quantize_act(FINCH_Q8_0, x, want, N);
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        memset(got, 0x55, sizeof got);
        finch_kernels_get()->quantize_q8_0(x, got, N);
        for (size_t b = 0; b < N / 32; b++)
            if (memcmp(&want[b], &got[b], sizeof want[b]) != 0)
                fail_msg("%s: q8_0 block %zu differs from finch_quantize_act",
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
        finch_set_blas_mode(blas ? FINCH_BLAS_ALWAYS : FINCH_BLAS_NEVER);
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

/* finch_matmul_many gives every product finch_matmul's bits, whatever the
 * thread count: q/k/v-like shapes (one wide, two narrow), one type or two. */
static void check_many(finch_pool *const pools[4], const finch_weight w[3], size_t n,
                       const char *what) {
    size_t cols = w[0].cols, total = 0;
    for (size_t i = 0; i < 3; i++) total += n * w[i].rows;
    float *x = random_floats(n * cols);
    float *want = malloc(total * sizeof(float)), *got = malloc(total * sizeof(float));
    assert_non_null(want);
    assert_non_null(got);
    float *want_i[3], *got_i[3];
    const finch_weight *wp[3] = {&w[0], &w[1], &w[2]};
    for (size_t i = 0, off = 0; i < 3; off += n * w[i].rows, i++) {
        want_i[i] = want + off;
        got_i[i] = got + off;
        assert_ok(finch_matmul(pools[0], want_i[i], x, n, &w[i]));
    }
    for (size_t p = 0; p < 4; p++) {
        memset(got, 0xff, total * sizeof(float));
        assert_ok(finch_matmul_many(pools[p], 3, got_i, x, n, wp));
        if (memcmp(want, got, total * sizeof(float)) != 0)
            fail_msg("%s n=%zu: matmul_many on %zu threads differs from matmul", what, n, p + 1);
    }
    free(x);
    free(want);
    free(got);
}

static void test_matmul_many(void **state) {
    (void)state;
    finch_pool *pools[4];
    for (size_t p = 0; p < 4; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    rng_seed(777);
    const size_t cols = 1024 + 32;
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        for (size_t d = 0; d < N_TYPES; d++) {
            finch_dtype other = all_types[(d + 1) % N_TYPES];
            finch_weight w[3] = {make_weight(all_types[d], 203, cols),
                                 make_weight(all_types[d], 64, cols), make_weight(other, 37, cols)};
            for (size_t k = 0; k < N_TOKENS; k++)
                check_many(pools, w, token_counts[k], finch_isa_name(all_isas[i]));
            for (size_t j = 0; j < 3; j++) free((void *)w[j].data);
        }
    }
    /* Types with their own driver (the other quantized types, and Q8_0 in
     * fp32 arithmetic: dot products, or the quantized GEMM for prefill)
     * run in the same pool run: still finch_matmul's bits, on every ISA. */
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        finch_set_quant_math(FINCH_QUANT_MATH_FP32);
        for (int pass = 0; pass < 2; pass++) {
            finch_weight w[3] = {make_weight(FINCH_Q8_0, 203, 1024), make_weight(FINCH_Q8_0, 64, 1024),
                                 make_weight(FINCH_F16, 37, 1024)};
            for (size_t k = 0; k < N_TOKENS; k++) check_many(pools, w, token_counts[k], "q8_0 + f16");
            free((void *)w[1].data);
            w[1] = random_qweight(FINCH_Q4_K, 64, 1024);
            for (size_t k = 0; k < N_TOKENS; k++) check_many(pools, w, token_counts[k], "q4_K + q8_0");
            for (size_t j = 0; j < 3; j++) free((void *)w[j].data);
            finch_weight v[3] = {random_qweight(FINCH_Q4_K, 203, 1024), random_qweight(FINCH_Q6_K, 64, 1024),
                                 random_qweight(FINCH_Q4_0, 37, 1024)};
            for (size_t k = 0; k < N_TOKENS; k++) check_many(pools, v, token_counts[k], "q4_K + q6_K + q4_0");
            for (size_t j = 0; j < 3; j++) free((void *)v[j].data);
            finch_set_quant_math(FINCH_QUANT_MATH_Q8);
        }
    }
    float x[8] = {0}, *outs[FINCH_MATMUL_MANY_MAX + 1] = {0};
    const finch_weight *ws[FINCH_MATMUL_MANY_MAX + 1] = {0};
    assert_int_equal(finch_matmul_many(NULL, FINCH_MATMUL_MANY_MAX + 1, outs, x, 1, ws), FINCH_ERR_ARG);
    assert_ok(finch_matmul_many(NULL, 0, outs, x, 1, ws));
    for (size_t p = 0; p < 4; p++) finch_pool_free(pools[p]);
}

static void test_matmul_errors(void **state) {
    (void)state;
    float x[40] = {0}, out[4];
    int8_t buf[64] = {0};
    finch_weight w = {buf, FINCH_Q8_0, 1, 40, false};
    assert_int_equal(finch_matmul(NULL, out, x, 1, &w), FINCH_ERR_FORMAT);
    w.type = (finch_dtype)16; /* iq2_xxs */
    assert_int_equal(finch_matmul(NULL, out, x, 1, &w), FINCH_ERR_UNSUPPORTED);
    w = (finch_weight){NULL, FINCH_F32, 4, 8, false};
    assert_int_equal(finch_matmul(NULL, out, x, 1, &w), FINCH_ERR_ARG);
    /* Empty shapes are fine and write nothing (or zeros for cols == 0). */
    w = (finch_weight){buf, FINCH_F32, 4, 0, false};
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

/* --------------------------------------------------------------------- exp */

/* The scalar twin and every ISA's vector exp (through exp_sum with s = 1,
 * m = 0) against double exp; then the edges: overflow to +inf, underflow
 * to 0, NaN through. */
static void test_exp(void **state) {
    (void)state;
    enum { N = 200003 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    assert_non_null(x);
    assert_non_null(y);
    for (size_t j = 0; j < N; j++) x[j] = FINCH_EXP_LO + (FINCH_EXP_HI - FINCH_EXP_LO) * (float)j / N;
    double worst_twin = 0;
    for (size_t j = 0; j < N; j++) {
        double e = exp((double)x[j]);
        if (e < 1.1754943508222875e-38) continue; /* denormal results: not held to it */
        double r = fabs(finch_expf(x[j]) - e) / e;
        if (r > worst_twin) worst_twin = r;
    }
    if (!(worst_twin <= 1.2e-7)) fail_msg("finch_expf: max relative error %.3g", worst_twin);
    assert_true(finch_expf(0.0f) == 1.0f);
    assert_true(isinf(finch_expf(89.0f)) && finch_expf(-88.0f) == 0.0f && isnan(finch_expf(NAN)));
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        const finch_kernels *k = finch_kernels_get();
        memcpy(y, x, N * sizeof(float));
        double worst = 0;
        k->exp_sum(y, N, 1.0f, 0.0f);
        for (size_t j = 0; j < N; j++) {
            double e = exp((double)x[j]);
            if (e < 1.1754943508222875e-38) continue;
            double r = fabs(y[j] - e) / e;
            if (r > worst) worst = r;
        }
        if (!(worst <= 1.2e-7))
            fail_msg("%s exp: max relative error %.3g", finch_isa_name(all_isas[i]), worst);
        /* The returned sum, on softmax-like inputs (s * x - m <= 0): within
         * n ulp of the double sum of the stored values. */
        enum { M = 4099 };
        double sum = 0;
        for (size_t j = 0; j < M; j++) y[j] = -20.0f * (float)((j * 7919) % M) / M;
        float got = k->exp_sum(y, M, 0.5f, -1.0f);
        for (size_t j = 0; j < M; j++) sum += y[j];
        assert_true(fabs(got - sum) <= M * 6e-8 * sum);
        float edge[5] = {89.0f, -88.0f, NAN, 0.0f, -1.0f};
        k->exp_sum(edge, 5, 1.0f, 0.0f);
        assert_true(isinf(edge[0]) && edge[1] == 0.0f && isnan(edge[2]) && edge[3] == 1.0f);
        if (verbose())
            fprintf(stderr, "exp %-6s max rel err %.3g (twin %.3g, bound 1.2e-7)\n",
                    finch_isa_name(all_isas[i]), worst, worst_twin);
    }
    free(x);
    free(y);
}

/* --------------------------------------------------------------- attention */

/* out_i = softmax(scale q_i . k_j) v over n_keys keys, in double. */
static void attn_ref(const float *k, const float *v, size_t n_keys, size_t d, const float *q,
                     float scale, double *out) {
    double *s = malloc(n_keys * sizeof(double)), mx = -INFINITY, sum = 0;
    assert_non_null(s);
    for (size_t j = 0; j < n_keys; j++) {
        double dot = 0;
        for (size_t c = 0; c < d; c++) dot += (double)q[c] * k[j * d + c];
        s[j] = dot * scale;
        if (s[j] > mx) mx = s[j];
    }
    for (size_t j = 0; j < n_keys; j++) sum += (s[j] = exp(s[j] - mx));
    for (size_t c = 0; c < d; c++) {
        double o = 0;
        for (size_t j = 0; j < n_keys; j++) o += s[j] / sum * v[j * d + c];
        out[c] = o;
    }
    free(s);
}

/* finch_attn_rows against the double reference for head sizes with and
 * without vector tails, key counts around the 32-key panels and query
 * counts past one GEMM tile; each row's output must not depend on how many
 * rows were computed with it (bit for bit against nq = 1). */
static void test_attention(void **state) {
    (void)state;
    const size_t dims[] = {64, 7, 80}, keys[] = {1, 5, 32, 33, 100}, NQ = 13;
    rng_seed(2024);
    for (size_t i = 0; i < N_ISAS; i++) {
        if (!finch_isa_set(all_isas[i])) continue;
        double worst = 0;
        for (size_t a = 0; a < sizeof dims / sizeof dims[0]; a++)
            for (size_t b = 0; b < sizeof keys / sizeof keys[0]; b++) {
                size_t d = dims[a], nk = keys[b];
                float *k = random_floats(nk * d), *v = random_floats(nk * d);
                float *q = random_floats(NQ * d), *out = malloc(NQ * d * sizeof(float));
                float *one = malloc(d * sizeof(float)), *sc = malloc(NQ * nk * sizeof(float));
                float *kp = malloc(finch_attn_kpack_floats(nk, d) * sizeof(float));
                double *ref = malloc(d * sizeof(double));
                assert_true(out && one && sc && kp && ref);
                for (size_t j = 0; j < NQ * d; j++) q[j] *= 4.0f; /* peaked softmax rows */
                float scale = 1.0f / sqrtf((float)d);
                finch_attn_pack_keys(k, 0, nk, d, kp);
                finch_attn_rows(kp, v, nk, d, q, d, NQ, scale, sc, out, d);
                for (size_t r = 0; r < NQ; r++) {
                    attn_ref(k, v, nk, d, q + r * d, scale, ref);
                    double mx = 0, err = 0;
                    for (size_t c = 0; c < d; c++) {
                        mx = fmax(mx, fabs(ref[c]));
                        err = fmax(err, fabs(out[r * d + c] - ref[c]));
                    }
                    if (!(err <= 1e-5 * mx))
                        fail_msg("%s attention d=%zu keys=%zu row %zu: error %.3g of %.3g",
                                 finch_isa_name(all_isas[i]), d, nk, r, err, mx);
                    if (mx > 0 && err / mx > worst) worst = err / mx;
                    finch_attn_rows(kp, v, nk, d, q + r * d, d, 1, scale, sc, one, d);
                    if (memcmp(one, out + r * d, d * sizeof(float)) != 0)
                        fail_msg("%s attention: row %zu depends on nq", finch_isa_name(all_isas[i]), r);
                }
                free(k); free(v); free(q); free(out); free(one); free(sc); free(kp); free(ref);
            }
        if (verbose())
            fprintf(stderr, "attention %-6s max rel err %.3g (bound 1e-5)\n", finch_isa_name(all_isas[i]), worst);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_isa_dispatch, restore_defaults),
        cmocka_unit_test_teardown(test_matmul_vs_ref, restore_defaults),
        cmocka_unit_test_teardown(test_blas_vs_ref, restore_defaults),
        cmocka_unit_test_teardown(test_scalar_is_ref, restore_defaults),
        cmocka_unit_test_teardown(test_batch_invariance, restore_defaults),
        cmocka_unit_test_teardown(test_rows_agree, restore_defaults),
        cmocka_unit_test_teardown(test_q8_0_vnni, restore_defaults),
        cmocka_unit_test_teardown(test_quantize_q8_0, restore_defaults),
        cmocka_unit_test_teardown(test_threads_bit_identical, restore_defaults),
        cmocka_unit_test_teardown(test_matmul_many, restore_defaults),
        cmocka_unit_test_teardown(test_matmul_errors, restore_defaults),
        cmocka_unit_test_teardown(test_elementwise, restore_defaults),
        cmocka_unit_test_teardown(test_exp, restore_defaults),
        cmocka_unit_test_teardown(test_attention, restore_defaults),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
