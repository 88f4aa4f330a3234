/* api.c - the flat C API of include/finch_api.h: handles over a model and
 * a press run, for callers that cannot mirror C structs (ctypes). */
#include "finch_api.h"
#include "finch_dump.h"
#include "finch_run.h"
#include "press_trace.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct finch_api_model {
    finch_model *m;
    size_t threads;
    char *path;
};

struct finch_api_result {
    const finch_api_model *model;
    finch_ctx *ctx;
    finch_press *fp;
    int32_t *ids; /* context ++ question ++ prompt, as fed */
    size_t n_context, n_question, n_prompt;
};

void finch_api_free(void *p) { free(p); }
const char *finch_api_last_error(void) { return finch_last_error(); }

int finch_api_model_load(const char *path, size_t threads, finch_api_model **out) {
    *out = NULL;
    finch_api_model *h = finch_zalloc(1, sizeof *h);
    if (!h) return FINCH_ERR_NOMEM;
    finch_status st = finch_model_load(path, &h->m);
    if (!st && !(h->path = strdup(path))) st = finch_fail(FINCH_ERR_NOMEM, "out of memory");
    if (st) {
        finch_api_model_free(h);
        return st;
    }
    h->threads = threads;
    *out = h;
    return FINCH_OK;
}

void finch_api_model_free(finch_api_model *h) {
    if (!h) return;
    finch_model_free(h->m);
    free(h->path);
    free(h);
}

int finch_api_model_config(const finch_api_model *h, char **json) {
    const finch_config *c = &h->m->cfg;
    const finch_tokenizer *t = h->m->tokenizer;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", h->path);
    cJSON_AddStringToObject(j, "source_format", h->m->source_format);
    cJSON_AddStringToObject(j, "arch", c->arch);
    const char *names[] = { "dim", "n_layer", "n_head", "n_kv_head", "head_dim", "ffn_dim", "vocab", "ctx_len",
                            "rope_dim" };
    size_t vals[] = { c->dim, c->n_layer, c->n_head, c->n_kv_head, c->head_dim, c->ffn_dim, c->vocab, c->ctx_len,
                      c->rope_dim };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) cJSON_AddNumberToObject(j, names[i], (double)vals[i]);
    cJSON_AddNumberToObject(j, "rms_eps", c->rms_eps);
    cJSON_AddNumberToObject(j, "rope_base", c->rope_base);
    cJSON_AddStringToObject(j, "rope_pairing", finch_rope_pairing_name(c->rope_pairing));
    cJSON_AddBoolToObject(j, "tied_output", c->tied_output);
    cJSON_AddBoolToObject(j, "has_qkv_bias", c->has_qkv_bias);
    cJSON_AddNumberToObject(j, "bos", t ? finch_tokenizer_bos(t) : -1);
    cJSON_AddNumberToObject(j, "eos", t ? finch_tokenizer_eos(t) : -1);
    cJSON_AddNumberToObject(j, "threads", (double)h->threads);
    *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return *json ? FINCH_OK : finch_fail(FINCH_ERR_NOMEM, "out of memory");
}

int finch_api_tokenize(const finch_api_model *h, const char *text, size_t len, int bos, int32_t **ids,
                       size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!h->m->tokenizer) return finch_fail(FINCH_ERR_UNSUPPORTED, "%s carries no tokenizer", h->path);
    finch_status st = finch_check_text(text, len);
    return st ? st : finch_tokenize(h->m->tokenizer, text, len, bos, ids, n);
}

int finch_api_detokenize(const finch_api_model *h, const int32_t *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    const finch_tokenizer *t = h->m->tokenizer;
    if (!t) return finch_fail(FINCH_ERR_UNSUPPORTED, "%s carries no tokenizer", h->path);
    size_t vocab = finch_tokenizer_vocab(t), cap, used = 0;
    if (!finch_mul_ok(n, 256, &cap) || !(*text = finch_alloc(cap + 1, 1))) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= vocab) {
            free(*text);
            *text = NULL;
            return finch_fail(FINCH_ERR_ARG, "token id %d at index %zu is outside the vocabulary (%zu)", ids[i], i,
                              vocab);
        }
        used += finch_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], *text + used, cap - used);
    }
    (*text)[used] = 0;
    *len = used;
    return FINCH_OK;
}

static finch_status check_ids(const finch_model *m, const int32_t *ids, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= m->cfg.vocab)
            return finch_fail(FINCH_ERR_ARG, "%s: id %d at index %zu is outside the vocabulary (%zu)", what, ids[i],
                              i, m->cfg.vocab);
    return FINCH_OK;
}

