/* cmd_score.c - `finch score`: answers made elsewhere, scored with the same
 * metric code as `finch eval` (docs/benchmarks.md).
 *
 *   finch score --task FILE --predictions PRED [--benchmark B] [--fields F] [--json] [--longbench-e]
 *
 * SQuAD v2 (and plain JSONL tasks): PRED is the official predictions file,
 * a JSON object id -> answer ("" = no answer); the output is what
 * evaluate-v2.0.py prints (--json: byte for byte, json.dumps(..., indent=2)
 * with Python's float repr).  LongBench and RULER: PRED is JSON Lines
 * {"id", "prediction"}; the output is one score per dataset on the
 * benchmark's own scale. */
#include "cli.h"
#include "finch_benchmarks.h"
#include "util.h"
#include "bench_tasks.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *task, *predictions, *benchmark, *fields, *jieba;
    bool json, longbench_e;
} score_opts;

static int parse_score(int argc, char **argv, score_opts *o, finch_benchmark *b) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    memset(o, 0, sizeof *o);
    while (cli_next(&a)) {
        if (cli_opt(&a, NULL, "--task")) o->task = cli_value(&a);
        else if (cli_opt(&a, NULL, "--predictions")) o->predictions = cli_value(&a);
        else if (cli_opt(&a, NULL, "--benchmark")) o->benchmark = cli_value(&a);
        else if (cli_opt(&a, NULL, "--fields")) o->fields = cli_value(&a);
        else if (cli_opt(&a, NULL, "--json")) o->json = true;
        else if (cli_opt(&a, NULL, "--longbench-e")) o->longbench_e = true;
        else if (cli_opt(&a, NULL, "--jieba")) o->jieba = cli_value(&a);
        else if (!a.error) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc) return rc;
    if (!o->task) return cli_error("no task given (--task FILE)");
    if (!o->predictions) return cli_error("no predictions given (--predictions FILE)");
    *b = FINCH_BENCH_AUTO;
    if (o->benchmark && finch_benchmark_parse(o->benchmark, b) != FINCH_OK)
        return cli_error("--benchmark: %s", finch_last_error());
    return 0;
}

/* ------------------------------------------------------ Python's repr */

/* repr(float) of Python 3: the shortest digits that read back the same,
 * fixed notation for exponents -4..15 (with ".0" when integral), else
 * d.ddde+XX. */
static void py_float(double x, char *out, size_t cap) {
    if (!isfinite(x)) { snprintf(out, cap, isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity"); return; }
    char e[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, x);
    char digits[24], *d = digits;
    const char *s = e;
    bool neg = *s == '-';
    if (neg) s++;
    for (; *s != 'e'; s++)
        if (*s != '.') *d++ = *s;
    *d = 0;
    int exp10 = atoi(s + 1), nd = (int)strlen(digits);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    char *o = out, *end = out + cap - 1;
#define PUT(c) do { if (o < end) *o++ = (c); } while (0)
    if (neg) PUT('-');
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            PUT('0'); PUT('.');
            for (int i = -1; i > exp10; i--) PUT('0');
            for (int i = 0; i < nd; i++) PUT(digits[i]);
        } else {
            for (int i = 0; i <= exp10; i++) PUT(i < nd ? digits[i] : '0');
            PUT('.');
            if (nd > exp10 + 1) for (int i = exp10 + 1; i < nd; i++) PUT(digits[i]);
            else PUT('0');
        }
        *o = 0;
    } else {
        PUT(digits[0]);
        if (nd > 1) { PUT('.'); for (int i = 1; i < nd; i++) PUT(digits[i]); }
        *o = 0;
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
#undef PUT
}

/* --------------------------------------------------------- predictions */

/* The predictions as one string per item (NULL where none), from a JSON
 * object id -> text or JSON Lines {"id", "prediction"}; *root owns them. */
static int read_predictions(const char *path, const finch_eval_tasks *t, cJSON **root, const char ***preds) {
    char *text = NULL;
    size_t len = 0;
    finch_status st = finch_read_file(path, &text, &len);
    if (!st) st = finch_check_text(text, len);
    if (st) { free(text); return cli_fail(st, "--predictions"); }
    cJSON *obj = finch_json_parse_whole(text, len);
    if (!obj) { /* JSON Lines: gather them into one object */
        obj = cJSON_CreateObject();
        size_t line = 0;
        for (char *s = text, *nl; obj && s < text + len; s = nl + 1) {
            nl = memchr(s, '\n', (size_t)(text + len - s));
            if (!nl) nl = text + len;
            line++;
            size_t n = (size_t)(nl - s);
            while (n && (s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
            if (!n) continue;
            cJSON *j = cJSON_ParseWithLength(s, n);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id"), *p = cJSON_GetObjectItemCaseSensitive(j, "prediction");
            if (!cJSON_IsString(id) || !cJSON_IsString(p)) {
                cJSON_Delete(j); cJSON_Delete(obj); free(text);
                return cli_error("--predictions %s:%zu: a line needs the strings id and prediction", path, line);
            }
            cJSON_AddStringToObject(obj, id->valuestring, p->valuestring);
            cJSON_Delete(j);
        }
    }
    free(text);
    if (!cJSON_IsObject(obj)) { cJSON_Delete(obj); return cli_error("--predictions %s: not a JSON object id -> answer", path); }
    *preds = calloc(t->n ? t->n : 1, sizeof **preds);
    if (!*preds) { cJSON_Delete(obj); return cli_out_of_memory(); }
    for (size_t i = 0; i < t->n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, t->items[i].id);
        if (v && !cJSON_IsString(v)) { cJSON_Delete(obj); return cli_error("--predictions: the answer to '%.64s' is not a string", t->items[i].id); }
        (*preds)[i] = v ? v->valuestring : NULL;
    }
    *root = obj;
    return 0;
}

/* --------------------------------------------------------------- output */

static void print_squad(const finch_squad2_result *r, bool json) {
    struct { const char *key; double v; bool is_int, on; } rows[] = {
        { "exact", r->exact, false, true }, { "f1", r->f1, false, true }, { "total", (double)r->total, true, true },
        { "HasAns_exact", r->has_exact, false, r->has_total > 0 }, { "HasAns_f1", r->has_f1, false, r->has_total > 0 },
        { "HasAns_total", (double)r->has_total, true, r->has_total > 0 },
        { "NoAns_exact", r->no_exact, false, r->no_total > 0 }, { "NoAns_f1", r->no_f1, false, r->no_total > 0 },
        { "NoAns_total", (double)r->no_total, true, r->no_total > 0 },
    };
    bool first = true;
    if (json) printf("{");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].on) continue;
        char v[48];
        if (rows[i].is_int) snprintf(v, sizeof v, "%.0f", rows[i].v);
        else py_float(rows[i].v, v, sizeof v);
        if (json) printf("%s\n  \"%s\": %s", first ? "" : ",", rows[i].key, v);
        else printf("%-13s %s\n", rows[i].key, v);
        first = false;
    }
    if (json) printf("\n}\n");
}

