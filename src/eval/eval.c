/* eval.c - the metrics of `finch eval` (include/finch_eval.h), in the order
 * an item is scored:
 *
 *   1. answer text: SQuAD normalisation, exact match, token F1
 *   2. distributions: KL divergence, NLL of a token, argmax
 *   3. one press on one item: compress, prompt, teacher-forced NLL of the
 *      reference, greedy answer
 */
#include "finch_eval.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finite.h"
#include "unicode.h"
#include "util.h"

/* ======================================================= 1. answer text */

/* string.punctuation: the ASCII characters SQuAD removes. */
static int is_punct(unsigned char c) { return c < 0x80 && ispunct(c); }
/* \w after punctuation is gone: ASCII letters and digits, and (an
 * approximation of Unicode letters) every byte of a multi-byte character. */
static int is_word(unsigned char c) { return c >= 0x80 || isalnum(c); }
static int is_space(unsigned char c) { return c < 0x80 && isspace(c); }

static int is_article(const char *w, size_t n) {
    return (n == 1 && w[0] == 'a') || (n == 2 && !memcmp(w, "an", 2)) || (n == 3 && !memcmp(w, "the", 3));
}

size_t finch_eval_normalize(const char *s, char *out, size_t cap) {
    if (cap == 0) return 0;
    size_t n = strlen(s), k = 0, len = 0;
    char *t = malloc(n + 1);
    if (!t) {
        out[0] = 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) { /* lower(), remove_punc() */
        unsigned char c = (unsigned char)s[i];
        if (!is_punct(c)) t[k++] = (char)(c < 0x80 ? tolower(c) : c);
    }
    for (size_t i = 0; i < k;) { /* remove_articles(): \b(a|an|the)\b -> ' ' */
        size_t j = i + 1;
        if (is_word((unsigned char)t[i])) {
            while (j < k && is_word((unsigned char)t[j])) j++;
            if (is_article(t + i, j - i)) memset(t + i, ' ', j - i);
        }
        i = j;
    }
    for (size_t i = 0; i < k;) { /* white_space_fix(): ' '.join(text.split()) */
        while (i < k && is_space((unsigned char)t[i])) i++;
        size_t j = i;
        while (j < k && !is_space((unsigned char)t[j])) j++;
        if (j > i) {
            if (len && len + 1 < cap) out[len++] = ' ';
            for (size_t c = i; c < j && len + 1 < cap; c++) out[len++] = t[c];
        }
        i = j;
    }
    free(t);
    out[len] = 0;
    return len;
}

/* A normalised copy (malloc'ed; NULL when out of memory). */
static char *normalized(const char *s) {
    size_t cap = strlen(s) + 1;
    char *out = malloc(cap);
    if (out) finch_eval_normalize(s, out, cap);
    return out;
}

double finch_eval_exact(const char *pred, const char *gold) {
    char *a = normalized(pred), *b = normalized(gold);
    double em = a && b && !strcmp(a, b) ? 1.0 : 0.0;
    free(a);
    free(b);
    return em;
}

/* Split a normalised string (single spaces) in place; *n tokens. */
static char **split_tokens(char *s, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ' ';
    char **tok = malloc(cap * sizeof *tok);
    *n = 0;
    if (!tok) return NULL;
    for (char *p = strtok(s, " "); p; p = strtok(NULL, " ")) tok[(*n)++] = p;
    return tok;
}

