/* cli_chat.c - --chat-template and --system for `finch run`, `finch eval`
 * and `finch generate`: which built-in format applies, and the token ids of
 * a templated context with its protected prefix (docs/chat-templates.md). */
#include "cli.h"
#include "finch_chat.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int cli_chat_setup(const finch_model *m, const char *value, const char *system, bool ids_given, cli_chat *c) {
    memset(c, 0, sizeof *c);
    const char *tmpl = m->tokenizer ? finch_tokenizer_chat_template(m->tokenizer) : NULL;
    bool is_auto = !value || !strcmp(value, "auto");
    if (is_auto) {
        if (!tmpl || ids_given) {
            if (system && !tmpl)
                return cli_error("--system needs a chat template: the model carries none (give --chat-template NAME)");
            if (system) return cli_error("--system needs the context and the question as text, not token ids");
            if (tmpl) fprintf(stderr, "finch: note: token ids given: the model's chat template is not applied\n");
            return 0; /* auto: no template to apply */
        }
        finch_chat_format f;
        if (finch_chat_detect(tmpl, &f) != FINCH_OK) return cli_error("%s", finch_last_error());
        c->format = (int)f;
        c->from_model = true;
    } else {
        finch_chat_format f;
        if (finch_chat_format_parse(value, &f) != FINCH_OK) return cli_error("--chat-template: %s", finch_last_error());
        c->format = (int)f;
    }
    if (c->format == FINCH_CHAT_NONE) {
        if (system) return cli_error("--system needs a chat template, not --chat-template none");
        return 0;
    }
    if (ids_given)
        return cli_error("--chat-template %s needs the context and the question as text, not token ids "
                         "(or give --chat-template none)", value);
    if (!m->tokenizer) return cli_error("--chat-template needs a model with a tokenizer");
    finch_status st = finch_chat_split((finch_chat_format)c->format, system, &c->head, &c->tail);
    return st ? cli_fail(st, "chat template") : 0;
}

void cli_chat_free(cli_chat *c) {
    free(c->head);
    free(c->tail);
    c->head = c->tail = NULL;
}

const char *cli_chat_name(const cli_chat *c) { return finch_chat_format_name((finch_chat_format)c->format); }

/* Does text begin with the text of the tokenizer's BOS piece? */
static bool starts_with_bos(const finch_tokenizer *t, const char *text) {
    int32_t bos = finch_tokenizer_bos(t);
    if (bos < 0) return false;
    int32_t *ids = NULL;
    size_t n = 0;
    /* the BOS piece is a special token: encoding the text finds it literally */
    bool yes = finch_tokenize(t, text, strlen(text), 0, &ids, &n) == FINCH_OK && n > 0 && ids[0] == bos;
    free(ids);
    return yes;
}

/* Tokens of s with the BOS rule: BOS from the tokenizer when it adds one
 * and the text does not already begin with it. */
static int tokenize_bos_once(const finch_model *m, const char *s, int32_t **ids, size_t *n) {
    bool add = finch_tokenizer_add_bos(m->tokenizer) && !starts_with_bos(m->tokenizer, s);
    return cli_tokenize(m, s, add, ids, n);
}

/* White space the format strips from the start of a message. */
static const char *content_start(const cli_chat *c, const char *text) {
    if (finch_chat_trims_content((finch_chat_format)c->format))
        while (*text == ' ' || (*text >= '\t' && *text <= '\r')) text++;
    return text;
}

int cli_chat_context(const finch_model *m, const cli_chat *c, const char *text, int32_t **ids, size_t *n,
                     size_t *n_protect) {
    *n_protect = 0;
    if (c->format == FINCH_CHAT_NONE) return tokenize_bos_once(m, text, ids, n);
    text = content_start(c, text);
    size_t hl = strlen(c->head), tl = strlen(text);
    char *all = malloc(hl + tl + 1);
    if (!all) return cli_out_of_memory();
    memcpy(all, c->head, hl);
    memcpy(all + hl, text, tl + 1);
    int32_t *head_ids = NULL;
    size_t n_head = 0;
    int rc = tokenize_bos_once(m, all, ids, n);
    if (!rc) {
        char *head = strdup(all); /* the head alone, encoded with the same BOS rule */
        if (!head) rc = cli_out_of_memory();
        else {
            head[hl] = 0;
            rc = tokenize_bos_once(m, head, &head_ids, &n_head);
            free(head);
        }
    }
    free(all);
    if (rc) return rc;
    /* The protected prefix: the leading tokens the head encodes to on its
     * own and that the whole text shares (a token spanning the head's end
     * and the context belongs to the context). */
    size_t p = 0;
    while (p < n_head && p < *n && head_ids[p] == (*ids)[p]) p++;
    free(head_ids);
    if (p >= *n) return cli_error("the context is empty");
    *n_protect = p;
    return 0;
}

int cli_chat_context_file(const finch_model *m, const cli_chat *c, const char *path, int32_t **ids, size_t *n,
                          size_t *n_protect) {
    *n_protect = 0;
    if (c->format == FINCH_CHAT_NONE) return cli_tokenize_file(m, path, true, ids, n);
    /* The head and the text are encoded as one string, so the file is read
     * whole (without a template it is encoded block by block). */
    char *text = NULL;
    size_t len = 0;
    finch_status st = finch_read_file(path, &text, &len);
    if (!st) st = finch_check_text(text, len);
    if (st) {
        free(text);
        char what[4200];
        snprintf(what, sizeof what, "cannot read the context %s", path);
        return cli_fail(st, what);
    }
    int rc = cli_chat_context(m, c, text, ids, n, n_protect);
    free(text);
    return rc;
}

int cli_chat_prompt(const finch_model *m, const cli_chat *c, const char *text, int32_t **ids, size_t *n) {
    if (c->format == FINCH_CHAT_NONE) return tokenize_bos_once(m, text, ids, n);
    text = content_start(c, text);
    size_t hl = strlen(c->head), xl = strlen(text), tl = strlen(c->tail);
    char *all = malloc(hl + xl + tl + 1);
    if (!all) return cli_out_of_memory();
    memcpy(all, c->head, hl);
    memcpy(all + hl, text, xl);
    memcpy(all + hl + xl, c->tail, tl + 1);
    int rc = tokenize_bos_once(m, all, ids, n);
    free(all);
    return rc;
}
