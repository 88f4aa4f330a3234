/* cmd_bench.c - `finch bench`: how fast the engine runs real model shapes,
 * each figure beside the machine's own limit measured in the same run
 * (include/finch_bench.h, docs/bench.md).
 *
 * Every model is measured in a child process of its own: its peak RSS
 * (wait4's ru_maxrss) is then its own, and one model's mapping is gone
 * before the next one loads.  The children send their figures back through
 * a pipe; the parent hands them to bench_report.c, which prints the table
 * or the JSON. */
#include "bench_report.h"
#include "cli.h"
#include "finch_bench.h"
#include "finch_run.h"
#include "kernels.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PREFILL_MAX_REPS = 3 }; /* best of up to this many prefills ... */
static const double PREFILL_CHEAP_S = 1.5; /* ... while they take this in all */
enum { FINCH_MAX_ROUNDS = 5 }; /* finch/prefill: best of up to this many rounds, as cheap */
static const double FMA_PROBE_S = 0.1;      /* per run of the FMA probe        */
static const size_t READ_PROBE_PASSES = 5;
static const uint64_t IDS_SEED = 0x5eed;    /* the random token ids           */

/* ---------------------------------------------------------------- options */

/* The window the benchmark plans with: none (random text runs past the
 * model's context length on purpose). */
static const size_t BENCH_WINDOW = (size_t)1 << 40;

int cli_parse_bench(int argc, char **argv, cli_bench_opts *o) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    *o = (cli_bench_opts){ .prefill = 512, .decode = 16, .finch_text = 1024, .question = 32,
                           .rss_short = 4000, .rss_long = 64000, .probe_mib = 1024, .probe = true };
    cli_shared sh;
    cli_shared_init(&sh);
    while (cli_next(&a)) {
        if (cli_opt_repeatable(&a, "-m", "--model")) {
            const char *m = cli_value(&a);
            if (m && o->n_models == CLI_BENCH_MAX_MODELS) return cli_error("at most %d -m models", CLI_BENCH_MAX_MODELS);
            if (m) o->models[o->n_models++] = m;
        } else if (cli_shared_flag(&a, &sh)) continue;
        else if (cli_opt(&a, NULL, "--models-dir")) o->models_dir = cli_value(&a);
        else if (cli_opt(&a, NULL, "--prefill")) o->prefill = cli_long(&a, 1, 1 << 16);
        else if (cli_opt(&a, NULL, "--decode")) o->decode = cli_long(&a, 1, 1 << 16);
        else if (cli_opt(&a, NULL, "--finch-text")) o->finch_text = cli_long(&a, 1, 1 << 20);
        else if (cli_opt(&a, NULL, "--question")) o->question = cli_long(&a, 1, 1 << 12);
        else if (cli_opt(&a, NULL, "--rss")) o->rss_model = cli_value(&a);
        else if (cli_opt(&a, NULL, "--rss-short")) o->rss_short = cli_long(&a, 1, 1L << 24);
        else if (cli_opt(&a, NULL, "--rss-long")) o->rss_long = cli_long(&a, 1, 1L << 24);
        else if (cli_opt(&a, NULL, "--probe-mib")) o->probe_mib = cli_long(&a, 1, 1 << 20);
        else if (cli_opt(&a, NULL, "--no-probe")) o->probe = false;
        else if (cli_opt(&a, NULL, "--json-file")) o->json_file = cli_value(&a);
        else if (!a.error) cli_unknown(&a);
    }
    if (sh.n_budget_flags == 0) { /* bench's default: K = N / 8 */
        sh.budget_kind = FINCH_BUDGET_RATIO;
        sh.budget_list = "8";
        sh.budget_flag = "--ratio";
        sh.n_budget_flags = 1;
    }
    finch_press_params p = finch_press_defaults();
    size_t no_limit;
    int rc = cli_args_error(&a);
    if (rc || (rc = cli_shared_finish(&sh, 1, &p, &no_limit))) return rc;
    o->threads = sh.threads;
    o->json = sh.json;
    o->ratio = p.ratio;
    o->cache_type = p.cache_type;
    o->chunk = sh.chunk ? sh.chunk : (long)finch_plan_default_chunk(BENCH_WINDOW);
    if (o->n_models == 0 && !o->models_dir)
        return cli_error("no models given: -m MODEL (repeatable) or --models-dir DIR");
    if (o->rss_short >= o->rss_long)
        return cli_error("--rss-short %ld must be less than --rss-long %ld", o->rss_short, o->rss_long);
    return 0;
}

/* ------------------------------------------------------------- the models */

static void model_list_free(model_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    *l = (model_list){ 0 };
}

