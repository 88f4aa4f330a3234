/* cmd_run.c - `finch run`: the main job.  Read a context and a question,
 * compress the context's KV cache with Finch (src/press/finch.c), answer from the
 * compressed cache, and state what was done. */
#include "cli.h"
#include "finch_dump.h"
#include "finch_press.h"
#include "finch_run.h"
#include "finite.h"
#include "press_params_json.h"
#include "svg.h"
#include "unicode.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- options */

/* The references' variants (docs/finch.md), where they mean something,
 * and the dump's shape (docs/dump-format.md); after --mode is parsed. */
static int parse_variants(cli_run_opts *o, const char *schedule, const char *layout) {
    if (schedule && finch_press_parse_schedule(schedule, &o->p.schedule) != FINCH_OK)
        return cli_error("--schedule must be proportional or authors, got '%s'", schedule);
    if (layout && finch_key_layout_parse(layout, &o->dump_layout) != FINCH_OK)
        return cli_error("--dump-layout must be hf or native, got '%s'", layout);
    if ((layout || o->p.record_steps) && !o->dump)
        return cli_error("--dump-layout and --dump-steps shape the --dump directory: give --dump DIR");
    if (o->p.schedule == FINCH_SCHEDULE_AUTHORS && o->p.mode == FINCH_PRESS_ONESHOT)
        return cli_error("--schedule authors is a per-chunk budget: give it with --mode iterative");
    if (o->p.kv_chunk && (o->p.mode != FINCH_PRESS_ONESHOT || o->p.budget_kind != FINCH_BUDGET_CR))
        return cli_error("--kv-chunk is kvpress's chunk_length: give it with --mode oneshot and --cr F");
    if (o->p.lingua_segment && o->p.scorer != FINCH_SCORER_LINGUA)
        return cli_error("--lingua-segment is the segment size of press lingua: give it with --press lingua");
    if (o->p.no_rerotate && o->p.mode != FINCH_PRESS_ONESHOT)
        return cli_error("--no-rerotate is kvpress's rerotate_keys=False: give it with --mode oneshot");
    if (o->delimiter && (o->question || o->question_ids || o->context_ids))
        return cli_error("--delimiter takes the question from the context text: give -f or --context, "
                         "not -q, --question-ids or --context-ids");
    return 0;
}

