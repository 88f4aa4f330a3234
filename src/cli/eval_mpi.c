/* eval_mpi.c - `finch eval` over MPI ranks (make MPI=1; docs/mpi.md).
 *
 * Every rank loads the model (mapped: ranks on a node share the page cache)
 * and runs work units (eval_units.h).  Rank 0 hands them out as ranks become
 * free, lowest unit first (an item's press units wait for its full
 * reference, whose logits travel with them), appends each finished record to
 * DIR/journal.jsonl (synced), and adds the items to results.json in task
 * order as they complete: the outputs are those of one process.  Rank 0
 * also works, on a second thread, when MPI gives threads
 * (MPI_THREAD_MULTIPLE); the coordinator waits in MPI_Iprobe + nanosleep,
 * so it takes no core from the workers.  A failing unit stops the job: the
 * units in flight finish and are kept, and rank 0 prints one line with the
 * error, the rank and the unit. */
#include "eval_mpi.h"
#include "util.h"

#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int g_rank, g_size, g_node_ranks = 1;
static bool g_threads_ok, g_agreed, g_inited;
static char g_setup_error[MSG_TEXT_MAX];

/* ------------------------------------------------------------- messages */

void msg_free(msg *m) {
    free(m->buf);
    memset(m, 0, sizeof *m);
}

void msg_send(int dest, int tag, msg_head h, const char *text, const float *fl, size_t n_fl) {
    size_t tl = text ? strlen(text) + 1 : 0;
    h.text_len = (tl + 3) / 4 * 4; /* the floats stay aligned */
    size_t n = sizeof h + h.text_len + n_fl * sizeof(float);
    unsigned char *buf = malloc(n);
    if (!buf) {
        fprintf(stderr, "finch: error: rank %d: out of memory for a message\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL);
    }
    memcpy(buf, &h, sizeof h);
    memset(buf + sizeof h, 0, h.text_len);
    if (tl) memcpy(buf + sizeof h, text, tl);
    if (n_fl) memcpy(buf + sizeof h + h.text_len, fl, n_fl * sizeof(float));
    MPI_Send(buf, (int)n, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
    free(buf);
}

/* Waits in MPI_Iprobe + nanosleep, not in a spinning MPI_Recv: the
 * workers on this node need the cores. */
bool msg_poll(int source, int tag, msg *m, bool wait) {
    MPI_Status st;
    int flag = 0;
    struct timespec nap = { 0, 100 * 1000 };
    for (;;) {
        MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, &st);
        if (flag) break;
        if (!wait) return false;
        nanosleep(&nap, NULL);
    }
    int n = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    memset(m, 0, sizeof *m);
    m->buf = malloc(n > 0 ? (size_t)n : 1);
    if (!m->buf) {
        fprintf(stderr, "finch: error: rank %d: out of memory for a message\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL);
    }
    MPI_Recv(m->buf, n, MPI_BYTE, st.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    m->source = st.MPI_SOURCE;
    size_t len = (size_t)n;
    if (len < sizeof m->h) MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL); /* not ours */
    memcpy(&m->h, m->buf, sizeof m->h);
    if (m->h.text_len > len - sizeof m->h || m->h.text_len % 4) MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL);
    m->text = m->h.text_len ? (char *)m->buf + sizeof m->h : NULL;
    size_t rest = len - sizeof m->h - m->h.text_len;
    m->floats = (float *)(m->buf + sizeof m->h + m->h.text_len); /* malloc'ed: aligned after the head */
    m->n_floats = rest / sizeof(float);
    return true;
}

void msg_recv(int source, int tag, msg *m) { msg_poll(source, tag, m, true); }

/* ------------------------------------------------------- setup and end */

int eval_mpi_begin(int *argc, char ***argv) {
    (void)argc; (void)argv;
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return cli_error("MPI_Init_thread failed");
    g_inited = true;
    g_threads_ok = provided >= MPI_THREAD_MULTIPLE;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &g_node_ranks);
    MPI_Comm_free(&node);
    /* Every rank checks the same flags and files; rank 0 says what is wrong
     * once (agree() brings the other ranks' own failures to it). */
    if (g_rank != 0) cli_error_capture(g_setup_error, sizeof g_setup_error);
    return 0;
}

bool eval_mpi_active(void) { return g_size > 1 || g_threads_ok; }
bool eval_mpi_is_root(void) { return g_rank == 0; }

int eval_mpi_node_ranks(void) { return g_node_ranks > 0 ? g_node_ranks : 1; }

long eval_mpi_threads(long threads) {
    if (threads > 0) return threads;
    long per_rank = (long)finch_num_cores() / (g_node_ranks > 0 ? g_node_ranks : 1);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < per_rank)
        per_rank = CPU_COUNT(&set); /* mpirun bound this rank to fewer cores */
    return per_rank > 0 ? per_rank : 1;
}

/* Every rank brings its setup result; all return rank 0's, else the first
 * failing rank's code, and rank 0 prints that rank's line. */
