/* tokenizer_encode.c - text -> token ids.
 *
 * Data flow of finch_tokenize:
 *   1. literal special tokens are cut out of the text (leftmost, longest);
 *   2. each text segment between them is prepared by the family's rules:
 *      SentencePiece style: spaces -> U+2581 and a leading U+2581;
 *      byte-level: split by the pre-tokenizer regex into words, each word's
 *      bytes spelled in GPT-2's byte alphabet;
 *   3. a merge engine turns each prepared piece of text into ids:
 *      score_merge (best-scored concatenation is a piece: SentencePiece,
 *      tiktoken) or rank_merge (ranked merge rules: Hugging Face BPE).
 * Both engines keep a doubly linked list of symbols and a binary heap of
 * candidate merges with lazy deletion, so a text of n characters costs
 * O(n log n) rather than the O(n^2) of rescanning after every merge. */
#include "tokenizer_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX
static const char SPACE_MARK[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's space */

/* ------------------------------------------------------------ work space */

typedef struct {
    size_t start, len;  /* bytes of the prepared text; len 0 = merged away */
    size_t prev, next;  /* neighbours in the list, NONE at the ends */
    int32_t id;         /* piece id, -1 while unknown (score_merge) */
    bool unk;           /* an unknown-token symbol that may absorb more (fuse_unk) */
} tok_sym;

/* A candidate merge of symbols left and right into piece id.  It is stale
 * (skipped when popped) unless both symbols still have the lengths they had
 * when it was pushed: lengths only grow, so equal lengths mean unchanged. */
typedef struct {
    int64_t key; /* higher merges first */
    size_t left, right, len;
    int32_t id;
} tok_cand;

typedef struct {
    int32_t *ids;
    size_t n_ids, cap_ids;
    tok_sym *sym;
    size_t cap_sym;
    tok_cand *heap;
    size_t n_heap, cap_heap;
    char *buf;           /* the prepared text of one segment or word */
    size_t cap_buf;
    char *pre;           /* a segment with ByteLevel's added space */
    size_t cap_pre;
    uint32_t *cps;       /* pre-tokenizer: code points of a segment */
    uint8_t *cls;        /* their classes */
    size_t *offs;        /* their byte offsets, [n + 1] */
    size_t cap_cps, cap_cls, cap_offs;
} tok_work;

static void work_free(tok_work *w) {
    free(w->ids);
    free(w->sym);
    free(w->heap);
    free(w->buf);
    free(w->pre);
    free(w->cps);
    free(w->cls);
    free(w->offs);
}

/* Grow *p (elements of size sz, capacity *cap) to hold at least need. */
static finch_status grow(void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return FINCH_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2) return finch_fail(FINCH_ERR_NOMEM, "tokenizer buffer too large");
        c *= 2;
    }
    size_t bytes;
    if (!finch_mul_ok(c, sz, &bytes)) return finch_fail(FINCH_ERR_NOMEM, "tokenizer buffer too large");
    void *q = realloc(*p, bytes);
    if (!q) return finch_fail(FINCH_ERR_NOMEM, "out of memory while tokenizing");
    *p = q;
    *cap = c;
    return FINCH_OK;
}

static finch_status push_id(tok_work *w, int32_t id) {
    finch_status st = grow((void **)&w->ids, &w->cap_ids, w->n_ids + 1, sizeof *w->ids);
    if (st) return st;
    w->ids[w->n_ids++] = id;
    return FINCH_OK;
}

/* ------------------------------------------------------------------ heap */

static bool cand_before(const tok_cand *a, const tok_cand *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

static finch_status heap_push(tok_work *w, tok_cand c) {
    finch_status st = grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap);
    if (st) return st;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
    return FINCH_OK;
}

