/* model.h - model loading internals shared by the loader, convert and tests. */
#ifndef FINCH_MODEL_H
#define FINCH_MODEL_H

#include "util.h"

/* Check the hyperparameters every forward pass relies on. */
finch_status finch_config_validate(const finch_config *c);

/* Load a llama2.c checkpoint (.bin) with its tokenizer.bin (may be NULL). */
finch_status finch_model_load_llama2c(const char *path, const char *tokenizer_path,
                                      finch_model **out);

/* Write m as GGUF (llama.cpp layout; 2-D matrices stored as `type`, vectors
 * as f32; half-pairing q/k rows permuted for the `llama` architecture),
 * via a temporary file renamed into place. */
finch_status finch_convert(const finch_model *m, finch_dtype type, const char *out_path);

/* Hugging Face tensor name of a GGUF tensor name ("blk.3.attn_q.weight" ->
 * "model.layers.3.self_attn.q_proj.weight"); false when there is none. */
bool hf_name_from_gguf(const char *gguf_name, char *out, size_t cap);

#endif
