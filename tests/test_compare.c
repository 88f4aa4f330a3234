/* test_compare.c - `finch compare` on dumps written by `finch run` and
 * edited here: identical dumps, near-tie flips (excused) and real ones,
 * keys out of tolerance, the two key layouts, GGUF against the HF directory
 * of the same weights, malformed input, and the NumPy example of
 * docs/dump-format.md. */
#include "cliutil.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>

#define CASE "testdata/fixtures/finch/gqa-it-head-norm-c10"
#define GGUF "testdata/models/tiny-llama-gqa.gguf"
#define HFDIR "testdata/models/tiny-hf-llama"

static char tmp[64];

static const char *at(const char *name) {
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmp, name);
    return buf[i];
}

/* finch run on the fixture's ids into tmp/name with extra flags. */
static void dump(const char *model, const char *name, const char *flags) {
    char args[2048];
    snprintf(args, sizeof args, "run -m %s --context-ids " CASE "/context_ids.npy --question-ids " CASE
             "/question_ids.npy --budget 12 --chunk 10 -n 2 -t 1 --dump %s %s", model, at(name), flags);
    assert_int_equal(run_finch(args), 0);
}

static int compare(const char *ref, const char *other, const char *flags) {
    char args[2048];
    snprintf(args, sizeof args, "compare %s %s %s", at(ref), at(other), flags);
    return run_finch(args);
}

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    assert_int_equal(system(cmd), 0);
}

static void *load(const char *dir, const char *file, finch_npy_type t, size_t *shape) {
    char path[600];
    size_t nd;
    void *data = NULL;
    snprintf(path, sizeof path, "%s/%s", at(dir), file);
    assert_ok(finch_npy_read(path, t, &data, shape, &nd));
    return data;
}

static int setup(void **state) {
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/finch-compare-XXXXXX");
    if (!mkdtemp(tmp)) return -1;
    dump(GGUF, "ref", "");
    dump(GGUF, "native", "--dump-layout native");
    dump(HFDIR, "hf", "");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    sh("rm -rf %s%s", tmp, "");
    return 0;
}

static void test_identical(void **state) {
    (void)state;
    assert_int_equal(compare("ref", "ref", ""), 0);
    assert_non_null(strstr(out_text, "4 agree, 0 excused"));
    assert_non_null(strstr(out_text, "result: ok"));
    assert_int_equal(compare("ref", "ref", "--json"), 0);
    assert_non_null(strstr(out_text, "\"ok\":\ttrue"));
}

/* The same model in both key layouts: raw keys differ by a permutation,
 * compare reads the layout from meta.json. */
static void test_layouts(void **state) {
    (void)state;
    size_t s[8];
    float *a = load("ref", "keys.npy", FINCH_NPY_F32, s), *b = load("native", "keys.npy", FINCH_NPY_F32, s);
    assert_true(test_max_abs_diff(a, b, s[0] * s[1] * s[2] * s[3]) > 0.1);
    free(a);
    free(b);
    assert_int_equal(compare("ref", "native", ""), 0);
    assert_non_null(strstr(out_text, "keys: 384 values, max abs error 0,"));
    assert_int_equal(compare("native", "ref", ""), 0);
    /* GGUF (native, adjacent pairs) against the HF directory (hf layout) */
    assert_int_equal(compare("native", "hf", ""), 0);
    assert_int_equal(compare("hf", "native", "--atol 1e-5 --rtol 0"), 0);
}

/* OTHER = REF's meta.json and kept.npy (the minimal subset), with head
 * (0, 0)'s position `drop` replaced by `add`. */
static void flipped(const char *name, int32_t drop, int32_t add) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/meta.json %s/kept.npy %s/", at(name), at("ref"), at("ref"),
             at(name));
    assert_int_equal(system(cmd), 0);
    size_t s[8];
    int32_t *k = load(name, "kept.npy", FINCH_NPY_I32, s);
    for (size_t r = 0; r < s[2]; r++)
        if (k[r] == drop) k[r] = add;
    char path[600];
    snprintf(path, sizeof path, "%s/kept.npy", at(name));
    assert_ok(finch_npy_write(path, FINCH_NPY_I32, k, s, 3));
    free(k);
}

