/* bench_ruler.c - RULER-style synthetic tasks made here (include/
 * finch_benchmarks.h), in RULER's own JSONL shape {"index", "input",
 * "outputs", "answer_prefix", "task"}, so `finch eval` and `finch score`
 * read them as they read RULER's files.
 *
 * The templates, needle sentence, noise haystack, chains and list shapes
 * follow RULER's generators (scripts/data/synthetic/niah.py,
 * variable_tracking.py, common_words_extraction.py,
 * freq_words_extraction.py, qa.py and constants.py at c3f5e3b4f87f of
 * github.com/NVIDIA/RULER).  What differs, and why:
 *   - random numbers come from our own generator (splitmix64), not
 *     Python's, so the items are RULER-style, not RULER's;
 *   - words are made-up pronounceable words (RULER draws adjective-noun
 *     pairs from the wonderwords lists, which we do not ship);
 *   - the Paul Graham essay haystack is not shipped: the essay variants
 *     (niah_single_2/3, multikey_1, multivalue, multiquery) use the noise
 *     haystack of niah_single_1 instead;
 *   - variable tracking has no in-context example;
 *   - qa shuffles each item's documents with the item's seed (qa.py
 *     shuffles every item with the same seed); the assets' SQuAD sample
 *     has no articles, so its distractors all come from the whole file. */
#include "finch_benchmarks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ----------------------------------------------------------- randomness */

static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t below(uint64_t *s, size_t n) { return n ? (size_t)(next_u64(s) % n) : 0; }

/* A pronounceable made-up word of 2-3 syllables (lower case). */
static void made_up_word(uint64_t *s, char *out) {
    static const char cons[] = "bcdfghjklmnprstvwz", vow[] = "aeiou";
    size_t syl = 2 + below(s, 2), k = 0;
    for (size_t i = 0; i < syl; i++) {
        out[k++] = cons[below(s, sizeof cons - 1)];
        out[k++] = vow[below(s, sizeof vow - 1)];
    }
    if (below(s, 2)) out[k++] = cons[below(s, sizeof cons - 1)];
    out[k] = 0;
}

/* ---------------------------------------------------------------- text */

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} text_buf;

