/* fuzz_config.c - a Hugging Face config.json: hf_parse_config on text that
 * is not NUL-terminated (ASan sees any read past the length), then the
 * hyperparameter checks every model goes through. */
#include "fuzz_common.h"
#include "model.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    finch_config cfg;
    finch_status st = hf_parse_config((const char *)data, size, &cfg);
    fuzz_check_status(st);
    if (st == FINCH_OK) {
        if (memchr(cfg.arch, 0, sizeof cfg.arch) == NULL) abort();
        fuzz_check_status(finch_config_validate(&cfg));
    }
    return 0;
}
