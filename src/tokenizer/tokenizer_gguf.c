/* tokenizer_gguf.c - tokenizers from GGUF's tokenizer.ggml.* keys
 * (llama.cpp's "llama" and "gpt2" models), and any tokenizer back to GGUF
 * (`finch convert`).  The other formats: tokenizer_json.c (Hugging Face
 * tokenizer.json), tokenizer_llama2c.c (llama2.c tokenizer.bin),
 * tokenizer_tiktoken.c (Llama 3's base64 piece + rank lines).
 *
 * Every count, id and length read from a file is checked before use; what
 * the encoders need beyond that (byte pieces, hash maps) is built and
 * checked by tok_finish in tokenizer.c. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ GGUF */

/* An optional id key: absent, negative or all-ones ("none" as some writers
 * spell it) -> keeps *id; a value past the vocabulary is an error. */
static finch_status gguf_token_id(const gguf_file *g, const char *key, size_t n, int32_t *id) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return FINCH_OK;
    bool is_signed = kv->type == GGUF_INT8 || kv->type == GGUF_INT16 || kv->type == GGUF_INT32 || kv->type == GGUF_INT64;
    if (is_signed && kv->v.i < 0) { /* -1: none */
        *id = -1;
        return FINCH_OK;
    }
    uint64_t v;
    if (!gguf_get_u64(g, key, &v)) return finch_fail(FINCH_ERR_FORMAT, "%s is not an integer", key);
    if (v == UINT32_MAX || v == UINT64_MAX) {
        *id = -1;
        return FINCH_OK;
    }
    if (v >= n) return finch_fail(FINCH_ERR_FORMAT, "%s = %llu is out of range (%zu tokens)", key, (unsigned long long)v, n);
    *id = (int32_t)v;
    return FINCH_OK;
}

static bool gguf_flag(const gguf_file *g, const char *key, bool dflt) {
    uint64_t v;
    return gguf_get_u64(g, key, &v) ? v != 0 : dflt;
}

/* An optional array under key: NULL when absent; an error when it is not
 * an array of the wanted kind (0: strings, 1: numbers) of n elements. */
static finch_status gguf_array(const gguf_file *g, const char *key, int kind, size_t n, const gguf_kv **out) {
    const gguf_kv *kv = gguf_find(g, key);
    *out = NULL;
    if (!kv) return FINCH_OK;
    if (kv->type != GGUF_ARRAY) return finch_fail(FINCH_ERR_FORMAT, "%s is not an array", key);
    gguf_type et = kv->v.arr.type;
    if (kind == 0 && (et != GGUF_STRING || !kv->v.arr.strs))
        return finch_fail(FINCH_ERR_FORMAT, "%s is not an array of strings", key);
    if (kind == 1 && (et == GGUF_STRING || et == GGUF_ARRAY))
        return finch_fail(FINCH_ERR_FORMAT, "%s is not a numeric array", key);
    if (n != SIZE_MAX && kv->v.arr.n != n)
        return finch_fail(FINCH_ERR_FORMAT, "%s has %zu entries for %zu tokens", key, kv->v.arr.n, n);
    *out = kv;
    return FINCH_OK;
}

/* Split a GGUF merge "left right" at its space (the left piece may itself
 * start with one, as llama.cpp allows) and look both pieces up. */
static finch_status parse_merges_gguf(finch_tokenizer *t, const gguf_kv *kv) {
    size_t n = kv->v.arr.n, k = 0;
    int32_t *pairs = finch_alloc(n ? 2 * n : 1, sizeof *pairs);
    if (!pairs) return FINCH_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        gguf_str s = kv->v.arr.strs[i];
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) {
            free(pairs);
            return finch_fail(FINCH_ERR_FORMAT, "merge %zu (\"%.*s\") has no space", i, (int)(s.len > 40 ? 40 : s.len), s.ptr);
        }
        size_t ll = (size_t)(sp - s.ptr);
        int32_t a = tok_find(t, &t->pieces, s.ptr, ll), b = tok_find(t, &t->pieces, sp + 1, s.len - ll - 1);
        if (a < 0 || b < 0) continue; /* names no piece: can never apply */
        pairs[2 * k] = a;
        pairs[2 * k + 1] = b;
        k++;
    }
    finch_status st = tok_set_merges(t, pairs, k);
    free(pairs);
    return st;
}

