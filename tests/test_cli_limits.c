/* test_cli_limits.c - the `finch` program on inputs that must be refused
 * before they turn into garbage or into a crash halfway: a NaN weight, a
 * model whose numbers overflow float32, --max-memory (too small, malformed,
 * enough), questions and budgets that do not fit the model's positions.
 * Exact exit codes, one-line errors, and the messages of docs/errors.md. */
#include "cliutil.h"
#include "modelfile.h"

#include <cjson/cJSON.h>


#define TINY "testdata/models/tiny-llama.gguf"

static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-cli-lim-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

/* The directory and everything in it (eval writes an output directory). */
static void remove_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static const char *tmp_path(const char *name) {
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

/* `n` copies of `word` separated by spaces, into a static buffer. */
static const char *words(const char *word, size_t n) {
    static char buf[6000];
    size_t len = 0, w = strlen(word);
    for (size_t i = 0; i < n && len + w + 2 < sizeof buf; i++) {
        memcpy(buf + len, word, w);
        len += w;
        buf[len++] = ' ';
    }
    buf[len ? len - 1 : 0] = 0;
    return buf;
}

static void write_task(const char *path) {
    write_text(path, "{\"id\": \"item-0\", \"context\": \"Once upon a time the magic number was 42.\", "
                     "\"question\": \"What was the magic number?\", \"answers\": [\"42\"]}\n");
}

static int finchf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int finchf(const char *fmt, ...) {
    char args[7000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run_finch(args);
}

/* ------------------------------------------------------- bad numbers */

static void test_nan_weight(void **state) {
    (void)state;
    make_tmpdir();
    const char *nan = tmp_path("nan.gguf");
    copy_file(TINY, nan);
    const uint32_t bits = 0x7fc00000u;
    patch(nan, tensor_offset(nan, "blk.1.attn_q.weight", 4 * 1234), &bits, 4);
    char want[700];
    snprintf(want, sizeof want, "finch: error: cannot load model: %s: tensor blk.1.attn_q.weight: element 1234 "
             "(row 19, column 18) is NaN\n", nan);
    assert_int_equal(finchf("info -m %s", nan), 2);
    assert_string_equal(err_text, want);
    assert_int_equal(finchf("run -m %s --context 'a b c' -q what --budget 2", nan), 2);
    assert_string_equal(err_text, want);
    assert_int_equal(finchf("generate -m %s -p hello -n 2", nan), 2);
    assert_one_line_error();
    /* convert refuses too, and leaves no output behind */
    const char *out = tmp_path("out.gguf");
    assert_int_equal(finchf("convert %s %s --type f16", nan, out), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "element 1234 (row 19, column 18) is NaN"));
    assert_int_equal(access(out, F_OK), -1);
    remove_tmpdir();
}

/* Finite weights whose products pass 3.4e38: the final norm's gains. */
static void test_overflowing_logits(void **state) {
    (void)state;
    make_tmpdir();
    const char *big = tmp_path("big.gguf"), *task = tmp_path("t.jsonl");
    copy_file(TINY, big);
    float gains[64];
    for (int i = 0; i < 64; i++) gains[i] = 3e38f;
    patch(big, tensor_offset(big, "output_norm.weight", 0), gains, sizeof gains);
    assert_int_equal(finchf("generate -m %s -p 'Once upon a time' -n 3", big), 2);
    assert_one_line_error();
    assert_true(strncmp(err_text, "finch: error: prefill failed: the logits after the prompt: the logit of token ", 78) == 0);
    assert_non_null(strstr(err_text, "(the forward pass overflowed float32)\n"));
    assert_int_equal(finchf("run -m %s --context 'Once upon a time there was a cat' -q 'who?' --budget 3 -n 2", big), 2);
    assert_one_line_error();
    assert_true(strncmp(err_text, "finch: error: Finch: the logits after the prompt: the logit of token ", 69) == 0);
    write_task(task);
    assert_int_equal(finchf("eval -m %s --task %s --press snapkv --ratio 2 --out %s", big, task, tmp_path("o")), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "press full at ratio 1: the logits after the prompt: the logit of token "));
    remove_tmpdir();
}

/* ---------------------------------------------------------- --max-memory */