int cli_parse_run(int argc, char **argv, cli_run_opts *o) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    memset(o, 0, sizeof *o);
    o->p = finch_press_defaults();
    o->mark = -1;
    cli_shared sh;
    cli_shared_init(&sh);
    const char *press = NULL;
    const char *schedule = NULL, *layout = NULL;
    while (cli_next(&a)) {
        if (cli_shared_flag(&a, &sh)) continue;
        if (cli_opt(&a, "-f", "--file")) o->context_file = cli_value(&a);
        else if (cli_opt(&a, NULL, "--context")) o->context_text = cli_value(&a);
        else if (cli_opt(&a, NULL, "--context-ids")) o->context_ids = cli_value(&a);
        else if (cli_opt(&a, "-q", "--question")) o->question = cli_value(&a);
        else if (cli_opt(&a, NULL, "--question-ids")) o->question_ids = cli_value(&a);
        else if (cli_opt(&a, NULL, "--prompt-ids")) o->prompt_ids = cli_value(&a);
        else if (cli_opt(&a, NULL, "--schedule")) schedule = cli_value(&a);
        else if (cli_opt(&a, NULL, "--kv-chunk")) o->p.kv_chunk = (size_t)cli_long(&a, 1, 1L << 30);
        else if (cli_opt(&a, NULL, "--no-rerotate")) o->p.no_rerotate = 1;
        else if (cli_opt(&a, NULL, "--lingua-segment")) o->p.lingua_segment = (size_t)cli_long(&a, 1, 1L << 30);
        else if (cli_opt(&a, NULL, "--delimiter")) o->delimiter = cli_value(&a);
        else if (cli_opt(&a, NULL, "--press")) press = cli_value(&a);
        else if (cli_opt(&a, NULL, "--plot-kept")) o->plot_kept = cli_value(&a);
        else if (cli_opt(&a, NULL, "--mark")) o->mark = cli_long(&a, 0, 1L << 40);
        else if (cli_opt(&a, NULL, "--dump")) o->dump = cli_value(&a);
        else if (cli_opt(&a, NULL, "--dump-layout")) layout = cli_value(&a);
        else if (cli_opt(&a, NULL, "--dump-steps")) o->p.record_steps = 1;
        else if (!a.error) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc || (rc = cli_shared_finish(&sh, 1, &o->p, &o->max_memory))) return rc;
    o->model = sh.model;
    o->chat_template = sh.chat_template;
    o->system = sh.system;
    o->answer_prefix = sh.answer_prefix;
    o->n_new = sh.n_predict;
    o->threads = sh.threads;
    o->seed = sh.seed;
    o->temp = sh.temp;
    o->top_p = sh.top_p;
    o->json = sh.json;
    o->progress = sh.progress;
    o->n_budget_flags = sh.n_budget_flags;
    o->ctx_size = (size_t)sh.ctx_size;
    if (press && finch_scorer_parse(press, &o->p.scorer) != FINCH_OK)
        return cli_error("%s", finch_last_error());
    if ((rc = parse_variants(o, schedule, layout))) return rc;
    if (o->mark >= 0 && !o->plot_kept) return cli_error("--mark marks a position on --plot-kept: give both");
    if ((!!o->context_file + !!o->context_text + !!o->context_ids) != 1)
        return cli_error("give exactly one of -f CONTEXT.txt, --context TEXT and --context-ids A.npy");
    if (!o->delimiter && !o->question == !o->question_ids)
        return cli_error("give exactly one of -q QUESTION and --question-ids B.npy");
    if (o->n_budget_flags != 1)
        return cli_error("give exactly one budget: --budget K, --ratio X or --cr F");
    if (o->prompt_ids && o->answer_prefix)
        return cli_error("--prompt-ids and --answer-prefix both give the answer prefix: use one");
    return 0;
}

/* ----------------------------------------------------------------- inputs */

typedef struct {
    int32_t *context, *question, *prompt;
    size_t n_context, n_question, n_prompt;
    size_t n_protect; /* BOS + the chat template's head: never evicted */
    cli_chat chat;
} run_ids;

static int tokenize_no_bos(const finch_model *m, const char *text, int32_t **ids, size_t *n) {
    return cli_tokenize(m, text, false, ids, n);
}

/* The generation prompt: --prompt-ids, or what cli_answer_prompt builds
 * from the mode and --answer-prefix. */
static int read_prompt(const cli_run_opts *o, const finch_model *m, run_ids *ids) {
    if (o->prompt_ids) return cli_read_ids(o->prompt_ids, &ids->prompt, &ids->n_prompt);
    return cli_answer_prompt(m, o->p.mode, ids->question, ids->n_question, ids->chat.tail, o->answer_prefix,
                             &ids->prompt, &ids->n_prompt);
}

/* The texts' bytes, known before they are read (a -f that is not a
 * regular file, a pipe, counts as empty here: the reader's own bound holds). */
static size_t text_bytes(const cli_run_opts *o) {
    struct stat st;
    size_t n = o->question ? strlen(o->question) : 0;
    if (o->context_text) n += strlen(o->context_text);
    if (o->context_file && stat(o->context_file, &st) == 0 && S_ISREG(st.st_mode)) n += (size_t)st.st_size;
    return n;
}

/* --delimiter: the whole text, cut in two. */
static int read_delimited(const cli_run_opts *o, const finch_model *m, run_ids *ids) {
    char *text = NULL;
    size_t len = 0;
    if (o->context_file) { /* bounded, NUL refused as read (finch_read_text_file) */
        finch_status st = finch_read_text_file(o->context_file, &text, &len);
        if (st) return cli_fail(st, "cannot read the context");
    }
    const char *t = text ? text : o->context_text;
    int rc = cli_split_delimited(m, t, text ? len : strlen(t), o->delimiter, &ids->context, &ids->n_context,
                                 &ids->question, &ids->n_question);
    free(text);
    return rc ? rc : read_prompt(o, m, ids);
}

