/* cmd_eval.c - `finch eval`: every press at every ratio on every item of a
 * task file, against the full cache of the same item.
 *
 *   options -> tasks (JSONL) -> per item: ids, the full reference, each
 *   press x ratio (src/eval/eval.c runs one and measures it) -> results.json
 *   after every item -> summary table, CSV, plots (eval_report.c).
 * docs/eval.md describes the command, the metrics and the outputs. */
#include "cli.h"
#include "eval_bench.h"
#include "eval_report.h"
#include "finch_benchmarks.h"
#include "eval_units.h"
#include "finch_eval.h"
#include "finch_run.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { EVAL_BATCH = FINCH_DEFAULT_BATCH_MAX }; /* tokens per forward call */

/* ---------------------------------------------------------------- options */

/* "finch,snapkv": names in order, no repeats; "full" is always run as the
 * reference, so it is accepted and left out of the list. */
static int parse_presses(const char *list, cli_eval_opts *o) {
    char buf[512];
    if (strlen(list) >= sizeof buf) return cli_error("--press: list too long");
    strcpy(buf, list);
    o->n_presses = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        finch_scorer_id id;
        if (finch_scorer_parse(t, &id) != FINCH_OK) return cli_error("--press: %s", finch_last_error());
        for (size_t i = 0; i < o->n_presses; i++)
            if (o->presses[i] == id) return cli_error("--press: '%s' is listed twice", t);
        if (id != FINCH_SCORER_FULL) o->presses[o->n_presses++] = id;
    }
    return 0;
}

int cli_parse_eval(int argc, char **argv, cli_eval_opts *o) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    memset(o, 0, sizeof *o);
    o->p = finch_press_defaults();
    o->out = "eval-out";
    cli_shared sh;
    cli_shared_init(&sh);
    sh.n_predict = -1; /* given or not: a benchmark's own answer length applies when not */
    const char *presses = "finch,truncate,streaming,snapkv,h2o,tova,knorm,random";
    while (cli_next(&a)) {
        if (cli_shared_flag(&a, &sh)) continue;
        if (cli_opt(&a, NULL, "--task")) o->task = cli_value(&a);
        else if (cli_opt(&a, NULL, "--press")) presses = cli_value(&a);
        else if (cli_opt(&a, NULL, "--out")) o->out = cli_value(&a);
        else if (cli_opt(&a, NULL, "--limit")) o->limit = cli_long(&a, 1, 1L << 40);
        else if (cli_opt(&a, NULL, "--resume")) o->resume = true;
        else if (cli_opt(&a, NULL, "--benchmark")) o->benchmark = cli_value(&a);
        else if (cli_opt(&a, NULL, "--fields")) o->fields = cli_value(&a);
        else if (cli_opt(&a, NULL, "--dump-items")) o->dump_items = cli_value(&a);
        else if (cli_opt(&a, NULL, "--plot-kept-items")) o->plot_kept_items = cli_value(&a);
        else if (cli_opt(&a, NULL, "--max-length")) o->max_length = cli_long(&a, 2, 1L << 30);
        else if (cli_opt(&a, NULL, "--longbench-e")) o->longbench_e = true;
        else if (cli_opt(&a, NULL, "--jieba")) o->jieba = cli_value(&a);
        else if (cli_opt(&a, NULL, "--lingua-segment")) o->p.lingua_segment = (size_t)cli_long(&a, 1, 1L << 30);
        else if (!a.error) cli_unknown(&a);
    }
    if (sh.n_budget_flags == 0) { /* the default sweep */
        sh.budget_kind = FINCH_BUDGET_RATIO;
        sh.budget_list = "2,4,8,16,32";
        sh.budget_flag = "--ratio";
        sh.n_budget_flags = 1;
    }
    o->n_new_given = sh.n_predict != -1;
    if (!o->n_new_given) sh.n_predict = FINCH_DEFAULT_N_PREDICT;
    int rc = cli_args_error(&a);
    if (rc || (rc = cli_shared_finish(&sh, CLI_EVAL_MAX_RATIOS, &o->p, &o->max_memory))) return rc;
    o->model = sh.model;
    o->chat_template = sh.chat_template;
    o->system = sh.system;
    o->answer_prefix = sh.answer_prefix;
    o->n_new = sh.n_predict;
    o->threads = sh.threads;
    o->seed = sh.seed;
    o->json = sh.json;
    o->progress = sh.progress;
    o->ctx_size = (size_t)sh.ctx_size;
    memcpy(o->ratios, sh.budgets, sh.n_budgets * sizeof o->ratios[0]);
    o->n_ratios = sh.n_budgets;
    if (!o->model) return cli_error("no model given (-m MODEL)");
    if (!o->task) return cli_error("no task given (--task TASK.jsonl)");
    if (!*o->out) return cli_error("--out needs a directory name");
    if (o->n_new < 1) return cli_error("-n must be at least 1 for finch eval (the answer is scored)");
    finch_benchmark b;
    if (o->benchmark && finch_benchmark_parse(o->benchmark, &b) != FINCH_OK)
        return cli_error("--benchmark: %s", finch_last_error());
    if (o->dump_items && !*o->dump_items) return cli_error("--dump-items needs a directory name");
    if (o->plot_kept_items && !*o->plot_kept_items) return cli_error("--plot-kept-items needs a directory name");
    if ((rc = parse_presses(presses, o))) return rc;
    bool lingua = false;
    for (size_t i = 0; i < o->n_presses; i++) lingua |= o->presses[i] == FINCH_SCORER_LINGUA;
    if (o->p.lingua_segment && !lingua)
        return cli_error("--lingua-segment is the segment size of press lingua: list lingua in --press");
    return 0;
}

