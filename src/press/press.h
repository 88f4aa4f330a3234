/* press.h - the map of src/press/: which cached positions a press keeps.
 *
 * `finch run` from the parameters to the kept indices reads top to bottom
 * in four files: run_plan.c (budget K, chunk and cache sizes, decided once
 * for run, eval, bench and the Python binding), press_session.c (the press
 * object and its feeds through the engine's feed loop), finch.c (the
 * selection: chunk schedule; each step fed one layer at a time through
 * src/engine/forward.h and scored by the driver as each layer's cache
 * holds it; top-k, compaction and re-rotation, both modes) and presses.c
 * (what each baseline's scorer says).
 *
 *   run_plan.c        the run plan (include/finch_run.h) and the budget K
 *   press_params.c    defaults, names and parsers of the parameters
 *   press_session.c   the press object; before and after the selection;
 *                     prompt, decoding, append, rewind; read back, summary
 *   finch.c           the selection, Finch's own scorer, both modes
 *   presses.c/.h      the scorer interface (a step's observing rows) and
 *                     the baselines (SnapKV, H2O, TOVA, StreamingLLM,
 *                     K-norm, truncate, random, full)
 *   press_trace.c/.h  what a selection records for the dump
 *   dump.c            the dump of a press run (docs/dump-format.md)
 *   topk.c/.h         heap top-k: the k best of n scores, ties to the
 *                     smaller position
 *   press_internal.h  the press object's inside and the building blocks
 *                     the unit tests call
 */
#ifndef FINCH_PRESS_MAP_H
#define FINCH_PRESS_MAP_H

#include "press_internal.h"
#include "topk.h"

#endif