static void test_max_memory(void **state) {
    (void)state;
    make_tmpdir();
    const char *task = tmp_path("t.jsonl");
    write_task(task);
    static const char bad_size[] = "finch: error: --max-memory: 'abc' is not a size (bytes, or a number with K, "
                                   "M, G or T: 512M, 2G, 1.5G)\n";
    /* A malformed size, in each command: before anything is loaded. */
    assert_int_equal(run_finch("run -m " TINY " --context 'a b c' -q what --budget 2 --max-memory abc"), 2);
    assert_string_equal(err_text, bad_size);
    assert_int_equal(run_finch("generate -m " TINY " -p hi --max-memory abc"), 2);
    assert_string_equal(err_text, bad_size);
    assert_int_equal(finchf("eval -m " TINY " --task %s --max-memory abc", task), 2);
    assert_string_equal(err_text, bad_size);
    assert_int_equal(run_finch("generate -m " TINY " -p hi --max-memory 0"), 2);
    assert_string_equal(err_text, "finch: error: --max-memory: size '0' is out of range\n");
    /* Too small: refused with both sizes, nothing run. */
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time' -q what --budget 2 --max-memory 1K"), 2);
    assert_one_line_error();
    /* the texts first, before they are tokenized: 20 bytes x 80 */
    assert_true(strncmp(err_text, "finch: error: not enough memory: the context and question (20 bytes) needs ", 75) == 0);
    assert_non_null(strstr(err_text, " to read and tokenize (1.56 KiB for the text), more than --max-memory (1.00 KiB)\n"));
    assert_string_equal(out_text, "");
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time' -q what --budget 2 --max-memory 410K"), 2);
    assert_one_line_error();
    assert_true(strncmp(err_text, "finch: error: not enough memory: the run needs ", 47) == 0);
    assert_non_null(strstr(err_text, "(weights 399.2 KiB, KV cache "));
    assert_non_null(strstr(err_text, "), more than --max-memory (410.0 KiB)\n"));
    assert_int_equal(run_finch("generate -m " TINY " -p 'Once upon a time' -n 4 --max-memory 100K"), 2);
    assert_one_line_error(); /* the model alone is too big to tokenize the prompt */
    assert_non_null(strstr(err_text, "not enough memory: the prompt (16 bytes) needs "));
    assert_int_equal(run_finch("generate -m " TINY " -p 'Once upon a time' -n 4 --max-memory 410K"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "KV cache 11.0 KiB for 11 positions")); /* 7 prompt + 4 new, 1 KiB each */
    assert_non_null(strstr(err_text, "more than --max-memory (410.0 KiB)"));
    assert_int_equal(finchf("eval -m " TINY " --task %s --max-memory 1M --out %s", task, tmp_path("o")), 2);
    assert_one_line_error();
    assert_true(strncmp(err_text, "finch: error: not enough memory: the model needs ", 49) == 0);
    /* The model alone fits, the item's cache does not: refused by item. */
    finch_model *m = NULL;
    assert_ok(finch_model_load(TINY, &m));
    size_t just_model = finch_memory_estimate(m, 0, 512).total;
    finch_model_free(m);
    assert_int_equal(finchf("eval -m " TINY " --task %s --max-memory %zu --out %s", task, just_model, tmp_path("o")), 2);
    assert_one_line_error();
    assert_true(strncmp(err_text, "finch: error: not enough memory: item 'item-0' needs ", 53) == 0);
    /* Enough. */
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time' -q what --budget 2 -n 2 --max-memory 1G"), 0);
    assert_int_equal(run_finch("generate -m " TINY " -p 'Once upon a time' -n 4 --max-memory 2M"), 0);
    assert_int_equal(finchf("eval -m " TINY " --task %s --press snapkv --ratio 2 --max-memory 64MiB --out %s", task,
                            tmp_path("o")), 0);
    remove_tmpdir();
}

/* ------------------------------------------------------- the window */

