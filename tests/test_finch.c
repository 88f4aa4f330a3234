/* test_finch.c - unit tests of the Finch compressor's parts: heap top-k,
 * the budget arithmetic, question-row score accumulation against a brute
 * force attention matrix, and key re-rotation (RoPE shift). */
#include "testutil.h"

#include "finch_dump.h"
#include "finch_press.h"
#include "press_internal.h" /* the building blocks under test */
#include "topk.h"

#include <unistd.h>

/* A small deterministic generator (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static double rng_unif(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }
static float rng_normalish(void) { return (float)(rng_unif() + rng_unif() + rng_unif() - 1.5) * 2.0f; }

/* ------------------------------------------------------------------ top-k */

static const double *ref_scores;
static double ref_key(size_t i) { return isnan(ref_scores[i]) ? -INFINITY : ref_scores[i]; }
/* Full-sort order: larger score first, ties to the smaller position. */
static int cmp_rank(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    double kx = ref_key(x), ky = ref_key(y);
    if (kx != ky) return kx > ky ? -1 : 1;
    return (x > y) - (x < y);
}
static int cmp_pos(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static void test_topk_matches_full_sort(void **state) {
    (void)state;
    for (int trial = 0; trial < 400; trial++) {
        size_t n = 1 + rng_next() % 300;
        size_t k = rng_next() % (n + 1);
        int levels = 1 + (int)(rng_next() % 6); /* few distinct values: many ties */
        double *s = malloc(n * sizeof *s);
        size_t *got = malloc((k ? k : 1) * sizeof *got), *all = malloc(n * sizeof *all);
        for (size_t i = 0; i < n; i++) {
            s[i] = trial % 3 == 0 ? rng_unif() : (double)(rng_next() % (uint64_t)levels);
            if (trial % 7 == 0 && rng_next() % 10 == 0) s[i] = NAN;
            if (trial % 11 == 0 && rng_next() % 10 == 0) s[i] = -INFINITY;
            all[i] = i;
        }
        finch_topk(s, n, k, got);
        ref_scores = s;
        qsort(all, n, sizeof *all, cmp_rank);
        qsort(all, k, sizeof *all, cmp_pos);
        for (size_t i = 0; i < k; i++) assert_int_equal(got[i], all[i]);
        free(s); free(got); free(all);
    }
}

static void test_topk_ties_to_smaller_position(void **state) {
    (void)state;
    double s[8] = { 1, 5, 3, 5, 5, 2, 5, 0 };
    size_t idx[3];
    finch_topk(s, 8, 3, idx);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 3);
    assert_int_equal(idx[2], 4);
    double flat[5] = { 7, 7, 7, 7, 7 };
    finch_topk(flat, 5, 2, idx);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
}

/* -------------------------------------------------------- budget schedule */

/* The k_t of every chunk for N tokens, chunk S, budget K. */
static size_t schedule(size_t K, size_t N, size_t S, size_t *out) {
    size_t past = 0, t = 0;
    for (size_t c0 = 0; c0 < N; c0 += S, t++) {
        size_t len = N - c0 < S ? N - c0 : S, k;
        assert_ok(finch_press_chunk_budget(K, N, past, len, c0 + len, &k));
        out[t] = past = k;
    }
    return t;
}

static void expect_schedule(size_t K, size_t N, size_t S, const size_t *want, size_t n_want) {
    size_t got[256];
    size_t n = schedule(K, N, S, got);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
}

