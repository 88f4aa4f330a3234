/* transformer.c - the forward pass of a Llama-family model over a plain-array
 * KV cache.  Sections follow the data: KV cache, context (scratch + RoPE),
 * one layer (attention, then MLP), the whole pass, logits.
 *
 * Per layer, for a batch of n tokens at positions pos0 .. pos0+n-1:
 *   xn = rmsnorm(x) ; q,k,v = xn Wq^T, xn Wk^T, xn Wv^T (+ biases)
 *   [qk_norm: rmsnorm of each q and k head]
 *   rope(q), rope(k) ; append k, v to the cache
 *   x += [post_norm] attention(q, cache) Wo^T
 *   xn = rmsnorm(x) ; x += [post_norm] (act(xn Wg^T) * (xn Wu^T)) Wd^T
 * The bracketed steps and the attention's window, scale and soft-cap are
 * the switches of finch_config (Qwen3, Gemma 2/3, Mistral, Phi-3). */
#include "forward.h"
#include "kernels.h"
#include "presses.h"
#include "rope.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- KV cache */

finch_status finch_kv_init(finch_kv_cache *kv, const finch_config *cfg, size_t capacity) {
    return finch_kv_init_type(kv, cfg, capacity, FINCH_CACHE_F32);
}

finch_status finch_kv_init_type(finch_kv_cache *kv, const finch_config *cfg, size_t capacity,
                                finch_cache_type type) {
    memset(kv, 0, sizeof *kv);
    size_t per_layer, total;
    if (!finch_mul_ok(cfg->n_kv_head, capacity, &per_layer) ||
        !finch_mul_ok(per_layer, cfg->head_dim, &per_layer) ||
        !finch_mul_ok(per_layer, cfg->n_layer, &total))
        return finch_fail(FINCH_ERR_NOMEM, "KV cache of %zu positions overflows", capacity);
    kv->n_layer = cfg->n_layer;
    kv->n_kv_head = cfg->n_kv_head;
    kv->capacity = capacity;
    kv->head_dim = cfg->head_dim;
    kv->type = type;
    bool half = type == FINCH_CACHE_F16;
    void *k = finch_alloc(total, finch_kv_value_bytes(kv)), *v = finch_alloc(total, finch_kv_value_bytes(kv));
    if (half) kv->k16 = k, kv->v16 = v;
    else kv->k = k, kv->v = v;
    kv->n_pos = finch_zalloc(cfg->n_layer, sizeof(size_t));
    if (!k || !v || !kv->n_pos) {
        finch_kv_free(kv);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory for a KV cache of %zu positions", capacity);
    }
    return FINCH_OK;
}

finch_status finch_kv_enable_mask(finch_kv_cache *kv) {
    if (kv->dead) return FINCH_OK;
    kv->dead = finch_zalloc(kv->n_layer * kv->n_kv_head, kv->capacity ? kv->capacity : 1);
    return kv->dead ? FINCH_OK : finch_fail(FINCH_ERR_NOMEM, "out of memory for the KV mask");
}

finch_status finch_kv_copy_mask(finch_kv_cache *dst, const finch_kv_cache *src) {
    if (!src->dead) return FINCH_OK;
    finch_status st = finch_kv_enable_mask(dst);
    if (st) return st;
    for (size_t lg = 0; lg < src->n_layer * src->n_kv_head; lg++)
        memcpy(dst->dead + lg * dst->capacity, src->dead + lg * src->capacity, src->n_pos[lg / src->n_kv_head]);
    return FINCH_OK;
}

void finch_kv_free(finch_kv_cache *kv) {
    free(kv->dead);
    free(kv->k);
    free(kv->v);
    free(kv->k16);
    free(kv->v16);
    free(kv->n_pos);
    memset(kv, 0, sizeof *kv);
}

static size_t kv_offset(const finch_kv_cache *kv, size_t l, size_t g, size_t pos) {
    return ((l * kv->n_kv_head + g) * kv->capacity + pos) * kv->head_dim;
}
float *finch_kv_k(const finch_kv_cache *kv, size_t l, size_t g, size_t pos) {
    return kv->k + kv_offset(kv, l, g, pos);
}
float *finch_kv_v(const finch_kv_cache *kv, size_t l, size_t g, size_t pos) {
    return kv->v + kv_offset(kv, l, g, pos);
}

size_t finch_kv_bytes(const finch_kv_cache *kv, size_t n_pos) {
    return 2 * kv->n_layer * kv->n_kv_head * n_pos * kv->head_dim * finch_kv_value_bytes(kv);
}