/* ---------------------------------------------------------- one item's ids */

typedef struct {
    int32_t *context, *question, *prompt, *reference;
    size_t n_context, n_question, n_prompt, n_reference;
    size_t n_protect; /* BOS + the chat template's head: never evicted */
    size_t n_new;     /* answer tokens at most (eval_item_n_new) */
    bool past_newline; /* the benchmark's answers may span lines */
} item_ids;

static void item_ids_free(item_ids *ids) {
    free(ids->context); free(ids->question); free(ids->prompt); free(ids->reference);
    memset(ids, 0, sizeof *ids);
}

/* The text the prompt ends with: the answer follows it, after a space
 * unless it ends in white space (oneshot's "\n", most assistant headers). */
static const char *prompt_tail(const cli_eval_opts *o, const cli_chat *chat, const finch_eval_task *t) {
    const char *prefix = eval_item_prefix(o, t);
    if (prefix && *prefix) return prefix;
    if (chat->tail) return chat->tail;
    return o->p.mode == FINCH_PRESS_ONESHOT ? "\n" : t->question;
}

/* answers[0] as the tokens that would follow the prompt (a continuation of
 * the same text, so no BOS and no extra leading-space marker). */
static int tokenize_reference(const finch_model *m, const cli_eval_opts *o, const cli_chat *chat,
                              const finch_eval_task *t, item_ids *ids) {
    if (t->n_answers == 0 || !*t->answers[0]) return 0; /* unanswerable: no NLL */
    const char *tail = prompt_tail(o, chat, t);
    size_t tl = strlen(tail), al = strlen(t->answers[0]);
    int space = tl && !isspace((unsigned char)tail[tl - 1]);
    char *text = malloc(al + 2);
    if (!text) return cli_out_of_memory();
    snprintf(text, al + 2, "%s%s", space ? " " : "", t->answers[0]);
    finch_status st = finch_check_text(text, strlen(text));
    if (!st) st = finch_tokenize_ex(m->tokenizer, text, strlen(text), 0, 1, &ids->reference, &ids->n_reference);
    free(text);
    return st ? cli_fail(st, "cannot tokenize the reference answer") : 0;
}

static int tokenize_item(const finch_model *m, const cli_eval_opts *o, const cli_chat *all_chat,
                         const finch_eval_task *t, item_ids *ids) {
    char what[128];
    snprintf(what, sizeof what, "item '%.64s'", t->id);
    int rc = cli_check_text_memory(m, strlen(t->context) + strlen(t->question), o->max_memory, what);
    if (rc) return rc;
    const cli_chat *chat = eval_item_chat(all_chat, t); /* none for the few-shot benchmarks */
    ids->n_new = eval_item_n_new(o, t);
    ids->past_newline = t->no_newline_stop;
    if ((rc = cli_chat_context(m, chat, t->context, &ids->context, &ids->n_context, &ids->n_protect)) ||
        (rc = cli_tokenize(m, t->question, false, &ids->question, &ids->n_question)) ||
        (rc = eval_truncate_middle(ids->context, &ids->n_context, ids->n_question, ids->n_protect, o->max_length)) ||
        (rc = cli_answer_prompt(m, o->p.mode, ids->question, ids->n_question, chat->tail, eval_item_prefix(o, t),
                                &ids->prompt, &ids->n_prompt)))
        return rc;
    return tokenize_reference(m, o, chat, t, ids);
}