static tok_cand heap_pop(tok_work *w) {
    tok_cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Order-preserving map of a float score onto integers (NaN sorts lowest). */
static int64_t score_key(float f) {
    if (isnan(f)) return INT64_MIN;
    union { float f; uint32_t u; } v = { f };
    uint32_t u = (v.u & 0x80000000u) ? ~v.u : v.u | 0x80000000u;
    return (int64_t)u;
}

/* Join symbol r into its left neighbour l as piece id. */
static void sym_join(tok_sym *sym, size_t l, size_t r, int32_t id) {
    sym[l].len += sym[r].len;
    sym[l].id = id;
    sym[l].unk = false;
    sym[l].next = sym[r].next;
    if (sym[r].next != NONE) sym[sym[r].next].prev = l;
    sym[r].len = 0;
}

/* ------------------------------------------------ score merge (SentencePiece) */

/* Pieces a merge may produce: SentencePiece never merges into control,
 * unknown, byte or unused pieces. */
static bool mergeable(const finch_tokenizer *t, int32_t id) {
    return t->type[id] == TOK_T_NORMAL || t->type[id] == TOK_T_UNDEFINED;
}

static finch_status score_try(const finch_tokenizer *t, tok_work *w, const char *buf, size_t l, size_t r) {
    size_t len = w->sym[l].len + w->sym[r].len;
    int32_t id = tok_find(t, &t->pieces, buf + w->sym[l].start, len);
    if (id < 0 || !mergeable(t, id)) return FINCH_OK;
    return heap_push(w, (tok_cand){ score_key(t->score[id]), l, r, len, id });
}

/* A character that is no piece falls back to its bytes' <0xXX> pieces;
 * where those are missing it becomes unk, one for a run of unknown
 * characters as SentencePiece does.  *prev_unk tracks that run. */
static finch_status emit_unknown(const finch_tokenizer *t, tok_work *w, const char *s, size_t len, bool *prev_unk) {
    bool bytes = true;
    for (size_t i = 0; i < len && bytes; i++) bytes = t->byte_tok[(unsigned char)s[i]] >= 0;
    finch_status st = FINCH_OK;
    if (bytes) {
        for (size_t i = 0; i < len && !st; i++) st = push_id(w, t->byte_tok[(unsigned char)s[i]]);
        *prev_unk = false;
    } else {
        if (t->unk >= 0 && !*prev_unk) st = push_id(w, t->unk);
        *prev_unk = true;
    }
    return st;
}

/* Symbols start as the characters of buf; repeatedly merge the adjacent
 * pair whose concatenation is a piece with the highest score (ties: the
 * leftmost), as SentencePiece's BPE and llama.cpp do.  With score = -rank
 * this is also tiktoken's algorithm. */
static finch_status score_merge(const finch_tokenizer *t, tok_work *w, const char *buf, size_t len) {
    finch_status st = grow((void **)&w->sym, &w->cap_sym, len, sizeof *w->sym);
    if (st) return st;
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        uint32_t cp;
        size_t l = finch_utf8_decode(buf + i, len - i, &cp);
        w->sym[n] = (tok_sym){ i, l, n ? n - 1 : NONE, n + 1, -1, false };
        i += l;
    }
    if (n == 0) return FINCH_OK;
    w->sym[n - 1].next = NONE;
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if ((st = score_try(t, w, buf, i, i + 1))) return st;
    while (w->n_heap) {
        tok_cand c = heap_pop(w);
        tok_sym *L = &w->sym[c.left], *R = &w->sym[c.right];
        if (L->len == 0 || R->len == 0 || L->next != c.right || L->len + R->len != c.len) continue;
        sym_join(w->sym, c.left, c.right, c.id);
        if (w->sym[c.left].prev != NONE && (st = score_try(t, w, buf, w->sym[c.left].prev, c.left))) return st;
        if (w->sym[c.left].next != NONE && (st = score_try(t, w, buf, c.left, w->sym[c.left].next))) return st;
    }
    bool prev_unk = false;
    for (size_t i = 0; i != NONE; i = w->sym[i].next) {
        const tok_sym *s = &w->sym[i];
        int32_t id = s->id;
        if (id < 0) {
            id = tok_find(t, &t->pieces, buf + s->start, s->len);
            if (id >= 0 && !mergeable(t, id)) id = -1;
        }
        if (id >= 0) {
            prev_unk = false;
            st = push_id(w, id);
        } else {
            st = emit_unknown(t, w, buf + s->start, s->len, &prev_unk);
        }
        if (st) return st;
    }
    return FINCH_OK;
}

/* ------------------------------------------- rank merge (Hugging Face BPE) */

static finch_status rank_try(const finch_tokenizer *t, tok_work *w, size_t l, size_t r) {
    int32_t rank, id;
    if (!tok_merge_find(t, w->sym[l].id, w->sym[r].id, &rank, &id)) return FINCH_OK;
    return heap_push(w, (tok_cand){ -(int64_t)rank, l, r, w->sym[l].len + w->sym[r].len, id });
}

static finch_status add_sym(tok_work *w, size_t *n, size_t start, size_t len, int32_t id, bool unk) {
    finch_status st = grow((void **)&w->sym, &w->cap_sym, *n + 1, sizeof *w->sym);
    if (st) return st;
    w->sym[*n] = (tok_sym){ start, len, *n ? *n - 1 : NONE, *n + 1, id, unk };
    (*n)++;
    return FINCH_OK;
}

