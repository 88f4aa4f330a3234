/* finch.c - Finch, prompt-guided KV-cache compression (Corallo & Papotti,
 * TACL 2024): the selection, in data-flow order.
 *
 *   1. the budget schedule: how many positions stay after each chunk
 *   2. scoring: question-row attention, accumulated per KV head, layer by
 *      layer as the step is fed (feed_and_score); Finch is one scorer of
 *      the interface in presses.h, the baselines are in presses.c
 *   3. selection (heap top-k), compaction (gather) and key re-rotation
 *   4. the two modes: iterative (the paper) and oneshot (kvpress FinchPress),
 *      and finch_press_compress, which runs one of them
 *
 * Around it in src/press/: K and the run plan (run_plan.c), parameters and
 * names (press_params.c), the press object, prompt, decoding and read-back
 * (press_session.c), the dump (dump.c), what a selection records
 * (press_trace.c).  docs/finch.md states every choice made here and why.
 */
#include "press_internal.h"
#include "finch_run.h"
#include "forward.h"
#include "generate.h"
#include "topk.h"
#include "kernels.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ================================================ 1. the budget schedule
 * K itself, from --budget / --ratio / --cr, is resolved with the run plan
 * (finch_press_resolve_budget, src/press/run_plan.c). */

finch_status finch_press_chunk_budget(size_t K, size_t N, size_t past, size_t chunk_len,
                                      size_t c_t, size_t *k_t) {
    if (N == 0 || c_t > N || c_t == 0)
        return finch_fail(FINCH_ERR_ARG, "chunk budget: %zu of %zu context tokens", c_t, N);
    if (K > N) K = N; /* floor(K c_t / N) >= c_t either way: the min picks past + chunk */
    size_t prod;
    if (!finch_mul_ok(K, c_t, &prod))
        return finch_fail(FINCH_ERR_ARG, "chunk budget: K * c_t overflows (K %zu, c_t %zu)", K, c_t);
    size_t share = prod / N;
    if (share < 1) share = 1;
    size_t all = past + chunk_len;
    *k_t = all < share ? all : share;
    return FINCH_OK;
}

finch_status finch_press_chunk_budget_authors(size_t K, size_t N, size_t past, size_t chunk_len, size_t *k_t) {
    if (N == 0) return finch_fail(FINCH_ERR_ARG, "chunk budget: an empty context");
    if (K > N) K = N;
    if (K == 0) K = 1;
    size_t cf = (N + K - 1) / K; /* the authors' integer compression factor */
    *k_t = past + chunk_len / cf;
    return FINCH_OK;
}

/* ================================================= 2. scoring */

/* One observing row at absolute position pos (queries qrow, all heads): for
 * each query head h, the causal softmax of q.k/sqrt(d) over keys 0..pos in
 * fp32, added with weight w into acc[g][j] (g = h's KV group) for the
 * columns j < n_cols the row sees.  Never more than one attention row. */
static void accumulate_row_group(const finch_kv_cache *kv, size_t layer, size_t n_head,
                                 const float *qrow, size_t pos, size_t n_cols, double w, double *acc,
                                 float *scratch, size_t g, const float *keys) {
    size_t G = kv->n_kv_head, d = kv->head_dim, group = n_head / G, n_keys = pos + 1;
    size_t nc = n_cols < n_keys ? n_cols : n_keys; /* a context row sees no later column */
    float scale = 1.0f / sqrtf((float)d); /* the same factor the forward pass uses */
    float key[FINCH_KV_MAX_HEAD_DIM]; /* an f16 cache's key as f32: scores stay fp32 */
    for (size_t h = g * group; h < (g + 1) * group; h++) {
        const float *qh = qrow + h * d;
        if (keys) finch_dot_rows_f32(qh, keys, n_keys, d, scale, scratch);
        else
            for (size_t j = 0; j < n_keys; j++)
                scratch[j] = finch_dot_f32(qh, finch_kv_key_f32(kv, layer, g, j, key), d) * scale;
        double *a = acc + g * n_cols;
        if (!kv->dead) { /* the softmax over every key the row sees */
            finch_softmax_accumulate(scratch, n_keys, w, a, nc);
            continue;
        }
        finch_masked_softmax(scratch, kv->dead + (layer * G + g) * kv->capacity, n_keys);
        for (size_t j = 0; j < nc; j++) a[j] += w * (double)scratch[j];
    }
}

