/* eval_tasks.h - the JSON Lines walk of src/eval_tasks.c, shared with the
 * benchmark readers (src/bench_tasks.c): every non-blank line one JSON
 * value, checked as text, turned into a task by from_json, ids distinct. */
#ifndef FINCH_EVAL_TASKS_H
#define FINCH_EVAL_TASKS_H

#include <cjson/cJSON.h>

#include "finch_eval.h"

/* One line's JSON value into *t (freed by the caller, complete or not). */
typedef finch_status (*finch_task_from_json)(const cJSON *j, finch_eval_task *t, const void *user);

finch_status finch_eval_tasks_parse_with(const char *text, size_t len, const char *name,
                                         finch_task_from_json from_json, const void *user, finch_eval_tasks *out);

/* The plain task format under other key names (id, context, question,
 * answers, in that order). */
finch_status finch_eval_tasks_parse_keys(const char *text, size_t len, const char *name, const char *const keys[4],
                                         finch_eval_tasks *out);
#endif
