/*
 * finch.h - the map of the engine.
 *
 * finch is a pure-C reference implementation of Finch, prompt-guided KV-cache
 * compression (Corallo & Papotti, TACL 2024).  This header is the public API
 * of libfinch; it is meant to be read top to bottom in the order data flows:
 *
 *   errors -> model file (GGUF / Hugging Face dir) -> tokenizer
 *          -> transformer (forward pass over a plain-array KV cache)
 *          -> sampling -> .npy dumps
 *
 * Conventions
 *   - Every function that can fail returns finch_status; the one-line reason
 *     is in finch_last_error() (thread-local).  Library code never prints to
 *     stdout and never exits.
 *   - Sizes are size_t.  Token ids are int32_t.
 *   - Matrices are row-major.  A weight "W [rows, cols]" maps a vector of
 *     `cols` inputs to `rows` outputs: y = W x.
 */
#ifndef FINCH_H
#define FINCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- version */

#define FINCH_VERSION "0.9.0"

/* FINCH_VERSION, the git commit the library was built from ("unknown"
 * outside a git checkout), and the kernels chosen on this CPU. */
const char *finch_version(void);
const char *finch_build_commit(void);

/* ------------------------------------------------------------------ errors */

typedef enum {
    FINCH_OK = 0,
    FINCH_ERR_IO = 1,          /* missing / unreadable / unwritable file      */
    FINCH_ERR_FORMAT = 2,      /* malformed input (bad magic, bounds, ...)    */
    FINCH_ERR_UNSUPPORTED = 3, /* valid but not supported (arch, dtype, ...)  */
    FINCH_ERR_ARG = 4,         /* bad argument from the caller / user         */
    FINCH_ERR_NOMEM = 5,       /* allocation failed or size overflow          */
    FINCH_ERR_INTERNAL = 6     /* a bug: should never happen                  */
} finch_status;

/* The message of the last error set on this thread ("" when none). */
const char *finch_last_error(void);
/* Short name of a status ("format error", ...). */
const char *finch_status_name(finch_status st);

/* ------------------------------------------------------------ tensor types */

/* Values follow ggml's type ids so that GGUF files map directly. */
typedef enum {
    FINCH_F32 = 0,
    FINCH_F16 = 1,
    FINCH_Q4_0 = 2,
    FINCH_Q4_1 = 3,
    FINCH_Q5_0 = 6,
    FINCH_Q5_1 = 7,
    FINCH_Q8_0 = 8,
    FINCH_Q8_1 = 9,  /* activations only (the partner of Q4_1/Q5_1)   */
    FINCH_Q2_K = 10,
    FINCH_Q3_K = 11,
    FINCH_Q4_K = 12,
    FINCH_Q5_K = 13,
    FINCH_Q6_K = 14,
    FINCH_Q8_K = 15, /* activations only (the partner of the K-quants) */
    FINCH_IQ4_NL = 20,
    FINCH_IQ4_XS = 23,
    FINCH_BF16 = 30
} finch_dtype;
#define FINCH_DTYPE_SLOTS 31 /* dtype ids are below this */

#define FINCH_QK8_0 32 /* values per Q8_0 block: f16 scale + 32 x int8 */

const char *finch_dtype_name(finch_dtype t);
/* Bytes of one row of `n` values (n must be a multiple of the block size for
 * quantized types); 0 when the type is unknown or n is not a multiple. */
size_t finch_row_bytes(finch_dtype t, size_t n);

/* How products with quantized weights are computed (process-wide):
 * Q8 (default) quantizes the activations to the weight type's partner
 * (Q8_0, Q8_1 or Q8_K) and sums integer products, as llama.cpp's CPU
 * backend does; FP32 dequantizes the weights and keeps the activations in
 * f32, as most GPU backends do (docs/quantization.md). */
typedef enum { FINCH_QUANT_MATH_Q8 = 0, FINCH_QUANT_MATH_FP32 = 1 } finch_quant_math;
void finch_set_quant_math(finch_quant_math m);
finch_quant_math finch_get_quant_math(void);

/* A weight matrix W [rows, cols] stored row-major with `type` elements.
 * `data` points into the mapped file (or into an owned buffer). */