/* tokenizer.ggml.pre of a gpt2 (byte-level) vocabulary. */
static finch_status gguf_pre_tokenizer(const gguf_file *g, tok_pre *pre, bool *ignore_merges) {
    gguf_str p;
    if (!gguf_get_str(g, "tokenizer.ggml.pre", &p) || gguf_str_eq(p, "default") || gguf_str_eq(p, "gpt-2")) {
        *pre = TOK_PRE_GPT2;
    } else if (gguf_str_eq(p, "llama-bpe") || gguf_str_eq(p, "llama3")) {
        *pre = TOK_PRE_LLAMA3;
        *ignore_merges = true; /* as llama.cpp does for this pre-tokenizer */
    } else if (gguf_str_eq(p, "qwen2")) {
        *pre = TOK_PRE_QWEN2;
    } else {
        return finch_fail(FINCH_ERR_UNSUPPORTED, "pre-tokenizer \"%.*s\" is not supported (gpt-2, llama-bpe, qwen2)",
                          (int)(p.len > 40 ? 40 : p.len), p.ptr);
    }
    return FINCH_OK;
}

/* The pieces: texts, types (checked in range) and scores. */
static finch_status gguf_pieces(finch_tokenizer *t, const gguf_kv *tokens, const gguf_kv *scores,
                                const gguf_kv *types) {
    size_t n = tokens->v.arr.n;
    finch_status st = FINCH_OK;
    const char **texts = finch_alloc(n, sizeof *texts);
    size_t *lens = finch_alloc(n, sizeof *lens);
    if (!texts || !lens) {
        st = FINCH_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = tokens->v.arr.strs[i].ptr;
        lens[i] = tokens->v.arr.strs[i].len;
        int64_t ty = TOK_T_NORMAL;
        if (types && !gguf_arr_get_i64(types, i, &ty)) {
            st = finch_fail(FINCH_ERR_FORMAT, "tokenizer.ggml.token_type[%zu] is not an integer", i);
            goto done;
        }
        if (ty < TOK_T_UNDEFINED || ty > TOK_T_BYTE) {
            st = finch_fail(FINCH_ERR_FORMAT, "tokenizer.ggml.token_type[%zu] = %lld is out of range", i, (long long)ty);
            goto done;
        }
        t->type[i] = (uint8_t)(ty == TOK_T_UNDEFINED ? TOK_T_NORMAL : ty);
        float sc = 0;
        if (scores && !gguf_arr_get_f32(scores, i, &sc)) {
            st = finch_fail(FINCH_ERR_FORMAT, "tokenizer.ggml.scores[%zu] is not a float", i);
            goto done;
        }
        t->score[i] = sc;
    }
    st = tok_set_texts(t, texts, lens);
done:
    free(texts);
    free(lens);
    return st;
}