static void test_budget_schedule_exact(void **state) {
    (void)state;
    /* N divisible by the chunk: floor(12 * c_t / 40) = 3, 6, 9, 12 */
    expect_schedule(12, 40, 10, (const size_t[]){ 3, 6, 9, 12 }, 4);
    /* not divisible: c_t = 10, 20, 30, 40, 43 -> floor(12 c_t / 43) */
    expect_schedule(12, 43, 10, (const size_t[]){ 2, 5, 8, 11, 12 }, 5);
    /* a budget smaller than the first share: max(1, .) */
    expect_schedule(1, 100, 10, (const size_t[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 10);
    expect_schedule(3, 100, 10, (const size_t[]){ 1, 1, 1, 1, 1, 1, 2, 2, 2, 3 }, 10);
    /* the chunk smaller than the share at the start: min(past + |c|, .) */
    expect_schedule(39, 40, 10, (const size_t[]){ 9, 19, 29, 39 }, 4);
    /* K >= N: nothing evicted, k_t = every token read so far */
    expect_schedule(50, 40, 15, (const size_t[]){ 15, 30, 40 }, 3);
    expect_schedule(40, 40, 15, (const size_t[]){ 15, 30, 40 }, 3);
    /* one chunk */
    expect_schedule(7, 40, 0 + 40, (const size_t[]){ 7 }, 1);
}

static void test_budget_schedule_ends_at_K(void **state) {
    (void)state;
    for (int trial = 0; trial < 2000; trial++) {
        size_t N = 1 + rng_next() % 200, S = 1 + rng_next() % 50, K = 1 + rng_next() % 220;
        size_t got[256];
        size_t n = schedule(K, N, S, got);
        assert_int_equal(got[n - 1], K < N ? K : N);
        for (size_t i = 0; i < n; i++) assert_true(got[i] <= (K < N ? K : N));
    }
}

static void test_resolve_budget(void **state) {
    (void)state;
    finch_press_params p = finch_press_defaults();
    size_t K, nk;
    /* kvpress rounding: int(100 * (1 - 0.9)) = int(9.999999999999998) = 9 */
    p.mode = FINCH_PRESS_ONESHOT;
    p.budget_kind = FINCH_BUDGET_CR;
    p.cr = 0.9;
    assert_ok(finch_press_resolve_budget(&p, 95, 5, &K, &nk));
    assert_int_equal(nk, 9);
    assert_int_equal(K, 4);
    p.cr = 0.5;
    assert_ok(finch_press_resolve_budget(&p, 95, 5, &K, &nk));
    assert_int_equal(nk, 50);
    p.cr = 0.0;
    assert_ok(finch_press_resolve_budget(&p, 95, 5, &K, &nk));
    assert_int_equal(nk, 100);
    assert_int_equal(K, 95);
    p.cr = 0.97; /* 3 positions cannot hold a 5-token question */
    assert_int_equal(finch_press_resolve_budget(&p, 95, 5, &K, &nk), FINCH_ERR_ARG);
    /* oneshot with a token budget keeps K context + the question */
    p.budget_kind = FINCH_BUDGET_TOKENS;
    p.budget = 10;
    assert_ok(finch_press_resolve_budget(&p, 95, 5, &K, &nk));
    assert_int_equal(K, 10);
    assert_int_equal(nk, 15);
    /* iterative: ratio X -> ceil(N / X); K >= N clamps to N */
    p.mode = FINCH_PRESS_ITERATIVE;
    p.budget_kind = FINCH_BUDGET_RATIO;
    p.ratio = 8;
    assert_ok(finch_press_resolve_budget(&p, 100, 5, &K, &nk));
    assert_int_equal(K, 13);
    assert_int_equal(nk, 13);
    p.ratio = 0.5;
    assert_ok(finch_press_resolve_budget(&p, 100, 5, &K, &nk));
    assert_int_equal(K, 100);
    p.budget_kind = FINCH_BUDGET_CR;
    p.cr = 0.9;
    assert_ok(finch_press_resolve_budget(&p, 100, 5, &K, &nk));
    assert_int_equal(K, 9); /* floor(100 * 0.09999999999999998) */
    p.budget_kind = FINCH_BUDGET_TOKENS;
    p.budget = 0;
    assert_int_equal(finch_press_resolve_budget(&p, 100, 5, &K, &nk), FINCH_ERR_ARG);
    p.budget = 3;
    assert_int_equal(finch_press_resolve_budget(&p, 0, 5, &K, &nk), FINCH_ERR_ARG);
    assert_int_equal(finch_press_resolve_budget(&p, 10, 0, &K, &nk), FINCH_ERR_ARG);
}

/* ------------------------------------------------------ score accumulation */

/* Brute force: the full causal attention matrix of all T = pos0 + n rows of
 * each head (double), then the question rows' probabilities summed. */
static void test_scores_vs_full_attention(void **state) {
    (void)state;
    const size_t L = 2, H = 6, G = 2, d = 8, group = H / G;
    finch_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_layer = L; cfg.n_head = H; cfg.n_kv_head = G; cfg.head_dim = d;
    for (int normalize = 0; normalize <= 1; normalize++) {
        const size_t pos0 = 13, n = 9, qstart = 17, n_cols = 17, T = pos0 + n, layer = 1;
        finch_kv_cache kv;
        assert_ok(finch_kv_init(&kv, &cfg, T + 3));
        for (size_t l = 0; l < L; l++) {
            kv.n_pos[l] = T;
            for (size_t g = 0; g < G; g++)
                for (size_t j = 0; j < T; j++)
                    for (size_t i = 0; i < d; i++) finch_kv_k(&kv, l, g, j)[i] = rng_normalish();
        }
        /* queries of every row; only rows pos0.. are handed to the scorer */
        float *qall = malloc(T * H * d * sizeof *qall);
        for (size_t i = 0; i < T * H * d; i++) qall[i] = 1.5f * rng_normalish();
        double *acc = calloc(G * n_cols, sizeof *acc), *want = calloc(G * n_cols, sizeof *want);
        float *scratch = malloc(T * sizeof *scratch);
        /* Finch's scorer: the question rows qstart.. observe, through the
         * one scoring path the press drives (finch_score_accumulate). */
        finch_press_params p = finch_press_defaults();
        p.normalize = normalize;
        finch_score_step step = { .kv = &kv, .p = &p, .n_head = H, .n_cols = n_cols, .n_question = T - qstart };
        finch_score_step_begin(&finch_scorer_finch, &step);
        finch_score_accumulate(&finch_scorer_finch, &step, layer, qall + pos0 * H * d, n, pos0, acc, scratch);

        double *A = malloc(T * T * sizeof *A); /* one head's full matrix */
        for (size_t h = 0; h < H; h++) {
            size_t g = h / group;
            for (size_t r = 0; r < T; r++) {
                double mx = -INFINITY, sum = 0;
                for (size_t j = 0; j < T; j++) {
                    double s = -INFINITY;
                    if (j <= r) {
                        s = 0;
                        for (size_t i = 0; i < d; i++)
                            s += (double)qall[(r * H + h) * d + i] * finch_kv_k(&kv, layer, g, j)[i];
                        s /= sqrt((double)d);
                    }
                    A[r * T + j] = s;
                    if (s > mx) mx = s;
                }
                for (size_t j = 0; j < T; j++) sum += A[r * T + j] = j <= r ? exp(A[r * T + j] - mx) : 0;
                for (size_t j = 0; j < T; j++) A[r * T + j] /= sum;
            }
            for (size_t r = qstart; r < T; r++) {
                double w = normalize ? (double)(r + 1 - 1) : 1.0; /* keys seen - 1 */
                for (size_t j = 0; j < n_cols; j++) want[g * n_cols + j] += w * A[r * T + j];
            }
        }
        double maxrel = 0;
        for (size_t i = 0; i < G * n_cols; i++) {
            double e = fabs(acc[i] - want[i]) / (fabs(want[i]) + 1e-3);
            if (e > maxrel) maxrel = e;
        }
        if (maxrel > 1e-5) fail_msg("normalize %d: relative error %g", normalize, maxrel);
        free(A); free(qall); free(acc); free(want); free(scratch);
        finch_kv_free(&kv);
    }
}

/* -------------------------------------------------------------- rerotation */

/* RoPE of raw vector x at position p, in double, in the given pairing. */
static void rope_ref(const float *x, float *out, size_t d, size_t rope_dim, double base, double p,
                     finch_rope_pairing pairing) {
    memcpy(out, x, d * sizeof *out);
    for (size_t i = 0; i < rope_dim / 2; i++) {
        size_t a = pairing == FINCH_ROPE_ADJACENT ? 2 * i : i;
        size_t b = pairing == FINCH_ROPE_ADJACENT ? 2 * i + 1 : i + rope_dim / 2;
        double ang = p * pow(base, -2.0 * (double)i / (double)rope_dim);
        out[a] = (float)(x[a] * cos(ang) - x[b] * sin(ang));
        out[b] = (float)(x[b] * cos(ang) + x[a] * sin(ang));
    }
}

/* finch_rope_shift on a model built by hand (no weights are touched). */
static void test_rope_shift_formula(void **state) {
    (void)state;
    for (int pairing = 0; pairing <= 1; pairing++) {
        finch_model m;
        memset(&m, 0, sizeof m);
        finch_config *c = &m.cfg;
        c->dim = 64; c->n_layer = 1; c->n_head = 4; c->n_kv_head = 2; c->head_dim = 16;
        c->ffn_dim = 32; c->vocab = 8; c->ctx_len = 512; c->rope_dim = 16;
        c->rms_eps = 1e-5f; c->rope_base = 10000.0f; c->rope_pairing = (finch_rope_pairing)pairing;
        finch_ctx *ctx;
        assert_ok(finch_ctx_new(&m, 1, 4, &ctx));
        const long cases[][2] = { { 5, 2 }, { 40, 3 }, { 0, 17 }, { 300, 0 }, { 77, 76 } };
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            float x[16], kp[16], kj[16];
            for (int i = 0; i < 16; i++) x[i] = rng_normalish();
            rope_ref(x, kp, 16, 16, 10000.0, (double)cases[t][0], (finch_rope_pairing)pairing);
            rope_ref(x, kj, 16, 16, 10000.0, (double)cases[t][1], (finch_rope_pairing)pairing);
            finch_rope_shift(ctx, 0, kp, cases[t][1] - cases[t][0]);
            double e = test_max_abs_diff(kp, kj, 16);
            if (e > 1e-5) fail_msg("pairing %d, %ld -> %ld: max error %g", pairing, cases[t][0], cases[t][1], e);
        }
        finch_ctx_free(ctx);
    }
}

/* The layer-0 key of one token at position p, from the engine itself: the
 * cache is filled with p zero rows first (layer 0 keys do not depend on
 * them). */
static void engine_key(finch_ctx *ctx, const finch_model *m, int32_t tok, size_t p, float *out) {
    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, &m->cfg, p + 1));
    memset(kv.k, 0, m->cfg.n_layer * m->cfg.n_kv_head * (p + 1) * m->cfg.head_dim * sizeof(float));
    memset(kv.v, 0, m->cfg.n_layer * m->cfg.n_kv_head * (p + 1) * m->cfg.head_dim * sizeof(float));
    for (size_t l = 0; l < m->cfg.n_layer; l++) kv.n_pos[l] = p;
    assert_ok(finch_forward(ctx, &kv, &tok, 1, p, NULL, NULL, 0));
    for (size_t g = 0; g < m->cfg.n_kv_head; g++)
        memcpy(out + g * m->cfg.head_dim, finch_kv_k(&kv, 0, g, p), m->cfg.head_dim * sizeof(float));
    finch_kv_free(&kv);
}