/* The plan of one run on the item (finch_plan_run): press at budget value
 * v of the sweep's kind; the full reference keeps the whole context. */
static finch_status item_plan(const finch_model *m, const cli_eval_opts *o, const item_ids *ids,
                              finch_scorer_id press, double v, finch_run_plan *plan) {
    finch_run_params rp = finch_run_defaults();
    rp.press = o->p;
    rp.press.scorer = press;
    rp.press.protect = ids->n_protect;
    cli_set_budget(&rp.press, o->p.budget_kind, v);
    rp.n_ctx = ids->n_context;
    rp.n_question = ids->n_question;
    rp.n_prompt = ids->n_prompt;
    rp.n_predict = ids->n_new;
    rp.n_forced = ids->n_reference;
    rp.window = o->ctx_size;
    return finch_plan_run(m, &rp, plan);
}

/* Why an item cannot be evaluated (NULL when it can): every run of it, the
 * full reference first, must fit the model's positions with the whole
 * answer.  *full: the reference's plan (the largest cache). */
static const char *does_not_fit(const finch_model *m, const cli_eval_opts *o, const item_ids *ids,
                                finch_run_plan *full, char *why, size_t cap) {
    if (ids->n_question == 0) return "the question has no token";
    finch_run_plan plan;
    for (size_t p = 0; p <= o->n_presses; p++)
        for (size_t r = 0; r < (p ? o->n_ratios : 1); r++) {
            finch_scorer_id press = p ? o->presses[p - 1] : FINCH_SCORER_FULL;
            if (item_plan(m, o, ids, press, o->ratios[r], p ? &plan : full)) {
                snprintf(why, cap, "%s", finch_last_error());
                return why;
            }
            const finch_run_plan *got = p ? &plan : full; /* the full reference's plan is in *full, not plan */
            if (got->n_predict_reduced) {
                snprintf(why, cap, "the answer (%zu tokens) does not fit in the model's %zu positions", ids->n_new,
                         got->window);
                return why;
            }
        }
    return NULL;
}

/* ------------------------------------------------------------ one item */

/* The fields every run records (full and compressed). */
static cJSON *run_record(const char *press, double ratio, const finch_eval_output *r, const finch_eval_task *t) {
    double em, f1;
    finch_eval_best(r->answer, (const char *const *)t->answers, t->n_answers, &em, &f1);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "press", press);
    cJSON_AddNumberToObject(j, "ratio", ratio);
    cJSON_AddStringToObject(j, "answer", r->answer);
    cJSON_AddNumberToObject(j, "em", em);
    cJSON_AddNumberToObject(j, "f1", f1);
    if (isnan(r->nll)) cJSON_AddNullToObject(j, "nll");
    else cJSON_AddNumberToObject(j, "nll", r->nll);
    cJSON_AddNumberToObject(j, "K", (double)r->K);
    cJSON_AddNumberToObject(j, "n_kept", (double)r->n_kept);
    cJSON_AddNumberToObject(j, "compression", r->compression);
    cJSON_AddNumberToObject(j, "kv_bytes", (double)r->kv_bytes);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cJSON_AddNumberToObject(j, "seconds_compress", r->seconds_compress);
    cJSON_AddNumberToObject(j, "seconds_generate", r->seconds_generate);
    return j;
}

static int run_press(const eval_env *e, const item_ids *ids, finch_scorer_id press, double ratio,
                     finch_eval_output *out) {
    finch_eval_input in = { e->o->p, ids->context, ids->question, ids->n_context, ids->n_question,
                            ids->prompt, ids->n_prompt, ids->reference, ids->n_reference, ids->n_new,
                            ids->past_newline, e->o->plot_kept_items != NULL && press != FINCH_SCORER_FULL };
    in.p.scorer = press;
    cli_set_budget(&in.p, e->o->p.budget_kind, ratio);
    in.p.protect = ids->n_protect;
    finch_run_plan plan;
    finch_status st = item_plan(e->m, e->o, ids, press, ratio, &plan);
    in.p.chunk = plan.chunk;
    if (!st) st = finch_eval_run(e->m, e->ctx, &in, out);
    if (!st) return 0;
    char what[96];
    snprintf(what, sizeof what, "press %s at ratio %g", finch_scorer_name(press), ratio);
    return cli_fail(st, what);
}