static finch_status from_gguf(const gguf_file *g, gguf_str model, finch_tokenizer **out) {
    finch_status st;
    bool llama = gguf_str_eq(model, "llama"), gpt2 = gguf_str_eq(model, "gpt2");
    if (!llama && !gpt2)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "tokenizer model \"%.*s\" is not supported (llama, gpt2)",
                          (int)(model.len > 40 ? 40 : model.len), model.ptr);
    const gguf_kv *tokens, *scores, *types, *merges;
    if ((st = gguf_array(g, "tokenizer.ggml.tokens", 0, SIZE_MAX, &tokens))) return st;
    if (!tokens) return finch_fail(FINCH_ERR_FORMAT, "tokenizer.ggml.tokens is missing");
    size_t n = tokens->v.arr.n;
    if ((st = gguf_array(g, "tokenizer.ggml.scores", 1, n, &scores)) ||
        (st = gguf_array(g, "tokenizer.ggml.token_type", 1, n, &types)) ||
        (st = gguf_array(g, "tokenizer.ggml.merges", 0, SIZE_MAX, &merges)))
        return st;
    if (gpt2 && !merges) return finch_fail(FINCH_ERR_FORMAT, "gpt2 tokenizer without tokenizer.ggml.merges");

    tok_algo algo = gpt2 ? TOK_BYTE_BPE : merges ? TOK_SP_BPE : TOK_SPM;
    tok_pre pre = TOK_PRE_GPT2;
    bool ignore_merges = false;
    if (gpt2 && (st = gguf_pre_tokenizer(g, &pre, &ignore_merges))) return st;

    finch_tokenizer *t;
    if ((st = tok_new(n, algo, &t))) return st;
    if ((st = gguf_pieces(t, tokens, scores, types))) goto done;

    /* llama.cpp's defaults for SentencePiece vocabularies: unk 0, BOS 1, EOS 2. */
    if (llama && n > 2) {
        t->unk = 0;
        t->bos = 1;
        t->eos = 2;
    }
    if ((st = gguf_token_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos)) ||
        (st = gguf_token_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos)) ||
        (st = gguf_token_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk)))
        goto done;
    t->add_bos = gguf_flag(g, "tokenizer.ggml.add_bos_token", llama);
    t->pre = pre;
    t->ignore_merges = ignore_merges;
    if (llama) {
        t->prepend = gguf_flag(g, "tokenizer.ggml.add_space_prefix", true) ? TOK_PREPEND_EACH : TOK_PREPEND_NONE;
        t->escape_spaces = true;
        t->byte_fallback = true;
        t->fuse_unk = true;
    }
    if ((st = tok_finish(t))) goto done;
    if (merges) st = parse_merges_gguf(t, merges);
done:
    if (st) {
        finch_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FINCH_OK;
}

/* tokenizer.chat_template: kept as text, recognised only when a command
 * asks for it (src/tokenizer/chat_template.c). */
static finch_status gguf_chat_template(const gguf_file *g, finch_tokenizer *t) {
    const gguf_kv *kv = gguf_find(g, "tokenizer.chat_template");
    if (!kv) return FINCH_OK;
    if (kv->type != GGUF_STRING) return finch_fail(FINCH_ERR_FORMAT, "tokenizer.chat_template is not a string");
    if (memchr(kv->v.s.ptr, 0, kv->v.s.len))
        return finch_fail(FINCH_ERR_FORMAT, "tokenizer.chat_template contains a NUL byte");
    if (!(t->chat_template = malloc(kv->v.s.len + 1))) return FINCH_ERR_NOMEM;
    memcpy(t->chat_template, kv->v.s.ptr, kv->v.s.len);
    t->chat_template[kv->v.s.len] = 0;
    return FINCH_OK;
}

finch_status finch_tokenizer_from_gguf(const gguf_file *g, finch_tokenizer **out) {
    *out = NULL;
    const gguf_kv *kv = gguf_find(g, "tokenizer.ggml.model");
    if (!kv) return FINCH_OK;
    if (kv->type != GGUF_STRING) return finch_fail(FINCH_ERR_FORMAT, "tokenizer.ggml.model is not a string");
    if (gguf_str_eq(kv->v.s, "none") || gguf_str_eq(kv->v.s, "no_vocab")) return FINCH_OK;
    finch_status st = from_gguf(g, kv->v.s, out);
    if (!st) st = gguf_chat_template(g, *out);
    if (st) {
        finch_tokenizer_free(*out);
        *out = NULL;
    }
    return st ? finch_fail_prefix(st, "tokenizer") : FINCH_OK;
}

/* ------------------------------------------------------------ to GGUF */

/* A split of a piece into two pieces; tiktoken ids are ranks, so ordering
 * by ids orders by the ranks of the halves. */
