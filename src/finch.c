/* finch.c - Finch, prompt-guided KV-cache compression (Corallo & Papotti,
 * TACL 2024): the whole selection in one file, in data-flow order.
 *
 *   1. parameters and names
 *   2. budget arithmetic (how many positions stay, per mode and per chunk)
 *   3. scoring: question-row attention, accumulated per KV head from inside
 *      the forward pass (finch_hooks.on_attention); Finch is one scorer of
 *      the interface in src/presses.h, the baselines are in src/presses.c
 *   4. selection (heap top-k) and compaction (gather + key re-rotation)
 *   5. the two modes: iterative (the paper) and oneshot (kvpress FinchPress)
 *   6. after compression: the generation prompt, then decoding
 *   7. read back: stats, kept positions, dump, summary
 *
 * docs/finch.md states every choice made here and why.
 */
#include "finch_press.h"
#include "finch_run.h"
#include "presses.h"
#include "press_trace.h"
#include "topk.h"
#include "kernels.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ================================================ 1. parameters and names
 * src/press_params.c: defaults, the names of modes, selections,
 * normalisations and schedules, and their parsers. */

/* ============================================== 2. budget arithmetic */

/* K from --budget / --ratio / --cr for N context tokens (before clamping). */
static finch_status context_budget(const finch_press_params *p, size_t N, size_t *K) {
    switch (p->budget_kind) {
    case FINCH_BUDGET_TOKENS:
        if (p->budget == 0) return finch_fail(FINCH_ERR_ARG, "Finch budget must be >= 1 token");
        *K = p->budget;
        return FINCH_OK;
    case FINCH_BUDGET_RATIO: {
        if (!(p->ratio > 0) || isinf(p->ratio))
            return finch_fail(FINCH_ERR_ARG, "Finch ratio must be a positive number (got %g)", p->ratio);
        double k = ceil((double)N / p->ratio); /* the paper's "93x": K = N / X */
        *K = k >= (double)N ? N : (k < 1 ? 1 : (size_t)k);
        return FINCH_OK;
    }
    case FINCH_BUDGET_CR: {
        if (!(p->cr >= 0 && p->cr < 1))
            return finch_fail(FINCH_ERR_ARG, "Finch cr (fraction removed) must be in [0, 1) (got %g)", p->cr);
        double k = floor((double)N * (1.0 - p->cr));
        *K = k < 1 ? 1 : (size_t)k;
        return FINCH_OK;
    }
    }
    return finch_fail(FINCH_ERR_ARG, "unknown budget kind %d", (int)p->budget_kind);
}

/* The budget of N context tokens that all compete for a place. */
static finch_status resolve_unprotected(const finch_press_params *p, size_t N, size_t m, size_t *K,
                                        size_t *n_kept) {
    if (m == 0) return finch_fail(FINCH_ERR_ARG, "Finch needs a non-empty question");
    if (p->scorer == FINCH_SCORER_FULL) { /* the reference: nothing is evicted */
        *K = N;
        *n_kept = p->mode == FINCH_PRESS_ONESHOT ? N + m : N;
        return FINCH_OK;
    }
    if (p->mode == FINCH_PRESS_ONESHOT && p->budget_kind == FINCH_BUDGET_CR) {
        if (!(p->cr >= 0 && p->cr < 1))
            return finch_fail(FINCH_ERR_ARG, "Finch cr (fraction removed) must be in [0, 1) (got %g)", p->cr);
        /* kvpress: n_kept = max(1, int(k_len * (1 - compression_ratio))), k_len = N + m,
         * evaluated in IEEE double exactly as Python does (no fused multiply-add). */
        double k = floor((double)(N + m) * (1.0 - p->cr));
        size_t nk = k < 1 ? 1 : (size_t)k;
        if (nk < m)
            return finch_fail(FINCH_ERR_ARG,
                              "cr %g keeps %zu positions, fewer than the %zu question tokens "
                              "oneshot mode always keeps", p->cr, nk, m);
        *K = nk - m;
        *n_kept = nk;
        return FINCH_OK;
    }
    size_t k = 0;
    finch_status st = context_budget(p, N, &k);
    if (st) return st;
    if (k > N) k = N; /* K >= N: nothing is evicted */
    *K = k;
    *n_kept = p->mode == FINCH_PRESS_ONESHOT ? k + m : k;
    return FINCH_OK;
}

