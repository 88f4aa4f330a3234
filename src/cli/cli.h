/* cli.h - what the subcommands of `finch` share: argument parsing, one-line
 * errors with exit codes, model loading, and dump directories written
 * atomically (a temporary directory renamed into place).  The map of
 * src/cli/: main.c dispatches to one cmd_<name>.c per subcommand (run,
 * eval, generate, tokenize, info, convert, bench, compare, score, ruler);
 * cli.c, cli_shared.c, cli_help.c, cli_limits.c, cli_chat.c, cli_prompt.c
 * and cli_delimiter.c are their shared flags, help, memory limits, chat
 * templates and prompts; cli_jieba.c the Chinese word segmenter of score
 * and eval (--jieba); eval_report.c, eval_bench.c, eval_mpi*.c (MPI=1
 * only), bench_report.c and svg.c write what eval and bench measured. */
#ifndef FINCH_CLI_H
#define FINCH_CLI_H

#include "finch.h"

#include <cjson/cJSON.h>
#include "finch_dump.h"
#include "finch_eval.h"
#include "finch_press.h"
#include "outfile.h"
#include <stdbool.h>
#include <stdio.h>

/* Exit codes: 0 success, 2 bad input (files, flags, text), 1 internal. */
enum { EXIT_BAD_INPUT = 2, EXIT_INTERNAL = 1 };
/* A parser's answer to -h/--help in an option's place: main prints the
 * usage and exits 0. */
enum { CLI_HELP = -1 };

/* Print "finch: error: <msg>" on one line; returns the exit code. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* On this thread, keep cli_error's first message in buf[0..cap) instead of
 * printing it (an MPI rank sends it to rank 0, which prints one line);
 * cap 0 prints again. */
void cli_error_capture(char *buf, size_t cap);
/* Report a library failure: the status picks the exit code. */
int cli_fail(finch_status st, const char *what);
/* --jieba CMD (cli_jieba.c): register the Chinese word segmenter with the
 * library before the task file is read (cmd NULL: nothing); CMD itself
 * starts at the first text to segment.  cli_jieba_check, once the tasks
 * are read: when one is scored on jieba's words, start CMD and segment a
 * word (0, or exit 2 naming CMD when it cannot segment), so a bad CMD is
 * refused before any work; else nothing runs.  Stop it at the end. */
int cli_jieba_start(const char *cmd);
int cli_jieba_check(const finch_eval_tasks *t);
void cli_jieba_stop(void);

/* ---- argument parsing ----
 * Options are matched one at a time: `if (cli_opt(&a, "-m", "--model"))
 * model = cli_value(&a);`.  Each option may be given once; unknown options
 * and missing values are reported by cli_args_error(). */
struct cli_command;

typedef struct {
    int argc;
    char **argv;
    const struct cli_command *cmd; /* argv[0]'s flag table (cli_help.c), or NULL */
    int i;              /* index of the current argument */
    const char *error;  /* first parse error, or NULL */
    char seen[64][32];  /* options already given (to refuse repeats) */
    int n_seen;
    const char *positional[4];
    int n_positional;
    bool help;          /* -h or --help given in an option's place */
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv);
/* Advance to the next argument; false at the end. */
bool cli_next(cli_args *a);
/* Does the current argument match one of the names (short may be NULL)? */
bool cli_opt(cli_args *a, const char *short_name, const char *long_name);
/* As cli_opt, for an option that may be given more than once (bench's -m). */
bool cli_opt_repeatable(const cli_args *a, const char *short_name, const char *long_name);
const char *cli_value(cli_args *a);          /* the option's value */
long cli_long(cli_args *a, long min, long max);
double cli_double(cli_args *a, double min, double max);
/* Current argument is positional (not starting with '-'): keep it. */
bool cli_positional(cli_args *a, int max);
/* Call when no option matched: records "unknown option". */
void cli_unknown(cli_args *a);
/* Non-zero exit code if parsing failed (message printed), CLI_HELP when
 * help was asked for. */
int cli_args_error(const cli_args *a);

/* ---- the flags run, eval, generate and bench share (cli_shared.c) ----
 * In a parser's loop: `if (cli_shared_flag(&a, &sh)) continue;` takes any
 * shared flag the subcommand's table lists; after the loop
 * cli_shared_finish checks them and fills the press parameters. */
