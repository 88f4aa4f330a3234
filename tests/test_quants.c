/* test_quants.c - ggml's quantized types (src/kernels/quants.c, kernels_quant.c):
 * block sizes, hand-made blocks dequantized, the dot products against the
 * dequantized rows, every ISA and thread count giving the reference bits,
 * both arithmetics of finch_matmul, the loader's refusals and the NaN/Inf
 * scan of the scales.
 *
 * Bounds:
 *  - vec_dot(w, q(x)) against sum dequant(w) * dequant(q(x)) in double:
 *    |diff| <= 1e-5 * sum |w_i q(x)_i| (the integer sums are exact; only
 *    the per-block f32 scale steps round, a few ulp of the total).
 *  - SIMD dot products and any thread count: bit-identical to the scalar
 *    reference (same exact integer sums, same float steps).
 *  - FP32 arithmetic against finch_matmul_ref: NMSE <= 1e-10 (the same
 *    dequantized weights and f32 activations; summation order only).
 *  - Q8 arithmetic against finch_matmul_ref: NMSE <= 2e-4 (the activation
 *    quantization error: a step of max/127 per block). */
#include "cliutil.h"

#include "finite.h"
#include "gguf.h"
#include "kernels.h"
#include "kernels_internal.h"
#include "quants.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float rnd_f(void) { return (float)((double)(rnd() >> 40) / (double)(1ULL << 24) * 2.0 - 1.0); }

static const finch_dtype weight_types[] = {FINCH_Q4_0, FINCH_Q4_1, FINCH_Q5_0,   FINCH_Q5_1,
                                           FINCH_Q8_0, FINCH_Q2_K, FINCH_Q3_K,   FINCH_Q4_K,
                                           FINCH_Q5_K, FINCH_Q6_K, FINCH_IQ4_NL, FINCH_IQ4_XS};
#define N_WTYPES (sizeof weight_types / sizeof weight_types[0])

/* n_blocks random blocks of type t: random bytes, then finite scales of
 * about 1e-2 (Q8_0: quantized from random floats, whose quants are never
 * -128, as ggml's quantizer guarantees). */
static void *random_blocks(finch_dtype t, size_t n_values) {
    const finch_quant_traits *q = finch_quant_traits_of(t);
    size_t nb = n_values / q->block;
    uint8_t *p = malloc(nb * q->bytes);
    assert_non_null(p);
    if (t == FINCH_Q8_0) {
        float *v = malloc(n_values * sizeof(float));
        for (size_t i = 0; i < n_values; i++) v[i] = rnd_f();
        finch_row_from_f32(t, v, p, n_values);
        free(v);
        return p;
    }
    for (size_t i = 0; i < nb * q->bytes; i++) p[i] = (uint8_t)rnd();
    for (size_t b = 0; b < nb; b++)
        for (size_t s = 0; s < q->n_scales; s++) {
            uint16_t h = finch_f32_to_f16(0.002f + 0.01f * (rnd_f() + 1.0f));
            memcpy(p + b * q->bytes + q->scale_off[s], &h, 2);
        }
    return p;
}

