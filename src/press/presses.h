/* presses.h - the scorer interface: what decides which cached positions a
 * press keeps.  src/press/finch.c drives every press the same way (chunks, the
 * k_t schedule, top-k, compaction, key re-rotation); a scorer only says
 *
 *   1. which rows observe: the absolute positions whose attention rows are
 *      accumulated during the forward pass (none for the static scorers),
 *   2. how one row counts: its weight (Finch's normalisation; else 1),
 *   3. the final transform of one layer's accumulated attention into scores
 *      (means, pooling, protected windows, or scores that need no attention
 *      at all: key norms, positions, seeded random numbers).
 *
 * Higher scores are kept; ties go to the smaller row (src/press/topk.h).
 * Finch's own scorer is in src/press/finch.c, the baselines in src/press/presses.c
 * (the 2023 set and snapkv-q), src/press/presses_kvpress.c (keydiff, chunkkv) and
 * src/press/presses_context.c (rag, lingua: context selections scored before the
 * press runs) and src/press/presses_budget.c (pyramidkv, adakv, adakv-finch:
 * budgets per layer or head, the shorter heads padded with masked rows);
 * docs/presses.md states every formula. */
#ifndef FINCH_PRESSES_H
#define FINCH_PRESSES_H

#include "finch_press.h"
#include "kernels.h"

/* One scoring step: a chunk in iterative mode, the whole prefill in oneshot.
 * Cache rows 0..n_cols-1 of every layer/head are the candidates (context
 * positions); rows row0..n_cols-1 were fed in this step (the chunk; oneshot:
 * the whole context, row0 = 0); rows n_cols..n_cols+n_question-1 hold the
 * question when it was fed (n_question = 0 when it was not). */
typedef struct {
    const finch_kv_cache *kv;
    const finch_press_params *p;
    size_t n_head;           /* query heads H (KV group size H / G)           */
    size_t row0;             /* first row fed in this step                     */
    size_t n_cols;           /* candidate rows                                 */
    size_t n_question;       /* question rows fed after them                   */
    size_t n_ctx;            /* N, the whole context                           */
    const int32_t *orig;     /* [L][G][orig_stride] context position per row  */
    size_t orig_stride;
    size_t row_lo, row_hi;   /* observing rows [row_lo, row_hi), set by
                                finch_score_step_begin from the scorer        */
    const double *token_score; /* [n_ctx] a static score per context position,
                                  from finch_scorer_prepare (rag, lingua); NULL
                                  for the other scorers                        */
    float *keys32;           /* an f16 cache: per thread keys32_stride floats
                                where the pool's scoring converts a group's
                                keys once per call; NULL: each key converted
                                where it is read (the same values)           */
    size_t keys32_stride;
} finch_score_step;

typedef struct {
    finch_scorer_id id;
    /* 1: the scores come from the question rows, so the question is fed in
     * every iterative chunk; 0: it is fed only where it stays (oneshot). */
    int question_aware;
    /* The observing rows of this step, [*lo, *hi); *lo == *hi: none (no
     * attention is computed). NULL: none. */
    void (*rows)(const finch_score_step *s, size_t *lo, size_t *hi);
    /* The weight of the observing row at absolute position pos; NULL: 1. */
    double (*row_weight)(const finch_score_step *s, size_t pos);
    /* Turn layer l's accumulated attention acc [G][n_cols] (the weighted
     * sums of probabilities over the observing rows and the query heads of
     * each group) into scores, in place.  NULL: the sums are the scores. */
    void (*finish)(const finch_score_step *s, size_t l, double *acc);
    /* NULL: every head of every layer keeps the step's k rows.  Else the
     * live budget of each KV head of layer l, b[0..G), from the finished
     * scores acc [G][n_cols] (which it may change: AdaKV forces rows in);
     * scratch: G * n_cols entries.  The driver keeps max b rows in every
     * head and masks the rows beyond a head's budget (kv->dead). */
    void (*budgets)(const finch_score_step *s, size_t l, size_t k, double *acc, size_t *b, size_t *scratch);
} finch_scorer;

/* The scorer of an id; NULL when the id is unknown. */
const finch_scorer *finch_scorer_get(finch_scorer_id id);

/* Finch itself (src/press/finch.c), and the scorers of src/press/presses_kvpress.c and
 * src/press/presses_context.c. */
extern const finch_scorer finch_scorer_finch;
extern const finch_scorer finch_scorer_keydiff, finch_scorer_chunkkv;
extern const finch_scorer finch_scorer_rag, finch_scorer_lingua;

/* keydiff keeps one mean key on the stack. */
enum { FINCH_KEYDIFF_MAX_HEAD_DIM = 1024 };

/* src/press/presses_budget.c: PyramidKV and AdaKV. */
extern const finch_scorer finch_scorer_pyramidkv, finch_scorer_adakv, finch_scorer_adakv_finch;
#define FINCH_ADAKV_ALPHA 0.20 /* kvpress AdaKVPress.alpha_safeguard */