/* A record as it reads back from its JSON text (cJSON writes the shortest
 * text that reads back within an ulp, not always the same double): a
 * record from --resume, the journal or another MPI rank is then equal. */
static int as_written(cJSON **j) {
    char *text = cJSON_PrintUnformatted(*j);
    cJSON *back = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON_Delete(*j);
    *j = back;
    return back ? 0 : cli_out_of_memory();
}

size_t eval_units_per_item(const cli_eval_opts *o) { return 1 + o->n_presses * o->n_ratios; }

/* Unit 0: the full cache; its logits go to *logits (taken over). */
static int eval_full_unit(const eval_env *e, const finch_eval_task *t, const item_ids *ids, cJSON *rec,
                          float **logits) {
    finch_eval_output full;
    int rc = run_press(e, ids, FINCH_SCORER_FULL, 1, &full);
    if (rc) return rc;
    cJSON *fj = run_record("full", 1, &full, t);
    if ((rc = eval_bench_score_run(fj, t, e->o->bench_read))) {
        cJSON_Delete(fj);
        finch_eval_output_free(&full);
        return rc;
    }
    cJSON_AddNumberToObject(fj, "kl", 0); /* the reference against itself */
    cJSON_AddNumberToObject(fj, "top1", 1);
    cJSON_AddItemToObject(rec, "full", fj);
    *logits = full.logits;
    full.logits = NULL;
    finch_eval_output_free(&full);
    return 0;
}

/* Unit k >= 1: press (k-1) / R at ratio (k-1) % R against the full logits. */
static int eval_press_unit(const eval_env *e, const finch_eval_task *t, const item_ids *ids, size_t k,
                           const float *full_logits, cJSON **run) {
    const cli_eval_opts *o = e->o;
    finch_scorer_id press = o->presses[(k - 1) / o->n_ratios];
    double ratio = o->ratios[(k - 1) % o->n_ratios];
    size_t vocab = e->m->cfg.vocab;
    finch_eval_output out;
    int rc = run_press(e, ids, press, ratio, &out);
    if (rc) return rc;
    rc = eval_plot_kept_item(o->plot_kept_items, t->line, finch_scorer_name(press), ratio, &out, ids->context,
                             ids->n_context, ids->reference, ids->n_reference);
    if (rc) {
        finch_eval_output_free(&out);
        return rc;
    }
    cJSON *j = run_record(finch_scorer_name(press), ratio, &out, t);
    if ((rc = eval_bench_score_run(j, t, o->bench_read))) {
        cJSON_Delete(j);
        finch_eval_output_free(&out);
        return rc;
    }
    cJSON_AddNumberToObject(j, "kl", finch_eval_kl(full_logits, out.logits, vocab));
    bool same_top = finch_eval_argmax(out.logits, vocab) == finch_eval_argmax(full_logits, vocab);
    cJSON_AddNumberToObject(j, "top1", same_top ? 1 : 0);
    finch_eval_output_free(&out);
    *run = j;
    return as_written(run);
}

void eval_item_assemble(cJSON *header, cJSON **runs, size_t n_runs) {
    cJSON *arr = cJSON_AddArrayToObject(header, "runs");
    for (size_t k = 0; k < n_runs; k++) {
        cJSON_AddItemToArray(arr, runs[k]);
        runs[k] = NULL;
    }
}

/* The header of task t's record (ids, lengths, answers), "skipped" when the
 * item cannot run; 0 or the exit code (the item is refused). */
