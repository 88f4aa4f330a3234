/* forward.h - the forward pass one layer at a time, for a driver that
 * works between layers (Finch scores each layer as soon as the layer's
 * cache holds the chunk: src/press/finch.c).  finch_forward (include/
 * finch.h) is these three calls in a loop.
 *
 *   finch_pass_begin(c, kv, ids, n, pos0, n_logits, false);
 *   for (l = 0; l < n_layer; l++) finch_pass_layer(c, kv, l, &q);
 *   finch_pass_end(c, logits);
 */
#ifndef FINCH_FORWARD_H
#define FINCH_FORWARD_H

#include "finch.h"

#include <stdbool.h>

/* Start a pass of tokens[0..n) at positions pos0.. (checked as
 * finch_forward checks them): the embeddings and the batch's RoPE angles.
 * n_logits: the rows whose logits finch_pass_end computes (0: none; then,
 * unless whole_last_layer, the last layer stops once its K/V are stored). */
finch_status finch_pass_begin(finch_ctx *c, const finch_kv_cache *kv, const int32_t *tokens, size_t n,
                              size_t pos0, size_t n_logits, bool whole_last_layer);

/* After finch_pass_begin: the caller reads the last layer's queries only
 * for positions pos_lo .. pos_hi-1 (none when pos_hi <= pos_lo).  In a pass
 * that stops after the last layer's K/V, that layer may then leave the
 * other rows' queries uncomputed (Finch reads only its question rows' and
 * a plain chunk none; every other row needs only K/V there).  Without this
 * call every row's queries are computed. */
void finch_pass_last_queries(finch_ctx *c, size_t pos_lo, size_t pos_hi);

/* Run layer l (layers in order, 0 first): afterwards the layer's cache
 * holds positions 0 .. pos0+n-1, and *q is the batch's queries of the
 * layer after RoPE, [n][n_head*head_dim], valid until the next call. */
finch_status finch_pass_layer(finch_ctx *c, finch_kv_cache *kv, size_t l, const float **q);

/* After the last layer: the logits of the last n_logits tokens into
 * logits ([n_logits][vocab]; NULL when n_logits is 0). */
finch_status finch_pass_end(finch_ctx *c, float *logits);

#endif
