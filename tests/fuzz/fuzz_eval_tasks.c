/* fuzz_eval_tasks.c - the task files of `finch eval` (JSON Lines), then
 * the answer metrics on what they hold.
 *
 * The input is the file: finch_eval_tasks_parse must refuse it with a
 * message or hand back tasks that keep its promises (strings present,
 * context and question non-empty, ids distinct, line numbers increasing).
 * Each task's strings then go through SQuAD normalisation, exact match and
 * F1 (src/eval/eval.c), which must stay in [0, 1], score a text against itself
 * as a match, and agree with each other (an exact match has F1 1). */
#include "fuzz_common.h"
#include "finch_eval.h"


static void check_scores(const char *pred, const char *const *answers, size_t n) {
    double em, f1;
    finch_eval_best(pred, answers, n, &em, &f1);
    if (!(em == 0 || em == 1) || !(f1 >= 0 && f1 <= 1) || (em == 1 && f1 != 1)) abort();
    if (finch_eval_exact(pred, pred) != 1 || finch_eval_f1(pred, pred) != 1) abort();
    char out[64];
    size_t len = finch_eval_normalize(pred, out, sizeof out);
    if (len >= sizeof out || strlen(out) != len) abort();
}

static void check_task(const finch_eval_task *t, size_t prev_line) {
    if (!t->id || !t->context || !t->question || !t->context[0] || !t->question[0]) abort();
    if (t->line <= prev_line || (t->n_answers && !t->answers)) abort();
    for (size_t a = 0; a < t->n_answers; a++) fuzz_touch(t->answers[a], strlen(t->answers[a]) + 1);
    check_scores(t->question, (const char *const *)t->answers, t->n_answers);
    check_scores(t->context, (const char *const *)t->answers, t->n_answers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    finch_eval_tasks t;
    finch_status st = finch_eval_tasks_parse((const char *)data, size, "fuzz.jsonl", &t);
    fuzz_check_status(st);
    if (st != FINCH_OK) {
        if (t.n || t.items) abort(); /* a refusal leaves nothing behind */
        return 0;
    }
    if (t.n == 0) abort();
    for (size_t i = 0; i < t.n; i++) {
        check_task(&t.items[i], i ? t.items[i - 1].line : 0);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t.items[i].id, t.items[j].id)) abort(); /* ids are distinct */
    }
    finch_eval_tasks_free(&t);
    return 0;
}