static void test_near_tie_and_real_flip(void **state) {
    (void)state;
    size_t s[8], sk[8];
    float *sc = load("ref", "scores.npy", FINCH_NPY_F32, s);
    int32_t *kept = load("ref", "kept.npy", FINCH_NPY_I32, sk);
    /* head (0, 0): REF's cut, its best kept and its worst candidate */
    int32_t last = -1, first_out = -1, best = -1, worst = -1;
    double top = 0;
    for (int32_t p = 0; p < (int32_t)s[2]; p++) {
        if (!isfinite(sc[p])) continue;
        bool in = false;
        for (size_t r = 0; r < sk[2]; r++) in |= kept[r] == p;
        if (fabs(sc[p]) > top) top = fabs(sc[p]);
        if (in && (last < 0 || sc[p] < sc[last])) last = p;
        if (in && (best < 0 || sc[p] > sc[best])) best = p;
        if (!in && (first_out < 0 || sc[p] > sc[first_out])) first_out = p;
        if (!in && (worst < 0 || sc[p] < sc[worst])) worst = p;
    }
    assert_true(last >= 0 && first_out >= 0 && best != last && worst != first_out);
    double gap = (sc[last] - sc[first_out]) / top;
    free(sc);
    free(kept);
    flipped("tie", last, first_out);
    char flags[64];
    snprintf(flags, sizeof flags, "--tie %.9g", gap * 1.01 + 1e-12);
    assert_int_equal(compare("ref", "tie", flags), 0);
    assert_non_null(strstr(out_text, "1 excused (2 positions in near ties), 0 disagree"));
    assert_non_null(strstr(out_text, "layer 0 head 0: excused"));
    snprintf(flags, sizeof flags, "--tie %.9g", gap * 0.5);
    assert_int_equal(compare("ref", "tie", flags), 1);
    assert_non_null(strstr(out_text, "1 disagree (2 positions)"));
    flipped("far", best, worst);
    assert_int_equal(compare("ref", "far", ""), 1);
    assert_non_null(strstr(out_text, "layer 0 head 0: disagree"));
    assert_non_null(strstr(out_text, "result: FAIL"));
}

static void test_keys_out_of_tolerance(void **state) {
    (void)state;
    sh("cp -r %s %s", at("ref"), at("off"));
    size_t s[8];
    float *k = load("off", "keys.npy", FINCH_NPY_F32, s);
    k[5] += 1e-3f;
    char path[600];
    snprintf(path, sizeof path, "%s/keys.npy", at("off"));
    assert_ok(finch_npy_write(path, FINCH_NPY_F32, k, s, 4));
    free(k);
    assert_int_equal(compare("ref", "off", ""), 1);
    assert_non_null(strstr(out_text, "keys: 384 values, max abs error 0.001"));
    assert_non_null(strstr(out_text, "OUT OF TOLERANCE"));
    assert_int_equal(compare("ref", "off", "--atol 2e-3"), 0);
}

