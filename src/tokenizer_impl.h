/* tokenizer_impl.h - the inside of finch_tokenizer, shared by tokenizer.c
 * (tables, encoding, decoding) and tokenizer_load.c (the file formats).
 *
 * One vocabulary representation serves every format: piece i has its text
 * as stored by the format (U+2581 for spaces in SentencePiece vocabularies,
 * GPT-2's byte-to-unicode alphabet in byte-level ones), a type (the GGUF
 * token types), a score, and the bytes it decodes to.  Four encoders work
 * on it:
 *
 *   TOK_SPM       SentencePiece BPE with scores (GGUF "llama", llama2.c):
 *                 merge the adjacent pair whose concatenation is the piece
 *                 with the highest score; byte fallback for the rest.
 *   TOK_SP_BPE    Hugging Face BPE over characters with ranked merges and
 *                 byte fallback (tokenizer.json of the SentencePiece kind,
 *                 or GGUF "llama" that carries tokenizer.ggml.merges).
 *   TOK_BYTE_BPE  byte-level BPE: regex pre-tokenizer, GPT-2 byte alphabet,
 *                 ranked merges (GGUF "gpt2", tokenizer.json ByteLevel).
 *   TOK_TIKTOKEN  byte-level like TOK_BYTE_BPE, but merges come from ranks of
 *                 the pieces themselves (tiktoken files, e.g. Llama 3). */
#ifndef FINCH_TOKENIZER_IMPL_H
#define FINCH_TOKENIZER_IMPL_H

#include "tokenizer.h"
#include "unicode.h"

typedef enum { TOK_SPM, TOK_SP_BPE, TOK_BYTE_BPE, TOK_TIKTOKEN } tok_algo;

/* Pre-tokenizer regexes of the byte-level families. */
typedef enum { TOK_PRE_GPT2, TOK_PRE_LLAMA3, TOK_PRE_QWEN2 } tok_pre;

/* When a SentencePiece-style encoder puts U+2581 in front of a text
 * segment (segments are the text between literal special tokens). */
typedef enum {
    TOK_PREPEND_NONE,
    TOK_PREPEND_EACH,       /* every segment: llama.cpp (which adds it at the start and
                             * after each special), HF Metaspace "always" */
    TOK_PREPEND_TEXT_START, /* HF Prepend normalizer: once, at the start of the text */
    TOK_PREPEND_FIRST       /* HF Metaspace "first": only a segment at offset 0 */
} tok_prepend;

/* GGUF / SentencePiece token types. */
enum {
    TOK_T_UNDEFINED = 0, TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3,
    TOK_T_USER = 4, TOK_T_UNUSED = 5, TOK_T_BYTE = 6
};

/* Open-addressing hash of piece text -> id.  A slot holds the upper 32
 * bits of the hash and id + 1 (0 = empty). */
typedef struct {
    uint64_t *slots;
    size_t mask;
} tok_strmap;

/* Open-addressing hash of an adjacent id pair -> (merge rank, result id). */
typedef struct {
    uint64_t key; /* (left << 32) | right; UINT64_MAX = empty */
    int32_t rank;
    int32_t id;
} tok_pair_slot;

typedef struct {
    tok_pair_slot *slots;
    size_t mask;
} tok_pairmap;

struct finch_tokenizer {
    tok_algo algo;
    tok_pre pre;            /* byte-level algorithms */
    tok_prepend prepend;    /* SentencePiece-style algorithms */
    bool prepend_unless_space; /* HF Metaspace: no U+2581 added before a space */
    bool escape_spaces;     /* ' ' -> U+2581 before encoding */
    bool metaspace_split;   /* HF Metaspace split: a word starts at each U+2581 */
    bool bl_prefix_space;   /* HF ByteLevel add_prefix_space */
    bool ignore_merges;     /* a word that is a piece is emitted whole */
    bool byte_fallback;     /* unknown characters -> <0xXX> pieces */
    bool fuse_unk;          /* consecutive unknown characters -> one unk */

    size_t n;               /* vocabulary size */
    char *text;             /* piece texts, each NUL-terminated */
    size_t *text_off;       /* [n + 1] */
    char *dec;              /* the bytes each piece decodes to */
    size_t *dec_off;        /* [n + 1] */
    uint8_t *type;          /* [n] TOK_T_* */
    float *score;           /* [n] */

    tok_strmap pieces;      /* non-special pieces: what the encoders see */
    tok_strmap specials;    /* unknown / control / user-defined pieces, matched literally */
    size_t *special_lens;   /* distinct lengths of the specials, descending */
    size_t n_special_lens;
    uint8_t special_first[256]; /* 1 when a special starts with this byte */

    tok_pairmap merges;     /* TOK_SP_BPE, TOK_BYTE_BPE */
    int32_t *merge_list;    /* [2 * n_merges] (left, right) in rank order */
    size_t n_merges;

    int32_t byte_tok[256];  /* piece of each raw byte (byte fallback / byte-level), -1 if none */
    int32_t bos, eos, unk;  /* -1 when none */
    bool add_bos;
    char *chat_template;    /* the model's chat template text, NULL when none */
};

/* ---- building (tokenizer.c) ---- */

/* A tokenizer for n pieces (types UNUSED, scores 0, no special ids) and
 * the given algorithm.  The loader then sets the texts, types, scores,
 * ids and flags, calls tok_finish, and adds merges if it has them. */
finch_status tok_new(size_t n, tok_algo algo, finch_tokenizer **out);
/* The n piece texts (copied; texts[i] has lens[i] bytes, may be empty). */
finch_status tok_set_texts(finch_tokenizer *t, const char *const *texts, const size_t *lens);
/* After texts, types and scores are set: build the hash maps, the decoded
 * bytes, the byte pieces and the special-token tables; validates what the
 * algorithm needs (e.g. all 256 byte pieces for byte-level). */
finch_status tok_finish(finch_tokenizer *t);
/* Record merges (after tok_finish): pairs of piece ids in rank order; the
 * result piece is looked up by concatenating the texts.  A merge whose
 * result is not a piece cannot apply and is dropped. */
finch_status tok_set_merges(finch_tokenizer *t, const int32_t *pairs, size_t n_pairs);

/* Rank and result of merging adjacent pieces (a, b); false if no merge. */
bool tok_merge_find(const finch_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id);

/* Piece id of text s[0..len) in map m, or -1. */
int32_t tok_find(const finch_tokenizer *t, const tok_strmap *m, const char *s, size_t len);
/* Text of piece id (NUL-terminated in the arena) and its length. */
static inline const char *tok_text(const finch_tokenizer *t, size_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id] - 1;
    return t->text + t->text_off[id];
}
/* Piece id of a text in the normal map, else the special map, else -1. */
int32_t tok_lookup_any(const finch_tokenizer *t, const char *s, size_t len);

/* "<0xAB>" -> 0xAB; -1 when the text is not a byte piece. */
int tok_parse_byte_piece(const char *s, size_t len);

/* GPT-2's byte <-> unicode alphabet (printable bytes map to themselves). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not in the alphabet */

#endif
