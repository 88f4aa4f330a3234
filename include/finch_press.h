/*
 * finch_press.h - Finch, prompt-guided KV-cache compression, as a library.
 *
 * Two modes of one code path (docs/finch.md states every choice):
 *
 *   iterative (default, the paper's algorithm): the context C (N tokens) is
 *     read in chunks of S tokens; each chunk is fed with the question Q
 *     (m tokens) appended, attending to the compacted cache; the attention of
 *     the question rows scores every cached context position; each layer keeps
 *     its k_t best positions (per KV head, or one set per layer), re-rotates
 *     the kept keys to positions 0..k_t-1 and drops the question's K/V.
 *     The cache never holds more than K + S + m positions.
 *
 *   oneshot (NVIDIA kvpress FinchPress): one prefill of C ++ Q; the question
 *     rows score the context; the question's K/V is always kept, the rest of
 *     the n_kept positions are the best context positions per KV head.
 *
 * The scores that choose the kept positions are pluggable (finch_scorer_id):
 * Finch by default, or a baseline (full, truncate, streaming, snapkv, h2o,
 * tova, knorm, random, snapkv-q, keydiff, chunkkv, rag, lingua, pyramidkv,
 * adakv, adakv-finch;
 * docs/presses.md) run through the same chunks,
 * schedule, compaction and re-rotation, so every method sees the same cache.
 *
 * Use: finch_press_new -> finch_press_compress -> finch_press_prompt ->
 * finch_press_decode (or finch_press_run for the first three), reading the
 * compressed cache, the stats and the logits in between.  The library never
 * prints to stdout; finch_press_describe writes a summary to a FILE the
 * caller chooses.
 */
#ifndef FINCH_PRESS_H
#define FINCH_PRESS_H

#include "finch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- parameters */

typedef enum {
    FINCH_PRESS_ITERATIVE = 0, /* the paper: chunked, question on every chunk  */
    FINCH_PRESS_ONESHOT = 1    /* kvpress FinchPress: one prefill of C ++ Q     */
} finch_press_mode;

/* Which scores pick the kept positions (docs/presses.md has the formulas).
 * Finch, snapkv-q and rag read the question; the other baselines do not look
 * at it at all (question-unaware). */
typedef enum {
    FINCH_SCORER_FINCH = 0,  /* question-row attention (the paper; default)    */
    FINCH_SCORER_FULL,       /* no compression: K = N whatever the budget      */
    FINCH_SCORER_TRUNCATE,   /* the first ceil(K/2) and last floor(K/2) tokens */
    FINCH_SCORER_STREAMING,  /* StreamingLLM: 4 sink tokens + the most recent  */
    FINCH_SCORER_SNAPKV,     /* last 64 context rows' attention, pooled (5)    */
    FINCH_SCORER_H2O,        /* attention summed over the context rows, divided
                                by the number of rows that see each key        */
    FINCH_SCORER_TOVA,       /* the last context token's attention             */
    FINCH_SCORER_KNORM,      /* negative key norm                              */
    FINCH_SCORER_RANDOM,     /* seeded uniform scores                          */
    FINCH_SCORER_SNAPKV_Q,   /* query-aware SnapKV: the window is the last 64
                                rows of chunk ++ question, pooled (5)          */
    FINCH_SCORER_KEYDIFF,    /* negative cosine to the mean normalised key     */
    FINCH_SCORER_CHUNKKV,    /* SnapKV scores pooled over chunks of 20 rows,
                                summed over heads: whole chunks kept           */
    FINCH_SCORER_RAG,        /* BM25 of the question against chunks of the
                                context (token ids as terms): best chunks kept */
    FINCH_SCORER_LINGUA,     /* self-information -log p(token | prefix) under
                                the same model: the most informative kept     */
    FINCH_SCORER_PYRAMIDKV,  /* snapkv scores, per-layer budgets falling from
                                the first layer to the last (kvpress)          */
    FINCH_SCORER_ADAKV,      /* snapkv scores, per-head budgets: one top-k over
                                the heads of a layer, 20% of k per head safe   */
    FINCH_SCORER_ADAKV_FINCH,/* AdaKV's per-head budgets over Finch's scores  */
    FINCH_SCORER_COUNT
} finch_scorer_id;

