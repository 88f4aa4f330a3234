/* bench_metrics.c - the benchmarks' own metrics (include/finch_benchmarks.h),
 * each written from the published scorer it names, Python's semantics kept
 * where they decide a score (list removal while iterating, round half to
 * even, set-valued word counts).  Text rules are ASCII: Python's str.lower,
 * str.split and \d also act on non-ASCII letters, spaces and digits.
 *
 *   1. SQuAD v2 (evaluate-v2.0.py)
 *   2. LongBench (LongBench/metrics.py), ROUGE-L from the `rouge` package
 *   3. fuzz.ratio (fuzzywuzzy + python-Levenshtein)
 *   4. RULER (scripts/eval/synthetic/constants.py) */
#include "finch_benchmarks.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "util.h"

/* ========================================================= 1. SQuAD v2 */

/* Does s normalise to the empty string (get_tokens gives nothing)? */
static bool normalizes_empty(const char *s) {
    size_t cap = strlen(s) + 1;
    char *t = malloc(cap);
    bool empty = t && finch_eval_normalize(s, t, cap) == 0;
    free(t);
    return empty;
}

void finch_squad2_item(const char *pred, const char *const *answers, size_t n, double *exact, double *f1) {
    /* get_raw_scores: gold_answers = [a for a in answers if normalize(a)],
     * [''] when none is left; Python's max keeps the first maximum. */
    bool any = false;
    *exact = *f1 = 0;
    for (size_t i = 0; i < n; i++) {
        if (normalizes_empty(answers[i])) continue;
        any = true;
        *exact = fmax(*exact, finch_eval_exact(pred, answers[i]));
        *f1 = fmax(*f1, finch_eval_f1(pred, answers[i]));
    }
    if (!any) {
        *exact = finch_eval_exact(pred, "");
        *f1 = finch_eval_f1(pred, "");
    }
}

/* ======================================================== 2. LongBench */

double finch_lb_qa_f1(const char *pred, const char *gold) {
    /* f1_score returns 0 when nothing is common, so two empty answers score
     * 0 where SQuAD's compute_f1 gives 1; otherwise the formulas agree. */
    if (normalizes_empty(pred) && normalizes_empty(gold)) return 0.0;
    return finch_eval_f1(pred, gold);
}

/* --------------------------------------------------------------- ROUGE-L */

/* Python's str.split() white space, ASCII part. */
static bool py_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

typedef struct {
    char **w;     /* words (pointers into one buffer) */
    size_t n;
    size_t *sent; /* sentence i is words [sent[i], sent[i + 1]) */
    size_t n_sent;
    char *buf;
} rouge_text;

static void rouge_text_free(rouge_text *t) {
    free(t->w); free(t->sent); free(t->buf);
    memset(t, 0, sizeof *t);
}

/* Rouge._get_scores: sentences = [" ".join(s.split()) for s in
 * text.split(".") if len(s) > 0], then each sentence's words are
 * sentence.split(" ") (so a blank sentence is one empty word). */
