/* test_cli_inputs.c - inputs that are not what they claim (issue 11, items
 * 8-11): endless or NUL-filled texts, a FIFO as the model, texts too large
 * for --max-memory, models whose metadata disagrees with their tensors, a
 * tokenizer of another model, long token pieces, an escaped NUL in a task,
 * a corrupted results.json for --resume, -h as a flag's value, an empty
 * prompt, and eval's output directory when the model is missing. */
#include "cliutil.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>

#define TINY "testdata/models/tiny-llama.gguf"

static char dir[64];

static const char *in_dir(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int finchf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int finchf(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run_finch(args);
}

static void expect_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void expect_error(const char *fmt, ...) {
    char line[2048], want[2100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(want, sizeof want, "finch: error: %s\n", line);
    if (strcmp(err_text, want)) fail_msg("stderr '%s', expected '%s'", err_text, want);
}

static int setup(void **state) {
    (void)state;
    test_make_tmpdir(dir, sizeof dir, "finch-inputs");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* Item 8: /dev/zero fails at its first byte; a FIFO as the model is refused
 * at once (`timeout` only turns a regression into a failure, not a hang). */
static void test_endless_and_fifo_inputs(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m " TINY " -f /dev/zero -q who --ratio 2"), 2);
    expect_error("cannot read the context /dev/zero: text holds a NUL byte at byte 0");
    assert_int_equal(finchf("eval -m " TINY " --task /dev/zero --out %s", in_dir("o")), 2);
    expect_error("--task: /dev/zero holds a NUL byte at byte 0");
    assert_int_equal(access(in_dir("o"), F_OK), -1);
    const char *fifo = in_dir("model.gguf");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "timeout 60 %s info -m %s 2>/dev/null", finch_bin(), fifo);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    assert_int_equal(finchf("info -m %s", fifo), 2);
    expect_error("cannot load model: %s: %s is not a regular file", fifo, fifo);
    unlink(fifo);
}

/* A Hugging Face directory whose config.json or tokenizer.json is a FIFO
 * is refused before it is read, even with a writer holding the FIFO open
 * (the test itself: reading it would wait for bytes that never come). */
static void test_hf_dir_fifo_refused(void **state) {
    (void)state;
    const char *names[] = { "config.json", "tokenizer.json" };
    for (size_t i = 0; i < 2; i++) {
        char hf[300], fifo[400], cmd[1024];
        snprintf(hf, sizeof hf, "%s", in_dir(i ? "hf-tok" : "hf-config"));
        assert_int_equal(mkdir(hf, 0700), 0);
        const char *linked[] = { "config.json", "model.safetensors", "tokenizer_config.json" };
        for (size_t j = i ? 0 : 3; j < 3; j++) { /* the real files beside the FIFO */
            char target[300], link[400];
            snprintf(target, sizeof target, "%s/testdata/models/tiny-hf-llama/%s", getcwd(cmd, sizeof cmd), linked[j]);
            snprintf(link, sizeof link, "%s/%s", hf, linked[j]);
            assert_int_equal(symlink(target, link), 0);
        }
        snprintf(fifo, sizeof fifo, "%s/%s", hf, names[i]);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        int writer = open(fifo, O_RDWR); /* a writer that never writes */
        assert_true(writer >= 0);
        snprintf(cmd, sizeof cmd, "timeout 60 %s info -m %s 2>/dev/null", finch_bin(), hf);
        assert_int_equal(WEXITSTATUS(system(cmd)), 2);
        assert_int_equal(finchf("info -m %s", hf), 2);
        expect_error("cannot load model: %s: %s is not a regular file", hf, fifo);
        close(writer);
    }
}

static void write_words(const char *path, size_t n_words) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n_words; i++) fputs(i ? " time" : "time", f);
    assert_int_equal(fclose(f), 0);
}

/* Item 9: --max-memory counts the texts before they are read: a 100,000
 * word context, a 5 MB task line. */