/* kvpress multiplies the window row i by k_len - window + i, i.e. the number
 * of keys the row sees minus one: late rows spread the same probability mass
 * over more keys, this puts rows on one scale.  The authors' Mistral code
 * multiplies by the number of keys the row sees. */
static double question_row_weight(int normalize, size_t pos) {
    return normalize == FINCH_NORMALIZE_AUTHORS ? (double)pos + 1.0 : normalize ? (double)pos : 1.0;
}

typedef struct {
    const finch_scorer *sc;
    const finch_score_step *s;
    size_t layer, pos0, lo, hi;
    const float *q;
    double *acc;
    float *scratch;
    size_t scratch_stride; /* floats of scratch per thread of the run */
} score_job;

/* KV group g for every observing row: acc[g][.] receives its additions in
 * the order of the one-thread loop (rows, then the group's heads), so the
 * sums are the same bits for any thread count. */
static void score_group_task(void *arg, size_t g) {
    const score_job *j = arg;
    const finch_score_step *s = j->s;
    size_t stride = s->n_head * s->kv->head_dim, worker = finch_pool_worker();
    float *scratch = j->scratch + worker * j->scratch_stride;
    /* the group's keys as f32 rows: the cache's own, or an f16 cache's
     * converted once for every row of the call */
    const float *keys = NULL;
    if (s->kv->type != FINCH_CACHE_F16) keys = finch_kv_k(s->kv, j->layer, g, 0);
    else if (s->keys32) {
        float *k32 = s->keys32 + worker * s->keys32_stride;
        finch_kv_read(s->kv, j->layer, g, 0, j->hi, k32, NULL);
        keys = k32;
    }
    for (size_t pos = j->lo; pos < j->hi; pos++)
        accumulate_row_group(s->kv, j->layer, s->n_head, j->q + (pos - j->pos0) * stride, pos,
                             s->n_cols, j->sc->row_weight ? j->sc->row_weight(s, pos) : 1.0, j->acc,
                             scratch, g, keys);
}

void finch_score_accumulate_pool(finch_pool *pool, const finch_scorer *sc, const finch_score_step *s,
                                 size_t layer, const float *q, size_t n, size_t pos0, double *acc,
                                 float *scratch, size_t scratch_stride) {
    score_job j = {sc, s, layer, pos0, s->row_lo > pos0 ? s->row_lo : pos0,
                   s->row_hi < pos0 + n ? s->row_hi : pos0 + n, q, acc, scratch, scratch_stride};
    if (j.lo >= j.hi) return;
    finch_pool_run(pool, s->kv->n_kv_head, score_group_task, &j);
}

/* Finch: the question rows, right after the candidates. */
static void finch_rows(const finch_score_step *s, size_t *lo, size_t *hi) {
    *lo = s->n_cols;
    *hi = s->n_cols + s->n_question;
}

static double finch_row_weight(const finch_score_step *s, size_t pos) {
    return question_row_weight(s->p->normalize, pos);
}

/* Iterative ranks by the sums (the paper).  Oneshot takes kvpress's means:
 * over the window rows, then over the query heads of the group; a positive
 * constant, so the ranking is that of the sums too. */
static void finch_finish(const finch_score_step *s, size_t l, double *acc) {
    (void)l;
    if (s->p->mode != FINCH_PRESS_ONESHOT) return;
    size_t G = s->kv->n_kv_head;
    double scale = 1.0 / ((double)s->n_question * (double)(s->n_head / G));
    for (size_t i = 0; i < G * s->n_cols; i++) acc[i] *= scale;
}

const finch_scorer finch_scorer_finch = {
    .id = FINCH_SCORER_FINCH, .question_aware = 1, .rows = finch_rows, .row_weight = finch_row_weight,
    .finish = finch_finish,
};

/* A step's feed a ++ b (the chunk; the question, when it is read), cut
 * into forward calls as every feed is (finch_feed_piece) and run one layer
 * at a time: as soon as a layer's cache holds the call's tokens, their
 * observing rows score it (only that layer's queries are ever held). */
