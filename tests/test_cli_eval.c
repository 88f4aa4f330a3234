/* test_cli_eval.c - `finch run --press/--plot-kept` and `finch eval` as a
 * user meets them (runs $FINCH_BIN like test_cli.c): exact exit codes,
 * one-line errors, exact kept positions, and an evaluation of two items on
 * tiny-llama whose results.json, CSV files and plots are read back. */
#include "cliutil.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = 0;
    fclose(f);
    return s;
}

static cJSON *read_json(const char *path) {
    char *s = read_text(path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) fail_msg("%s is not JSON", path);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("field %s missing", key);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) fail_msg("field %s missing", key);
    return v->valuestring;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#define TINY "testdata/models/tiny-llama.gguf"

static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-clieval-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------- finch run --press */

static void test_run_press_and_plot(void **state) {
    (void)state;
    make_tmpdir();
    char args[1024], path[256];
    /* oneshot streaming: the 4 sinks, the 2 most recent, then the question */
    snprintf(args, sizeof args,
             "run -m " TINY " --context 'Once upon a time the magic number was 42' -q 'the number' --press streaming "
             "--mode oneshot --budget 6 -n 2 -t 1 --json --dump %s/d --plot-kept %s/kept.svg --mark 3", tmpdir, tmpdir);
    assert_int_equal(run_finch(args), 0);
    cJSON *j = cJSON_Parse(out_text);
    assert_non_null(j);
    assert_string_equal(str(j, "press"), "streaming");
    size_t N = (size_t)num(j, "N"), m = (size_t)num(j, "m");
    cJSON_Delete(j);
    assert_non_null(strstr(err_text, "press streaming"));
    snprintf(path, sizeof path, "%s/d/meta.json", tmpdir);
    j = read_json(path);
    assert_string_equal(str(j, "press"), "streaming");
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/d/kept.npy", tmpdir);
    void *data;
    size_t shape[8], nd;
    assert_ok(finch_npy_read(path, FINCH_NPY_I32, &data, shape, &nd));
    assert_int_equal(shape[2], 6 + m);
    const int32_t *kept = data;
    for (size_t lg = 0; lg < shape[0] * shape[1]; lg++)
        for (size_t i = 0; i < 6 + m; i++) {
            int32_t want = (int32_t)(i < 4 ? i : i < 6 ? N - 6 + i : N + i - 6);
            assert_int_equal(kept[lg * (6 + m) + i], want);
        }
    free(data);
    snprintf(path, sizeof path, "%s/kept.svg", tmpdir);
    char *svg = read_text(path);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, ">mark 3</text>"));
    assert_non_null(strstr(svg, ">L1 H3</text>"));
    assert_non_null(strstr(svg, "press streaming"));
    free(svg);
    remove_tmpdir();
}

static void test_run_press_errors(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --budget 2 --press snapper"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "unknown press 'snapper'"));
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --budget 2 --mark 3"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "--plot-kept"));
    assert_int_equal(run_finch("run -m " TINY " --context hello -q what --budget 2 --plot-kept /proc/nope.svg -n 1"), 2);
    assert_one_line_error();
}

/* ------------------------------------------------------------ finch eval */

/* Two items; answers given (NULL: a placeholder). */
static void write_tasks(const char *path, const char *const answers[2]) {
    const char *ctx[2] = { "Once upon a time the magic number was 42 and the dog ran home fast.",
                           "The river was calm and the road was long, so they walked all day." };
    const char *q[2] = { "What was the magic number?", "How was the road?" };
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 2; i++) {
        cJSON *t = cJSON_CreateObject();
        char id[32];
        snprintf(id, sizeof id, "item-%d", i);
        cJSON_AddStringToObject(t, "id", id);
        cJSON_AddStringToObject(t, "context", ctx[i]);
        cJSON_AddStringToObject(t, "question", q[i]);
        const char *a = answers ? answers[i] : "forty two";
        cJSON_AddItemToObject(t, "answers", cJSON_CreateStringArray(&a, 1));
        char *line = cJSON_PrintUnformatted(t);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(t);
    }
    fclose(f);
}

