/* bench_tasks.c - which benchmark a task file is, reading it, and scoring
 * one prediction with the benchmark's metric (include/finch_benchmarks.h).
 *
 *   names -> prompt split -> RULER lines -> --fields -> detection -> read
 *   -> score one item
 * The readers of each format: src/eval/eval_tasks.c (plain JSONL),
 * src/eval/bench_squad.c, src/eval/bench_longbench.c; RULER's lines are read here. */
#include "finch_benchmarks.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_tasks.h"
#include "eval_tasks.h"
#include "util.h"

static const char *const bench_names[] = { "auto", "jsonl", "squad2", "longbench", "ruler" };

const char *finch_benchmark_name(finch_benchmark b) {
    return (size_t)b < sizeof bench_names / sizeof bench_names[0] ? bench_names[b] : "?";
}

finch_status finch_benchmark_parse(const char *s, finch_benchmark *b) {
    for (size_t i = 0; i < sizeof bench_names / sizeof bench_names[0]; i++)
        if (!strcmp(s, bench_names[i])) {
            *b = (finch_benchmark)i;
            return FINCH_OK;
        }
    return finch_fail(FINCH_ERR_ARG, "unknown benchmark '%.64s' (squad2, longbench, ruler, jsonl, auto)", s);
}

const char *finch_metric_name(finch_metric m) {
    static const char *const names[] = { "squad_f1", "qa_f1", "rouge_l", "classification", "retrieval",
                                         "retrieval_zh", "count", "code_sim", "string_match_all",
                                         "string_match_part", "qa_f1_zh", "rouge_zh" };
    return (size_t)m < sizeof names / sizeof names[0] ? names[m] : "?";
}

/* ------------------------------------------------------------ prompts */

/* s with every "{input}" replaced by input (malloc'ed). */
static char *put_input(const char *s, size_t n, const char *input) {
    size_t il = strlen(input), count = 0;
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), "{input}", 7)); p += 7) count++;
    char *out = malloc(n + count * il + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = s; p < s + n;) {
        const char *h = memmem(p, n - (size_t)(p - s), "{input}", 7);
        size_t k = h ? (size_t)(h - p) : n - (size_t)(p - s);
        memcpy(o, p, k);
        o += k;
        if (!h) break;
        memcpy(o, input, il);
        o += il;
        p = h + 7;
    }
    *o = 0;
    return out;
}

finch_status finch_bench_split_prompt(const char *tmpl, const char *context, const char *input, finch_eval_task *t) {
    const char *at = strstr(tmpl, "{context}");
    if (!at) return finch_fail(FINCH_ERR_INTERNAL, "a prompt template without {context}");
    char *head = put_input(tmpl, (size_t)(at - tmpl), input);
    t->question = put_input(at + 9, strlen(at + 9), input);
    size_t hl = head ? strlen(head) : 0, cl = strlen(context);
    t->context = head ? malloc(hl + cl + 1) : NULL;
    if (t->context) {
        memcpy(t->context, head, hl);
        memcpy(t->context + hl, context, cl + 1);
    }
    free(head);
    if (!t->context || !t->question) return FINCH_ERR_NOMEM;
    if (!*t->question) return finch_fail(FINCH_ERR_FORMAT, "the prompt leaves nothing after the context");
    return FINCH_OK;
}

/* --------------------------------------------------------------- RULER */

/* RULER's templates (scripts/data/synthetic/constants.py at c3f5e3b4f87f,
 * github.com/NVIDIA/RULER): where the question starts in a prepared input,
 * tokens_to_generate, metric (scripts/eval/synthetic/constants.py). */
static const struct {
    const char *task, *head;
    size_t max_new;
    finch_metric metric;
} ruler_tasks[] = {
    { "niah", "\nWhat are all the special magic", 128, FINCH_METRIC_MATCH_ALL },
    { "niah", "\nWhat is the special magic", 128, FINCH_METRIC_MATCH_ALL }, /* one needle: "are all" -> "is" */
    { "variable_tracking", "\nQuestion: Find all variables", 30, FINCH_METRIC_MATCH_ALL },
    { "common_words_extraction", "\nQuestion: What are the 10 most common words", 120, FINCH_METRIC_MATCH_ALL },
    { "freq_words_extraction", "\nQuestion: Do not provide any explanation.", 50, FINCH_METRIC_MATCH_ALL },
    { "qa", "\n\nAnswer the question based on the given documents.", 32, FINCH_METRIC_MATCH_PART },
};