static void test_block_sizes(void **state) {
    (void)state;
    static const struct { finch_dtype t; size_t bytes_per_256; const char *name; } want[] = {
        {FINCH_Q4_0, 144, "q4_0"}, {FINCH_Q4_1, 160, "q4_1"}, {FINCH_Q5_0, 176, "q5_0"},
        {FINCH_Q5_1, 192, "q5_1"}, {FINCH_Q8_0, 272, "q8_0"}, {FINCH_Q2_K, 84, "q2_K"},
        {FINCH_Q3_K, 110, "q3_K"}, {FINCH_Q4_K, 144, "q4_K"}, {FINCH_Q5_K, 176, "q5_K"},
        {FINCH_Q6_K, 210, "q6_K"}, {FINCH_IQ4_NL, 144, "iq4_nl"}, {FINCH_IQ4_XS, 136, "iq4_xs"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(finch_row_bytes(want[i].t, 256), want[i].bytes_per_256);
        assert_string_equal(finch_dtype_name(want[i].t), want[i].name);
    }
    assert_int_equal(finch_row_bytes(FINCH_Q4_K, 128), 0); /* not a whole super-block */
    assert_int_equal(finch_row_bytes(FINCH_Q4_0, 48), 0);
}

/* Hand-made blocks: one value per layout rule, worked out from ggml's
 * block descriptions. */
static void test_dequant_hand_blocks(void **state) {
    (void)state;
    float y[256];
    finch_block_q4_0 b40 = {finch_f32_to_f16(0.5f), {0}};
    b40.qs[3] = 0x2C; /* value 3: 12 - 8 = 4; value 19: 2 - 8 = -6 */
    finch_dequantize_row(FINCH_Q4_0, &b40, y, 32);
    assert_true(y[3] == 2.0f && y[19] == -3.0f && y[0] == -4.0f);

    finch_block_q5_0 b50 = {finch_f32_to_f16(1.0f), {0x00, 0x00, 0x02, 0x00}, {0}};
    b50.qs[1] = 0xF0; /* value 17: nibble 15 | bit 17 of qh (16) = 31 - 16 = 15 */
    finch_dequantize_row(FINCH_Q5_0, &b50, y, 32);
    assert_true(y[17] == 15.0f && y[1] == -16.0f);

    finch_block_q4_K b4k;
    memset(&b4k, 0, sizeof b4k);
    b4k.d = finch_f32_to_f16(1.0f);
    b4k.dmin = finch_f32_to_f16(0.25f);
    b4k.scales[0] = 2;        /* scale 0 = 2 */
    b4k.scales[5] = 4;        /* min 1 = 4 */
    b4k.scales[8] = 0x31;     /* scale 4 = 1 | (scales[0] >> 6) << 4, min 4 = 3 */
    b4k.qs[0] = 0x53;         /* value 0: 3 (scale 0); value 32: 5 (scale 1) */
    b4k.scales[1] = 7;        /* scale 1 = 7 */
    b4k.qs[64 + 1] = 0x0A;    /* value 129: 10 (scale 4) */
    finch_dequantize_row(FINCH_Q4_K, &b4k, y, 256);
    assert_true(y[0] == 6.0f && y[32] == 35.0f - 1.0f && y[129] == 10.0f - 0.75f);

    finch_block_q6_K b6k;
    memset(&b6k, 0, sizeof b6k);
    b6k.d = finch_f32_to_f16(2.0f);
    b6k.scales[4] = 3;        /* values 64..79 */
    b6k.ql[0] = 0x70;         /* value 64: high nibble of ql[0] = 7 */
    b6k.qh[0] = 0x30;         /* value 64: bits 4..5 of qh[0] = 3 -> 7 | 48 = 55 - 32 = 23 */
    finch_dequantize_row(FINCH_Q6_K, &b6k, y, 256);
    assert_true(y[64] == 2.0f * 3.0f * 23.0f);
    assert_true(y[0] == 0.0f); /* scale 0 is 0 */

    finch_block_iq4_xs bx;
    memset(&bx, 0, sizeof bx);
    bx.d = finch_f32_to_f16(1.0f);
    bx.scales_l[1] = 0x50;    /* sub-block 3: low 4 bits 5 */
    bx.scales_h = 2u << 6;    /* sub-block 3: high 2 bits 2 -> 37 - 32 = 5 */
    bx.qs[16 * 3 + 2] = 0xF0; /* value 96 + 18: kvalues[15] = 113 */
    finch_dequantize_row(FINCH_IQ4_XS, &bx, y, 256);
    assert_true(y[96 + 18] == 5.0f * 113.0f && y[96 + 2] == 5.0f * -127.0f);
}

/* Dequantize an activation row of type Q8_0/Q8_1/Q8_K to doubles. */
static void act_values(finch_dtype p, const void *xq, double *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p == FINCH_Q8_K) {
            const finch_block_q8_K *b = (const finch_block_q8_K *)xq + i / 256;
            out[i] = (double)b->d * b->qs[i % 256];
        } else if (p == FINCH_Q8_1) {
            const finch_block_q8_1 *b = (const finch_block_q8_1 *)xq + i / 32;
            out[i] = (double)finch_f16_to_f32(b->d) * b->qs[i % 32];
        } else {
            const finch_block_q8_0 *b = (const finch_block_q8_0 *)xq + i / 32;
            out[i] = (double)finch_f16_to_f32(b->d) * b->qs[i % 32];
        }
    }
}

