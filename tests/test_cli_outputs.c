/* test_cli_outputs.c - what finch writes never costs a user a file
 * (docs/files.md): dumps into existing directories, plots onto existing
 * files and devices, a full disk, SIGINT/SIGTERM in the middle of a run, a
 * model truncated while mapped, stdout that cannot be written, and JSON
 * that stays valid UTF-8.  Every pre-existing file is checked intact. */
#include "cliutil.h"
#include "util.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <time.h>

#define TINY "testdata/models/tiny-llama.gguf"
#define NEEDLE "testdata/models/needle.gguf"
#define RUN_TINY "run -m " TINY " --context 'Once upon a time' -q who --ratio 2 -n 2 -t 1"

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static void copy_file(const char *from, const char *to) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* The last line of stderr is "finch: error: <line>" and the only error
 * (a run prints its statistics line before it writes its outputs). */
static void expect_last_error(const char *line) {
    char want[1200];
    snprintf(want, sizeof want, "finch: error: %s\n", line);
    size_t n = strlen(err_text), k = strlen(want);
    if (n < k || strcmp(err_text + n - k, want) || strstr(err_text, "finch: error:") != err_text + n - k)
        fail_msg("stderr '%s', expected it to end with '%s'", err_text, want);
}

/* stderr is exactly the one line "finch: error: <line>". */
static void expect_error(const char *line) {
    char want[1200];
    snprintf(want, sizeof want, "finch: error: %s\n", line);
    if (strcmp(err_text, want)) fail_msg("stderr '%s', expected '%s'", err_text, want);
}

/* Item 1: --dump onto a directory that is not a finch dump is refused, and
 * nothing in it (or behind a symlink to it) is touched. */
static void test_dump_never_empties_a_directory(void **state) {
    (void)state;
    char dir[64], u[128], file[160], link[160], args[600], msg[600];
    test_make_tmpdir(dir, sizeof dir, "finch-out");
    snprintf(u, sizeof u, "%s/u", dir);
    snprintf(file, sizeof file, "%s/thesis.tex", u);
    assert_int_equal(mkdir(u, 0777), 0);
    write_text(file, "chapter one\n");
    snprintf(args, sizeof args, RUN_TINY " --dump %s", u);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "--dump %s: the directory exists and is not a finch dump (it holds thesis.tex); "
             "choose another directory", u);
    expect_error(msg);
    assert_file_holds(file, "chapter one\n");
    /* .npy files of the user's own, without a finch meta.json: refused too */
    char u2[128], npy[160];
    snprintf(u2, sizeof u2, "%s/u2", dir);
    snprintf(npy, sizeof npy, "%s/data.npy", u2);
    assert_int_equal(mkdir(u2, 0777), 0);
    write_text(npy, "my array");
    snprintf(args, sizeof args, RUN_TINY " --dump %s", u2);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "--dump %s: the directory exists and is not a finch dump (no meta.json of finch run "
             "or generate); choose another directory", u2);
    expect_error(msg);
    assert_file_holds(npy, "my array");
    test_remove_tmpdir(u2);
    /* through a symbolic link: refused, the target's files stay */
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(u, link), 0);
    snprintf(args, sizeof args, RUN_TINY " --dump %s", link);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "--dump: %s exists and is not a directory (a symbolic link)", link);
    expect_error(msg);
    assert_file_holds(file, "chapter one\n");
    assert_int_equal(count_names_with(dir, ".tmp."), 0);
    unlink(link);
    unlink(file);
    /* an empty directory, then an earlier dump, are replaced */
    snprintf(args, sizeof args, RUN_TINY " --dump %s", u);
    assert_int_equal(run_finch(args), 0);
    assert_int_equal(run_finch(args), 0);
    snprintf(file, sizeof file, "%s/meta.json", u);
    assert_true(exists(file));
    assert_int_equal(count_names_with(dir, ".tmp.") + count_names_with(dir, ".old."), 0);
    test_remove_tmpdir(u);
    test_remove_tmpdir(dir);
}

/* Item 2: --plot-kept onto a device, onto an input, into a missing
 * directory: refused before the work, with nothing opened for writing. */