static finch_status feed_and_score(finch_press *fp, const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t total = na + nb, take, per_layer = fp->kv.n_kv_head * fp->step.n_cols;
    for (size_t done = 0; done < total; done += take) {
        const int32_t *ids = finch_feed_piece(a, na, b, nb, done, fp->p.batch, fp->piece, &take);
        size_t pos0 = fp->pos + done;
        bool observes = pos0 < fp->step.row_hi && pos0 + take > fp->step.row_lo;
        finch_status st = finch_pass_begin(fp->ctx, &fp->kv, ids, take, pos0, 0, false);
        if (!st) finch_pass_last_queries(fp->ctx, fp->step.row_lo, observes ? fp->step.row_hi : 0);
        for (size_t l = 0; !st && l < fp->kv.n_layer; l++) {
            const float *q;
            if ((st = finch_pass_layer(fp->ctx, &fp->kv, l, &q)) || !observes) continue;
            double t0 = finch_now();
            finch_score_accumulate_pool(finch_ctx_pool(fp->ctx), fp->scorer, &fp->step, l, q, take, pos0,
                                        fp->acc + l * per_layer, fp->scratch, fp->kv.capacity);
            fp->st.t_scoring += finch_now() - t0;
        }
        if (st || (st = finch_pass_end(fp->ctx, NULL))) return st;
    }
    fp->pos += total;
    return FINCH_OK;
}

/* ============================ 3. selection, compaction, re-rotation */

void finch_press_compact_head(const finch_ctx *c, finch_kv_cache *kv, size_t l, size_t g,
                              const size_t *idx, size_t n) {
    finch_kv_gather(kv, l, g, idx, n);
    /* RoPE is a rotation by position: one more rotation by (r - idx[r]) makes
     * the key read as if it had been computed at position r. */
    for (size_t r = 0; r < n; r++)
        if (idx[r] != r) finch_kv_shift_key(c, kv, l, g, r, (long)r - (long)idx[r]);
}

/* Keep rows idx[0..n) of layer l, head g.  Re-rotated to their ranks; or,
 * without re-rotation (kvpress rerotate_keys=False), every key shifted by
 * the same key_shift: attention reads only position differences, so keys at
 * p + shift and a prompt at rows n_kept.. is the model seeing keys at p and
 * the prompt at N + m + 1.. . */
static void compact(finch_press *fp, size_t l, size_t g, const size_t *idx, size_t n) {
    if (!fp->p.no_rerotate) {
        finch_press_compact_head(fp->ctx, &fp->kv, l, g, idx, n);
        return;
    }
    finch_kv_gather(&fp->kv, l, g, idx, n);
    for (size_t r = 0; r < n && fp->key_shift; r++)
        finch_kv_shift_key(fp->ctx, &fp->kv, l, g, r, fp->key_shift);
}

/* The ranking of layer l for KV head g: its own scores, or the layer's sum
 * (computed into layer_score when g == 0). */
static const double *ranking(finch_press *fp, size_t l, size_t g) {
    size_t G = fp->kv.n_kv_head, nc = fp->step.n_cols;
    const double *acc = fp->acc + l * G * nc;
    if (fp->p.select == FINCH_SELECT_HEAD) return acc + g * nc;
    if (g == 0)
        for (size_t j = 0; j < nc; j++) {
            double s = 0;
            for (size_t h = 0; h < G; h++) s += acc[h * nc + j];
            fp->layer_score[j] = s;
        }
    return fp->layer_score;
}

/* The k best of the candidate rows P..nc-1 (scores s[0..nc)) into
 * idx[P..P+k), as rows: the protected rows 0..P-1 never compete. */
static void top_after_prefix(const double *s, size_t nc, size_t P, size_t k, size_t *idx) {
    finch_topk(s + P, nc - P, k, idx + P);
    for (size_t r = P; r < P + k; r++) idx[r] += P;
}

/* Keep rows idx[0..P+k+extra) of layer l, head g: the P protected rows,
 * the k best of the other candidates (by `ranked`), then `extra` rows
 * n_cols.. unconditionally (oneshot: the question).  b: the head's budget
 * (budget scorers) or NULL.  idx: [kv.capacity] of the caller's; rank
 * false keeps the rows it holds (select = layer: the first head's). */