typedef enum {
    FINCH_NORMALIZE_OFF = 0,
    FINCH_NORMALIZE_ON = 1,      /* kvpress: row weight = keys seen - 1        */
    FINCH_NORMALIZE_AUTHORS = 2  /* the authors' code: row weight = keys seen  */
} finch_normalize;

typedef enum {
    FINCH_SCHEDULE_PROPORTIONAL = 0, /* k_t = floor(K c_t / N): ends at K       */
    FINCH_SCHEDULE_AUTHORS = 1       /* k_t = k_{t-1} + floor(|c_t| / cf),
                                        cf = ceil(N / K): ends at or below K  */
} finch_schedule;

typedef enum {
    FINCH_SELECT_HEAD = 0,  /* one kept set per KV head (default)              */
    FINCH_SELECT_LAYER = 1  /* one set per layer, score summed over all heads  */
} finch_press_select;

/* How the budget was given: exactly one of them (the CLI's --budget,
 * --ratio, --cr).  Resolved by finch_press_resolve_budget. */
typedef enum {
    FINCH_BUDGET_TOKENS = 0, /* budget = K context tokens kept                  */
    FINCH_BUDGET_RATIO = 1,  /* ratio  = compression factor X, K = ceil(N / X)  */
    FINCH_BUDGET_CR = 2      /* cr     = fraction removed (kvpress)             */
} finch_budget_kind;

typedef struct {
    finch_press_mode mode;
    finch_press_select select;
    finch_scorer_id scorer;  /* FINCH_SCORER_FINCH (default) or a baseline     */
    int normalize;           /* finch_normalize: FINCH_NORMALIZE_ON (default):
                                weight question row i by the number of keys
                                it sees minus one (kvpress); AUTHORS: by the
                                number of keys it sees (the authors' Mistral
                                code); OFF: none.  Finch only.               */
    finch_schedule schedule; /* iterative k_t: proportional (default) or the
                                authors' additive schedule                  */
    uint64_t seed;           /* FINCH_SCORER_RANDOM                             */
    finch_budget_kind budget_kind;
    size_t budget;           /* FINCH_BUDGET_TOKENS                             */
    double ratio;            /* FINCH_BUDGET_RATIO (> 0)                        */
    double cr;               /* FINCH_BUDGET_CR (0 <= cr < 1)                   */
    size_t chunk;            /* iterative: S context tokens per chunk; 0 = N    */
    size_t batch;            /* tokens per finch_forward call (<= the ctx's
                                max_batch); 0 = the ctx's max_batch            */
    int record_steps;        /* 1: keep every step's scores and kept set for
                                the dump (--dump-steps); 0 (default): only
                                the last step's scores and the margins      */
    size_t kv_chunk;         /* oneshot, cr budget: kvpress's chunk_length L:
                                top-k per chunk of L positions of C ++ Q,
                                each keeping max(1, int(len (1 - cr))); the
                                question's scores are the layer's max + 1
                                (kvpress's padding).  0 (default): off      */
    int no_rerotate;         /* oneshot: kvpress rerotate_keys=False: kept keys
                                stay at their original positions and the
                                prompt continues at N + m + 1 (kvpress counts
                                its removed delimiter).  0 (default): kept
                                keys re-rotated to 0..n_kept-1             */
    size_t protect;          /* P: the first P context tokens (BOS and a chat
                                template's system and user header) are always
                                kept, at positions 0..P-1, never scored against
                                the rest; the budget counts only the other
                                N - P tokens.  0 (default): none              */
    size_t lingua_segment;   /* press lingua: 0 (default) one pass, every token
                                scored given the whole context before it; S:
                                LLMLingua's iterative compression, segments of
                                S tokens each scored given the compressed
                                prefix and cut to its share of the budget     */
    finch_cache_type cache_type; /* the KV cache's storage: FINCH_CACHE_F32
                                (default) or F16 (K and V rounded when
                                stored, scores still fp32)                  */
} finch_press_params;

/* Defaults: iterative, per-head, Finch, normalize on, seed 0, budget tokens 0
 * (must be set), chunk 0 (whole context), batch 0 (the ctx's max_batch). */