static void put(text_buf *b, const char *s) {
    size_t n = strlen(s);
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = 2 * (b->len + n + 1);
        char *t = realloc(b->s, cap);
        if (!t) { b->oom = true; return; }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

/* ------------------------------------------------------------- a sample */

typedef struct {
    char *input, *answer_prefix;
    char **outputs;
    size_t n_outputs;
} ruler_sample;

static void sample_free(ruler_sample *x) {
    free(x->input); free(x->answer_prefix);
    for (size_t i = 0; i < x->n_outputs; i++) free(x->outputs[i]);
    free(x->outputs);
    memset(x, 0, sizeof *x);
}

/* ------------------------------------------------------------------ NIAH */

typedef struct {
    const char *name;
    char haystack;  /* 'n' noise, 'd' needle sentences                      */
    char key, value; /* 'w' words, 'n' 7-digit numbers, 'u' uuids          */
    size_t k, v, q; /* num_needle_k, num_needle_v, num_needle_q            */
} niah_spec;

static const niah_spec niahs[] = { /* scripts/synthetic.yaml */
    { "niah_single_1", 'n', 'w', 'n', 1, 1, 1 }, { "niah_single_2", 'n', 'w', 'n', 1, 1, 1 },
    { "niah_single_3", 'n', 'w', 'u', 1, 1, 1 }, { "niah_multikey_1", 'n', 'w', 'n', 4, 1, 1 },
    { "niah_multikey_2", 'd', 'w', 'n', 1, 1, 1 }, { "niah_multikey_3", 'd', 'u', 'u', 1, 1, 1 },
    { "niah_multivalue", 'n', 'w', 'n', 1, 4, 1 }, { "niah_multiquery", 'n', 'w', 'n', 1, 1, 4 },
};

static void random_value(uint64_t *s, char type, char *out) {
    if (type == 'n') snprintf(out, 64, "%zu", 1000000 + below(s, 9000000));
    else if (type == 'u') {
        uint64_t a = next_u64(s), b = next_u64(s);
        snprintf(out, 64, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
                 (unsigned)a & 0xfff, (unsigned)(0x8000 | ((b >> 48) & 0x3fff)), (unsigned long long)(b & 0xffffffffffffull));
    } else {
        char w1[16], w2[16];
        made_up_word(s, w1);
        made_up_word(s, w2);
        snprintf(out, 64, "%s-%s", w1, w2);
    }
}

static const char NOISE[] = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

static finch_status niah_sample(const niah_spec *sp, size_t n_hay, uint64_t *s, ruler_sample *x) {
    size_t nk = sp->k > sp->q ? sp->k : sp->q, n_needles = nk * sp->v;
    char (*keys)[64] = calloc(nk, sizeof *keys), (*vals)[64] = calloc(n_needles, sizeof *vals);
    char **lines = calloc(n_hay + n_needles, sizeof *lines);
    size_t *qi = calloc(nk, sizeof *qi);
    finch_status st = keys && vals && lines && qi ? FINCH_OK : FINCH_ERR_NOMEM;
    const char *tv = sp->value == 'n' ? "numbers" : sp->value == 'u' ? "uuids" : "words";
    size_t n_lines = 0;
    for (size_t i = 0; !st && i < n_hay; i++) { /* the haystack */
        char buf[256], k[64], v[64];
        random_value(s, sp->key, k);
        random_value(s, sp->value, v);
        if (sp->haystack == 'd') snprintf(buf, sizeof buf, "One of the special magic %s for %s is: %s.", tv, k, v);
        if (!(lines[n_lines++] = strdup(sp->haystack == 'd' ? buf : NOISE))) st = FINCH_ERR_NOMEM;
    }
    for (size_t i = 0; !st && i < nk; i++) { /* the needles, each at a random line */
        random_value(s, sp->key, keys[i]);
        for (size_t j = 0; !st && j < sp->v; j++) {
            char buf[256];
            random_value(s, sp->value, vals[i * sp->v + j]);
            snprintf(buf, sizeof buf, "One of the special magic %s for %s is: %s.", tv, keys[i], vals[i * sp->v + j]);
            size_t at = below(s, n_lines + 1);
            memmove(lines + at + 1, lines + at, (n_lines - at) * sizeof *lines);
            n_lines++;
            if (!(lines[at] = strdup(buf))) st = FINCH_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < nk; i++) qi[i] = i; /* the queried keys: q of them at random */
    for (size_t i = 0; i + 1 < nk; i++) {
        size_t j = i + below(s, nk - i), t = qi[i];
        qi[i] = qi[j];
        qi[j] = t;
    }
    text_buf ctx = { 0 }, query = { 0 };
    for (size_t i = 0; i < n_lines; i++) { if (i) put(&ctx, "\n"); put(&ctx, lines[i] ? lines[i] : ""); }
    for (size_t i = 0; i < sp->q; i++) { /* ', '.join(q[:-1]) + ', and ' + q[-1] */
        if (i) put(&query, i + 1 < sp->q ? ", " : ", and ");
        put(&query, keys[qi[i]]);
    }
    x->n_outputs = 0;
    if (!st && !(x->outputs = calloc(sp->q * sp->v + 1, sizeof *x->outputs))) st = FINCH_ERR_NOMEM;
    for (size_t i = 0; !st && i < sp->q; i++)
        for (size_t j = 0; !st && j < sp->v; j++)
            if (!(x->outputs[x->n_outputs++] = strdup(vals[qi[i] * sp->v + j]))) st = FINCH_ERR_NOMEM;
    if (!st) {
        /* constants.py's niah template + answer prefix; one answer: the singular */
        bool one = sp->q * sp->v == 1;
        char tvs[16];
        snprintf(tvs, sizeof tvs, "%.*s", (int)strlen(tv) - (one ? 1 : 0), tv);
        text_buf in = { 0 }, pre = { 0 };
        put(&in, one ? "A" : "Some"); put(&in, " special magic "); put(&in, tvs);
        put(&in, one ? " is" : " are"); put(&in, " hidden within the following text. Make sure to memorize it. I will quiz you about the ");
        put(&in, tvs); put(&in, " afterwards.\n"); put(&in, ctx.s ? ctx.s : ""); put(&in, "\nWhat ");
        put(&in, one ? "is" : "are all"); put(&in, " the special magic "); put(&in, tvs); put(&in, " for ");
        put(&in, query.s); put(&in, " mentioned in the provided text?");
        put(&pre, " The special magic "); put(&pre, tvs); put(&pre, " for "); put(&pre, query.s);
        put(&pre, " mentioned in the provided text "); put(&pre, one ? "is" : "are");
        x->input = in.s;
        x->answer_prefix = pre.s;
        if (in.oom || pre.oom) st = FINCH_ERR_NOMEM;
    }
    free(ctx.s); free(query.s);
    for (size_t i = 0; lines && i < n_lines; i++) free(lines[i]);
    free(lines); free(keys); free(vals); free(qi);
    return st;
}

/* ------------------------------------------------------ variable tracking */

/* vt: one chain of 4 hops in the noise haystack ("VAR X = 12345", then
 * "VAR Y = VAR X " ...), each line at a random place, in chain order. */
static finch_status vt_sample(size_t n_hay, uint64_t *s, ruler_sample *x) {
    enum { HOPS = 4 };
    char vars[HOPS + 1][8], chain[HOPS + 1][64];
    for (size_t i = 0; i <= HOPS; i++) {
        bool again;
        do { /* distinct names of 5 capital letters */
            for (size_t c = 0; c < 5; c++) vars[i][c] = (char)('A' + below(s, 26));
            vars[i][5] = 0;
            again = false;
            for (size_t j = 0; j < i; j++) again |= !strcmp(vars[i], vars[j]);
        } while (again);
    }
    unsigned value = (unsigned)(10000 + below(s, 89999));
    snprintf(chain[0], sizeof chain[0], "VAR %s = %u", vars[0], value);
    for (size_t j = 0; j < HOPS; j++) snprintf(chain[j + 1], sizeof chain[j + 1], "VAR %s = VAR %s ", vars[j + 1], vars[j]);
    /* positions = sorted(random.sample(range(n), len(chain))); insert at p + j */
    size_t pos[HOPS + 1];
    for (size_t i = 0; i <= HOPS; i++) {
        bool again;
        do {
            pos[i] = below(s, n_hay ? n_hay : 1);
            again = false;
            for (size_t j = 0; j < i; j++) again |= pos[i] == pos[j];
        } while (again && n_hay > HOPS);
    }
    for (size_t i = 1; i <= HOPS; i++)
        for (size_t j = i; j > 0 && pos[j - 1] > pos[j]; j--) { size_t t = pos[j]; pos[j] = pos[j - 1]; pos[j - 1] = t; }
    text_buf in = { 0 }, pre = { 0 };
    put(&in, "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n");
    size_t next = 0;
    for (size_t i = 0; i < n_hay + HOPS + 1; i++) {
        if (i) put(&in, "\n");
        if (next <= HOPS && i == pos[next] + next) put(&in, chain[next++]);
        else put(&in, NOISE);
    }
    char q[160];
    snprintf(q, sizeof q, "\nQuestion: Find all variables that are assigned the value %u in the text above.", value);
    put(&in, q);
    snprintf(q, sizeof q, " Answer: According to the chain(s) of variable assignment in the text above, %d variables "
             "are assigned the value %u, they are: ", HOPS + 1, value);
    put(&pre, q);
    x->input = in.s;
    x->answer_prefix = pre.s;
    if (in.oom || pre.oom || !(x->outputs = calloc(HOPS + 1, sizeof *x->outputs))) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i <= HOPS; i++)
        if (!(x->outputs[x->n_outputs++] = strdup(vars[i]))) return FINCH_ERR_NOMEM;
    return FINCH_OK;
}

/* ------------------------------------------------- common words extraction */

/* "1. w1 2. w2 ..." of n_words distinct made-up words, the first 10
 * repeated `common` times and the others `rare` times, shuffled. */
static char *word_list(uint64_t *s, size_t n_words, size_t common, size_t rare, char (*words)[16]) {
    for (size_t i = 0; i < n_words; i++) {
        bool again;
        do {
            made_up_word(s, words[i]);
            again = false;
            for (size_t j = 0; j < i && !again; j++) again = !strcmp(words[i], words[j]);
        } while (again);
    }
    size_t n = 10 * common + (n_words - 10) * rare, k = 0;
    size_t *order = calloc(n ? n : 1, sizeof *order);
    if (!order) return NULL;
    for (size_t i = 0; i < n_words; i++)
        for (size_t r = 0; r < (i < 10 ? common : rare); r++) order[k++] = i;
    for (size_t i = n; i > 1; i--) { size_t j = below(s, i), t = order[i - 1]; order[i - 1] = order[j]; order[j] = t; }
    text_buf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        char item[40];
        snprintf(item, sizeof item, "%s%zu. %s", i ? " " : "", i + 1, words[order[i]]);
        put(&b, item);
    }
    free(order);
    return b.oom ? (free(b.s), NULL) : b.s;
}

