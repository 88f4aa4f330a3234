/* run_plan.c - the run plan (include/finch_run.h): budget, chunk, window,
 * answer length and memory peak of a compress-then-answer run, decided once
 * for every command that runs a press. */
#include "finch_run.h"
#include "util.h"

#include <math.h>
#include <stdint.h>

finch_run_params finch_run_defaults(void) {
    finch_run_params p = { 0 };
    p.press = finch_press_defaults();
    p.press.seed = FINCH_DEFAULT_SEED;
    p.n_predict = FINCH_DEFAULT_N_PREDICT;
    return p;
}

size_t finch_plan_compress_rows(finch_press_mode mode, size_t P, size_t K, size_t S, size_t N, size_t m) {
    if (mode == FINCH_PRESS_ONESHOT) return N + m;
    if (S == 0 || S > N - P) S = N - P;
    /* the rows kept are rows read before the chunk: with the chunk, never
     * more than the N - P tokens after the prefix (a padded press's bound
     * K can reach N - P itself) */
    return P + (K < N - P - S ? K + S : N - P) + m;
}

size_t finch_plan_grow_rows(size_t need) { return need + need / 4 + 16; }

size_t finch_plan_cache_peak(size_t compress, size_t answer) {
    return answer <= compress ? compress : compress + finch_plan_grow_rows(answer) + 1;
}

size_t finch_plan_default_chunk(size_t free_positions) {
    return free_positions < FINCH_DEFAULT_CHUNK_MAX ? free_positions : FINCH_DEFAULT_CHUNK_MAX;
}

/* The chunk of an iterative run: the protected prefix and K kept context
 * tokens and mq question tokens share the window with it (the default
 * and the --chunk check, as for every press).  Chunks cover the N - P
 * tokens after the prefix.  A press that pads heads holds up to K_rows
 * kept rows, but rows kept and the chunk are never more than the N - P
 * tokens read (finch_plan_compress_rows): only when that does not fit is
 * the default chunk cut, or the run refused naming P + K_rows. */
static finch_status plan_chunk(const finch_run_params *p, size_t win, size_t K, size_t K_rows, size_t mq,
                               size_t *chunk) {
    size_t P = p->press.protect, kk = P + K, free_tokens = p->n_ctx - P;
    if (kk + mq >= win)
        return finch_fail(FINCH_ERR_ARG, "the question (%zu tokens) and the budget (%zu) leave no room for a chunk "
                          "in the model's %zu positions", p->n_question, kk, win);
    size_t room = win - kk - mq, S = p->press.chunk;
    if (S == 0) S = finch_plan_default_chunk(room);
    else if (S > room)
        return finch_fail(FINCH_ERR_ARG, "--chunk %zu + budget %zu + question %zu exceed the model's %zu positions",
                          S, kk, p->n_question, win);
    if (S > free_tokens) S = free_tokens;
    if (finch_plan_compress_rows(FINCH_PRESS_ITERATIVE, P, K_rows, S, p->n_ctx, mq) > win) { /* padded */
        kk = P + K_rows;
        if (kk + mq >= win)
            return finch_fail(FINCH_ERR_ARG, "the question (%zu tokens) and the budget (%zu) leave no room for a "
                              "chunk in the model's %zu positions", p->n_question, kk, win);
        if (p->press.chunk)
            return finch_fail(FINCH_ERR_ARG, "--chunk %zu + budget %zu + question %zu exceed the model's %zu "
                              "positions", S, kk, p->n_question, win);
        S = win - kk - mq;
    }
    *chunk = S;
    return FINCH_OK;
}

/* The full reference reads the context chunk by chunk into a cache that
 * keeps everything and never feeds the question while it reads, so only
 * the whole context must fit (the prompt and answer are checked after);
 * the chunk is the batch cut only, which changes no number. */
static finch_status plan_full_chunk(const finch_run_params *p, size_t win, size_t *chunk) {
    if (p->n_ctx > win)
        return finch_fail(FINCH_ERR_ARG, "the full cache needs the whole context (%zu tokens) but the model has "
                          "%zu positions", p->n_ctx, win);
    size_t S = p->press.chunk ? p->press.chunk : FINCH_DEFAULT_CHUNK_MAX, free_tokens = p->n_ctx - p->press.protect;
    *chunk = S < free_tokens ? S : free_tokens;
    return FINCH_OK;
}

