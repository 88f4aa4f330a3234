/* fuzz_npy.c - the .npy reader (finch_npy_parse, what finch_npy_read runs
 * on a mapped file), asked for float32 and for int32 data.  An accepted
 * array must hold exactly the elements its shape says. */
#include "fuzz_common.h"
#include "npy.h"

static void one(const uint8_t *data, size_t size, finch_npy_type want) {
    void *out = NULL;
    size_t shape[8], ndim = 0;
    finch_status st = finch_npy_parse(data, size, want, &out, shape, &ndim);
    fuzz_check_status(st);
    if (st != FINCH_OK) {
        if (out) abort(); /* nothing is handed out on failure */
        return;
    }
    if (ndim > 8) abort();
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++) count *= shape[i];
    fuzz_touch(out, count * 4); /* ASan: the buffer holds them all */
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size, FINCH_NPY_F32);
    one(data, size, FINCH_NPY_I32);
    return 0;
}