static void test_dot_vs_dequant(void **state) {
    (void)state;
    const size_t n = 1024;
    float *w = malloc(n * sizeof(float)), *x = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double));
    void *xq = malloc(finch_row_bytes(FINCH_Q8_K, n) + finch_row_bytes(FINCH_Q8_1, n));
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        finch_dtype t = weight_types[ti];
        const finch_quant_traits *q = finch_quant_traits_of(t);
        for (int rep = 0; rep < 8; rep++) {
            void *wb = random_blocks(t, n);
            for (size_t i = 0; i < n; i++) x[i] = rnd_f() * (rep == 3 ? 0.0f : 1.0f);
            finch_quantize_act(q->partner, x, xq, n);
            finch_dequantize_row(t, wb, w, n);
            act_values(q->partner, xq, xd, n);
            double ref = 0, mag = 0;
            for (size_t i = 0; i < n; i++) {
                ref += (double)w[i] * xd[i];
                mag += fabs((double)w[i] * xd[i]);
            }
            float got = finch_vec_dot_ref(t)(wb, xq, n);
            if (fabs(got - ref) > 1e-5 * mag + 1e-30)
                fail_msg("%s rep %d: dot %.9g, dequantized %.9g (mag %.3g)", q->name, rep, got, ref, mag);
            free(wb);
        }
    }
    free(w), free(x), free(xd), free(xq);
}

/* A random quantized weight (owned data). */
static finch_weight qweight(finch_dtype t, size_t rows, size_t cols) {
    size_t rb = finch_row_bytes(t, cols);
    uint8_t *d = malloc(rows * rb);
    for (size_t r = 0; r < rows; r++) {
        void *row = random_blocks(t, cols);
        memcpy(d + r * rb, row, rb);
        free(row);
    }
    return (finch_weight){d, t, rows, cols, false};
}

/* Every ISA and every thread count give the scalar table's bits, in both
 * arithmetics; a token's outputs do not depend on the batch. */
static void test_matmul_bits(void **state) {
    (void)state;
    const size_t rows = 37, cols = 512, n = 20;
    finch_pool *pools[3];
    for (size_t p = 0; p < 3; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    float *x = malloc(n * cols * sizeof(float)), *ref = malloc(n * rows * sizeof(float));
    float *out = malloc(n * rows * sizeof(float));
    for (size_t i = 0; i < n * cols; i++) x[i] = rnd_f();
    static const finch_isa isas[] = {FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};
    for (int fp32 = 0; fp32 < 2; fp32++) {
        finch_set_quant_math(fp32 ? FINCH_QUANT_MATH_FP32 : FINCH_QUANT_MATH_Q8);
        for (size_t ti = 0; ti < N_WTYPES; ti++) {
            finch_weight w = qweight(weight_types[ti], rows, cols);
            assert_true(finch_isa_set(FINCH_ISA_SCALAR));
            assert_ok(finch_matmul(NULL, ref, x, n, &w));
            if (!fp32) { /* the scalar tile of Q8_0 is its own path: same sums */
                for (size_t i = 0; i < 3; i++) {
                    assert_ok(finch_matmul(pools[i], out, x, n, &w));
                    assert_memory_equal(out, ref, n * rows * sizeof(float));
                }
            }
            for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
                if (!finch_isa_set(isas[k])) continue;
                /* Q8_0 in Q8 arithmetic: the tiles' lane order (per ISA), or
                 * for prefill the quantized GEMM: the scalar reference's bits. */
                bool q8_0_tiles =
                    !fp32 && w.type == FINCH_Q8_0 && !finch_qgemm_runs(finch_kernels_get(), w.type, n);
                for (size_t i = 0; i < 3; i++) {
                    assert_ok(finch_matmul(pools[i], out, x, n, &w));
                    if (fp32 || q8_0_tiles) continue; /* f32 lane order differs per ISA */
                    if (memcmp(out, ref, n * rows * sizeof(float)))
                        fail_msg("%s on %s, %zu threads: not the scalar bits", finch_dtype_name(w.type),
                                 finch_isa_name(isas[k]), i + 1);
                }
                float one[37];
                assert_ok(finch_matmul(pools[1], one, x + 7 * cols, 1, &w));
                assert_ok(finch_matmul(pools[2], out, x, n, &w));
                /* A token alone (decode) has the batch's bits, except Q8_0
                 * where the batch runs the quantized GEMM (its decode keeps
                 * the lane-order tiles): finch_matmul_rows_agree says which. */
                bool agree = finch_matmul_rows_agree(&w, n, 1);
                assert_true(agree || (w.type == FINCH_Q8_0 && !fp32 && !q8_0_tiles));
                if (agree) assert_memory_equal(one, out + 7 * rows, rows * sizeof(float));
            }
            float *mref = malloc(n * rows * sizeof(float));
            finch_matmul_ref(mref, x, n, &w);
            double e = test_nmse(out, mref, n * rows);
            if (e > (fp32 ? 1e-10 : 2e-4))
                fail_msg("%s %s: nmse %.3g against finch_matmul_ref", finch_dtype_name(w.type),
                         fp32 ? "fp32" : "q8", e);
            free(mref);
            free((void *)w.data);
        }
    }
    finch_set_quant_math(FINCH_QUANT_MATH_Q8);
    finch_isa_set(finch_isa_detect());
    for (size_t p = 0; p < 3; p++) finch_pool_free(pools[p]);
    free(x), free(ref), free(out);
}