typedef struct {
    const void *data;
    finch_dtype type;
    size_t rows;
    size_t cols;
    /* true: the rows are packed in groups of 16, rewritten in place at
     * model load for decode's kernels (docs/quantization.md, "Packed
     * weights"); data is then not row-major: read rows through the
     * kernels' accessors, never data + r * row_bytes. */
    bool packed;
} finch_weight;

/* ------------------------------------------------------------------- model */

typedef enum {
    FINCH_ROPE_ADJACENT = 0, /* pairs (2i, 2i+1): llama.cpp GGUF `llama`     */
    FINCH_ROPE_HALF = 1      /* pairs (i, i+d/2): Hugging Face, GGUF `qwen2` */
} finch_rope_pairing;

/* RoPE frequency scaling (angle = position * theta_i, where theta_i is
 * rope_base^(-2i/rope_dim), divided by the model's per-pair frequency factor
 * when it has one (finch_model.rope_freqs), then scaled as below). */
typedef enum {
    FINCH_ROPE_SCALING_NONE = 0,
    FINCH_ROPE_SCALING_LINEAR = 1, /* theta_i / factor                          */
    FINCH_ROPE_SCALING_YARN = 2,   /* YaRN: theta_i / factor blended with theta_i
                                      by a ramp over the pairs (beta_fast,
                                      beta_slow, rope_orig_ctx); cos and sin
                                      multiplied by rope_mscale               */
    FINCH_ROPE_SCALING_LLAMA3 = 3  /* HF rope_type llama3: per-pair factors from
                                      factor, rope_low/high_freq_factor and
                                      rope_orig_ctx, bound as the model's
                                      rope_freqs (a GGUF stores them there)   */
} finch_rope_scaling;

/* The gated MLP's activation: down(act(gate x) * up x). */
typedef enum {
    FINCH_ACT_SILU = 0,     /* SwiGLU: llama, qwen2/3, mistral, phi3         */
    FINCH_ACT_GELU_TANH = 1 /* GeGLU, tanh approximation: gemma2/3           */
} finch_ffn_act;

/* Every field below the first block is a switch of the forward pass; its
 * zero value is the plain Llama behaviour, so a zeroed config plus the
 * shapes is a Llama model. */
typedef struct {
    char arch[32];        /* "llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3" */
    size_t dim;           /* embedding length                                  */
    size_t n_layer;       /* transformer blocks                                */
    size_t n_head;        /* query heads H                                     */
    size_t n_kv_head;     /* key/value heads G (H % G == 0)                    */
    size_t head_dim;      /* d = dim / n_head                                  */
    size_t ffn_dim;       /* SwiGLU hidden size                                */
    size_t vocab;         /* rows of the token embedding                       */
    size_t ctx_len;       /* trained context length (positions)                */
    size_t rope_dim;      /* rotated dimensions per head (<= head_dim)         */
    float rms_eps;        /* RMSNorm epsilon                                   */
    float rope_base;      /* RoPE theta                                        */
    finch_rope_pairing rope_pairing;
    int tied_output;      /* 1 when the output matrix is the token embedding   */
    int has_qkv_bias;     /* 1 for qwen2                                       */
    /* RoPE scaling (global layers; local sliding-window layers of gemma3
     * use rope_base_local and no scaling). */
    finch_rope_scaling rope_scaling;
    float rope_factor;    /* linear / YaRN factor (> 1)                        */
    size_t rope_orig_ctx; /* YaRN: the original (pre-extension) context         */
    float yarn_beta_fast; /* YaRN ramp ends, in rotations (32 and 1 by default) */
    float yarn_beta_slow;
    float rope_mscale;    /* YaRN cos/sin magnitude (0 = 1)                    */
    float rope_low_freq_factor, rope_high_freq_factor; /* llama3 (HF only)     */
    float rope_base_local;/* RoPE base of sliding-window layers (0 = rope_base) */
    /* Sliding-window attention: a query at position p attends to cache
     * positions p - sliding_window < j <= p (re-rotated positions after
     * Finch compaction: docs/finch.md). */
    size_t sliding_window;/* 0 = every layer attends to everything            */
    size_t swa_period;    /* 0: every layer is windowed; p >= 2: layer l is
                             windowed iff l % p < p - 1 (gemma2: 2, gemma3: 6) */
    /* Gemma / Qwen3 switches */
    int qk_norm;          /* RMSNorm of each q and k head before RoPE (weights
                             attn_q_norm / attn_k_norm [head_dim])             */
    int post_norms;       /* RMSNorm of the attention and MLP outputs before
                             the residual add (post_attention_norm, post_ffw_norm) */
    float embd_scale;     /* token embedding multiplied by this (0 = 1; gemma: sqrt(dim)) */
    finch_ffn_act ffn_act;
    float attn_scale;     /* score = q.k * attn_scale (0 = 1/sqrt(head_dim))    */
    float attn_softcap;   /* score = c tanh(score / c) before softmax (0 = off) */
    float final_softcap;  /* logits = c tanh(logits / c) (0 = off)             */
} finch_config;

