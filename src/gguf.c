/* gguf.c - GGUF v2/v3 reader and v3 writer.
 *
 * The reader trusts nothing: every count, length, offset and size comes from
 * the file, so each one is checked against the bytes that remain before it
 * is used (one bounds-checked cursor does all the reading).  Values are
 * little-endian on disk and decoded byte by byte; tensor data is used in
 * place, so it must be aligned for its element type. */
#include "gguf.h"
#include "outfile.h"
#include "quants.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DEPTH 2       /* an array of arrays is the deepest we accept */
#define KV_MIN_BYTES 13        /* key length + type + 1-byte value            */
#define TENSOR_MIN_BYTES 32    /* name length + n_dims + 1 dim + type + offset */
#define NAME_SHOWN(s) (int)((s).len < 64 ? (s).len : 64), (s).ptr

/* ------------------------------------------------------------ value types */

/* Bytes of one scalar of type t; 0 for STRING, ARRAY and unknown types. */
static size_t scalar_size(gguf_type t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static bool is_signed(gguf_type t) {
    return t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64;
}

static bool is_float(gguf_type t) { return t == GGUF_FLOAT32 || t == GGUF_FLOAT64; }

const char *gguf_type_name(gguf_type t) {
    static const char *names[GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
        "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Decode one little-endian scalar into the union slot its kind uses. */
static void decode_scalar(gguf_type t, const uint8_t *p, gguf_kv *out) {
    size_t n = scalar_size(t);
    uint64_t bits = load_le(p, n);
    if (t == GGUF_FLOAT32) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        out->v.f = f;
    } else if (t == GGUF_FLOAT64) {
        memcpy(&out->v.f, &bits, sizeof bits);
    } else if (is_signed(t)) { /* sign-extend from n bytes */
        unsigned shift = (unsigned)(64 - 8 * n);
        out->v.i = (int64_t)(bits << shift) >> shift;
    } else {
        out->v.u = bits;
    }
}

/* Bytes of a tensor of the given shape; checks the shape the same way for
 * the reader and the writer (FINCH_ERR_FORMAT on any problem). */
static finch_status tensor_nbytes(int name_len, const char *name, finch_dtype type,
                                  const uint64_t *ne, uint32_t n_dims, size_t *out) {
    if (n_dims < 1 || n_dims > 4)
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' has %u dims (1..4 allowed)",
                          name_len, name, n_dims);
    size_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > SIZE_MAX)
            return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' dim %u is %llu",
                              name_len, name, d, (unsigned long long)ne[d]);
        if (d > 0 && !finch_mul_ok(rows, (size_t)ne[d], &rows))
            return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' element count overflows",
                              name_len, name);
    }
    const finch_quant_traits *q = finch_quant_traits_of(type);
    if (q && ne[0] % q->block != 0)
        return finch_fail(FINCH_ERR_FORMAT, "%s tensor '%.*s' has ne[0] = %llu, not a multiple of its block size %zu",
                          q->name, name_len, name, (unsigned long long)ne[0], q->block);
    size_t row = finch_row_bytes(type, (size_t)ne[0]);
    if (row == 0 || !finch_mul_ok(row, rows, out))
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' byte size overflows", name_len, name);
    return FINCH_OK;
}

/* Tensor data is used in place: it must be aligned for its element type
 * (every quantized block is a multiple of 2 bytes with f16 scales). */
static size_t type_alignment(finch_dtype t) { return t == FINCH_F32 ? 4 : 2; }

/* ------------------------------------------------------------ read cursor */

typedef struct {
    const uint8_t *base;
    size_t size, pos;
} cursor;

static finch_status take(cursor *c, size_t n, const uint8_t **out, const char *what) {
    if (n > c->size - c->pos)
        return finch_fail(FINCH_ERR_FORMAT, "truncated: %s at offset %zu needs %zu bytes, %zu left",
                          what, c->pos, n, c->size - c->pos);
    *out = c->base + c->pos;
    c->pos += n;
    return FINCH_OK;
}

static finch_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p = NULL;
    finch_status st = take(c, 4, &p, what);
    if (st == FINCH_OK) *v = (uint32_t)load_le(p, 4);
    return st;
}

static finch_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p = NULL;
    finch_status st = take(c, 8, &p, what);
    if (st == FINCH_OK) *v = load_le(p, 8);
    return st;
}

