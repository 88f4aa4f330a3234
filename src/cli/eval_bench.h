/* eval_bench.h - `finch eval` on published benchmarks and long runs
 * (eval_bench.c): per-item prompt rules, benchmark scores, the progress
 * line with ETA, per-item dumps. */
#ifndef FINCH_EVAL_BENCH_H
#define FINCH_EVAL_BENCH_H

#include "cli.h"
#include "finch_eval.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* The chat template for item t: none when its benchmark sends it bare. */
const cli_chat *eval_item_chat(const cli_chat *chat, const finch_eval_task *t);
/* --answer-prefix, else the item's own (RULER), else NULL. */
const char *eval_item_prefix(const cli_eval_opts *o, const finch_eval_task *t);
/* Answer tokens at most: -n when given, else the benchmark's, else -n's default. */
size_t eval_item_n_new(const cli_eval_opts *o, const finch_eval_task *t);

/* The benchmark, its prompt templates (by dataset) and the chat template in
 * force, into results.json's config (nothing for the plain format). */
int eval_bench_config(cJSON *config, const cli_eval_opts *o, const finch_eval_tasks *tasks, const cli_chat *chat);

/* --max-length L (LongBench pred.py): a prompt of more than L tokens keeps
 * its first L/2 and last L/2 tokens; here the prompt is the context ids
 * (chat head included) then the question's, and the cut falls in the
 * context.  0 when nothing is cut or it was cut; an error when the
 * question and the protected head leave no room. */
int eval_truncate_middle(int32_t *context, size_t *n_context, size_t n_question, size_t n_protect, long max_length);
/* "score": the benchmark's metric of the run's answer (LongBench, RULER);
 * 0, or the exit code when the Chinese word segmenter failed. */
int eval_bench_score_run(cJSON *run, const finch_eval_task *t, int benchmark);
/* The per-dataset table (press@ratio, 100 x mean score) on f and in
 * DIR/benchmark.json (nothing for the plain format). */
int eval_bench_report(const char *dir, const finch_eval_tasks *tasks, const cJSON *items, FILE *f);

/* DIR/predictions/PRESS@RATIO.json (SQuAD v2, plain tasks: the official
 * {id: answer} object) or .jsonl (LongBench, RULER: {"id", "prediction"}
 * lines): every run's answers, for finch score or the benchmarks' own
 * scripts. */
int eval_write_predictions(const char *dir, const finch_eval_tasks *tasks, const cJSON *items);

/* "finch eval: item i/n (id): done, 1.23 s; elapsed 0:01:02, ETA 0:10:00":
 * the ETA is the mean time of the items run so far (done_now) x left. */
void eval_progress_line(FILE *f, size_t i, size_t n, const char *id, bool skipped, double item_s, double elapsed,
                        size_t done_now, size_t left);

/* --dump-items DIR: DIR/item-NNNNNN.json, the record with the text of the
 * context, question and prompt ids as the model reads them. */
int eval_dump_item(const char *dir, size_t index, const finch_model *m, const int32_t *context, size_t n_context,
                   const int32_t *question, size_t n_question, const int32_t *prompt, size_t n_prompt,
                   const cJSON *rec);
#endif
