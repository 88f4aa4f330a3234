/*
 * finch_eval.h - measuring a press: answer accuracy (SQuAD-style exact match
 * and token F1) and fidelity to the full cache (KL divergence of the first
 * answer token's distribution, NLL of the reference answer under teacher
 * forcing, top-1 agreement).  docs/eval.md describes the metrics and the
 * `finch eval` command built on them.
 */
#ifndef FINCH_EVAL_H
#define FINCH_EVAL_H

#include "finch_press.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------- answer accuracy */

/* SQuAD's normalize_answer: lower case, punctuation removed, the articles
 * a/an/the removed as words, whitespace collapsed to single spaces and
 * trimmed.  ASCII rules: bytes >= 0x80 are kept as letters (Python would
 * also lower-case non-ASCII letters and split on Unicode spaces).  Writes at
 * most cap - 1 bytes and a NUL; returns the length written. */
size_t finch_eval_normalize(const char *s, char *out, size_t cap);

/* 1.0 when the normalised strings are equal, else 0.0. */
double finch_eval_exact(const char *pred, const char *gold);

/* SQuAD token F1 of the normalised strings (tokens split on spaces, common
 * tokens counted as a multiset): 2PR / (P + R); when either has no token,
 * 1.0 if both have none, else 0.0. */
double finch_eval_f1(const char *pred, const char *gold);

/* The best exact match and F1 of pred over answers[0..n) (each maximised
 * separately, as SQuAD does); n == 0 (unanswerable) scores against "". */
void finch_eval_best(const char *pred, const char *const *answers, size_t n, double *em, double *f1);

/* ------------------------------------------------- distribution fidelity */

/* KL(P || Q) in nats, P = softmax(p_logits), Q = softmax(q_logits), in
 * double (log-sum-exp); 0 for identical logits. */
double finch_eval_kl(const float *p_logits, const float *q_logits, size_t n);

/* -log softmax(logits)[id], in double. */
double finch_eval_nll(const float *logits, size_t n, int32_t id);

/* The largest logit's id (ties to the smaller id, as greedy decoding). */
int32_t finch_eval_argmax(const float *logits, size_t n);

/* Mean NLL of ids[0..n) (n >= 1, ids < vocab) read after the prompt
 * through the compressed cache of press fp (of model m), by teacher forcing;
 * then rewinds the press, so decoding starts from the prompt as if nothing
 * had been appended. */
finch_status finch_eval_answer_nll(const finch_model *m, finch_press *fp, const int32_t *ids, size_t n,
                                   double *nll);

/* ------------------------------------------------------------ task files */

/* One line of a task file (docs/eval.md): {"id", "context", "question",
 * "answers": [...]}; other keys are ignored. */
typedef struct {
    char *id, *context, *question; /* malloc'ed; context and question non-empty */
    char **answers;                /* n_answers strings (none: unanswerable)   */
    size_t n_answers;
    size_t line;                   /* 1-based line in the file                 */
    /* Set by the benchmark readers (include/finch_benchmarks.h); zero for a
     * plain task file: the command's own -n, newline stop and chat rule. */
    char *dataset;                 /* LongBench dataset, RULER task (or NULL)  */
    char **classes;                /* LongBench all_classes, n_classes strings */
    size_t n_classes;
    char *answer_prefix;           /* RULER's answer prefix (or NULL)          */
    size_t max_new;                /* answer tokens at most, 0: the command's  */
    int metric;                    /* finch_metric                             */
    bool no_newline_stop;          /* decode past newlines (to max_new, EOS)   */
    bool no_chat;                  /* the benchmark sends it without a chat template */
    bool longbench_e;              /* LongBench-E: scored per length bucket    */
    bool has_length;               /* the item's LongBench `length` was read   */
    double length;                 /* LongBench's `length` (words; characters in Chinese) */
    size_t article;                /* SQuAD v2: 1 + its article's index in dev-v2.0.json; 0: none */
} finch_eval_task;

typedef struct {
    finch_eval_task *items;
    size_t n, cap;
    int benchmark;                 /* finch_benchmark read                     */
} finch_eval_tasks;

/* Parse JSON Lines text[0..len) named `name` in messages: every non-blank
 * line one task, valid UTF-8 without NUL bytes, nothing after the object,
 * ids distinct, at least one task.  Failures are FINCH_ERR_FORMAT
 * "<name>:<line>: <why>" (FINCH_ERR_NOMEM when out of memory); *out is then
 * empty. */
finch_status finch_eval_tasks_parse(const char *text, size_t len, const char *name, finch_eval_tasks *out);
/* Read the file at path and parse it (FINCH_ERR_IO when it cannot be read). */
finch_status finch_eval_tasks_read(const char *path, finch_eval_tasks *out);
void finch_eval_tasks_free(finch_eval_tasks *t);

/* ------------------------------------------------------ one press, one item */

typedef struct {
    finch_press_params p;             /* the press, budget, mode, chunk      */
    const int32_t *context, *question; /* C (with BOS if any), Q              */
    size_t n_context, n_question;
    const int32_t *prompt;            /* generation prompt (NULL: the question) */
    size_t n_prompt;
    const int32_t *reference;         /* answers[0] as ids, or NULL           */
    size_t n_reference;
    size_t max_new;                   /* greedy tokens at most                */
    bool no_newline_stop;             /* decode past newlines (benchmarks whose
                                         answers span lines)                   */
    bool want_kept;                   /* fill out->kept (eval's kept maps)     */
} finch_eval_input;

typedef struct {
    char *answer;          /* decoded greedy answer, up to the first newline
                              (unless no_newline_stop), trimmed, invalid UTF-8 bytes as '?' (malloc'ed) */
    int32_t *generated;    /* the ids decoded (malloc'ed), n_generated        */
    size_t n_generated;
    float *logits;         /* [vocab] the first answer token's logits (malloc'ed) */
    double nll;            /* mean reference NLL; NAN without a reference     */
    size_t K, n_kept;      /* context tokens kept, cache positions kept      */
    double compression;    /* N / K                                           */
    size_t kv_bytes;       /* KV bytes of the kept positions                  */
    double seconds;        /* compression + prompt + greedy answer (not NLL)  */
    double seconds_compress, seconds_generate; /* its two parts: prefill and
                              compression (finch_press_run); the greedy answer */
    int32_t *kept;         /* want_kept: [kept_layers][kept_heads][n_kept] the
                              positions kept (finch_press_kept), malloc'ed    */
    size_t kept_layers, kept_heads;
    size_t kept_n_ctx, kept_n_question; /* the positions the map spans: the
                              context, and the question when oneshot keeps it */
} finch_eval_output;

/* Compress with in->p, feed the prompt, score the reference (NLL), then
 * decode greedily until EOS, a newline or max_new tokens.  ctx belongs to m. */
finch_status finch_eval_run(const finch_model *m, finch_ctx *ctx, const finch_eval_input *in,
                            finch_eval_output *out);
void finch_eval_output_free(finch_eval_output *out);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_EVAL_H */