static finch_status rd_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t n;
    const uint8_t *p = NULL;
    finch_status st = rd_u64(c, &n, what);
    if (st != FINCH_OK) return st;
    if (n > c->size - c->pos)
        return finch_fail(FINCH_ERR_FORMAT, "%s at offset %zu: length %llu runs past the end (%zu left)",
                          what, c->pos, (unsigned long long)n, c->size - c->pos);
    st = take(c, (size_t)n, &p, what);
    s->ptr = (const char *)p;
    s->len = (size_t)n;
    return st;
}

/* A u64 count of items that each take at least min_bytes: bounding it by
 * the bytes left keeps every later allocation proportional to the file. */
static finch_status rd_count(cursor *c, size_t min_bytes, size_t *n, const char *what) {
    uint64_t v;
    finch_status st = rd_u64(c, &v, what);
    if (st != FINCH_OK) return st;
    if (v > (c->size - c->pos) / min_bytes)
        return finch_fail(FINCH_ERR_FORMAT, "%s %llu exceeds what the remaining %zu bytes can hold",
                          what, (unsigned long long)v, c->size - c->pos);
    *n = (size_t)v;
    return FINCH_OK;
}

static finch_status check_bools(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] > 1) return finch_fail(FINCH_ERR_FORMAT, "bool value %u is not 0 or 1", p[i]);
    return FINCH_OK;
}

/* ---------------------------------------------------------------- values */

static finch_status parse_value(cursor *c, uint32_t type, int depth, bool keep, gguf_kv *kv);

/* An array: u32 element type, u64 count, elements.  String elements are
 * decoded into kv->v.arr.strs when `keep` (inner arrays are only walked). */
static finch_status parse_array(cursor *c, int depth, bool keep, gguf_kv *kv) {
    uint32_t et;
    finch_status st = rd_u32(c, &et, "array element type");
    if (st != FINCH_OK) return st;
    if (et >= GGUF_TYPE_COUNT)
        return finch_fail(FINCH_ERR_FORMAT, "array element type %u is not a GGUF type", et);
    if (et == GGUF_ARRAY && depth >= GGUF_MAX_DEPTH)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "arrays nested more than %d deep", GGUF_MAX_DEPTH);
    size_t esize = scalar_size(et);
    size_t min = esize ? esize : et == GGUF_STRING ? 8 : 12;
    size_t n;
    if ((st = rd_count(c, min, &n, "array count")) != FINCH_OK) return st;
    kv->v.arr.type = (gguf_type)et;
    kv->v.arr.n = n;
    kv->v.arr.data = c->base + c->pos;
    kv->v.arr.strs = NULL;
    if (esize) { /* n * esize cannot overflow: n <= bytes left / esize */
        const uint8_t *p = NULL;
        st = take(c, n * esize, &p, "array elements");
        return st == FINCH_OK && et == GGUF_BOOL ? check_bools(p, n) : st;
    }
    if (et == GGUF_STRING && keep && !(kv->v.arr.strs = finch_alloc(n ? n : 1, sizeof(gguf_str))))
        return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < n && st == FINCH_OK; i++) {
        gguf_kv elem = {0};
        st = parse_value(c, et, depth, false, &elem);
        if (kv->v.arr.strs) kv->v.arr.strs[i] = elem.v.s;
    }
    return st;
}

/* One value of the given type at nesting depth `depth` (0 = top level). */
static finch_status parse_value(cursor *c, uint32_t type, int depth, bool keep, gguf_kv *kv) {
    const uint8_t *p = NULL;
    finch_status st;
    if (type == GGUF_STRING) return rd_str(c, &kv->v.s, "string value");
    if (type == GGUF_ARRAY) return parse_array(c, depth + 1, keep, kv);
    size_t n = scalar_size((gguf_type)type);
    if (n == 0) return finch_fail(FINCH_ERR_FORMAT, "value type %u is not a GGUF type", type);
    if ((st = take(c, n, &p, "scalar value")) != FINCH_OK) return st;
    if (type == GGUF_BOOL && (st = check_bools(p, 1)) != FINCH_OK) return st;
    decode_scalar((gguf_type)type, p, kv);
    return FINCH_OK;
}

