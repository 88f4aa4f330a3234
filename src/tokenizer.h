/* tokenizer.h - building tokenizers from model files.
 *
 * Two families, chosen by the model's metadata:
 *   "llama": SentencePiece-style BPE over pieces with scores, byte fallback
 *            (<0xXX> pieces), spaces as U+2581, optional leading space.
 *            Hugging Face tokenizer.json files of this kind (BPE with
 *            byte_fallback, merges ranked) are encoded with the HF rules.
 *   "gpt2":  byte-level BPE with ranked merges and a pre-tokenizer split
 *            (regex rules of the family: gpt2, llama3 / "llama-bpe", qwen2).
 * Special / control / user-defined tokens written literally in the text are
 * matched first (as llama.cpp does with parse_special), longest first.
 * Decoding renders control tokens as nothing. */
#ifndef FINCH_TOKENIZER_H
#define FINCH_TOKENIZER_H

#include "gguf.h"

/* From GGUF keys tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,
 * bos_token_id,eos_token_id,unknown_token_id,add_bos_token,
 * add_space_prefix}.  Returns FINCH_OK with *out == NULL when the file
 * carries no tokenizer.  A "llama" tokenizer that also carries merges (as
 * finch_tokenizer_to_gguf writes for tokenizer.json vocabularies) is
 * encoded with the ranked merges. */
finch_status finch_tokenizer_from_gguf(const gguf_file *g, finch_tokenizer **out);

/* From a Hugging Face tokenizer.json (BPE model: byte_fallback SentencePiece
 * style, or ByteLevel with the GPT-2 / Llama 3 / Qwen2 split regex).
 * config_path (tokenizer_config.json) may be NULL; it supplies
 * add_bos/bos/eos when present (else the post-processor template does). */
finch_status finch_tokenizer_from_json(const char *json_path, const char *config_path,
                                       finch_tokenizer **out);

/* From a llama2.c tokenizer.bin: int32 max_token_length, then per token
 * float32 score, int32 length, bytes.  `vocab` (from the model) is the
 * number of tokens.  SentencePiece rules, BOS 1, EOS 2. */
finch_status finch_tokenizer_from_llama2c(const char *path, size_t vocab, finch_tokenizer **out);

/* From a tiktoken file (base64 piece, space, rank per line), as Meta ships
 * Llama 3's tokenizer.model: ranks become ids, the Llama 3 split regex and
 * its 256 special tokens (<|begin_of_text|> = BOS, <|end_of_text|> = EOS)
 * follow the ranks. */
finch_status finch_tokenizer_from_tiktoken(const char *path, finch_tokenizer **out);

/* From a SentencePiece tokenizer.model (protobuf ModelProto) of a BPE
 * model (Llama, Mistral): pieces, scores, types, the trainer's unk/bos/eos
 * ids, the normalizer's dummy prefix; unigram models are refused. */
finch_status finch_tokenizer_from_spm_model(const char *path, finch_tokenizer **out);

/* Override BOS / EOS (-1: none), e.g. from a model's config.json. */
finch_status finch_tokenizer_set_bos_eos(finch_tokenizer *t, int32_t bos, int32_t eos);

void finch_tokenizer_free(finch_tokenizer *t);

/* Write the tokenizer as GGUF tokenizer.ggml.* keys (used by convert), so
 * that finch_tokenizer_from_gguf encodes as this tokenizer does.  "llama"
 * vocabularies from tokenizer.json get scores that let llama.cpp's score
 * algorithm follow the merge order, plus the merges themselves. */
finch_status finch_tokenizer_to_gguf(const finch_tokenizer *t, gguf_writer *w);

/* As above; with_merges = false leaves out tokenizer.ggml.merges of a
 * "llama" vocabulary (a file for the score algorithm only; for tests). */
finch_status finch_tokenizer_to_gguf_ex(const finch_tokenizer *t, gguf_writer *w, bool with_merges);

#endif
