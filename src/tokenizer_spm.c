/* tokenizer_spm.c - a SentencePiece tokenizer.model (a protobuf ModelProto)
 * as a finch tokenizer: the pieces with their scores and types, the special
 * ids of the trainer spec and the normalizer's dummy prefix.  Only what a
 * BPE model (Llama, Mistral) needs is read; a unigram model is refused by
 * name.  Every length and offset is checked against the file. */
#include "tokenizer_impl.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The fields read (sentencepiece_model.proto). */
enum {
    MODEL_PIECES = 1, MODEL_TRAINER = 2, MODEL_NORMALIZER = 3,
    PIECE_TEXT = 1, PIECE_SCORE = 2, PIECE_TYPE = 3,
    TRAINER_MODEL_TYPE = 3, TRAINER_UNK = 40, TRAINER_BOS = 41, TRAINER_EOS = 42,
    NORMALIZER_DUMMY_PREFIX = 3,
    SPM_BPE = 2
};

typedef struct {
    const uint8_t *p, *end;
} pb;

/* One field: its number, wire type, and value (varint, fixed32 bits, or
 * the bytes of a length-delimited field).  false at the end or on a
 * malformed field (*bad set). */
typedef struct {
    uint32_t field, wire;
    uint64_t v;
    pb sub;
} pb_field;

static bool pb_varint(pb *b, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return true;
    }
    return false;
}

static bool pb_next(pb *b, pb_field *f, bool *bad) {
    uint64_t key;
    if (b->p == b->end) return false;
    if (!pb_varint(b, &key) || key >> 35) return !(*bad = true);
    f->field = (uint32_t)(key >> 3);
    f->wire = (uint32_t)(key & 7);
    size_t left;
    switch (f->wire) {
    case 0: return pb_varint(b, &f->v) || !(*bad = true);
    case 1: left = 8; break;
    case 5: left = 4; break;
    case 2:
        if (!pb_varint(b, &f->v) || f->v > (uint64_t)(b->end - b->p)) return !(*bad = true);
        f->sub = (pb){ b->p, b->p + f->v };
        b->p += f->v;
        return true;
    default: return !(*bad = true);
    }
    if ((size_t)(b->end - b->p) < left) return !(*bad = true);
    f->v = 0;
    memcpy(&f->v, b->p, left); /* little-endian hosts only, as the GGUF reader */
    b->p += left;
    return true;
}

typedef struct {
    size_t n;
    int64_t unk, bos, eos;
    uint64_t model_type;
    bool dummy_prefix;
} spm_header;

/* The counts and settings: pieces, trainer spec, normalizer spec. */
static finch_status read_header(pb b, const char *path, spm_header *h) {
    *h = (spm_header){ .unk = 0, .bos = 1, .eos = 2, .model_type = 1, .dummy_prefix = true };
    pb_field f, g;
    bool bad = false;
    while (pb_next(&b, &f, &bad)) {
        if (f.wire != 2) continue;
        if (f.field == MODEL_PIECES) h->n++;
        for (pb s = f.sub; f.field != MODEL_PIECES && pb_next(&s, &g, &bad);) {
            if (g.wire != 0) continue;
            int64_t v = (int64_t)(int32_t)g.v; /* int32 fields: -1 is ten bytes of varint */
            if (f.field == MODEL_TRAINER && g.field == TRAINER_MODEL_TYPE) h->model_type = g.v;
            if (f.field == MODEL_TRAINER && g.field == TRAINER_UNK) h->unk = v;
            if (f.field == MODEL_TRAINER && g.field == TRAINER_BOS) h->bos = v;
            if (f.field == MODEL_TRAINER && g.field == TRAINER_EOS) h->eos = v;
            if (f.field == MODEL_NORMALIZER && g.field == NORMALIZER_DUMMY_PREFIX) h->dummy_prefix = g.v != 0;
        }
    }
    if (bad) return finch_fail(FINCH_ERR_FORMAT, "%s: not a SentencePiece model (malformed protobuf)", path);
    if (h->n == 0) return finch_fail(FINCH_ERR_FORMAT, "%s: a SentencePiece model without pieces", path);
    if (h->model_type != SPM_BPE)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "%s: SentencePiece model type %llu is not supported (BPE only; "
                          "unigram models are not)", path, (unsigned long long)h->model_type);
    return FINCH_OK;
}

/* Piece i: its text, score and type into t (texts[i], lens[i] point into
 * the file). */
static finch_status read_piece(pb s, finch_tokenizer *t, size_t i, const char **text, size_t *len) {
    pb_field g;
    bool bad = false;
    *text = "";
    *len = 0;
    t->type[i] = TOK_T_NORMAL;
    while (pb_next(&s, &g, &bad)) {
        if (g.field == PIECE_TEXT && g.wire == 2) {
            *text = (const char *)g.sub.p;
            *len = (size_t)(g.sub.end - g.sub.p);
        } else if (g.field == PIECE_SCORE && g.wire == 5) {
            union { uint32_t u; float f; } sc = { (uint32_t)g.v };
            t->score[i] = sc.f;
        } else if (g.field == PIECE_TYPE && g.wire == 0) {
            if (g.v < TOK_T_NORMAL || g.v > TOK_T_BYTE)
                return finch_fail(FINCH_ERR_FORMAT, "piece %zu has type %llu", i, (unsigned long long)g.v);
            t->type[i] = (uint8_t)g.v;
        }
    }
    return bad ? finch_fail(FINCH_ERR_FORMAT, "piece %zu is malformed", i) : FINCH_OK;
}

static int32_t special_id(int64_t id, size_t n) { return id >= 0 && (uint64_t)id < n ? (int32_t)id : -1; }

static finch_status build(pb b, const spm_header *h, finch_tokenizer *t, const char **texts, size_t *lens) {
    pb_field f;
    bool bad = false;
    size_t i = 0;
    while (pb_next(&b, &f, &bad))
        if (f.wire == 2 && f.field == MODEL_PIECES) {
            finch_status st = read_piece(f.sub, t, i, &texts[i], &lens[i]);
            if (st) return st;
            i++;
        }
    finch_status st = tok_set_texts(t, texts, lens);
    if (st) return st;
    t->unk = special_id(h->unk, h->n);
    t->bos = special_id(h->bos, h->n);
    t->eos = special_id(h->eos, h->n);
    t->add_bos = t->bos >= 0; /* as llama.cpp for a "llama" vocabulary */
    t->prepend = h->dummy_prefix ? TOK_PREPEND_EACH : TOK_PREPEND_NONE;
    t->escape_spaces = true;
    t->byte_fallback = true;
    return tok_finish(t);
}

finch_status finch_tokenizer_from_spm_model(const char *path, finch_tokenizer **out) {
    *out = NULL;
    finch_map m;
    finch_status st = finch_map_file(path, &m);
    if (st) return st;
    pb b = { m.data, m.data + m.size };
    spm_header h;
    finch_tokenizer *t = NULL;
    const char **texts = NULL;
    size_t *lens = NULL;
    if ((st = read_header(b, path, &h)) || (st = tok_new(h.n, TOK_SPM, &t))) goto done;
    texts = finch_zalloc(h.n, sizeof *texts);
    lens = finch_zalloc(h.n, sizeof *lens);
    if (!texts || !lens) st = FINCH_ERR_NOMEM;
    else if ((st = build(b, &h, t, texts, lens))) st = finch_fail_prefix(st, "%s", path);
done:
    free(texts);
    free(lens);
    finch_unmap(&m);
    if (st) {
        finch_tokenizer_free(t);
        return st;
    }
    *out = t;
    return FINCH_OK;
}
