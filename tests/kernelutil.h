/* kernelutil.h - random inputs and weights of every stored type, shared by
 * the kernel tests (test_kernels.c) and the kernel benchmark
 * (bench_kernels.c); the suite's defaults restored after each test. */
#ifndef FINCH_KERNELUTIL_H
#define FINCH_KERNELUTIL_H

#include "testutil.h"
#include "kernels.h"

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
    return (finch_weight){data, type, rows, cols};
}


static const finch_dtype all_types[] = {FINCH_F32, FINCH_F16, FINCH_BF16, FINCH_Q8_0};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

/* Every test leaves the defaults behind it. */
static inline int restore_defaults(void **state) {
    (void)state;
    finch_isa_set(finch_isa_detect());
    finch_set_blas_mode(FINCH_BLAS_AUTO);
    return 0;
}

#endif