/* Rows of 9 super-blocks (2304 values): the SIMD paths that take 8 blocks
 * or 8 tokens at once, and their tails, against the scalar bits. */
static void test_long_rows(void **state) {
    (void)state;
    const size_t rows = 5, cols = 2304, ns[] = {1, 8, 11};
    float *x = malloc(11 * cols * sizeof(float)), ref[11 * 5], out[11 * 5];
    for (size_t i = 0; i < 11 * cols; i++) x[i] = rnd_f();
    static const finch_isa isas[] = {FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        if (weight_types[ti] == FINCH_Q8_0) continue; /* its own tiles (test_kernels.c) */
        finch_weight w = qweight(weight_types[ti], rows, cols);
        for (size_t ni = 0; ni < 3; ni++) {
            assert_true(finch_isa_set(FINCH_ISA_SCALAR));
            assert_ok(finch_matmul(NULL, ref, x, ns[ni], &w));
            for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
                if (!finch_isa_set(isas[k])) continue;
                assert_ok(finch_matmul(NULL, out, x, ns[ni], &w));
                if (memcmp(out, ref, ns[ni] * rows * sizeof(float)))
                    fail_msg("%s on %s, %zu tokens of %zu: not the scalar bits", finch_dtype_name(w.type),
                             finch_isa_name(isas[k]), ns[ni], cols);
            }
        }
        free((void *)w.data);
    }
    finch_isa_set(finch_isa_detect());
    free(x);
}

/* Outputs of `cols`-column weight w for n tokens on every ISA, 1-3 threads
 * and the batch cut into pieces of `cuts` tokens: the scalar bits. */
static void check_batches(const finch_weight *w, const float *x, size_t n, const size_t *cuts,
                          size_t n_cuts, finch_pool *const *pools) {
    static const finch_isa isas[] = {FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};
    size_t bytes = n * w->rows * sizeof(float);
    float *ref = malloc(bytes), *out = malloc(bytes);
    assert_true(finch_isa_set(FINCH_ISA_SCALAR));
    assert_ok(finch_matmul(NULL, ref, x, n, w));
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!finch_isa_set(isas[k])) continue;
        for (size_t p = 0; p < 3; p++) {
            memset(out, 0, bytes);
            assert_ok(finch_matmul(pools[p], out, x, n, w));
            if (memcmp(out, ref, bytes))
                fail_msg("%s on %s, %zu tokens, %zu threads: not the scalar bits", finch_dtype_name(w->type),
                         finch_isa_name(isas[k]), n, p + 1);
        }
        memset(out, 0, bytes);
        for (size_t c = 0, t0 = 0; c < n_cuts; t0 += cuts[c++])
            assert_ok(finch_matmul(pools[1], out + t0 * w->rows, x + t0 * w->cols, cuts[c], w));
        if (memcmp(out, ref, bytes))
            fail_msg("%s on %s: a batch cut into pieces is not the scalar bits", finch_dtype_name(w->type),
                     finch_isa_name(isas[k]));
    }
    finch_isa_set(finch_isa_detect());
    free(ref), free(out);
}

/* The quantized GEMM of prefill (kernels_qgemm.c, on AVX-512 VNNI) and the
 * dot products elsewhere: 520 tokens (two token tasks, a short last tile of
 * tokens) at once and cut into 1, 7 and 512, a short last tile of rows and,
 * for the 32-value types, a short last pack of blocks (25 blocks). */