static void test_plot_kept_refuses_what_it_must_not_replace(void **state) {
    (void)state;
    char dir[64], ctx[128], args[700], msg[600];
    test_make_tmpdir(dir, sizeof dir, "finch-out");
    snprintf(ctx, sizeof ctx, "%s/context.txt", dir);
    write_text(ctx, "Once upon a time there was a magic number.\n");
    struct stat before, after;
    assert_int_equal(stat("/dev/null", &before), 0);
    assert_int_equal(run_finch(RUN_TINY " --plot-kept /dev/null"), 2);
    expect_error("--plot-kept: /dev/null exists and is not a regular file");
    assert_int_equal(stat("/dev/null", &after), 0);
    assert_true(S_ISCHR(after.st_mode) && after.st_rdev == before.st_rdev);
    snprintf(args, sizeof args, "run -m " TINY " -f %s -q who --ratio 2 -n 2 --plot-kept %s", ctx, ctx);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "--plot-kept %s is also an input (%s): choose another file", ctx, ctx);
    expect_error(msg);
    assert_file_holds(ctx, "Once upon a time there was a magic number.\n");
    snprintf(args, sizeof args, RUN_TINY " --plot-kept %s/no/such/dir/k.svg", dir);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "--plot-kept: cannot write %s/no/such/dir/k.svg: No such file or directory", dir);
    expect_error(msg);
    /* an existing plot is replaced whole when the run succeeds */
    char plot[160];
    snprintf(plot, sizeof plot, "%s/k.svg", dir);
    write_text(plot, "old");
    snprintf(args, sizeof args, RUN_TINY " --plot-kept %s", plot);
    assert_int_equal(run_finch(args), 0);
    slurp(plot, out_text, sizeof out_text);
    assert_true(strncmp(out_text, "<svg", 4) == 0 || strncmp(out_text, "<?xml", 5) == 0);
    assert_int_equal(count_names_with(dir, ".tmp."), 0);
    test_remove_tmpdir(dir);
}

/* A tiny tmpfs: a real "No space left on device".  Needs root (mount);
 * skipped elsewhere. */
static bool mount_small_tmpfs(const char *dir, const char *size) {
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s", size);
    return mount("tmpfs", dir, "tmpfs", 0, opts) == 0;
}

/* Item 3: a full disk gives one line naming the file and the reason, and
 * leaves no partial file (convert, eval, a dump). */
static void test_full_disk_leaves_no_partial_file(void **state) {
    (void)state;
    char dir[64], args[700], msg[600];
    test_make_tmpdir(dir, sizeof dir, "finch-full");
    if (!mount_small_tmpfs(dir, "64k")) {
        rmdir(dir);
        SKIP_MSG("cannot mount a tmpfs (%s): the full-disk test needs root", strerror(errno));
    }
    snprintf(args, sizeof args, "convert " TINY " %s/tiny.gguf", dir);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "convert: cannot write %s/tiny.gguf: No space left on device", dir);
    expect_error(msg);
    assert_int_equal(count_names_with(dir, "tiny"), 0);
    /* keys.npy and values.npy of this dump are 48 KB each */
    snprintf(args, sizeof args, "run -m " NEEDLE " -f testdata/needle-context.txt -q battery --ratio 32 -n 2 "
             "--dump %s/d", dir);
    assert_int_equal(run_finch(args), 2);
    char *tmp = strstr(err_text, "/d.tmp."); /* the file being written is named: values.npy in the temporary */
    assert_non_null(tmp);
    snprintf(msg, sizeof msg, "--dump: cannot write %s%.13s/values.npy: No space left on device", dir, tmp);
    expect_last_error(msg);
    assert_int_equal(count_names_with(dir, "d"), 0);
    /* eval on a full disk: no 0-byte results.json, no empty --out left */
    char filler[128], task[] = "/tmp/finch-full-task.jsonl";
    snprintf(filler, sizeof filler, "%s/filler", dir);
    FILE *f = fopen(filler, "w");
    assert_non_null(f);
    for (int i = 0; i < 100000 && fputs("xxxxxxxxxxxxxxx\n", f) >= 0; i++) {}
    fclose(f); /* fails: the disk is full */
    write_text(task, "{\"id\": \"a\", \"context\": \"Once upon a time\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press snapkv --ratio 2 -n 1 --out %s/e", task, dir);
    assert_int_equal(run_finch(args), 2);
    snprintf(msg, sizeof msg, "--out: cannot write %s/e/results.json: No space left on device", dir);
    expect_error(msg);
    snprintf(msg, sizeof msg, "%s/e", dir);
    assert_false(exists(msg));
    unlink(task);
    unlink(filler);
    assert_int_equal(umount(dir), 0);
    rmdir(dir);
}

/* A run that blocks, with its temporaries made, until the test lets it go:
 * --progress with --chunk 1 writes a line per chunk to a pipe of one page
 * that nobody reads. */
static pid_t blocked_run(const char *dump, const char *plot, int *pipe_read) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    const char *args[] = { "run", "-m", NEEDLE, "-f", "testdata/needle-context.txt", "-q", "battery", "--ratio", "32",
                           "--chunk", "1", "-n", "2", "-t", "1", "--progress", "--dump", dump, "--plot-kept", plot, NULL };
    pid_t pid = spawn_finch(args, -1, p[1]);
    close(p[1]);
    *pipe_read = p[0];
    return pid;
}

/* Wait (without a time limit of its own: the run is blocked) until dir
 * holds n names containing part. */
