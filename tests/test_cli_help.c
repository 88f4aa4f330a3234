/* test_cli_help.c - every subcommand explains itself, and docs/flags.md
 * says what --help says: the same flags, arguments and defaults, and the
 * help texts quoted verbatim.  Every flag the help lists is accepted by the
 * parser, and every flag a parser matches is in the help. */
#include "cliutil.h"
#include "util.h"

static const char *const commands[] = { "run", "eval", "generate", "tokenize", "info", "convert", "bench",
                                         "compare", "score", "ruler" };
enum { N_COMMANDS = sizeof commands / sizeof commands[0], MAX_FLAGS = 64 };

typedef struct {
    char names[64], arg[64], def[96];
} flag_row;

typedef struct {
    flag_row rows[MAX_FLAGS];
    size_t n;
} flag_set;

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = 0;
    size_t k = strspn(s, " ");
    memmove(s, s + k, strlen(s + k) + 1);
}

/* "-m, --model MODEL" into names "-m, --model" and arg "MODEL". */
static void split_spec(const char *spec, flag_row *r) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", spec);
    r->names[0] = r->arg[0] = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *dst = w[0] == '-' ? r->names : r->arg;
        if (*dst) strcat(dst, " ");
        strcat(dst, w);
    }
}

/* The flag lines of `finch cmd --help`: "  SPEC  what [default: D]". */
static void help_flags(const char *cmd, flag_set *s) {
    char args[64];
    snprintf(args, sizeof args, "%s --help", cmd);
    assert_int_equal(run_finch(args), 0);
    s->n = 0;
    for (char *save = NULL, *line = strtok_r(out_text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *d = strstr(line, " [default: ");
        if (strncmp(line, "  ", 2) || !d || line[strlen(line) - 1] != ']') continue;
        char *p = line + strspn(line, " "), *gap = strstr(p, "  ");
        assert_non_null(gap);
        *gap = 0;
        assert_true(s->n < MAX_FLAGS);
        flag_row *r = &s->rows[s->n++];
        split_spec(p, r);
        snprintf(r->def, sizeof r->def, "%.*s", (int)(strlen(d) - 12), d + 11);
    }
    assert_true(s->n > 0);
}

/* Un-escape "\|" in a markdown cell, strip the backticks and spaces. */
static void cell(const char *from, const char *to, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = from; p < to && n + 1 < cap; p++) {
        if (*p == '\\' && p + 1 < to && p[1] == '|') p++;
        if (*p != '`') out[n++] = *p;
    }
    out[n] = 0;
    trim(out);
}

/* The rows of docs/flags.md's table for cmd. */
static void doc_flags(const char *cmd, flag_set *s) {
    char *text;
    assert_ok(finch_read_file("docs/flags.md", &text, NULL));
    s->n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != '|') continue;
        const char *col[6];
        int n = 0;
        for (char *p = line; *p && n < 6; p++)
            if (*p == '|' && (p == line || p[-1] != '\\')) col[n++] = p;
        if (n < 6) continue;
        char c[32];
        cell(col[0] + 1, col[1], c, sizeof c);
        if (strcmp(c, cmd)) continue;
        assert_true(s->n < MAX_FLAGS);
        flag_row *r = &s->rows[s->n++];
        cell(col[1] + 1, col[2], r->names, sizeof r->names);
        cell(col[2] + 1, col[3], r->arg, sizeof r->arg);
        cell(col[3] + 1, col[4], r->def, sizeof r->def);
    }
    free(text);
}

static bool has_row(const flag_set *s, const flag_row *r) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->rows[i].names, r->names) && !strcmp(s->rows[i].arg, r->arg) && !strcmp(s->rows[i].def, r->def))
            return true;
    return false;
}

static void test_every_command_has_its_own_help(void **state) {
    (void)state;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char args[64], head[64], usage[64];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        assert_int_equal(run_finch(args), 0);
        snprintf(head, sizeof head, "finch %s - ", commands[i]);
        snprintf(usage, sizeof usage, "\nusage: finch %s ", commands[i]);
        assert_true(strncmp(out_text, head, strlen(head)) == 0);
        assert_non_null(strstr(out_text, usage));
        assert_non_null(strstr(out_text, "\nexample:\n  finch "));
        static char first[sizeof out_text];
        snprintf(first, sizeof first, "%s", out_text);
        snprintf(args, sizeof args, "%s -h", commands[i]); /* -h and `finch help CMD` say the same */
        assert_int_equal(run_finch(args), 0);
        assert_string_equal(out_text, first);
        snprintf(args, sizeof args, "help %s", commands[i]);
        assert_int_equal(run_finch(args), 0);
        assert_string_equal(out_text, first);
    }
    /* the flags that existed unlisted */
    assert_int_equal(run_finch("tokenize --help"), 0);
    assert_non_null(strstr(out_text, "--no-bos"));
    assert_int_equal(run_finch("eval --help"), 0);
    assert_non_null(strstr(out_text, "--normalize on|authors|off"));
    assert_int_equal(run_finch("help nosuch"), 2);
    assert_one_line_error();
}

static void test_version(void **state) {
    (void)state;
    assert_int_equal(run_finch("--version"), 0);
    static const char head[] = "finch " FINCH_VERSION " (commit ";
    assert_true(strncmp(out_text, head, strlen(head)) == 0);
    assert_non_null(strstr(out_text, "\nkernels: "));
    assert_int_equal(run_finch("--help"), 0);
    assert_non_null(strstr(out_text, "--version"));
}