static const char *last_of(const char *s, const char *needle) {
    const char *last = NULL;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) last = p;
    return last;
}

finch_status finch_ruler_from_json(const cJSON *j, finch_eval_task *t, const void *user) {
    (void)user;
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(j, "index");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "input"), *outs = cJSON_GetObjectItemCaseSensitive(j, "outputs");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "answer_prefix"), *a;
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(j, "task"); /* finch ruler's files name it */
    if (!cJSON_IsNumber(idx) || !cJSON_IsString(in) || !cJSON_IsArray(outs))
        return finch_fail(FINCH_ERR_FORMAT, "a RULER line needs the number index, the string input and the array outputs");
    const char *cut = NULL;
    size_t k = 0;
    for (size_t i = 0; i < sizeof ruler_tasks / sizeof ruler_tasks[0] && !cut; i++)
        if ((cut = last_of(in->valuestring, ruler_tasks[i].head))) k = i;
    if (!cut || cut == in->valuestring)
        return finch_fail(FINCH_ERR_FORMAT, "the input matches none of RULER's question templates");
    char id[32];
    snprintf(id, sizeof id, "%.0f", idx->valuedouble);
    size_t cl = (size_t)(cut - in->valuestring);
    if (!(t->id = strdup(id)) || !(t->context = strndup(in->valuestring, cl)) || !(t->question = strdup(cut)) ||
        !(t->dataset = strdup(cJSON_IsString(task) ? task->valuestring : ruler_tasks[k].task)) ||
        !(t->answers = finch_zalloc((size_t)cJSON_GetArraySize(outs) + 1, sizeof(char *))))
        return FINCH_ERR_NOMEM;
    cJSON_ArrayForEach(a, outs) {
        if (!cJSON_IsString(a)) return finch_fail(FINCH_ERR_FORMAT, "outputs must be strings");
        if (!(t->answers[t->n_answers++] = strdup(a->valuestring))) return FINCH_ERR_NOMEM;
    }
    if (t->n_answers == 0) return finch_fail(FINCH_ERR_FORMAT, "a RULER line needs at least one output");
    if (cJSON_IsString(pre) && *pre->valuestring && !(t->answer_prefix = strdup(pre->valuestring)))
        return FINCH_ERR_NOMEM;
    t->max_new = ruler_tasks[k].max_new;
    t->metric = (int)ruler_tasks[k].metric;
    t->no_newline_stop = true;
    return FINCH_OK;
}

/* ------------------------------------------------------------- --fields */

/* "id=qid,context=passage,...": the key names of the four fields (the
 * others keep their own), written into buf. */
static finch_status parse_fields(const char *fields, char *buf, size_t cap, const char *keys[4]) {
    static const char *const names[4] = { "id", "context", "question", "answers" };
    for (int i = 0; i < 4; i++) keys[i] = names[i];
    if (strlen(fields) >= cap) return finch_fail(FINCH_ERR_ARG, "--fields: too long");
    strcpy(buf, fields);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '=');
        int i = 0;
        if (eq) *eq = 0;
        while (i < 4 && strcmp(p, names[i])) i++;
        if (!eq || i == 4 || !eq[1])
            return finch_fail(FINCH_ERR_ARG, "--fields takes FIELD=KEY pairs, FIELD one of id, context, question, "
                              "answers (got '%.64s')", p);
        keys[i] = eq + 1;
    }
    return FINCH_OK;
}

/* ------------------------------------------------------------ detection */

/* The first non-blank line's value, parsed (NULL when it is not JSON). */
static cJSON *first_line(const char *text, size_t len) {
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    const char *nl = memchr(text + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - text - i) : len - i;
    return cJSON_ParseWithLength(text + i, n);
}

