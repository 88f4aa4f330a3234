/* topk.h - heap-based top-k selection: the k largest of n scores in
 * O(n log k) time and O(k) memory, for Finch's per-head token selection. */
#ifndef FINCH_TOPK_H
#define FINCH_TOPK_H

#include <stddef.h>

/* Write to idx[0..k) the positions of the k largest values of s[0..n),
 * sorted ascending.  Ties go to the smaller position; NaN ranks below every
 * number (as -infinity, ties again to the smaller position).  k <= n. */
void finch_topk(const double *s, size_t n, size_t k, size_t *idx);

#endif
