/* cli_shared.c - the flags that run, eval, generate and bench share: parsed
 * here once, with one range and one default each (the defaults are the
 * library's, include/finch_run.h).  A subcommand accepts a shared flag only
 * when its table in cli_help.c lists it. */
#include "cli.h"
#include "cli_help.h"
#include "finch_run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_shared_init(cli_shared *s) {
    memset(s, 0, sizeof *s);
    s->n_predict = FINCH_DEFAULT_N_PREDICT;
    s->seed = FINCH_DEFAULT_SEED;
    s->temp = FINCH_DEFAULT_TEMP;
    s->top_p = FINCH_DEFAULT_TOP_P;
    s->progress = isatty(2);
}

/* The current argument is the shared flag `long_name` (or `short_name`)
 * and this subcommand lists it. */
static bool shared(cli_args *a, const char *short_name, const char *long_name) {
    if (a->cmd && !cli_command_flag(a->cmd, long_name)) return false;
    return cli_opt(a, short_name, long_name);
}

static bool budget_flag(cli_args *a, cli_shared *s, const char *name, finch_budget_kind kind) {
    if (!shared(a, NULL, name)) return false;
    s->budget_kind = kind;
    s->budget_list = cli_value(a);
    s->budget_flag = name;
    s->n_budget_flags++;
    return true;
}

bool cli_shared_flag(cli_args *a, cli_shared *s) {
    if (shared(a, "-m", "--model")) s->model = cli_value(a);
    else if (shared(a, "-n", "--n-predict")) s->n_predict = cli_long(a, 0, 1 << 20);
    else if (shared(a, "-t", "--threads")) s->threads = cli_long(a, 1, 256);
    else if (shared(a, NULL, "--seed")) s->seed = cli_long(a, 0, 0x7fffffffL);
    else if (shared(a, NULL, "--temp")) s->temp = cli_double(a, 0, 100);
    else if (shared(a, NULL, "--top-p")) s->top_p = cli_double(a, 1e-6, 1);
    else if (shared(a, NULL, "--chunk")) s->chunk = cli_long(a, 1, 1L << 30);
    else if (shared(a, "-c", "--ctx-size")) s->ctx_size = cli_long(a, 1, 1L << 30);
    else if (shared(a, NULL, "--mode")) s->mode = cli_value(a);
    else if (shared(a, NULL, "--select")) s->select = cli_value(a);
    else if (shared(a, NULL, "--normalize")) s->normalize = cli_value(a);
    else if (shared(a, NULL, "--answer-prefix")) s->answer_prefix = cli_value(a);
    else if (shared(a, NULL, "--chat-template")) s->chat_template = cli_value(a);
    else if (shared(a, NULL, "--system")) s->system = cli_value(a);
    else if (shared(a, NULL, "--max-memory")) s->max_memory = cli_value(a);
    else if (shared(a, NULL, "--quant-math")) s->quant_math = cli_value(a);
    else if (shared(a, NULL, "--load")) s->load = cli_value(a);
    else if (shared(a, NULL, "--cache-type")) s->cache_type = cli_value(a);
    else if (shared(a, NULL, "--json")) s->json = true;
    else if (shared(a, NULL, "--progress")) s->progress = true;
    else return budget_flag(a, s, "--budget", FINCH_BUDGET_TOKENS) || budget_flag(a, s, "--ratio", FINCH_BUDGET_RATIO) ||
                budget_flag(a, s, "--cr", FINCH_BUDGET_CR);
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One value of a budget list, checked for its kind. */
static bool budget_value_ok(finch_budget_kind kind, double v) {
    switch (kind) {
    case FINCH_BUDGET_TOKENS: return v >= 1 && v <= (double)(1L << 40) && v == (double)(long)v;
    case FINCH_BUDGET_RATIO: return v >= 1 && v <= 1e9;
    case FINCH_BUDGET_CR: return v >= 0 && v < 1;
    }
    return false;
}

static const char *budget_wants(finch_budget_kind kind) {
    return kind == FINCH_BUDGET_TOKENS ? "token counts >= 1"
         : kind == FINCH_BUDGET_RATIO  ? "compression factors >= 1"
                                       : "fractions removed in [0, 1)";
}

/* "2,4,8": values of the kind, sorted, no repeats, at most max of them. */
static int parse_budget_list(cli_shared *s, size_t max) {
    const char *list = s->budget_list, *p = list, *flag = s->budget_flag;
    s->n_budgets = 0;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !budget_value_ok(s->budget_kind, v) || (*end && *end != ','))
            return cli_error("%s needs %s%s, got '%s'", flag, budget_wants(s->budget_kind),
                             max > 1 ? " separated by commas" : "", list);
        if (s->n_budgets == max)
            return max == 1 ? cli_error("%s takes one value here, got '%s'", flag, list)
                            : cli_error("%s: at most %zu values", flag, max);
        s->budgets[s->n_budgets++] = v;
        if (!*end) break;
        p = end + 1;
    }
    qsort(s->budgets, s->n_budgets, sizeof s->budgets[0], cmp_double);
    for (size_t i = 1; i < s->n_budgets; i++)
        if (s->budgets[i] == s->budgets[i - 1]) return cli_error("%s: %g is listed twice", flag, s->budgets[i]);
    return 0;
}

void cli_set_budget(finch_press_params *p, finch_budget_kind kind, double v) {
    p->budget_kind = kind;
    if (kind == FINCH_BUDGET_TOKENS) p->budget = (size_t)v;
    else if (kind == FINCH_BUDGET_RATIO) p->ratio = v;
    else p->cr = v;
}

int cli_shared_finish(cli_shared *s, size_t max_budgets, finch_press_params *p, size_t *max_memory) {
    int rc = cli_parse_max_memory(s->max_memory, max_memory);
    if (rc || (rc = cli_parse_quant_math(s->quant_math)) || (rc = cli_parse_load(s->load))) return rc;
    if (s->normalize && finch_press_parse_normalize(s->normalize, &p->normalize) != FINCH_OK)
        return cli_error("--normalize must be on, authors or off, got '%s'", s->normalize);
    if (s->mode && finch_press_parse_mode(s->mode, &p->mode) != FINCH_OK)
        return cli_error("--mode must be iterative or oneshot, got '%s'", s->mode);
    if (s->select && finch_press_parse_select(s->select, &p->select) != FINCH_OK)
        return cli_error("--select must be head or layer, got '%s'", s->select);
    if (s->cache_type && finch_cache_type_parse(s->cache_type, &p->cache_type) != FINCH_OK)
        return cli_error("--cache-type must be f32 or f16, got '%s'", s->cache_type);
    p->seed = (uint64_t)s->seed; /* --seed also seeds the random press */
    p->chunk = (size_t)s->chunk;
    if (s->n_budget_flags > 1) return cli_error("give exactly one budget: --budget, --ratio or --cr");
    if (s->n_budget_flags == 1) {
        if ((rc = parse_budget_list(s, max_budgets))) return rc;
        cli_set_budget(p, s->budget_kind, s->budgets[0]);
    }
    return 0;
}