/* ----------------------------------------------------------------- context */

struct finch_ctx {
    const finch_model *m;
    finch_pool *pool;
    size_t max_batch;
    double *inv_freq;  /* [2][rope_dim/2]: the sets' frequencies             */
    finch_rope_set rope[2]; /* global layers, local (sliding-window) layers */
    float *rope_cos;   /* [2][max_batch][rope_dim/2] for the batch's positions */
    float *rope_sin;
    float *x;          /* [max_batch][dim] residual stream                  */
    float *xn;         /* [max_batch][dim] normed input of a sub-block      */
    float *q;          /* [max_batch][n_head*head_dim]                      */
    float *k;          /* [max_batch][n_kv_head*head_dim]                   */
    float *v;          /* [max_batch][n_kv_head*head_dim]                   */
    float *att;        /* [max_batch][n_head*head_dim] attention output     */
    float *gate;       /* [max_batch][ffn_dim]                              */
    float *up;         /* [max_batch][ffn_dim]                              */
    /* Attention scratch for up to score_cap keys: the keys of each KV head
     * packed for the GEMM, and per task the score rows of one token's query
     * heads of one KV group. */
    float *att_kpack;  /* [n_kv_head][finch_attn_kpack_floats(score_cap, hd)] */
    float *att_scores; /* [threads][group][score_cap]                        */
    float *att_vbuf;   /* [threads][FINCH_ATTN_VBLOCK * head_dim]: one
                          token's key panels, and an f16 cache's V rows
                          converted for the GEMM                           */
    float *att_v32;    /* [n_kv_head][v32_cap][head_dim]: an f16 cache's V
                          converted once per layer for a batch of tokens   */
    size_t v32_cap;
    size_t score_cap;
    /* the pass in progress (forward.h): its tokens, the next layer to run
     * (SIZE_MAX: none), the logits rows it ends with */
    size_t pass_n, pass_pos0, pass_next_layer, pass_n_logits;
    bool pass_whole_last; /* the last layer's output is read */
    size_t pass_q_lo, pass_q_hi; /* rows whose queries a kv_only last layer computes */
};

finch_status finch_ctx_new(const finch_model *m, size_t n_threads, size_t max_batch,
                           finch_ctx **out) {
    *out = NULL;
    if (max_batch == 0) return finch_fail(FINCH_ERR_ARG, "max_batch must be > 0");
    const finch_config *cfg = &m->cfg;
    finch_ctx *c = finch_zalloc(1, sizeof *c);
    if (!c) return FINCH_ERR_NOMEM;
    c->m = m;
    c->max_batch = max_batch;
    size_t half = cfg->rope_dim / 2, qdim = cfg->n_head * cfg->head_dim;
    size_t kvdim = cfg->n_kv_head * cfg->head_dim, B = max_batch;
    finch_status st = finch_pool_new(n_threads, &c->pool);
    if (st) { free(c); return st; }
    c->inv_freq = finch_alloc(2 * (half ? half : 1), sizeof(double));
    c->rope_cos = finch_alloc(2 * B, (half ? half : 1) * sizeof(float));
    c->rope_sin = finch_alloc(2 * B, (half ? half : 1) * sizeof(float));
    c->x = finch_alloc(B, cfg->dim * sizeof(float));
    c->xn = finch_alloc(B, cfg->dim * sizeof(float));
    c->q = finch_alloc(B, qdim * sizeof(float));
    c->k = finch_alloc(B, kvdim * sizeof(float));
    c->v = finch_alloc(B, kvdim * sizeof(float));
    c->att = finch_alloc(B, qdim * sizeof(float));
    c->gate = finch_alloc(B, cfg->ffn_dim * sizeof(float));
    c->up = finch_alloc(B, cfg->ffn_dim * sizeof(float));
    c->att_vbuf = finch_alloc(finch_pool_threads(c->pool), FINCH_ATTN_VBLOCK * cfg->head_dim * sizeof(float));
    if (!c->att_vbuf || !c->inv_freq || !c->rope_cos || !c->rope_sin || !c->x || !c->xn || !c->q || !c->k ||
        !c->v || !c->att || !c->gate || !c->up) {
        finch_ctx_free(c);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory for a batch of %zu tokens", B);
    }
    for (int set = 0; set < 2; set++) {
        c->rope[set].inv_freq = c->inv_freq + set * half;
        finch_rope_set_init(m, set, &c->rope[set]);
    }
    *out = c;
    return FINCH_OK;
}