finch_status finch_press_resolve_budget(const finch_press_params *p, size_t N, size_t m,
                                        size_t *K, size_t *n_kept) {
    if (N == 0) return finch_fail(FINCH_ERR_ARG, "Finch needs a non-empty context");
    if (p->protect >= N)
        return finch_fail(FINCH_ERR_ARG, "the protected prefix (%zu tokens) leaves no context to compress "
                          "(N = %zu)", p->protect, N);
    /* The prefix is kept outright: the arithmetic sees only what follows it. */
    finch_status st = resolve_unprotected(p, N - p->protect, m, K, n_kept);
    if (!st) *n_kept += p->protect;
    return st;
}

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

/* ================================================= 3. scoring */

/* One observing row at absolute position pos (queries qrow, all heads): for
 * each query head h, the causal softmax of q.k/sqrt(d) over keys 0..pos in
 * fp32, added with weight w into acc[g][j] (g = h's KV group) for the
 * columns j < n_cols the row sees.  Never more than one attention row. */
static void accumulate_row_group(const finch_kv_cache *kv, size_t layer, size_t n_head,
                                 const float *qrow, size_t pos, size_t n_cols, double w, double *acc,
                                 float *scratch, size_t g) {
    size_t G = kv->n_kv_head, d = kv->head_dim, group = n_head / G, n_keys = pos + 1;
    size_t nc = n_cols < n_keys ? n_cols : n_keys; /* a context row sees no later column */
    float scale = 1.0f / sqrtf((float)d); /* the same factor the forward pass uses */
    for (size_t h = g * group; h < (g + 1) * group; h++) {
        const float *qh = qrow + h * d;
        for (size_t j = 0; j < n_keys; j++)
            scratch[j] = finch_dot_f32(qh, finch_kv_k(kv, layer, g, j), d) * scale;
        if (kv->dead) finch_masked_softmax(scratch, kv->dead + (layer * G + g) * kv->capacity, n_keys);
        else finch_softmax(scratch, n_keys); /* over every key the row sees */
        double *a = acc + g * n_cols;
        for (size_t j = 0; j < nc; j++) a[j] += w * (double)scratch[j];
    }
}

static void accumulate_row(const finch_kv_cache *kv, size_t layer, size_t n_head, const float *qrow,
                           size_t pos, size_t n_cols, double w, double *acc, float *scratch) {
    for (size_t g = 0; g < kv->n_kv_head; g++)
        accumulate_row_group(kv, layer, n_head, qrow, pos, n_cols, w, acc, scratch, g);
}

/* kvpress multiplies the window row i by k_len - window + i, i.e. the number
 * of keys the row sees minus one: late rows spread the same probability mass
 * over more keys, this puts rows on one scale.  The authors' Mistral code
 * multiplies by the number of keys the row sees. */
static double question_row_weight(int normalize, size_t pos) {
    return normalize == FINCH_NORMALIZE_AUTHORS ? (double)pos + 1.0 : normalize ? (double)pos : 1.0;
}

void finch_press_score_rows(const finch_kv_cache *kv, size_t layer, size_t n_head,
                            const float *q, size_t n, size_t pos0, size_t qstart,
                            size_t n_cols, int normalize, double *acc, float *scratch) {
    for (size_t r = 0; r < n; r++) {
        size_t pos = pos0 + r;
        if (pos < qstart) continue; /* a context row: it does not vote */
        accumulate_row(kv, layer, n_head, q + r * n_head * kv->head_dim, pos, n_cols,
                       question_row_weight(normalize, pos), acc, scratch);
    }
}

void finch_score_step_begin(const finch_scorer *sc, finch_score_step *s) {
    s->row_lo = s->row_hi = 0;
    if (sc->rows) sc->rows(s, &s->row_lo, &s->row_hi);
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
    size_t stride = s->n_head * s->kv->head_dim;
    float *scratch = j->scratch + finch_pool_worker() * j->scratch_stride;
    for (size_t pos = j->lo; pos < j->hi; pos++)
        accumulate_row_group(s->kv, j->layer, s->n_head, j->q + (pos - j->pos0) * stride, pos,
                             s->n_cols, j->sc->row_weight ? j->sc->row_weight(s, pos) : 1.0, j->acc,
                             scratch, g);
}

void finch_score_accumulate_pool(finch_pool *pool, const finch_scorer *sc, const finch_score_step *s,
                                 size_t layer, const float *q, size_t n, size_t pos0, double *acc,
                                 float *scratch, size_t scratch_stride) {
    score_job j = {sc, s, layer, pos0, s->row_lo > pos0 ? s->row_lo : pos0,
                   s->row_hi < pos0 + n ? s->row_hi : pos0 + n, q, acc, scratch, scratch_stride};
    if (j.lo >= j.hi) return;
    finch_pool_run(pool, s->kv->n_kv_head, score_group_task, &j);
}

