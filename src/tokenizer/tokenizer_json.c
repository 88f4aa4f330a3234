/* tokenizer_json.c - tokenizers from Hugging Face tokenizer.json (BPE:
 * SentencePiece-like or ByteLevel) and tokenizer_config.json (special
 * tokens, chat template).  Every count, id and length read from the file is
 * checked before use; tok_finish in tokenizer.c builds the rest. */
#include "tokenizer_impl.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The vocabulary's size n from the ids of model.vocab and added_tokens.
 * Ids must be near-dense: a few holes are allowed, not an id that would
 * make us allocate for millions of absent tokens (*limit bounds them). */
static finch_status json_vocab_size(const cJSON *vocab, const cJSON *added, size_t *n_out, size_t *limit_out,
                                    bool *added_normalized) {
    size_t entries = (size_t)cJSON_GetArraySize(vocab) + (size_t)cJSON_GetArraySize(added), limit = 2 * entries + 1024;
    size_t n = 0, id = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!jid(e, limit, &id)) return finch_fail(FINCH_ERR_FORMAT, "model.vocab[\"%.40s\"] is not a valid id", e->string);
        if (id + 1 > n) n = id + 1;
    }
    *added_normalized = true;
    cJSON_ArrayForEach(e, added) {
        if (!jid(jget(e, "id"), limit, &id) || !jstr(e, "content"))
            return finch_fail(FINCH_ERR_FORMAT, "added_tokens entry without a valid id and content");
        if (id + 1 > n) n = id + 1;
        *added_normalized = *added_normalized && jbool(e, "normalized", false);
    }
    *n_out = n;
    *limit_out = limit;
    return FINCH_OK;
}

/* Texts and types by id (ids checked by json_vocab_size); holes are "". */
static finch_status json_pieces(finch_tokenizer *t, const cJSON *vocab, const cJSON *added, size_t limit,
                                bool byte_level, const char **texts, size_t *lens) {
    size_t id = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        jid(e, limit, &id);
        if (texts[id]) return finch_fail(FINCH_ERR_FORMAT, "model.vocab uses id %zu twice", id);
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
    for (size_t i = 0; i < t->n; i++)
        if (!texts[i]) texts[i] = "";
    return FINCH_OK;
}

/* model.unk_token, when given, must be a piece of the vocabulary. */
static finch_status json_unk(finch_tokenizer *t, const char *unk, const char **texts, const size_t *lens, size_t n) {
    if (!unk) return FINCH_OK;
    for (size_t i = 0; i < n && t->unk < 0; i++)
        if (lens[i] == strlen(unk) && memcmp(texts[i], unk, lens[i]) == 0) t->unk = (int32_t)i;
    if (t->unk < 0) return finch_fail(FINCH_ERR_FORMAT, "model.unk_token \"%.40s\" is not in the vocabulary", unk);
    t->type[t->unk] = TOK_T_UNKNOWN;
    return FINCH_OK;
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

    size_t n = 0, limit = 0;
    bool added_normalized = true;
    if ((st = json_vocab_size(vocab, added, &n, &limit, &added_normalized))) return st;
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
    if ((st = json_pieces(t, vocab, added, limit, byte_level, texts, lens))) goto done;
    if ((st = tok_set_texts(t, texts, lens))) goto done;
    if ((st = byte_level ? json_byte_level(root, t) : json_sentencepiece(root, t, added_normalized))) goto done;
    t->ignore_merges = jbool(model, "ignore_merges", false);
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->fuse_unk = jbool(model, "fuse_unk", false);
    if ((st = json_unk(t, jstr(model, "unk_token"), texts, lens, n))) goto done;
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