static int item_header(const eval_env *e, const finch_eval_task *t, item_ids *ids, cJSON **out, bool *skipped) {
    int rc = tokenize_item(e->m, e->o, e->chat, t, ids);
    if (rc) return rc;
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "id", t->id);
    cJSON_AddNumberToObject(rec, "n_context", (double)ids->n_context);
    cJSON_AddNumberToObject(rec, "n_question", (double)ids->n_question);
    cJSON_AddNumberToObject(rec, "n_reference", (double)ids->n_reference);
    cJSON_AddItemToObject(rec, "answers", cJSON_CreateStringArray((const char *const *)t->answers, (int)t->n_answers));
    char why[256];
    finch_run_plan full;
    const char *skip = does_not_fit(e->m, e->o, ids, &full, why, sizeof why);
    char what[128];
    snprintf(what, sizeof what, "item '%.64s'", t->id);
    *skipped = skip != NULL;
    if (skip) cJSON_AddStringToObject(rec, "skipped", skip);
    else rc = cli_check_memory(e->m, full.peak, e->o->p.cache_type, EVAL_BATCH, e->o->max_memory, what);
    if (rc) cJSON_Delete(rec);
    else *out = rec;
    return rc;
}

int eval_unit_run(const eval_env *e, const finch_eval_task *t, size_t unit, const float *full_logits_in,
                  cJSON **rec, float **full_logits) {
    item_ids ids = { 0 };
    cJSON *header = NULL;
    bool skipped;
    *rec = NULL;
    if (full_logits) *full_logits = NULL;
    int rc = item_header(e, t, &ids, &header, &skipped);
    if (!rc && unit == 0) {
        if (!skipped) rc = eval_full_unit(e, t, &ids, header, full_logits);
        if (!rc && !(rc = as_written(&header))) {
            *rec = header;
            header = NULL;
        }
    } else if (!rc) {
        rc = skipped ? cli_error("item '%.64s' was skipped: it has no unit %zu", t->id, unit)
                     : eval_press_unit(e, t, &ids, unit, full_logits_in, rec);
    }
    cJSON_Delete(header);
    item_ids_free(&ids);
    return rc;
}

int eval_dump_task(const eval_env *e, const finch_eval_task *t, const cJSON *rec) {
    if (!e->o->dump_items) return 0;
    item_ids ids = { 0 };
    int rc = tokenize_item(e->m, e->o, e->chat, t, &ids);
    if (!rc) rc = eval_dump_item(e->o->dump_items, t->line, e->m, ids.context, ids.n_context, ids.question,
                                 ids.n_question, ids.prompt, ids.n_prompt, rec);
    item_ids_free(&ids);
    return rc;
}

/* The record of task t: its units in order, or why it was skipped. */
static int eval_task_record(const eval_env *e, const finch_eval_task *t, cJSON **out) {
    item_ids ids = { 0 };
    cJSON *rec = NULL, **runs = NULL;
    float *full = NULL;
    bool skipped;
    size_t n_runs = eval_units_per_item(e->o) - 1;
    int rc = item_header(e, t, &ids, &rec, &skipped);
    if (!rc && !skipped && !(rc = eval_full_unit(e, t, &ids, rec, &full))) {
        if (n_runs && !(runs = calloc(n_runs, sizeof *runs))) rc = cli_out_of_memory();
        for (size_t k = 1; k <= n_runs && !rc; k++) rc = eval_press_unit(e, t, &ids, k, full, &runs[k - 1]);
        if (!rc) eval_item_assemble(rec, runs, n_runs);
        for (size_t k = 0; runs && k < n_runs; k++) cJSON_Delete(runs[k]);
    }
    free(runs);
    free(full);
    if (!rc) rc = as_written(&rec);
    if (!rc) rc = eval_dump_item(e->o->dump_items, t->line, e->m, ids.context, ids.n_context, ids.question,
                                 ids.n_question, ids.prompt, ids.n_prompt, rec);
    item_ids_free(&ids);
    if (rc) cJSON_Delete(rec);
    else *out = rec;
    return rc;
}

/* ------------------------------------------------------------- the sweep */

static bool item_done(const cJSON *items, const char *id) {
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(v) && !strcmp(v->valuestring, id)) return true;
    }
    return false;
}

static int save(const cli_eval_opts *o, const cJSON *config, const cJSON *items) {
    eval_summary s;
    int rc = eval_summarize(o, items, &s);
    if (!rc) rc = eval_save_results(o->out, config, items, &s);
    eval_summary_free(&s);
    return rc;
}

