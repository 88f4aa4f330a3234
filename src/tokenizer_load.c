/* tokenizer_load.c - tokenizers from files, and back to GGUF.
 *
 *   GGUF tokenizer.ggml.*          (llama.cpp's "llama" and "gpt2" models)
 *   Hugging Face tokenizer.json    (BPE: SentencePiece-like or ByteLevel)
 *   llama2.c tokenizer.bin         (scores + pieces)
 *   tiktoken                       (base64 piece + rank lines: Llama 3)
 *
 * Every count, id and length read from a file is checked before use; what
 * the encoders need beyond that (byte pieces, hash maps) is built and
 * checked by tok_finish in tokenizer.c. */
#include "tokenizer_impl.h"

#include <cjson/cJSON.h>
#include <math.h>
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
    if (gpt2) {
        gguf_str p;
        if (!gguf_get_str(g, "tokenizer.ggml.pre", &p) || gguf_str_eq(p, "default") || gguf_str_eq(p, "gpt-2")) {
            pre = TOK_PRE_GPT2;
        } else if (gguf_str_eq(p, "llama-bpe") || gguf_str_eq(p, "llama3")) {
            pre = TOK_PRE_LLAMA3;
            ignore_merges = true; /* as llama.cpp does for this pre-tokenizer */
        } else if (gguf_str_eq(p, "qwen2")) {
            pre = TOK_PRE_QWEN2;
        } else {
            return finch_fail(FINCH_ERR_UNSUPPORTED, "pre-tokenizer \"%.*s\" is not supported (gpt-2, llama-bpe, qwen2)",
                              (int)(p.len > 40 ? 40 : p.len), p.ptr);
        }
    }

    finch_tokenizer *t;
    if ((st = tok_new(n, algo, &t))) return st;
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
    if ((st = tok_set_texts(t, texts, lens))) goto done;

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
    free(texts);
    free(lens);
    if (st) {
        finch_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FINCH_OK;
}

/* tokenizer.chat_template: kept as text, recognised only when a command
 * asks for it (src/chat_template.c). */
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

/* ----------------------------------------------------------- tokenizer.json */

static finch_status json_load(const char *path, cJSON **out) {
    char *buf;
    size_t len;
    *out = NULL;
    finch_status st = finch_read_text_file(path, &buf, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= buf && at <= buf + len ? (size_t)(at - buf) : 0;
        free(buf);
        return finch_fail(FINCH_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, off);
    }
    free(buf);
    *out = root;
    return FINCH_OK;
}

