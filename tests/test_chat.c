/* test_chat.c - the built-in chat formats (src/chat_template.c,
 * include/finch_chat.h, docs/chat-templates.md):
 *
 *   1. every template text of llama.cpp's template tests is recognised as
 *      the right format, and the conversation of those tests renders to
 *      exactly the expected string (tests/chat_vectors.h);
 *   2. formats finch does not build in are refused by name, unknown
 *      template texts with one fixed message;
 *   3. Finch's split: head + user text + tail is the rendered conversation;
 *      exact heads and tails of the formats;
 *   4. the template text a tokenizer carries (GGUF and tokenizer_config). */
#include "testutil.h"

#include "chat_vectors.h"
#include "finch_chat.h"
#include "gguf.h"
#include "tokenizer.h"
#include "util.h"

#define N_VECTORS (sizeof chat_vectors / sizeof chat_vectors[0])

/* The conversation of llama.cpp's template tests. */
static const finch_chat_message conversation[] = {
    { "system", "You are a helpful assistant" },
    { "user", "Hello" },
    { "assistant", "Hi there" },
    { "user", "Who are you" },
    { "assistant", "   I am an assistant   " },
    { "user", "Another question" },
};
#define N_TURNS (sizeof conversation / sizeof conversation[0])

static char *render(finch_chat_format f) {
    char *out = NULL;
    assert_int_equal(finch_chat_render(f, conversation, N_TURNS, 1, &out), FINCH_OK);
    return out;
}

/* ------------------------------------------------- 1. detection, rendering */

static void test_vectors_detect_and_render(void **state) {
    (void)state;
    size_t n_builtin = 0;
    for (size_t i = 0; i < N_VECTORS; i++) {
        const chat_vector *v = &chat_vectors[i];
        if (v->format[0] == '!') continue;
        finch_chat_format f;
        if (finch_chat_detect(v->tmpl, &f) != FINCH_OK) fail_msg("%s: %s", v->name, finch_last_error());
        if (strcmp(finch_chat_format_name(f), v->format))
            fail_msg("%s: recognised as %s, expected %s", v->name, finch_chat_format_name(f), v->format);
        char *out = render(f);
        if (strcmp(out, v->expected)) fail_msg("%s: rendered\n%s\nexpected\n%s", v->name, out, v->expected);
        free(out);
        n_builtin++;
    }
    assert_int_equal(n_builtin, 14);
}

/* Formats without a vector in llama.cpp's list, written out by hand from
 * the same rules: v7-tekken drops the spaces after the markers; llama2-sys
 * wraps the system text in <<SYS>>. */
static void test_render_other_formats(void **state) {
    (void)state;
    char *out = render(FINCH_CHAT_MISTRAL_V7_TEKKEN);
    assert_string_equal(out, "[SYSTEM_PROMPT]You are a helpful assistant[/SYSTEM_PROMPT][INST]Hello[/INST]Hi there</s>"
                             "[INST]Who are you[/INST]   I am an assistant   </s>[INST]Another question[/INST]");
    free(out);
    out = render(FINCH_CHAT_LLAMA2_SYS);
    assert_string_equal(out, "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
                             "[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]");
    free(out);
    /* without add_assistant the chatml conversation ends with the user turn */
    finch_chat_message one = { "user", "Hi" };
    assert_int_equal(finch_chat_render(FINCH_CHAT_CHATML, &one, 1, 0, &out), FINCH_OK);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n");
    free(out);
}

static void test_render_refuses(void **state) {
    (void)state;
    char *out = (char *)1;
    finch_chat_message bad = { "tool", "x" };
    assert_int_equal(finch_chat_render(FINCH_CHAT_CHATML, &bad, 1, 1, &out), FINCH_ERR_ARG);
    assert_null(out);
    assert_string_equal(finch_last_error(), "chat message 0: role 'tool' is not system, user or assistant");
    assert_int_equal(finch_chat_render(FINCH_CHAT_NONE, conversation, 1, 1, &out), FINCH_ERR_ARG);
}

/* Real models' templates (the markers that matter, as the model cards
 * ship them) and a template given by its name. */
