/* press_params_json.c - the run's parameters as JSON members
 * (press_params_json.h): one writer for meta.json and run --json. */
#include "press_params_json.h"
#include "press_trace.h"

void finch_press_params_json(cJSON *j, const finch_press *fp) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    const finch_press_params *p = finch_press_get_params(fp);
    cJSON_AddStringToObject(j, "press", finch_scorer_name(s->scorer));
    cJSON_AddStringToObject(j, "mode", finch_press_mode_name(s->mode));
    cJSON_AddStringToObject(j, "select", finch_press_select_name(s->select));
    cJSON_AddStringToObject(j, "normalize", finch_press_normalize_name(s->normalize));
    cJSON_AddStringToObject(j, "schedule",
                            s->mode == FINCH_PRESS_ONESHOT ? "none" : finch_press_schedule_name(p->schedule));
    cJSON_AddStringToObject(j, "budget_kind", finch_budget_kind_name(p->budget_kind));
    cJSON_AddNumberToObject(j, "budget_value", finch_press_budget_value(p));
    cJSON_AddNumberToObject(j, "N", (double)s->n_ctx);
    cJSON_AddNumberToObject(j, "m", (double)s->n_question);
    cJSON_AddNumberToObject(j, "K", (double)s->budget);
    cJSON_AddNumberToObject(j, "protect", (double)p->protect);
    cJSON_AddNumberToObject(j, "n_kept", (double)s->n_kept);
    cJSON_AddNumberToObject(j, "n_prompt", (double)s->n_prompt);
    cJSON_AddNumberToObject(j, "chunk", (double)s->chunk);
    cJSON_AddNumberToObject(j, "n_chunks", (double)s->n_chunks);
    /* 0: press lingua's single pass (and every other press) */
    cJSON_AddNumberToObject(j, "lingua_segment", (double)p->lingua_segment);
    cJSON_AddNumberToObject(j, "batch", (double)p->batch);
    cJSON_AddNumberToObject(j, "threads", (double)finch_ctx_threads(finch_press_ctx(fp)));
    cJSON_AddNumberToObject(j, "seed", (double)p->seed);
    cJSON_AddNumberToObject(j, "kv_chunk", (double)p->kv_chunk);
    cJSON_AddBoolToObject(j, "rerotate", !p->no_rerotate);
    cJSON_AddBoolToObject(j, "steps", p->record_steps != 0);
    /* keys.npy / values.npy hold the stored values as f32 (f16: exactly) */
    cJSON_AddStringToObject(j, "cache_type", finch_cache_type_name(p->cache_type));
}
