/* main.c - `finch`: the command-line program.  Each subcommand lives in its
 * own file (cmd_*.c); this file only dispatches and prints help. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "finch - a pure-C reference implementation of Finch KV-cache compression\n"
    "\n"
    "usage:\n"
    "  finch run -m MODEL (-f CONTEXT.txt | --context TEXT | --context-ids A.npy)\n"
    "            (-q QUESTION | --question-ids B.npy) [--prompt-ids P.npy]\n"
    "            [--mode iterative|oneshot] (--budget K | --ratio X | --cr F)\n"
    "            [--chunk S] [--select head|layer] [--normalize on|off]\n"
    "            [--answer-prefix TEXT] [-n N] [--temp T] [--seed S] [-t THREADS]\n"
    "            [--dump DIR] [--json] [--progress] [--press NAME]\n"
    "            [--max-memory SIZE]\n"
    "            [--plot-kept FILE.svg [--mark POS]]\n"
    "            [--chat-template auto|none|NAME] [--system TEXT]\n"
    "      compress the context's KV cache with Finch, guided by the question,\n"
    "      then answer from the compressed cache.  --ratio X keeps K = ceil(N/X)\n"
    "      context tokens; --cr F is kvpress's fraction removed.  --press picks\n"
    "      the scores: finch (default), full, truncate, streaming, snapkv, h2o,\n"
    "      tova, knorm, random.  --plot-kept draws the kept positions.\n"
    "  finch eval -m MODEL --task TASK.jsonl [--press P1,P2,...] [--ratio 2,4,...]\n"
    "             [--chunk S] [--mode iterative|oneshot] [--select head|layer]\n"
    "             [--answer-prefix TEXT] [-n N] [-t N] [--limit N] [--seed S]\n"
    "             [--out DIR] [--json] [--resume] [--progress]\n"
    "             [--max-memory SIZE] [--chat-template auto|none|NAME] [--system TEXT]\n"
    "      every press at every ratio on every task {id, context, question,\n"
    "      answers}, against the full cache: EM, F1, KL, NLL, top-1, time, KV\n"
    "      bytes; writes DIR/results.json, results.csv, items.csv, accuracy.svg,\n"
    "      fidelity.svg (default DIR eval-out).\n"
    "  finch generate -m MODEL (-p TEXT | --prompt-ids FILE.npy) [-n N] [--temp T]\n"
    "                 [--top-p P] [--seed S] [-t THREADS] [--dump DIR] [--max-memory SIZE]\n"
    "                 [--chat-template auto|none|NAME] [--system TEXT]\n"
    "  finch tokenize -m MODEL TEXT        print the token ids, one line\n"
    "  finch info -m MODEL                 architecture, shapes, tensor types, tokenizer\n"
    "  finch convert INPUT OUTPUT.gguf [--type f32|f16|bf16|q8_0] [--tokenizer TOK.bin]\n"
    "  finch bench (-m MODEL ... | --models-dir DIR) [-t N] [--prefill N] [--decode N]\n"
    "              [--finch-text N] [--question N] [--chunk S] [--ratio X] [--rss MODEL\n"
    "              [--rss-short N] [--rss-long N]] [--no-probe] [--probe-mib N]\n"
    "              [--json] [--json-file FILE]\n"
    "      prefill and decode speed, Finch against plain chunked prefill, peak RSS,\n"
    "      each beside the machine's FMA peak and read bandwidth measured in the\n"
    "      same run (docs/bench.md).\n"
    "\n"
    "MODEL is a .gguf file or a Hugging Face directory (config.json + safetensors).\n"
    "--chat-template: auto uses the model's template (refused when not recognised);\n"
    "NAME is llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, llama3, llama3.1,\n"
    "mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, mistral-v7-tekken, chatml,\n"
    "qwen2.5, gemma, phi3\n"
    "(docs/chat-templates.md).\n"
    "convert reads a Hugging Face directory, a GGUF file or a llama2.c .bin checkpoint.\n"
    "Exit codes: 0 success, 2 bad input (files, flags, text), 1 internal error.\n";

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
};

int main(int argc, char **argv) {
    cli_guard_std_fds();
    cli_watch_stdout();
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return cli_finish_stdout(argc < 2 ? EXIT_BAD_INPUT : 0);
    }
    cli_install_signal_handlers();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            if (rc == CLI_HELP) { /* -h in an option's place; as a value (-q -h) it is the value */
                fputs(usage, stdout);
                rc = 0;
            }
            return cli_finish_stdout(rc);
        }
    return cli_error("unknown command '%s' (see finch --help)", argv[1]);
}
