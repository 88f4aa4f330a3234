/* test_score_kernels.c - the two helpers of Finch's scoring loop
 * (src/press/finch.c) give the bits of the calls they replace, on every
 * ISA this CPU runs: finch_dot_rows_f32 = finch_dot_f32 * scale per key
 * row, and finch_softmax_accumulate = finch_softmax, then
 * acc[j] += w * (double)p[j].  The dump files (scores, kept rows) depend
 * on exactly those bits. */
#include "kernelutil.h"

static const finch_isa isas[] = {FINCH_ISA_SCALAR, FINCH_ISA_AVX2, FINCH_ISA_AVX512, FINCH_ISA_NEON};

/* head dims of real models and odd ones (tails of every lane width) */
static const size_t dims[] = {1, 7, 16, 33, 64, 80, 128};
/* key counts: one, under and over a vector, a chunk with its question */
static const size_t counts[] = {1, 5, 16, 17, 544};

static void test_dot_rows_bits(void **state) {
    (void)state;
    finch_isa best = finch_isa_detect();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!finch_isa_set(isas[i])) continue;
        for (size_t a = 0; a < sizeof dims / sizeof dims[0]; a++) {
            size_t d = dims[a], n = 37;
            rng_seed(d);
            float *q = random_floats(d), *k = random_floats(n * d), out[37];
            float scale = 1.0f / sqrtf((float)d);
            finch_dot_rows_f32(q, k, n, d, scale, out);
            for (size_t j = 0; j < n; j++) {
                float want = finch_dot_f32(q, k + j * d, d) * scale;
                if (memcmp(&want, &out[j], sizeof want))
                    fail_msg("%s d %zu key %zu: %.9g != %.9g", finch_isa_name(isas[i]), d, j, out[j], want);
            }
            free(q);
            free(k);
        }
    }
    assert_true(finch_isa_set(best));
}

static void test_softmax_accumulate_bits(void **state) {
    (void)state;
    finch_isa best = finch_isa_detect();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!finch_isa_set(isas[i])) continue;
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            size_t n = counts[c], n_acc = n > 3 ? n - 3 : n; /* the question's columns are not summed */
            rng_seed(1000 + n);
            float *x = random_floats(n), *p = malloc(n * sizeof(float));
            double *acc = calloc(n, sizeof(double)), *want = calloc(n, sizeof(double));
            assert_true(p && acc && want);
            for (size_t j = 0; j < n; j++) x[j] *= 8.0f; /* scores of several units */
            for (size_t j = 0; j < n; j++) acc[j] = want[j] = 0.25 * (double)j;
            double w = 517.0; /* kvpress's row weight: keys seen minus one */
            memcpy(p, x, n * sizeof(float));
            finch_softmax(p, n);
            for (size_t j = 0; j < n_acc; j++) want[j] += w * (double)p[j];
            finch_softmax_accumulate(x, n, w, acc, n_acc);
            if (memcmp(acc, want, n * sizeof(double)))
                fail_msg("%s n %zu: the accumulated probabilities differ", finch_isa_name(isas[i]), n);
            free(x);
            free(p);
            free(acc);
            free(want);
        }
    }
    assert_true(finch_isa_set(best));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_rows_bits),
        cmocka_unit_test(test_softmax_accumulate_bits),
    };
    return cmocka_run_group_tests_name("score_kernels", tests, NULL, NULL);
}
