/* test_bench_metrics.c - the benchmarks' metrics (src/bench_metrics.c)
 * against values of their published scorers.  Every expected number below
 * was printed by the scorer named beside it, run under Python 3.11:
 *   LongBench/metrics.py at THUDM/LongBench 2e00731f8d0b (qa_f1_score,
 *   rouge_score with pltrdy/rouge's Rouge, classification_score,
 *   retrieval_score, count_score, code_sim_score with fuzzywuzzy 0.18 +
 *   python-Levenshtein 0.12, Debian packages), RULER's
 *   scripts/eval/synthetic/constants.py (string_match_all/part, one item,
 *   before its * 100), SQuAD's evaluate-v2.0.py (compute_exact/compute_f1
 *   with get_raw_scores' gold filter); the hand-checkable ones also worked
 *   by hand in the comments. */
#include "testutil.h"

#include "finch_benchmarks.h"

#include <math.h>

/* Exact doubles: the C code follows the Python expression order. */
#define assert_same(a, b) assert_true((a) == (b))

static void test_qa_f1(void **state) {
    (void)state;
    /* "cat sat on mat" vs "cat on mat": P 3/4, R 1, F 2PR/(P+R) = 6/7 */
    assert_same(finch_lb_qa_f1("The cat sat on the mat", "a cat on mat"), 0.8571428571428571);
    assert_same(finch_lb_qa_f1("the", "a"), 0.0); /* both empty: 0 (SQuAD says 1) */
    assert_same(finch_lb_qa_f1("Paris, France!", "paris"), 0.6666666666666666);
}

static void test_rouge_l(void **state) {
    (void)state;
    assert_same(finch_lb_rouge_l("the cat sat. the dog ran", "the cat ran. a dog sat"), 0.9090909041322315);
    assert_same(finch_lb_rouge_l("The quick brown fox jumps over the lazy dog", "A quick brown dog jumps over a lazy fox"),
                0.5555555505555557);
    assert_same(finch_lb_rouge_l("", "x"), 0.0);      /* no hypothesis sentence: the package raises */
    assert_same(finch_lb_rouge_l("...", "a b"), 0.0);
    assert_same(finch_lb_rouge_l("a a b. b a", "a b b a. a"), 0.999999995); /* words counted as sets */
    assert_same(finch_lb_rouge_l("same words here", "same words here"), 0.999999995); /* the + 1e-8 */
}

static void test_classification(void **state) {
    (void)state;
    /* matches [n, nu, number]; the loop removes "n", then skips "nu" (the
     * list shifted under the iterator): [nu, number] -> 1/2 */
    const char *const cls[] = { "n", "nu", "number" };
    assert_same(finch_lb_classification("number", "number", cls, 3), 0.5);
    const char *const cls2[] = { "Location", "Human", "Entity" };
    assert_same(finch_lb_classification("It is a Location or Human", "Location", cls2, 3), 0.5);
    assert_same(finch_lb_classification("Entity", "Location", cls2, 3), 0.0);
}

static void test_retrieval_count(void **state) {
    (void)state;
    assert_same(finch_lb_retrieval("Paragraph 3, not paragraph 12", "Paragraph 3"), 0.5); /* [3, 12] */
    assert_same(finch_lb_retrieval("none", "Paragraph 3"), 0.0);
    assert_same(finch_lb_retrieval_zh("\xe6\xae\xb5\xe8\x90\xbd" "7", "\xe6\xae\xb5\xe8\x90\xbd" "7"), 1.0);
    assert_same(finch_lb_count("There are 12 unique paragraphs out of 30", "12"), 0.5);
    assert_same(finch_lb_count("12", "12"), 1.0);
}

static void test_fuzz_ratio(void **state) {
    (void)state;
    assert_int_equal(finch_fuzz_ratio("kitten", "sitting"), 62); /* (13 - 5) / 13 */
    assert_int_equal(finch_fuzz_ratio("", ""), 100);              /* equal comes before empty */
    assert_int_equal(finch_fuzz_ratio("abc", ""), 0);
    assert_int_equal(finch_fuzz_ratio("h\xc3\xa9llo w\xc3\xb6rld", "hello world"), 82); /* code points */
    assert_int_equal(finch_fuzz_ratio("ab", "ba"), 50);
    assert_int_equal(finch_fuzz_ratio("a", "ab"), 67);
    assert_int_equal(finch_fuzz_ratio("abcdefgh", "aXXXXXXX"), 12); /* 12.5: half to even */
    assert_int_equal(finch_fuzz_ratio("abcdefgh", "abcXXXXX"), 38); /* 37.5 */
}

static void test_code_sim(void **state) {
    (void)state;
    /* first line without ` # //: "    x = foo(1)" vs "x = foo(2)": (24 - 6) / 24 */
    assert_same(finch_lb_code_sim("```python\n    x = foo(1)\n# c\n", "x = foo(2)"), 0.75);
    assert_same(finch_lb_code_sim("\n\n# only\n// c", ""), 1.0); /* no line: "" == "" */
    assert_same(finch_lb_code_sim("# c\n`x`", "abc"), 0.0);
}

static void test_ruler(void **state) {
    (void)state;
    const char *const refs[] = { "123", "456", "789" };
    assert_same(finch_ruler_match_all("The numbers are 123 and 456", refs, 3), 2.0 / 3.0);
    assert_same(finch_ruler_match_part("The numbers are 123 and 456", refs, 3), 1.0);
    const char *const word[] = { "Magic-Word" };
    assert_same(finch_ruler_match_all("it is MAGIC-word.", word, 1), 1.0); /* lower() both sides */
    assert_same(finch_ruler_match_part("nothing", refs, 3), 0.0);
}

static void test_squad2_item(void **state) {
    (void)state;
    double em, f1;
    const char *const gold[] = { "Normans", "the Normans", "Normandy" };
    finch_squad2_item("The Normans.", gold, 3, &em, &f1);
    assert_same(em, 1.0);
    assert_same(f1, 1.0);
    finch_squad2_item("", NULL, 0, &em, &f1); /* unanswerable, no answer given: right */
    assert_same(em, 1.0);
    assert_same(f1, 1.0);
    finch_squad2_item("France", NULL, 0, &em, &f1);
    assert_same(em, 0.0);
    assert_same(f1, 0.0);
    const char *const blank[] = { "", "the" }; /* both normalise to "": gold becomes [''] */
    finch_squad2_item("", blank, 2, &em, &f1);
    assert_same(em, 1.0);
    finch_squad2_item("in Normandy region", gold, 3, &em, &f1); /* "normandy": P 1/3 R 1 -> 0.5 */
    assert_same(em, 0.0);
    assert_same(f1, 0.5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qa_f1),          cmocka_unit_test(test_rouge_l),
        cmocka_unit_test(test_classification), cmocka_unit_test(test_retrieval_count),
        cmocka_unit_test(test_fuzz_ratio),     cmocka_unit_test(test_code_sim),
        cmocka_unit_test(test_ruler),          cmocka_unit_test(test_squad2_item),
    };
    return cmocka_run_group_tests_name("bench_metrics", tests, NULL, NULL);
}
