/* tokenizer_llama2c.c - llama2.c tokenizer.bin files (scores + pieces).
 * Every count and length read from the file is checked before use;
 * tok_finish in tokenizer.c builds the rest. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------- llama2.c tokenizer */

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* llama2.c writes SentencePiece pieces with U+2581 turned back into ' ' and
 * BOS / EOS as "\n<s>\n" / "\n</s>\n"; we undo both. */
/* A piece as SentencePiece vocabularies store it: spaces as U+2581
 * (malloc'ed, NUL-terminated; *n its length). */
static char *escape_spaces(const char *p, size_t len, size_t *n) {
    size_t spaces = 0;
    for (size_t k = 0; k < len; k++) spaces += p[k] == ' ';
    char *text = finch_alloc(len + 2 * spaces + 1, 1);
    if (!text) return NULL;
    *n = 0;
    for (size_t k = 0; k < len; k++) {
        if (p[k] == ' ') {
            memcpy(text + *n, "\xE2\x96\x81", 3);
            *n += 3;
        } else {
            text[(*n)++] = p[k];
        }
    }
    return text;
}

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
        size_t n = 0;
        if (!(texts[i] = escape_spaces(p, len, &n))) {
            st = FINCH_ERR_NOMEM;
            goto done;
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

