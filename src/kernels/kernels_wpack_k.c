/* kernels_wpack_k.c - the K-quants' packed 16-row groups: pack, unpack
 * and the scalar reference of the packed matvec (kernels_wpack_k.h; the
 * layout in docs/quantization.md, "Decode: packed K-quant rows").
 *
 * Per super-block b, the 16 rows' blocks become one block group of 16 x
 * the block bytes.  Every field but Q4_K/Q5_K's scales is a byte move: a
 * field of len bytes per row, cut into chunks of w bytes, goes to
 * dst + j * stride + w * r (chunk j of row r), so chunk j of the 16 rows
 * is one run of 16w bytes.  w = 4 for the quants (one int32
 * lane per row: vpdpbusd), 2 for f16 d/dmin (vcvtph2ps of 16 rows) and
 * Q6_K's int8 scales (a pair of scales per row: vpmovsxbw, vpdpwssd).
 *
 * Q4_K/Q5_K's 12 scale bytes per row hold 8 scales and 8 mins of 6 bits
 * (finch_k4_scale_min).  Packed (192 bytes for 16 rows) as U, 256 6-bit
 * values: U[16s + r] = scale s of row r, U[128 + 32k + 2r + i] = min
 * 2k + i of row r; stored as L[i] = U[i] & 15 | (U[i + 128] & 15) << 4
 * (128 bytes) and H[i] = the top 2 bits of U[i + 64q] at bits 2q (64
 * bytes), which a kernel decodes with a few 64-byte operations. */
#include "kernels_wpack_k.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WP_ROWS FINCH_WPACK_ROWS
#define WP_SCALES 0 /* chunk width 0: the Q4_K/Q5_K scale encoding */

typedef struct {
    size_t src, len, dst, w, stride; /* row block offset, bytes; group offset, chunk, chunk stride */
} wp_field;

/* Each type's fields (src: in the row's block; dst: in the block group;
 * stride: bytes from chunk j's 16-row run to chunk j + 1's, 16w where
 * the field's runs are contiguous).  The quants are ordered as the kernel
 * reads them, so that a block group is read front to back (d, dmin and
 * the scales first): per 4 values
 * j, Q4_K's four 32-byte chunks of qs (c = 0..3), Q5_K's qh then its qs'; Q6_K
 * per half h and 4 values j, ql's two chunks then qh's. */
static const wp_field wp_q4_K[] = {{0, 2, 0, 2, 32},          {2, 2, 32, 2, 32},          {4, 12, 64, WP_SCALES, 0},
                                   {16, 32, 256, 4, 256},     {48, 32, 256 + 64, 4, 256}, {80, 32, 256 + 128, 4, 256},
                                   {112, 32, 256 + 192, 4, 256}};
static const wp_field wp_q5_K[] = {{0, 2, 0, 2, 32},           {2, 2, 32, 2, 32},          {4, 12, 64, WP_SCALES, 0},
                                   {16, 32, 256, 4, 320},      {48, 32, 256 + 64, 4, 320}, {80, 32, 256 + 128, 4, 320},
                                   {112, 32, 256 + 192, 4, 320}, {144, 32, 256 + 256, 4, 320}};
static const wp_field wp_q6_K[] = {{208, 2, 0, 2, 32},           {192, 16, 32, 2, 32},
                                   {0, 32, 288, 4, 192},         {32, 32, 288 + 64, 4, 192},
                                   {128, 32, 288 + 128, 4, 192}, {64, 32, 288 + 1536, 4, 192},
                                   {96, 32, 288 + 1600, 4, 192}, {160, 32, 288 + 1664, 4, 192}};

static const wp_field *wp_fields(finch_dtype t, size_t *n) {
    switch (t) {
    case FINCH_Q4_K: *n = sizeof wp_q4_K / sizeof *wp_q4_K; return wp_q4_K;
    case FINCH_Q5_K: *n = sizeof wp_q5_K / sizeof *wp_q5_K; return wp_q5_K;
    case FINCH_Q6_K: *n = sizeof wp_q6_K / sizeof *wp_q6_K; return wp_q6_K;
    default: *n = 0; return NULL;
    }
}

