/* eval_resume.c - `finch eval --resume` reads back results.json: every
 * record is checked against what the sweep itself writes (cmd_eval.c), so a
 * corrupted or edited file (a repeated item, a wrong type, an absurd
 * number) is refused by name instead of entering the means. */
#include "eval_report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *path;   /* results.json, for the message          */
    size_t index;       /* the item's position in "items"         */
    const char *id;     /* its id once known                      */
} where;

static int bad(const where *w, const char *what) {
    return cli_error("--resume: %s: item %zu%s%.64s%s: %s", w->path, w->index, w->id ? " ('" : "", w->id ? w->id : "",
                     w->id ? "')" : "", what);
}

/* obj[key] is a number in [lo, hi] (or null when null_ok). */
static int check_number(const where *w, const cJSON *obj, const char *key, double lo, double hi, bool null_ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char msg[256];
    if (null_ok && cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) {
        snprintf(msg, sizeof msg, "'%s' is missing or not a number", key);
        return bad(w, msg);
    }
    if (!(v->valuedouble >= lo && v->valuedouble <= hi)) {
        snprintf(msg, sizeof msg, "'%s' is %g, outside [%g, %g]", key, v->valuedouble, lo, hi);
        return bad(w, msg);
    }
    return 0;
}

/* One run record (full or a press at a ratio), as run_record writes it. */
static int check_run(const where *w, const cJSON *run) {
    if (!cJSON_IsObject(run)) return bad(w, "a run is not an object");
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(run, "press")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(run, "answer")))
        return bad(w, "a run's 'press' or 'answer' is missing or not a string");
    static const struct { const char *key; double lo, hi; bool null_ok; } fields[] = {
        { "ratio", 1, 1e9, false }, { "em", 0, 1, false },       { "f1", 0, 1, false },
        { "top1", 0, 1, false },    { "kl", 0, 1e6, false },     { "nll", 0, 1e6, true },
        { "K", 0, 1e12, false },    { "n_kept", 0, 1e12, false }, { "compression", 0, 1e12, false },
        { "kv_bytes", 0, 1e18, false }, { "seconds", 0, 1e9, false },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int rc = check_number(w, run, fields[i].key, fields[i].lo, fields[i].hi, fields[i].null_ok);
        if (rc) return rc;
    }
    return 0;
}

/* The runs: each press of the settings at each ratio, exactly once. */
static int check_runs(const where *w, const cJSON *runs, const cli_eval_opts *o) {
    if (!cJSON_IsArray(runs)) return bad(w, "'runs' is missing or not an array");
    if ((size_t)cJSON_GetArraySize(runs) != o->n_presses * o->n_ratios)
        return bad(w, "'runs' does not hold one run per press and ratio of the settings");
    size_t k = 0;
    const cJSON *run;
    cJSON_ArrayForEach(run, runs) {
        int rc = check_run(w, run);
        if (rc) return rc;
        const char *want = finch_scorer_name(o->presses[k / o->n_ratios]);
        double ratio = cJSON_GetObjectItemCaseSensitive(run, "ratio")->valuedouble;
        if (strcmp(cJSON_GetObjectItemCaseSensitive(run, "press")->valuestring, want) ||
            ratio != o->ratios[k % o->n_ratios])
            return bad(w, "'runs' are not the presses and ratios of the settings, in order");
        k++;
    }
    return 0;
}

static bool id_seen_before(const cJSON *items, const cJSON *item, const char *id) {
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        if (it == item) return false;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(v) && !strcmp(v->valuestring, id)) return true;
    }
    return false;
}

static int check_item(where *w, const cJSON *items, const cJSON *it, const cli_eval_opts *o) {
    if (!cJSON_IsObject(it)) return bad(w, "not an object");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (!cJSON_IsString(id)) return bad(w, "'id' is missing or not a string");
    w->id = id->valuestring;
    if (id_seen_before(items, it, w->id)) return bad(w, "the id is repeated");
    int rc;
    const char *counts[] = { "n_context", "n_question", "n_reference" };
    for (size_t i = 0; i < 3; i++)
        if ((rc = check_number(w, it, counts[i], 0, 1e12, false))) return rc;
    const cJSON *answers = cJSON_GetObjectItemCaseSensitive(it, "answers"), *a;
    if (!cJSON_IsArray(answers)) return bad(w, "'answers' is missing or not an array");
    cJSON_ArrayForEach(a, answers) if (!cJSON_IsString(a)) return bad(w, "an answer is not a string");
    const cJSON *skipped = cJSON_GetObjectItemCaseSensitive(it, "skipped");
    if (skipped) return cJSON_IsString(skipped) ? 0 : bad(w, "'skipped' is not a string");
    if ((rc = check_run(w, cJSON_GetObjectItemCaseSensitive(it, "full")))) return rc;
    return check_runs(w, cJSON_GetObjectItemCaseSensitive(it, "runs"), o);
}

int eval_check_items(const char *path, const cJSON *items, const cli_eval_opts *o) {
    where w = { path, 0, NULL };
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        w.id = NULL;
        int rc = check_item(&w, items, it, o);
        if (rc) return rc;
        w.index++;
    }
    return 0;
}
