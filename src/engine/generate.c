/* generate.c - the one feed loop and the one decode loop (generate.h):
 * plain generation here, every press through src/press/press_session.c. */
#include "generate.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

const int32_t *finch_feed_piece(const int32_t *a, size_t na, const int32_t *b, size_t nb, size_t done,
                                size_t batch, int32_t *piece, size_t *take) {
    size_t total = na + nb;
    *take = total - done < batch ? total - done : batch;
    if (done + *take <= na) return a + done;
    for (size_t t = 0; t < *take; t++) piece[t] = done + t < na ? a[done + t] : b[done + t - na];
    return piece;
}

finch_status finch_feed_concat(finch_ctx *c, finch_kv_cache *kv, const int32_t *a, size_t na,
                               const int32_t *b, size_t nb, size_t pos0, size_t batch, float *logits,
                               int32_t *piece) {
    size_t total = na + nb, take;
    for (size_t done = 0; done < total; done += take) {
        const int32_t *ids = finch_feed_piece(a, na, b, nb, done, batch, piece, &take);
        bool last = done + take == total;
        finch_status st = finch_forward(c, kv, ids, take, pos0 + done, NULL, last ? logits : NULL,
                                        last && logits ? 1 : 0);
        if (st) return st;
    }
    return FINCH_OK;
}

finch_status finch_feed(finch_ctx *c, finch_kv_cache *kv, const int32_t *ids, size_t n,
                        size_t pos0, float *logits) {
    return finch_feed_concat(c, kv, ids, n, NULL, 0, pos0, finch_ctx_max_batch(c), logits, NULL);
}

finch_status finch_decode_loop(finch_sampler *s, size_t vocab, float *logits, size_t max_new,
                               int32_t eos, size_t room, finch_feed_one_fn feed, void *self,
                               finch_token_cb cb, void *user, int32_t *out, size_t *n_out,
                               bool *at_eos) {
    size_t n = 0;
    finch_status st = FINCH_OK;
    *at_eos = false;
    while (n < max_new) {
        int32_t id = finch_sample(s, logits, vocab);
        if (eos >= 0 && id == eos) {
            *at_eos = true;
            break;
        }
        if (out) out[n] = id;
        bool full = n >= room;
        n++;
        if (!full && (st = feed(self, id, logits))) break;
        if ((cb && cb(user, id)) || full) break;
    }
    *n_out = n;
    return st;
}

/* Plain generation: one token at a time into a cache of fixed capacity. */
typedef struct {
    finch_ctx *c;
    finch_kv_cache *kv;
    size_t pos;
} plain_feeder;

static finch_status plain_feed_one(void *self, int32_t id, float *logits) {
    plain_feeder *f = self;
    return finch_forward(f->c, f->kv, &id, 1, f->pos++, NULL, logits, 1);
}

finch_status finch_decode(finch_ctx *c, finch_kv_cache *kv, size_t pos, float *logits,
                          finch_sampler *s, size_t max_new, int32_t eos, finch_token_cb cb,
                          void *user, int32_t **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    int32_t *gen = finch_alloc(max_new ? max_new : 1, sizeof(int32_t));
    if (!gen) return FINCH_ERR_NOMEM;
    plain_feeder f = { c, kv, pos };
    size_t room = kv->capacity > pos ? kv->capacity - pos : 0, n = 0;
    bool at_eos;
    finch_status st = finch_decode_loop(s, finch_ctx_model(c)->cfg.vocab, logits, max_new, eos, room,
                                        plain_feed_one, &f, cb, user, gen, &n, &at_eos);
    if (st) {
        free(gen);
        return st;
    }
    if (at_eos) gen[n++] = eos; /* the end marker this API reports (n < max_new here) */
    *out = gen;
    *n_out = n;
    return FINCH_OK;
}
