/* test_presses_kvpress.c - the presses added for issue 16 (src/press/presses.c's
 * snapkv-q, src/press/presses_kvpress.c, src/press/presses_context.c), each against a
 * brute force of its definition in docs/presses.md written out here:
 *
 *   snapkv-q  the window of the last 64 rows of chunk ++ question, from full
 *             causal attention matrices in double;
 *   keydiff   the cosine to the mean normalised key, by hand and in double;
 *   chunkkv   SnapKV's brute-force scores, chunk means of the head sums, and
 *             the kept set as whole chunks taken best first;
 *   rag       BM25 values worked out by hand, then the kept positions of a
 *             whole press on tiny-llama-gqa against them;
 *   lingua    the self-information from one plain forward pass with logits
 *             at every position, against the kept positions of the press;
 *             with segments, LLMLingua's iterative compression from one
 *             fresh pass per segment over the kept tokens and the segment. */
#include "press_scene.h"

#include "topk.h"

/* |a - b| <= tol (cmocka's float assertion is single precision). */
#define assert_double_equal(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

/* ============================================================== snapkv-q */

/* Rows [lo, hi) observe; columns < min(lo, n_cols) pooled means, the
 * context columns inside the window protected (2 + rank). */
static void brute_window(const scene *s, const double *A, size_t g, size_t lo, size_t hi, size_t n_cols,
                         double *out) {
    size_t group = s->H / s->G, lc = lo < n_cols ? lo : n_cols;
    double *mean = calloc(n_cols + 1, sizeof *mean);
    for (size_t j = 0; j < lc; j++) {
        for (size_t r = lo; r < hi; r++) mean[j] += group_attn(s, A, g, r, j);
        mean[j] /= (double)((hi - lo) * group);
    }
    for (size_t j = 0; j < lc; j++) {
        double sum = 0;
        for (long t = (long)j - 2; t <= (long)j + 2; t++)
            if (t >= 0 && t < (long)lc) sum += mean[t];
        out[j] = sum / 5;
    }
    for (size_t j = lc; j < n_cols; j++) out[j] = 2.0 + (double)(j - lc);
    free(mean);
}

/* Library scores within 1e-5 of brute(g) and the same k best rows. */
static void compare(const scene *s, finch_scorer_id id, const finch_press_params *p, size_t row0, size_t n_cols,
                    size_t n_q, size_t k, void (*brute)(const scene *, const double *, size_t, size_t, size_t, size_t,
                                                        double *)) {
    const size_t l = 1;
    double *A = attention(s, l), *want = malloc(n_cols * sizeof *want), *got = malloc(s->G * n_cols * sizeof *got);
    int32_t *orig = malloc(s->L * s->G * s->T * sizeof *orig);
    for (size_t i = 0; i < s->L * s->G * s->T; i++) orig[i] = (int32_t)(i % s->T);
    size_t *kw = malloc(n_cols * sizeof *kw), *kg = malloc(n_cols * sizeof *kg);
    library_scores(s, id, p, l, row0, n_cols, n_q, n_cols, orig, 3, got);
    for (size_t g = 0; g < s->G; g++) {
        brute(s, A, g, row0, n_cols, n_q, want);
        for (size_t j = 0; j < n_cols; j++)
            if (fabs(got[g * n_cols + j] - want[j]) > 1e-5 * (fabs(want[j]) + 1e-6))
                fail_msg("%s head %zu col %zu: %.9g, brute force %.9g", finch_scorer_name(id), g, j, got[g * n_cols + j],
                         want[j]);
        double gap;
        sort_topk(want, n_cols, k, kw, &gap);
        if (gap < 1e-6) fail_msg("%s head %zu: near tie at the cut", finch_scorer_name(id), g);
        finch_topk(got + g * n_cols, n_cols, k, kg);
        for (size_t i = 0; i < k; i++) assert_int_equal(kg[i], kw[i]);
    }
    free(A); free(want); free(got); free(orig); free(kw); free(kg);
}

