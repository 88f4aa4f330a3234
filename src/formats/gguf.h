/* gguf.h - GGUF v2/v3 reader (mmap) and writer.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 n_tensors,
 * u64 n_kv, then n_kv metadata pairs (string key, u32 type, value), then
 * n_tensors infos (string name, u32 n_dims, u64 dims[n_dims], u32 type,
 * u64 offset), padding to `general.alignment` (default 32), tensor data.
 * Strings are u64 length + bytes (not NUL-terminated). */
#ifndef FINCH_GGUF_H
#define FINCH_GGUF_H

#include "util.h"

typedef enum {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12, GGUF_TYPE_COUNT
} gguf_type;

typedef struct {
    const char *ptr; /* not NUL-terminated; points into the mapping */
    size_t len;
} gguf_str;

/* One metadata value.  Scalars are decoded; strings point into the file;
 * arrays keep their element type, count and a pointer to the first element
 * in the file.  Elements of numeric arrays may be unaligned: read them with
 * gguf_arr_get_i64 / gguf_arr_get_f32.  String arrays are decoded into
 * `strs`.  Arrays of arrays (one level of nesting) are validated but only
 * their count and position are kept. */
typedef struct {
    gguf_str key;
    gguf_type type;
    union {
        uint64_t u;   /* all unsigned ints and bool */
        int64_t i;    /* signed ints */
        double f;     /* float32 / float64 */
        gguf_str s;
        struct {
            gguf_type type;
            size_t n;
            const uint8_t *data;
            gguf_str *strs; /* decoded element strings when type == STRING */
        } arr;
    } v;
} gguf_kv;

/* A tensor as stored: ne[0] is the innermost (contiguous) dimension, so a
 * 2-D weight W [rows, cols] has ne[0] = cols, ne[1] = rows. */
typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];
    finch_dtype type;
    size_t offset;  /* relative to the data section */
    size_t nbytes;
    const void *data;
} gguf_tensor;

typedef struct {
    finch_map map;
    uint32_t version;
    size_t alignment;
    size_t n_kv;
    gguf_kv *kv;
    size_t n_tensors;
    gguf_tensor *tensors;
} gguf_file;

/* Open and validate a GGUF file: every count, length, offset and size is
 * checked against the file before use. */
finch_status gguf_open(const char *path, gguf_file *g);
/* Parse an in-memory buffer (used by the fuzzer); the buffer must outlive g
 * and is not owned by it (g->map stays empty). */
finch_status gguf_parse(const uint8_t *data, size_t size, gguf_file *g);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
bool gguf_str_eq(gguf_str s, const char *c);
/* Typed getters: return false when the key is absent or not convertible. */
bool gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out);
bool gguf_get_f32(const gguf_file *g, const char *key, float *out);
bool gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Element i of a numeric array: integer/bool elements as i64 (false for a
 * u64 above INT64_MAX), float elements as f32.  False when kv is not such
 * an array or i is out of range. */
bool gguf_arr_get_i64(const gguf_kv *kv, size_t i, int64_t *out);
bool gguf_arr_get_f32(const gguf_kv *kv, size_t i, float *out);
const char *gguf_type_name(gguf_type t);

/* ---- writer: collect metadata and tensors, then write in one go ---- */
typedef struct gguf_writer gguf_writer;
finch_status gguf_writer_new(gguf_writer **w);
void gguf_writer_free(gguf_writer *w);
finch_status gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
finch_status gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
finch_status gguf_set_f32(gguf_writer *w, const char *key, float v);
finch_status gguf_set_bool(gguf_writer *w, const char *key, bool v);
finch_status gguf_set_str(gguf_writer *w, const char *key, const char *v);
/* Arrays: elements copied.  Strings: n NUL-terminated strings. */
finch_status gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n);
finch_status gguf_set_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n);
finch_status gguf_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* Any scalar type (not STRING/ARRAY): v points to a value of the matching C
 * type (uint8_t, int8_t, ..., bool, float, double). */
finch_status gguf_set_val(gguf_writer *w, const char *key, gguf_type type, const void *v);
/* An array of n scalars of type elem (not STRING/ARRAY), C types as above. */
finch_status gguf_set_arr(gguf_writer *w, const char *key, gguf_type elem, const void *v, size_t n);
/* Add a tensor with GGUF dims (ne[0] innermost); data copied at write time
 * from `data`, which must stay valid until gguf_write_file returns. */
finch_status gguf_add_tensor(gguf_writer *w, const char *name, finch_dtype type,
                             const uint64_t *ne, uint32_t n_dims, const void *data);
/* Write GGUF v3 to path via a temporary file in the same directory renamed
 * into place, so a failure leaves no partial file.  Alignment is 32 unless
 * "general.alignment" was set (u32, power of two). */
finch_status gguf_write_file(gguf_writer *w, const char *path);

#endif
