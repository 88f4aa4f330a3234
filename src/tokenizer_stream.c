/* tokenizer_stream.c - long texts: validation and block-wise encoding, so
 * that reading a 64k-token file needs no more memory than a 4k-token one. */
#include "finch.h"
#include "unicode.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_BYTES (16u * 1024u)


/* Offset of the first NUL or invalid UTF-8 byte of s[0..len) (len if none). */
static size_t first_bad_byte(const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = finch_utf8_decode(s + i, len - i, &cp);
        if (s[i] == 0 || cp == FINCH_UC_INVALID) return i;
        i += l;
    }
    return len;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The last cut point in buf[0..n): just after a '\n' followed by a
 * non-space byte that starts a character; 0 when there is none. */
static size_t last_cut(const char *buf, size_t n) {
    for (size_t i = n - 1; i >= 1; i--)
        if (buf[i - 1] == '\n' && !is_space(buf[i]) && ((unsigned char)buf[i] & 0xC0) != 0x80) return i;
    return 0;
}

static finch_status append_ids(int32_t **all, size_t *n_all, size_t *cap, const int32_t *ids, size_t n) {
    if (*n_all + n > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *n_all + n) c *= 2;
        int32_t *p = realloc(*all, c * sizeof(int32_t));
        if (!p) return finch_fail(FINCH_ERR_NOMEM, "out of memory for %zu token ids", c);
        *all = p;
        *cap = c;
    }
    memcpy(*all + *n_all, ids, n * sizeof(int32_t));
    *n_all += n;
    return FINCH_OK;
}

finch_status finch_check_text(const char *s, size_t len) {
    size_t bad = first_bad_byte(s, len);
    if (bad == len) return FINCH_OK;
    return finch_fail(FINCH_ERR_FORMAT, "text %s at byte %zu", s[bad] ? "is not valid UTF-8" : "holds a NUL byte", bad);
}

/* Encode buf[0..n) as the next block and append its ids. */
static finch_status encode_block(const finch_tokenizer *t, const char *buf, size_t n, size_t offset,
                                 bool first, int add_bos, int32_t **all, size_t *n_all, size_t *cap) {
    size_t bad = first_bad_byte(buf, n);
    if (bad < n)
        return finch_fail(FINCH_ERR_FORMAT, "text %s at byte %zu", buf[bad] ? "is not valid UTF-8" : "holds a NUL byte",
                          offset + bad);
    finch_status st;
    int32_t *ids;
    size_t n_ids;
    if ((st = finch_tokenize_ex(t, buf, n, first ? add_bos : 0, !first, &ids, &n_ids))) return st;
    st = append_ids(all, n_all, cap, ids, n_ids);
    free(ids);
    return st;
}

finch_status finch_tokenize_file(const finch_tokenizer *t, FILE *f, int add_bos, int32_t **ids,
                                 size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    size_t cap_buf = 2 * BLOCK_BYTES, used = 0, offset = 0, cap_ids = 0;
    char *buf = malloc(cap_buf);
    if (!buf) return finch_fail(FINCH_ERR_NOMEM, "out of memory");
    finch_status st = FINCH_OK;
    bool first = true, eof = false;
    while (!st && !eof) {
        if (cap_buf - used < BLOCK_BYTES) { /* no cut point yet: keep reading */
            char *nb = cap_buf > SIZE_MAX / 2 ? NULL : realloc(buf, cap_buf * 2);
            if (!nb) { st = finch_fail(FINCH_ERR_NOMEM, "out of memory reading the text"); break; }
            buf = nb;
            cap_buf *= 2;
        }
        size_t got = fread(buf + used, 1, cap_buf - used, f);
        if (got == 0) {
            if (ferror(f)) { st = finch_fail(FINCH_ERR_IO, "cannot read the text"); break; }
            eof = true;
        }
        /* checked as read, not when a line ends: /dev/zero fails at once */
        const char *nul = memchr(buf + used, 0, got);
        if (nul) { st = finch_fail(FINCH_ERR_FORMAT, "text holds a NUL byte at byte %zu", offset + (size_t)(nul - buf)); break; }
        used += got;
        if (offset + used > FINCH_MAX_TEXT_BYTES) {
            st = finch_fail(FINCH_ERR_FORMAT, "the text is longer than %zu MiB", (size_t)FINCH_MAX_TEXT_BYTES >> 20);
            break;
        }
        size_t cut = eof ? used : (used ? last_cut(buf, used) : 0);
        if (cut == 0) continue;
        st = encode_block(t, buf, cut, offset, first, add_bos, ids, n_ids, &cap_ids);
        first = false;
        offset += cut;
        memmove(buf, buf + cut, used - cut);
        used -= cut;
    }
    free(buf);
    if (st) {
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
    }
    return st;
}