static void test_malformed(void **state) {
    (void)state;
    assert_int_equal(compare("ref", "nonexistent", ""), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "meta.json"));
    sh("cp -r %s %s", at("ref"), at("badfmt"));
    sh("echo '{\"format\": \"other\", \"version\": 1}' > %s/meta.json%s", at("badfmt"), "");
    assert_int_equal(compare("ref", "badfmt", ""), 2);
    assert_non_null(strstr(err_text, "\"format\" is not \"finch-dump\""));
    sh("echo '{\"format\": \"finch-dump\", \"version\": 2}' > %s/meta.json%s", at("badfmt"), "");
    assert_int_equal(compare("badfmt", "ref", ""), 2);
    assert_non_null(strstr(err_text, "\"version\" must be 1"));
    sh("cp %s/meta.json %s/", at("ref"), at("badfmt"));
    sh("cp %s/context_ids.npy %s/kept.npy", at("ref"), at("badfmt"));
    assert_int_equal(compare("ref", "badfmt", ""), 2);
    assert_non_null(strstr(err_text, "kept.npy: 1 dimensions, the format says 3"));
    assert_one_line_error();
    sh("cp %s/kept.npy %s/", at("ref"), at("badfmt"));
    sh("head -c 100 %s/keys.npy > %s/keys.npy.x", at("ref"), at("badfmt"));
    sh("mv %s/keys.npy.x %s/keys.npy", at("badfmt"), at("badfmt"));
    assert_int_equal(compare("ref", "badfmt", ""), 2);
    assert_one_line_error();
    /* a different model: the tiny llama has 4 KV heads, not 2 */
    char args[1024];
    snprintf(args, sizeof args, "run -m testdata/models/tiny-llama.gguf --context-ids " CASE "/context_ids.npy "
             "--question-ids " CASE "/question_ids.npy --budget 12 -n 1 --dump %s", at("other-model"));
    assert_int_equal(run_finch(args), 0);
    assert_int_equal(compare("ref", "other-model", ""), 2);
    assert_non_null(strstr(err_text, "different models"));
    assert_int_equal(run_finch("compare onlyone"), 2);
    assert_one_line_error();
    assert_int_equal(compare("ref", "ref", "--atol -1"), 2);
}

/* The v1 files of `finch run --dump`: ids as fed, the twin's kept sets and
 * schedule, resolved threads; --dump-steps; the flags' own errors. */