static int read_inputs(const cli_run_opts *o, const finch_model *m, run_ids *ids) {
    int rc = cli_check_text_memory(m, text_bytes(o), o->max_memory, "the context and question");
    if (rc || (rc = cli_chat_setup(m, o->chat_template, o->system, o->context_ids || o->question_ids, &ids->chat)))
        return rc;
    if (o->delimiter && ids->chat.format)
        return cli_error("--delimiter cuts a plain text, not a chat template's (%s): give --chat-template none",
                         cli_chat_name(&ids->chat));
    if (o->delimiter) return read_delimited(o, m, ids);
    if (o->context_ids) rc = cli_read_ids(o->context_ids, &ids->context, &ids->n_context);
    else if (o->context_file)
        rc = cli_chat_context_file(m, &ids->chat, o->context_file, &ids->context, &ids->n_context, &ids->n_protect);
    else rc = *o->context_text ? cli_chat_context(m, &ids->chat, o->context_text, &ids->context, &ids->n_context,
                                                  &ids->n_protect)
                               : cli_error("the context is empty");
    if (rc) return rc;
    if (o->question && !*o->question) return cli_error("the question is empty");
    rc = o->question_ids ? cli_read_ids(o->question_ids, &ids->question, &ids->n_question)
                         : tokenize_no_bos(m, o->question, &ids->question, &ids->n_question);
    if (rc) return rc;
    /* a context of only a BOS (an empty file) is empty too */
    bool bos_only = ids->n_context == 1 && m->tokenizer && ids->context[0] == finch_tokenizer_bos(m->tokenizer) &&
                    !o->context_ids;
    if (ids->n_context == 0 || bos_only) return cli_error("the context is empty");
    if (ids->n_question == 0) return cli_error("the question is empty");
    return read_prompt(o, m, ids);
}

/* --------------------------------------------------------------- the plan */

/* Everything decided before the work, by the library (finch_plan_run): the
 * budget (a budget above the context keeps it all), the chunk, the answer's
 * length, and whether the run fits in memory; *batch is the forward calls'
 * size. */
static int plan_run(cli_run_opts *o, const finch_model *m, const run_ids *ids, size_t *batch) {
    finch_run_params rp = finch_run_defaults();
    rp.press = o->p;
    rp.n_ctx = ids->n_context;
    rp.n_question = ids->n_question;
    rp.n_prompt = ids->n_prompt;
    rp.n_predict = (size_t)o->n_new;
    rp.window = o->ctx_size;
    finch_run_plan plan;
    finch_status st = finch_plan_run(m, &rp, &plan);
    if (st) return cli_error("%s", finch_last_error());
    o->p.chunk = plan.chunk;
    if (plan.n_predict_reduced) {
        o->n_new = (long)plan.n_predict;
        fprintf(stderr, "finch: note: -n reduced to %ld to stay within the context length %zu\n", o->n_new,
                plan.window);
    }
    if (o->p.scorer == FINCH_SCORER_FULL)
        fprintf(stderr, "finch: --press full keeps the whole context; the budget is not used\n");
    else if (plan.K >= ids->n_context - o->p.protect)
        fprintf(stderr, "finch: note: the budget keeps all %zu context tokens: nothing is evicted\n",
                ids->n_context - o->p.protect);
    *batch = plan.batch;
    /* --dump copies the kept keys and values once more (finch_press_dump) */
    size_t dump_copy = o->dump ? plan.n_kept : 0;
    return cli_check_memory(m, plan.peak + dump_copy, o->p.cache_type, *batch, o->max_memory, "the run");
}

/* --------------------------------------------------------------- progress */

