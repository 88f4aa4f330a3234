/* cli_help.c - one table of flags per subcommand (cli_help.h): the help
 * text, the flags each parser accepts, and docs/flags.md all come from here.
 * A flag that several subcommands share is written once, as a macro below,
 * so its description and default read the same everywhere. */
#include "cli_help.h"
#include "finch.h"
#include "finch_run.h"
#include "kernels.h"

#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------- the shared flags */

#define FLAG_MODEL { "-m, --model", "MODEL", "required", \
    "a .gguf file or a Hugging Face directory (config.json + safetensors)" }
#define FLAG_N_PREDICT { "-n, --n-predict", "N", STR(FINCH_DEFAULT_N_PREDICT), \
    "tokens to generate at most; stops at EOS and at the context length (llama.cpp's default -1: no limit)" }
#define FLAG_THREADS { "-t, --threads", "N", "0 (every core)", "threads for the forward pass" }
#define FLAG_SEED { "--seed", "S", STR(FINCH_DEFAULT_SEED), \
    "seed of the sampler and of the random press (llama.cpp's default is a random seed)" }
#define FLAG_TEMP { "--temp", "T", "0 (greedy)", "sampling temperature (llama.cpp's default is 0.8)" }
#define FLAG_TOP_P { "--top-p", "P", "1 (off)", "nucleus sampling: keep the smallest set of tokens with mass P " \
    "(llama.cpp's default is 0.95)" }
#define FLAG_CHUNK { "--chunk", "S", "min(" STR(FINCH_DEFAULT_CHUNK_MAX) ", free positions)", \
    "iterative mode: context tokens read per chunk (free: what the budget and the question leave)" }
#define FLAG_MODE { "--mode", "MODE", "iterative", \
    "iterative (the paper: chunk by chunk) or oneshot (kvpress: one prefill of context + question)" }
#define FLAG_SELECT { "--select", "WHAT", "head", "keep one set of positions per KV head, or one per layer" }
#define FLAG_NORMALIZE { "--normalize", "on|authors|off", "on", \
    "weight each question row's attention by the keys it sees minus one (on, kvpress) or by the keys it " \
    "sees (authors: the authors' Mistral code)" }
#define FLAG_ANSWER_PREFIX { "--answer-prefix", "TEXT", "none", \
    "text fed after compression that the answer continues" }
#define FLAG_MAX_MEMORY { "--max-memory", "SIZE", "the memory available", \
    "refuse a run that needs more (512M, 2G, bytes) before allocating" }
#define FLAG_PROGRESS { "--progress", NULL, "on when stderr is a terminal", "show progress on stderr" }
#define FLAG_CTX_SIZE { "-c, --ctx-size", "N", "the model's context length", \
    "positions the run may use (as llama.cpp's -c; more than the model was trained for is allowed)" }
#define FLAG_CHAT_TEMPLATE { "--chat-template", "NAME", "auto (the model's template, when it carries one)", \
    "auto, none, or a format: llama2, llama2-sys, llama3, llama3.1, mistral-v1/v3/v7, chatml, qwen2.5, gemma, " \
    "phi3, ... (docs/chat-templates.md)" }
#define FLAG_SYSTEM { "--system", "TEXT", "none", "the system message of the chat template" }
#define FLAG_QUANT_MATH { "--quant-math", "q8|fp32", "q8", \
    "quantized and BF16 weights: q8 quantizes the activations (BF16: rounds them to bf16, the same bits " \
    "on every CPU) as llama.cpp's CPU backend does, fp32 dequantizes the weights as GPU backends do " \
    "(docs/quantization.md)" }
#define FLAG_CACHE_TYPE { "--cache-type", "f32|f16", "f32", \
    "the KV cache's storage: f16 (llama.cpp's default) rounds K and V when stored, half the bytes; " \
    "attention and the scores still compute in fp32 (docs/engine.md)" }
