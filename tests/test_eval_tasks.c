/* test_eval_tasks.c - the task files of `finch eval` (src/eval/eval_tasks.c):
 * what a good file gives, one exact message per kind of bad line, and
 * every prefix of a good file either parsing (cut between lines) or
 * failing with FORMAT (cut inside one). */
#include "testutil.h"

#include "finch_eval.h"

#include <stdbool.h>

static finch_status parse(const char *text, finch_eval_tasks *t) {
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1); /* not NUL-terminated: the parser must not need it */
    assert_non_null(copy);
    memcpy(copy, text, n);
    finch_status st = finch_eval_tasks_parse(copy, n, "t.jsonl", t);
    free(copy);
    return st;
}

static const char GOOD[] =
    "{\"id\": \"a\", \"context\": \"The cat sat.\", \"question\": \"Who sat?\", \"answers\": [\"the cat\", \"cat\"]}\n"
    "\n"
    "  \r\n"
    "{\"id\": \"b\", \"context\": \"h\\u00e9llo \\u65e5\", \"question\": \"q\", \"answers\": [], \"extra\": 1}\r\n"
    "{\"id\": \"c\", \"context\": \"x\", \"question\": \"y\", \"answers\": [\"z\"]}";

static void test_good_file(void **state) {
    (void)state;
    finch_eval_tasks t;
    assert_ok(parse(GOOD, &t));
    assert_int_equal(t.n, 3);
    assert_string_equal(t.items[0].id, "a");
    assert_string_equal(t.items[0].context, "The cat sat.");
    assert_string_equal(t.items[0].question, "Who sat?");
    assert_int_equal(t.items[0].n_answers, 2);
    assert_string_equal(t.items[0].answers[1], "cat");
    assert_int_equal(t.items[0].line, 1);
    assert_string_equal(t.items[1].context, "h\xc3\xa9llo \xe6\x97\xa5");
    assert_int_equal(t.items[1].n_answers, 0);
    assert_int_equal(t.items[1].line, 4);
    assert_int_equal(t.items[2].line, 5);
    finch_eval_tasks_free(&t);
    assert_int_equal(t.n, 0);
}

static void test_bad_lines(void **state) {
    (void)state;
    static const struct { const char *text, *msg; } bad[] = {
        { "", "t.jsonl holds no task" },
        { "\n \n\r\n", "t.jsonl holds no task" },
        { "not json\n", "t.jsonl:1: not a JSON object" },
        { "{\"id\": \"a\"", "t.jsonl:1: not a JSON object" },
        { "{\"id\":\"a\",\"context\":\"c\",\"question\":\"q\",\"answers\":[]} {}\n",
          "t.jsonl:1: text after the JSON object" },
        { "{\"id\":\"a\",\"context\":\"c\",\"question\":\"q\",\"answers\":[]}\n{\"id\": \"x\", \"context\": \"c\"}\n",
          "t.jsonl:2: a task needs the strings id, context, question and the array answers" },
        { "[1, 2]", "t.jsonl:1: a task needs the strings id, context, question and the array answers" },
        { "{\"id\":7,\"context\":\"c\",\"question\":\"q\",\"answers\":[]}",
          "t.jsonl:1: a task needs the strings id, context, question and the array answers" },
        { "{\"id\":\"a\",\"context\":\"c\",\"question\":\"q\",\"answers\":\"c\"}",
          "t.jsonl:1: a task needs the strings id, context, question and the array answers" },
        { "{\"id\":\"a\",\"context\":\"\",\"question\":\"q\",\"answers\":[]}", "t.jsonl:1: empty context or question" },
        { "{\"id\":\"a\",\"context\":\"c\",\"question\":\"\",\"answers\":[]}", "t.jsonl:1: empty context or question" },
        { "{\"id\":\"a\",\"context\":\"c\",\"question\":\"q\",\"answers\":[\"x\", 3]}",
          "t.jsonl:1: answers must be strings" },
        { "\n{\"id\":\"a\",\"context\":\"c\xff\",\"question\":\"q\",\"answers\":[]}",
          "t.jsonl:2: text is not valid UTF-8 at byte 22" },
        { "{\"id\":\"a\",\"context\":\"c\",\"question\":\"q\",\"answers\":[]}\n"
          "{\"id\":\"b\",\"context\":\"c\",\"question\":\"q\",\"answers\":[]}\n"
          "{\"id\":\"a\",\"context\":\"d\",\"question\":\"q\",\"answers\":[]}\n",
          "t.jsonl:3: id 'a' repeats line 1" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        finch_eval_tasks t;
        finch_status st = parse(bad[i].text, &t);
        if (st != FINCH_ERR_FORMAT || strcmp(finch_last_error(), bad[i].msg) != 0)
            fail_msg("case %zu: got %s '%s', want '%s'", i, finch_status_name(st), finch_last_error(), bad[i].msg);
        assert_int_equal(t.n, 0);
        assert_null(t.items);
    }
    /* A NUL byte inside a line would cut the string short: refused. */
    static const char nul[] = "{\"id\":\"a\",\"context\":\"c\0d\",\"question\":\"q\",\"answers\":[]}";
    finch_eval_tasks t;
    assert_int_equal(finch_eval_tasks_parse(nul, sizeof nul - 1, "t.jsonl", &t), FINCH_ERR_FORMAT);
    assert_string_equal(finch_last_error(), "t.jsonl:1: text holds a NUL byte at byte 22");
    assert_int_equal(finch_eval_tasks_read("/nonexistent/t.jsonl", &t), FINCH_ERR_IO);
}

/* The tasks GOOD[0..len) holds whole, and whether it ends inside one. */
static size_t whole_tasks(size_t len, bool *cut) {
    size_t n = strlen(GOOD), whole = 0;
    *cut = false;
    for (size_t s = 0; s < n && s < len;) {
        const char *nl = memchr(GOOD + s, '\n', n - s);
        size_t e = nl ? (size_t)(nl - GOOD) : n, last = e;
        for (size_t i = s; i < e; i++)
            if (GOOD[i] != ' ' && GOOD[i] != '\r') last = i; /* the object's closing brace */
        if (last < e && len > last) whole++;
        else if (last < e) *cut = true; /* object lines start with '{' */
        s = e + 1;
    }
    return whole;
}

/* Cut at a line boundary, a prefix is a shorter good file; cut inside a
 * line, it fails with FORMAT.  Never anything else. */
static void test_every_prefix(void **state) {
    (void)state;
    size_t n = strlen(GOOD);
    for (size_t len = 0; len <= n; len++) {
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, GOOD, len);
        finch_eval_tasks t;
        finch_status st = finch_eval_tasks_parse(copy, len, "t.jsonl", &t);
        bool cut;
        size_t whole = whole_tasks(len, &cut);
        if (cut || whole == 0) {
            if (st != FINCH_ERR_FORMAT) fail_msg("prefix %zu: %s", len, finch_status_name(st));
        } else {
            if (st != FINCH_OK) fail_msg("prefix %zu: %s (%s)", len, finch_status_name(st), finch_last_error());
            assert_int_equal(t.n, whole);
            finch_eval_tasks_free(&t);
        }
        free(copy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_every_prefix),
    };
    return cmocka_run_group_tests_name("eval_tasks", tests, NULL, NULL);
}