static void test_detect_real_templates(void **state) {
    (void)state;
    static const struct { const char *tmpl, *want; } cases[] = {
        /* Llama 2 chat: <<SYS>>, bos_token + '[INST] ', content.strip() */
        { "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
          "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
          "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}",
          "llama2-sys-strip" },
        /* Llama 3.1 */
        { "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}", "llama3" },
        /* Llama 3.1 - 3.3: the knowledge and date lines */
        { "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Cutting Knowledge Date: December 2023\\n' }}"
          "{{- 'Today Date: ' + date_string + '\\n\\n' }}{{- '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' }}", "llama3.1" },
        /* Qwen2.5: a default system turn */
        { "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
          "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
          "helpful assistant.<|im_end|>\\n' }}{%- endif %}", "qwen2.5" },
        /* Qwen3 */
        { "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
          "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
          "{%- endif %}", "chatml" },
        /* Gemma 2 / 3 */
        { "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | "
          "trim + '<end_of_turn>\\n' }}{% endfor %}", "gemma" },
        /* Mistral Small 3.x: the v7 markers without spaces (llama.cpp says v7) */
        { "{{- bos_token }}{%- if system_message %}{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
          "{%- endif %}{{- '[INST]' + message['content'] + '[/INST]' }}", "mistral-v7-tekken" },
        { "mistral-v7-tekken", "mistral-v7-tekken" },
        { "phi3", "phi3" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        finch_chat_format f;
        assert_int_equal(finch_chat_detect(cases[i].tmpl, &f), FINCH_OK);
        assert_string_equal(finch_chat_format_name(f), cases[i].want);
    }
}

/* ------------------------------------------------------------ 2. refusals */

static void test_detect_foreign_and_unknown(void **state) {
    (void)state;
    char want[256];
    for (size_t i = 0; i < N_VECTORS; i++) {
        const chat_vector *v = &chat_vectors[i];
        if (v->format[0] != '!') continue;
        finch_chat_format f = FINCH_CHAT_LLAMA3;
        assert_int_equal(finch_chat_detect(v->tmpl, &f), FINCH_ERR_UNSUPPORTED);
        assert_int_equal(f, FINCH_CHAT_NONE);
        snprintf(want, sizeof want, "the model's chat template is %s, which finch does not build in "
                 "(give --chat-template NAME or none)", v->format + 1);
        assert_string_equal(finch_last_error(), want);
    }
    finch_chat_format f;
    assert_int_equal(finch_chat_detect("<|im_start|>{{ role }}<|im_sep|>", &f), FINCH_ERR_UNSUPPORTED);
    assert_string_equal(finch_last_error(), "the model's chat template is phi4, which finch does not build in "
                                            "(give --chat-template NAME or none)");
    assert_int_equal(finch_chat_detect("{% for m in messages %}{{ m['content'] }}{% endfor %}", &f),
                     FINCH_ERR_UNSUPPORTED);
    assert_string_equal(finch_last_error(),
                        "the model's chat template is not recognised (give --chat-template NAME or none)");
    assert_int_equal(finch_chat_detect("", &f), FINCH_ERR_UNSUPPORTED);
    assert_string_equal(finch_last_error(), "the chat template is empty");
}

static void test_names(void **state) {
    (void)state;
    for (int i = 0; i < FINCH_CHAT_COUNT; i++) {
        finch_chat_format f;
        assert_int_equal(finch_chat_format_parse(finch_chat_format_name((finch_chat_format)i), &f), FINCH_OK);
        assert_int_equal(f, i);
    }
    finch_chat_format f;
    assert_int_equal(finch_chat_format_parse("llama4", &f), FINCH_ERR_ARG);
    assert_string_equal(finch_last_error(),
                        "unknown chat template 'llama4' (auto, none, llama2, llama2-sys, llama2-sys-bos, "
                        "llama2-sys-strip, llama3, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, "
                        "mistral-v7-tekken, chatml, qwen2.5, gemma, phi3, llama3.1)");
}

/* ----------------------------------------------------------------- 3. split */

static void split(finch_chat_format f, const char *system, const char *head, const char *tail) {
    char *h, *t;
    assert_int_equal(finch_chat_split(f, system, &h, &t), FINCH_OK);
    assert_string_equal(h, head);
    assert_string_equal(t, tail);
    free(h);
    free(t);
}

static void test_split_exact(void **state) {
    (void)state;
    split(FINCH_CHAT_LLAMA3, NULL, "<|start_header_id|>user<|end_header_id|>\n\n",
          "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    split(FINCH_CHAT_LLAMA3, "Be brief.",
          "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
          "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    split(FINCH_CHAT_CHATML, "", "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n");
    split(FINCH_CHAT_QWEN25, NULL,
          "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
          "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n");
    split(FINCH_CHAT_QWEN25, "Be brief.", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n",
          "<|im_end|>\n<|im_start|>assistant\n");
    split(FINCH_CHAT_LLAMA31, NULL,
          "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024"
          "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
          "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    split(FINCH_CHAT_LLAMA31, " Be brief. ",
          "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024"
          "\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
          "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    split(FINCH_CHAT_GEMMA, "Be brief.", "<start_of_turn>user\nBe brief.\n\n", "<end_of_turn>\n<start_of_turn>model\n");
    split(FINCH_CHAT_PHI3, NULL, "<|user|>\n", "<|end|>\n<|assistant|>\n");
    split(FINCH_CHAT_LLAMA2_SYS_STRIP, "Be brief.", "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n", " [/INST]");
    split(FINCH_CHAT_LLAMA2, NULL, "[INST] ", " [/INST]");
    split(FINCH_CHAT_MISTRAL_V1, "S", " [INST] S\n\n", " [/INST]");
    split(FINCH_CHAT_MISTRAL_V3, NULL, "[INST] ", "[/INST]");
    split(FINCH_CHAT_MISTRAL_V3_TEKKEN, NULL, "[INST]", "[/INST]");
    split(FINCH_CHAT_MISTRAL_V7, "S", "[SYSTEM_PROMPT] S[/SYSTEM_PROMPT][INST] ", "[/INST]");
}

/* head + text + tail equals the rendering of [system, user: text] for
 * every format (text without white space at its ends, which the trimming
 * formats would remove). */
static void test_split_is_render(void **state) {
    (void)state;
    const char *text = "The context. The question?";
    for (int f = 1; f < FINCH_CHAT_COUNT; f++)
        for (int with_sys = 0; with_sys < 2; with_sys++) {
            finch_chat_message m[2] = { { "system", "Be brief." }, { "user", text } };
            char *all, *h, *t;
            assert_int_equal(finch_chat_render((finch_chat_format)f, with_sys ? m : m + 1, with_sys ? 2 : 1, 1, &all),
                             FINCH_OK);
            assert_int_equal(finch_chat_split((finch_chat_format)f, with_sys ? "Be brief." : NULL, &h, &t), FINCH_OK);
            char joined[512];
            snprintf(joined, sizeof joined, "%s%s%s", h, text, t);
            if (strcmp(joined, all))
                fail_msg("%s: split gives %s, render gives %s", finch_chat_format_name((finch_chat_format)f), joined, all);
            free(all); free(h); free(t);
        }
    assert_true(finch_chat_trims_content(FINCH_CHAT_LLAMA3));
    assert_true(finch_chat_trims_content(FINCH_CHAT_GEMMA));
    assert_false(finch_chat_trims_content(FINCH_CHAT_CHATML));
}

/* ------------------------------------------------- 4. the tokenizer's text */

static void test_tokenizer_carries_template(void **state) {
    (void)state;
    char dir[] = "/tmp/finch-chat-XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* a GGUF of the tiny model's tokenizer with a chat template added */
    finch_model *m;
    assert_int_equal(finch_model_load(test_data("models/tiny-llama.gguf"), &m), FINCH_OK);
    assert_null(finch_tokenizer_chat_template(m->tokenizer));
    gguf_writer *w;
    assert_int_equal(gguf_writer_new(&w), FINCH_OK);
    assert_int_equal(gguf_set_str(w, "general.architecture", "llama"), FINCH_OK);
    assert_int_equal(finch_tokenizer_to_gguf(m->tokenizer, w), FINCH_OK);
    assert_int_equal(gguf_set_str(w, "tokenizer.chat_template", "{{ '<|im_start|>' }}"), FINCH_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/tok.gguf", dir);
    assert_int_equal(gguf_write_file(w, path), FINCH_OK);
    gguf_writer_free(w);
    gguf_file g;
    assert_int_equal(gguf_open(path, &g), FINCH_OK);
    finch_tokenizer *t;
    assert_int_equal(finch_tokenizer_from_gguf(&g, &t), FINCH_OK);
    assert_string_equal(finch_tokenizer_chat_template(t), "{{ '<|im_start|>' }}");
    /* written back by finch_tokenizer_to_gguf (convert keeps it) */
    assert_int_equal(gguf_writer_new(&w), FINCH_OK);
    assert_int_equal(finch_tokenizer_to_gguf(t, w), FINCH_OK);
    gguf_writer_free(w);
    finch_tokenizer_free(t);
    gguf_close(&g);
    remove(path);
    rmdir(dir);
    finch_model_free(m);
}

/* tokenizer_config.json: a string, a list with "default", or neither. */
static void test_tokenizer_config_template(void **state) {
    (void)state;
    const char *src = test_data("models/tiny-hf-llama/tokenizer.json");
    static const struct { const char *json, *want, *err; } cases[] = {
        { "{\"chat_template\": \"{{ '[INST]' }}\"}", "{{ '[INST]' }}", NULL },
        { "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", "
          "\"template\": \"D\"}]}", "D", NULL },
        { "{\"chat_template\": null}", NULL, NULL },
        { "{\"chat_template\": 7}", NULL, "tokenizer_config chat_template is neither a string nor a list with a "
                                          "\"default\" template" },
    };
    char path[] = "/tmp/finch-chat-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].json, f);
        fclose(f);
        finch_tokenizer *t = NULL;
        finch_status st = finch_tokenizer_from_json(src, path, &t);
        if (cases[i].err) {
            assert_int_equal(st, FINCH_ERR_FORMAT);
            assert_non_null(strstr(finch_last_error(), cases[i].err));
            continue;
        }
        assert_int_equal(st, FINCH_OK);
        if (cases[i].want) assert_string_equal(finch_tokenizer_chat_template(t), cases[i].want);
        else assert_null(finch_tokenizer_chat_template(t));
        finch_tokenizer_free(t);
    }
    remove(path);
}

/* A real model's tokenizer_config.json (Qwen3, in ../shared/assets). */
static void test_qwen3_config_is_chatml(void **state) {
    (void)state;
    char json[4096], cfg[4096];
    const char *p = test_asset("tokenizers/qwen3/tokenizer.json");
    if (!p) SKIP_MSG("assets: tokenizers/qwen3 not found");
    snprintf(json, sizeof json, "%s", p);
    snprintf(cfg, sizeof cfg, "%s", test_asset("tokenizers/qwen3/tokenizer_config.json"));
    finch_tokenizer *t;
    assert_int_equal(finch_tokenizer_from_json(json, cfg, &t), FINCH_OK);
    finch_chat_format f;
    assert_non_null(finch_tokenizer_chat_template(t));
    assert_int_equal(finch_chat_detect(finch_tokenizer_chat_template(t), &f), FINCH_OK);
    assert_int_equal(f, FINCH_CHAT_CHATML);
    /* the head and tail encode to Qwen's special tokens, one id each */
    int32_t *ids;
    size_t n;
    static const char tail[] = "<|im_end|>\n<|im_start|>assistant\n";
    assert_int_equal(finch_tokenize_ex(t, tail, strlen(tail), 0, 1, &ids, &n), FINCH_OK);
    assert_int_equal(n, 5); /* <|im_end|> \n <|im_start|> assistant \n */
    free(ids);
    finch_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_detect_and_render),
        cmocka_unit_test(test_render_other_formats),
        cmocka_unit_test(test_render_refuses),
        cmocka_unit_test(test_detect_real_templates),
        cmocka_unit_test(test_detect_foreign_and_unknown),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_split_exact),
        cmocka_unit_test(test_split_is_render),
        cmocka_unit_test(test_tokenizer_carries_template),
        cmocka_unit_test(test_tokenizer_config_template),
        cmocka_unit_test(test_qwen3_config_is_chatml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
