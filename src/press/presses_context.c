/* presses_context.c - the paper's own baselines besides truncation, as
 * context selections in the same harness (Corallo & Papotti 2024, Sec. 5):
 *
 *   rag      split the context into chunks, rank them against the question
 *            with BM25, keep the best chunks up to the budget, in order
 *   lingua   LLMLingua-style: drop the tokens with the least
 *            self-information -log p(token | prefix) under the same model
 *            until the budget is met, keep the order; with segments
 *            (lingua_segment), LLMLingua's iterative compression: each
 *            segment scored given the already-compressed prefix
 *
 * Both give every context position a static score before the press runs
 * (finch_scorer_prepare); the driver (src/press/finch.c) then keeps the best rows
 * like every press, so a selection is a set of kept positions whose K/V
 * come from the same prefill and the same re-rotation as Finch's.
 * docs/presses.md states the formulas; tests/test_presses_kvpress.c checks
 * them against brute forces. */
#include "presses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"
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

/* -log softmax(row)[next], in double (0 for an id out of range). */
static double surprisal(const float *row, size_t vocab, int32_t next) {
    double mx = -INFINITY, sum = 0;
    for (size_t v = 0; v < vocab; v++) mx = fmax(mx, row[v]);
    for (size_t v = 0; v < vocab; v++) sum += exp((double)row[v] - mx);
    return next >= 0 && (size_t)next < vocab ? mx + log(sum) - row[next] : 0;
}

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
            out[pos + t + 1] = surprisal(row, vocab, ids[pos + t + 1]);
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

/* ====================================== LLMLingua's iterative compression */

/* Feed ids[0..n) at positions pos0.. in batches of B rows; loss[t] =
 * -log p(ids[t] | everything before it), from prev (the logits row before
 * ids[0]) for t = 0; prev ends as the row after ids[n-1]. */
static finch_status feed_scored(finch_ctx *ctx, finch_kv_cache *kv, const int32_t *ids, size_t n, size_t pos0,
                                float *logits, size_t B, float *prev, double *loss) {
    size_t vocab = finch_ctx_model(ctx)->cfg.vocab;
    for (size_t b0 = 0; b0 < n; b0 += B) {
        size_t nb = n - b0 < B ? n - b0 : B;
        finch_status st = finch_forward(ctx, kv, ids + b0, nb, pos0 + b0, NULL, logits, nb);
        if (st) return st;
        loss[b0] = surprisal(prev, vocab, ids[b0]);
        for (size_t t = 1; t < nb; t++) loss[b0 + t] = surprisal(logits + (t - 1) * vocab, vocab, ids[b0 + t]);
        memcpy(prev, logits + (nb - 1) * vocab, vocab * sizeof *prev);
    }
    return FINCH_OK;
}

/* Segment [s, e)'s share of the Kc tokens over the R = N - H competing
 * ones: floor(Kc (e - H) / R) - floor(Kc (s - H) / R), so the shares sum
 * to Kc and each segment keeps LLMLingua's uniform ratio tau = Kc / R. */
static size_t segment_quota(size_t Kc, size_t H, size_t R, size_t s, size_t e) {
    return (size_t)((unsigned __int128)Kc * (e - H) / R - (unsigned __int128)Kc * (s - H) / R);
}

typedef struct {
    finch_ctx *ctx;
    finch_kv_cache kv;
    float *logits, *prev, *saved;
    double *loss;
    size_t *top, B, kept; /* kept: the compressed prefix's length (the cache's) */
    int32_t *ids;
} lingua_iter;

/* One segment C[s, e) after the compressed prefix: its tokens' self-
 * information given that prefix, the q highest kept (ties to the earlier
 * position), the cache cut back to the prefix and the kept ones fed. */