static void test_max_memory_counts_the_texts(void **state) {
    (void)state;
    const char *ctx = in_dir("ctx.txt");
    write_words(ctx, 100000); /* 499,999 bytes on one line */
    finch_model *m = NULL;
    assert_ok(finch_model_load(TINY, &m));
    size_t text = 499999 + 3, need = finch_memory_estimate(m, 0, 1).total + finch_memory_text(text);
    finch_model_free(m);
    char need_s[32], text_s[32];
    finch_format_size(need, need_s, sizeof need_s);
    finch_format_size(finch_memory_text(text), text_s, sizeof text_s);
    assert_int_equal(finchf("run -m " TINY " -f %s -q who --ratio 2 --max-memory 8M", ctx), 2);
    expect_error("not enough memory: the context and question (%zu bytes) needs %s to read and tokenize (%s for the "
                 "text), more than --max-memory (8.00 MiB)", text, need_s, text_s);
    /* one task whose context is 5,000,000 bytes */
    const char *task = in_dir("big.jsonl");
    FILE *f = fopen(task, "w");
    assert_non_null(f);
    fputs("{\"id\": \"big\", \"question\": \"who?\", \"answers\": [\"x\"], \"context\": \"", f);
    for (size_t i = 0; i < 1000000; i++) fputs("time ", f);
    fputs("\"}\n", f);
    assert_int_equal(fclose(f), 0);
    struct stat st;
    assert_int_equal(stat(task, &st), 0);
    assert_int_equal(finchf("eval -m " TINY " --task %s --max-memory 16M --out %s", task, in_dir("o")), 2);
    char four[32];
    finch_format_size(4 * (size_t)st.st_size, four, sizeof four);
    expect_error("not enough memory: --task %s (%zu bytes) needs %s to read and parse, more than --max-memory "
                 "(16.0 MiB)", task, (size_t)st.st_size, four);
    assert_int_equal(finchf("eval -m " TINY " --task %s --max-memory 64M --out %s", task, in_dir("o")), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "not enough memory: item 'big' (5000004 bytes) needs "));
    assert_int_equal(access(in_dir("o"), F_OK), -1); /* nothing written: no empty directory either */
}

/* Item 10: each inconsistent model of tests/fuzz/regressions (made by
 * tools/make_fuzz_seeds.py) is refused, naming the tensor or the key. */
static void test_inconsistent_models_refused_by_name(void **state) {
    (void)state;
    static const struct { const char *file, *why; } cases[] = {
        { "gguf-block-count-short.gguf", "tensor blk.1.attn_norm.weight belongs to block 1 but block_count is 1" },
        { "gguf-extra-blk2.gguf", "tensor blk.2.attn_norm.weight belongs to block 2 but block_count is 2" },
        { "gguf-extra-foo.gguf", "tensor foo.weight is not used by the llama architecture (not supported)" },
        { "gguf-ctx-len-string.gguf", "GGUF key llama.context_length has type string" },
        { "gguf-ctx-len-negative.gguf", "metadata llama.context_length is -1, expected a non-negative integer" },
        { "gguf-rope-base-string.gguf", "GGUF key llama.rope.freq_base has type string" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fuzz/regressions/%s", cases[i].file);
        assert_int_equal(finchf("info -m %s", path), 2);
        expect_error("cannot load model: %s: %s", path, cases[i].why);
    }
}

/* testdata's HF directory copied with one more tensor in its safetensors
 * (name, 4 floats appended after the data). */
static void hf_copy_with_extra_tensor(const char *out, const char *name) {
    const char *src = "testdata/models/tiny-hf-llama";
    char cmd[600], path[300], *data = NULL;
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/config.json %s/tokenizer.json %s/tokenizer_config.json %s/", out,
             src, src, src, out);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    size_t n;
    assert_ok(finch_read_file(path, &data, &n));
    uint64_t hlen;
    memcpy(&hlen, data, 8);
    cJSON *h = cJSON_ParseWithLength(data + 8, (size_t)hlen);
    assert_non_null(h);
    size_t body = n - 8 - (size_t)hlen;
    cJSON *t = cJSON_AddObjectToObject(h, name);
    cJSON_AddStringToObject(t, "dtype", "F32");
    int shape[1] = { 4 }, offs[2] = { (int)body, (int)body + 16 };
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, 1));
    cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateIntArray(offs, 2));
    char *head = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t len = strlen(head), pad = (8 - len % 8) % 8;
    uint64_t new_len = len + pad;
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(&new_len, 8, 1, f);
    fwrite(head, 1, len, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fwrite(data + 8 + hlen, 1, body, f);
    float extra[4] = { 1, 2, 3, 4 };
    fwrite(extra, 4, 4, f);
    assert_int_equal(fclose(f), 0);
    free(head);
    free(data);
}