static void rerotation_engine(const char *path, finch_rope_pairing want_pairing) {
    finch_model *m;
    assert_ok(finch_model_load(path, &m));
    assert_int_equal(m->cfg.rope_pairing, want_pairing);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 4, &ctx));
    size_t G = m->cfg.n_kv_head, d = m->cfg.head_dim;
    float *kp = malloc(G * d * sizeof *kp), *kj = malloc(G * d * sizeof *kj);
    const size_t cases[][2] = { { 9, 2 }, { 37, 0 }, { 20, 19 }, { 3, 30 } };
    double worst = 0;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int32_t tok = (int32_t)(rng_next() % m->cfg.vocab);
        engine_key(ctx, m, tok, cases[t][0], kp);
        engine_key(ctx, m, tok, cases[t][1], kj);
        for (size_t g = 0; g < G; g++)
            finch_rope_shift(ctx, 0, kp + g * d, (long)cases[t][1] - (long)cases[t][0]);
        double e = test_max_abs_diff(kp, kj, G * d);
        if (e > worst) worst = e;
    }
    fprintf(stderr, "rerotation %s: max error %.3g\n", path, worst);
    assert_true(worst <= 1e-5);
    free(kp); free(kj);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

static void test_rerotation_engine_adjacent(void **state) {
    (void)state;
    const char *p = test_data("models/tiny-llama.gguf");
    FILE *f = fopen(p, "rb");
    if (!f) SKIP_MSG("%s not found", p);
    fclose(f);
    rerotation_engine(p, FINCH_ROPE_ADJACENT);
}

