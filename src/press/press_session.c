/* press_session.c - the session around a compression (include/finch_press.h):
 *
 *   1. the press object: parameters checked, buffers, its feed (chunks,
 *      question, prompt and answer all go through the engine's one feed
 *      loop, src/engine/generate.c)
 *   2. before and after the selection (finch.c): the stats, the kept
 *      positions, the scoring buffers freed
 *   3. after compression: the generation prompt, decoding, appending and
 *      rewinding
 *   4. read back: stats, kept positions, the cache (the summary,
 *      finch_press_describe, is in press_params.c)
 *
 * The selection itself (budget schedule, scoring, top-k, compaction and
 * re-rotation, both modes) is src/press/finch.c; the dump is dump.c. */
#include "press_internal.h"
#include "finch_run.h"
#include "generate.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ================================================= 1. the press object */

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
    free(fp->acc); free(fp->layer_score); free(fp->idx); free(fp->scratch); free(fp->piece); free(fp->keys32);
    free(fp->token_score); free(fp->head_budget); free(fp->flat);
    free(fp->chunk_vec);
    finch_trace_free(&fp->trace);
    free(fp);
}

finch_status press_feed(finch_press *fp, const int32_t *a, size_t na, const int32_t *b, size_t nb,
                        float *logits) {
    finch_status st = finch_feed_concat(fp->ctx, &fp->kv, a, na, b, nb, fp->pos, fp->p.batch, logits, fp->piece);
    if (!st) fp->pos += na + nb;
    return st;
}

/* ================================= 2. before and after the selection */

finch_status press_alloc_state(finch_press *fp, size_t capacity, size_t cols_cap) {
    const finch_config *cfg = &fp->m->cfg;
    finch_status st = finch_kv_init_type(&fp->kv, cfg, capacity, fp->p.cache_type);
    if (st) return st;
    size_t LG = cfg->n_layer * cfg->n_kv_head, n;
    if (!finch_mul_ok(LG, cols_cap, &n)) return finch_fail(FINCH_ERR_NOMEM, "score buffer overflows");
    fp->cols_cap = cols_cap;
    fp->orig = finch_alloc(LG, capacity * sizeof(int32_t));
    fp->acc = finch_alloc(n ? n : 1, sizeof(double));
    fp->layer_score = finch_alloc(cols_cap ? cols_cap : 1, sizeof(double));
    fp->idx = finch_alloc(finch_ctx_threads(fp->ctx) * capacity, sizeof(size_t)); /* per thread */
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
    if (fp->kv.type == FINCH_CACHE_F16 && fp->scorer->rows) { /* its keys converted once per scoring call */
        size_t stride = capacity * cfg->head_dim;
        if (!(fp->keys32 = finch_alloc(finch_ctx_threads(fp->ctx), stride * sizeof(float)))) return FINCH_ERR_NOMEM;
        fp->step.keys32 = fp->keys32;
        fp->step.keys32_stride = stride;
    }
    return FINCH_OK;
}

/* Start a scoring step: candidates rows 0..n_cols-1, rows row0.. fed now,
 * n_question question rows after them; the accumulators are cleared. */
void press_begin_step(finch_press *fp, size_t row0, size_t n_cols, size_t n_question) {
    finch_score_step *s = &fp->step;
    s->row0 = row0;
    s->n_cols = n_cols;
    s->n_question = n_question;
    finch_score_step_begin(fp->scorer, s);
    memset(fp->acc, 0, fp->kv.n_layer * fp->kv.n_kv_head * n_cols * sizeof(double));
}

/* Rows past..past+n-1 of every layer/head hold context positions c0... */
void press_mark_rows(finch_press *fp, size_t past, size_t n, size_t c0) {
    size_t LG = fp->kv.n_layer * fp->kv.n_kv_head;
    for (size_t lg = 0; lg < LG; lg++)
        for (size_t r = 0; r < n; r++) fp->orig[lg * fp->kv.capacity + past + r] = (int32_t)(c0 + r);
}

/* The protected prefix C[0..P) into rows 0..P-1, before the first chunk:
 * no row of it observes a candidate (causal), so nothing is scored. */
finch_status press_feed_prefix(finch_press *fp, const int32_t *C, size_t P) {
    if (P == 0) return FINCH_OK;
    double t0 = finch_now();
    finch_status st = press_feed(fp, C, P, NULL, 0, NULL);
    fp->st.t_prefill += finch_now() - t0;
    if (!st) press_mark_rows(fp, 0, P, 0);
    return st;
}

finch_status press_begin(finch_press *fp, const int32_t *question, size_t n_q, size_t n_ctx, size_t K,
                         size_t n_kept) {
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
    return FINCH_OK;
}

