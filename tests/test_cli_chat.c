/* test_cli_chat.c - --chat-template and --system as a user meets them
 * (docs/chat-templates.md): the templated context's protected prefix in
 * `finch run` (kept by every layer and head, not counted in K), the
 * generation prompt, recognition of the template an HF directory carries,
 * the refusals with their exact messages, BOS never doubled, and the same
 * options on eval and generate. */
#include "cliutil.h"

#include "finch_chat.h"

#include <limits.h>

#define TINY "testdata/models/tiny-llama.gguf"
#define CTX "Once upon a time there was a little cat. It liked to play."
#define QUESTION "What did the cat like?"

static int32_t *read_ids(const char *path, size_t *n) {
    int32_t *ids = NULL;
    size_t shape[8], nd;
    assert_int_equal(finch_npy_read(path, FINCH_NPY_I32, (void **)&ids, shape, &nd), FINCH_OK);
    *n = shape[0];
    return ids;
}

static void remove_dump(const char *dir) {
    static const char *const files[] = { "kept.npy", "keys.npy", "values.npy", "logits.npy", "context_ids.npy",
                                         "question_ids.npy", "generated.npy", "meta.json", "prompt_ids.npy" };
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* The ids `finch tokenize` gives for a text (BOS included). */
static size_t tokenize(const char *text, int32_t *ids, size_t cap) {
    char args[1024];
    snprintf(args, sizeof args, "tokenize -m " TINY " '%s'", text);
    assert_int_equal(run_finch(args), 0);
    size_t n = 0;
    for (char *p = out_text; *p && n < cap;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

/* ------------------------------------------------------------ finch run */

static void test_run_llama2_protects_head(void **state) {
    (void)state;
    char dump[] = "/tmp/finch-chat-run-XXXXXX";
    assert_non_null(mkdtemp(dump));
    rmdir(dump); /* --dump creates it */
    /* the head "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n" + the context, encoded at once */
    int32_t want[256], head[256];
    size_t n_want = tokenize("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n" CTX, want, 256);
    size_t n_head = tokenize("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n", head, 256);
    size_t P = 0;
    while (P < n_head && head[P] == want[P]) P++;
    assert_true(P >= 10);
    char args[1024];
    snprintf(args, sizeof args, "run -m " TINY " --context '" CTX "' -q '" QUESTION "' --budget 5 -n 2 "
             "--chat-template llama2-sys --system 'Be brief.' --dump %s", dump);
    assert_int_equal(run_finch(args), 0);
    char line[128];
    snprintf(line, sizeof line, "finch: chat template llama2-sys: %zu leading context tokens protected\n", P);
    assert_non_null(strstr(err_text, line));

    char path[600];
    size_t n;
    snprintf(path, sizeof path, "%s/context_ids.npy", dump);
    int32_t *ctx = read_ids(path, &n);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_int_equal(ctx[i], want[i]);
    assert_int_equal(ctx[0], 1);
    assert_true(ctx[1] != 1); /* one BOS */
    free(ctx);
    /* every layer and head keeps 0..P-1, then the K = 5 best */
    snprintf(path, sizeof path, "%s/kept.npy", dump);
    int32_t *kept = NULL;
    size_t shape[8], nd;
    assert_int_equal(finch_npy_read(path, FINCH_NPY_I32, (void **)&kept, shape, &nd), FINCH_OK);
    assert_int_equal(nd, 3);
    assert_int_equal(shape[2], P + 5);
    for (size_t lg = 0; lg < shape[0] * shape[1]; lg++)
        for (size_t r = 0; r < P + 5; r++)
            if (r < P) assert_int_equal(kept[lg * (P + 5) + r], r);
            else assert_true(kept[lg * (P + 5) + r] >= (int32_t)P);
    free(kept);
    snprintf(path, sizeof path, "%s/meta.json", dump);
    slurp(path, out_text, sizeof out_text);
    assert_non_null(strstr(out_text, "\"chat_template\":\t\"llama2-sys\""));
    snprintf(line, sizeof line, "\"protect\":\t%zu,", P);
    assert_non_null(strstr(out_text, line));
    assert_non_null(strstr(out_text, "\"K\":\t5,"));
    remove_dump(dump);
}

/* The generation prompt is the question, then the tail " [/INST]" and the
 * answer prefix encoded as its continuation: the prompt's ids follow the
 * kept positions, so the answer's logits depend on them; checked through
 * oneshot, whose prompt is the tail alone. */
static void test_run_prompt_and_refusals(void **state) {
    (void)state;
    assert_int_equal(run_finch("run -m " TINY " --context '" CTX "' -q '" QUESTION "' --budget 5 -n 2 "
                               "--chat-template chatml --mode oneshot --json"), 0);
    finch_model *m;
    assert_int_equal(finch_model_load(TINY, &m), FINCH_OK);
    static const char tail[] = "<|im_end|>\n<|im_start|>assistant\n";
    int32_t *ids;
    size_t n;
    assert_int_equal(finch_tokenize_ex(m->tokenizer, tail, strlen(tail), 0, 1, &ids, &n), FINCH_OK);
    free(ids);
    finch_model_free(m);
    char want[64];
    snprintf(want, sizeof want, "\"n_prompt\":\t%zu,", n); /* oneshot: the tail alone */
    assert_non_null(strstr(out_text, want));

    assert_int_equal(run_finch("run -m " TINY " --context x -q y --budget 5 --chat-template llama5"), 2);
    assert_one_line_error();
    assert_non_null(strstr(err_text, "--chat-template: unknown chat template 'llama5' (auto, none, llama2,"));
    assert_int_equal(run_finch("run -m " TINY " --context x -q y --budget 5 --system hi"), 2);
    assert_string_equal(err_text, "finch: error: --system needs a chat template: the model carries none "
                                  "(give --chat-template NAME)\n");
    assert_int_equal(run_finch("run -m " TINY " --context x -q y --budget 5 --system hi --chat-template none"), 2);
    assert_string_equal(err_text, "finch: error: --system needs a chat template, not --chat-template none\n");
    assert_int_equal(run_finch("run -m " TINY " --context-ids testdata/fixtures/finch/llama-it-keep-all/context_ids.npy "
                               "-q y --budget 5 --chat-template chatml"), 2);
    assert_string_equal(err_text, "finch: error: --chat-template chatml needs the context and the question as text, "
                                  "not token ids (or give --chat-template none)\n");
    /* a head that leaves nothing: the context is empty */
    assert_int_equal(run_finch("run -m " TINY " --context ' ' -q y --budget 5 --chat-template llama3"), 2);
    assert_string_equal(err_text, "finch: error: the context is empty\n");
}

/* A context that begins with the BOS text gets no second BOS. */
static void test_bos_never_doubled(void **state) {
    (void)state;
    char dump[] = "/tmp/finch-chat-bos-XXXXXX";
    assert_non_null(mkdtemp(dump));
    rmdir(dump);
    char args[1024], path[600];
    snprintf(args, sizeof args, "run -m " TINY " --context '<s>" CTX "' -q '" QUESTION "' --budget 5 -n 1 --dump %s",
             dump);
    assert_int_equal(run_finch(args), 0);
    size_t n;
    snprintf(path, sizeof path, "%s/context_ids.npy", dump);
    int32_t *ctx = read_ids(path, &n);
    int32_t want[256];
    size_t n_want = tokenize(CTX, want, 256);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_int_equal(ctx[i], want[i]);
    free(ctx);
    remove_dump(dump);
}

/* ------------------------------------------- a template the model carries */

/* tiny-hf-llama with tokenizer_config.json carrying `tmpl` (JSON text). */
static void hf_with_template(char *dir, size_t cap, const char *tmpl_json) {
    test_make_tmpdir(dir, cap, "finch-chat-hf");
    char src[PATH_MAX], from[PATH_MAX + 64], to[600];
    assert_non_null(realpath("testdata/models/tiny-hf-llama", src));
    static const char *const links[] = { "config.json", "model.safetensors", "tokenizer.json" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/%s", src, links[i]);
        snprintf(to, sizeof to, "%s/%s", dir, links[i]);
        assert_int_equal(symlink(from, to), 0);
    }
    snprintf(to, sizeof to, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(to, "w");
    assert_non_null(f);
    fprintf(f, "{\"add_bos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"chat_template\": %s}\n",
            tmpl_json);
    fclose(f);
}

static void test_model_template_auto(void **state) {
    (void)state;
    char dir[128], args[1024];
    hf_with_template(dir, sizeof dir, "\"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\\\n' + "
                                      "message['content'] + '<|im_end|>' + '\\\\n'}}{% endfor %}\"");
    snprintf(args, sizeof args, "run -m %s --context '" CTX "' -q '" QUESTION "' --budget 5 -n 1", dir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(err_text, "finch: chat template chatml (recognised from the model): "));
    snprintf(args, sizeof args, "info -m %s", dir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(out_text, "\nchat template: chatml\n"));
    snprintf(args, sizeof args, "run -m %s --context '" CTX "' -q '" QUESTION "' --budget 5 -n 1 --chat-template none", dir);
    assert_int_equal(run_finch(args), 0);
    assert_null(strstr(err_text, "chat template"));
    test_remove_tmpdir(dir);

    hf_with_template(dir, sizeof dir, "\"{{ messages[0]['content'] }}\"");
    snprintf(args, sizeof args, "run -m %s --context '" CTX "' -q '" QUESTION "' --budget 5 -n 1", dir);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: the model's chat template is not recognised "
                                  "(give --chat-template NAME or none)\n");
    snprintf(args, sizeof args, "run -m %s --context '" CTX "' -q '" QUESTION "' --budget 5 -n 1 --chat-template gemma", dir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(err_text, "finch: chat template gemma: "));
    /* token ids under auto: no template, no refusal */
    snprintf(args, sizeof args, "run -m %s --context-ids testdata/fixtures/finch/llama-it-keep-all/context_ids.npy "
             "--question-ids testdata/fixtures/finch/llama-it-keep-all/question_ids.npy --budget 5 -n 1", dir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(err_text, "finch: note: token ids given: the model's chat template is not applied\n"));
    test_remove_tmpdir(dir);

    hf_with_template(dir, sizeof dir, "\"{{ '<|im_start|>' + role + '<|im_sep|>' }}\"");
    snprintf(args, sizeof args, "generate -m %s -p hi -n 1", dir);
    assert_int_equal(run_finch(args), 2);
    assert_string_equal(err_text, "finch: error: the model's chat template is phi4, which finch does not build in "
                                  "(give --chat-template NAME or none)\n");
    test_remove_tmpdir(dir);
}

/* ------------------------------------------------------ generate and eval */

static void test_generate_prompt(void **state) {
    (void)state;
    char dump[] = "/tmp/finch-chat-gen-XXXXXX";
    assert_non_null(mkdtemp(dump));
    rmdir(dump);
    char args[512], path[600];
    snprintf(args, sizeof args, "generate -m " TINY " -p 'Hello there' -n 1 --chat-template phi3 --dump %s", dump);
    assert_int_equal(run_finch(args), 0);
    size_t n;
    snprintf(path, sizeof path, "%s/prompt_ids.npy", dump);
    int32_t *ids = read_ids(path, &n);
    int32_t want[256];
    size_t n_want = tokenize("<|user|>\nHello there<|end|>\n<|assistant|>\n", want, 256);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
    remove_dump(dump);
}

static void test_eval_with_template(void **state) {
    (void)state;
    char dir[128], task[256], args[1024];
    test_make_tmpdir(dir, sizeof dir, "finch-chat-eval");
    snprintf(task, sizeof task, "%s/task.jsonl", dir);
    FILE *f = fopen(task, "w");
    fprintf(f, "{\"id\": \"a\", \"context\": \"" CTX " The cat was red.\", \"question\": \"" QUESTION "\", "
               "\"answers\": [\"play\"]}\n");
    fclose(f);
    snprintf(args, sizeof args, "eval -m " TINY " --task %s --out %s/out --press finch,streaming --ratio 2 -n 2 "
             "--chat-template llama3 --system 'Be brief.' --json", task, dir);
    assert_int_equal(run_finch(args), 0);
    assert_non_null(strstr(err_text, "finch eval: chat template llama3\n"));
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    assert_int_equal(system(args), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_llama2_protects_head),
        cmocka_unit_test(test_run_prompt_and_refusals),
        cmocka_unit_test(test_bos_never_doubled),
        cmocka_unit_test(test_model_template_auto),
        cmocka_unit_test(test_generate_prompt),
        cmocka_unit_test(test_eval_with_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
