/* test_bench_tasks.c - the benchmark readers (src/eval/bench_tasks.c,
 * bench_squad.c, bench_longbench.c): what each published format gives,
 * the prompt split at the context (context ++ question = the benchmark's
 * prompt, byte for byte), detection, --fields, and the refusals. */
#include "testutil.h"

#include "finch_benchmarks.h"

#include <cjson/cJSON.h>

static finch_status parse(const char *text, finch_benchmark b, const char *fields, finch_eval_tasks *t) {
    return finch_bench_parse(text, strlen(text), "t", b, fields, t);
}

static void test_squad2(void **state) {
    (void)state;
    finch_eval_tasks t;
    const char *path = test_data("bench/squad2_dev.json");
    assert_ok(finch_bench_read(path, FINCH_BENCH_AUTO, NULL, &t));
    assert_int_equal(t.benchmark, FINCH_BENCH_SQUAD2);
    assert_int_equal(t.n, 5);
    assert_string_equal(t.items[1].id, "q2");
    assert_string_equal(t.items[1].question, "When were the Normans in Normandy?");
    assert_int_equal(t.items[1].n_answers, 2);
    assert_string_equal(t.items[1].answers[1], "in the 10th and 11th centuries");
    assert_int_equal(t.items[2].n_answers, 0); /* plausible_answers are not gold */
    assert_int_equal(t.items[2].metric, FINCH_METRIC_SQUAD);
    finch_eval_tasks_free(&t);
}

/* LongBench's narrativeqa prompt, with the context and input put in. */
static void test_longbench(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_ok(finch_bench_read(test_data("bench/longbench.jsonl"), FINCH_BENCH_AUTO, NULL, &t));
    assert_int_equal(t.benchmark, FINCH_BENCH_LONGBENCH);
    assert_int_equal(t.n, 7);
    const finch_eval_task *k = &t.items[0];
    assert_string_equal(k->id, "nq1");
    assert_string_equal(k->context, "You are given a story, which can be either a novel or a movie script, and a question. "
                        "Answer the question asconcisely as you can, using a single phrase if possible. Do not provide "
                        "any explanation.\n\nStory: The cat sat on the mat. The dog ran.");
    assert_string_equal(k->question, "\n\nNow, answer the question based on the story asconcisely as you can, using a "
                        "single phrase if possible. Do not provide any explanation.\n\nQuestion: Who sat on the mat?\n\nAnswer:");
    assert_int_equal(k->max_new, 128);
    assert_true(k->no_newline_stop);
    assert_false(k->no_chat);
    const finch_eval_task *tr = &t.items[3]; /* trec: few-shot, no chat template, first line scored */
    assert_true(tr->no_chat);
    assert_int_equal(tr->n_classes, 4);
    assert_string_equal(tr->question, "\nWhat is the capital of France?");
    assert_int_equal(tr->max_new, 64);
    finch_eval_tasks_free(&t);
}

static void test_longbench_refusals(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_int_equal(parse("{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"a\"],\"dataset\":\"vcsum\",\"_id\":\"x\"}",
                           FINCH_BENCH_AUTO, NULL, &t), FINCH_ERR_UNSUPPORTED);
    assert_string_equal(finch_last_error(), "t:1: LongBench dataset 'vcsum' is scored on jieba's Chinese word "
                        "segmentation: give --jieba CMD (tools/jieba_cut.py, python3-jieba)");
    assert_int_equal(parse("{\"input\":\"q\",\"context\":\"c\",\"answers\":[\"a\"],\"dataset\":\"nope\",\"_id\":\"x\"}",
                           FINCH_BENCH_AUTO, NULL, &t), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "t:1: LongBench dataset 'nope' is not known");
}

static void test_ruler(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_ok(finch_bench_read(test_data("bench/ruler.jsonl"), FINCH_BENCH_AUTO, NULL, &t));
    assert_int_equal(t.benchmark, FINCH_BENCH_RULER);
    const finch_eval_task *k = &t.items[0];
    assert_string_equal(k->id, "0");
    assert_string_equal(k->question, "\nWhat is the special magic number for fluffy-tree mentioned in the provided text?");
    assert_string_equal(k->answer_prefix, " The special magic number for fluffy-tree mentioned in the provided text is");
    assert_int_equal(k->max_new, 128);
    assert_string_equal(t.items[1].dataset, "variable_tracking");
    assert_int_equal(t.items[1].max_new, 30);
    assert_int_equal(t.items[1].n_answers, 2);
    finch_eval_tasks_free(&t);
}

