/* npy.c - the NumPy .npy format (version 1.0), our own small reader/writer.
 *
 * File: "\x93NUMPY", major 1, minor 0, u16 header length, a Python-dict
 * header {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), }
 * padded with spaces to a multiple of 64 bytes and ending in '\n', then the
 * raw little-endian data in C order. */
#include "finch.h"
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

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return finch_fail(FINCH_ERR_ARG, "npy: path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return finch_fail(FINCH_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    unsigned char magic[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                (unsigned char)(header_len & 0xff), (unsigned char)(header_len >> 8) };
    bool w = fwrite(magic, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = 0; w && i < pad; i++) w = fputc(' ', f) != EOF;
    w = w && fputc('\n', f) != EOF && (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    w = (fclose(f) == 0) && w;
    if (!w || rename(tmp, path) != 0) {
        unlink(tmp);
        return finch_fail(FINCH_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return FINCH_OK;
}

/* ------------------------------------------------------------------- read */

/* Find the value text after 'key': in the header dict. */
static const char *dict_value(const char *hdr, const char *key) {
    const char *p = strstr(hdr, key);
    if (!p) return NULL;
    p = strchr(p + strlen(key), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static finch_status parse_shape(const char *p, size_t *shape, size_t *ndim) {
    if (*p != '(') return finch_fail(FINCH_ERR_FORMAT, "npy: bad shape");
    p++;
    *ndim = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') return FINCH_OK;
        if (*p < '0' || *p > '9') return finch_fail(FINCH_ERR_FORMAT, "npy: bad shape");
        if (*ndim == NPY_MAX_DIMS) return finch_fail(FINCH_ERR_FORMAT, "npy: too many dimensions");
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v > SIZE_MAX) return finch_fail(FINCH_ERR_FORMAT, "npy: dimension too large");
        shape[(*ndim)++] = (size_t)v;
        p = end;
    }
}

finch_status finch_npy_read(const char *path, finch_npy_type want, void **data,
                            size_t *shape, size_t *ndim) {
    *data = NULL;
    finch_map m;
    finch_status st = finch_map_file(path, &m);
    if (st) return st;
    st = finch_fail(FINCH_ERR_FORMAT, "%s: not a .npy file", path);
    if (m.size < 10 || memcmp(m.data, "\x93NUMPY", 6) != 0) goto done;
    size_t hlen, hstart;
    if (m.data[6] == 1) { hlen = m.data[8] | (size_t)m.data[9] << 8; hstart = 10; }
    else if (m.data[6] == 2 || m.data[6] == 3) {
        if (m.size < 12) goto done;
        hlen = m.data[8] | (size_t)m.data[9] << 8 | (size_t)m.data[10] << 16 | (size_t)m.data[11] << 24;
        hstart = 12;
    } else goto done;
    if (hlen > m.size - hstart || hlen > 65536) { st = finch_fail(FINCH_ERR_FORMAT, "%s: npy header past the end", path); goto done; }
    char hdr[65537];
    memcpy(hdr, m.data + hstart, hlen);
    hdr[hlen] = 0;

    const char *descr = dict_value(hdr, "'descr'"), *fo = dict_value(hdr, "'fortran_order'");
    const char *sh = dict_value(hdr, "'shape'");
    if (!descr || !fo || !sh) { st = finch_fail(FINCH_ERR_FORMAT, "%s: npy header lacks a key", path); goto done; }
    if (strncmp(fo, "False", 5) != 0) { st = finch_fail(FINCH_ERR_UNSUPPORTED, "%s: fortran-order npy", path); goto done; }
    size_t elem;
    int kind; /* 0 f4, 1 i4, 2 i8 */
    if (!strncmp(descr, "'<f4'", 5)) { kind = 0; elem = 4; }
    else if (!strncmp(descr, "'<i4'", 5)) { kind = 1; elem = 4; }
    else if (!strncmp(descr, "'<i8'", 5)) { kind = 2; elem = 8; }
    else { st = finch_fail(FINCH_ERR_UNSUPPORTED, "%s: npy dtype must be <f4, <i4 or <i8", path); goto done; }
    if ((st = parse_shape(sh, shape, ndim)) != FINCH_OK) { finch_fail_prefix(st, "%s", path); goto done; }
    bool ok;
    size_t count = shape_count(shape, *ndim, &ok), bytes;
    if (!ok || !finch_mul_ok(count, elem, &bytes) || bytes != m.size - hstart - hlen) {
        st = finch_fail(FINCH_ERR_FORMAT, "%s: npy data size does not match its shape", path);
        goto done;
    }
    if ((want == FINCH_NPY_F32) != (kind == 0)) {
        st = finch_fail(FINCH_ERR_FORMAT, "%s: expected %s data", path, want == FINCH_NPY_F32 ? "float32" : "integer");
        goto done;
    }
    void *out = finch_alloc(count, 4);
    if (!out) { st = FINCH_ERR_NOMEM; goto done; }
    const uint8_t *src = m.data + hstart + hlen;
    if (kind != 2) {
        memcpy(out, src, count * 4);
    } else {
        int32_t *o = out;
        for (size_t i = 0; i < count; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX) {
                free(out);
                st = finch_fail(FINCH_ERR_FORMAT, "%s: value %lld does not fit int32", path, (long long)v);
                goto done;
            }
            o[i] = (int32_t)v;
        }
    }
    *data = out;
    st = FINCH_OK;
done:
    finch_unmap(&m);
    return st;
}