static void test_rerotation_engine_half(void **state) {
    (void)state;
    const char *p = test_data("models/tiny-qwen2.gguf");
    FILE *f = fopen(p, "rb");
    if (!f) SKIP_MSG("%s not found", p);
    fclose(f);
    rerotation_engine(p, FINCH_ROPE_HALF);
}

/* compact_head: gather + re-rotation of a hand-built cache. */
static void test_compact_head(void **state) {
    (void)state;
    finch_model m;
    memset(&m, 0, sizeof m);
    finch_config *c = &m.cfg;
    c->dim = 32; c->n_layer = 1; c->n_head = 2; c->n_kv_head = 1; c->head_dim = 16;
    c->ffn_dim = 16; c->vocab = 8; c->ctx_len = 64; c->rope_dim = 16;
    c->rms_eps = 1e-5f; c->rope_base = 10000.0f; c->rope_pairing = FINCH_ROPE_HALF;
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(&m, 1, 4, &ctx));
    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, c, 12));
    float raw[12][16];
    for (size_t j = 0; j < 12; j++) {
        for (int i = 0; i < 16; i++) raw[j][i] = rng_normalish();
        rope_ref(raw[j], finch_kv_k(&kv, 0, 0, j), 16, 16, 10000.0, (double)j, FINCH_ROPE_HALF);
        for (int i = 0; i < 16; i++) finch_kv_v(&kv, 0, 0, j)[i] = (float)(j * 100 + i);
    }
    kv.n_pos[0] = 12;
    const size_t idx[4] = { 1, 4, 5, 11 };
    finch_press_compact_head(ctx, &kv, 0, 0, idx, 4);
    for (size_t r = 0; r < 4; r++) {
        float want[16];
        rope_ref(raw[idx[r]], want, 16, 16, 10000.0, (double)r, FINCH_ROPE_HALF);
        assert_true(test_max_abs_diff(finch_kv_k(&kv, 0, 0, r), want, 16) <= 1e-5);
        assert_true(finch_kv_v(&kv, 0, 0, r)[3] == (float)(idx[r] * 100 + 3));
    }
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
}