static finch_status parse_kv(cursor *c, gguf_kv *kv) {
    uint32_t type;
    finch_status st = rd_str(c, &kv->key, "metadata key");
    if (st == FINCH_OK && kv->key.len == 0)
        st = finch_fail(FINCH_ERR_FORMAT, "empty metadata key at offset %zu", c->pos);
    if (st == FINCH_OK) st = rd_u32(c, &type, "metadata type");
    if (st != FINCH_OK) return st;
    /* An unknown type fails in parse_value; until then record a harmless
     * one, since gguf_close looks at the type to free string arrays. */
    kv->type = type < GGUF_TYPE_COUNT ? (gguf_type)type : GGUF_UINT8;
    st = parse_value(c, type, 0, true, kv);
    return st == FINCH_OK ? st : finch_fail_prefix(st, "key '%.*s'", NAME_SHOWN(kv->key));
}

/* ------------------------------------------------------- duplicate checks */

static int str_cmp(const void *a, const void *b) {
    const gguf_str *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* Sorting makes this O(n log n), so a hostile file with many names stays
 * cheap.  `names` is reordered. */
static finch_status check_unique(gguf_str *names, size_t n, const char *what) {
    qsort(names, n, sizeof *names, str_cmp);
    for (size_t i = 1; i < n; i++)
        if (str_cmp(&names[i - 1], &names[i]) == 0)
            return finch_fail(FINCH_ERR_FORMAT, "duplicate %s '%.*s'", what, NAME_SHOWN(names[i]));
    return FINCH_OK;
}

/* ---------------------------------------------------------------- reader */

static finch_status parse_header(cursor *c, gguf_file *g) {
    if (c->size < 4 || memcmp(c->base, "GGUF", 4) != 0)
        return finch_fail(FINCH_ERR_FORMAT, "not a GGUF file (bad magic)");
    c->pos = 4;
    finch_status st = rd_u32(c, &g->version, "version");
    if (st != FINCH_OK) return st;
    if (g->version == 1)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "GGUF version 1 is not supported (only v2 and v3)");
    if (g->version != 2 && g->version != 3)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "GGUF version %u is not supported%s", g->version,
                          (g->version & 0xffff) == 0 ? " (big-endian file?)" : "");
    /* Checked here against the whole file; parse_tensor_infos checks it again
     * against what is left after the metadata. */
    if ((st = rd_count(c, TENSOR_MIN_BYTES, &g->n_tensors, "tensor count")) != FINCH_OK) return st;
    return rd_count(c, KV_MIN_BYTES, &g->n_kv, "metadata count");
}

static finch_status parse_kvs(cursor *c, gguf_file *g) {
    if (!(g->kv = finch_zalloc(g->n_kv, sizeof *g->kv))) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < g->n_kv; i++) {
        finch_status st = parse_kv(c, &g->kv[i]);
        if (st != FINCH_OK) return st;
    }
    gguf_str *keys = finch_alloc(g->n_kv, sizeof *keys);
    if (!keys) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < g->n_kv; i++) keys[i] = g->kv[i].key;
    finch_status st = check_unique(keys, g->n_kv, "metadata key");
    free(keys);
    return st;
}

static finch_status read_alignment(gguf_file *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(g, "general.alignment");
    if (!kv) return FINCH_OK;
    if (kv->type != GGUF_UINT32)
        return finch_fail(FINCH_ERR_FORMAT, "general.alignment has type %s, not u32",
                          gguf_type_name(kv->type));
    if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) != 0)
        return finch_fail(FINCH_ERR_FORMAT, "general.alignment %llu is not a power of two",
                          (unsigned long long)kv->v.u);
    g->alignment = (size_t)kv->v.u;
    return FINCH_OK;
}

