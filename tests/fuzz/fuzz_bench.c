/* fuzz_bench.c - the benchmark readers (src/bench_tasks.c, bench_squad.c,
 * bench_longbench.c) and metrics (src/bench_metrics.c).
 *
 * The input is a task file of any benchmark, detected as `finch eval`
 * does: finch_bench_parse must refuse it with a message or hand back items
 * whose strings are there; each item is then scored with its own
 * metric against its context and question as predictions, and every score
 * must be a number in [0, 1].  The input's two halves also go through
 * fuzz.ratio (in [0, 100], symmetric, 100 for equal strings) and ROUGE-L
 * (in [0, 1]). */
#include "fuzz_common.h"
#include "finch_benchmarks.h"

#include <math.h>

static void check_score(const finch_eval_task *t, const char *pred) {
    double s, e;
    finch_bench_score_item(t, pred, &s, &e);
    if (!(s >= 0 && s <= 1)) abort();
    if (!isnan(e) && !(e == 0 || e == 1)) abort();
}

/* The input cut in two NUL-terminated strings (valid UTF-8 or not). */
static void check_pair(const uint8_t *data, size_t size) {
    char *a = malloc(size / 2 + 1), *b = malloc(size - size / 2 + 1);
    if (!a || !b) abort();
    memcpy(a, data, size / 2);
    a[size / 2] = 0;
    memcpy(b, data + size / 2, size - size / 2);
    b[size - size / 2] = 0;
    int r = finch_fuzz_ratio(a, b), q = finch_fuzz_ratio(b, a);
    if (r < 0 || r > 100 || r != q || finch_fuzz_ratio(a, a) != 100) abort();
    double f = finch_lb_rouge_l(a, b);
    if (!(f >= 0 && f <= 1)) abort();
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0; /* the metrics are quadratic: keep runs fast */
    check_pair(data, size);
    finch_eval_tasks t;
    finch_status st = finch_bench_parse((const char *)data, size, "fuzz", FINCH_BENCH_AUTO, NULL, &t);
    fuzz_check_status(st);
    if (st != FINCH_OK) {
        if (t.n || t.items) abort(); /* a refusal leaves nothing behind */
        return 0;
    }
    for (size_t i = 0; i < t.n; i++) {
        const finch_eval_task *k = &t.items[i];
        if (!k->id || !k->context || !k->question) abort();
        check_score(k, k->context);
        check_score(k, k->question);
        check_score(k, "");
    }
    finch_eval_tasks_free(&t);
    return 0;
}
