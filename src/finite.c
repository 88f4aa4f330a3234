/* finite.c - NaN and Inf in stored tensors and in logits (finite.h).
 *
 * The load-time scan reads every weight once, so it must run at memory
 * speed: values are tested as integers.  With the sign ignored, a value is
 * Inf or NaN exactly when its exponent field is all ones; adding one
 * exponent step to (bits & exponent mask) then carries into the bit above
 * the field.  OR-ing that over a fixed-size block is branch-free and has a
 * constant trip count, which GCC and clang vectorise at -O2; only a block
 * whose OR shows a carry is rescanned one value at a time. */
#include "finite.h"
#include "quants.h"

#include <math.h>
#include <string.h>

#define SCAN_BLOCK 1024 /* values per vectorised block */

/* ------------------------------------------------------- 32-bit values */

#define F32_EXP 0x7f800000u
#define F32_STEP 0x00800000u

static bool f32_bad(const uint8_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return (u & F32_EXP) == F32_EXP;
}

static size_t scan_f32(const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK) {
        const uint8_t *b = p + 4 * i;
        uint32_t acc = 0;
        for (size_t j = 0; j < SCAN_BLOCK; j++) {
            uint32_t u;
            memcpy(&u, b + 4 * j, 4);
            acc |= (u & F32_EXP) + F32_STEP;
        }
        if (acc & 0x80000000u) break; /* rescan this block below */
    }
    for (; i < n; i++)
        if (f32_bad(p + 4 * i)) return i;
    return n;
}

/* ------------------------------------------------------- 16-bit values */

/* Exponent mask and one exponent step of a 16-bit float type. */
typedef struct {
    uint16_t exp, step;
} half_kind;

static const half_kind F16_BITS = { 0x7c00, 0x0400 };
static const half_kind BF16_BITS = { 0x7f80, 0x0080 };

static bool half_bad(const uint8_t *p, half_kind k) {
    uint16_t h;
    memcpy(&h, p, 2);
    return (h & k.exp) == k.exp;
}

static size_t scan_half(const uint8_t *p, size_t n, half_kind k) {
    size_t i = 0;
    for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK) {
        const uint8_t *b = p + 2 * i;
        uint32_t acc = 0;
        for (size_t j = 0; j < SCAN_BLOCK; j++) {
            uint16_t h;
            memcpy(&h, b + 2 * j, 2);
            acc |= (uint32_t)(h & k.exp) + k.step;
        }
        if (acc & 0x8000u) break;
    }
    for (; i < n; i++)
        if (half_bad(p + 2 * i, k)) return i;
    return n;
}

/* Quantized types: the f16 scales of each block (a strided read of one or
 * two values per block, cheap next to the contiguous types); the quants
 * themselves are small integers and always finite.  Returns the first
 * element of the first bad block, and that scale's value in *bad. */
static size_t scan_blocks(const uint8_t *p, size_t n, const finch_quant_traits *q, float *bad) {
    size_t blocks = n / q->block;
    for (size_t b = 0; b < blocks; b++)
        for (size_t s = 0; s < q->n_scales; s++) {
            const uint8_t *h = p + b * q->bytes + q->scale_off[s];
            if (half_bad(h, F16_BITS)) {
                uint16_t d;
                memcpy(&d, h, 2);
                *bad = finch_f16_to_f32(d);
                return b * q->block;
            }
        }
    return n;
}

/* -------------------------------------------------------------- public */

static const char *kind_of(float v) {
    if (isnan(v)) return "NaN";
    return v > 0 ? "+Inf" : "-Inf";
}

size_t finch_first_nonfinite(finch_dtype t, const void *data, size_t n, const char **kind) {
    const uint8_t *p = data;
    size_t i;
    float v = 0;
    switch (t) {
    case FINCH_F32:
        if ((i = scan_f32(p, n)) < n) memcpy(&v, p + 4 * i, 4);
        break;
    case FINCH_F16:
    case FINCH_BF16:
        i = scan_half(p, n, t == FINCH_F16 ? F16_BITS : BF16_BITS);
        if (i < n) finch_row_to_f32(t, p + 2 * i, &v, 1);
        break;
    default: {
        const finch_quant_traits *q = finch_quant_traits_of(t);
        if (!q) return n;
        i = scan_blocks(p, n, q, &v);
        break;
    }
    }
    if (i < n && kind) *kind = kind_of(v);
    return i;
}

finch_status finch_check_logits(const float *logits, size_t vocab, const char *what) {
    const char *kind = "";
    size_t i = finch_first_nonfinite(FINCH_F32, logits, vocab, &kind);
    if (i == vocab) return FINCH_OK;
    return finch_fail(FINCH_ERR_FORMAT, "%s: the logit of token %zu is %s (the forward pass overflowed float32)",
                      what, i, kind);
}
