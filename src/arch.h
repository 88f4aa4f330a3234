/* arch.h - the model families: what each architecture switches on in
 * finch_config, the GGUF keys each may carry (anything else under the
 * architecture's prefix is refused by name), and the Hugging Face tensor
 * names per family. */
#ifndef FINCH_ARCH_H
#define FINCH_ARCH_H

#include "finch.h"
#include "gguf.h"
#include "util.h"

/* Set c->arch and the family's fixed switches (pairing, biases, q/k norm,
 * post norms, activation, embedding scale); FINCH_ERR_UNSUPPORTED naming
 * the architecture and the supported list when it is none of them. */
finch_status finch_arch_setup(const char *arch, size_t len, finch_config *c);
/* 1 when the family stores its q/k/v and its gate/up projections fused
 * (phi3: attn_qkv, ffn_up of 2*ffn_dim rows). */
int finch_arch_fused(const finch_config *c);
/* 1 for the Gemma families (norm weights (1 + w) in Hugging Face files). */
int finch_arch_gemma(const finch_config *c);

/* Every key of the GGUF file under "<arch>." is one this engine implements,
 * with the type it reads (unknown keys, per-layer arrays and numbers
 * stored as strings refused by name); called before any key is read, so a
 * wrong type is named instead of read as absent. */
finch_status finch_arch_check_keys(const gguf_file *g, const finch_config *c);

/* After the shapes are read: RoPE scaling, sliding window, soft-caps and
 * every other key of the GGUF file under "<arch>.", checked against the
 * keys this engine implements (unknown ones refused by name). */
finch_status finch_arch_gguf_extras(const gguf_file *g, finch_config *c);

/* Hugging Face tensor name of a GGUF tensor name for architecture c->arch;
 * false when there is none. */
bool finch_arch_hf_name(const finch_config *c, const char *gguf_name, char *out, size_t cap);

/* Describe the RoPE scaling and the family switches on one line each. */
void finch_arch_describe(const finch_config *c, FILE *f);

#endif
