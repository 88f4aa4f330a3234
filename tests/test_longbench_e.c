/* test_longbench_e.c - LongBench-E's length buckets (src/eval/bench_score.c,
 * bench_longbench.c) as LongBench's eval.py --e computes them (scorer_e at
 * commit 2e00731f8d0b of github.com/THUDM/LongBench): buckets by the item's
 * `length` (< 4000, < 8000, else), each round(100 * np.mean(scores), 2),
 * NaN for an empty bucket; the "X_e" datasets read with X's prompt and
 * metric; finch score's text and JSON. */
#include "cliutil.h"

#include "finch_benchmarks.h"

#include <cjson/cJSON.h>
#include <math.h>

static finch_status parse(const char *text, finch_eval_tasks *t) {
    return finch_bench_parse(text, strlen(text), "t", FINCH_BENCH_AUTO, NULL, t);
}

/* 16 scores in one bucket whose np.mean differs from sum() / n in the last
 * bit: numpy's pairwise sum gives 100 * mean = 45.625 -> round 45.62,
 * Python's sum() / 16 * 100 gives 45.62500000000001 -> 45.63 (numpy 1.24,
 * /usr/bin/python3 on this machine).  Lengths 3999, 4000, 7999, 8000 fall
 * in 0-4k, 4-8k, 4-8k, 8k+. */
static void test_buckets(void **state) {
    (void)state;
    const double v[16] = { 1.0 / 3, 0.25, 0, 0.1, 1, 2.0 / 3, 1, 0.25, 1.0 / 3, 0.1, 0.9, 0.2, 0, 0.5, 1, 2.0 / 3 };
    double len[16];
    for (size_t i = 0; i < 16; i++) len[i] = 100;
    size_t n[3];
    double s[3];
    assert_int_equal(finch_longbench_e_scores(v, len, 16, n, s), FINCH_OK);
    assert_int_equal(n[0], 16);
    assert_true(s[0] == 45.62);
    assert_int_equal(n[1], 0);
    assert_true(isnan(s[1]) && isnan(s[2]));
    const double v4[4] = { 1, 0.5, 0.25, 0 }, l4[4] = { 3999, 4000, 7999, 8000 };
    assert_int_equal(finch_longbench_e_scores(v4, l4, 4, n, s), FINCH_OK);
    assert_int_equal(n[0], 1);
    assert_int_equal(n[1], 2);
    assert_int_equal(n[2], 1);
    assert_true(s[0] == 100.0 && s[1] == 37.5 && s[2] == 0.0);
    assert_string_equal(finch_longbench_e_bucket_name(2), "8k+");
}

static void test_reader(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_int_equal(finch_bench_read(test_data("bench/longbench_e.jsonl"), FINCH_BENCH_AUTO, NULL, &t), FINCH_OK);
    assert_int_equal(t.benchmark, FINCH_BENCH_LONGBENCH);
    assert_string_equal(t.items[0].dataset, "hotpotqa_e");
    assert_true(t.items[0].longbench_e && t.items[0].has_length && t.items[0].length == 1200);
    assert_int_equal(t.items[0].metric, FINCH_METRIC_QA_F1);
    assert_int_equal(t.items[0].max_new, 32); /* hotpotqa's dataset2maxlen */
    assert_int_equal(t.items[4].metric, FINCH_METRIC_COUNT);
    finch_eval_tasks_free(&t);
    assert_int_equal(parse("{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"a\"],\"dataset\":\"hotpotqa_e\","
                           "\"_id\":\"x\"}", &t), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "t:1: LongBench-E item 'x' has no length (a number, 0 or more)");
    assert_int_equal(parse("{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"a\"],\"dataset\":\"hotpotqa_e\","
                           "\"length\":-3,\"_id\":\"x\"}", &t), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "t:1: LongBench-E item 'x' has no length (a number, 0 or more)");
    /* a plain LongBench file marked by --longbench-e */
    assert_int_equal(parse("{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"a\"],\"dataset\":\"hotpotqa\","
                           "\"length\":5000,\"_id\":\"x\"}", &t), FINCH_OK);
    assert_false(t.items[0].longbench_e);
    assert_int_equal(finch_longbench_mark_e(&t), FINCH_OK);
    assert_true(t.items[0].longbench_e);
    finch_eval_tasks_free(&t);
    assert_int_equal(parse("{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"a\"],\"dataset\":\"hotpotqa\","
                           "\"_id\":\"x\"}", &t), FINCH_OK);
    assert_int_equal(finch_longbench_mark_e(&t), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "LongBench-E item 'x' has no length (a number, 0 or more)");
    finch_eval_tasks_free(&t);
}