/* The window: the last 64 rows of those fed (chunk rows from row0, then
 * the question). */
static void brute_snapkv_q(const scene *s, const double *A, size_t g, size_t row0, size_t n_cols, size_t n_q,
                           double *out) {
    size_t hi = n_cols + n_q, lo = hi - row0 > 64 ? hi - 64 : row0;
    brute_window(s, A, g, lo, hi, n_cols, out);
}

static void test_snapkv_q_vs_brute(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 4, 2, 8, 100);
    finch_press_params p = finch_press_defaults();
    p.scorer = FINCH_SCORER_SNAPKV_Q;
    /* chunk rows 10..69 + 6 question rows: window rows 12..75 */
    compare(&s, FINCH_SCORER_SNAPKV_Q, &p, 10, 70, 6, 20, brute_snapkv_q);
    /* a question of 70 rows: the window is question rows 26..89 only */
    compare(&s, FINCH_SCORER_SNAPKV_Q, &p, 0, 20, 70, 7, brute_snapkv_q);
    /* a short chunk: every row fed observes */
    compare(&s, FINCH_SCORER_SNAPKV_Q, &p, 60, 80, 5, 30, brute_snapkv_q);
    scene_free(&s);
}

/* =============================================================== keydiff */

static void brute_keydiff(const scene *s, const double *A, size_t g, size_t row0, size_t n_cols, size_t n_q,
                          double *out) {
    (void)A; (void)row0; (void)n_q;
    double anchor[64] = { 0 }, na = 0;
    for (size_t j = 0; j < n_cols; j++) {
        const float *k = finch_kv_k(&s->kv, 1, g, j);
        double n = 0;
        for (size_t i = 0; i < s->d; i++) n += (double)k[i] * k[i];
        for (size_t i = 0; i < s->d; i++) anchor[i] += k[i] / sqrt(n) / (double)n_cols;
    }
    for (size_t i = 0; i < s->d; i++) na += anchor[i] * anchor[i];
    for (size_t j = 0; j < n_cols; j++) {
        const float *k = finch_kv_k(&s->kv, 1, g, j);
        double dot = 0, n = 0;
        for (size_t i = 0; i < s->d; i++) dot += k[i] * anchor[i], n += (double)k[i] * k[i];
        out[j] = -dot / sqrt(n * na);
    }
}

static void test_keydiff(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 2, 1, 2, 5);
    /* keys (1,0) x3, (0,1), (-1,0): anchor (0.4, 0.2); cosines .894, .894,
     * .894, .447, -.894: the two least like the anchor are rows 3 and 4 */
    const float keys[5][2] = { { 1, 0 }, { 2, 0 }, { 0.5f, 0 }, { 0, 3 }, { -1, 0 } };
    for (size_t j = 0; j < 5; j++) memcpy(finch_kv_k(&s.kv, 1, 0, j), keys[j], sizeof keys[j]);
    finch_press_params p = finch_press_defaults();
    double acc[5];
    library_scores(&s, FINCH_SCORER_KEYDIFF, &p, 1, 0, 5, 0, 5, NULL, 5, acc);
    assert_double_equal(acc[3], -0.2 / sqrt(0.2), 1e-12);
    assert_double_equal(acc[4], 0.4 / sqrt(0.2), 1e-12);
    size_t kept[2];
    finch_topk(acc, 5, 2, kept);
    assert_int_equal(kept[0], 3);
    assert_int_equal(kept[1], 4);
    scene_free(&s);
    scene_random(&s, 2, 4, 2, 16, 50);
    compare(&s, FINCH_SCORER_KEYDIFF, &p, 0, 50, 0, 13, brute_keydiff);
    scene_free(&s);
}

/* =============================================================== chunkkv */

/* SnapKV's window: the last 64 context rows fed. */
static void brute_snapkv(const scene *s, const double *A, size_t g, size_t row0, size_t n_cols, double *out) {
    size_t lo = n_cols - row0 > 64 ? n_cols - 64 : row0;
    brute_window(s, A, g, lo, n_cols, n_cols, out);
}

