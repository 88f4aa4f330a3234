/* eval_report.c - the outputs of `finch eval` (eval_report.h): settings,
 * the per-item records read back for --resume, the summary, the table,
 * results.json, results.csv, items.csv and the two plots. */
#include "eval_report.h"
#include "svg.h"
#include "bootstrap.h"
#include "finch_eval.h"

#include <sys/stat.h>
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --------------------------------------------------------------- settings */

/* What the sweep varies: the values of --ratio, --budget or --cr. */
static const char *sweep_name(const cli_eval_opts *o) { return finch_budget_kind_name(o->p.budget_kind); }

cJSON *eval_config_json(const cli_eval_opts *o) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cli_json_string(j, "model", o->model);
    cli_json_string(j, "task", o->task);
    cJSON *pr = cJSON_AddArrayToObject(j, "presses");
    for (size_t i = 0; i < o->n_presses; i++) cJSON_AddItemToArray(pr, cJSON_CreateString(finch_scorer_name(o->presses[i])));
    cJSON_AddStringToObject(j, "budget_kind", sweep_name(o)); /* the dump's name */
    cJSON_AddItemToObject(j, "ratios", cJSON_CreateDoubleArray(o->ratios, (int)o->n_ratios));
    cJSON_AddStringToObject(j, "mode", finch_press_mode_name(o->p.mode));
    cJSON_AddStringToObject(j, "select", finch_press_select_name(o->p.select));
    cJSON_AddStringToObject(j, "normalize", finch_press_normalize_name(o->p.normalize));
    cJSON_AddNumberToObject(j, "chunk", (double)o->p.chunk);
    cJSON_AddNumberToObject(j, "n_predict", (double)o->n_new);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cli_json_string(j, "answer_prefix", o->answer_prefix); /* null when not given */
    /* only when given, so results written before these options resume */
    if (o->chat_template) cli_json_string(j, "chat_template", o->chat_template);
    if (o->p.cache_type != FINCH_CACHE_F32) cJSON_AddStringToObject(j, "cache_type", finch_cache_type_name(o->p.cache_type));
    if (o->system) cli_json_string(j, "system", o->system);
    if (o->p.lingua_segment) cJSON_AddNumberToObject(j, "lingua_segment", (double)o->p.lingua_segment);
    return j;
}

void eval_config_upgrade(cJSON *config) {
    cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(config, "budget_flag");
    if (old) cJSON_AddItemToObject(config, "budget_kind", old);
}

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int eval_load_items(const cli_eval_opts *o, const cJSON *config, cJSON **items) {
    *items = NULL;
    char *path = path_in(o->out, "results.json"), *text = NULL;
    if (!path) return cli_out_of_memory();
    size_t len;
    if (access(path, F_OK) != 0 && errno == ENOENT) { /* nothing to resume */
        *items = cJSON_CreateArray();
        free(path);
        return *items ? 0 : cli_out_of_memory();
    }
    int rc = 0;
    finch_status st = finch_read_text_file(path, &text, &len);
    if (st) {
        free(path);
        return cli_fail(st, "--resume");
    }
    cJSON *j = cJSON_Parse(text);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
    eval_config_upgrade(cfg);
    cJSON *it = cJSON_GetObjectItemCaseSensitive(j, "items");
    if (!j || !cJSON_IsArray(it)) rc = cli_error("--resume: %s is not a results file of finch eval", path);
    else if (!cJSON_Compare(cfg, config, true))
        rc = cli_error("--resume: %s was made with other settings (model, task, presses, ratios, mode, ...); "
                       "use another --out", path);
    else if (!(rc = eval_check_items(path, it, o))) *items = cJSON_DetachItemViaPointer(j, it);
    cJSON_Delete(j);
    free(text);
    free(path);
    return rc;
}