/* Tokens common to both, counted as a multiset (Counter & Counter). */
static size_t common_tokens(char **a, size_t na, char **b, size_t nb) {
    unsigned char *used = calloc(nb ? nb : 1, 1);
    size_t same = 0;
    for (size_t i = 0; used && i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (!used[j] && !strcmp(a[i], b[j])) {
                used[j] = 1;
                same++;
                break;
            }
    free(used);
    return same;
}

double finch_eval_f1(const char *pred, const char *gold) {
    char *a = normalized(pred), *b = normalized(gold);
    size_t na = 0, nb = 0;
    char **ta = a ? split_tokens(a, &na) : NULL, **tb = b ? split_tokens(b, &nb) : NULL;
    double f1 = 0;
    if (na == 0 || nb == 0) {
        f1 = na == nb ? 1.0 : 0.0;
    } else {
        size_t same = common_tokens(ta, na, tb, nb);
        double p = (double)same / (double)na, r = (double)same / (double)nb;
        f1 = same ? 2 * p * r / (p + r) : 0.0;
    }
    free(ta); free(tb); free(a); free(b);
    return f1;
}

void finch_eval_best(const char *pred, const char *const *answers, size_t n, double *em, double *f1) {
    static const char *const unanswerable[1] = { "" };
    if (n == 0) {
        answers = unanswerable;
        n = 1;
    }
    *em = *f1 = 0;
    for (size_t i = 0; i < n; i++) {
        *em = fmax(*em, finch_eval_exact(pred, answers[i]));
        *f1 = fmax(*f1, finch_eval_f1(pred, answers[i]));
    }
}

/* ===================================================== 2. distributions */

static double log_sum_exp(const float *x, size_t n) {
    double mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, (double)x[i]);
    for (size_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    return mx + log(sum);
}

double finch_eval_kl(const float *p_logits, const float *q_logits, size_t n) {
    double lp = log_sum_exp(p_logits, n), lq = log_sum_exp(q_logits, n), kl = 0;
    for (size_t i = 0; i < n; i++) {
        double a = (double)p_logits[i] - lp, b = (double)q_logits[i] - lq;
        kl += exp(a) * (a - b);
    }
    return kl > 0 ? kl : 0.0; /* rounding can leave -1e-17 for equal inputs */
}

double finch_eval_nll(const float *logits, size_t n, int32_t id) {
    return log_sum_exp(logits, n) - (double)logits[id];
}

int32_t finch_eval_argmax(const float *logits, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return (int32_t)best;
}

finch_status finch_eval_answer_nll(const finch_model *m, finch_press *fp, const int32_t *ids, size_t n,
                                   double *nll) {
    size_t vocab = m->cfg.vocab;
    const float *first = finch_press_prompt_logits(fp);
    if (!first) return finch_fail(FINCH_ERR_ARG, "answer NLL: feed the prompt first");
    if (n == 0) return finch_fail(FINCH_ERR_ARG, "answer NLL: the reference answer is empty");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab)
            return finch_fail(FINCH_ERR_ARG, "answer NLL: token id %d is outside the vocabulary", (int)ids[i]);
    float *logits = finch_alloc(vocab, sizeof *logits);
    if (!logits) return FINCH_ERR_NOMEM;
    double sum = finch_eval_nll(first, vocab, ids[0]);
    finch_status st = FINCH_OK;
    /* Token i + 1 is predicted by the logits after token i. */
    for (size_t i = 0; i + 1 < n && !st; i++) {
        st = finch_press_append(fp, &ids[i], 1, logits);
        if (!st) sum += finch_eval_nll(logits, vocab, ids[i + 1]);
    }
    free(logits);
    if (!st) st = finch_press_rewind(fp);
    if (!st) *nll = sum / (double)n;
    return st;
}

/* ============================================ 3. one press, one item */

/* The greedy answer's text as it is decoded; decoding stops at a newline. */
typedef struct {
    const finch_tokenizer *tok;
    int32_t prev;
    char *text;
    size_t len, cap;
    int oom;
    bool past_newline; /* keep newlines: stop at EOS or max_new only */
} answer_text;

static int on_answer_token(void *user, int32_t id) {
    answer_text *a = user;
    if (!a->tok) return 0;
    size_t n;
    const char *buf = finch_token_piece(a->tok, a->prev, id, &n); /* whole, however long */
    if (!buf) buf = "";
    a->prev = id;
    char *nl = a->past_newline ? NULL : memchr(buf, '\n', n);
    size_t keep = nl ? (size_t)(nl - buf) : n;
    if (a->len + keep + 1 > a->cap) {
        size_t cap = 2 * (a->len + keep + 1);
        char *t = realloc(a->text, cap);
        if (!t) { a->oom = 1; return 1; }
        a->text = t;
        a->cap = cap;
    }
    memcpy(a->text + a->len, buf, keep);
    a->len += keep;
    a->text[a->len] = 0;
    return nl != NULL; /* the answer ends at the first newline */
}

/* Trim whitespace and make the answer valid UTF-8 (finch_utf8_clean), so
 * it can go into JSON and CSV as text. */
static char *clean_answer(const char *s, size_t len) {
    while (len && is_space((unsigned char)*s)) s++, len--;
    while (len && is_space((unsigned char)s[len - 1])) len--;
    return finch_utf8_clean(s, len);
}