static void show_progress(void *user, size_t done, size_t total) {
    (void)user;
    int width = 30, filled = total ? (int)(width * done / total) : width;
    fprintf(stderr, "\rfinch: [%.*s%*s] %zu/%zu chunks", filled, "##############################",
            width - filled, "", done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

typedef struct {
    const finch_model *m;
    int32_t prev;
    bool print;
} answer_printer;

static int print_answer_token(void *user, int32_t id) {
    answer_printer *p = user;
    if (p->print) {
        cli_print_token(p->m, p->prev, id, stdout);
        fflush(stdout);
    }
    p->prev = id;
    return 0;
}

/* ---------------------------------------------------------------- reports */

static void print_stats_line(const finch_press_stats *s) {
    fprintf(stderr,
            "finch: press %s, mode %s, select %s, normalize %s | N %zu, K %zu, m %zu, chunk %zu (%zu chunks) | "
            "compression %.2fx | KV %.2f MB -> %.2f MB (%.1f%% saved) | prefill %.3f s, scoring %.3f s, "
            "compaction %.3f s, generation %.3f s\n",
            finch_scorer_name(s->scorer), finch_press_mode_name(s->mode), finch_press_select_name(s->select),
            finch_press_normalize_name(s->normalize),
            s->n_ctx, s->budget, s->n_question, s->chunk, s->n_chunks, s->compression,
            s->kv_bytes_full / 1e6, s->kv_bytes_kept / 1e6,
            s->kv_bytes_full ? 100.0 * (1.0 - (double)s->kv_bytes_kept / (double)s->kv_bytes_full) : 0.0,
            s->t_prefill, s->t_scoring, s->t_compact, s->t_generation);
}

static cJSON *ids_json(const int32_t *ids, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

/* Every setting and statistic of the run: meta.json and --json.  The
 * parameters are the dump's "params", written by the same function
 * (docs/dump-format.md). */
static cJSON *run_json(const cli_run_opts *o, const finch_model *m, const run_ids *ids, const finch_press *fp,
                       const int32_t *gen, size_t n_gen, const char *answer) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "run");
    cJSON_AddStringToObject(j, "finch_version", finch_version());
    cJSON_AddStringToObject(j, "finch_commit", finch_build_commit());
    cli_json_string(j, "model", o->model);
    cli_json_string(j, "architecture", m->cfg.arch);
    cJSON_AddStringToObject(j, "chat_template", cli_chat_name(&ids->chat));
    finch_press_params_json(j, fp); /* the dump's "params", in its order */
    cJSON_AddNumberToObject(j, "compression", s->compression);
    cJSON_AddNumberToObject(j, "kv_bytes_before", (double)s->kv_bytes_full);
    cJSON_AddNumberToObject(j, "kv_bytes_after", (double)s->kv_bytes_kept);
    cJSON_AddNumberToObject(j, "kv_capacity_positions", (double)s->kv_capacity);
    cJSON_AddNumberToObject(j, "n_predict", (double)o->n_new);
    cJSON_AddNumberToObject(j, "temperature", o->temp);
    cJSON_AddNumberToObject(j, "top_p", o->top_p);
    cJSON *t = cJSON_AddObjectToObject(j, "seconds");
    cJSON_AddNumberToObject(t, "prefill", s->t_prefill);
    cJSON_AddNumberToObject(t, "scoring", s->t_scoring);
    cJSON_AddNumberToObject(t, "compaction", s->t_compact);
    cJSON_AddNumberToObject(t, "generation", s->t_generation);
    cJSON_AddItemToObject(j, "generated", ids_json(gen, n_gen));
    cJSON_AddStringToObject(j, "answer", answer); /* already valid UTF-8 */
    return j;
}

/* Fill the dump directory (format v1, docs/dump-format.md; its temporary
 * made before the work), then move it into place. */
static int dump_run(const cli_run_opts *o, cli_dump *d, const finch_press *fp, const run_ids *ids,
                    const int32_t *gen, size_t n_gen, const char *meta) {
    finch_dump_opts dopt = finch_dump_defaults();
    dopt.layout = o->dump_layout;
    dopt.steps = o->p.record_steps;
    dopt.model_path = o->model;
    dopt.context = ids->context;
    dopt.n_context = ids->n_context;
    dopt.question = ids->question;
    dopt.n_question = ids->n_question;
    dopt.prompt = ids->n_prompt ? ids->prompt : ids->question; /* what was fed after compression */
    dopt.n_prompt = ids->n_prompt ? ids->n_prompt : ids->n_question;
    dopt.extra_json = meta;
    dopt.extra_file = "generated.npy";
    size_t ng = n_gen;
    finch_status st = finch_dump_write(fp, d->tmp, &dopt);
    int rc = st ? cli_fail(st, "--dump") : 0;
    if (!rc) rc = cli_dump_npy(d, "generated.npy", FINCH_NPY_I32, gen, &ng, 1);
    if (!rc) rc = cli_dump_commit(d);
    return rc;
}

/* The kept positions of every layer and head across the text, written to
 * --plot-kept through its temporary, renamed into place when complete. */
static int plot_kept(const cli_run_opts *o, const finch_press *fp, finch_outfile *out) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    const finch_kv_cache *kv = finch_press_cache(fp);
    char title[256];
    snprintf(title, sizeof title, "kept positions: press %s, %s, K %zu of N %zu (%.1fx)", finch_scorer_name(s->scorer),
             finch_press_mode_name(s->mode), s->budget, s->n_ctx, s->compression);
    finch_svg_kept k = { title, finch_press_kept(fp), kv->n_layer, kv->n_kv_head, s->n_kept, s->n_ctx,
                         s->mode == FINCH_PRESS_ONESHOT ? s->n_question : 0, o->mark };
    finch_status st = finch_svg_kept_map(out->f, &k);
    if (st) finch_outfile_abort(out);
    else st = finch_outfile_commit(out);
    return st ? cli_fail(st, "--plot-kept") : 0;
}