static void test_chunkkv_vs_brute(void **state) {
    (void)state;
    scene s;
    scene_random(&s, 2, 4, 2, 8, 100);
    enum { NC = 90, NCH = 5, K = 45 }; /* chunks 0..19, ..., 80..89 (10 rows) */
    finch_press_params p = finch_press_defaults();
    double *A = attention(&s, 1), sn[2][NC], chunk[NCH], got[2 * NC];
    for (size_t g = 0; g < 2; g++) brute_snapkv(&s, A, g, 0, NC, sn[g]);
    for (size_t c = 0; c < NCH; c++) {
        size_t c0 = 20 * c, c1 = c0 + 20 < NC ? c0 + 20 : NC;
        chunk[c] = 0;
        for (size_t j = c0; j < c1; j++) chunk[c] += sn[0][j] + sn[1][j];
        chunk[c] /= (double)(c1 - c0);
    }
    /* whole chunks best first until K rows; the last one cut to its first rows */
    size_t order[NCH] = { 0, 1, 2, 3, 4 }, want[K], n = 0;
    sort_scores = chunk;
    qsort(order, NCH, sizeof *order, by_rank);
    for (size_t i = 0; i < NCH && n < K; i++)
        for (size_t j = 20 * order[i]; j < 20 * order[i] + 20 && j < NC && n < K; j++) want[n++] = j;
    qsort(want, K, sizeof *want, by_index);
    int32_t orig[2 * 2 * 100];
    for (size_t i = 0; i < 400; i++) orig[i] = (int32_t)(i % 100);
    library_scores(&s, FINCH_SCORER_CHUNKKV, &p, 1, 0, NC, 0, NC, orig, 7, got);
    for (size_t g = 0; g < 2; g++) {
        size_t kept[K];
        finch_topk(got + g * NC, NC, K, kept);
        for (size_t i = 0; i < K; i++) assert_int_equal(kept[i], want[i]);
        for (size_t j = 0; j < NC; j++) assert_double_equal(got[g * NC + j], chunk[j / 20], 1e-9);
    }
    free(A);
    scene_free(&s);
}

/* =================================================================== rag */

static void test_bm25_by_hand(void **state) {
    (void)state;
    /* chunks of 4: [1 2 3 4] [5 1 1 6] [7 8 9 2] [3]; query 1, 9; D = 4,
     * avgdl 3.25; idf(1) = ln(1 + 2.5/2.5) = ln 2, idf(9) = ln(1 + 3.5/1.5).
     * chunk 0: ln2 * 2.2 / (1 + 1.2 (0.25 + 0.75 * 4 / 3.25)) = 0.63335...
     * (values from the formula in Python, 2026-12) */
    const int32_t doc[13] = { 1, 2, 3, 4, 5, 1, 1, 6, 7, 8, 9, 2, 3 }, q[2] = { 1, 9 };
    const double want[4] = { 0.6333549317576496, 0.8949891360728864, 1.100115725358523, 0.0 };
    double out[13];
    finch_bm25_chunk_scores(doc, 13, q, 2, 4, 1.2, 0.75, out);
    for (size_t i = 0; i < 13; i++) assert_double_equal(out[i], want[i / 4], 1e-12);
}

static finch_model *load_gqa(void) { return test_load_data_model("models/tiny-llama-gqa.gguf"); }

static const int32_t *press_kept(finch_model *m, finch_ctx *ctx, finch_scorer_id id, finch_press_mode mode,
                                 const int32_t *C, size_t N, const int32_t *Q, size_t M, size_t K,
                                 finch_press **fp) {
    finch_press_params p = finch_press_defaults();
    p.scorer = id;
    p.mode = mode;
    p.budget = K;
    assert_ok(finch_press_new(m, ctx, &p, fp));
    assert_ok(finch_press_compress(*fp, C, N, Q, M, NULL, NULL));
    return finch_press_kept(*fp);
}