static void test_eval_bad_input(void **state) {
    (void)state;
    make_tmpdir();
    char args[1024], task[128];
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    const char *bad[] = {
        "eval -m " TINY,                                   /* no task */
        "eval --task %s",                                  /* no model */
        "eval -m " TINY " --task %s --press finch,snap",   /* unknown press */
        "eval -m " TINY " --task %s --press finch,finch",  /* twice */
        "eval -m " TINY " --task %s --ratio 0.5",          /* below 1 */
        "eval -m " TINY " --task %s --ratio 2,x",
        "eval -m " TINY " --task %s --ratio 4,2,4",        /* twice */
        "eval -m " TINY " --task %s --mode sideways",
        "eval -m " TINY " --task /nonexistent.jsonl",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, bad[i], task);
        if (run_finch(args) != 2) fail_msg("'%s' did not exit 2", args);
        assert_one_line_error();
    }
    /* a malformed second line is reported with its line number */
    FILE *f = fopen(task, "a");
    fputs("{\"id\": \"x\", \"context\": \"c\"}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --out %s/o", task, tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "t.jsonl:3:"));
    remove_tmpdir();
}

/* The full row of an item and its runs, checked field by field. */
static void check_item(const cJSON *it, const char *const presses[], size_t n_presses, const double *ratios,
                       size_t n_ratios) {
    const cJSON *full = cJSON_GetObjectItemCaseSensitive(it, "full");
    assert_non_null(full);
    assert_string_equal(str(full, "press"), "full");
    assert_true(num(full, "kl") == 0.0);
    assert_true(num(full, "top1") == 1.0);
    assert_true(num(full, "compression") == 1.0);
    assert_true(num(full, "K") == num(it, "n_context"));
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(it, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), (int)(n_presses * n_ratios));
    size_t i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        assert_string_equal(str(r, "press"), presses[i / n_ratios]);
        assert_true(num(r, "ratio") == ratios[i % n_ratios]);
        assert_true(num(r, "K") == ceil(num(it, "n_context") / ratios[i % n_ratios]));
        double kl = num(r, "kl"), top1 = num(r, "top1"), em = num(r, "em"), f1 = num(r, "f1");
        assert_true(kl >= 0 && (top1 == 0 || top1 == 1) && (em == 0 || em == 1) && f1 >= em && f1 <= 1);
        assert_true(num(r, "kv_bytes") * num(it, "n_context") == num(full, "kv_bytes") * num(r, "K"));
        assert_true(num(r, "nll") > 0 && num(r, "seconds") >= 0);
        str(r, "answer");
        i++;
    }
}

static size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* The tables and plots of test_eval_end_to_end's sweep (finch and
 * streaming at ratios 2 and 4 over two items) in DIR/sub. */
static void check_report_files(const char *sub) {
    const char *files[] = { "results.csv",      "items.csv",         "accuracy.svg", "fidelity.svg", "f1.svg",
                            "time.svg", "time-compress.svg", "time-generate.svg" };
    char path[256];
    for (size_t i = 0; i < 8; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", tmpdir, sub, files[i]);
        char *t = read_text(path);
        if (i == 0) {
            assert_true(strncmp(t, "press,ratio,n,compression,K,em,f1,kl,top1,nll,seconds,kv_bytes\nfull,1,2,1,", 74) == 0);
            assert_int_equal(count_lines(t), 6);
        } else if (i == 1) {
            assert_int_equal(count_lines(t), 1 + 2 * 5);
        } else {
            assert_non_null(strstr(t, "<svg"));
            assert_non_null(strstr(t, ">streaming</text>"));
            assert_non_null(strstr(t, ">full</text>"));
            /* the settings under the title; the colour of each press fixed */
            assert_non_null(strstr(t, ">tiny-llama.gguf | t.jsonl | 2 items | mode iterative | chunk 8 | finch "));
            assert_non_null(strstr(t, "<polyline fill=\"none\" stroke=\"#D55E00\"")); /* finch */
            assert_non_null(strstr(t, "<polyline fill=\"none\" stroke=\"#009E73\"")); /* streaming */
            assert_int_equal(count_of(t, "class=\"ci\""), 4); /* 2 presses x 2 ratios */
        }
        free(t);
    }
}

