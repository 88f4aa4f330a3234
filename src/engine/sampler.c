/* sampler.c - greedy, temperature and top-p (nucleus) sampling with a seed. */
#include "finch.h"
#include "kernels.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

finch_status finch_sampler_init(finch_sampler *s, finch_sampler_params p, size_t vocab) {
    if (!(p.temperature >= 0) || !(p.top_p > 0 && p.top_p <= 1))
        return finch_fail(FINCH_ERR_ARG, "sampler: temperature must be >= 0 and top-p in (0, 1]");
    s->p = p;
    s->state = p.seed ? p.seed : 0x9E3779B97F4A7C15ull;
    s->cap = vocab;
    s->probs = finch_alloc(vocab, sizeof(float));
    s->order = finch_alloc(vocab, sizeof(int32_t));
    if (!s->probs || !s->order) {
        finch_sampler_free(s);
        return FINCH_ERR_NOMEM;
    }
    return FINCH_OK;
}

void finch_sampler_free(finch_sampler *s) {
    free(s->probs);
    free(s->order);
    s->probs = NULL;
    s->order = NULL;
}

/* xorshift64*: small, seedable, the same on every platform. */
static float next_uniform(finch_sampler *s) {
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int32_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

static int by_prob_desc(const void *a, const void *b, void *probs) {
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    float pa = ((const float *)probs)[ia], pb = ((const float *)probs)[ib];
    if (pa != pb) return pa < pb ? 1 : -1;
    return ia < ib ? -1 : 1; /* equal probabilities: smaller id first */
}

int32_t finch_sample(finch_sampler *s, const float *logits, size_t vocab) {
    if (vocab > s->cap) vocab = s->cap;
    if (s->p.temperature == 0) return argmax(logits, vocab);
    float *p = s->probs;
    for (size_t i = 0; i < vocab; i++) p[i] = logits[i] / s->p.temperature;
    finch_softmax(p, vocab);
    float r = next_uniform(s);
    if (s->p.top_p >= 1) {
        float acc = 0;
        for (size_t i = 0; i < vocab; i++) {
            acc += p[i];
            if (r < acc) return (int32_t)i;
        }
        return (int32_t)(vocab - 1);
    }
    /* nucleus: the smallest set of most probable tokens whose mass >= top_p */
    for (size_t i = 0; i < vocab; i++) s->order[i] = (int32_t)i;
    qsort_r(s->order, vocab, sizeof(int32_t), by_prob_desc, p);
    float mass = 0;
    size_t keep = 0;
    while (keep < vocab && mass < s->p.top_p) mass += p[s->order[keep++]];
    float acc = 0, target = r * mass;
    for (size_t i = 0; i < keep; i++) {
        acc += p[s->order[i]];
        if (target < acc) return s->order[i];
    }
    return s->order[keep - 1];
}