static void test_run_dump_v1(void **state) {
    (void)state;
    size_t s[8], sf[8];
    int32_t *kept = load("ref", "kept.npy", FINCH_NPY_I32, s);
    char path[600];
    void *fix = NULL;
    size_t nd;
    assert_ok(finch_npy_read(CASE "/kept.npy", FINCH_NPY_I32, &fix, sf, &nd));
    assert_memory_equal(kept, fix, s[0] * s[1] * s[2] * sizeof(int32_t));
    free(kept);
    free(fix);
    int32_t *sched = load("ref", "schedule.npy", FINCH_NPY_I32, s);
    int32_t want[] = { 2, 4, 6, 8, 10, 12 }; /* cases.json: gqa-it-head-norm-c10 */
    assert_int_equal(s[0], 6);
    assert_memory_equal(sched, want, sizeof want);
    free(sched);
    int32_t *prompt = load("ref", "prompt_ids.npy", FINCH_NPY_I32, s);
    assert_ok(finch_npy_read(CASE "/question_ids.npy", FINCH_NPY_I32, &fix, sf, &nd));
    assert_int_equal(s[0], sf[0]); /* iterative without a prompt: the question again */
    assert_memory_equal(prompt, fix, s[0] * sizeof(int32_t));
    free(prompt);
    free(fix);
    snprintf(path, sizeof path, "%s/meta.json", at("ref"));
    slurp(path, out_text, sizeof out_text);
    assert_non_null(strstr(out_text, "\"format\":\t\"finch-dump\""));
    assert_non_null(strstr(out_text, "\"threads\":\t1,"));
    assert_non_null(strstr(out_text, "\"key_layout\":\t\"hf\""));
    assert_non_null(strstr(out_text, "\"header_hash\":\t\"fnv1a64:"));
    dump(GGUF, "steps", "--dump-steps");
    int32_t *sk = load("steps", "steps_kept.npy", FINCH_NPY_I32, s);
    assert_int_equal(s[0], 6);
    assert_int_equal(s[3], 12);
    assert_true(sk[0] >= 0 && sk[1] > sk[0]); /* k_0 = 2 positions, ascending, */
    assert_int_equal(sk[2], -1);              /* then padding */
    free(sk);
    assert_int_equal(run_finch("run -m " GGUF " --context abc -q d --budget 1 --dump-steps"), 2);
    assert_non_null(strstr(err_text, "give --dump DIR"));
    assert_int_equal(run_finch("run -m " GGUF " --context abc -q d --budget 1 --dump /tmp/x --dump-layout gguf"), 2);
    assert_non_null(strstr(err_text, "--dump-layout must be hf or native, got 'gguf'"));
    /* the references' variants: named in meta.json, refused where they mean nothing */
    dump(GGUF, "authors", "--normalize authors --schedule authors");
    snprintf(path, sizeof path, "%s/meta.json", at("authors"));
    slurp(path, out_text, sizeof out_text);
    assert_non_null(strstr(out_text, "\"normalize\":\t\"authors\""));
    assert_non_null(strstr(out_text, "\"schedule\":\t\"authors\""));
    assert_int_equal(run_finch("run -m " GGUF " --context abc -q d --cr 0.5 --mode oneshot --schedule authors"), 2);
    assert_non_null(strstr(err_text, "--schedule authors is a per-chunk budget"));
    assert_int_equal(run_finch("run -m " GGUF " --context abc -q d --budget 1 --normalize mistral"), 2);
    assert_non_null(strstr(err_text, "--normalize must be on, authors or off, got 'mistral'"));
    assert_int_equal(run_finch("run -m " GGUF " --context abc -q d --budget 1 --kv-chunk 8"), 2);
    assert_non_null(strstr(err_text, "--kv-chunk is kvpress's chunk_length: give it with --mode oneshot and --cr F"));
    /* kvpress asserts chunk_length > window / (1 - cr) */
    assert_int_equal(run_finch("run -m " GGUF " --context 'a b c d e f g h' -q 'one two three' --mode oneshot "
                               "--cr 0.5 --kv-chunk 4 --answer-prefix x"), 2);
    assert_non_null(strstr(err_text, "kv chunk 4 must exceed question / (1 - cr)"));
    assert_int_equal(run_finch("run -m " GGUF " --context abc -q d --budget 1 --no-rerotate"), 2);
    assert_non_null(strstr(err_text, "--no-rerotate is kvpress's rerotate_keys=False"));
}

/* kvpress rerotate_keys=False: keys at their original positions (meta.json
 * says so), which compare rotates to REF's ranks; the prompt sits elsewhere,
 * so the logits differ and decide. */
static void test_no_rerotate(void **state) {
    (void)state;
    char args[1024];
    const char *flags[2] = { "", "--no-rerotate" }, *names[2] = { "os-rot", "os-norot" };
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "run -m " GGUF " --context-ids " CASE "/context_ids.npy --question-ids " CASE
                 "/question_ids.npy --mode oneshot --cr 0.7 --answer-prefix 'the' -n 1 -t 1 --dump %s %s",
                 at(names[i]), flags[i]);
        assert_int_equal(run_finch(args), 0);
    }
    assert_int_equal(compare("os-rot", "os-norot", ""), 1);
    assert_non_null(strstr(out_text, "4 agree"));
    assert_non_null(strstr(out_text, "keys: 608 values, max abs error"));
    assert_null(strstr(out_text, "keys: 608 values, max abs error 0,"));
    assert_non_null(strstr(out_text, "values: 608 values, max abs error 0,"));
    char *keys_line = strstr(out_text, "keys:");
    assert_non_null(keys_line);
    assert_true(strncmp(strchr(keys_line, '\n') - 2, "ok", 2) == 0);
    assert_non_null(strstr(out_text, "logits:"));
    assert_non_null(strstr(out_text, "OUT OF TOLERANCE"));
}

/* kvpress's single-string interface: the ids `finch run --delimiter` feeds
 * are the SentencePiece twin's (fixtures/finch/delimiter.json), and the run
 * equals one given those ids. */
