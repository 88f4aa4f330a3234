/*
 * finch_compare.h - compare two dumps (format v1, docs/dump-format.md):
 * finch's own (REF) and another implementation's (OTHER), which may hold
 * only the minimal subset (meta.json and kept.npy; keys, values and logits
 * are compared when both hold them).
 *
 * Kept sets: per layer and KV head, the positions only one side kept.  Each
 * such position is excused as a near tie when REF's scores put it within
 * `tie` (relative to the head's largest score) of REF's cut; where REF has
 * no score for it (an iterative candidate dropped at an earlier chunk), when
 * REF's margin for that head is within `tie`.  Tensors: keys (both brought
 * to the Hugging Face layout; a shared position kept at different ranks is
 * re-rotated to REF's rank) and values on the positions both kept; logits.
 * An element passes when |other - ref| <= atol + rtol |ref|.  Logits decide
 * the verdict only when every kept set agrees (a near tie changes them).
 */
#ifndef FINCH_COMPARE_H
#define FINCH_COMPARE_H

#include "finch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double atol, rtol; /* tensors                                         */
    double tie;        /* relative score distance from REF's cut excused  */
} finch_compare_opts;

finch_compare_opts finch_compare_defaults(void); /* 1e-4, 1e-4, 1e-2 */

typedef enum { FINCH_HEAD_AGREE = 0, FINCH_HEAD_EXCUSED = 1, FINCH_HEAD_DISAGREE = 2 } finch_head_verdict;

typedef struct {
    int present;        /* both dumps hold it                               */
    size_t n;           /* elements compared                                */
    size_t n_skipped;   /* rows not compared (no RoPE facts to re-rotate)   */
    double max_abs, max_rel;
    int ok;             /* every element within atol + rtol |ref|           */
} finch_compare_tensor;

typedef struct {
    size_t n_layer, n_kv_head;
    size_t ref_n_kept, other_n_kept;
    size_t agree, excused, disagree;           /* heads                       */
    size_t excused_positions, disagree_positions;
    finch_head_verdict *verdict;               /* [L][G]                      */
    size_t *n_differ;                          /* [L][G] positions kept by one side */
    float *ref_margin;                         /* [L][G] REF's margins, NaN when absent */
    finch_compare_tensor keys, values, logits;
    int logits_decide;                         /* every kept set agrees       */
    int ok;                                    /* the verdict                 */
} finch_compare_result;

/* Compare the dumps in directories ref and other.  FINCH_ERR_IO /
 * FINCH_ERR_FORMAT when a dump is missing or malformed (a message names
 * the file), FINCH_ERR_ARG when they cannot be compared (other models). */
finch_status finch_compare_dumps(const char *ref, const char *other, const finch_compare_opts *o,
                                 finch_compare_result *out);
void finch_compare_free(finch_compare_result *r);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_COMPARE_H */