finch_press_params finch_press_defaults(void);

const char *finch_press_mode_name(finch_press_mode m);     /* "iterative" */
const char *finch_press_select_name(finch_press_select s); /* "head"      */
/* Parse "iterative"/"oneshot", "head"/"layer"; FINCH_ERR_ARG otherwise. */
finch_status finch_press_parse_mode(const char *s, finch_press_mode *out);
finch_status finch_press_parse_select(const char *s, finch_press_select *out);
const char *finch_press_normalize_name(int normalize);      /* "on", "off", "authors"   */
const char *finch_press_schedule_name(finch_schedule s);    /* "proportional", "authors" */
const char *finch_budget_kind_name(finch_budget_kind k);    /* "budget", "ratio", "cr"   */
/* The value of the budget form in force (K, the factor X or the fraction). */
double finch_press_budget_value(const finch_press_params *p);
/* Parse "on"/"off"/"authors", "proportional"/"authors"; FINCH_ERR_ARG otherwise. */
finch_status finch_press_parse_normalize(const char *s, int *out);
finch_status finch_press_parse_schedule(const char *s, finch_schedule *out);
const char *finch_scorer_name(finch_scorer_id s);            /* "snapkv"    */
/* Parse a press name ("finch", "full", "truncate", "streaming", "snapkv",
 * "h2o", "tova", "knorm", "random", "snapkv-q", "keydiff", "chunkkv", "rag",
 * "lingua", "pyramidkv", "adakv", "adakv-finch"); FINCH_ERR_ARG otherwise. */
finch_status finch_scorer_parse(const char *s, finch_scorer_id *out);

/* ------------------------------------------------------- budget arithmetic */

/* Resolve the budget for N context and m question tokens.
 *   *K      context tokens that stay (min(K, N));
 *   *n_kept cache positions after compression: iterative K, oneshot K + m.
 * With p->protect = P > 0 all of the below applies to the N - P tokens after
 * the protected prefix (P < N is required) and *n_kept also counts the P.
 * iterative: tokens: K; ratio X: ceil(N / X); cr: max(1, floor(N * (1 - cr))).
 * FINCH_SCORER_FULL: K = N whatever the budget (n_kept N, oneshot N + m).
 * oneshot:   cr: n_kept = max(1, floor((N + m) * (1 - cr))) in IEEE double as
 *            kvpress (N + m = 100, cr = 0.9 -> 9), K = n_kept - m, an error
 *            when n_kept < m; tokens / ratio: K as above, n_kept = K + m. */
finch_status finch_press_resolve_budget(const finch_press_params *p, size_t N, size_t m,
                                        size_t *K, size_t *n_kept);

/* The most context rows a head holds after a step when the budget is K of N
 * (the protected prefix not counted): K, except for the presses whose
 * budgets differ between layers or heads (pyramidkv: at most 2 K; adakv,
 * adakv-finch: at most G K for G KV heads), which pad every head to the
 * largest budget; never more than N.  What a caller checks against the
 * model's context length. */
size_t finch_press_rows_bound(finch_scorer_id id, size_t n_kv_head, size_t N, size_t K);

/* ------------------------------------------------------------ a press run */

/* What a compression did.  Times are seconds of wall clock. */
typedef struct {
    finch_press_mode mode;
    finch_press_select select;
    finch_scorer_id scorer;
    int normalize;
    size_t n_ctx;          /* N                                               */
    size_t n_question;     /* m                                               */
    size_t n_protected;    /* P: leading context tokens always kept           */
    size_t budget;         /* K: context tokens kept (<= N - P), P not counted */
    size_t n_kept;         /* positions per layer/head after compression:
                              iterative P + K, oneshot P + K + m              */
    size_t n_masked;       /* rows masked out of attention, over all layers
                              and heads (pyramidkv, adakv: heads below the
                              largest budget); kept.npy has -1 there       */
    size_t chunk;          /* S (oneshot: N)                                  */
    size_t n_chunks;
    double compression;    /* (N - P) / K                                     */
    size_t kv_bytes_full;  /* a full cache of N + m positions                 */
    size_t kv_bytes_kept;  /* n_kept positions (less the masked rows)          */
    size_t kv_capacity;    /* positions the cache was allocated for (compress) */
    double t_prefill;      /* forward passes during compression, less scoring */
    double t_scoring;
    double t_compact;      /* top-k, gather, re-rotation                      */
    double t_generation;   /* prompt + decoded tokens                         */
    size_t n_prompt;       /* tokens fed after compression (0 before)         */
    size_t n_generated;
} finch_press_stats;

