/* cmd_ruler.c - `finch ruler`: RULER-style synthetic tasks at a chosen
 * length in the model's tokens, written as RULER's JSONL (docs/benchmarks.md).
 *
 *   finch ruler -m MODEL --length N [--tasks a,b,...] [--samples K] [--seed S]
 *               [--squad dev-v2.0.json|DIR] -o FILE.jsonl
 *
 * As RULER's generators: the haystack size is the largest whose prompt
 * (input + answer prefix) plus the task's tokens_to_generate fits N tokens,
 * found by bisection; a sample that comes out longer is made again smaller. */
#include "cli.h"
#include "outfile.h"
#include "finch_benchmarks.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *tasks, *out, *squad;
    long length, samples, seed;
} ruler_opts;

/* What every item is made with: the model's tokenizer measures it, qa_1's
 * documents come from the SQuAD file of --squad. */
typedef struct {
    const finch_model *m;
    const finch_ruler_qa_source *qa;
} ruler_maker;

static int parse_ruler(int argc, char **argv, ruler_opts *o) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    memset(o, 0, sizeof *o);
    o->tasks = "niah_single_1,niah_multikey_2,niah_multivalue,niah_multiquery,vt,cwe";
    o->samples = 10;
    o->seed = 42;
    while (cli_next(&a)) {
        if (cli_opt(&a, "-m", "--model")) o->model = cli_value(&a);
        else if (cli_opt(&a, NULL, "--tasks")) o->tasks = cli_value(&a);
        else if (cli_opt(&a, "-o", "--out")) o->out = cli_value(&a);
        else if (cli_opt(&a, NULL, "--squad")) o->squad = cli_value(&a);
        else if (cli_opt(&a, NULL, "--length")) o->length = cli_long(&a, 64, 1L << 24);
        else if (cli_opt(&a, NULL, "--samples")) o->samples = cli_long(&a, 1, 1L << 20);
        else if (cli_opt(&a, NULL, "--seed")) o->seed = cli_long(&a, 0, 0x7fffffffL);
        else if (!a.error) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc) return rc;
    if (!o->model) return cli_error("no model given (-m MODEL): its tokenizer measures the length");
    if (!o->length) return cli_error("no length given (--length TOKENS)");
    if (!o->out) return cli_error("no output given (-o FILE.jsonl)");
    return 0;
}

/* RULER's tokens_to_generate (scripts/data/synthetic/constants.py). */
static size_t to_generate(const char *task) {
    if (!strncmp(task, "niah", 4)) return 128;
    if (!strcmp(task, "fwe")) return 50;
    if (!strcmp(task, "qa_1")) return 32;
    return !strcmp(task, "vt") ? 30 : 120;
}

typedef struct {
    char *input, *prefix;
    char **outputs;
    size_t n_outputs, tokens; /* input + prefix + tokens_to_generate */
} made;

static void made_free(made *x) {
    free(x->input); free(x->prefix);
    for (size_t i = 0; i < x->n_outputs; i++) free(x->outputs[i]);
    free(x->outputs);
    memset(x, 0, sizeof *x);
}

/* Sample `index` of task (qa_1: the index-th answerable question). */
static int make_one(const ruler_maker *mk, const char *task, size_t size, size_t length, size_t index, uint64_t seed,
                    made *x) {
    memset(x, 0, sizeof *x);
    finch_status st = !strcmp(task, "qa_1")
        ? finch_ruler_qa_sample(mk->qa, index, size, seed, &x->input, &x->prefix, &x->outputs, &x->n_outputs)
        : finch_ruler_sample(task, size, length, seed, &x->input, &x->prefix, &x->outputs, &x->n_outputs);
    if (st) return cli_fail(st, "--tasks");
    size_t li = strlen(x->input), lp = strlen(x->prefix);
    char *all = malloc(li + lp + 1);
    if (!all) return cli_out_of_memory();
    memcpy(all, x->input, li);
    memcpy(all + li, x->prefix, lp + 1);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = cli_tokenize(mk->m, all, true, &ids, &n);
    free(all);
    free(ids);
    x->tokens = n + to_generate(task);
    return rc;
}

/* The largest size (>= 1) whose sample 0 fits the length; bisection. */
static int fit_size(const ruler_maker *mk, const char *task, size_t length, uint64_t seed, size_t *size) {
    size_t lo = 1, hi = 2;
    made x;
    int rc;
    for (;; hi *= 2) { /* grow until it no longer fits */
        if ((rc = make_one(mk, task, hi, length, 0, seed, &x))) { made_free(&x); return rc; }
        bool fits = x.tokens <= length;
        made_free(&x);
        if (!fits || hi > (1u << 24)) break;
        lo = hi;
    }
    while (lo + 1 < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((rc = make_one(mk, task, mid, length, 0, seed, &x))) { made_free(&x); return rc; }
        if (x.tokens <= length) lo = mid;
        else hi = mid;
        made_free(&x);
    }
    *size = lo;
    return 0;
}

