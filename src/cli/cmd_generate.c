/* cmd_generate.c - `finch generate`: prompt in, text out, optional dump. */
#include "cli.h"
#include "finite.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_generate(int argc, char **argv, cli_generate_opts *o) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    *o = (cli_generate_opts){ 0 };
    cli_shared sh;
    cli_shared_init(&sh);
    while (cli_next(&a)) {
        if (cli_shared_flag(&a, &sh)) continue;
        if (cli_opt(&a, "-p", "--prompt")) o->prompt = cli_value(&a);
        else if (cli_opt(&a, NULL, "--prompt-ids")) o->prompt_ids = cli_value(&a);
        else if (cli_opt(&a, NULL, "--dump")) o->dump = cli_value(&a);
        else if (!a.error) cli_unknown(&a);
    }
    finch_press_params unused = finch_press_defaults();
    int rc = cli_args_error(&a);
    if (rc || (rc = cli_shared_finish(&sh, 1, &unused, &o->max_memory))) return rc;
    o->model = sh.model;
    o->chat_template = sh.chat_template;
    o->system = sh.system;
    o->n_new = sh.n_predict;
    o->threads = sh.threads;
    o->temp = sh.temp;
    o->top_p = sh.top_p;
    o->seed = sh.seed;
    o->ctx_size = (size_t)sh.ctx_size;
    o->cache_type = unused.cache_type;
    if (!o->prompt == !o->prompt_ids) return cli_error("give exactly one of -p TEXT and --prompt-ids FILE.npy");
    if (o->prompt && !*o->prompt) return cli_error("the prompt is empty");
    return 0;
}

typedef struct {
    const finch_model *m;
    int32_t prev;
} print_state;

static int print_token(void *user, int32_t tok) {
    print_state *p = user;
    cli_print_token(p->m, p->prev, tok, stdout);
    fflush(stdout);
    p->prev = tok;
    return 0;
}

static char *meta_json(const cli_generate_opts *o, const finch_model *m, size_t n_prompt, size_t n_gen,
                       double prefill_s, double decode_s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "generate");
    cJSON_AddStringToObject(j, "finch_version", finch_version());
    cJSON_AddStringToObject(j, "finch_commit", finch_build_commit());
    cli_json_string(j, "model", o->model);
    cli_json_string(j, "architecture", m->cfg.arch);
    cJSON_AddNumberToObject(j, "vocab", (double)m->cfg.vocab);
    cJSON_AddNumberToObject(j, "n_prompt", (double)n_prompt);
    cJSON_AddNumberToObject(j, "n_generated", (double)n_gen);
    cJSON_AddNumberToObject(j, "n_predict", (double)o->n_new);
    cJSON_AddNumberToObject(j, "temperature", o->temp);
    cJSON_AddNumberToObject(j, "top_p", o->top_p);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddStringToObject(j, "cache_type", finch_cache_type_name(o->cache_type));
    cJSON_AddNumberToObject(j, "prefill_seconds", prefill_s);
    cJSON_AddNumberToObject(j, "decode_seconds", decode_s);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

static int dump_run(cli_dump *d, const cli_generate_opts *o, const finch_model *m, const int32_t *prompt,
                    size_t n_prompt, const float *logits, const int32_t *gen, size_t n_gen, double t_pre,
                    double t_dec) {
    int rc;
    size_t sp = n_prompt, sv = m->cfg.vocab, sg = n_gen;
    char *meta = meta_json(o, m, n_prompt, n_gen, t_pre, t_dec);
    rc = cli_dump_npy(d, "prompt_ids.npy", FINCH_NPY_I32, prompt, &sp, 1);
    if (!rc) rc = cli_dump_npy(d, "logits.npy", FINCH_NPY_F32, logits, &sv, 1);
    if (!rc) rc = cli_dump_npy(d, "generated.npy", FINCH_NPY_I32, gen, &sg, 1);
    if (!rc) rc = meta ? cli_dump_text(d, "meta.json", meta) : cli_out_of_memory();
    free(meta);
    return rc ? rc : cli_dump_commit(d);
}

/* The prompt and the answer within the context length (-c, as
 * llama.cpp's): a longer prompt is refused, -n reduced to what fits. */
