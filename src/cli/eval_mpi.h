/* eval_mpi.h - inside the MPI sweep of `finch eval` (MPI=1 only): the
 * messages between rank 0 and the workers (eval_mpi.c) and the coordinator
 * with its journal (eval_mpi_coord.c). */
#ifndef FINCH_EVAL_MPI_H
#define FINCH_EVAL_MPI_H

#include "eval_units.h"

#include <stdint.h>

enum { TAG_TO_ROOT = 17, TAG_TO_WORKER = 18 };
/* To rank 0: READY (first), DONE (a record, + unit 0's logits), FAIL (rc
 * and the error text).  To a worker: WORK (item, unit, + the full logits
 * for a press unit), STOP (the job's exit code). */
enum { MSG_READY, MSG_DONE, MSG_FAIL, MSG_WORK, MSG_STOP };
enum { MSG_TEXT_MAX = 1024 };

typedef struct {
    int32_t kind, rc;
    int64_t item, unit;
    uint64_t text_len; /* bytes of text, NUL and padding to 4 included */
} msg_head;

typedef struct {
    msg_head h;
    char *text;        /* NUL-terminated, or NULL                       */
    float *floats;     /* the rest of the payload                       */
    size_t n_floats;
    int source;
    unsigned char *buf;
} msg;

/* One message of bytes: head, text (may be NULL), floats. */
void msg_send(int dest, int tag, msg_head h, const char *text, const float *fl, size_t n_fl);
/* The next message from source (MPI_ANY_SOURCE: any) with tag. */
void msg_recv(int source, int tag, msg *m);
/* The same when one has arrived (true), else false at once unless wait. */
bool msg_poll(int source, int tag, msg *m, bool wait);
void msg_free(msg *m);

/* Rank 0: hand out the units of the tasks to ranks 0..size-1 (from 1 when
 * !root_works), journal and collect the records, add the items to `items`
 * in task order (results.json after each), stop the workers.  Returns the
 * job's exit code, which the workers also return. */
int eval_mpi_coordinate(const eval_env *e, const finch_eval_tasks *tasks, const cJSON *config, cJSON *items,
                        int size, bool root_works);

#endif
