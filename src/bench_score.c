/* bench_score.c - whole-file scores as the benchmarks' own scripts print
 * them (include/finch_benchmarks.h): SQuAD v2's evaluate-v2.0.py, LongBench's
 * eval.py scorer(), RULER's string_match_all/part over a task. */
#include "finch_benchmarks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

finch_status finch_squad2_evaluate(const finch_eval_tasks *t, const char *const *preds, finch_squad2_result *r) {
    memset(r, 0, sizeof *r);
    double ex = 0, f = 0, hex = 0, hf = 0, nex = 0, nf = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!preds[i]) return finch_fail(FINCH_ERR_FORMAT, "no prediction for question '%.64s'", t->items[i].id);
    for (size_t i = 0; i < t->n; i++) {
        const finch_eval_task *k = &t->items[i];
        double e1, f1;
        finch_squad2_item(preds[i], (const char *const *)k->answers, k->n_answers, &e1, &f1);
        ex += e1;
        f += f1;
        /* make_qid_to_has_ans: bool(qa['answers']) */
        if (k->n_answers) { hex += e1; hf += f1; r->has_total++; }
        else { nex += e1; nf += f1; r->no_total++; }
    }
    r->total = t->n;
    /* make_eval_dict: 100.0 * sum(...) / total */
    r->exact = 100.0 * ex / (double)r->total;
    r->f1 = 100.0 * f / (double)r->total;
    if (r->has_total) { r->has_exact = 100.0 * hex / (double)r->has_total; r->has_f1 = 100.0 * hf / (double)r->has_total; }
    if (r->no_total) { r->no_exact = 100.0 * nex / (double)r->no_total; r->no_f1 = 100.0 * nf / (double)r->no_total; }
    return FINCH_OK;
}

double finch_py_round2(double x) {
    char buf[512];
    snprintf(buf, sizeof buf, "%.2f", x); /* glibc rounds the exact value, half to even */
    return strtod(buf, NULL);
}

static finch_dataset_score *find_or_add(finch_dataset_score *d, size_t *n, const finch_eval_task *k) {
    const char *name = k->dataset ? k->dataset : "all";
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(d[i].name, name) && d[i].metric == (finch_metric)k->metric) return &d[i];
    finch_dataset_score *s = &d[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->metric = (finch_metric)k->metric;
    return s;
}

finch_status finch_bench_dataset_scores(const finch_eval_tasks *t, const char *const *preds,
                                        finch_dataset_score **out, size_t *n) {
    *n = 0;
    if (!(*out = finch_zalloc(t->n ? t->n : 1, sizeof **out))) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < t->n; i++) {
        if (!preds[i]) {
            free(*out);
            *out = NULL;
            return finch_fail(FINCH_ERR_FORMAT, "no prediction for item '%.64s'", t->items[i].id);
        }
        double score, exact;
        finch_bench_score_item(&t->items[i], preds[i], &score, &exact);
        finch_dataset_score *s = find_or_add(*out, n, &t->items[i]);
        s->sum += score;
        s->n++;
    }
    for (size_t i = 0; i < *n; i++) {
        finch_dataset_score *s = &(*out)[i];
        bool ruler = s->metric == FINCH_METRIC_MATCH_ALL || s->metric == FINCH_METRIC_MATCH_PART;
        s->score = finch_py_round2(ruler ? s->sum / (double)s->n * 100 : 100 * s->sum / (double)s->n);
    }
    return FINCH_OK;
}
