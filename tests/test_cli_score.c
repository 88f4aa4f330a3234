/* test_cli_score.c - `finch score` (src/cli/cmd_score.c) on the small
 * files of testdata/bench/.  The expected outputs were printed by the
 * benchmarks' own scoring logic on the same files (Python 3.11): SQuAD's
 * evaluate-v2.0.py (json.dumps(out_eval, indent=2), compared byte for
 * byte), LongBench's eval.py scorer() with LongBench/metrics.py, RULER's
 * string_match_all. */
#include "cliutil.h"

static void test_squad2_json(void **state) {
    (void)state;
    assert_int_equal(run_finch("score --task testdata/bench/squad2_dev.json --predictions testdata/bench/squad2_pred.json --json"), 0);
    /* by hand: q1 "France." exact; q2 "11th centuries" vs "10th and 11th
     * centuries": P 1, R 1/2, F1 2/3; q3 "" unanswerable: right; q4
     * "Normandy" unanswerable: wrong; q5 "people who gave their name" vs
     * "people": P 1/5, R 1, F1 1/3.  exact 2/5; f1 (1 + 2/3 + 1 + 0 + 1/3)/5
     * = 3/5; HasAns f1 (1 + 2/3 + 1/3)/3 */
    assert_string_equal(out_text,
        "{\n"
        "  \"exact\": 40.0,\n"
        "  \"f1\": 60.0,\n"
        "  \"total\": 5,\n"
        "  \"HasAns_exact\": 33.333333333333336,\n"
        "  \"HasAns_f1\": 66.66666666666667,\n"
        "  \"HasAns_total\": 3,\n"
        "  \"NoAns_exact\": 50.0,\n"
        "  \"NoAns_f1\": 50.0,\n"
        "  \"NoAns_total\": 2\n"
        "}\n");
}

static void test_squad2_text_and_missing(void **state) {
    (void)state;
    assert_int_equal(run_finch("score --task testdata/bench/squad2_dev.json --predictions testdata/bench/squad2_pred.json"), 0);
    assert_non_null(strstr(out_text, "exact         40.0\n"));
    assert_non_null(strstr(out_text, "NoAns_total   2\n"));
    assert_int_equal(run_finch("score --task testdata/bench/squad2_dev.json --predictions testdata/bench/ruler_pred.jsonl"), 2);
    assert_one_line_error();
    assert_string_equal(err_text, "finch: error: --predictions: no prediction for question 'q1'\n");
    assert_int_equal(run_finch("score --task testdata/bench/squad2_dev.json"), 2);
    assert_string_equal(err_text, "finch: error: no predictions given (--predictions FILE)\n");
}

static void test_longbench(void **state) {
    (void)state;
    assert_int_equal(run_finch("score --task testdata/bench/longbench.jsonl --predictions testdata/bench/longbench_pred.jsonl --json"), 0);
    assert_string_equal(out_text,
        "{\n"
        "    \"narrativeqa\": 70.0,\n"
        "    \"gov_report\": 28.57,\n"
        "    \"trec\": 100.0,\n"
        "    \"passage_count\": 50.0,\n"
        "    \"passage_retrieval_en\": 100.0,\n"
        "    \"lcc\": 75.0\n"
        "}\n");
}

static void test_ruler(void **state) {
    (void)state;
    assert_int_equal(run_finch("score --task testdata/bench/ruler.jsonl --predictions testdata/bench/ruler_pred.jsonl"), 0);
    assert_string_equal(out_text,
        "niah                     string_match_all        1 items  100.0\n"
        "variable_tracking        string_match_all        1 items  50.0\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squad2_json),
        cmocka_unit_test(test_squad2_text_and_missing),
        cmocka_unit_test(test_longbench),
        cmocka_unit_test(test_ruler),
    };
    return cmocka_run_group_tests_name("cli_score", tests, NULL, NULL);
}