static const char CWE_HEAD[] = "Below is a numbered list of words. In these words, some appear more often than others. "
                               "Memorize the ones that appear most often.\n";
static const char CWE_Q[] = "\nQuestion: What are the 10 most common words in the above list?";
static const char CWE_PREFIX[] = " Answer: The top 10 words that appear most often in the list are:";

/* cwe: one worked example (40 words: 10 x 10, 30 x 3), then the list of
 * n_words (10 common x 30, the rest x 3: freq_cw, freq_ucw, num_cw); below
 * 4096 tokens RULER shrinks them: 20 words 3 x / 1 x, then 6 x / 1 x. */
static finch_status cwe_sample(size_t n_words, size_t length, uint64_t *s, ruler_sample *x) {
    bool small = length < 4096;
    if (n_words < 11) n_words = 11;
    char (*w)[16] = calloc(n_words > 40 ? n_words : 40, sizeof *w);
    if (!w) return FINCH_ERR_NOMEM;
    char *shot = small ? word_list(s, 20, 3, 1, w) : word_list(s, 40, 10, 3, w);
    text_buf in = { 0 };
    put(&in, CWE_HEAD); put(&in, shot ? shot : ""); put(&in, CWE_Q); put(&in, CWE_PREFIX);
    for (size_t i = 0; i < 10; i++) {
        char item[32];
        snprintf(item, sizeof item, " %zu. %s", i + 1, w[i]);
        put(&in, item);
    }
    put(&in, "\n");
    char *main_list = small ? word_list(s, n_words, 6, 1, w) : word_list(s, n_words, 30, 3, w);
    put(&in, CWE_HEAD); put(&in, main_list ? main_list : ""); put(&in, CWE_Q);
    x->input = in.s;
    x->answer_prefix = strdup(CWE_PREFIX);
    x->outputs = calloc(10, sizeof *x->outputs);
    finch_status st = shot && main_list && !in.oom && x->answer_prefix && x->outputs ? FINCH_OK : FINCH_ERR_NOMEM;
    for (size_t i = 0; !st && i < 10; i++)
        if (!(x->outputs[x->n_outputs++] = strdup(w[i]))) st = FINCH_ERR_NOMEM;
    free(shot); free(main_list); free(w);
    return st;
}