static bool has(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key) != NULL; }

static finch_benchmark detect_line(const cJSON *j) {
    if (has(j, "_id") && has(j, "dataset") && has(j, "input") && has(j, "context")) return FINCH_BENCH_LONGBENCH;
    if (has(j, "index") && has(j, "input") && has(j, "outputs")) return FINCH_BENCH_RULER;
    if (has(j, "id") && has(j, "context") && has(j, "question") && has(j, "answers")) return FINCH_BENCH_JSONL;
    return FINCH_BENCH_AUTO;
}

/* ----------------------------------------------------------------- read */

cJSON *finch_json_parse_whole(const char *text, size_t len) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) return NULL;
    while (end < text + len && isspace((unsigned char)*end)) end++;
    if (end < text + len) { cJSON_Delete(j); return NULL; }
    return j;
}

static finch_status parse_whole(const char *text, size_t len, const char *name, finch_eval_tasks *out) {
    cJSON *root = finch_json_parse_whole(text, len);
    if (!root) return finch_fail(FINCH_ERR_FORMAT, "%s: not a SQuAD v2 JSON file", name);
    finch_status st = has(root, "queries")
                          ? finch_fail(FINCH_ERR_FORMAT, "%s: a queries.json needs its ground_truth.json: give "
                                       "the folder holding both", name)
                          : finch_squad2_from_json(root, name, out);
    cJSON_Delete(root);
    return st;
}

finch_status finch_bench_parse(const char *text, size_t len, const char *name, finch_benchmark b,
                               const char *fields, finch_eval_tasks *out) {
    memset(out, 0, sizeof *out);
    finch_status st = finch_check_text(text, len);
    if (st) return finch_fail_prefix(st, "%s", name);
    if (b == FINCH_BENCH_AUTO && fields) b = FINCH_BENCH_JSONL;
    if (b == FINCH_BENCH_AUTO) {
        cJSON *j = first_line(text, len);
        b = j ? detect_line(j) : FINCH_BENCH_AUTO;
        bool whole = !j || has(j, "data") || has(j, "queries");
        cJSON_Delete(j);
        if (b == FINCH_BENCH_AUTO && whole) b = FINCH_BENCH_SQUAD2;
        if (b == FINCH_BENCH_AUTO)
            return finch_fail(FINCH_ERR_FORMAT, "%s: cannot tell its benchmark from the first line; give "
                              "--benchmark squad2|longbench|ruler|jsonl or --fields", name);
    }
    if (b == FINCH_BENCH_SQUAD2) st = parse_whole(text, len, name, out);
    else if (b == FINCH_BENCH_LONGBENCH) st = finch_eval_tasks_parse_with(text, len, name, finch_longbench_from_json, NULL, out);
    else if (b == FINCH_BENCH_RULER) st = finch_eval_tasks_parse_with(text, len, name, finch_ruler_from_json, NULL, out);
    else if (!fields) st = finch_eval_tasks_parse(text, len, name, out);
    else {
        char buf[512];
        const char *keys[4];
        if (!(st = parse_fields(fields, buf, sizeof buf, keys)))
            st = finch_eval_tasks_parse_keys(text, len, name, keys, out);
    }
    if (st) finch_eval_tasks_free(out);
    else out->benchmark = (int)b;
    return st;
}

/* DIR/queries.json + DIR/ground_truth.json (the assets' SQuAD sample). */
static finch_status read_sample_dir(const char *dir, finch_eval_tasks *out) {
    char qp[4096], gp[4096];
    snprintf(qp, sizeof qp, "%s/queries.json", dir);
    snprintf(gp, sizeof gp, "%s/ground_truth.json", dir);
    char *qt = NULL, *gt = NULL;
    size_t ql = 0, gl = 0;
    finch_status st = finch_read_text_file(qp, &qt, &ql);
    if (!st) st = finch_read_text_file(gp, &gt, &gl);
    cJSON *q = st ? NULL : finch_json_parse_whole(qt, ql), *g = st ? NULL : finch_json_parse_whole(gt, gl);
    if (!st && (!q || !g)) st = finch_fail(FINCH_ERR_FORMAT, "%s: queries.json or ground_truth.json is not JSON", dir);
    if (!st) st = finch_squad_sample_from_json(q, g, dir, out);
    cJSON_Delete(q); cJSON_Delete(g); free(qt); free(gt);
    if (st) finch_eval_tasks_free(out);
    else out->benchmark = FINCH_BENCH_SQUAD2;
    return st;
}