/* Positions while compressing: the chunk (or, oneshot, C ++ Q). */
static finch_status plan_compress(const finch_run_params *p, size_t win, finch_run_plan *o) {
    size_t N = p->n_ctx, mq = p->n_question;
    if (mq >= win)
        return finch_fail(FINCH_ERR_ARG, "the question has %zu tokens; the model's %zu positions leave no room "
                          "for the context", mq, win);
    if (p->press.mode == FINCH_PRESS_ONESHOT) {
        if (N + mq > win)
            return finch_fail(FINCH_ERR_ARG, "oneshot needs context + question = %zu positions but the model has "
                              "%zu; use --mode iterative", N + mq, win);
        o->chunk = N;
        return FINCH_OK;
    }
    if (p->press.scorer == FINCH_SCORER_FULL) return plan_full_chunk(p, win, &o->chunk);
    return plan_chunk(p, win, o->K, o->K_rows, mq, &o->chunk); /* K <= N - P; pyramidkv, adakv: padded K_rows */
}

/* After compression: the prompt, then the answer (cut to the window) and
 * any teacher-forced tokens (which must fit). */
static finch_status plan_answer(const finch_run_params *p, size_t win, finch_run_plan *o) {
    size_t fed = p->n_prompt ? p->n_prompt : p->n_question, used = o->n_kept + fed;
    if (used > win)
        return finch_fail(FINCH_ERR_ARG, "the compressed cache (%zu positions) and the prompt (%zu tokens) exceed "
                          "the model's %zu positions", o->n_kept, fed, win);
    if (p->n_forced > win - used)
        return finch_fail(FINCH_ERR_ARG, "the compressed cache (%zu positions), the prompt (%zu tokens) and the "
                          "reference answer (%zu tokens) exceed the model's %zu positions", o->n_kept, fed,
                          p->n_forced, win);
    o->n_predict = p->n_predict < win - used ? p->n_predict : win - used;
    o->n_predict_reduced = o->n_predict < p->n_predict;
    return FINCH_OK;
}

finch_status finch_plan_run(const finch_model *m, const finch_run_params *p, finch_run_plan *out) {
    finch_run_plan o = { 0 };
    if (!m && !p->window) return finch_fail(FINCH_ERR_ARG, "run plan: no model and no window");
    size_t win = p->window ? p->window : m->cfg.ctx_len;
    o.window = win;
    finch_status st = finch_press_resolve_budget(&p->press, p->n_ctx, p->n_question, &o.K, &o.n_kept);
    if (st) return st;
    /* presses that pad heads to the largest budget hold more rows (an
     * unknown head count: the bound is the whole context) */
    o.K_rows = finch_press_rows_bound(p->press.scorer, m ? m->cfg.n_kv_head : SIZE_MAX,
                                      p->n_ctx - p->press.protect, o.K);
    o.n_kept += o.K_rows - o.K;
    if ((st = plan_compress(p, win, &o)) || (st = plan_answer(p, win, &o))) return st;
    size_t N = p->n_ctx, P = p->press.protect, mq = p->n_question, fed = p->n_prompt ? p->n_prompt : mq;
    o.n_chunks = p->press.mode == FINCH_PRESS_ONESHOT ? 1 : (N - P + o.chunk - 1) / o.chunk;
    o.capacity = finch_plan_compress_rows(p->press.mode, P, o.K_rows, o.chunk, N, mq);
    size_t after = fed + (p->n_forced > o.n_predict ? p->n_forced : o.n_predict);
    o.peak = finch_plan_cache_peak(o.capacity, o.n_kept + after);
    if (p->press.scorer == FINCH_SCORER_LINGUA && o.K < N - P) /* its own pass over the context, first */
        o.peak = o.peak > N ? o.peak : N;
    size_t step = p->press.mode == FINCH_PRESS_ONESHOT ? N + mq : o.chunk + mq;
    o.batch = step < FINCH_DEFAULT_BATCH_MAX ? step : FINCH_DEFAULT_BATCH_MAX;
    *out = o;
    return FINCH_OK;
}

/* ------------------------------------------------------------ the budget */

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