static void test_docs_table_matches_help(void **state) {
    (void)state;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        flag_set help, doc;
        help_flags(commands[i], &help);
        doc_flags(commands[i], &doc);
        for (size_t k = 0; k < help.n; k++)
            if (!has_row(&doc, &help.rows[k]))
                fail_msg("finch %s --help lists %s %s [default: %s], docs/flags.md does not (sh tools/flags_doc.sh)",
                         commands[i], help.rows[k].names, help.rows[k].arg, help.rows[k].def);
        for (size_t k = 0; k < doc.n; k++)
            if (!has_row(&help, &doc.rows[k]))
                fail_msg("docs/flags.md lists finch %s %s %s [default: %s], --help does not", commands[i],
                         doc.rows[k].names, doc.rows[k].arg, doc.rows[k].def);
    }
}

static void test_docs_quote_each_help(void **state) {
    (void)state;
    char *text;
    assert_ok(finch_read_file("docs/flags.md", &text, NULL));
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char args[64], head[64];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        assert_int_equal(run_finch(args), 0);
        snprintf(head, sizeof head, "### finch %s --help\n\n```text\n", commands[i]);
        const char *q = strstr(text, head);
        if (!q) fail_msg("docs/flags.md does not quote finch %s --help", commands[i]);
        q += strlen(head);
        if (strncmp(q, out_text, strlen(out_text)) || strncmp(q + strlen(out_text), "```\n", 4))
            fail_msg("docs/flags.md quotes an old finch %s --help (sh tools/flags_doc.sh)", commands[i]);
    }
    free(text);
}

/* Each listed flag is accepted: given (with a value when it takes one), the
 * parser never calls it unknown (the run then fails for other reasons:
 * no model, no input). */
static void test_every_listed_flag_parses(void **state) {
    (void)state;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        flag_set help;
        help_flags(commands[i], &help);
        for (size_t k = 0; k < help.n; k++) {
            char name[64], args[256];
            snprintf(name, sizeof name, "%s", help.rows[k].names);
            char *last = strrchr(name, ' ');
            snprintf(args, sizeof args, "%s %s%s", commands[i], last ? last + 1 : name, help.rows[k].arg[0] ? " 1" : "");
            run_finch(args);
            if (strstr(err_text, "unknown option") || strstr(err_text, "flag table"))
                fail_msg("finch %s: %s", args, err_text);
        }
    }
}

/* Every flag a parser matches (cli_opt calls in src/cli/cmd_CMD.c) is in
 * that command's help; cli_opt also refuses, at run time, a flag missing
 * from the table, and the shared flags (cli_shared.c) exist only where the
 * table lists them. */
static void test_every_parsed_flag_is_listed(void **state) {
    (void)state;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char path[64], args[64], *src;
        snprintf(path, sizeof path, "src/cli/cmd_%s.c", commands[i]);
        assert_ok(finch_read_file(path, &src, NULL));
        snprintf(args, sizeof args, "%s --help", commands[i]);
        assert_int_equal(run_finch(args), 0);
        for (const char *p = src; (p = strstr(p, "cli_opt")) != NULL; p++) {
            const char *end = strchr(p, ')');
            for (const char *q = strchr(p, '"'); q && q < end; q = strchr(q + 1, '"')) {
                const char *close = strchr(q + 1, '"');
                if (q[1] == '-') {
                    char flag[48], spaced[64], comma[64];
                    snprintf(flag, sizeof flag, "%.*s", (int)(close - q - 1), q + 1);
                    snprintf(spaced, sizeof spaced, " %s ", flag);
                    snprintf(comma, sizeof comma, " %s,", flag);
                    if (!strstr(out_text, spaced) && !strstr(out_text, comma))
                        fail_msg("%s parses %s but finch %s --help does not list it", path, flag, commands[i]);
                }
                q = close;
            }
        }
        free(src);
    }
}

/* The shared flags read the same everywhere: the defaults, -c, and one
 * budget value where one is taken. */
static void test_shared_flags_one_meaning(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m testdata/models/tiny-llama.gguf --context 'Once upon a time there was a dog' "
                               "-q 'a dog?' --budget 3 -t 1 --json"), 0);
    assert_non_null(strstr(out_text, "\"n_predict\":\t32,"));
    assert_non_null(strstr(out_text, "\"seed\":\t1,"));
    assert_non_null(strstr(out_text, "\"finch_version\":\t\"" FINCH_VERSION "\""));
    assert_int_equal(run_finch("run -m testdata/models/tiny-llama.gguf --context 'Once upon a time there was a dog' "
                               "-q 'a dog?' --budget 3 -t 1 -c 12 -n 50"), 0);
    assert_non_null(strstr(err_text, "finch: note: -n reduced to 3 to stay within the context length 12\n"));
    assert_int_equal(run_finch("generate -m testdata/models/tiny-llama.gguf -p 'Once upon a time' -t 1 -c 10 -n 50"), 0);
    assert_non_null(strstr(err_text, "within the context length 10\n"));
    assert_int_equal(run_finch("run -m testdata/models/tiny-llama.gguf --context hi -q x --ratio 2,4"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "--ratio takes one value here, got '2,4'"));
    assert_int_equal(run_finch("bench -m testdata/models/tiny-llama.gguf --ratio 2,4"), 2);
    assert_one_line_error();
    assert_int_equal(run_finch("generate -m testdata/models/tiny-llama.gguf -p hi --budget 3"), 2);
    assert_non_null(strstr(err_text, "unknown option '--budget'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_its_own_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_docs_table_matches_help),
        cmocka_unit_test(test_docs_quote_each_help),
        cmocka_unit_test(test_every_listed_flag_parses),
        cmocka_unit_test(test_every_parsed_flag_is_listed),
        cmocka_unit_test(test_shared_flags_one_meaning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
