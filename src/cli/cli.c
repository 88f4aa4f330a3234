/* cli.c - shared pieces of the command-line program. */
#include "cli.h"
#include "cli_help.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

static _Thread_local char *capture_buf;
static _Thread_local size_t capture_cap;

void cli_error_capture(char *buf, size_t cap) {
    capture_buf = cap ? buf : NULL;
    capture_cap = cap;
    if (capture_buf) capture_buf[0] = 0;
}

int cli_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one line, always */
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (capture_buf && !capture_buf[0]) snprintf(capture_buf, capture_cap, "%s", msg); /* the first: the cause */
    else if (!capture_buf) fprintf(stderr, "finch: error: %s\n", msg);
    return EXIT_BAD_INPUT;
}

int cli_fail(finch_status st, const char *what) {
    cli_error("%s: %s", what, finch_last_error());
    return (st == FINCH_ERR_INTERNAL || st == FINCH_ERR_NOMEM) ? EXIT_INTERNAL : EXIT_BAD_INPUT;
}

/* ------------------------------------------------------------- arguments */

void cli_args_init(cli_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->argc = argc;
    a->argv = argv;
    a->i = 0; /* argv[0] is the subcommand */
    a->cmd = argc > 0 ? cli_command_find(argv[0]) : NULL;
}

/* -h and --help in the place of an option ask for help; as an option's
 * value (-q -h) they are that value, taken by cli_value, never seen here. */
bool cli_next(cli_args *a) {
    if (a->error) return false;
    for (a->i++; a->i < a->argc; a->i++) {
        if (strcmp(a->argv[a->i], "-h") && strcmp(a->argv[a->i], "--help")) return true;
        a->help = true;
    }
    return false;
}

static void set_error(cli_args *a, const char *fmt, const char *arg) {
    static char buf[512];
    if (a->error) return;
    snprintf(buf, sizeof buf, fmt, arg);
    a->error = buf;
}

bool cli_opt_repeatable(const cli_args *a, const char *short_name, const char *long_name) {
    const char *arg = a->argv[a->i];
    return (short_name && !strcmp(arg, short_name)) || (long_name && !strcmp(arg, long_name));
}

bool cli_opt(cli_args *a, const char *short_name, const char *long_name) {
    if (!cli_opt_repeatable(a, short_name, long_name)) return false;
    const char *key = long_name ? long_name : short_name;
    if (a->cmd && !cli_command_flag(a->cmd, key)) { /* a parser's flag with no row in cli_help.c */
        set_error(a, "option %s is not in this command's flag table (src/cli/cli_help.c)", key);
        return false;
    }
    for (int k = 0; k < a->n_seen; k++)
        if (!strcmp(a->seen[k], key)) {
            set_error(a, "option %s given more than once", key);
            return false;
        }
    if (a->n_seen < 64) snprintf(a->seen[a->n_seen++], sizeof a->seen[0], "%s", key);
    return true;
}

const char *cli_value(cli_args *a) {
    const char *opt = a->argv[a->i];
    if (a->i + 1 >= a->argc) {
        set_error(a, "option %s needs a value", opt);
        return NULL;
    }
    return a->argv[++a->i];
}

long cli_long(cli_args *a, long min, long max) {
    const char *opt = a->argv[a->i], *v = cli_value(a);
    if (!v) return min;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        static char msg[256];
        snprintf(msg, sizeof msg, "option %s needs an integer in [%ld, %ld], got '%%s'", opt, min, max);
        set_error(a, msg, v);
        return min;
    }
    return x;
}

double cli_double(cli_args *a, double min, double max) {
    const char *opt = a->argv[a->i], *v = cli_value(a);
    if (!v) return min;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= min && x <= max)) {
        static char msg[256];
        snprintf(msg, sizeof msg, "option %s needs a number in [%g, %g], got '%%s'", opt, min, max);
        set_error(a, msg, v);
        return min;
    }
    return x;
}

