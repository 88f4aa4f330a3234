/* test_tokenizer.c - the tokenizers against llama.cpp's test vectors (whose
 * expected ids came from the reference tokenizers), round trips through
 * decoding and through GGUF, special tokens, invalid input, malformed
 * vocabularies. */
#include "testutil.h"

#include <unistd.h>

#include "tokenizer.h"
#include "vocab_vectors.h"

/* ------------------------------------------------------------- helpers */

/* Encode every vector string; returns how many match exactly (printing
 * the first mismatches) and checks decode(encode(s)) == s. */
static size_t check_vectors(const finch_tokenizer *t, const vectors *v, bool roundtrip) {
    size_t ok = 0, shown = 0;
    for (size_t i = 0; i < v->n; i++) {
        int32_t *ids;
        size_t n;
        assert_ok(finch_tokenize(t, v->str[i], v->len[i], 0, &ids, &n));
        bool same = n == v->n_ids[i] && (n == 0 || memcmp(ids, v->ids[i], n * sizeof *ids) == 0);
        if (same) ok++;
        else if (shown++ < 3) {
            fprintf(stderr, "vector %zu \"%.40s\": got", i, v->str[i]);
            for (size_t k = 0; k < n && k < 24; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n  expected");
            for (size_t k = 0; k < v->n_ids[i] && k < 24; k++) fprintf(stderr, " %d", v->ids[i][k]);
            fprintf(stderr, "\n");
        }
        if (roundtrip) {
            char *dec = malloc(v->len[i] * 4 + 64);
            size_t dn = 0;
            for (size_t k = 0; k < n; k++)
                dn += finch_token_to_bytes(t, k ? ids[k - 1] : -1, ids[k], dec + dn, v->len[i] * 4 + 64 - dn);
            if (dn != v->len[i] || memcmp(dec, v->str[i], dn) != 0)
                fail_msg("vector %zu: decode(encode(s)) != s (%zu vs %zu bytes)", i, dn, v->len[i]);
            free(dec);
        }
        free(ids);
    }
    fprintf(stderr, "  %zu/%zu vectors match\n", ok, v->n);
    return ok;
}

static finch_tokenizer *load_gguf_tok(const char *path) {
    gguf_file g;
    assert_ok(gguf_open(path, &g));
    finch_tokenizer *t = NULL;
    assert_ok(finch_tokenizer_from_gguf(&g, &t));
    gguf_close(&g);
    assert_non_null(t);
    return t;
}

/* Write t to a temporary GGUF file and read it back. */
static finch_tokenizer *gguf_roundtrip(const finch_tokenizer *t, bool with_merges) {
    char path[] = "/tmp/finch_tok_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gguf_writer *w;
    assert_ok(gguf_writer_new(&w));
    assert_ok(finch_tokenizer_to_gguf_ex(t, w, with_merges));
    assert_ok(gguf_write_file(w, path));
    gguf_writer_free(w);
    finch_tokenizer *r = load_gguf_tok(path);
    unlink(path);
    return r;
}

static void expect_ids(const finch_tokenizer *t, const char *text, int add_bos, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    assert_ok(finch_tokenize(t, text, strlen(text), add_bos, &ids, &n));
    bool same = n == n_want && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!same) {
        fprintf(stderr, "\"%s\": got", text);
        for (size_t k = 0; k < n; k++) fprintf(stderr, " %d", ids[k]);
        fprintf(stderr, "\n");
    }
    free(ids);
    assert_true(same);
}

/* decode(ids) with prev threading, NUL-terminated into buf */
static size_t decode_all(const finch_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap) {
    size_t dn = 0;
    for (size_t k = 0; k < n; k++) dn += finch_token_to_bytes(t, k ? ids[k - 1] : -1, ids[k], buf + dn, cap - 1 - dn);
    buf[dn] = 0;
    return dn;
}

/* Two tokenizers agree on text. */
static void expect_same(const finch_tokenizer *a, const finch_tokenizer *b, const char *text, size_t len) {
    int32_t *x, *y;
    size_t nx, ny;
    assert_ok(finch_tokenize(a, text, len, 1, &x, &nx));
    assert_ok(finch_tokenize(b, text, len, 1, &y, &ny));
    if (nx != ny || memcmp(x, y, nx * sizeof *x) != 0) fail_msg("tokenizers disagree on \"%.60s\"", text);
    free(x);
    free(y);
}

