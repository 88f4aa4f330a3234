/* test_fuzz_regressions.c - every input saved in tests/fuzz/regressions/
 * goes back through the parser it once broke (or slipped past), and must
 * now get a clean answer: exactly the status listed here, with a message.
 *
 * A file is named <fuzz target>-<what>.<ext>: `make fuzz-smoke` also
 * feeds it to that target under the sanitizers.  The table below says
 * which parser reads it here and what it must return.  A saved file
 * missing from the table fails the suite, so no input goes unchecked. */
#include "testutil.h"

#include "finch_eval.h"
#include "fuzz/hf_frame.h"
#include "gguf.h"
#include "llama2c.h"
#include "npy.h"
#include "safetensors.h"
#include "tokenizer.h"

#include <dirent.h>

#define REG_DIR "tests/fuzz/regressions"

typedef enum {
    P_GGUF,             /* gguf_parse                                      */
    P_MODEL,            /* finch_model_load on the file (GGUF path)        */
    P_SAFETENSORS,      /* hf_parse_safetensors                            */
    P_CONFIG,           /* hf_parse_config                                 */
    P_LLAMA2C,          /* llama2c_parse on an aligned copy                */
    P_NPY_I32,          /* finch_npy_parse asking for integers             */
    P_NPY_F32,          /* finch_npy_parse asking for floats               */
    P_TOKENIZER_GGUF,   /* gguf_parse (must succeed), finch_tokenizer_from_gguf */
    P_TOKENIZER_JSON,   /* finch_tokenizer_from_json, no config            */
    P_TOKENIZER_L2C,    /* finch_tokenizer_from_llama2c, vocab `arg`       */
    P_TIKTOKEN,         /* finch_tokenizer_from_tiktoken                   */
    P_HF_DIR,           /* the files of fuzz_hf_dir's framing, finch_model_load */
    P_EVAL_TASKS        /* finch_eval_tasks_parse                          */
} parser;

typedef struct {
    const char *file;
    parser p;
    finch_status want;
    size_t arg;
    const char *why; /* the bug the input found, for whoever reads a failure */
} regression;

static const regression cases[] = {
    { "gguf-ctx-len-zero.gguf", P_MODEL, FINCH_ERR_FORMAT, 0,
      "a model whose context length is 0 loaded (review while fuzzing)" },
    { "hf_dir-nan-in-shard.hfdir", P_HF_DIR, FINCH_ERR_FORMAT, 0,
      "a NaN weight in a shard loaded and made every logit NaN (issue 6, before the load-time scan)" },
    { "eval_tasks-trailing-text.jsonl", P_EVAL_TASKS, FINCH_ERR_FORMAT, 0,
      "text after a task's JSON object was silently ignored (cJSON_Parse stops after one value)" },
    { "eval_tasks-repeated-id.jsonl", P_EVAL_TASKS, FINCH_ERR_FORMAT, 0,
      "a repeated id was silently evaluated once, the second task dropped" },
    /* issue 11: metadata that disagrees with the tensors (tools/make_fuzz_seeds.py) */
    { "gguf-block-count-short.gguf", P_MODEL, FINCH_ERR_FORMAT, 0,
      "block_count 1 on a two-block file ran one layer (logits off by 3.3)" },
    { "gguf-extra-blk2.gguf", P_MODEL, FINCH_ERR_FORMAT, 0, "a blk.2.* tensor beyond block_count was ignored" },
    { "gguf-extra-foo.gguf", P_MODEL, FINCH_ERR_UNSUPPORTED, 0, "a tensor no one binds (foo.weight) was ignored" },
    { "gguf-ctx-len-string.gguf", P_MODEL, FINCH_ERR_FORMAT, 0,
      "a context length stored as a string fell back to the default 2048" },
    { "gguf-ctx-len-negative.gguf", P_MODEL, FINCH_ERR_FORMAT, 0, "a context length of -1 fell back to the default" },
    { "gguf-rope-base-string.gguf", P_MODEL, FINCH_ERR_FORMAT, 0,
      "a rope base stored as a string fell back to 10000" },
};

static const size_t n_cases = sizeof cases / sizeof cases[0];

/* A regression of fuzz_hf_dir: its files written into a fresh directory,
 * loaded as a model. */