bool finch_wpack_k_supported(finch_dtype t) {
    size_t n;
    return wp_fields(t, &n) != NULL;
}

static size_t wp_block_bytes(finch_dtype t) { return finch_quant_traits_of(t)->bytes; }

/* 16 rows' 12 scale bytes (rows[r]) to the packed L, H (192 bytes). */
static void wp_encode_scales(const uint8_t *const rows[WP_ROWS], uint8_t *out) {
    uint8_t u[256];
    for (size_t r = 0; r < WP_ROWS; r++)
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            finch_k4_scale_min(j, rows[r], &sc, &mn);
            u[16 * j + r] = (uint8_t)sc;
            u[128 + 32 * (j / 2) + 2 * r + j % 2] = (uint8_t)mn;
        }
    for (size_t i = 0; i < 128; i++) out[i] = (uint8_t)((u[i] & 15) | (u[i + 128] & 15) << 4);
    for (size_t i = 0; i < 64; i++)
        out[128 + i] = (uint8_t)((u[i] >> 4) | (u[i + 64] >> 4) << 2 | (u[i + 128] >> 4) << 4 | (u[i + 192] >> 4) << 6);
}

/* 6-bit value i (0..255) of U from the packed L, H. */
static int wp_u_at(const uint8_t *in, size_t i) {
    return (in[i % 128] >> (i < 128 ? 0 : 4) & 15) | (in[128 + i % 64] >> (2 * (i / 64)) & 3) << 4;
}

/* Row r's 12 scale bytes from its 8 scales and 8 mins (the inverse of
 * finch_k4_scale_min: all 96 bits are fields, so the bytes are unique). */