#define ASSET_OR_SKIP(var, rel) \
    const char *var##_p = test_asset(rel); \
    if (!var##_p) { SKIP_MSG("%s not found (set FINCH_ASSETS)", rel); return; } \
    char var[4096]; \
    snprintf(var, sizeof var, "%s", var##_p)

/* ------------------------------------------------------ llama.cpp vectors */

static void test_vectors_llama_spm(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "tokenizers/llamacpp/ggml-vocab-llama-spm.gguf");
    vectors v;
    if (!vectors_load("ggml-vocab-llama-spm.gguf", &v)) { SKIP_MSG("llama-spm vectors not found"); return; }
    finch_tokenizer *t = load_gguf_tok(path);
    assert_string_equal(finch_tokenizer_kind(t), "llama");
    assert_int_equal(finch_tokenizer_vocab(t), 32000);
    assert_int_equal(finch_tokenizer_bos(t), 1);
    assert_int_equal(finch_tokenizer_eos(t), 2);
    assert_true(finch_tokenizer_add_bos(t));
    assert_int_equal(check_vectors(t, &v, true), v.n);
    /* through our GGUF writer and back */
    finch_tokenizer *r = gguf_roundtrip(t, true);
    assert_int_equal(check_vectors(r, &v, false), v.n);
    finch_tokenizer_free(r);
    finch_tokenizer_free(t);
    vectors_free(&v);
}

static void test_vectors_llama2c_bin(void **state) {
    (void)state;
    /* llama2.c's export of the same Llama 2 vocabulary must encode alike */
    ASSET_OR_SKIP(path, "tokenizers/llama2/tokenizer.bin");
    vectors v;
    if (!vectors_load("ggml-vocab-llama-spm.gguf", &v)) { SKIP_MSG("llama-spm vectors not found"); return; }
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_llama2c(path, 32000, &t));
    assert_int_equal(check_vectors(t, &v, true), v.n);
    static const int32_t hello[] = { 1, 15043, 3186 };
    expect_ids(t, "Hello world", 1, hello, 3);
    finch_tokenizer_free(t);
    vectors_free(&v);
}

static void test_vectors_gpt2(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "tokenizers/llamacpp/ggml-vocab-gpt-2.gguf");
    vectors v;
    if (!vectors_load("ggml-vocab-gpt-2.gguf", &v)) { SKIP_MSG("gpt-2 vectors not found"); return; }
    finch_tokenizer *t = load_gguf_tok(path);
    assert_string_equal(finch_tokenizer_kind(t), "gpt2");
    assert_int_equal(finch_tokenizer_vocab(t), 50257);
    assert_false(finch_tokenizer_add_bos(t));
    assert_int_equal(check_vectors(t, &v, true), v.n);
    finch_tokenizer *r = gguf_roundtrip(t, true);
    assert_int_equal(check_vectors(r, &v, false), v.n);
    finch_tokenizer_free(r);
    finch_tokenizer_free(t);
    vectors_free(&v);
}

static void test_vectors_qwen2(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "tokenizers/qwen3/tokenizer.json");
    ASSET_OR_SKIP(cfg, "tokenizers/qwen3/tokenizer_config.json");
    vectors v;
    if (!vectors_load("ggml-vocab-qwen2.gguf", &v)) { SKIP_MSG("qwen2 vectors not found"); return; }
    finch_tokenizer *t; /* its load time is make bench's business, not a test's */
    assert_ok(finch_tokenizer_from_json(path, cfg, &t));
    assert_string_equal(finch_tokenizer_kind(t), "gpt2");
    assert_int_equal(finch_tokenizer_vocab(t), 151669);
    assert_int_equal(finch_tokenizer_bos(t), -1);
    assert_int_equal(finch_tokenizer_eos(t), 151645); /* <|im_end|> */
    assert_false(finch_tokenizer_add_bos(t));
    assert_int_equal(check_vectors(t, &v, true), v.n);
    finch_tokenizer *r = gguf_roundtrip(t, true);
    assert_int_equal(check_vectors(r, &v, false), v.n);
    finch_tokenizer_free(r);
    finch_tokenizer_free(t);
    vectors_free(&v);
}