void finch_ctx_free(finch_ctx *c) {
    if (!c) return;
    finch_pool_free(c->pool);
    free(c->inv_freq); free(c->rope_cos); free(c->rope_sin);
    free(c->x); free(c->xn); free(c->q); free(c->k); free(c->v);
    free(c->att); free(c->gate); free(c->up); free(c->att_kpack); free(c->att_scores);
    free(c->att_vbuf); free(c->att_v32);
    free(c);
}

size_t finch_ctx_threads(const finch_ctx *c) { return finch_pool_threads(c->pool); }
finch_pool *finch_ctx_pool(const finch_ctx *c) { return c->pool; }

/* -------------------------------------------------------------------- RoPE */

void finch_rope_shift(const finch_ctx *c, size_t layer, float *key, long delta) {
    const finch_config *cfg = &c->m->cfg;
    float cosv[512], sinv[512]; /* rope_dim <= 1024 is checked at load */
    const finch_rope_set *set = &c->rope[finch_rope_layer_local(cfg, layer)];
    finch_rope_angles(set, cfg->rope_dim / 2, (double)delta, 1.0f, cosv, sinv);
    finch_rope_rotate(key, cosv, sinv, cfg->rope_dim, cfg->rope_pairing);
}

/* The batch's angles of both sets, once per forward call (every layer
 * uses one of them). */
static void rope_tables(finch_ctx *c, size_t n, size_t pos0) {
    size_t half = c->m->cfg.rope_dim / 2;
    for (size_t set = 0; set < 2; set++)
        for (size_t t = 0; t < n; t++) {
            size_t row = (set * c->max_batch + t) * half;
            finch_rope_angles(&c->rope[set], half, (double)(pos0 + t), c->rope[set].mscale,
                              c->rope_cos + row, c->rope_sin + row);
        }
}

/* Keys of all n tokens, queries of tokens q0 .. q1-1. */
static void rope_batch(finch_ctx *c, size_t l, size_t n, size_t q0, size_t q1) {
    const finch_config *cfg = &c->m->cfg;
    size_t half = cfg->rope_dim / 2, hd = cfg->head_dim;
    size_t set = (size_t)finch_rope_layer_local(cfg, l);
    for (size_t t = 0; t < n; t++) {
        size_t row = (set * c->max_batch + t) * half;
        const float *cosv = c->rope_cos + row, *sinv = c->rope_sin + row;
        for (size_t h = 0; t >= q0 && t < q1 && h < cfg->n_head; h++)
            finch_rope_rotate(c->q + (t * cfg->n_head + h) * hd, cosv, sinv, cfg->rope_dim, cfg->rope_pairing);
        for (size_t g = 0; g < cfg->n_kv_head; g++)
            finch_rope_rotate(c->k + (t * cfg->n_kv_head + g) * hd, cosv, sinv, cfg->rope_dim, cfg->rope_pairing);
    }
}

/* --------------------------------------------------------------- attention */

/* Causal softmax(q.k/sqrt(d)) over cache positions 0 .. pos0+t, then the
 * weighted sum of values, per query head and token.  The keys of each KV
 * head are packed once per layer; then one task per (KV head, token
 * subset) runs all of the head's query heads of a token as one small GEMM
 * (the GQA group shares every key and value load), with its thread's
 * score rows.  Tokens are dealt out round-robin, so the growing causal
 * rows spread evenly over the tasks; each output depends only on its own
 * token and head. */
typedef struct {
    finch_ctx *c;
    const finch_kv_cache *kv;
    size_t layer, n, pos0, split;
} attn_job;

static float attn_scale(const finch_config *cfg) {
    return cfg->attn_scale > 0 ? cfg->attn_scale : 1.0f / sqrtf((float)cfg->head_dim);
}

/* First cache position query position p may read in layer l. */
static size_t window_start(const finch_config *cfg, size_t l, size_t p) {
    if (!finch_layer_is_local(cfg, l) || p + 1 <= cfg->sliding_window) return 0;
    return p + 1 - cfg->sliding_window;
}

/* The attention of one token and query head with a window and/or a
 * soft-cap: scores over keys lo..p, capped, softmax, weighted values. */