static int fit_window(const cli_generate_opts *o, const finch_model *m, size_t n_prompt, size_t *n_new,
                      size_t *cap) {
    size_t win = o->ctx_size ? o->ctx_size : m->cfg.ctx_len;
    if (n_prompt > win)
        return cli_error("the prompt has %zu tokens, more than the model's context length %zu", n_prompt, win);
    *n_new = (size_t)o->n_new;
    *cap = n_prompt + *n_new;
    if (*cap > win) {
        *n_new = win - n_prompt;
        *cap = win;
        fprintf(stderr, "finch: note: -n reduced to %zu to stay within the context length %zu\n", *n_new, win);
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    cli_generate_opts o;
    int rc = cli_parse_generate(argc, argv, &o);
    if (rc) return rc;
    finch_model *m = NULL;
    int32_t *prompt = NULL, *gen = NULL;
    size_t n_prompt = 0, n_gen = 0;
    finch_ctx *ctx = NULL;
    finch_kv_cache kv = { 0 };
    finch_sampler s = { 0 };
    float *logits = NULL;
    cli_dump dump = { 0 };
    cli_chat chat = { 0 };
    if (o.dump && (rc = cli_dump_begin(&dump, o.dump))) return rc; /* fail before the work */
    if ((rc = cli_load_model(o.model, &m))) goto done;
    if (o.prompt && (rc = cli_check_text_memory(m, strlen(o.prompt), o.max_memory, "the prompt"))) goto done;
    if ((rc = cli_chat_setup(m, o.chat_template, o.system, o.prompt_ids != NULL, &chat))) goto done;
    rc = o.prompt ? cli_chat_prompt(m, &chat, o.prompt, &prompt, &n_prompt) : cli_read_ids(o.prompt_ids, &prompt, &n_prompt);
    if (rc) goto done;
    if (n_prompt == 0) { rc = cli_error("the prompt is empty"); goto done; }
    size_t n_new = 0, cap = 0;
    if ((rc = fit_window(&o, m, n_prompt, &n_new, &cap))) goto done;
    finch_status st;
    size_t batch = n_prompt < 512 ? n_prompt : 512;
    if ((rc = cli_check_memory(m, cap, o.cache_type, batch, o.max_memory, "the run"))) goto done;
    if (o.dump && (rc = cli_dump_create(&dump))) goto done; /* inputs valid: the temporary, before the work */
    if ((st = finch_ctx_new(m, (size_t)o.threads, batch, &ctx)) || (st = finch_kv_init_type(&kv, &m->cfg, cap, o.cache_type)) ||
        (st = finch_sampler_init(&s, (finch_sampler_params){ (float)o.temp, (float)o.top_p, (uint64_t)o.seed }, m->cfg.vocab))) {
        rc = cli_fail(st, "cannot set up generation");
        goto done;
    }
    /* logits: what predicts the first token (dumped); work: the decode loop's */
    logits = malloc(2 * m->cfg.vocab * sizeof(float));
    if (!logits) { rc = cli_out_of_memory(); goto done; }
    float *work = logits + m->cfg.vocab;
    print_state ps = { m, prompt[n_prompt - 1] };
    if (o.prompt) { /* echo the prompt so the output reads as one text */
        fputs(o.prompt, stdout);
        fflush(stdout);
    }
    double t0 = finch_now();
    /* The prompt is fed first (timed apart from decoding). */
    if ((st = finch_feed(ctx, &kv, prompt, n_prompt, 0, logits)) ||
        (st = finch_check_logits(logits, m->cfg.vocab, "the logits after the prompt"))) {
        rc = cli_fail(st, "prefill failed");
        goto done;
    }
    double t1 = finch_now();
    if (n_new > 0) {
        memcpy(work, logits, m->cfg.vocab * sizeof(float));
        int32_t eos = m->tokenizer ? finch_tokenizer_eos(m->tokenizer) : -1;
        st = finch_decode(ctx, &kv, n_prompt, work, &s, n_new, eos, print_token, &ps, &gen, &n_gen);
        if (st) { rc = cli_fail(st, "generation failed"); goto done; }
    }
    double t2 = finch_now();
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "finch: prompt %zu tokens in %.3f s (%.1f tok/s), generated %zu tokens in %.3f s (%.1f tok/s), %zu threads\n",
            n_prompt, t1 - t0, n_prompt / (t1 - t0 + 1e-12), n_gen, t2 - t1, n_gen / (t2 - t1 + 1e-12), finch_ctx_threads(ctx));
    if (o.dump) rc = dump_run(&dump, &o, m, prompt, n_prompt, logits, gen, n_gen, t1 - t0, t2 - t1);
done:
    cli_dump_abort(&dump);
    cli_chat_free(&chat);
    free(logits);
    free(prompt);
    free(gen);
    finch_sampler_free(&s);
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
    finch_model_free(m);
    return rc;
}
