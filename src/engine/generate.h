/* generate.h - the one feed loop and the one decode loop, shared by plain
 * generation (finch_feed, finch_decode in include/finch.h) and every press
 * (src/press/press_session.c). */
#ifndef FINCH_GENERATE_H
#define FINCH_GENERATE_H

#include "finch.h"

#include <stdbool.h>

/* The piece of a ++ b that starts at `done`: *take = min(batch, na + nb -
 * done) ids, read in place from a, or copied into piece (room for `batch`
 * ids) where they straddle a and b.  Every feed splits its tokens so. */
const int32_t *finch_feed_piece(const int32_t *a, size_t na, const int32_t *b, size_t nb, size_t done,
                                size_t batch, int32_t *piece, size_t *take);

/* Feed a ++ b (nb may be 0) at positions pos0.. through the forward pass in
 * calls of at most `batch` tokens (finch_feed_piece), each attending to
 * everything before it (the pieces are causal, so the split changes no
 * logit).  logits: NULL or [vocab] after the last id; piece: as above. */
finch_status finch_feed_concat(finch_ctx *c, finch_kv_cache *kv, const int32_t *a, size_t na,
                               const int32_t *b, size_t nb, size_t pos0, size_t batch, float *logits,
                               int32_t *piece);

/* Feed one decoded token; `logits` become those after it. */
typedef finch_status (*finch_feed_one_fn)(void *self, int32_t id, float *logits);

/* The decode loop.  `logits` ([vocab], in/out) predict the next token:
 * sample it; EOS (eos >= 0) ends the answer and is neither kept nor fed
 * (*at_eos says so); any other token is kept in out[] (room for max_new; may
 * be NULL), fed back while `room` tokens fit (then the loop stops: the cache
 * is full), and handed to cb (nonzero: stop).  So the cache ends with the
 * answer and the logits are those after it.  *n_out: tokens kept. */
finch_status finch_decode_loop(finch_sampler *s, size_t vocab, float *logits, size_t max_new,
                               int32_t eos, size_t room, finch_feed_one_fn feed, void *self,
                               finch_token_cb cb, void *user, int32_t *out, size_t *n_out,
                               bool *at_eos);

#endif