/* Greedy decoding after the prompt, stopping at EOS or a newline. */
static finch_status greedy_answer(const finch_model *m, finch_press *fp, const finch_eval_input *in,
                                  finch_eval_output *out) {
    finch_sampler smp;
    finch_sampler_params sp = { 0.0f, 1.0f, 0 };
    finch_status st = finch_sampler_init(&smp, sp, m->cfg.vocab);
    if (st) return st;
    out->generated = finch_alloc(in->max_new ? in->max_new : 1, sizeof(int32_t));
    if (!out->generated) {
        finch_sampler_free(&smp);
        return FINCH_ERR_NOMEM;
    }
    const int32_t *last = in->prompt && in->n_prompt ? in->prompt + in->n_prompt - 1
                                                     : in->question + in->n_question - 1;
    answer_text a = { m->tokenizer, *last, NULL, 0, 0, 0, in->no_newline_stop };
    int32_t eos = m->tokenizer ? finch_tokenizer_eos(m->tokenizer) : -1;
    st = finch_press_decode(fp, &smp, in->max_new, eos, on_answer_token, &a, out->generated, &out->n_generated);
    finch_sampler_free(&smp);
    if (!st && a.oom) st = FINCH_ERR_NOMEM;
    if (!st && !(out->answer = clean_answer(a.text ? a.text : "", a.len))) st = FINCH_ERR_NOMEM;
    free(a.text);
    return st;
}

static void fill_stats(const finch_press *fp, finch_eval_output *out) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    out->K = s->budget;
    out->n_kept = s->n_kept;
    out->compression = s->compression;
    out->kv_bytes = s->kv_bytes_kept;
}

/* The kept positions outlive the press: eval draws them after the run. */
static finch_status copy_kept(const finch_press *fp, finch_eval_output *out) {
    const finch_press_stats *s = finch_press_get_stats(fp);
    const finch_kv_cache *kv = finch_press_cache(fp);
    size_t n = kv->n_layer * kv->n_kv_head * s->n_kept;
    if (!(out->kept = finch_alloc(n ? n : 1, sizeof *out->kept))) return FINCH_ERR_NOMEM;
    memcpy(out->kept, finch_press_kept(fp), n * sizeof *out->kept);
    out->kept_layers = kv->n_layer;
    out->kept_heads = kv->n_kv_head;
    out->kept_n_ctx = s->n_ctx;
    out->kept_n_question = s->mode == FINCH_PRESS_ONESHOT ? s->n_question : 0;
    return FINCH_OK;
}

finch_status finch_eval_run(const finch_model *m, finch_ctx *ctx, const finch_eval_input *in,
                            finch_eval_output *out) {
    memset(out, 0, sizeof *out);
    out->nll = NAN;
    finch_press *fp;
    finch_status st = finch_press_new(m, ctx, &in->p, &fp);
    if (st) return st;
    double t0 = finch_now();
    st = finch_press_run(fp, in->context, in->n_context, in->question, in->n_question, in->prompt,
                         in->n_prompt, NULL, NULL);
    double t_compress = finch_now() - t0;
    if (!st && !(out->logits = finch_alloc(m->cfg.vocab, sizeof(float)))) st = FINCH_ERR_NOMEM;
    if (!st) memcpy(out->logits, finch_press_prompt_logits(fp), m->cfg.vocab * sizeof(float));
    if (!st) st = finch_check_logits(out->logits, m->cfg.vocab, "the logits after the prompt");
    if (!st && in->reference && in->n_reference)
        st = finch_eval_answer_nll(m, fp, in->reference, in->n_reference, &out->nll);
    if (!st) {
        double t1 = finch_now();
        st = greedy_answer(m, fp, in, out);
        out->seconds_compress = t_compress;
        out->seconds_generate = finch_now() - t1;
        out->seconds = t_compress + out->seconds_generate;
        fill_stats(fp, out);
    }
    if (!st && in->want_kept) st = copy_kept(fp, out);
    finch_press_free(fp);
    if (st) finch_eval_output_free(out);
    return st;
}

void finch_eval_output_free(finch_eval_output *out) {
    free(out->answer);
    free(out->generated);
    free(out->logits);
    free(out->kept);
    out->kept = NULL;
    out->answer = NULL;
    out->generated = NULL;
    out->logits = NULL;
}
