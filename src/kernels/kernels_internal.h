/* kernels_internal.h - what each instruction-set file gives kernels.c.
 *
 * One table of function pointers per ISA (scalar, AVX2, AVX-512, NEON).
 * kernels.c picks a table at run time and drives it; the ISA files only
 * contain inner loops.
 *
 * Two orders of summation exist.  An output never depends on the thread
 * that computes it or on how rows and tokens were cut into tasks, so
 * threads cannot change results:
 *
 *  - "lane" order: the tiles (decode, and batches of fewer than
 *    FINCH_GEMM_MIN_TOKENS tokens), all dtypes, all ISAs; prefill of Q8_0
 *    on tables without a quantized GEMM, and prefill on ISAs without a
 *    packed GEMM.  One vector accumulator per
 *    output; lane j takes columns j, j + L, j + 2L, ... in order (L =
 *    vector width), a zero-padded last vector takes the tail, one fixed
 *    horizontal reduction ends it.  (Q8_0: exact integer sums per lane and
 *    block, then one FMA per block into the lanes, acc += isum * (d_w *
 *    d_x), block by block in order.)  Within one ISA an output does not
 *    depend on the tile or the token count: n == 1 and n > 1 agree bit for
 *    bit.
 *
 *  - "column" order: the packed GEMM, for F32/F16/BF16 batches of at least
 *    FINCH_GEMM_MIN_TOKENS tokens where the table has one (AVX-512).  Every
 *    output is one chain acc = fma(w[c], x[c], acc) over c = 0, 1, ...,
 *    cols-1 from acc = 0, the lanes of a vector holding 32 rows' outputs.
 *    W is packed (transposed into column-major panels, F16/BF16 converted
 *    to f32 once per call rather than once per token).  All batches of
 *    FINCH_GEMM_MIN_TOKENS or more agree bit for bit with each other; they
 *    differ from the lane order in the last bits (a tile that transposes W
 *    in registers so that decode could follow the column order too was
 *    measured at a third of the lane tile's speed: the 64 shuffles per
 *    16 x 16 block cost more than the matvec's memory time).
 *
 * The OpenBLAS path for f32 prefill is different arithmetic, made
 * thread-independent by cutting W into fixed row blocks (kernels.c).
 *
 * BF16 weights in the bf16 arithmetic (the default where the CPU has a
 * bf16 dot product: kernels_bf16.c) have their own "pair-lane" order,
 * vdpbf16ps's, in one tile for every batch size: decode and prefill agree.
 *
 * The other quantized types (kernels_quant.c) have a third, simplest
 * order: every output is one dot product (vec_dot, or vec_dotn for up to
 * FINCH_DOTN_TOKENS tokens) with exact integer block sums and the scalar reference's
 * float steps, on every ISA; the quantized GEMM (qgemm below) computes the
 * same integers and float steps for 16 rows x 8 tokens at once, and
 * decode's matvec (vec_dotr: on x86 the K-quants, 8 rows side by side in
 * kernels_quant_krows_x86.h; the 32-value types and IQ4_XS, 8 or 16 rows
 * in kernels_quant_rows_x86.h) for one token and several rows, one row per
 * float lane; with packed weights (vec_dotp: the 32-value types and
 * Q4_K, Q5_K, Q6_K rewritten at model load into groups of 16 interleaved
 * rows, kernels_wpack.c and kernels_wpack_k.c; kernels_quant_pack_x86.h,
 * kernels_quant_kpack_x86.h, kernels_quant_kpack_avx2.h) for one token and one group,
 * row r in float lane r.  Exact integers leave their order free, and the
 * float steps are the reference's per output, so all of these give its
 * bits (a packed weight gives every result an unpacked one gives).  Q8_0
 * prefill batches that a table's quantized GEMM takes (finch_qgemm_runs:
 * from FINCH_GEMM_MIN_TOKENS tokens, AVX-512 VNNI) run it too, so they have
 * the scalar reference's bits (finch_vec_dot_ref), not the lane order of
 * Q8_0's decode and smaller batches, as F32/F16's column-order prefill
 * (finch_matmul_rows_agree says where a sub-batch keeps the bits). */