#define FLAG_LOAD { "--load", "auto|mmap|read", "auto", \
    "model files of 64 MB and more: read reads them into 2 MB pages and packs quantized matrices for " \
    "decode (faster decode, a private copy), mmap maps them as stored (pages shared with other processes), auto reads when the file takes at most half the " \
    "memory available; eval with several MPI ranks on a node maps (docs/engine.md)" }
#define FLAG_END { NULL, NULL, NULL, NULL }

/* ---------------------------------------------------------------- run */

#define FLAG_LINGUA_SEGMENT { "--lingua-segment", "S", "none: one pass", \
    "press lingua: LLMLingua's iterative compression, segments of S tokens scored given the compressed prefix" }
#define FLAG_JIEBA { "--jieba", "CMD", "none: the three datasets refused", \
    "LongBench's jieba-segmented Chinese metrics (multifieldqa_zh, dureader, vcsum): CMD segments, e.g. " \
    "'python3 tools/jieba_cut.py'" }
#define FLAG_LONGBENCH_E { "--longbench-e", NULL, "off (on for datasets named X_e)", \
    "LongBench-E: each dataset's score per length bucket 0-4k, 4-8k, 8k+ (eval.py --e)" }

static const cli_flag run_flags[] = {
    FLAG_MODEL,
    { "-f, --file", "FILE", "none", "the context, read from a text file (llama.cpp's -f is the prompt file)" },
    { "--context", "TEXT", "none", "the context, given as text" },
    { "--context-ids", "A.npy", "none", "the context, given as token ids (1-D int .npy)" },
    { "-q, --question", "TEXT", "none", "the question that guides the compression" },
    { "--question-ids", "B.npy", "none", "the question, given as token ids" },
    { "--budget", "K", "none: give one budget", "keep K context tokens" },
    { "--ratio", "X", "none: give one budget", "compression factor: keep K = ceil(N / X) of the N context tokens" },
    { "--cr", "F", "none: give one budget", "fraction of the context removed (kvpress's compression_ratio)" },
    FLAG_MODE,
    FLAG_CHUNK,
    FLAG_SELECT,
    FLAG_NORMALIZE,
    { "--press", "NAME", "finch", "the scores: finch, full, truncate, streaming, snapkv, h2o, tova, knorm, random, "
      "snapkv-q, keydiff, chunkkv, pyramidkv, adakv, adakv-finch, rag, lingua (docs/presses.md)" },
    { "--schedule", "WHICH", "proportional", "iterative k_t: proportional (ends at K) or authors (additive, "
      "k_t = k_t-1 + floor(|c_t| / ceil(N / K)), the authors' code)" },
    { "--kv-chunk", "L", "none", "oneshot with --cr: kvpress's chunk_length, top-k per chunk of L positions" },
    { "--no-rerotate", NULL, "off", "oneshot: kvpress's rerotate_keys=False (keys stay at their positions, the "
      "prompt at N + m + 1)" },
    FLAG_LINGUA_SEGMENT,
    { "--delimiter", "TEXT", "none", "kvpress's single-string interface: the context text holds the question "
      "after TEXT" },
    FLAG_ANSWER_PREFIX,
    FLAG_CHAT_TEMPLATE,
    FLAG_SYSTEM,
    { "--prompt-ids", "P.npy", "the question (oneshot: a newline)", "the ids fed after compression, as given" },
    FLAG_N_PREDICT,
    FLAG_TEMP,
    FLAG_TOP_P,
    FLAG_SEED,
    FLAG_THREADS,
    FLAG_CTX_SIZE,
    { "--dump", "DIR", "none", "write the dump (docs/dump-format.md): ids, kept positions, keys, values, logits, "
      "scores, margins, schedule, meta.json" },
    { "--dump-layout", "hf|native", "hf", "keys.npy in the Hugging Face rotate-half order, or the file's own" },
    { "--dump-steps", NULL, "off", "also every step's scores and kept set (steps_*.npy)" },
    { "--json", NULL, "off", "print the settings, statistics and answer as JSON instead of the answer" },
    FLAG_PROGRESS,
    FLAG_MAX_MEMORY,
    FLAG_QUANT_MATH,
    FLAG_CACHE_TYPE,
    FLAG_LOAD,
    { "--plot-kept", "FILE.svg", "none", "draw the kept positions of every layer and head" },
    { "--mark", "POS", "none", "mark context position POS on the --plot-kept drawing" },
    FLAG_END
};

