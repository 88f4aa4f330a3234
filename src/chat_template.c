/* chat_template.c - the built-in chat formats (include/finch_chat.h):
 *
 *   1. names
 *   2. recognising a model's template text by its markers
 *   3. rendering a conversation
 *   4. Finch's split: the text before and after the user's words
 *
 * The markers and the rendered strings are facts about the models (and
 * about llama.cpp's built-in renderers, whose tests list the expected
 * strings); docs/chat-templates.md states the rules. */
#include "finch_chat.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ================================================================ 1. names */

static const char *const format_names[FINCH_CHAT_COUNT] = {
    "none",       "llama2",     "llama2-sys",        "llama2-sys-bos", "llama2-sys-strip",
    "llama3",     "mistral-v1", "mistral-v3",        "mistral-v3-tekken",
    "mistral-v7", "mistral-v7-tekken", "chatml",     "gemma",          "phi3",
    "llama3.1",   "qwen2.5",
};

const char *finch_chat_format_name(finch_chat_format f) {
    return (unsigned)f < FINCH_CHAT_COUNT ? format_names[f] : "unknown";
}

const char *finch_chat_format_list(void) {
    return "llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, llama3, mistral-v1, mistral-v3, "
           "mistral-v3-tekken, mistral-v7, mistral-v7-tekken, chatml, qwen2.5, gemma, phi3, llama3.1";
}

finch_status finch_chat_format_parse(const char *name, finch_chat_format *out) {
    for (unsigned i = 0; name && i < FINCH_CHAT_COUNT; i++)
        if (!strcmp(name, format_names[i])) {
            *out = (finch_chat_format)i;
            return FINCH_OK;
        }
    return finch_fail(FINCH_ERR_ARG, "unknown chat template '%s' (auto, none, %s)", name ? name : "",
                      finch_chat_format_list());
}

/* ========================================================== 2. recognising */

/* What the markers say: a built-in format, or the name of a format finch
 * does not build in (format NONE), or nothing (both empty). */
typedef struct {
    finch_chat_format format;
    const char *foreign; /* llama.cpp's name of a format not built in */
} detected;

static int has(const char *t, const char *s) { return strstr(t, s) != NULL; }

static detected builtin(finch_chat_format f) { return (detected){ f, NULL }; }
static detected foreign(const char *name) { return (detected){ FINCH_CHAT_NONE, name }; }

/* Qwen2.5's system turn when the conversation has none. */
static const char QWEN25_SYSTEM[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/* <|im_start|>: chatml, unless Phi-4's <|im_sep|> or SmolVLM's turn end. */
static detected detect_im_start(const char *t) {
    if (has(t, "<|im_sep|>")) return foreign("phi4");
    if (has(t, "<end_of_utterance>")) return foreign("smolvlm");
    return builtin(has(t, QWEN25_SYSTEM) ? FINCH_CHAT_QWEN25 : FINCH_CHAT_CHATML);
}

/* [INST]: Mistral's official templates carry a system-message or tools
 * marker; the rest are Llama 2 and its variants. */
static detected detect_inst(const char *t) {
    /* llama.cpp takes every [SYSTEM_PROMPT] template as v7; the tekken ones
     * (Mistral Small 3.x, Devstral, Ministral 3) write the markers with no
     * space after them, and rendering them with spaces would mis-prompt. */
    if (has(t, "[SYSTEM_PROMPT]"))
        return builtin(has(t, "[SYSTEM_PROMPT] ") || has(t, "[INST] ") ? FINCH_CHAT_MISTRAL_V7
                                                                       : FINCH_CHAT_MISTRAL_V7_TEKKEN);
    if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
        if (has(t, " [INST]")) return builtin(FINCH_CHAT_MISTRAL_V1);
        if (has(t, "\"[INST]\"")) return builtin(FINCH_CHAT_MISTRAL_V3_TEKKEN);
        return builtin(FINCH_CHAT_MISTRAL_V3);
    }
    if (has(t, "content.strip()")) return builtin(FINCH_CHAT_LLAMA2_SYS_STRIP);
    if (has(t, "bos_token + '[INST]")) return builtin(FINCH_CHAT_LLAMA2_SYS_BOS);
    if (has(t, "<<SYS>>")) return builtin(FINCH_CHAT_LLAMA2_SYS);
    return builtin(FINCH_CHAT_LLAMA2);
}

