/* bench_longbench.c - LongBench (THUDM/LongBench) read from its published
 * JSONL: {"input", "context", "answers", "length", "dataset", "language",
 * "all_classes", "_id"} per line.  The table holds the facts of LongBench's
 * own code, at commit 2e00731f8d0b (2025-01-15) of github.com/THUDM/LongBench:
 *   prompt      LongBench/config/dataset2prompt.json (typos kept: the
 *               prompts are the benchmark's, "asconcisely" included)
 *   max_new     LongBench/config/dataset2maxlen.json
 *   metric      LongBench/eval.py dataset2metric
 *   chat        pred.py: build_chat for every dataset but trec, triviaqa,
 *               samsum, lsht, lcc, repobench-p
 *   first_line  eval.py scorer(): trec, triviaqa, samsum, lsht score
 *               prediction.lstrip('\n').split('\n')[0]
 *   stop        pred.py: samsum also stops at "\n"; the others decode up to
 *               max_new tokens or EOS */
#include "finch_benchmarks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_tasks.h"
#include "util.h"

static const finch_longbench_dataset datasets[] = {
    { "narrativeqa",
      "You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
      128, FINCH_METRIC_QA_F1, true, false, false },
    { "qasper",
      "You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
      128, FINCH_METRIC_QA_F1, true, false, false },
    { "multifieldqa_en",
      "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
      64, FINCH_METRIC_QA_F1, true, false, false },
    { "multifieldqa_zh",
      "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n问题：{input}\n回答：",
      64, FINCH_METRIC_QA_F1_ZH, true, false, false },
    { "hotpotqa",
      "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
      32, FINCH_METRIC_QA_F1, true, false, false },
    { "2wikimqa",
      "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
      32, FINCH_METRIC_QA_F1, true, false, false },
    { "musique",
      "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
      32, FINCH_METRIC_QA_F1, true, false, false },
    { "dureader",
      "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：",
      128, FINCH_METRIC_ROUGE_ZH, true, false, false },
    { "gov_report",
      "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:",
      512, FINCH_METRIC_ROUGE_L, true, false, false },
    { "qmsum",
      "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:",
      512, FINCH_METRIC_ROUGE_L, true, false, false },
    { "multi_news",
      "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:",
      512, FINCH_METRIC_ROUGE_L, true, false, false },
    { "vcsum",
      "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：",
      512, FINCH_METRIC_ROUGE_ZH, true, false, false },
    { "trec",
      "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}",
      64, FINCH_METRIC_CLASSIFICATION, false, true, false },
    { "triviaqa",
      "Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n{input}",
      32, FINCH_METRIC_QA_F1, false, true, false },
    { "samsum",
      "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}",
      128, FINCH_METRIC_ROUGE_L, false, true, true },
    { "lsht",
      "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}",
      64, FINCH_METRIC_CLASSIFICATION, false, true, false },
    { "passage_count",
      "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ",
      32, FINCH_METRIC_COUNT, true, false, false },
    { "passage_retrieval_en",
      "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe answer is: ",
      32, FINCH_METRIC_RETRIEVAL, true, false, false },
    { "passage_retrieval_zh",
      "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是：",
      32, FINCH_METRIC_RETRIEVAL_ZH, true, false, false },
    { "lcc",
      "Please complete the code given below. \n{context}Next line of code:\n",
      64, FINCH_METRIC_CODE_SIM, false, false, false },
    { "repobench-p",
      "Please complete the code given below. \n{context}{input}Next line of code:\n",
      64, FINCH_METRIC_CODE_SIM, false, false, false },
};

const finch_longbench_dataset *finch_longbench_find(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof datasets / sizeof datasets[0]; i++)
        if (!strcmp(datasets[i].name, name)) return &datasets[i];
    for (size_t i = 0; n > 2 && !strcmp(name + n - 2, "_e") && i < sizeof datasets / sizeof datasets[0]; i++)
        if (strlen(datasets[i].name) == n - 2 && !strncmp(datasets[i].name, name, n - 2)) return &datasets[i];
    return NULL; /* LongBench-E's "X_e" is X's prompt, length and metric */
}

