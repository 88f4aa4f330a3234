/* hf_frame.h - the framing of fuzz_hf_dir's inputs, shared with
 * tests/test_fuzz_regressions.c so a saved input is replayed as the same
 * directory.
 *
 * An input is the text of config.json, then any number of files, each
 * introduced by a line "\n##file NAME\n" and running to the next such line
 * or the end.  NAME is 1..64 of [A-Za-z0-9._-] (not "." or ".."), otherwise
 * the file is dropped; a later file of the same name replaces an earlier
 * one; at most HF_FRAME_MAX_FILES files are written. */
#ifndef FINCH_HF_FRAME_H
#define FINCH_HF_FRAME_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HF_FRAME_SEP "\n##file "
#define HF_FRAME_MAX_FILES 8

static inline bool hf_frame_name_ok(const char *s, size_t n) {
    if (n == 0 || n > 64 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static inline bool hf_frame_write_file(const char *dir, const char *name, size_t name_len, const uint8_t *data,
                                       size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%.*s", dir, (int)name_len, name);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = n == 0 || fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Write the files of data[0..size) into dir (which exists); false when a
 * file cannot be written. */
static inline bool hf_frame_write(const char *dir, const uint8_t *data, size_t size) {
    const uint8_t *end = data + size, *p = data;
    const char *name = "config.json";
    size_t name_len = strlen(name), sep_len = strlen(HF_FRAME_SEP);
    for (int files = 0; files < HF_FRAME_MAX_FILES; files++) {
        const uint8_t *sep = memmem(p, (size_t)(end - p), HF_FRAME_SEP, sep_len);
        const uint8_t *stop = sep ? sep : end;
        if (hf_frame_name_ok(name, name_len) && !hf_frame_write_file(dir, name, name_len, p, (size_t)(stop - p)))
            return false;
        if (!sep) return true;
        name = (const char *)sep + sep_len;
        const uint8_t *nl = memchr(name, '\n', (size_t)(end - (const uint8_t *)name));
        if (!nl) return true;
        name_len = (size_t)(nl - (const uint8_t *)name);
        p = nl + 1;
    }
    return true;
}

#endif
