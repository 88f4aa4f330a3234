/* eval.h - the map of src/eval/: measuring the engine and the presses.
 *
 *   eval.c        the metrics of `finch eval` (include/finch_eval.h): SQuAD
 *                 normalisation, exact match, F1, teacher-forced KL, NLL and
 *                 top-1 agreement, one press on one item
 *   eval_tasks.c  task files: JSON Lines {id, context, question, answers}
 *   bench.c       the yardsticks of `finch bench` (include/finch_bench.h):
 *                 the exact work of a pass, the machine's FMA peak and read
 *                 bandwidth
 *
 * The command-line drivers, reports and plots are in src/cli/ (cmd_eval.c,
 * eval_report.c, svg.c, cmd_bench.c).
 */
#ifndef FINCH_EVAL_MAP_H
#define FINCH_EVAL_MAP_H

#include "finch_bench.h"
#include "finch_eval.h"

#endif
