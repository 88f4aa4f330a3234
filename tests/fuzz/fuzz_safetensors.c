/* fuzz_safetensors.c - one safetensors file: the u64 header length, the
 * JSON header, every tensor entry and the __metadata__ aliases.  What it
 * accepts is walked: each tensor is found again by name, lies inside the
 * data section, and its first rows convert. */
#include "fuzz_common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    finch_tensor_list list = { 0 };
    finch_status st = hf_parse_safetensors(data, size, &list);
    fuzz_check_status(st);
    if (st == FINCH_OK) {
        for (size_t i = 0; i < list.n; i++) {
            const finch_tensor_ref *t = &list.t[i];
            if (finch_tensor_list_find(&list, t->name) == NULL) abort(); /* finished means sorted */
            if (t->nbytes) {
                const uint8_t *p = t->data;
                if (p < data || p + t->nbytes > data + size) abort();
                fuzz_touch(p, 1);
                fuzz_touch(p + t->nbytes - 1, 1);
            }
            fuzz_rows(t->type, t->data, t->nbytes, t->ne[0]);
        }
    }
    finch_tensor_list_free(&list);
    return 0;
}
