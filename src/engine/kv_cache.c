/* kv_cache.c - the KV cache's two storage types (include/finch.h,
 * finch_cache_type): every reader and writer that must not care whether a
 * row is f32 or f16 goes through these.  f16 rows are converted with the
 * kernels' conversions (F16C on x86), whose bits every ISA shares. */
#include "finch.h"
#include "kernels.h"
#include "util.h"

#include <string.h>

const char *finch_cache_type_name(finch_cache_type t) { return t == FINCH_CACHE_F16 ? "f16" : "f32"; }

finch_status finch_cache_type_parse(const char *s, finch_cache_type *out) {
    if (!strcmp(s, "f32")) *out = FINCH_CACHE_F32;
    else if (!strcmp(s, "f16")) *out = FINCH_CACHE_F16;
    else return finch_fail(FINCH_ERR_ARG, "cache type '%.32s' is not supported (f32 or f16)", s);
    return FINCH_OK;
}

size_t finch_kv_value_bytes(const finch_kv_cache *kv) {
    return kv->type == FINCH_CACHE_F16 ? sizeof(uint16_t) : sizeof(float);
}

/* Index of row `pos` of layer l, head g (in values). */
static size_t row_index(const finch_kv_cache *kv, size_t l, size_t g, size_t pos) {
    return ((l * kv->n_kv_head + g) * kv->capacity + pos) * kv->head_dim;
}

const float *finch_kv_key_f32(const finch_kv_cache *kv, size_t l, size_t g, size_t pos, float *tmp) {
    if (kv->type != FINCH_CACHE_F16) return kv->k + row_index(kv, l, g, pos);
    finch_f16_to_f32_row(kv->k16 + row_index(kv, l, g, pos), tmp, kv->head_dim);
    return tmp;
}

const float *finch_kv_value_f32(const finch_kv_cache *kv, size_t l, size_t g, size_t pos, float *tmp) {
    if (kv->type != FINCH_CACHE_F16) return kv->v + row_index(kv, l, g, pos);
    finch_f16_to_f32_row(kv->v16 + row_index(kv, l, g, pos), tmp, kv->head_dim);
    return tmp;
}

/* n rows from row `at` of one side of the cache (f32 base or f16 base16)
 * into out as f32. */
static void read_rows(const finch_kv_cache *kv, const float *base, const uint16_t *base16, size_t at,
                      size_t n, float *out) {
    if (kv->type == FINCH_CACHE_F16) finch_f16_to_f32_row(base16 + at, out, n * kv->head_dim);
    else memcpy(out, base + at, n * kv->head_dim * sizeof(float));
}

void finch_kv_read(const finch_kv_cache *kv, size_t l, size_t g, size_t pos, size_t n, float *keys,
                   float *values) {
    size_t at = row_index(kv, l, g, pos);
    if (keys) read_rows(kv, kv->k, kv->k16, at, n, keys);
    if (values) read_rows(kv, kv->v, kv->v16, at, n, values);
}

static void write_rows(const finch_kv_cache *kv, float *base, uint16_t *base16, size_t at, size_t n,
                       const float *in) {
    if (kv->type == FINCH_CACHE_F16) finch_f32_to_f16_row(in, base16 + at, n * kv->head_dim);
    else memcpy(base + at, in, n * kv->head_dim * sizeof(float));
}

void finch_kv_write(finch_kv_cache *kv, size_t l, size_t g, size_t pos, size_t n, const float *keys,
                    const float *values) {
    size_t at = row_index(kv, l, g, pos);
    if (keys) write_rows(kv, kv->k, kv->k16, at, n, keys);
    if (values) write_rows(kv, kv->v, kv->v16, at, n, values);
}

void finch_kv_shift_key(const finch_ctx *c, finch_kv_cache *kv, size_t l, size_t g, size_t pos, long delta) {
    if (kv->type != FINCH_CACHE_F16) {
        finch_rope_shift(c, l, finch_kv_k(kv, l, g, pos), delta);
        return;
    }
    float key[FINCH_KV_MAX_HEAD_DIM];
    finch_kv_read(kv, l, g, pos, 1, key, NULL);
    finch_rope_shift(c, l, key, delta);
    finch_kv_write(kv, l, g, pos, 1, key, NULL);
}

/* Byte address of row 0 of layer l, head g, keys or values, either type. */
static char *head_base(const finch_kv_cache *kv, bool keys, size_t l, size_t g) {
    char *base = kv->type == FINCH_CACHE_F16 ? (char *)(keys ? kv->k16 : kv->v16) : (char *)(keys ? kv->k : kv->v);
    return base + (l * kv->n_kv_head + g) * kv->capacity * kv->head_dim * finch_kv_value_bytes(kv);
}

void finch_kv_copy_rows(finch_kv_cache *dst, const finch_kv_cache *src) {
    size_t row = src->head_dim * finch_kv_value_bytes(src);
    for (size_t l = 0; l < src->n_layer; l++) {
        for (size_t g = 0; g < src->n_kv_head; g++)
            for (int keys = 0; keys < 2; keys++)
                memcpy(head_base(dst, keys, l, g), head_base(src, keys, l, g), src->n_pos[l] * row);
        dst->n_pos[l] = src->n_pos[l];
    }
}

void finch_kv_gather(finch_kv_cache *kv, size_t l, size_t g, const size_t *idx, size_t n) {
    size_t row = kv->head_dim * finch_kv_value_bytes(kv);
    char *k = head_base(kv, true, l, g), *v = head_base(kv, false, l, g);
    for (size_t j = 0; j < n; j++) { /* idx ascending and idx[j] >= j: moves go backwards only */
        if (idx[j] == j) continue;
        memmove(k + j * row, k + idx[j] * row, row);
        memmove(v + j * row, v + idx[j] * row, row);
        if (kv->dead) {
            uint8_t *d = kv->dead + (l * kv->n_kv_head + g) * kv->capacity;
            d[j] = d[idx[j]];
        }
    }
}