static void wp_scale_bytes(const int sc[8], const int mn[8], uint8_t *s) {
    for (size_t j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

/* Where row r's scale j and min j lie in U. */
static size_t wp_u_scale(size_t r, size_t j) { return 16 * j + r; }
static size_t wp_u_min(size_t r, size_t j) { return 128 + 32 * (j / 2) + 2 * r + j % 2; }

/* Row r's 12 scale bytes back from the packed L, H. */
static void wp_decode_scales(const uint8_t *in, size_t r, uint8_t *s) {
    int sc[8], mn[8];
    for (size_t j = 0; j < 8; j++) {
        sc[j] = wp_u_at(in, wp_u_scale(r, j));
        mn[j] = wp_u_at(in, wp_u_min(r, j));
    }
    wp_scale_bytes(sc, mn, s);
}

/* The same for the 16 rows at once (out[r]: row r's 12 bytes), U decoded
 * once: the quantized GEMM unpacks every group it reads. */
static void wp_decode_scales16(const uint8_t *in, uint8_t *const out[WP_ROWS]) {
    uint8_t u[256];
    for (size_t i = 0; i < 256; i++) u[i] = (uint8_t)wp_u_at(in, i);
    for (size_t r = 0; r < WP_ROWS; r++) {
        int sc[8], mn[8];
        for (size_t j = 0; j < 8; j++) {
            sc[j] = u[wp_u_scale(r, j)];
            mn[j] = u[wp_u_min(r, j)];
        }
        wp_scale_bytes(sc, mn, out[r]);
    }
}

/* w bytes (2 or 4: constant sizes, so the copies are inlined). */
static void wp_copy(void *dst, const void *src, size_t w) {
    if (w == 4) memcpy(dst, src, 4);
    else memcpy(dst, src, 2);
}

/* Chunk j (bytes j * w ..) of row r's field f in the block group. */
static size_t wp_chunk_at(const wp_field *f, size_t r, size_t j) { return f->dst + j * f->stride + f->w * r; }

/* Block group b of the group packed from rows (row-major, rb bytes apart). */
static void wp_pack_block_group(finch_dtype t, uint8_t *packed, const uint8_t *rows, size_t rb, size_t b) {
    size_t nf, bytes = wp_block_bytes(t);
    const wp_field *fs = wp_fields(t, &nf);
    uint8_t *g = packed + b * WP_ROWS * bytes;
    for (size_t k = 0; k < nf; k++) {
        const wp_field *f = &fs[k];
        const uint8_t *src[WP_ROWS];
        for (size_t r = 0; r < WP_ROWS; r++) src[r] = rows + r * rb + b * bytes + f->src;
        if (f->w == WP_SCALES) {
            wp_encode_scales(src, g + f->dst);
            continue;
        }
        for (size_t j = 0; j < f->len / f->w; j++)
            for (size_t r = 0; r < WP_ROWS; r++) wp_copy(g + wp_chunk_at(f, r, j), src[r] + j * f->w, f->w);
    }
}

void finch_wpack_k_group(finch_dtype t, void *group, size_t cols, void *tmp) {
    size_t rb = cols / FINCH_QK_K * wp_block_bytes(t);
    memcpy(tmp, group, WP_ROWS * rb);
    for (size_t b = 0; b < cols / FINCH_QK_K; b++) wp_pack_block_group(t, group, tmp, rb, b);
}

/* Field f of a block group back into the 16 rows' blocks (out[r]), chunk
 * by chunk: chunk j of the 16 rows is one run of 16 w bytes.  Inlined
 * with w a constant, so that every copy is one move. */
static inline __attribute__((always_inline)) void wp_unpack_field(const uint8_t *g, const wp_field *f,
                                                                  uint8_t *const out[WP_ROWS], size_t w) {
    for (size_t j = 0; j < f->len / w; j++) {
        const uint8_t *run = g + f->dst + j * f->stride;
        for (size_t r = 0; r < WP_ROWS; r++) memcpy(out[r] + f->src + j * w, run + w * r, w);
    }
}

/* The 16 rows together (finch_wunpack_k_row's bytes for every r, a field
 * at a time): the quantized GEMM unpacks each group of a packed K-quant
 * weight before its pack, once per call, so this is prefill's cost of
 * packing (docs/quantization.md). */
void finch_wunpack_k_group(finch_dtype t, const void *group, size_t cols, void *rows) {
    size_t nf, bytes = wp_block_bytes(t), rb = cols / FINCH_QK_K * bytes;
    const wp_field *fs = wp_fields(t, &nf);
    for (size_t b = 0; b < cols / FINCH_QK_K; b++) {
        const uint8_t *g = (const uint8_t *)group + b * WP_ROWS * bytes;
        uint8_t *out[WP_ROWS];
        for (size_t r = 0; r < WP_ROWS; r++) out[r] = (uint8_t *)rows + r * rb + b * bytes;
        for (size_t k = 0; k < nf; k++) {
            const wp_field *f = &fs[k];
            if (f->w == WP_SCALES) {
                uint8_t *s[WP_ROWS];
                for (size_t r = 0; r < WP_ROWS; r++) s[r] = out[r] + f->src;
                wp_decode_scales16(g + f->dst, s);
            } else if (f->w == 4) {
                wp_unpack_field(g, f, out, 4);
            } else {
                wp_unpack_field(g, f, out, 2);
            }
        }
    }
}

void finch_wunpack_k_row(finch_dtype t, const void *group, size_t cols, size_t r, void *row) {
    size_t nf, bytes = wp_block_bytes(t);
    const wp_field *fs = wp_fields(t, &nf);
    for (size_t b = 0; b < cols / FINCH_QK_K; b++) {
        const uint8_t *g = (const uint8_t *)group + b * WP_ROWS * bytes;
        uint8_t *out = (uint8_t *)row + b * bytes;
        for (size_t k = 0; k < nf; k++) {
            if (fs[k].w == WP_SCALES) wp_decode_scales(g + fs[k].dst, r, out + fs[k].src);
            else
                for (size_t j = 0; j < fs[k].len / fs[k].w; j++)
                    wp_copy(out + fs[k].src + j * fs[k].w, g + wp_chunk_at(&fs[k], r, j), fs[k].w);
        }
    }
}

void finch_vec_dotp_k_ref(finch_dtype t, const void *group, size_t cols, const void *x, float *out) {
    uint8_t *row = malloc(cols / FINCH_QK_K * wp_block_bytes(t) + 1);
    for (size_t r = 0; r < WP_ROWS; r++) {
        if (!row) {
            out[r] = NAN;
            continue;
        }
        finch_wunpack_k_row(t, group, cols, r, row);
        out[r] = finch_vec_dot_ref(t)(row, x, cols);
    }
    free(row);
}
