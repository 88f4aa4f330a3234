/* test_cli.c - the `finch` program as a user meets it: exact exit codes,
 * one-line errors, exact token ids, dumps that are complete or absent. */
#include "cliutil.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#define TINY "testdata/models/tiny-llama.gguf"

static void test_usage_and_unknown_command(void **state) {
    (void)state;
    assert_int_equal(run_finch(""), 2);
    assert_int_equal(run_finch("--help"), 0);
    assert_non_null(strstr(out_text, "finch run"));
    assert_int_equal(run_finch("frobnicate"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "unknown command"));
}

static void test_tokenize_exact_ids(void **state) {
    (void)state;
    /* ids cross-checked with tools/tok_ref.py (spm_encode on the same vocab) */
    assert_int_equal(run_finch("tokenize -m " TINY " 'Once upon a time, the magic number is 42.'"), 0);
    assert_string_equal(out_text, "1 304 303 261 307 263 347 336 325 331 333 327 347 337 343 336 326 329 340 347 333 341 347 55 53 318\n");
}

static void test_bad_flags(void **state) {
    (void)state;
    assert_int_equal(run_finch("generate -p hi"), 2); /* no model */
    assert_one_line_error();
    assert_int_equal(run_finch("generate -m " TINY), 2); /* no prompt */
    assert_one_line_error();
    assert_int_equal(run_finch("generate -m " TINY " -p hi --bogus"), 2);
    assert_non_null(strstr(err_text, "unknown option"));
    assert_int_equal(run_finch("generate -m " TINY " -p hi -n -3"), 2);
    assert_one_line_error();
    assert_int_equal(run_finch("generate -m " TINY " -p hi -n 2 -n 3"), 2);
    assert_non_null(strstr(err_text, "more than once"));
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what"), 2);
    assert_non_null(strstr(err_text, "exactly one budget"));
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --budget 2 --ratio 3"), 2);
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --budget 0"), 2);
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --ratio 2 --mode sideways"), 2);
    assert_non_null(strstr(err_text, "--mode"));
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --ratio 2 --chunk 0"), 2);
    assert_int_equal(run_finch("run -m " TINY " --context '' -q what --ratio 2"), 2);
    assert_one_line_error();
}

static void test_bad_files(void **state) {
    (void)state;
    assert_int_equal(run_finch("info -m /nonexistent/model.gguf"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "/nonexistent/model.gguf"));
    assert_int_equal(run_finch("info -m testdata/README.md"), 2); /* not a GGUF */
    assert_one_line_error();
    assert_int_equal(run_finch("generate -m " TINY " --prompt-ids testdata/README.md"), 2);
    assert_one_line_error();
    assert_int_equal(run_finch("run -m " TINY " -f /nonexistent.txt -q what --ratio 2"), 2);
    assert_one_line_error();
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static void test_generate_dump(void **state) {
    (void)state;
    char dir[] = "/tmp/finch-cli-XXXXXX", d[256];
    assert_non_null(mkdtemp(dir));
    snprintf(d, sizeof d, "%s/gen", dir);
    char args[512];
    snprintf(args, sizeof args, "generate -m " TINY " -p 'Once upon a time' -n 5 -t 1 --dump %s", d);
    assert_int_equal(run_finch(args), 0);
    size_t shape[8], ndim;
    void *data;
    char p[300];
    snprintf(p, sizeof p, "%s/logits.npy", d);
    assert_ok(finch_npy_read(p, FINCH_NPY_F32, &data, shape, &ndim));
    assert_int_equal(ndim, 1);
    assert_int_equal(shape[0], 348); /* the tiny vocabulary */
    free(data);
    snprintf(p, sizeof p, "%s/generated.npy", d);
    assert_ok(finch_npy_read(p, FINCH_NPY_I32, &data, shape, &ndim));
    assert_int_equal(shape[0], 5);
    /* greedy: the first generated id is the argmax of the dumped logits */
    int32_t first = ((int32_t *)data)[0];
    free(data);
    snprintf(p, sizeof p, "%s/logits.npy", d);
    assert_ok(finch_npy_read(p, FINCH_NPY_F32, &data, shape, &ndim));
    float *l = data;
    int32_t best = 0;
    for (int32_t i = 1; i < 348; i++) if (l[i] > l[best]) best = i;
    assert_int_equal(first, best);
    free(data);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

static void test_run_dump_and_unwritable_dump(void **state) {
    (void)state;
    char dir[] = "/tmp/finch-cli-XXXXXX", d[256], args[600], p[300];
    assert_non_null(mkdtemp(dir));
    snprintf(d, sizeof d, "%s/run", dir);
    snprintf(args, sizeof args, "run -m " TINY " --context 'Once upon a time the magic number was 42 and the end' "
             "-q 'the magic number is' --budget 5 --chunk 4 -n 3 --dump %s", d);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(err_text, "compression"));
    const char *files[] = { "context_ids.npy", "question_ids.npy", "kept.npy", "keys.npy", "values.npy",
                            "logits.npy", "generated.npy", "meta.json" };
    for (size_t i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s/%s", d, files[i]);
        if (!exists(p)) fail_msg("missing %s", p);
    }
    size_t shape[8], ndim;
    void *data;
    snprintf(p, sizeof p, "%s/kept.npy", d);
    assert_ok(finch_npy_read(p, FINCH_NPY_I32, &data, shape, &ndim));
    assert_int_equal(ndim, 3);
    assert_int_equal(shape[0], 2); /* layers */
    assert_int_equal(shape[1], 4); /* kv heads */
    assert_int_equal(shape[2], 5); /* K */
    free(data);
    /* An unwritable dump directory: exit 2, nothing left behind. */
    snprintf(args, sizeof args, "run -m " TINY " --context 'a b c d e f' -q 'c' --budget 2 --dump /proc/finch-nope");
    assert_int_equal(run_finch(args), 2);
    assert_one_line_error();
    assert_false(exists("/proc/finch-nope"));
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

int main(void) {
    if (access(finch_bin(), X_OK) != 0) {
        fprintf(stderr, "finch binary not found at %s (set FINCH_BIN)\n", finch_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_and_unknown_command),
        cmocka_unit_test(test_tokenize_exact_ids),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_generate_dump),
        cmocka_unit_test(test_run_dump_and_unwritable_dump),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
