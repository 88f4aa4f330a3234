/* model.h - model loading internals shared by the loader, convert and tests. */
#ifndef FINCH_MODEL_H
#define FINCH_MODEL_H

#include "util.h"

/* Check the hyperparameters every forward pass relies on. */
finch_status finch_config_validate(const finch_config *c);

/* Load a llama2.c checkpoint (.bin) with its tokenizer.bin (may be NULL). */
finch_status finch_model_load_llama2c(const char *path, const char *tokenizer_path,
                                      finch_model **out);

/* Hugging Face tensor name of a GGUF tensor name ("blk.3.attn_q.weight" ->
 * "model.layers.3.self_attn.q_proj.weight"); false when there is none. */
bool hf_name_from_gguf(const char *gguf_name, char *out, size_t cap);

#endif
