/* cli_jieba.c - --jieba CMD of `finch score` and `finch eval`: LongBench's
 * Chinese metrics segment words with jieba (Python), so a helper process
 * does it (tools/jieba_cut.py with Debian's python3-jieba): CMD runs under
 * /bin/sh, reads one JSON string a line on its stdin and answers each with
 * one line, the JSON array of jieba.cut(text, cut_all=False).  It is
 * registered with the library (finch_bench_set_segmenter) before the task
 * file is read, so the datasets it scores are no longer refused; the
 * helper itself starts only when a text is to be segmented
 * (cli_jieba_check: once the tasks read need it), so an English dataset
 * never runs CMD.
 * Every wait on the helper is bounded (poll on the raw pipes): one that
 * never reads, never answers or never exits is an error, not a hung finch.
 * SIGPIPE is blocked only around the writes to the helper (a helper that
 * died is an error message, not a killed finch); the rest of the process
 * keeps its own disposition. */
#include "cli.h"
#include "finch_benchmarks.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the helper may take to take one text and answer it: jieba's
 * first cut loads its dictionary (a second or two, more on a loaded
 * machine).  FINCH_JIEBA_SECONDS overrides it (the tests' hung helper). */
#define JIEBA_ANSWER_SECONDS 60
/* How long the helper has to exit once its input ends before it is killed. */
#define JIEBA_EXIT_SECONDS 1
/* An answer longer than this is not a word list of one text. */
#define JIEBA_ANSWER_MAX ((size_t)1 << 30)

static struct {
    const char *cmd;    /* --jieba CMD; NULL: none */
    pid_t pid;
    int to, from;       /* the helper's stdin and stdout, non-blocking */
    char *buf;          /* bytes read from the helper: the answer line, then what follows it */
    size_t cap, held, used;
} g_jieba = { .pid = -1, .to = -1, .from = -1 };

static int answer_seconds(void) {
    const char *s = getenv("FINCH_JIEBA_SECONDS");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 && v <= 3600 ? (int)v : JIEBA_ANSWER_SECONDS;
}

/* Milliseconds left until the deadline (0 when it has passed). */
static int ms_left(double deadline) {
    double left = deadline - finch_now();
    return left > 0 ? (int)(left * 1000.0) + 1 : 0;
}

/* Wait for fd to be ready for ev until the deadline: 1 ready, 0 timed out. */
static int wait_fd(int fd, short ev, double deadline) {
    for (;;) {
        int ms = ms_left(deadline);
        if (ms == 0) return 0;
        struct pollfd p = { .fd = fd, .events = ev };
        int r = poll(&p, 1, ms);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return 1; /* the read or write that follows reports it */
    }
}

/* write(2) with SIGPIPE blocked on this thread: a closed pipe is EPIPE.
 * The SIGPIPE it raised (thread-directed) is taken before the old mask
 * returns, unless one was pending before, which stays pending. */
static ssize_t write_no_sigpipe(int fd, const void *buf, size_t n) {
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    ssize_t w = write(fd, buf, n);
    int err = errno;
    if (w < 0 && err == EPIPE && !was_pending) {
        const struct timespec now = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    errno = err;
    return w;
}

static finch_status send_line(const char *s, size_t n, double deadline) {
    for (size_t done = 0; done < n;) {
        if (!wait_fd(g_jieba.to, POLLOUT, deadline))
            return finch_fail(FINCH_ERR_IO, "the segmenter did not read its input within %d s", answer_seconds());
        ssize_t w = write_no_sigpipe(g_jieba.to, s + done, n - done);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        /* a segmenter that exits fails the write or the read, whichever
         * comes first (a race): one message for both */
        if (w <= 0) return finch_fail(FINCH_ERR_IO, "the segmenter gave no answer (it exited?)");
        done += (size_t)w;
    }
    return FINCH_OK;
}

/* The helper's next line, NUL-terminated in place of its newline, at g_jieba.buf. */
static finch_status read_line(double deadline) {
    g_jieba.held -= g_jieba.used; /* drop the last answer */
    memmove(g_jieba.buf, g_jieba.buf + g_jieba.used, g_jieba.held);
    g_jieba.used = 0;
    for (;;) {
        char *nl = memchr(g_jieba.buf, '\n', g_jieba.held);
        if (nl) {
            *nl = '\0';
            g_jieba.used = (size_t)(nl - g_jieba.buf) + 1;
            return FINCH_OK;
        }
        if (g_jieba.cap - g_jieba.held < 4096) {
            char *b = g_jieba.cap < JIEBA_ANSWER_MAX ? realloc(g_jieba.buf, g_jieba.cap * 2) : NULL;
            if (!b) return finch_fail(FINCH_ERR_FORMAT, "the segmenter's answer is too long");
            g_jieba.buf = b;
            g_jieba.cap *= 2;
        }
        if (!wait_fd(g_jieba.from, POLLIN, deadline))
            return finch_fail(FINCH_ERR_IO, "the segmenter gave no answer within %d s", answer_seconds());
        ssize_t r = read(g_jieba.from, g_jieba.buf + g_jieba.held, g_jieba.cap - g_jieba.held - 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0 && g_jieba.held == 0) return finch_fail(FINCH_ERR_IO, "the segmenter gave no answer (it exited?)");
        if (r <= 0) { /* its last line without a newline: the answer as it is */
            g_jieba.buf[g_jieba.held] = '\n';
            g_jieba.held++;
        } else {
            g_jieba.held += (size_t)r;
        }
    }
}

static finch_status spawn(const char *cmd);

/* One text out, its words back. */
static finch_status segment(void *user, const char *text, char ***words, size_t *n) {
    (void)user;
    *words = NULL;
    *n = 0;
    finch_status st = g_jieba.pid < 0 ? spawn(g_jieba.cmd) : FINCH_OK; /* the first text starts it */
    if (st) return st;
    double deadline = finch_now() + answer_seconds();
    cJSON *s = cJSON_CreateString(text);
    char *out = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    if (!out) return finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    st = send_line(out, strlen(out), deadline);
    free(out);
    if (!st) st = send_line("\n", 1, deadline);
    if (!st) st = read_line(deadline);
    if (st) return st;
    cJSON *a = cJSON_Parse(g_jieba.buf), *w;
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return finch_fail(FINCH_ERR_FORMAT, "the segmenter's answer is not a JSON array of strings");
    }
    *words = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof **words);
    st = *words ? FINCH_OK : finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    cJSON_ArrayForEach(w, a) {
        if (st) break;
        if (!cJSON_IsString(w)) st = finch_fail(FINCH_ERR_FORMAT, "the segmenter's answer is not a JSON array of strings");
        else if (!((*words)[(*n)++] = strdup(w->valuestring))) st = finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    }
    cJSON_Delete(a);
    if (st) { finch_words_free(*words, *n); *words = NULL; *n = 0; }
    return st;
}

