/* npy.c - the NumPy .npy format: our own small reader (versions 1-3) and writer (1.0).
 *
 * File: "\x93NUMPY", major 1, minor 0, u16 header length, a Python-dict
 * header {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), }
 * padded with spaces to a multiple of 64 bytes and ending in '\n', then the
 * raw little-endian data in C order.  Versions 2 and 3 differ only in a
 * u32 header length.  The reader trusts nothing: the header is parsed as
 * the small Python dict literal numpy writes (exactly the three keys, each
 * once), never read past its length, and the data must be exactly what the
 * shape implies. */
#include "npy.h"
#include "outfile.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPY_MAX_DIMS 8

static size_t shape_count(const size_t *shape, size_t ndim, bool *ok) {
    size_t n = 1;
    *ok = true;
    for (size_t i = 0; i < ndim; i++)
        if (!finch_mul_ok(n, shape[i], &n)) *ok = false;
    return n;
}

/* ------------------------------------------------------------------ write */

finch_status finch_npy_write(const char *path, finch_npy_type t, const void *data,
                             const size_t *shape, size_t ndim) {
    if (ndim > NPY_MAX_DIMS) return finch_fail(FINCH_ERR_ARG, "npy: %zu dimensions", ndim);
    bool ok;
    size_t count = shape_count(shape, ndim, &ok), bytes;
    if (!ok || !finch_mul_ok(count, 4, &bytes)) return finch_fail(FINCH_ERR_ARG, "npy: shape overflows");

    char dict[512], dims[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < ndim; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%zu%s", shape[i],
                                 ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       t == FINCH_NPY_F32 ? "<f4" : "<i4", dims);
    size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
    size_t header_len = (size_t)len + pad + 1;

    finch_outfile o;
    finch_status st = finch_outfile_open(&o, path);
    if (st) return st;
    unsigned char magic[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                (unsigned char)(header_len & 0xff), (unsigned char)(header_len >> 8) };
    fwrite(magic, 1, 10, o.f);
    fwrite(dict, 1, (size_t)len, o.f);
    for (size_t i = 0; i < pad; i++) fputc(' ', o.f);
    fputc('\n', o.f);
    if (bytes) fwrite(data, 1, bytes, o.f);
    if ((st = finch_outfile_commit(&o))) return st; /* the first failure's reason, no partial file */
    return FINCH_OK;
}

/* ------------------------------------------------------------------- read */

#define NPY_MAX_HEADER 65536 /* numpy itself refuses longer headers by default */

/* A cursor over the header text, which is not NUL-terminated. */
typedef struct {
    const char *p, *end;
} hscan;