/* ------------------------------------------------------- whole-press runs */

static size_t progress_calls, progress_last, progress_total;
static void on_progress(void *user, size_t done, size_t total) {
    (void)user;
    progress_calls++;
    progress_last = done;
    progress_total = total;
}

static finch_model *load_tiny(void) { return test_load_data_model("models/tiny-llama.gguf"); }

/* K >= N evicts nothing: the press must give what a plain prefill of C
 * followed by Q gives, logits and greedy answer, while the cache grows past
 * its compression-time capacity during decoding. */
static void test_press_keep_all_equals_plain(void **state) {
    (void)state;
    finch_model *m = load_tiny();
    if (!m) SKIP_MSG("testdata/models/tiny-llama.gguf not found");
    const size_t N = 30, M = 4, NEW = 12, B = 8;
    int32_t C[30], Q[4], got[12], want[12];
    for (size_t i = 0; i < N; i++) C[i] = (int32_t)(rng_next() % m->cfg.vocab);
    for (size_t i = 0; i < M; i++) Q[i] = (int32_t)(rng_next() % m->cfg.vocab);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, B, &ctx));

    finch_press_params p = finch_press_defaults();
    p.budget = 1000;
    p.chunk = 4;
    p.batch = B;
    finch_press *fp;
    assert_ok(finch_press_new(m, ctx, &p, &fp));
    progress_calls = 0;
    assert_ok(finch_press_compress(fp, C, N, Q, M, on_progress, NULL));
    assert_int_equal(progress_calls, 8);
    assert_int_equal(progress_last, 8);
    assert_int_equal(progress_total, 8);
    assert_ok(finch_press_prompt(fp, NULL, 0, NULL));
    finch_sampler smp;
    finch_sampler_params sp = { 0.0f, 1.0f, 1 };
    assert_ok(finch_sampler_init(&smp, sp, m->cfg.vocab));
    size_t n_got;
    assert_ok(finch_press_decode(fp, &smp, NEW, -1, NULL, NULL, got, &n_got));
    assert_int_equal(n_got, NEW);
    const finch_press_stats *st = finch_press_get_stats(fp);
    assert_int_equal(st->budget, N);
    assert_int_equal(st->n_kept, N);
    assert_int_equal(st->kv_capacity, N + M); /* kept + chunk: never more than the context read */
    assert_true(finch_press_cache(fp)->capacity >= N + M + NEW);
    for (size_t i = 0; i < N; i++) assert_int_equal(finch_press_kept(fp)[i], (int32_t)i);

    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, &m->cfg, N + M + NEW));
    float *logits = malloc(m->cfg.vocab * sizeof *logits);
    for (size_t c0 = 0; c0 < N; c0 += B)
        assert_ok(finch_forward(ctx, &kv, C + c0, N - c0 < B ? N - c0 : B, c0, NULL, NULL, 0));
    assert_ok(finch_forward(ctx, &kv, Q, M, N, NULL, logits, 1));
    double e = test_max_abs_diff(logits, finch_press_prompt_logits(fp), m->cfg.vocab);
    fprintf(stderr, "keep-all vs plain prefill: max |dlogits| %.3g\n", e);
    assert_true(e <= 1e-4);
    for (size_t i = 0; i < NEW; i++) {
        want[i] = finch_sample(&smp, logits, m->cfg.vocab);
        if (i + 1 < NEW) assert_ok(finch_forward(ctx, &kv, &want[i], 1, N + M + i, NULL, logits, 1));
    }
    for (size_t i = 0; i < NEW; i++) assert_int_equal(got[i], want[i]);

    free(logits);
    finch_kv_free(&kv);
    finch_sampler_free(&smp);
    finch_press_free(fp);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* With eviction: the cache never exceeds K + S + m, ends with K rows, keeps
 * ascending context positions, and the dump reads back. */
