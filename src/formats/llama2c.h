/* llama2c.h - llama2.c checkpoints (legacy "v0" .bin files).
 *
 * Layout: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; a negative vocab_size means the file ends
 * with its own classifier), then f32 arrays: token_embedding [vocab][dim],
 * rms_att [L][dim], wq [L][dim][dim], wk [L][kv_dim][dim], wv [L][kv_dim][dim],
 * wo [L][dim][dim], rms_ffn [L][dim], w1 [L][hidden][dim], w2 [L][dim][hidden],
 * w3 [L][hidden][dim], rms_final [dim], freq_cis_real [seq][head_size/2],
 * freq_cis_imag [seq][head_size/2], then wcls [vocab][dim] when unshared.
 *
 * The weights are exposed under their GGUF names (token_embd.weight,
 * blk.N.attn_q.weight, ..., ffn_gate = w1, ffn_down = w2, ffn_up = w3,
 * output_norm.weight, output.weight only when unshared) with ne in GGUF
 * order, so a model builder can treat every format the same way. */
#ifndef FINCH_LLAMA2C_H
#define FINCH_LLAMA2C_H

#include "safetensors.h"

typedef struct {
    finch_config cfg;          /* arch "llama", rope ADJACENT as run.c rotates */
    finch_map map;             /* empty after llama2c_parse                    */
    finch_tensor_list tensors; /* finished: use llama2c_find                   */
} llama2c_file;

finch_status llama2c_open(const char *path, llama2c_file *out);
/* Parse a checkpoint held in memory (4-byte aligned; must outlive out). */
finch_status llama2c_parse(const uint8_t *data, size_t size, llama2c_file *out);
void llama2c_close(llama2c_file *f);
const finch_tensor_ref *llama2c_find(const llama2c_file *f, const char *name);

#endif