#ifndef FINCH_KERNELS_INTERNAL_H
#define FINCH_KERNELS_INTERNAL_H

#include "kernels.h"
#include "quants.h"

#define FINCH_TILE_ROWS 4       /* W rows of the lane-order tiles          */
#define FINCH_DOTN_TOKENS 8     /* tokens per vec_dotn call                 */
typedef void (*finch_vec_dotn_fn)(const void *w, const void *x, size_t x_stride, size_t nt, size_t n,
                                  float *out, size_t out_stride);
/* One token against nr >= 1 consecutive weight rows (w_stride bytes
 * apart): out[r] must be vec_dot's bits for row r.  Decode's matvec: each
 * row's float steps form one dependency chain, so several rows' chains
 * side by side (their integer sums reduced together) keep the units busy
 * where one row at a time waits on every step. */
typedef void (*finch_vec_dotr_fn)(const void *w, size_t w_stride, size_t nr, const void *x, size_t n,
                                  float *out);
/* The rows a vec_dotr computes side by side (the x86 K-quants'): the
 * matvec's row tasks are cut at multiples of it, so that only a matrix's
 * last group is short (a short group computes a repeated row for nothing). */
#define FINCH_DOTR_ROWS 8

/* Micro-kernel.  w: first of nr rows, w_stride bytes apart (rows past nr
 * are never written and may be read as copies of row nr-1).  x: nt token
 * rows, x_stride bytes apart: floats for F32/F16/BF16 weights, Q8_0 blocks
 * for Q8_0 weights.  1 <= nt <= tokens and 1 <= nr <= rows of its
 * finch_tile (nr <= matvec_rows when nt == 1). */
typedef void (*finch_tile_fn)(const void *w, size_t w_stride, size_t nr, const void *x,
                              size_t x_stride, size_t nt, size_t cols, float *out,
                              size_t ldo);

typedef struct {
    finch_tile_fn fn;
    size_t rows;        /* W rows per call (a multiple of 4)                */
    size_t tokens;      /* the most tokens per call                          */
    size_t matvec_rows; /* W rows per call with one token (>= rows): a
                           matvec is memory-bound and wants more streams    */
} finch_tile;

/* Packed GEMM, column order (see above).
 *
 * pack: rows [0, nr) (nr <= FINCH_PANEL_ROWS) and columns [k0, k0 + kc) of
 * W (w_stride bytes per row) into wp[k * FINCH_PANEL_ROWS + r] as f32;
 * lanes r >= nr hold copies of row nr-1 (never stored as outputs).
 *
 * gemm: for t < nt (<= gemm_tokens) and r < nr (<= FINCH_PANEL_ROWS)
 *     c[t*ldc + r] = (first ? 0 : c[t*ldc + r]) + sum_{k < kc} wp[k*wps + r] * x[t*xs + k]
 * as a chain of FMAs in k order.  Lanes r >= nr of wp are not read, so wp
 * may also be rows of plain memory (attention uses V rows directly). */
#define FINCH_PANEL_ROWS 32
#define FINCH_GEMM_MIN_TOKENS 8 /* smaller batches run the lane-order tiles */
typedef void (*finch_pack_fn)(const void *w, size_t w_stride, size_t nr, size_t k0, size_t kc,
                              float *wp);
typedef void (*finch_gemm_fn)(const float *wp, size_t wps, size_t kc, const float *x, size_t xs,
                              size_t nt, float *c, size_t ldc, size_t nr, bool first);

/* Quantized GEMM (kernels_qgemm.c): prefill with quantized weights.  A
 * tile of FINCH_QG_ROWS weight rows is unpacked once per call into packs
 * of 256 columns (values made unsigned, 4 consecutive columns of the 16
 * rows side by side: one vector per 4 columns), and each token's
 * activations meet all 16 rows at once (vpdpbusd with the 4 activation
 * bytes broadcast; on AVX2 8 rows at a time, vpmaddubsw + vpmaddwd).  Integer sums are exact, so their order is free; the
 * float steps are the scalar reference's per row and token, in block
 * order: every output has the bits of finch_vec_dot_ref. */
