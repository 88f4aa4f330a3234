/* tokenizer.c - the vocabulary tables every tokenizer format shares: hash
 * maps, the byte pieces, the special-token index, decoded bytes, and the
 * small public accessors.  Encoding is in tokenizer_encode.c, the file
 * formats in tokenizer_load.c. */
#include "tokenizer_impl.h"
#include "finch_chat.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- hashing */

/* A fast 64-bit string hash (8 bytes per step, multiply-xorshift mixing). */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h;
}

/* Smallest power of two >= 2 * count (at least 16): load factor <= 1/2. */
static bool table_size(size_t count, size_t *out) {
    size_t cap = 16;
    while (cap / 2 < count) {
        if (cap > SIZE_MAX / 4) return false;
        cap *= 2;
    }
    *out = cap;
    return true;
}

static finch_status strmap_init(tok_strmap *m, size_t count) {
    size_t cap;
    if (!table_size(count, &cap)) return finch_fail(FINCH_ERR_NOMEM, "tokenizer hash table too large");
    m->slots = finch_zalloc(cap, sizeof *m->slots);
    if (!m->slots) return FINCH_ERR_NOMEM;
    m->mask = cap - 1;
    return FINCH_OK;
}

int32_t tok_find(const finch_tokenizer *t, const tok_strmap *m, const char *s, size_t len) {
    if (!m->slots) return -1;
    uint64_t h = hash_bytes(s, len), tag = h >> 32;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t e = m->slots[i];
        if (e == 0) return -1;
        if ((e >> 32) == tag) {
            size_t id = (size_t)(e & 0xFFFFFFFFu) - 1, plen;
            const char *p = tok_text(t, id, &plen);
            if (plen == len && memcmp(p, s, len) == 0) return (int32_t)id;
        }
    }
}

/* Insert piece id under its text.  A text that is already present now maps
 * to id: the last of duplicate pieces wins, as in llama.cpp. */
static void strmap_insert(const finch_tokenizer *t, tok_strmap *m, size_t id) {
    size_t len;
    const char *s = tok_text(t, id, &len);
    uint64_t h = hash_bytes(s, len), tag = h >> 32;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t e = m->slots[i];
        if (e != 0) { /* occupied: take it over only when it holds the same text */
            if ((e >> 32) != tag) continue;
            size_t other = (size_t)(e & 0xFFFFFFFFu) - 1, olen;
            const char *p = tok_text(t, other, &olen);
            if (olen != len || memcmp(p, s, len) != 0) continue;
        }
        m->slots[i] = (tag << 32) | (uint64_t)(id + 1);
        return;
    }
}

int32_t tok_lookup_any(const finch_tokenizer *t, const char *s, size_t len) {
    int32_t id = tok_find(t, &t->pieces, s, len);
    return id >= 0 ? id : tok_find(t, &t->specials, s, len);
}

static size_t pair_hash(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key ^ (key >> 31));
}

/* ------------------------------------------------- GPT-2 byte alphabet */

/* GPT-2 gives every byte a printable code point: the printable Latin-1
 * bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves, the other
 * 68 bytes (controls, space, 0x7F..0xA0, soft hyphen) become U+0100.. in
 * byte order. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    if (b <= 0x20) return 0x100u + b;                /* 0x00..0x20 -> 0..32  */
    if (b <= 0xA0) return 0x100u + 33 + (b - 0x7F);  /* 0x7F..0xA0 -> 33..66 */
    return 0x100u + 67;                              /* 0xAD             */
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp < 0x100 + 33) return (int)(cp - 0x100);
    if (cp < 0x100 + 67) return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 67) return 0xAD;
    return -1;
}

/* ------------------------------------------------------------- building */

