/* bench_zh.c - LongBench's Chinese metrics that segment words with jieba
 * (metrics.py of THUDM/LongBench at 2e00731f8d0b: qa_f1_zh_score for
 * multifieldqa_zh, rouge_zh_score for dureader and vcsum), given a
 * segmenter from outside (include/finch_benchmarks.h): jieba is Python, so
 * the CLI runs `jieba.cut(text, cut_all=False)` in a helper process
 * (tools/jieba_cut.py) and registers it here.  Without one the reader
 * refuses those datasets by name, as before.
 *
 * normalize_zh_answer, token by token: lower(), the characters of
 * string.punctuation and LongBench's cn_punctuation removed (its list, "》"
 * without "《" included), every white space character removed (Python's
 * "".join(s.split())).  lower() here is ASCII and full-width A-Z (Python
 * also lowers other non-ASCII letters).
 *
 * Texts are Python str in LongBench (its predictions decoded with
 * errors="replace"): a byte that does not start valid UTF-8 is U+FFFD here,
 * as finch_utf8_clean makes it, both in normalize_zh and in the text given
 * to the segmenter, which therefore always gets valid UTF-8. */
#include "finch_benchmarks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "util.h"

static finch_segment_fn g_segment;
static void *g_segment_user;

void finch_bench_set_segmenter(finch_segment_fn fn, void *user) {
    g_segment = fn;
    g_segment_user = user;
}

bool finch_bench_has_segmenter(void) { return g_segment != NULL; }

void finch_words_free(char **words, size_t n) {
    for (size_t i = 0; words && i < n; i++) free(words[i]);
    free(words);
}

/* ------------------------------------------------------ normalize_zh */

/* Python's str.isspace(): what str.split() splits on. */
static bool py_space(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

static const char CN_PUNCTUATION[] = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛"
                                     "〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.";
static const char PY_PUNCTUATION[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; /* string.punctuation */

/* lower() of one code point: ASCII and full-width A-Z. */
static unsigned lower_cp(unsigned cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp >= 0xFF21 && cp <= 0xFF3A) return cp + 0x20;
    return cp;
}

char *finch_lb_normalize_zh(const char *text) {
    size_t n = strlen(text), k = 0;
    char *out = finch_alloc(n + 1, 3); /* a stray byte grows to U+FFFD's 3 */
    if (!out) return NULL;
    for (const char *s = text, *end = text + n; s < end;) {
        uint32_t cp;
        size_t len = finch_utf8_decode(s, (size_t)(end - s), &cp);
        if (cp == FINCH_UC_INVALID) cp = 0xFFFD; /* a byte that is not UTF-8: U+FFFD, as finch_utf8_clean */
        unsigned low = lower_cp(cp);
        char ch[5] = { 0 };
        size_t m = finch_utf8_encode(low, ch);
        s += len;
        bool punct = low < 0x80 ? low && strchr(PY_PUNCTUATION, (int)low) : strstr(CN_PUNCTUATION, ch) != NULL;
        if (punct || py_space(low)) continue;
        memcpy(out + k, ch, m);
        k += m;
    }
    out[k] = 0;
    return out;
}

/* --------------------------------------------------------------- metrics */

double finch_lb_qa_f1_zh_words(const char *const *pred, size_t np, const char *const *gold, size_t ng) {
    char **p = finch_zalloc(np + 1, sizeof *p), **g = finch_zalloc(ng + 1, sizeof *g);
    bool *used = finch_zalloc(ng + 1, sizeof *used);
    size_t kp = 0, kg = 0, same = 0;
    double f1 = NAN;
    if (!p || !g || !used) goto done;
    for (size_t i = 0; i < np; i++) { /* normalised, the empty ones dropped */
        if (!(p[kp] = finch_lb_normalize_zh(pred[i]))) goto done;
        if (*p[kp]) kp++; else free(p[kp]);
    }
    for (size_t i = 0; i < ng; i++) {
        if (!(g[kg] = finch_lb_normalize_zh(gold[i]))) goto done;
        if (*g[kg]) kg++; else free(g[kg]);
    }
    for (size_t i = 0; i < kp; i++) /* Counter(pred) & Counter(gold): each gold word matched once */
        for (size_t j = 0; j < kg; j++)
            if (!used[j] && !strcmp(p[i], g[j])) { used[j] = true; same++; break; }
    if (same == 0) f1 = 0; /* f1_score: num_same == 0 -> 0 */
    else {
        double prec = (double)same / (double)kp, rec = (double)same / (double)kg;
        f1 = 2 * prec * rec / (prec + rec);
    }
done:
    finch_words_free(p, kp);
    finch_words_free(g, kg);
    free(used);
    return f1;
}

/* Both texts through the segmenter (NAN when there is none or it fails). */
static bool segment_both(const char *pred, const char *gold, char ***pw, size_t *np, char ***gw, size_t *ng) {
    *pw = *gw = NULL;
    *np = *ng = 0;
    if (!g_segment) { finch_fail(FINCH_ERR_UNSUPPORTED, "no Chinese word segmenter (jieba) is set"); return false; }
    /* the segmenter gets valid UTF-8: a stray byte is U+FFFD (finch_utf8_clean) */
    char *p = finch_utf8_clean(pred, strlen(pred)), *g = finch_utf8_clean(gold, strlen(gold));
    bool ok = p && g;
    if (!ok) finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    ok = ok && g_segment(g_segment_user, p, pw, np) == FINCH_OK && g_segment(g_segment_user, g, gw, ng) == FINCH_OK;
    free(p);
    free(g);
    if (ok) return true;
    finch_words_free(*pw, *np);
    finch_words_free(*gw, *ng);
    *pw = *gw = NULL;
    return false;
}

double finch_lb_qa_f1_zh(const char *pred, const char *gold) {
    char **pw, **gw;
    size_t np, ng;
    if (!segment_both(pred, gold, &pw, &np, &gw, &ng)) return NAN;
    double f = finch_lb_qa_f1_zh_words((const char *const *)pw, np, (const char *const *)gw, ng);
    finch_words_free(pw, np);
    finch_words_free(gw, ng);
    return f;
}

/* " ".join(words) */
static char *join_words(char **w, size_t n) {
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(w[i]) + 1;
    char *s = malloc(len), *o = s;
    for (size_t i = 0; s && i < n; i++) {
        if (i) *o++ = ' ';
        size_t l = strlen(w[i]);
        memcpy(o, w[i], l);
        o += l;
    }
    if (s) *o = 0;
    return s;
}

double finch_lb_rouge_zh(const char *pred, const char *gold) {
    char **pw, **gw;
    size_t np, ng;
    if (!segment_both(pred, gold, &pw, &np, &gw, &ng)) return NAN;
    char *p = join_words(pw, np), *g = join_words(gw, ng);
    double f = p && g ? finch_lb_rouge_l(p, g) : NAN;
    free(p);
    free(g);
    finch_words_free(pw, np);
    finch_words_free(gw, ng);
    return f;
}
