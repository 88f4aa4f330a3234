/*
 * finch_api.h - a flat C API over libfinch for foreign-function callers
 * (python/finch uses it through ctypes): opaque handles, plain numbers and
 * strings, caller-owned output buffers, no structs to mirror.
 *
 * Every function returning int returns a finch_status (0 = FINCH_OK); the
 * one-line reason is in finch_last_error().  Strings and id arrays the
 * library allocates are released with finch_api_free.
 */
#ifndef FINCH_API_H
#define FINCH_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct finch_api_model finch_api_model;
typedef struct finch_api_result finch_api_result;

void finch_api_free(void *p);
const char *finch_api_last_error(void); /* = finch_last_error() */

/* A model (.gguf file or HF directory); threads 0 = every online core. */
int finch_api_model_load(const char *path, size_t threads, finch_api_model **out);
void finch_api_model_free(finch_api_model *m);
/* The configuration as a JSON object (malloc'ed). */
int finch_api_model_config(const finch_api_model *m, char **json);
/* Token ids of text[0..len) (malloc'ed); bos: prepend BOS when the
 * tokenizer asks for it. */
int finch_api_tokenize(const finch_api_model *m, const char *text, size_t len, int bos, int32_t **ids,
                       size_t *n);
/* The bytes ids decode to (malloc'ed, NUL-terminated, *len bytes). */
int finch_api_detokenize(const finch_api_model *m, const int32_t *ids, size_t n, char **text, size_t *len);
/* Logits of every position of ids[0..n) fed at 0.. in one prefill:
 * out [n][vocab]. */
int finch_api_logits(const finch_api_model *m, const int32_t *ids, size_t n, float *out);

/* Compress context ids with the question, then feed prompt (NULL: the
 * question again, iterative only).  mode "iterative"/"oneshot", select
 * "head"/"layer", normalize "on"/"authors"/"off", schedule
 * "proportional"/"authors", press a press name (NULL: each default); budget_kind
 * 0 tokens, 1 ratio, 2 cr with its value; chunk 0: as `finch run` picks;
 * kv_chunk: kvpress's chunk_length (oneshot, cr; 0 off); no_rerotate:
 * kvpress's rerotate_keys=False (oneshot); protect: the first tokens of
 * the context always kept (a chat template's header);
 * steps: record every step for the dump; cache_type "f32"/"f16" (NULL: f32). */
int finch_api_compress(const finch_api_model *m, const char *mode, const char *select, const char *normalize,
                       const char *schedule, const char *press, int budget_kind, double budget_value, size_t chunk,
                       size_t kv_chunk, int no_rerotate, size_t protect, uint64_t seed, int steps,
                       const char *cache_type, const int32_t *context, size_t n_context, const int32_t *question, size_t n_question,
                       const int32_t *prompt, size_t n_prompt, finch_api_result **out);
void finch_api_result_free(finch_api_result *r);

/* dims: L, G, n_kept, head_dim, vocab, N, T (steps), k_max (steps_kept). */
void finch_api_result_dims(const finch_api_result *r, size_t dims[8]);
void finch_api_result_kept(const finch_api_result *r, int32_t *out);                  /* [L][G][n_kept]     */
/* keys, values [L][G][n_kept][d]; layout 0 hf, 1 native.  Either may be NULL. */
void finch_api_result_kv(const finch_api_result *r, int layout, float *keys, float *values);
void finch_api_result_logits(const finch_api_result *r, float *out);                  /* [vocab]            */
void finch_api_result_scores(const finch_api_result *r, float *out);                  /* [L][G][N]          */
void finch_api_result_margins(const finch_api_result *r, float *out);                 /* [L][G]             */
void finch_api_result_schedule(const finch_api_result *r, int32_t *out);              /* [T]                */
/* Every step's kept sets [T][L][G][k_max] and scores [T][L][G][N];
 * FINCH_ERR_ARG when the run did not record steps. */
int finch_api_result_steps(const finch_api_result *r, int32_t *kept, float *scores);
/* meta.json's text (malloc'ed). */
int finch_api_result_meta(const finch_api_result *r, int layout, char **json);
/* Write the dump (docs/dump-format.md) into dir, created when missing. */
int finch_api_result_save(const finch_api_result *r, const char *dir, int layout);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_API_H */