static void attn_row_general(const finch_config *cfg, const finch_kv_cache *kv, size_t l, size_t g,
                             const float *q, size_t lo, size_t p, float *scores, float *out) {
    size_t hd = cfg->head_dim, nk = p + 1 - lo;
    float scale = attn_scale(cfg), cap = cfg->attn_softcap, mx = -INFINITY;
    const uint8_t *dead = kv->dead ? kv->dead + (l * kv->n_kv_head + g) * kv->capacity + lo : NULL;
    float row[FINCH_KV_MAX_HEAD_DIM]; /* an f16 cache's row as f32 */
    for (size_t j = 0; j < nk; j++) {
        if (dead && dead[j]) { /* masked: exp(-inf) = 0; the row itself is never masked */
            scores[j] = -INFINITY;
            continue;
        }
        const float *k = finch_kv_key_f32(kv, l, g, lo + j, row);
        float s = 0;
        for (size_t i = 0; i < hd; i++) s += q[i] * k[i];
        s *= scale;
        if (cap > 0) s = cap * tanhf(s / cap);
        scores[j] = s;
        if (s > mx) mx = s;
    }
    float sum = 0;
    for (size_t j = 0; j < nk; j++) sum += scores[j] = expf(scores[j] - mx);
    memset(out, 0, hd * sizeof(float));
    for (size_t j = 0; j < nk; j++) {
        const float *v = finch_kv_value_f32(kv, l, g, lo + j, row);
        float a = scores[j] / sum;
        for (size_t i = 0; i < hd; i++) out[i] += a * v[i];
    }
}

/* The general path: tasks as in attn_task, one row at a time. */
static void attn_task_general(void *arg, size_t task) {
    const attn_job *job = arg;
    finch_ctx *c = job->c;
    const finch_config *cfg = &c->m->cfg;
    size_t hd = cfg->head_dim, group = cfg->n_head / cfg->n_kv_head;
    size_t g = task / job->split, part = task % job->split;
    float *scores = c->att_scores + finch_pool_worker() * group * c->score_cap;
    for (size_t t = part; t < job->n; t += job->split) {
        size_t p = job->pos0 + t, lo = window_start(cfg, job->layer, p);
        for (size_t h = g * group; h < (g + 1) * group; h++) {
            size_t row = (t * cfg->n_head + h) * hd;
            attn_row_general(cfg, job->kv, job->layer, g, c->q + row, lo, p, scores, c->att + row);
        }
    }
}

/* Pack the keys of KV head g; in an f16 cache read by a batch of tokens,
 * also convert its values once (each token's task reads them all). */
static void attn_pack_task(void *arg, size_t g) {
    const attn_job *job = arg;
    finch_ctx *c = job->c;
    size_t hd = c->m->cfg.head_dim, n_keys = job->pos0 + job->n;
    float *kp = c->att_kpack + g * finch_attn_kpack_floats(c->score_cap, hd);
    const finch_kv_cache *kv = job->kv;
    if (kv->type != FINCH_CACHE_F16) {
        finch_attn_pack_keys(finch_kv_k(kv, job->layer, g, 0), 0, n_keys, hd, kp);
        return;
    }
    finch_attn_pack_keys_f16(kv->k16 + ((job->layer * kv->n_kv_head + g) * kv->capacity) * hd, 0, n_keys, hd, kp);
    if (job->n > 1) finch_kv_read(kv, job->layer, g, 0, n_keys, NULL, c->att_v32 + g * c->v32_cap * hd);
}

static void attn_task(void *arg, size_t task) {
    const attn_job *job = arg;
    finch_ctx *c = job->c;
    const finch_config *cfg = &c->m->cfg;
    size_t hd = cfg->head_dim, group = cfg->n_head / cfg->n_kv_head;
    size_t g = task / job->split, part = task % job->split;
    const float *kp = c->att_kpack + g * finch_attn_kpack_floats(c->score_cap, hd);
    const finch_kv_cache *kv = job->kv;
    /* One token reads its keys a panel at a time (no packed copy) and an
     * f16 cache's values a block at a time; a batch reads the keys packed
     * by attn_pack_task and an f16 cache's values converted there. */
    bool one = job->n == 1, half = kv->type == FINCH_CACHE_F16;
    size_t head = ((job->layer * kv->n_kv_head + g) * kv->capacity) * hd;
    const float *v = !half ? finch_kv_v(kv, job->layer, g, 0) : one ? NULL : c->att_v32 + g * c->v32_cap * hd;
    size_t worker = finch_pool_worker();
    float *scores = c->att_scores + worker * group * c->score_cap;
    float *buf = c->att_vbuf + worker * FINCH_ATTN_VBLOCK * hd;
    float scale = attn_scale(cfg);
    for (size_t t = part; t < job->n; t += job->split) {
        size_t row = (t * cfg->n_head + g * group) * hd, nk = job->pos0 + t + 1; /* the group's heads are adjacent */
        if (one && half)
            finch_attn_rows_f16(NULL, kv->k16 + head, kv->v16 + head, nk, hd, c->q + row, hd, group, scale, scores,
                                c->att + row, hd, buf);
        else if (one)
            finch_attn_rows_keys(finch_kv_k(kv, job->layer, g, 0), v, nk, hd, c->q + row, hd, group, scale, scores,
                                 c->att + row, hd, buf);
        else
            finch_attn_rows(kp, v, nk, hd, c->q + row, hd, group, scale, scores, c->att + row, hd);
    }
}