enum { CLI_MAX_BUDGETS = 32 };
typedef struct {
    const char *model, *mode, *select, *normalize, *answer_prefix, *max_memory;
    const char *chat_template, *system;  /* cli_chat.c                      */
    const char *quant_math;              /* --quant-math q8|fp32           */
    const char *load;                    /* --load auto|mmap|read          */
    const char *cache_type;              /* --cache-type f32|f16           */
    long n_predict, threads, seed, chunk; /* chunk 0: the plan's default    */
    long ctx_size;                        /* -c; 0: the model's length     */
    double temp, top_p;
    const char *budget_list, *budget_flag; /* "--ratio", "2,4"               */
    int n_budget_flags;
    finch_budget_kind budget_kind;
    double budgets[CLI_MAX_BUDGETS];       /* sorted, after finish          */
    size_t n_budgets;
    bool json, progress;
} cli_shared;
void cli_shared_init(cli_shared *s);
bool cli_shared_flag(cli_args *a, cli_shared *s);
/* Check mode, select, normalize, the budget list (at most max_budgets
 * values; the first goes into p), --max-memory; set p's seed and chunk. */
int cli_shared_finish(cli_shared *s, size_t max_budgets, finch_press_params *p, size_t *max_memory);
/* p's budget of the given kind = v. */
void cli_set_budget(finch_press_params *p, finch_budget_kind kind, double v);

/* ---- common steps ---- */
int cli_load_model(const char *path, finch_model **m);
/* Read token ids from a 1-D int .npy file. */
int cli_read_ids(const char *path, int32_t **ids, size_t *n);
/* Tokenize text (adding BOS when the tokenizer says so and add_bos). */
int cli_tokenize(const finch_model *m, const char *text, bool add_bos, int32_t **ids, size_t *n);
/* Tokenize a text file block by block (finch_tokenize_file). */
int cli_tokenize_file(const finch_model *m, const char *path, bool add_bos, int32_t **ids, size_t *n);
/* The ids fed after compression for the mode (cli_prompt.c).  Without a
 * chat template (tail NULL): oneshot "\n" + prefix; iterative the question
 * + prefix, or nothing (the press feeds the question) when there is no
 * prefix.  With one, tail is the end of the user turn and the assistant
 * header: oneshot tail + prefix; iterative the question, tail + prefix. */
int cli_answer_prompt(const finch_model *m, finch_press_mode mode, const int32_t *question, size_t n_question,
                      const char *tail, const char *answer_prefix, int32_t **prompt, size_t *n_prompt);

/* ---- chat templates (cli_chat.c, docs/chat-templates.md) ---- */
typedef struct {
    int format;      /* finch_chat_format; 0 (none): the texts as given       */
    bool from_model; /* recognised from the model's template text (auto)    */
    char *head;      /* system turn + user header (finch_chat_split), or NULL */
    char *tail;      /* end of the user turn + assistant header, or NULL     */
} cli_chat;
/* --chat-template VALUE (NULL or "auto": the model's template when it has
 * one, else none; "none"; a format name) with --system (NULL: none).
 * ids_given: the context/question are token ids (auto then means none, a
 * name is refused).  An unrecognised model template under auto is refused. */
int cli_chat_setup(const finch_model *m, const char *value, const char *system, bool ids_given, cli_chat *c);
void cli_chat_free(cli_chat *c);
const char *cli_chat_name(const cli_chat *c);
/* Context ids: [BOS] head + text, BOS added only when the tokenizer adds one
 * and the text does not begin with it; *n_protect: the leading tokens that
 * encode BOS and the head (0 without a template). */
int cli_chat_context(const finch_model *m, const cli_chat *c, const char *text, int32_t **ids, size_t *n,
                     size_t *n_protect);
/* `finch generate`'s prompt: [BOS] head + text + tail (text alone, BOS
 * once, without a template). */
int cli_chat_prompt(const finch_model *m, const cli_chat *c, const char *text, int32_t **ids, size_t *n);
/* The same for a context file (read whole when a template applies). */
int cli_chat_context_file(const finch_model *m, const cli_chat *c, const char *path, int32_t **ids, size_t *n,
                          size_t *n_protect);
/* --delimiter (cli_delimiter.c): context and question from one text cut at
 * the one occurrence of delim (removed); the context tokenized as a text
 * start, the question as its continuation. */
int cli_split_delimited(const finch_model *m, const char *text, size_t len, const char *delim, int32_t **context,
                        size_t *n_context, int32_t **question, size_t *n_question);
/* Print the bytes of a token to f (stdout for generated text). */
void cli_print_token(const finch_model *m, int32_t prev, int32_t id, FILE *f);

