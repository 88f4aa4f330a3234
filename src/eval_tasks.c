/* eval_tasks.c - the task files of `finch eval` (include/finch_eval.h): JSON
 * Lines, one {"id", "context", "question", "answers"} object per line.
 *
 * Everything an evaluation would trip over hours later is refused here,
 * with the file and line: text that is not UTF-8 (or holds a NUL byte,
 * which would cut a C string short), anything after the object, a missing
 * or mistyped field, an empty context or question, and a repeated id (the
 * sweep identifies items by id, so the second would be skipped). */
#include "finch_eval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "eval_tasks.h"
#include "util.h"

void finch_eval_tasks_free(finch_eval_tasks *t) {
    for (size_t i = 0; i < t->n; i++) {
        finch_eval_task *k = &t->items[i];
        free(k->id); free(k->context); free(k->question);
        for (size_t a = 0; a < k->n_answers; a++) free(k->answers[a]);
        free(k->answers);
        for (size_t c = 0; c < k->n_classes; c++) free(k->classes[c]);
        free(k->classes); free(k->dataset); free(k->answer_prefix);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}

/* A copy of o[key] when it is a string (NULL otherwise, or out of memory:
 * *oom tells which). */
static char *dup_string(const cJSON *o, const char *key, bool *oom) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return NULL;
    char *s = strdup(v->valuestring);
    if (!s) *oom = true;
    return s;
}

static finch_status copy_answers(const cJSON *ans, finch_eval_task *t) {
    t->answers = finch_zalloc((size_t)cJSON_GetArraySize(ans) + 1, sizeof(char *));
    if (!t->answers) return FINCH_ERR_NOMEM;
    const cJSON *a;
    cJSON_ArrayForEach(a, ans) {
        if (!cJSON_IsString(a)) return finch_fail(FINCH_ERR_FORMAT, "answers must be strings");
        if (!(t->answers[t->n_answers++] = strdup(a->valuestring)))
            return finch_fail(FINCH_ERR_NOMEM, "out of memory copying an answer");
    }
    return FINCH_OK;
}

static const char *const default_keys[4] = { "id", "context", "question", "answers" };

/* One parsed line into *t (which the caller frees, complete or not); user
 * is the four key names (id, context, question, answers), as --fields
 * renamed them.  Under renamed keys a string answer counts as one answer. */
static finch_status task_from_json(const cJSON *j, finch_eval_task *t, const void *user) {
    const char *const *k = user;
    bool oom = false, renamed = k != default_keys;
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(j, k[3]);
    if (cJSON_IsObject(j)) {
        t->id = dup_string(j, k[0], &oom);
        t->context = dup_string(j, k[1], &oom);
        t->question = dup_string(j, k[2], &oom);
    }
    if (oom) return finch_fail(FINCH_ERR_NOMEM, "out of memory copying a task");
    if (renamed && (!t->id || !t->context || !t->question || !(cJSON_IsArray(ans) || cJSON_IsString(ans))))
        return finch_fail(FINCH_ERR_FORMAT, "a task needs the strings %s, %s, %s and the array (or string) %s",
                          k[0], k[1], k[2], k[3]);
    if (!renamed && (!t->id || !t->context || !t->question || !cJSON_IsArray(ans)))
        return finch_fail(FINCH_ERR_FORMAT, "a task needs the strings id, context, question and the array answers");
    if (!*t->context || !*t->question) return finch_fail(FINCH_ERR_FORMAT, "empty context or question");
    if (cJSON_IsString(ans)) {
        if (!(t->answers = finch_zalloc(1, sizeof(char *))) || !(t->answers[0] = strdup(ans->valuestring)))
            return finch_fail(FINCH_ERR_NOMEM, "out of memory copying an answer");
        t->n_answers = 1;
        return FINCH_OK;
    }
    return copy_answers(ans, t);
}

/* A line that is only white space (a blank line, or a CR before LF). */
static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return false;
    return true;
}

/* Byte offset of an escaped NUL ("\u0000", an odd run of backslashes
 * before the u) in s[0..n), or n: cJSON would decode it and the C string
 * would end there, cutting the text silently. */
