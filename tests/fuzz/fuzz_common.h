/* fuzz_common.h - what the libFuzzer targets in tests/fuzz/ share.
 *
 * Each target is one file with LLVMFuzzerTestOneInput; `make fuzz` (fuzz.mk)
 * builds them with clang -fsanitize=fuzzer,address,undefined and runs them
 * from the repository root, so the paths below are relative to it.
 *
 * What a target checks: the parser returns, with FINCH_OK or one of the
 * documented statuses and a non-empty message; the sanitizers check that it
 * reads nothing it should not, leaks nothing and has no undefined behaviour
 * on the way.  When a parse succeeds the target walks the result (every
 * key, every tensor's bytes), so a parser that accepts a lie is caught
 * there. */
#ifndef FINCH_FUZZ_COMMON_H
#define FINCH_FUZZ_COMMON_H

#include "finch.h"
#include "tokenizer.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A status that is not one a parser may return, or an error without a
 * message, is a bug worth stopping for. */
static inline void fuzz_check_status(finch_status st) {
    static int verbose = -1; /* FINCH_FUZZ_VERBOSE=1: say why each input was refused */
    if (verbose < 0) verbose = getenv("FINCH_FUZZ_VERBOSE") != NULL;
    if (verbose) dprintf(2, "fuzz: %s%s%s\n", finch_status_name(st), st ? ": " : "", st ? finch_last_error() : "");
    if (st == FINCH_OK) return;
    if (st < FINCH_ERR_IO || st > FINCH_ERR_INTERNAL || st == FINCH_ERR_INTERNAL) {
        fprintf(stderr, "fuzz: unexpected status %d: %s\n", (int)st, finch_last_error());
        abort();
    }
    if (finch_last_error()[0] == 0) {
        fprintf(stderr, "fuzz: status %d without a message\n", (int)st);
        abort();
    }
}

/* Touch every byte of a region: under ASan a read outside the input shows
 * up here instead of somewhere random later.  The sum keeps the loop. */
static volatile uint8_t fuzz_sink;
static inline void fuzz_touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc ^= b[i];
    fuzz_sink ^= acc;
}

/* Convert the first rows of a tensor with the library's row converter
 * (bounded, so a large valid tensor does not slow the fuzzer down). */
static inline void fuzz_rows(finch_dtype type, const void *data, size_t nbytes, uint64_t ne0) {
    if (ne0 == 0 || ne0 > (1u << 16)) return;
    size_t row = finch_row_bytes(type, (size_t)ne0);
    if (row == 0 || row > nbytes) return;
    float *buf = malloc((size_t)ne0 * sizeof(float));
    if (!buf) return;
    size_t rows = nbytes / row;
    for (size_t r = 0; r < rows && r < 4; r++)
        finch_row_to_f32(type, (const uint8_t *)data + r * row, buf, (size_t)ne0);
    free(buf);
}

/* The input as a file that path-based loaders can open: a memfd named by
 * /proc/self/fd/N, so nothing touches the disk.  Returns the fd (-1 on
 * failure) and fills path. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("finch-fuzz", 0);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Path of an asset under ../shared/assets (or $FINCH_ASSETS); NULL when it
 * does not exist.  Returns a static buffer. */
static inline const char *fuzz_asset(const char *rel) {
    static char buf[4096];
    const char *root = getenv("FINCH_ASSETS");
    if (!root || !*root) root = "../shared/assets";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

/* Library code never prints; the CLI does, once per rejected argument
 * list.  Sending stdio's stderr to /dev/null keeps the fuzzer's log
 * readable; the sanitizers and libFuzzer write to file descriptor 2
 * directly and are not affected. */
static inline void fuzz_quiet_stdio(void) {
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        stderr = null;
        stdout = null;
    }
}

/* A tokenizer that loaded from fuzzed bytes: its accessors stay in range,
 * it encodes a few fixed texts and `tail` (ids in the vocabulary, each one
 * decodable), decodes out-of-range ids to nothing, and writes itself back
 * as GGUF metadata. */
static inline void fuzz_tokenizer_encode(const finch_tokenizer *t, const char *text, size_t len) {
    char buf[256];
    for (int add_bos = 0; add_bos < 2; add_bos++) {
        int32_t *ids = NULL;
        size_t n = 0;
        finch_status st = finch_tokenize(t, text, len, add_bos, &ids, &n);
        fuzz_check_status(st);
        if (st != FINCH_OK) continue;
        size_t vocab = finch_tokenizer_vocab(t);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || (size_t)ids[i] >= vocab) abort();
            size_t b = finch_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
            if (b > sizeof buf) abort();
        }
        free(ids);
    }
}

static inline void fuzz_tokenizer_walk(const finch_tokenizer *t, const char *tail, size_t tail_len) {
    static const char *const texts[] = {
        "Hello world", " leading  spaces\n\ttabs", "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82",
        "<s>x</s><|endoftext|>", "12345 don't I'm", "\xff\xfe bad utf-8 \xc3", "",
    };
    size_t vocab = finch_tokenizer_vocab(t);
    int32_t bos = finch_tokenizer_bos(t), eos = finch_tokenizer_eos(t);
    if (bos < -1 || eos < -1 || (bos >= 0 && (size_t)bos >= vocab) || (eos >= 0 && (size_t)eos >= vocab)) abort();
    fuzz_touch(finch_tokenizer_kind(t), strlen(finch_tokenizer_kind(t)));
    (void)finch_tokenizer_add_bos(t);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) fuzz_tokenizer_encode(t, texts[i], strlen(texts[i]));
    fuzz_tokenizer_encode(t, tail, tail_len);
    char buf[64];
    int32_t probe[] = { -1, 0, 1, (int32_t)vocab - 1, (int32_t)vocab, INT32_MAX, INT32_MIN };
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++)
        (void)finch_token_to_bytes(t, bos, probe[i], buf, sizeof buf);
    (void)finch_token_to_bytes(t, -1, 0, buf, 0);
    gguf_writer *w = NULL;
    if (gguf_writer_new(&w) == FINCH_OK) {
        fuzz_check_status(finch_tokenizer_to_gguf(t, w));
        gguf_writer_free(w);
    }
}

#endif