#define FINCH_QG_ROWS 16
#define FINCH_QG_TOKENS 8 /* tokens per register tile */
/* K-quants: sub-block s of sub (16 or 32) values has scale sc[s]; the
 * activations' 16-value sums bsums[2j], bsums[2j+1] are multiplied by
 * mp[j] (the mins, or for the types shifted to unsigned (Q3_K by 4, Q6_K
 * by 32) the scales, whose product the shift takes back). */
typedef struct {
    uint8_t q[FINCH_QK_K / 4][FINCH_QG_ROWS][4];
    int32_t sc[16][FINCH_QG_ROWS];
    int16_t mp[8][FINCH_QG_ROWS][2];
    float d[FINCH_QG_ROWS], dmin[FINCH_QG_ROWS];
} finch_qg_kpack;
/* 32-value types: 8 blocks per pack (fewer in a row's last pack), each
 * with its own scale; the values' offset is taken back per token and block
 * through finch_qg_xaux.corr. */
typedef struct {
    uint8_t q[FINCH_QK_K / 4][FINCH_QG_ROWS][4];
    float d[8][FINCH_QG_ROWS], m[8][FINCH_QG_ROWS]; /* m: Q4_1/Q5_1 */
} finch_qg_bpack;
/* Per token and 32-value block of Q8_0 or Q8_1 activations: d as f32,
 * offset * (the sum of its 32 quants) and (Q8_1) s as f32. */
typedef struct {
    float d;
    int32_t corr;
    float s;
} finch_qg_xaux;
/* pack: rows [0, nr) of W (nr <= FINCH_QG_ROWS; rows past nr copies of row
 * nr-1), all cols, into finch_qgemm_pack_bytes(t, cols) bytes at pack;
 * w_stride == 0: w is one packed group of a 32-value type (16 rows,
 * kernels_wpack.c), read as it lies.
 * gemm: out[i * ldo + r] for tokens i < nt and rows r < nr; x: nt partner
 * rows x_stride bytes apart; aux: nt rows of cols / 32 finch_qg_xaux (the
 * 32-value types; NULL for the K-quants). */
typedef void (*finch_qgemm_pack_fn)(finch_dtype t, const void *w, size_t w_stride, size_t nr,
                                    size_t cols, void *pack);
typedef void (*finch_qgemm_fn)(finch_dtype t, const void *pack, size_t cols, const void *x,
                               size_t x_stride, const finch_qg_xaux *aux, size_t nt, float *out,
                               size_t ldo, size_t nr);

/* Packed weights (kernels_wpack.c): 16 rows of a quantized weight
 * interleaved block by block, in place (the layout is in that file's
 * header).  vec_dotp: one token x (quantized to the type's partner, as
 * vec_dotr gets it) against one packed group of 16 rows: out[r] must be
 * finch_vec_dot_ref(t)'s bits for row r (exact integer block sums, the
 * reference's float steps per block in order). */
#define FINCH_WPACK_ROWS 16
typedef void (*finch_vec_dotp_fn)(const void *group, size_t cols, const void *x, float *out);
/* The 32-value types' packed block (16 x the block's bytes): 16 d at 0,
 * 16 m at 32 (Q4_1, Q5_1), 16 qh at finch_wpack_qh(t) (Q5_0, Q5_1) and
 * 16 x 16 quant bytes at finch_wpack_qs(t); qh and quants of row r in
 * slot finch_wpack_slot(r). */
static inline size_t finch_wpack_slot(size_t r) { return (r % 4) * 4 + r / 4; }
static inline size_t finch_wpack_qh(finch_dtype t) {
    return t == FINCH_Q4_1 || t == FINCH_Q5_1 ? 4 * FINCH_WPACK_ROWS : 2 * FINCH_WPACK_ROWS;
}
static inline size_t finch_wpack_qs(finch_dtype t) {
    return finch_wpack_qh(t) + (t == FINCH_Q5_0 || t == FINCH_Q5_1 ? 4 * FINCH_WPACK_ROWS : 0);
}
/* Whether a packed layout exists for t; pack a group in place (tmp: 16
 * rows of scratch); unpack a group into 16 row-major rows, or its row r
 * into one row (the original bytes). */
