/* bench_score.c - whole-file scores as the benchmarks' own scripts print
 * them (include/finch_benchmarks.h): SQuAD v2's evaluate-v2.0.py, LongBench's
 * eval.py scorer() and scorer_e() (LongBench-E's length buckets), RULER's
 * string_match_all/part over a task. */
#include "finch_benchmarks.h"

#include <math.h>
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

/* numpy's pairwise_sum of doubles (numpy/core/src/umath/loops_utils.h.src,
 * what np.add.reduce and so np.mean use): under 8 values in order; up to
 * 128 in eight running sums folded ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)),
 * then the rest in order; beyond, the halves (cut at a multiple of 8)
 * summed apart. */
static double numpy_pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (size_t j = 0; j < 8; j++) r[j] = a[j];
        size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (size_t j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

const char *finch_longbench_e_bucket_name(size_t b) {
    static const char *const names[] = { "0-4k", "4-8k", "8k+" };
    return b < FINCH_LONGBENCH_E_BUCKETS ? names[b] : NULL;
}

finch_status finch_longbench_e_scores(const double *v, const double *length, size_t n,
                                      size_t counts[FINCH_LONGBENCH_E_BUCKETS], double score[FINCH_LONGBENCH_E_BUCKETS]) {
    double *in = finch_alloc(n ? n : 1, sizeof *in);
    if (!in) return finch_fail(FINCH_ERR_NOMEM, "out of memory scoring LongBench-E");
    for (size_t b = 0; b < FINCH_LONGBENCH_E_BUCKETS; b++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) /* scorer_e: length < 4000, elif < 8000, else */
            if ((length[i] < 4000 ? 0u : length[i] < 8000 ? 1u : 2u) == b) in[k++] = v[i];
        counts[b] = k;
        score[b] = k ? finch_py_round2(100 * (numpy_pairwise_sum(in, k) / (double)k)) : NAN;
    }
    free(in);
    return FINCH_OK;
}

/* Each LongBench-E dataset's buckets, from the item scores v (file order). */
static finch_status bucket_scores(const finch_eval_tasks *t, const double *v, finch_dataset_score *d, size_t n) {
    double *sv = finch_alloc(t->n ? t->n : 1, sizeof *sv), *sl = finch_alloc(t->n ? t->n : 1, sizeof *sl);
    finch_status st = sv && sl ? FINCH_OK : finch_fail(FINCH_ERR_NOMEM, "out of memory scoring LongBench-E");
    for (size_t k = 0; !st && k < n; k++) {
        size_t m = 0;
        for (size_t i = 0; i < t->n; i++) {
            const finch_eval_task *it = &t->items[i];
            if (!it->longbench_e || strcmp(it->dataset ? it->dataset : "all", d[k].name) || it->metric != (int)d[k].metric)
                continue;
            sv[m] = v[i];
            sl[m++] = it->length;
        }
        if ((d[k].longbench_e = m > 0)) st = finch_longbench_e_scores(sv, sl, m, d[k].bucket_n, d[k].bucket);
    }
    free(sv);
    free(sl);
    return st;
}

finch_status finch_bench_dataset_scores(const finch_eval_tasks *t, const char *const *preds,
                                        finch_dataset_score **out, size_t *n) {
    *n = 0;
    double *v = finch_alloc(t->n ? t->n : 1, sizeof *v);
    if (!v || !(*out = finch_zalloc(t->n ? t->n : 1, sizeof **out))) { free(v); return FINCH_ERR_NOMEM; }
    finch_status st = FINCH_OK;
    for (size_t i = 0; i < t->n && !st; i++) {
        if (!preds[i]) {
            st = finch_fail(FINCH_ERR_FORMAT, "no prediction for item '%.64s'", t->items[i].id);
            break;
        }
        double exact;
        finch_bench_score_item(&t->items[i], preds[i], &v[i], &exact);
        if (isnan(v[i])) {
            st = finch_fail_prefix(FINCH_ERR_IO, "item '%.64s'", t->items[i].id);
            break;
        }
        finch_dataset_score *s = find_or_add(*out, n, &t->items[i]);
        s->sum += v[i];
        s->n++;
    }
    for (size_t i = 0; i < *n && !st; i++) {
        finch_dataset_score *s = &(*out)[i];
        bool ruler = s->metric == FINCH_METRIC_MATCH_ALL || s->metric == FINCH_METRIC_MATCH_PART;
        s->score = finch_py_round2(ruler ? s->sum / (double)s->n * 100 : 100 * s->sum / (double)s->n);
    }
    if (!st) st = bucket_scores(t, v, *out, *n);
    free(v);
    if (st) { free(*out); *out = NULL; *n = 0; }
    return st;
}