static void test_qgemm_batches(void **state) {
    (void)state;
    const size_t rows = 21, n = 520, cuts[] = {1, 7, 512};
    finch_pool *pools[3];
    for (size_t p = 0; p < 3; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    float *x = malloc(n * 800 * sizeof(float));
    for (size_t i = 0; i < n * 800; i++) x[i] = rnd_f();
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        if (weight_types[ti] == FINCH_Q8_0) continue; /* its own tiles (test_kernels.c) */
        size_t cols = finch_quant_traits_of(weight_types[ti])->block == FINCH_QK_K ? 768 : 800;
        finch_weight w = qweight(weight_types[ti], rows, cols);
        check_batches(&w, x, n, cuts, 3, pools);
        free((void *)w.data);
    }
    for (size_t p = 0; p < 3; p++) finch_pool_free(pools[p]);
    free(x);
}

/* Q8_0 prefill on the tables whose quantized GEMM takes it: the scalar
 * dot product's bits (finch_vec_dot_ref) for 520 tokens at once on 1-3
 * threads and cut into 8 (its smallest batch) and 512.  Smaller batches
 * and decode run the lane-order tiles (test_kernels.c). */
static void test_qgemm_q8_0(void **state) {
    (void)state;
    const size_t rows = 21, cols = 800, n = 520, rb = finch_row_bytes(FINCH_Q8_0, cols);
    static const finch_isa isas[] = {FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};
    finch_pool *pools[3];
    for (size_t p = 0; p < 3; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    finch_weight w = qweight(FINCH_Q8_0, rows, cols);
    float *x = malloc(n * cols * sizeof(float)), *ref = malloc(n * rows * sizeof(float));
    float *out = malloc(n * rows * sizeof(float));
    char *xq = malloc(n * rb);
    for (size_t i = 0; i < n * cols; i++) x[i] = rnd_f();
    for (size_t t = 0; t < n; t++) {
        finch_quantize_act(FINCH_Q8_0, x + t * cols, xq + t * rb, cols);
        for (size_t r = 0; r < rows; r++)
            ref[t * rows + r] = finch_vec_dot_ref(FINCH_Q8_0)((const char *)w.data + r * rb, xq + t * rb, cols);
    }
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!finch_isa_set(isas[k]) || !finch_qgemm_runs(finch_kernels_get(), FINCH_Q8_0, 8)) continue;
        for (size_t p = 0; p < 4; p++) {
            memset(out, 0, n * rows * sizeof(float));
            if (p < 3) assert_ok(finch_matmul(pools[p], out, x, n, &w));
            else { /* cut into 8 + 512 */
                assert_ok(finch_matmul(pools[1], out, x, 8, &w));
                assert_ok(finch_matmul(pools[1], out + 8 * rows, x + 8 * cols, n - 8, &w));
            }
            if (memcmp(out, ref, n * rows * sizeof(float)))
                fail_msg("q8_0 on %s (%s): not the scalar dot products' bits", finch_isa_name(isas[k]),
                         p < 3 ? "one batch" : "cut");
        }
    }
    finch_isa_set(finch_isa_detect());
    for (size_t p = 0; p < 3; p++) finch_pool_free(pools[p]);
    free((void *)w.data);
    free(x), free(ref), free(out), free(xq);
}

/* Decode's matvec (vec_dotr: one token, several rows side by side): 77
 * rows (two row tasks, groups of rows and a short last group), 1-3
 * threads, every ISA: the scalar bits, for rows of 9 super-blocks or 25
 * blocks. */
static void test_matvec_rows(void **state) {
    (void)state;
    const size_t rows = 77, cuts[] = {1};
    finch_pool *pools[3];
    for (size_t p = 0; p < 3; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    float *x = malloc(2304 * sizeof(float));
    for (size_t i = 0; i < 2304; i++) x[i] = rnd_f();
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        if (weight_types[ti] == FINCH_Q8_0) continue; /* its own tiles (test_kernels.c) */
        size_t cols = finch_quant_traits_of(weight_types[ti])->block == FINCH_QK_K ? 2304 : 800;
        finch_weight w = qweight(weight_types[ti], rows, cols);
        check_batches(&w, x, 1, cuts, 1, pools);
        free((void *)w.data);
    }
    for (size_t p = 0; p < 3; p++) finch_pool_free(pools[p]);
    free(x);
}

/* Every x86 table's vec_dotr called directly, so that the AVX-512 table
 * without VNNI (which finch_isa_set skips on a VNNI CPU) is checked too:
 * 77 rows in one call, each the scalar reference's bits. */