/* --quant-math q8|fp32 (NULL: q8): sets finch_set_quant_math. */
int cli_parse_quant_math(const char *value);
/* --load auto|mmap|read (NULL: auto): sets finch_set_load_mode. */
int cli_parse_load(const char *value);

/* ---- limits (cli_limits.c) ---- */
/* --max-memory SIZE (finch_parse_size) into *bytes; value NULL: 0 (none). */
int cli_parse_max_memory(const char *value, size_t *bytes);
/* Before allocating: refuse (exit 2, one line with both sizes) when `what`
 * ("the run", "item x") needs more than max_memory, or, when that is 0, more
 * than the memory available now (finch_memory_estimate for a KV cache of
 * kv_positions and batches of max_batch tokens). */
int cli_check_memory(const finch_model *m, size_t kv_positions, finch_cache_type cache_type, size_t max_batch,
                     size_t max_memory, const char *what);
/* Before reading or tokenizing a text of text_bytes (a context, a prompt,
 * a task file): refuse, as cli_check_memory, when the model (m may be NULL)
 * and finch_memory_text exceed the limit. */
int cli_check_text_memory(const finch_model *m, size_t text_bytes, size_t max_memory, const char *what);
/* An allocation failed: "out of memory", exit 1 (an internal failure). */
int cli_out_of_memory(void);
/* obj[key] = v, or null when v is NaN or infinite (not JSON numbers). */
void cli_json_number(cJSON *obj, const char *key, double v);

/* ---- outputs (cli_output.c; the rule is docs/files.md) ----
 * Dumps: a temporary directory beside DIR, renamed into place when
 * complete.  An existing DIR is refused unless it is empty or holds nothing
 * but an earlier finch dump (regular files *.npy and a meta.json of finch:
 * format finch-dump, or command run/generate), which is then replaced. */
typedef struct {
    char path[4000];   /* the target */
    finch_outdir dir;
    const char *tmp;   /* where the files go (dir.tmp) */
    bool replace;      /* the target exists (empty, or an earlier dump) */
    bool active;
} cli_dump;

/* Before the work: check the target (nothing is created). */
int cli_dump_begin(cli_dump *d, const char *dir);
/* After the work: create the temporary directory the files go into. */
int cli_dump_create(cli_dump *d);
/* Full path of `name` inside the temporary directory (static buffer). */
const char *cli_dump_path(cli_dump *d, const char *name);
int cli_dump_npy(cli_dump *d, const char *name, finch_npy_type t, const void *data,
                 const size_t *shape, size_t ndim);
/* Write meta.json (text must be a complete JSON document). */
int cli_dump_text(cli_dump *d, const char *name, const char *text);
int cli_dump_commit(cli_dump *d);
void cli_dump_abort(cli_dump *d);

/* Before any work: refuse (exit 2, one line naming `flag`) an output path
 * that is not absent or a regular file, or that is the same file as one of
 * the n_inputs input paths (NULL entries are skipped). */
int cli_output_check(const char *flag, const char *path, const char *const *inputs, size_t n_inputs);
/* Write text (plus nothing else) atomically to path; errors name `flag`. */
int cli_write_text_file(const char *flag, const char *path, const char *text);
/* obj[key] = s as valid UTF-8 (finch_utf8_clean): paths and flag values
 * from the command line may hold any bytes. */
void cli_json_string(cJSON *obj, const char *key, const char *s);

/* Signals (main.c installs them, for every subcommand): SIGINT, SIGTERM
 * and SIGHUP remove the registered temporaries and exit 128 + the signal;
 * SIGBUS (a mapped model file that shrank) prints one line naming the file
 * given to cli_watch_mapped, removes the temporaries and exits 2. */
void cli_install_signal_handlers(void);
void cli_watch_mapped(const char *path);
/* Standard descriptors 0-2 that are closed are opened on /dev/null for
 * reading, so that a file finch opens never becomes stdout, and a write to
 * a closed stdout fails (and is reported) instead. */
void cli_guard_std_fds(void);
/* stdout replaced by a stream that keeps the first write error's reason. */
void cli_watch_stdout(void);
/* At exit: stdout flushed and closed; a failure (full disk, closed, EPIPE)
 * prints one line and turns a 0 exit code into 2. */
int cli_finish_stdout(int rc);

/* ---- per-command options ----
 * Each subcommand's arguments are parsed apart from running it, so the
 * parsers can be tested and fuzzed on their own.  A parser returns 0, or
 * the exit code after printing the one-line error. */
