/* util.h - errors, checked size arithmetic, file mapping, half-float
 * conversion: the small pieces every module shares.  src/util/ holds this
 * (util.c), every file finch writes (outfile.c/.h: checked targets,
 * temporaries renamed into place) and the version and build commit
 * (version.c). */
#ifndef FINCH_UTIL_H
#define FINCH_UTIL_H

#include "finch.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Set the thread's error message (printf-style) and return `st`, so that
 * callers can write `return finch_fail(FINCH_ERR_FORMAT, "...", ...)`. */
finch_status finch_fail(finch_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current error message with context ("loading x.gguf: ..."). */
finch_status finch_fail_prefix(finch_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Checked arithmetic: return false on overflow. */
static inline bool finch_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool finch_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* malloc/calloc of n*size bytes with overflow check; NULL + error on failure. */
void *finch_alloc(size_t n, size_t size);
void *finch_zalloc(size_t n, size_t size);

/* A read-only mapping of a whole file (or, in read mode, a read-only copy
 * of it in memory; `mapped` bytes are released). */
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t mapped;
    bool private_copy; /* read into private memory (finch_load_reads), not mapped */
} finch_map;

finch_status finch_map_file(const char *path, finch_map *m);
/* Whether finch_map_file reads a regular file of `size` bytes into 2 MB-page
 * memory instead of mapping it (finch_set_load_mode in finch.h). */
bool finch_load_reads(size_t size);
void finch_unmap(finch_map *m);

/* The largest text finch reads (a context, a task file, a tokenizer's
 * JSON): a bound, so that /dev/zero or an endless pipe fails instead of
 * growing to gigabytes. */
#define FINCH_MAX_TEXT_BYTES ((size_t)256 << 20)

/* Read a whole file into a NUL-terminated malloc'ed buffer: at most
 * FINCH_MAX_TEXT_BYTES.  The text variant also refuses a NUL byte, checked
 * as it is read (JSON, JSONL: text by definition). */
finch_status finch_read_file(const char *path, char **buf, size_t *len);
finch_status finch_read_text_file(const char *path, char **buf, size_t *len);
/* The text variant for a file that must be a regular file (a model
 * directory's JSON): a FIFO or a device is refused before anything is
 * read, so that it cannot block the loader (as finch_map_file refuses). */
finch_status finch_read_regular_text_file(const char *path, char **buf, size_t *len);

/* A float's IEEE bits and back (bit-exact tests and emulations). */
static inline uint32_t finch_f32_bits(float f) {
    union { float f; uint32_t u; } v = { f };
    return v.u;
}
static inline float finch_f32_from_bits(uint32_t u) {
    union { uint32_t u; float f; } v = { u };
    return v.f;
}

/* IEEE half and bfloat16 <-> f32. */
float finch_f16_to_f32(uint16_t h);
uint16_t finch_f32_to_f16(float f);
static inline float finch_bf16_to_f32(uint16_t b) {
    union { uint32_t u; float f; } v = { (uint32_t)b << 16 };
    return v.f;
}
uint16_t finch_f32_to_bf16(float f); /* round to nearest even */

/* Dequantize/convert one row of n values of type t into f32. */
void finch_row_to_f32(finch_dtype t, const void *row, float *out, size_t n);
/* Quantize/convert n f32 values into one row of type t. */
void finch_row_from_f32(finch_dtype t, const float *in, void *row, size_t n);

/* Q8_0 block: scale d (f16) and 32 int8 quants; value = d * q. */
typedef struct {
    uint16_t d;
    int8_t qs[FINCH_QK8_0];
} finch_block_q8_0;

/* Number of online cores (>= 1). */
size_t finch_num_cores(void);
/* Monotonic seconds. */
double finch_now(void);

#endif