static finch_status parse_tensor_info(cursor *c, size_t alignment, gguf_tensor *t) {
    uint32_t type;
    uint64_t offset;
    finch_status st = rd_str(c, &t->name, "tensor name");
    if (st == FINCH_OK && t->name.len == 0)
        st = finch_fail(FINCH_ERR_FORMAT, "empty tensor name at offset %zu", c->pos);
    if (st == FINCH_OK) st = rd_u32(c, &t->n_dims, "tensor n_dims");
    if (st == FINCH_OK && (t->n_dims < 1 || t->n_dims > 4))
        st = finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' has %u dims (1..4 allowed)",
                        NAME_SHOWN(t->name), t->n_dims);
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims && st == FINCH_OK; d++) st = rd_u64(c, &t->ne[d], "tensor dim");
    if (st == FINCH_OK) st = rd_u32(c, &type, "tensor type");
    if (st == FINCH_OK) st = rd_u64(c, &offset, "tensor offset");
    if (st != FINCH_OK) return st;
    if (!finch_weight_type_supported(type))
        return finch_fail(FINCH_ERR_UNSUPPORTED, "tensor '%.*s' has type id %u (%s); supported: %s",
                          NAME_SHOWN(t->name), type, finch_ggml_type_name(type), finch_supported_types());
    t->type = (finch_dtype)type;
    if (offset % alignment != 0)
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' offset %llu is not a multiple of the alignment %zu",
                          NAME_SHOWN(t->name), (unsigned long long)offset, alignment);
    if (offset > SIZE_MAX)
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' offset overflows", NAME_SHOWN(t->name));
    t->offset = (size_t)offset;
    return tensor_nbytes(NAME_SHOWN(t->name), t->type, t->ne, t->n_dims, &t->nbytes);
}

static finch_status parse_tensor_infos(cursor *c, gguf_file *g) {
    if (g->n_tensors > (c->size - c->pos) / TENSOR_MIN_BYTES)
        return finch_fail(FINCH_ERR_FORMAT, "tensor count %zu exceeds what the remaining %zu bytes can hold",
                          g->n_tensors, c->size - c->pos);
    if (!(g->tensors = finch_zalloc(g->n_tensors, sizeof *g->tensors))) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < g->n_tensors; i++) {
        finch_status st = parse_tensor_info(c, g->alignment, &g->tensors[i]);
        if (st != FINCH_OK) return st;
    }
    gguf_str *names = finch_alloc(g->n_tensors, sizeof *names);
    if (!names) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    finch_status st = check_unique(names, g->n_tensors, "tensor name");
    free(names);
    return st;
}

/* The data section starts at the next multiple of the alignment; every
 * tensor must lie inside the file and be aligned for its type. */
static finch_status place_tensors(const cursor *c, gguf_file *g) {
    if (g->n_tensors == 0) return FINCH_OK; /* vocab-only files end here */
    size_t pad = (g->alignment - c->pos % g->alignment) % g->alignment, start;
    if (!finch_add_ok(c->pos, pad, &start) || start > c->size)
        return finch_fail(FINCH_ERR_FORMAT, "data section would start past the end of the file");
    for (size_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        size_t begin, end;
        if (!finch_add_ok(start, t->offset, &begin) || !finch_add_ok(begin, t->nbytes, &end) ||
            end > c->size)
            return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' data (offset %zu, %zu bytes) lies outside the file (%zu bytes)",
                              NAME_SHOWN(t->name), t->offset, t->nbytes, c->size);
        t->data = c->base + begin;
        if ((uintptr_t)t->data % type_alignment(t->type) != 0)
            return finch_fail(FINCH_ERR_FORMAT, "tensor '%.*s' data is misaligned for %s",
                              NAME_SHOWN(t->name), finch_dtype_name(t->type));
    }
    return FINCH_OK;
}

finch_status gguf_parse(const uint8_t *data, size_t size, gguf_file *g) {
    memset(g, 0, sizeof *g);
    cursor c = {data, size, 0};
    finch_status st = parse_header(&c, g);
    if (st == FINCH_OK) st = parse_kvs(&c, g);
    if (st == FINCH_OK) st = read_alignment(g);
    if (st == FINCH_OK) st = parse_tensor_infos(&c, g);
    if (st == FINCH_OK) st = place_tensors(&c, g);
    if (st != FINCH_OK) gguf_close(g);
    return st;
}

finch_status gguf_open(const char *path, gguf_file *g) {
    finch_map m;
    memset(g, 0, sizeof *g);
    finch_status st = finch_map_file(path, &m);
    if (st != FINCH_OK) return st;
    st = gguf_parse(m.data, m.size, g);
    if (st != FINCH_OK) {
        finch_unmap(&m);
        return finch_fail_prefix(st, "%s", path);
    }
    g->map = m;
    return FINCH_OK;
}

void gguf_close(gguf_file *g) {
    if (g->kv)
        for (size_t i = 0; i < g->n_kv; i++)
            if (g->kv[i].type == GGUF_ARRAY) free(g->kv[i].v.arr.strs);
    free(g->kv);
    free(g->tensors);
    finch_unmap(&g->map);
    memset(g, 0, sizeof *g);
}