static void test_vectors_llama_bpe(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "tokenizers/llama3/tokenizer.model");
    vectors v;
    if (!vectors_load("ggml-vocab-llama-bpe.gguf", &v)) { SKIP_MSG("llama-bpe vectors not found"); return; }
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_tiktoken(path, &t));
    assert_int_equal(finch_tokenizer_vocab(t), 128256);
    assert_int_equal(finch_tokenizer_bos(t), 128000);
    assert_int_equal(finch_tokenizer_eos(t), 128001);
    assert_int_equal(check_vectors(t, &v, true), v.n);
    /* GGUF holds merges, not ranks: the derived merges must agree */
    finch_tokenizer *r = gguf_roundtrip(t, true);
    assert_string_equal(finch_tokenizer_kind(r), "gpt2");
    assert_int_equal(check_vectors(r, &v, false), v.n);
    finch_tokenizer_free(r);
    finch_tokenizer_free(t);
    vectors_free(&v);
}

/* ------------------------------------------------------------ TinyStories */

static void test_tinystories_json(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "models/tinystories-656k/tokenizer.json");
    ASSET_OR_SKIP(cfg, "models/tinystories-656k/tokenizer_config.json");
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_json(path, cfg, &t));
    assert_string_equal(finch_tokenizer_kind(t), "llama");
    assert_int_equal(finch_tokenizer_vocab(t), 2048);
    assert_int_equal(finch_tokenizer_bos(t), 1);
    assert_int_equal(finch_tokenizer_eos(t), 2);
    assert_true(finch_tokenizer_add_bos(t));
    /* ids from an independent implementation of Hugging Face's BPE
     * (tools/tok_ref.py hf_bpe_encode) */
    static const int32_t once[] = { 1, 80, 147, 201, 282, 215, 286, 598, 629, 10 };
    expect_ids(t, "Once upon a time, there was a little girl named Lily.", 1, once, 10);
    static const int32_t said[] = { 1, 80, 892, 1294, 333, 300, 810, 1097, 122, 1767, 183, 10 };
    expect_ids(t, "She said, \"Thank you, mom!\" He was sad.\n\nThe end.", 1, said, 12);
    static const int32_t spaces[] = { 80, 80, 80, 1209, 80, 415, 53, 1499 };
    expect_ids(t, "  two  spaces", 0, spaces, 8);
    /* no <0xXX> pieces here: unknown characters become <unk> (0) */
    static const int32_t unk[] = { 1, 80, 51, 67, 0, 85, 1622, 15, 13, 80, 55, 70, 0, 68, 368, 0 };
    expect_ids(t, "Zo\xc3\xab ate 42 cr\xc3\xaapes \xe2\x98\x83", 1, unk, 16);
    /* HF normalizes before it finds the (normalized) added tokens, so the
     * prepended U+2581 stands alone in front of a leading special token and
     * the text after it gets none */
    static const int32_t lead[] = { 80, 1, 147, 201, 282, 57 };
    expect_ids(t, "<|start_story|>Once upon a time", 0, lead, 6);
    /* without config: BOS from the post-processor template */
    finch_tokenizer *t2;
    assert_ok(finch_tokenizer_from_json(path, NULL, &t2));
    assert_int_equal(finch_tokenizer_bos(t2), 1);
    assert_true(finch_tokenizer_add_bos(t2));
    finch_tokenizer_free(t2);
    /* decode drops the leading space after BOS */
    char buf[256];
    int32_t *ids;
    size_t n;
    const char *text = "Once upon a time, there was a little girl named Lily.";
    assert_ok(finch_tokenize(t, text, strlen(text), 1, &ids, &n));
    decode_all(t, ids, n, buf, sizeof buf);
    assert_string_equal(buf, text);
    free(ids);
    finch_tokenizer_free(t);
}

static const char *story_texts[] = {
    "Once upon a time, there was a little girl named Lily. She liked to play in the park.",
    "One day, Tim and his mom went to the store. They bought a big red ball!",
    "\"Can we play together?\" asked the bird. The dog said, \"Yes!\"\nThey played all day.",
    "  leading spaces, trailing   ",
    "The end.\n\n\nOnce upon a time, in a small house, there lived a cat named Max.",
    "didn't know what to do. He was so happy and excited. Thank you, mom!",
    "Sue and Ben were best friends. They liked to climb trees and eat ice cream.",
    "x",
    "",
};