finch_status tok_new(size_t n, tok_algo algo, finch_tokenizer **out) {
    *out = NULL;
    if (n == 0) return finch_fail(FINCH_ERR_FORMAT, "tokenizer has no tokens");
    if (n >= INT32_MAX) return finch_fail(FINCH_ERR_FORMAT, "tokenizer has %zu tokens, too many", n);
    finch_tokenizer *t = finch_zalloc(1, sizeof *t);
    if (!t) return FINCH_ERR_NOMEM;
    t->algo = algo;
    t->n = n;
    t->bos = t->eos = t->unk = -1;
    for (size_t b = 0; b < 256; b++) t->byte_tok[b] = -1;
    t->type = finch_alloc(n, 1);
    t->score = finch_zalloc(n, sizeof *t->score);
    if (!t->type || !t->score) {
        finch_tokenizer_free(t);
        return FINCH_ERR_NOMEM;
    }
    memset(t->type, TOK_T_UNUSED, n);
    *out = t;
    return FINCH_OK;
}

finch_status tok_set_texts(finch_tokenizer *t, const char *const *texts, const size_t *lens) {
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!finch_add_ok(total, lens[i], &total) || !finch_add_ok(total, 1, &total))
            return finch_fail(FINCH_ERR_NOMEM, "tokenizer texts too large");
    t->text = finch_alloc(total, 1);
    t->text_off = finch_alloc(t->n + 1, sizeof *t->text_off);
    if (!t->text || !t->text_off) return FINCH_ERR_NOMEM;
    size_t off = 0;
    for (size_t i = 0; i < t->n; i++) {
        t->text_off[i] = off;
        if (lens[i]) memcpy(t->text + off, texts[i], lens[i]);
        off += lens[i];
        t->text[off++] = 0;
    }
    t->text_off[t->n] = off;
    return FINCH_OK;
}

static bool is_special_type(uint8_t type) {
    return type == TOK_T_UNKNOWN || type == TOK_T_CONTROL || type == TOK_T_USER;
}

int tok_parse_byte_piece(const char *s, size_t len) {
    if (len != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool is_sp_algo(tok_algo a) { return a == TOK_SPM || a == TOK_SP_BPE; }

/* Bytes piece id decodes to, written to out (NULL: only counted). */
static size_t decode_piece(const finch_tokenizer *t, size_t id, char *out) {
    size_t len;
    const char *s = tok_text(t, id, &len);
    uint8_t type = t->type[id];
    if (type == TOK_T_CONTROL) return 0;
    if (type == TOK_T_BYTE) {
        int b = tok_parse_byte_piece(s, len);
        if (b >= 0) {
            if (out) out[0] = (char)b;
            return 1;
        }
    }
    size_t n = 0;
    if (is_sp_algo(t->algo)) {
        for (size_t i = 0; i < len;) {
            if (t->escape_spaces && len - i >= 3 && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                if (out) out[n] = ' ';
                n++;
                i += 3;
            } else {
                if (out) out[n] = s[i];
                n++;
                i++;
            }
        }
        return n;
    }
    /* Byte-level: literal specials are raw text; other pieces are spelled
     * in the byte alphabet (a character outside it is kept as it is). */
    if (is_special_type(type)) {
        if (out) memcpy(out, s, len);
        return len;
    }
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = finch_utf8_decode(s + i, len - i, &cp);
        int b = cp == FINCH_UC_INVALID ? -1 : tok_cp_to_byte(cp);
        if (b >= 0) {
            if (out) out[n] = (char)b;
            n++;
        } else {
            if (out) memcpy(out + n, s + i, l);
            n += l;
        }
        i += l;
    }
    return n;
}

static int cmp_size_desc(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

finch_status tok_finish(finch_tokenizer *t) {
    if (!t->text) return finch_fail(FINCH_ERR_INTERNAL, "tokenizer texts not set");
    if (t->bos >= (int32_t)t->n || t->eos >= (int32_t)t->n || t->unk >= (int32_t)t->n)
        return finch_fail(FINCH_ERR_FORMAT, "special token id out of range (bos %d, eos %d, unk %d, %zu tokens)",
                          t->bos, t->eos, t->unk, t->n);

    /* Hash maps: what the encoders may produce, and what is matched literally. */
    size_t n_pieces = 0, n_specials = 0;
    for (size_t i = 0; i < t->n; i++) {
        size_t len;
        tok_text(t, i, &len);
        if (len == 0) continue;
        if (is_special_type(t->type[i])) n_specials++;
        else n_pieces++;
    }
    finch_status st;
    if ((st = strmap_init(&t->pieces, n_pieces)) || (st = strmap_init(&t->specials, n_specials))) return st;
    t->special_lens = finch_alloc(n_specials ? n_specials : 1, sizeof *t->special_lens);
    if (!t->special_lens) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        if (len == 0) continue;
        if (is_special_type(t->type[i])) {
            strmap_insert(t, &t->specials, i);
            t->special_first[(unsigned char)s[0]] = 1;
            t->special_lens[t->n_special_lens++] = len;
        } else {
            strmap_insert(t, &t->pieces, i);
        }
    }
    qsort(t->special_lens, t->n_special_lens, sizeof *t->special_lens, cmp_size_desc);
    size_t distinct = 0;
    for (size_t i = 0; i < t->n_special_lens; i++)
        if (distinct == 0 || t->special_lens[distinct - 1] != t->special_lens[i])
            t->special_lens[distinct++] = t->special_lens[i];
    t->n_special_lens = distinct;

    /* The piece of each raw byte. */
    if (is_sp_algo(t->algo)) {
        for (size_t i = 0; i < t->n; i++) {
            if (t->type[i] != TOK_T_BYTE) continue;
            size_t len;
            const char *s = tok_text(t, i, &len);
            int b = tok_parse_byte_piece(s, len);
            if (b < 0)
                return finch_fail(FINCH_ERR_FORMAT, "token %zu has the byte type but is not <0xXX>", i);
            if (t->byte_tok[b] < 0) t->byte_tok[b] = (int32_t)i;
        }
    } else {
        for (unsigned b = 0; b < 256; b++) {
            char u[4];
            size_t l = finch_utf8_encode(tok_byte_to_cp((uint8_t)b), u);
            t->byte_tok[b] = tok_find(t, &t->pieces, u, l);
            if (t->byte_tok[b] < 0)
                return finch_fail(FINCH_ERR_FORMAT, "byte-level vocabulary lacks the piece of byte 0x%02X", b);
        }
    }

    /* Decoded bytes of every piece, so that decoding is a copy. */
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++) total += decode_piece(t, i, NULL); /* <= text size */
    t->dec = finch_alloc(total ? total : 1, 1);
    t->dec_off = finch_alloc(t->n + 1, sizeof *t->dec_off);
    if (!t->dec || !t->dec_off) return FINCH_ERR_NOMEM;
    size_t off = 0;
    for (size_t i = 0; i < t->n; i++) {
        t->dec_off[i] = off;
        off += decode_piece(t, i, t->dec + off);
    }
    t->dec_off[t->n] = off;
    return FINCH_OK;
}

