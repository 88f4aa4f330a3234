/* test_cli_bench.c - `finch eval` on the published benchmark formats
 * (src/cli/eval_bench.c): the per-item rules reach the run (answer length,
 * newline rule), the prompts and the chat template go into results.json,
 * DIR/benchmark.json holds the benchmark's scores, the progress line
 * carries the elapsed time and the ETA, --dump-items writes the prompt
 * text, and --resume of a finished run adds nothing. */
#include "cliutil.h"
#include "finch_benchmarks.h"

#include <cjson/cJSON.h>

#define TINY "testdata/models/tiny-llama.gguf"

static char tmpdir[64];

static cJSON *read_json(const char *path) {
    static char buf[1 << 20];
    slurp(path, buf, sizeof buf);
    cJSON *j = cJSON_Parse(buf);
    if (!j) fail_msg("%s is not JSON", path);
    return j;
}

static void test_eval_ruler(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-clibench-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char args[1024], path[256];
    snprintf(args, sizeof args, "eval -m " TINY " --task testdata/bench/ruler.jsonl --press finch --ratio 2 -t 1 "
             "--out %s/o --progress --dump-items %s/items", tmpdir, tmpdir);
    assert_int_equal(run_finch(args), 0);
    /* "finch eval: item 1/2 (0): done, 0.01 s; elapsed 0:00:00, ETA 0:00:00" */
    assert_true(strncmp(err_text, "finch eval: item 1/2 (0): done, ", 32) == 0);
    assert_non_null(strstr(err_text, " s; elapsed 0:00:0"));
    assert_non_null(strstr(err_text, ", ETA 0:00:0"));
    snprintf(path, sizeof path, "%s/o/results.json", tmpdir);
    cJSON *r = read_json(path);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r, "config");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cfg, "benchmark")->valuestring, "ruler");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cfg, "chat_template")->valuestring, "none");
    const cJSON *vt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "prompts"), "variable_tracking");
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(vt, "max_new")->valuedouble, 30);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(vt, "metric")->valuestring, "string_match_all");
    /* RULER decodes its own tokens_to_generate (-n not given): 30 at most for vt */
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "items"), 1);
    const cJSON *full = cJSON_GetObjectItemCaseSensitive(item, "full");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(full, "score")));
    cJSON_Delete(r);
    snprintf(path, sizeof path, "%s/o/benchmark.json", tmpdir);
    r = read_json(path);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "niah"), "finch@2")));
    cJSON_Delete(r);
    snprintf(path, sizeof path, "%s/items/item-000002.json", tmpdir);
    r = read_json(path);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "question_text")->valuestring,
                        "\nQuestion: Find all variables that are assigned the value 12345 in the text above.");
    cJSON_Delete(r);
    /* every run's answers as RULER predictions: finch score gives benchmark.json's numbers */
    snprintf(args, sizeof args, "score --task testdata/bench/ruler.jsonl --predictions %s/o/predictions/finch@2.jsonl "
             "--json", tmpdir);
    assert_int_equal(run_finch(args), 0);
    cJSON *sc = cJSON_Parse(out_text);
    snprintf(path, sizeof path, "%s/o/benchmark.json", tmpdir);
    r = read_json(path);
    assert_true(cJSON_GetObjectItemCaseSensitive(sc, "niah")->valuedouble ==
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "niah"), "finch@2")->valuedouble);
    assert_true(cJSON_GetObjectItemCaseSensitive(sc, "variable_tracking")->valuedouble ==
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "variable_tracking"),
                                                 "finch@2")->valuedouble);
    cJSON_Delete(sc);
    cJSON_Delete(r);
    /* a finished run resumes to the same results */
    snprintf(args, sizeof args, "eval -m " TINY " --task testdata/bench/ruler.jsonl --press finch --ratio 2 -t 1 "
             "--out %s/o --resume --progress", tmpdir);
    assert_int_equal(run_finch(args), 0);
    assert_null(strstr(err_text, "finch eval: item"));
    snprintf(args, sizeof args, "rm -rf %s", tmpdir);
    assert_int_equal(system(args), 0);
}