void finch_score_accumulate(const finch_scorer *sc, const finch_score_step *s, size_t layer,
                            const float *q, size_t n, size_t pos0, double *acc, float *scratch) {
    finch_score_accumulate_pool(NULL, sc, s, layer, q, n, pos0, acc, scratch, 0);
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

const finch_scorer finch_scorer_finch = { FINCH_SCORER_FINCH, 1, finch_rows, finch_row_weight, finch_finish, NULL };

/* ================================ 4. selection and compaction */

void finch_press_compact_head(const finch_ctx *c, finch_kv_cache *kv, size_t l, size_t g,
                              const size_t *idx, size_t n) {
    finch_kv_gather(kv, l, g, idx, n);
    /* RoPE is a rotation by position: one more rotation by (r - idx[r]) makes
     * the key read as if it had been computed at position r. */
    for (size_t r = 0; r < n; r++)
        if (idx[r] != r) finch_rope_shift(c, l, finch_kv_k(kv, l, g, r), (long)r - (long)idx[r]);
}

/* ======================================================= the press object */

struct finch_press {
    const finch_model *m;
    finch_ctx *ctx;
    finch_press_params p;
    const finch_scorer *scorer;
    finch_press_stats st;
    finch_kv_cache kv;
    int compressed, prompted;
    size_t pos;              /* position of the next token fed                 */
    size_t prompt_end;       /* pos after the prompt (finch_press_rewind)      */
    int32_t *question;       /* copy of Q: the default generation prompt      */
    int32_t *kept;           /* [L][G][n_kept] original positions             */
    int32_t *orig;           /* [L][G][kv.capacity] original position per row */
    double *token_score;     /* [N] static scores (rag, lingua), or NULL      */
    size_t *head_budget;     /* [L][G] live rows per head (scorer->budgets)    */
    size_t *flat;            /* [G * cols_cap] scratch of scorer->budgets      */
    float *logits;           /* [vocab] at the last fed position              */
    float *prompt_logits;    /* [vocab] at the last prompt position           */
    /* scoring state, read by the hook */
    finch_score_step step;   /* the step in progress                           */
    double *acc;             /* [L][G][n_cols]                                 */
    double *layer_score;     /* [cols_cap] (select = layer)                    */
    size_t *idx;             /* [kv.capacity] kept rows of one head             */
    float *scratch;          /* [kv.capacity] one attention row               */
    int32_t *piece;          /* [batch] ids of one forward call                */
    size_t cols_cap;
    double *chunk_vec;       /* [N + m] kvpress chunk_length: scores of C ++ Q */
    long key_shift;          /* no_rerotate: kept keys rotated by n_kept - (N + m + 1) */
    finch_press_trace trace; /* schedule, scores, margins: for the dump    */
};

finch_status finch_press_new(const finch_model *m, finch_ctx *ctx, const finch_press_params *p,
                             finch_press **out) {
    *out = NULL;
    if (p->mode != FINCH_PRESS_ITERATIVE && p->mode != FINCH_PRESS_ONESHOT)
        return finch_fail(FINCH_ERR_ARG, "unknown Finch mode %d", (int)p->mode);
    if (p->select != FINCH_SELECT_HEAD && p->select != FINCH_SELECT_LAYER)
        return finch_fail(FINCH_ERR_ARG, "unknown Finch selection %d", (int)p->select);
    if (p->normalize < FINCH_NORMALIZE_OFF || p->normalize > FINCH_NORMALIZE_AUTHORS)
        return finch_fail(FINCH_ERR_ARG, "unknown normalisation %d", p->normalize);
    if (p->schedule == FINCH_SCHEDULE_AUTHORS && p->mode == FINCH_PRESS_ONESHOT)
        return finch_fail(FINCH_ERR_ARG, "the authors' schedule is a per-chunk budget: oneshot mode has no chunks");
    if (p->no_rerotate && p->mode != FINCH_PRESS_ONESHOT)
        return finch_fail(FINCH_ERR_ARG, "no re-rotation is kvpress's (rerotate_keys=False): oneshot mode only");
    if (p->kv_chunk && p->protect)
        return finch_fail(FINCH_ERR_ARG, "kv chunk (kvpress chunk_length) with a protected prefix is not implemented");
    if (p->kv_chunk && (p->mode != FINCH_PRESS_ONESHOT || p->budget_kind != FINCH_BUDGET_CR))
        return finch_fail(FINCH_ERR_ARG, "kv chunk (kvpress chunk_length) needs oneshot mode and a cr budget");
    if (p->schedule != FINCH_SCHEDULE_PROPORTIONAL && p->schedule != FINCH_SCHEDULE_AUTHORS)
        return finch_fail(FINCH_ERR_ARG, "unknown schedule %d", (int)p->schedule);
    const finch_scorer *scorer = finch_scorer_get(p->scorer);
    if (!scorer) return finch_fail(FINCH_ERR_ARG, "unknown press %d", (int)p->scorer);
    if (scorer->budgets && scorer->budgets != finch_scorer_pyramidkv.budgets && p->select == FINCH_SELECT_LAYER)
        return finch_fail(FINCH_ERR_ARG, "press %s allocates budgets per head: it needs --select head",
                          finch_scorer_name(p->scorer));
    if (scorer->budgets && (p->kv_chunk || p->no_rerotate || p->schedule == FINCH_SCHEDULE_AUTHORS))
        return finch_fail(FINCH_ERR_ARG, "press %s (budgets per layer or head) does not combine with --kv-chunk, "
                          "--no-rerotate or --schedule authors", finch_scorer_name(p->scorer));
    if (m != finch_ctx_model(ctx)) return finch_fail(FINCH_ERR_ARG, "Finch: the context belongs to another model");
    size_t max_batch = finch_ctx_max_batch(ctx), batch = p->batch ? p->batch : max_batch;
    if (batch > max_batch)
        return finch_fail(FINCH_ERR_ARG, "Finch: batch %zu exceeds the context's max_batch %zu", batch, max_batch);
    if (m->cfg.n_kv_head == 0 || m->cfg.n_head % m->cfg.n_kv_head)
        return finch_fail(FINCH_ERR_ARG, "Finch: %zu query heads do not split into %zu KV groups",
                          m->cfg.n_head, m->cfg.n_kv_head);
    finch_press *fp = finch_zalloc(1, sizeof *fp);
    if (!fp) return FINCH_ERR_NOMEM;
    fp->m = m;
    fp->ctx = ctx;
    fp->p = *p;
    fp->p.batch = batch;
    fp->scorer = scorer;
    fp->piece = finch_alloc(batch, sizeof(int32_t));
    if (!fp->piece) { free(fp); return FINCH_ERR_NOMEM; }
    *out = fp;
    return FINCH_OK;
}

void finch_press_free(finch_press *fp) {
    if (!fp) return;
    finch_kv_free(&fp->kv);
    free(fp->question); free(fp->kept); free(fp->orig);
    free(fp->logits); free(fp->prompt_logits);
    free(fp->acc); free(fp->layer_score); free(fp->idx); free(fp->scratch); free(fp->piece);
    free(fp->token_score); free(fp->head_budget); free(fp->flat);
    free(fp->chunk_vec);
    finch_trace_free(&fp->trace);
    free(fp);
}

/* The hook: runs in every layer after the batch's K/V entered the cache and
 * before attention, so each layer scores with its full, uncompressed cache. */
static finch_status score_hook(void *user, size_t layer, const float *q, size_t n,
                               size_t pos0, const finch_kv_cache *kv) {
    finch_press *fp = user;
    (void)kv; /* the step reads the same cache */
    if (pos0 + n <= fp->step.row_lo || pos0 >= fp->step.row_hi) return FINCH_OK; /* no observing row */
    double t0 = finch_now();
    double *acc = fp->acc + layer * fp->kv.n_kv_head * fp->step.n_cols;
    finch_score_accumulate_pool(finch_ctx_pool(fp->ctx), fp->scorer, &fp->step, layer, q, n, pos0, acc,
                                fp->scratch, fp->kv.capacity);
    fp->st.t_scoring += finch_now() - t0;
    return FINCH_OK;
}

/* Start a scoring step: candidates rows 0..n_cols-1, rows row0.. fed now,
 * n_question question rows after them; the accumulators are cleared. */
static void begin_step(finch_press *fp, size_t row0, size_t n_cols, size_t n_question) {
    finch_score_step *s = &fp->step;
    s->row0 = row0;
    s->n_cols = n_cols;
    s->n_question = n_question;
    finch_score_step_begin(fp->scorer, s);
    memset(fp->acc, 0, fp->kv.n_layer * fp->kv.n_kv_head * n_cols * sizeof(double));
}

/* The hooks for a feed: NULL when the step observes no row. */
static const finch_hooks *step_hooks(const finch_press *fp, finch_hooks *h) {
    *h = (finch_hooks){ (void *)fp, score_hook, NULL };
    return fp->step.row_lo < fp->step.row_hi ? h : NULL;
}

/* Feed a ++ b at positions fp->pos.. in calls of at most `batch` tokens (the
 * pieces are causal, so splitting does not change the result).  hooks may be
 * NULL; logits: NULL or [vocab] for the last token. */
static finch_status feed(finch_press *fp, const int32_t *a, size_t na, const int32_t *b,
                         size_t nb, const finch_hooks *hooks, float *logits) {
    size_t total = na + nb, done = 0;
    while (done < total) {
        size_t n = total - done < fp->p.batch ? total - done : fp->p.batch;
        for (size_t t = 0; t < n; t++) {
            size_t i = done + t;
            fp->piece[t] = i < na ? a[i] : b[i - na];
        }
        int last = done + n == total;
        finch_status st = finch_forward(fp->ctx, &fp->kv, fp->piece, n, fp->pos, hooks,
                                        last ? logits : NULL, last && logits ? 1 : 0);
        if (st) return st;
        fp->pos += n;
        done += n;
    }
    return FINCH_OK;
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
        finch_rope_shift(fp->ctx, l, finch_kv_k(&fp->kv, l, g, r), fp->key_shift);
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

/* Keep rows idx[0..P+k) of every head of layer l: the P protected rows,
 * then the k best of the other candidates.  Scores are acc (per KV head,
 * or summed over heads for select = layer); the kept rows come from the
 * first n_cols rows, and `extra` rows n_cols.. are appended
 * unconditionally (oneshot: the question). */
static void select_layer(finch_press *fp, size_t l, size_t k, size_t extra, const size_t *b) {
    size_t G = fp->kv.n_kv_head, nc = fp->step.n_cols, P = fp->p.protect, nk = P + k + extra;
    for (size_t r = 0; r < P; r++) fp->idx[r] = r;
    for (size_t e = 0; e < extra; e++) fp->idx[P + k + e] = nc + e;
    for (size_t g = 0; g < G; g++) {
        const double *ranked = ranking(fp, l, g);
        int32_t *orig = fp->orig + (l * G + g) * fp->kv.capacity;
        if (fp->p.select == FINCH_SELECT_HEAD || g == 0) top_after_prefix(ranked, nc, P, k, fp->idx);
        finch_trace_select(&fp->trace, l, g, ranked + P, nc - P, orig + P, fp->idx + P, k, P);
        if (b) finch_mask_beyond_budget(&fp->kv, l, g, ranked, nc, P, fp->idx + P, k, b[g], fp->flat);
        compact(fp, l, g, fp->idx, nk);
        for (size_t r = 0; r < nk; r++) orig[r] = orig[fp->idx[r]]; /* idx[r] >= r */
    }
    fp->kv.n_pos[l] = nk;
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
    for (size_t l = 0; l < L; l++) {
        if (fp->p.kv_chunk) select_layer_kv_chunks(fp, l);
        else select_layer(fp, l, kmax, extra, fp->scorer->budgets ? fp->head_budget + l * fp->kv.n_kv_head : NULL);
    }
    fp->st.t_scoring += t1 - t0;
    fp->st.t_compact += finch_now() - t1;
    return kmax;
}

/* ==================================================== 5. the two modes */

/* Buffers shared by both modes: the cache (capacity rows), the original
 * position of every row, the score accumulators for up to cols_cap columns. */
static finch_status alloc_state(finch_press *fp, size_t capacity, size_t cols_cap) {
    const finch_config *cfg = &fp->m->cfg;
    finch_status st = finch_kv_init(&fp->kv, cfg, capacity);
    if (st) return st;
    size_t LG = cfg->n_layer * cfg->n_kv_head, n;
    if (!finch_mul_ok(LG, cols_cap, &n)) return finch_fail(FINCH_ERR_NOMEM, "score buffer overflows");
    fp->cols_cap = cols_cap;
    fp->orig = finch_alloc(LG, capacity * sizeof(int32_t));
    fp->acc = finch_alloc(n ? n : 1, sizeof(double));
    fp->layer_score = finch_alloc(cols_cap ? cols_cap : 1, sizeof(double));
    fp->idx = finch_alloc(capacity, sizeof(size_t));
    fp->scratch = finch_alloc(finch_ctx_threads(fp->ctx) * capacity, sizeof(float)); /* per thread */
    fp->logits = finch_alloc(cfg->vocab, sizeof(float));
    if (!fp->orig || !fp->acc || !fp->layer_score || !fp->idx || !fp->scratch || !fp->logits)
        return FINCH_ERR_NOMEM;
    fp->st.kv_capacity = capacity;
    if (fp->scorer->budgets) {
        size_t G = cfg->n_kv_head;
        fp->head_budget = finch_alloc(cfg->n_layer * G, sizeof(size_t));
        fp->flat = finch_alloc(G * (cols_cap ? cols_cap : 1), sizeof(size_t));
        if (!fp->head_budget || !fp->flat || (st = finch_kv_enable_mask(&fp->kv))) return st ? st : FINCH_ERR_NOMEM;
    }
    fp->step = (finch_score_step){ .kv = &fp->kv, .p = &fp->p, .n_head = cfg->n_head,
                                   .orig = fp->orig, .orig_stride = capacity,
                                   .token_score = fp->token_score };
    return FINCH_OK;
}

/* Rows past..past+n-1 of every layer/head hold context positions c0... */
static void mark_rows(finch_press *fp, size_t past, size_t n, size_t c0) {
    size_t LG = fp->kv.n_layer * fp->kv.n_kv_head;
    for (size_t lg = 0; lg < LG; lg++)
        for (size_t r = 0; r < n; r++) fp->orig[lg * fp->kv.capacity + past + r] = (int32_t)(c0 + r);
}

/* The protected prefix C[0..P) into rows 0..P-1, before the first chunk:
 * no row of it observes a candidate (causal), so nothing is scored. */
static finch_status feed_prefix(finch_press *fp, const int32_t *C, size_t P) {
    if (P == 0) return FINCH_OK;
    double t0 = finch_now();
    finch_status st = feed(fp, C, P, NULL, 0, NULL, NULL);
    fp->st.t_prefill += finch_now() - t0;
    if (!st) mark_rows(fp, 0, P, 0);
    return st;
}

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
    finch_status st = alloc_state(fp, finch_plan_compress_rows(FINCH_PRESS_ITERATIVE, P, Kc, S, N_all, m), P + Kc + S);
    if (!st)
        st = finch_trace_init(&fp->trace, fp->kv.n_layer, fp->kv.n_kv_head, N_all, n_chunks, Kc, fp->p.record_steps);
    if (st || (st = feed_prefix(fp, C, P))) return st;
    fp->st.chunk = S;
    fp->st.n_chunks = n_chunks;
    fp->step.n_ctx = N_all;
    finch_hooks hooks;
    size_t past = P;
    for (size_t t = 0; t < n_chunks; t++) {
        size_t c0 = P + t * S, len = N_all - c0 < S ? N_all - c0 : S;
        begin_step(fp, past, past + len, mq);
        double t0 = finch_now(), s0 = fp->st.t_scoring;
        if ((st = feed(fp, C + c0, len, Q, mq, evict ? step_hooks(fp, &hooks) : NULL, NULL))) return st;
        fp->st.t_prefill += finch_now() - t0 - (fp->st.t_scoring - s0);
        mark_rows(fp, past, len, c0);
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
    finch_status st = alloc_state(fp, finch_plan_compress_rows(FINCH_PRESS_ONESHOT, 0, K, N, N, m), N);
    if (!st) st = finch_trace_init(&fp->trace, fp->kv.n_layer, fp->kv.n_kv_head, N, 1,
                                   S ? N + m : finch_press_rows_bound(fp->p.scorer, fp->kv.n_kv_head, N, K),
                                   fp->p.record_steps);
    if (!st && S && !(fp->chunk_vec = finch_alloc(N + m, sizeof(double)))) st = FINCH_ERR_NOMEM;
    if (st) return st;
    fp->st.chunk = N;
    fp->st.n_chunks = 1;
    fp->step.n_ctx = N;
    begin_step(fp, 0, N, m);
    finch_hooks hooks;
    double t0 = finch_now();
    if ((st = feed(fp, C, N, Q, m, step_hooks(fp, &hooks), NULL))) return st;
    fp->st.t_prefill += finch_now() - t0 - fp->st.t_scoring;
    mark_rows(fp, 0, N + m, 0);
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
    if (st) return st;
    fp->question = finch_alloc(n_q, sizeof(int32_t));
    if (!fp->question) return FINCH_ERR_NOMEM;
    memcpy(fp->question, question, n_q * sizeof(int32_t));

    finch_press_stats *s = &fp->st;
    s->mode = fp->p.mode;
    s->select = fp->p.select;
    s->scorer = fp->p.scorer;
    s->normalize = fp->p.normalize;
    s->n_ctx = n_ctx;
    s->n_question = n_q;
    s->n_protected = fp->p.protect;
    s->budget = K;
    s->n_kept = n_kept;
    /* oneshot may keep only Q */
    s->compression = K ? (double)(n_ctx - fp->p.protect) / (double)K : INFINITY;
    if (K < n_ctx - fp->p.protect) { /* rag, lingua: scores before the press runs */
        double t0 = finch_now();
        st = finch_scorer_prepare(fp->p.scorer, fp->ctx, &fp->p, context, n_ctx, question, n_q, &fp->token_score);
        if (st) return st;
        s->t_scoring += finch_now() - t0;
    }
    st = fp->p.mode == FINCH_PRESS_ONESHOT
             ? run_oneshot(fp, context, n_ctx, question, n_q, K, progress, user)
             : run_iterative(fp, context, n_ctx, question, n_q, K, progress, user);
    if (st) return st;
    if (fp->p.mode == FINCH_PRESS_ITERATIVE && fp->p.schedule == FINCH_SCHEDULE_AUTHORS) {
        size_t P = fp->p.protect, N = n_ctx - P;
        if (fp->pos == P) /* every chunk was shorter than the factor */
            return finch_fail(FINCH_ERR_ARG, "the authors' schedule keeps nothing: every chunk is shorter than "
                              "the compression factor ceil(N / K) = %zu", (N + K - 1) / (K ? K : 1));
        s->budget = fp->pos - P; /* at or below K */
        s->n_kept = n_kept = fp->pos;
        s->compression = (double)N / (double)s->budget;
    }
    if (fp->p.kv_chunk) { /* the chunks' shares, the question kept where they reach it */
        s->n_kept = n_kept = fp->pos;
        s->budget = 0;
        for (size_t r = 0; r < n_kept; r++) s->budget += (size_t)fp->orig[r] < n_ctx;
        s->compression = s->budget ? (double)n_ctx / (double)s->budget : INFINITY;
    }

    s->n_kept = n_kept = fp->pos; /* budgets per head: the largest head's rows */
    s->kv_bytes_full = finch_kv_bytes(&fp->kv, n_ctx + n_q);
    size_t LG = fp->kv.n_layer * fp->kv.n_kv_head;
    fp->kept = finch_alloc(LG, (n_kept ? n_kept : 1) * sizeof(int32_t));
    if (!fp->kept) return FINCH_ERR_NOMEM;
    for (size_t lg = 0; lg < LG; lg++)
        memcpy(fp->kept + lg * n_kept, fp->orig + lg * fp->kv.capacity, n_kept * sizeof(int32_t));
    s->n_masked = finch_kept_mark_masked(&fp->kv, fp->kept, n_kept); /* -1 there */
    s->kv_bytes_kept = 2 * (LG * n_kept - s->n_masked) * fp->kv.head_dim * sizeof(float); /* the live rows */
    /* The scoring buffers are done with; generation needs none of them. */
    free(fp->acc); free(fp->layer_score); free(fp->idx); free(fp->orig); free(fp->scratch);
    free(fp->token_score);
    fp->acc = fp->layer_score = fp->token_score = NULL;
    fp->idx = NULL;
    fp->orig = NULL;
    fp->scratch = NULL;
    fp->compressed = 1;
    return FINCH_OK;
}

/* ========================================= 6. prompt and decoding */

/* Grow the cache (copying the valid rows) so that `need` positions fit. */
static finch_status kv_reserve(finch_press *fp, size_t need) {
    if (need <= fp->kv.capacity) return FINCH_OK;
    finch_kv_cache nk;
    finch_status st = finch_kv_init(&nk, &fp->m->cfg, finch_plan_grow_rows(need));
    if (st) return st;
    size_t row = fp->kv.head_dim * sizeof(float);
    for (size_t l = 0; l < fp->kv.n_layer; l++) {
        for (size_t g = 0; g < fp->kv.n_kv_head; g++) {
            memcpy(finch_kv_k(&nk, l, g, 0), finch_kv_k(&fp->kv, l, g, 0), fp->kv.n_pos[l] * row);
            memcpy(finch_kv_v(&nk, l, g, 0), finch_kv_v(&fp->kv, l, g, 0), fp->kv.n_pos[l] * row);
        }
        nk.n_pos[l] = fp->kv.n_pos[l];
    }
    if ((st = finch_kv_copy_mask(&nk, &fp->kv))) {
        finch_kv_free(&nk);
        return st;
    }
    finch_kv_free(&fp->kv);
    fp->kv = nk;
    return FINCH_OK;
}

finch_status finch_press_prompt(finch_press *fp, const int32_t *prompt, size_t n, float *logits) {
    if (!fp->compressed) return finch_fail(FINCH_ERR_ARG, "Finch: compress before feeding the prompt");
    if (fp->prompted) return finch_fail(FINCH_ERR_ARG, "Finch: the prompt was already fed");
    if (!prompt || n == 0) {
        if (fp->p.mode == FINCH_PRESS_ONESHOT)
            return finch_fail(FINCH_ERR_ARG, "oneshot mode needs a non-empty answer prefix");
        prompt = fp->question; /* iterative: the question is asked again */
        n = fp->st.n_question;
    }
    double t0 = finch_now();
    finch_status st = kv_reserve(fp, fp->pos + n);
    if (st || (st = feed(fp, prompt, n, NULL, 0, NULL, fp->logits))) return st;
    size_t vocab = fp->m->cfg.vocab;
    fp->prompt_logits = finch_alloc(vocab, sizeof(float));
    if (!fp->prompt_logits) return FINCH_ERR_NOMEM;
    memcpy(fp->prompt_logits, fp->logits, vocab * sizeof(float));
    if (logits) memcpy(logits, fp->logits, vocab * sizeof(float));
    fp->st.n_prompt = n;
    fp->st.t_generation += finch_now() - t0;
    fp->prompt_end = fp->pos;
    fp->prompted = 1;
    return FINCH_OK;
}

finch_status finch_press_run(finch_press *fp, const int32_t *context, size_t n_ctx,
                             const int32_t *question, size_t n_q, const int32_t *prompt,
                             size_t n_prompt, finch_press_progress progress, void *user) {
    finch_status st = finch_press_compress(fp, context, n_ctx, question, n_q, progress, user);
    return st ? st : finch_press_prompt(fp, prompt, n_prompt, NULL);
}

finch_status finch_press_decode(finch_press *fp, finch_sampler *s, size_t max_new, int32_t eos,
                                finch_press_on_token on_token, void *user, int32_t *out,
                                size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!fp->prompted) return finch_fail(FINCH_ERR_ARG, "Finch: feed the prompt before decoding");
    size_t vocab = fp->m->cfg.vocab, produced = 0;
    double t0 = finch_now();
    finch_status st = FINCH_OK;
    while (produced < max_new) {
        int32_t id = finch_sample(s, fp->logits, vocab);
        if (eos >= 0 && id == eos) break;
        if (out) out[produced] = id;
        produced++;
        /* Every kept token is fed, so the cache always ends with the answer
         * and the logits are those after it. */
        if ((st = kv_reserve(fp, fp->pos + 1)) || (st = feed(fp, &id, 1, NULL, 0, NULL, fp->logits)))
            break;
        if (on_token && on_token(user, id)) break;
    }
    fp->st.n_generated += produced;
    fp->st.t_generation += finch_now() - t0;
    if (n_out) *n_out = produced;
    return st;
}

finch_status finch_press_append(finch_press *fp, const int32_t *ids, size_t n, float *logits) {
    if (!fp->prompted) return finch_fail(FINCH_ERR_ARG, "Finch: feed the prompt before appending tokens");
    finch_status st = kv_reserve(fp, fp->pos + n);
    if (st || (n && (st = feed(fp, ids, n, NULL, 0, NULL, fp->logits)))) return st;
    if (logits) memcpy(logits, fp->logits, fp->m->cfg.vocab * sizeof(float));
    return FINCH_OK;
}

finch_status finch_press_rewind(finch_press *fp) {
    if (!fp->prompted) return finch_fail(FINCH_ERR_ARG, "Finch: nothing to rewind before the prompt");
    /* Rows past the prompt are simply overwritten by what is fed next. */
    fp->pos = fp->prompt_end;
    for (size_t l = 0; l < fp->kv.n_layer; l++) fp->kv.n_pos[l] = fp->prompt_end;
    memcpy(fp->logits, fp->prompt_logits, fp->m->cfg.vocab * sizeof(float));
    return FINCH_OK;
}

/* ============================================================ 7. read back */

const finch_press_stats *finch_press_get_stats(const finch_press *fp) { return &fp->st; }
const finch_kv_cache *finch_press_cache(const finch_press *fp) { return &fp->kv; }
const int32_t *finch_press_kept(const finch_press *fp) { return fp->kept; }
const float *finch_press_prompt_logits(const finch_press *fp) { return fp->prompt_logits; }
const finch_press_trace *finch_press_get_trace(const finch_press *fp) { return &fp->trace; }
const finch_press_params *finch_press_get_params(const finch_press *fp) { return &fp->p; }
const finch_model *finch_press_model(const finch_press *fp) { return fp->m; }
const finch_ctx *finch_press_ctx(const finch_press *fp) { return fp->ctx; }

void finch_press_copy_kv(const finch_press *fp, float *keys, float *values) {
    size_t nk = fp->st.n_kept, d = fp->kv.head_dim, row = d * sizeof(float);
    for (size_t l = 0; l < fp->kv.n_layer; l++)
        for (size_t g = 0; g < fp->kv.n_kv_head; g++) {
            size_t o = (l * fp->kv.n_kv_head + g) * nk * d;
            if (keys) memcpy(keys + o, finch_kv_k(&fp->kv, l, g, 0), nk * row);
            if (values) memcpy(values + o, finch_kv_v(&fp->kv, l, g, 0), nk * row);
            for (size_t r = 0; keys && fp->key_shift && r < nk; r++) /* back to the original positions */
                finch_rope_shift(fp->ctx, l, keys + o + r * d, -fp->key_shift);
        }
}

long finch_press_key_shift(const finch_press *fp) { return fp->key_shift; }