static int agree(int rc) {
    g_agreed = true;
    cli_error_capture(NULL, 0);
    int *codes = g_rank == 0 ? calloc((size_t)g_size, sizeof *codes) : NULL;
    char *texts = g_rank == 0 ? calloc((size_t)g_size, MSG_TEXT_MAX) : NULL;
    if (g_rank == 0 && (!codes || !texts)) MPI_Abort(MPI_COMM_WORLD, EXIT_INTERNAL);
    MPI_Gather(&rc, 1, MPI_INT, codes, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Gather(g_setup_error, MSG_TEXT_MAX, MPI_CHAR, texts, MSG_TEXT_MAX, MPI_CHAR, 0, MPI_COMM_WORLD);
    int final = rc;
    for (int r = 1; g_rank == 0 && !final && r < g_size; r++)
        if (codes[r]) {
            final = codes[r];
            texts[(size_t)r * MSG_TEXT_MAX + MSG_TEXT_MAX - 1] = 0;
            cli_error("rank %d: %s", r, texts + (size_t)r * MSG_TEXT_MAX);
        }
    free(codes);
    free(texts);
    MPI_Bcast(&final, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return final;
}

int eval_mpi_end(int rc) {
    if (!g_inited) return rc;
    if (!g_agreed) rc = agree(rc);
    MPI_Finalize();
    return rc;
}

/* ---------------------------------------------------------------- worker */

/* FINCH_EVAL_MPI_FAULT=kill:RANK:N or fail:RANK:N: that rank dies (SIGKILL)
 * or fails when it is given its N-th unit; for the tests (docs/mpi.md). */
static int injected_fault(long n_given) {
    const char *f = getenv("FINCH_EVAL_MPI_FAULT");
    char kind[8];
    int rank;
    long n;
    if (!f || sscanf(f, "%7[a-z]:%d:%ld", kind, &rank, &n) != 3 || rank != g_rank || n != n_given) return 0;
    if (!strcmp(kind, "kill")) raise(SIGKILL);
    return cli_error("injected failure (FINCH_EVAL_MPI_FAULT=%s)", f);
}

/* Run units until rank 0 says stop; returns the job's exit code. */
static int worker(const eval_env *e, const finch_eval_tasks *tasks) {
    msg_send(0, TAG_TO_ROOT, (msg_head){ .kind = MSG_READY }, NULL, NULL, 0);
    size_t vocab = e->m->cfg.vocab;
    char err[MSG_TEXT_MAX];
    for (long n_given = 1;; n_given++) {
        msg m;
        msg_recv(0, TAG_TO_WORKER, &m);
        if (m.h.kind == MSG_STOP) {
            int rc = m.h.rc;
            msg_free(&m);
            return rc;
        }
        msg_head h = { .kind = MSG_DONE, .item = m.h.item, .unit = m.h.unit };
        cJSON *rec = NULL;
        float *logits = NULL;
        cli_error_capture(err, sizeof err);
        int rc = injected_fault(n_given);
        if (!rc && (m.h.item < 0 || (size_t)m.h.item >= tasks->n || (m.h.unit > 0 && m.n_floats != vocab)))
            rc = cli_error("rank 0 sent a unit this rank cannot run");
        if (!rc) rc = eval_unit_run(e, &tasks->items[m.h.item], (size_t)m.h.unit, m.floats, &rec, &logits);
        char *text = rec ? cJSON_PrintUnformatted(rec) : NULL;
        if (!rc && !text) rc = cli_out_of_memory();
        cli_error_capture(NULL, 0);
        if (rc) {
            h.kind = MSG_FAIL;
            h.rc = rc;
            msg_send(0, TAG_TO_ROOT, h, err, NULL, 0);
        } else {
            msg_send(0, TAG_TO_ROOT, h, text, logits, logits ? vocab : 0);
        }
        free(text);
        free(logits);
        cJSON_Delete(rec);
        msg_free(&m);
    }
}

/* ----------------------------------------------------------- coordinator */

typedef struct {
    const eval_env *e;
    const finch_eval_tasks *tasks;
    const cJSON *config;
    cJSON *items;
    int rc;
} coord_args;

static void *coordinator_thread(void *p) {
    coord_args *a = p;
    a->rc = eval_mpi_coordinate(a->e, a->tasks, a->config, a->items, g_size, g_threads_ok);
    return NULL;
}

int eval_mpi_sweep(const eval_env *e, const finch_eval_tasks *tasks, const cJSON *config, cJSON *items) {
    int rc = agree(0);
    if (rc) return rc;
    if (g_rank != 0) return worker(e, tasks);
    if (!g_threads_ok) return eval_mpi_coordinate(e, tasks, config, items, g_size, false);
    coord_args a = { e, tasks, config, items, 0 };
    pthread_t th;
    if (pthread_create(&th, NULL, coordinator_thread, &a)) return cli_error("cannot start the coordinator thread");
    int wrc = worker(e, tasks);
    pthread_join(th, NULL);
    return a.rc ? a.rc : wrc;
}
