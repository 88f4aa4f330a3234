/* bench.c - the yardsticks of `finch bench`: the exact work of a forward
 * pass and of a decoded token, and two probes of the machine's limits (FMA
 * throughput, streaming-read bandwidth).  docs/bench.md states the method.
 *
 * The probes' SIMD loops carry target attributes instead of needing their
 * own compilation flags: each is called only after finch_isa_detect() has
 * said the CPU has that unit.  The scalar loops are the fallback. */
#include "finch_bench.h"
#include "kernels.h"
#include "util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PROBE_TARGET(isa) __attribute__((target(isa)))
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* ================================================================ the work */

uint64_t finch_forward_flops(const finch_config *cfg, size_t n, size_t past, size_t n_logits) {
    uint64_t L = cfg->n_layer, dim = cfg->dim, hd = cfg->head_dim, ffn = cfg->ffn_dim;
    uint64_t qdim = cfg->n_head * hd, kvdim = cfg->n_kv_head * hd, tokens = n;
    uint64_t macs_per_token = dim * qdim + 2 * dim * kvdim + qdim * dim + 3 * dim * ffn;
    /* keys seen by the n tokens: sum_{t<n} (past + t + 1) */
    uint64_t keys = tokens * past + tokens * (tokens + 1) / 2;
    uint64_t matmuls = 2 * L * tokens * macs_per_token;
    uint64_t attention = 4 * L * cfg->n_head * hd * keys;
    uint64_t output = 2 * (uint64_t)cfg->vocab * dim * n_logits;
    return matmuls + attention + output;
}

/* Stored bytes of a weight; 0 when absent (biases of a llama model). */
static size_t stored_bytes(const finch_weight *w) {
    return w->data ? w->rows * finch_row_bytes(w->type, w->cols) : 0;
}

size_t finch_decode_weight_bytes(const finch_model *m) {
    size_t total = 0;
    for (size_t l = 0; l < m->cfg.n_layer; l++) {
        const finch_layer *L = &m->layers[l];
        const finch_weight *w[] = { &L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk,
                                    &L->bv, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up,
                                    &L->w_down };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) total += stored_bytes(w[i]);
    }
    total += stored_bytes(&m->out_norm) + stored_bytes(&m->output);
    return total + finch_row_bytes(m->tok_embd.type, m->cfg.dim); /* one embedding row */
}

/* ========================================================= a team of threads */

/* The probes run fn(job, i) on n threads started together: the members
 * wait on a flag that the caller (thread 0) raises once all exist, and the
 * caller times from raising it to the last join.  A flag rather than a
 * barrier, so that a failed pthread_create can call off those started. */
typedef void (*probe_fn)(void *job, size_t thread);

enum { TEAM_WAIT = 0, TEAM_GO = 1, TEAM_CALLED_OFF = 2 };

typedef struct {
    atomic_int state;
    probe_fn fn;
    void *job;
} probe_team;

typedef struct {
    probe_team *team;
    size_t index;
    pthread_t id;
} probe_member;

static void *member_main(void *arg) {
    probe_member *me = arg;
    int state;
    while ((state = atomic_load(&me->team->state)) == TEAM_WAIT) sched_yield();
    if (state == TEAM_GO) me->team->fn(me->team->job, me->index);
    return NULL;
}

static finch_status run_team(size_t n_threads, probe_fn fn, void *job, double *seconds) {
    probe_team team = { .fn = fn, .job = job };
    atomic_init(&team.state, TEAM_WAIT);
    probe_member *members = finch_zalloc(n_threads, sizeof *members);
    if (!members) return FINCH_ERR_NOMEM;
    size_t started = 1;
    for (; started < n_threads; started++) {
        members[started] = (probe_member){ &team, started, 0 };
        if (pthread_create(&members[started].id, NULL, member_main, &members[started])) break;
    }
    atomic_store(&team.state, started == n_threads ? TEAM_GO : TEAM_CALLED_OFF);
    double t0 = finch_now();
    if (started == n_threads) fn(job, 0);
    for (size_t i = 1; i < started; i++) pthread_join(members[i].id, NULL);
    *seconds = finch_now() - t0;
    free(members);
    if (started < n_threads)
        return finch_fail(FINCH_ERR_INTERNAL, "probe: cannot start thread %zu of %zu", started, n_threads);
    return FINCH_OK;
}

static size_t team_size(size_t n_threads) { return n_threads ? n_threads : finch_num_cores(); }

/* ================================================= the loops, one per unit */

/* FMA chains: acc = acc * mul + add on independent accumulators, so that
 * each FMA waits on nothing but its own chain.  mul and add keep every
 * value near 1 (no overflow, no subnormals).  The chain counts cover
 * latency x pipes of current cores (4 cycles x 2 pipes = 8 at least). */
#define FMA4(op, a, b, c, d) \
    a = op(a, mul, add); b = op(b, mul, add); c = op(c, mul, add); d = op(d, mul, add)