/* 1 when layer l of a model with config c attends through a sliding window. */
int finch_layer_is_local(const finch_config *c, size_t l);

typedef struct {
    finch_weight attn_norm; /* [dim] (rows = 1)                                */
    finch_weight wq;        /* [n_head*head_dim, dim]                          */
    finch_weight wk;        /* [n_kv_head*head_dim, dim]                       */
    finch_weight wv;        /* [n_kv_head*head_dim, dim]                       */
    finch_weight bq;        /* [n_head*head_dim] or data == NULL               */
    finch_weight bk;        /* [n_kv_head*head_dim] or data == NULL            */
    finch_weight bv;        /* [n_kv_head*head_dim] or data == NULL            */
    finch_weight wo;        /* [dim, n_head*head_dim]                          */
    finch_weight ffn_norm;  /* [dim]                                           */
    finch_weight w_gate;    /* [ffn_dim, dim]                                  */
    finch_weight w_up;      /* [ffn_dim, dim]                                  */
    finch_weight w_down;    /* [dim, ffn_dim]                                  */
    finch_weight q_norm;    /* [head_dim] when cfg.qk_norm, else data == NULL  */
    finch_weight k_norm;    /* [head_dim] when cfg.qk_norm                     */
    finch_weight post_attn_norm; /* [dim] when cfg.post_norms                  */
    finch_weight post_ffn_norm;  /* [dim] when cfg.post_norms                  */
} finch_layer;

typedef struct finch_tokenizer finch_tokenizer;
typedef struct finch_model_storage finch_model_storage; /* mappings, buffers */

typedef struct {
    finch_config cfg;
    finch_weight tok_embd;  /* [vocab, dim]                                    */
    finch_layer *layers;    /* [n_layer]                                       */
    finch_weight out_norm;  /* [dim]                                           */
    finch_weight output;    /* [vocab, dim]; == tok_embd when tied             */
    finch_weight rope_freqs;/* [rope_dim/2] per-pair frequency divisors (Llama 3
                               rope scaling: GGUF rope_freqs.weight, or computed
                               from HF rope_type llama3) or data == NULL     */
    finch_tokenizer *tokenizer; /* NULL when the file carries none            */
    char source_format[16]; /* "gguf", "hf", "llama2c"                         */
    finch_model_storage *storage;
} finch_model;

/* Load a model: a .gguf file or a Hugging Face directory (config.json +
 * model.safetensors or sharded safetensors).  Weights are memory-mapped;
 * small tensors (norms, biases) of non-f32 type are converted to f32. */
finch_status finch_model_load(const char *path, finch_model **out);
void finch_model_free(finch_model *m);
/* Human-readable description (architecture, shapes, tensor types,
 * tokenizer, kernels) written to `f`. */
void finch_model_describe(const finch_model *m, FILE *f);
/* Bytes of the weights a forward pass reads: every tensor once (a tied
 * output counted once), at its stored size. */
size_t finch_model_weight_bytes(const finch_model *m);

/* --------------------------------------------------------------- tokenizer */

/* Encode UTF-8 text (len bytes).  add_bos: prepend BOS when the tokenizer's
 * metadata asks for it (1), never (0).  *ids is malloc'ed. */
finch_status finch_tokenize(const finch_tokenizer *t, const char *text, size_t len,
                            int add_bos, int32_t **ids, size_t *n_ids);
/* As finch_tokenize; continuation != 0 encodes text that continues an
 * earlier piece of the same text (no BOS, no leading-space marker). */
finch_status finch_tokenize_ex(const finch_tokenizer *t, const char *text, size_t len, int add_bos,
                               int continuation, int32_t **ids, size_t *n_ids);

