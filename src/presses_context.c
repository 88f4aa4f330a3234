/* presses_context.c - the paper's own baselines besides truncation, as
 * context selections in the same harness (Corallo & Papotti 2024, Sec. 5):
 *
 *   rag      split the context into chunks, rank them against the question
 *            with BM25, keep the best chunks up to the budget, in order
 *   lingua   LLMLingua-style: drop the tokens with the least
 *            self-information -log p(token | prefix) under the same model
 *            until the budget is met, keep the order
 *
 * Both give every context position a static score before the press runs
 * (finch_scorer_prepare); the driver (src/finch.c) then keeps the best rows
 * like every press, so a selection is a set of kept positions whose K/V
 * come from the same prefill and the same re-rotation as Finch's.
 * docs/presses.md states the formulas; tests/test_presses_kvpress.c checks
 * them against brute forces. */
#include "presses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ================================================================== BM25 */

/* Occurrences of term t in ids[0..n). */
static size_t count_term(const int32_t *ids, size_t n, int32_t t) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ids[i] == t;
    return c;
}

/* Okapi BM25 with Lucene's non-negative idf, ln(1 + (D - n_t + 0.5) /
 * (n_t + 0.5)); every occurrence of a term in the query counts (as
 * rank_bm25's get_scores does). */
void finch_bm25_chunk_scores(const int32_t *doc, size_t n, const int32_t *q, size_t m, size_t chunk,
                             double k1, double b, double *out) {
    if (n == 0) return;
    if (chunk == 0) chunk = n;
    size_t D = (n + chunk - 1) / chunk;
    double avgdl = (double)n / (double)D;
    for (size_t i = 0; i < n; i++) out[i] = 0;
    for (size_t t = 0; t < m; t++) {
        size_t n_t = 0; /* chunks holding the term */
        for (size_t c0 = 0; c0 < n; c0 += chunk)
            n_t += count_term(doc + c0, n - c0 < chunk ? n - c0 : chunk, q[t]) > 0;
        double idf = log(1.0 + ((double)D - (double)n_t + 0.5) / ((double)n_t + 0.5));
        for (size_t c0 = 0; c0 < n; c0 += chunk) {
            size_t len = n - c0 < chunk ? n - c0 : chunk;
            double f = (double)count_term(doc + c0, len, q[t]);
            double s = idf * f * (k1 + 1) / (f + k1 * (1 - b + b * (double)len / avgdl));
            for (size_t i = c0; i < c0 + len; i++) out[i] += s;
        }
    }
}

/* ====================================================== self-information */

/* -log p(ids[i] | ids[0..i)) for i = 1..N-1, from one forward pass over the
 * context in its own cache, logits for every position (batches of at most
 * 64 rows keep the logits buffer small).  out[0] is left alone. */
static finch_status self_information(finch_ctx *ctx, const int32_t *ids, size_t N, double *out) {
    const finch_model *m = finch_ctx_model(ctx);
    size_t vocab = m->cfg.vocab, B = finch_ctx_max_batch(ctx);
    if (B > 64) B = 64;
    finch_kv_cache kv;
    finch_status st = finch_kv_init(&kv, &m->cfg, N);
    if (st) return st;
    float *logits = finch_alloc(B, vocab * sizeof(float));
    if (!logits) {
        finch_kv_free(&kv);
        return FINCH_ERR_NOMEM;
    }
    for (size_t pos = 0; pos + 1 < N && !st; pos += B) { /* the last token predicts nothing here */
        size_t n = N - 1 - pos < B ? N - 1 - pos : B;
        if ((st = finch_forward(ctx, &kv, ids + pos, n, pos, NULL, logits, n))) break;
        for (size_t t = 0; t < n; t++) {
            const float *row = logits + t * vocab;
            double mx = -INFINITY, sum = 0;
            for (size_t v = 0; v < vocab; v++) mx = fmax(mx, row[v]);
            for (size_t v = 0; v < vocab; v++) sum += exp((double)row[v] - mx);
            int32_t next = ids[pos + t + 1];
            out[pos + t + 1] = (next >= 0 && (size_t)next < vocab) ? mx + log(sum) - row[next] : 0;
        }
    }
    free(logits);
    finch_kv_free(&kv);
    return st;
}

/* ================================================================ scorers */

static finch_status prepare_rag(const finch_press_params *p, const int32_t *C, size_t N, const int32_t *Q,
                                size_t m, double *out) {
    size_t P = p->protect < N ? p->protect : N;
    for (size_t i = 0; i < P; i++) out[i] = 0;
    finch_bm25_chunk_scores(C + P, N - P, Q, m, FINCH_RAG_CHUNK, FINCH_BM25_K1, FINCH_BM25_B, out + P);
    return FINCH_OK;
}

/* The first token (or the first after a protected prefix of none) has no
 * prefix to be predicted from: it scores +inf, i.e. it is kept first. */
static finch_status prepare_lingua(finch_ctx *ctx, const finch_press_params *p, const int32_t *C, size_t N,
                                   double *out) {
    size_t win = finch_ctx_model(ctx)->cfg.ctx_len;
    if (win && N > win) /* positions past the window would give meaningless surprisals */
        return finch_fail(FINCH_ERR_ARG, "press lingua reads the whole context in one pass: %zu tokens exceed the "
                          "model's %zu positions", N, win);
    finch_status st = self_information(ctx, C, N, out);
    if (st) return st;
    out[0] = p->protect ? 0 : INFINITY;
    for (size_t i = 1; i < p->protect && i < N; i++) out[i] = 0; /* never compete */
    return FINCH_OK;
}

finch_status finch_scorer_prepare(finch_scorer_id id, finch_ctx *ctx, const finch_press_params *p,
                                  const int32_t *context, size_t N, const int32_t *question, size_t m,
                                  double **out) {
    *out = NULL;
    if (id == FINCH_SCORER_KEYDIFF && finch_ctx_model(ctx)->cfg.head_dim > FINCH_KEYDIFF_MAX_HEAD_DIM)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "press keydiff: head_dim %zu exceeds %d",
                          finch_ctx_model(ctx)->cfg.head_dim, FINCH_KEYDIFF_MAX_HEAD_DIM);
    if (id != FINCH_SCORER_RAG && id != FINCH_SCORER_LINGUA) return FINCH_OK;
    double *s = finch_alloc(N ? N : 1, sizeof(double));
    if (!s) return FINCH_ERR_NOMEM;
    finch_status st = id == FINCH_SCORER_RAG ? prepare_rag(p, context, N, question, m, s)
                                             : prepare_lingua(ctx, p, context, N, s);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return FINCH_OK;
}

/* Every head of every layer: the prepared score of the row's position. */
static void token_score_finish(const finch_score_step *s, size_t l, double *acc) {
    for (size_t g = 0; g < s->kv->n_kv_head; g++) {
        const int32_t *pos = s->orig + (l * s->kv->n_kv_head + g) * s->orig_stride;
        for (size_t j = 0; j < s->n_cols; j++) acc[g * s->n_cols + j] = s->token_score[pos[j]];
    }
}

/* rag reads the question, but not through attention: the question need
 * not be fed with the chunks (question_aware 0). */
const finch_scorer finch_scorer_rag = { FINCH_SCORER_RAG, 0, NULL, NULL, token_score_finish, NULL };
const finch_scorer finch_scorer_lingua = { FINCH_SCORER_LINGUA, 0, NULL, NULL, token_score_finish, NULL };