/* Hugging Face's BPE model on one word: symbols are the characters' pieces
 * (unknown characters: their <0xXX> pieces with byte_fallback, else unk,
 * consecutive ones fused with fuse_unk, else dropped); then the adjacent
 * pair with the lowest-ranked merge rule is merged (ties: the leftmost)
 * until no rule applies. */
static finch_status rank_merge(const finch_tokenizer *t, tok_work *w, const char *buf, size_t len) {
    finch_status st;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = finch_utf8_decode(buf + i, len - i, &cp);
        int32_t id = tok_find(t, &t->pieces, buf + i, l);
        if (id >= 0) {
            st = add_sym(w, &n, i, l, id, false);
        } else {
            bool bytes = t->byte_fallback;
            for (size_t k = 0; bytes && k < l; k++) bytes = t->byte_tok[(unsigned char)buf[i + k]] >= 0;
            st = FINCH_OK;
            if (bytes) {
                for (size_t k = 0; k < l && !st; k++)
                    st = add_sym(w, &n, i + k, 1, t->byte_tok[(unsigned char)buf[i + k]], false);
            } else if (t->unk >= 0) {
                if (t->fuse_unk && n > 0 && w->sym[n - 1].unk) w->sym[n - 1].len += l;
                else st = add_sym(w, &n, i, l, t->unk, true);
            }
        }
        if (st) return st;
        i += l;
    }
    if (n == 0) return FINCH_OK;
    w->sym[n - 1].next = NONE;
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if ((st = rank_try(t, w, i, i + 1))) return st;
    while (w->n_heap) {
        tok_cand c = heap_pop(w);
        tok_sym *L = &w->sym[c.left], *R = &w->sym[c.right];
        if (L->len == 0 || R->len == 0 || L->next != c.right || L->len + R->len != c.len) continue;
        sym_join(w->sym, c.left, c.right, c.id);
        if (w->sym[c.left].prev != NONE && (st = rank_try(t, w, w->sym[c.left].prev, c.left))) return st;
        if (w->sym[c.left].next != NONE && (st = rank_try(t, w, c.left, w->sym[c.left].next))) return st;
    }
    for (size_t i = 0; i != NONE; i = w->sym[i].next)
        if ((st = push_id(w, w->sym[i].id))) return st;
    return FINCH_OK;
}

/* ------------------------------------------- SentencePiece-style segments */

static finch_status sp_word(const finch_tokenizer *t, tok_work *w, const char *s, size_t len) {
    return t->algo == TOK_SPM ? score_merge(t, w, s, len) : rank_merge(t, w, s, len);
}

/* Spaces become U+2581, with one more in front when `prefix`; then the
 * whole segment is one word (or, with Metaspace split, one word per
 * U+2581-led run). */
static finch_status sp_segment(const finch_tokenizer *t, tok_work *w, const char *s, size_t len, bool prefix) {
    size_t need;
    if (!finch_mul_ok(len, 3, &need) || !finch_add_ok(need, 3, &need))
        return finch_fail(FINCH_ERR_NOMEM, "text too long");
    finch_status st = grow((void **)&w->buf, &w->cap_buf, need, 1);
    if (st) return st;
    size_t n = 0;
    if (prefix) {
        memcpy(w->buf, SPACE_MARK, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ' && t->escape_spaces) {
            memcpy(w->buf + n, SPACE_MARK, 3);
            n += 3;
        } else {
            w->buf[n++] = s[i];
        }
    }
    if (!t->metaspace_split) return sp_word(t, w, w->buf, n);
    size_t start = 0;
    for (size_t i = 3; i + 3 <= n; i++) {
        if (memcmp(w->buf + i, SPACE_MARK, 3) != 0) continue;
        if ((st = sp_word(t, w, w->buf + start, i - start))) return st;
        start = i;
    }
    return sp_word(t, w, w->buf + start, n - start);
}

/* ------------------------------------------------ byte-level pre-tokenizer */

/* The split regexes, written out as matchers over code points.  Each
 * returns the end of the match that starts at i (> i).  They follow the
 * regex semantics exactly: alternatives in order, greedy with
 * backtracking.
 *
 * GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+
 *         |\s+(?!\S)|\s+
 * Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *         | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen2:  as Llama 3 with \p{N} (one digit per word). */