static float chains_scalar(uint64_t iters) {
    float mul = 0.999999f, add = 1e-6f;
    float a0 = 1.0f, a1 = 1.1f, a2 = 1.2f, a3 = 1.3f, a4 = 1.4f, a5 = 1.5f, a6 = 1.6f, a7 = 1.7f;
#define SCALAR_FMA(x, m, c) ((x) * (m) + (c))
    for (uint64_t i = 0; i < iters; i++) {
        FMA4(SCALAR_FMA, a0, a1, a2, a3);
        FMA4(SCALAR_FMA, a4, a5, a6, a7);
    }
#undef SCALAR_FMA
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

/* Reads: sum the slice as 64-bit words with independent accumulators. */
static double sum_scalar(const void *p, size_t bytes) {
    const uint64_t *w = p;
    uint64_t s[8] = { 0 };
    for (size_t i = 0; i < bytes / 8; i += 8)
        for (size_t k = 0; k < 8; k++) s[k] += w[i + k];
    return (double)(s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]);
}

#if defined(__x86_64__)
PROBE_TARGET("avx512f") static float chains_avx512(uint64_t iters) {
    __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-6f);
    /* distinct starts: equal chains would be merged into one by the compiler */
#define START(k) _mm512_set1_ps(1.0f + (float)(k) / 64)
    __m512 a0 = START(0), a1 = START(1), a2 = START(2), a3 = START(3), a4 = START(4), a5 = START(5);
    __m512 a6 = START(6), a7 = START(7), a8 = START(8), a9 = START(9), a10 = START(10), a11 = START(11);
    __m512 a12 = START(12), a13 = START(13), a14 = START(14), a15 = START(15);
#undef START
    for (uint64_t i = 0; i < iters; i++) {
        FMA4(_mm512_fmadd_ps, a0, a1, a2, a3);
        FMA4(_mm512_fmadd_ps, a4, a5, a6, a7);
        FMA4(_mm512_fmadd_ps, a8, a9, a10, a11);
        FMA4(_mm512_fmadd_ps, a12, a13, a14, a15);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                       _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
    return _mm512_reduce_add_ps(s);
}

PROBE_TARGET("avx2,fma") static float chains_avx2(uint64_t iters) {
    __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-6f);
#define START(k) _mm256_set1_ps(1.0f + (float)(k) / 64)
    __m256 a0 = START(0), a1 = START(1), a2 = START(2), a3 = START(3), a4 = START(4), a5 = START(5);
    __m256 a6 = START(6), a7 = START(7), a8 = START(8), a9 = START(9), a10 = START(10), a11 = START(11);
