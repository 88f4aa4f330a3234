/* test_ruler_more.c - RULER's frequent-words extraction (fwe) and SQuAD
 * question answering (qa_1) made by src/eval/bench_ruler.c: the exact items
 * of a fixed seed at a tiny size, the word counts of RULER's Zipf law
 * computed by hand, and their scores with RULER's metrics
 * (scripts/eval/synthetic/constants.py of NVIDIA/RULER at c3f5e3b4f87f:
 * freq_words_extraction uses string_match_all, qa string_match_part). */
#include "testutil.h"

#include "finch_benchmarks.h"

#include <cjson/cJSON.h>

static size_t count_word(const char *text, const char *w) { /* whole space-separated words */
    size_t n = 0, l = strlen(w);
    for (const char *p = strstr(text, w); p; p = strstr(p + 1, w))
        n += (p[-1] == ' ') && (p[l] == ' ' || p[l] == '\n');
    return n;
}

static void free_sample(char *in, char *pre, char **outs, size_t n) {
    free(in); free(pre);
    for (size_t i = 0; i < n; i++) free(outs[i]);
    free(outs);
}

/* fwe of 60 words at length 300: a vocabulary of (300 - 50) / 50 = 5 words,
 * word k repeated int(60 k^-2 / zeta(2)) times (zeta(2) = 1.6449...):
 * 36.48 -> 36 ("..."), 9.12 -> 9, 4.05 -> 4, 2.28 -> 2, 1.46 -> 1. */
static void test_fwe(void **state) {
    (void)state;
    char *in, *pre, **outs;
    size_t n;
    assert_ok(finch_ruler_sample("fwe", 60, 300, 3, &in, &pre, &outs, &n));
    assert_string_equal(in, "Read the following coded text and track the frequency of each coded word. Find the three "
        "most frequently appeared coded words. ... siqazw ... nfmteu wgbjhw ... ... unqvxy nfmteu ... ... ... ... "
        "nfmteu siqazw siqazw ... ... ... ... ... ... ... ... ... ... ... ... siqazw ... ... siqazw siqazw siqazw ... "
        "siqazw ... ... ... unqvxy ... ... ... ... ... ... ... nfmteu ... ... siqazw ...\nQuestion: Do not provide "
        "any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the "
        "above coded text?");
    assert_string_equal(pre, " Answer: According to the coded text above, the three most frequently appeared words are:");
    assert_int_equal(n, 3);
    assert_string_equal(outs[0], "siqazw");
    assert_string_equal(outs[1], "nfmteu");
    assert_string_equal(outs[2], "unqvxy");
    assert_int_equal(count_word(in, "..."), 36);
    assert_int_equal(count_word(in, outs[0]), 9);
    assert_int_equal(count_word(in, outs[1]), 4);
    assert_int_equal(count_word(in, outs[2]), 2);
    assert_int_equal(count_word(in, "wgbjhw"), 1);
    free_sample(in, pre, outs, n);
}

/* Three paragraphs ("Beta text." with one answerable and one impossible
 * question, "Alpha words.", "Gamma end." without questions): RULER's
 * documents sorted (Alpha, Beta, Gamma), its questions the answerable ones
 * (q1, q3). */
static const char SQUAD[] =
    "{\"data\":[{\"title\":\"T\",\"paragraphs\":["
    "{\"context\":\"Beta text.\",\"qas\":[{\"id\":\"q1\",\"question\":\"What is beta?\",\"answers\":[{\"text\":"
    "\"text\",\"answer_start\":5}],\"is_impossible\":false},{\"id\":\"q2\",\"question\":\"Gone?\",\"answers\":[],"
    "\"is_impossible\":true}]},"
    "{\"context\":\"Alpha words.\",\"qas\":[{\"id\":\"q3\",\"question\":\"Which alpha?\",\"answers\":[{\"text\":"
    "\"words\",\"answer_start\":6},{\"text\":\"Alpha words\",\"answer_start\":0}],\"is_impossible\":false}]},"
    "{\"context\":\"Gamma end.\",\"qas\":[]}]}]}";

#define QA_HEAD "Answer the question based on the given documents. Only give me the answer and do not output any " \
                "other words."