static void test_eval_end_to_end(void **state) {
    (void)state;
    make_tmpdir();
    char args[1024], task[128], path[256];
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press finch,streaming --ratio 4,2 --chunk 8 -n 4 -t 1 "
             "--out %s/a --json --plot-kept-items %s/maps", task, tmpdir, tmpdir);
    assert_int_equal(run_finch(args), 0);
    /* a kept map per item and press run (not for full), named by line */
    for (int i = 1; i <= 2; i++)
        for (int p = 0; p < 2; p++)
            for (int r = 2; r <= 4; r += 2) {
                snprintf(path, sizeof path, "%s/maps/item-%06d-%s@%d.svg", tmpdir, i, p ? "streaming" : "finch", r);
                char *map = read_text(path);
                assert_non_null(map);
                assert_non_null(strstr(map, ">all</text>"));
                free(map);
            }
    snprintf(path, sizeof path, "%s/maps/item-000001-full@1.svg", tmpdir);
    assert_int_equal(access(path, F_OK), -1);
    cJSON *sum = cJSON_Parse(out_text); /* --json: the summary on stdout */
    assert_non_null(sum);
    assert_true(num(sum, "items") == 2 && num(sum, "skipped") == 0);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(sum, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 5);
    const cJSON *full_row = cJSON_GetArrayItem(rows, 0);
    assert_string_equal(str(full_row, "press"), "full");
    assert_true(num(full_row, "kl") == 0 && num(full_row, "top1") == 1 && num(full_row, "n") == 2);
    assert_string_equal(str(cJSON_GetArrayItem(rows, 2), "press"), "finch");
    assert_true(num(cJSON_GetArrayItem(rows, 2), "ratio") == 4); /* ratios sorted */
    cJSON_Delete(sum);

    snprintf(path, sizeof path, "%s/a/results.json", tmpdir);
    cJSON *res = read_json(path);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(res, "config");
    assert_string_equal(str(cfg, "mode"), "iterative");
    assert_true(num(cfg, "chunk") == 8);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(res, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    const char *presses[] = { "finch", "streaming" };
    const double ratios[] = { 2, 4 };
    const char *answers[2];
    for (int i = 0; i < 2; i++) {
        const cJSON *it = cJSON_GetArrayItem(items, i);
        check_item(it, presses, 2, ratios, 2);
        answers[i] = str(cJSON_GetObjectItemCaseSensitive(it, "full"), "answer");
    }
    check_report_files("a");

    /* The full answers as the gold answers: full scores EM 1 on both, and
     * Finch at ratio 1 (nothing evicted) gives the same answer. */
    write_tasks(task, answers);
    cJSON_Delete(res);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press finch --ratio 1,8 --chunk 8 -n 4 -t 1 --out %s/b",
             task, tmpdir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(out_text, "\npress       ratio      N/K        K       EM       F1       KL     top1"));
    assert_non_null(strstr(out_text, "\nfull "));
    snprintf(path, sizeof path, "%s/b/results.json", tmpdir);
    res = read_json(path);
    items = cJSON_GetObjectItemCaseSensitive(res, "items");
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        assert_true(num(cJSON_GetObjectItemCaseSensitive(it, "full"), "em") == 1.0);
        const cJSON *r1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(it, "runs"), 0);
        assert_true(num(r1, "ratio") == 1 && num(r1, "kl") < 1e-9 && num(r1, "em") == 1.0 && num(r1, "top1") == 1);
    }
    const cJSON *srows = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "summary"), "rows");
    assert_true(num(cJSON_GetArrayItem(srows, 0), "em") == 1.0);
    cJSON_Delete(res);
    remove_tmpdir();
}

/* Every press in one eval over the same items (docs/presses.md): the needle
 * model, two items, one ratio; each press gives one summary row and one
 * run per item. */
static void test_eval_all_presses(void **state) {
    (void)state;
    if (access("testdata/models/needle.gguf", R_OK)) SKIP_MSG("testdata/models/needle.gguf not found");
    make_tmpdir();
    static const char *const presses[] = { "finch", "truncate", "streaming", "snapkv", "h2o", "tova", "knorm",
                                           "random", "snapkv-q", "keydiff", "chunkkv", "rag", "lingua",
                                           "pyramidkv", "adakv", "adakv-finch" };
    enum { NP = sizeof presses / sizeof presses[0] };
    char args[1024], task[128], list[256] = "";
    for (size_t i = 0; i < NP; i++) {
        strcat(list, presses[i]);
        if (i + 1 < NP) strcat(list, ",");
    }
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    snprintf(args, sizeof args, "eval -m testdata/models/needle.gguf --task %s --press %s --ratio 4 --chunk 8 "
             "-n 2 -t 1 --out %s/all --json", task, list, tmpdir);
    assert_int_equal(run_finch(args), 0);
    cJSON *sum = cJSON_Parse(out_text);
    assert_non_null(sum);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(sum, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 1 + NP);
    assert_string_equal(str(cJSON_GetArrayItem(rows, 0), "press"), "full");
    for (size_t i = 0; i < NP; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, (int)i + 1);
        assert_string_equal(str(r, "press"), presses[i]);
        assert_true(num(r, "n") == 2 && num(r, "ratio") == 4 && num(r, "kl") >= 0);
    }
    cJSON_Delete(sum);
    char path[256];
    snprintf(path, sizeof path, "%s/all/results.json", tmpdir);
    cJSON *res = read_json(path);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "items")) {
        const double ratios[] = { 4 };
        check_item(it, (const char *const *)presses, NP, ratios, 1);
    }
    cJSON_Delete(res);
    remove_tmpdir();
}

