/* press_params.c - a press's parameters: the defaults and the names of
 * modes, selections, normalisations and schedules with their parsers
 * (include/finch_press.h); beside src/press/finch.c.  Also the
 * run's summary (finch_press_describe), which reads only the stats. */
#include "finch_press.h"
#include "util.h"

#include <string.h>

finch_press_params finch_press_defaults(void) {
    finch_press_params p;
    memset(&p, 0, sizeof p);
    p.mode = FINCH_PRESS_ITERATIVE;
    p.select = FINCH_SELECT_HEAD;
    p.scorer = FINCH_SCORER_FINCH;
    p.normalize = 1;
    p.budget_kind = FINCH_BUDGET_TOKENS;
    return p;
}

const char *finch_press_mode_name(finch_press_mode m) {
    return m == FINCH_PRESS_ONESHOT ? "oneshot" : "iterative";
}

const char *finch_press_select_name(finch_press_select s) {
    return s == FINCH_SELECT_LAYER ? "layer" : "head";
}

finch_status finch_press_parse_mode(const char *s, finch_press_mode *out) {
    if (s && strcmp(s, "iterative") == 0) { *out = FINCH_PRESS_ITERATIVE; return FINCH_OK; }
    if (s && strcmp(s, "oneshot") == 0) { *out = FINCH_PRESS_ONESHOT; return FINCH_OK; }
    return finch_fail(FINCH_ERR_ARG, "unknown Finch mode '%s' (iterative or oneshot)", s ? s : "");
}

const char *finch_press_normalize_name(int normalize) {
    return normalize == FINCH_NORMALIZE_AUTHORS ? "authors" : normalize ? "on" : "off";
}

const char *finch_press_schedule_name(finch_schedule s) {
    return s == FINCH_SCHEDULE_AUTHORS ? "authors" : "proportional";
}

const char *finch_budget_kind_name(finch_budget_kind k) {
    return k == FINCH_BUDGET_TOKENS ? "budget" : k == FINCH_BUDGET_RATIO ? "ratio" : "cr"; /* the flags' names */
}

double finch_press_budget_value(const finch_press_params *p) {
    return p->budget_kind == FINCH_BUDGET_TOKENS ? (double)p->budget
           : p->budget_kind == FINCH_BUDGET_RATIO ? p->ratio : p->cr;
}

finch_status finch_press_parse_normalize(const char *s, int *out) {
    if (s && strcmp(s, "on") == 0) { *out = FINCH_NORMALIZE_ON; return FINCH_OK; }
    if (s && strcmp(s, "off") == 0) { *out = FINCH_NORMALIZE_OFF; return FINCH_OK; }
    if (s && strcmp(s, "authors") == 0) { *out = FINCH_NORMALIZE_AUTHORS; return FINCH_OK; }
    return finch_fail(FINCH_ERR_ARG, "unknown normalisation '%s' (on, authors or off)", s ? s : "");
}

finch_status finch_press_parse_schedule(const char *s, finch_schedule *out) {
    if (s && strcmp(s, "proportional") == 0) { *out = FINCH_SCHEDULE_PROPORTIONAL; return FINCH_OK; }
    if (s && strcmp(s, "authors") == 0) { *out = FINCH_SCHEDULE_AUTHORS; return FINCH_OK; }
    return finch_fail(FINCH_ERR_ARG, "unknown schedule '%s' (proportional or authors)", s ? s : "");
}

finch_status finch_press_parse_select(const char *s, finch_press_select *out) {
    if (s && strcmp(s, "head") == 0) { *out = FINCH_SELECT_HEAD; return FINCH_OK; }
    if (s && strcmp(s, "layer") == 0) { *out = FINCH_SELECT_LAYER; return FINCH_OK; }
    return finch_fail(FINCH_ERR_ARG, "unknown selection '%s' (head or layer)", s ? s : "");
}

void finch_press_describe(const finch_press *fp, FILE *f) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    fprintf(f, "press: %s\n", finch_scorer_name(s->scorer));
    fprintf(f, "mode: %s\n", finch_press_mode_name(s->mode));
    fprintf(f, "selection: %s\n", finch_press_select_name(s->select));
    fprintf(f, "normalize: %s\n", finch_press_normalize_name(s->normalize));
    fprintf(f, "context tokens N: %zu\n", s->n_ctx);
    fprintf(f, "question tokens m: %zu\n", s->n_question);
    if (s->n_protected) fprintf(f, "protected prefix P: %zu\n", s->n_protected);
    fprintf(f, "budget K: %zu\n", s->budget);
    fprintf(f, "kept positions: %zu\n", s->n_kept);
    if (s->n_masked) fprintf(f, "masked rows (budgets per layer/head): %zu\n", s->n_masked);
    fprintf(f, "chunk: %zu (%zu chunks)\n", s->chunk, s->n_chunks);
    fprintf(f, "compression N/K: %.2fx\n", s->compression);
    fprintf(f, "kv bytes before: %zu (N + m = %zu positions)\n", s->kv_bytes_full, s->n_ctx + s->n_question);
    fprintf(f, "kv bytes after: %zu (%zu positions)\n", s->kv_bytes_kept, s->n_kept);
    fprintf(f, "kv capacity during compression: %zu positions\n", s->kv_capacity);
    fprintf(f, "time prefill: %.3f s\n", s->t_prefill);
    fprintf(f, "time scoring: %.3f s\n", s->t_scoring);
    fprintf(f, "time compaction: %.3f s\n", s->t_compact);
    fprintf(f, "time generation: %.3f s (%zu prompt + %zu generated tokens)\n", s->t_generation,
            s->n_prompt, s->n_generated);
}
