/* topk.c - the k best of n scores with a binary min-heap of positions.
 *
 * The heap holds the k best positions seen so far with the WORST of them at
 * the root, so each new candidate costs one comparison with the root and, if
 * it wins, one sift-down: O(n log k).  "Worse" is a total order (lower score,
 * or equal score and larger position), which makes the result independent of
 * the visiting order: ties always go to the smaller position. */
#include "topk.h"

#include <math.h>
#include <stdlib.h>

static double key(const double *s, size_t i) { return isnan(s[i]) ? -INFINITY : s[i]; }

/* 1 when position a ranks below position b. */
static int worse(const double *s, size_t a, size_t b) {
    double ka = key(s, a), kb = key(s, b);
    if (ka != kb) return ka < kb;
    return a > b;
}

static void sift_down(const double *s, size_t *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(s, h[l], h[m])) m = l;
        if (r < n && worse(s, h[r], h[m])) m = r;
        if (m == i) return;
        size_t t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static void sift_up(const double *s, size_t *h, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(s, h[i], h[p])) return;
        size_t t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

void finch_topk(const double *s, size_t n, size_t k, size_t *idx) {
    if (k > n) k = n;
    if (k == 0) return;
    size_t size = 0;
    for (size_t j = 0; j < n; j++) {
        if (size < k) {
            idx[size] = j;
            sift_up(s, idx, size++);
        } else if (worse(s, idx[0], j)) {
            idx[0] = j;
            sift_down(s, idx, k, 0);
        }
    }
    qsort(idx, k, sizeof *idx, cmp_size);
}