static int model_list_add(model_list *l, const char *dir, const char *name) {
    char **grown = realloc(l->paths, (l->n + 1) * sizeof *grown);
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *path = grown ? malloc(len) : NULL;
    if (grown) l->paths = grown;
    if (!path) return cli_out_of_memory();
    snprintf(path, len, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    l->paths[l->n++] = path;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_gguf_name(const char *name) {
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".gguf") && name[0] != '.';
}

/* Every *.gguf of dir, in byte order of their names (a fixed order). */
static int list_models_dir(const char *dir, model_list *l) {
    DIR *dp = opendir(dir);
    if (!dp) return cli_error("--models-dir %s: %s", dir, strerror(errno));
    model_list names = { 0 };
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(dp)) != NULL)
        if (is_gguf_name(e->d_name)) rc = model_list_add(&names, NULL, e->d_name);
    closedir(dp);
    if (!rc && names.n == 0) rc = cli_error("--models-dir %s: no .gguf files there", dir);
    if (!rc) qsort(names.paths, names.n, sizeof *names.paths, by_name);
    for (size_t i = 0; !rc && i < names.n; i++) rc = model_list_add(l, dir, names.paths[i]);
    model_list_free(&names);
    return rc;
}

/* The directory's models first, then -m's; each must exist before any
 * measuring starts, so that a typo fails at once. */
static int collect_models(const cli_bench_opts *o, model_list *l) {
    int rc = o->models_dir ? list_models_dir(o->models_dir, l) : 0;
    for (size_t i = 0; !rc && i < o->n_models; i++) rc = model_list_add(l, NULL, o->models[i]);
    struct stat st;
    for (size_t i = 0; !rc && i < l->n; i++)
        if (stat(l->paths[i], &st) != 0) rc = cli_error("cannot open model %s: %s", l->paths[i], strerror(errno));
    if (!rc && o->rss_model && stat(o->rss_model, &st) != 0)
        rc = cli_error("--rss: cannot open model %s: %s", o->rss_model, strerror(errno));
    return rc;
}

/* The display name: the file or directory name without ".gguf". */
static void model_name(const char *path, char *out, size_t cap) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t n = len - start;
    if (n > 5 && !strncmp(path + len - 5, ".gguf", 5)) n -= 5;
    snprintf(out, cap, "%.*s", (int)n, path + start);
}

/* -------------------------------------------------- running in a child */

static bool write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static size_t read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Run fn(arg, out) in a child process; its `size` bytes of `out` come back
 * through a pipe and *maxrss_kb is the child's peak resident set.  A child
 * that fails has printed its one-line error: its exit code is returned. */
typedef int (*child_fn)(const void *arg, void *out);

static int in_child(child_fn fn, const void *arg, void *out, size_t size, long *maxrss_kb) {
    int fds[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0) return cli_error("cannot create a pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cli_error("cannot fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        int rc = fn(arg, out);
        if (!rc && !write_all(fds[1], out, size)) rc = cli_error("cannot send the figures back: %s", strerror(errno));
        _exit(rc); /* no atexit handlers, no second flush of inherited buffers */
    }
    close(fds[1]);
    size_t got = read_all(fds[0], out, size);
    close(fds[0]);
    int status = 0;
    struct rusage ru = { 0 };
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(status)) {
        cli_error("the measuring process was killed by signal %d (out of memory?)", WTERMSIG(status));
        return EXIT_INTERNAL;
    }
    if (WEXITSTATUS(status)) return WEXITSTATUS(status);
    if (got != size) {
        cli_error("the measuring process sent %zu of %zu bytes", got, size);
        return EXIT_INTERNAL;
    }
    *maxrss_kb = ru.ru_maxrss; /* kilobytes on Linux */
    return 0;
}

/* --------------------------------------------------------- measurements */

typedef struct {
    const cli_bench_opts *o;
    const char *path;
} model_job;