/* Every head of every layer keeps the top K of want (ties: the smaller). */
static void expect_kept(finch_model *m, const int32_t *kept, size_t n_kept, const double *want, size_t N, size_t K) {
    size_t top[256];
    double gap;
    sort_topk(want, N, K, top, &gap);
    for (size_t lg = 0; lg < m->cfg.n_layer * m->cfg.n_kv_head; lg++)
        for (size_t i = 0; i < K; i++) assert_int_equal(kept[lg * n_kept + i], (int32_t)top[i]);
}

/* rag on a model: the positions of the best BM25 chunks (32 tokens), the
 * budget ending inside a chunk keeping its first positions. */
static void test_rag_press(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 200, M = 3, K = 40 };
    int32_t C[N], Q[M] = { 7, 8, 9 };
    for (size_t i = 0; i < N; i++) C[i] = (int32_t)(10 + i % 50);
    C[70] = 8;  /* chunk 2 (64..95) holds 8 and 9: the best */
    C[90] = 9;
    C[140] = 7; /* chunk 4 (128..159) holds 7: second */
    double want[N];
    for (size_t i = 0; i < N; i++) want[i] = i >= 64 && i < 96 ? 2 : i >= 128 && i < 160 ? 1 : 0;
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, 64, &ctx));
    for (int mode = 0; mode <= 1; mode++) {
        finch_press *fp;
        const int32_t *kept = press_kept(m, ctx, FINCH_SCORER_RAG, (finch_press_mode)mode, C, N, Q, M, K, &fp);
        expect_kept(m, kept, finch_press_get_stats(fp)->n_kept, want, N, K); /* 64..95, 128..135 */
        finch_press_free(fp);
    }
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* ================================================================ lingua */

static void test_lingua_press(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 80, M = 4, K = 17 };
    int32_t C[N + M];
    for (size_t i = 0; i < N + M; i++) C[i] = (int32_t)(3 + rng_next() % (m->cfg.vocab - 3));
    size_t V = m->cfg.vocab;
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, N, &ctx));
    /* one plain pass, logits at every position: want[i] = -log p(C[i] | C[<i]) */
    finch_kv_cache kv;
    assert_ok(finch_kv_init(&kv, &m->cfg, N));
    float *logits = malloc(N * V * sizeof *logits);
    assert_ok(finch_forward(ctx, &kv, C, N, 0, NULL, logits, N));
    double want[N];
    want[0] = INFINITY;
    for (size_t i = 1; i < N; i++) {
        double z = 0;
        for (size_t v = 0; v < V; v++) z += exp((double)logits[(i - 1) * V + v]);
        want[i] = log(z) - logits[(i - 1) * V + C[i]];
    }
    double gap;
    size_t top[K];
    sort_topk(want, N, K, top, &gap);
    assert_true(gap > 1e-5); /* the cut is not a near tie */
    for (int mode = 0; mode <= 1; mode++) {
        finch_press *fp;
        const int32_t *kept = press_kept(m, ctx, FINCH_SCORER_LINGUA, (finch_press_mode)mode, C, N, C + N, M, K, &fp);
        expect_kept(m, kept, finch_press_get_stats(fp)->n_kept, want, N, K);
        finch_press_free(fp);
    }
    free(logits);
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
    finch_model_free(m);
}

/* LLMLingua's iterative compression (lingua_segment S), by brute force: for
 * each segment, one fresh forward pass over the kept tokens so far (at
 * positions 0..) followed by the segment, the segment tokens' surprisals
 * from its logits, the segment's share of the budget kept best first
 * (floor(Kc (e - 1) / (N - 1)) - floor(Kc (s - 1) / (N - 1)), Kc = K - 1
 * beside position 0, which nothing predicts and is always kept). */