static void test_tinystories_gguf(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "models/tinystories-656k/tokenizer.json");
    ASSET_OR_SKIP(cfg, "models/tinystories-656k/tokenizer_config.json");
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_json(path, cfg, &t));
    /* with merges: the GGUF tokenizer uses the same ranked merges */
    finch_tokenizer *m = gguf_roundtrip(t, true);
    /* without: llama.cpp's score algorithm on the derived scores */
    finch_tokenizer *s = gguf_roundtrip(t, false);
    assert_int_equal(finch_tokenizer_bos(m), 1);
    assert_int_equal(finch_tokenizer_eos(s), 2);
    for (size_t i = 0; i < sizeof story_texts / sizeof story_texts[0]; i++) {
        expect_same(t, m, story_texts[i], strlen(story_texts[i]));
        expect_same(t, s, story_texts[i], strlen(story_texts[i]));
    }
    vectors v;
    if (vectors_load("ggml-vocab-llama-spm.gguf", &v)) {
        for (size_t i = 0; i < v.n; i++) {
            expect_same(t, m, v.str[i], v.len[i]);
            expect_same(t, s, v.str[i], v.len[i]);
        }
        vectors_free(&v);
    }
    finch_tokenizer_free(m);
    finch_tokenizer_free(s);
    finch_tokenizer_free(t);
}

static void test_llama2c_tok512(void **state) {
    (void)state;
    ASSET_OR_SKIP(path, "models/aidreams-260k/tok512.bin");
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_llama2c(path, 512, &t));
    assert_int_equal(finch_tokenizer_vocab(t), 512);
    assert_int_equal(finch_tokenizer_bos(t), 1);
    const char *text = "Once upon a time, there was a little girl named Lily.\nShe liked \xe2\x98\x83!";
    int32_t *ids;
    size_t n;
    assert_ok(finch_tokenize(t, text, strlen(text), 1, &ids, &n));
    assert_true(n > 2 && n < strlen(text));
    assert_int_equal(ids[0], 1);
    char buf[256];
    decode_all(t, ids, n, buf, sizeof buf);
    assert_string_equal(buf, text);
    free(ids);
    /* ids from a Python port of llama2.c's encoder (which agrees with
     * ours on 3,000 lines of the KJV haystack) */
    static const int32_t hello[] = { 1, 429, 480, 375, 438, 437, 446, 272, 284, 438, 441, 36, 429, 484, 473 };
    expect_ids(t, "Hello, world! 42", 1, hello, 15);
    /* a vocabulary larger than the file holds */
    finch_tokenizer *bad;
    assert_int_equal(finch_tokenizer_from_llama2c(path, 513, &bad), FINCH_ERR_FORMAT);
    finch_tokenizer_free(t);
}

/* ------------------------------------------------------ special tokens */

static void test_special_tokens(void **state) {
    (void)state;
    ASSET_OR_SKIP(qwen, "tokenizers/qwen3/tokenizer.json");
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_json(qwen, NULL, &t));
    /* <|im_start|> = 151644, <|im_end|> = 151645, "user" = 872, "\n" = 198, "Hi" = 13048 */
    static const int32_t chat[] = { 151644, 872, 198, 13048, 151645 };
    expect_ids(t, "<|im_start|>user\nHi<|im_end|>", 0, chat, 5);
    /* a partial special is plain text */
    int32_t *ids;
    size_t n;
    assert_ok(finch_tokenize(t, "<|im_start", 10, 0, &ids, &n));
    for (size_t i = 0; i < n; i++) assert_true(ids[i] < 151643);
    free(ids);
    /* control tokens decode to nothing; added non-special ones to their text */
    char buf[64];
    assert_int_equal(finch_token_to_bytes(t, -1, 151644, buf, sizeof buf), 0);
    size_t k = finch_token_to_bytes(t, -1, 151667, buf, sizeof buf); /* <think> */
    assert_int_equal(k, 7);
    assert_memory_equal(buf, "<think>", 7);
    finch_tokenizer_free(t);

    ASSET_OR_SKIP(spm, "tokenizers/llamacpp/ggml-vocab-llama-spm.gguf");
    t = load_gguf_tok(spm);
    /* llama.cpp: a leading space after every special token as at the start */
    static const int32_t s1[] = { 1, 15043, 2, 259 }; /* " " after </s> is "▁▁" */
    expect_ids(t, "<s>Hello</s> ", 0, s1, 4);
    static const int32_t s2[] = { 1, 1, 15043 };
    expect_ids(t, "<s>Hello", 1, s2, 3);
    finch_tokenizer_free(t);
}