static finch_status ensure_score_rows(finch_ctx *c, size_t n_keys) {
    if (n_keys <= c->score_cap) return FINCH_OK;
    const finch_config *cfg = &c->m->cfg;
    size_t cap = n_keys < 256 ? 256 : n_keys + n_keys / 2;
    size_t group = cfg->n_head / cfg->n_kv_head;
    float *s = finch_alloc(finch_pool_threads(c->pool) * group, cap * sizeof(float));
    float *kp = finch_alloc(cfg->n_kv_head, finch_attn_kpack_floats(cap, cfg->head_dim) * sizeof(float));
    if (!s || !kp) {
        free(s);
        free(kp);
        return FINCH_ERR_NOMEM;
    }
    free(c->att_scores);
    free(c->att_kpack);
    c->att_scores = s;
    c->att_kpack = kp;
    c->score_cap = cap;
    return FINCH_OK;
}

/* An f16 cache's values as f32 for a batch (attn_pack_task). */
static finch_status ensure_value_rows(finch_ctx *c, const finch_kv_cache *kv, size_t n, size_t n_keys) {
    if (kv->type != FINCH_CACHE_F16 || n == 1 || n_keys <= c->v32_cap) return FINCH_OK;
    const finch_config *cfg = &c->m->cfg;
    size_t cap = n_keys < c->score_cap ? c->score_cap : n_keys;
    float *v = finch_alloc(cfg->n_kv_head * cap, cfg->head_dim * sizeof(float));
    if (!v) return FINCH_ERR_NOMEM;
    free(c->att_v32);
    c->att_v32 = v;
    c->v32_cap = cap;
    return FINCH_OK;
}

static void attention(finch_ctx *c, const finch_kv_cache *kv, size_t l, size_t n, size_t pos0) {
    const finch_config *cfg = &c->m->cfg;
    /* Four token subsets per thread: enough to even out the causal rows. */
    size_t split = 4 * finch_pool_threads(c->pool);
    if (split > n) split = n;
    attn_job job = {c, kv, l, n, pos0, split};
    /* Short attention costs less than waking the workers (same tasks either way). */
    double work = (double)n * (double)(pos0 + n) * (double)(cfg->n_head * cfg->head_dim);
    finch_pool *pool = work < 64.0 * 1024.0 ? NULL : c->pool;
    /* The packed-key GEMM path reads every key from 0; a window that cuts,
     * a soft-cap or masked rows take the general path. */
    if (cfg->attn_softcap > 0 || window_start(cfg, l, pos0 + n - 1) > 0 || kv->dead) {
        finch_pool_run(pool, cfg->n_kv_head * split, attn_task_general, &job);
        return;
    }
    if (n > 1) finch_pool_run(pool, cfg->n_kv_head, attn_pack_task, &job); /* one token: panels (attn_task) */
    finch_pool_run(pool, cfg->n_kv_head * split, attn_task, &job);
}

/* ------------------------------------------------------------------- layer */

static void add_bias(float *y, const finch_weight *b, size_t n, size_t width) {
    if (!b->data) return;
    for (size_t t = 0; t < n; t++)
        for (size_t i = 0; i < width; i++) y[t * width + i] += ((const float *)b->data)[i];
}

static void rmsnorm_rows(float *out, const float *x, const finch_weight *w, size_t n,
                         size_t dim, float eps) {
    for (size_t t = 0; t < n; t++)
        finch_rmsnorm(out + t * dim, x + t * dim, w->data, dim, eps);
}

/* RMSNorm of each head of an [n][heads*head_dim] block, in place. */
static void head_norm(float *x, const finch_weight *w, size_t n, size_t heads, size_t hd, float eps) {
    if (!w->data) return;
    for (size_t r = 0; r < n * heads; r++) finch_rmsnorm(x + r * hd, x + r * hd, w->data, hd, eps);
}

