/* modelfile.h - test helpers that make a bad model out of a good one: copy
 * a file, find a GGUF tensor's bytes in it, overwrite some of them. */
#ifndef FINCH_MODELFILE_H
#define FINCH_MODELFILE_H

#include "testutil.h"

#include "gguf.h"

static inline void copy_file(const char *src, const char *dst) {
    char *data = NULL;
    size_t n = 0;
    assert_ok(finch_read_file(src, &data, &n));
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(data);
}

/* Byte offset in the file of the data of tensor `name` (plus `skip`). */
static inline size_t tensor_offset(const char *path, const char *name, size_t skip) {
    gguf_file g;
    assert_ok(gguf_open(path, &g));
    const gguf_tensor *t = gguf_find_tensor(&g, name);
    assert_non_null(t);
    size_t off = (size_t)((const uint8_t *)t->data - g.map.data) + skip;
    gguf_close(&g);
    return off;
}

static inline void patch(const char *path, size_t off, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

#endif