bool finch_wpack_supported(finch_dtype t);
void finch_wpack_group(finch_dtype t, void *group, size_t cols, void *tmp);
void finch_wunpack_group(finch_dtype t, const void *group, size_t cols, void *rows);
void finch_wunpack_row(finch_dtype t, const void *group, size_t cols, size_t r, void *row);

typedef struct {
    finch_isa isa;
    finch_tile tile_f32, tile_f16, tile_bf16, tile_q8_0;
    /* Packed GEMM.  pack_f32 and gemm exist in every table (attention uses
     * them); pack_f16/pack_bf16 only where prefill uses the packed GEMM
     * (gemm_prefill), whose outputs must then match the tiles' bits. */
    bool gemm_prefill;
    size_t gemm_tokens;
    finch_pack_fn pack_f32, pack_f16, pack_bf16;
    finch_gemm_fn gemm;
    /* Quantize n activations (n % 32 == 0) to Q8_0 blocks, bit-identical
     * to finch_quantize_act (llama.cpp's x86 rule: d = max|x| / 127, q =
     * x * (127 / max|x|) rounded half to even), so every ISA sees the same
     * quants.  (Q8_0 weights, written by convert, keep ggml's reference
     * rule: finch_row_from_f32.) */
    void (*quantize_q8_0)(const float *x, void *blocks, size_t n);
    /* The same for Q8_K (n % 256 == 0), bit-identical to finch_quantize_act;
     * NULL: that scalar code. */
    void (*quantize_q8_K)(const float *x, void *blocks, size_t n);
    float (*dot_f32)(const float *a, const float *b, size_t n);
    void (*axpy)(float *y, float a, const float *x, size_t n);
    /* out[i] = w[i] * (s * x[i]): the second half of RMSNorm. */
    void (*scale_mul)(float *out, const float *x, const float *w, float s, size_t n);
    /* x[i] = exp(s * x[i] - m) for i < n, returning their sum (finch_expf's
     * arithmetic): the middle of a softmax. */
    float (*exp_sum)(float *x, size_t n, float s, float m);
    float (*max)(const float *x, size_t n); /* n >= 1 */
    /* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). */
    void (*silu_mul)(float *gate, const float *up, size_t n);
    /* Dot products of a quantized weight row with its partner-quantized
     * activation row, by dtype id; NULL: the scalar reference
     * (finch_vec_dot_ref), whose bits every entry must reproduce. */
    finch_vec_dot_fn vec_dot[FINCH_DTYPE_SLOTS];
    /* The same for nt <= FINCH_DOTN_TOKENS activation rows (x_stride bytes
     * apart) against one weight row, sharing the weight's unpacking:
     * out[t * out_stride] must be vec_dot's bits for row t.  NULL: none. */
    finch_vec_dotn_fn vec_dotn[FINCH_DTYPE_SLOTS];
    /* The same for one token against nr rows (finch_vec_dotr_fn): the
     * matvec of decode.  NULL: vec_dot row by row. */
    finch_vec_dotr_fn vec_dotr[FINCH_DTYPE_SLOTS];
    /* Quantized GEMM for prefill (above): the types it takes (NULL: the
     * dot products above), and the packer for them. */
    finch_qgemm_fn qgemm[FINCH_DTYPE_SLOTS];
    finch_qgemm_pack_fn qgemm_pack;
    /* Decode's matvec on packed weights (finch_vec_dotp_fn above): the
     * types a model load packs for this table.  NULL: not packed. */
    finch_vec_dotp_fn vec_dotp[FINCH_DTYPE_SLOTS];
    /* n values f16 -> f32 and f32 -> f16 (round to nearest even; a NaN
     * comes out quiet with its payload's top bits): the F16 KV cache's
     * rows.  Every entry gives finch_f16_to_f32's and finch_f32_to_f16's
     * bits (F16C's vcvtph2ps / vcvtps2ph on x86). */
    void (*f16_to_f32)(const uint16_t *h, float *out, size_t n);
    void (*f32_to_f16)(const float *x, uint16_t *h, size_t n);
    /* pack_f32's layout from f16 rows (the F16 cache's keys), exact. */
    finch_pack_fn pack_kv_f16;
} finch_kernels;

