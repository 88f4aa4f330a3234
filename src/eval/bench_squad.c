/* bench_squad.c - SQuAD v2 read in its published form: dev-v2.0.json
 * ({"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
 * "question", "answers": [{"text", "answer_start"}], "is_impossible",
 * "plausible_answers"}]}]}]}), and the squad2_500 sample of the assets
 * (queries.json {"queries": [{id, context, question}]} beside
 * ground_truth.json {id: {answers: [...], is_impossible}}).
 *
 * As evaluate-v2.0.py: the gold answers are qa["answers"] (empty for an
 * unanswerable question); plausible_answers are never read.  SQuAD has no
 * prompt of its own: the context and the question go as they are. */
#include <stdlib.h>
#include <string.h>

#include "bench_tasks.h"
#include "util.h"

finch_eval_task *finch_bench_push(finch_eval_tasks *out) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 64;
        finch_eval_task *items = finch_alloc(cap, sizeof *items);
        if (!items) return NULL;
        if (out->n) memcpy(items, out->items, out->n * sizeof *items);
        free(out->items);
        out->items = items;
        out->cap = cap;
    }
    finch_eval_task *t = &out->items[out->n++];
    memset(t, 0, sizeof *t);
    t->metric = FINCH_METRIC_SQUAD;
    return t;
}

static const char *str_item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One question: its answers are the "text" of each answer object (or the
 * strings themselves, in the sample's ground truth). */
static finch_status add_question(finch_eval_tasks *out, const char *id, const char *context, const char *question,
                                 const cJSON *answers, size_t article) {
    if (!id || !context || !question || !*context || !*question)
        return finch_fail(FINCH_ERR_FORMAT, "a question needs the strings id, question and a non-empty context");
    if (answers && !cJSON_IsArray(answers))
        return finch_fail(FINCH_ERR_FORMAT, "question '%.64s': answers must be an array", id);
    finch_eval_task *t = finch_bench_push(out);
    if (!t) return FINCH_ERR_NOMEM;
    t->line = out->n;
    t->article = article;
    if (!(t->id = strdup(id)) || !(t->context = strdup(context)) || !(t->question = strdup(question)) ||
        !(t->answers = finch_zalloc((size_t)cJSON_GetArraySize(answers) + 1, sizeof(char *))))
        return FINCH_ERR_NOMEM;
    const cJSON *a;
    cJSON_ArrayForEach(a, answers) {
        const char *text = cJSON_IsString(a) ? a->valuestring : str_item(a, "text");
        if (!text) return finch_fail(FINCH_ERR_FORMAT, "question '%.64s': an answer without text", id);
        if (!(t->answers[t->n_answers++] = strdup(text))) return FINCH_ERR_NOMEM;
    }
    return FINCH_OK;
}

static finch_status add_paragraph(finch_eval_tasks *out, const cJSON *p, size_t article) {
    const char *context = str_item(p, "context");
    const cJSON *qas = cJSON_GetObjectItemCaseSensitive(p, "qas"), *qa;
    if (!context || !cJSON_IsArray(qas)) return finch_fail(FINCH_ERR_FORMAT, "a paragraph needs context and qas");
    cJSON_ArrayForEach(qa, qas) {
        finch_status st = add_question(out, str_item(qa, "id"), context, str_item(qa, "question"),
                                       cJSON_GetObjectItemCaseSensitive(qa, "answers"), article);
        if (st) return st;
    }
    return FINCH_OK;
}

finch_status finch_squad2_from_json(const cJSON *root, const char *name, finch_eval_tasks *out) {
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data"), *art, *p;
    if (!cJSON_IsArray(data)) return finch_fail(FINCH_ERR_FORMAT, "%s: no \"data\" array (SQuAD v2)", name);
    size_t article = 0;
    cJSON_ArrayForEach(art, data) {
        article++;
        const cJSON *paras = cJSON_GetObjectItemCaseSensitive(art, "paragraphs");
        if (!cJSON_IsArray(paras)) return finch_fail(FINCH_ERR_FORMAT, "%s: an article without paragraphs", name);
        cJSON_ArrayForEach(p, paras) {
            finch_status st = add_paragraph(out, p, article);
            if (st) return finch_fail_prefix(st, "%s", name);
        }
    }
    return out->n ? FINCH_OK : finch_fail(FINCH_ERR_FORMAT, "%s holds no question", name);
}

finch_status finch_squad_sample_from_json(const cJSON *queries, const cJSON *truth, const char *name,
                                          finch_eval_tasks *out) {
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(queries, "queries"), *q;
    if (!cJSON_IsArray(qs) || !cJSON_IsObject(truth))
        return finch_fail(FINCH_ERR_FORMAT, "%s: needs queries.json {\"queries\": [...]} and ground_truth.json", name);
    cJSON_ArrayForEach(q, qs) {
        const char *id = str_item(q, "id");
        const cJSON *gt = id ? cJSON_GetObjectItemCaseSensitive(truth, id) : NULL;
        if (!gt) return finch_fail(FINCH_ERR_FORMAT, "%s: no ground truth for id '%.64s'", name, id ? id : "?");
        /* the sample keeps plausible answers of impossible questions: drop them */
        const cJSON *ans = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(gt, "is_impossible"))
                               ? NULL : cJSON_GetObjectItemCaseSensitive(gt, "answers");
        finch_status st = add_question(out, id, str_item(q, "context"), str_item(q, "question"), ans, 0);
        if (st) return finch_fail_prefix(st, "%s", name);
    }
    return out->n ? FINCH_OK : finch_fail(FINCH_ERR_FORMAT, "%s holds no question", name);
}