/* Encode a whole file (a long context) with working memory bounded by a
 * block of about 16 KB instead of the text's length: the text is cut only
 * just after a line break that is followed by a non-space character, and
 * each later block is encoded as a continuation.  This equals encoding the
 * whole text at once whenever no vocabulary piece spans a line break
 * (tested on the Llama-2, GPT-2 and tinystories vocabularies).  Fails with
 * FINCH_ERR_FORMAT on NUL bytes or invalid UTF-8, naming the byte offset. */
finch_status finch_tokenize_file(const finch_tokenizer *t, FILE *f, int add_bos, int32_t **ids,
                                 size_t *n_ids);

/* FINCH_OK when s[0..len) is valid UTF-8 without NUL bytes; otherwise
 * FINCH_ERR_FORMAT naming the first bad byte offset. */
finch_status finch_check_text(const char *s, size_t len);

/* s[0..len) as valid UTF-8 for JSON and CSV (docs/files.md): every byte
 * that does not start a valid sequence, and every NUL, becomes U+FFFD.
 * Returns a malloc'ed NUL-terminated string, NULL when out of memory. */
char *finch_utf8_clean(const char *s, size_t len);

/* The bytes a token decodes to (byte-fallback and byte-level tokens are
 * mapped back to raw bytes).  prev is the previous token (or -1): SentencePiece
 * drops the leading space after BOS.  Returns the number of bytes written to
 * buf (at most cap) or 0. */
size_t finch_token_to_bytes(const finch_tokenizer *t, int32_t prev, int32_t id,
                            char *buf, size_t cap);
/* The same bytes without a copy or a length limit: a pointer into the
 * tokenizer (valid while it lives) and *len; NULL for an unknown id. */
const char *finch_token_piece(const finch_tokenizer *t, int32_t prev, int32_t id, size_t *len);
int32_t finch_tokenizer_bos(const finch_tokenizer *t); /* -1 when none */
int32_t finch_tokenizer_eos(const finch_tokenizer *t); /* -1 when none */
size_t finch_tokenizer_vocab(const finch_tokenizer *t);
const char *finch_tokenizer_kind(const finch_tokenizer *t); /* "llama", "gpt2" */
int finch_tokenizer_add_bos(const finch_tokenizer *t);

/* A tokenizer from a file alone, no weights needed: a GGUF file (a model or
 * a vocab-only file; the architecture does not matter), a Hugging Face
 * tokenizer.json (with the tokenizer_config.json beside it), a llama2.c
 * tokenizer.bin, a SentencePiece tokenizer.model (BPE models), a tiktoken
 * file, or a directory holding tokenizer.json or tokenizer.model.  Free
 * with finch_tokenizer_free. */
finch_status finch_tokenizer_load(const char *path, finch_tokenizer **out);
void finch_tokenizer_free(finch_tokenizer *t);

/* -------------------------------------------------------- KV cache, forward */

/* What the KV cache stores: f32 (the default), or f16 (llama.cpp's
 * default, half the bytes): K and V rounded to f16 (nearest even, as
 * llama.cpp's GGML_FP32_TO_FP16 with F16C) when stored; attention, the
 * presses' scores and the dumps read them back as f32 and compute in f32;
 * re-rotation converts a key to f32, rotates it and rounds it back. */
typedef enum { FINCH_CACHE_F32 = 0, FINCH_CACHE_F16 = 1 } finch_cache_type;
#define FINCH_KV_MAX_HEAD_DIM 1024 /* head_dim at most (checked at load) */
const char *finch_cache_type_name(finch_cache_type t); /* "f32", "f16" */
/* Parse "f32"/"f16"; FINCH_ERR_ARG naming the value otherwise. */
finch_status finch_cache_type_parse(const char *s, finch_cache_type *out);

/* Plain-array KV cache: k and v (f32) or k16 and v16 (f16) are
 * [n_layer][n_kv_head][capacity][head_dim] values, keys stored after RoPE.
 * n_pos[l] is the number of valid positions of layer l (all layers hold the
 * same count except while Finch compacts). */