extern const finch_kernels finch_kernels_scalar;
#if defined(__x86_64__)
extern const finch_kernels finch_kernels_avx2;
extern const finch_kernels finch_kernels_avx512;
/* The same table with the Q8_0 tile on AVX-512 VNNI (vpdpbusd): the same
 * exact integer lane sums, so the same bits as finch_kernels_avx512. */
extern const finch_kernels finch_kernels_avx512_vnni;
#endif
#if defined(__aarch64__)
extern const finch_kernels finch_kernels_neon;
#endif

/* The table in use (set by finch_isa_set, else the detected best). */
const finch_kernels *finch_kernels_get(void);

/* BF16 weights in bf16 arithmetic (kernels_bf16.c: the pair-lane order,
 * vdpbf16ps's steps): a tile whose x rows are bf16 (finch_tile_fn, x_stride
 * bytes apart), and the activations' rounding to bf16 for it. */
typedef struct {
    finch_tile tile;
    void (*to_bf16)(const float *x, void *h, size_t n); /* finch_act_to_bf16's bits */
} finch_bf16_dot;
/* The bf16 arithmetic for table k, or NULL: BF16 runs the f32 kernels
 * (--quant-math fp32, or no bf16 dot product on this ISA or CPU). */
const finch_bf16_dot *finch_bf16_dot_for(const finch_kernels *k);
#if defined(__x86_64__)
extern const finch_bf16_dot finch_bf16_dot_avx512, finch_bf16_dot_avx2;
#endif
/* The scalar twin: one output of n columns in the pair-lane order; and
 * the activations' rounding (to nearest even; denormals to zero, NaN
 * quiet), as vcvtneps2bf16. */
float finch_bf16_dot_ref(const uint16_t *w, const uint16_t *x, size_t n);
uint16_t finch_act_to_bf16(float f);
void finch_act_to_bf16_row(const float *x, void *h, size_t n); /* n values */

/* Quantized weights (kernels_quant.c): whether finch_matmul hands type t
 * to finch_matmul_quant under the current arithmetic, the table's dot
 * product for t, and the product itself (pool: the matmul's pool or NULL
 * for a small product; act_pool: the pool for quantizing n activation
 * rows). */
bool finch_matmul_is_quant(finch_dtype t);
finch_vec_dot_fn finch_vec_dot_for(const finch_kernels *k, finch_dtype t);
finch_status finch_matmul_quant(finch_pool *pool, finch_pool *act_pool, const finch_kernels *k,
                                float *out, const float *x, size_t n, const finch_weight *w);
/* The same product as a plan to run in a pool run (alone or beside others:
 * finch_matmul_many): fn(job, i) for i < n_tasks on a pool of `threads`
 * threads at most, then free_job(job).  Making it quantizes the
 * activations (on act_pool). */
typedef struct {
    void (*fn)(void *job, size_t task);
    void *job;
    size_t n_tasks;
    void (*free_job)(void *job);
} finch_qplan;
finch_status finch_matmul_quant_plan(finch_pool *act_pool, size_t threads, const finch_kernels *k,
                                     float *out, const float *x, size_t n, const finch_weight *w,
                                     finch_qplan *pl);

/* The quantized GEMM's driver (kernels_qgemm.c): whether it runs n tokens
 * of type t, its pack size, the value offset of a 32-value type, and the
 * plan (below) of a product of n >= 1 tokens already quantized (xq: rows
 * x_stride bytes apart, malloc'ed; the plan owns it once made). */
bool finch_qgemm_runs(const finch_kernels *k, finch_dtype t, size_t n);
size_t finch_qgemm_pack_bytes(finch_dtype t, size_t cols);
int finch_qgemm_offset(finch_dtype t);
finch_status finch_qgemm_plan(finch_pool *act_pool, size_t threads, const finch_kernels *k, float *out,
                              void *xq, size_t x_stride, size_t n, const finch_weight *w, finch_qplan *pl);

