/* test_longbench_zh.c - LongBench's jieba-segmented Chinese metrics
 * (src/eval/bench_zh.c, src/cli/cli_jieba.c): normalize_zh_answer and
 * qa_f1_zh on given words, with values printed by LongBench's own
 * metrics.py (commit 2e00731f8d0b) run with Debian's python3-jieba 0.42.1;
 * the segmenter plumbing with a stand-in that splits on spaces; and, when
 * /usr/bin/python3 has jieba, finch score --jieba on two items whose
 * scores were computed by LongBench's code (qa_f1_zh) and by hand
 * (rouge_zh); stray bytes (U+FFFD); the helper started only when a text
 * needs it, SIGPIPE only around its writes; tools/jieba_cut.py's one-line
 * errors. */
#include "cliutil.h"

#include "cli.h"
#include "finch_benchmarks.h"
#include "util.h"

#include <math.h>
#include <signal.h>

static void expect_normal(const char *in, const char *want) {
    char *got = finch_lb_normalize_zh(in);
    assert_string_equal(got, want);
    free(got);
}

/* normalize_zh_answer: lower() (full-width letters too), string.punctuation
 * and cn_punctuation out ("》" is in LongBench's list, "《" is not), every
 * white space character out (U+3000 included). */
static void test_normalize(void **state) {
    (void)state;
    expect_normal("ＡＢＣ", "ａｂｃ");
    expect_normal("《红楼梦》", "《红楼梦");
    expect_normal("\u3000北京 大学\t", "北京大学");
    expect_normal("，！。", "");
    expect_normal("Hello, World!", "helloworld");
}

/* metrics.qa_f1_zh_score(pred, gold) printed 0.6666666666666666, 0.5, 0.8
 * and 0 for these (words as jieba.cut gives them). */
static void test_qa_f1_words(void **state) {
    (void)state;
    const char *p1[] = { "在", "北京", "的", "清华大学", "！" }, *g1[] = { "北京", "清华大学" };
    assert_true(fabs(finch_lb_qa_f1_zh_words(p1, 5, g1, 2) - 2.0 / 3.0) < 1e-15);
    const char *p2[] = { "Ａ", "Ｂ", "Ｃ", " ", "北京", "，", "你好" }, *g2[] = { "abc", "北京", "你好" };
    assert_true(finch_lb_qa_f1_zh_words(p2, 7, g2, 3) == 0.5); /* 2 of 5 and 2 of 3 */
    const char *p3[] = { "《", "红楼梦", "》", "作者" }, *g3[] = { "红楼梦", " ", "作者" };
    assert_true(fabs(finch_lb_qa_f1_zh_words(p3, 4, g3, 3) - 0.8) < 1e-15);
    const char *p4[] = { "\u3000", "北京", " ", "大学" }, *g4[] = { "北京大学" };
    assert_true(finch_lb_qa_f1_zh_words(p4, 4, g4, 1) == 0.0);
}

/* A stand-in segmenter: words split at spaces. */
static finch_status by_spaces(void *user, const char *text, char ***words, size_t *n) {
    int *calls = user;
    ++*calls;
    *words = calloc(strlen(text) + 1, sizeof **words);
    *n = 0;
    for (const char *s = text; *s;) {
        while (*s == ' ') s++;
        const char *e = strchr(s, ' ');
        if (!e) e = s + strlen(s);
        if (e > s) (*words)[(*n)++] = strndup(s, (size_t)(e - s));
        s = e;
    }
    return FINCH_OK;
}

static finch_status broken(void *user, const char *text, char ***words, size_t *n) {
    (void)user; (void)text; (void)words; (void)n;
    return finch_fail(FINCH_ERR_IO, "segmenter gone");
}

/* A segmenter that keeps the last text it was given. */
static char seen_text[256];
static finch_status recording(void *user, const char *text, char ***words, size_t *n) {
    snprintf(seen_text, sizeof seen_text, "%s", text);
    return by_spaces(user, text, words, n);
}

