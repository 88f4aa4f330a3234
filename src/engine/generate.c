/* generate.c - feeding a sequence in batches, and the decode loop. */
#include "finch.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

finch_status finch_feed(finch_ctx *c, finch_kv_cache *kv, const int32_t *ids, size_t n,
                        size_t pos0, float *logits) {
    size_t batch = finch_ctx_max_batch(c);
    for (size_t done = 0; done < n;) {
        size_t take = n - done < batch ? n - done : batch;
        bool last = done + take == n;
        finch_status st = finch_forward(c, kv, ids + done, take, pos0 + done, NULL,
                                        last ? logits : NULL, last && logits ? 1 : 0);
        if (st) return st;
        done += take;
    }
    return FINCH_OK;
}

finch_status finch_decode(finch_ctx *c, finch_kv_cache *kv, size_t pos, float *logits,
                          finch_sampler *s, size_t max_new, int32_t eos, finch_token_cb cb,
                          void *user, int32_t **out, size_t *n_out) {
    size_t vocab = finch_ctx_model(c)->cfg.vocab;
    *out = NULL;
    *n_out = 0;
    int32_t *gen = finch_alloc(max_new ? max_new : 1, sizeof(int32_t));
    if (!gen) return FINCH_ERR_NOMEM;
    size_t n = 0;
    finch_status st = FINCH_OK;
    while (n < max_new) {
        int32_t tok = finch_sample(s, logits, vocab);
        gen[n++] = tok;
        if (cb) cb(user, tok);
        if (tok == eos || n == max_new || pos >= kv->capacity) break;
        if ((st = finch_forward(c, kv, &tok, 1, pos++, NULL, logits, 1))) break;
    }
    if (st) {
        free(gen);
        return st;
    }
    *out = gen;
    *n_out = n;
    return FINCH_OK;
}
