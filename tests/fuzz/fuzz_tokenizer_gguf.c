/* fuzz_tokenizer_gguf.c - building a tokenizer from GGUF metadata
 * (tokenizer.ggml.*: model, pre, tokens, scores, token types, merges, the
 * special ids and flags).  A tokenizer that loads must then encode a few
 * fixed texts and the tail of the input, decode every id it produced and
 * the first and last ids of its vocabulary, and write itself back as GGUF
 * metadata. */
#include "fuzz_common.h"
#include "gguf.h"
#include "tokenizer.h"

static const char *const texts[] = {
    "Hello world", " leading  spaces\n\ttabs", "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82",
    "<s>x</s><|endoftext|>", "12345 don't I'm", "\xff\xfe bad utf-8 \xc3", "",
};

static void exercise(const finch_tokenizer *t, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    char buf[256];
    for (int add_bos = 0; add_bos < 2; add_bos++) {
        finch_status st = finch_tokenize(t, text, len, add_bos, &ids, &n);
        fuzz_check_status(st);
        if (st != FINCH_OK) continue;
        size_t vocab = finch_tokenizer_vocab(t);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || (size_t)ids[i] >= vocab) abort(); /* every id is in the vocabulary */
            size_t b = finch_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
            if (b > sizeof buf) abort();
        }
        free(ids);
        ids = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file g;
    finch_status st = gguf_parse(data, size, &g);
    if (st != FINCH_OK) return 0; /* fuzz_gguf covers the reader */
    finch_tokenizer *t = NULL;
    st = finch_tokenizer_from_gguf(&g, &t);
    fuzz_check_status(st);
    if (st == FINCH_OK && t) {
        size_t vocab = finch_tokenizer_vocab(t);
        int32_t bos = finch_tokenizer_bos(t), eos = finch_tokenizer_eos(t);
        if (bos >= (int32_t)vocab || eos >= (int32_t)vocab || bos < -1 || eos < -1) abort();
        fuzz_touch(finch_tokenizer_kind(t), strlen(finch_tokenizer_kind(t)));
        (void)finch_tokenizer_add_bos(t);
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) exercise(t, texts[i], strlen(texts[i]));
        size_t tail = size < 64 ? size : 64;
        exercise(t, (const char *)data + size - tail, tail);
        char buf[64];
        int32_t probe[] = { -1, 0, 1, (int32_t)vocab - 1, (int32_t)vocab, INT32_MAX };
        for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++)
            (void)finch_token_to_bytes(t, bos, probe[i], buf, sizeof buf);
        (void)finch_token_to_bytes(t, -1, 0, buf, 0);
        gguf_writer *w = NULL;
        if (gguf_writer_new(&w) == FINCH_OK) {
            fuzz_check_status(finch_tokenizer_to_gguf(t, w));
            gguf_writer_free(w);
        }
        finch_tokenizer_free(t);
    }
    gguf_close(&g);
    return 0;
}
