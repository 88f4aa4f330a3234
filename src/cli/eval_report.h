/* eval_report.h - what `finch eval` keeps and writes: the per-item records
 * (results.json, also read back by --resume), the summary per press and
 * ratio, the table, the CSV files and the SVG plots (eval_report.c). */
#ifndef FINCH_EVAL_REPORT_H
#define FINCH_EVAL_REPORT_H

#include "cli.h"
#include "finch_eval.h"

#include <cjson/cJSON.h>

/* Means over the items of one press at one ratio (full: ratio 1). */
typedef struct {
    const char *press;
    double ratio;
    size_t n, n_nll;      /* items, items with a reference answer (NLL)   */
    double em, f1, kl, top1, nll, seconds, kv_bytes, K, compression;
} eval_row;

typedef struct {
    eval_row *rows;       /* full first, then press-major, ratio-minor    */
    size_t n_rows;
    size_t n_items, n_skipped;
} eval_summary;

/* The settings that must match for --resume to reuse earlier items. */
cJSON *eval_config_json(const cli_eval_opts *o);

/* A config read back for --resume (results.json or an MPI journal) in
 * today's names: earlier builds named budget_kind budget_flag. */
void eval_config_upgrade(cJSON *config);

/* --resume: the items of DIR/results.json (DIR = o->out; an empty array
 * when the file does not exist); an error when it was made with other
 * settings or a record is not what the sweep writes (eval_check_items). */
int eval_load_items(const cli_eval_opts *o, const cJSON *config, cJSON **items);
/* eval_resume.c: every item of a results.json read back is well formed
 * (types, ranges, ids not repeated, the runs of the settings). */
int eval_check_items(const char *path, const cJSON *items, const cli_eval_opts *o);

int eval_summarize(const cli_eval_opts *o, const cJSON *items, eval_summary *s);
void eval_summary_free(eval_summary *s);

/* DIR/results.json (config, items, summary), written atomically. */
int eval_save_results(const char *dir, const cJSON *config, const cJSON *items, const eval_summary *s);
cJSON *eval_summary_json(const eval_summary *s);

void eval_print_table(FILE *f, const cli_eval_opts *o, const eval_summary *s);
/* DIR/results.csv (the summary), DIR/items.csv (one line per item and run),
 * DIR/accuracy.svg (EM) and DIR/fidelity.svg (KL) against the ratio. */
int eval_write_files(const char *dir, const cli_eval_opts *o, const cJSON *items, const eval_summary *s);

/* --plot-kept-items DIR: DIR/item-LINE-PRESS@RATIO.svg, the map of the
 * positions one run kept (out->kept), the answer's span in the context
 * (where the reference ids occur in it) marked beside the rows. */
int eval_plot_kept_item(const char *dir, size_t line, const char *press, double ratio,
                        const finch_eval_output *out, const int32_t *ctx, size_t n_ctx, const int32_t *ref,
                        size_t n_ref);

#endif