#undef START
    for (uint64_t i = 0; i < iters; i++) {
        FMA4(_mm256_fmadd_ps, a0, a1, a2, a3);
        FMA4(_mm256_fmadd_ps, a4, a5, a6, a7);
        FMA4(_mm256_fmadd_ps, a8, a9, a10, a11);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

PROBE_TARGET("avx512f") static double sum_avx512(const void *p, size_t bytes) {
    const float *f = p;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < bytes / 4; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(f + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(f + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(f + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(f + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

PROBE_TARGET("avx2") static double sum_avx2(const void *p, size_t bytes) {
    const float *f = p;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < bytes / 4; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(f + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(f + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(f + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(f + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return (double)lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}
#endif

#if defined(__aarch64__)
static float chains_neon(uint64_t iters) {
    float32x4_t mul = vdupq_n_f32(0.999999f), add = vdupq_n_f32(1e-6f);
#define START(k) vdupq_n_f32(1.0f + (float)(k) / 64)
    float32x4_t a0 = START(0), a1 = START(1), a2 = START(2), a3 = START(3), a4 = START(4), a5 = START(5);
    float32x4_t a6 = START(6), a7 = START(7), a8 = START(8), a9 = START(9), a10 = START(10), a11 = START(11);
    float32x4_t a12 = START(12), a13 = START(13), a14 = START(14), a15 = START(15);
#undef START
    /* vfmaq_f32(acc, a, b) = acc + a*b: the operands in probe order */
#define NEON_FMA(x, m, c) vfmaq_f32(c, x, m)
    for (uint64_t i = 0; i < iters; i++) {
        FMA4(NEON_FMA, a0, a1, a2, a3);
        FMA4(NEON_FMA, a4, a5, a6, a7);
        FMA4(NEON_FMA, a8, a9, a10, a11);
        FMA4(NEON_FMA, a12, a13, a14, a15);
    }
#undef NEON_FMA
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)),
                              vaddq_f32(vaddq_f32(a4, a5), vaddq_f32(a6, a7)));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(vaddq_f32(a8, a9), vaddq_f32(a10, a11)),
                               vaddq_f32(vaddq_f32(a12, a13), vaddq_f32(a14, a15))));
    return vaddvq_f32(s);
}

static double sum_neon(const void *p, size_t bytes) {
    const float *f = p;
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < bytes / 4; i += 16) {
        s0 = vaddq_f32(s0, vld1q_f32(f + i));
        s1 = vaddq_f32(s1, vld1q_f32(f + i + 4));
        s2 = vaddq_f32(s2, vld1q_f32(f + i + 8));
        s3 = vaddq_f32(s3, vld1q_f32(f + i + 12));
    }
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}
#endif
#undef FMA4

/* The probe loops of one unit.  flops_per_iter = chains x lanes x 2. */
typedef struct {
    finch_isa isa;
    float (*chains)(uint64_t iters);
    double flops_per_iter;
    double (*sum)(const void *p, size_t bytes); /* bytes: a multiple of 256 */
} probe_unit;

static const probe_unit units[] = {
#if defined(__x86_64__)
    { FINCH_ISA_AVX512, chains_avx512, 16 * 16 * 2, sum_avx512 },
    { FINCH_ISA_AVX2, chains_avx2, 12 * 8 * 2, sum_avx2 },
#endif
#if defined(__aarch64__)
    { FINCH_ISA_NEON, chains_neon, 16 * 4 * 2, sum_neon },
#endif
    { FINCH_ISA_SCALAR, chains_scalar, 8 * 1 * 2, sum_scalar },
};

static const probe_unit *probe_unit_here(void) {
    finch_isa best = finch_isa_detect();
    size_t n = sizeof units / sizeof units[0];
    for (size_t i = 0; i < n; i++)
        if (units[i].isa == best) return &units[i];
    return &units[n - 1]; /* scalar */
}

const char *finch_probe_isa(void) { return finch_isa_name(probe_unit_here()->isa); }

/* ============================================================ FMA probe */

typedef struct {
    const probe_unit *unit;
    uint64_t iters;
    volatile float *sink; /* [n_threads]: the results, so no loop is dead */
} fma_job;

static void fma_member(void *arg, size_t thread) {
    fma_job *job = arg;
    job->sink[thread] = job->unit->chains(job->iters);
}

finch_status finch_probe_fma(size_t n_threads, double seconds, double *gflops) {
    *gflops = 0;
    n_threads = team_size(n_threads);
    if (!(seconds > 0) || n_threads > 4096)
        return finch_fail(FINCH_ERR_ARG, "FMA probe: %zu threads for %g s", n_threads, seconds);
    fma_job job = { probe_unit_here(), 1u << 12, finch_zalloc(n_threads, sizeof(float)) };
    if (!job.sink) return FINCH_ERR_NOMEM;
    finch_status st = FINCH_OK;
    double t = 0;
    /* Calibrate: double the iterations until a run takes an eighth of the
     * time asked, then scale to the whole of it. */
    while (!(st = run_team(n_threads, fma_member, &job, &t)) && t < seconds / 8)
        job.iters *= 2;
    if (!st) job.iters = (uint64_t)((double)job.iters * seconds / (t > 0 ? t : seconds)) + 1;
    for (int rep = 0; !st && rep < 3; rep++) {
        if ((st = run_team(n_threads, fma_member, &job, &t))) break;
        double rate = job.unit->flops_per_iter * (double)job.iters * (double)n_threads / t / 1e9;
        if (rate > *gflops) *gflops = rate;
    }
    free((void *)job.sink);
    return st;
}

/* ===================================================== bandwidth probe */

typedef struct {
    const probe_unit *unit;
    uint8_t *buf;
    size_t slice;         /* bytes per thread, a multiple of 256 */
    volatile double *sink; /* [n_threads] */
} read_job;

static void fill_member(void *arg, size_t thread) {
    read_job *job = arg;
    /* 0x3f3f3f3f is 0.747f: sums stay finite and normal */
    memset(job->buf + thread * job->slice, 0x3f, job->slice);
}

static void read_member(void *arg, size_t thread) {
    read_job *job = arg;
    job->sink[thread] = job->unit->sum(job->buf + thread * job->slice, job->slice);
}

finch_status finch_probe_read_bw(size_t n_threads, size_t bytes, size_t passes, double *gbs) {
    *gbs = 0;
    n_threads = team_size(n_threads);
    size_t slice = n_threads <= 4096 ? bytes / n_threads / 256 * 256 : 0;
    if (slice == 0 || passes == 0)
        return finch_fail(FINCH_ERR_ARG, "read probe: %zu bytes on %zu threads, %zu passes", bytes,
                          n_threads, passes);
    read_job job = { probe_unit_here(), NULL, slice, finch_zalloc(n_threads, sizeof(double)) };
    void *buf = NULL;
    const size_t huge_page = (size_t)2 << 20;
    if (!job.sink || posix_memalign(&buf, huge_page, slice * n_threads)) {
        free((void *)job.sink);
        return finch_fail(FINCH_ERR_NOMEM, "read probe: cannot allocate %zu bytes", slice * n_threads);
    }
    job.buf = buf;
#ifdef MADV_HUGEPAGE
    madvise(buf, slice * n_threads, MADV_HUGEPAGE); /* fewer TLB misses; optional */
#endif
    double t = 0;
    /* Each thread writes its own slice first, so that the pages exist
     * before any timed pass (and sit near the thread that reads them). */
    finch_status st = run_team(n_threads, fill_member, &job, &t);
    for (size_t pass = 0; !st && pass < passes; pass++) {
        if ((st = run_team(n_threads, read_member, &job, &t))) break;
        double rate = (double)(slice * n_threads) / t / 1e9;
        if (rate > *gbs) *gbs = rate;
    }
    free(buf);
    free((void *)job.sink);
    return st;
}
