/*
 * finch_chat.h - built-in chat formats: how an instruction-tuned model
 * expects a conversation written out, and how Finch splits one question
 * over one context into the parts it treats differently.
 *
 * finch does not run Jinja.  A model's template text (GGUF
 * `tokenizer.chat_template`, Hugging Face tokenizer_config.json
 * "chat_template") is only *recognised* by the markers it contains, as
 * llama.cpp's llm_chat_detect_template does, and the conversation is then
 * written by a fixed renderer for that format (the same output as
 * llama.cpp's built-in renderers; tests/test_chat.c checks them against the
 * expected strings of llama.cpp's own template tests).
 *
 * Renderers never write BOS at the start: BOS is the tokenizer's business
 * (docs/chat-templates.md, "BOS").
 */
#ifndef FINCH_CHAT_H
#define FINCH_CHAT_H

#include "finch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FINCH_CHAT_NONE = 0,          /* no template: the text as given       */
    FINCH_CHAT_LLAMA2,            /* [INST] ... [/INST], system as a line  */
    FINCH_CHAT_LLAMA2_SYS,        /* ... with <<SYS>> blocks               */
    FINCH_CHAT_LLAMA2_SYS_BOS,    /* ... and <s> before later turns        */
    FINCH_CHAT_LLAMA2_SYS_STRIP,  /* ... contents stripped (Llama 2 chat)  */
    FINCH_CHAT_LLAMA3,            /* <|start_header_id|>role<|end_header_id|> */
    FINCH_CHAT_MISTRAL_V1,        /* " [INST] ... [/INST]"                 */
    FINCH_CHAT_MISTRAL_V3,        /* "[INST] ...[/INST]", answers trimmed  */
    FINCH_CHAT_MISTRAL_V3_TEKKEN, /* "[INST]...[/INST]"                    */
    FINCH_CHAT_MISTRAL_V7,        /* [SYSTEM_PROMPT] ... [/SYSTEM_PROMPT]  */
    FINCH_CHAT_MISTRAL_V7_TEKKEN, /* v7 without the spaces after markers   */
    FINCH_CHAT_CHATML,            /* <|im_start|>role ... (Qwen)           */
    FINCH_CHAT_GEMMA,             /* <start_of_turn>user/model, trimmed    */
    FINCH_CHAT_PHI3,              /* <|role|>\n ... <|end|>                */
    FINCH_CHAT_LLAMA31,           /* llama3 with Llama 3.1-3.3's system turn:
                                     the knowledge and date lines, always   */
    FINCH_CHAT_QWEN25,            /* chatml with Qwen2.5's default system    */
    FINCH_CHAT_COUNT
} finch_chat_format;

/* One turn: role "system", "user" or "assistant"; content UTF-8. */
typedef struct {
    const char *role;
    const char *content;
} finch_chat_message;

/* The name of a format ("llama3", "mistral-v7", "none", ...). */
const char *finch_chat_format_name(finch_chat_format f);
/* A name as given to --chat-template (not "auto"); "none" gives
 * FINCH_CHAT_NONE.  FINCH_ERR_ARG naming the known names otherwise. */
finch_status finch_chat_format_parse(const char *name, finch_chat_format *out);
/* The names finch builds in, comma-separated (for messages). */
const char *finch_chat_format_list(void);

/* Recognise a model's template text.  FINCH_OK and *out when it is a
 * built-in format (or the text is exactly a format's name);
 * FINCH_ERR_UNSUPPORTED when the markers belong to a format finch does not
 * build in ("chat template recognised as phi4, which finch does not
 * build in") or to none it knows ("chat template not recognised"). */
finch_status finch_chat_detect(const char *tmpl, finch_chat_format *out);

/* Write the conversation msgs[0..n) in format f; add_assistant != 0
 * appends the header that opens the assistant's answer (formats without
 * one, mistral and llama2, end with [/INST] either way).  *out is
 * malloc'ed and NUL-terminated.  FINCH_CHAT_NONE is refused (FINCH_ERR_ARG),
 * as is a role other than system/user/assistant. */
finch_status finch_chat_render(finch_chat_format f, const finch_chat_message *msgs, size_t n,
                               int add_assistant, char **out);

/* Finch's split of one user turn "CONTEXT QUESTION" (after an optional
 * system prompt; system may be NULL or ""):
 *   *head: everything before the user's text: the system turn and the user
 *          header ("<|start_header_id|>user<|end_header_id|>\n\n");
 *   *tail: everything after it: the end of the user turn and the
 *          assistant header ("<|eot_id|><|start_header_id|>assistant...").
 * head + CONTEXT + QUESTION + tail is what finch_chat_render writes for the
 * same conversation with add_assistant (when the format does not trim the
 * content).  Both malloc'ed. */
finch_status finch_chat_split(finch_chat_format f, const char *system, char **head, char **tail);

/* 1 when the format strips white space around a message's content
 * (llama3, gemma, llama2-sys-strip): a caller that pastes the user's text
 * between head and tail should strip it the same way. */
int finch_chat_trims_content(finch_chat_format f);

/* The template text a model carries (GGUF tokenizer.chat_template or
 * tokenizer_config.json chat_template); NULL when none. */
const char *finch_tokenizer_chat_template(const finch_tokenizer *t);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_CHAT_H */