static void store_kv(finch_ctx *c, finch_kv_cache *kv, size_t l, size_t n, size_t pos0) {
    const finch_config *cfg = &c->m->cfg;
    size_t hd = cfg->head_dim;
    for (size_t t = 0; t < n; t++)
        for (size_t g = 0; g < cfg->n_kv_head; g++) {
            size_t at = (t * cfg->n_kv_head + g) * hd;
            finch_kv_write(kv, l, g, pos0 + t, 1, c->k + at, c->v + at);
            if (kv->dead) kv->dead[(l * cfg->n_kv_head + g) * kv->capacity + pos0 + t] = 0;
        }
    kv->n_pos[l] = pos0 + n;
}

/* The tokens q0 .. q1-1 of the batch whose queries layer l computes: all
 * of them, except in a kv_only layer, where only the pass's reader reads
 * queries, and only those of finch_pass_last_queries's rows.  Fewer rows
 * only where the product gives them the bits the whole batch would
 * (finch_matmul_rows_agree). */
static void query_rows(const finch_ctx *c, const finch_layer *L, bool kv_only, size_t n, size_t *q0,
                       size_t *q1) {
    *q0 = 0;
    *q1 = n;
    if (kv_only && finch_matmul_rows_agree(&L->wq, n, c->pass_q_hi - c->pass_q_lo)) {
        *q0 = c->pass_q_lo;
        *q1 = c->pass_q_hi;
    }
}

/* q, k, v of the batch (queries of tokens q0 .. q1-1 only), biased,
 * head-normed, rotated. */
static finch_status qkv_rows(finch_ctx *c, size_t l, size_t n, size_t q0, size_t q1) {
    const finch_config *cfg = &c->m->cfg;
    const finch_layer *L = &c->m->layers[l];
    size_t qdim = cfg->n_head * cfg->head_dim, kvdim = cfg->n_kv_head * cfg->head_dim;
    finch_status st;
    float *const qkv[] = {c->q, c->k, c->v};
    const finch_weight *const wqkv[] = {&L->wq, &L->wk, &L->wv};
    if (q0 == 0 && q1 == n) st = finch_matmul_many(c->pool, 3, qkv, c->xn, n, wqkv);
    else if (!(st = finch_matmul_many(c->pool, 2, qkv + 1, c->xn, n, wqkv + 1)) && q1 > q0)
        st = finch_matmul(c->pool, c->q + q0 * qdim, c->xn + q0 * cfg->dim, q1 - q0, &L->wq);
    if (st) return st;
    add_bias(c->q + q0 * qdim, &L->bq, q1 - q0, qdim);
    add_bias(c->k, &L->bk, n, kvdim);
    add_bias(c->v, &L->bv, n, kvdim);
    head_norm(c->q + q0 * qdim, &L->q_norm, q1 - q0, cfg->n_head, cfg->head_dim, cfg->rms_eps);
    head_norm(c->k, &L->k_norm, n, cfg->n_kv_head, cfg->head_dim, cfg->rms_eps);
    rope_batch(c, l, n, q0, q1);
    return FINCH_OK;
}

/* kv_only: stop once the layer's K/V are stored (nothing reads the
 * layer's output). */
static finch_status attention_block(finch_ctx *c, finch_kv_cache *kv, size_t l, size_t n,
                                    size_t pos0, bool kv_only) {
    const finch_config *cfg = &c->m->cfg;
    const finch_layer *L = &c->m->layers[l];
    finch_status st;
    rmsnorm_rows(c->xn, c->x, &L->attn_norm, n, cfg->dim, cfg->rms_eps);
    size_t q0, q1;
    query_rows(c, L, kv_only, n, &q0, &q1);
    if ((st = qkv_rows(c, l, n, q0, q1))) return st;
    store_kv(c, kv, l, n, pos0);
    if (kv_only) return FINCH_OK;
    attention(c, kv, l, n, pos0);
    if ((st = finch_matmul(c->pool, c->xn, c->att, n, &L->wo))) return st;
    if (L->post_attn_norm.data) rmsnorm_rows(c->xn, c->xn, &L->post_attn_norm, n, cfg->dim, cfg->rms_eps);
    finch_axpy(c->x, 1.0f, c->xn, n * cfg->dim); /* x + 1 * xn: the exact sum */
    return FINCH_OK;
}