/* ---------------------------------------------------------------- summary */

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static eval_row *find_row(eval_summary *s, const char *press, double ratio) {
    for (size_t i = 0; i < s->n_rows; i++)
        if (!strcmp(s->rows[i].press, press) && s->rows[i].ratio == ratio) return &s->rows[i];
    return NULL;
}

/* Add one run's record. */
static void add_run(eval_row *r, const cJSON *run) {
    r->n++;
    r->em += num(run, "em");
    r->f1 += num(run, "f1");
    r->kl += num(run, "kl");
    r->top1 += num(run, "top1");
    r->seconds += num(run, "seconds");
    r->kv_bytes += num(run, "kv_bytes");
    r->K += num(run, "K");
    r->compression += num(run, "compression");
    double nll = num(run, "nll");
    if (!isnan(nll)) {
        r->nll += nll;
        r->n_nll++;
    }
}

static void take_means(eval_row *r) {
    double n = r->n ? (double)r->n : NAN;
    r->em /= n; r->f1 /= n; r->kl /= n; r->top1 /= n; r->seconds /= n;
    r->kv_bytes /= n; r->K /= n; r->compression /= n;
    r->nll = r->n_nll ? r->nll / (double)r->n_nll : NAN;
}

int eval_summarize(const cli_eval_opts *o, const cJSON *items, eval_summary *s) {
    memset(s, 0, sizeof *s);
    s->n_rows = 1 + o->n_presses * o->n_ratios;
    s->rows = calloc(s->n_rows, sizeof *s->rows);
    if (!s->rows) return cli_out_of_memory();
    s->rows[0] = (eval_row){ .press = "full", .ratio = 1 };
    for (size_t p = 0; p < o->n_presses; p++)
        for (size_t r = 0; r < o->n_ratios; r++)
            s->rows[1 + p * o->n_ratios + r] = (eval_row){ .press = finch_scorer_name(o->presses[p]), .ratio = o->ratios[r] };
    const cJSON *it, *run;
    cJSON_ArrayForEach(it, items) {
        s->n_items++;
        if (cJSON_GetObjectItemCaseSensitive(it, "skipped")) {
            s->n_skipped++;
            continue;
        }
        add_run(&s->rows[0], cJSON_GetObjectItemCaseSensitive(it, "full"));
        cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(it, "runs")) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(run, "press");
            eval_row *r = cJSON_IsString(name) ? find_row(s, name->valuestring, num(run, "ratio")) : NULL;
            if (r) add_run(r, run);
        }
    }
    for (size_t i = 0; i < s->n_rows; i++) take_means(&s->rows[i]);
    return 0;
}

void eval_summary_free(eval_summary *s) {
    free(s->rows);
    s->rows = NULL;
}

/* NaN (no item) as JSON null. */

cJSON *eval_summary_json(const eval_summary *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "finch_version", finch_version());
    cJSON_AddStringToObject(j, "finch_commit", finch_build_commit());
    cJSON_AddNumberToObject(j, "items", (double)s->n_items);
    cJSON_AddNumberToObject(j, "skipped", (double)s->n_skipped);
    cJSON *rows = cJSON_AddArrayToObject(j, "rows");
    for (size_t i = 0; i < s->n_rows; i++) {
        const eval_row *r = &s->rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "press", r->press);
        cJSON_AddNumberToObject(o, "ratio", r->ratio);
        cJSON_AddNumberToObject(o, "n", (double)r->n);
        cli_json_number(o, "compression", r->compression);
        cli_json_number(o, "K", r->K);
        cli_json_number(o, "em", r->em);
        cli_json_number(o, "f1", r->f1);
        cli_json_number(o, "kl", r->kl);
        cli_json_number(o, "top1", r->top1);
        cli_json_number(o, "nll", r->nll);
        cli_json_number(o, "seconds", r->seconds);
        cli_json_number(o, "kv_bytes", r->kv_bytes);
        cJSON_AddItemToArray(rows, o);
    }
    return j;
}

/* ------------------------------------------------------------ the files */

