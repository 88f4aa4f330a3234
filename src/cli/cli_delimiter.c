/* cli_delimiter.c - kvpress's single-string interface (`finch run
 * --delimiter TEXT`): context and question in one text, cut at the one
 * occurrence of the delimiter, which is removed (kvpress removes its
 * delimiter token before the forward pass, so positions stay contiguous).
 *
 * One tokenisation: the context is encoded as a text start (BOS when the
 * tokenizer asks for it, the SentencePiece space marker), the question as
 * the continuation of the same text (neither), which is what a tokenizer
 * that splits special tokens out of one string does with the segment after
 * one (HF tokenizer.json with Metaspace prepend_scheme "first", slow
 * tokenizers with legacy=False).  docs/finch.md. */
#include "cli.h"

#include <string.h>

/* Occurrences of delim in text[0..len); *first: the first one. */
static size_t count_occurrences(const char *text, size_t len, const char *delim, size_t *first) {
    size_t n = 0, dl = strlen(delim);
    for (size_t i = 0; i + dl <= len; i++)
        if (memcmp(text + i, delim, dl) == 0) {
            if (n++ == 0) *first = i;
            i += dl - 1;
        }
    return n;
}

int cli_split_delimited(const finch_model *m, const char *text, size_t len, const char *delim, int32_t **context,
                        size_t *n_context, int32_t **question, size_t *n_question) {
    if (!m->tokenizer) return cli_error("--delimiter needs the model's tokenizer: give token ids as .npy instead");
    if (!*delim) return cli_error("--delimiter is empty");
    size_t at = 0, n = count_occurrences(text, len, delim, &at), dl = strlen(delim);
    if (n != 1)
        return cli_error("--delimiter '%s' occurs %zu times in the text: it must separate the context from the "
                         "question exactly once", delim, n);
    if (at == 0) return cli_error("the context before --delimiter '%s' is empty", delim);
    if (at + dl == len) return cli_error("the question after --delimiter '%s' is empty", delim);
    finch_status st = finch_check_text(text, len);
    if (!st) st = finch_tokenize_ex(m->tokenizer, text, at, 1, 0, context, n_context);
    if (!st) st = finch_tokenize_ex(m->tokenizer, text + at + dl, len - at - dl, 0, 1, question, n_question);
    return st ? cli_fail(st, "cannot tokenize") : 0;
}
