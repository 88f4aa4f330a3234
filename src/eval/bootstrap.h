/* bootstrap.h - percentile bootstrap confidence intervals of a mean, for the
 * error bars of the evaluation's figures (src/bootstrap.c). */
#ifndef FINCH_BOOTSTRAP_H
#define FINCH_BOOTSTRAP_H

#include "finch.h"

#include <stdint.h>

enum { FINCH_BOOTSTRAP_RESAMPLES = 1000 };
#define FINCH_BOOTSTRAP_SEED UINT64_C(20240601)

/* The 95% interval of the mean of v[0..n) (NaNs skipped): `resamples` means
 * of n draws with replacement (indices from splitmix64 seeded with `seed`,
 * index = draw % n), sorted; lo = means[floor(0.025 B)], hi =
 * means[ceil(0.975 B) - 1].  No value: lo = hi = NaN; one value: lo = hi =
 * it.  FINCH_ERR_NOMEM when the B means cannot be held. */
finch_status finch_bootstrap_ci95(const double *v, size_t n, size_t resamples, uint64_t seed, double *lo,
                                  double *hi);

#endif
