/* bench_report.c - the report of `finch bench` (bench_report.h): each
 * model's figures derived from what was measured, beside the machine's
 * limits; the table, the JSON document (docs/bench.md).  The measuring is
 * cmd_bench.c. */
#include "bench_report.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The derived figures of one row. */
typedef struct {
    double prefill_tok_s, prefill_gflops, decode_tok_s, decode_gbs, finch_ratio, rss_mb;
    double prefill_frac, decode_frac; /* NAN without the probes */
} row_figures;

static row_figures figures(const model_result *r, const machine_limits *lim) {
    row_figures f;
    f.prefill_tok_s = (double)r->prefill_tokens / r->prefill_s;
    f.prefill_gflops = (double)r->prefill_flops / r->prefill_s / 1e9;
    f.decode_tok_s = (double)r->decode_tokens / r->decode_s;
    f.decode_gbs = (double)r->decode_bytes * f.decode_tok_s / 1e9;
    f.finch_ratio = r->finch_s / r->chunked_s;
    f.rss_mb = (double)r->peak_rss_kb / 1024.0;
    f.prefill_frac = lim->probed ? f.prefill_gflops / lim->fma_gflops : NAN;
    f.decode_frac = lim->probed ? f.decode_gbs / lim->read_gbs : NAN;
    return f;
}

static double rss_ratio(const rss_result *rss) {
    return rss->done ? (double)rss->peak_rss_kb[1] / (double)rss->peak_rss_kb[0] : NAN;
}

/* ---- the table ---- */

static void print_percent(double frac) {
    if (isnan(frac)) printf(" %6s", "-");
    else printf(" %5.1f%%", 100 * frac);
}

static void print_machine(const machine_limits *lim, const cli_bench_opts *o) {
    if (!lim->probed) {
        printf("machine: not probed (--no-probe): no fractions of the limits\n\n");
        return;
    }
    printf("machine (%zu threads, %s; best of a probe before and after the models):\n"
           "  FMA peak %.1f GFLOP/s, streaming read %.1f GB/s (%ld MiB buffer)\n\n",
           lim->threads, lim->isa, lim->fma_gflops, lim->read_gbs, o->probe_mib);
}

static void print_rows(char names[][128], const model_result *res, size_t n, const machine_limits *lim,
                       const cli_bench_opts *o) {
    printf("%-22s %-5s %3s | %9s %8s %7s | %8s %7s %7s | %8s | %8s\n", "model", "type", "thr",
           "prefill", "GFLOP/s", "%peak", "decode", "GB/s", "%bw", "finch/", "peak RSS");
    printf("%-22s %-5s %3s | %9s %8s %7s | %8s %7s %7s | %8s | %8s\n", "", "", "", "tok/s", "", "",
           "tok/s", "", "", "prefill", "MB");
    for (size_t i = 0; i < n; i++) {
        row_figures f = figures(&res[i], lim);
        printf("%-22.22s %-5s %3zu | %9.1f %8.1f", names[i], res[i].type, res[i].threads, f.prefill_tok_s,
               f.prefill_gflops);
        print_percent(f.prefill_frac);
        printf(" | %8.2f %7.1f", f.decode_tok_s, f.decode_gbs);
        print_percent(f.decode_frac);
        printf(" | %8.3f | %8.0f\n", f.finch_ratio, f.rss_mb);
    }
    printf("\nprefill: %ld tokens into an empty cache; decode: %ld steps after %d tokens; finch/prefill:\n"
           "Finch iterative (question %ld, chunk %ld, K = N/%g) over plain chunked prefill of the same\n"
           "%ld tokens.  GFLOP/s counts the exact work (docs/bench.md); GB/s the weights per token.\n"
           "KV cache: %s.\n",
           o->prefill, o->decode, DECODE_PROMPT, o->question, o->chunk, o->ratio, o->finch_text,
           finch_cache_type_name(o->cache_type));
}

static void print_rss(const rss_result *rss, const cli_bench_opts *o) {
    if (!rss->done) return;
    printf("\npeak RSS, Finch iterative on %s (K %zu, chunk %ld, question %ld): %zu tokens %.1f MB,\n"
           "%zu tokens %.1f MB: long / short = %.3f\n",
           rss->model, rss->budget, o->chunk, o->question, rss->tokens[0], rss->peak_rss_kb[0] / 1024.0,
           rss->tokens[1], rss->peak_rss_kb[1] / 1024.0, rss_ratio(rss));
}

/* ---- the JSON document ---- */

/* A number, or null when it was not measured. */

static cJSON *machine_json(const machine_limits *lim, const cli_bench_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cli_json_number(j, "peak_fma_gflops", lim->probed ? lim->fma_gflops : NAN);
    cli_json_number(j, "read_bw_gbs", lim->probed ? lim->read_gbs : NAN);
    cJSON_AddStringToObject(j, "isa", lim->isa);
    cJSON_AddNumberToObject(j, "threads", (double)lim->threads);
    cJSON_AddNumberToObject(j, "cores", (double)finch_num_cores());
    cli_json_number(j, "read_probe_mib", lim->probed ? (double)o->probe_mib : NAN);
    return j;
}

