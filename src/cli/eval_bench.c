/* eval_bench.c - what `finch eval` adds for published benchmarks
 * (docs/benchmarks.md) and for runs left overnight, kept out of
 * cmd_eval.c's sweep:
 *
 *   per item: the chat rule, answer prefix, answer length and stop rule of
 *   its benchmark; the benchmark's score of each answer;
 *   per run: the benchmark, prompt templates and chat template in force
 *   (into results.json's config); the per-dataset table at the end
 *   (DIR/benchmark.json); the progress line with elapsed time and ETA;
 *   --dump-items DIR: one JSON file per item with its whole prompt text. */
#include "eval_bench.h"

#include "finch_benchmarks.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cli_chat no_chat = { 0 };

const cli_chat *eval_item_chat(const cli_chat *chat, const finch_eval_task *t) {
    return t->no_chat ? &no_chat : chat;
}

const char *eval_item_prefix(const cli_eval_opts *o, const finch_eval_task *t) {
    return o->answer_prefix ? o->answer_prefix : t->answer_prefix;
}

size_t eval_item_n_new(const cli_eval_opts *o, const finch_eval_task *t) {
    return t->max_new && !o->n_new_given ? t->max_new : (size_t)o->n_new;
}

/* ------------------------------------------------------------- config */

/* The template of an item's prompt, {context} and {input} marking where the
 * item's text goes (the plain format: the context, then the question). */
static const char *prompt_template(const finch_eval_task *t, int benchmark) {
    if (benchmark == FINCH_BENCH_LONGBENCH && t->dataset) {
        const finch_longbench_dataset *d = finch_longbench_find(t->dataset);
        if (d) return d->prompt;
    }
    if (benchmark == FINCH_BENCH_RULER) return "{context}{input}";
    return "{context}{input}";
}

int eval_truncate_middle(int32_t *context, size_t *n_context, size_t n_question, size_t n_protect, long max_length) {
    if (max_length <= 0 || *n_context + n_question <= (size_t)max_length) return 0;
    size_t half = (size_t)max_length / 2; /* int(max_length / 2) tokens from each end */
    size_t tail = half > n_question ? half - n_question : 0;
    if (half + tail <= n_protect || 2 * half <= n_question)
        return cli_error("--max-length %ld leaves no room for the context beside the question (%zu tokens)",
                         max_length, n_question);
    size_t head = 2 * half - n_question - tail;
    memmove(context + head, context + *n_context - tail, tail * sizeof *context);
    *n_context = head + tail;
    return 0;
}

int eval_bench_config(cJSON *config, const cli_eval_opts *o, const finch_eval_tasks *tasks, const cli_chat *chat) {
    if (o->max_length) cJSON_AddNumberToObject(config, "max_length", (double)o->max_length);
    if (tasks->benchmark == FINCH_BENCH_JSONL) return 0; /* results of the plain format resume as before */
    cJSON_AddStringToObject(config, "benchmark", finch_benchmark_name((finch_benchmark)tasks->benchmark));
    /* -n given replaces the benchmark's answer lengths: another run, not resumable into this one */
    cJSON_AddBoolToObject(config, "n_predict_given", o->n_new_given);
    cJSON_AddStringToObject(config, "chat_template", chat->format ? cli_chat_name(chat) : "none");
    cJSON *p = cJSON_AddObjectToObject(config, "prompts");
    if (!p) return cli_out_of_memory();
    for (size_t i = 0; i < tasks->n; i++) {
        const finch_eval_task *t = &tasks->items[i];
        const char *name = t->dataset ? t->dataset : finch_benchmark_name((finch_benchmark)tasks->benchmark);
        if (cJSON_GetObjectItemCaseSensitive(p, name)) continue;
        cJSON *d = cJSON_AddObjectToObject(p, name);
        cJSON_AddStringToObject(d, "prompt", prompt_template(t, tasks->benchmark));
        cJSON_AddBoolToObject(d, "chat", !t->no_chat);
        cJSON_AddStringToObject(d, "metric", finch_metric_name((finch_metric)t->metric));
        cJSON_AddNumberToObject(d, "max_new", (double)t->max_new);
        cJSON_AddBoolToObject(d, "stop_at_newline", !t->no_newline_stop);
        if (t->answer_prefix) cJSON_AddStringToObject(d, "answer_prefix", t->answer_prefix);
    }
    return 0;
}

