/* threadpool.c - a tiny fork-join pool: n-1 worker threads plus the caller.
 *
 * finch_pool_run publishes one job (fn, arg, n_tasks), every thread takes
 * task indices from a shared atomic counter until they run out, and the
 * call returns once every worker has finished the job.  Which thread runs
 * a task varies from run to run, so tasks must not depend on it (the
 * kernels cut their work into fixed blocks for that reason).
 *
 * Between runs workers spin for a short while (a forward pass issues
 * hundreds of runs back to back, and waking a sleeping thread costs tens
 * of microseconds), yielding the core after the first few microseconds,
 * then sleep on a condition variable.  The caller waits for the run's end
 * the same way.
 *
 * One run at a time per pool: finch_pool_run must not be called from two
 * threads at once, nor from inside a task.
 *
 * finch_pool_worker() tells a task which of the run's threads runs it
 * (0 = the caller, then 1 .. n-1), so that a job can give each thread its
 * own scratch buffer; which tasks a thread gets still varies. */
#include "kernels.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPIN_SECONDS 100e-6 /* how long an idle thread spins before sleeping */
/* After this long a spinning thread also offers its core at every check
 * (every 256 pauses): a partner the scheduler took off its core mid-task
 * gets it back sooner, where pure spinning held the core for the full
 * SPIN_SECONDS.  On an idle machine sched_yield returns at once.
 * TinyLlama decode, 2 threads, read into memory, the 2-core Zen 4 at load
 * 3-4.5, alternated (docs/bench.md): CPU per token lower in 10 of 10
 * pairs (F16 -8%, Q8_0 -20%), tok/s higher in 8 of 10. */
#define YIELD_SECONDS 10e-6

typedef struct {
    struct finch_pool *pool;
    size_t index; /* 1 .. n_threads-1 */
} worker_arg;

struct finch_pool {
    size_t n_threads;  /* workers + the calling thread                       */
    size_t n_workers;  /* threads actually started                           */
    pthread_t *workers;
    worker_arg *args;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a new run was published, or stop               */
    pthread_cond_t done; /* the last worker finished the run               */
    bool stop;           /* under mu                                       */

    /* The current job.  Written by the caller before it bumps `gen` (a
     * release store); workers read it after seeing the new `gen` (acquire)
     * and are done with it before they decrement `busy`. */
    void (*fn)(void *arg, size_t task);
    void *arg;
    size_t n_tasks;
    atomic_size_t next; /* next task index to hand out                     */
    atomic_size_t busy; /* workers that have not finished this run         */
    atomic_size_t gen;  /* run counter; changed only under mu              */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Which of its pool's threads runs the current task (0: the caller). */
static _Thread_local size_t worker_index;

size_t finch_pool_worker(void) { return worker_index; }

static void run_tasks(finch_pool *p) {
    void (*fn)(void *, size_t) = p->fn;
    void *arg = p->arg;
    size_t n = p->n_tasks;
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= n) break;
        fn(arg, i);
    }
}

/* Spin for at most SPIN_SECONDS until (*v == val) becomes `equal`; returns
 * whether it did (false: the caller should go to sleep). */
static bool spin_until(atomic_size_t *v, size_t val, bool equal) {
    double t0 = finch_now();
    for (unsigned i = 1;; i++) {
        if ((atomic_load_explicit(v, memory_order_acquire) == val) == equal) return true;
        cpu_relax();
        if (i % 256 == 0) {
            double t = finch_now() - t0;
            if (t > SPIN_SECONDS) return false;
            if (t > YIELD_SECONDS) sched_yield();
        }
    }
}

static void *worker_main(void *arg) {
    finch_pool *p = ((worker_arg *)arg)->pool;
    worker_index = ((worker_arg *)arg)->index;
    /* Runs are counted from 0 before any thread starts, and every worker
     * takes part in every run (the caller waits for all of them), so a
     * worker that starts late still sees the first run as new. */
    size_t seen = 0;
    for (;;) {
        if (!spin_until(&p->gen, seen, false)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !p->stop)
                pthread_cond_wait(&p->wake, &p->mu);
            bool stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop) return NULL; /* only set while no run is in flight */
        }
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        run_tasks(p);
        /* The last worker out wakes the caller if it went to sleep; taking
         * the mutex orders this signal after the caller's check of busy. */
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void stop_workers(finch_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    p->n_workers = 0;
}

finch_status finch_pool_new(size_t n_threads, finch_pool **out) {
    *out = NULL;
    if (n_threads == 0) n_threads = finch_num_cores();
    finch_pool *p = finch_zalloc(1, sizeof *p);
    if (!p) return FINCH_ERR_NOMEM;
    p->n_threads = n_threads;
    p->workers = finch_zalloc(n_threads - 1, sizeof *p->workers);
    p->args = finch_zalloc(n_threads - 1, sizeof *p->args);
    if (!p->workers || !p->args) {
        free(p->workers);
        free(p->args);
        free(p);
        return FINCH_ERR_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->gen, 0);
    /* Workers inherit a mask without the signals a program may handle
     * (SIGINT, SIGTERM, SIGHUP): those go to the calling thread, which
     * makes and registers the output temporaries (outfile.h). */
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stops, &old);
    bool started = true;
    for (size_t i = 0; i + 1 < n_threads && started; i++) {
        p->args[i] = (worker_arg){p, i + 1};
        started = pthread_create(&p->workers[i], NULL, worker_main, &p->args[i]) == 0;
        if (started) p->n_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        size_t n = p->n_workers;
        finch_pool_free(p);
        return finch_fail(FINCH_ERR_INTERNAL, "cannot start thread %zu of %zu", n + 2, n_threads);
    }
    *out = p;
    return FINCH_OK;
}

void finch_pool_free(finch_pool *p) {
    if (!p) return;
    stop_workers(p);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p->args);
    free(p);
}

size_t finch_pool_threads(const finch_pool *p) { return p ? p->n_threads : 1; }

void finch_pool_run(finch_pool *p, size_t n_tasks, void (*fn)(void *arg, size_t task),
                    void *arg) {
    /* The caller is thread 0 of this run, whatever it is elsewhere. */
    size_t saved_index = worker_index;
    worker_index = 0;
    /* Nothing to share: run inline and leave the workers idle. */
    if (!p || p->n_workers == 0 || n_tasks <= 1) {
        for (size_t i = 0; i < n_tasks; i++) fn(arg, i);
        worker_index = saved_index;
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n_workers, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release); /* publish */
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_tasks(p);

    if (!spin_until(&p->busy, 0, true)) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->busy, memory_order_acquire) != 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    worker_index = saved_index;
}
