/* fuzz_tokenizer_files.c - the tokenizer formats that are read from a path:
 * Hugging Face tokenizer.json (with and without a tokenizer_config.json),
 * llama2.c tokenizer.bin, tiktoken files and SentencePiece tokenizer.model
 * (protobuf).  The input goes to the loader
 * as a memfd.  Layout: byte 0 picks the format; for tokenizer.json with a
 * config, the rest is split at the first NUL into the two files; for
 * tokenizer.bin, bytes 1-2 give the vocabulary size the model would pass
 * (1..65536).  A tokenizer that loads is walked like fuzz_tokenizer_gguf's. */
#include "fuzz_common.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int kind = data[0] % 5;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    char path[64], cfg_path[64];
    int fd = -1, cfg_fd = -1;
    finch_tokenizer *t = NULL;
    finch_status st;
    switch (kind) {
    case 0: /* tokenizer.json alone */
        if ((fd = fuzz_memfd(body, n, path, sizeof path)) < 0) return 0;
        st = finch_tokenizer_from_json(path, NULL, &t);
        break;
    case 1: { /* tokenizer.json NUL tokenizer_config.json */
        const uint8_t *nul = memchr(body, 0, n);
        size_t first = nul ? (size_t)(nul - body) : n;
        if ((fd = fuzz_memfd(body, first, path, sizeof path)) < 0) return 0;
        size_t rest = nul ? n - first - 1 : 0;
        if ((cfg_fd = fuzz_memfd(nul ? nul + 1 : body, rest, cfg_path, sizeof cfg_path)) < 0) {
            close(fd);
            return 0;
        }
        st = finch_tokenizer_from_json(path, cfg_path, &t);
        break;
    }
    case 2: { /* u16 vocab - 1, then tokenizer.bin */
        size_t vocab = (size_t)(body[0] | body[1] << 8) + 1;
        if ((fd = fuzz_memfd(body + 2, n - 2, path, sizeof path)) < 0) return 0;
        st = finch_tokenizer_from_llama2c(path, vocab, &t);
        break;
    }
    case 3:
        if ((fd = fuzz_memfd(body, n, path, sizeof path)) < 0) return 0;
        st = finch_tokenizer_from_tiktoken(path, &t);
        break;
    default: /* SentencePiece tokenizer.model */
        if ((fd = fuzz_memfd(body, n, path, sizeof path)) < 0) return 0;
        st = finch_tokenizer_from_spm_model(path, &t);
        break;
    }
    fuzz_check_status(st);
    if (st == FINCH_OK && t) {
        size_t tail = size < 64 ? size : 64;
        fuzz_tokenizer_walk(t, (const char *)data + size - tail, tail);
    }
    finch_tokenizer_free(t);
    close(fd);
    if (cfg_fd >= 0) close(cfg_fd);
    return 0;
}