/* gate = gelu_tanh(gate) * up, as Hugging Face's gelu_pytorch_tanh. */
static void gelu_tanh_mul(float *gate, const float *up, size_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        float x = gate[i];
        gate[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * up[i];
    }
}

static void silu_task(void *arg, size_t t) {
    finch_ctx *c = arg;
    size_t f = c->m->cfg.ffn_dim;
    if (c->m->cfg.ffn_act == FINCH_ACT_GELU_TANH) gelu_tanh_mul(c->gate + t * f, c->up + t * f, f);
    else finch_silu_mul(c->gate + t * f, c->up + t * f, f);
}

/* gate = silu(gate) * up, one token per task. */
static void silu_rows(finch_ctx *c, size_t n) {
    finch_pool_run(n > 1 ? c->pool : NULL, n, silu_task, c);
}

static finch_status mlp_block(finch_ctx *c, size_t l, size_t n) {
    const finch_config *cfg = &c->m->cfg;
    const finch_layer *L = &c->m->layers[l];
    finch_status st;
    rmsnorm_rows(c->xn, c->x, &L->ffn_norm, n, cfg->dim, cfg->rms_eps);
    float *const gate_up[] = {c->gate, c->up};
    const finch_weight *const w_gate_up[] = {&L->w_gate, &L->w_up};
    if ((st = finch_matmul_many(c->pool, 2, gate_up, c->xn, n, w_gate_up))) return st;
    silu_rows(c, n);
    if ((st = finch_matmul(c->pool, c->xn, c->gate, n, &L->w_down))) return st;
    if (L->post_ffn_norm.data) rmsnorm_rows(c->xn, c->xn, &L->post_ffn_norm, n, cfg->dim, cfg->rms_eps);
    finch_axpy(c->x, 1.0f, c->xn, n * cfg->dim);
    return FINCH_OK;
}

/* ------------------------------------------------------------ forward pass */

static finch_status check_forward_args(const finch_ctx *c, const finch_kv_cache *kv,
                                       const int32_t *tokens, size_t n, size_t pos0,
                                       size_t n_logits) {
    const finch_config *cfg = &c->m->cfg;
    if (n == 0 || n > c->max_batch)
        return finch_fail(FINCH_ERR_ARG, "forward: %zu tokens (batch limit %zu)", n, c->max_batch);
    if (n_logits > n) return finch_fail(FINCH_ERR_ARG, "forward: %zu logits rows for %zu tokens", n_logits, n);
    if (kv->n_layer != cfg->n_layer || kv->n_kv_head != cfg->n_kv_head || kv->head_dim != cfg->head_dim)
        return finch_fail(FINCH_ERR_ARG, "forward: KV cache shape does not match the model");
    if (pos0 + n > kv->capacity)
        return finch_fail(FINCH_ERR_ARG, "forward: positions up to %zu exceed the KV cache capacity %zu",
                          pos0 + n, kv->capacity);
    for (size_t l = 0; l < cfg->n_layer; l++)
        if (kv->n_pos[l] != pos0)
            return finch_fail(FINCH_ERR_ARG, "forward: layer %zu holds %zu positions, not %zu", l, kv->n_pos[l], pos0);
    for (size_t t = 0; t < n; t++)
        if (tokens[t] < 0 || (size_t)tokens[t] >= cfg->vocab)
            return finch_fail(FINCH_ERR_ARG, "token id %d outside the vocabulary (0..%zu)", tokens[t], cfg->vocab - 1);
    return FINCH_OK;
}

finch_status finch_pass_begin(finch_ctx *c, const finch_kv_cache *kv, const int32_t *tokens, size_t n,
                              size_t pos0, size_t n_logits, bool whole_last_layer) {
    const finch_model *m = c->m;
    const finch_config *cfg = &m->cfg;
    c->pass_next_layer = SIZE_MAX; /* no pass until this one is checked */
    finch_status st = check_forward_args(c, kv, tokens, n, pos0, n_logits);
    if (st || (st = ensure_score_rows(c, pos0 + n)) || (st = ensure_value_rows(c, kv, n, pos0 + n))) return st;

    /* a packed embedding (tied to a packed output) gives its rows unpacked */
    void *emb_row = m->tok_embd.packed ? malloc(finch_row_bytes(m->tok_embd.type, cfg->dim)) : NULL;
    if (m->tok_embd.packed && !emb_row) return FINCH_ERR_NOMEM;
    for (size_t t = 0; t < n; t++)
        finch_row_to_f32(m->tok_embd.type, finch_weight_row(&m->tok_embd, (size_t)tokens[t], emb_row),
                         c->x + t * cfg->dim, cfg->dim);
    free(emb_row);
    if (cfg->embd_scale > 0)
        for (size_t i = 0; i < n * cfg->dim; i++) c->x[i] *= cfg->embd_scale;

    rope_tables(c, n, pos0);
    c->pass_n = n;
    c->pass_pos0 = pos0;
    c->pass_n_logits = n_logits;
    /* Without logits nothing (but an observer of the hidden state) reads
     * the last layer's output: its K/V (and its queries) are all the pass
     * leaves, so its attention output and FFN are skipped (a chunk of a
     * prefill, Finch's chunk + question: 1/n_layer of the work). */
    c->pass_whole_last = n_logits > 0 || whole_last_layer;
    c->pass_q_lo = 0;
    c->pass_q_hi = n;
    c->pass_next_layer = 0;
    return FINCH_OK;
}