static int write_line(FILE *f, size_t index, const char *task, const made *x) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "index", (double)index);
    cJSON_AddStringToObject(j, "input", x->input);
    cJSON_AddItemToObject(j, "outputs", cJSON_CreateStringArray((const char *const *)x->outputs, (int)x->n_outputs));
    cJSON_AddNumberToObject(j, "length", (double)x->tokens);
    cJSON_AddStringToObject(j, "answer_prefix", x->prefix);
    cJSON_AddStringToObject(j, "task", task);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = text && fprintf(f, "%s\n", text) >= 0 ? 0 : cli_error("cannot write the output");
    free(text);
    return rc;
}

/* The task's own seed: --seed mixed with the name (FNV-1a), so tasks
 * made in one file do not share their keys. */
static uint64_t task_seed(long seed, const char *task) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)seed;
    for (const char *p = task; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static int make_task(const ruler_maker *mk, const ruler_opts *o, const char *task, FILE *f, size_t *index) {
    size_t size, over = 0;
    uint64_t base = task_seed(o->seed, task);
    int rc = fit_size(mk, task, (size_t)o->length, base, &size);
    if (rc) return rc;
    for (long s = 0; s < o->samples && !rc; s++) {
        made x;
        size_t sz = size;
        uint64_t seed = base + (uint64_t)s;
        while (!(rc = make_one(mk, task, sz, (size_t)o->length, (size_t)s, seed, &x)) && x.tokens > (size_t)o->length &&
               sz > 1) {
            made_free(&x);
            sz = sz > 8 ? sz - sz / 8 : sz - 1;
        }
        if (!rc) over += x.tokens > (size_t)o->length;
        if (!rc) rc = write_line(f, (*index)++, task, &x);
        made_free(&x);
    }
    fprintf(stderr, "finch ruler: %s: %ld samples, haystack size %zu, at most %ld tokens\n", task, o->samples, size,
            o->length);
    if (over) fprintf(stderr, "finch ruler: note: %s: %zu samples are longer than %ld tokens even at the smallest "
                      "haystack\n", task, over, o->length);
    return rc;
}

/* Every task of the list is one finch makes (qa_1 only with --squad). */
static int check_tasks(const ruler_opts *o, bool *want_qa) {
    char list[512];
    if (strlen(o->tasks) >= sizeof list) return cli_error("--tasks: list too long");
    strcpy(list, o->tasks);
    *want_qa = false;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "qa_1")) {
            if (!o->squad) return cli_error("--tasks: qa_1 needs SQuAD v2 documents: --squad dev-v2.0.json (or the "
                                            "folder of the squad2_500 sample)");
            *want_qa = true;
            continue;
        }
        char *in = NULL, *pre = NULL, **outs = NULL;
        size_t n = 0;
        if (finch_ruler_sample(t, 1, 0, 0, &in, &pre, &outs, &n) != FINCH_OK) return cli_error("--tasks: %s", finch_last_error());
        free(in); free(pre);
        for (size_t i = 0; i < n; i++) free(outs[i]);
        free(outs);
    }
    if (o->squad && !*want_qa) return cli_error("--squad is read only for the task qa_1, which --tasks does not name");
    return 0;
}

static int make_all(const ruler_maker *mk, const ruler_opts *o) {
    finch_outfile out;
    if (finch_outfile_open(&out, o->out) != FINCH_OK) return cli_fail(FINCH_ERR_IO, "-o");
    char list[512];
    strcpy(list, o->tasks);
    size_t index = 0;
    int rc = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save))
        rc = make_task(mk, o, t, out.f, &index);
    if (rc) finch_outfile_abort(&out); /* nothing half-written */
    else if (finch_outfile_commit(&out) != FINCH_OK) rc = cli_fail(FINCH_ERR_IO, "-o");
    return rc;
}

int cmd_ruler(int argc, char **argv) {
    ruler_opts o;
    bool want_qa = false;
    int rc = parse_ruler(argc, argv, &o);
    if (rc || (rc = check_tasks(&o, &want_qa))) return rc;
    finch_eval_tasks squad = { 0 };
    finch_ruler_qa_source *qa = NULL;
    finch_status st = want_qa ? finch_bench_read(o.squad, FINCH_BENCH_SQUAD2, NULL, &squad) : FINCH_OK;
    if (!st && want_qa) st = finch_ruler_qa_open(&squad, &qa);
    if (st) { finch_eval_tasks_free(&squad); return cli_fail(st, "--squad"); }
    finch_model *m = NULL;
    if (!(rc = cli_load_model(o.model, &m)) && !m->tokenizer) rc = cli_error("finch ruler needs a model with a tokenizer");
    ruler_maker mk = { m, qa };
    if (!rc) rc = make_all(&mk, &o);
    finch_model_free(m);
    finch_ruler_qa_close(qa);
    finch_eval_tasks_free(&squad);
    return rc;
}
