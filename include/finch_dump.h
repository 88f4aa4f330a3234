/*
 * finch_dump.h - the dump of a press run, format v1 (docs/dump-format.md):
 * what another implementation of Finch (a kvpress press, a CUDA kernel, a
 * llama.cpp patch) compares itself against with `finch compare`.
 *
 * A dump is a directory of .npy arrays and one meta.json.  Keys are written
 * in the Hugging Face rotate-half layout by default, whatever the model
 * file: GGUF `llama` files store the q/k rows of each head permuted
 * (adjacent RoPE pairs), and the layout "native" keeps that order.
 */
#ifndef FINCH_DUMP_H
#define FINCH_DUMP_H

#include "finch_press.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FINCH_DUMP_FORMAT "finch-dump"
#define FINCH_DUMP_VERSION 1

typedef enum {
    FINCH_KEYS_HF = 0,    /* rotate-half: dims (i, i + d/2) are a RoPE pair  */
    FINCH_KEYS_NATIVE = 1 /* the cache as computed: adjacent pairs (2i, 2i+1)
                             for GGUF `llama`, half for qwen2 and HF dirs    */
} finch_key_layout;

const char *finch_key_layout_name(finch_key_layout k); /* "hf", "native" */
/* "hf" / "native"; FINCH_ERR_ARG otherwise. */
finch_status finch_key_layout_parse(const char *s, finch_key_layout *out);
const char *finch_rope_pairing_name(finch_rope_pairing p); /* "adjacent", "half" */

/* Reorder n_rows key rows of head_dim floats (in place) from the adjacent
 * layout to rotate-half: out[i] = in[2i], out[i + d/2] = in[2i + 1]
 * (the inverse of llama.cpp's convert_hf_to_gguf permutation, per head).
 * head_dim must be even. */
void finch_keys_adjacent_to_half(float *keys, size_t n_rows, size_t head_dim);

/* The compressed cache [L][G][n_kept][head_dim] with keys in `layout`. */
void finch_dump_copy_kv(const finch_press *fp, finch_key_layout layout, float *keys, float *values);

typedef struct {
    finch_key_layout layout;   /* keys.npy's layout (default hf)                */
    int steps;                 /* write steps_kept.npy / steps_scores.npy (the
                                  press must have params.record_steps = 1)    */
    const char *model_path;    /* for meta.json's model identity; NULL: none  */
    const int32_t *context;    /* the ids as fed; each may be NULL (not written) */
    const int32_t *question;
    const int32_t *prompt;
    size_t n_context, n_question, n_prompt;
    const char *extra_json;    /* a JSON object whose members are added to
                                  meta.json (the CLI's run report), or NULL */
    const char *extra_file;    /* a file the caller adds to the directory
                                  ("generated.npy"), listed in "files"; NULL */
} finch_dump_opts;

/* Defaults: hf layout, no steps, nothing else. */
finch_dump_opts finch_dump_defaults(void);

/* meta.json's text (malloc'ed) for a compressed press. */
finch_status finch_dump_meta(const finch_press *fp, const finch_dump_opts *o, char **json);

/* Write the whole dump into directory dir (which must exist).  o == NULL:
 * the defaults. */
finch_status finch_dump_write(const finch_press *fp, const char *dir, const finch_dump_opts *o);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_DUMP_H */
