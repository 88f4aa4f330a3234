/* cli_help.h - what each subcommand accepts, in one table per subcommand
 * (cli_help.c).  The table is the single source of:
 *   - `finch SUB --help` (cli_print_help),
 *   - which flags the parser accepts: cli_opt refuses a flag that is not in
 *     the running subcommand's table, and the shared flags (cli_shared.c)
 *     are recognised only where the table lists them,
 *   - docs/flags.md (tools/flags_doc.sh writes it from --help; the suite
 *     tests/test_cli_help.c fails when the two disagree).
 * Adding a flag: a row in the subcommand's table here, the parsing in its
 * cmd_*.c (or cli_shared.c for a shared flag), then `sh tools/flags_doc.sh`. */
#ifndef FINCH_CLI_HELP_H
#define FINCH_CLI_HELP_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    const char *names; /* "-m, --model" or "--chunk": the short name first   */
    const char *arg;   /* "MODEL"; NULL for a switch                          */
    const char *def;   /* the default as shown: "32", "off", "required", ... */
    const char *help;  /* one line: what it does                              */
} cli_flag;

typedef struct cli_command {
    const char *name;      /* "run"                                        */
    const char *summary;   /* one line: what the subcommand does           */
    const char *usage;     /* the synopsis after "usage: finch NAME "      */
    const char *about;     /* more lines (may be NULL), each ending in \n  */
    const cli_flag *flags; /* ends with a row whose names is NULL          */
    const char *example;   /* one command line                             */
} cli_command;

/* The subcommand named `name`, or NULL. */
const cli_command *cli_command_find(const char *name);
/* The row of flag `name` ("-m" or "--model") in c's table, or NULL. */
const cli_flag *cli_command_flag(const cli_command *c, const char *name);
/* `finch SUB --help`. */
void cli_print_help(const cli_command *c, FILE *f);
/* `finch --help`: every subcommand with its summary. */
void cli_print_overview(FILE *f);
/* `finch --version`: version, commit, kernels. */
void cli_print_version(FILE *f);

#endif
