/* hf_arch.h - the family-specific fields of a Hugging Face config.json:
 * rope_scaling (linear, llama3, yarn; others refused by name), sliding
 * windows, Gemma's switches, Phi-3's partial rotary factor. */
#ifndef FINCH_HF_ARCH_H
#define FINCH_HF_ARCH_H

#include "finch.h"
#include <cjson/cJSON.h>

/* Fill the RoPE scaling of cfg from root's rope_scaling (or
 * rope_parameters); cfg's shapes, ctx_len and rope_base are set. */
finch_status hf_rope_scaling(const cJSON *root, finch_config *cfg);
/* Sliding window, soft-caps, query scale, embedding scale, local RoPE base
 * and partial rotary factor of cfg's family. */
finch_status hf_family_fields(const cJSON *root, finch_config *cfg);

#endif
