/* cliutil.h - running the `finch` program from a test ($FINCH_BIN, else
 * build/finch) and reading what it printed. */
#ifndef FINCH_CLIUTIL_H
#define FINCH_CLIUTIL_H

#include "testutil.h"

#include <stdbool.h>
#include <sys/wait.h>
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

/* Run `finch ARGS` (shell-quoted); capture stdout and stderr into out_text
 * and err_text; return the exit code. */
static inline int run_finch(const char *args) {
    char cmd[8192], out_path[64], err_path[64];
    snprintf(out_path, sizeof out_path, "/tmp/finch-cli-out.%d", (int)getpid());
    snprintf(err_path, sizeof err_path, "/tmp/finch-cli-err.%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", finch_bin(), args, out_path, err_path);
    int rc = system(cmd);
    slurp(out_path, out_text, sizeof out_text);
    slurp(err_path, err_text, sizeof err_text);
    unlink(out_path);
    unlink(err_path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* A failure prints exactly one line on stderr, starting "finch: error: ". */
static inline void assert_one_line_error(void) {
    assert_true(strncmp(err_text, "finch: error: ", 14) == 0);
    char *nl = strchr(err_text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], 0);
}

#endif
