/* kernels_wpack.c - packed weights: groups of FINCH_WPACK_ROWS = 16 rows
 * of a quantized weight rewritten in place into a row-interleaved layout,
 * so that decode's matvec (vec_dotp) reads 16 rows' blocks as one stream:
 * one load for the 16 rows' scales, no gathers, no per-row pointers.
 *
 * A weight [rows, cols] with rows % 16 == 0 is cut into groups g = rows
 * [16g, 16g + 16); group g keeps exactly the bytes of its 16 rows (at
 * data + g * 16 * row_bytes), so packing needs no memory of its own.
 *
 * The 32-value types (Q4_0, IQ4_NL, Q4_1, Q5_0, Q5_1): block b of the 16
 * rows together, 16 x block_bytes at group + b * 16 * block_bytes:
 *
 *     d:  16 x f16       row r at index r (natural order)
 *     m:  16 x f16       Q4_1 / Q5_1 only, natural order
 *     qh: 16 x uint32    Q5_0 / Q5_1 only, slot order (below)
 *     qs: 16 x 16 bytes  slot order
 *
 * Slot p holds row (p % 4) * 4 + p / 4 (a 4 x 4 transpose; the map is its
 * own inverse): the 64 bytes of slots 4k .. 4k+3 are rows k, k+4, k+8,
 * k+12, one per 128-bit lane, so that after the in-lane 4 x 4
 * transpose-reduce of the four loads k = 0..3 row r's integer sum lands in
 * 32-bit lane r, the lane of its d.  The bytes of each field are the
 * original block's (f16 scales, qh little-endian, nibbles as ggml has
 * them): unpacking gives the original rows byte for byte.
 *
 * The K-quants (Q4_K, Q5_K, Q6_K) have their own layout, in the same
 * bytes of a group: kernels_wpack_k.c.
 *
 * Every consumer of a packed weight either has a packed kernel (vec_dotp,
 * whose outputs carry finch_vec_dot_ref's bits: exact integer block sums,
 * then the reference's float steps per block in order, row = float lane)
 * or unpacks a group or a row first (finch_wunpack_group / _row,
 * finch_weight_row), so a packed weight gives every result an unpacked
 * one gives, bit for bit. */
#include "kernels_internal.h"
#include "kernels_wpack_k.h" /* the K-quants' layouts */

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Where the fields of a 32-value block lie (bytes; -1: absent). */
typedef struct {
    size_t bytes;
    int m, qh, qs;
} wp_block;

/* ggml's blocks (quants.h): d, then m, qh, qs where the type has them. */
#define WP_Q4_0 ((wp_block){18, -1, -1, 2}) /* and IQ4_NL */
#define WP_Q4_1 ((wp_block){20, 2, -1, 4})
#define WP_Q5_0 ((wp_block){22, -1, 2, 6})
#define WP_Q5_1 ((wp_block){24, 2, 4, 8})

static bool wp_block_of(finch_dtype t, wp_block *b) {
    switch (t) {
    case FINCH_Q4_0:
    case FINCH_IQ4_NL: *b = WP_Q4_0; return true;
    case FINCH_Q4_1: *b = WP_Q4_1; return true;
    case FINCH_Q5_0: *b = WP_Q5_0; return true;
    case FINCH_Q5_1: *b = WP_Q5_1; return true;
    default: return false;
    }
}

/* The packed block's field offsets (kernels_internal.h; m at 32). */
static void wp_offsets(const wp_block *b, size_t *m, size_t *qh, size_t *qs) {
    size_t at = 2 * FINCH_WPACK_ROWS;
    *m = at;
    if (b->m >= 0) at += 2 * FINCH_WPACK_ROWS;
    *qh = at;
    if (b->qh >= 0) at += 4 * FINCH_WPACK_ROWS;
    *qs = at;
}

/* Moves block i of the 16 rows between row-major rows (`rows`, rb bytes
 * apart) and a packed group; to_packed picks the direction.  Inlined with
 * b a constant (wp_for_type), so that every copy has a constant size. */
static inline __attribute__((always_inline)) void wp_move(const wp_block b, uint8_t *group, uint8_t *rows,
                                                          size_t rb, size_t nb, bool to_packed) {
    size_t om, oqh, oqs;
    wp_offsets(&b, &om, &oqh, &oqs);
    for (size_t i = 0; i < nb; i++) {
        uint8_t *pk = group + i * FINCH_WPACK_ROWS * b.bytes;
        for (size_t r = 0; r < FINCH_WPACK_ROWS; r++) {
            uint8_t *row = rows + r * rb + i * b.bytes;
            size_t s = finch_wpack_slot(r);
#define WP_COPY(packed, plain, n) (to_packed ? memcpy(packed, plain, n) : memcpy(plain, packed, n))
            WP_COPY(pk + 2 * r, row, 2);
            if (b.m >= 0) WP_COPY(pk + om + 2 * r, row + b.m, 2);
            if (b.qh >= 0) WP_COPY(pk + oqh + 4 * s, row + b.qh, 4);
            WP_COPY(pk + oqs + 16 * s, row + b.qs, 16);
#undef WP_COPY
        }
    }
}

/* wp_move with the type's layout as a constant (group is only read when
 * !to_packed). */
