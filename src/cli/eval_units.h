/* eval_units.h - the work units of `finch eval` (cmd_eval.c) and the hook
 * that spreads them over MPI ranks (eval_mpi.c, built only with MPI=1).
 *
 * Item i of the task file is 1 + presses x ratios units:
 *   unit 0        the full reference: the item's header (id, lengths,
 *                 answers) with "full", or "skipped"; and the full cache's
 *                 first-answer-token logits, which every other unit needs;
 *   unit 1 + p*R + r   press p at ratio r, measured against those logits.
 * One process runs them in this order; MPI ranks run them in any order and
 * rank 0 puts them back in it, so the outputs are the same.  A new press or
 * benchmark only adds units. */
#ifndef FINCH_EVAL_UNITS_H
#define FINCH_EVAL_UNITS_H

#include "cli.h"
#include "finch_eval.h"

#include <cjson/cJSON.h>

typedef struct {
    const finch_model *m;
    finch_ctx *ctx;
    const cli_eval_opts *o;
    const cli_chat *chat;
} eval_env;

/* Units per item: 1 + n_presses * n_ratios. */
size_t eval_units_per_item(const cli_eval_opts *o);

/* Run unit `unit` of task t.  Unit 0: *rec is the header with "full" or
 * "skipped", *full_logits the full cache's logits (vocab floats, malloc'ed;
 * NULL when skipped).  Other units: *rec is the run record; full_logits_in
 * must be unit 0's logits.  Records hold their numbers as written to JSON
 * (read back from their text), so a record that travelled as text, or was
 * read by --resume, is the same record.  Returns 0 or the exit code (the
 * one-line error printed by cli_error). */
int eval_unit_run(const eval_env *e, const finch_eval_task *t, size_t unit, const float *full_logits_in,
                  cJSON **rec, float **full_logits);

/* Add the runs of units 1.. (in unit order, runs[k - 1]; taken over) to the
 * header of unit 0, as the one-process sweep writes an item. */
void eval_item_assemble(cJSON *header, cJSON **runs, size_t n_runs);

/* --dump-items for task t whose record rec was put together from units
 * (rank 0 of MPI): the prompt text from the item's own ids, as the
 * one-process sweep writes it.  0 without --dump-items. */
int eval_dump_task(const eval_env *e, const finch_eval_task *t, const cJSON *rec);

/* Is the item with this id among the records? (--resume skips it.) */
bool eval_item_done(const cJSON *items, const char *id);
/* DIR/results.json with the records so far (after every item). */
int eval_save(const cli_eval_opts *o, const cJSON *config, const cJSON *items);

/* ---- the MPI hook (eval_mpi.c; without MPI=1 these are the one-process
 * answers below).  cmd_eval calls eval_mpi_begin first and returns
 * eval_mpi_end(rc); between them, only rank 0 ("root") writes outputs, and
 * when eval_mpi_active() the sweep is eval_mpi_sweep (the items in task
 * order, as the one-process sweep leaves them). */
#ifdef FINCH_MPI
int eval_mpi_begin(int *argc, char ***argv);
bool eval_mpi_active(void);
bool eval_mpi_is_root(void);
/* Threads per rank when -t is not given: the node's cores / its ranks. */
long eval_mpi_threads(long threads);
/* The ranks on this rank's node (1 outside MPI). */
int eval_mpi_node_ranks(void);
int eval_mpi_sweep(const eval_env *e, const finch_eval_tasks *tasks, const cJSON *config, cJSON *items);
int eval_mpi_end(int rc);
#else
static inline int eval_mpi_begin(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }
static inline bool eval_mpi_active(void) { return false; }
static inline bool eval_mpi_is_root(void) { return true; }
static inline long eval_mpi_threads(long threads) { return threads; }
static inline int eval_mpi_node_ranks(void) { return 1; }
static inline int eval_mpi_sweep(const eval_env *e, const finch_eval_tasks *tasks, const cJSON *config,
                                 cJSON *items) {
    (void)e; (void)tasks; (void)config; (void)items;
    return EXIT_INTERNAL;
}
static inline int eval_mpi_end(int rc) { return rc; }
#endif

#endif