static void test_qa(void **state) {
    (void)state;
    finch_eval_tasks t;
    finch_ruler_qa_source *q;
    char *in, *pre, **outs;
    size_t n;
    assert_ok(finch_bench_parse(SQUAD, strlen(SQUAD), "sq", FINCH_BENCH_SQUAD2, NULL, &t));
    assert_ok(finch_ruler_qa_open(&t, &q));
    assert_int_equal(finch_ruler_qa_count(q), 2);
    /* question 1 (q3) among 2 documents: its own and one drawn, shuffled */
    assert_ok(finch_ruler_qa_sample(q, 1, 2, 5, &in, &pre, &outs, &n));
    assert_string_equal(in, QA_HEAD "\n\nThe following are given documents.\n\nDocument 1:\nBeta text.\n\n"
                        "Document 2:\nAlpha words.\n\n" QA_HEAD "\n\nQuestion: Which alpha?");
    assert_string_equal(pre, " Answer:");
    assert_int_equal(n, 2);
    assert_string_equal(outs[0], "words");
    assert_string_equal(outs[1], "Alpha words");
    free_sample(in, pre, outs, n);
    /* 5 documents of 3: all of them, repeated in order (Alpha, Beta, Gamma,
     * Alpha, Beta), then shuffled */
    assert_ok(finch_ruler_qa_sample(q, 0, 5, 5, &in, &pre, &outs, &n));
    assert_string_equal(in, QA_HEAD "\n\nThe following are given documents.\n\nDocument 1:\nBeta text.\n\n"
                        "Document 2:\nAlpha words.\n\nDocument 3:\nAlpha words.\n\nDocument 4:\nBeta text.\n\n"
                        "Document 5:\nAlpha words.\n\n" QA_HEAD "\n\nQuestion: What is beta?");
    assert_int_equal(n, 1);
    assert_string_equal(outs[0], "text");
    free_sample(in, pre, outs, n);
    finch_ruler_qa_close(q);
    finch_eval_tasks_free(&t);
    /* no answerable question: refused */
    const char none[] = "{\"data\":[{\"title\":\"T\",\"paragraphs\":[{\"context\":\"C.\",\"qas\":[{\"id\":\"x\","
                        "\"question\":\"Q?\",\"answers\":[],\"is_impossible\":true}]}]}]}";
    assert_ok(finch_bench_parse(none, strlen(none), "sq", FINCH_BENCH_SQUAD2, NULL, &t));
    assert_int_equal(finch_ruler_qa_open(&t, &q), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "RULER's qa needs answerable SQuAD questions; the file has none");
    finch_eval_tasks_free(&t);
}

/* qa.py's more_context: a question's distractors come from its own article
 * first (here the first article has two paragraphs, the second three). */
static void test_qa_articles(void **state) {
    (void)state;
    const char two[] =
        "{\"data\":[{\"title\":\"A\",\"paragraphs\":["
        "{\"context\":\"P1.\",\"qas\":[{\"id\":\"a\",\"question\":\"Q1?\",\"answers\":[{\"text\":\"x\"}]}]},"
        "{\"context\":\"P2.\",\"qas\":[{\"id\":\"b\",\"question\":\"Q2?\",\"answers\":[{\"text\":\"y\"}]}]}]},"
        "{\"title\":\"B\",\"paragraphs\":["
        "{\"context\":\"P3.\",\"qas\":[{\"id\":\"c\",\"question\":\"Q3?\",\"answers\":[{\"text\":\"z\"}]}]},"
        "{\"context\":\"P4.\",\"qas\":[{\"id\":\"d\",\"question\":\"Q4?\",\"answers\":[{\"text\":\"z\"}]}]},"
        "{\"context\":\"P5.\",\"qas\":[{\"id\":\"e\",\"question\":\"Q5?\",\"answers\":[{\"text\":\"z\"}]}]}]}]}";
    finch_eval_tasks t;
    finch_ruler_qa_source *q;
    char *in, *pre, **outs;
    size_t n;
    assert_ok(finch_bench_parse(two, strlen(two), "sq", FINCH_BENCH_SQUAD2, NULL, &t));
    assert_int_equal(t.items[3].article, 2);
    assert_ok(finch_ruler_qa_open(&t, &q));
    for (uint64_t seed = 0; seed < 8; seed++) {
        assert_ok(finch_ruler_qa_sample(q, 0, 2, seed, &in, &pre, &outs, &n)); /* Q1 among 2: P1 and P2 */
        assert_non_null(strstr(in, "P1."));
        assert_non_null(strstr(in, "P2."));
        free_sample(in, pre, outs, n);
        assert_ok(finch_ruler_qa_sample(q, 2, 2, seed, &in, &pre, &outs, &n)); /* Q3 among 2: P3 and P4 or P5 */
        assert_null(strstr(in, "P1."));
        assert_null(strstr(in, "P2."));
        free_sample(in, pre, outs, n);
        assert_ok(finch_ruler_qa_sample(q, 0, 4, seed, &in, &pre, &outs, &n)); /* P1, P2 and two of the others */
        assert_non_null(strstr(in, "P2."));
        assert_non_null(strstr(in, "Document 4:\n"));
        free_sample(in, pre, outs, n);
    }
    finch_ruler_qa_close(q);
    finch_eval_tasks_free(&t);
}

