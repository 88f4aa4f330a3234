/* main.c - `finch`: the command-line program.  Each subcommand lives in its
 * own file (cmd_*.c); this file only dispatches.  The help texts come from
 * the flag tables in cli_help.c. */
#include "cli.h"
#include "cli_help.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} command;

static const command commands[] = {
    { "run", cmd_run },
    { "eval", cmd_eval },
    { "generate", cmd_generate },
    { "tokenize", cmd_tokenize },
    { "info", cmd_info },
    { "convert", cmd_convert },
    { "bench", cmd_bench },
    { "compare", cmd_compare },
    { "score", cmd_score },
    { "ruler", cmd_ruler },
};

static bool is_help(const char *arg) { return !strcmp(arg, "-h") || !strcmp(arg, "--help"); }

int main(int argc, char **argv) {
    cli_guard_std_fds();
    cli_watch_stdout();
    const char *no_wpack = getenv("FINCH_NO_WPACK"); /* an experiment's switch (docs/quantization.md) */
    if (no_wpack && *no_wpack && strcmp(no_wpack, "0") != 0) finch_set_weight_packing(FINCH_WPACK_OFF);
    if (argc < 2 || is_help(argv[1])) {
        cli_print_overview(argc < 2 ? stderr : stdout);
        return cli_finish_stdout(argc < 2 ? EXIT_BAD_INPUT : 0);
    }
    if (!strcmp(argv[1], "--version")) {
        cli_print_version(stdout);
        return cli_finish_stdout(0);
    }
    if (!strcmp(argv[1], "help")) { /* finch help [COMMAND] */
        const cli_command *c = argc > 2 ? cli_command_find(argv[2]) : NULL;
        if (argc > 2 && !c) return cli_error("unknown command '%s' (see finch --help)", argv[2]);
        if (c) cli_print_help(c, stdout);
        else cli_print_overview(stdout);
        return cli_finish_stdout(0);
    }
    cli_install_signal_handlers();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            if (rc == CLI_HELP) { /* -h in an option's place; as a value (-q -h) it is the value */
                const cli_command *help = cli_command_find(commands[i].name); /* its table in cli_help.c */
                if (help) cli_print_help(help, stdout);
                else cli_print_overview(stdout);
                rc = 0;
            }
            return cli_finish_stdout(rc);
        }
    return cli_error("unknown command '%s' (see finch --help)", argv[1]);
}