/* --------------------------------------------------------------- lookups */

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

bool gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || !scalar_size(kv->type) || is_float(kv->type)) return false;
    if (is_signed(kv->type) && kv->v.i < 0) return false;
    *out = kv->v.u; /* a non-negative i64 has the same bits */
    return true;
}

bool gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || !scalar_size(kv->type)) return false;
    *out = is_float(kv->type) ? (float)kv->v.f : is_signed(kv->type) ? (float)kv->v.i : (float)kv->v.u;
    return true;
}

bool gguf_get_str(const gguf_file *g, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->type != GGUF_STRING) return false;
    *out = kv->v.s;
    return true;
}

/* Element i of a numeric array decoded into a scratch kv; NULL if none. */
static bool arr_elem(const gguf_kv *kv, size_t i, gguf_kv *elem) {
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->v.arr.n) return false;
    size_t n = scalar_size(kv->v.arr.type);
    if (n == 0) return false;
    elem->type = kv->v.arr.type;
    decode_scalar(elem->type, kv->v.arr.data + i * n, elem);
    return true;
}

bool gguf_arr_get_i64(const gguf_kv *kv, size_t i, int64_t *out) {
    gguf_kv e;
    if (!arr_elem(kv, i, &e) || is_float(e.type)) return false;
    if (!is_signed(e.type) && e.v.u > INT64_MAX) return false;
    *out = e.v.i;
    return true;
}

bool gguf_arr_get_f32(const gguf_kv *kv, size_t i, float *out) {
    gguf_kv e;
    if (!arr_elem(kv, i, &e) || !is_float(e.type)) return false;
    *out = (float)e.v.f;
    return true;
}

/* ---------------------------------------------------------------- writer */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytebuf;

typedef struct {
    char *name;
    finch_dtype type;
    uint32_t n_dims;
    uint64_t ne[4];
    const void *data;
    size_t nbytes;
} wtensor;

struct gguf_writer {
    bytebuf kv;   /* the encoded key/value pairs, in insertion order */
    char **keys;  /* for duplicate detection */
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    size_t alignment;
};

/* Room for `need` elements of `elem` bytes in p (capacity *cap): returns
 * the possibly moved buffer, or NULL with p untouched and still owned. */
static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t ncap = *cap ? *cap : 16, bytes;
    while (ncap < need)
        if (!finch_mul_ok(ncap, 2, &ncap)) ncap = need;
    if (!finch_mul_ok(ncap, elem, &bytes)) {
        finch_fail(FINCH_ERR_NOMEM, "buffer size overflows");
        return NULL;
    }
    void *np = realloc(p, bytes);
    if (!np) finch_fail(FINCH_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", bytes);
    else *cap = ncap;
    return np;
}

static finch_status bb_put(bytebuf *b, const void *src, size_t n) {
    size_t need;
    if (!finch_add_ok(b->len, n, &need)) return finch_fail(FINCH_ERR_NOMEM, "buffer size overflows");
    uint8_t *p = grow(b->p, &b->cap, need, 1);
    if (!p) return FINCH_ERR_NOMEM;
    b->p = p;
    if (n) memcpy(b->p + b->len, src, n);
    b->len = need;
    return FINCH_OK;
}

static finch_status bb_le(bytebuf *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    return bb_put(b, tmp, n);
}

static finch_status bb_str(bytebuf *b, const char *s) {
    size_t n = strlen(s);
    finch_status st = bb_le(b, n, 8);
    return st == FINCH_OK ? bb_put(b, s, n) : st;
}

/* One scalar given as the C type matching t (host byte order). */
static finch_status bb_scalar(bytebuf *b, gguf_type t, const void *v) {
    size_t n = scalar_size(t);
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64 = 0;
    switch (n) {
    case 1: memcpy(&u8, v, 1); u64 = u8; break;
    case 2: memcpy(&u16, v, 2); u64 = u16; break;
    case 4: memcpy(&u32, v, 4); u64 = u32; break;
    case 8: memcpy(&u64, v, 8); break;
    }
    if (t == GGUF_BOOL) u64 = u64 != 0;
    return bb_le(b, u64, n);
}

finch_status gguf_writer_new(gguf_writer **w) {
    *w = finch_zalloc(1, sizeof **w);
    if (!*w) return FINCH_ERR_NOMEM;
    (*w)->alignment = GGUF_DEFAULT_ALIGNMENT;
    return FINCH_OK;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->keys);
    free(w->t);
    free(w->kv.p);
    free(w);
}