static size_t escaped_nul(const char *s, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\') continue;
        size_t run = 1;
        while (i + run < n && s[i + run] == '\\') run++;
        size_t u = i + run; /* the character after the run */
        if (run % 2 == 1 && u + 5 <= n && s[u] == 'u' && !strncmp(s + u + 1, "0000", 4)) return u - 1;
        i = u - 1;
    }
    return n;
}

/* One non-blank line: text checks, then exactly one JSON value. */
static finch_status parse_line(const char *s, size_t n, finch_eval_task *t, finch_task_from_json from_json,
                               const void *user) {
    finch_status st = finch_check_text(s, n);
    if (st) return st;
    size_t nul = escaped_nul(s, n);
    if (nul < n) return finch_fail(FINCH_ERR_FORMAT, "an escaped NUL (\\u0000) at byte %zu: text holds no NUL", nul);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!j) return finch_fail(FINCH_ERR_FORMAT, "not a JSON object");
    if (!blank(end, n - (size_t)(end - s))) st = finch_fail(FINCH_ERR_FORMAT, "text after the JSON object");
    else st = from_json(j, t, user);
    cJSON_Delete(j);
    return st;
}

static finch_status push_task(finch_eval_tasks *t) {
    if (t->n < t->cap) return FINCH_OK;
    size_t cap = t->cap ? 2 * t->cap : 64;
    finch_eval_task *items = finch_alloc(cap, sizeof *items);
    if (!items) return FINCH_ERR_NOMEM;
    if (t->n) memcpy(items, t->items, t->n * sizeof *items);
    free(t->items);
    t->items = items;
    t->cap = cap;
    return FINCH_OK;
}

/* ----------------------------------------------------------- repeated ids */

static int by_id(const void *a, const void *b) {
    const finch_eval_task *x = *(const finch_eval_task *const *)a, *y = *(const finch_eval_task *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static finch_status check_unique_ids(const finch_eval_tasks *t, const char *name) {
    const finch_eval_task **order = finch_alloc(t->n ? t->n : 1, sizeof *order);
    if (!order) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < t->n; i++) order[i] = &t->items[i];
    qsort(order, t->n, sizeof *order, by_id);
    finch_status st = FINCH_OK;
    for (size_t i = 1; i < t->n && !st; i++)
        if (!strcmp(order[i - 1]->id, order[i]->id))
            st = finch_fail(FINCH_ERR_FORMAT, "%s:%zu: id '%.64s' repeats line %zu", name, order[i]->line,
                            order[i]->id, order[i - 1]->line);
    free(order);
    return st;
}

/* ------------------------------------------------------------------ file */

static finch_status parse_lines(const char *text, size_t len, const char *name, finch_task_from_json from_json,
                                const void *user, finch_eval_tasks *out) {
    size_t line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (blank(s, n)) continue;
        finch_status st = push_task(out);
        if (st) return st;
        finch_eval_task *t = &out->items[out->n++]; /* counted now, so a failure frees it */
        memset(t, 0, sizeof *t);
        t->line = line;
        if ((st = parse_line(s, n, t, from_json, user))) return finch_fail_prefix(st, "%s:%zu", name, line);
    }
    return out->n ? FINCH_OK : finch_fail(FINCH_ERR_FORMAT, "%s holds no task", name);
}

finch_status finch_eval_tasks_parse_with(const char *text, size_t len, const char *name,
                                         finch_task_from_json from_json, const void *user, finch_eval_tasks *out) {
    memset(out, 0, sizeof *out);
    finch_status st = parse_lines(text, len, name, from_json, user, out);
    if (!st) st = check_unique_ids(out, name);
    if (st) finch_eval_tasks_free(out);
    return st;
}

finch_status finch_eval_tasks_parse(const char *text, size_t len, const char *name, finch_eval_tasks *out) {
    return finch_eval_tasks_parse_with(text, len, name, task_from_json, default_keys, out);
}

finch_status finch_eval_tasks_parse_keys(const char *text, size_t len, const char *name, const char *const keys[4],
                                         finch_eval_tasks *out) {
    return finch_eval_tasks_parse_with(text, len, name, task_from_json, keys, out);
}

finch_status finch_eval_tasks_read(const char *path, finch_eval_tasks *out) {
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    finch_status st = finch_read_text_file(path, &text, &len);
    if (!st) st = finch_eval_tasks_parse(text, len, path, out);
    free(text);
    return st;
}