/* ------------------------------------------------------------- compare */

static const cli_flag compare_flags[] = {
    { "--atol", "A", "1e-4", "tensors: an element passes when |other - ref| <= atol + rtol |ref|" },
    { "--rtol", "R", "1e-4", "tensors: the relative part of the tolerance" },
    { "--tie", "T", "1e-2", "a position kept by one side only is excused when REF's scores put it within T of "
      "its cut (relative)" },
    { "--json", NULL, "off", "print the comparison as JSON" },
    FLAG_END
};

/* ---------------------------------------------------------------- eval */

static const cli_flag eval_flags[] = {
    FLAG_MODEL,
    { "--task", "FILE", "required", "one item per line: {id, context, question, answers}; or SQuAD v2's dev-v2.0.json, "
      "LongBench's or RULER's JSONL as published (docs/benchmarks.md)" },
    { "--benchmark", "NAME", "auto (from the file)", "the format of --task: squad2, longbench, ruler, jsonl" },
    { "--fields", "MAP", "none", "key names of another JSONL: id=qid,context=passage,question=q,answers=gold" },
    { "--max-length", "L", "none", "LongBench's middle cut: keep L/2 tokens from each end of a longer prompt "
      "(the cut falls in the context)" },
    FLAG_LONGBENCH_E,
    FLAG_JIEBA,
    { "--dump-items", "DIR", "none", "one JSON file per item: its record and the prompt text the model reads" },
    { "--plot-kept-items", "DIR", "none", "one SVG map per item and run of the positions kept, the answer span marked" },
    { "--press", "LIST", "finch,truncate,streaming,snapkv,h2o,tova,knorm,random",
      "presses to compare (full, the reference, always runs); any --press name of run" },
    FLAG_LINGUA_SEGMENT,
    { "--ratio", "LIST", "2,4,8,16,32 (without --budget or --cr)", "compression factors, e.g. 2,4,8" },
    { "--budget", "LIST", "none", "context tokens kept, e.g. 64,128 (instead of --ratio)" },
    { "--cr", "LIST", "none", "fractions of the context removed, e.g. 0.5,0.9 (instead of --ratio)" },
    FLAG_MODE,
    FLAG_CHUNK,
    FLAG_SELECT,
    FLAG_NORMALIZE,
    FLAG_ANSWER_PREFIX,
    FLAG_CHAT_TEMPLATE,
    FLAG_SYSTEM,
    FLAG_N_PREDICT,
    FLAG_SEED,
    FLAG_THREADS,
    FLAG_CTX_SIZE,
    { "--limit", "N", "every item", "evaluate the first N items only" },
    { "--out", "DIR", "eval-out", "results.json, results.csv, items.csv, accuracy.svg, fidelity.svg" },
    { "--json", NULL, "off", "print the summary as JSON instead of a table" },
    { "--resume", NULL, "off", "continue a sweep from DIR/results.json made with the same settings" },
    FLAG_PROGRESS,
    FLAG_MAX_MEMORY,
    FLAG_QUANT_MATH,
    FLAG_CACHE_TYPE,
    FLAG_LOAD,
    FLAG_END
};

/* ---------------------------------------------------------- score, ruler */

