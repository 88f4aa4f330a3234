/* test_finch_fixtures.c - Finch in C against its PyTorch twin
 * (tools/finch_ref.py, written by tools/make_finch_fixtures.py into
 * testdata/fixtures/finch/).  For every case: the kept original positions
 * must match exactly, the compressed keys/values and the logits after the
 * prompt within 1e-4, and the greedy answer ids exactly.  Each case runs twice: with one forward call per chunk
 * and with small forward batches (7 tokens), which must not change results.
 *
 * F16 KV cache: the cases with "f16_margin" run again with --cache-type
 * f16 against the twin's emulation of it (K and V rounded to f16 by torch
 * when stored, re-rotated keys rounded again; *_f16.npy): kept positions
 * and answer exactly; keys and values within two f16 steps (at the
 * largest magnitude of their row) plus 1e-4 of the twin's (C and torch
 * differ by ~1e-7 before rounding, so a value next to the midpoint of two
 * halves may round the other way; a re-rotation mixes a pair's components
 * and rounds again; later layers see that); logits within F16_TOL
 * (measured up to 3.6e-4).  How far f16 moves the results from the
 * f32 references (kept positions in both, max |dlogits|) is printed,
 * bounded loosely (F16_MOVE_LOGITS), and quoted in docs/engine.md. */
#include "testutil.h"

#include "finch_press.h"
#include "press_internal.h" /* the building blocks under test */

#include <cjson/cJSON.h>

#define TOL 1e-4
#define F16_TOL 1e-3
/* f16 against the f32 references: logits of magnitude ~5-10 on these
 * random models move by up to ~3e-3 (measured); a changed kept position is
 * allowed (a near tie can flip). */
#define F16_MOVE_LOGITS 0.1

static cJSON *cases;

static int setup(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(test_data("fixtures/finch/cases.json"), "rb");
    if (!f) return 0; /* every test skips */
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc(len + 1);
    if (fread(text, 1, len, f) != len) len = 0;
    text[len] = 0;
    fclose(f);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cases = root;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(cases);
    return 0;
}

static void *read_npy(const char *dir, const char *name, finch_npy_type t, size_t *shape, size_t *ndim) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    void *data = NULL;
    assert_ok(finch_npy_read(path, t, &data, shape, ndim));
    return data;
}

/* A reference: name.npy, or with the f16 cache name_f16.npy. */
static void *read_ref(const char *dir, const char *name, bool half, finch_npy_type t, size_t *shape, size_t *ndim) {
    char file[64];
    snprintf(file, sizeof file, "%s%s", name, half ? "_f16" : "");
    return read_npy(dir, file, t, shape, ndim);
}