/* A byte that is not UTF-8 is U+FFFD (finch_utf8_clean's rule, Python's
 * decode(errors="replace") for a stray byte): kept as a character by
 * normalize_zh (before, 0x85 and 0xA0 were read as the spaces U+0085 and
 * U+00A0, and 0x80 matched inside a punctuation mark's bytes, all removed),
 * and the segmenter is given valid UTF-8. */
static void test_stray_bytes(void **state) {
    (void)state;
    expect_normal("a\x85" "b", "a\xef\xbf\xbd" "b");
    expect_normal("\xa0" "x", "\xef\xbf\xbd" "x");
    expect_normal("北\x80京", "北\xef\xbf\xbd京");
    expect_normal("\xe5\x8c" "x", "\xef\xbf\xbd\xef\xbf\xbd" "x"); /* one U+FFFD per byte of a cut sequence */
    expect_normal("\xef\xbf\xbd", "\xef\xbf\xbd");                   /* U+FFFD itself stays */
    int calls = 0;
    finch_bench_set_segmenter(recording, &calls);
    /* 北京 against the words 北京 and U+FFFD: 1 of 1, 1 of 2 */
    assert_true(fabs(finch_lb_qa_f1_zh("北京", "北京 \x85") - 2.0 / 3.0) < 1e-15);
    assert_int_equal(calls, 2);
    assert_string_equal(seen_text, "北京 \xef\xbf\xbd"); /* the gold, last */
    finch_bench_set_segmenter(NULL, NULL);
}

static void test_segmenter(void **state) {
    (void)state;
    const char line[] = "{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"北京 清华大学\"],\"dataset\":\"multifieldqa_zh\","
                        "\"_id\":\"z\"}";
    finch_eval_tasks t;
    assert_int_equal(finch_bench_parse(line, strlen(line), "t", FINCH_BENCH_AUTO, NULL, &t), FINCH_ERR_UNSUPPORTED);
    assert_string_equal(finch_last_error(), "t:1: LongBench dataset 'multifieldqa_zh' is scored on jieba's Chinese "
                        "word segmentation: give --jieba CMD (tools/jieba_cut.py, python3-jieba)");
    int calls = 0;
    finch_bench_set_segmenter(by_spaces, &calls);
    assert_int_equal(finch_bench_parse(line, strlen(line), "t", FINCH_BENCH_AUTO, NULL, &t), FINCH_OK);
    assert_int_equal(t.items[0].metric, FINCH_METRIC_QA_F1_ZH);
    double s, e;
    finch_bench_score_item(&t.items[0], "在 北京 的 清华大学", &s, &e); /* 2 of 4, 2 of 2 */
    assert_true(fabs(s - 2.0 / 3.0) < 1e-15);
    assert_int_equal(calls, 2);
    /* rouge_zh: rouge_l of the words joined by spaces: LCS 2 of 4 and of 2 */
    assert_true(fabs(finch_lb_rouge_zh("在 北京 的 清华大学", "北京 清华大学") - finch_lb_rouge_l("在 北京 的 清华大学",
                                                                                              "北京 清华大学")) == 0);
    finch_bench_set_segmenter(broken, NULL);
    finch_bench_score_item(&t.items[0], "北京", &s, &e);
    assert_true(isnan(s));
    const char *preds[] = { "北京" };
    finch_dataset_score *d;
    size_t nd;
    assert_int_equal(finch_bench_dataset_scores(&t, preds, &d, &nd), FINCH_ERR_IO);
    assert_string_equal(finch_last_error(), "item 'z': segmenter gone");
    finch_bench_set_segmenter(NULL, NULL);
    finch_eval_tasks_free(&t);
}

/* testdata/bench/longbench_zh.jsonl with jieba: multifieldqa_zh "在北京的清华大学！"
 * against "北京清华大学": 0.6667 (LongBench's qa_f1_zh_score); vcsum "我来到北京。天气很好"
 * (我 来到 北京 。 天气 很 好) against "我来到北京清华大学。今天天气很好" (我 来到 北京 清华大学 。
 * 今天天气 很 好): one sentence each (no ASCII "."), LCS 我 来到 北京 。 很 好 = 6, P 6/7,
 * R 6/8, F 0.8. */
