/* tokenizer.h - building tokenizers from model files.
 *
 * Two algorithms, chosen by the model's metadata:
 *   "llama": SentencePiece-style BPE over pieces with scores, byte fallback
 *            (<0xXX> pieces), spaces as U+2581, optional leading space.
 *   "gpt2":  byte-level BPE with ranked merges and a pre-tokenizer split
 *            (regex rules of the family: gpt2, llama3 / "llama-bpe", qwen2).
 * Special / control tokens written literally in the text are matched first
 * (as llama.cpp does with parse_special). */
#ifndef FINCH_TOKENIZER_H
#define FINCH_TOKENIZER_H

#include "gguf.h"

/* From GGUF keys tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,
 * bos_token_id,eos_token_id,add_bos_token,...}.  Returns FINCH_OK with
 * *out == NULL when the file carries no tokenizer. */
finch_status finch_tokenizer_from_gguf(const gguf_file *g, finch_tokenizer **out);

/* From a Hugging Face tokenizer.json (BPE model: byte_fallback SentencePiece
 * style, or ByteLevel).  config_path (tokenizer_config.json) may be NULL;
 * it supplies add_bos/bos/eos when present. */
finch_status finch_tokenizer_from_json(const char *json_path, const char *config_path,
                                       finch_tokenizer **out);

void finch_tokenizer_free(finch_tokenizer *t);

/* Write the tokenizer as GGUF tokenizer.ggml.* keys (used by convert). */
finch_status finch_tokenizer_to_gguf(const finch_tokenizer *t, gguf_writer *w);

#endif