static void skip_space(hscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static bool eat(hscan *s, char c) {
    skip_space(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A quoted string, 'x' or "x"; no escapes (no value we accept has any). */
static bool quoted(hscan *s, const char **str, size_t *len) {
    skip_space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) return false;
    char q = *s->p++;
    const char *start = s->p;
    while (s->p < s->end && *s->p != q) s->p++;
    if (s->p >= s->end) return false;
    *str = start;
    *len = (size_t)(s->p - start);
    s->p++;
    return true;
}

static bool word(hscan *s, const char *w) {
    size_t n = strlen(w);
    skip_space(s);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return false;
    s->p += n;
    return true;
}

static bool text_is(const char *str, size_t len, const char *want) {
    return len == strlen(want) && memcmp(str, want, len) == 0;
}

/* (a, b, ...) with an optional trailing comma; "(3)" is taken as (3,). */
static finch_status parse_shape(hscan *s, size_t *shape, size_t *ndim) {
    *ndim = 0;
    if (!eat(s, '(')) return finch_fail(FINCH_ERR_FORMAT, "npy: shape is not a tuple");
    for (;;) {
        if (eat(s, ')')) return FINCH_OK;
        skip_space(s);
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return finch_fail(FINCH_ERR_FORMAT, "npy: bad shape");
        if (*ndim == NPY_MAX_DIMS) return finch_fail(FINCH_ERR_FORMAT, "npy: more than %d dimensions", NPY_MAX_DIMS);
        size_t v = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (!finch_mul_ok(v, 10, &v) || !finch_add_ok(v, (size_t)(*s->p - '0'), &v))
                return finch_fail(FINCH_ERR_FORMAT, "npy: dimension too large");
            s->p++;
        }
        shape[(*ndim)++] = v;
        if (!eat(s, ',')) {
            if (eat(s, ')')) return FINCH_OK;
            return finch_fail(FINCH_ERR_FORMAT, "npy: bad shape");
        }
    }
}

typedef enum { NPY_F4, NPY_I4, NPY_I8 } npy_kind;

/* The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
static finch_status parse_dict(hscan *s, npy_kind *kind, size_t *shape, size_t *ndim) {
    bool have_descr = false, have_fo = false, have_shape = false;
    if (!eat(s, '{')) return finch_fail(FINCH_ERR_FORMAT, "npy: header is not a dict");
    while (!eat(s, '}')) {
        const char *key, *val;
        size_t klen, vlen;
        if (!quoted(s, &key, &klen) || !eat(s, ':')) return finch_fail(FINCH_ERR_FORMAT, "npy: bad header dict");
        if (text_is(key, klen, "descr") && !have_descr) {
            have_descr = true;
            if (!quoted(s, &val, &vlen)) return finch_fail(FINCH_ERR_FORMAT, "npy: descr is not a string");
            if (text_is(val, vlen, "<f4")) *kind = NPY_F4;
            else if (text_is(val, vlen, "<i4")) *kind = NPY_I4;
            else if (text_is(val, vlen, "<i8")) *kind = NPY_I8;
            else return finch_fail(FINCH_ERR_UNSUPPORTED, "npy dtype '%.*s' is not supported (<f4, <i4, <i8)",
                                   (int)(vlen < 16 ? vlen : 16), val);
        } else if (text_is(key, klen, "fortran_order") && !have_fo) {
            have_fo = true;
            if (word(s, "True")) return finch_fail(FINCH_ERR_UNSUPPORTED, "fortran-order npy");
            if (!word(s, "False")) return finch_fail(FINCH_ERR_FORMAT, "npy: fortran_order is not a boolean");
        } else if (text_is(key, klen, "shape") && !have_shape) {
            have_shape = true;
            finch_status st = parse_shape(s, shape, ndim);
            if (st != FINCH_OK) return st;
        } else {
            return finch_fail(FINCH_ERR_FORMAT, "npy: unexpected or repeated header key '%.*s'",
                              (int)(klen < 32 ? klen : 32), key);
        }
        if (eat(s, ',')) continue;
        skip_space(s); /* no comma: the dict must end here */
        if (s->p >= s->end || *s->p != '}') return finch_fail(FINCH_ERR_FORMAT, "npy: bad header dict");
    }
    skip_space(s); /* only the padding may follow */
    if (s->p != s->end) return finch_fail(FINCH_ERR_FORMAT, "npy: text after the header dict");
    if (!have_descr || !have_fo || !have_shape) return finch_fail(FINCH_ERR_FORMAT, "npy header lacks a key");
    return FINCH_OK;
}

finch_status finch_npy_parse(const uint8_t *buf, size_t size, finch_npy_type want, void **data,
                             size_t *shape, size_t *ndim) {
    *data = NULL;
    *ndim = 0;
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return finch_fail(FINCH_ERR_FORMAT, "not a .npy file");
    size_t hlen, hstart;
    if (buf[6] == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (size < 12) return finch_fail(FINCH_ERR_FORMAT, "npy file of %zu bytes has no header", size);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    } else {
        return finch_fail(FINCH_ERR_UNSUPPORTED, "npy format version %u is not supported", buf[6]);
    }
    if (hlen > size - hstart || hlen > NPY_MAX_HEADER)
        return finch_fail(FINCH_ERR_FORMAT, "npy header length %zu runs past the end", hlen);
    hscan s = { (const char *)buf + hstart, (const char *)buf + hstart + hlen };
    npy_kind kind = NPY_F4;
    finch_status st = parse_dict(&s, &kind, shape, ndim);
    if (st != FINCH_OK) return st;
    bool ok;
    size_t elem = kind == NPY_I8 ? 8 : 4, count = shape_count(shape, *ndim, &ok), bytes;
    if (!ok || !finch_mul_ok(count, elem, &bytes) || bytes != size - hstart - hlen)
        return finch_fail(FINCH_ERR_FORMAT, "npy data size does not match its shape");
    if ((want == FINCH_NPY_F32) != (kind == NPY_F4))
        return finch_fail(FINCH_ERR_FORMAT, "expected %s data", want == FINCH_NPY_F32 ? "float32" : "integer");
    int32_t *out = finch_alloc(count, 4);
    if (!out) return FINCH_ERR_NOMEM;
    const uint8_t *src = buf + hstart + hlen;
    if (kind != NPY_I8) {
        memcpy(out, src, count * 4);
    } else {
        for (size_t i = 0; i < count; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX) {
                free(out);
                return finch_fail(FINCH_ERR_FORMAT, "npy value %lld does not fit int32", (long long)v);
            }
            out[i] = (int32_t)v;
        }
    }
    *data = out;
    return FINCH_OK;
}

finch_status finch_npy_read(const char *path, finch_npy_type want, void **data,
                            size_t *shape, size_t *ndim) {
    *data = NULL;
    finch_map m;
    finch_status st = finch_map_file(path, &m);
    if (st) return st;
    st = finch_npy_parse(m.data, m.size, want, data, shape, ndim);
    finch_unmap(&m);
    return st ? finch_fail_prefix(st, "%s", path) : FINCH_OK;
}