bool finch_longbench_is_e(const char *name) {
    size_t n = strlen(name);
    return n > 2 && !strcmp(name + n - 2, "_e") && finch_longbench_find(name);
}

finch_status finch_longbench_mark_e(finch_eval_tasks *t) {
    if (t->benchmark != FINCH_BENCH_LONGBENCH)
        return finch_fail(FINCH_ERR_ARG, "LongBench-E buckets are for LongBench files; this one is %s",
                          finch_benchmark_name((finch_benchmark)t->benchmark));
    for (size_t i = 0; i < t->n; i++) {
        if (!t->items[i].has_length)
            return finch_fail(FINCH_ERR_FORMAT, "LongBench-E item '%.64s' has no length (a number, 0 or more)", t->items[i].id);
        t->items[i].longbench_e = true;
    }
    return FINCH_OK;
}

/* o[key] as a string array copied to *out (NULL or absent: none). */
static finch_status string_array(const cJSON *o, const char *key, char ***out, size_t *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *v;
    *out = NULL;
    *n = 0;
    if (!a || cJSON_IsNull(a)) return FINCH_OK;
    if (!cJSON_IsArray(a)) return finch_fail(FINCH_ERR_FORMAT, "'%s' must be an array of strings", key);
    if (!(*out = finch_zalloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(char *)))) return FINCH_ERR_NOMEM;
    cJSON_ArrayForEach(v, a) {
        if (!cJSON_IsString(v)) return finch_fail(FINCH_ERR_FORMAT, "'%s' must be an array of strings", key);
        if (!((*out)[(*n)++] = strdup(v->valuestring))) return FINCH_ERR_NOMEM;
    }
    return FINCH_OK;
}

static const char *get_string(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

finch_status finch_longbench_from_json(const cJSON *j, finch_eval_task *t, const void *user) {
    (void)user;
    const char *input = get_string(j, "input"), *context = get_string(j, "context"), *id = get_string(j, "_id");
    const char *name = get_string(j, "dataset");
    if (!input || !context || !id || !name)
        return finch_fail(FINCH_ERR_FORMAT, "a LongBench line needs the strings input, context, dataset and _id");
    const finch_longbench_dataset *d = finch_longbench_find(name);
    if (!d) return finch_fail(FINCH_ERR_FORMAT, "LongBench dataset '%.64s' is not known", name);
    bool zh = d->metric == FINCH_METRIC_QA_F1_ZH || d->metric == FINCH_METRIC_ROUGE_ZH;
    if (zh && !finch_bench_has_segmenter())
        return finch_fail(FINCH_ERR_UNSUPPORTED, "LongBench dataset '%s' is scored on jieba's Chinese word "
                          "segmentation: give --jieba CMD (tools/jieba_cut.py, python3-jieba)", name);
    finch_status st = string_array(j, "answers", &t->answers, &t->n_answers);
    if (!st) st = string_array(j, "all_classes", &t->classes, &t->n_classes);
    if (st) return st;
    if (t->n_answers == 0) return finch_fail(FINCH_ERR_FORMAT, "a LongBench line needs at least one answer");
    if (!(t->id = strdup(id)) || !(t->dataset = strdup(name))) return FINCH_ERR_NOMEM;
    if ((st = finch_bench_split_prompt(d->prompt, context, input, t))) return st;
    t->max_new = d->max_new;
    t->metric = (int)d->metric;
    t->no_newline_stop = !d->stop_newline;
    t->no_chat = !d->chat;
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(j, "length");
    if (cJSON_IsNumber(len) && isfinite(len->valuedouble) && len->valuedouble >= 0) { /* words or characters */
        t->has_length = true;
        t->length = len->valuedouble;
    }
    /* LongBench-E's files name their datasets "X_e": scored per bucket of length, as eval.py --e */
    if ((t->longbench_e = finch_longbench_is_e(name)) && !t->has_length)
        return finch_fail(FINCH_ERR_FORMAT, "LongBench-E item '%.64s' has no length (a number, 0 or more)", id);
    return FINCH_OK;
}