static void test_question_and_budget_fit_the_window(void **state) {
    (void)state;
    make_tmpdir();
    const char *ctx = tmp_path("ctx.txt");
    write_text(ctx, words("the cat sat on the mat.", 150)); /* ~2,000 tokens; the model has 512 positions */
    /* The question alone fills the model. */
    assert_int_equal(finchf("run -m " TINY " --context 'a b c' -q '%s' --budget 2", words("cat", 600)), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, " tokens; the model's 512 positions leave no room for the context\n"));
    /* Question and budget leave no room for a chunk. */
    assert_int_equal(finchf("run -m " TINY " -f %s -q '%s' --budget 400", ctx, words("cat", 40)), 2); /* 160 tokens */
    assert_one_line_error();
    assert_non_null(strstr(err_text, "and the budget (400) leave no room for a chunk in the model's 512 positions\n"));
    /* A chunk too large for what is left. */
    assert_int_equal(finchf("run -m " TINY " -f %s -q 'what?' --budget 100 --chunk 450", ctx), 2);
    assert_one_line_error();
    assert_true(strncmp(err_text, "finch: error: --chunk 450 + budget 100 + question ", 50) == 0);
    assert_non_null(strstr(err_text, " exceed the model's 512 positions\n"));
    /* Oneshot holds the whole context. */
    assert_int_equal(finchf("run -m " TINY " -f %s -q 'what?' --budget 100 --mode oneshot", ctx), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "positions but the model has 512; use --mode iterative\n"));
    /* Iterative reads it chunk by chunk: the same run works. */
    assert_int_equal(finchf("run -m " TINY " -f %s -q 'what?' --budget 100 -n 2", ctx), 0);
    remove_tmpdir();
}

/* A press that pads heads (adakv: up to every head's budget, the whole
 * context at 2x) holds no more than the context while it compresses: with
 * a window of N + m + 2 (81 context and 4 question tokens here) it reads
 * two chunks of 42 and answers 2 tokens (before: chunks of 2, the room the
 * whole context left; with -c 85, 0 answer tokens, before refused). */
static void test_padded_press_at_2x_fits_the_context(void **state) {
    (void)state;
    const char *run = "run -m " TINY " --context 'Once upon a time there was a little girl who lived in a village "
                      "near the forest. She liked to walk and sing and play with her dog every day.' -q 'who?' "
                      "--press adakv --ratio 2 -n 2 -t 1 --json -c %d";
    int windows[] = { 87, 85 }, chunks[] = { 42, 40 }, n_chunks[] = { 2, 3 }, answered[] = { 2, 0 };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(finchf(run, windows[i]), 0);
        cJSON *j = cJSON_Parse(out_text);
        assert_non_null(j);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "N")->valueint, 81);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "m")->valueint, 4);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "K")->valueint, 41);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "chunk")->valueint, chunks[i]);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "n_chunks")->valueint, n_chunks[i]);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "kv_capacity_positions")->valueint, 85);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "generated")), answered[i]);
        cJSON_Delete(j);
    }
}

/* A budget above the context keeps everything (docs/errors.md): a note,
 * K = N, compression 1. */
static void test_budget_larger_than_context(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time' -q what --budget 1000 -n 1 --json"), 0);
    assert_non_null(strstr(err_text, "finch: note: the budget keeps all 7 context tokens: nothing is evicted\n"));
    assert_non_null(strstr(out_text, "\"N\":\t7,"));
    assert_non_null(strstr(out_text, "\"K\":\t7,"));
    assert_non_null(strstr(out_text, "\"compression\":\t1,"));
    /* the answer stops at the model's 512 positions */
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time' -q what --budget 2 -n 1000000 --temp 1"), 0);
    assert_non_null(strstr(err_text, "finch: note: -n reduced to "));
    assert_non_null(strstr(err_text, " to stay within the context length 512\n"));
}

int main(void) {
    if (access(finch_bin(), X_OK) != 0) {
        fprintf(stderr, "finch binary not found at %s (set FINCH_BIN)\n", finch_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nan_weight),
        cmocka_unit_test(test_overflowing_logits),
        cmocka_unit_test(test_max_memory),
        cmocka_unit_test(test_question_and_budget_fit_the_window),
        cmocka_unit_test(test_padded_press_at_2x_fits_the_context),
        cmocka_unit_test(test_budget_larger_than_context),
    };
    return cmocka_run_group_tests_name("cli_limits", tests, NULL, NULL);
}
