/* bootstrap.c - percentile bootstrap of a mean (bootstrap.h).  A fixed seed
 * and a fixed generator make a figure's error bars the same on every run. */
#include "bootstrap.h"

#include <math.h>
#include <stdlib.h>

#include "util.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

finch_status finch_bootstrap_ci95(const double *v, size_t n, size_t resamples, uint64_t seed, double *lo,
                                  double *hi) {
    *lo = *hi = NAN;
    double *x = finch_zalloc(n ? n : 1, sizeof *x);
    double *means = finch_zalloc(resamples ? resamples : 1, sizeof *means);
    if (!x || !means) {
        free(x);
        free(means);
        return FINCH_ERR_NOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) x[m++] = v[i];
    if (m == 1) *lo = *hi = x[0];
    if (m >= 2 && resamples) {
        uint64_t state = seed;
        for (size_t b = 0; b < resamples; b++) {
            double sum = 0;
            for (size_t i = 0; i < m; i++) sum += x[splitmix64(&state) % m];
            means[b] = sum / (double)m;
        }
        qsort(means, resamples, sizeof *means, cmp_double);
        *lo = means[(size_t)floor(0.025 * (double)resamples)];
        *hi = means[(size_t)ceil(0.975 * (double)resamples) - 1];
    }
    free(x);
    free(means);
    return FINCH_OK;
}
