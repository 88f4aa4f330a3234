/* eval.h - the map of src/eval/: measuring the engine and the presses.
 *
 *   eval.c           the metrics of `finch eval` (include/finch_eval.h):
 *                    SQuAD normalisation, exact match, F1, teacher-forced
 *                    KL, NLL and top-1 agreement, one press on one item
 *   eval_tasks.c/.h  task files: JSON Lines {id, context, question, answers}
 *   bench_tasks.c/.h which benchmark a task file is (SQuAD v2, LongBench,
 *                    RULER), reading it, scoring one prediction
 *                    (include/finch_benchmarks.h)
 *   bench_squad.c, bench_longbench.c, bench_ruler.c
 *                    each benchmark's files
 *   bench_metrics.c  the benchmarks' own metrics, from their scorers
 *   bench_zh.c       LongBench's jieba-segmented Chinese metrics, the words
 *                    from a segmenter the caller registers
 *   bench_score.c    whole-file scores as the benchmarks' scripts print them
 *   compare.c        two dumps side by side (include/finch_compare.h)
 *   bootstrap.c/.h   95% bootstrap confidence intervals of a mean (the
 *                    error bars of eval's figures; fixed seed)
 *   bench.c          the yardsticks of `finch bench` (include/finch_bench.h):
 *                    the exact work of a pass, the machine's FMA peak and
 *                    read bandwidth
 *
 * The command-line drivers, reports and plots are in src/cli/ (cmd_eval.c,
 * eval_report.c, svg.c, cmd_score.c, cmd_compare.c, cmd_bench.c,
 * bench_report.c).
 */
#ifndef FINCH_EVAL_MAP_H
#define FINCH_EVAL_MAP_H

#include "finch_bench.h"
#include "finch_benchmarks.h"
#include "finch_compare.h"
#include "finch_eval.h"

#endif