/* ---------------------------------------------- frequent words extraction */

/* fwe (freq_words_extraction.py, alpha 2): a vocabulary of random 6-letter
 * words, the first replaced by "...", word k (1-based) repeated
 * int(n_words * k^-2 / zeta(2)) times, all shuffled and joined by spaces;
 * the answer is words 2..4, the three most frequent real words.  RULER's
 * vocabulary size is (max_seq_length - tokens_to_generate) // 50; here at
 * least 4 so that the three answers exist at tiny lengths. */
/* v distinct random 6-letter words; a word drawn before is drawn again.  A
 * hash set of the words (as numbers below 26^6, plus one: 0 is an empty
 * slot) keeps this linear in v: --length 16M asks for 335k words. */
static finch_status draw_distinct_words(char (*vocab)[8], size_t v, uint64_t *s) {
    size_t slots = 16;
    while (slots < 2 * v) slots *= 2;
    uint32_t *seen = calloc(slots, sizeof *seen);
    if (!seen) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < v; i++) {
        for (;;) {
            uint32_t code = 0;
            for (size_t c = 0; c < 6; c++) {
                vocab[i][c] = (char)('a' + below(s, 26));
                code = code * 26 + (uint32_t)(vocab[i][c] - 'a');
            }
            size_t h = ((size_t)code * 2654435761u) & (slots - 1);
            while (seen[h] && seen[h] != code + 1) h = (h + 1) & (slots - 1);
            if (!seen[h]) { seen[h] = code + 1; break; }
        }
    }
    free(seen);
    return FINCH_OK;
}