/* Whether a model load packs w for table k (kernels_wpack.c): a layout
 * exists, k has vec_dotp for it, rows % 16 == 0, Q8 arithmetic. */
bool finch_wpack_wanted(const finch_kernels *k, const finch_weight *w);

/* Portable packed GEMM (kernels_scalar.c) for tables without their own: plain C,
 * which each ISA file may compile with its own vector flags. */
void finch_pack_f32_generic(const void *w, size_t w_stride, size_t nr, size_t k0, size_t kc,
                            float *wp);
void finch_gemm_generic(const float *wp, size_t wps, size_t kc, const float *x, size_t xs,
                        size_t nt, float *c, size_t ldc, size_t nr, bool first);
#define FINCH_GEMM_GENERIC_TOKENS 4
/* Plain C f16 <-> f32 rows and f16 key packing (the scalar table's). */
void finch_f16_to_f32_generic(const uint16_t *h, float *out, size_t n);
void finch_f32_to_f16_generic(const float *x, uint16_t *h, size_t n);
void finch_pack_f16_generic(const void *w, size_t w_stride, size_t nr, size_t k0, size_t kc,
                            float *wp);
/* Plain C exp_sum, max and silu_mul (the scalar table's). */
float finch_exp_sum_generic(float *x, size_t n, float s, float m);
float finch_max_generic(const float *x, size_t n);
void finch_silu_mul_generic(float *gate, const float *up, size_t n);

/* exp(x) in f32 without libm (Cephes' expf): x = n ln2 + r with
 * n = floor(x log2e + 1/2) and ln2 in two parts (n * C1 is exact), exp(r)
 * = 1 + r + r^2 P(r) with P of degree 5 (Horner), times 2^n built in the
 * exponent bits.  Max relative error ~1e-7 where the result is a normal
 * float; below FINCH_EXP_LO it gives 0, above FINCH_EXP_HI (where 2^n would
 * overflow the exponent) +inf.  Softmax only sees x <= 0 and SiLU's exp(-g)
 * only overflows where g / (1 + exp(-g)) is -0 anyway.  The SIMD twins
 * (exp_sum and silu_mul of each ISA) evaluate the same formula lane by lane,
 * with FMAs where the ISA has them, so their last bit may differ. */
#define FINCH_EXP_HI 88.37f             /* n <= 127 below it */
#define FINCH_EXP_LO -87.33654f         /* about -126 ln 2: n >= -126 */
#define FINCH_LOG2E 1.44269504088896341f
#define FINCH_EXP_C1 0.693359375f    /* ln 2 = C1 - C2, C1 with 9 bits */
#define FINCH_EXP_C2 -2.12194440e-4f
#define FINCH_EXP_P0 1.9875691500e-4f
#define FINCH_EXP_P1 1.3981999507e-3f
#define FINCH_EXP_P2 8.3334519073e-3f
#define FINCH_EXP_P3 4.1665795894e-2f
#define FINCH_EXP_P4 1.6666665459e-1f
#define FINCH_EXP_P5 5.0000001201e-1f
float finch_expf(float x);

/* A matvec (one token) streams W from DRAM once.  Prefetching each of the
 * tile's rows this far ahead keeps more misses in flight than the hardware
 * prefetcher does alone (+15-30% decode bandwidth for f16 and q8_0 when
 * measured).  A prefetch never faults and never changes a result. */
