/* unicode.c - UTF-8 decoding and code point classes for the tokenizers. */
#include "unicode.h"
#include "finch.h"

#include <stdlib.h>
#include <string.h>

finch_uc_class finch_uc_classify(uint32_t cp) {
    /* ASCII is by far the common case: answer it without the search. */
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return FINCH_UC_LETTER;
        if (cp >= '0' && cp <= '9') return FINCH_UC_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return FINCH_UC_SPACE;
        return FINCH_UC_OTHER;
    }
    size_t lo = 0, hi = finch_uc_n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < finch_uc_ranges[mid].lo) hi = mid;
        else if (cp > finch_uc_ranges[mid].hi) lo = mid + 1;
        else return (finch_uc_class)finch_uc_ranges[mid].cls;
    }
    return FINCH_UC_OTHER;
}

size_t finch_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; min = 0x10000; }
    else { *cp = FINCH_UC_INVALID; return 1; }
    if (n > len) { *cp = FINCH_UC_INVALID; return 1; }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) { *cp = FINCH_UC_INVALID; return 1; }
        v = (v << 6) | (u[i] & 0x3F);
    }
    /* Overlong forms, UTF-16 surrogates and values past U+10FFFF are not
     * characters: their bytes are passed on one by one. */
    if (v < min || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) { *cp = FINCH_UC_INVALID; return 1; }
    *cp = v;
    return n;
}

size_t finch_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Replacement rather than \u00XX escapes of the bytes: JSON strings hold
 * code points, not bytes, so an escape would silently claim U+0080..U+00FF
 * characters that were never in the text. */
char *finch_utf8_clean(const char *s, size_t len) {
    size_t cap = 3 * len + 1, o = 0; /* each byte at most 3 bytes of U+FFFD */
    char *out = malloc(cap);
    if (!out) return NULL;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = finch_utf8_decode(s + i, len - i, &cp);
        if (cp == FINCH_UC_INVALID || cp == 0) o += finch_utf8_encode(0xFFFD, out + o);
        else {
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = 0;
    return out;
}