/* --------------------------------------------------------------- scores */

int eval_bench_score_run(cJSON *run, const finch_eval_task *t, int benchmark) {
    if (benchmark == FINCH_BENCH_JSONL || benchmark == FINCH_BENCH_SQUAD2) return 0; /* em and f1 are the metric */
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(run, "answer");
    double score, exact;
    finch_bench_score_item(t, cJSON_IsString(a) ? a->valuestring : "", &score, &exact);
    if (isnan(score)) return cli_fail(FINCH_ERR_IO, "--jieba");
    cJSON_AddNumberToObject(run, "score", score);
    return 0;
}

/* One run's score (the benchmark's, else F1) and where it goes: the cell
 * [sum, n] of its dataset and press@ratio; a LongBench-E item also adds
 * its score and length to the cell's lists [sum, n, scores, lengths]. */
static void add_score(cJSON *table, const finch_eval_task *t, const char *dataset, const cJSON *run, int benchmark) {
    const cJSON *press = cJSON_GetObjectItemCaseSensitive(run, "press");
    const cJSON *ratio = cJSON_GetObjectItemCaseSensitive(run, "ratio");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(run, benchmark == FINCH_BENCH_SQUAD2 ? "f1" : "score");
    if (!cJSON_IsString(press) || !cJSON_IsNumber(ratio) || !cJSON_IsNumber(v)) return;
    char key[96];
    snprintf(key, sizeof key, "%s@%g", press->valuestring, ratio->valuedouble);
    cJSON *d = cJSON_GetObjectItemCaseSensitive(table, dataset);
    if (!d) d = cJSON_AddObjectToObject(table, dataset);
    cJSON *cellv = cJSON_GetObjectItemCaseSensitive(d, key);
    if (!cellv) {
        cellv = cJSON_AddArrayToObject(d, key);
        cJSON_AddItemToArray(cellv, cJSON_CreateNumber(0));
        cJSON_AddItemToArray(cellv, cJSON_CreateNumber(0));
    }
    cJSON *sum = cJSON_GetArrayItem(cellv, 0), *n = cJSON_GetArrayItem(cellv, 1);
    cJSON_SetNumberValue(sum, sum->valuedouble + v->valuedouble);
    cJSON_SetNumberValue(n, n->valuedouble + 1);
    if (!t || !t->longbench_e) return;
    if (cJSON_GetArraySize(cellv) == 2) {
        cJSON_AddItemToArray(cellv, cJSON_CreateArray());
        cJSON_AddItemToArray(cellv, cJSON_CreateArray());
    }
    cJSON_AddItemToArray(cJSON_GetArrayItem(cellv, 2), cJSON_CreateNumber(v->valuedouble));
    cJSON_AddItemToArray(cJSON_GetArrayItem(cellv, 3), cJSON_CreateNumber(t->length));
}

/* A LongBench-E cell [sum, n, scores, lengths]: eval.py --e's buckets, an
 * object {"0-4k", "4-8k", "8k+"} (null for an empty bucket: NaN is not
 * JSON), each also printed. */
static cJSON *bucket_cell(const char *dataset, const char *key, const cJSON *cellv, FILE *f) {
    const cJSON *sv = cJSON_GetArrayItem(cellv, 2), *lv = cJSON_GetArrayItem(cellv, 3);
    size_t n = (size_t)cJSON_GetArraySize(sv), k = 0, counts[FINCH_LONGBENCH_E_BUCKETS];
    double *v = malloc((n ? n : 1) * sizeof *v), *len = malloc((n ? n : 1) * sizeof *len);
    double score[FINCH_LONGBENCH_E_BUCKETS];
    cJSON *o = v && len ? cJSON_CreateObject() : NULL;
    for (const cJSON *a = sv ? sv->child : NULL, *b = lv ? lv->child : NULL; o && a && b; a = a->next, b = b->next, k++) {
        v[k] = a->valuedouble;
        len[k] = b->valuedouble;
    }
    if (o && finch_longbench_e_scores(v, len, k, counts, score) == FINCH_OK) {
        for (size_t b = 0; b < FINCH_LONGBENCH_E_BUCKETS; b++) {
            const char *name = finch_longbench_e_bucket_name(b);
            fprintf(f, "  %-22s %-18s %-5s %8.2f  (%zu items)\n", dataset, key, name, score[b], counts[b]);
            cJSON_AddItemToObject(o, name, isnan(score[b]) ? cJSON_CreateNull() : cJSON_CreateNumber(score[b]));
        }
    }
    free(v);
    free(len);
    return o;
}

