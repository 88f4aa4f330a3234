/* bench_report.h - what `finch bench` measured (cmd_bench.c) and how it
 * is reported (bench_report.c): the table, the JSON document. */
#ifndef FINCH_BENCH_REPORT_H
#define FINCH_BENCH_REPORT_H

#include "cli.h"
#include "finch_bench.h"

enum { DECODE_PROMPT = 8 }; /* tokens fed before the timed decode steps */

typedef struct {
    char **paths;
    size_t n;
} model_list;

/* What one model's child measures. */
typedef struct {
    finch_config cfg;
    char type[16], prefill_kernel[48], decode_kernel[48];
    finch_dtype weight_type;
    size_t threads;
    size_t prefill_tokens, prefill_reps;
    double prefill_s;           /* best of prefill_reps                      */
    uint64_t prefill_flops;
    size_t decode_tokens, decode_bytes; /* decode_bytes: weights per token  */
    double decode_s;            /* all decode_tokens steps                   */
    double decode_cpu_s;        /* their user + system CPU time, all threads */
    size_t finch_tokens, finch_budget;
    size_t finch_rounds;        /* alternate runs of the two, best of each   */
    double finch_s, chunked_s;  /* Finch compress vs plain chunked prefill  */
    double finch_forward_s, finch_scoring_s, finch_compact_s;
    long peak_rss_kb;           /* filled in by the parent                   */
} model_result;

/* The machine's limits, measured in the same run (or not: --no-probe). */
typedef struct {
    bool probed;
    const char *isa;
    double fma_gflops, read_gbs;
    size_t threads;
} machine_limits;

typedef struct {
    bool done;
    char model[128];
    size_t budget;
    size_t tokens[2];    /* short, long                     */
    long peak_rss_kb[2];
    double seconds[2];
} rss_result;

/* The table (or with --json the JSON document on stdout) and --json-file. */
int bench_report(const cli_bench_opts *o, const model_list *l, char names[][128], const model_result *res,
                 const machine_limits *lim, const rss_result *rss);

#endif