static void test_matvec_rows_tables(void **state) {
    (void)state;
#if defined(__x86_64__)
    const size_t rows = 77, cols = 2304;
    const finch_kernels *tables[3] = {NULL, NULL, NULL};
    if (finch_isa_set(FINCH_ISA_AVX2)) tables[0] = &finch_kernels_avx2;
    if (finch_isa_set(FINCH_ISA_AVX512)) {
        tables[1] = &finch_kernels_avx512;
        if (finch_kernels_get() == &finch_kernels_avx512_vnni) tables[2] = &finch_kernels_avx512_vnni;
    }
    finch_isa_set(finch_isa_detect());
    float *x = malloc(cols * sizeof(float)), out[77];
    for (size_t i = 0; i < cols; i++) x[i] = rnd_f();
    void *xq = malloc(finch_row_bytes(FINCH_Q8_K, cols));
    finch_quantize_act(FINCH_Q8_K, x, xq, cols);
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        finch_dtype t = weight_types[ti];
        if (finch_quant_traits_of(t)->partner != FINCH_Q8_K) continue;
        finch_weight w = qweight(t, rows, cols);
        size_t rb = finch_row_bytes(t, cols);
        for (size_t k = 0; k < 3; k++) {
            if (!tables[k] || !tables[k]->vec_dotr[t]) continue;
            tables[k]->vec_dotr[t](w.data, rb, rows, xq, cols, out);
            for (size_t r = 0; r < rows; r++) {
                float ref = finch_vec_dot_ref(t)((const char *)w.data + r * rb, xq, cols);
                if (memcmp(&ref, &out[r], sizeof ref))
                    fail_msg("%s, table %zu, row %zu: %g, not the scalar %g", finch_dtype_name(t), k, r, out[r], ref);
            }
        }
        free((void *)w.data);
    }
    free(x), free(xq);
#endif
}

/* The AVX-512 table without VNNI (which finch_isa_set skips on a VNNI
 * CPU) runs AVX2's quantized GEMM for prefill: its plan, made for that
 * table directly, gives the scalar reference's bits for 21 tokens x 21
 * rows of every type it takes (the tokens quantized by the reference). */
static void test_qgemm_avx512_plain(void **state) {
    (void)state;
#if defined(__x86_64__)
    if (!finch_isa_set(FINCH_ISA_AVX512)) {
        finch_isa_set(finch_isa_detect());
        skip();
    }
    finch_isa_set(finch_isa_detect());
    const finch_kernels *k = &finch_kernels_avx512;
    const size_t rows = 21, n = 21;
    finch_pool *pool;
    assert_ok(finch_pool_new(1, &pool));
    size_t checked = 0;
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        finch_dtype t = weight_types[ti];
        if (!finch_qgemm_runs(k, t, n)) continue;
        const finch_quant_traits *q = finch_quant_traits_of(t);
        size_t cols = q->block == FINCH_QK_K ? 768 : 800, rb = finch_row_bytes(t, cols);
        size_t xb = finch_row_bytes(q->partner, cols);
        finch_weight w = qweight(t, rows, cols);
        float *x = malloc(n * cols * sizeof(float)), *out = malloc(n * rows * sizeof(float));
        uint8_t *xq = malloc(n * xb);
        for (size_t i = 0; i < n * cols; i++) x[i] = rnd_f();
        for (size_t j = 0; j < n; j++) finch_quantize_act(q->partner, x + j * cols, xq + j * xb, cols);
        finch_qplan pl;
        assert_ok(finch_matmul_quant_plan(pool, 1, k, out, x, n, &w, &pl));
        for (size_t task = 0; task < pl.n_tasks; task++) pl.fn(pl.job, task);
        pl.free_job(pl.job);
        for (size_t j = 0; j < n; j++)
            for (size_t r = 0; r < rows; r++) {
                float ref = finch_vec_dot_ref(t)((const char *)w.data + r * rb, xq + j * xb, cols);
                if (memcmp(&ref, &out[j * rows + r], sizeof ref))
                    fail_msg("%s, token %zu, row %zu: %g, not the scalar %g", finch_dtype_name(t), j, r,
                             out[j * rows + r], ref);
            }
        free((void *)w.data), free(x), free(out), free(xq);
        checked++;
    }
    assert_int_equal(checked, 9); /* Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K */
    finch_pool_free(pool);
#endif
}