/* finch run --press NAME for each new press: exit 0, the press named. */
static void test_run_each_new_press(void **state) {
    (void)state;
    const char *names[] = { "snapkv-q", "keydiff", "chunkkv", "rag", "lingua", "pyramidkv", "adakv", "adakv-finch" };
    char args[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(args, sizeof args, "run -m " TINY " --context 'Once upon a time the magic number was 42 and "
                 "the dog ran home' -q 'the number' --press %s --budget 4 -n 2 --json", names[i]);
        assert_int_equal(run_finch(args), 0);
        cJSON *j = cJSON_Parse(out_text);
        assert_non_null(j);
        assert_string_equal(str(j, "press"), names[i]);
        assert_true(num(j, "K") == 4);
        cJSON_Delete(j);
    }
}

/* --lingua-segment: LLMLingua's iterative compression for press lingua
 * only; eval records it in the config (another run than one pass). */
static void test_lingua_segment(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m " TINY " --context 'a b c d' -q 'x' --budget 2 --lingua-segment 8"), 2);
    assert_string_equal(err_text, "finch: error: --lingua-segment is the segment size of press lingua: give it with "
                        "--press lingua\n");
    assert_int_equal(run_finch("run -m " TINY " --context 'Once upon a time the magic number was 42 and the dog ran "
                               "home' -q 'the number' --press lingua --lingua-segment 4 --budget 6 -n 2 --json"), 0);
    cJSON *j = cJSON_Parse(out_text);
    assert_true(num(j, "K") == 6);
    assert_true(num(j, "lingua_segment") == 4);
    cJSON_Delete(j);
    make_tmpdir();
    char args[1024], task[128], path[256];
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press snapkv --lingua-segment 8 --ratio 2 -n 2 -t 1 "
             "--out %s/l", task, tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --lingua-segment is the segment size of press lingua: list lingua in "
                        "--press\n");
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press lingua --lingua-segment 8 --ratio 2 -n 2 -t 1 "
             "--limit 1 --out %s/l", task, tmpdir);
    assert_int_equal(run_finch(args), 0);
    snprintf(path, sizeof path, "%s/l/results.json", tmpdir);
    cJSON *res = read_json(path);
    assert_true(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "config"),
                                                 "lingua_segment")->valuedouble == 8);
    cJSON_Delete(res);
    remove_tmpdir();
}

/* The sweep of the resume tests over DIR/t.jsonl into DIR/r: its first
 * item (--limit 1), or the rest with --resume; the exit code. */
static int resume_sweep(int ratio, bool resume) {
    char args[1024];
    snprintf(args, sizeof args, "eval -m " TINY " --task %s/t.jsonl --press snapkv --ratio %d -n 3 -t 1 --out %s/r %s",
             tmpdir, ratio, tmpdir, resume ? "--resume" : "--limit 1");
    return run_finch(args);
}

/* The resumed results hold both items, the first one reused (its record
 * identical to the one in `first`, not recomputed). */
static cJSON *assert_first_item_reused(const cJSON *first) {
    char path[256];
    snprintf(path, sizeof path, "%s/r/results.json", tmpdir);
    cJSON *second = read_json(path);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(second, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    assert_true(cJSON_Compare(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(first, "items"), 0),
                              cJSON_GetArrayItem(items, 0), true));
    assert_string_equal(str(cJSON_GetArrayItem(items, 1), "id"), "item-1");
    return second;
}

/* A fresh DIR with t.jsonl, and the results of the first item's sweep
 * (their path into path[256]). */
static cJSON *first_sweep(char *path) {
    char task[128];
    make_tmpdir();
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    assert_int_equal(resume_sweep(2, false), 0);
    snprintf(path, 256, "%s/r/results.json", tmpdir);
    return read_json(path);
}

static void test_eval_resume(void **state) {
    (void)state;
    char path[256];
    cJSON *first = first_sweep(path);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(first, "items")), 1);
    assert_int_equal(resume_sweep(2, true), 0);
    cJSON_Delete(assert_first_item_reused(first));
    cJSON_Delete(first);
    /* other settings: refused */
    assert_int_equal(resume_sweep(4, true), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "other settings"));
    remove_tmpdir();
}