typedef struct {
    int32_t l, r;
} split_t;

static int cmp_split(const void *a, const void *b) {
    const split_t *x = a, *y = b;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* tiktoken has no merge list; derive the one Hugging Face's converter
 * writes: for each piece in rank order, every split into two pieces, the
 * splits ordered by the ranks of their halves. */
static finch_status tiktoken_merges(const finch_tokenizer *t, int32_t **out, size_t *n_out) {
    size_t cap = 0, n = 0;
    int32_t *pairs = NULL;
    split_t *local = NULL;
    size_t cap_local = 0;
    finch_status st = FINCH_OK;
    for (size_t id = 0; id < t->n && !st; id++) {
        if (t->type[id] != TOK_T_NORMAL) continue;
        size_t len;
        const char *s = tok_text(t, id, &len);
        size_t nl = 0;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            i += finch_utf8_decode(s + i, len - i, &cp);
            if (i >= len) break;
            int32_t a = tok_find(t, &t->pieces, s, i), b = tok_find(t, &t->pieces, s + i, len - i);
            if (a < 0 || b < 0) continue;
            if (nl + 1 > cap_local) {
                size_t c = cap_local ? 2 * cap_local : 16;
                split_t *q = realloc(local, c * sizeof *q);
                if (!q) { st = finch_fail(FINCH_ERR_NOMEM, "out of memory deriving merges"); break; }
                local = q;
                cap_local = c;
            }
            local[nl++] = (split_t){ a, b };
        }
        if (st) break;
        if (nl > 1) qsort(local, nl, sizeof *local, cmp_split);
        if (n + nl > cap) {
            size_t c = cap ? 2 * cap : 1024;
            while (c < n + nl) c *= 2;
            int32_t *q = realloc(pairs, 2 * c * sizeof *q);
            if (!q) { st = finch_fail(FINCH_ERR_NOMEM, "out of memory deriving merges"); break; }
            pairs = q;
            cap = c;
        }
        for (size_t k = 0; k < nl; k++) {
            pairs[2 * n] = local[k].l;
            pairs[2 * n + 1] = local[k].r;
            n++;
        }
    }
    free(local);
    if (st) {
        free(pairs);
        return st;
    }
    *out = pairs;
    *n_out = n;
    return FINCH_OK;
}

/* "left right" strings for tokenizer.ggml.merges. */
static finch_status write_merges(const finch_tokenizer *t, gguf_writer *w, const int32_t *pairs, size_t n) {
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        size_t la, lb;
        tok_text(t, (size_t)pairs[2 * k], &la);
        tok_text(t, (size_t)pairs[2 * k + 1], &lb);
        total += la + lb + 2;
    }
    char *arena = finch_alloc(total ? total : 1, 1);
    const char **strs = finch_alloc(n ? n : 1, sizeof *strs);
    if (!arena || !strs) {
        free(arena);
        free(strs);
        return FINCH_ERR_NOMEM;
    }
    size_t off = 0;
    finch_status st = FINCH_OK;
    for (size_t k = 0; k < n && !st; k++) {
        size_t la, lb;
        const char *a = tok_text(t, (size_t)pairs[2 * k], &la), *b = tok_text(t, (size_t)pairs[2 * k + 1], &lb);
        if (memchr(a + (la ? 1 : 0), ' ', la ? la - 1 : 0) || memchr(b, ' ', lb))
            st = finch_fail(FINCH_ERR_UNSUPPORTED, "merge %zu has a piece with a space; GGUF cannot hold it", k);
        strs[k] = arena + off;
        memcpy(arena + off, a, la);
        arena[off + la] = ' ';
        memcpy(arena + off + la + 1, b, lb);
        arena[off + la + 1 + lb] = 0;
        off += la + lb + 2;
    }
    if (!st) st = gguf_set_arr_str(w, "tokenizer.ggml.merges", strs, n);
    free(arena);
    free(strs);
    return st;
}