/* Each ISA's Q8_K activation quantizer gives finch_quantize_act's bytes:
 * random blocks, ties of the largest magnitude (+a before -a and after),
 * an all-zero block, tiny values, and blocks with NaN and Inf. */
static void test_q8_K_quantizers(void **state) {
    (void)state;
    enum { BLOCKS = 8, N = BLOCKS * 256 };
    float *x = malloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++) x[i] = rnd_f();
    x[10] = 3.0f, x[200] = -3.0f;                              /* block 0: + first */
    x[256 + 7] = -2.5f, x[256 + 90] = 2.5f;                    /* block 1: - first */
    for (size_t i = 512; i < 768; i++) x[i] = 0.0f;            /* block 2 */
    for (size_t i = 768; i < 1024; i++) x[i] = rnd_f() * 1e-30f; /* block 3 */
    x[1024 + 5] = NAN;                                         /* block 4 */
    x[1280 + 9] = -INFINITY;                                   /* block 5 */
    for (size_t i = 1536; i < 1792; i++) x[i] = (float)(i % 7) - 3.0f; /* block 6: many ties */
    size_t bytes = BLOCKS * sizeof(finch_block_q8_K);
    finch_block_q8_K *ref = calloc(1, bytes), *got = calloc(1, bytes);
    finch_quantize_act(FINCH_Q8_K, x, ref, N);
    static const finch_isa isas[] = {FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!finch_isa_set(isas[k]) || !finch_kernels_get()->quantize_q8_K) continue;
        memset(got, 0x5a, bytes);
        finch_kernels_get()->quantize_q8_K(x, got, N);
        for (size_t b = 0; b < BLOCKS; b++)
            if (memcmp(&got[b], &ref[b], sizeof got[b]))
                fail_msg("q8_K on %s, block %zu: not finch_quantize_act's bytes", finch_isa_name(isas[k]), b);
    }
    finch_isa_set(finch_isa_detect());
    free(x), free(ref), free(got);
}

/* ------------------------------------------------------------ the loader */

typedef struct { uint8_t b[1024]; size_t n; } buf;
static void put(buf *b, const void *p, size_t n) { memcpy(b->b + b->n, p, n), b->n += n; }
static void put64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put32(buf *b, uint32_t v) { put(b, &v, 4); }

/* A GGUF with one 1-D tensor "w" of type id `type` and ne0 values, its data
 * zero bytes. */
static finch_status parse_one(uint32_t type, uint64_t ne0) {
    buf b = {{0}, 0};
    put(&b, "GGUF", 4);
    put32(&b, 3), put64(&b, 1), put64(&b, 0);
    put64(&b, 1), put(&b, "w", 1), put32(&b, 1), put64(&b, ne0), put32(&b, type), put64(&b, 0);
    b.n = (b.n + 31) / 32 * 32 + 600;
    gguf_file g;
    finch_status st = gguf_parse(b.b, b.n, &g);
    if (st == FINCH_OK) gguf_close(&g);
    return st;
}

static void test_refused_types(void **state) {
    (void)state;
    static const struct { uint32_t id; const char *name; } refused[] = {
        {4, "type 4 (removed)"}, {9, "q8_1"}, {15, "q8_K"}, {16, "iq2_xxs"}, {19, "iq1_s"},
        {21, "iq3_s"}, {24, "i8"}, {28, "f64"}, {29, "iq1_m"}, {35, "tq2_0"}, {39, "mxfp4"},
        {77, "unknown"}};
    char want[512];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(parse_one(refused[i].id, 256), FINCH_ERR_UNSUPPORTED);
        snprintf(want, sizeof want, "tensor 'w' has type id %u (%s); supported: f32, f16, bf16, q4_0, q4_1, "
                 "q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_nl, iq4_xs", refused[i].id, refused[i].name);
        assert_string_equal(finch_last_error(), want);
    }
    for (size_t ti = 0; ti < N_WTYPES; ti++) assert_ok(parse_one(weight_types[ti], 256));
    assert_int_equal(parse_one(FINCH_Q4_K, 128), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "q4_K tensor 'w' has ne[0] = 128, not a multiple of its block size 256");
    assert_int_equal(parse_one(FINCH_IQ4_NL, 48), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "iq4_nl tensor 'w' has ne[0] = 48, not a multiple of its block size 32");
}