finch_status tok_set_merges(finch_tokenizer *t, const int32_t *pairs, size_t n_pairs) {
    size_t cap, max_len = 0;
    if (!table_size(n_pairs, &cap)) return finch_fail(FINCH_ERR_NOMEM, "too many merges");
    free(t->merges.slots);
    free(t->merge_list);
    t->n_merges = 0;
    t->merges.slots = finch_alloc(cap, sizeof *t->merges.slots);
    t->merge_list = finch_alloc(n_pairs ? 2 * n_pairs : 1, sizeof *t->merge_list);
    if (!t->merges.slots || !t->merge_list) return FINCH_ERR_NOMEM;
    t->merges.mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->merges.slots[i] = (tok_pair_slot){ UINT64_MAX, 0, 0 };
    for (size_t i = 0; i < t->n; i++) {
        size_t len;
        tok_text(t, i, &len);
        if (len > max_len) max_len = len;
    }
    char *cat = finch_alloc(2 * max_len + 1, 1);
    if (!cat) return FINCH_ERR_NOMEM;
    for (size_t k = 0; k < n_pairs; k++) {
        int32_t a = pairs[2 * k], b = pairs[2 * k + 1];
        if (a < 0 || b < 0 || (size_t)a >= t->n || (size_t)b >= t->n) {
            free(cat);
            return finch_fail(FINCH_ERR_FORMAT, "merge %zu refers to token ids %d, %d out of range", k, a, b);
        }
        size_t la, lb;
        const char *sa = tok_text(t, (size_t)a, &la), *sb = tok_text(t, (size_t)b, &lb);
        memcpy(cat, sa, la);
        memcpy(cat + la, sb, lb);
        int32_t r = tok_lookup_any(t, cat, la + lb);
        if (r < 0) continue; /* its result is no piece: it can never apply */
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        size_t i = pair_hash(key) & t->merges.mask;
        while (t->merges.slots[i].key != UINT64_MAX && t->merges.slots[i].key != key) i = (i + 1) & t->merges.mask;
        if (t->merges.slots[i].key == key) continue; /* a repeated merge keeps its first rank */
        t->merges.slots[i] = (tok_pair_slot){ key, (int32_t)t->n_merges, r };
        t->merge_list[2 * t->n_merges] = a;
        t->merge_list[2 * t->n_merges + 1] = b;
        t->n_merges++;
    }
    free(cat);
    return FINCH_OK;
}