static void brute_lingua_segments(finch_model *m, finch_ctx *ctx, const int32_t *C, size_t N, size_t S, size_t K,
                                  double *want) {
    size_t V = m->cfg.vocab, n_kept = 1, Kc = K - 1;
    int32_t *seq = malloc(N * sizeof *seq), *kept = malloc(N * sizeof *kept);
    float *logits = malloc(N * V * sizeof *logits);
    double *loss = malloc(S * sizeof *loss);
    kept[0] = C[0];
    want[0] = INFINITY;
    for (size_t s = 1; s < N; s += S) {
        size_t e = s + S < N ? s + S : N, L = e - s;
        size_t q = Kc * (e - 1) / (N - 1) - Kc * (s - 1) / (N - 1);
        memcpy(seq, kept, n_kept * sizeof *seq);
        memcpy(seq + n_kept, C + s, L * sizeof *seq);
        finch_kv_cache kv;
        assert_ok(finch_kv_init(&kv, &m->cfg, n_kept + L));
        assert_ok(finch_forward(ctx, &kv, seq, n_kept + L, 0, NULL, logits, n_kept + L));
        finch_kv_free(&kv);
        for (size_t t = 0; t < L; t++) {
            const float *row = logits + (n_kept + t - 1) * V;
            double z = 0;
            for (size_t v = 0; v < V; v++) z += exp((double)row[v]);
            loss[t] = log(z) - row[C[s + t]];
        }
        size_t top[64];
        double gap;
        sort_topk(loss, L, q, top, &gap);
        assert_true(q == 0 || q == L || gap > 1e-5); /* no near tie at the cut */
        for (size_t t = 0; t < L; t++) want[s + t] = 0;
        for (size_t i = 0; i < q; i++) {
            want[s + top[i]] = 1;
            kept[n_kept++] = C[s + top[i]];
        }
    }
    free(seq); free(kept); free(logits); free(loss);
}

static void test_lingua_segments(void **state) {
    (void)state;
    finch_model *m = load_gqa();
    if (!m) SKIP_MSG("testdata/models/tiny-llama-gqa.gguf not found");
    enum { N = 80, M = 4, K = 17, S = 16 };
    int32_t C[N + M];
    for (size_t i = 0; i < N + M; i++) C[i] = (int32_t)(3 + rng_next() % (m->cfg.vocab - 3));
    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 1, N, &ctx));
    double want[N];
    brute_lingua_segments(m, ctx, C, N, S, K, want); /* shares 3, 3, 3, 3, 4 of the 16 */
    finch_press *fp1; /* conditioning on the compressed prefix changes the choice (8 of 17 in common here) */
    const int32_t *k1 = press_kept(m, ctx, FINCH_SCORER_LINGUA, FINCH_PRESS_ITERATIVE, C, N, C + N, M, K, &fp1);
    size_t same = 0;
    for (size_t i = 0; i < K; i++) same += want[k1[i]] > 0;
    assert_true(same < K);
    finch_press_free(fp1);
    for (int mode = 0; mode <= 1; mode++) {
        finch_press_params p = finch_press_defaults();
        p.scorer = FINCH_SCORER_LINGUA;
        p.mode = (finch_press_mode)mode;
        p.budget = K;
        p.lingua_segment = S;
        finch_press *fp;
        assert_ok(finch_press_new(m, ctx, &p, &fp));
        assert_ok(finch_press_compress(fp, C, N, C + N, M, NULL, NULL));
        expect_kept(m, finch_press_kept(fp), finch_press_get_stats(fp)->n_kept, want, N, K);
        finch_press_free(fp);
    }
    finch_ctx_free(ctx);
    finch_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapkv_q_vs_brute),
        cmocka_unit_test(test_keydiff),
        cmocka_unit_test(test_chunkkv_vs_brute),
        cmocka_unit_test(test_bm25_by_hand),
        cmocka_unit_test(test_rag_press),
        cmocka_unit_test(test_lingua_press),
        cmocka_unit_test(test_lingua_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