static int sweep(const eval_env *e, const finch_eval_tasks *tasks, const cJSON *config, cJSON *items) {
    const cli_eval_opts *o = e->o;
    size_t n = o->limit && (size_t)o->limit < tasks->n ? (size_t)o->limit : tasks->n, left = 0, done_now = 0;
    for (size_t i = 0; i < n; i++) left += !item_done(items, tasks->items[i].id);
    double start = finch_now();
    for (size_t i = 0; i < n; i++) {
        const finch_eval_task *t = &tasks->items[i];
        if (item_done(items, t->id)) continue; /* --resume, or a repeated id */
        double t0 = finch_now();
        cJSON *rec;
        int rc = eval_task_record(e, t, &rec);
        if (rc) return rc;
        cJSON_AddItemToArray(items, rec);
        if ((rc = save(o, config, items))) return rc; /* an interrupted sweep resumes from here */
        done_now++;
        if (o->progress)
            eval_progress_line(stderr, i + 1, n, t->id, cJSON_GetObjectItemCaseSensitive(rec, "skipped") != NULL,
                               finch_now() - t0, finch_now() - start, done_now, left - done_now);
    }
    return 0;
}

/* --out before the work: absent (made later), or a directory that is empty
 * or holds an earlier finch eval (its results.json says "command": "eval",
 * or, for an MPI sweep stopped early, its journal.jsonl).
 * The files eval writes replace only their own names there; anything else
 * in the directory stays untouched (docs/files.md). */
static int check_out_dir(const char *dir) {
    finch_status st = finch_outdir_check(dir);
    if (st) return cli_fail(st, "--out");
    DIR *dp = opendir(dir);
    if (!dp) return errno == ENOENT ? 0 : cli_error("--out %s: cannot read the directory: %s", dir, strerror(errno));
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dp)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dp);
    if (n == 0) return 0;
    size_t len = strlen(dir) + 16;
    char *path = malloc(len), *text = NULL;
    if (!path) return cli_out_of_memory();
    snprintf(path, len, "%s/results.json", dir);
    size_t tl;
    cJSON *j = finch_read_text_file(path, &text, &tl) ? NULL : cJSON_Parse(text);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "command");
    bool ours = cJSON_IsString(c) && !strcmp(c->valuestring, "eval");
    cJSON_Delete(j);
    free(text);
    if (!ours) { /* an MPI sweep stopped before its first results.json keeps only its journal */
        struct stat js;
        snprintf(path, len, "%s/journal.jsonl", dir);
        ours = stat(path, &js) == 0 && S_ISREG(js.st_mode);
    }
    free(path);
    return ours ? 0 : cli_error("--out %s: the directory is not empty and holds no results.json of finch eval; "
                                "choose another directory", dir);
}

/* The task file is read whole (its buffer doubles as it grows) and parsed
 * into items: 4 bytes per byte, checked against --max-memory before. */