/* Write text to DIR/name atomically (outfile.h), so a reader (or an
 * interrupted run) never sees half a file. */
static int write_atomic(const char *dir, const char *name, const char *text) {
    char *path = path_in(dir, name);
    int rc = path ? cli_write_text_file("--out", path, text) : cli_out_of_memory();
    free(path);
    return rc;
}

int eval_save_results(const char *dir, const cJSON *config, const cJSON *items, const eval_summary *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "eval");
    cJSON_AddItemReferenceToObject(j, "config", (cJSON *)config);
    cJSON_AddItemToObject(j, "summary", eval_summary_json(s));
    cJSON_AddItemReferenceToObject(j, "items", (cJSON *)items);
    char *text = cJSON_Print(j);
    cJSON_Delete(j); /* references: config and items stay */
    int rc = text ? write_atomic(dir, "results.json", text) : cli_out_of_memory();
    free(text);
    return rc;
}

/* ------------------------------------------------------------ the table */

static void cell(FILE *f, double v, const char *fmt) {
    if (isnan(v)) fprintf(f, "%8s", "-");
    else fprintf(f, fmt, v);
}

void eval_print_table(FILE *f, const cli_eval_opts *o, const eval_summary *s) {
    char chunk[48] = "min(512, free positions)"; /* the run plan's default */
    if (o->p.chunk) snprintf(chunk, sizeof chunk, "%zu", o->p.chunk);
    fprintf(f, "finch eval: %zu items (%zu skipped), mode %s, select %s, chunk %s, -n %ld\n", s->n_items,
            s->n_skipped, finch_press_mode_name(o->p.mode), finch_press_select_name(o->p.select), chunk, o->n_new);
    fprintf(f, "%-10s %6s %8s %8s %8s %8s %8s %8s %8s %8s %10s\n", "press", sweep_name(o), "N/K", "K", "EM", "F1", "KL",
            "top1", "NLL", "seconds", "KV bytes");
    for (size_t i = 0; i < s->n_rows; i++) {
        const eval_row *r = &s->rows[i];
        fprintf(f, "%-10s %6g", r->press, r->ratio);
        cell(f, r->compression, " %8.2f");
        cell(f, r->K, " %8.1f");
        cell(f, r->em, " %8.3f");
        cell(f, r->f1, " %8.3f");
        cell(f, r->kl, " %8.4f");
        cell(f, r->top1, " %8.3f");
        cell(f, r->nll, " %8.3f");
        cell(f, r->seconds, " %8.4f");
        if (isnan(r->kv_bytes)) fprintf(f, " %10s\n", "-");
        else fprintf(f, " %10.0f\n", r->kv_bytes);
    }
}

/* ------------------------------------------------------------------ CSV */

/* A CSV field: quoted, quotes doubled. */
static void csv_text(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, double v) {
    if (isnan(v)) fputs(",", f);
    else fprintf(f, ",%.6g", v);
}

/* Every file of the directory is written through a temporary beside it
 * and renamed into place when complete (outfile.h). */
static int open_in(const char *dir, const char *name, finch_outfile *out) {
    char *path = path_in(dir, name);
    finch_status st = path ? finch_outfile_open(out, path) : FINCH_ERR_NOMEM;
    free(path);
    return st == FINCH_ERR_NOMEM ? cli_out_of_memory() : st ? cli_fail(st, "--out") : 0;
}

static int close_checked(finch_outfile *out) {
    finch_status st = finch_outfile_commit(out);
    return st ? cli_fail(st, "--out") : 0;
}