static finch_status lingua_segment(lingua_iter *it, const int32_t *C, size_t s, size_t e, size_t q, double *out) {
    size_t L = e - s, vocab = finch_ctx_model(it->ctx)->cfg.vocab;
    memcpy(it->saved, it->prev, vocab * sizeof *it->prev);
    finch_status st = feed_scored(it->ctx, &it->kv, C + s, L, it->kept, it->logits, it->B, it->prev, it->loss);
    if (st) return st;
    finch_topk(it->loss, L, q, it->top);
    for (size_t t = 0; t < L; t++) out[s + t] = 0;
    for (size_t i = 0; i < q; i++) {
        out[s + it->top[i]] = 1;
        it->ids[i] = C[s + it->top[i]];
    }
    for (size_t l = 0; l < it->kv.n_layer; l++) it->kv.n_pos[l] = it->kept; /* drop the segment's rows */
    if (!q) { memcpy(it->prev, it->saved, vocab * sizeof *it->prev); return FINCH_OK; }
    st = finch_feed(it->ctx, &it->kv, it->ids, q, it->kept, it->prev);
    it->kept += q;
    return st;
}

/* LLMLingua's iterative token-level compression (prompt_compressor.py,
 * iterative_compress_prompt): segments of S tokens in order, each scored
 * by -log p(token | the compressed prefix, the segment before it) and
 * cut to its share of the budget; the compressed tokens take consecutive
 * positions, as LLMLingua feeds the compressed ids.  out: 1 kept, 0
 * dropped, +inf for the first token (nothing predicts it), 0 protected. */
static finch_status lingua_iterative(finch_ctx *ctx, const finch_press_params *p, const int32_t *C, size_t N,
                                     size_t K, double *out) {
    const finch_model *m = finch_ctx_model(ctx);
    size_t S = p->lingua_segment, vocab = m->cfg.vocab, win = m->cfg.ctx_len;
    size_t H = p->protect ? (p->protect < N ? p->protect : N) : 1, Kc = p->protect || !K ? K : K - 1;
    size_t rows = H + Kc + S < N ? H + Kc + S : N; /* the compressed prefix and one segment, at most N */
    if (win && rows > win)
        return finch_fail(FINCH_ERR_ARG, "press lingua with segments of %zu: %zu kept tokens and a segment exceed the "
                          "model's %zu positions", S, H + Kc, win);
    lingua_iter it = { .ctx = ctx, .B = finch_ctx_max_batch(ctx) < 64 ? finch_ctx_max_batch(ctx) : 64 };
    finch_status st = finch_kv_init(&it.kv, &m->cfg, rows);
    it.logits = finch_alloc(it.B, vocab * sizeof(float));
    it.prev = finch_alloc(2, vocab * sizeof(float));
    it.loss = finch_alloc(S, sizeof(double));
    it.top = finch_alloc(S, sizeof(size_t));
    it.ids = finch_alloc(S, sizeof(int32_t));
    if (!st && (!it.logits || !it.prev || !it.loss || !it.top || !it.ids)) st = FINCH_ERR_NOMEM;
    if (!st) {
        it.saved = it.prev + vocab;
        for (size_t i = 0; i < H; i++) out[i] = 0;
        if (!p->protect) out[0] = INFINITY;
        st = finch_feed(ctx, &it.kv, C, H, 0, it.prev);
        it.kept = H;
    }
    for (size_t s = H; !st && s < N; s += S) {
        size_t e = N - s < S ? N : s + S;
        st = lingua_segment(&it, C, s, e, segment_quota(Kc, H, N - H, s, e), out);
    }
    finch_kv_free(&it.kv);
    free(it.logits); free(it.prev); free(it.loss); free(it.top); free(it.ids);
    return st;
}

/* The first token (or the first after a protected prefix of none) has no
 * prefix to be predicted from: it scores +inf, i.e. it is kept first. */
static finch_status prepare_lingua(finch_ctx *ctx, const finch_press_params *p, const int32_t *C, size_t N,
                                   size_t m, double *out) {
    if (p->lingua_segment) {
        size_t K, n_kept;
        finch_status st = finch_press_resolve_budget(p, N, m, &K, &n_kept);
        return st ? st : lingua_iterative(ctx, p, C, N, K, out);
    }
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
                                             : prepare_lingua(ctx, p, context, N, m, s);
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
const finch_scorer finch_scorer_rag = { .id = FINCH_SCORER_RAG, .finish = token_score_finish };
const finch_scorer finch_scorer_lingua = { .id = FINCH_SCORER_LINGUA, .finish = token_score_finish };