/* ------------------------------------------------------- invalid input */

static void check_invalid_utf8(const finch_tokenizer *t, bool exact) {
    static const char bad[] = "ok \xff\xfe\xc3 x\xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf end\x80";
    int32_t *ids;
    size_t n;
    assert_ok(finch_tokenize(t, bad, sizeof bad - 1, 1, &ids, &n));
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] >= 0 && (size_t)ids[i] < finch_tokenizer_vocab(t));
    if (exact) {
        char buf[256];
        size_t dn = decode_all(t, ids, n, buf, sizeof buf);
        assert_int_equal(dn, sizeof bad - 1);
        assert_memory_equal(buf, bad, sizeof bad - 1);
    }
    free(ids);
    /* empty text: nothing, or only BOS */
    assert_ok(finch_tokenize(t, "", 0, 1, &ids, &n));
    assert_int_equal(n, finch_tokenizer_add_bos(t) ? 1 : 0);
    free(ids);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    const char *p;
    finch_tokenizer *t;
    if ((p = test_asset("tokenizers/llamacpp/ggml-vocab-llama-spm.gguf"))) {
        t = load_gguf_tok(p);
        check_invalid_utf8(t, true); /* byte fallback keeps every byte */
        finch_tokenizer_free(t);
    }
    if ((p = test_asset("tokenizers/llamacpp/ggml-vocab-gpt-2.gguf"))) {
        t = load_gguf_tok(p);
        check_invalid_utf8(t, true); /* byte-level keeps every byte */
        finch_tokenizer_free(t);
    }
    if ((p = test_asset("tokenizers/qwen3/tokenizer.json"))) {
        assert_ok(finch_tokenizer_from_json(p, NULL, &t));
        check_invalid_utf8(t, true);
        finch_tokenizer_free(t);
    }
    if ((p = test_asset("models/tinystories-656k/tokenizer.json"))) {
        assert_ok(finch_tokenizer_from_json(p, NULL, &t));
        check_invalid_utf8(t, false); /* no byte pieces: <unk> */
        finch_tokenizer_free(t);
    }
    if (!p) SKIP_MSG("tokenizer assets not found");
}

/* ------------------------------------------------------ long input speed */

static void test_long_text(void **state) {
    (void)state;
    ASSET_OR_SKIP(p, "tokenizers/qwen3/tokenizer.json");
    ASSET_OR_SKIP(q, "tokenizers/llamacpp/ggml-vocab-llama-spm.gguf");
    /* ~400 KB of text: a 64k-token context and more */
    const char *para = "In the beginning God created the heaven and the earth. And the earth was without form, "
                       "and void; and darkness was upon the face of the deep. 1234567 times!\n";
    size_t pl = strlen(para), reps = 400000 / pl, len = reps * pl;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * pl, para, pl);
    text[len] = 0;
    finch_tokenizer *t;
    assert_ok(finch_tokenizer_from_json(p, NULL, &t));
    finch_tokenizer *s = load_gguf_tok(q);
    int32_t *ids;
    size_t n;
    double t0 = finch_now();
    assert_ok(finch_tokenize(t, text, len, 0, &ids, &n));
    double t1 = finch_now();
    free(ids);
    assert_ok(finch_tokenize(s, text, len, 0, &ids, &n)); /* one 400 KB SentencePiece word */
    double t2 = finch_now();
    /* Timings are reported, never asserted (shared machine); what is
     * asserted is that the long encoding decodes back to the text. */
    fprintf(stderr, "  400 KB: byte-level %.3f s, SentencePiece %.3f s (%zu tokens)\n", t1 - t0, t2 - t1, n);
    char *back = malloc(len + 64);
    size_t blen = 0;
    for (size_t i = 0; i < n && blen < len + 32; i++)
        blen += finch_token_to_bytes(s, i ? ids[i - 1] : -1, ids[i], back + blen, len + 63 - blen);
    assert_int_equal(blen, len);
    assert_memory_equal(back, text, len);
    free(back);
    free(ids);
    finch_tokenizer_free(s);
    finch_tokenizer_free(t);
    free(text);
}