static size_t run_of(const uint8_t *cls, size_t n, size_t i, uint8_t c) {
    while (i < n && cls[i] == c) i++;
    return i;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length of a contraction ('s 't 're 've 'm 'll 'd) at i, or 0. */
static size_t contraction(const uint32_t *cp, size_t n, size_t i, bool icase) {
    if (cp[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
    if (icase) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S) and then \s+: a run of white space gives up its last
 * character when a non-space follows, so that " word" stays together. */
static size_t space_run(const uint8_t *cls, size_t n, size_t i) {
    size_t j = run_of(cls, n, i, FINCH_UC_SPACE);
    return j < n && j - i > 1 ? j - 1 : j;
}

static size_t match_gpt2(const uint32_t *cp, const uint8_t *cls, size_t n, size_t i) {
    size_t k = contraction(cp, n, i, false);
    if (k) return i + k;
    /* " ?X+" for X = letters, numbers, others (the three classes that are not space) */
    if (cls[i] != FINCH_UC_SPACE) return run_of(cls, n, i, cls[i]);
    if (cp[i] == ' ' && i + 1 < n && cls[i + 1] != FINCH_UC_SPACE) return run_of(cls, n, i + 1, cls[i + 1]);
    return space_run(cls, n, i);
}

static bool is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

static size_t match_llama3(const uint32_t *cp, const uint8_t *cls, size_t n, size_t i, size_t max_digits) {
    size_t k = contraction(cp, n, i, true);
    if (k) return i + k;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cls[i] == FINCH_UC_LETTER) return run_of(cls, n, i, FINCH_UC_LETTER);
    if (!is_newline(cp[i]) && cls[i] != FINCH_UC_NUMBER && i + 1 < n && cls[i + 1] == FINCH_UC_LETTER)
        return run_of(cls, n, i + 1, FINCH_UC_LETTER);
    /* \p{N}{1,max_digits} */
    if (cls[i] == FINCH_UC_NUMBER) {
        size_t j = i + 1;
        while (j < n && j - i < max_digits && cls[j] == FINCH_UC_NUMBER) j++;
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t s = cp[i] == ' ' && i + 1 < n && cls[i + 1] == FINCH_UC_OTHER ? i + 1 : i;
    if (cls[s] == FINCH_UC_OTHER) {
        size_t j = run_of(cls, n, s, FINCH_UC_OTHER);
        while (j < n && is_newline(cp[j])) j++;
        return j;
    }
    /* \s*[\r\n]+ : up to the last newline of the white-space run */
    size_t j = run_of(cls, n, i, FINCH_UC_SPACE);
    for (size_t e = j; e > i; e--)
        if (is_newline(cp[e - 1])) return e;
    return space_run(cls, n, i);
}

static size_t pretok_match(tok_pre pre, const uint32_t *cp, const uint8_t *cls, size_t n, size_t i) {
    switch (pre) {
    case TOK_PRE_LLAMA3: return match_llama3(cp, cls, n, i, 3);
    case TOK_PRE_QWEN2: return match_llama3(cp, cls, n, i, 1);
    case TOK_PRE_GPT2: break;
    }
    return match_gpt2(cp, cls, n, i);
}

/* One pre-tokenized word: its bytes spelled in the byte alphabet, then
 * merged. */
static finch_status byte_word(const finch_tokenizer *t, tok_work *w, const char *s, size_t len) {
    size_t need;
    if (!finch_mul_ok(len, 2, &need)) return finch_fail(FINCH_ERR_NOMEM, "text too long");
    finch_status st = grow((void **)&w->buf, &w->cap_buf, need, 1);
    if (st) return st;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += finch_utf8_encode(tok_byte_to_cp((uint8_t)s[i]), w->buf + n);
    if (t->ignore_merges) {
        int32_t id = tok_find(t, &t->pieces, w->buf, n);
        if (id >= 0) return push_id(w, id);
    }
    return t->algo == TOK_TIKTOKEN ? score_merge(t, w, w->buf, n) : rank_merge(t, w, w->buf, n);
}

static finch_status byte_segment(const finch_tokenizer *t, tok_work *w, const char *s, size_t len) {
    finch_status st;
    /* HF ByteLevel add_prefix_space: a space in front unless there is one. */
    if (t->bl_prefix_space && s[0] != ' ') {
        if ((st = grow((void **)&w->pre, &w->cap_pre, len + 1, 1))) return st;
        w->pre[0] = ' ';
        memcpy(w->pre + 1, s, len);
        s = w->pre;
        len++;
    }
    if ((st = grow((void **)&w->cps, &w->cap_cps, len, sizeof *w->cps)) ||
        (st = grow((void **)&w->cls, &w->cap_cls, len, 1)) ||
        (st = grow((void **)&w->offs, &w->cap_offs, len + 1, sizeof *w->offs)))
        return st;
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        uint32_t cp;
        size_t l = finch_utf8_decode(s + i, len - i, &cp);
        w->cps[n] = cp;
        w->cls[n] = cp == FINCH_UC_INVALID ? FINCH_UC_OTHER : (uint8_t)finch_uc_classify(cp);
        w->offs[n] = i;
        i += l;
    }
    w->offs[n] = len;
    for (size_t i = 0; i < n;) {
        size_t j = pretok_match(t->pre, w->cps, w->cls, n, i);
        if ((st = byte_word(t, w, s + w->offs[i], w->offs[j] - w->offs[i]))) return st;
        i = j;
    }
    return FINCH_OK;
}

/* --------------------------------------------------------------- driver */

/* Encode the text segment s[0..len) that lies between special tokens;
 * at_start: it begins the text; continued: it continues an earlier block of
 * the same text, so it gets no leading-space marker. */
static finch_status encode_segment(const finch_tokenizer *t, tok_work *w, const char *s, size_t len,
                                   bool at_start, bool continued) {
    if (len == 0) return FINCH_OK;
    if (t->algo == TOK_BYTE_BPE || t->algo == TOK_TIKTOKEN) return byte_segment(t, w, s, len);
    bool prefix = false;
    switch (t->prepend) {
    case TOK_PREPEND_NONE: break;
    case TOK_PREPEND_TEXT_START:
    case TOK_PREPEND_FIRST: prefix = at_start; break;
    case TOK_PREPEND_EACH: prefix = true; break;
    }
    /* Metaspace adds its U+2581 only where the segment has no space yet. */
    if (prefix && t->prepend_unless_space && s[0] == ' ' && t->escape_spaces) prefix = false;
    return sp_segment(t, w, s, len, prefix && !continued);
}

/* The longest special token at text[i..len), or -1; *mlen gets its length. */
static int32_t match_special(const finch_tokenizer *t, const char *text, size_t len, size_t i, size_t *mlen) {
    if (!t->special_first[(unsigned char)text[i]]) return -1;
    for (size_t k = 0; k < t->n_special_lens; k++) {
        size_t l = t->special_lens[k];
        if (l > len - i) continue;
        int32_t id = tok_find(t, &t->specials, text + i, l);
        if (id >= 0) {
            *mlen = l;
            return id;
        }
    }
    return -1;
}

/* continuation: the text continues an earlier one (no leading-space marker). */
static finch_status tokenize(const finch_tokenizer *t, tok_work *w, const char *text, size_t len, bool bos,
                             bool continuation) {
    finch_status st;
    if (bos && (st = push_id(w, t->bos))) return st;
    size_t seg = 0;
    for (size_t i = 0; i < len;) {
        size_t mlen = 0;
        int32_t id = match_special(t, text, len, i, &mlen);
        if (id < 0) {
            i++;
            continue;
        }
        /* HF's Prepend normalizer runs before special tokens are found, so
         * a text that starts with one gets a lone U+2581 in front of it. */
        if (i == 0 && !continuation && t->prepend == TOK_PREPEND_TEXT_START && (t->algo == TOK_SPM || t->algo == TOK_SP_BPE)) {
            if ((st = sp_word(t, w, SPACE_MARK, 3))) return st;
        }
        if (i > seg) {
            if ((st = encode_segment(t, w, text + seg, i - seg, seg == 0, seg == 0 && continuation))) return st;
        }
        if ((st = push_id(w, id))) return st;
        i += mlen;
        seg = i;
    }
    return encode_segment(t, w, text + seg, len - seg, seg == 0, seg == 0 && continuation);
}

finch_status finch_tokenize_ex(const finch_tokenizer *t, const char *text, size_t len, int add_bos,
                               int continuation, int32_t **ids, size_t *n_ids) {
    if (!t || !ids || !n_ids || (!text && len)) return finch_fail(FINCH_ERR_ARG, "finch_tokenize: bad arguments");
    *ids = NULL;
    *n_ids = 0;
    tok_work w = { 0 };
    finch_status st = tokenize(t, &w, text, len, add_bos && t->add_bos && t->bos >= 0, continuation != 0);
    if (st == FINCH_OK && !w.ids) st = grow((void **)&w.ids, &w.cap_ids, 1, sizeof *w.ids);
    if (st != FINCH_OK) {
        work_free(&w);
        return st;
    }
    *ids = w.ids;
    *n_ids = w.n_ids;
    w.ids = NULL;
    work_free(&w);
    return FINCH_OK;
}

finch_status finch_tokenize(const finch_tokenizer *t, const char *text, size_t len, int add_bos,
                            int32_t **ids, size_t *n_ids) {
    return finch_tokenize_ex(t, text, len, add_bos, 0, ids, n_ids);
}