/* A LongBench-E dataset: its buckets as eval.py --e writes them into
 * result.json (json.dump indent=4: {"0-4k": x, "4-8k": y, "8k+": z}, NaN
 * for an empty bucket), or one line per bucket. */
static void print_buckets(const finch_dataset_score *d, bool json) {
    for (size_t b = 0; b < FINCH_LONGBENCH_E_BUCKETS; b++) {
        char v[48];
        py_float(d->bucket[b], v, sizeof v);
        if (json) printf("%s\n        \"%s\": %s", b ? "," : "{", finch_longbench_e_bucket_name(b), v);
        else printf("%-24s %-18s %6zu items  %s\n", "", finch_longbench_e_bucket_name(b), d->bucket_n[b], v);
    }
    if (json) printf("\n    }");
}

static int print_datasets(const finch_eval_tasks *t, const char *const *preds, bool json) {
    finch_dataset_score *d = NULL;
    size_t n = 0;
    finch_status st = finch_bench_dataset_scores(t, preds, &d, &n);
    if (st) return cli_fail(st, "--predictions");
    if (json) printf("{");
    for (size_t i = 0; i < n; i++) {
        char v[48];
        py_float(d[i].score, v, sizeof v);
        if (json) printf("%s\n    \"%s\": %s", i ? "," : "", d[i].name, d[i].longbench_e ? "" : v);
        else printf("%-24s %-18s %6zu items  %s\n", d[i].name, finch_metric_name(d[i].metric), d[i].n, v);
        if (d[i].longbench_e) print_buckets(&d[i], json);
    }
    if (json) printf("\n}\n");
    free(d);
    return 0;
}

int cmd_score(int argc, char **argv) {
    score_opts o;
    finch_benchmark b;
    int rc = parse_score(argc, argv, &o, &b);
    if (rc) return rc;
    finch_eval_tasks t;
    if ((rc = cli_jieba_start(o.jieba))) return rc;
    finch_status st = finch_bench_read(o.task, b, o.fields, &t);
    if (st) { cli_jieba_stop(); return cli_fail(st, "--task"); }
    if (o.longbench_e && (st = finch_longbench_mark_e(&t))) {
        finch_eval_tasks_free(&t);
        cli_jieba_stop();
        return cli_fail(st, "--longbench-e");
    }
    if ((rc = cli_jieba_check(&t))) {
        finch_eval_tasks_free(&t);
        return rc;
    }
    cJSON *root = NULL;
    const char **preds = NULL;
    if (!(rc = read_predictions(o.predictions, &t, &root, &preds))) {
        if (t.benchmark == FINCH_BENCH_SQUAD2 || t.benchmark == FINCH_BENCH_JSONL) {
            finch_squad2_result r;
            st = finch_squad2_evaluate(&t, preds, &r);
            if (st) rc = cli_fail(st, "--predictions");
            else print_squad(&r, o.json);
        } else {
            rc = print_datasets(&t, preds, o.json);
        }
    }
    free(preds);
    cJSON_Delete(root);
    finch_eval_tasks_free(&t);
    cli_jieba_stop();
    return rc;
}