typedef struct {
    const char *model, *prompt, *prompt_ids, *dump;
    const char *chat_template, *system; /* --chat-template, --system        */
    long n_new, threads;
    double temp, top_p;
    long seed;
    size_t max_memory;      /* --max-memory in bytes, 0 when not given      */
    size_t ctx_size;        /* -c: positions used, 0: the model's length    */
    finch_cache_type cache_type; /* --cache-type                            */
} cli_generate_opts;
int cli_parse_generate(int argc, char **argv, cli_generate_opts *o);

typedef struct {
    const char *model;
} cli_info_opts;
int cli_parse_info(int argc, char **argv, cli_info_opts *o);

typedef struct {
    const char *model, *text;
    const char *file;       /* -f: the text of this file instead            */
    const char *decode;     /* --decode 1,2,3: ids to text                  */
    bool add_bos, ids, json;
} cli_tokenize_opts;
int cli_parse_tokenize(int argc, char **argv, cli_tokenize_opts *o);

typedef struct {
    const char *input, *output, *tokenizer, *type_name;
    finch_dtype type;
} cli_convert_opts;
int cli_parse_convert(int argc, char **argv, cli_convert_opts *o);

typedef struct {
    const char *model, *context_file, *context_text, *context_ids, *question, *question_ids;
    const char *prompt_ids, *answer_prefix, *dump;
    const char *delimiter;  /* --delimiter: the question is in the context text */
    const char *chat_template, *system; /* --chat-template, --system        */
    finch_press_params p;
    int n_budget_flags;
    long n_new, threads, seed;
    double temp, top_p;
    bool json, progress;
    const char *plot_kept;  /* --plot-kept FILE.svg                        */
    long mark;              /* --mark POS on that plot, -1 when none       */
    finch_key_layout dump_layout; /* --dump-layout (default hf)             */
    size_t max_memory;      /* --max-memory in bytes, 0 when not given      */
    size_t ctx_size;        /* -c: positions used, 0: the model's length    */
} cli_run_opts;
int cli_parse_run(int argc, char **argv, cli_run_opts *o);

/* `finch eval` (cmd_eval.c): presses x ratios over a JSONL task file. */
enum { CLI_EVAL_MAX_RATIOS = 32 };
typedef struct {
    const char *model, *task, *out, *answer_prefix;
    const char *chat_template, *system;          /* --chat-template, --system     */
    finch_scorer_id presses[FINCH_SCORER_COUNT]; /* in the order given, full excluded */
    size_t n_presses;
    double ratios[CLI_EVAL_MAX_RATIOS];          /* ascending, distinct           */
    size_t n_ratios;
    finch_press_params p;                        /* mode, select, normalize, chunk, seed */
    long threads, n_new, limit, seed;
    bool json, resume, progress;
    size_t max_memory;                           /* --max-memory, 0: none         */
    const char *benchmark, *fields, *dump_items; /* --benchmark, --fields, --dump-items */
    const char *plot_kept_items;                 /* --plot-kept-items DIR */
    bool n_new_given;                            /* -n given: it overrides the benchmark's */
    long max_length;                             /* --max-length: LongBench's middle cut, 0: none */
    bool longbench_e;                            /* --longbench-e: scores per length bucket */
    const char *jieba;                           /* --jieba CMD: the Chinese word segmenter */
    int bench_read;                              /* finch_benchmark of the task file read */
    size_t ctx_size;                             /* -c, 0: the model's length     */
} cli_eval_opts;
int cli_parse_eval(int argc, char **argv, cli_eval_opts *o);

/* `finch bench` (cmd_bench.c): speed against the machine's own limits. */
enum { CLI_BENCH_MAX_MODELS = 32 };
typedef struct {
    const char *models[CLI_BENCH_MAX_MODELS]; /* -m, in the order given       */
    size_t n_models;
    const char *models_dir;  /* --models-dir: every *.gguf there, sorted     */
    const char *rss_model;   /* --rss MODEL: peak RSS, short vs long text    */
    const char *json_file;   /* --json-file: the JSON also written there     */
    long threads, prefill, decode, finch_text, question, chunk;
    long rss_short, rss_long, probe_mib;
    double ratio;            /* Finch budget K = ceil(N / ratio)             */
    bool json, probe;
    finch_cache_type cache_type; /* --cache-type of every cache measured     */
} cli_bench_opts;
int cli_parse_bench(int argc, char **argv, cli_bench_opts *o);

int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_score(int argc, char **argv); /* cmd_score.c: `finch score` */
int cmd_ruler(int argc, char **argv); /* cmd_ruler.c: `finch ruler` */
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_compare(int argc, char **argv);

#endif
