/* testutil.h - shared helpers for the cmocka suites: where assets and
 * fixtures live, and array comparison with a reported maximum error. */
#ifndef FINCH_TESTUTIL_H
#define FINCH_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "finch.h"

/* Path of an asset under ../shared/assets (or $FINCH_ASSETS); NULL when it
 * does not exist, so the caller can skip(). Returns a static buffer. */
static inline const char *test_asset(const char *rel) {
    static char buf[4096];
    const char *root = getenv("FINCH_ASSETS");
    if (!root || !*root) root = "../shared/assets";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

/* Path under testdata/ (tests run from the repository root). */
static inline const char *test_data(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "testdata/%s", rel);
    return buf;
}

#define SKIP_MSG(...) do { fprintf(stderr, "SKIP: " __VA_ARGS__); fprintf(stderr, "\n"); skip(); } while (0)

/* Max |a - b| over n floats (NaN counts as infinite). */
static inline double test_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

/* Normalised MSE: sum (a-b)^2 / sum b^2. */
static inline double test_nmse(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? num / den : num;
}

#define assert_ok(expr) do { finch_status st_ = (expr); \
    if (st_ != FINCH_OK) fail_msg("%s -> %s: %s", #expr, finch_status_name(st_), finch_last_error()); } while (0)

/* Load testdata/<rel>; NULL when the file is absent (the caller skips). */
static inline finch_model *test_load_data_model(const char *rel) {
    const char *path = test_data(rel);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fclose(f);
    finch_model *m = NULL;
    finch_status st = finch_model_load(path, &m);
    if (st != FINCH_OK) fail_msg("load %s: %s", rel, finch_last_error());
    return m;
}

/* A fresh directory /tmp/<prefix>-XXXXXX in dir[cap], and its removal with
 * the files in it (the suites write no subdirectories). */
static inline void test_make_tmpdir(char *dir, size_t cap, const char *prefix) {
    snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(dir));
}

static inline void test_remove_tmpdir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

#endif
