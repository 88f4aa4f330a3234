/* cli_prompt.c - what `finch run` and `finch eval` feed after compression,
 * shared so both commands ask the model the same way. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* oneshot: "\n" + the answer prefix (what kvpress's pipeline feeds after the
 * prefill of context + question); iterative: the question again, followed
 * by the answer prefix when one is given (left empty otherwise: the press
 * then feeds the question itself). */
int cli_answer_prompt(const finch_model *m, finch_press_mode mode, const int32_t *question, size_t n_question,
                      const char *answer_prefix, int32_t **prompt, size_t *n_prompt) {
    *prompt = NULL;
    *n_prompt = 0;
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