int finch_api_logits(const finch_api_model *h, const int32_t *ids, size_t n, float *out) {
    const finch_model *m = h->m;
    if (n == 0) return finch_fail(FINCH_ERR_ARG, "logits: no ids");
    if (n > m->cfg.ctx_len)
        return finch_fail(FINCH_ERR_ARG, "logits: %zu ids exceed the model's %zu positions", n, m->cfg.ctx_len);
    finch_status st = check_ids(m, ids, n, "logits");
    if (st) return st;
    finch_ctx *c = NULL;
    finch_kv_cache kv;
    memset(&kv, 0, sizeof kv);
    if (!(st = finch_ctx_new(m, h->threads, n, &c)) && !(st = finch_kv_init(&kv, &m->cfg, n)))
        st = finch_forward(c, &kv, ids, n, 0, NULL, out, n);
    finch_kv_free(&kv);
    finch_ctx_free(c);
    return st;
}

/* ------------------------------------------------------------ compress */

static finch_status parse_params(const char *mode, const char *select, const char *normalize,
                                 const char *schedule, const char *press,
                                 int budget_kind, double budget_value, size_t chunk, size_t kv_chunk,
                                 int no_rerotate, size_t protect, uint64_t seed, int steps,
                                 const char *cache_type, finch_press_params *p) {
    *p = finch_press_defaults();
    finch_status st;
    if (cache_type && (st = finch_cache_type_parse(cache_type, &p->cache_type))) return st;
    if (mode && (st = finch_press_parse_mode(mode, &p->mode))) return st;
    if (select && (st = finch_press_parse_select(select, &p->select))) return st;
    if (press && (st = finch_scorer_parse(press, &p->scorer))) return st;
    if (normalize && (st = finch_press_parse_normalize(normalize, &p->normalize))) return st;
    if (schedule && (st = finch_press_parse_schedule(schedule, &p->schedule))) return st;
    if (budget_kind < 0 || budget_kind > 2) return finch_fail(FINCH_ERR_ARG, "unknown budget kind %d", budget_kind);
    p->budget_kind = (finch_budget_kind)budget_kind;
    if (budget_kind == FINCH_BUDGET_TOKENS) {
        if (!(budget_value >= 1 && budget_value <= 1e12))
            return finch_fail(FINCH_ERR_ARG, "budget must be a whole number of tokens >= 1 (got %g)", budget_value);
        p->budget = (size_t)budget_value;
    } else if (budget_kind == FINCH_BUDGET_RATIO) p->ratio = budget_value;
    else p->cr = budget_value;
    p->chunk = chunk;
    p->kv_chunk = kv_chunk;
    p->no_rerotate = no_rerotate ? 1 : 0;
    p->protect = protect;
    p->seed = seed;
    p->record_steps = steps ? 1 : 0;
    return FINCH_OK;
}

/* The chunk and forward batch as `finch run` picks them (the run plan,
 * include/finch_run.h), and whether the run fits the model's positions. */
static finch_status plan_positions(const finch_model *m, finch_press_params *p, size_t N, size_t mq,
                                   size_t n_prompt) {
    finch_run_params rp = finch_run_defaults();
    rp.press = *p;
    rp.n_ctx = N;
    rp.n_question = mq;
    rp.n_prompt = n_prompt;
    rp.n_predict = 0;
    finch_run_plan plan;
    finch_status st = finch_plan_run(m, &rp, &plan);
    if (st) return st;
    p->chunk = plan.chunk;
    p->batch = plan.batch;
    return FINCH_OK;
}

static finch_status keep_ids(finch_api_result *r, const int32_t *c, size_t nc, const int32_t *q, size_t nq,
                             const int32_t *pr, size_t np) {
    r->ids = finch_alloc(nc + nq + np + 1, sizeof(int32_t));
    if (!r->ids) return FINCH_ERR_NOMEM;
    memcpy(r->ids, c, nc * sizeof(int32_t));
    memcpy(r->ids + nc, q, nq * sizeof(int32_t));
    if (np) memcpy(r->ids + nc + nq, pr, np * sizeof(int32_t));
    r->n_context = nc, r->n_question = nq, r->n_prompt = np;
    return FINCH_OK;
}

