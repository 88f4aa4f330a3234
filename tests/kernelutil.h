/* kernelutil.h - random inputs and weights of every stored type, shared by
 * the kernel tests (test_kernels.c) and the kernel benchmark
 * (bench_kernels.c); the suite's defaults restored after each test. */
#ifndef FINCH_KERNELUTIL_H
#define FINCH_KERNELUTIL_H

#include "testutil.h"
#include "kernels.h"
#include "quants.h"

static uint64_t rng_state;
static inline void rng_seed(uint64_t s) { /* splitmix64 scramble: small seeds are fine */
    s += 0x9E3779B97F4A7C15ULL;
    s = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9ULL;
    s = (s ^ (s >> 27)) * 0x94D049BB133111EBULL;
    rng_state = (s ^ (s >> 31)) | 1;
}
static inline uint64_t rng_next(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static inline float rng_uniform(void) { /* [-1, 1) */
    return (float)((double)(rng_next() >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
}
static inline float *random_floats(size_t n) {
    float *v = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform();
    return v;
}

/* A random weight stored as `type` (owned: free w.data). */
static inline finch_weight make_weight(finch_dtype type, size_t rows, size_t cols) {
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
    return (finch_weight){data, type, rows, cols, false};
}


/* A random weight of a quantized type without a writer in
 * finch_row_from_f32 (the K-quants): random bytes, scales of about 1e-2. */
static inline finch_weight random_qweight(finch_dtype t, size_t rows, size_t cols) {
    if (t == FINCH_Q8_0 || t == FINCH_Q4_0) return make_weight(t, rows, cols);
    const finch_quant_traits *q = finch_quant_traits_of(t);
    size_t blocks = rows * cols / q->block;
    uint8_t *d = malloc(blocks * q->bytes);
    assert_non_null(d);
    for (size_t i = 0; i < blocks * q->bytes; i++) d[i] = (uint8_t)(rng_next() >> 32);
    for (size_t b = 0; b < blocks; b++)
        for (size_t s = 0; s < q->n_scales; s++) {
            uint16_t h = finch_f32_to_f16(0.002f + 0.01f * (rng_uniform() + 1.0f));
            memcpy(d + b * q->bytes + q->scale_off[s], &h, 2);
        }
    return (finch_weight){d, t, rows, cols, false};
}

static const finch_dtype all_types[] = {FINCH_F32, FINCH_F16, FINCH_BF16, FINCH_Q8_0};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

/* Every test leaves the defaults behind it. */
static inline int restore_defaults(void **state) {
    (void)state;
    finch_isa_set(finch_isa_detect());
    finch_set_blas_mode(FINCH_BLAS_AUTO);
    finch_set_quant_math(FINCH_QUANT_MATH_Q8);
    finch_set_weight_packing(FINCH_WPACK_AUTO);
    return 0;
}

#endif
