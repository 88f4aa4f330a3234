/* tokenizer_tiktoken.c - tiktoken files (base64 piece + rank lines: Llama
 * 3), with Llama 3's special tokens.  Every length and rank read from the
 * file is checked before use; tok_finish in tokenizer.c builds the rest. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

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

/* One piece per line, "base64 rank", each rank new and below the line
 * count; texts[rank] is owned by the caller's array. */
static finch_status tiktoken_ranks(const char *path, const char *buf, size_t len, size_t lines, uint8_t *raw,
                                   finch_tokenizer *t, char **texts, size_t *lens) {
    size_t line = 0;
    for (size_t i = 0; i < len; line++) {
        const char *s = buf + i, *nl = memchr(s, '\n', len - i), *end = nl ? nl : buf + len;
        i = (size_t)(end - buf) + (nl ? 1 : 0);
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        size_t nb = sp ? b64_decode(s, (size_t)(sp - s), raw) : SIZE_MAX;
        char *rank_end = NULL;
        unsigned long long rank = sp && sp + 1 < end && sp[1] >= '0' && sp[1] <= '9' ? strtoull(sp + 1, &rank_end, 10) : 0;
        if (nb == SIZE_MAX || nb == 0 || !rank_end || rank_end != end || rank >= lines || texts[rank])
            return finch_fail(FINCH_ERR_FORMAT, "%s: line %zu is not \"base64 rank\" with a new rank below %zu", path,
                              line + 1, lines);
        /* Stored in GPT-2's byte alphabet like every byte-level vocabulary. */
        char *txt = finch_alloc(2 * nb + 1, 1);
        if (!txt) return FINCH_ERR_NOMEM;
        size_t tl = 0;
        for (size_t k = 0; k < nb; k++) tl += finch_utf8_encode(tok_byte_to_cp(raw[k]), txt + tl);
        texts[rank] = txt;
        lens[rank] = tl;
        t->type[rank] = TOK_T_NORMAL;
        t->score[rank] = -(float)rank;
    }
    return FINCH_OK;
}

/* Llama 3's special tokens after the ranks: BOS, EOS, then reserved. */
static finch_status llama3_specials(finch_tokenizer *t, size_t lines, char **texts, size_t *lens) {
    for (size_t k = 0; k < LLAMA3_N_SPECIAL; k++) {
        char name[64];
        llama3_special_name(k, name, sizeof name);
        if (!(texts[lines + k] = strdup(name))) return FINCH_ERR_NOMEM;
        lens[lines + k] = strlen(name);
        t->type[lines + k] = TOK_T_CONTROL;
    }
    return FINCH_OK;
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
    if ((st = tiktoken_ranks(path, buf, len, lines, raw, t, texts, lens)) ||
        (st = llama3_specials(t, lines, texts, lens)))
        goto done;
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