static cJSON *jget(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = jget(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jtype_is(const cJSON *o, const char *type) {
    const char *s = jstr(o, "type");
    return s && strcmp(s, type) == 0;
}

/* A boolean member, or dflt when absent / null. */
static bool jbool(const cJSON *o, const char *key, bool dflt) {
    const cJSON *v = jget(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A token id: an integral number in [0, limit). */
static bool jid(const cJSON *v, size_t limit, size_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d >= (double)limit || d != floor(d)) return false;
    *out = (size_t)d;
    return true;
}

/* Items of a "Sequence" (under `list`) or the object itself. */
static size_t jitems(const cJSON *o, const char *list, const cJSON **items, size_t cap) {
    if (!o || cJSON_IsNull(o)) return 0;
    if (jtype_is(o, "Sequence")) {
        size_t n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, jget(o, list)) {
            if (n < cap) items[n] = it;
            n++;
        }
        return n;
    }
    items[0] = o;
    return 1;
}

/* The split regexes of the families we implement, as tokenizer.json
 * writes them. */
static const struct {
    const char *regex;
    tok_pre pre;
} known_regex[] = {
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      TOK_PRE_QWEN2 },
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      TOK_PRE_LLAMA3 },
    { "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      TOK_PRE_LLAMA3 },
    { "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", TOK_PRE_GPT2 },
};

/* Byte-level family: pre_tokenizer ByteLevel (its own GPT-2 regex) or a
 * Split with a known regex followed by ByteLevel without one. */
static finch_status json_byte_level(const cJSON *root, finch_tokenizer *t) {
    const cJSON *norm = jget(root, "normalizer");
    const cJSON *items[8];
    size_t n = jitems(norm, "normalizers", items, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        if (!jtype_is(items[i], "NFC")) /* NFC leaves the texts we meet unchanged; not applied */
            return finch_fail(FINCH_ERR_UNSUPPORTED, "byte-level tokenizer with normalizer %s",
                              jstr(items[i], "type") ? jstr(items[i], "type") : "?");
    n = jitems(jget(root, "pre_tokenizer"), "pretokenizers", items, 8);
    if (n > 8) return finch_fail(FINCH_ERR_UNSUPPORTED, "pre_tokenizer sequence of %zu steps", n);
    bool have_split = false, have_regex = false;
    for (size_t i = 0; i < n; i++) {
        const cJSON *p = items[i];
        if (jtype_is(p, "ByteLevel")) {
            t->bl_prefix_space = jbool(p, "add_prefix_space", false);
            if (jbool(p, "use_regex", true)) {
                t->pre = TOK_PRE_GPT2;
                have_regex = true;
            }
        } else if (jtype_is(p, "Split")) {
            const char *re = jstr(jget(p, "pattern"), "Regex");
            const char *behavior = jstr(p, "behavior");
            if (!re || !behavior || strcmp(behavior, "Isolated") != 0 || jbool(p, "invert", false))
                return finch_fail(FINCH_ERR_UNSUPPORTED, "pre_tokenizer Split other than an isolating regex");
            size_t k = 0, nk = sizeof known_regex / sizeof known_regex[0];
            while (k < nk && strcmp(known_regex[k].regex, re) != 0) k++;
            if (k == nk) return finch_fail(FINCH_ERR_UNSUPPORTED, "pre_tokenizer regex %.60s... is not one we implement", re);
            t->pre = known_regex[k].pre;
            have_split = true;
        } else {
            return finch_fail(FINCH_ERR_UNSUPPORTED, "pre_tokenizer %s", jstr(p, "type") ? jstr(p, "type") : "?");
        }
    }
    if (have_split && have_regex) return finch_fail(FINCH_ERR_UNSUPPORTED, "pre_tokenizer splits twice (Split and ByteLevel regex)");
    if (!have_split && !have_regex) return finch_fail(FINCH_ERR_UNSUPPORTED, "byte-level tokenizer without a split regex");
    return FINCH_OK;
}

/* SentencePiece family: spaces become U+2581 through a Replace normalizer
 * with a Prepend, or through a Metaspace pre-tokenizer. */
static finch_status json_sentencepiece(const cJSON *root, finch_tokenizer *t, bool added_normalized) {
    const cJSON *items[8];
    size_t n = jitems(jget(root, "normalizer"), "normalizers", items, 8);
    if (n > 8) return finch_fail(FINCH_ERR_UNSUPPORTED, "normalizer sequence of %zu steps", n);
    for (size_t i = 0; i < n; i++) {
        const cJSON *p = items[i];
        const char *pre = jstr(p, "prepend"), *content = jstr(p, "content");
        const char *pat = jstr(jget(p, "pattern"), "String");
        if (jtype_is(p, "Prepend") && pre && strcmp(pre, "\xE2\x96\x81") == 0) {
            /* HF normalizes the whole text before finding normalized added
             * tokens; otherwise each piece between them is normalized. */
            t->prepend = added_normalized ? TOK_PREPEND_TEXT_START : TOK_PREPEND_EACH;
        } else if (jtype_is(p, "Replace") && pat && content && strcmp(pat, " ") == 0 &&
                   strcmp(content, "\xE2\x96\x81") == 0) {
            t->escape_spaces = true;
        } else {
            return finch_fail(FINCH_ERR_UNSUPPORTED, "normalizer %s", jstr(p, "type") ? jstr(p, "type") : "?");
        }
    }
    const cJSON *pt = jget(root, "pre_tokenizer");
    if (pt && !cJSON_IsNull(pt)) {
        const char *rep = jstr(pt, "replacement"), *scheme = jstr(pt, "prepend_scheme");
        if (!jtype_is(pt, "Metaspace") || !rep || strcmp(rep, "\xE2\x96\x81") != 0)
            return finch_fail(FINCH_ERR_UNSUPPORTED, "pre_tokenizer %s with a byte-fallback vocabulary",
                              jstr(pt, "type") ? jstr(pt, "type") : "?");
        t->escape_spaces = true;
        t->prepend_unless_space = true;
        t->metaspace_split = jbool(pt, "split", true);
        if (!scheme) scheme = jbool(pt, "add_prefix_space", true) ? "always" : "never";
        if (strcmp(scheme, "always") == 0) t->prepend = TOK_PREPEND_EACH;
        else if (strcmp(scheme, "first") == 0) t->prepend = TOK_PREPEND_FIRST;
        else if (strcmp(scheme, "never") == 0) t->prepend = TOK_PREPEND_NONE;
        else return finch_fail(FINCH_ERR_UNSUPPORTED, "Metaspace prepend_scheme %s", scheme);
    }
    if (!t->escape_spaces) return finch_fail(FINCH_ERR_UNSUPPORTED, "BPE vocabulary with neither byte-level nor U+2581 spaces");
    return FINCH_OK;
}

/* A token named in tokenizer_config.json: a string or {"content": ...}. */
static finch_status config_token(const finch_tokenizer *t, const cJSON *cfg, const char *key, int32_t *id) {
    const cJSON *v = jget(cfg, key);
    if (!v || cJSON_IsNull(v)) return FINCH_OK;
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    if (!s) return finch_fail(FINCH_ERR_FORMAT, "tokenizer_config %s is neither a string nor a token", key);
    *id = tok_lookup_any(t, s, strlen(s));
    if (*id < 0) return finch_fail(FINCH_ERR_FORMAT, "tokenizer_config %s \"%.60s\" is not in the vocabulary", key, s);
    return FINCH_OK;
}

/* BOS from the post-processor: a TemplateProcessing whose single-sequence
 * template starts with a special token (Llama: "<s> $A"). */
/* tokenizer_config.json "chat_template": a string, or a list of named
 * templates ({"name", "template"}) of which "default" is the chat one. */
static finch_status json_chat_template(const cJSON *cfg, finch_tokenizer *t) {
    const cJSON *ct = jget(cfg, "chat_template"), *e;
    const char *text = cJSON_IsString(ct) ? ct->valuestring : NULL;
    if (cJSON_IsArray(ct))
        cJSON_ArrayForEach(e, ct) {
            const char *name = jstr(e, "name");
            if (name && !strcmp(name, "default")) text = jstr(e, "template");
        }
    if (ct && !cJSON_IsNull(ct) && !text)
        return finch_fail(FINCH_ERR_FORMAT, "tokenizer_config chat_template is neither a string nor a list "
                          "with a \"default\" template");
    if (text && !(t->chat_template = strdup(text))) return FINCH_ERR_NOMEM;
    return FINCH_OK;
}

static void template_bos(const finch_tokenizer *t, const cJSON *root, int32_t *bos, bool *add_bos) {
    const cJSON *items[8];
    size_t n = jitems(jget(root, "post_processor"), "processors", items, 8);
    for (size_t i = 0; i < n && i < 8; i++) {
        if (!jtype_is(items[i], "TemplateProcessing")) continue;
        const cJSON *first = cJSON_GetArrayItem(jget(items[i], "single"), 0);
        const char *name = jstr(jget(first, "SpecialToken"), "id");
        if (!name) continue;
        size_t id;
        const cJSON *ids = jget(jget(jget(items[i], "special_tokens"), name), "ids");
        int32_t found = jid(cJSON_GetArrayItem(ids, 0), t->n, &id) ? (int32_t)id : tok_lookup_any(t, name, strlen(name));
        if (found >= 0) {
            *bos = found;
            *add_bos = true;
        }
    }
}

/* Merges: "left right" strings or [left, right] pairs, in rank order. */
static finch_status json_merges(finch_tokenizer *t, const cJSON *merges) {
    size_t n = (size_t)cJSON_GetArraySize(merges), k = 0, i = 0;
    int32_t *pairs = finch_alloc(n ? 2 * n : 1, sizeof *pairs);
    if (!pairs) return FINCH_ERR_NOMEM;
    const cJSON *m;
    finch_status st = FINCH_OK;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ')) {
                a = s;
                la = (size_t)(sp - s);
                b = sp + 1;
                lb = strlen(b);
            }
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            a = cJSON_GetArrayItem(m, 0)->valuestring;
            b = cJSON_GetArrayItem(m, 1)->valuestring;
            la = strlen(a);
            lb = strlen(b);
        }
        if (!a) {
            st = finch_fail(FINCH_ERR_FORMAT, "merge %zu is neither \"a b\" nor [a, b]", i);
            break;
        }
        int32_t ia = tok_lookup_any(t, a, la), ib = tok_lookup_any(t, b, lb);
        if (ia >= 0 && ib >= 0) {
            pairs[2 * k] = ia;
            pairs[2 * k + 1] = ib;
            k++;
        }
        i++;
    }
    if (!st) st = tok_set_merges(t, pairs, k);
    free(pairs);
    return st;
}

