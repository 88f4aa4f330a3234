/* kernels_wpack_k.h - the K-quants Q4_K, Q5_K and Q6_K stored in groups of
 * FINCH_WPACK_ROWS rows, packed in place for decode's matvec (docs/
 * quantization.md, "Decode: packed K-quant rows").
 *
 * A group of 16 rows occupies exactly the bytes of its 16 row-major rows;
 * inside it, super-block b of all 16 rows comes together (one "block
 * group", 16 x the type's block bytes), each field of the 16 rows
 * interleaved in chunks of 4 (quants) or 2 (f16 d, dmin, int8 scales)
 * bytes so that one 64-byte load covers all 16 rows (one row per int32
 * lane) and the kernel needs no gather and no per-row pointer.  Q4_K and
 * Q5_K's 6-bit scales and mins are re-encoded (the same 96 bits per row,
 * in an order that four vector operations decode).  Unpacking gives the
 * original bytes back exactly. */
#ifndef FINCH_KERNELS_WPACK_K_H
#define FINCH_KERNELS_WPACK_K_H

#include "kernels_internal.h" /* FINCH_WPACK_ROWS, finch_vec_dotp_fn */
#include "quants.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether finch_wpack_k_group packs type t (Q4_K, Q5_K, Q6_K). */
bool finch_wpack_k_supported(finch_dtype t);
/* In place: group holds 16 row-major rows of cols values on entry, the
 * packed layout on return; tmp: 16 x row bytes of scratch. */
void finch_wpack_k_group(finch_dtype t, void *group, size_t cols, void *tmp);
/* The 16 row-major rows of a packed group, byte for byte as packed. */
void finch_wunpack_k_group(finch_dtype t, const void *group, size_t cols, void *rows);
/* Row r (< 16) of a packed group. */
void finch_wunpack_k_row(finch_dtype t, const void *group, size_t cols, size_t r, void *row);
/* The scalar twin of every packed kernel: each row unpacked, then
 * finch_vec_dot_ref (out[r] = NaN for all r if no memory for a row). */
void finch_vec_dotp_k_ref(finch_dtype t, const void *group, size_t cols, const void *x, float *out);


#endif