/* Rank and result of merging the adjacent pieces (a, b); false if none. */
bool tok_merge_find(const finch_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    if (!t->merges.slots) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = pair_hash(key) & t->merges.mask;; i = (i + 1) & t->merges.mask) {
        const tok_pair_slot *s = &t->merges.slots[i];
        if (s->key == UINT64_MAX) return false;
        if (s->key == key) {
            *rank = s->rank;
            *id = s->id;
            return true;
        }
    }
}

void finch_tokenizer_free(finch_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->dec);
    free(t->dec_off);
    free(t->type);
    free(t->score);
    free(t->pieces.slots);
    free(t->specials.slots);
    free(t->special_lens);
    free(t->merges.slots);
    free(t->merge_list);
    free(t->chat_template);
    free(t);
}

/* ------------------------------------------------------------ accessors */

int32_t finch_tokenizer_bos(const finch_tokenizer *t) { return t ? t->bos : -1; }
int32_t finch_tokenizer_eos(const finch_tokenizer *t) { return t ? t->eos : -1; }
size_t finch_tokenizer_vocab(const finch_tokenizer *t) { return t ? t->n : 0; }
int finch_tokenizer_add_bos(const finch_tokenizer *t) { return t && t->add_bos && t->bos >= 0; }

const char *finch_tokenizer_chat_template(const finch_tokenizer *t) { return t ? t->chat_template : NULL; }

const char *finch_tokenizer_kind(const finch_tokenizer *t) {
    if (!t) return "none";
    return is_sp_algo(t->algo) ? "llama" : "gpt2";
}

finch_status finch_tokenizer_set_bos_eos(finch_tokenizer *t, int32_t bos, int32_t eos) {
    if (!t) return finch_fail(FINCH_ERR_ARG, "no tokenizer");
    if (bos < -1 || eos < -1 || bos >= (int32_t)t->n || eos >= (int32_t)t->n)
        return finch_fail(FINCH_ERR_ARG, "bos %d / eos %d out of range for %zu tokens", bos, eos, t->n);
    t->bos = bos;
    t->eos = eos;
    return FINCH_OK;
}

/* ------------------------------------------------------------- decoding */

const char *finch_token_piece(const finch_tokenizer *t, int32_t prev, int32_t id, size_t *len) {
    *len = 0;
    if (!t || id < 0 || (size_t)id >= t->n) return NULL;
    const char *s = t->dec + t->dec_off[id];
    size_t n = t->dec_off[id + 1] - t->dec_off[id];
    /* SentencePiece adds a space in front of the text; take it off again
     * at the start of the text, i.e. after BOS (or with no previous token),
     * and after a special token where the encoder added one there too. */
    if (is_sp_algo(t->algo) && t->prepend != TOK_PREPEND_NONE && n > 0 && s[0] == ' ') {
        bool after_special = prev >= 0 && (size_t)prev < t->n && is_special_type(t->type[prev]) &&
                             t->prepend == TOK_PREPEND_EACH;
        if (prev < 0 || prev == t->bos || after_special) {
            s++;
            n--;
        }
    }
    *len = n;
    return s;
}

size_t finch_token_to_bytes(const finch_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (!buf && cap) return 0;
    size_t len;
    const char *s = finch_token_piece(t, prev, id, &len);
    if (!s) return 0;
    if (len > cap) len = cap;
    if (len) memcpy(buf, s, len);
    return len;
}