static bool rouge_split(const char *s, rouge_text *t) {
    size_t len = strlen(s);
    memset(t, 0, sizeof *t);
    t->buf = malloc(2 * len + 2);
    t->w = malloc((len + 2) * sizeof *t->w);
    t->sent = malloc((len + 2) * sizeof *t->sent);
    if (!t->buf || !t->w || !t->sent) return false;
    char *o = t->buf;
    for (const char *p = s; ; ) {
        const char *dot = strchr(p, '.'), *end = dot ? dot : p + strlen(p);
        if (end > p) { /* a non-empty piece: its words joined by single spaces */
            t->sent[t->n_sent++] = t->n;
            bool any = false;
            for (const char *q = p; q < end;) {
                while (q < end && py_space((unsigned char)*q)) q++;
                if (q == end) break;
                t->w[t->n++] = o;
                any = true;
                while (q < end && !py_space((unsigned char)*q)) *o++ = *q++;
                *o++ = 0;
            }
            if (!any) { t->w[t->n++] = o; *o++ = 0; } /* "".split(" ") == [""] */
        }
        if (!dot) break;
        p = dot + 1;
    }
    t->sent[t->n_sent] = t->n;
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* len(set(words)). */
static size_t distinct(char **w, size_t n) {
    char **c = finch_alloc(n ? n : 1, sizeof *c);
    if (!c) return 0;
    memcpy(c, w, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += i == 0 || strcmp(c[i], c[i - 1]) != 0;
    free(c);
    return k;
}

/* _recon_lcs(x, y): the LCS of x and y walked back from the end (a match
 * first, then up when the row above is strictly larger, else left); each
 * word on it added to the set `in` (marks over the words of y). */
static bool recon_lcs(char **x, size_t nx, char **y, size_t ny, unsigned char *in) {
    size_t cols = ny + 1, cells;
    if (!finch_mul_ok(nx + 1, cols, &cells)) return false;
    unsigned *tab = finch_zalloc(cells, sizeof *tab);
    if (!tab) return false;
    for (size_t i = 1; i <= nx; i++)
        for (size_t j = 1; j <= ny; j++) {
            unsigned up = tab[(i - 1) * cols + j], left = tab[i * cols + j - 1];
            tab[i * cols + j] = !strcmp(x[i - 1], y[j - 1]) ? tab[(i - 1) * cols + j - 1] + 1 : (up > left ? up : left);
        }
    for (size_t i = nx, j = ny; i && j;) {
        if (!strcmp(x[i - 1], y[j - 1])) { in[j - 1] = 1; i--; j--; }
        else if (tab[(i - 1) * cols + j] > tab[i * cols + j - 1]) i--;
        else j--;
    }
    free(tab);
    return true;
}

/* rouge_l_summary_level: llcs = |union over (ref sentence, hyp sentence)
 * of the LCS word sets| (the per-reference counts telescope to this);
 * m, n = distinct words of ref, hyp; F = 2 (P R / (P + R + 1e-8)). */
static double rouge_l(const rouge_text *h, const rouge_text *r) {
    unsigned char *in = finch_zalloc(h->n ? h->n : 1, 1);
    if (!in) return 0.0;
    for (size_t rs = 0; rs < r->n_sent; rs++)
        for (size_t hs = 0; hs < h->n_sent; hs++)
            if (!recon_lcs(r->w + r->sent[rs], r->sent[rs + 1] - r->sent[rs], h->w + h->sent[hs],
                           h->sent[hs + 1] - h->sent[hs], in + h->sent[hs])) {
                free(in);
                return 0.0;
            }
    char **u = finch_alloc(h->n ? h->n : 1, sizeof *u);
    size_t nu = 0;
    for (size_t i = 0; u && i < h->n; i++)
        if (in[i]) u[nu++] = h->w[i];
    double llcs = u ? (double)distinct(u, nu) : 0.0;
    free(u);
    free(in);
    double m = (double)distinct(r->w, r->n), n = (double)distinct(h->w, h->n);
    if (m == 0 || n == 0) return 0.0;
    double rl = llcs / m, pl = llcs / n;
    return 2.0 * ((pl * rl) / (pl + rl + 1e-8));
}

double finch_lb_rouge_l(const char *pred, const char *gold) {
    rouge_text h, r;
    bool ok = rouge_split(pred, &h), ok2 = rouge_split(gold, &r);
    /* no sentence on either side: the package raises, LongBench returns 0 */
    double f = ok && ok2 && h.n_sent && r.n_sent ? rouge_l(&h, &r) : 0.0;
    rouge_text_free(&h);
    rouge_text_free(&r);
    return f;
}

/* -------------------------------------------------- classification, counts */

double finch_lb_classification(const char *pred, const char *gold, const char *const *classes, size_t n) {
    const char **m = finch_alloc(n ? n : 1, sizeof *m);
    if (!m) return 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(pred, classes[i])) m[k++] = classes[i];
    /* `for t in list: ... list.remove(t)`: removing shifts the next item
     * into the current index, which the iterator then steps past. */
    for (size_t i = 0; i < k; i++) {
        const char *t = m[i];
        if (!strstr(gold, t) || !strcmp(t, gold)) continue;
        size_t at = 0;
        while (strcmp(m[at], t)) at++; /* list.remove: the first equal item */
        memmove(m + at, m + at + 1, (k - at - 1) * sizeof *m);
        k--;
    }
    double score = 0.0;
    for (size_t i = 0; i < k; i++)
        if (!strcmp(m[i], gold)) { score = 1.0 / (double)k; break; }
    free(m);
    return score;
}

/* right / len(re.findall(r"\d+", pred)) with right the runs equal to num. */
static double digit_runs_equal(const char *pred, const char *num, size_t num_len) {
    size_t runs = 0, right = 0;
    for (const char *p = pred; *p;) {
        if (!isdigit((unsigned char)*p)) { p++; continue; }
        const char *q = p;
        while (isdigit((unsigned char)*q)) q++;
        runs++;
        right += (size_t)(q - p) == num_len && !memcmp(p, num, num_len);
        p = q;
    }
    return runs ? (double)right / (double)runs : 0.0;
}

/* The first number after `head` in gold (re.findall(head + r'(\d+)',
 * gold)[0]) against pred's digit runs (LongBench would raise when gold has
 * none; it scores 0 here). */
static double retrieval(const char *pred, const char *gold, const char *head) {
    size_t hl = strlen(head);
    for (const char *p = strstr(gold, head); p; p = strstr(p + 1, head)) {
        const char *d = p + hl, *e = d;
        while (isdigit((unsigned char)*e)) e++;
        if (e > d) return digit_runs_equal(pred, d, (size_t)(e - d));
    }
    return 0.0;
}

double finch_lb_retrieval(const char *pred, const char *gold) { return retrieval(pred, gold, "Paragraph "); }
double finch_lb_retrieval_zh(const char *pred, const char *gold) { return retrieval(pred, gold, "\xe6\xae\xb5\xe8\x90\xbd"); }

double finch_lb_count(const char *pred, const char *gold) { return digit_runs_equal(pred, gold, strlen(gold)); }

/* ================================================== 3. fuzz.ratio */

static uint32_t *code_points(const char *s, size_t *n) {
    size_t len = strlen(s);
    uint32_t *cp = finch_alloc(len ? len : 1, sizeof *cp);
    *n = 0;
    for (size_t i = 0; cp && i < len;) i += finch_utf8_decode(s + i, len - i, &cp[(*n)++]);
    return cp;
}

int finch_fuzz_ratio(const char *a, const char *b) {
    if (!strcmp(a, b)) return 100; /* check_for_equivalence comes first */
    if (!*a || !*b) return 0;      /* then check_empty_string          */
    size_t na, nb;
    uint32_t *x = code_points(a, &na), *y = code_points(b, &nb);
    size_t *row = finch_alloc(nb + 1, sizeof *row);
    int r = -1;
    if (x && y && row) {
        /* edit distance, insert/delete 1, substitute 2 */
        for (size_t j = 0; j <= nb; j++) row[j] = j;
        for (size_t i = 1; i <= na; i++) {
            size_t diag = row[0];
            row[0] = i;
            for (size_t j = 1; j <= nb; j++) {
                size_t up = row[j], best = diag + (x[i - 1] == y[j - 1] ? 0 : 2);
                if (up + 1 < best) best = up + 1;
                if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
                diag = up;
                row[j] = best;
            }
        }
        double lensum = (double)(na + nb), ratio = (lensum - (double)row[nb]) / lensum;
        r = (int)nearbyint(100 * ratio); /* utils.intr: int(round(x)), ties to even */
    }
    free(x); free(y); free(row);
    return r;
}

double finch_lb_code_sim(const char *pred, const char *gold) {
    /* the first line of pred.lstrip('\n') holding none of ` # // */
    while (*pred == '\n') pred++;
    const char *line = "";
    size_t len = 0;
    for (const char *p = pred;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!memchr(p, '`', n) && !memchr(p, '#', n) && !memmem(p, n, "//", 2)) { line = p; len = n; break; }
        if (!nl) break;
        p = nl + 1;
    }
    char *l = malloc(len + 1);
    if (!l) return 0.0;
    memcpy(l, line, len);
    l[len] = 0;
    int r = finch_fuzz_ratio(l, gold);
    free(l);
    return r < 0 ? 0.0 : r / 100.0;
}

/* ============================================================ 4. RULER */

/* r.lower() in pred.lower() */
static bool contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *h = hay;; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return true;
        if (!*h) return false;
    }
}

double finch_ruler_match_all(const char *pred, const char *const *refs, size_t n) {
    if (n == 0) return 0.0; /* RULER divides by len(ref): every item has one */
    double found = 0;
    for (size_t i = 0; i < n; i++) found += contains_nocase(pred, refs[i]) ? 1.0 : 0.0;
    return found / (double)n;
}

double finch_ruler_match_part(const char *pred, const char *const *refs, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (contains_nocase(pred, refs[i])) return 1.0;
    return 0.0;
}