finch_status finch_bench_read(const char *path, finch_benchmark b, const char *fields, finch_eval_tasks *out) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (b != FINCH_BENCH_AUTO && b != FINCH_BENCH_SQUAD2)
            return finch_fail(FINCH_ERR_ARG, "%s is a folder: only the SQuAD sample (queries.json, "
                              "ground_truth.json) is read from a folder", path);
        return read_sample_dir(path, out);
    }
    char *text = NULL;
    size_t len = 0;
    finch_status st = finch_read_text_file(path, &text, &len);
    if (!st) st = finch_bench_parse(text, len, path, b, fields, out);
    free(text);
    return st;
}

/* -------------------------------------------------------------- scoring */

/* LongBench's first-line rule: prediction.lstrip('\n').split('\n')[0]. */
static char *first_answer_line(const char *pred) {
    while (*pred == '\n') pred++;
    const char *nl = strchr(pred, '\n');
    return nl ? strndup(pred, (size_t)(nl - pred)) : strdup(pred);
}

/* max over the gold answers, starting from 0 (eval.py's scorer). */
static double best_over_answers(const finch_eval_task *t, const char *pred) {
    const char *const *gold = (const char *const *)t->answers;
    double best = 0;
    for (size_t i = 0; i < t->n_answers; i++) {
        double s = 0;
        switch ((finch_metric)t->metric) {
        case FINCH_METRIC_QA_F1: s = finch_lb_qa_f1(pred, gold[i]); break;
        case FINCH_METRIC_ROUGE_L: s = finch_lb_rouge_l(pred, gold[i]); break;
        case FINCH_METRIC_CLASSIFICATION:
            s = finch_lb_classification(pred, gold[i], (const char *const *)t->classes, t->n_classes);
            break;
        case FINCH_METRIC_RETRIEVAL: s = finch_lb_retrieval(pred, gold[i]); break;
        case FINCH_METRIC_RETRIEVAL_ZH: s = finch_lb_retrieval_zh(pred, gold[i]); break;
        case FINCH_METRIC_COUNT: s = finch_lb_count(pred, gold[i]); break;
        case FINCH_METRIC_CODE_SIM: s = finch_lb_code_sim(pred, gold[i]); break;
        case FINCH_METRIC_QA_F1_ZH: s = finch_lb_qa_f1_zh(pred, gold[i]); break;
        case FINCH_METRIC_ROUGE_ZH: s = finch_lb_rouge_zh(pred, gold[i]); break;
        default: break;
        }
        if (isnan(s)) return NAN; /* the segmenter failed: finch_last_error says why */
        best = fmax(best, s);
    }
    return best;
}

void finch_bench_score_item(const finch_eval_task *t, const char *pred, double *score, double *exact) {
    *exact = NAN;
    const char *const *gold = (const char *const *)t->answers;
    switch ((finch_metric)t->metric) {
    case FINCH_METRIC_SQUAD: finch_squad2_item(pred, gold, t->n_answers, exact, score); return;
    case FINCH_METRIC_MATCH_ALL: *score = finch_ruler_match_all(pred, gold, t->n_answers); return;
    case FINCH_METRIC_MATCH_PART: *score = finch_ruler_match_part(pred, gold, t->n_answers); return;
    default: break;
    }
    const finch_longbench_dataset *d = t->dataset ? finch_longbench_find(t->dataset) : NULL;
    char *line = d && d->first_line ? first_answer_line(pred) : NULL;
    *score = best_over_answers(t, line ? line : pred);
    free(line);
}