/* Outputs are checked first (none may be an input), and their temporaries
 * made once the inputs are valid, before the work: an unwritable place
 * fails in a second, not after the run. */
static int open_outputs(const cli_run_opts *o, cli_dump *dump, finch_outfile *plot) {
    int rc = o->dump ? cli_dump_create(dump) : 0;
    finch_status st = !rc && o->plot_kept ? finch_outfile_open(plot, o->plot_kept) : FINCH_OK;
    return rc ? rc : st ? cli_fail(st, "--plot-kept") : 0;
}

static int check_outputs(const cli_run_opts *o, cli_dump *dump) {
    const char *inputs[] = { o->model, o->context_file, o->context_ids, o->question_ids, o->prompt_ids };
    int rc = 0;
    if (o->plot_kept) rc = cli_output_check("--plot-kept", o->plot_kept, inputs, sizeof inputs / sizeof inputs[0]);
    if (!rc && o->dump) rc = cli_dump_begin(dump, o->dump);
    return rc;
}

/* ------------------------------------------------------------------ the job */

/* Decoded answer text (bytes of the generated tokens, every piece whole),
 * as valid UTF-8 for JSON (finch_utf8_clean). */
static char *answer_text(const finch_model *m, int32_t prev, const int32_t *gen, size_t n) {
    size_t len = 0, piece_len;
    for (size_t i = 0; i < n && m->tokenizer; i++)
        if (finch_token_piece(m->tokenizer, i ? gen[i - 1] : prev, gen[i], &piece_len)) len += piece_len;
    char *raw = malloc(len + 1);
    if (!raw) return NULL;
    len = 0;
    for (size_t i = 0; i < n && m->tokenizer; i++) {
        const char *p = finch_token_piece(m->tokenizer, i ? gen[i - 1] : prev, gen[i], &piece_len);
        if (p && piece_len) memcpy(raw + len, p, piece_len);
        len += p ? piece_len : 0;
    }
    char *clean = finch_utf8_clean(raw, len);
    free(raw);
    return clean;
}