#ifndef FINCH_PREFETCH_BYTES /* -D for experiments */
#define FINCH_PREFETCH_BYTES 1024
#endif
static inline void finch_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* The matvec's hint for byte `at` of a tile row (`row`, row_bytes long):
 * FINCH_PREFETCH_BYTES ahead, and past the row's end the same row of the
 * next tile (next_tile bytes further on, the tile's rows x their stride),
 * so that every row's first bytes are in flight before its tile starts
 * (before, the first KB of every row had no hint: a quarter of a 2048-column
 * F16 row, half of a Q8_0 one).  Matvecs through 512 MB of 2048 x 2048
 * matrices, 2 threads, bytes per CPU-second on the loaded 2-core Zen 4
 * (docs/bench.md): F16 +5%, Q8_0 +17-20%, F32 +1-3%.  The next tile may lie
 * past the matrix: a prefetch never faults. */
/* The hint asks for L2, not L1 (locality 1: prefetcht2).  The likely
 * reason it helps: an L1 hint holds one of the core's few L1 miss buffers
 * until its line arrives from DRAM, so 8 rows x 1 KB of hints ahead stall
 * the loads behind them; an L2 hint waits in L2's larger miss queue, and
 * the tile's load then finds the line in L2.  Measured on the loaded
 * 2-core Zen 4 (docs/bench.md, "Third pass"): matvecs 2048 x 5632, 2
 * threads, bytes per CPU-second F16 +15-20%, F32 +25-35%, Q8_0 +15-20%;
 * TinyLlama decode CPU time per token F16 -22%, Q8_0 -33%, F32 -25%. */
#ifndef FINCH_PREFETCH_LOCALITY /* -D for experiments: 3 = L1 ... 0 = NTA */
#define FINCH_PREFETCH_LOCALITY 1
#endif
static inline void finch_prefetch_row_ahead(const void *row, size_t at, size_t row_bytes, size_t next_tile,
                                            size_t ahead) {
    size_t a = at + ahead;
    __builtin_prefetch((const char *)row + (a < row_bytes ? a : next_tile + (a - row_bytes)), 0,
                       FINCH_PREFETCH_LOCALITY);
}
static inline void finch_prefetch_row(const void *row, size_t at, size_t row_bytes, size_t next_tile) {
    finch_prefetch_row_ahead(row, at, row_bytes, next_tile, FINCH_PREFETCH_BYTES);
}

/* The matvecs of the 2-byte types and Q8_0 (the F16 and BF16 matvecs and
 * the Q8_0 tile of kernels_avx512.c) hint twice as far ahead.  Measured
 * 2026-12-07 on one Zen 4 core, TinyLlama's weights in decode order (docs/
 * bench.md, "Decode's matvec, second look"), GB/s 1 KB / 2 KB: F16
 * 20.0-22.3 / 23.8-25.2, Q8_0 24.4-25.7 / 27.3-27.7, BF16 (512 B before)
 * 23.2-23.3 / 24.3-26.0; F32 (27.5-28.6 / 26.9-28.1) and the packed
 * quantized kernels (Q4_0 27.6-29.2 / 15.9-21.2) keep 1 KB. */
#ifndef FINCH_PREFETCH_FAR_BYTES /* -D for experiments */
#define FINCH_PREFETCH_FAR_BYTES 2048
#endif
static inline void finch_prefetch_row_far(const void *row, size_t at, size_t row_bytes, size_t next_tile) {
    finch_prefetch_row_ahead(row, at, row_bytes, next_tile, FINCH_PREFETCH_FAR_BYTES);
}

/* W bytes per task of a matvec (one token) on `threads` threads: about a
 * quarter of each thread's share, and at least 256 KB, so that a thread
 * streams long contiguous runs of W and the pool still balances a late
 * thread.  Measured 2026-12-07 on the 2-core Zen 4 (docs/bench.md,
 * "Decode's matvec, second look"), TinyLlama F16's weights in decode
 * order, 2 threads, a quiet minute: 64 KB tasks 36.0 GB/s, 256 KB 43.3,
 * 1 MB 45.2, one half per thread 47.2; on a busy minute all 31-33.  The
 * cut never changes a result (rows are independent). */
static inline size_t finch_matvec_task_bytes(size_t w_bytes, size_t threads) {
    size_t share = w_bytes / (4 * (threads ? threads : 1));
    return share > (256u << 10) ? share : (256u << 10);
}

/* Clamp a row index of a tile to the last valid row: tiles always run all
 * their rows and discard the duplicates, so a short tile costs no extra
 * code path (and an output is computed identically in a full or a short
 * tile). */
static inline const void *finch_tile_row(const void *w, size_t w_stride, size_t r, size_t nr) {
    return (const char *)w + (r < nr ? r : nr - 1) * w_stride;
}

#endif
