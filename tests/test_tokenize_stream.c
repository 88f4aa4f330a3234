/* test_tokenize_stream.c - long texts are encoded block by block (bounded
 * memory); the ids must equal those of encoding the whole text at once, and
 * bad bytes are reported at their exact offset. */
#include "testutil.h"

#include "gguf.h"
#include "tokenizer.h"

#include <unistd.h>

/* A text of many lines (about 300 KB: several blocks): KJV verses when the
 * asset is there, else generated sentences with varied spacing. */
static char *long_text(size_t *len) {
    size_t cap = 320 * 1024, n = 0;
    char *s = malloc(cap);
    const char *kjv = test_asset("haystack/kjv_bible.txt.gz");
    if (kjv) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "gzip -dc '%s'", kjv);
        FILE *p = popen(cmd, "r");
        if (p) {
            n = fread(s, 1, cap - 1, p);
            pclose(p);
        }
    }
    static const char *words[] = { "the", "magic", "number", "Once", "upon", "a", "time,", "is", "42.", "  two",
                                   "tab\there", "don't", "über", "日本" };
    for (unsigned i = 1; n + 64 < cap; i++) {
        n += (size_t)snprintf(s + n, cap - n, "%s%s", words[(i * 7) % 14], i % 11 == 0 ? "\n" : (i % 23 == 0 ? "\n\n " : " "));
    }
    s[n] = 0;
    *len = n;
    return s;
}

static void check_same(const finch_tokenizer *t, const char *text, size_t len, const char *name) {
    int32_t *whole, *streamed;
    size_t n_whole, n_streamed;
    assert_ok(finch_tokenize(t, text, len, 1, &whole, &n_whole));
    char path[] = "/tmp/finch-stream-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    FILE *f = fopen(path, "rb");
    assert_ok(finch_tokenize_file(t, f, 1, &streamed, &n_streamed));
    fclose(f);
    unlink(path);
    fprintf(stderr, "  %s: %zu bytes -> %zu ids whole, %zu streamed\n", name, len, n_whole, n_streamed);
    assert_int_equal(n_whole, n_streamed);
    assert_memory_equal(whole, streamed, n_whole * sizeof(int32_t));
    free(whole);
    free(streamed);
}

static void test_stream_equals_whole_tiny(void **state) {
    (void)state;
    finch_model *m;
    assert_ok(finch_model_load("testdata/models/tiny-llama.gguf", &m));
    size_t len;
    char *text = long_text(&len);
    check_same(m->tokenizer, text, len, "tiny-llama (spm)");
    free(text);
    finch_model_free(m);
}

static void test_stream_equals_whole_real_vocabs(void **state) {
    (void)state;
    char dir[4096];
    const char *found = test_asset("models/tinystories-656k");
    if (!found) SKIP_MSG("assets not found");
    snprintf(dir, sizeof dir, "%s", found);
    size_t len;
    char *text = long_text(&len);
    finch_model *m;
    assert_ok(finch_model_load(dir, &m));
    check_same(m->tokenizer, text, len, "tinystories (hf bpe)");
    finch_model_free(m);
    const char *vocabs[] = { "tokenizers/llamacpp/ggml-vocab-llama-spm.gguf", "tokenizers/llamacpp/ggml-vocab-gpt-2.gguf" };
    for (size_t i = 0; i < 2; i++) {
        const char *p = test_asset(vocabs[i]);
        if (!p) continue;
        gguf_file g;
        finch_tokenizer *t;
        assert_ok(gguf_open(p, &g));
        assert_ok(finch_tokenizer_from_gguf(&g, &t));
        check_same(t, text, len, vocabs[i]);
        finch_tokenizer_free(t);
        gguf_close(&g);
    }
    free(text);
}

static void test_bad_bytes_exact_offset(void **state) {
    (void)state;
    finch_model *m;
    assert_ok(finch_model_load("testdata/models/tiny-llama.gguf", &m));
    size_t len;
    char *text = long_text(&len);
    text[100000] = (char)0xff; /* deep in a later block */
    char path[] = "/tmp/finch-stream-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    FILE *f = fopen(path, "rb");
    int32_t *ids;
    size_t n;
    assert_int_equal(finch_tokenize_file(m->tokenizer, f, 1, &ids, &n), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "byte 100000"));
    fclose(f);
    unlink(path);
    assert_int_equal(finch_check_text("ab\0c", 4), FINCH_ERR_FORMAT);
    assert_non_null(strstr(finch_last_error(), "NUL byte at byte 2"));
    assert_int_equal(finch_check_text("\xc3\x28", 2), FINCH_ERR_FORMAT);
    assert_int_equal(finch_check_text("caf\xc3\xa9", 5), FINCH_OK);
    free(text);
    finch_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_equals_whole_tiny),
        cmocka_unit_test(test_stream_equals_whole_real_vocabs),
        cmocka_unit_test(test_bad_bytes_exact_offset),
    };
    return cmocka_run_group_tests_name("tokenize_stream", tests, NULL, NULL);
}