static void wp_for_type(finch_dtype t, uint8_t *group, uint8_t *rows, size_t rb, size_t nb, bool to_packed) {
    switch (t) {
    case FINCH_Q4_0:
    case FINCH_IQ4_NL: wp_move(WP_Q4_0, group, rows, rb, nb, to_packed); break;
    case FINCH_Q4_1: wp_move(WP_Q4_1, group, rows, rb, nb, to_packed); break;
    case FINCH_Q5_0: wp_move(WP_Q5_0, group, rows, rb, nb, to_packed); break;
    case FINCH_Q5_1: wp_move(WP_Q5_1, group, rows, rb, nb, to_packed); break;
    default: break;
    }
}

/* Row r of a packed group into `row` (row-major, the original bytes). */
static void wp_unpack_row32(const wp_block *b, const uint8_t *group, size_t cols, size_t r, uint8_t *row) {
    size_t om, oqh, oqs, s = finch_wpack_slot(r), nb = cols / FINCH_QK;
    wp_offsets(b, &om, &oqh, &oqs);
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *pk = group + i * FINCH_WPACK_ROWS * b->bytes;
        uint8_t *o = row + i * b->bytes;
        memcpy(o, pk + 2 * r, 2);
        if (b->m >= 0) memcpy(o + b->m, pk + om + 2 * r, 2);
        if (b->qh >= 0) memcpy(o + b->qh, pk + oqh + 4 * s, 4);
        memcpy(o + b->qs, pk + oqs + 16 * s, 16);
    }
}

bool finch_wpack_supported(finch_dtype t) {
    wp_block b;
    return wp_block_of(t, &b) || finch_wpack_k_supported(t);
}

void finch_wpack_group(finch_dtype t, void *group, size_t cols, void *tmp) {
    wp_block b;
    if (!wp_block_of(t, &b)) {
        if (finch_wpack_k_supported(t)) finch_wpack_k_group(t, group, cols, tmp);
        return;
    }
    size_t rb = finch_row_bytes(t, cols);
    memcpy(tmp, group, FINCH_WPACK_ROWS * rb);
    wp_for_type(t, group, tmp, rb, cols / FINCH_QK, true);
}

void finch_wunpack_row(finch_dtype t, const void *group, size_t cols, size_t r, void *row) {
    wp_block b;
    if (!wp_block_of(t, &b)) {
        if (finch_wpack_k_supported(t)) finch_wunpack_k_row(t, group, cols, r, row);
        return;
    }
    wp_unpack_row32(&b, group, cols, r, row);
}

void finch_wunpack_group(finch_dtype t, const void *group, size_t cols, void *rows) {
    wp_block b;
    if (!wp_block_of(t, &b)) {
        if (finch_wpack_k_supported(t)) finch_wunpack_k_group(t, group, cols, rows);
        return;
    }
    wp_for_type(t, (uint8_t *)group, rows, finch_row_bytes(t, cols), cols / FINCH_QK, false);
}

static _Atomic int packing = FINCH_WPACK_AUTO;

void finch_set_weight_packing(finch_weight_packing mode) { atomic_store(&packing, (int)mode); }

finch_weight_packing finch_get_weight_packing(void) { return (finch_weight_packing)atomic_load(&packing); }

bool finch_wpack_wanted(const finch_kernels *k, const finch_weight *w) {
    if (finch_get_weight_packing() == FINCH_WPACK_OFF || w->packed || !w->data || !w->rows || w->rows % FINCH_WPACK_ROWS)
        return false;
    return (size_t)w->type < FINCH_DTYPE_SLOTS && finch_wpack_supported(w->type) && k->vec_dotp[w->type] &&
           finch_row_bytes(w->type, w->cols) && finch_get_quant_math() == FINCH_QUANT_MATH_Q8;
}

typedef struct {
    finch_dtype type;
    uint8_t *data;
    size_t cols, group_bytes;
    uint8_t *tmp; /* one group per thread */
} wp_job;

static void wp_task(void *arg, size_t g) {
    const wp_job *j = arg;
    finch_wpack_group(j->type, j->data + g * j->group_bytes, j->cols, j->tmp + finch_pool_worker() * j->group_bytes);
}

bool finch_weight_pack_wanted(const finch_weight *w) { return finch_wpack_wanted(finch_kernels_get(), w); }

finch_status finch_weight_pack(finch_pool *pool, finch_weight *w, void *data) {
    size_t rb = finch_row_bytes(w->type, w->cols), gb = FINCH_WPACK_ROWS * rb;
    size_t threads = finch_pool_threads(pool);
    wp_job j = {w->type, data, w->cols, gb, finch_alloc(threads ? threads : 1, gb)};
    if (!j.tmp) return FINCH_ERR_NOMEM;
    finch_pool_run(pool, w->rows / FINCH_WPACK_ROWS, wp_task, &j);
    free(j.tmp);
    w->data = data;
    w->packed = true;
    return FINCH_OK;
}

const void *finch_weight_row(const finch_weight *w, size_t r, void *scratch) {
    size_t rb = finch_row_bytes(w->type, w->cols);
    if (!w->packed) return (const uint8_t *)w->data + r * rb;
    const uint8_t *group = (const uint8_t *)w->data + r / FINCH_WPACK_ROWS * FINCH_WPACK_ROWS * rb;
    finch_wunpack_row(w->type, group, w->cols, r % FINCH_WPACK_ROWS, scratch);
    return scratch;
}