typedef struct finch_press finch_press;

/* Progress after each chunk (oneshot: one step). */
typedef void (*finch_press_progress)(void *user, size_t done, size_t total);

/* A press over model `m` run with `ctx` (created for m; both must outlive
 * the press). */
finch_status finch_press_new(const finch_model *m, finch_ctx *ctx, const finch_press_params *p,
                             finch_press **out);
void finch_press_free(finch_press *fp);

/* Compress: context[0..n_ctx) and question[0..n_q) (both non-empty).  Ids are
 * copied.  Once per press. */
finch_status finch_press_compress(finch_press *fp, const int32_t *context, size_t n_ctx,
                                  const int32_t *question, size_t n_q,
                                  finch_press_progress progress, void *user);

/* Feed the generation prompt after compression, at positions n_kept.. .
 * prompt == NULL / n == 0: the question (iterative only; oneshot needs a
 * non-empty answer prefix).  The logits of the last fed position are kept
 * (finch_press_prompt_logits) and copied to `logits` [vocab] when non-NULL. */
finch_status finch_press_prompt(finch_press *fp, const int32_t *prompt, size_t n, float *logits);

/* compress + prompt. */
finch_status finch_press_run(finch_press *fp, const int32_t *context, size_t n_ctx,
                             const int32_t *question, size_t n_q, const int32_t *prompt,
                             size_t n_prompt, finch_press_progress progress, void *user);

/* Decode up to max_new tokens after the prompt with sampler s (greedy when
 * its temperature is 0), through the engine's one decode loop: EOS (when
 * eos >= 0) ends the answer and is not stored; each other token is stored,
 * fed (the cache grows as needed) and handed to on_token (nonzero: stop).
 * out: room for max_new ids (may be NULL); *n_out: how many were produced
 * (may be NULL). */
finch_status finch_press_decode(finch_press *fp, finch_sampler *s, size_t max_new, int32_t eos,
                                finch_token_cb on_token, void *user, int32_t *out, size_t *n_out);

/* Teacher forcing: feed ids[0..n) after everything fed so far (the prompt,
 * decoded or appended tokens); the logits after the last id are copied to
 * `logits` [vocab] when non-NULL.  Not counted in the stats' times. */
finch_status finch_press_append(finch_press *fp, const int32_t *ids, size_t n, float *logits);
/* Forget every token fed after the prompt (decoded or appended): the next
 * decode or append continues from the prompt's logits, on the same
 * compressed cache.  The stats keep counting generated tokens. */
finch_status finch_press_rewind(finch_press *fp);

/* ------------------------------------------------------------- read back */

const finch_press_stats *finch_press_get_stats(const finch_press *fp);
/* The cache: rows 0..n_kept-1 of every layer/head are the compressed cache
 * and stay as they were after compression while prompt and answer are fed. */
const finch_kv_cache *finch_press_cache(const finch_press *fp);
/* Kept original positions, int32 [n_layer][n_kv_head][n_kept], ascending per
 * head: iterative: positions in the context; oneshot: positions in C ++ Q.
 * -1 at rows masked out of attention (pyramidkv, adakv: a head whose budget
 * is below the largest). */
const int32_t *finch_press_kept(const finch_press *fp);
/* Logits [vocab] at the last position of the prompt; NULL before it. */
const float *finch_press_prompt_logits(const finch_press *fp);
/* Write the dump (format v1, docs/dump-format.md) into directory dir
 * (which must exist) with the default options of finch_dump_write
 * (include/finch_dump.h): keys in the Hugging Face layout, no ids. */
finch_status finch_press_dump(const finch_press *fp, const char *dir);

/* The run's summary (mode, selection, normalisation, N, K, m, chunk,
 * compression, KV bytes before/after, times), one "key: value" per line. */
void finch_press_describe(const finch_press *fp, FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_PRESS_H */