bool cli_positional(cli_args *a, int max) {
    const char *arg = a->argv[a->i];
    if (arg[0] == '-' && arg[1]) return false;
    if (a->n_positional >= max || a->n_positional >= 4) {
        set_error(a, "unexpected argument '%s'", arg);
        return true;
    }
    a->positional[a->n_positional++] = arg;
    return true;
}

void cli_unknown(cli_args *a) { set_error(a, "unknown option '%s' (see finch --help)", a->argv[a->i]); }

int cli_args_error(const cli_args *a) { return a->help ? CLI_HELP : a->error ? cli_error("%s", a->error) : 0; }

/* ---------------------------------------------------------- common steps */

int cli_load_model(const char *path, finch_model **m) {
    if (!path) return cli_error("no model given (-m MODEL: a .gguf file or a Hugging Face directory)");
    cli_watch_mapped(path); /* named if the mapped file shrinks (SIGBUS) */
    finch_status st = finch_model_load(path, m);
    return st ? cli_fail(st, "cannot load model") : 0;
}

int cli_read_ids(const char *path, int32_t **ids, size_t *n) {
    size_t shape[8], ndim;
    void *data;
    finch_status st = finch_npy_read(path, FINCH_NPY_I32, &data, shape, &ndim);
    if (st) return cli_fail(st, "cannot read token ids");
    if (ndim != 1 || shape[0] == 0) {
        free(data);
        return cli_error("%s: token ids must be a non-empty 1-D array", path);
    }
    *ids = data;
    *n = shape[0];
    return 0;
}

int cli_tokenize(const finch_model *m, const char *text, bool add_bos, int32_t **ids, size_t *n) {
    if (!m->tokenizer) return cli_error("the model carries no tokenizer: give token ids as .npy instead");
    finch_status st = finch_check_text(text, strlen(text));
    if (!st) st = finch_tokenize(m->tokenizer, text, strlen(text), add_bos ? 1 : 0, ids, n);
    return st ? cli_fail(st, "cannot tokenize") : 0;
}

int cli_tokenize_file(const finch_model *m, const char *path, bool add_bos, int32_t **ids, size_t *n) {
    if (!m->tokenizer) return cli_error("the model carries no tokenizer: give token ids as .npy instead");
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("cannot open %s: %s", path, strerror(errno));
    finch_status st = finch_tokenize_file(m->tokenizer, f, add_bos ? 1 : 0, ids, n);
    fclose(f);
    if (st) {
        char what[4200];
        snprintf(what, sizeof what, "cannot read the context %s", path);
        return cli_fail(st, what);
    }
    return 0;
}

void cli_print_token(const finch_model *m, int32_t prev, int32_t id, FILE *f) {
    if (!m->tokenizer) {
        fprintf(f, "[%d]", id);
        return;
    }
    size_t n;
    const char *piece = finch_token_piece(m->tokenizer, prev, id, &n); /* whole, however long */
    if (piece && n) fwrite(piece, 1, n, f);
}

void cli_json_number(cJSON *obj, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(obj, key, v);
    else cJSON_AddNullToObject(obj, key);
}

int cli_parse_quant_math(const char *value) {
    if (!value || !strcmp(value, "q8")) finch_set_quant_math(FINCH_QUANT_MATH_Q8);
    else if (!strcmp(value, "fp32")) finch_set_quant_math(FINCH_QUANT_MATH_FP32);
    else return cli_error("--quant-math must be q8 or fp32, got '%s'", value);
    return 0;
}

int cli_parse_load(const char *value) {
    if (!value || !strcmp(value, "auto")) finch_set_load_mode(FINCH_LOAD_AUTO);
    else if (!strcmp(value, "mmap")) finch_set_load_mode(FINCH_LOAD_MMAP);
    else if (!strcmp(value, "read")) finch_set_load_mode(FINCH_LOAD_READ);
    else return cli_error("--load must be auto, mmap or read, got '%s'", value);
    return 0;
}