static finch_status fwe_sample(size_t n_words, size_t length, uint64_t *s, ruler_sample *x) {
    const double zeta2 = 1.6449340668482264; /* scipy.special.zeta(2.0) = pi^2/6 */
    size_t v = length > 50 ? (length - 50) / 50 : 0;
    if (v < 4) v = 4;
    char (*vocab)[8] = calloc(v, sizeof *vocab);
    size_t total = 0, *cnt = calloc(v, sizeof *cnt);
    if (!vocab || !cnt || draw_distinct_words(vocab, v, s)) { free(vocab); free(cnt); return FINCH_ERR_NOMEM; }
    strcpy(vocab[0], "..."); /* the top rank is noise */
    for (size_t k = 0; k < v; k++) total += cnt[k] = (size_t)((double)n_words * pow((double)(k + 1), -2.0) / zeta2);
    size_t *order = calloc(total ? total : 1, sizeof *order), at = 0;
    if (!order) { free(vocab); free(cnt); return FINCH_ERR_NOMEM; }
    for (size_t k = 0; k < v; k++)
        for (size_t r = 0; r < cnt[k]; r++) order[at++] = k;
    for (size_t i = total; i > 1; i--) { size_t j = below(s, i), t = order[i - 1]; order[i - 1] = order[j]; order[j] = t; }
    text_buf in = { 0 };
    put(&in, "Read the following coded text and track the frequency of each coded word. Find the three most "
             "frequently appeared coded words. ");
    for (size_t i = 0; i < total; i++) { if (i) put(&in, " "); put(&in, vocab[order[i]]); }
    put(&in, "\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most "
             "frequently appeared words in the above coded text?");
    x->input = in.s;
    x->answer_prefix = strdup(" Answer: According to the coded text above, the three most frequently appeared words are:");
    x->outputs = calloc(3, sizeof *x->outputs);
    finch_status st = !in.oom && x->answer_prefix && x->outputs ? FINCH_OK : FINCH_ERR_NOMEM;
    for (size_t i = 1; !st && i <= 3; i++)
        if (!(x->outputs[x->n_outputs++] = strdup(vocab[i]))) st = FINCH_ERR_NOMEM;
    free(vocab); free(cnt); free(order);
    return st;
}

/* ---------------------------------------------------------------- qa */

/* qa_1 (qa.py with dataset squad): RULER's documents are the distinct SQuAD
 * paragraphs sorted (Python's sorted() on str: code point order, which is
 * UTF-8 byte order), its questions the answerable ones in file order. */