static finch_status load_hf_frame(const uint8_t *data, size_t size) {
    char dir[] = "/tmp/finch-reg-hf-XXXXXX", cmd[64];
    assert_non_null(mkdtemp(dir));
    assert_true(hf_frame_write(dir, data, size));
    finch_model *m = NULL;
    finch_status st = finch_model_load(dir, &m);
    finch_model_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return st;
}

static finch_status run_case(const regression *r, const char *path, const uint8_t *data, size_t size) {
    finch_status st;
    switch (r->p) {
    case P_GGUF: {
        gguf_file g;
        st = gguf_parse(data, size, &g);
        if (st == FINCH_OK) gguf_close(&g);
        return st;
    }
    case P_MODEL: {
        finch_model *m = NULL;
        st = finch_model_load(path, &m);
        finch_model_free(m);
        return st;
    }
    case P_SAFETENSORS: {
        finch_tensor_list l = { 0 };
        st = hf_parse_safetensors(data, size, &l);
        finch_tensor_list_free(&l);
        return st;
    }
    case P_CONFIG: {
        finch_config cfg;
        return hf_parse_config((const char *)data, size, &cfg);
    }
    case P_LLAMA2C: {
        uint8_t *copy = malloc(size ? size : 1); /* aligned, as the mapping would be */
        assert_non_null(copy);
        memcpy(copy, data, size);
        llama2c_file f;
        st = llama2c_parse(copy, size, &f);
        if (st == FINCH_OK) llama2c_close(&f);
        free(copy);
        return st;
    }
    case P_NPY_I32:
    case P_NPY_F32: {
        void *out = NULL;
        size_t shape[8], ndim;
        st = finch_npy_parse(data, size, r->p == P_NPY_F32 ? FINCH_NPY_F32 : FINCH_NPY_I32, &out, shape, &ndim);
        free(out);
        return st;
    }
    case P_TOKENIZER_GGUF: {
        gguf_file g;
        assert_ok(gguf_parse(data, size, &g));
        finch_tokenizer *t = NULL;
        st = finch_tokenizer_from_gguf(&g, &t);
        finch_tokenizer_free(t);
        gguf_close(&g);
        return st;
    }
    case P_TOKENIZER_JSON:
    case P_TOKENIZER_L2C:
    case P_TIKTOKEN: {
        finch_tokenizer *t = NULL;
        st = r->p == P_TOKENIZER_JSON  ? finch_tokenizer_from_json(path, NULL, &t)
             : r->p == P_TOKENIZER_L2C ? finch_tokenizer_from_llama2c(path, r->arg, &t)
                                       : finch_tokenizer_from_tiktoken(path, &t);
        finch_tokenizer_free(t);
        return st;
    }
    case P_HF_DIR:
        return load_hf_frame(data, size);
    case P_EVAL_TASKS: {
        finch_eval_tasks t;
        st = finch_eval_tasks_parse((const char *)data, size, r->file, &t);
        finch_eval_tasks_free(&t);
        return st;
    }
    }
    return FINCH_ERR_INTERNAL;
}

static void test_each_regression(void **state) {
    (void)state;
    for (size_t i = 0; i < n_cases; i++) {
        const regression *r = &cases[i];
        char path[512];
        snprintf(path, sizeof path, REG_DIR "/%s", r->file);
        char *data = NULL;
        size_t size = 0;
        assert_ok(finch_read_file(path, &data, &size));
        finch_status st = run_case(r, path, (const uint8_t *)data, size);
        if (st != r->want)
            fail_msg("%s: got %s (%s), want %s; the input once showed: %s", r->file, finch_status_name(st),
                     finch_last_error(), finch_status_name(r->want), r->why);
        if (st != FINCH_OK && finch_last_error()[0] == 0) fail_msg("%s: error without a message", r->file);
        free(data);
    }
}

/* Every saved input is in the table (and every table entry exists, which
 * test_each_regression checks by reading it). */
static void test_every_file_listed(void **state) {
    (void)state;
    DIR *d = opendir(REG_DIR);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        bool listed = false;
        for (size_t i = 0; i < n_cases && !listed; i++) listed = strcmp(cases[i].file, e->d_name) == 0;
        if (!listed) fail_msg(REG_DIR "/%s has no entry in tests/test_fuzz_regressions.c", e->d_name);
    }
    closedir(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_regression),
        cmocka_unit_test(test_every_file_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