void finch_pass_last_queries(finch_ctx *c, size_t pos_lo, size_t pos_hi) {
    size_t p0 = c->pass_pos0, n = c->pass_n;
    size_t hi = pos_hi > p0 ? pos_hi - p0 : 0, lo = pos_lo > p0 ? pos_lo - p0 : 0;
    c->pass_q_hi = hi < n ? hi : n;
    c->pass_q_lo = lo < c->pass_q_hi ? lo : c->pass_q_hi;
}

finch_status finch_pass_layer(finch_ctx *c, finch_kv_cache *kv, size_t l, const float **q) {
    if (l != c->pass_next_layer || l >= c->m->cfg.n_layer)
        return finch_fail(FINCH_ERR_ARG, "forward: layer %zu run out of order", l);
    bool kv_only = !c->pass_whole_last && l + 1 == c->m->cfg.n_layer;
    finch_status st = attention_block(c, kv, l, c->pass_n, c->pass_pos0, kv_only);
    if (!st && !kv_only) st = mlp_block(c, l, c->pass_n);
    if (st) return st;
    c->pass_next_layer = l + 1;
    *q = c->q; /* attention and MLP read the queries, never write them */
    return FINCH_OK;
}

finch_status finch_pass_end(finch_ctx *c, float *logits) {
    const finch_model *m = c->m;
    const finch_config *cfg = &m->cfg;
    if (c->pass_next_layer != cfg->n_layer)
        return finch_fail(FINCH_ERR_ARG, "forward: the pass ends after %zu of %zu layers", c->pass_next_layer,
                          cfg->n_layer);
    c->pass_next_layer = SIZE_MAX;
    size_t n_logits = c->pass_n_logits, first = c->pass_n - n_logits;
    if (n_logits == 0) return FINCH_OK;
    finch_status st;
    rmsnorm_rows(c->xn, c->x + first * cfg->dim, &m->out_norm, n_logits, cfg->dim, cfg->rms_eps);
    if ((st = finch_matmul(c->pool, logits, c->xn, n_logits, &m->output))) return st;
    float cap = cfg->final_softcap;
    if (cap > 0)
        for (size_t i = 0; i < n_logits * cfg->vocab; i++) logits[i] = cap * tanhf(logits[i] / cap);
    return FINCH_OK;
}

/* The whole pass, with the observers of the public API called after each
 * layer (the layer's queries and cache are as they were before its
 * attention: attention reads them only). */
finch_status finch_forward(finch_ctx *c, finch_kv_cache *kv, const int32_t *tokens,
                           size_t n, size_t pos0, const finch_hooks *hooks,
                           float *logits, size_t n_logits) {
    bool hidden = hooks && hooks->on_hidden;
    finch_status st = finch_pass_begin(c, kv, tokens, n, pos0, logits ? n_logits : 0, hidden);
    if (!st && !(hooks && hooks->on_attention)) finch_pass_last_queries(c, 0, 0); /* nobody reads them */
    for (size_t l = 0; !st && l < c->m->cfg.n_layer; l++) {
        const float *q;
        if ((st = finch_pass_layer(c, kv, l, &q))) break;
        if (hooks && hooks->on_attention) st = hooks->on_attention(hooks->user, l, q, n, pos0, kv);
        if (!st && hidden) hooks->on_hidden(hooks->user, l, c->x, n);
    }
    return st ? st : finch_pass_end(c, logits);
}

size_t finch_ctx_max_batch(const finch_ctx *c) { return c->max_batch; }
const finch_model *finch_ctx_model(const finch_ctx *c) { return c->m; }
