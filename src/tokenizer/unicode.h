/* unicode.h - the little Unicode the tokenizers need: UTF-8 decoding that
 * never fails (invalid bytes come back one at a time) and the code point
 * classes of the pre-tokenizer regexes (letter, number, white space). */
#ifndef FINCH_UNICODE_H
#define FINCH_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FINCH_UC_OTHER = 0,
    FINCH_UC_LETTER = 1, /* \p{L}: Lu Ll Lt Lm Lo */
    FINCH_UC_NUMBER = 2, /* \p{N}: Nd Nl No */
    FINCH_UC_SPACE = 3   /* \s: the White_Space property */
} finch_uc_class;

/* Generated table (src/tokenizer/unicode_data.c, tools/gen_unicode.py): sorted,
 * disjoint runs [lo, hi] of one class; code points not listed are OTHER. */
typedef struct {
    uint32_t lo, hi;
    uint8_t cls;
} finch_uc_range;
extern const finch_uc_range finch_uc_ranges[];
extern const size_t finch_uc_n_ranges;

/* Marks a byte that does not start a valid UTF-8 sequence (classed OTHER). */
#define FINCH_UC_INVALID 0xFFFFFFFFu

finch_uc_class finch_uc_classify(uint32_t cp);

/* Decode the character at s[0..len) (len >= 1): returns its byte length
 * (1..4) and sets *cp; an invalid or truncated sequence (overlong, surrogate,
 * above U+10FFFF) yields length 1 and *cp = FINCH_UC_INVALID. */
size_t finch_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Encode cp (<= U+10FFFF) into out[0..4); returns the byte length. */
size_t finch_utf8_encode(uint32_t cp, char out[4]);

#endif