/* ------------------------------------------------- malformed vocabularies */

/* A GGUF with a small "llama" vocabulary; the variant breaks one thing. */
static finch_status try_vocab(int variant) {
    static const char *tokens[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", ("\xe2\x96\x81" "a") };
    float scores[6] = { 0, 0, 0, -1, -2, -3 };
    int32_t types[6] = { 2, 3, 3, 1, 1, 1 };
    char path[] = "/tmp/finch_tok_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return FINCH_ERR_IO;
    close(fd);
    gguf_writer *w;
    finch_status st = gguf_writer_new(&w);
    if (st) return st;
    gguf_set_str(w, "tokenizer.ggml.model", "llama");
    if (variant != 1) gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 6);
    gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, variant == 2 ? 5 : 6);
    if (variant == 3) types[4] = 7;
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, 6);
    if (variant == 4) gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 6);
    st = gguf_write_file(w, path);
    gguf_writer_free(w);
    if (st) return st;
    gguf_file g;
    st = gguf_open(path, &g);
    unlink(path);
    if (st) return st;
    finch_tokenizer *t = NULL;
    st = finch_tokenizer_from_gguf(&g, &t);
    if (st == FINCH_OK && variant == 0) {
        static const int32_t want[] = { 1, 5, 5 }; /* "▁a" "▁a" */
        int32_t *ids;
        size_t n;
        if (finch_tokenize(t, "a a", 3, 1, &ids, &n) == FINCH_OK) {
            if (n != 3 || memcmp(ids, want, sizeof want) != 0) st = FINCH_ERR_INTERNAL;
            free(ids);
        }
    }
    finch_tokenizer_free(t);
    gguf_close(&g);
    return st;
}

static void test_malformed_vocab(void **state) {
    (void)state;
    assert_ok(try_vocab(0));                            /* the good one works */
    assert_int_equal(try_vocab(1), FINCH_ERR_FORMAT);   /* tokens missing */
    assert_int_equal(try_vocab(2), FINCH_ERR_FORMAT);   /* 5 scores, 6 tokens */
    assert_int_equal(try_vocab(3), FINCH_ERR_FORMAT);   /* token_type 7 */
    assert_int_equal(try_vocab(4), FINCH_ERR_FORMAT);   /* BOS past the vocabulary */

    /* tokenizer.json: no vocab; a string where an id belongs */
    char path[] = "/tmp/finch_tokj_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char *bad_json[] = {
        "{\"model\": {\"type\": \"BPE\", \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}, "
         "\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}}"),
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [] ",
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        assert_int_equal(ftruncate(fd, 0), 0);
        assert_int_equal(pwrite(fd, bad_json[i], strlen(bad_json[i]), 0), (ssize_t)strlen(bad_json[i]));
        finch_tokenizer *t = NULL;
        finch_status st = finch_tokenizer_from_json(path, NULL, &t);
        if (st != FINCH_ERR_FORMAT) fail_msg("bad json %zu: %s (%s)", i, finch_status_name(st), finch_last_error());
        assert_null(t);
    }
    /* llama2.c: a token length past the end of the file */
    static const uint8_t l2c[] = { 8, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 'a' };
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, l2c, sizeof l2c, 0), (ssize_t)sizeof l2c);
    finch_tokenizer *t = NULL;
    assert_int_equal(finch_tokenizer_from_llama2c(path, 1, &t), FINCH_ERR_FORMAT);
    close(fd);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_llama_spm),
        cmocka_unit_test(test_vectors_llama2c_bin),
        cmocka_unit_test(test_vectors_gpt2),
        cmocka_unit_test(test_vectors_qwen2),
        cmocka_unit_test(test_vectors_llama_bpe),
        cmocka_unit_test(test_tinystories_json),
        cmocka_unit_test(test_tinystories_gguf),
        cmocka_unit_test(test_llama2c_tok512),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_long_text),
        cmocka_unit_test(test_malformed_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