/* Start a pair: check the key, write it and the type.  The caller rolls
 * back to `mark` on failure, so a failed setter leaves the writer as is. */
static finch_status begin_kv(gguf_writer *w, const char *key, gguf_type t, size_t *mark) {
    *mark = w->kv.len;
    if (!key || !*key) return finch_fail(FINCH_ERR_ARG, "empty metadata key");
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return finch_fail(FINCH_ERR_ARG, "duplicate metadata key '%s'", key);
    if (strcmp(key, "general.alignment") == 0 && t != GGUF_UINT32)
        return finch_fail(FINCH_ERR_ARG, "general.alignment must be u32");
    finch_status st = bb_str(&w->kv, key);
    return st == FINCH_OK ? bb_le(&w->kv, (uint64_t)t, 4) : st;
}

static finch_status end_kv(gguf_writer *w, const char *key, size_t mark, finch_status st) {
    char *copy = NULL, **keys = NULL;
    if (st == FINCH_OK && !(keys = grow(w->keys, &w->cap_kv, w->n_kv + 1, sizeof *keys))) st = FINCH_ERR_NOMEM;
    if (keys) w->keys = keys;
    if (st == FINCH_OK && !(copy = strdup(key))) st = finch_fail(FINCH_ERR_NOMEM, "out of memory");
    if (st != FINCH_OK) {
        w->kv.len = mark;
        return st;
    }
    w->keys[w->n_kv++] = copy;
    return FINCH_OK;
}

finch_status gguf_set_val(gguf_writer *w, const char *key, gguf_type type, const void *v) {
    size_t mark;
    if (!scalar_size(type)) return finch_fail(FINCH_ERR_ARG, "gguf_set_val: %s is not a scalar type", gguf_type_name(type));
    finch_status st = begin_kv(w, key, type, &mark);
    if (st == FINCH_OK && strcmp(key, "general.alignment") == 0) {
        uint32_t a;
        memcpy(&a, v, sizeof a);
        if (a == 0 || (a & (a - 1)) != 0) st = finch_fail(FINCH_ERR_ARG, "alignment %u is not a power of two", a);
        else w->alignment = a;
    }
    if (st == FINCH_OK) st = bb_scalar(&w->kv, type, v);
    return end_kv(w, key, mark, st);
}

finch_status gguf_set_u32(gguf_writer *w, const char *key, uint32_t v) { return gguf_set_val(w, key, GGUF_UINT32, &v); }
finch_status gguf_set_i32(gguf_writer *w, const char *key, int32_t v) { return gguf_set_val(w, key, GGUF_INT32, &v); }
finch_status gguf_set_f32(gguf_writer *w, const char *key, float v) { return gguf_set_val(w, key, GGUF_FLOAT32, &v); }
finch_status gguf_set_bool(gguf_writer *w, const char *key, bool v) { return gguf_set_val(w, key, GGUF_BOOL, &v); }

finch_status gguf_set_str(gguf_writer *w, const char *key, const char *v) {
    size_t mark;
    finch_status st = begin_kv(w, key, GGUF_STRING, &mark);
    if (st == FINCH_OK) st = bb_str(&w->kv, v);
    return end_kv(w, key, mark, st);
}

finch_status gguf_set_arr(gguf_writer *w, const char *key, gguf_type elem, const void *v, size_t n) {
    size_t mark, esize = scalar_size(elem);
    if (!esize) return finch_fail(FINCH_ERR_ARG, "gguf_set_arr: %s is not a scalar type", gguf_type_name(elem));
    finch_status st = begin_kv(w, key, GGUF_ARRAY, &mark);
    if (st == FINCH_OK) st = bb_le(&w->kv, (uint64_t)elem, 4);
    if (st == FINCH_OK) st = bb_le(&w->kv, n, 8);
    for (size_t i = 0; i < n && st == FINCH_OK; i++)
        st = bb_scalar(&w->kv, elem, (const uint8_t *)v + i * esize);
    return end_kv(w, key, mark, st);
}

finch_status gguf_set_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n) {
    return gguf_set_arr(w, key, GGUF_FLOAT32, v, n);
}

finch_status gguf_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    return gguf_set_arr(w, key, GGUF_INT32, v, n);
}