static void wait_for_names(const char *dir, const char *part, int n) {
    struct timespec ms = { 0, 1000000 };
    for (long i = 0; i < 600000 && count_names_with(dir, part) < n; i++) nanosleep(&ms, NULL);
    assert_int_equal(count_names_with(dir, part), n);
}

/* Item 4: SIGINT and SIGTERM remove the temporaries and exit 130 / 143;
 * an existing plot stays as it was. */
static void test_signals_remove_temporaries(void **state) {
    (void)state;
    int sigs[] = { SIGINT, SIGTERM };
    for (size_t k = 0; k < 2; k++) {
        char dir[64], dump[128], plot[128];
        test_make_tmpdir(dir, sizeof dir, "finch-sig");
        snprintf(dump, sizeof dump, "%s/dump", dir);
        snprintf(plot, sizeof plot, "%s/kept.svg", dir);
        write_text(plot, "my earlier plot\n");
        int rd;
        pid_t pid = blocked_run(dump, plot, &rd);
        struct pollfd pf = { rd, POLLIN, 0 };
        assert_int_equal(poll(&pf, 1, CHILD_WAIT_SECONDS * 1000), 1); /* progress started: the outputs are open */
        wait_for_names(dir, ".tmp.", 2);       /* dump.tmp.* and kept.svg.tmp.* */
        kill(pid, sigs[k]);
        assert_int_equal(wait_exit_code(pid), 128 + sigs[k]);
        close(rd);
        assert_int_equal(count_names_with(dir, ".tmp."), 0);
        assert_false(exists(dump));
        assert_file_holds(plot, "my earlier plot\n");
        unlink(plot);
        test_remove_tmpdir(dir);
    }
}

/* Item 5: a model truncated while mapped ends the run with one line and
 * exit 2, its temporaries removed.  The context comes through a FIFO, so
 * the model is loaded (mapped) before the test truncates it. */
static void test_truncated_model_is_one_line(void **state) {
    (void)state;
    char dir[64], model[128], fifo[128], dump[128], errf[128], msg[600];
    test_make_tmpdir(dir, sizeof dir, "finch-bus");
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    snprintf(fifo, sizeof fifo, "%s/ctx", dir);
    snprintf(dump, sizeof dump, "%s/dump", dir);
    snprintf(errf, sizeof errf, "/tmp/finch-bus-err.%d", (int)getpid());
    copy_file(NEEDLE, model);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int err_fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *args[] = { "run", "-m", model, "-f", fifo, "-q", "battery", "--ratio", "4", "-n", "2", "-t", "1",
                           "--dump", dump, NULL };
    pid_t pid = spawn_finch(args, -1, err_fd);
    close(err_fd);
    int w = open(fifo, O_WRONLY); /* returns once finch opens the context: the model is mapped */
    assert_true(w >= 0);
    assert_int_equal(truncate(model, 4096), 0);
    const char *text = "The special magic number for battery is 42.\n";
    assert_true(write(w, text, strlen(text)) == (ssize_t)strlen(text));
    close(w);
    assert_int_equal(wait_exit_code(pid), 2);
    slurp(errf, err_text, sizeof err_text);
    unlink(errf);
    snprintf(msg, sizeof msg, "%s: the file shrank while in use (truncated or replaced in place); nothing was written",
             model);
    expect_error(msg);
    assert_int_equal(count_names_with(dir, ".tmp."), 0);
    assert_false(exists(dump));
    unlink(model);
    unlink(fifo);
    test_remove_tmpdir(dir);
}

/* Item 6: stdout that cannot be written (a full device, a closed stdout)
 * fails every subcommand that prints, with one line. */