static size_t count(const size_t *shape, size_t ndim) {
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static const char *jstr(const cJSON *c, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static double jnum(const cJSON *c, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* The f16 step at x: the larger of the gaps to its neighbours. */
static double f16_step(float x) {
    uint16_t h = finch_f32_to_f16(x) & 0x7fff;
    float v = finch_f16_to_f32(h);
    double up = h < 0x7bff ? finch_f16_to_f32((uint16_t)(h + 1)) - v : 0;
    double down = h > 0 ? v - finch_f16_to_f32((uint16_t)(h - 1)) : up;
    return up > down ? up : down;
}

/* The largest |a - ref| beyond two f16 steps of its row's largest |ref|
 * (rows of d): a midpoint rounded the other way is one step, and a
 * re-rotation mixes the pair's components, so the step of the row's scale. */
static double max_beyond_f16_steps(const float *a, const float *ref, size_t n, size_t d) {
    double worst = 0;
    for (size_t r = 0; r < n / d; r++) {
        float mx = 0;
        for (size_t i = 0; i < d; i++) mx = fmaxf(mx, fabsf(ref[r * d + i]));
        double step = f16_step(mx);
        for (size_t i = r * d; i < (r + 1) * d; i++) worst = fmax(worst, fabs((double)a[i] - ref[i]) - 2 * step);
    }
    return worst;
}

/* Positions in both ascending rows a and b of n. */
static size_t common(const int32_t *a, const int32_t *b, size_t n) {
    size_t i = 0, j = 0, same = 0;
    while (i < n && j < n) {
        if (a[i] == b[j]) same++, i++, j++;
        else if (a[i] < b[j]) i++;
        else j++;
    }
    return same;
}

/* How far the f16 run moved from the f32 references: the kept positions
 * both hold (per layer and head), the logits (bounded by F16_MOVE_LOGITS). */
static void f16_movement(const char *dir, const char *name, const int32_t *kept, size_t n_idx, size_t n_kept,
                         const float *logits, size_t vocab) {
    size_t shape[8], nd, same = 0;
    int32_t *kept32 = read_npy(dir, "kept", FINCH_NPY_I32, shape, &nd);
    float *logits32 = read_npy(dir, "logits", FINCH_NPY_F32, shape, &nd);
    assert_int_equal(count(shape, nd), vocab);
    for (size_t r = 0; r < n_idx / n_kept; r++) same += common(kept + r * n_kept, kept32 + r * n_kept, n_kept);
    double el = test_max_abs_diff(logits, logits32, vocab);
    fprintf(stderr, "  %-32s f16 vs f32 references: kept %zu/%zu in both, max|dlogits| %.2e\n", name, same, n_idx, el);
    assert_true(el <= F16_MOVE_LOGITS);
    free(kept32);
    free(logits32);
}

/* Run one case with forward calls of `batch` tokens; report and check. */
/* The press parameters of a case of cases.json. */
static finch_press_params case_params(const cJSON *c, size_t batch) {
    finch_press_params params = finch_press_defaults(), *p = &params;
    assert_ok(finch_press_parse_mode(jstr(c, "mode"), &p->mode));
    assert_ok(finch_press_parse_select(jstr(c, "select"), &p->select));
    p->normalize = (int)jnum(c, "normalize", 1); /* 2: the authors' weight */
    if (jstr(c, "schedule_kind")) assert_ok(finch_press_parse_schedule(jstr(c, "schedule_kind"), &p->schedule));
    if (cJSON_GetObjectItemCaseSensitive(c, "cr")) {
        p->budget_kind = FINCH_BUDGET_CR;
        p->cr = jnum(c, "cr", 0);
    } else {
        p->budget_kind = FINCH_BUDGET_TOKENS;
        p->budget = (size_t)jnum(c, "budget", 0);
    }
    p->chunk = (size_t)jnum(c, "chunk", 0);
    p->kv_chunk = (size_t)jnum(c, "kv_chunk", 0);
    p->no_rerotate = jnum(c, "rerotate", 1) == 0;
    p->protect = (size_t)jnum(c, "protect", 0);
    p->batch = batch;
    return params;
}

static void run_case(const finch_model *m, const cJSON *c, size_t batch, finch_cache_type cache_type) {
    const char *name = jstr(c, "name");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", test_data("fixtures/finch"), name);
    bool half = cache_type == FINCH_CACHE_F16;

    size_t shape[8], nd, n_ctx, n_q, n_p = 0;
    int32_t *C = read_npy(dir, "context_ids", FINCH_NPY_I32, shape, &nd);
    n_ctx = count(shape, nd);
    int32_t *Q = read_npy(dir, "question_ids", FINCH_NPY_I32, shape, &nd);
    n_q = count(shape, nd);
    int32_t *P = NULL;
    if (jnum(c, "n_prompt", 0) > 0) {
        P = read_npy(dir, "prompt_ids", FINCH_NPY_I32, shape, &nd);
        n_p = count(shape, nd);
    }
    int32_t *want_kept = read_ref(dir, "kept", half, FINCH_NPY_I32, shape, &nd);
    size_t n_kept = shape[2];
    float *want_k = read_ref(dir, "keys", half, FINCH_NPY_F32, shape, &nd);
    size_t n_kv = count(shape, nd); /* [L, G, n_kept, head_dim] */
    float *want_v = read_ref(dir, "values", half, FINCH_NPY_F32, shape, &nd);
    float *want_logits = read_ref(dir, "logits", half, FINCH_NPY_F32, shape, &nd);
    int32_t *want_answer = NULL;
    size_t n_answer = (size_t)jnum(c, half ? "n_answer_f16" : "n_answer", 0);
    if (n_answer) want_answer = read_ref(dir, "answer", half, FINCH_NPY_I32, shape, &nd);

    finch_press_params p = case_params(c, batch);
    p.cache_type = cache_type;

    finch_ctx *ctx;
    assert_ok(finch_ctx_new(m, 2, batch, &ctx));
    finch_press *fp;
    assert_ok(finch_press_new(m, ctx, &p, &fp));
    assert_ok(finch_press_run(fp, C, n_ctx, Q, n_q, P, n_p, NULL, NULL));
    const finch_press_stats *st = finch_press_get_stats(fp);
    assert_int_equal(st->n_kept, n_kept);
    const finch_kv_cache *kv = finch_press_cache(fp);
    for (size_t l = 0; l < kv->n_layer; l++)
        assert_true(kv->n_pos[l] == n_kept + (n_p ? n_p : (p.mode == FINCH_PRESS_ITERATIVE ? n_q : 0)));

    const int32_t *kept = finch_press_kept(fp);
    size_t n_idx = kv->n_layer * kv->n_kv_head * n_kept, mismatched = 0;
    for (size_t i = 0; i < n_idx; i++) mismatched += kept[i] != want_kept[i];
    float *k = malloc(n_kv * sizeof *k), *v = malloc(n_kv * sizeof *v);
    finch_press_copy_kv(fp, k, v);
    double ek = test_max_abs_diff(k, want_k, n_kv), ev = test_max_abs_diff(v, want_v, n_kv);
    double el = test_max_abs_diff(finch_press_prompt_logits(fp), want_logits, m->cfg.vocab);
    fprintf(stderr, "  %-32s %s batch %3zu: kept %zu/%zu equal, max|dK| %.2e max|dV| %.2e max|dlogits| %.2e\n",
            name, finch_cache_type_name(cache_type), batch, n_idx - mismatched, n_idx, ek, ev, el);
    assert_int_equal(mismatched, 0);
    if (half) {
        double sk = max_beyond_f16_steps(k, want_k, n_kv, kv->head_dim), sv = max_beyond_f16_steps(v, want_v, n_kv, kv->head_dim);
        if (sk > TOL || sv > TOL || el > F16_TOL)
            fail_msg("%s f16: K %.3g V %.3g beyond two f16 steps, logits %.3g", name, sk, sv, el);
        f16_movement(dir, name, kept, n_idx, n_kept, finch_press_prompt_logits(fp), m->cfg.vocab);
    } else assert_true(ek <= TOL && ev <= TOL && el <= TOL);

    /* greedy continuation: the same ids as the twin's (the cache grows) */
    if (n_answer) {
        finch_sampler smp;
        finch_sampler_params sp = { 0.0f, 1.0f, 1 };
        assert_ok(finch_sampler_init(&smp, sp, m->cfg.vocab));
        int32_t got[16];
        size_t n_got = 0;
        assert_ok(finch_press_decode(fp, &smp, n_answer, -1, NULL, NULL, got, &n_got));
        assert_int_equal(n_got, n_answer);
        for (size_t i = 0; i < n_answer; i++) assert_int_equal(got[i], want_answer[i]);
        finch_sampler_free(&smp);
    }

    free(k); free(v);
    finch_press_free(fp);
    finch_ctx_free(ctx);
    free(C); free(Q); free(P); free(want_kept); free(want_k); free(want_v); free(want_logits); free(want_answer);
}

/* Every case whose name starts with `prefix`-. */
static void run_model(const char *prefix) {
    if (!cases) SKIP_MSG("testdata/fixtures/finch/cases.json not found (make_finch_fixtures.py)");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(cases, "cases"), *c;
    finch_model *m = NULL;
    size_t n = 0, plen = strlen(prefix);
    cJSON_ArrayForEach(c, list) {
        const char *name = jstr(c, "name"), *model = jstr(c, "model");
        if (!name || !model || strncmp(name, prefix, plen) != 0 || name[plen] != '-') continue;
        if (!m) {
            const char *path = model;
            if (strncmp(model, "asset:", 6) == 0) {
                path = test_asset(model + 6);
                if (!path) SKIP_MSG("%s not found under ../shared/assets", model + 6);
            }
            assert_ok(finch_model_load(path, &m));
        }
        run_case(m, c, 64, FINCH_CACHE_F32);
        run_case(m, c, 7, FINCH_CACHE_F32);
        if (cJSON_GetObjectItemCaseSensitive(c, "f16_margin")) {
            run_case(m, c, 64, FINCH_CACHE_F16);
            run_case(m, c, 7, FINCH_CACHE_F16);
        }
        n++;
    }
    if (m) finch_model_free(m);
    if (n == 0) SKIP_MSG("no Finch fixture cases for %s", prefix);
}

static void test_tiny_llama(void **state) { (void)state; run_model("llama"); }
static void test_tiny_llama_gqa(void **state) { (void)state; run_model("gqa"); }
static void test_tiny_qwen2(void **state) { (void)state; run_model("qwen2"); }
static void test_tinystories(void **state) { (void)state; run_model("tinystories"); }
/* The family models: re-rotation with scaled RoPE, windows over the
 * compacted cache (re-rotated positions), q/k norms, Gemma's switches. */
static void test_families(void **state) {
    (void)state;
    static const char *const fams[] = { "llama3", "mistral", "qwen3", "gemma2", "gemma3", "phi3" };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) run_model(fams[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_llama),
        cmocka_unit_test(test_tiny_llama_gqa),
        cmocka_unit_test(test_tiny_qwen2),
        cmocka_unit_test(test_tinystories),
        cmocka_unit_test(test_families),
    };
    return cmocka_run_group_tests_name("finch fixtures", tests, setup, teardown);
}