static void keep_head(finch_press *fp, size_t l, size_t g, const double *ranked, size_t k, size_t extra,
                      const size_t *b, size_t *idx, bool rank) {
    size_t G = fp->kv.n_kv_head, nc = fp->step.n_cols, P = fp->p.protect, nk = P + k + extra;
    int32_t *orig = fp->orig + (l * G + g) * fp->kv.capacity;
    if (rank) {
        for (size_t r = 0; r < P; r++) idx[r] = r;
        for (size_t e = 0; e < extra; e++) idx[P + k + e] = nc + e;
        top_after_prefix(ranked, nc, P, k, idx);
    }
    finch_trace_select(&fp->trace, l, g, ranked + P, nc - P, orig + P, idx + P, k, P);
    if (b) finch_mask_beyond_budget(&fp->kv, l, g, ranked, nc, P, idx + P, k, b[g], fp->flat);
    compact(fp, l, g, idx, nk);
    for (size_t r = 0; r < nk; r++) orig[r] = orig[idx[r]]; /* idx[r] >= r */
}

/* Keep rows of every head of layer l (keep_head).  Scores are acc (per KV
 * head, or summed over heads for select = layer: one ranking for all). */
static void select_layer(finch_press *fp, size_t l, size_t k, size_t extra, const size_t *b) {
    size_t G = fp->kv.n_kv_head;
    for (size_t g = 0; g < G; g++)
        keep_head(fp, l, g, ranking(fp, l, g), k, extra, b, fp->idx,
                  fp->p.select == FINCH_SELECT_HEAD || g == 0);
    fp->kv.n_pos[l] = fp->p.protect + k + extra;
}

typedef struct {
    finch_press *fp;
    size_t k, extra;
} select_job;

/* One (layer, KV head) of select = head: every head has its own ranking,
 * rows and cache, so tasks share nothing but the read-only scores, and the
 * result is the same for any thread count. */
static void select_head_task(void *arg, size_t task) {
    const select_job *j = arg;
    finch_press *fp = j->fp;
    size_t G = fp->kv.n_kv_head, l = task / G, g = task % G;
    keep_head(fp, l, g, ranking(fp, l, g), j->k, j->extra, NULL, fp->idx + finch_pool_worker() * fp->kv.capacity,
              true);
}

/* kvpress's per-chunk share: max(1, int(len * (1 - cr))) in IEEE double. */
static size_t kvpress_chunk_keep(size_t len, double cr) {
    double k = floor((double)len * (1.0 - cr));
    return k < 1 ? 1 : (size_t)k;
}

/* kvpress chunk_length (oneshot): the scores over C ++ Q, the question's
 * padded with the layer's largest score + 1 as kvpress pads them; each
 * chunk of kv_chunk positions keeps its own max(1, int(len (1 - cr))) best,
 * so the question stays only where its chunk's share reaches it. */
static void select_layer_kv_chunks(finch_press *fp, size_t l) {
    size_t G = fp->kv.n_kv_head, nc = fp->step.n_cols, T = nc + fp->step.n_question, S = fp->p.kv_chunk, n = 0;
    double top = -INFINITY, *vec = fp->chunk_vec;
    for (size_t g = 0; g < (fp->p.select == FINCH_SELECT_HEAD ? G : 1); g++) {
        const double *r = ranking(fp, l, g);
        for (size_t j = 0; j < nc; j++) top = r[j] > top ? r[j] : top;
    }
    for (size_t g = 0; g < G; g++) {
        memcpy(vec, ranking(fp, l, g), nc * sizeof(double));
        for (size_t j = nc; j < T; j++) vec[j] = top + 1;
        int32_t *orig = fp->orig + (l * G + g) * fp->kv.capacity;
        n = 0;
        for (size_t i = 0; i < T; i += S) {
            size_t len = T - i < S ? T - i : S, k = kvpress_chunk_keep(len, fp->p.cr);
            finch_topk(vec + i, len, k, fp->idx + n);
            finch_trace_select(&fp->trace, l, g, vec + i, len, orig + i, fp->idx + n, k, 0);
            for (size_t r = n; r < n + k; r++) fp->idx[r] += i;
            n += k;
        }
        compact(fp, l, g, fp->idx, n);
        for (size_t r = 0; r < n; r++) orig[r] = orig[fp->idx[r]];
    }
    fp->kv.n_pos[l] = n;
}