static void test_stdout_failures_exit_nonzero(void **state) {
    (void)state;
    char dir[64], eval_cmd[300], task[128];
    test_make_tmpdir(dir, sizeof dir, "finch-stdout");
    snprintf(task, sizeof task, "%s/t.jsonl", dir);
    write_text(task, "{\"id\": \"a\", \"context\": \"Once upon a time\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    snprintf(eval_cmd, sizeof eval_cmd, "eval -m " TINY " --task %s --press snapkv --ratio 2 -n 1 --out %s/e", task, dir);
    const char *cmds[] = { "tokenize -m " TINY " hello", "info -m " TINY, RUN_TINY,
                           "generate -m " TINY " -p 'Once upon' -n 2", "--help", "run -h", eval_cmd };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(run_finch_stdout(cmds[i], ">/dev/full"), 2);
        expect_last_error("cannot write to standard output: No space left on device");
        assert_int_equal(run_finch_stdout(cmds[i], ">&-"), 2);
        expect_last_error("cannot write to standard output: Bad file descriptor");
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Item 7: the answer in --json and meta.json is valid UTF-8: a token that
 * decodes to a lone byte (byte fallback) becomes U+FFFD. */
static void test_json_is_valid_utf8(void **state) {
    (void)state;
    char *s = finch_utf8_clean("a\xff" "b\xc3\xa9" "\xe2\x82", 7);
    assert_string_equal(s, "a\xef\xbf\xbd" "b\xc3\xa9" "\xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    s = finch_utf8_clean("x\0y", 3);
    assert_string_equal(s, "x\xef\xbf\xbdy");
    free(s);
    /* through the program: a model path with a byte that is not UTF-8, in
     * run --json, its meta.json and eval's results.json */
    char dir[64], model[128], args[700], want[160], path[200];
    test_make_tmpdir(dir, sizeof dir, "finch-utf8");
    snprintf(model, sizeof model, "%s/m\xff.gguf", dir);
    copy_file(TINY, model);
    snprintf(want, sizeof want, "%s/m\xef\xbf\xbd.gguf", dir);
    snprintf(args, sizeof args, "run -m '%s' --context 'Once upon a time' -q who --ratio 2 -n 2 --json --dump %s/d",
             model, dir);
    assert_int_equal(run_finch(args), 0);
    assert_ok(finch_check_text(out_text, strlen(out_text)));
    cJSON *j = cJSON_Parse(out_text);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, want);
    cJSON_Delete(j);
    char *text;
    size_t n;
    snprintf(path, sizeof path, "%s/d/meta.json", dir);
    assert_ok(finch_read_text_file(path, &text, &n));
    assert_ok(finch_check_text(text, n));
    free(text);
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    write_text(path, "{\"id\": \"a\", \"context\": \"Once upon a time\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    snprintf(args, sizeof args, "eval -m '%s' --task %s --press snapkv --ratio 2 -n 2 --out %s/e", model, path, dir);
    assert_int_equal(run_finch(args), 0);
    snprintf(path, sizeof path, "%s/e/results.json", dir);
    assert_ok(finch_read_text_file(path, &text, &n));
    assert_ok(finch_check_text(text, n));
    j = cJSON_Parse(text);
    free(text);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cfg, "model")->valuestring, want);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

/* The run's parameters have one writer (finch_press_params_json): the
 * dump's meta.json "params" and run --json carry the same keys in the same
 * order, lingua_segment included (docs/dump-format.md). */
static void test_run_params_one_writer(void **state) {
    (void)state;
    static const char *const keys[] = { "press", "mode", "select", "normalize", "schedule", "budget_kind",
                                        "budget_value", "N", "m", "K", "protect", "n_kept", "n_prompt", "chunk",
                                        "n_chunks", "lingua_segment", "batch", "threads", "seed", "kv_chunk",
                                        "rerotate", "steps", "cache_type" };
    const size_t n_keys = sizeof keys / sizeof keys[0];
    char dir[64], args[400], path[200];
    test_make_tmpdir(dir, sizeof dir, "finch-params");
    snprintf(args, sizeof args, RUN_TINY " --press lingua --lingua-segment 4 --json --dump %s/d", dir);
    assert_int_equal(run_finch(args), 0);
    cJSON *run = cJSON_Parse(out_text);
    assert_non_null(run);
    snprintf(path, sizeof path, "%s/d/meta.json", dir);
    char *text;
    size_t n;
    assert_ok(finch_read_text_file(path, &text, &n));
    cJSON *meta = cJSON_Parse(text);
    free(text);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(meta, "params"), *it = params->child;
    const cJSON *flat = cJSON_GetObjectItemCaseSensitive(run, "press");
    for (size_t i = 0; i < n_keys; i++, it = it->next, flat = flat->next) {
        assert_non_null(it);
        assert_non_null(flat);
        assert_string_equal(it->string, keys[i]);
        assert_string_equal(flat->string, keys[i]);
        assert_true(cJSON_Compare(it, flat, true));
    }
    assert_null(it); /* nothing after cache_type in params */
    assert_true(cJSON_GetObjectItemCaseSensitive(params, "lingua_segment")->valuedouble == 4);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(params, "press")->valuestring, "lingua");
    cJSON_Delete(run);
    cJSON_Delete(meta);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

int main(void) {
    if (access(finch_bin(), X_OK) != 0) {
        fprintf(stderr, "finch binary not found at %s (set FINCH_BIN)\n", finch_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_never_empties_a_directory),
        cmocka_unit_test(test_plot_kept_refuses_what_it_must_not_replace),
        cmocka_unit_test(test_full_disk_leaves_no_partial_file),
        cmocka_unit_test(test_signals_remove_temporaries),
        cmocka_unit_test(test_truncated_model_is_one_line),
        cmocka_unit_test(test_stdout_failures_exit_nonzero),
        cmocka_unit_test(test_json_is_valid_utf8),
        cmocka_unit_test(test_run_params_one_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