static finch_status from_json(const cJSON *root, const cJSON *cfg, finch_tokenizer **out) {
    finch_status st;
    const cJSON *model = jget(root, "model");
    if (!cJSON_IsObject(model)) return finch_fail(FINCH_ERR_FORMAT, "no \"model\" object");
    const char *mtype = jstr(model, "type");
    if (mtype && strcmp(mtype, "BPE") != 0) return finch_fail(FINCH_ERR_UNSUPPORTED, "model type %s (only BPE)", mtype);
    const cJSON *vocab = jget(model, "vocab"), *merges = jget(model, "merges"), *added = jget(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return finch_fail(FINCH_ERR_FORMAT, "model.vocab is missing or not an object");
    if (!cJSON_IsArray(merges)) return finch_fail(FINCH_ERR_FORMAT, "model.merges is missing or not an array");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return finch_fail(FINCH_ERR_FORMAT, "added_tokens is not an array");
    const char *csp = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (eow && *eow)) return finch_fail(FINCH_ERR_UNSUPPORTED, "BPE with subword prefix / word suffix");

    /* Ids must be near-dense: a few holes are allowed, not an id that would
     * make us allocate for millions of absent tokens. */
    size_t entries = (size_t)cJSON_GetArraySize(vocab) + (size_t)cJSON_GetArraySize(added), limit = 2 * entries + 1024;
    size_t n = 0, id = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!jid(e, limit, &id)) return finch_fail(FINCH_ERR_FORMAT, "model.vocab[\"%.40s\"] is not a valid id", e->string);
        if (id + 1 > n) n = id + 1;
    }
    bool added_normalized = true;
    cJSON_ArrayForEach(e, added) {
        if (!jid(jget(e, "id"), limit, &id) || !jstr(e, "content"))
            return finch_fail(FINCH_ERR_FORMAT, "added_tokens entry without a valid id and content");
        if (id + 1 > n) n = id + 1;
        added_normalized = added_normalized && jbool(e, "normalized", false);
    }
    bool byte_level = false;
    const cJSON *pts[8];
    size_t npt = jitems(jget(root, "pre_tokenizer"), "pretokenizers", pts, 8);
    for (size_t i = 0; i < npt && i < 8; i++) byte_level = byte_level || jtype_is(pts[i], "ByteLevel");

    finch_tokenizer *t;
    if ((st = tok_new(n, byte_level ? TOK_BYTE_BPE : TOK_SP_BPE, &t))) return st;
    const char **texts = finch_zalloc(n, sizeof *texts);
    size_t *lens = finch_zalloc(n, sizeof *lens);
    if (!texts || !lens) {
        st = FINCH_ERR_NOMEM;
        goto done;
    }
    cJSON_ArrayForEach(e, vocab) {
        jid(e, limit, &id);
        if (texts[id]) {
            st = finch_fail(FINCH_ERR_FORMAT, "model.vocab uses id %zu twice", id);
            goto done;
        }
        texts[id] = e->string;
        lens[id] = strlen(e->string);
        t->type[id] = TOK_T_NORMAL;
        if (!byte_level && tok_parse_byte_piece(e->string, lens[id]) >= 0) t->type[id] = TOK_T_BYTE;
    }
    /* Added tokens are matched literally; they take over an id they share
     * with the vocabulary. */
    cJSON_ArrayForEach(e, added) {
        jid(jget(e, "id"), limit, &id);
        texts[id] = jstr(e, "content");
        lens[id] = strlen(texts[id]);
        t->type[id] = jbool(e, "special", false) ? TOK_T_CONTROL : TOK_T_USER;
    }
    for (size_t i = 0; i < n; i++)
        if (!texts[i]) texts[i] = "";
    if ((st = tok_set_texts(t, texts, lens))) goto done;
    if ((st = byte_level ? json_byte_level(root, t) : json_sentencepiece(root, t, added_normalized))) goto done;
    t->ignore_merges = jbool(model, "ignore_merges", false);
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->fuse_unk = jbool(model, "fuse_unk", false);
    const char *unk = jstr(model, "unk_token");
    if (unk) {
        for (size_t i = 0; i < n && t->unk < 0; i++)
            if (lens[i] == strlen(unk) && memcmp(texts[i], unk, lens[i]) == 0) t->unk = (int32_t)i;
        if (t->unk < 0) {
            st = finch_fail(FINCH_ERR_FORMAT, "model.unk_token \"%.40s\" is not in the vocabulary", unk);
            goto done;
        }
        t->type[t->unk] = TOK_T_UNKNOWN;
    }
    if ((st = tok_finish(t)) || (st = json_merges(t, merges))) goto done;

    template_bos(t, root, &t->bos, &t->add_bos);
    if (cfg) {
        if ((st = config_token(t, cfg, "bos_token", &t->bos)) || (st = config_token(t, cfg, "eos_token", &t->eos)))
            goto done;
        t->add_bos = jbool(cfg, "add_bos_token", t->add_bos);
        st = json_chat_template(cfg, t);
    }