static void test_delimiter(void **state) {
    (void)state;
    char *text = NULL, args[2048], path[600];
    size_t len = 0, s[8];
    assert_ok(finch_read_file("testdata/fixtures/finch/delimiter.json", &text, &len));
    cJSON *root = cJSON_Parse(text), *c;
    free(text);
    int i = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        char name[32];
        snprintf(name, sizeof name, "delim%d", i++);
        snprintf(args, sizeof args, "run -m %s --context '%s' --delimiter '%s' --budget 4 -n 1 -t 1 --dump %s",
                 cJSON_GetObjectItem(c, "model")->valuestring, cJSON_GetObjectItem(c, "text")->valuestring,
                 cJSON_GetObjectItem(c, "delimiter")->valuestring, at(name));
        assert_int_equal(run_finch(args), 0);
        const char *files[2] = { "context_ids.npy", "question_ids.npy" }, *keys[2] = { "context_ids", "question_ids" };
        for (int k = 0; k < 2; k++) {
            int32_t *ids = load(name, files[k], FINCH_NPY_I32, s);
            cJSON *want = cJSON_GetObjectItem(c, keys[k]);
            assert_int_equal(s[0], (size_t)cJSON_GetArraySize(want));
            for (size_t j = 0; j < s[0]; j++) assert_int_equal(ids[j], cJSON_GetArrayItem(want, (int)j)->valueint);
            if (i == 1) { /* the same run from the ids */
                snprintf(path, sizeof path, "%s/%s", tmp, files[k]);
                assert_ok(finch_npy_write(path, FINCH_NPY_I32, ids, s, 1));
            }
            free(ids);
        }
    }
    cJSON_Delete(root);
    snprintf(args, sizeof args, "run -m testdata/models/tiny-llama.gguf --context-ids %s/context_ids.npy "
             "--question-ids %s/question_ids.npy --budget 4 -n 1 -t 1 --dump %s", tmp, tmp, at("ids"));
    assert_int_equal(run_finch(args), 0);
    assert_int_equal(compare("delim0", "ids", "--atol 0 --rtol 0"), 0);
    assert_int_equal(run_finch("run -m " GGUF " --context 'a SEP b SEP c' --delimiter SEP --budget 1"), 2);
    assert_non_null(strstr(err_text, "--delimiter 'SEP' occurs 2 times in the text"));
    assert_int_equal(run_finch("run -m " GGUF " --context 'a SEP' --delimiter SEP --budget 1"), 2);
    assert_non_null(strstr(err_text, "the question after --delimiter 'SEP' is empty"));
    assert_int_equal(run_finch("run -m " GGUF " --context 'a SEP b' --delimiter SEP -q x --budget 1"), 2);
    assert_non_null(strstr(err_text, "--delimiter takes the question from the context text"));
}

/* The NumPy example of docs/dump-format.md writes a dump that agrees. */
static void test_doc_numpy_example(void **state) {
    (void)state;
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) SKIP_MSG("no /usr/bin/python3 with numpy");
    sh("awk '/^```python/{f=1;next}/^```/{if(f)exit}f' docs/dump-format.md > %s%s", at("example.py"), "");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s", at("example.py"), at("ref"), at("numpy"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(compare("ref", "numpy", ""), 0);
    assert_non_null(strstr(out_text, "4 agree"));
    assert_non_null(strstr(out_text, "values: 384 values, max abs error 0,"));
}

int main(void) {
    if (access(finch_bin(), X_OK) != 0) {
        fprintf(stderr, "finch binary not found at %s (set FINCH_BIN)\n", finch_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_near_tie_and_real_flip),
        cmocka_unit_test(test_keys_out_of_tolerance),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_run_dump_v1),
        cmocka_unit_test(test_no_rerotate),
        cmocka_unit_test(test_delimiter),
        cmocka_unit_test(test_doc_numpy_example),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