/* A model loaded for measuring, with everything the steps share. */
typedef struct {
    const cli_bench_opts *o;
    finch_model *m;
    finch_ctx *ctx;
    finch_kv_cache kv;
    int32_t *ids;      /* random context ids, then the question's            */
    size_t n_ids;
    float *logits;     /* [vocab]                                             */
} bench_run;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fixed, seeded ids: every run and every engine sees the same tokens. */
static void random_ids(int32_t *ids, size_t n, size_t vocab, uint64_t seed) {
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(splitmix64(&seed) % vocab);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static void empty_cache(finch_kv_cache *kv) {
    for (size_t l = 0; l < kv->n_layer; l++) kv->n_pos[l] = 0;
}

static void bench_run_free(bench_run *b) {
    free(b->ids);
    free(b->logits);
    finch_kv_free(&b->kv);
    finch_ctx_free(b->ctx);
    finch_model_free(b->m);
}

/* Load; size the batch for a prefill, a chunk with its question or the
 * decode prompt, the cache for `capacity` positions, the ids for n_context
 * and a question. */
static int bench_run_open(bench_run *b, const cli_bench_opts *o, const char *path, size_t capacity,
                          size_t n_context) {
    *b = (bench_run){ .o = o };
    int rc = cli_load_model(path, &b->m);
    if (rc) return rc;
    size_t P = (size_t)o->prefill, Q = (size_t)o->question, S = (size_t)o->chunk;
    size_t batch = max_size(max_size(P, S + Q), DECODE_PROMPT);
    b->n_ids = n_context + Q;
    finch_status st;
    if ((st = finch_ctx_new(b->m, (size_t)o->threads, batch, &b->ctx)) ||
        (st = finch_kv_init_type(&b->kv, &b->m->cfg, capacity, o->cache_type)))
        return cli_fail(st, "cannot set up the benchmark");
    b->ids = malloc(b->n_ids * sizeof *b->ids);
    b->logits = malloc(b->m->cfg.vocab * sizeof *b->logits);
    if (!b->ids || !b->logits) return cli_out_of_memory();
    random_ids(b->ids, b->n_ids, b->m->cfg.vocab, IDS_SEED);
    return 0;
}

/* Prefill: `prefill` tokens into an empty cache, logits for the last one
 * (what a prompt needs).  A short untimed forward first faults in every page
 * of the mapped weights; then the best of up to PREFILL_MAX_REPS while the
 * repetitions stay cheap. */
static finch_status time_prefill(bench_run *b, model_result *r) {
    size_t P = (size_t)b->o->prefill, warm = P < DECODE_PROMPT ? P : DECODE_PROMPT;
    finch_status st = finch_forward(b->ctx, &b->kv, b->ids, warm, 0, NULL, b->logits, 1);
    double spent = 0;
    r->prefill_s = INFINITY;
    for (r->prefill_reps = 0; !st && r->prefill_reps < PREFILL_MAX_REPS && spent < PREFILL_CHEAP_S; r->prefill_reps++) {
        empty_cache(&b->kv);
        double t0 = finch_now();
        st = finch_forward(b->ctx, &b->kv, b->ids, P, 0, NULL, b->logits, 1);
        double t = finch_now() - t0;
        spent += t;
        if (t < r->prefill_s) r->prefill_s = t;
    }
    r->prefill_tokens = P;
    r->prefill_flops = finch_forward_flops(&b->m->cfg, P, 0, 1);
    return st;
}

/* User + system CPU time of this process, all its threads: on a shared
 * machine a steadier figure than wall time (a thread waiting for a core
 * costs none; one spinning on the pool's barrier costs its time). */
static double process_cpu_seconds(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0.0;
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* Decode: a DECODE_PROMPT-token prompt, then `decode` single-token steps,
 * each with its logits.  The fed ids are the random ones, not sampled:
 * sampling is not the engine's speed. */
static finch_status time_decode(bench_run *b, model_result *r) {
    size_t N = (size_t)b->o->decode;
    empty_cache(&b->kv);
    finch_status st = finch_forward(b->ctx, &b->kv, b->ids, DECODE_PROMPT, 0, NULL, b->logits, 1);
    double t0 = finch_now(), cpu0 = process_cpu_seconds();
    for (size_t i = 0; !st && i < N; i++)
        st = finch_forward(b->ctx, &b->kv, b->ids + DECODE_PROMPT + i, 1, DECODE_PROMPT + i, NULL, b->logits, 1);
    r->decode_s = finch_now() - t0;
    r->decode_cpu_s = process_cpu_seconds() - cpu0;
    r->decode_tokens = N;
    r->decode_bytes = finch_decode_weight_bytes(b->m);
    return st;
}

/* Plain chunked prefill as a run of it goes: a cache of N positions
 * allocated (its pages first written) inside the timing, as Finch's press
 * allocates its own in finch_press_compress; the text's chunks, no logits. */
static finch_status time_chunked(bench_run *b, size_t N, double *seconds) {
    size_t S = (size_t)b->o->chunk;
    finch_kv_cache kv;
    double t0 = finch_now();
    finch_status st = finch_kv_init_type(&kv, &b->m->cfg, N, b->o->cache_type);
    if (st) return st; /* a failed init frees its own */
    for (size_t c0 = 0; !st && c0 < N; c0 += S)
        st = finch_forward(b->ctx, &kv, b->ids + c0, N - c0 < S ? N - c0 : S, c0, NULL, NULL, 0);
    *seconds = finch_now() - t0;
    finch_kv_free(&kv);
    return st;
}

/* Finch, iterative: the same chunks, each with the question appended,
 * compressed to K = ceil(N / ratio) context tokens. */
static finch_status time_finch(bench_run *b, size_t N, size_t K, model_result *r) {
    finch_press_params p = finch_press_defaults();
    p.budget = K;
    p.chunk = (size_t)b->o->chunk;
    p.cache_type = b->o->cache_type;
    finch_press *fp = NULL;
    finch_status st = finch_press_new(b->m, b->ctx, &p, &fp);
    double t0 = finch_now();
    if (!st) st = finch_press_compress(fp, b->ids, N, b->ids + b->n_ids - (size_t)b->o->question,
                                       (size_t)b->o->question, NULL, NULL);
    r->finch_s = finch_now() - t0;
    if (!st) {
        const finch_press_stats *s = finch_press_get_stats(fp);
        r->finch_forward_s = s->t_prefill;
        r->finch_scoring_s = s->t_scoring;
        r->finch_compact_s = s->t_compact;
    }
    finch_press_free(fp);
    return st;
}

/* finch/prefill: the two alternately, the best of each over up to
 * FINCH_MAX_ROUNDS rounds while they stay cheap (one round for a large
 * model; a tiny one's 20 ms would otherwise be one noisy sample). */
static finch_status time_finch_vs_chunked(bench_run *b, size_t N, size_t K, model_result *r) {
    finch_status st = FINCH_OK;
    double spent = 0;
    r->finch_s = r->chunked_s = INFINITY;
    for (r->finch_rounds = 0; !st && r->finch_rounds < FINCH_MAX_ROUNDS && spent < PREFILL_CHEAP_S;
         r->finch_rounds++) {
        double chunked;
        model_result f;
        if ((st = time_chunked(b, N, &chunked)) || (st = time_finch(b, N, K, &f))) break;
        spent += chunked + f.finch_s;
        if (chunked < r->chunked_s) r->chunked_s = chunked;
        if (f.finch_s < r->finch_s) {
            r->finch_s = f.finch_s;
            r->finch_forward_s = f.finch_forward_s;
            r->finch_scoring_s = f.finch_scoring_s;
            r->finch_compact_s = f.finch_compact_s;
        }
    }
    return st;
}

/* K for N context tokens at --ratio, as `finch run` would plan it. */
static size_t finch_budget(size_t N, const cli_bench_opts *o) {
    finch_run_params rp = finch_run_defaults();
    cli_set_budget(&rp.press, FINCH_BUDGET_RATIO, o->ratio);
    rp.press.chunk = (size_t)o->chunk;
    rp.n_ctx = N;
    rp.n_question = (size_t)o->question;
    rp.window = BENCH_WINDOW;
    finch_run_plan plan;
    return finch_plan_run(NULL, &rp, &plan) ? 1 : plan.K; /* the parsed ratio always plans */
}

static void describe_kernels(const finch_model *m, model_result *r) {
    const char *isa = finch_isa_name(finch_isa_current());
    r->weight_type = m->layers[0].w_gate.type;
    snprintf(r->type, sizeof r->type, "%s", finch_dtype_name(r->weight_type));
    snprintf(r->decode_kernel, sizeof r->decode_kernel, "finch %s", isa);
    if (finch_prefill_uses_blas(r->weight_type))
        snprintf(r->prefill_kernel, sizeof r->prefill_kernel, "openblas sgemm");
    else snprintf(r->prefill_kernel, sizeof r->prefill_kernel, "finch %s", isa);
}

/* The child's work for one model. */
static int measure_model(const void *arg, void *out) {
    const model_job *job = arg;
    const cli_bench_opts *o = job->o;
    model_result *r = out;
    size_t N = (size_t)o->finch_text;
    bench_run b;
    memset(r, 0, sizeof *r);
    /* the chunked prefill allocates its own cache, as Finch does */
    size_t positions = max_size((size_t)o->prefill, DECODE_PROMPT + (size_t)o->decode);
    int rc = bench_run_open(&b, o, job->path, positions, max_size(positions, N)); /* ids for every step */
    if (rc) {
        bench_run_free(&b);
        return rc;
    }
    r->cfg = b.m->cfg;
    r->threads = finch_ctx_threads(b.ctx);
    describe_kernels(b.m, r);
    r->finch_tokens = N;
    r->finch_budget = finch_budget(N, o);
    finch_status st = time_prefill(&b, r);
    if (!st) st = time_decode(&b, r);
    if (!st) st = time_finch_vs_chunked(&b, N, r->finch_budget, r);
    if (st) rc = cli_fail(st, "benchmark");
    bench_run_free(&b);
    return rc;
}

/* The peak RSS of an iterative Finch compression of `tokens` random ids
 * (budget and chunk fixed by the caller): the child's work. */
typedef struct {
    const cli_bench_opts *o;
    size_t tokens, budget;
} rss_job;

static int measure_rss(const void *arg, void *out) {
    const rss_job *job = arg;
    bench_run b;
    double *seconds = out;
    /* the press allocates its own cache: this one is not used */
    int rc = bench_run_open(&b, job->o, job->o->rss_model, 1, job->tokens);
    if (!rc) {
        model_result r;
        finch_status st = time_finch(&b, job->tokens, job->budget, &r);
        *seconds = r.finch_s;
        if (st) rc = cli_fail(st, "--rss");
    }
    bench_run_free(&b);
    return rc;
}

/* ------------------------------------------------------------- the steps */

static machine_limits limits_unprobed(const cli_bench_opts *o) {
    return (machine_limits){ .isa = finch_probe_isa(),
                             .threads = o->threads ? (size_t)o->threads : finch_num_cores() };
}

/* The limits are upper bounds and the machine may be shared: the run probes
 * before and after the models and keeps the better figure of each. */
static int probe_machine(const cli_bench_opts *o, machine_limits *lim) {
    if (!o->probe) return 0;
    if (isatty(2)) fprintf(stderr, "finch: bench: probing the machine (%zu threads)\n", lim->threads);
    double gflops = 0, gbs = 0;
    finch_status st = finch_probe_fma(lim->threads, FMA_PROBE_S, &gflops);
    if (!st) st = finch_probe_read_bw(lim->threads, (size_t)o->probe_mib << 20, READ_PROBE_PASSES, &gbs);
    if (st) return cli_fail(st, "machine probe");
    lim->probed = true;
    if (gflops > lim->fma_gflops) lim->fma_gflops = gflops;
    if (gbs > lim->read_gbs) lim->read_gbs = gbs;
    return 0;
}

static int measure_models(const cli_bench_opts *o, const model_list *l, char names[][128], model_result *res) {
    for (size_t i = 0; i < l->n; i++) {
        model_name(l->paths[i], names[i], sizeof names[i]);
        if (isatty(2)) fprintf(stderr, "finch: bench: %s\n", names[i]);
        model_job job = { o, l->paths[i] };
        int rc = in_child(measure_model, &job, &res[i], sizeof res[i], &res[i].peak_rss_kb);
        if (rc) return rc;
    }
    return 0;
}

static int measure_rss_pair(const cli_bench_opts *o, rss_result *rss) {
    *rss = (rss_result){ .budget = finch_budget((size_t)o->rss_short, o),
                         .tokens = { (size_t)o->rss_short, (size_t)o->rss_long } };
    if (!o->rss_model) return 0;
    model_name(o->rss_model, rss->model, sizeof rss->model);
    for (int k = 0; k < 2; k++) {
        if (isatty(2)) fprintf(stderr, "finch: bench: peak RSS, %zu tokens\n", rss->tokens[k]);
        rss_job job = { o, rss->tokens[k], rss->budget };
        int rc = in_child(measure_rss, &job, &rss->seconds[k], sizeof rss->seconds[k], &rss->peak_rss_kb[k]);
        if (rc) return rc;
    }
    rss->done = true;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    cli_bench_opts o;
    int rc = cli_parse_bench(argc, argv, &o);
    if (rc) return rc;
    if (o.json_file && (rc = cli_output_check("--json-file", o.json_file, o.models, o.n_models)))
        return rc; /* before the work */
    model_list l = { 0 };
    if ((rc = collect_models(&o, &l))) {
        model_list_free(&l);
        return rc;
    }
    char (*names)[128] = calloc(l.n, sizeof *names);
    model_result *res = calloc(l.n, sizeof *res);
    machine_limits lim = limits_unprobed(&o);
    rss_result rss;
    if (!names || !res) rc = cli_out_of_memory();
    if (!rc) rc = probe_machine(&o, &lim);
    if (!rc) rc = measure_models(&o, &l, names, res);
    if (!rc) rc = measure_rss_pair(&o, &rss);
    if (!rc) rc = probe_machine(&o, &lim);
    if (!rc) rc = bench_report(&o, &l, names, res, &lim, &rss);
    free(names);
    free(res);
    model_list_free(&l);
    return rc;
}