typedef struct {
    size_t n_layer, n_kv_head, capacity, head_dim;
    finch_cache_type type;
    float *k;      /* FINCH_CACHE_F32, else NULL */
    float *v;
    uint16_t *k16; /* FINCH_CACHE_F16, else NULL */
    uint16_t *v16;
    size_t *n_pos; /* [n_layer] */
    /* NULL (the default), or [n_layer][n_kv_head][capacity] flags: a row
     * flagged 1 is masked out of attention (it holds no position any
     * query may read).  Presses with budgets that differ between layers or
     * heads (PyramidKV, AdaKV) pad the shorter heads with masked rows;
     * finch_forward clears the flags of the rows it writes. */
    uint8_t *dead;
} finch_kv_cache;

/* An f32 cache (finch_kv_init) or one of either type. */
finch_status finch_kv_init(finch_kv_cache *kv, const finch_config *cfg, size_t capacity);
finch_status finch_kv_init_type(finch_kv_cache *kv, const finch_config *cfg, size_t capacity,
                                finch_cache_type type);
void finch_kv_free(finch_kv_cache *kv);
/* Pointer to row `pos` of layer l, head g: f32 caches only. */
float *finch_kv_k(const finch_kv_cache *kv, size_t l, size_t g, size_t pos);
float *finch_kv_v(const finch_kv_cache *kv, size_t l, size_t g, size_t pos);
/* Row `pos` of layer l, head g as f32, for either type: the stored row (f32),
 * or its values converted into tmp (head_dim floats) and tmp returned. */
const float *finch_kv_key_f32(const finch_kv_cache *kv, size_t l, size_t g, size_t pos, float *tmp);
const float *finch_kv_value_f32(const finch_kv_cache *kv, size_t l, size_t g, size_t pos, float *tmp);
/* Rows pos .. pos+n-1 of layer l, head g as f32 into keys / values (either
 * may be NULL; n * head_dim floats each). */
void finch_kv_read(const finch_kv_cache *kv, size_t l, size_t g, size_t pos, size_t n, float *keys,
                   float *values);
/* Store n rows of keys / values (f32, head_dim floats each; either may be
 * NULL) at rows pos .., rounded to f16 in an f16 cache. */
void finch_kv_write(finch_kv_cache *kv, size_t l, size_t g, size_t pos, size_t n, const float *keys,
                    const float *values);
/* The valid rows (n_pos) of src into dst, same shape and type, capacity
 * >= src's n_pos; dst's n_pos set to src's (the mask is not copied). */
void finch_kv_copy_rows(finch_kv_cache *dst, const finch_kv_cache *src);
/* Bytes of one stored value: 4 or 2. */
size_t finch_kv_value_bytes(const finch_kv_cache *kv);
/* Allocate kv->dead (all rows unmasked) if it is not there yet. */
finch_status finch_kv_enable_mask(finch_kv_cache *kv);
/* The mask flags of src's valid rows into dst (same layers and heads, a
 * capacity >= src's n_pos); nothing when src has no mask. */
finch_status finch_kv_copy_mask(finch_kv_cache *dst, const finch_kv_cache *src);
/* Keep only positions idx[0..n) (ascending, < n_pos[l]) of layer l, head g,
 * moving them (and their mask flags) to rows 0..n-1 (in place; no
 * re-rotation). */
void finch_kv_gather(finch_kv_cache *kv, size_t l, size_t g, const size_t *idx, size_t n);
size_t finch_kv_bytes(const finch_kv_cache *kv, size_t n_pos);

/* Observation hooks: how a caller (the tests, the reference dumps) sees
 * inside a forward pass without the transformer knowing about it.  Any may
 * be NULL.  (Finch itself runs the pass one layer at a time instead:
 * src/engine/forward.h.) */
typedef struct {
    void *user;
    /* Layer l, once the chunk's K/V are in the cache (positions pos0 ..
     * pos0+n-1): q is the chunk's queries [n][n_head*head_dim] after RoPE,
     * as the layer's attention read them.  Return non-OK to abort the pass. */
    finch_status (*on_attention)(void *user, size_t layer, const float *q, size_t n,
                                 size_t pos0, const finch_kv_cache *kv);
    /* Residual stream after layer l (l = n_layer - 1 is before the final
     * norm): x is [n][dim]. */
    void (*on_hidden)(void *user, size_t layer, const float *x, size_t n);
} finch_hooks;

typedef struct finch_ctx finch_ctx;

/* A context owns the scratch buffers, the thread pool and the RoPE tables.
 * n_threads = 0 means the number of online cores.  max_batch bounds the
 * tokens of one forward call. */