/* Scores that make llama.cpp's SentencePiece algorithm (merge the pair
 * whose concatenation has the highest score) follow the merge order: the
 * piece made by merge k scores -k; pieces no merge makes (characters,
 * specials) score below all of them.  The first merge that makes a piece
 * gives it its score. */
static float *merge_scores(const finch_tokenizer *t) {
    float *sc = finch_alloc(t->n, sizeof *sc);
    if (!sc) return NULL;
    for (size_t i = 0; i < t->n; i++) sc[i] = -(float)t->n_merges - 1;
    for (size_t k = t->n_merges; k-- > 0;) {
        int32_t rank, id;
        if (tok_merge_find(t, t->merge_list[2 * k], t->merge_list[2 * k + 1], &rank, &id)) sc[id] = -(float)k;
    }
    return sc;
}

finch_status finch_tokenizer_to_gguf_ex(const finch_tokenizer *t, gguf_writer *w, bool with_merges) {
    if (!t || !w) return finch_fail(FINCH_ERR_ARG, "finch_tokenizer_to_gguf: bad arguments");
    bool sp = t->algo == TOK_SPM || t->algo == TOK_SP_BPE;
    const char **texts = finch_alloc(t->n, sizeof *texts);
    int32_t *types = finch_alloc(t->n, sizeof *types);
    float *scores = NULL;
    int32_t *derived = NULL;
    finch_status st = FINCH_OK;
    if (!texts || !types) {
        st = FINCH_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t len;
        texts[i] = tok_text(t, i, &len);
        if (strlen(texts[i]) != len) {
            st = finch_fail(FINCH_ERR_UNSUPPORTED, "token %zu contains a NUL byte; GGUF strings here cannot", i);
            goto done;
        }
        types[i] = t->type[i] == TOK_T_UNDEFINED ? TOK_T_NORMAL : t->type[i];
    }
    const char *pre = !sp && t->pre == TOK_PRE_LLAMA3 ? "llama-bpe" : !sp && t->pre == TOK_PRE_QWEN2 ? "qwen2"
                    : !sp ? "gpt-2" : "default";
    if ((st = gguf_set_str(w, "tokenizer.ggml.model", sp ? "llama" : "gpt2")) ||
        (st = gguf_set_str(w, "tokenizer.ggml.pre", pre)) ||
        (st = gguf_set_arr_str(w, "tokenizer.ggml.tokens", texts, t->n)) ||
        (st = gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, t->n)))
        goto done;
    if (sp) {
        const float *sc = t->score;
        if (t->algo == TOK_SP_BPE) {
            if (!(scores = merge_scores(t))) { st = FINCH_ERR_NOMEM; goto done; }
            sc = scores;
        }
        if ((st = gguf_set_arr_f32(w, "tokenizer.ggml.scores", sc, t->n)) ||
            (st = gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", t->prepend != TOK_PREPEND_NONE)))
            goto done;
    }
    if (t->algo == TOK_BYTE_BPE || (t->algo == TOK_SP_BPE && with_merges)) {
        st = write_merges(t, w, t->merge_list, t->n_merges);
    } else if (t->algo == TOK_TIKTOKEN) {
        size_t nd;
        if (!(st = tiktoken_merges(t, &derived, &nd))) st = write_merges(t, w, derived, nd);
    }
    if (st) goto done;
    if ((t->bos >= 0 && (st = gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos))) ||
        (t->eos >= 0 && (st = gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos))) ||
        (t->unk >= 0 && (st = gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk))) ||
        (st = gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos)) ||
        (t->chat_template && (st = gguf_set_str(w, "tokenizer.chat_template", t->chat_template))))
        goto done;
done:
    free(texts);
    free(types);
    free(scores);
    free(derived);
    return st;
}

finch_status finch_tokenizer_to_gguf(const finch_tokenizer *t, gguf_writer *w) {
    return finch_tokenizer_to_gguf_ex(t, w, true);
}