/* Item 10, HF directories: the same rule, with the HF names. */
static void test_hf_extra_tensor_refused_by_name(void **state) {
    (void)state;
    const char *out = in_dir("hf-foo");
    hf_copy_with_extra_tensor(out, "model.foo.weight");
    assert_int_equal(finchf("info -m %s", out), 2);
    expect_error("cannot load model: %s: tensor model.foo.weight is not used by the llama architecture (not "
                 "supported)", out);
    out = in_dir("hf-layer2");
    hf_copy_with_extra_tensor(out, "model.layers.2.input_layernorm.weight");
    assert_int_equal(finchf("info -m %s", out), 2);
    expect_error("cannot load model: %s: tensor model.layers.2.input_layernorm.weight belongs to block 2 but "
                 "num_hidden_layers is 2", out);
}

/* A llama2.c tokenizer file: max length, then (score, length, bytes). */
static void write_l2c_tokenizer(const char *path, size_t n, size_t long_len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint32_t max = (uint32_t)(long_len > 8 ? long_len : 8);
    fwrite(&max, 4, 1, f);
    char piece[512];
    for (size_t i = 0; i < n; i++) {
        size_t len = i == 5 ? long_len : (size_t)snprintf(piece, sizeof piece, "t%zu", i);
        if (i == 5) memset(piece, 'x', len);
        float score = -(float)i;
        uint32_t l = (uint32_t)len;
        fwrite(&score, 4, 1, f);
        fwrite(&l, 4, 1, f);
        fwrite(piece, 1, len, f);
    }
    assert_int_equal(fclose(f), 0);
}

/* Item 11: a tokenizer of another model; a 300-byte piece is not cut. */
static void test_tokenizer_size_and_long_pieces(void **state) {
    (void)state;
    const char *tok = in_dir("tok.bin");
    write_l2c_tokenizer(tok, 9, 300);
    finch_tokenizer *t = NULL;
    assert_int_equal(finch_tokenizer_from_llama2c(tok, 8, &t), FINCH_ERR_FORMAT);
    char want[512];
    snprintf(want, sizeof want, "%s holds more than the model's 8 tokens (10 bytes left): a tokenizer of another "
             "model", tok);
    assert_string_equal(finch_last_error(), want);
    assert_ok(finch_tokenizer_from_llama2c(tok, 9, &t));
    size_t len;
    const char *piece = finch_token_piece(t, 4, 5, &len);
    assert_int_equal(len, 300); /* cut at 64 in JSON and 255 on stdout before */
    for (size_t i = 0; i < len; i++) assert_int_equal(piece[i], 'x');
    char buf[256];
    assert_int_equal(finch_token_to_bytes(t, 4, 5, buf, sizeof buf), 256); /* the bounded copy stays bounded */
    finch_tokenizer_free(t);
    char model_path[512];
    const char *model = test_asset("models/aidreams-260k/aidreams260K.bin"); /* a static buffer: copied */
    snprintf(model_path, sizeof model_path, "%.500s", model ? model : "");
    const char *big = test_asset("tokenizers/llama2/tokenizer.bin");
    if (!model || !big) return; /* the CLI half needs the llama2.c assets */
    assert_int_equal(finchf("convert %s %s --tokenizer %s", model_path, in_dir("x.gguf"), big), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "holds more than the model's 512 tokens"));
    assert_int_equal(access(in_dir("x.gguf"), F_OK), -1);
}

static void write_task(const char *path, const char *line) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(line, f);
    assert_int_equal(fclose(f), 0);
}

