/* fuzz_tokenize.c - encoding arbitrary bytes with real vocabularies.
 *
 * At start-up the target loads every tokenizer it can find: the tiny
 * SentencePiece vocabulary of testdata/models/tiny-llama.gguf and the HF
 * tokenizer.json of testdata/models/tiny-hf-llama (always there), and from
 * ../shared/assets (or $FINCH_ASSETS) when present: llama.cpp's vocab-only
 * GGUFs (gpt-2, llama-spm), the TinyStories and Qwen3 tokenizer.json, the
 * Llama 3 tiktoken file and the llama2.c tokenizer.bin.  The first input
 * byte picks the tokenizer and whether to add BOS; the rest is the text.
 * Every id must lie in the vocabulary, and decoding must give the text
 * back (see round_trip for the three exceptions). */
#include "fuzz_common.h"
#include "gguf.h"
#include "tokenizer.h"

#define MAX_TOK 16
static finch_tokenizer *toks[MAX_TOK];
static size_t n_toks;

static void add(finch_status st, finch_tokenizer *t, const char *what) {
    if (st != FINCH_OK || !t) {
        fprintf(stderr, "fuzz_tokenize: cannot load %s: %s\n", what, finch_last_error());
        return;
    }
    if (n_toks < MAX_TOK) toks[n_toks++] = t;
    else finch_tokenizer_free(t);
}

static void add_gguf(const char *path) {
    if (!path) return;
    gguf_file g;
    finch_tokenizer *t = NULL;
    finch_status st = gguf_open(path, &g);
    if (st == FINCH_OK) {
        st = finch_tokenizer_from_gguf(&g, &t);
        gguf_close(&g); /* the tokenizer keeps copies of what it needs */
    }
    add(st, t, path);
}

static void add_json(const char *dir) {
    char json[4096], cfg[4096];
    finch_tokenizer *t = NULL;
    if (!dir) return;
    snprintf(json, sizeof json, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    struct stat st;
    add(finch_tokenizer_from_json(json, stat(cfg, &st) == 0 ? cfg : NULL, &t), t, json);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    finch_tokenizer *t = NULL;
    add_gguf("testdata/models/tiny-llama.gguf");
    add_json("testdata/models/tiny-hf-llama");
    add_gguf(fuzz_asset("tokenizers/llamacpp/ggml-vocab-gpt-2.gguf"));
    add_gguf(fuzz_asset("tokenizers/llamacpp/ggml-vocab-llama-spm.gguf"));
    add_json(fuzz_asset("models/tinystories-656k"));
    add_json(fuzz_asset("tokenizers/qwen3"));
    const char *p = fuzz_asset("tokenizers/llama3/tokenizer.model");
    if (p) add(finch_tokenizer_from_tiktoken(p, &t), t, p);
    p = fuzz_asset("tokenizers/llama2/tokenizer.bin");
    if (p) add(finch_tokenizer_from_llama2c(p, 32000, &t), t, p);
    if (n_toks == 0) {
        fprintf(stderr, "fuzz_tokenize: no tokenizer found (run from the repository root)\n");
        abort();
    }
    return 0;
}

/* decode(encode(text)) == text, byte for byte, except where the text
 * itself is not what the vocabulary can say: a literal special token
 * ('<' starts all of ours) is matched as that token and decodes to
 * nothing, a literal U+2581 is a space to SentencePiece, and a character
 * without a piece or byte piece becomes <unk>.  A SentencePiece tokenizer
 * may put one space in front. */
static void round_trip(const char *text, size_t len, const char *dec, size_t dl) {
    if (memchr(text, '<', len) || memchr(dec, '<', dl) || memmem(text, len, "\xe2\x96\x81", 3)) return;
    if (dl == len + 1 && dec[0] == ' ') {
        dec++;
        dl--;
    }
    if (dl != len || memcmp(dec, text, len) != 0) {
        fprintf(stderr, "fuzz_tokenize: %zu bytes decode to %zu other bytes\n", len, dl);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const finch_tokenizer *t = toks[(data[0] & 0x7f) % n_toks];
    int add_bos = data[0] >> 7;
    int32_t *ids = NULL;
    size_t n = 0;
    finch_status st = finch_tokenize(t, (const char *)data + 1, size - 1, add_bos, &ids, &n);
    fuzz_check_status(st);
    if (st != FINCH_OK) return 0;
    size_t vocab = finch_tokenizer_vocab(t), dl = 0;
    enum { PIECE_MAX = 1024 }; /* longer than any piece of the vocabularies above */
    char *dec = malloc(n * PIECE_MAX + 1);
    if (!dec) abort();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= vocab) abort();
        if (i == 0 && add_bos && finch_tokenizer_add_bos(t) && ids[0] == finch_tokenizer_bos(t))
            continue; /* BOS is not part of the text */
        dl += finch_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], dec + dl, PIECE_MAX);
    }
    round_trip((const char *)data + 1, size - 1, dec, dl);
    free(dec);
    free(ids);
    return 0;
}