/* The scorer's final transform of every layer (scoring time), then the k
 * best rows of every layer plus `extra` (compaction time). */
static size_t select_all(finch_press *fp, size_t k, size_t extra) {
    size_t L = fp->kv.n_layer, per_layer = fp->kv.n_kv_head * fp->step.n_cols;
    double t0 = finch_now();
    if (fp->scorer->finish)
        for (size_t l = 0; l < L; l++) fp->scorer->finish(&fp->step, l, fp->acc + l * per_layer);
    size_t kmax = fp->scorer->budgets
                      ? finch_scorer_budgets(fp->scorer, &fp->step, k, fp->acc, fp->head_budget, fp->flat) : k;
    double t1 = finch_now();
    if (!fp->p.kv_chunk && fp->p.select == FINCH_SELECT_HEAD && !fp->scorer->budgets) {
        select_job j = {fp, kmax, extra};
        finch_pool_run(finch_ctx_pool(fp->ctx), L * fp->kv.n_kv_head, select_head_task, &j);
        for (size_t l = 0; l < L; l++) fp->kv.n_pos[l] = fp->p.protect + kmax + extra;
    } else
        for (size_t l = 0; l < L; l++) {
            if (fp->p.kv_chunk) select_layer_kv_chunks(fp, l);
            else select_layer(fp, l, kmax, extra, fp->scorer->budgets ? fp->head_budget + l * fp->kv.n_kv_head : NULL);
        }
    fp->st.t_scoring += t1 - t0;
    fp->st.t_compact += finch_now() - t1;
    return kmax;
}

/* ==================================================== 4. the two modes */

/* The chunks cover the N - P context tokens after the protected prefix;
 * the schedule and K count only those (docs/finch.md). */
static finch_status run_iterative(finch_press *fp, const int32_t *C, size_t N_all, const int32_t *Q,
                                  size_t m, size_t K, finch_press_progress progress, void *user) {
    size_t P = fp->p.protect, N = N_all - P;
    size_t S = fp->p.chunk && fp->p.chunk < N ? fp->p.chunk : N;
    size_t n_chunks = (N + S - 1) / S;
    int evict = K < N;
    /* The question is fed only where a row of it is read: when it scores
     * (Finch) and something is evicted.  Otherwise its K/V would be dropped
     * unread (context rows never attend to it: it comes after them, and
     * later chunks see only the cache), so the result is the same. */
    size_t mq = evict && fp->scorer->question_aware ? m : 0;
    /* The cache holds at most the prefix, K kept + one chunk + the question;
     * with budgets per layer or head, the largest. */
    size_t Kc = finch_press_rows_bound(fp->p.scorer, fp->m->cfg.n_kv_head, N, K);
    size_t rows = finch_plan_compress_rows(FINCH_PRESS_ITERATIVE, P, Kc, S, N_all, m);
    finch_status st = press_alloc_state(fp, rows, rows - m); /* the candidates: all but the question */
    if (!st)
        st = finch_trace_init(&fp->trace, fp->kv.n_layer, fp->kv.n_kv_head, N_all, n_chunks, Kc, fp->p.record_steps);
    if (st || (st = press_feed_prefix(fp, C, P))) return st;
    fp->st.chunk = S;
    fp->st.n_chunks = n_chunks;
    fp->step.n_ctx = N_all;
    size_t past = P;
    for (size_t t = 0; t < n_chunks; t++) {
        size_t c0 = P + t * S, len = N_all - c0 < S ? N_all - c0 : S;
        press_begin_step(fp, past, past + len, mq);
        double t0 = finch_now(), s0 = fp->st.t_scoring;
        st = evict ? feed_and_score(fp, C + c0, len, Q, mq) : press_feed(fp, C + c0, len, Q, mq, NULL);
        if (st) return st;
        fp->st.t_prefill += finch_now() - t0 - (fp->st.t_scoring - s0);
        press_mark_rows(fp, past, len, c0);
        size_t k_t;
        st = fp->p.schedule == FINCH_SCHEDULE_AUTHORS
                 ? finch_press_chunk_budget_authors(K, N, past - P, len, &k_t)
                 : finch_press_chunk_budget(K, N, past - P, len, c0 - P + len, &k_t);
        if (st) return st;
        finch_trace_begin_step(&fp->trace, k_t);
        past = P + (evict ? select_all(fp, k_t, 0) : k_t); /* budgets: the largest head's */
        fp->pos = past;
        if (progress) progress(user, t + 1, n_chunks);
    }
    return FINCH_OK;
}

