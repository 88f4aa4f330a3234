/* cliutil.h - running the `finch` program from a test ($FINCH_BIN, else
 * build/finch) and reading what it printed. */
#ifndef FINCH_CLIUTIL_H
#define FINCH_CLIUTIL_H

#include "testutil.h"

#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline const char *finch_bin(void) {
    const char *b = getenv("FINCH_BIN");
    return b && *b ? b : "build/finch";
}

static char out_text[1 << 18], err_text[1 << 16];

static inline void slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

/* Run `finch ARGS` (shell-quoted) with stdout sent as the shell redirection
 * `out` says (NULL: captured into out_text); stderr into err_text; return
 * the exit code. */
static inline int run_finch_stdout(const char *args, const char *out) {
    char cmd[8192], out_path[64], err_path[64];
    snprintf(out_path, sizeof out_path, "/tmp/finch-cli-out.%d", (int)getpid());
    snprintf(err_path, sizeof err_path, "/tmp/finch-cli-err.%d", (int)getpid());
    if (out) snprintf(cmd, sizeof cmd, "%s %s %s 2>%s", finch_bin(), args, out, err_path);
    else snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", finch_bin(), args, out_path, err_path);
    int rc = system(cmd);
    slurp(out_path, out_text, sizeof out_text);
    slurp(err_path, err_text, sizeof err_text);
    unlink(out_path);
    unlink(err_path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Run `finch ARGS`; stdout into out_text, stderr into err_text. */
static inline int run_finch(const char *args) { return run_finch_stdout(args, NULL); }

/* A failure prints exactly one line on stderr, starting "finch: error: ". */
static inline void assert_one_line_error(void) {
    assert_true(strncmp(err_text, "finch: error: ", 14) == 0);
    char *nl = strchr(err_text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], 0);
}

/* Start `finch ARGV...` (argv[0] is the first argument after the program)
 * with stdout and stderr on the given descriptors (-1: /dev/null); returns
 * the child's pid.  For tests that signal a running finch. */
static inline pid_t spawn_finch(const char *const *args, int out_fd, int err_fd) {
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        dup2(err_fd >= 0 ? err_fd : null, 2);
        /* A job started in the background by a non-interactive shell (CI
         * runners do) inherits SIGINT and SIGQUIT ignored, and finch
         * rightly keeps an inherited SIG_IGN: give the child the defaults
         * so that the signal tests see what an interactive user sees. */
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        char *argv[64];
        size_t n = 0;
        argv[n++] = (char *)finch_bin();
        for (; args[n - 1] && n < 63; n++) argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(finch_bin(), argv);
        _exit(127);
    }
    return pid;
}

/* Seconds a test waits for a spawned finch (each does seconds of work). */
#ifndef CHILD_WAIT_SECONDS
#define CHILD_WAIT_SECONDS 120
#endif

/* The exit code of a child (1000 + the signal when killed by one), waited
 * for at most CHILD_WAIT_SECONDS: one still running then is killed and
 * reported as -2, so a hang fails the test instead of hanging the suite. */
static inline int wait_exit_code(pid_t pid) {
    const struct timespec ms = { 0, 1000000 };
    int status;
    for (long waited_ms = 0; waited_ms < CHILD_WAIT_SECONDS * 1000L; waited_ms++) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got < 0) return -1;
        if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
        nanosleep(&ms, NULL);
    }
    fprintf(stderr, "finch (pid %d) still running after %d s: killed\n", (int)pid, CHILD_WAIT_SECONDS);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -2;
}

/* A file with known text, and the check that it still holds exactly that. */
static inline void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static inline void assert_file_holds(const char *path, const char *text) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s is gone", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strcmp(buf, text)) fail_msg("%s changed: '%s'", path, buf);
}

/* Names in dir containing `part` (temporaries: ".tmp."). */
static inline int count_names_with(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

#endif