/* <|assistant|> and <|user|> without <|end|>: three formats not built in. */
static detected detect_user_assistant(const char *t) {
    if (has(t, "<|tool_declare|>")) return foreign("exaone-moe");
    return foreign(has(t, "</s>") ? "falcon3" : "glmedge");
}

/* The markers in the order llama.cpp tests them: a template carrying the
 * markers of two formats is taken as the first one, as llama.cpp does. */
static detected detect(const char *t) {
    if (has(t, "<|im_start|>")) return detect_im_start(t);
    if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]")) return detect_inst(t);
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return builtin(FINCH_CHAT_PHI3);
    if (has(t, "[gMASK]<sop>")) return foreign("chatglm4");
    if (has(t, "<|assistant|>") && has(t, "<|user|>")) return detect_user_assistant(t);
    if (has(t, "<|{{ item['role'] }}|>") && has(t, "<|begin_of_image|>")) return foreign("glmedge");
    if (has(t, "<|user|>") && has(t, "<|endoftext|>")) return foreign("zephyr");
    if (has(t, "bos_token + message['role']")) return foreign("monarch");
    if (has(t, "<start_of_turn>")) return builtin(FINCH_CHAT_GEMMA);
    if (has(t, "'\\n\\nAssistant: ' + eos_token")) return foreign("orion");
    if (has(t, "GPT4 Correct ")) return foreign("openchat");
    if (has(t, "USER: ") && has(t, "ASSISTANT: ")) return foreign(has(t, "SYSTEM: ") ? "vicuna-orca" : "vicuna");
    if (has(t, "### Instruction:") && has(t, "<|EOT|>")) return foreign("deepseek");
    if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>")) return foreign("command-r");
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
        return builtin(has(t, "Cutting Knowledge Date: December 2023") && has(t, "Today Date: ") ? FINCH_CHAT_LLAMA31
                                                                                             : FINCH_CHAT_LLAMA3);
    return foreign(NULL);
}

finch_status finch_chat_detect(const char *tmpl, finch_chat_format *out) {
    *out = FINCH_CHAT_NONE;
    if (!tmpl || !*tmpl) return finch_fail(FINCH_ERR_UNSUPPORTED, "the chat template is empty");
    for (unsigned i = 1; i < FINCH_CHAT_COUNT; i++) /* a template given by its name */
        if (!strcmp(tmpl, format_names[i])) {
            *out = (finch_chat_format)i;
            return FINCH_OK;
        }
    detected d = detect(tmpl);
    if (d.format != FINCH_CHAT_NONE) {
        *out = d.format;
        return FINCH_OK;
    }
    if (d.foreign)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "the model's chat template is %s, which finch does not build in "
                          "(give --chat-template NAME or none)", d.foreign);
    return finch_fail(FINCH_ERR_UNSUPPORTED, "the model's chat template is not recognised "
                      "(give --chat-template NAME or none)");
}

/* =========================================================== 3. rendering */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} text_buf;