/* testdata/bench/longbench_e.jsonl with longbench_e_pred.jsonl, by hand:
 *   hotpotqa_e (qa_f1_score): e1 "Paris"/"Paris" 1 (length 1200), e2
 *   "whale"/"blue whale" P 1 R 1/2 -> 2/3 (3999), e3 "in 1912"/"1912" P 1/2
 *   R 1 -> 2/3 (4000), e4 "y"/"x" 0 (9000): 0-4k mean(1, 2/3) 83.33, 4-8k
 *   66.67, 8k+ 0.0 (all items: 58.33);
 *   passage_count_e (count_score): c1 "3"/"3" 1, c2 "there are 5 or 6"/"5"
 *   one of two numbers -> 0.5, both under 4000: 75.0, the others NaN. */
static void test_score_cli(void **state) {
    (void)state;
    assert_int_equal(run_finch("score --task testdata/bench/longbench_e.jsonl --predictions "
                               "testdata/bench/longbench_e_pred.jsonl --json"), 0);
    assert_string_equal(out_text, "{\n"
        "    \"hotpotqa_e\": {\n        \"0-4k\": 83.33,\n        \"4-8k\": 66.67,\n        \"8k+\": 0.0\n    },\n"
        "    \"passage_count_e\": {\n        \"0-4k\": 75.0,\n        \"4-8k\": NaN,\n        \"8k+\": NaN\n    }\n"
        "}\n");
    assert_int_equal(run_finch("score --task testdata/bench/longbench_e.jsonl --predictions "
                               "testdata/bench/longbench_e_pred.jsonl"), 0);
    assert_string_equal(out_text,
        "hotpotqa_e               qa_f1                   4 items  58.33\n"
        "                         0-4k                    2 items  83.33\n"
        "                         4-8k                    1 items  66.67\n"
        "                         8k+                     1 items  0.0\n"
        "passage_count_e          count                   2 items  75.0\n"
        "                         0-4k                    2 items  75.0\n"
        "                         4-8k                    0 items  NaN\n"
        "                         8k+                     0 items  NaN\n");
    assert_int_equal(run_finch("score --task testdata/bench/ruler.jsonl --predictions testdata/bench/ruler_pred.jsonl "
                               "--longbench-e"), 2);
    assert_string_equal(err_text, "finch: error: --longbench-e: LongBench-E buckets are for LongBench files; this one "
                        "is ruler\n");
}

static cJSON *read_json(const char *path) {
    static char buf[1 << 16];
    slurp(path, buf, sizeof buf);
    cJSON *j = cJSON_Parse(buf);
    if (!j) fail_msg("%s is not JSON", path);
    return j;
}

/* finch eval's benchmark.json holds each press@ratio's buckets (null for an
 * empty one), the same numbers finch score gives for its predictions. */
static void test_eval_buckets(void **state) {
    (void)state;
    char dir[64] = "/tmp/finch-lbe-XXXXXX", args[512], path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(args, sizeof args, "eval -m testdata/models/tiny-llama.gguf --task testdata/bench/longbench_e.jsonl "
             "--press finch --ratio 2 -t 1 -n 2 --out %s/o", dir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(out_text, "  passage_count_e        finch@2            4-8k       nan  (0 items)\n"));
    snprintf(path, sizeof path, "%s/o/benchmark.json", dir);
    cJSON *b = read_json(path);
    snprintf(args, sizeof args, "score --task testdata/bench/longbench_e.jsonl --predictions "
             "%s/o/predictions/finch@2.jsonl --json", dir);
    assert_int_equal(run_finch(args), 0);
    for (const char *ds[] = { "hotpotqa_e", "passage_count_e", NULL }, **d = ds; *d; d++) {
        const cJSON *cell = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, *d), "finch@2");
        for (size_t k = 0; k < 3; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cell, finch_longbench_e_bucket_name(k));
            assert_non_null(v);
            char want[64];
            if (cJSON_IsNull(v)) snprintf(want, sizeof want, "\"%s\": NaN", finch_longbench_e_bucket_name(k));
            else snprintf(want, sizeof want, "\"%s\": %.1f", finch_longbench_e_bucket_name(k), v->valuedouble);
            assert_non_null(strstr(out_text, want));
        }
    }
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "passage_count_e"), "finch@2"), "8k+")));
    cJSON_Delete(b);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_score_cli),
        cmocka_unit_test(test_eval_buckets),
    };
    return cmocka_run_group_tests_name("longbench_e", tests, NULL, NULL);
}
