/* fuzz_llama2c.c - a llama2.c v0 checkpoint.  llama2c_parse wants 4-byte
 * aligned data (the floats are used in place), so the input is copied into
 * an aligned buffer of exactly its size (ASan still sees reads past it).
 * An accepted file is walked: every tensor inside the buffer, its first
 * rows converted, found again by name, and the config validated. */
#include "fuzz_common.h"
#include "llama2c.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1); /* malloc is 16-byte aligned */
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    llama2c_file f;
    finch_status st = llama2c_parse(buf, size, &f);
    fuzz_check_status(st);
    if (st == FINCH_OK) {
        for (size_t i = 0; i < f.tensors.n; i++) {
            const finch_tensor_ref *t = &f.tensors.t[i];
            const uint8_t *p = t->data;
            if (p < buf || t->nbytes > size || p + t->nbytes > buf + size) abort();
            if (llama2c_find(&f, t->name) != t) abort();
            fuzz_rows(t->type, t->data, t->nbytes, t->ne[0]);
        }
        fuzz_check_status(finch_config_validate(&f.cfg));
        llama2c_close(&f);
    }
    free(buf);
    return 0;
}
