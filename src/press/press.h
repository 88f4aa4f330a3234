/* press.h - the map of src/press/: which cached positions a press keeps.
 *
 * `finch run` from the prompt to the kept indices reads top to bottom in
 * include/finch_run.h and run_plan.c (the plan), include/finch_press.h
 * (the API), finch.c (the driver: budget and chunk
 * schedule, the forward pass through src/engine/, scoring, top-k,
 * compaction, key re-rotation), presses.h (what a scorer says) and
 * presses.c (the baselines).
 *
 *   run_plan.c   the run plan (include/finch_run.h): budget K, chunk,
 *                KV capacity and peak positions from the parameters and
 *                the model, for run, eval, bench and the Python binding
 *   finch.c      Finch itself and the driver every press runs through
 *   presses.c/.h the scorer interface and the baseline presses (SnapKV,
 *                H2O, TOVA, StreamingLLM, K-norm, truncate, random, full)
 *   topk.c/.h    heap top-k: the k best of n scores, ties to the smaller
 *                position
 */
#ifndef FINCH_PRESS_MAP_H
#define FINCH_PRESS_MAP_H

#include "presses.h"
#include "topk.h"

#endif