/* The dump of a compressed press: kept.npy is the kept set, keys.npy the
 * cache's keys in the Hugging Face layout, logits.npy one row of vocab. */
static void check_dump(const finch_press *fp, const finch_model *m, size_t nk) {
    const finch_kv_cache *kv = finch_press_cache(fp);
    const int32_t *kept = finch_press_kept(fp);
    char dir[] = "/tmp/finch_dump_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_ok(finch_press_dump(fp, dir));
    char path[256];
    void *data;
    size_t shape[8], nd;
    snprintf(path, sizeof path, "%s/kept.npy", dir);
    assert_ok(finch_npy_read(path, FINCH_NPY_I32, &data, shape, &nd));
    assert_int_equal(nd, 3);
    assert_int_equal(shape[2], nk);
    assert_memory_equal(data, kept, kv->n_layer * kv->n_kv_head * nk * sizeof(int32_t));
    free(data);
    snprintf(path, sizeof path, "%s/keys.npy", dir);
    assert_ok(finch_npy_read(path, FINCH_NPY_F32, &data, shape, &nd));
    assert_int_equal(nd, 4);
    assert_int_equal(shape[3], kv->head_dim);
    /* keys.npy is in the HF layout: the cache's rows un-permuted per head */
    float *hf = malloc(nk * kv->head_dim * sizeof(float));
    memcpy(hf, finch_kv_k(kv, 0, 0, 0), nk * kv->head_dim * sizeof(float));
    if (m->cfg.rope_pairing == FINCH_ROPE_ADJACENT) finch_keys_adjacent_to_half(hf, nk, kv->head_dim);
    assert_memory_equal(data, hf, nk * kv->head_dim * sizeof(float));
    free(hf);
    free(data);
    snprintf(path, sizeof path, "%s/logits.npy", dir);
    assert_ok(finch_npy_read(path, FINCH_NPY_F32, &data, shape, &nd));
    assert_int_equal(shape[0], m->cfg.vocab);
    free(data);
    const char *names[] = { "kept.npy", "keys.npy", "values.npy", "logits.npy", "scores.npy", "margins.npy",
                            "schedule.npy", "meta.json" };
    for (size_t i = 0; i < 8; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

static void test_press_bounds_and_dump(void **state) {
    (void)state;
    finch_model *m = load_tiny();
    if (!m) SKIP_MSG("testdata/models/tiny-llama.gguf not found");
    const size_t N = 50, M = 5, K = 6, S = 7;
    int32_t C[50], Q[5];
    for (size_t i = 0; i < N; i++) C[i] = (int32_t)(rng_next() % m->cfg.vocab);
    for (size_t i = 0; i < M; i++) Q[i] = (int32_t)(rng_next() % m->cfg.vocab);
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 16, &ctx));
    for (int mode = 0; mode <= 1; mode++) {
        finch_press_params p = finch_press_defaults();
        p.mode = (finch_press_mode)mode;
        p.budget = K;
        p.chunk = S;
        p.batch = 16;
        finch_press *fp;
        assert_ok(finch_press_new(m, ctx, &p, &fp));
        int32_t ans = 3;
        assert_int_equal(finch_press_prompt(fp, &ans, 1, NULL), FINCH_ERR_ARG); /* not yet */
        assert_ok(finch_press_compress(fp, C, N, Q, M, NULL, NULL));
        const finch_press_stats *st = finch_press_get_stats(fp);
        const finch_kv_cache *kv = finch_press_cache(fp);
        size_t nk = mode ? K + M : K;
        assert_int_equal(st->n_kept, nk);
        assert_int_equal(st->kv_capacity, mode ? N + M : K + S + M);
        for (size_t l = 0; l < kv->n_layer; l++) assert_int_equal(kv->n_pos[l], nk);
        const int32_t *kept = finch_press_kept(fp);
        for (size_t lg = 0; lg < kv->n_layer * kv->n_kv_head; lg++)
            for (size_t r = 0; r < nk; r++) {
                assert_true(kept[lg * nk + r] < (int32_t)(N + M));
                if (r) assert_true(kept[lg * nk + r] > kept[lg * nk + r - 1]);
                if (mode && r >= K) assert_int_equal(kept[lg * nk + r], (int32_t)(N + r - K));
            }
        assert_int_equal(st->kv_bytes_full, finch_kv_bytes(kv, N + M));
        assert_int_equal(st->kv_bytes_kept, finch_kv_bytes(kv, nk));
        if (mode) assert_int_equal(finch_press_prompt(fp, NULL, 0, NULL), FINCH_ERR_ARG);
        assert_ok(finch_press_prompt(fp, &ans, 1, NULL));

        check_dump(fp, m, nk);

        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        finch_press_describe(fp, f);
        fclose(f);
        assert_non_null(strstr(text, mode ? "mode: oneshot" : "mode: iterative"));
        assert_non_null(strstr(text, "kv bytes after"));
        free(text);
        finch_press_free(fp);
    }
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* ----------------------------------------------------------- names, args */

static void test_names_and_parsing(void **state) {
    (void)state;
    finch_press_mode mode;
    finch_press_select sel;
    assert_ok(finch_press_parse_mode("oneshot", &mode));
    assert_int_equal(mode, FINCH_PRESS_ONESHOT);
    assert_ok(finch_press_parse_mode("iterative", &mode));
    assert_int_equal(mode, FINCH_PRESS_ITERATIVE);
    assert_int_equal(finch_press_parse_mode("snap", &mode), FINCH_ERR_ARG);
    assert_ok(finch_press_parse_select("layer", &sel));
    assert_int_equal(sel, FINCH_SELECT_LAYER);
    assert_int_equal(finch_press_parse_select("x", &sel), FINCH_ERR_ARG);
    assert_string_equal(finch_press_mode_name(FINCH_PRESS_ONESHOT), "oneshot");
    assert_string_equal(finch_press_select_name(FINCH_SELECT_HEAD), "head");
    finch_press_params p = finch_press_defaults();
    assert_int_equal(p.mode, FINCH_PRESS_ITERATIVE);
    assert_int_equal(p.select, FINCH_SELECT_HEAD);
    assert_int_equal(p.normalize, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk_matches_full_sort),
        cmocka_unit_test(test_topk_ties_to_smaller_position),
        cmocka_unit_test(test_budget_schedule_exact),
        cmocka_unit_test(test_budget_schedule_ends_at_K),
        cmocka_unit_test(test_resolve_budget),
        cmocka_unit_test(test_scores_vs_full_attention),
        cmocka_unit_test(test_rope_shift_formula),
        cmocka_unit_test(test_compact_head),
        cmocka_unit_test(test_rerotation_engine_adjacent),
        cmocka_unit_test(test_rerotation_engine_half),
        cmocka_unit_test(test_press_keep_all_equals_plain),
        cmocka_unit_test(test_press_bounds_and_dump),
        cmocka_unit_test(test_names_and_parsing),
    };
    return cmocka_run_group_tests_name("finch", tests, NULL, NULL);
}