static void test_fields_and_detection(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_ok(parse("{\"qid\":\"a\",\"passage\":\"P\",\"q\":\"Q?\",\"gold\":\"yes\"}\n", FINCH_BENCH_AUTO,
                    "id=qid,context=passage,question=q,answers=gold", &t));
    assert_int_equal(t.benchmark, FINCH_BENCH_JSONL);
    assert_string_equal(t.items[0].context, "P");
    assert_int_equal(t.items[0].n_answers, 1);
    assert_string_equal(t.items[0].answers[0], "yes");
    finch_eval_tasks_free(&t);
    assert_int_equal(parse("{\"qid\":\"a\"}\n", FINCH_BENCH_AUTO, "id=qid,context=passage,question=q,answers=gold", &t),
                     FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "t:1: a task needs the strings qid, passage, q and the array (or string) gold");
    assert_int_equal(parse("{\"a\":1}\n", FINCH_BENCH_AUTO, "ids=qid", &t), FINCH_ERR_ARG);
    assert_int_equal(parse("{\"a\":1}\n", FINCH_BENCH_AUTO, NULL, &t), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "t: cannot tell its benchmark from the first line; give "
                        "--benchmark squad2|longbench|ruler|jsonl or --fields");
    assert_ok(parse("{\"id\":\"a\",\"context\":\"c\",\"question\":\"q\",\"answers\":[]}", FINCH_BENCH_AUTO, NULL, &t));
    assert_int_equal(t.benchmark, FINCH_BENCH_JSONL);
    finch_eval_tasks_free(&t);
    assert_int_equal(parse("{\"data\": []} x", FINCH_BENCH_SQUAD2, NULL, &t), FINCH_ERR_FORMAT);
}

static void test_score_item(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_ok(finch_bench_read(test_data("bench/longbench.jsonl"), FINCH_BENCH_AUTO, NULL, &t));
    double s, e;
    finch_bench_score_item(&t.items[3], "\nLocation\nHuman", &s, &e); /* trec: first line after lstrip('\n') */
    assert_true(s == 1.0);
    assert_true(isnan(e));
    finch_bench_score_item(&t.items[0], "The cat", &s, &e); /* qa_f1 "cat" vs "cat": 1 */
    assert_true(s == 1.0);
    finch_eval_tasks_free(&t);
}


static size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void free_sample(char *in, char *pre, char **outs, size_t n) {
    free(in); free(pre);
    for (size_t i = 0; i < n; i++) free(outs[i]);
    free(outs);
}

/* RULER-style items (src/eval/bench_ruler.c): the needles are in the text, the
 * templates are RULER's, the same seed gives the same item. */
static void test_ruler_make(void **state) {
    (void)state;
    char *in, *pre, **outs, *in2, *pre2, **outs2;
    size_t n, n2;
    assert_ok(finch_ruler_sample("niah_multivalue", 20, 8192, 7, &in, &pre, &outs, &n));
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) assert_int_equal(count_of(in, outs[i]), 1);
    assert_int_equal(count_of(in, "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."), 20);
    assert_true(strncmp(in, "Some special magic numbers are hidden within the following text.", 64) == 0);
    assert_true(strncmp(pre, " The special magic numbers for ", 31) == 0);
    assert_ok(finch_ruler_sample("niah_multivalue", 20, 8192, 7, &in2, &pre2, &outs2, &n2));
    assert_string_equal(in, in2);
    free_sample(in2, pre2, outs2, n2);
    /* the parsed line splits at RULER's question */
    finch_eval_tasks t;
    char line[1 << 14];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "index", 3);
    cJSON_AddStringToObject(j, "input", in);
    cJSON_AddItemToObject(j, "outputs", cJSON_CreateStringArray((const char *const *)outs, (int)n));
    cJSON_AddStringToObject(j, "answer_prefix", pre);
    cJSON_AddStringToObject(j, "task", "niah_multivalue");
    assert_true(cJSON_PrintPreallocated(j, line, sizeof line, 0));
    cJSON_Delete(j);
    assert_ok(parse(line, FINCH_BENCH_AUTO, NULL, &t));
    assert_string_equal(t.items[0].dataset, "niah_multivalue");
    assert_true(strncmp(t.items[0].question, "\nWhat are all the special magic numbers for ", 44) == 0);
    assert_int_equal(t.items[0].metric, FINCH_METRIC_MATCH_ALL);
    finch_eval_tasks_free(&t);
    free_sample(in, pre, outs, n);

    assert_ok(finch_ruler_sample("vt", 30, 8192, 1, &in, &pre, &outs, &n)); /* 4 hops: 5 names */
    assert_int_equal(n, 5);
    for (size_t i = 0; i + 1 < n; i++) {
        char hop[64];
        snprintf(hop, sizeof hop, "VAR %s = VAR %s \n", outs[i + 1], outs[i]);
        assert_non_null(strstr(in, hop));
    }
    assert_non_null(strstr(pre, "5 variables are assigned the value"));
    free_sample(in, pre, outs, n);

    assert_ok(finch_ruler_sample("cwe", 50, 8192, 1, &in, &pre, &outs, &n)); /* 10 words x 30, 40 x 3 */
    assert_int_equal(n, 10);
    const char *main_list = strstr(strstr(in, "\nBelow is a numbered list") + 1, "\n") + 1;
    char w[40];
    snprintf(w, sizeof w, ". %s ", outs[0]);
    assert_true(count_of(main_list, w) >= 29); /* the last may end the list */
    free_sample(in, pre, outs, n);
    assert_int_equal(finch_ruler_sample("qa_1", 5, 0, 0, &in, &pre, &outs, &n), FINCH_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squad2),  cmocka_unit_test(test_longbench), cmocka_unit_test(test_longbench_refusals),
        cmocka_unit_test(test_ruler),   cmocka_unit_test(test_fields_and_detection),
        cmocka_unit_test(test_score_item), cmocka_unit_test(test_ruler_make),
    };
    return cmocka_run_group_tests_name("bench_tasks", tests, NULL, NULL);
}