finch_status finch_ctx_new(const finch_model *m, size_t n_threads, size_t max_batch,
                           finch_ctx **out);
void finch_ctx_free(finch_ctx *c);
size_t finch_ctx_threads(const finch_ctx *c);
size_t finch_ctx_max_batch(const finch_ctx *c);
const finch_model *finch_ctx_model(const finch_ctx *c);

/* How files of 64 MB and more (model weights) are loaded; applies to files
 * opened afterwards.  Smaller files are always mapped.
 *  - FINCH_LOAD_MMAP (the library's default): mapped; the pages are the
 *    page cache's, shared with every process that maps the file (MPI
 *    ranks on one node) and loaded as they are first touched.
 *  - FINCH_LOAD_READ: read into private memory on 2 MB pages where the
 *    kernel gives them (MADV_HUGEPAGE): one TLB entry covers 512 pages of
 *    streamed weights; a private copy, and the read time at load.
 *  - FINCH_LOAD_AUTO (the CLI's default for run, eval, generate, bench):
 *    READ when the file takes at most half the memory available
 *    (finch_memory_available), else MMAP. */
typedef enum { FINCH_LOAD_MMAP = 0, FINCH_LOAD_READ = 1, FINCH_LOAD_AUTO = 2 } finch_load_mode;
void finch_set_load_mode(finch_load_mode mode);
finch_load_mode finch_get_load_mode(void);

/* Packed weights: a model load rewrites the quantized matrices that the
 * kernels in use have a packed decode kernel for into groups of 16
 * interleaved rows, in place (docs/quantization.md); results are the same
 * bits either way.
 *  - FINCH_WPACK_AUTO (the default): where the file was read into private
 *    memory (finch_set_load_mode); a mapped file keeps its pages as stored,
 *    shared with the other processes that map it.
 *  - FINCH_WPACK_ON: a mapped file's packed pages too, copied on write
 *    (the file is never written; those pages are then private).
 *  - FINCH_WPACK_OFF: weights stay as in the file.
 * Applies to models loaded afterwards; the CLI turns it off for
 * FINCH_NO_WPACK=1. */
typedef enum { FINCH_WPACK_OFF = 0, FINCH_WPACK_ON = 1, FINCH_WPACK_AUTO = 2 } finch_weight_packing;
void finch_set_weight_packing(finch_weight_packing mode);
finch_weight_packing finch_get_weight_packing(void);

/* Feed tokens[0..n) at positions pos0.. into layer caches that hold exactly
 * pos0 positions, attending causally to the cache and within the batch.
 * logits: NULL, or [n_logits][vocab] for the last n_logits tokens (1 for
 * generation, n for all positions).  Without logits and without an
 * on_hidden hook the last layer stops once its K/V are stored (and
 * on_attention has run): nothing else of it is observable. */
finch_status finch_forward(finch_ctx *c, finch_kv_cache *kv, const int32_t *tokens,
                           size_t n, size_t pos0, const finch_hooks *hooks,
                           float *logits, size_t n_logits);

/* Rotate a key vector of layer l (head_dim floats, already rotated for
 * position p) by `delta` positions with that layer's frequencies (scaled
 * as the forward pass scales them) in the model's pairing: the key becomes
 * the key of position p + delta.  A pure rotation: YaRN's magnitude
 * rope_mscale, already in the key, is not applied again. */
void finch_rope_shift(const finch_ctx *c, size_t layer, float *key, long delta);
/* finch_rope_shift of key row `pos` of layer l, head g in the cache: in an
 * f16 cache the key is converted to f32, rotated and rounded back to f16. */
void finch_kv_shift_key(const finch_ctx *c, finch_kv_cache *kv, size_t l, size_t g, size_t pos, long delta);

/* Feed ids[0..n) at positions pos0.. in batches of the context's max_batch
 * (each batch attends to everything before it).  logits: NULL or [vocab],
 * the logits after the last id. */
finch_status finch_feed(finch_ctx *c, finch_kv_cache *kv, const int32_t *ids, size_t n,
                        size_t pos0, float *logits);

/* ------------------------------------------------------------------ memory */

/* What a run needs, in bytes, computed before it allocates: the CLI
 * refuses a run whose total exceeds --max-memory or the memory available. */
