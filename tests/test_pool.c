/* test_pool.c - the fork-join thread pool (src/kernels/threadpool.c): every
 * task of a run done exactly once, on a worker index below the run's thread
 * count, across back-to-back runs of varying size, inline runs and workers
 * that have fallen asleep. */
#include "testutil.h"

#include <stdatomic.h>
#include <time.h>

#include "kernels.h"

typedef struct {
    atomic_uint *hits;
    atomic_size_t sum;
    size_t threads;          /* of the run: 1 when inline */
    atomic_uint bad_worker;  /* tasks that saw finch_pool_worker() >= threads */
} count_job;

static void count_task(void *arg, size_t i) {
    count_job *j = arg;
    atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->sum, i);
    if (finch_pool_worker() >= j->threads) atomic_fetch_add(&j->bad_worker, 1);
}

static void test_pool(void **state) {
    (void)state;
    finch_pool *p;
    assert_ok(finch_pool_new(0, &p));
    assert_int_equal(finch_pool_threads(p), finch_num_cores());
    finch_pool_free(p);
    assert_int_equal(finch_pool_threads(NULL), 1);
    finch_pool_free(NULL);

    enum { MAX_TASKS = 1000 };
    atomic_uint hits[MAX_TASKS];
    for (size_t threads = 1; threads <= 5; threads++) {
        assert_ok(finch_pool_new(threads, &p));
        assert_int_equal(finch_pool_threads(p), threads);
        /* Back-to-back runs of varying size, some with sleeping workers. */
        for (size_t run = 0; run < 200; run++) {
            size_t n = (run * 37) % MAX_TASKS;
            if (run % 50 == 49) n = 0;
            bool inline_run = run % 3 == 2;
            count_job j = {hits, 0, inline_run ? 1 : threads, 0};
            for (size_t i = 0; i < MAX_TASKS; i++) atomic_init(&hits[i], 0);
            finch_pool_run(inline_run ? NULL : p, n, count_task, &j);
            for (size_t i = 0; i < MAX_TASKS; i++) assert_int_equal(atomic_load(&hits[i]), i < n);
            assert_int_equal(atomic_load(&j.sum), n ? n * (n - 1) / 2 : 0);
            assert_int_equal(atomic_load(&j.bad_worker), 0);
            if (run % 67 == 0) { /* let the workers fall asleep */
                struct timespec ts = {0, 2 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        finch_pool_free(p);
    }
}
int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
