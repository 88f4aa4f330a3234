/* convert.c - write a loaded model as a GGUF file in llama.cpp's layout
 * (`finch convert` reads a Hugging Face directory, a GGUF file or a
 * llama2.c checkpoint and calls this).
 *
 * The GGUF `llama` architecture rotates ADJACENT pairs, as llama.cpp's own
 * converter arranges by permuting the rows of q and k: a checkpoint that
 * rotates halves (i, i+d/2) gets its q/k rows reordered so that the pair
 * (i, i+d/2) of each head lands on rows (2i, 2i+1).  `qwen2` keeps halves. */
#include "finch.h"
#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    gguf_writer *w;
    void **buffers;
    size_t n_buffers;
    finch_dtype type;     /* target type of 2-D matrices */
    bool permute_qk;      /* half -> adjacent pairing */
    const finch_config *cfg;
} convert_job;

static finch_status keep_buffer(convert_job *j, void *buf) {
    void **b = realloc(j->buffers, (j->n_buffers + 1) * sizeof *b);
    if (!b) { free(buf); return finch_fail(FINCH_ERR_NOMEM, "out of memory"); }
    j->buffers = b;
    j->buffers[j->n_buffers++] = buf;
    return FINCH_OK;
}

/* Source row of destination row r when q/k rows are permuted (see top). */
static size_t source_row(size_t r, size_t head_dim, bool permute) {
    if (!permute) return r;
    size_t head = r / head_dim, within = r % head_dim, half = head_dim / 2;
    return head * head_dim + (within % 2) * half + within / 2;
}

static finch_status add_weight(convert_job *j, const char *name, const finch_weight *w, bool permute) {
    if (!w->data) return FINCH_OK;
    bool vec = w->rows == 1;
    finch_dtype t = vec ? FINCH_F32 : j->type;
    if ((t == FINCH_Q8_0 || t == FINCH_Q4_0) && w->cols % FINCH_QK8_0) t = FINCH_F16; /* rows of whole blocks */
    size_t in_row = finch_row_bytes(w->type, w->cols), out_row = finch_row_bytes(t, w->cols);
    uint8_t *out = finch_alloc(w->rows, out_row);
    float *row = finch_alloc(w->cols, sizeof(float));
    void *packed_row = w->packed ? malloc(in_row) : NULL; /* a packed weight's rows unpacked */
    if (!out || !row || (w->packed && !packed_row)) { free(out); free(row); free(packed_row); return FINCH_ERR_NOMEM; }
    for (size_t r = 0; r < w->rows; r++) {
        size_t src = source_row(r, j->cfg->head_dim, permute);
        finch_row_to_f32(w->type, finch_weight_row(w, src, packed_row), row, w->cols);
        finch_row_from_f32(t, row, out + r * out_row, w->cols);
    }
    free(row);
    free(packed_row);
    finch_status st = keep_buffer(j, out);
    if (st) return st;
    uint64_t ne[2] = { w->cols, w->rows };
    return gguf_add_tensor(j->w, name, t, ne, vec ? 1 : 2, out);
}

static finch_status add_layer(convert_job *j, const finch_layer *L, size_t l) {
    struct { const char *suffix; const finch_weight *w; bool permute; } parts[] = {
        { "attn_norm.weight", &L->attn_norm, false }, { "attn_q.weight", &L->wq, j->permute_qk },
        { "attn_k.weight", &L->wk, j->permute_qk },   { "attn_v.weight", &L->wv, false },
        { "attn_q.bias", &L->bq, false },            { "attn_k.bias", &L->bk, false },
        { "attn_v.bias", &L->bv, false },             { "attn_output.weight", &L->wo, false },
        { "ffn_norm.weight", &L->ffn_norm, false },   { "ffn_gate.weight", &L->w_gate, false },
        { "ffn_up.weight", &L->w_up, false },         { "ffn_down.weight", &L->w_down, false },
    };
    char name[96];
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        snprintf(name, sizeof name, "blk.%zu.%s", l, parts[i].suffix);
        finch_status st = add_weight(j, name, parts[i].w, parts[i].permute);
        if (st) return st;
    }
    return FINCH_OK;
}