static void test_score_jieba(void **state) {
    (void)state;
    const char *cmd = "score --task testdata/bench/longbench_zh.jsonl --predictions testdata/bench/longbench_zh_pred.jsonl";
    assert_int_equal(run_finch(cmd), 2);
    assert_string_equal(err_text, "finch: error: --task: testdata/bench/longbench_zh.jsonl:1: LongBench dataset "
                        "'multifieldqa_zh' is scored on jieba's Chinese word segmentation: give --jieba CMD "
                        "(tools/jieba_cut.py, python3-jieba)\n");
    assert_int_equal(run_finch("score --task testdata/bench/longbench_zh.jsonl --predictions x --jieba false"), 2);
    assert_string_equal(err_text, "finch: error: --jieba 'false': the segmenter gave no answer (it exited?)\n");
    if (system("/usr/bin/python3 -c 'import jieba' 2>/dev/null") != 0)
        SKIP_MSG("no jieba for /usr/bin/python3 (sh tools/deps.sh jieba)");
    char args[512];
    snprintf(args, sizeof args, "%s --jieba '/usr/bin/python3 tools/jieba_cut.py'", cmd);
    assert_int_equal(run_finch(args), 0);
    assert_string_equal(out_text, "multifieldqa_zh          qa_f1_zh                1 items  66.67\n"
                                  "vcsum                    rouge_zh                1 items  80.0\n");
}

/* A helper that never answers, or closes its output and never exits, is an
 * error within FINCH_JIEBA_SECONDS (here 1) and one second's grace, never a
 * hung finch: at the probe, and in the middle of scoring. */
static void test_jieba_bounded_waits(void **state) {
    (void)state;
    const char *cmd = "score --task testdata/bench/longbench_zh.jsonl --predictions testdata/bench/longbench_zh_pred.jsonl";
    char args[512];
    setenv("FINCH_JIEBA_SECONDS", "1", 1);
    snprintf(args, sizeof args, "%s --jieba 'exec sleep 30'", cmd);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --jieba 'exec sleep 30': the segmenter gave no answer within 1 s\n");
    snprintf(args, sizeof args, "%s --jieba 'exec >&-; exec sleep 30'", cmd);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --jieba 'exec >&-; exec sleep 30': the segmenter gave no answer "
                        "(it exited?)\n");
    snprintf(args, sizeof args, "%s --jieba 'read l; echo []; exec sleep 30'", cmd);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --predictions: item 'z1': the segmenter gave no answer within 1 s\n");
    unsetenv("FINCH_JIEBA_SECONDS");
}

/* --jieba CMD starts CMD only when a text is to be segmented: on English
 * datasets (finch score, finch eval) CMD, which would leave a marker file
 * and fail, never runs, and the scores are those without --jieba. */