done:
    free(texts);
    free(lens);
    if (st) {
        finch_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FINCH_OK;
}

finch_status finch_tokenizer_from_json(const char *json_path, const char *config_path, finch_tokenizer **out) {
    *out = NULL;
    cJSON *root = NULL, *cfg = NULL;
    finch_status st = json_load(json_path, &root);
    if (st == FINCH_OK && config_path) st = json_load(config_path, &cfg);
    if (st == FINCH_OK) {
        st = from_json(root, cfg, out);
        if (st) finch_fail_prefix(st, "%s", json_path);
    }
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return st;
}

/* ----------------------------------------------------- llama2.c tokenizer */

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* llama2.c writes SentencePiece pieces with U+2581 turned back into ' ' and
 * BOS / EOS as "\n<s>\n" / "\n</s>\n"; we undo both. */
finch_status finch_tokenizer_from_llama2c(const char *path, size_t vocab, finch_tokenizer **out) {
    *out = NULL;
    finch_map m;
    finch_status st = finch_map_file(path, &m);
    if (st) return st;
    finch_tokenizer *t = NULL;
    char **texts = NULL;
    size_t *lens = NULL;
    if (m.size < 4) {
        st = finch_fail(FINCH_ERR_FORMAT, "%s: too short for a llama2.c tokenizer", path);
        goto done;
    }
    if ((st = tok_new(vocab, TOK_SPM, &t))) goto done;
    texts = finch_zalloc(vocab, sizeof *texts);
    lens = finch_zalloc(vocab, sizeof *lens);
    if (!texts || !lens) {
        st = FINCH_ERR_NOMEM;
        goto done;
    }
    size_t off = 4;
    for (size_t i = 0; i < vocab; i++) {
        if (m.size - off < 8) {
            st = finch_fail(FINCH_ERR_FORMAT, "%s: ends at token %zu of %zu", path, i, vocab);
            goto done;
        }
        uint32_t sbits = le32(m.data + off), len = le32(m.data + off + 4);
        off += 8;
        if (len > m.size - off) {
            st = finch_fail(FINCH_ERR_FORMAT, "%s: token %zu has length %u past the end of the file", path, i, len);
            goto done;
        }
        const char *p = (const char *)m.data + off;
        off += len;
        if (i == 1 && len == 5 && memcmp(p, "\n<s>\n", 5) == 0) { p++; len -= 2; }
        if (i == 2 && len == 6 && memcmp(p, "\n</s>\n", 6) == 0) { p++; len -= 2; }
        size_t spaces = 0;
        for (size_t k = 0; k < len; k++) spaces += p[k] == ' ';
        texts[i] = finch_alloc(len + 2 * spaces + 1, 1);
        if (!texts[i]) {
            st = FINCH_ERR_NOMEM;
            goto done;
        }
        size_t n = 0;
        for (size_t k = 0; k < len; k++) {
            if (p[k] == ' ') {
                memcpy(texts[i] + n, "\xE2\x96\x81", 3);
                n += 3;
            } else {
                texts[i][n++] = p[k];
            }
        }
        lens[i] = n;
        union { uint32_t u; float f; } sc = { sbits };
        t->score[i] = sc.f;
        t->type[i] = i == 0 ? TOK_T_UNKNOWN : (i == 1 || i == 2) ? TOK_T_CONTROL
                   : tok_parse_byte_piece(texts[i], n) >= 0 ? TOK_T_BYTE : TOK_T_NORMAL;
    }
    /* The file holds no count: bytes after the model's vocabulary mean a
     * tokenizer of another (larger) model, which would be cut silently. */
    if (off != m.size) {
        st = finch_fail(FINCH_ERR_FORMAT, "%s holds more than the model's %zu tokens (%zu bytes left): "
                        "a tokenizer of another model", path, vocab, m.size - off);
        goto done;
    }
    if ((st = tok_set_texts(t, (const char *const *)texts, lens))) goto done;
    t->unk = 0;
    t->bos = vocab > 1 ? 1 : -1;
    t->eos = vocab > 2 ? 2 : -1;
    t->add_bos = true;
    t->prepend = TOK_PREPEND_EACH;
    t->escape_spaces = true;
    t->byte_fallback = true;
    st = tok_finish(t);
done:
    if (texts)
        for (size_t i = 0; i < vocab; i++) free(texts[i]);
    free(texts);
    free(lens);
    finch_unmap(&m);
    if (st) {
        finch_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FINCH_OK;
}

/* --------------------------------------------------------------- tiktoken */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode standard base64 (with '=' padding) into out; returns the byte
 * count, or SIZE_MAX when the text is not base64. */
static size_t b64_decode(const char *s, size_t len, uint8_t *out) {
    if (len % 4) return SIZE_MAX;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = s[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : b64_value((unsigned char)s[i + k]);
            if (v[k] < 0) return SIZE_MAX;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[n++] = (uint8_t)(w >> 16);
        if (s[i + 2] != '=') out[n++] = (uint8_t)(w >> 8);
        if (s[i + 3] != '=') out[n++] = (uint8_t)w;
        if (s[i + 2] == '=' && s[i + 3] != '=') return SIZE_MAX;
    }
    return n;
}

#define LLAMA3_N_SPECIAL 256

/* Llama 3's special tokens, in id order after the ranked pieces. */
static void llama3_special_name(size_t k, char *buf, size_t cap) {
    static const char *named[] = { "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                   "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                                   "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                   "<|reserved_special_token_4|>", "<|eot_id|>" };
    if (k < 10) snprintf(buf, cap, "%s", named[k]);
    else snprintf(buf, cap, "<|reserved_special_token_%zu|>", k - 5);
}

finch_status finch_tokenizer_from_tiktoken(const char *path, finch_tokenizer **out) {
    *out = NULL;
    char *buf;
    size_t len;
    finch_status st = finch_read_text_file(path, &buf, &len);
    if (st) return st;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    if (len && buf[len - 1] != '\n') lines++;
    size_t n = lines + LLAMA3_N_SPECIAL;
    finch_tokenizer *t = NULL;
    char **texts = NULL;
    size_t *lens = NULL;
    uint8_t *raw = finch_alloc(len + 1, 1);
    if (!raw) {
        st = FINCH_ERR_NOMEM;
        goto done;
    }
    if (lines == 0) {
        st = finch_fail(FINCH_ERR_FORMAT, "%s: empty tiktoken file", path);
        goto done;
    }
    if ((st = tok_new(n, TOK_TIKTOKEN, &t))) goto done;
    texts = finch_zalloc(n, sizeof *texts);
    lens = finch_zalloc(n, sizeof *lens);
    if (!texts || !lens) {
        st = FINCH_ERR_NOMEM;
        goto done;
    }
    size_t line = 0;
    for (size_t i = 0; i < len; line++) {
        const char *s = buf + i, *nl = memchr(s, '\n', len - i), *end = nl ? nl : buf + len;
        i = (size_t)(end - buf) + (nl ? 1 : 0);
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        size_t nb = sp ? b64_decode(s, (size_t)(sp - s), raw) : SIZE_MAX;
        char *rank_end = NULL;
        unsigned long long rank = sp && sp + 1 < end && sp[1] >= '0' && sp[1] <= '9' ? strtoull(sp + 1, &rank_end, 10) : 0;
        if (nb == SIZE_MAX || nb == 0 || !rank_end || rank_end != end || rank >= lines || texts[rank]) {
            st = finch_fail(FINCH_ERR_FORMAT, "%s: line %zu is not \"base64 rank\" with a new rank below %zu", path, line + 1, lines);
            goto done;
        }
        /* Stored in GPT-2's byte alphabet like every byte-level vocabulary. */
        char *txt = finch_alloc(2 * nb + 1, 1);
        if (!txt) {
            st = FINCH_ERR_NOMEM;
            goto done;
        }
        size_t tl = 0;
        for (size_t k = 0; k < nb; k++) tl += finch_utf8_encode(tok_byte_to_cp(raw[k]), txt + tl);
        texts[rank] = txt;
        lens[rank] = tl;
        t->type[rank] = TOK_T_NORMAL;
        t->score[rank] = -(float)rank;
    }
    for (size_t k = 0; k < LLAMA3_N_SPECIAL; k++) {
        char name[64];
        llama3_special_name(k, name, sizeof name);
        if (!(texts[lines + k] = strdup(name))) {
            st = FINCH_ERR_NOMEM;
            goto done;
        }
        lens[lines + k] = strlen(name);
        t->type[lines + k] = TOK_T_CONTROL;
    }
    if ((st = tok_set_texts(t, (const char *const *)texts, lens))) goto done;
    t->bos = (int32_t)lines;
    t->eos = (int32_t)lines + 1;
    t->add_bos = true;
    t->pre = TOK_PRE_LLAMA3;
    t->ignore_merges = true;
    st = tok_finish(t);
done:
    if (texts)
        for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(raw);
    free(buf);
    if (st) {
        finch_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FINCH_OK;
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
