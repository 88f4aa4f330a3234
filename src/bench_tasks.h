/* bench_tasks.h - shared pieces of the benchmark readers (src/bench_*.c). */
#ifndef FINCH_BENCH_TASKS_H
#define FINCH_BENCH_TASKS_H

#include <cjson/cJSON.h>

#include "finch_benchmarks.h"

/* t->context = tmpl up to "{context}" with the context put in, t->question
 * = the rest; "{input}" anywhere is replaced by input.  Their concatenation
 * is the benchmark's prompt, exactly. */
finch_status finch_bench_split_prompt(const char *tmpl, const char *context, const char *input, finch_eval_task *t);

finch_status finch_longbench_from_json(const cJSON *j, finch_eval_task *t, const void *user);
finch_status finch_ruler_from_json(const cJSON *j, finch_eval_task *t, const void *user);
/* dev-v2.0.json (data -> paragraphs -> qas), parsed. */
finch_status finch_squad2_from_json(const cJSON *root, const char *name, finch_eval_tasks *out);
/* The squad2_500 sample: queries.json + ground_truth.json, parsed. */
finch_status finch_squad_sample_from_json(const cJSON *queries, const cJSON *truth, const char *name,
                                          finch_eval_tasks *out);
/* text[0..len) as one JSON value with nothing but white space after it
 * (NULL otherwise). */
cJSON *finch_json_parse_whole(const char *text, size_t len);
/* A new zeroed item at the end of out (NULL when out of memory). */
finch_eval_task *finch_bench_push(finch_eval_tasks *out);
#endif