/* The helper on the far ends of two new pipes, ours non-blocking. */
static finch_status spawn(const char *cmd) {
    int in[2], out[2];
    if (!g_jieba.buf && !(g_jieba.buf = malloc(g_jieba.cap = 65536)))
        return finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    if (pipe(in)) return finch_fail(FINCH_ERR_IO, "cannot make pipes for the segmenter: %s", strerror(errno));
    if (pipe(out)) {
        close(in[0]); close(in[1]);
        return finch_fail(FINCH_ERR_IO, "cannot make pipes for the segmenter: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) { /* the helper: our pipes as its stdin and stdout */
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]); close(out[0]);
        return finch_fail(FINCH_ERR_IO, "cannot start the segmenter: %s", strerror(errno));
    }
    g_jieba.pid = pid;
    g_jieba.to = in[1];
    g_jieba.from = out[0];
    fcntl(g_jieba.to, F_SETFL, fcntl(g_jieba.to, F_GETFL) | O_NONBLOCK);
    fcntl(g_jieba.from, F_SETFL, fcntl(g_jieba.from, F_GETFL) | O_NONBLOCK);
    return FINCH_OK;
}

int cli_jieba_start(const char *cmd) {
    if (!cmd) return 0;
    g_jieba.cmd = cmd;
    finch_bench_set_segmenter(segment, NULL);
    return 0;
}

static bool needs_segmenter(const finch_eval_tasks *t) {
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].metric == FINCH_METRIC_QA_F1_ZH || t->items[i].metric == FINCH_METRIC_ROUGE_ZH) return true;
    return false;
}

int cli_jieba_check(const finch_eval_tasks *t) {
    if (!g_jieba.cmd || !needs_segmenter(t)) return 0;
    char **w = NULL; /* one word first: a command that cannot segment is refused before any work */
    size_t n = 0;
    finch_status st = segment(NULL, "测试", &w, &n);
    finch_words_free(w, n);
    if (!st) return 0;
    const char *cmd = g_jieba.cmd;
    cli_jieba_stop();
    return cli_error("--jieba '%s': %s", cmd, finch_last_error());
}

/* End its input, give it JIEBA_EXIT_SECONDS to exit, then kill it. */
void cli_jieba_stop(void) {
    finch_bench_set_segmenter(NULL, NULL);
    if (g_jieba.to >= 0) close(g_jieba.to);
    if (g_jieba.from >= 0) close(g_jieba.from);
    if (g_jieba.pid > 0) {
        double deadline = finch_now() + JIEBA_EXIT_SECONDS;
        while (waitpid(g_jieba.pid, NULL, WNOHANG) == 0) {
            if (finch_now() > deadline) {
                kill(g_jieba.pid, SIGKILL);
                waitpid(g_jieba.pid, NULL, 0);
                break;
            }
            nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        }
    }
    free(g_jieba.buf);
    memset(&g_jieba, 0, sizeof g_jieba); /* cmd too: no segmenter registered any more */
    g_jieba.pid = -1;
    g_jieba.to = g_jieba.from = -1;
}