/* A RULER line of our making: id, task, outputs and the input made above. */
static void add_line(cJSON *lines, int index, const char *task, const char *input, const char *const *outs, int n) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "index", index);
    cJSON_AddStringToObject(j, "input", input);
    cJSON_AddItemToObject(j, "outputs", cJSON_CreateStringArray(outs, n));
    cJSON_AddStringToObject(j, "task", task);
    cJSON_AddItemToArray(lines, j);
}

/* RULER's scores (scripts/eval/synthetic/constants.py):
 *   fwe, string_match_all: per item sum(r.lower() in pred.lower()) / len(refs);
 *     "SIQAZW and unqvxy" finds 2 of 3 -> 2/3; "nothing" -> 0;
 *     round((2/3 + 0) / 2 * 100, 2) = 33.33;
 *   qa, string_match_part: per item max(r.lower() in pred.lower());
 *     "alpha WORDS!" holds "words" -> 1; "beta" holds neither "text" -> 0;
 *     round(1 / 2 * 100, 2) = 50.0. */
static void test_scores(void **state) {
    (void)state;
    char *fwe_in, *pre, **outs, *qa_in = NULL;
    size_t n;
    assert_ok(finch_ruler_sample("fwe", 60, 300, 3, &fwe_in, &pre, &outs, &n));
    free_sample(NULL, pre, outs, n);
    finch_eval_tasks sq, t;
    finch_ruler_qa_source *q;
    assert_ok(finch_bench_parse(SQUAD, strlen(SQUAD), "sq", FINCH_BENCH_SQUAD2, NULL, &sq));
    assert_ok(finch_ruler_qa_open(&sq, &q));
    assert_ok(finch_ruler_qa_sample(q, 1, 2, 5, &qa_in, &pre, &outs, &n));
    free_sample(NULL, pre, outs, n);
    cJSON *lines = cJSON_CreateArray();
    const char *w[] = { "siqazw", "nfmteu", "unqvxy" }, *a3[] = { "words", "Alpha words" }, *a1[] = { "text" };
    add_line(lines, 0, "fwe", fwe_in, w, 3);
    add_line(lines, 1, "fwe", fwe_in, w, 3);
    add_line(lines, 2, "qa_1", qa_in, a3, 2);
    add_line(lines, 3, "qa_1", qa_in, a1, 1);
    char text[1 << 14] = "";
    const cJSON *l;
    cJSON_ArrayForEach(l, lines) {
        char *s = cJSON_PrintUnformatted(l);
        strcat(text, s);
        strcat(text, "\n");
        free(s);
    }
    cJSON_Delete(lines);
    assert_ok(finch_bench_parse(text, strlen(text), "r", FINCH_BENCH_AUTO, NULL, &t));
    assert_int_equal(t.benchmark, FINCH_BENCH_RULER);
    assert_int_equal(t.items[0].metric, FINCH_METRIC_MATCH_ALL);
    assert_int_equal(t.items[0].max_new, 50);
    assert_int_equal(t.items[2].metric, FINCH_METRIC_MATCH_PART);
    assert_int_equal(t.items[2].max_new, 32);
    assert_string_equal(t.items[2].question, "\n\n" QA_HEAD "\n\nQuestion: Which alpha?");
    const char *preds[] = { "SIQAZW and unqvxy", "nothing", "alpha WORDS!", "beta" };
    finch_dataset_score *d;
    size_t nd;
    assert_ok(finch_bench_dataset_scores(&t, preds, &d, &nd));
    assert_int_equal(nd, 2);
    assert_string_equal(d[0].name, "fwe");
    assert_true(d[0].score == 33.33);
    assert_string_equal(d[1].name, "qa_1");
    assert_true(d[1].score == 50.0);
    free(d);
    finch_eval_tasks_free(&t);
    finch_ruler_qa_close(q);
    finch_eval_tasks_free(&sq);
    free(fwe_in);
    free(qa_in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fwe),
        cmocka_unit_test(test_qa),
        cmocka_unit_test(test_qa_articles),
        cmocka_unit_test(test_scores),
    };
    return cmocka_run_group_tests_name("ruler_more", tests, NULL, NULL);
}