static int write_summary_csv(const char *dir, const eval_summary *s) {
    finch_outfile out;
    int rc = open_in(dir, "results.csv", &out);
    if (rc) return rc;
    FILE *f = out.f;
    fputs("press,ratio,n,compression,K,em,f1,kl,top1,nll,seconds,kv_bytes\n", f);
    for (size_t i = 0; i < s->n_rows; i++) {
        const eval_row *r = &s->rows[i];
        fprintf(f, "%s,%g,%zu", r->press, r->ratio, r->n);
        double v[] = { r->compression, r->K, r->em, r->f1, r->kl, r->top1, r->nll, r->seconds, r->kv_bytes };
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) csv_num(f, v[k]);
        fputc('\n', f);
    }
    return close_checked(&out);
}

static void item_csv_line(FILE *f, const char *id, const cJSON *run) {
    csv_text(f, id);
    const cJSON *press = cJSON_GetObjectItemCaseSensitive(run, "press");
    fprintf(f, ",%s,%g", cJSON_IsString(press) ? press->valuestring : "", num(run, "ratio"));
    const char *keys[] = { "K", "compression", "em", "f1", "kl", "top1", "nll", "seconds", "kv_bytes" };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) csv_num(f, num(run, keys[k]));
    fputc(',', f);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(run, "answer");
    csv_text(f, cJSON_IsString(a) ? a->valuestring : "");
    fputc('\n', f);
}

static int write_items_csv(const char *dir, const cJSON *items) {
    finch_outfile out;
    int rc = open_in(dir, "items.csv", &out);
    if (rc) return rc;
    FILE *f = out.f;
    fputs("id,press,ratio,K,compression,em,f1,kl,top1,nll,seconds,kv_bytes,answer\n", f);
    const cJSON *it, *run;
    cJSON_ArrayForEach(it, items) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const char *ids = cJSON_IsString(id) ? id->valuestring : "";
        const cJSON *full = cJSON_GetObjectItemCaseSensitive(it, "full");
        if (full) item_csv_line(f, ids, full);
        cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(it, "runs")) item_csv_line(f, ids, run);
    }
    return close_checked(&out);
}

/* ---------------------------------------------------------------- plots */

/* The per-item values of `key` of one press at one ratio (full: the "full"
 * record of each item); skipped items hold none.  Returns the count. */
static size_t row_values(const cJSON *items, const eval_row *r, bool full, const char *key, double *out) {
    size_t n = 0;
    const cJSON *it, *run;
    cJSON_ArrayForEach(it, items) {
        if (cJSON_GetObjectItemCaseSensitive(it, "skipped")) continue;
        if (full) {
            out[n++] = num(cJSON_GetObjectItemCaseSensitive(it, "full"), key);
            continue;
        }
        cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(it, "runs")) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(run, "press");
            if (cJSON_IsString(name) && !strcmp(name->valuestring, r->press) && num(run, "ratio") == r->ratio)
                out[n++] = num(run, key);
        }
    }
    return n;
}

/* One point: the mean over the items and its bootstrap 95% interval. */
static int row_point(const cJSON *items, const eval_row *r, bool full, const char *key, double *buf, double pt[3]) {
    size_t n = row_values(items, r, full, key, buf), m = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(buf[i])) sum += buf[i], m++;
    pt[0] = m ? sum / (double)m : NAN;
    finch_status st = finch_bootstrap_ci95(buf, n, FINCH_BOOTSTRAP_RESAMPLES, FINCH_BOOTSTRAP_SEED, &pt[1], &pt[2]);
    return st ? cli_fail(st, "bootstrap") : 0;
}

/* What a figure shows: the record key, the file, the title, the y label,
 * a fixed [0, 1] range or the data's. */
typedef struct {
    const char *key, *file, *title, *y_label;
    bool unit_range;
} eval_figure;

/* The settings line under each title: model, task, items, mode, chunk, the
 * finch version and commit. */
