/* cli_prompt.c - what `finch run` and `finch eval` feed after compression,
 * shared so both commands ask the model the same way. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* ids ++ more (malloc'ed) into *out. */
static int join_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb, int32_t **out, size_t *n) {
    *out = malloc((na + nb ? na + nb : 1) * sizeof(int32_t));
    if (!*out) return cli_out_of_memory();
    if (na) memcpy(*out, a, na * sizeof(int32_t));
    if (nb) memcpy(*out + na, b, nb * sizeof(int32_t));
    *n = na + nb;
    return 0;
}

/* With a chat template: tail + the answer prefix, encoded as the
 * continuation of the question (no BOS, no leading-space marker): after the
 * question (iterative) or alone (oneshot, the question is in the cache). */
static int chat_prompt(const finch_model *m, finch_press_mode mode, const int32_t *question, size_t n_question,
                       const char *tail, const char *answer_prefix, int32_t **prompt, size_t *n_prompt) {
    if (!m->tokenizer) return cli_error("the model carries no tokenizer: give token ids as .npy instead");
    size_t tl = strlen(tail), pl = answer_prefix ? strlen(answer_prefix) : 0;
    char *text = malloc(tl + pl + 1);
    if (!text) return cli_out_of_memory();
    memcpy(text, tail, tl);
    if (pl) memcpy(text + tl, answer_prefix, pl);
    text[tl + pl] = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    finch_status st = finch_check_text(text, tl + pl);
    if (!st) st = finch_tokenize_ex(m->tokenizer, text, tl + pl, 0, 1, &ids, &n);
    free(text);
    if (st) return cli_fail(st, "cannot tokenize the answer prefix");
    int rc = mode == FINCH_PRESS_ONESHOT ? join_ids(NULL, 0, ids, n, prompt, n_prompt)
                                         : join_ids(question, n_question, ids, n, prompt, n_prompt);
    free(ids);
    return rc;
}

/* oneshot: "\n" + the answer prefix (what kvpress's pipeline feeds after the
 * prefill of context + question); iterative: the question again, followed
 * by the answer prefix when one is given (left empty otherwise: the press
 * then feeds the question itself). */
int cli_answer_prompt(const finch_model *m, finch_press_mode mode, const int32_t *question, size_t n_question,
                      const char *tail, const char *answer_prefix, int32_t **prompt, size_t *n_prompt) {
    *prompt = NULL;
    *n_prompt = 0;
    if (tail) return chat_prompt(m, mode, question, n_question, tail, answer_prefix, prompt, n_prompt);
    if (mode == FINCH_PRESS_ONESHOT) {
        char text[4096];
        snprintf(text, sizeof text, "\n%s", answer_prefix ? answer_prefix : "");
        return cli_tokenize(m, text, false, prompt, n_prompt);
    }
    if (!answer_prefix) return 0;
    int32_t *pre;
    size_t n_pre;
    int rc = cli_tokenize(m, answer_prefix, false, &pre, &n_pre);
    if (rc) return rc;
    *prompt = malloc((n_question + n_pre) * sizeof(int32_t));
    if (!*prompt) {
        free(pre);
        return cli_out_of_memory();
    }
    memcpy(*prompt, question, n_question * sizeof(int32_t));
    memcpy(*prompt + n_question, pre, n_pre * sizeof(int32_t));
    *n_prompt = n_question + n_pre;
    free(pre);
    return 0;
}