/* Item 11: an escaped NUL would cut the task's text: refused. */
static void test_escaped_nul_in_task(void **state) {
    (void)state;
    const char *task = in_dir("nul.jsonl");
    write_task(task, "{\"id\": \"a\", \"context\": \"Once \\u0000 upon\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    assert_int_equal(finchf("eval -m " TINY " --task %s --out %s", task, in_dir("o")), 2);
    expect_error("--task: %s:1: an escaped NUL (\\u0000) at byte 29: text holds no NUL", task);
    /* an escaped backslash before u0000 is text, not a NUL */
    write_task(task, "{\"id\": \"a\", \"context\": \"Once \\\\u0000 upon\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    assert_int_equal(finchf("eval -m " TINY " --task %s --press snapkv --ratio 2 -n 1 --out %s", task, in_dir("o")), 0);
}

/* Rewrite out/results.json with one change made by `edit`. */
static void corrupt_results(const char *out, void (*edit)(cJSON *items)) {
    char path[256], *text = NULL;
    size_t n;
    snprintf(path, sizeof path, "%s/results.json", out);
    assert_ok(finch_read_file(path, &text, &n));
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    edit(cJSON_GetObjectItemCaseSensitive(j, "items"));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    write_task(path, s);
    free(s);
}

static cJSON *first_run(cJSON *items) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0), "runs"), 0);
}
static void repeat_item(cJSON *items) { cJSON_AddItemToArray(items, cJSON_Duplicate(cJSON_GetArrayItem(items, 0), 1)); }
static void em_as_string(cJSON *items) { cJSON_ReplaceItemInObject(first_run(items), "em", cJSON_CreateString("1")); }
static void absurd_kl(cJSON *items) { cJSON_ReplaceItemInObject(first_run(items), "kl", cJSON_CreateNumber(1e300)); }

/* Item 11: --resume checks every record of results.json. */
static void test_resume_refuses_a_corrupted_results_file(void **state) {
    (void)state;
    const char *task = in_dir("t.jsonl"), *out = in_dir("r");
    write_task(task, "{\"id\": \"a\", \"context\": \"Once upon a time the magic number was 42.\", "
                     "\"question\": \"What was the magic number?\", \"answers\": [\"42\"]}\n");
    const char *run = "eval -m " TINY " --task %s --press snapkv --ratio 2 -n 1 --out %s --resume";
    assert_int_equal(finchf(run, task, out), 0);
    char results[256];
    snprintf(results, sizeof results, "%s/results.json", out);
    struct { void (*edit)(cJSON *); const char *why; } cases[] = {
        { repeat_item, "item 1 ('a'): the id is repeated" },
        { em_as_string, "item 0 ('a'): 'em' is missing or not a number" },
        { absurd_kl, "item 0 ('a'): 'kl' is 1e+300, outside [0, 1e+06]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(finchf(run, task, out), 0); /* a fresh, valid file again (all items done) */
        corrupt_results(out, cases[i].edit);
        assert_int_equal(finchf(run, task, out), 2);
        expect_error("--resume: %s: %s", results, cases[i].why);
        assert_int_equal(finchf("eval -m " TINY " --task %s --press snapkv --ratio 2 -n 1 --out %s", task, out), 0);
    }
}

/* Item 11: -h as the value of -q is the question; -h in an option's place
 * is help; an empty prompt is refused; a missing model leaves no --out. */
static void test_flags_and_empty_inputs(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time' -q -h --ratio 2 -n 1"), 0);
    assert_null(strstr(out_text, "usage:"));
    assert_non_null(strstr(err_text, "| N 7, K 4, m 3,")); /* "-h" is the question: 3 tokens */
    assert_int_equal(run_finch("run -m " TINY " -h"), 0);
    assert_non_null(strstr(out_text, "usage:"));
    assert_int_equal(run_finch("generate -m " TINY " -p ''"), 2);
    expect_error("the prompt is empty");
    const char *task = in_dir("t2.jsonl");
    write_task(task, "{\"id\": \"a\", \"context\": \"Once\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    assert_int_equal(finchf("eval -m %s --task %s --out %s", in_dir("missing.gguf"), task, in_dir("never")), 2);
    expect_error("cannot load model: %s: cannot open %s: No such file or directory", in_dir("missing.gguf"),
                 in_dir("missing.gguf"));
    assert_int_equal(access(in_dir("never"), F_OK), -1);
}

int main(void) {
    if (access(finch_bin(), X_OK) != 0) {
        fprintf(stderr, "finch binary not found at %s (set FINCH_BIN)\n", finch_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endless_and_fifo_inputs),
        cmocka_unit_test(test_hf_dir_fifo_refused),
        cmocka_unit_test(test_max_memory_counts_the_texts),
        cmocka_unit_test(test_inconsistent_models_refused_by_name),
        cmocka_unit_test(test_hf_extra_tensor_refused_by_name),
        cmocka_unit_test(test_tokenizer_size_and_long_pieces),
        cmocka_unit_test(test_escaped_nul_in_task),
        cmocka_unit_test(test_resume_refuses_a_corrupted_results_file),
        cmocka_unit_test(test_flags_and_empty_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