static void figure_subtitle(const cli_eval_opts *o, const eval_summary *s, char *buf, size_t size) {
    const char *model = strrchr(o->model, '/'), *task = strrchr(o->task, '/');
    char chunk[24] = "auto";
    if (o->p.chunk) snprintf(chunk, sizeof chunk, "%zu", o->p.chunk);
    snprintf(buf, size, "%s | %s%s%s | %zu items | mode %s | chunk %s | finch %s (%s)", model ? model + 1 : o->model,
             o->benchmark ? o->benchmark : "", o->benchmark ? ": " : "", task ? task + 1 : o->task,
             s->n_items - s->n_skipped, finch_press_mode_name(o->p.mode), chunk, finch_version(),
             finch_build_commit());
}

/* pts: [press][ratio][mean, lo, hi], the full reference last */
static int figure_points(const cli_eval_opts *o, const cJSON *items, const eval_summary *s, const char *key,
                         double *pts) {
    size_t nr = o->n_ratios, np = o->n_presses, n_items = (size_t)cJSON_GetArraySize(items);
    double *buf = malloc((n_items ? n_items : 1) * sizeof *buf);
    if (!buf) return cli_out_of_memory();
    int rc = 0;
    for (size_t p = 0; p < np && !rc; p++)
        for (size_t r = 0; r < nr && !rc; r++)
            rc = row_point(items, &s->rows[1 + p * nr + r], false, key, buf, pts + 3 * (p * nr + r));
    if (!rc) rc = row_point(items, &s->rows[0], true, key, buf, pts + 3 * np * nr);
    free(buf);
    return rc;
}

static int write_figure_file(const char *dir, const char *name, const finch_svg_chart *c) {
    finch_outfile out;
    int rc = open_in(dir, name, &out);
    if (!rc) {
        finch_status st = finch_svg_line_chart(out.f, c);
        if (st) {
            finch_outfile_abort(&out);
            rc = cli_fail(st, name);
        } else rc = close_checked(&out);
    }
    return rc;
}

/* One series per press over the ratios with bootstrap error bars, and full
 * as a dashed reference line across them. */
static int write_plot(const char *dir, const cli_eval_opts *o, const cJSON *items, const eval_summary *s,
                      const eval_figure *fig) {
    size_t nr = o->n_ratios, np = o->n_presses;
    double *pts = malloc(3 * (np * nr + 1) * sizeof *pts), *col = malloc(3 * np * nr * sizeof *col);
    finch_svg_series *series = malloc((np + 1) * sizeof *series);
    int rc = pts && col && series ? figure_points(o, items, s, fig->key, pts) : cli_out_of_memory();
    if (!rc) {
        double full_x[2] = { o->ratios[0], o->ratios[nr - 1] }, full_y[2];
        full_y[0] = full_y[1] = pts[3 * np * nr];
        for (size_t p = 0; p < np; p++) {
            double *y = col + 3 * p * nr;
            for (size_t r = 0; r < nr; r++)
                for (size_t k = 0; k < 3; k++) y[k * nr + r] = pts[3 * (p * nr + r) + k];
            series[p] = (finch_svg_series){ finch_scorer_name(o->presses[p]), o->ratios, y, nr, 0, y + nr, y + 2 * nr };
        }
        series[np] = (finch_svg_series){ "full", full_x, full_y, 2, 1, NULL, NULL };
        /* x: the sweep's values; --cr's start at 0, so on a linear axis */
        const char *x_label = o->p.budget_kind == FINCH_BUDGET_RATIO    ? "compression factor N/K (log2)"
                              : o->p.budget_kind == FINCH_BUDGET_TOKENS ? "context tokens kept K (log2)"
                                                                        : "fraction of the context removed (cr)";
        char subtitle[512];
        figure_subtitle(o, s, subtitle, sizeof subtitle);
        finch_svg_chart c = { fig->title, x_label, fig->y_label, o->p.budget_kind != FINCH_BUDGET_CR, 0,
                              fig->unit_range ? 1 : 0, series, np + 1, subtitle };
        rc = write_figure_file(dir, fig->file, &c);
    }
    free(pts);
    free(col);
    free(series);
    return rc;
}

