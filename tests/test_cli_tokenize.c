/* test_cli_tokenize.c - `finch tokenize` on tokenizer files alone (no
 * weights): llama.cpp's test vectors give the same ids through its
 * vocab-only GGUFs, through the llama2.c tokenizer.bin, a SentencePiece
 * tokenizer.model, a tokenizer.json and a tiktoken file; --ids, --json and
 * --decode; files it cannot read are refused by name.  Skips cleanly without ../shared/assets. */
#include "cliutil.h"
#include "vocab_vectors.h"

#define TINY "testdata/models/tiny-llama.gguf"

/* The ids printed for text s (written to a file: the vectors hold quotes,
 * newlines and every script) match the expected line; up to `max` vectors. */
static void check_cli_vectors(const char *tokenizer_rel, const char *vectors_name, size_t max) {
    char tok[4096];
    const char *p = test_asset(tokenizer_rel);
    snprintf(tok, sizeof tok, "%s", p ? p : ""); /* test_asset's buffer is reused */
    vectors v;
    if (!p || !vectors_load(vectors_name, &v)) {
        SKIP_MSG("%s or the %s vectors not found (set FINCH_ASSETS)", tokenizer_rel, vectors_name);
        return;
    }
    char text_path[64], args[4400];
    snprintf(text_path, sizeof text_path, "/tmp/finch-tok-text.%d", (int)getpid());
    size_t n = v.n < max ? v.n : max, ok = 0;
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(text_path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(v.str[i], 1, v.len[i], f), v.len[i]);
        fclose(f);
        snprintf(args, sizeof args, "tokenize -m '%s' --no-bos -f %s", tok, text_path);
        assert_int_equal(run_finch(args), 0);
        char want[8192] = "";
        size_t len = 0;
        for (size_t k = 0; k < v.n_ids[i]; k++)
            len += (size_t)snprintf(want + len, sizeof want - len, "%s%d", k ? " " : "", v.ids[i][k]);
        snprintf(want + len, sizeof want - len, "\n");
        if (!strcmp(out_text, want)) ok++;
        else fprintf(stderr, "%s vector %zu: got %.80s  expected %.80s\n", tokenizer_rel, i, out_text, want);
    }
    unlink(text_path);
    vectors_free(&v);
    assert_int_equal(ok, n);
}

static void test_llama_spm_vocab_gguf(void **state) {
    (void)state;
    check_cli_vectors("tokenizers/llamacpp/ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf", 64);
}

/* a gpt2 architecture: no model finch runs, but its vocabulary tokenizes */
static void test_gpt2_vocab_gguf(void **state) {
    (void)state;
    check_cli_vectors("tokenizers/llamacpp/ggml-vocab-gpt-2.gguf", "ggml-vocab-gpt-2.gguf", 64);
}

/* the other formats, on a few vectors each (their files load slower) */
static void test_other_tokenizer_files(void **state) {
    (void)state;
    check_cli_vectors("tokenizers/llama2/tokenizer.bin", "ggml-vocab-llama-spm.gguf", 8);
    check_cli_vectors("tokenizers/llama2/tokenizer.model", "ggml-vocab-llama-spm.gguf", 64); /* SentencePiece */
    check_cli_vectors("tokenizers/llama3/tokenizer.model", "ggml-vocab-llama-bpe.gguf", 4);
    check_cli_vectors("tokenizers/qwen3/tokenizer.json", "ggml-vocab-qwen2.gguf", 4);
}

static void test_output_forms(void **state) {
    (void)state;
    assert_int_equal(run_finch("tokenize -m " TINY " --ids 'Once upon a time'"), 0);
    assert_string_equal(out_text, "[1, 304, 303, 261, 259, 293, 329]\n");
    assert_int_equal(run_finch("tokenize -m " TINY " --no-bos 'Once upon a time'"), 0);
    assert_string_equal(out_text, "304 303 261 259 293 329\n");
    assert_int_equal(run_finch("tokenize -m " TINY " --decode 304,303,261,259,293,329"), 0);
    assert_string_equal(out_text, "Once upon a time\n");
    assert_int_equal(run_finch("tokenize -m " TINY " --json 'Once'"), 0);
    assert_non_null(strstr(out_text, "\"ids\":\t[1, 304]"));
    assert_non_null(strstr(out_text, "\"pieces\":\t[\"\", \"Once\"]"));
    assert_non_null(strstr(out_text, "\"finch_version\":\t\"" FINCH_VERSION "\""));
}

static void test_refusals(void **state) {
    (void)state;
    assert_int_equal(run_finch("tokenize -m " TINY " --decode 1,99999"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "--decode needs token ids in [0, "));
    assert_int_equal(run_finch("tokenize -m " TINY " --decode 1 text"), 2);
    assert_one_line_error();
    assert_int_equal(run_finch("tokenize -m " TINY " --ids --json text"), 2);
    assert_one_line_error();
    assert_int_equal(run_finch("tokenize -m testdata/README.md text"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "not a tokenizer finch reads"));
    /* SentencePiece protobuf: a unigram model (field 1: one piece "a";
     * field 2, trainer spec: model_type 1) and a truncated one */
    static const unsigned char unigram[] = { 0x0A, 0x03, 0x0A, 0x01, 'a', 0x12, 0x02, 0x18, 0x01 };
    static const unsigned char truncated[] = { 0x0A, 0x09, 0x0A, 0x01, 'a' };
    const struct { const unsigned char *bytes; size_t n; const char *why; } bad[] = {
        { unigram, sizeof unigram, "SentencePiece model type 1 is not supported (BPE only; unigram models are not)" },
        { truncated, sizeof truncated, "not a SentencePiece model (malformed protobuf)" },
    };
    char path[64], args[256];
    snprintf(path, sizeof path, "/tmp/finch-spm.%d.model", (int)getpid());
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bad[i].bytes, 1, bad[i].n, f), bad[i].n);
        fclose(f);
        snprintf(args, sizeof args, "tokenize -m %s text", path);
        assert_int_equal(run_finch(args), 2);
        assert_one_line_error();
        assert_non_null(strstr(err_text, bad[i].why));
    }
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm_vocab_gguf),
        cmocka_unit_test(test_gpt2_vocab_gguf),
        cmocka_unit_test(test_other_tokenizer_files),
        cmocka_unit_test(test_output_forms),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