static const cli_flag score_flags[] = {
    { "--task", "FILE", "required", "the benchmark file the predictions answer (as finch eval reads it)" },
    { "--predictions", "PRED", "required", "SQuAD v2: the official {id: answer} JSON; LongBench, RULER: JSON Lines "
      "{\"id\", \"prediction\"}" },
    { "--benchmark", "NAME", "auto (from the file)", "the format of --task: squad2, longbench, ruler, jsonl" },
    { "--fields", "MAP", "none", "key names of another JSONL: id=qid,context=passage,question=q,answers=gold" },
    { "--json", NULL, "off", "print the scores as JSON (SQuAD v2: the official script's output)" },
    FLAG_LONGBENCH_E,
    FLAG_JIEBA,
    FLAG_END
};

static const cli_flag ruler_flags[] = {
    FLAG_MODEL,
    { "--length", "TOKENS", "required", "the length of each item in the model's tokens, answer included" },
    { "-o, --out", "FILE", "required", "the JSONL written (RULER's fields plus \"task\")" },
    { "--tasks", "LIST", "niah_single_1,niah_multikey_2,niah_multivalue,niah_multiquery,vt,cwe",
      "niah_single_1..3, niah_multikey_1..3, niah_multivalue, niah_multiquery, vt, cwe, fwe, qa_1" },
    { "--samples", "K", "10", "items per task" },
    { "--squad", "PATH", "none", "qa_1's documents and questions: SQuAD v2's dev-v2.0.json or the squad2_500 folder" },
    { "--seed", "S", "42", "seed of the items (mixed with each task's name)" },
    FLAG_END
};

/* ------------------------------------------------------------- generate */

static const cli_flag generate_flags[] = {
    FLAG_MODEL,
    { "-p, --prompt", "TEXT", "none", "the prompt (BOS added when the tokenizer asks for it)" },
    { "--prompt-ids", "FILE.npy", "none", "the prompt, given as token ids" },
    FLAG_CHAT_TEMPLATE,
    FLAG_SYSTEM,
    FLAG_N_PREDICT,
    FLAG_TEMP,
    FLAG_TOP_P,
    FLAG_SEED,
    FLAG_THREADS,
    FLAG_CTX_SIZE,
    { "--dump", "DIR", "none", "write prompt_ids.npy, logits.npy, generated.npy and meta.json into DIR" },
    FLAG_MAX_MEMORY,
    FLAG_QUANT_MATH,
    FLAG_CACHE_TYPE,
    FLAG_LOAD,
    FLAG_END
};

/* ------------------------------------------------------------- tokenize */

static const cli_flag tokenize_flags[] = {
    { "-m, --model", "FILE", "required",
      "a model, or a tokenizer alone: vocab-only .gguf, tokenizer.json, tokenizer.model, tokenizer.bin" },
    { "-f, --file", "FILE", "none", "tokenize the text of FILE (as llama-tokenize -f)" },
    { "--no-bos", NULL, "off (BOS when the tokenizer adds one)", "do not add the BOS token" },
    { "--ids", NULL, "off", "print the ids as llama-tokenize --ids does: [1, 2, 3]" },
    { "--json", NULL, "off", "print the ids and their pieces as JSON" },
    { "--decode", "IDS", "none", "print the text of comma-separated ids instead (no TEXT then)" },
    FLAG_END
};

/* ----------------------------------------------------------------- info */

static const cli_flag info_flags[] = { FLAG_MODEL, FLAG_END };

/* -------------------------------------------------------------- convert */

static const cli_flag convert_flags[] = {
    { "--type", "TYPE", "f32", "weight type written: f32, f16, bf16, q8_0 or q4_0" },
    { "--tokenizer", "TOK.bin", "none", "the llama2.c tokenizer of a llama2.c .bin checkpoint" },
    FLAG_END
};

/* ---------------------------------------------------------------- bench */