/* ---------------------------------------------------------- predictions */

/* The answers of one press@ratio ("full@1", ...) into *preds, an object
 * key -> {id: answer}. */
static void gather_answer(cJSON *preds, const char *id, const cJSON *run) {
    const cJSON *press = cJSON_GetObjectItemCaseSensitive(run, "press");
    const cJSON *ratio = cJSON_GetObjectItemCaseSensitive(run, "ratio");
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(run, "answer");
    if (!cJSON_IsString(press) || !cJSON_IsNumber(ratio) || !cJSON_IsString(ans)) return;
    char key[96];
    snprintf(key, sizeof key, "%s@%g", press->valuestring, ratio->valuedouble);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(preds, key);
    if (!p) p = cJSON_AddObjectToObject(preds, key);
    cJSON_AddStringToObject(p, id, ans->valuestring);
}

/* A JSON document and its newline, through the atomic output rule. */
static int write_json_text(const char *what, const char *path, const char *json) {
    size_t n = strlen(json);
    char *t = malloc(n + 2);
    if (!t) return cli_out_of_memory();
    memcpy(t, json, n);
    memcpy(t + n, "\n", 2);
    int rc = cli_write_text_file(what, path, t);
    free(t);
    return rc;
}

/* One file: SQuAD v2 and plain tasks the official {id: answer} object,
 * LongBench and RULER JSON Lines {"id", "prediction"} (finch score reads
 * both). */
static int write_predictions(const char *path, const cJSON *answers, bool lines) {
    char *text = lines ? NULL : cJSON_Print(answers);
    size_t len = 0, cap = 0;
    for (const cJSON *a = lines ? answers->child : NULL; a; a = a->next) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", a->string);
        cJSON_AddStringToObject(j, "prediction", a->valuestring);
        char *line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        size_t n = line ? strlen(line) : 0;
        char *grown = line && len + n + 2 > cap ? realloc(text, cap = 2 * (len + n + 2)) : text;
        if (!line || !grown) {
            free(line);
            free(grown ? grown : text);
            return cli_out_of_memory();
        }
        text = grown;
        memcpy(text + len, line, n);
        len += n;
        text[len++] = '\n';
        text[len] = 0;
        free(line);
    }
    if (!lines && text) { /* the official object, one trailing newline */
        char *t = realloc(text, strlen(text) + 2);
        if (t) strcat(text = t, "\n");
    }
    int rc = cli_write_text_file("predictions", path, text ? text : "");
    free(text);
    return rc;
}

int eval_write_predictions(const char *dir, const finch_eval_tasks *tasks, const cJSON *items) {
    cJSON *preds = cJSON_CreateObject(), *it, *p;
    cJSON_ArrayForEach(it, items) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id"), *r;
        if (!cJSON_IsString(id) || cJSON_GetObjectItemCaseSensitive(it, "skipped")) continue;
        gather_answer(preds, id->valuestring, cJSON_GetObjectItemCaseSensitive(it, "full"));
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(it, "runs")) gather_answer(preds, id->valuestring, r);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/predictions", dir);
    int rc = mkdir(path, 0777) != 0 && errno != EEXIST ? cli_error("cannot create %s: %s", path, strerror(errno)) : 0;
    bool lines = tasks->benchmark == FINCH_BENCH_LONGBENCH || tasks->benchmark == FINCH_BENCH_RULER;
    cJSON_ArrayForEach(p, preds) {
        if (rc) break;
        snprintf(path, sizeof path, "%s/predictions/%s.%s", dir, p->string, lines ? "jsonl" : "json");
        rc = write_predictions(path, p, lines);
    }
    cJSON_Delete(preds);
    return rc;
}

/* ---------------------------------------------------------- the table */

