/* safetensors.h - Hugging Face model directories: config.json and one or
 * more memory-mapped .safetensors files.
 *
 * A safetensors file is: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [b, e]},
 *  "__metadata__": {string: string}}, then the data section; offsets are
 * relative to the data section.  Shapes are outermost-first; we report them
 * reversed (ne[0] innermost) so that GGUF and HF tensors look the same. */
#ifndef FINCH_SAFETENSORS_H
#define FINCH_SAFETENSORS_H

#include "util.h"

/* A tensor inside a mapped file, dims in GGUF order: a weight W [rows, cols]
 * has ne[0] = cols, ne[1] = rows.  Unused dims are 1 (n_dims 0: a scalar). */
typedef struct {
    const char *name;
    finch_dtype type;
    uint32_t n_dims;
    uint64_t ne[4];
    const void *data;
    size_t nbytes;
} finch_tensor_ref;

/* A list of tensor refs that owns their names.  Look-ups need it sorted:
 * finch_tensor_list_finish sorts it and rejects duplicate names. */
typedef struct {
    finch_tensor_ref *t;
    size_t n, cap;
} finch_tensor_list;

/* Append a copy of *t (its name is copied too). */
finch_status finch_tensor_list_push(finch_tensor_list *l, const finch_tensor_ref *t);
/* Sort by name; FINCH_ERR_FORMAT on a duplicate name. */
finch_status finch_tensor_list_finish(finch_tensor_list *l);
/* Binary search of a finished list; NULL when absent. */
const finch_tensor_ref *finch_tensor_list_find(const finch_tensor_list *l, const char *name);
void finch_tensor_list_free(finch_tensor_list *l);

/* Parse one safetensors file held in memory (data must outlive the list)
 * and add its tensors to `list`, which is left finished.  Entries of
 * "__metadata__" whose key is not a tensor but whose value is one are
 * added as aliases: safetensors.torch.save_model stores tied weights once
 * and records {"removed name": "kept name"} there. */
finch_status hf_parse_safetensors(const uint8_t *data, size_t size, finch_tensor_list *list);

/* Fill cfg from the text of a config.json (len bytes, need not be
 * NUL-terminated).  Architectures LlamaForCausalLM and MistralForCausalLM
 * give arch "llama", Qwen2ForCausalLM gives "qwen2" (with q/k/v biases);
 * RoPE pairing is always FINCH_ROPE_HALF.  rope_scaling must be null. */
finch_status hf_parse_config(const char *json, size_t len, finch_config *cfg);

#define HF_PATH_MAX 4096

typedef struct {
    finch_config cfg;
    char tokenizer_json[HF_PATH_MAX];   /* path of tokenizer.json, "" if absent        */
    char tokenizer_config[HF_PATH_MAX]; /* path of tokenizer_config.json, "" if absent */
    finch_map *maps;                    /* one per safetensors file                    */
    size_t n_maps;
    finch_tensor_list tensors;          /* finished: use hf_find                       */
} hf_model_files;

/* Open a model directory: config.json, then model.safetensors or the
 * shards named by model.safetensors.index.json ("weight_map").  Paths
 * longer than HF_PATH_MAX are refused (FINCH_ERR_ARG). */
finch_status hf_open(const char *dir, hf_model_files *out);
void hf_close(hf_model_files *m);
/* A tensor by its Hugging Face name ("model.layers.0.self_attn.q_proj.weight"). */
const finch_tensor_ref *hf_find(const hf_model_files *m, const char *name);

#endif