/* PyramidKV's budget of layer l of n_layer when n candidates compete for
 * a mean budget of T per layer (kvpress PyramidKVPress.get_layer_budget
 * with window 64, beta 20, q_len = n, q_len (1 - cr) = T). */
size_t finch_pyramid_budget(size_t n, size_t T, size_t n_layer, size_t l);

/* AdaKV's per-head budgets b[0..G) of one layer: scores acc [G][nc]
 * (rows < P protected: set to -inf), mean budget k per head; each head's
 * best (size_t)(k * alpha) rows are raised to DBL_MAX in acc, then the
 * G * k best of all heads are counted per head (ties: the smaller head,
 * then the smaller row), each at most nc - P.  scratch: G * nc entries. */
void finch_adakv_budgets(double *acc, size_t G, size_t nc, size_t P, size_t k, double alpha, size_t *b,
                         size_t *scratch);

/* The driver's side of budgets per layer or head (src/press/presses_budget.c). */

/* The softmax of x[0..n) over the rows not masked (they get 0), exp in
 * single precision as the forward pass computes it. */
void finch_masked_softmax(float *x, const uint8_t *dead, size_t n);

/* Every layer's per-head budgets into head_budget [L][G] from the
 * finished scores acc_all [L][G][n_cols] (masked rows first set to -inf:
 * they are never live again); returns the largest, the rows every head
 * keeps.  scratch: G * n_cols entries. */
size_t finch_scorer_budgets(const finch_scorer *sc, const finch_score_step *s, size_t k, double *acc_all,
                            size_t *head_budget, size_t *scratch);

/* Head g of layer l keeps the k rows kept[0..k) (ascending, >= P) but only
 * its budget bg of them live: the others (the lowest scores) and rows
 * masked before are masked.  Flags are set on the source rows, which the
 * gather then moves.  scratch: bg entries. */
void finch_mask_beyond_budget(finch_kv_cache *kv, size_t l, size_t g, const double *score, size_t nc, size_t P,
                              const size_t *kept, size_t k, size_t bg, size_t *scratch);

/* kept [L*G][n_kept] (positions per row): -1 at the rows kv masks; returns
 * how many. */
size_t finch_kept_mark_masked(const finch_kv_cache *kv, int32_t *kept, size_t n_kept);

/* ChunkKV's chunk length (kvpress ChunkKVPress.chunk_length). */
enum { FINCH_CHUNKKV_LENGTH = 20 };

/* RAG: chunk length in tokens and the BM25 constants (docs/presses.md). */
enum { FINCH_RAG_CHUNK = 32 };
#define FINCH_BM25_K1 1.2
#define FINCH_BM25_B 0.75

/* The static per-position scores a scorer needs before the press runs:
 * *out = NULL for every scorer but rag (the BM25 score of the chunk that
 * holds each position) and lingua (the self-information of each token under
 * the model of ctx: one extra forward pass over the context).  *out has N
 * doubles (positions < p->protect score 0: they never compete); the caller
 * frees it.  Refuses keydiff for heads wider than FINCH_KEYDIFF_MAX_HEAD_DIM. */
finch_status finch_scorer_prepare(finch_scorer_id id, finch_ctx *ctx, const finch_press_params *p,
                                  const int32_t *context, size_t N, const int32_t *question, size_t m,
                                  double **out);

/* rag's scores alone: BM25 (k1, b) of the query ids q[0..m) against the
 * chunks of `chunk` tokens of doc[0..n) (the last may be shorter), with
 * token ids as terms; out[i] = the score of the chunk holding token i. */
void finch_bm25_chunk_scores(const int32_t *doc, size_t n, const int32_t *q, size_t m, size_t chunk,
                             double k1, double b, double *out);

/* Set s->row_lo / row_hi from the scorer (the other fields must be set). */
void finch_score_step_begin(const finch_scorer *sc, finch_score_step *s);

/* Accumulate into acc [G][n_cols] (layer `layer`) the attention of the
 * observing rows among the batch's rows pos0..pos0+n-1, whose post-RoPE
 * queries are q [n][n_head*head_dim]; kv holds at least pos0+n rows.
 * scratch: pos0 + n floats.  Called from inside the forward pass. */
void finch_score_accumulate(const finch_scorer *sc, const finch_score_step *s, size_t layer,
                            const float *q, size_t n, size_t pos0, double *acc, float *scratch);

/* The same, KV groups spread over the pool's threads (the same bits);
 * scratch: scratch_stride >= pos0 + n floats per thread of the pool. */
void finch_score_accumulate_pool(finch_pool *pool, const finch_scorer *sc, const finch_score_step *s,
                                 size_t layer, const float *q, size_t n, size_t pos0, double *acc,
                                 float *scratch, size_t scratch_stride);
/* The forward pass's thread pool (src/engine/transformer.c). */
finch_pool *finch_ctx_pool(const finch_ctx *c);

/* The random scorer's number for (seed, layer, KV head, context position):
 * splitmix64 of a mix of the four, as a double in [0, 1).  Exposed so the
 * tests can recompute it. */
double finch_random_score(uint64_t seed, size_t layer, size_t head, size_t pos);

#endif