int eval_bench_report(const char *dir, const finch_eval_tasks *tasks, const cJSON *items, FILE *f) {
    if (tasks->benchmark == FINCH_BENCH_JSONL) return 0;
    cJSON *table = cJSON_CreateObject(), *it;
    cJSON_ArrayForEach(it, items) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id"), *r;
        const char *dataset = finch_benchmark_name((finch_benchmark)tasks->benchmark);
        const finch_eval_task *t = NULL;
        for (size_t i = 0; cJSON_IsString(id) && i < tasks->n && !t; i++)
            if (!strcmp(tasks->items[i].id, id->valuestring)) t = &tasks->items[i];
        if (t && t->dataset) dataset = t->dataset;
        add_score(table, t, dataset, cJSON_GetObjectItemCaseSensitive(it, "full"), tasks->benchmark);
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(it, "runs")) add_score(table, t, dataset, r, tasks->benchmark);
    }
    /* each cell: the benchmark's scale, round(100 * mean, 2) */
    cJSON *d;
    fprintf(f, "finch eval: %s scores (100 x mean of the benchmark's metric)\n",
            finch_benchmark_name((finch_benchmark)tasks->benchmark));
    cJSON_ArrayForEach(d, table) {
        for (cJSON *next = NULL, *c = d->child; c; c = next) {
            next = c->next; /* c is replaced by its score */
            double sum = cJSON_GetArrayItem(c, 0)->valuedouble, n = cJSON_GetArrayItem(c, 1)->valuedouble;
            double v = finch_py_round2(100 * sum / n);
            fprintf(f, "  %-22s %-18s %8.2f  (%g items)\n", d->string, c->string, v, n);
            cJSON *e = cJSON_GetArraySize(c) == 4 ? bucket_cell(d->string, c->string, c, f) : NULL;
            cJSON_ReplaceItemInObjectCaseSensitive(d, c->string, e ? e : cJSON_CreateNumber(v));
        }
    }
    char *text = cJSON_Print(table), path[4200];
    cJSON_Delete(table);
    snprintf(path, sizeof path, "%s/benchmark.json", dir);
    int rc = text ? write_json_text("benchmark", path, text) : cli_out_of_memory();
    free(text);
    return rc;
}

/* ------------------------------------------------------------- progress */

static void hms(double s, char *out, size_t cap) {
    long t = (long)(s + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void eval_progress_line(FILE *f, size_t i, size_t n, const char *id, bool skipped, double item_s, double elapsed,
                        size_t done_now, size_t left) {
    char el[32], eta[32] = "-";
    hms(elapsed, el, sizeof el);
    if (done_now) hms(elapsed / (double)done_now * (double)left, eta, sizeof eta);
    fprintf(f, "finch eval: item %zu/%zu (%s): %s, %.2f s; elapsed %s, ETA %s\n", i, n, id,
            skipped ? "skipped" : "done", item_s, el, eta);
}

/* ----------------------------------------------------------- item dumps */

/* The ids as the text they decode to (the whole prompt the model reads). */
static char *ids_text(const finch_model *m, const int32_t *ids, size_t n) {
    size_t cap = 64 + 16 * n, len = 0;
    char *s = malloc(cap);
    for (size_t i = 0; s && i < n; i++) {
        char buf[256];
        size_t k = finch_token_to_bytes(m->tokenizer, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
        if (len + k + 1 > cap) {
            char *t = realloc(s, cap = 2 * (len + k + 1));
            if (!t) { free(s); return NULL; }
            s = t;
        }
        memcpy(s + len, buf, k);
        len += k;
    }
    if (s) s[len] = 0;
    return s;
}

int eval_dump_item(const char *dir, size_t index, const finch_model *m, const int32_t *context, size_t n_context,
                   const int32_t *question, size_t n_question, const int32_t *prompt, size_t n_prompt,
                   const cJSON *rec) {
    if (!dir) return 0;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cli_error("--dump-items %s: %s", dir, strerror(errno));
    cJSON *j = cJSON_Duplicate(rec, 1);
    char *c = ids_text(m, context, n_context), *q = ids_text(m, question, n_question);
    char *p = ids_text(m, prompt, n_prompt);
    if (j && c && q && p) { /* as the model reads them, chat head and tail included */
        cJSON_AddStringToObject(j, "context_text", c);
        cJSON_AddStringToObject(j, "question_text", q);
        cJSON_AddStringToObject(j, "prompt_text", p);
    }
    char *text = j ? cJSON_Print(j) : NULL, path[4200];
    snprintf(path, sizeof path, "%s/item-%06zu.json", dir, index);
    int rc = text ? write_json_text("--dump-items", path, text) : cli_out_of_memory();
    free(text); free(c); free(q); free(p);
    cJSON_Delete(j);
    return rc;
}
