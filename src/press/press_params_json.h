/* press_params_json.h - the parameters of a press run as JSON members, in
 * one order: the dump's meta.json "params" (src/press/dump.c) and
 * `finch run --json` (src/cli/cmd_run.c) both write them through this, so
 * the two carry the same keys in the same order (docs/dump-format.md).
 * Library-internal. */
#ifndef FINCH_PRESS_PARAMS_JSON_H
#define FINCH_PRESS_PARAMS_JSON_H

#include "finch_press.h"

#include <cjson/cJSON.h>

/* Add to the object j, in this order: press, mode, select, normalize,
 * schedule, budget_kind, budget_value, N, m, K, protect, n_kept, n_prompt,
 * chunk, n_chunks, lingua_segment, batch, threads, seed, kv_chunk,
 * rerotate, steps, cache_type: every parameter as resolved by the run. */
void finch_press_params_json(cJSON *j, const finch_press *fp);

#endif