finch_status gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n) {
    size_t mark;
    finch_status st = begin_kv(w, key, GGUF_ARRAY, &mark);
    if (st == FINCH_OK) st = bb_le(&w->kv, GGUF_STRING, 4);
    if (st == FINCH_OK) st = bb_le(&w->kv, n, 8);
    for (size_t i = 0; i < n && st == FINCH_OK; i++) st = bb_str(&w->kv, v[i]);
    return end_kv(w, key, mark, st);
}

finch_status gguf_add_tensor(gguf_writer *w, const char *name, finch_dtype type,
                             const uint64_t *ne, uint32_t n_dims, const void *data) {
    size_t nbytes;
    if (!name || !*name || !data) return finch_fail(FINCH_ERR_ARG, "gguf_add_tensor: missing name or data");
    if (!finch_weight_type_supported((uint32_t)type))
        return finch_fail(FINCH_ERR_ARG, "tensor '%s': unsupported type id %u", name, (unsigned)type);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return finch_fail(FINCH_ERR_ARG, "duplicate tensor '%s'", name);
    if (tensor_nbytes((int)strlen(name), name, type, ne, n_dims, &nbytes) != FINCH_OK)
        return finch_fail_prefix(FINCH_ERR_ARG, "gguf_add_tensor");
    wtensor *all = grow(w->t, &w->cap_t, w->n_t + 1, sizeof *all);
    if (!all) return FINCH_ERR_NOMEM;
    w->t = all;
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return finch_fail(FINCH_ERR_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return FINCH_OK;
}

static size_t pad_to(size_t n, size_t align) { return (align - n % align) % align; }

/* Everything before the data section: header, pairs, tensor infos, padding. */
static finch_status encode_head(const gguf_writer *w, bytebuf *b) {
    static const uint8_t zeros[1];
    finch_status st = bb_put(b, "GGUF", 4);
    if (st == FINCH_OK) st = bb_le(b, 3, 4);
    if (st == FINCH_OK) st = bb_le(b, w->n_t, 8);
    if (st == FINCH_OK) st = bb_le(b, w->n_kv, 8);
    if (st == FINCH_OK) st = bb_put(b, w->kv.p, w->kv.len);
    size_t offset = 0;
    for (size_t i = 0; i < w->n_t && st == FINCH_OK; i++) {
        const wtensor *t = &w->t[i];
        st = bb_str(b, t->name);
        if (st == FINCH_OK) st = bb_le(b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims && st == FINCH_OK; d++) st = bb_le(b, t->ne[d], 8);
        if (st == FINCH_OK) st = bb_le(b, (uint64_t)t->type, 4);
        if (st == FINCH_OK) st = bb_le(b, offset, 8);
        if (st == FINCH_OK && (!finch_add_ok(offset, t->nbytes, &offset) ||
                               !finch_add_ok(offset, pad_to(offset, w->alignment), &offset)))
            st = finch_fail(FINCH_ERR_ARG, "total tensor data overflows");
    }
    for (size_t pad = pad_to(b->len, w->alignment); pad > 0 && st == FINCH_OK; pad--)
        st = bb_put(b, zeros, 1);
    return st;
}

/* The writes go to an atomic output file (outfile.h): its commit reports
 * the first write error with the system's reason and leaves no partial file. */
static void write_zeros(FILE *f, size_t n) {
    static const uint8_t zeros[256];
    for (size_t k; n > 0; n -= k) {
        k = n < sizeof zeros ? n : sizeof zeros;
        fwrite(zeros, 1, k, f);
    }
}

static void write_body(const gguf_writer *w, const bytebuf *head, FILE *f) {
    fwrite(head->p, 1, head->len, f);
    for (size_t i = 0; i < w->n_t && !ferror(f); i++) {
        if (w->t[i].nbytes) fwrite(w->t[i].data, 1, w->t[i].nbytes, f);
        write_zeros(f, pad_to(w->t[i].nbytes, w->alignment)); /* offsets stay aligned */
    }
}

finch_status gguf_write_file(gguf_writer *w, const char *path) {
    bytebuf head = {0};
    finch_status st = encode_head(w, &head);
    finch_outfile o;
    if (st == FINCH_OK && (st = finch_outfile_open(&o, path)) == FINCH_OK) {
        write_body(w, &head, o.f);
        st = finch_outfile_commit(&o);
    }
    free(head.p);
    return st;
}
