/* test_finch_fixtures.c - Finch in C against its PyTorch twin
 * (tools/finch_ref.py, written by tools/make_finch_fixtures.py into
 * testdata/fixtures/finch/).  For every case: the kept original positions
 * must match exactly, the compressed keys/values and the logits after the
 * prompt within 1e-4, and the greedy answer ids exactly.  Each case runs twice: with one forward call per chunk
 * and with small forward batches (7 tokens), which must not change results. */
#include "testutil.h"

#include "finch_press.h"

#include <cjson/cJSON.h>

#define TOL 1e-4

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

/* Run one case with forward calls of `batch` tokens; report and check. */
static void run_case(const finch_model *m, const cJSON *c, size_t batch) {
    const char *name = jstr(c, "name");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", test_data("fixtures/finch"), name);

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
    int32_t *want_kept = read_npy(dir, "kept", FINCH_NPY_I32, shape, &nd);
    size_t n_kept = shape[2];
    float *want_k = read_npy(dir, "keys", FINCH_NPY_F32, shape, &nd);
    size_t n_kv = count(shape, nd); /* [L, G, n_kept, head_dim] */
    float *want_v = read_npy(dir, "values", FINCH_NPY_F32, shape, &nd);
    float *want_logits = read_npy(dir, "logits", FINCH_NPY_F32, shape, &nd);
    int32_t *want_answer = NULL;
    size_t n_answer = (size_t)jnum(c, "n_answer", 0);
    if (n_answer) want_answer = read_npy(dir, "answer", FINCH_NPY_I32, shape, &nd);

    finch_press_params p = finch_press_defaults();
    assert_ok(finch_press_parse_mode(jstr(c, "mode"), &p.mode));
    assert_ok(finch_press_parse_select(jstr(c, "select"), &p.select));
    p.normalize = (int)jnum(c, "normalize", 1); /* 2: the authors' weight */
    if (jstr(c, "schedule_kind")) assert_ok(finch_press_parse_schedule(jstr(c, "schedule_kind"), &p.schedule));
    if (cJSON_GetObjectItemCaseSensitive(c, "cr")) {
        p.budget_kind = FINCH_BUDGET_CR;
        p.cr = jnum(c, "cr", 0);
    } else {
        p.budget_kind = FINCH_BUDGET_TOKENS;
        p.budget = (size_t)jnum(c, "budget", 0);
    }
    p.chunk = (size_t)jnum(c, "chunk", 0);
    p.kv_chunk = (size_t)jnum(c, "kv_chunk", 0);
    p.no_rerotate = jnum(c, "rerotate", 1) == 0;
    p.protect = (size_t)jnum(c, "protect", 0);
    p.batch = batch;

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
    fprintf(stderr, "  %-32s batch %3zu: kept %zu/%zu equal, max|dK| %.2e max|dV| %.2e max|dlogits| %.2e\n",
            name, batch, n_idx - mismatched, n_idx, ek, ev, el);
    assert_int_equal(mismatched, 0);
    assert_true(ek <= TOL && ev <= TOL && el <= TOL);

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
        run_case(m, c, 64);
        run_case(m, c, 7);
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
