/* finite.h - finding NaN and Inf.  A non-finite weight turns every logit it
 * reaches into NaN, and greedy decoding then picks an arbitrary token: the
 * loader refuses such a model (model.c) and the callers that read logits
 * check them, so the failure is an error naming the value, never garbage. */
#ifndef FINCH_FINITE_H
#define FINCH_FINITE_H

#include "util.h"

/* The first non-finite value among the n values of type t stored at data:
 * its element index, or n when every value is finite.  F32, F16, BF16: the
 * exponent bits are all ones.  Quantized types (n a multiple of the
 * block): only the f16 scales of a block (d, and dmin/m where the type has
 * one) can be non-finite (the quants are integers); the index is then the
 * block's first element.  *kind is "NaN", "+Inf" or "-Inf" when a
 * value is found (may be NULL).  Unknown types: n. */
size_t finch_first_nonfinite(finch_dtype t, const void *data, size_t n, const char **kind);

/* FINCH_OK when logits[0..vocab) are finite; otherwise FINCH_ERR_FORMAT:
 * "<what>: the logit of token <i> is NaN (the forward pass overflowed
 * float32)".  Weights are checked at load, so a non-finite logit means the
 * model's numbers grew past float32 on the way (or a bug). */
finch_status finch_check_logits(const float *logits, size_t vocab, const char *what);

#endif
