/* test_needle.c - the shipped retrieval model, testdata/models/needle.gguf
 * (weights constructed by tools/make_needle_model.py, docs/needle-model.md).
 *
 * Its tokenizer gives every word of a needle one token, and greedy decoding
 * through the C engine (finch_feed + finch_decode, full cache) answers needle
 * questions exactly - " <value>", ".", "</s>" - in a short text with three
 * needles and in a text that fills the model's 4096-position window with
 * four needles at depths 0, 1/3, 2/3 and 1. */
#include "testutil.h"

static const char *FILLER[] = {
    "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
    "There and back again.", "The river is calm and the road is long.",
    "It is time for a walk in the park.", "A bird is singing in the old tree.",
    "We went to the city for the day.", "The house is on the hill.",
    "She said that the water is cold.", "They came home after the rain.",
    "This is a good day for a long walk.", "The night is dark and the moon is bright.",
    "He made a cup of tea for his father.", "Rest now, for it is late.",
};
#define N_FILLER (sizeof FILLER / sizeof FILLER[0])

typedef struct {
    const char *key, *value;
    size_t at; /* inserted before filler sentence number `at` */
} needle;

static finch_model *load_needle(void) {
    finch_model *m = NULL;
    assert_ok(finch_model_load(test_data("models/needle.gguf"), &m));
    assert_non_null(m->tokenizer);
    assert_int_equal(m->cfg.ctx_len, 4096);
    return m;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    if (*len) (*buf)[(*len)++] = ' ';
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* n_sent filler sentences (a fixed shuffle-free cycle with stride 7, so
 * neighbours differ) with the needles inserted. */
static char *build_context(size_t n_sent, const needle *nd, size_t n_nd) {
    char *buf = NULL, line[256];
    size_t len = 0, cap = 0;
    for (size_t s = 0; s <= n_sent; s++) {
        for (size_t k = 0; k < n_nd; k++) {
            if (nd[k].at != s) continue;
            snprintf(line, sizeof line, "The special magic number for %s is %s.", nd[k].key,
                     nd[k].value);
            append(&buf, &len, &cap, line);
        }
        if (s < n_sent) append(&buf, &len, &cap, FILLER[(s * 7) % N_FILLER]);
    }
    return buf;
}

static int32_t *tokenize(const finch_model *m, const char *text, int bos, size_t *n) {
    int32_t *ids = NULL;
    assert_ok(finch_tokenize(m->tokenizer, text, strlen(text), bos, &ids, n));
    return ids;
}

/* Ask for `key` after `context`; the greedy continuation must be exactly
 * the value's token, ".", EOS.  Returns the prompt length. */
static size_t ask(const finch_model *m, finch_ctx *ctx, const char *context, const char *key,
                  const char *value) {
    size_t n_ctx = strlen(context), n;
    char *text = malloc(n_ctx + 256);
    assert_non_null(text);
    snprintf(text, n_ctx + 256,
             "%s What is the special magic number for %s? The special magic number for %s is",
             context, key, key);
    int32_t *ids = tokenize(m, text, 1, &n);
    assert_true(n + 3 <= m->cfg.ctx_len);

    size_t nv, nd;
    int32_t *vid = tokenize(m, value, 0, &nv); /* " <value>": one token */
    assert_int_equal(nv, 1);
    int32_t *dot = tokenize(m, "is.", 0, &nd); /* "▁is" "." */
    assert_int_equal(nd, 2);
    const int32_t eos = finch_tokenizer_eos(m->tokenizer);
    const int32_t want[3] = { vid[0], dot[1], eos };

    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, &m->cfg, n + 3));
    float *logits = malloc(m->cfg.vocab * sizeof *logits);
    assert_non_null(logits);
    assert_ok(finch_feed(ctx, &kv, ids, n, 0, logits));
    finch_sampler smp;
    finch_sampler_params sp = { 0.0f, 1.0f, 1 };
    assert_ok(finch_sampler_init(&smp, sp, m->cfg.vocab));
    int32_t *out = NULL;
    size_t n_out = 0;
    assert_ok(finch_decode(ctx, &kv, n, logits, &smp, 3, eos, NULL, NULL, &out, &n_out));
    if (n_out != 3 || memcmp(out, want, sizeof want) != 0)
        fail_msg("key %s (prompt %zu tokens): got %zu tokens [%d %d %d], want [%d %d %d]", key, n,
                 n_out, n_out > 0 ? out[0] : -1, n_out > 1 ? out[1] : -1,
                 n_out > 2 ? out[2] : -1, want[0], want[1], want[2]);
    free(out);
    finch_sampler_free(&smp);
    free(logits);
    finch_kv_free(&kv);
    free(vid);
    free(dot);
    free(ids);
    free(text);
    return n;
}

/* The needle's words are single tokens, as the Python encoder
 * (tools/make_needle_model.py Encoder) gives them. */
static void test_needle_tokenizer(void **state) {
    (void)state;
    finch_model *m = load_needle();
    static const int32_t want[] = { 1, 580, 1341, 1136, 1257, 636, 1157, 481, 822, 322 };
    size_t n;
    int32_t *ids = tokenize(m, "The special magic number for pizza is 4821.", 1, &n);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    static const char *words[] = { "zebra", "violin", "wallet", "backpack", "1650", "9319" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        ids = tokenize(m, words[i], 0, &n);
        assert_int_equal(n, 1);
        free(ids);
    }
    finch_model_free(m);
}

static void test_needle_short(void **state) {
    (void)state;
    finch_model *m = load_needle();
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 2, 512, &ctx));
    const needle nd[] = { { "pizza", "4821", 3 }, { "zebra", "1650", 10 }, { "violin", "9319", 20 } };
    char *context = build_context(24, nd, 3);
    for (size_t k = 0; k < 3; k++) ask(m, ctx, context, nd[k].key, nd[k].value);
    free(context);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* Four needles in a text that fills the window: prompts of ~4090 tokens. */
static void test_needle_window(void **state) {
    (void)state;
    finch_model *m = load_needle();
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 2, 512, &ctx));
    const size_t n_sent = 530;
    const needle nd[] = { { "wallet", "5237", 0 },
                          { "backpack", "3604", n_sent / 3 },
                          { "koala", "7410", 2 * n_sent / 3 },
                          { "laptop", "2460", n_sent } };
    char *context = build_context(n_sent, nd, 4);
    for (size_t k = 0; k < 4; k++) {
        size_t n = ask(m, ctx, context, nd[k].key, nd[k].value);
        assert_true(n > 4000);
    }
    free(context);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needle_tokenizer),
        cmocka_unit_test(test_needle_short),
        cmocka_unit_test(test_needle_window),
    };
    return cmocka_run_group_tests_name("needle", tests, NULL, NULL);
}