int finch_api_compress(const finch_api_model *h, const char *mode, const char *select, const char *normalize,
                       const char *schedule, const char *press, int budget_kind, double budget_value, size_t chunk,
                       size_t kv_chunk, int no_rerotate, size_t protect, uint64_t seed, int steps,
                       const char *cache_type, const int32_t *context, size_t n_context, const int32_t *question, size_t n_question,
                       const int32_t *prompt, size_t n_prompt, finch_api_result **out) {
    *out = NULL;
    const finch_model *m = h->m;
    finch_press_params p;
    finch_status st = parse_params(mode, select, normalize, schedule, press, budget_kind, budget_value, chunk,
                                   kv_chunk, no_rerotate, protect, seed, steps, cache_type, &p);
    if (!st) st = check_ids(m, context, n_context, "context");
    if (!st) st = check_ids(m, question, n_question, "question");
    if (!st) st = check_ids(m, prompt, n_prompt, "prompt");
    if (!st) st = plan_positions(m, &p, n_context, n_question, n_prompt);
    if (st) return st;
    finch_api_result *r = finch_zalloc(1, sizeof *r);
    if (!r) return FINCH_ERR_NOMEM;
    r->model = h;
    if (!(st = keep_ids(r, context, n_context, question, n_question, prompt, n_prompt)) &&
        !(st = finch_ctx_new(m, h->threads, p.batch, &r->ctx)) && !(st = finch_press_new(m, r->ctx, &p, &r->fp)))
        st = finch_press_run(r->fp, context, n_context, question, n_question, n_prompt ? prompt : NULL, n_prompt,
                             NULL, NULL);
    if (st) {
        finch_api_result_free(r);
        return st;
    }
    *out = r;
    return FINCH_OK;
}

void finch_api_result_free(finch_api_result *r) {
    if (!r) return;
    finch_press_free(r->fp);
    finch_ctx_free(r->ctx);
    free(r->ids);
    free(r);
}

/* ----------------------------------------------------------- read back */

void finch_api_result_dims(const finch_api_result *r, size_t dims[8]) {
    const finch_kv_cache *kv = finch_press_cache(r->fp);
    const finch_press_trace *t = finch_press_get_trace(r->fp);
    size_t d[8] = { kv->n_layer, kv->n_kv_head, finch_press_get_stats(r->fp)->n_kept, kv->head_dim,
                    r->model->m->cfg.vocab, t->n_ctx, t->n_steps, t->k_max };
    memcpy(dims, d, sizeof d);
}

void finch_api_result_kept(const finch_api_result *r, int32_t *out) {
    size_t d[8];
    finch_api_result_dims(r, d);
    memcpy(out, finch_press_kept(r->fp), d[0] * d[1] * d[2] * sizeof(int32_t));
}

void finch_api_result_kv(const finch_api_result *r, int layout, float *keys, float *values) {
    finch_dump_copy_kv(r->fp, layout ? FINCH_KEYS_NATIVE : FINCH_KEYS_HF, keys, values);
}

void finch_api_result_logits(const finch_api_result *r, float *out) {
    memcpy(out, finch_press_prompt_logits(r->fp), r->model->m->cfg.vocab * sizeof(float));
}

void finch_api_result_scores(const finch_api_result *r, float *out) {
    const finch_press_trace *t = finch_press_get_trace(r->fp);
    memcpy(out, t->scores, t->n_layer * t->n_kv_head * t->n_ctx * sizeof(float));
}

void finch_api_result_margins(const finch_api_result *r, float *out) {
    const finch_press_trace *t = finch_press_get_trace(r->fp);
    memcpy(out, t->margins, t->n_layer * t->n_kv_head * sizeof(float));
}

void finch_api_result_schedule(const finch_api_result *r, int32_t *out) {
    const finch_press_trace *t = finch_press_get_trace(r->fp);
    memcpy(out, t->schedule, t->n_steps * sizeof(int32_t));
}

int finch_api_result_steps(const finch_api_result *r, int32_t *kept, float *scores) {
    const finch_press_trace *t = finch_press_get_trace(r->fp);
    if (!t->steps_kept) return finch_fail(FINCH_ERR_ARG, "the run did not record its steps (steps=True)");
    size_t per = t->n_steps * t->n_layer * t->n_kv_head;
    if (kept) memcpy(kept, t->steps_kept, per * t->k_max * sizeof(int32_t));
    if (scores) memcpy(scores, t->steps_scores, per * t->n_ctx * sizeof(float));
    return FINCH_OK;
}

static finch_dump_opts dump_opts(const finch_api_result *r, int layout) {
    finch_dump_opts o = finch_dump_defaults();
    o.layout = layout ? FINCH_KEYS_NATIVE : FINCH_KEYS_HF;
    o.steps = finch_press_get_trace(r->fp)->steps_kept != NULL;
    o.model_path = r->model->path;
    o.context = r->ids;
    o.n_context = r->n_context;
    o.question = r->ids + r->n_context;
    o.n_question = r->n_question;
    int has_prompt = r->n_prompt > 0; /* else the question was fed again */
    o.prompt = has_prompt ? r->ids + r->n_context + r->n_question : o.question;
    o.n_prompt = has_prompt ? r->n_prompt : r->n_question;
    return o;
}

int finch_api_result_meta(const finch_api_result *r, int layout, char **json) {
    finch_dump_opts o = dump_opts(r, layout);
    return finch_dump_meta(r->fp, &o, json);
}

int finch_api_result_save(const finch_api_result *r, const char *dir, int layout) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return finch_fail(FINCH_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    finch_dump_opts o = dump_opts(r, layout);
    return finch_dump_write(r->fp, dir, &o);
}