static int check_task_memory(const cli_eval_opts *o) {
    struct stat st;
    if (!o->max_memory || stat(o->task, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    size_t size = (size_t)st.st_size;
    if (size <= o->max_memory / 4) return 0;
    char need[32], lim[32];
    return cli_error("not enough memory: --task %s (%zu bytes) needs %s to read and parse, more than --max-memory (%s)",
                     o->task, size, finch_format_size(size > SIZE_MAX / 4 ? SIZE_MAX : 4 * size, need, sizeof need),
                     finch_format_size(o->max_memory, lim, sizeof lim));
}

/* Made only once the task, the model and --resume have been read; *made
 * says whether this run created it (removed again if nothing was written). */
static int make_out_dir(const char *dir, bool *made) {
    *made = mkdir(dir, 0777) == 0;
    if (*made || errno == EEXIST) return check_out_dir(dir);
    return cli_error("--out %s: cannot create the directory: %s", dir, strerror(errno));
}

static int report(const cli_eval_opts *o, const cJSON *items) {
    eval_summary s;
    int rc = eval_summarize(o, items, &s);
    if (rc) return rc;
    if (o->json) {
        cJSON *j = eval_summary_json(&s);
        char *text = j ? cJSON_Print(j) : NULL;
        if (text) printf("%s\n", text);
        else rc = cli_out_of_memory();
        free(text);
        cJSON_Delete(j);
    } else {
        eval_print_table(stdout, o, &s);
    }
    if (!rc) rc = eval_write_files(o->out, o, items, &s);
    eval_summary_free(&s);
    return rc;
}

static int eval_command(int argc, char **argv) {
    cli_eval_opts o;
    int rc = cli_parse_eval(argc, argv, &o);
    if (rc) return rc;
    finch_eval_tasks tasks = { 0 };
    finch_model *m = NULL;
    finch_ctx *ctx = NULL;
    cli_chat chat = { 0 };
    cJSON *config = eval_config_json(&o), *items = NULL;
    if (!config) return cli_out_of_memory();
    bool made = false;
    if (eval_mpi_is_root() && (rc = check_out_dir(o.out))) goto done; /* only rank 0 writes there */
    if ((rc = check_task_memory(&o))) goto done;
    finch_benchmark bench = FINCH_BENCH_AUTO;
    if (o.benchmark) finch_benchmark_parse(o.benchmark, &bench); /* checked by cli_parse_eval */
    if ((rc = cli_jieba_start(o.jieba))) goto done;
    finch_status st = finch_bench_read(o.task, bench, o.fields, &tasks);
    if (st) { rc = cli_fail(st, "--task"); goto done; }
    if (o.longbench_e && (st = finch_longbench_mark_e(&tasks))) { rc = cli_fail(st, "--longbench-e"); goto done; }
    if ((rc = cli_jieba_check(&tasks))) goto done;
    o.bench_read = tasks.benchmark;
    /* Several ranks on one node share the mapped file's pages; private
     * copies of the weights, one per rank, could exceed the node. */
    if (finch_get_load_mode() == FINCH_LOAD_AUTO && eval_mpi_node_ranks() > 1) finch_set_load_mode(FINCH_LOAD_MMAP);
    if ((rc = cli_load_model(o.model, &m))) goto done;
    if (!m->tokenizer) { rc = cli_error("finch eval needs a model with a tokenizer"); goto done; }
    if (eval_mpi_is_root() && (rc = make_out_dir(o.out, &made))) goto done;
    if ((rc = cli_check_memory(m, 0, o.p.cache_type, EVAL_BATCH, o.max_memory, "the model"))) goto done;
    st = finch_ctx_new(m, (size_t)eval_mpi_threads(o.threads), EVAL_BATCH, &ctx);
    if (st) { rc = cli_fail(st, "cannot set up the model"); goto done; }
    if ((rc = cli_chat_setup(m, o.chat_template, o.system, false, &chat))) goto done;
    if (chat.format && eval_mpi_is_root())
        fprintf(stderr, "finch eval: chat template %s%s\n", cli_chat_name(&chat),
                chat.from_model ? " (recognised from the model)" : "");
    if ((rc = eval_bench_config(config, &o, &tasks, &chat))) goto done;
    if (o.resume && eval_mpi_is_root()) { /* after the config is whole: it must match */
        if ((rc = eval_load_items(&o, config, &items))) goto done;
    } else if (!(items = cJSON_CreateArray())) {
        rc = cli_out_of_memory();
        goto done;
    }
    eval_env e = { m, ctx, &o, &chat };
    rc = eval_mpi_active() ? eval_mpi_sweep(&e, &tasks, config, items) : sweep(&e, &tasks, config, items);
    if (!rc && eval_mpi_is_root()) rc = report(&o, items);
    if (!rc && eval_mpi_is_root()) rc = eval_bench_report(o.out, &tasks, items, o.json ? stderr : stdout);
    if (!rc && eval_mpi_is_root()) rc = eval_write_predictions(o.out, &tasks, items);
done:
    if (rc && made) rmdir(o.out); /* only when still empty: no empty directory left by a failed run */
    cli_jieba_stop();
    cli_chat_free(&chat);
    cJSON_Delete(config);
    cJSON_Delete(items);
    finch_ctx_free(ctx);
    finch_model_free(m);
    finch_eval_tasks_free(&tasks);
    return rc;
}

/* ------------------------------------------------- the MPI hook (eval_units.h) */

bool eval_item_done(const cJSON *items, const char *id) { return item_done(items, id); }
int eval_save(const cli_eval_opts *o, const cJSON *config, const cJSON *items) { return save(o, config, items); }

/* Under MPI (make MPI=1, eval_mpi.c) every rank runs the command; rank 0
 * writes the outputs.  Without it, the begin and end hooks do nothing. */
int cmd_eval(int argc, char **argv) {
    int rc = eval_mpi_begin(&argc, &argv);
    return rc ? rc : eval_mpi_end(eval_command(argc, argv));
}
