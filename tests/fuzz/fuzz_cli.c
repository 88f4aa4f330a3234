/* fuzz_cli.c - the argument parsers of every `finch` subcommand (run,
 * generate, tokenize, info, convert, eval), without
 * running the command.  The input is the argument list: the first byte
 * picks the subcommand, the rest is split at NUL bytes into arguments.
 * A parser must return 0, an exit code of bad input (2) or CLI_HELP (-h in
 * an option's place), and on success hand back options consistent with
 * what it checks. */
#include "fuzz_common.h"
#include "cli.h"

#define MAX_ARGS 40

static void check_rc(int rc) {
    if (rc != 0 && rc != EXIT_BAD_INPUT && rc != CLI_HELP) abort();
}

static void parse(int which, int argc, char **argv) {
    switch (which) {
    case 0: {
        cli_run_opts o;
        int rc = cli_parse_run(argc, argv, &o);
        check_rc(rc);
        if (rc == 0 && (o.n_budget_flags != 1 || !o.question == !o.question_ids)) abort();
        break;
    }
    case 1: {
        cli_generate_opts o;
        int rc = cli_parse_generate(argc, argv, &o);
        check_rc(rc);
        if (rc == 0 && (!o.prompt == !o.prompt_ids || o.n_new < 0 || !(o.top_p > 0 && o.top_p <= 1))) abort();
        break;
    }
    case 2: {
        cli_tokenize_opts o;
        int rc = cli_parse_tokenize(argc, argv, &o);
        check_rc(rc);
        if (rc == 0 && (!o.model || (!!o.text + !!o.file + !!o.decode) != 1)) abort(); /* one input */
        break;
    }
    case 3: {
        cli_info_opts o;
        check_rc(cli_parse_info(argc, argv, &o));
        break;
    }
    case 5: {
        cli_eval_opts o;
        int rc = cli_parse_eval(argc, argv, &o);
        check_rc(rc);
        if (rc == 0) {
            if (!o.model || !o.task || o.n_ratios == 0 || o.n_ratios > CLI_EVAL_MAX_RATIOS ||
                o.n_presses > FINCH_SCORER_COUNT)
                abort();
            for (size_t i = 1; i < o.n_ratios; i++)
                if (!(o.ratios[i] > o.ratios[i - 1])) abort(); /* ascending, distinct */
        }
        break;
    }
    default: {
        cli_convert_opts o;
        int rc = cli_parse_convert(argc, argv, &o);
        check_rc(rc);
        if (rc == 0 && (!o.input || !o.output || finch_row_bytes(o.type, 32) == 0)) abort();
        break;
    }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_quiet_stdio();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = { "run", "generate", "tokenize", "info", "convert", "eval" };
    if (size == 0) return 0;
    int which = data[0] % 6;
    /* One copy of the rest, NUL-terminated, cut at each NUL into arguments. */
    char *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)names[which];
    for (size_t i = 0; i < size - 1 && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    parse(which, argc, argv);
    free(buf);
    return 0;
}