static int compress_and_answer(const cli_run_opts *o, const finch_model *m, finch_press *fp, const run_ids *ids,
                               int32_t *gen, size_t *n_gen) {
    finch_status st = finch_press_run(fp, ids->context, ids->n_context, ids->question, ids->n_question,
                                      ids->prompt, ids->n_prompt, o->progress ? show_progress : NULL, NULL);
    if (!st) st = finch_check_logits(finch_press_prompt_logits(fp), m->cfg.vocab, "the logits after the prompt");
    if (st) return cli_fail(st, "Finch");
    finch_sampler s;
    if ((st = finch_sampler_init(&s, (finch_sampler_params){ (float)o->temp, (float)o->top_p, (uint64_t)o->seed }, m->cfg.vocab)))
        return cli_fail(st, "sampler");
    int32_t eos = m->tokenizer ? finch_tokenizer_eos(m->tokenizer) : -1;
    const int32_t *last = ids->n_prompt ? ids->prompt + ids->n_prompt - 1 : ids->question + ids->n_question - 1;
    answer_printer ap = { m, *last, !o->json };
    st = finch_press_decode(fp, &s, (size_t)o->n_new, eos, print_answer_token, &ap, gen, n_gen);
    finch_sampler_free(&s);
    if (!o->json) {
        printf("\n");
        fflush(stdout);
    }
    return st ? cli_fail(st, "decode") : 0;
}

int cmd_run(int argc, char **argv) {
    cli_run_opts o;
    int rc = cli_parse_run(argc, argv, &o);
    if (rc) return rc;
    finch_model *m = NULL;
    finch_ctx *ctx = NULL;
    finch_press *fp = NULL;
    run_ids ids = { 0 };
    int32_t *gen = NULL;
    size_t n_gen = 0, batch = 0;
    char *answer = NULL, *meta = NULL;
    cli_dump dump = { 0 };
    finch_outfile plot = { 0 };
    finch_status st;
    if ((rc = check_outputs(&o, &dump))) return rc; /* fail before the work, writing nothing */
    if ((rc = cli_load_model(o.model, &m)) || (rc = read_inputs(&o, m, &ids)))
        goto done;
    o.p.protect = ids.n_protect;
    if (ids.chat.format)
        fprintf(stderr, "finch: chat template %s%s: %zu leading context tokens protected\n", cli_chat_name(&ids.chat),
                ids.chat.from_model ? " (recognised from the model)" : "", ids.n_protect);
    if ((rc = plan_run(&o, m, &ids, &batch)) || (rc = open_outputs(&o, &dump, &plot))) goto done;
    if ((st = finch_ctx_new(m, (size_t)o.threads, batch, &ctx)) || (st = finch_press_new(m, ctx, &o.p, &fp))) {
        rc = cli_fail(st, "cannot set up Finch");
        goto done;
    }
    o.threads = (long)finch_ctx_threads(ctx); /* as resolved, for the report */
    gen = malloc(((size_t)o.n_new + 1) * sizeof(int32_t));
    if (!gen) { rc = cli_out_of_memory(); goto done; }
    if ((rc = compress_and_answer(&o, m, fp, &ids, gen, &n_gen))) goto done;
    const finch_press_stats *s = finch_press_get_stats(fp);
    const int32_t *last = ids.n_prompt ? ids.prompt + ids.n_prompt - 1 : ids.question + ids.n_question - 1;
    answer = answer_text(m, *last, gen, n_gen);
    cJSON *j = answer ? run_json(&o, m, &ids, fp, gen, n_gen, answer) : NULL;
    meta = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!meta) { rc = cli_out_of_memory(); goto done; }
    if (o.json) printf("%s\n", meta);
    print_stats_line(s);
    if (o.dump) rc = dump_run(&o, &dump, fp, &ids, gen, n_gen, meta);
    if (!rc && o.plot_kept) rc = plot_kept(&o, fp, &plot);
done:
    finch_outfile_abort(&plot); /* the run failed: no plot, the old file (if any) untouched */
    cli_dump_abort(&dump);
    free(answer); free(meta); free(gen);
    free(ids.context); free(ids.question); free(ids.prompt);
    cli_chat_free(&ids.chat);
    finch_press_free(fp);
    finch_ctx_free(ctx);
    finch_model_free(m);
    return rc;
}