static void test_jieba_started_only_when_needed(void **state) {
    (void)state;
    char dir[64], marker[128], args[1024];
    test_make_tmpdir(dir, sizeof dir, "finch-jieba");
    snprintf(marker, sizeof marker, "%s/started", dir);
    const char *score = "score --task testdata/bench/longbench.jsonl --predictions testdata/bench/longbench_pred.jsonl";
    assert_int_equal(run_finch(score), 0);
    char *plain = strdup(out_text);
    snprintf(args, sizeof args, "%s --jieba 'touch %s; exit 1'", score, marker);
    assert_int_equal(run_finch(args), 0);
    assert_string_equal(out_text, plain);
    free(plain);
    assert_true(access(marker, F_OK) != 0);
    snprintf(args, sizeof args, "%s/t.jsonl", dir);
    write_text(args, "{\"id\": \"a\", \"context\": \"Once upon a time\", \"question\": \"who?\", \"answers\": [\"x\"]}\n");
    snprintf(args, sizeof args, "eval -m testdata/models/tiny-llama.gguf --task %s/t.jsonl --press snapkv --ratio 2 "
             "-n 2 -t 1 --out %s/e --jieba 'touch %s; exit 1'", dir, dir, marker);
    assert_int_equal(run_finch(args), 0);
    assert_true(access(marker, F_OK) != 0);
    /* a Chinese dataset starts it, and its failure is refused before scoring */
    snprintf(args, sizeof args, "score --task testdata/bench/longbench_zh.jsonl --predictions x --jieba 'touch %s; exit 1'",
             marker);
    assert_int_equal(run_finch(args), 2);
    assert_true(access(marker, F_OK) == 0);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

/* A helper that closed its input: the write to it fails (EPIPE), which is
 * the segmenter's error, not a SIGPIPE that kills finch; and SIGPIPE keeps
 * its disposition (SIG_DFL) outside those writes, nothing left pending. */
static void test_jieba_sigpipe_only_around_writes(void **state) {
    (void)state;
    struct sigaction before, after;
    assert_int_equal(sigaction(SIGPIPE, NULL, &before), 0);
    assert_true(before.sa_handler == SIG_DFL);
    setenv("FINCH_JIEBA_SECONDS", "1", 1);
    assert_int_equal(cli_jieba_start("exec 0<&-; exec sleep 30"), 0);
    assert_true(finch_bench_has_segmenter());
    /* the first text may be written before the helper closes its input
     * (then no answer within 1 s); by the second its input is closed */
    assert_true(isnan(finch_lb_qa_f1_zh("北京", "北京")));
    assert_true(isnan(finch_lb_qa_f1_zh("北京", "北京")));
    assert_string_equal(finch_last_error(), "the segmenter gave no answer (it exited?)");
    assert_int_equal(sigaction(SIGPIPE, NULL, &after), 0);
    assert_true(after.sa_handler == SIG_DFL);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    cli_jieba_stop();
    assert_false(finch_bench_has_segmenter());
    unsetenv("FINCH_JIEBA_SECONDS");
}

/* tools/jieba_cut.py given a line it cannot segment: one line on stderr
 * naming it, exit 2, no traceback (finch itself sends valid UTF-8 only). */
static int jieba_cut(const char *input_printf, char *err, size_t cap) {
    char cmd[512], path[64];
    snprintf(path, sizeof path, "/tmp/finch-jieba-err.%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "printf '%s' | /usr/bin/python3 tools/jieba_cut.py >/dev/null 2>%s", input_printf, path);
    int rc = system(cmd);
    slurp(path, err, cap);
    unlink(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void test_jieba_cut_bad_lines(void **state) {
    (void)state;
    if (system("/usr/bin/python3 -c 'import jieba' 2>/dev/null") != 0)
        SKIP_MSG("no jieba for /usr/bin/python3 (sh tools/deps.sh jieba)");
    char err[1024];
    assert_int_equal(jieba_cut("\"好\"\\n\"a\\377\"\\n", err, sizeof err), 2);
    assert_string_equal(err, "jieba_cut.py: line 2: not valid UTF-8 (byte 0xff at offset 2)\n");
    assert_int_equal(jieba_cut("\"\\\\udcff\"\\n", err, sizeof err), 2);
    assert_string_equal(err, "jieba_cut.py: line 1: a lone surrogate (\\udcff) is not text\n");
    assert_int_equal(jieba_cut("nope\\n", err, sizeof err), 2);
    assert_string_equal(err, "jieba_cut.py: line 1: not a JSON string (Expecting value)\n");
    assert_int_equal(jieba_cut("3\\n", err, sizeof err), 2);
    assert_string_equal(err, "jieba_cut.py: line 1: not a JSON string (a JSON int)\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_qa_f1_words),
        cmocka_unit_test(test_segmenter),
        cmocka_unit_test(test_stray_bytes),
        cmocka_unit_test(test_score_jieba),
        cmocka_unit_test(test_jieba_bounded_waits),
        cmocka_unit_test(test_jieba_started_only_when_needed),
        cmocka_unit_test(test_jieba_sigpipe_only_around_writes),
        cmocka_unit_test(test_jieba_cut_bad_lines),
    };
    return cmocka_run_group_tests_name("longbench_zh", tests, NULL, NULL);
}