/* Whether the runs carry `key` (a benchmark's own score; the two parts of
 * the time, which records written before them lack). */
static bool runs_have(const cJSON *items, const char *key) {
    const cJSON *it, *run;
    cJSON_ArrayForEach(it, items) cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(it, "runs"))
        if (cJSON_GetObjectItemCaseSensitive(run, key)) return true;
    return false;
}

int eval_write_files(const char *dir, const cli_eval_opts *o, const cJSON *items, const eval_summary *s) {
    static const eval_figure figs[] = {
        { "em", "accuracy.svg", "Exact match vs compression (mean, 95% bootstrap CI)", "exact match", true },
        { "f1", "f1.svg", "F1 vs compression (mean, 95% bootstrap CI)", "token F1", true },
        { "kl", "fidelity.svg", "Fidelity vs compression (mean, 95% bootstrap CI)",
          "KL(full || press), first answer token", false },
        { "seconds", "time.svg", "Time per item vs compression (mean, 95% bootstrap CI)",
          "seconds per item (prefill + compression + generation)", false },
        { "seconds_compress", "time-compress.svg", "Prefill + compression time per item (mean, 95% bootstrap CI)",
          "seconds per item (prefill + compression)", false },
        { "seconds_generate", "time-generate.svg", "Generation time per item (mean, 95% bootstrap CI)",
          "seconds per item (greedy answer)", false },
        { "score", "score.svg", "Benchmark score vs compression (mean, 95% bootstrap CI)", "benchmark score",
          false },
    };
    int rc;
    if ((rc = write_summary_csv(dir, s)) || (rc = write_items_csv(dir, items))) return rc;
    for (size_t i = 0; i < sizeof figs / sizeof figs[0] && !rc; i++)
        if (i < 4 || runs_have(items, figs[i].key)) rc = write_plot(dir, o, items, s, &figs[i]);
    return rc;
}

/* --------------------------------------------------------- item kept maps */

/* Where the answer sits in the context: the first occurrence of the
 * reference ids (or of all but their first, whose leading-space form may
 * differ mid-text); -1 when it is not there. */
static long answer_span(const int32_t *ctx, size_t n_ctx, const int32_t *ref, size_t n_ref, long *end) {
    for (size_t skip = 0; skip < 2 && skip < n_ref; skip++) {
        size_t len = n_ref - skip;
        for (size_t i = 0; i + len <= n_ctx; i++)
            if (!memcmp(ctx + i, ref + skip, len * sizeof *ref)) {
                *end = (long)(i + len);
                return (long)i;
            }
    }
    return -1;
}

int eval_plot_kept_item(const char *dir, size_t line, const char *press, double ratio, const finch_eval_output *out,
                        const int32_t *ctx, size_t n_ctx, const int32_t *ref, size_t n_ref) {
    if (!dir || !out->kept) return 0;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cli_error("--plot-kept-items %s: %s", dir, strerror(errno));
    char name[160], title[256];
    snprintf(name, sizeof name, "item-%06zu-%s@%g.svg", line, press, ratio);
    snprintf(title, sizeof title, "kept positions: item %zu, press %s, ratio %g, K %zu of N %zu", line, press, ratio,
             out->K, out->kept_n_ctx);
    finch_svg_kept k = { title, out->kept, out->kept_layers, out->kept_heads, out->n_kept, out->kept_n_ctx,
                         out->kept_n_question, -1 };
    long end = 0, start = ref ? answer_span(ctx, n_ctx, ref, n_ref, &end) : -1;
    finch_svg_kept_spans span = { &start, &end, 1, "answer" };
    finch_outfile f;
    int rc = open_in(dir, name, &f);
    if (!rc) {
        finch_status st = finch_svg_kept_map_spans(f.f, &k, start >= 0 ? &span : NULL);
        if (st) {
            finch_outfile_abort(&f);
            rc = cli_fail(st, name);
        } else rc = close_checked(&f);
    }
    return rc;
}