static void put_n(text_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = 2 * (b->len + n + 1) + 64;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void put(text_buf *b, const char *s) { put_n(b, s, strlen(s)); }

static int is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* s without the ASCII white space at both ends (what the templates' trim
 * and strip() remove from these texts). */
static void put_trimmed(text_buf *b, const char *s) {
    size_t n = strlen(s);
    while (n && is_ascii_space(*s)) s++, n--;
    while (n && is_ascii_space(s[n - 1])) n--;
    put_n(b, s, n);
}

static int role_is(const finch_chat_message *m, const char *r) { return !strcmp(m->role, r); }

static void render_chatml(text_buf *b, finch_chat_format f, const finch_chat_message *m, size_t n, int add_ass) {
    if (f == FINCH_CHAT_QWEN25 && (n == 0 || !role_is(&m[0], "system")))
        { put(b, "<|im_start|>system\n"); put(b, QWEN25_SYSTEM); put(b, "<|im_end|>\n"); }
    for (size_t i = 0; i < n; i++) {
        put(b, "<|im_start|>"); put(b, m[i].role); put(b, "\n"); put(b, m[i].content); put(b, "<|im_end|>\n");
    }
    if (add_ass) put(b, "<|im_start|>assistant\n");
}

/* Llama 3.1-3.3 always open with a system turn: two lines of their own,
 * then the system text (trimmed) when the conversation starts with one.
 * The date is the templates' own fallback, so runs do not depend on the
 * day they are made (Hugging Face renders today's date for 3.2 and 3.3). */
static size_t llama31_system(text_buf *b, const finch_chat_message *m, size_t n) {
    put(b, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
           "Today Date: 26 Jul 2024\n\n");
    int sys = n > 0 && role_is(&m[0], "system");
    if (sys) put_trimmed(b, m[0].content);
    put(b, "<|eot_id|>");
    return sys ? 1 : 0;
}

static void render_llama3(text_buf *b, finch_chat_format f, const finch_chat_message *m, size_t n, int add_ass) {
    for (size_t i = f == FINCH_CHAT_LLAMA31 ? llama31_system(b, m, n) : 0; i < n; i++) {
        put(b, "<|start_header_id|>"); put(b, m[i].role); put(b, "<|end_header_id|>\n\n");
        put_trimmed(b, m[i].content);
        put(b, "<|eot_id|>");
    }
    if (add_ass) put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_phi3(text_buf *b, const finch_chat_message *m, size_t n, int add_ass) {
    for (size_t i = 0; i < n; i++) {
        put(b, "<|"); put(b, m[i].role); put(b, "|>\n"); put(b, m[i].content); put(b, "<|end|>\n");
    }
    if (add_ass) put(b, "<|assistant|>\n");
}

/* Gemma has no system turn: the system text opens the next user turn. */
static void render_gemma(text_buf *b, const finch_chat_message *m, size_t n, int add_ass) {
    text_buf sys = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "system")) { put_trimmed(&sys, m[i].content); continue; }
        int model = role_is(&m[i], "assistant");
        put(b, "<start_of_turn>"); put(b, model ? "model" : m[i].role); put(b, "\n");
        if (sys.len && !model) {
            put(b, sys.s); put(b, "\n\n");
            sys.len = 0;
        }
        put_trimmed(b, m[i].content);
        put(b, "<end_of_turn>\n");
    }
    if (sys.oom) b->oom = 1;
    free(sys.s);
    if (add_ass) put(b, "<start_of_turn>model\n");
}

/* v7: a system turn of its own; v7-tekken drops the spaces after markers. */
static void render_mistral_v7(text_buf *b, finch_chat_format f, const finch_chat_message *m, size_t n) {
    const char *sp = f == FINCH_CHAT_MISTRAL_V7 ? " " : "";
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "system")) {
            put(b, "[SYSTEM_PROMPT]"); put(b, sp); put(b, m[i].content); put(b, "[/SYSTEM_PROMPT]");
        } else if (role_is(&m[i], "user")) {
            put(b, "[INST]"); put(b, sp); put(b, m[i].content); put(b, "[/INST]");
        } else {
            put(b, sp); put(b, m[i].content); put(b, "</s>");
        }
    }
}

/* v1, v3, v3-tekken: the system text opens the user's [INST] block. */
static void render_mistral(text_buf *b, finch_chat_format f, const finch_chat_message *m, size_t n) {
    const char *lead = f == FINCH_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = f == FINCH_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    int in_turn = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            put(b, lead); put(b, "[INST]"); put(b, trail);
            in_turn = 1;
        }
        if (role_is(&m[i], "system")) {
            put(b, m[i].content); put(b, "\n\n");
        } else if (role_is(&m[i], "user")) {
            put(b, m[i].content); put(b, lead); put(b, "[/INST]");
        } else {
            put(b, trail);
            if (f == FINCH_CHAT_MISTRAL_V3) put_trimmed(b, m[i].content);
            else put(b, m[i].content);
            put(b, "</s>");
            in_turn = 0;
        }
    }
}

/* Llama 2: the first [INST] follows the tokenizer's BOS, later turns
 * repeat it (with <s> in the -bos variant). */