finch_status press_end(finch_press *fp, size_t n_ctx, size_t n_q, size_t K) {
    finch_press_stats *s = &fp->st;
    size_t n_kept = s->n_kept;
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
    s->kv_bytes_kept = 2 * (LG * n_kept - s->n_masked) * fp->kv.head_dim * finch_kv_value_bytes(&fp->kv); /* the live rows */
    /* The scoring buffers are done with; generation needs none of them. */
    free(fp->acc); free(fp->layer_score); free(fp->idx); free(fp->orig); free(fp->scratch); free(fp->keys32);
    free(fp->token_score);
    fp->acc = fp->layer_score = fp->token_score = NULL;
    fp->idx = NULL;
    fp->orig = NULL;
    fp->scratch = fp->keys32 = NULL;
    fp->step.keys32 = NULL;
    fp->compressed = 1;
    return FINCH_OK;
}

/* ===================================== 3. the prompt and decoding */

/* Grow the cache (copying the valid rows) so that `need` positions fit. */
static finch_status kv_reserve(finch_press *fp, size_t need) {
    if (need <= fp->kv.capacity) return FINCH_OK;
    finch_kv_cache nk;
    finch_status st = finch_kv_init_type(&nk, &fp->m->cfg, finch_plan_grow_rows(need), fp->kv.type);
    if (st) return st;
    finch_kv_copy_rows(&nk, &fp->kv);
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
    if (st || (st = press_feed(fp, prompt, n, NULL, 0, fp->logits))) return st;
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

/* One decoded token into the cache, grown as needed. */
static finch_status feed_one(void *self, int32_t id, float *logits) {
    finch_press *fp = self;
    finch_status st = kv_reserve(fp, fp->pos + 1);
    return st ? st : press_feed(fp, &id, 1, NULL, 0, logits);
}

finch_status finch_press_decode(finch_press *fp, finch_sampler *s, size_t max_new, int32_t eos,
                                finch_token_cb on_token, void *user, int32_t *out, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!fp->prompted) return finch_fail(FINCH_ERR_ARG, "Finch: feed the prompt before decoding");
    size_t produced = 0;
    bool at_eos;
    double t0 = finch_now();
    finch_status st = finch_decode_loop(s, fp->m->cfg.vocab, fp->logits, max_new, eos, SIZE_MAX, feed_one, fp,
                                        on_token, user, out, &produced, &at_eos);
    fp->st.n_generated += produced;
    fp->st.t_generation += finch_now() - t0;
    if (n_out) *n_out = produced;
    return st;
}

finch_status finch_press_append(finch_press *fp, const int32_t *ids, size_t n, float *logits) {
    if (!fp->prompted) return finch_fail(FINCH_ERR_ARG, "Finch: feed the prompt before appending tokens");
    finch_status st = kv_reserve(fp, fp->pos + n);
    if (st || (n && (st = press_feed(fp, ids, n, NULL, 0, fp->logits)))) return st;
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

/* ============================================================ 4. read back */

const finch_press_stats *finch_press_get_stats(const finch_press *fp) { return &fp->st; }
const finch_kv_cache *finch_press_cache(const finch_press *fp) { return &fp->kv; }
const int32_t *finch_press_kept(const finch_press *fp) { return fp->kept; }
const float *finch_press_prompt_logits(const finch_press *fp) { return fp->prompt_logits; }
const finch_press_trace *finch_press_get_trace(const finch_press *fp) { return &fp->trace; }
const finch_press_params *finch_press_get_params(const finch_press *fp) { return &fp->p; }
const finch_model *finch_press_model(const finch_press *fp) { return fp->m; }
const finch_ctx *finch_press_ctx(const finch_press *fp) { return fp->ctx; }

void finch_press_copy_kv(const finch_press *fp, float *keys, float *values) {
    size_t nk = fp->st.n_kept, d = fp->kv.head_dim;
    for (size_t l = 0; l < fp->kv.n_layer; l++)
        for (size_t g = 0; g < fp->kv.n_kv_head; g++) {
            size_t o = (l * fp->kv.n_kv_head + g) * nk * d;
            finch_kv_read(&fp->kv, l, g, 0, nk, keys ? keys + o : NULL, values ? values + o : NULL);
            for (size_t r = 0; keys && fp->key_shift && r < nk; r++) /* back to the original positions */
                finch_rope_shift(fp->ctx, l, keys + o + r * d, -fp->key_shift);
        }
}

long finch_press_key_shift(const finch_press *fp) { return fp->key_shift; }