/* A results.json of an earlier build, whose config named budget_kind
 * budget_flag, resumes: the first item is reused. */
static void test_eval_resume_old_key(void **state) {
    (void)state;
    char path[256];
    cJSON *old = first_sweep(path);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(old, "config");
    cJSON_AddItemToObject(cfg, "budget_flag", cJSON_DetachItemFromObjectCaseSensitive(cfg, "budget_kind"));
    char *text = cJSON_Print(old);
    write_text(path, text);
    free(text);
    assert_int_equal(resume_sweep(2, true), 0);
    cJSON *resumed = assert_first_item_reused(old);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(resumed, "config"), "budget_kind"), "ratio");
    cJSON_Delete(old);
    cJSON_Delete(resumed);
    remove_tmpdir();
}

/* An item whose answer cannot fit even beside the full cache is skipped
 * with the window of the full reference's own plan (the message once
 * printed the uninitialised plan of a compressed run). */
static void test_eval_skip_answer_too_long(void **state) {
    (void)state;
    make_tmpdir();
    char args[512], task[128], path[256];
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press finch --ratio 2 --chunk 8 -n 600 -t 1 --out %s/s",
             task, tmpdir);
    assert_int_equal(run_finch(args), 0);
    snprintf(path, sizeof path, "%s/s/results.json", tmpdir);
    cJSON *j = read_json(path);
    const cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "items"), 0);
    assert_string_equal(str(it, "skipped"), "the answer (600 tokens) does not fit in the model's 512 positions");
    cJSON_Delete(j);
    remove_tmpdir();
}

static void test_eval_budget_lists(void **state) {
    (void)state;
    make_tmpdir();
    char args[1024], task[128];
    snprintf(task, sizeof task, "%s/t.jsonl", tmpdir);
    write_tasks(task, NULL);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press finch --budget 6,3 --chunk 8 -n 2 -t 1 "
             "--out %s/b --json", task, tmpdir);
    assert_int_equal(run_finch(args), 0);
    cJSON *sum = cJSON_Parse(out_text);
    assert_non_null(sum);
    assert_string_equal(str(sum, "finch_version"), FINCH_VERSION);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(sum, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 3); /* full, finch at 3 and at 6 kept tokens */
    assert_true(num(cJSON_GetArrayItem(rows, 1), "K") == 3 && num(cJSON_GetArrayItem(rows, 2), "K") == 6);
    cJSON_Delete(sum);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --press finch --cr 0.75,0,0.5 --chunk 8 -n 2 -t 1 "
             "--out %s/c", task, tmpdir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(out_text, "\npress          cr      N/K")); /* the table names the sweep */
    char path_svg[256];
    snprintf(path_svg, sizeof path_svg, "%s/c/accuracy.svg", tmpdir); /* cr 0 on a linear axis */
    assert_int_equal(access(path_svg, R_OK), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/c/results.json", tmpdir);
    cJSON *res = read_json(path);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(res, "config"), "budget_kind"), "cr");
    const cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "items"), 0);
    double N = num(it, "n_context");
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(it, "runs");
    assert_true(num(cJSON_GetArrayItem(runs, 0), "K") == N); /* cr 0 removes nothing */
    assert_true(num(cJSON_GetArrayItem(runs, 1), "K") == floor(N * 0.5));
    assert_true(num(cJSON_GetArrayItem(runs, 2), "K") == floor(N * 0.25));
    cJSON_Delete(res);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --budget 4 --ratio 2 --out %s/d", task, tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "exactly one budget"));
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --cr 0.5,1 --out %s/d", task, tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_non_null(strstr(err_text, "--cr needs fractions removed in [0, 1) separated by commas"));
    remove_tmpdir();
}

int main(void) {
    if (access(finch_bin(), X_OK) != 0) {
        fprintf(stderr, "finch binary not found at %s (set FINCH_BIN)\n", finch_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_press_and_plot),
        cmocka_unit_test(test_run_press_errors),
        cmocka_unit_test(test_eval_bad_input),
        cmocka_unit_test(test_eval_end_to_end),
        cmocka_unit_test(test_eval_budget_lists),
        cmocka_unit_test(test_eval_skip_answer_too_long),
        cmocka_unit_test(test_eval_resume),
        cmocka_unit_test(test_eval_resume_old_key),
        cmocka_unit_test(test_eval_all_presses),
        cmocka_unit_test(test_run_each_new_press),
        cmocka_unit_test(test_lingua_segment),
    };
    return cmocka_run_group_tests_name("cli_eval", tests, NULL, NULL);
}
