#!/bin/sh
# tools/flags_doc.sh - write docs/flags.md from `finch SUB --help`, which
# comes from the flag tables in src/cli/cli_help.c.  Run it (after `make`)
# whenever a flag changes; tests/test_cli_help.c fails while docs/flags.md
# and --help disagree.
set -e
BIN=${FINCH_BIN:-build/finch}
OUT=${1:-docs/flags.md}
COMMANDS="run eval generate tokenize info convert bench compare score ruler"
[ -x "$BIN" ] || { echo "flags_doc.sh: $BIN not built (make)" >&2; exit 1; }
{
cat <<'HEAD'
# Flags

Every flag of every `finch` subcommand, with its default.  Written by
`tools/flags_doc.sh` from `finch SUB --help`, whose text comes from one
table per subcommand in `src/cli/cli_help.c`; `tests/test_cli_help.c` fails
when this file and `--help` disagree.  The flags that `run`, `eval`,
`generate` and `bench` share are parsed by one function
(`src/cli/cli_shared.c`) and their defaults are the library's
(`include/finch_run.h`), so they read and behave the same everywhere.

Where llama.cpp has a flag of the same name (`-m -n -t -p --temp --seed
--top-p`), finch gives it the same meaning; the defaults of `--temp`,
`--top-p` and `--seed` differ (finch decodes greedily and reproducibly by
default) and the help says so.  `finch run` keeps its own meaning for `-f`
(the context file; llama.cpp's `-f` is the prompt file) and `-q` (the
question).  `finch --version` prints the version, the git commit of the
build and the kernels chosen on this CPU.  `finch help SUB` is `finch SUB
--help`.

Adding a flag to a subcommand:

1. a row in that subcommand's table in `src/cli/cli_help.c`
   (`{ "-x, --long", "ARG" or NULL, "default as shown", "one line" }`; a
   flag several subcommands share is a `FLAG_...` macro there, used in each
   table, and is parsed in `src/cli/cli_shared.c`);
2. its parsing in the subcommand's `cli_parse_*` (`cmd_SUB.c`): `cli_opt`
   refuses a flag that has no row (`option --x is not in this command's
   flag table`), and `tests/test_cli_help.c` fails on a parsed flag missing
   from `--help` and on a listed flag the parser calls unknown;
3. `make && sh tools/flags_doc.sh` to rewrite this file.

| command | flag | argument | default | what it does |
|---|---|---|---|---|
HEAD
for c in $COMMANDS; do
    "$BIN" "$c" --help | awk -v cmd="$c" '
        /\[default: .*\]$/ && /^  [ -]/ {
            line = substr($0, 3); sub(/^ +/, "", line)
            i = index(line, "  "); spec = substr(line, 1, i - 1); rest = substr(line, i); sub(/^ +/, "", rest)
            d = index(rest, " [default: "); desc = substr(rest, 1, d - 1)
            def = substr(rest, d + 11); def = substr(def, 1, length(def) - 1)
            n = split(spec, w, " "); names = ""; arg = ""
            for (k = 1; k <= n; k++) {
                if (substr(w[k], 1, 1) == "-") names = names (names == "" ? "" : " ") w[k]
                else arg = arg (arg == "" ? "" : " ") w[k]
            }
            gsub(/\|/, "\\|", arg); gsub(/\|/, "\\|", desc); gsub(/\|/, "\\|", def)
            printf "| %s | `%s` | %s | %s | %s |\n", cmd, names, arg, def, desc
        }'
done
echo
echo "## The help of each subcommand"
for c in $COMMANDS; do
    echo
    echo "### finch $c --help"
    echo
    echo '```text'
    "$BIN" "$c" --help
    echo '```'
done
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