struct finch_ruler_qa_source {
    const char **docs;  /* borrowed from the tasks */
    size_t n_docs;
    size_t *qas, *gold; /* per question: its task index, its document */
    size_t n_qas;
    const finch_eval_tasks *tasks;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static size_t doc_index(const finch_ruler_qa_source *q, const char *context) {
    const char **hit = bsearch(&context, q->docs, q->n_docs, sizeof *q->docs, cmp_str);
    return (size_t)(hit - q->docs);
}

finch_status finch_ruler_qa_open(const finch_eval_tasks *squad, finch_ruler_qa_source **out) {
    finch_ruler_qa_source *q = calloc(1, sizeof *q);
    *out = NULL;
    if (!q || !(q->docs = calloc(squad->n + 1, sizeof *q->docs)) || !(q->qas = calloc(squad->n + 1, sizeof *q->qas)) ||
        !(q->gold = calloc(squad->n + 1, sizeof *q->gold))) {
        finch_ruler_qa_close(q);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory reading RULER's qa documents");
    }
    q->tasks = squad;
    for (size_t i = 0; i < squad->n; i++) q->docs[i] = squad->items[i].context;
    qsort(q->docs, squad->n, sizeof *q->docs, cmp_str);
    for (size_t i = 0; i < squad->n; i++) /* unique */
        if (!q->n_docs || strcmp(q->docs[q->n_docs - 1], q->docs[i])) q->docs[q->n_docs++] = q->docs[i];
    for (size_t i = 0; i < squad->n; i++)
        if (squad->items[i].n_answers) { /* not is_impossible */
            q->gold[q->n_qas] = doc_index(q, squad->items[i].context);
            q->qas[q->n_qas++] = i;
        }
    if (!q->n_qas) {
        finch_ruler_qa_close(q);
        return finch_fail(FINCH_ERR_FORMAT, "RULER's qa needs answerable SQuAD questions; the file has none");
    }
    *out = q;
    return FINCH_OK;
}

void finch_ruler_qa_close(finch_ruler_qa_source *q) {
    if (!q) return;
    free(q->docs); free(q->qas); free(q->gold);
    free(q);
}

size_t finch_ruler_qa_count(const finch_ruler_qa_source *q) { return q->n_qas; }

static const char QA_HEAD[] = "Answer the question based on the given documents. Only give me the answer and do not "
                              "output any other words.";

/* qa.py's more_context: the other paragraphs of the question's article,
 * in file order (consecutive questions of one paragraph count it once);
 * none when the file has no articles (the assets' sample). */
static size_t article_docs(const finch_ruler_qa_source *q, size_t task, size_t gold, size_t *more) {
    const finch_eval_tasks *ts = q->tasks;
    size_t art = ts->items[task].article, n = 0;
    const char *last = NULL;
    for (size_t i = 0; art && i < ts->n; i++) {
        if (ts->items[i].article != art || (last && !strcmp(last, ts->items[i].context))) continue;
        last = ts->items[i].context;
        size_t d = doc_index(q, last);
        if (d != gold) more[n++] = d;
    }
    return n;
}

/* k of from[0..n) without repetition (partial Fisher-Yates), onto out. */
static void sample_into(size_t *from, size_t n, size_t k, uint64_t *s, size_t *out) {
    for (size_t i = 0; i < k && i < n; i++) {
        size_t j = i + below(s, n - i), t = from[i];
        from[i] = from[j];
        from[j] = t;
        out[i] = from[i];
    }
}

/* The n_docs documents of question `task`, as qa.py picks them: its own
 * paragraph, then the article's other paragraphs (a sample of them when
 * they are more than needed), then a sample of the rest of the file; all
 * documents, repeated in order, when n_docs is not below their number;
 * shuffled. */
static size_t *qa_documents(const finch_ruler_qa_source *q, size_t task, size_t gold, size_t n_docs, uint64_t *s) {
    size_t *pick = calloc(n_docs + q->n_docs + q->tasks->n + 1, sizeof *pick), *pool = pick + n_docs;
    size_t *more = pool + q->n_docs;
    if (!pick) return NULL;
    if (n_docs < q->n_docs) {
        size_t n_more = article_docs(q, task, gold, more), need = n_docs - 1, n_pool = 0;
        pick[0] = gold;
        if (need > n_more) { /* all of the article, then others */
            memcpy(pick + 1, more, n_more * sizeof *more);
            for (size_t d = 0; d < q->n_docs; d++) {
                bool in_more = d == gold;
                for (size_t i = 0; i < n_more && !in_more; i++) in_more = more[i] == d;
                if (!in_more) pool[n_pool++] = d;
            }
            sample_into(pool, n_pool, need - n_more, s, pick + 1 + n_more);
        } else {
            sample_into(more, n_more, need, s, pick + 1);
        }
    } else {
        for (size_t i = 0; i < n_docs; i++) pick[i] = i % q->n_docs;
    }
    for (size_t i = n_docs; i > 1; i--) { size_t j = below(s, i), t = pick[i - 1]; pick[i - 1] = pick[j]; pick[j] = t; }
    return pick;
}

finch_status finch_ruler_qa_sample(const finch_ruler_qa_source *q, size_t index, size_t n_docs, uint64_t seed,
                                   char **input, char **answer_prefix, char ***outputs, size_t *n_outputs) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    const finch_eval_task *t = &q->tasks->items[q->qas[index % q->n_qas]];
    size_t *pick = qa_documents(q, q->qas[index % q->n_qas], q->gold[index % q->n_qas], n_docs ? n_docs : 1, &s);
    ruler_sample x = { 0 };
    text_buf in = { 0 };
    put(&in, QA_HEAD); put(&in, "\n\nThe following are given documents.\n\n");
    for (size_t i = 0; pick && i < (n_docs ? n_docs : 1); i++) { /* "Document {i}:\n{document}", "\n\n" between */
        char head[48];
        snprintf(head, sizeof head, "%sDocument %zu:\n", i ? "\n\n" : "", i + 1);
        put(&in, head); put(&in, q->docs[pick[i]]);
    }
    put(&in, "\n\n"); put(&in, QA_HEAD); put(&in, "\n\nQuestion: "); put(&in, t->question);
    x.input = in.s;
    x.answer_prefix = strdup(" Answer:");
    x.outputs = calloc(t->n_answers, sizeof *x.outputs);
    finch_status st = pick && !in.oom && x.answer_prefix && x.outputs ? FINCH_OK : FINCH_ERR_NOMEM;
    for (size_t i = 0; !st && i < t->n_answers; i++) /* every gold text, repeats kept as RULER keeps them */
        if (!(x.outputs[x.n_outputs++] = strdup(t->answers[i]))) st = FINCH_ERR_NOMEM;
    free(pick);
    if (st) { sample_free(&x); return finch_fail(st, "out of memory making a RULER item"); }
    *input = x.input;
    *answer_prefix = x.answer_prefix;
    *outputs = x.outputs;
    *n_outputs = x.n_outputs;
    return FINCH_OK;
}

