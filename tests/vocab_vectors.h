/* vocab_vectors.h - llama.cpp's tokenizer test vectors
 * (../shared/assets/tokenizers/llamacpp/ggml-vocab-*.gguf.{inp,out}), read
 * for the library's tokenizer tests and the `finch tokenize` tests. */
#ifndef FINCH_VOCAB_VECTORS_H
#define FINCH_VOCAB_VECTORS_H

#include "testutil.h"
#include "util.h"

/* llama.cpp's vector files: the .inp file is every test string followed by
 * "\n__ggml_vocab_test__\n" (so a string never owns that newline); the .out
 * file has one line of space-separated ids per string, without BOS. */
typedef struct {
    char *inp, *out;  /* file contents (strings are cut in place) */
    size_t n;
    const char *str[64];
    size_t len[64];
    int32_t *ids[64];
    size_t n_ids[64];
} vectors;

static void vectors_free(vectors *v) {
    for (size_t i = 0; i < v->n; i++) free(v->ids[i]);
    free(v->inp);
    free(v->out);
}

/* false when the files are absent */
static bool vectors_load(const char *name, vectors *v) {
    char rel[256];
    memset(v, 0, sizeof *v);
    snprintf(rel, sizeof rel, "tokenizers/llamacpp/%s.inp", name);
    const char *p = test_asset(rel);
    if (!p) return false;
    size_t len;
    assert_ok(finch_read_file(p, &v->inp, &len));
    snprintf(rel, sizeof rel, "tokenizers/llamacpp/%s.out", name);
    p = test_asset(rel);
    if (!p) return false;
    assert_ok(finch_read_file(p, &v->out, NULL));
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *s = v->inp;
    for (char *e; (e = strstr(s, sep)) != NULL; s = e + strlen(sep)) {
        assert_true(v->n < 64);
        *e = 0;
        v->str[v->n] = s;
        v->len[v->n] = (size_t)(e - s);
        v->n++;
    }
    char *line = v->out;
    for (size_t i = 0; i < v->n; i++) {
        assert_non_null(line);
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        v->ids[i] = calloc(strlen(line) / 2 + 1, sizeof(int32_t));
        for (char *q = line, *end; *q; q = end) {
            long x = strtol(q, &end, 10);
            if (end == q) break;
            v->ids[i][v->n_ids[i]++] = (int32_t)x;
        }
        line = nl ? nl + 1 : NULL;
    }
    return true;
}

#endif