typedef struct {
    size_t weights;  /* finch_model_weight_bytes: mapped, but read on every token */
    size_t kv_cache; /* K and V of every layer and KV head, kv_positions rows      */
    size_t scratch;  /* a batch's activations, attention rows, logits, the press's
                        per-position bookkeeping                                  */
    size_t total;    /* the sum; SIZE_MAX when it overflows                         */
} finch_memory;

/* The estimate for model m with a KV cache of kv_positions positions and
 * forward calls of up to max_batch tokens. */
finch_memory finch_memory_estimate(const finch_model *m, size_t kv_positions, size_t max_batch);
/* The same with a KV cache of the given type (finch_memory_estimate: f32). */
finch_memory finch_memory_estimate_type(const finch_model *m, size_t kv_positions, finch_cache_type cache_type,
                                        size_t max_batch);
/* Bytes that reading and tokenizing a text of text_bytes needs, checked
 * before it is read: the text itself, the tokenizer's working arrays over a
 * block (at worst the whole text, as a block ends only at a line break;
 * measured 53 bytes per byte on SentencePiece and byte-level BPE, taken as
 * 64) and the ids (at most one per byte, 4 bytes, doubled while they grow).
 * 80 bytes per byte in all; saturates instead of wrapping. */
size_t finch_memory_text(size_t text_bytes);
/* Memory that can be allocated now: MemAvailable of /proc/meminfo, else
 * the free pages (sysconf); FINCH_ERR_IO when neither can be read.
 * Container limits (cgroups) are not read: give --max-memory there. */
finch_status finch_memory_available(size_t *bytes);
/* A size as written on a command line: bytes ("4096"), or a number with a
 * unit K, M, G, T (powers of 1024; "512M", "2G", "1.5g", "64KiB", "2GB").
 * FINCH_ERR_ARG with a message when s is not one, or is below one byte. */
finch_status finch_parse_size(const char *s, size_t *bytes);
/* bytes as "812 B", "3.25 KiB", "512.0 MiB", "4.10 GiB" into buf; returns buf. */
const char *finch_format_size(size_t bytes, char *buf, size_t cap);

/* ---------------------------------------------------------------- sampling */

typedef struct {
    float temperature; /* 0 = greedy (argmax, ties to the smaller id)  */
    float top_p;       /* 1 = off                                       */
    uint64_t seed;
} finch_sampler_params;

typedef struct {
    finch_sampler_params p;
    uint64_t state;
    size_t cap;
    float *probs;     /* [vocab] scratch */
    int32_t *order;   /* [vocab] scratch */
} finch_sampler;

finch_status finch_sampler_init(finch_sampler *s, finch_sampler_params p, size_t vocab);
void finch_sampler_free(finch_sampler *s);
int32_t finch_sample(finch_sampler *s, const float *logits, size_t vocab);

/* Called with each generated token once it is fed; nonzero stops the
 * decoding.  The one callback type of plain generation and of presses. */
typedef int (*finch_token_cb)(void *user, int32_t token);

/* Plain generation through the one decode loop (src/engine/generate.h):
 * `logits` ([vocab], in/out) predict the token at position pos; sample it,
 * feed it back, repeat, up to max_new tokens, stopping at EOS (eos < 0:
 * never; EOS is not fed nor handed to cb) or when the cache is full.  *out
 * (malloc'ed) holds the generated ids and, as this function's end marker,
 * EOS last when it was reached. */
finch_status finch_decode(finch_ctx *c, finch_kv_cache *kv, size_t pos, float *logits,
                          finch_sampler *s, size_t max_new, int32_t eos, finch_token_cb cb,
                          void *user, int32_t **out, size_t *n_out);

/* --------------------------------------------------------------------- npy */

/* Write a C-order .npy array: dtype "<f4" (FINCH_NPY_F32) or "<i4". */
typedef enum { FINCH_NPY_F32, FINCH_NPY_I32 } finch_npy_type;
finch_status finch_npy_write(const char *path, finch_npy_type t, const void *data,
                             const size_t *shape, size_t ndim);
/* Read a .npy array of <f4 / <i4 / <i8 (converted to the requested type,
 * i8 values must fit in int32).  *data is malloc'ed; shape has room for 8. */
finch_status finch_npy_read(const char *path, finch_npy_type want, void **data,
                            size_t *shape, size_t *ndim);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_H */