/* ------------------------------------------------------------ the tasks */

static const char *const extra_tasks[] = { "vt", "cwe", "fwe" };

const char *finch_ruler_task_name(size_t i) {
    size_t n = sizeof niahs / sizeof niahs[0];
    if (i < n) return niahs[i].name;
    return i - n < sizeof extra_tasks / sizeof extra_tasks[0] ? extra_tasks[i - n] : NULL;
}

finch_status finch_ruler_sample(const char *task, size_t size, size_t length, uint64_t seed, char **input,
                                char **answer_prefix, char ***outputs, size_t *n_outputs) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    ruler_sample x = { 0 };
    finch_status st = FINCH_ERR_ARG;
    bool found = false;
    for (size_t i = 0; i < sizeof niahs / sizeof niahs[0] && !found; i++)
        if (!strcmp(task, niahs[i].name)) { found = true; st = niah_sample(&niahs[i], size, &s, &x); }
    if (!found && !strcmp(task, "vt")) { found = true; st = vt_sample(size, &s, &x); }
    if (!found && !strcmp(task, "cwe")) { found = true; st = cwe_sample(size, length, &s, &x); }
    if (!found && !strcmp(task, "fwe")) { found = true; st = fwe_sample(size, length, &s, &x); }
    if (!found && !strcmp(task, "qa_1"))
        return finch_fail(FINCH_ERR_ARG, "RULER task qa_1 is made from SQuAD documents (finch_ruler_qa_sample)");
    if (!found) return finch_fail(FINCH_ERR_ARG, "unknown RULER task '%.64s' (niah_single_1..3, niah_multikey_1..3, "
                                  "niah_multivalue, niah_multiquery, vt, cwe, fwe, qa_1)", task);
    if (st) { sample_free(&x); return st == FINCH_ERR_NOMEM ? finch_fail(st, "out of memory making a RULER item") : st; }
    *input = x.input;
    *answer_prefix = x.answer_prefix;
    *outputs = x.outputs;
    *n_outputs = x.n_outputs;
    return FINCH_OK;
}