static finch_status add_metadata(gguf_writer *w, const finch_model *m) {
    const finch_config *c = &m->cfg;
    char k[128];
    finch_status st = FINCH_OK;
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", c->arch, suffix), k)
    if ((st = gguf_set_str(w, "general.architecture", c->arch)) ||
        (st = gguf_set_str(w, "general.name", "finch-convert")) ||
        (st = gguf_set_u32(w, "general.alignment", 32)) ||
        (st = gguf_set_u32(w, KEY("context_length"), (uint32_t)c->ctx_len)) ||
        (st = gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim)) ||
        (st = gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer)) ||
        (st = gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn_dim)) ||
        (st = gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head)) ||
        (st = gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head)) ||
        (st = gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim)) ||
        (st = gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim)) ||
        (st = gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps)) ||
        (st = gguf_set_f32(w, KEY("rope.freq_base"), c->rope_base)) ||
        (st = gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->rope_dim)))
        return st;
    /* Llama 3 factors travel as the rope_freqs.weight tensor (finch_convert) */
    if (c->rope_scaling == FINCH_ROPE_SCALING_LINEAR &&
        ((st = gguf_set_str(w, KEY("rope.scaling.type"), "linear")) ||
         (st = gguf_set_f32(w, KEY("rope.scaling.factor"), c->rope_factor))))
        return st;
    if (c->rope_scaling == FINCH_ROPE_SCALING_YARN &&
        ((st = gguf_set_str(w, KEY("rope.scaling.type"), "yarn")) ||
         (st = gguf_set_f32(w, KEY("rope.scaling.factor"), c->rope_factor)) ||
         (st = gguf_set_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)c->rope_orig_ctx)) ||
         (st = gguf_set_f32(w, KEY("rope.scaling.yarn_beta_fast"), c->yarn_beta_fast)) ||
         (st = gguf_set_f32(w, KEY("rope.scaling.yarn_beta_slow"), c->yarn_beta_slow)) ||
         (st = gguf_set_f32(w, KEY("rope.scaling.yarn_attn_factor"), c->rope_mscale))))
        return st;
#undef KEY
    return m->tokenizer ? finch_tokenizer_to_gguf(m->tokenizer, w) : FINCH_OK;
}

/* The first feature of m this writer does not store, or NULL: it writes
 * the llama and qwen2 layouts with their RoPE scaling only, and a file
 * without a feature the model uses would compute another model. */
static const char *unwritten_feature(const finch_model *m) {
    const finch_config *c = &m->cfg;
    if (strcmp(c->arch, "llama") && strcmp(c->arch, "qwen2")) return c->arch;
    if (m->rope_freqs.data && strcmp(c->arch, "llama")) return "Llama 3 RoPE factors outside llama";
    if (c->sliding_window) return "a sliding window";
    if (c->qk_norm || c->post_norms || c->ffn_act || c->embd_scale > 0 || c->attn_scale > 0 ||
        c->attn_softcap > 0 || c->final_softcap > 0)
        return "a family switch";
    return NULL;
}

finch_status finch_convert(const finch_model *m, finch_dtype type, const char *out_path) {
    convert_job j = { .type = type, .cfg = &m->cfg };
    const char *feature = unwritten_feature(m);
    if (feature)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "only llama and qwen2 models without family switches can be written; this one has %s",
                          feature);
    bool gguf_llama = !strcmp(m->cfg.arch, "llama");
    if (gguf_llama && m->cfg.rope_pairing == FINCH_ROPE_HALF) {
        if (m->cfg.rope_dim != m->cfg.head_dim)
            return finch_fail(FINCH_ERR_UNSUPPORTED, "partial RoPE with half pairing cannot be stored as GGUF llama");
        j.permute_qk = true;
    }
    if (!gguf_llama && m->cfg.rope_pairing != FINCH_ROPE_HALF)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "GGUF %s expects half pairing", m->cfg.arch);
    finch_status st = gguf_writer_new(&j.w);
    if (st) return st;
    if (!(st = add_metadata(j.w, m)) && !(st = add_weight(&j, "token_embd.weight", &m->tok_embd, false)) &&
        !(st = add_weight(&j, "rope_freqs.weight", &m->rope_freqs, false))) {
        for (size_t l = 0; !st && l < m->cfg.n_layer; l++) st = add_layer(&j, &m->layers[l], l);
        if (!st) st = add_weight(&j, "output_norm.weight", &m->out_norm, false);
        if (!st && !m->cfg.tied_output) st = add_weight(&j, "output.weight", &m->output, false);
        if (!st) st = gguf_write_file(j.w, out_path);
    }
    gguf_writer_free(j.w);
    for (size_t i = 0; i < j.n_buffers; i++) free(j.buffers[i]);
    free(j.buffers);
    return st;
}