static void test_eval_refusals(void **state) {
    (void)state;
    assert_int_equal(run_finch("eval -m " TINY " --task testdata/bench/ruler.jsonl --benchmark nope"), 2);
    assert_one_line_error();
    assert_string_equal(err_text, "finch: error: --benchmark: unknown benchmark 'nope' (squad2, longbench, ruler, "
                        "jsonl, auto)\n");
    assert_int_equal(run_finch("eval -m " TINY " --task testdata/bench/ruler.jsonl --benchmark longbench --out /tmp/x-none"), 2);
    assert_string_equal(err_text, "finch: error: --task: testdata/bench/ruler.jsonl:1: a LongBench line needs the "
                        "strings input, context, dataset and _id\n");
}


/* finch ruler's fwe and qa_1 (src/eval/bench_ruler.c): the file reads back as
 * RULER's, every item within the length; qa_1 needs --squad, and with the
 * assets' SQuAD sample its answers are the first answerable questions'. */
static void test_ruler_fwe_qa(void **state) {
    (void)state;
    char args[8800], path[256];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-clibench-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(args, sizeof args, "ruler -m " TINY " --length 300 --tasks fwe,qa_1 -o %s/r.jsonl", tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --tasks: qa_1 needs SQuAD v2 documents: --squad dev-v2.0.json (or "
                        "the folder of the squad2_500 sample)\n");
    snprintf(args, sizeof args, "ruler -m " TINY " --length 300 --tasks fwe --squad x -o %s/r.jsonl", tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --squad is read only for the task qa_1, which --tasks does not name\n");
    snprintf(path, sizeof path, "%s/r.jsonl", tmpdir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(args, sizeof args, "ruler -m " TINY " --length 300 --tasks fwe --samples 2 -o %s", path);
    assert_int_equal(run_finch(args), 0);
    finch_eval_tasks t;
    assert_int_equal(finch_bench_read(path, FINCH_BENCH_AUTO, NULL, &t), FINCH_OK);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.items[1].dataset, "fwe");
    assert_int_equal(t.items[1].n_answers, 3);
    assert_int_equal(t.items[1].metric, FINCH_METRIC_MATCH_ALL);
    finch_eval_tasks_free(&t);
    const char *squad = test_asset("eval/squad2_500");
    if (squad) {
        snprintf(args, sizeof args, "ruler -m " TINY " --length 1024 --tasks qa_1 --samples 2 --squad %s -o %s", squad,
                 path);
        assert_int_equal(run_finch(args), 0);
        assert_int_equal(finch_bench_read(path, FINCH_BENCH_AUTO, NULL, &t), FINCH_OK);
        assert_int_equal(t.items[0].metric, FINCH_METRIC_MATCH_PART);
        assert_string_equal(t.items[0].answers[0], "RNA interference pathway"); /* the sample's first question */
        assert_non_null(strstr(t.items[0].question, "\n\nQuestion: What pathway that plays a role in immune response"));
        finch_eval_tasks_free(&t);
    }
    snprintf(args, sizeof args, "rm -rf %s", tmpdir);
    assert_int_equal(system(args), 0);
    if (!squad) SKIP_MSG("no assets: qa_1 from the SQuAD sample not made");
}

/* --max-length 300: LongBench's middle cut, 150 tokens from each end of
 * context ++ question; the 146 question tokens stay whole, so the context
 * keeps 150 from its start and 4 from its end. */
static void test_max_length(void **state) {
    (void)state;
    char args[512], path[256];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-clibench-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(args, sizeof args, "eval -m " TINY " --task testdata/bench/longbench.jsonl --press finch --ratio 2 -t 1 "
             "-n 2 --limit 1 --max-length 300 --out %s/o", tmpdir);
    assert_int_equal(run_finch(args), 0);
    snprintf(path, sizeof path, "%s/o/results.json", tmpdir);
    cJSON *r = read_json(path);
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "items"), 0);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(item, "n_question")->valuedouble, 146);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(item, "n_context")->valuedouble, 154);
    cJSON_Delete(r);
    snprintf(args, sizeof args, "eval -m " TINY " --task testdata/bench/longbench.jsonl --limit 1 --max-length 100 "
             "--out %s/p", tmpdir);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: --max-length 100 leaves no room for the context beside the "
                        "question (146 tokens)\n");
    snprintf(args, sizeof args, "rm -rf %s", tmpdir);
    assert_int_equal(system(args), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_ruler),
        cmocka_unit_test(test_ruler_fwe_qa),
        cmocka_unit_test(test_eval_refusals),
        cmocka_unit_test(test_max_length),
    };
    return cmocka_run_group_tests_name("cli_bench", tests, NULL, NULL);
}