static const cli_flag bench_flags[] = {
    { "-m, --model", "MODEL", "none", "a model to measure (repeatable)" },
    { "--models-dir", "DIR", "none", "measure every *.gguf in DIR, by name" },
    FLAG_THREADS,
    { "--prefill", "N", "512", "tokens of the timed prefill" },
    { "--decode", "N", "16", "timed decode steps" },
    { "--finch-text", "N", "1024", "context tokens Finch compresses" },
    { "--question", "N", "32", "question tokens of that run" },
    { "--chunk", "S", STR(FINCH_DEFAULT_CHUNK_MAX), "context tokens per chunk (Finch and the plain chunked prefill)" },
    { "--ratio", "X", "8", "compression factor: Finch keeps K = ceil(N / X)" },
    { "--rss", "MODEL", "none", "also measure the peak RSS of Finch on a short and a long text with this model" },
    { "--rss-short", "N", "4000", "tokens of the short text" },
    { "--rss-long", "N", "64000", "tokens of the long text" },
    FLAG_CACHE_TYPE,
    FLAG_LOAD,
    { "--no-probe", NULL, "off", "skip the FMA and bandwidth probes (no fractions of peak)" },
    { "--probe-mib", "N", "1024", "MiB the bandwidth probe reads" },
    { "--json", NULL, "off", "print the results as JSON instead of tables" },
    { "--json-file", "FILE", "none", "also write the JSON into FILE" },
    FLAG_END
};

/* ------------------------------------------------------------ commands */

static const cli_command commands[] = {
    { "run", "compress a context's KV cache with Finch, guided by a question, then answer from it",
      "-m MODEL (-f FILE | --context TEXT | --context-ids A.npy)\n"
      "                 (-q TEXT | --question-ids B.npy) (--budget K | --ratio X | --cr F) [options]",
      "The context is read (iterative: chunk by chunk, each with the question appended), its cache\n"
      "compressed to K context tokens by the press, and the answer decoded from the compressed cache.\n"
      "Unlike llama.cpp, -f is the context file and -q the question; the prompt fed after compression\n"
      "is the question again (iterative) or a newline (oneshot), then --answer-prefix.\n",
      run_flags,
      "finch run -m testdata/models/needle.gguf -f testdata/needle-context.txt -q \"What is the special "
      "magic number for battery? The special magic number for battery is\" --ratio 32 --chunk 256 -n 2" },
    { "eval", "compare presses across budgets on a JSONL task file, against the full cache",
      "-m MODEL --task TASK.jsonl [options]",
      "Every press at every budget on every item: exact match, F1, KL and NLL against the full cache,\n"
      "top-1 agreement, time and KV bytes (docs/eval.md).  The budget flags take lists; give one of them.\n",
      eval_flags, "finch eval -m MODEL --task task.jsonl --press finch,snapkv --ratio 2,8 --out eval-out" },
    { "generate", "generate text from a prompt with the full cache",
      "-m MODEL (-p TEXT | --prompt-ids FILE.npy) [options]", NULL, generate_flags,
      "finch generate -m testdata/models/tiny-llama.gguf -p \"Once upon a time\" -n 16" },
    { "tokenize", "print the token ids of a text, or the text of token ids",
      "-m FILE (TEXT | -f FILE | --decode IDS) [options]",
      "FILE may be a model or a tokenizer alone: no weights are needed, and a vocab-only GGUF of any\n"
      "architecture works; tokenizer.model may be SentencePiece (BPE) or tiktoken, tokenizer.bin is\n"
      "llama2.c's.  Output: the ids on one line, separated by spaces.\n",
      tokenize_flags, "finch tokenize -m testdata/models/tiny-llama.gguf --ids \"Once upon a time\"" },
    { "info", "describe a model: architecture, shapes, tensor types, tokenizer, kernels", "-m MODEL", NULL,
      info_flags, "finch info -m testdata/models/needle.gguf" },
    { "convert", "write a GGUF file (llama.cpp layout) from a model", "INPUT OUTPUT.gguf [options]",
      "INPUT is a Hugging Face directory, a GGUF file or a llama2.c .bin checkpoint.\n", convert_flags,
      "finch convert ../shared/assets/models/tinystories-656k tinystories.gguf --type f16" },
    { "score", "score answers made elsewhere with a benchmark's own metric",
      "--task FILE --predictions PRED [options]",
      "SQuAD v2: prints what evaluate-v2.0.py prints (exact, f1, total, HasAns_*, NoAns_*); LongBench and\n"
      "RULER: one score per dataset on the benchmark's scale (docs/benchmarks.md).\n",
      score_flags, "finch score --task testdata/bench/squad2_dev.json --predictions testdata/bench/squad2_pred.json --json" },
    { "ruler", "make RULER-style synthetic tasks at a chosen length in the model's tokens",
      "-m MODEL --length TOKENS -o FILE.jsonl [options]",
      "Needle variants, variable tracking, common- and frequent-word extraction and SQuAD question\n"
      "answering with RULER's templates, written as RULER's JSONL for finch eval and finch score\n"
      "(docs/benchmarks.md says where they differ).\n",
      ruler_flags, "finch ruler -m testdata/models/needle.gguf --length 2048 --tasks niah_single_1,vt -o ruler.jsonl" },
    { "bench", "prefill and decode speed, Finch against plain chunked prefill, peak RSS",
      "(-m MODEL ... | --models-dir DIR) [options]",
      "Each figure beside the machine's FMA peak and read bandwidth, measured in the same run\n"
      "(docs/bench.md).\n",
      bench_flags, "finch bench --models-dir bench-models --json-file bench.json" },
    { "compare", "check another implementation's dump against finch's (exit 0 agree, 1 not)",
      "REF OTHER [options]",
      "Kept sets per layer and KV head (near ties excused by REF's scores), keys (layouts and positions\n"
      "reconciled), values and logits (docs/dump-format.md).  OTHER may hold only meta.json and kept.npy.\n",
      compare_flags, "finch compare ref-dump other-dump --atol 1e-3" },
};

enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

const cli_command *cli_command_find(const char *name) {
    for (size_t i = 0; name && i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

/* Is `name` one of the comma-separated names of f ("-m, --model")? */
static bool flag_named(const cli_flag *f, const char *name) {
    size_t len = strlen(name);
    for (const char *p = f->names; (p = strstr(p, name)) != NULL; p += len) {
        bool starts = p == f->names || p[-1] == ' ';
        if (starts && (p[len] == 0 || p[len] == ',')) return true;
    }
    return false;
}

const cli_flag *cli_command_flag(const cli_command *c, const char *name) {
    for (const cli_flag *f = c->flags; f->names; f++)
        if (flag_named(f, name)) return f;
    return NULL;
}

void cli_print_help(const cli_command *c, FILE *f) {
    fprintf(f, "finch %s - %s\n\nusage: finch %s %s\n\n", c->name, c->summary, c->name, c->usage);
    if (c->about) fprintf(f, "%s\n", c->about);
    fputs("options:\n", f);
    for (const cli_flag *fl = c->flags; fl->names; fl++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s%s%s%s", fl->names[1] == '-' ? "    " : "", fl->names, fl->arg ? " " : "",
                 fl->arg ? fl->arg : "");
        fprintf(f, "  %-28s  %s [default: %s]\n", spec, fl->help, fl->def);
    }
    fprintf(f, "  %-28s  %s\n\nexample:\n  %s\n", "-h, --help", "print this help", c->example);
}

void cli_print_overview(FILE *f) {
    fputs("finch - a pure-C reference implementation of Finch KV-cache compression\n\n"
          "usage: finch COMMAND [options]     (finch COMMAND --help: its flags and defaults)\n\ncommands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  finch %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n  -h, --help     this text\n  --version      version, git commit, kernels chosen on this CPU\n\n"
          "MODEL is a .gguf file or a Hugging Face directory (config.json + safetensors).\n"
          "Exit codes: 0 success, 2 bad input (files, flags, text), 1 internal error.\n", f);
}

void cli_print_version(FILE *f) {
    fprintf(f, "finch %s (commit %s)\nkernels: %s\n", finch_version(), finch_build_commit(), finch_kernels_describe());
}