static finch_status run_oneshot(finch_press *fp, const int32_t *C, size_t N, const int32_t *Q,
                                size_t m, size_t K, finch_press_progress progress, void *user) {
    size_t S = fp->p.kv_chunk, n_kept = fp->p.protect + K + m;
    if (S && !((double)S > (double)m / (1.0 - fp->p.cr))) /* kvpress asserts it */
        return finch_fail(FINCH_ERR_ARG, "kv chunk %zu must exceed question / (1 - cr) = %zu / %g", S, m,
                          1.0 - fp->p.cr);
    if (S) { /* the chunks' shares */
        n_kept = 0;
        for (size_t i = 0; i < N + m; i += S) n_kept += kvpress_chunk_keep(N + m - i < S ? N + m - i : S, fp->p.cr);
    }
    finch_status st = press_alloc_state(fp, finch_plan_compress_rows(FINCH_PRESS_ONESHOT, 0, K, N, N, m), N);
    if (!st) st = finch_trace_init(&fp->trace, fp->kv.n_layer, fp->kv.n_kv_head, N, 1,
                                   S ? N + m : finch_press_rows_bound(fp->p.scorer, fp->kv.n_kv_head, N, K),
                                   fp->p.record_steps);
    if (!st && S && !(fp->chunk_vec = finch_alloc(N + m, sizeof(double)))) st = FINCH_ERR_NOMEM;
    if (st) return st;
    fp->st.chunk = N;
    fp->st.n_chunks = 1;
    fp->step.n_ctx = N;
    press_begin_step(fp, 0, N, m);
    double t0 = finch_now();
    if ((st = feed_and_score(fp, C, N, Q, m))) return st;
    fp->st.t_prefill += finch_now() - t0 - fp->st.t_scoring;
    press_mark_rows(fp, 0, N + m, 0);
    /* kvpress pads the question's scores with max + 1, i.e. always keeps it;
     * here it is appended directly. */
    finch_trace_begin_step(&fp->trace, n_kept);
    if (fp->p.no_rerotate) fp->key_shift = (long)n_kept - (long)(N + m + 1);
    select_all(fp, K, m);
    fp->pos = fp->kv.n_pos[0]; /* P + K + m; kvpress chunks: their shares; budgets: P + the largest + m */
    if (progress) progress(user, 1, 1);
    return FINCH_OK;
}

finch_status finch_press_compress(finch_press *fp, const int32_t *context, size_t n_ctx,
                                  const int32_t *question, size_t n_q,
                                  finch_press_progress progress, void *user) {
    if (fp->compressed || fp->kv.k) return finch_fail(FINCH_ERR_ARG, "Finch: a press compresses once");
    size_t K, n_kept;
    finch_status st = finch_press_resolve_budget(&fp->p, n_ctx, n_q, &K, &n_kept);
    if (st || (st = press_begin(fp, question, n_q, n_ctx, K, n_kept))) return st;
    if (K < n_ctx - fp->p.protect) { /* rag, lingua: scores before the press runs */
        double t0 = finch_now();
        st = finch_scorer_prepare(fp->p.scorer, fp->ctx, &fp->p, context, n_ctx, question, n_q, &fp->token_score);
        if (st) return st;
        fp->st.t_scoring += finch_now() - t0;
    }
    st = fp->p.mode == FINCH_PRESS_ONESHOT
             ? run_oneshot(fp, context, n_ctx, question, n_q, K, progress, user)
             : run_iterative(fp, context, n_ctx, question, n_q, K, progress, user);
    return st ? st : press_end(fp, n_ctx, n_q, K);
}