/* The CLI: info names the file type, every tensor's type and what a load
 * packs for decode, convert
 * reads a K-quant and writes q4_0, a refused type and a bad --quant-math
 * are one-line errors (exit 2). */
static void test_cli(void **state) {
    (void)state;
    assert_int_equal(run_finch("info -m testdata/models/quant/tiny-quant-q4_K.gguf"), 0);
    assert_non_null(strstr(out_text, "tensor types: embedding q4_K, output q4_K, layer matrices q4_K x7\n"));
    assert_non_null(strstr(out_text, "general.file_type: 15 (MOSTLY_Q4_K_M)\ntensors: 12\n"));
    assert_non_null(strstr(out_text, "\n  blk.0.attn_k.weight              q4_K    [256, 64]\n"));
    /* every matrix's rows a multiple of 16: all 8 packable where the kernels have vec_dotp */
    char packing[160];
    snprintf(packing, sizeof packing, "\npacked for decode: %d of 8 matrices (under --load auto or read, for files of "
             "64 MB and more, with this CPU's kernels)\n", finch_kernels_get()->vec_dotp[FINCH_Q4_K] ? 8 : 0);
    assert_non_null(strstr(out_text, packing));

    char dir[64], cmd[256];
    test_make_tmpdir(dir, sizeof dir, "finch-quants");
    snprintf(cmd, sizeof cmd, "convert testdata/models/quant/tiny-quant-q5_K.gguf %s/c.gguf --type q4_0", dir);
    assert_int_equal(run_finch(cmd), 0);
    snprintf(cmd, sizeof cmd, "info -m %s/c.gguf", dir);
    assert_int_equal(run_finch(cmd), 0);
    assert_non_null(strstr(out_text, "tensor types: embedding q4_0, output q4_0, layer matrices q4_0 x7\n"));

    /* a file whose only tensor is iq2_xxs */
    buf b = {{0}, 0};
    put(&b, "GGUF", 4);
    put32(&b, 3), put64(&b, 1), put64(&b, 0);
    put64(&b, 1), put(&b, "w", 1), put32(&b, 1), put64(&b, 256), put32(&b, 16), put64(&b, 0);
    b.n = (b.n + 31) / 32 * 32 + 600;
    char path[128];
    snprintf(path, sizeof path, "%s/iq2.gguf", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.b, 1, b.n, f), b.n);
    fclose(f);
    snprintf(cmd, sizeof cmd, "info -m %s", path);
    assert_int_equal(run_finch(cmd), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "tensor 'w' has type id 16 (iq2_xxs); supported: f32, f16, bf16, q4_0,"));
    test_remove_tmpdir(dir);

    assert_int_equal(run_finch("generate -m x.gguf -p hi --quant-math fp16"), 2);
    assert_string_equal(err_text, "finch: error: --quant-math must be q8 or fp32, got 'fp16'\n");
    assert_int_equal(run_finch("run -m x.gguf -f x.txt -q hi --load mapped"), 2);
    assert_string_equal(err_text, "finch: error: --load must be auto, mmap or read, got 'mapped'\n");
}

static void test_nonfinite_scales(void **state) {
    (void)state;
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        finch_dtype t = weight_types[ti];
        const finch_quant_traits *q = finch_quant_traits_of(t);
        size_t n = 3 * FINCH_QK_K;
        uint8_t *p = random_blocks(t, n);
        const char *kind = "";
        assert_int_equal(finch_first_nonfinite(t, p, n, &kind), n);
        size_t blk = n / q->block - 2;
        uint16_t inf = 0xFC00; /* -Inf */
        memcpy(p + blk * q->bytes + q->scale_off[q->n_scales - 1], &inf, 2);
        assert_int_equal(finch_first_nonfinite(t, p, n, &kind), blk * q->block);
        assert_string_equal(kind, "-Inf");
        free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_sizes),
        cmocka_unit_test(test_dequant_hand_blocks),
        cmocka_unit_test(test_dot_vs_dequant),
        cmocka_unit_test(test_matmul_bits),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_qgemm_batches),
        cmocka_unit_test(test_qgemm_q8_0),
        cmocka_unit_test(test_matvec_rows),
        cmocka_unit_test(test_matvec_rows_tables),
        cmocka_unit_test(test_qgemm_avx512_plain),
        cmocka_unit_test(test_q8_K_quantizers),
        cmocka_unit_test(test_refused_types),
        cmocka_unit_test(test_nonfinite_scales),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("quants", tests, NULL, NULL);
}
