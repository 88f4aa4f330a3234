/* peer_common.h - what tools/finch_logits.c and tools/llamacpp_logits.c
 * share: token ids from the command line, the refusal of an output path
 * that is not a regular file, and the printed summary of logits rows.
 * Header-only (each tool is one file), and without finch.h: llamacpp_logits
 * stays apart from finch (libfinch.a's gguf_* symbols would replace
 * ggml's; libfinch.so exports finch_* only). */
#ifndef FINCH_PEER_COMMON_H
#define FINCH_PEER_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "1,2,3" -> malloc'ed ids: non-negative integers below 2^31.  Returns 0,
 * or 2 after printing "TOOL: --ids ...: ..." on stderr. */
static inline int peer_parse_id_list(const char *tool, const char *s, int32_t **ids, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    if (!*ids) {
        fprintf(stderr, "%s: out of memory\n", tool);
        return 1;
    }
    *n = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "%s: --ids %s: expected comma-separated token ids\n", tool, s);
            return 2;
        }
        (*ids)[(*n)++] = (int32_t)v;
        if (!*end) return 0;
        p = end + 1;
    }
}

/* Both tools write the .npy under a temporary name and rename it over the
 * path: never over a device (-o /dev/null as root would replace it).  0, or
 * 2 with the message. */
static inline int peer_check_output(const char *tool, const char *path) {
    struct stat st;
    if (path && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: -o %s: exists and is not a regular file\n", tool, path);
        return 2;
    }
    return 0;
}

/* Each row's argmax (ties to the smaller id) and first four logits. */
static inline void peer_print_rows(const float *x, size_t rows, size_t vocab) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * vocab;
        size_t best = 0;
        for (size_t j = 1; j < vocab; j++)
            if (row[j] > row[best]) best = j;
        printf("row %zu argmax %zu logits %.7g %.7g %.7g %.7g\n", r, best, row[0], row[1 % vocab],
               row[2 % vocab], row[3 % vocab]);
    }
}

#endif