static cJSON *model_json(const char *name, const char *path, const model_result *r, const machine_limits *lim,
                         const cli_bench_opts *o) {
    row_figures f = figures(r, lim);
    cJSON *j = cJSON_CreateObject();
    cli_json_string(j, "model", name);
    cli_json_string(j, "path", path);
    cJSON_AddStringToObject(j, "arch", r->cfg.arch);
    cJSON_AddStringToObject(j, "type", r->type);
    cJSON_AddNumberToObject(j, "threads", (double)r->threads);
    cJSON_AddNumberToObject(j, "prefill_tokens", (double)r->prefill_tokens);
    cJSON_AddNumberToObject(j, "prefill_seconds", r->prefill_s);
    cJSON_AddNumberToObject(j, "prefill_repetitions", (double)r->prefill_reps);
    cJSON_AddNumberToObject(j, "prefill_flop", (double)r->prefill_flops);
    cJSON_AddNumberToObject(j, "prefill_tok_s", f.prefill_tok_s);
    cJSON_AddNumberToObject(j, "prefill_gflops", f.prefill_gflops);
    cli_json_number(j, "prefill_frac_peak", f.prefill_frac);
    cJSON_AddStringToObject(j, "prefill_kernel", r->prefill_kernel);
    cJSON_AddNumberToObject(j, "decode_tokens", (double)r->decode_tokens);
    cJSON_AddNumberToObject(j, "decode_seconds", r->decode_s);
    cJSON_AddNumberToObject(j, "decode_cpu_seconds", r->decode_cpu_s);
    cJSON_AddNumberToObject(j, "decode_weight_bytes", (double)r->decode_bytes);
    cJSON_AddNumberToObject(j, "decode_tok_s", f.decode_tok_s);
    cJSON_AddNumberToObject(j, "decode_gbs", f.decode_gbs);
    cli_json_number(j, "decode_frac_bw", f.decode_frac);
    cJSON_AddStringToObject(j, "decode_kernel", r->decode_kernel);
    cJSON_AddNumberToObject(j, "finch_text_tokens", (double)r->finch_tokens);
    cJSON_AddNumberToObject(j, "finch_question_tokens", (double)o->question);
    cJSON_AddNumberToObject(j, "finch_chunk", (double)o->chunk);
    cJSON_AddNumberToObject(j, "finch_budget", (double)r->finch_budget);
    cJSON_AddNumberToObject(j, "finch_seconds", r->finch_s);
    cJSON_AddNumberToObject(j, "finch_forward_seconds", r->finch_forward_s);
    cJSON_AddNumberToObject(j, "finch_scoring_seconds", r->finch_scoring_s);
    cJSON_AddNumberToObject(j, "finch_compact_seconds", r->finch_compact_s);
    cJSON_AddNumberToObject(j, "chunked_prefill_seconds", r->chunked_s);
    cJSON_AddNumberToObject(j, "finch_rounds", (double)r->finch_rounds);
    cJSON_AddNumberToObject(j, "finch_over_prefill", f.finch_ratio);
    cJSON_AddNumberToObject(j, "peak_rss_mb", f.rss_mb);
    return j;
}

static cJSON *rss_json(const rss_result *rss, const cli_bench_opts *o) {
    if (!rss->done) return cJSON_CreateNull();
    cJSON *j = cJSON_CreateObject();
    cli_json_string(j, "model", rss->model);
    cJSON_AddNumberToObject(j, "budget", (double)rss->budget);
    cJSON_AddNumberToObject(j, "chunk", (double)o->chunk);
    cJSON_AddNumberToObject(j, "question_tokens", (double)o->question);
    cJSON_AddNumberToObject(j, "short_tokens", (double)rss->tokens[0]);
    cJSON_AddNumberToObject(j, "long_tokens", (double)rss->tokens[1]);
    cJSON_AddNumberToObject(j, "short_peak_rss_mb", rss->peak_rss_kb[0] / 1024.0);
    cJSON_AddNumberToObject(j, "long_peak_rss_mb", rss->peak_rss_kb[1] / 1024.0);
    cJSON_AddNumberToObject(j, "short_seconds", rss->seconds[0]);
    cJSON_AddNumberToObject(j, "long_seconds", rss->seconds[1]);
    return j;
}

static char *report_json(const model_list *l, char names[][128], const model_result *res,
                         const machine_limits *lim, const rss_result *rss, const cli_bench_opts *o) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "finch_version", finch_version());
    cJSON_AddStringToObject(doc, "finch_commit", finch_build_commit());
    cJSON_AddItemToObject(doc, "machine", machine_json(lim, o));
    cJSON_AddStringToObject(doc, "cache_type", finch_cache_type_name(o->cache_type));
    cJSON *models = cJSON_AddArrayToObject(doc, "models");
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(models, model_json(names[i], l->paths[i], &res[i], lim, o));
    cli_json_number(doc, "rss_64k_over_4k", rss_ratio(rss));
    cJSON_AddItemToObject(doc, "rss", rss_json(rss, o));
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    return text;
}

static int write_json_file(const char *path, const char *text) {
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (!line) return cli_out_of_memory();
    memcpy(line, text, n);
    memcpy(line + n, "\n", 2);
    int rc = cli_write_text_file("--json-file", path, line);
    free(line);
    return rc;
}

int bench_report(const cli_bench_opts *o, const model_list *l, char names[][128], const model_result *res,
                 const machine_limits *lim, const rss_result *rss) {
    char *json = (o->json || o->json_file) ? report_json(l, names, res, lim, rss, o) : NULL;
    if ((o->json || o->json_file) && !json) return cli_out_of_memory();
    int rc = o->json_file ? write_json_file(o->json_file, json) : 0;
    if (!rc && o->json) printf("%s\n", json);
    if (!rc && !o->json) {
        print_machine(lim, o);
        print_rows(names, res, l->n, lim, o);
        print_rss(rss, o);
    }
    free(json);
    return rc;
}
