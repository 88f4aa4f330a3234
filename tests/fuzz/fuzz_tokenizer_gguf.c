/* fuzz_tokenizer_gguf.c - building a tokenizer from GGUF metadata
 * (tokenizer.ggml.*: model, pre, tokens, scores, token types, merges, the
 * special ids and flags).  A tokenizer that loads is then walked by
 * fuzz_tokenizer_walk: encode fixed texts and the tail of the input, decode,
 * write back as GGUF metadata. */
#include "fuzz_common.h"
#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file g;
    if (gguf_parse(data, size, &g) != FINCH_OK) return 0; /* fuzz_gguf covers the reader */
    finch_tokenizer *t = NULL;
    finch_status st = finch_tokenizer_from_gguf(&g, &t);
    fuzz_check_status(st);
    if (st == FINCH_OK && t) {
        size_t tail = size < 64 ? size : 64;
        fuzz_tokenizer_walk(t, (const char *)data + size - tail, tail);
        finch_tokenizer_free(t);
    }
    gguf_close(&g);
    return 0;
}