static void render_llama2(text_buf *b, finch_chat_format f, const finch_chat_message *m, size_t n) {
    int sys_block = f != FINCH_CHAT_LLAMA2, strip = f == FINCH_CHAT_LLAMA2_SYS_STRIP;
    int in_turn = 1;
    put(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            put(b, f == FINCH_CHAT_LLAMA2_SYS_BOS ? "<s>[INST] " : "[INST] ");
            in_turn = 1;
        }
        if (role_is(&m[i], "system")) put(b, sys_block ? "<<SYS>>\n" : "");
        if (strip) put_trimmed(b, m[i].content);
        else put(b, m[i].content);
        if (role_is(&m[i], "system")) put(b, sys_block ? "\n<</SYS>>\n\n" : "\n");
        else if (role_is(&m[i], "user")) put(b, " [/INST]");
        else {
            put(b, "</s>");
            in_turn = 0;
        }
    }
}

static void render_into(text_buf *b, finch_chat_format f, const finch_chat_message *m, size_t n, int add_ass) {
    switch (f) {
    case FINCH_CHAT_CHATML:
    case FINCH_CHAT_QWEN25: render_chatml(b, f, m, n, add_ass); break;
    case FINCH_CHAT_LLAMA3:
    case FINCH_CHAT_LLAMA31: render_llama3(b, f, m, n, add_ass); break;
    case FINCH_CHAT_PHI3: render_phi3(b, m, n, add_ass); break;
    case FINCH_CHAT_GEMMA: render_gemma(b, m, n, add_ass); break;
    case FINCH_CHAT_MISTRAL_V7:
    case FINCH_CHAT_MISTRAL_V7_TEKKEN: render_mistral_v7(b, f, m, n); break;
    case FINCH_CHAT_MISTRAL_V1:
    case FINCH_CHAT_MISTRAL_V3:
    case FINCH_CHAT_MISTRAL_V3_TEKKEN: render_mistral(b, f, m, n); break;
    default: render_llama2(b, f, m, n); break;
    }
}

finch_status finch_chat_render(finch_chat_format f, const finch_chat_message *msgs, size_t n,
                               int add_assistant, char **out) {
    *out = NULL;
    if (f <= FINCH_CHAT_NONE || f >= FINCH_CHAT_COUNT)
        return finch_fail(FINCH_ERR_ARG, "no chat format to render with (%d)", (int)f);
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content ||
            (!role_is(&msgs[i], "system") && !role_is(&msgs[i], "user") && !role_is(&msgs[i], "assistant")))
            return finch_fail(FINCH_ERR_ARG, "chat message %zu: role '%s' is not system, user or assistant", i,
                              msgs[i].role ? msgs[i].role : "(null)");
    text_buf b = { 0 };
    put(&b, ""); /* an empty conversation is "" */
    render_into(&b, f, msgs, n, add_assistant);
    if (b.oom) {
        free(b.s);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory rendering a chat");
    }
    *out = b.s;
    return FINCH_OK;
}

/* ================================================================ 4. split */

int finch_chat_trims_content(finch_chat_format f) {
    return f == FINCH_CHAT_LLAMA3 || f == FINCH_CHAT_LLAMA31 || f == FINCH_CHAT_GEMMA ||
           f == FINCH_CHAT_LLAMA2_SYS_STRIP;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

finch_status finch_chat_split(finch_chat_format f, const char *system, char **head, char **tail) {
    *head = *tail = NULL;
    /* Render the conversation with a marker for the user's words, then cut
     * at the marker: no format trims or rewrites it (no white space). */
    static const char MARK[] = "\x01" "finch-user-text" "\x01";
    finch_chat_message m[2] = { { "system", system ? system : "" }, { "user", MARK } };
    int with_system = system && *system;
    char *all;
    finch_status st = finch_chat_render(f, with_system ? m : m + 1, with_system ? 2 : 1, 1, &all);
    if (st) return st;
    const char *at = strstr(all, MARK);
    if (!at) {
        free(all);
        return finch_fail(FINCH_ERR_INTERNAL, "chat format %s lost the user's text", finch_chat_format_name(f));
    }
    *head = dup_n(all, (size_t)(at - all));
    *tail = dup_n(at + strlen(MARK), strlen(at + strlen(MARK)));
    free(all);
    if (!*head || !*tail) {
        free(*head); free(*tail);
        *head = *tail = NULL;
        return finch_fail(FINCH_ERR_NOMEM, "out of memory splitting a chat");
    }
    return FINCH_OK;
}
