/* model.c - from a model file to a finch_model: read the hyperparameters,
 * bind every weight by name with its shape checked, convert the small
 * tensors (norms, biases) to f32, attach the tokenizer.
 *
 * Three sources share one binder: GGUF (llama.cpp names), a Hugging Face
 * directory (HF names, translated), and llama2.c checkpoints (for convert). */
#include "model.h"
#include "kernels.h"
#include "quants.h"
#include "finch.h"

#include "arch.h"
#include "rope.h"
#include "finite.h"
#include "gguf.h"
#include "llama2c.h"
#include "safetensors.h"
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct finch_model_storage {
    gguf_file gguf;
    bool has_gguf;
    hf_model_files hf;
    bool has_hf;
    llama2c_file l2c;
    bool has_l2c;
    float **owned; /* f32 copies of small tensors */
    size_t n_owned;
    bool *used;    /* [tensors of the source]: bound by the model */
    size_t n_tensors;
    uint8_t *packed; /* packed weights moved out of a mapped file, or NULL */
    size_t packed_mapped;
};

/* -------------------------------------------------------- tensor lookup */

/* Find a tensor by its GGUF name in whichever source the model came from. */
static bool find_tensor(const finch_model *m, const char *gguf_name, finch_tensor_ref *out) {
    const finch_model_storage *s = m->storage;
    if (s->has_gguf) {
        const gguf_tensor *t = gguf_find_tensor(&s->gguf, gguf_name);
        if (!t) return false;
        if (s->used) s->used[t - s->gguf.tensors] = true;
        out->name = gguf_name;
        out->type = t->type;
        out->n_dims = t->n_dims;
        memcpy(out->ne, t->ne, sizeof out->ne);
        out->data = t->data;
        out->nbytes = t->nbytes;
        return true;
    }
    if (s->has_hf) {
        char hf_name[256];
        if (!finch_arch_hf_name(&m->cfg, gguf_name, hf_name, sizeof hf_name)) return false;
        const finch_tensor_ref *t = hf_find(&s->hf, hf_name);
        if (!t) return false;
        if (s->used) s->used[t - s->hf.tensors.t] = true;
        *out = *t;
        return true;
    }
    if (s->has_l2c) {
        const finch_tensor_ref *t = llama2c_find(&s->l2c, gguf_name);
        if (!t) return false;
        *out = *t;
        return true;
    }
    return false;
}

/* A new f32 buffer of n values owned by the model. */
static float *owned_f32(finch_model *m, size_t n) {
    finch_model_storage *s = m->storage;
    float **owned = realloc(s->owned, (s->n_owned + 1) * sizeof *owned);
    if (!owned) { finch_fail(FINCH_ERR_NOMEM, "out of memory"); return NULL; }
    s->owned = owned;
    float *buf = finch_alloc(n, sizeof(float));
    if (buf) s->owned[s->n_owned++] = buf;
    return buf;
}

/* Hugging Face Gemma norms compute x * (1 + w); GGUF files store 1 + w
 * (llama.cpp's converter adds it), which is what the forward pass uses. */
static bool norm_plus_one(const finch_model *m, const char *name) {
    size_t n = strlen(name);
    return m->storage->has_hf && finch_arch_gemma(&m->cfg) && n > 11 && !strcmp(name + n - 11, "norm.weight");
}

static finch_status keep_f32_copy(finch_model *m, const finch_tensor_ref *t, size_t n, finch_weight *w) {
    float *buf = owned_f32(m, n);
    if (!buf) return FINCH_ERR_NOMEM;
    finch_row_to_f32(t->type, t->data, buf, n);
    if (norm_plus_one(m, t->name))
        for (size_t i = 0; i < n; i++) buf[i] += 1.0f;
    w->data = buf;
    w->type = FINCH_F32;
    return FINCH_OK;
}

/* Every stored value must be finite: one NaN or Inf weight makes every
 * logit it reaches NaN, and decoding would then emit arbitrary tokens.  The
 * scan reads the weights once, at memory speed (finite.c). */
static finch_status check_values(const finch_tensor_ref *t, size_t rows, size_t cols) {
    const char *kind = "";
    size_t n = rows * cols, i = finch_first_nonfinite(t->type, t->data, n, &kind);
    if (i == n) return FINCH_OK;
    const finch_quant_traits *q = finch_quant_traits_of(t->type);
    if (q)
        return finch_fail(FINCH_ERR_FORMAT, "tensor %s: a scale of %s block %zu (elements %zu..%zu) is %s",
                          t->name, q->name, i / q->block, i, i + q->block - 1, kind);
    if (rows == 1) return finch_fail(FINCH_ERR_FORMAT, "tensor %s: element %zu is %s", t->name, i, kind);
    return finch_fail(FINCH_ERR_FORMAT, "tensor %s: element %zu (row %zu, column %zu) is %s", t->name, i,
                      i / cols, i % cols, kind);
}

/* Bind `name` as W [rows, cols]; rows == 1 for vectors.  Vectors are kept as
 * f32 (converted when stored otherwise).  optional: absent is not an error. */
static finch_status bind(finch_model *m, const char *name, size_t rows, size_t cols,
                         bool optional, finch_weight *w) {
    finch_tensor_ref t;
    memset(w, 0, sizeof *w);
    if (!find_tensor(m, name, &t)) {
        if (optional) return FINCH_OK;
        return finch_fail(FINCH_ERR_FORMAT, "missing tensor %s", name);
    }
    bool is_vec = rows == 1;
    bool shape_ok = is_vec ? (t.n_dims == 1 && t.ne[0] == cols)
                           : (t.n_dims == 2 && t.ne[0] == cols && t.ne[1] == rows);
    if (!shape_ok)
        return finch_fail(FINCH_ERR_FORMAT, "tensor %s has shape [%llu, %llu], expected [%zu, %zu]", name,
                          (unsigned long long)(t.n_dims > 1 ? t.ne[1] : 1), (unsigned long long)t.ne[0],
                          rows, cols);
    size_t row_bytes = finch_row_bytes(t.type, cols), need;
    if (row_bytes == 0 || !finch_mul_ok(row_bytes, rows, &need) || need > t.nbytes)
        return finch_fail(FINCH_ERR_FORMAT, "tensor %s: %s data does not fit its shape", name,
                          finch_dtype_name(t.type));
    /* A tied output matrix stored twice under two names is one tensor. */
    finch_status st = t.data == m->tok_embd.data ? FINCH_OK : check_values(&t, rows, cols);
    if (st) return st;
    w->rows = rows;
    w->cols = cols;
    w->type = t.type;
    w->data = t.data;
    t.name = name;
    if (is_vec && (t.type != FINCH_F32 || norm_plus_one(m, name))) return keep_f32_copy(m, &t, cols, w);
    return FINCH_OK;
}

/* Rows [row0, row0 + rows) of a bound matrix, as a weight of its own. */
static finch_weight row_view(const finch_weight *w, size_t row0, size_t rows) {
    finch_weight v = *w;
    v.data = (const uint8_t *)w->data + row0 * finch_row_bytes(w->type, w->cols);
    v.rows = rows;
    return v;
}

/* ------------------------------------------------------------- weights */

static finch_status bind_layer(finch_model *m, size_t l) {
    const finch_config *c = &m->cfg;
    finch_layer *L = &m->layers[l];
    size_t qdim = c->n_head * c->head_dim, kvdim = c->n_kv_head * c->head_dim;
    char n[96];
    finch_status st;
#define BIND(field, suffix, rows, cols, opt)                                   \
    do {                                                                       \
        snprintf(n, sizeof n, "blk.%zu.%s", l, suffix);                        \
        if ((st = bind(m, n, rows, cols, opt, &L->field)) != FINCH_OK) return st; \
    } while (0)
    BIND(attn_norm, "attn_norm.weight", 1, c->dim, false);
    if (finch_arch_fused(c)) { /* phi3: one q|k|v matrix, one gate|up matrix */
        finch_weight qkv, gate_up;
        snprintf(n, sizeof n, "blk.%zu.attn_qkv.weight", l);
        if ((st = bind(m, n, qdim + 2 * kvdim, c->dim, false, &qkv))) return st;
        snprintf(n, sizeof n, "blk.%zu.ffn_up.weight", l);
        if ((st = bind(m, n, 2 * c->ffn_dim, c->dim, false, &gate_up))) return st;
        L->wq = row_view(&qkv, 0, qdim);
        L->wk = row_view(&qkv, qdim, kvdim);
        L->wv = row_view(&qkv, qdim + kvdim, kvdim);
        L->w_gate = row_view(&gate_up, 0, c->ffn_dim);
        L->w_up = row_view(&gate_up, c->ffn_dim, c->ffn_dim);
    } else {
        BIND(wq, "attn_q.weight", qdim, c->dim, false);
        BIND(wk, "attn_k.weight", kvdim, c->dim, false);
        BIND(wv, "attn_v.weight", kvdim, c->dim, false);
        BIND(w_gate, "ffn_gate.weight", c->ffn_dim, c->dim, false);
        BIND(w_up, "ffn_up.weight", c->ffn_dim, c->dim, false);
    }
    BIND(bq, "attn_q.bias", 1, qdim, !c->has_qkv_bias);
    BIND(bk, "attn_k.bias", 1, kvdim, !c->has_qkv_bias);
    BIND(bv, "attn_v.bias", 1, kvdim, !c->has_qkv_bias);
    BIND(wo, "attn_output.weight", c->dim, qdim, false);
    BIND(ffn_norm, "ffn_norm.weight", 1, c->dim, false);
    BIND(w_down, "ffn_down.weight", c->dim, c->ffn_dim, false);
    if (c->qk_norm) {
        BIND(q_norm, "attn_q_norm.weight", 1, c->head_dim, false);
        BIND(k_norm, "attn_k_norm.weight", 1, c->head_dim, false);
    }
    if (c->post_norms) {
        BIND(post_attn_norm, "post_attention_norm.weight", 1, c->dim, false);
        BIND(post_ffn_norm, "post_ffw_norm.weight", 1, c->dim, false);
    }
#undef BIND
    return FINCH_OK;
}

/* Llama 3 RoPE factors: the GGUF tensor rope_freqs.weight (llama), or
 * computed from a Hugging Face rope_scaling of type llama3. */
static finch_status bind_rope_freqs(finch_model *m) {
    finch_config *c = &m->cfg;
    size_t half = c->rope_dim / 2;
    if (c->rope_scaling == FINCH_ROPE_SCALING_LLAMA3) {
        float *ff = owned_f32(m, half);
        if (!ff) return FINCH_ERR_NOMEM;
        finch_rope_llama3_factors(c->rope_dim, c->rope_base, c->rope_factor, c->rope_low_freq_factor,
                                  c->rope_high_freq_factor, (double)c->rope_orig_ctx, ff);
        m->rope_freqs = (finch_weight){.data = ff, .type = FINCH_F32, .rows = 1, .cols = half};
        return FINCH_OK;
    }
    if (strcmp(c->arch, "llama")) return FINCH_OK; /* others: refused as unused */
    finch_status st = bind(m, "rope_freqs.weight", 1, half, true, &m->rope_freqs);
    if (st) return st;
    for (size_t i = 0; m->rope_freqs.data && i < half; i++)
        if (!(((const float *)m->rope_freqs.data)[i] > 0))
            return finch_fail(FINCH_ERR_FORMAT, "tensor rope_freqs.weight: element %zu is not positive", i);
    return FINCH_OK;
}

static finch_status bind_weights(finch_model *m) {
    finch_config *c = &m->cfg;
    finch_status st;
    if ((st = bind(m, "token_embd.weight", c->vocab, c->dim, false, &m->tok_embd))) return st;
    m->layers = finch_zalloc(c->n_layer, sizeof(finch_layer));
    if (!m->layers) return FINCH_ERR_NOMEM;
    for (size_t l = 0; l < c->n_layer; l++)
        if ((st = bind_layer(m, l))) return st;
    if ((st = bind(m, "output_norm.weight", 1, c->dim, false, &m->out_norm))) return st;
    if ((st = bind(m, "output.weight", c->vocab, c->dim, true, &m->output))) return st;
    c->tied_output = !m->output.data || m->output.data == m->tok_embd.data;
    if (c->tied_output) m->output = m->tok_embd;
    return bind_rope_freqs(m);
}

/* A tensor of block `blk` at or beyond the model's block count: the file
 * holds more blocks than its metadata says (GGUF blk.N., HF model.layers.N.). */
static finch_status check_block(const finch_model *m, const char *name) {
    unsigned long blk;
    if ((sscanf(name, "blk.%lu.", &blk) == 1 || sscanf(name, "model.layers.%lu.", &blk) == 1) &&
        blk >= m->cfg.n_layer)
        return finch_fail(FINCH_ERR_FORMAT, "tensor %s belongs to block %lu but %s is %zu", name, blk,
                          m->storage->has_gguf ? "block_count" : "num_hidden_layers", m->cfg.n_layer);
    return FINCH_OK;
}

/* Every tensor of the file must have been bound: one the engine does not
 * use (rope_factors_long, a bias, an extra norm, blk.2.* beyond block_count)
 * would change the arithmetic if it were ignored.  Hugging Face aliases of
 * a bound tensor and rotary_emb.inv_freq buffers (recomputed from the
 * config) pass. */
static finch_status check_all_used(const finch_model *m) {
    const finch_model_storage *s = m->storage;
    char name[160];
    for (size_t i = 0; s->used && i < s->n_tensors; i++) {
        if (s->used[i]) continue;
        if (s->has_gguf) {
            gguf_str n = s->gguf.tensors[i].name;
            snprintf(name, sizeof name, "%.*s", (int)(n.len > 96 ? 96 : n.len), n.ptr);
            finch_status st = check_block(m, name);
            return st ? st : finch_fail(FINCH_ERR_UNSUPPORTED, "tensor %s is not used by the %s architecture (not "
                                        "supported)", name, m->cfg.arch);
        }
        const finch_tensor_ref *t = &s->hf.tensors.t[i];
        size_t n = strlen(t->name);
        if (n >= 19 && !strcmp(t->name + n - 19, "rotary_emb.inv_freq")) continue;
        bool alias = false;
        for (size_t j = 0; j < s->n_tensors && !alias; j++) alias = s->used[j] && s->hf.tensors.t[j].data == t->data;
        finch_status st = alias ? FINCH_OK : check_block(m, t->name);
        if (!alias)
            return st ? st : finch_fail(FINCH_ERR_UNSUPPORTED, "tensor %s is not used by the %s architecture (not "
                                        "supported)", t->name, m->cfg.arch);
    }
    return FINCH_OK;
}

/* --------------------------------------------------------- hyperparams */

/* Every check the forward pass relies on, whatever the source. */
finch_status finch_config_validate(const finch_config *c) {
    if (!c->dim || !c->n_layer || !c->n_head || !c->n_kv_head || !c->ffn_dim || !c->vocab || !c->head_dim)
        return finch_fail(FINCH_ERR_FORMAT, "a model dimension is zero");
    if (c->n_head % c->n_kv_head)
        return finch_fail(FINCH_ERR_FORMAT, "head count %zu is not a multiple of the KV head count %zu",
                          c->n_head, c->n_kv_head);
    if (c->dim > (1u << 20) || c->ffn_dim > (1u << 22) || c->n_layer > 4096 || c->n_head > 4096 ||
        c->head_dim > FINCH_KV_MAX_HEAD_DIM || c->vocab > (1u << 24))
        return finch_fail(FINCH_ERR_FORMAT, "model dimensions out of range");
    if (c->rope_dim == 0 || c->rope_dim > c->head_dim || c->rope_dim % 2)
        return finch_fail(FINCH_ERR_FORMAT, "rope dimension %zu invalid for head dim %zu", c->rope_dim, c->head_dim);
    /* GGUF stores the context length as u32 (convert writes it back), and a
     * model that holds no position cannot run. */
    if (c->ctx_len == 0 || c->ctx_len > UINT32_MAX)
        return finch_fail(FINCH_ERR_FORMAT, "context length %zu out of range (1..%u)", c->ctx_len, UINT32_MAX);
    if (!(c->rms_eps > 0 && c->rms_eps < 1) || !(c->rope_base > 1 && isfinite(c->rope_base)))
        return finch_fail(FINCH_ERR_FORMAT, "rms epsilon or rope base out of range");
    return FINCH_OK;
}

/* A key present with the wrong type (a string, a negative count) is an
 * error naming it, never a silent fallback to the default. */
static finch_status wrong_type(const gguf_kv *kv, const char *key, const char *expected) {
    bool negative = (kv->type == GGUF_INT8 || kv->type == GGUF_INT16 || kv->type == GGUF_INT32 ||
                     kv->type == GGUF_INT64) && kv->v.i < 0;
    if (negative)
        return finch_fail(FINCH_ERR_FORMAT, "metadata %s is %lld, expected %s", key, (long long)kv->v.i, expected);
    return finch_fail(FINCH_ERR_FORMAT, "metadata %s has type %s, expected %s", key, gguf_type_name(kv->type),
                      expected);
}

/* An optional number (*out keeps its default when the key is absent). */
static finch_status gguf_number(const gguf_file *g, const char *arch, const char *key, float *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    const gguf_kv *kv = gguf_find(g, k);
    if (kv && !gguf_get_f32(g, k, out)) return wrong_type(kv, k, "a number");
    return FINCH_OK;
}

static finch_status gguf_size(const gguf_file *g, const char *arch, const char *key, bool required,
                              size_t *out) {
    char k[128];
    uint64_t v;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    const gguf_kv *kv = gguf_find(g, k);
    if (!kv) {
        if (required) return finch_fail(FINCH_ERR_FORMAT, "missing metadata %s", k);
        return FINCH_OK;
    }
    if (!gguf_get_u64(g, k, &v)) return wrong_type(kv, k, "a non-negative integer");
    if (v > SIZE_MAX / 2) return finch_fail(FINCH_ERR_FORMAT, "metadata %s out of range", k);
    *out = (size_t)v;
    return FINCH_OK;
}

static finch_status config_from_gguf(const gguf_file *g, finch_config *c) {
    gguf_str arch;
    memset(c, 0, sizeof *c);
    if (!gguf_get_str(g, "general.architecture", &arch)) {
        const gguf_kv *kv = gguf_find(g, "general.architecture");
        return kv ? wrong_type(kv, "general.architecture", "a string")
                  : finch_fail(FINCH_ERR_FORMAT, "missing metadata general.architecture");
    }
    finch_status st = finch_arch_setup(arch.ptr, arch.len, c);
    if (st || (st = finch_arch_check_keys(g, c))) return st;
    c->ctx_len = 2048;
    if ((st = gguf_size(g, c->arch, "embedding_length", true, &c->dim)) ||
        (st = gguf_size(g, c->arch, "block_count", true, &c->n_layer)) ||
        (st = gguf_size(g, c->arch, "feed_forward_length", true, &c->ffn_dim)) ||
        (st = gguf_size(g, c->arch, "attention.head_count", true, &c->n_head)) ||
        (st = gguf_size(g, c->arch, "context_length", false, &c->ctx_len)))
        return st;
    c->n_kv_head = c->n_head;
    if ((st = gguf_size(g, c->arch, "attention.head_count_kv", false, &c->n_kv_head))) return st;
    if (c->n_head == 0) return finch_fail(FINCH_ERR_FORMAT, "head count is zero");
    c->head_dim = c->dim / c->n_head;
    if ((st = gguf_size(g, c->arch, "attention.key_length", false, &c->head_dim))) return st;
    c->rope_dim = c->head_dim;
    if ((st = gguf_size(g, c->arch, "rope.dimension_count", false, &c->rope_dim))) return st;
    c->rms_eps = 1e-5f;
    c->rope_base = 10000.0f;
    if ((st = gguf_number(g, c->arch, "attention.layer_norm_rms_epsilon", &c->rms_eps)) ||
        (st = gguf_number(g, c->arch, "rope.freq_base", &c->rope_base)))
        return st;
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return finch_fail(FINCH_ERR_FORMAT, "missing tensor token_embd.weight");
    c->vocab = (size_t)emb->ne[1];
    return finch_arch_gguf_extras(g, c);
}

/* ---------------------------------------------------------------- load */

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static finch_status open_source(finch_model *m, const char *path) {
    finch_model_storage *s = m->storage;
    finch_status st;
    if (is_directory(path)) {
        if ((st = hf_open(path, &s->hf))) return st;
        s->has_hf = true;
        m->cfg = s->hf.cfg;
        snprintf(m->source_format, sizeof m->source_format, "hf");
        return FINCH_OK;
    }
    if ((st = gguf_open(path, &s->gguf))) return st;
    s->has_gguf = true;
    snprintf(m->source_format, sizeof m->source_format, "gguf");
    return config_from_gguf(&s->gguf, &m->cfg);
}

static finch_status load_tokenizer(finch_model *m) {
    finch_model_storage *s = m->storage;
    if (s->has_gguf) return finch_tokenizer_from_gguf(&s->gguf, &m->tokenizer);
    if (s->has_hf && s->hf.tokenizer_json[0])
        return finch_tokenizer_from_json(s->hf.tokenizer_json,
                                         s->hf.tokenizer_config[0] ? s->hf.tokenizer_config : NULL,
                                         &m->tokenizer);
    return FINCH_OK;
}

static finch_status check_tokenizer(const finch_model *m) {
    if (!m->tokenizer) return FINCH_OK;
    if (finch_tokenizer_vocab(m->tokenizer) > m->cfg.vocab)
        return finch_fail(FINCH_ERR_FORMAT, "tokenizer has %zu tokens but the embedding only %zu rows",
                          finch_tokenizer_vocab(m->tokenizer), m->cfg.vocab);
    return FINCH_OK;
}

static finch_status model_new(finch_model **out) {
    finch_model *m = finch_zalloc(1, sizeof *m);
    if (!m) return FINCH_ERR_NOMEM;
    m->storage = finch_zalloc(1, sizeof *m->storage);
    if (!m->storage) { free(m); return FINCH_ERR_NOMEM; }
    *out = m;
    return FINCH_OK;
}

/* ------------------------------------------------------- packed weights */

/* The matmul weights the loader may pack (kernels_wpack.c says which it
 * wants): the 7 layer matrices and the output.  Returns how many. */
static size_t matmul_weights(finch_model *m, finch_weight **ws, size_t cap) {
    size_t n = 0;
    for (size_t l = 0; l < m->cfg.n_layer; l++) {
        finch_layer *L = &m->layers[l];
        finch_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof lw / sizeof lw[0] && n < cap; i++) ws[n++] = lw[i];
    }
    if (n < cap) ws[n++] = &m->output;
    return n;
}

/* Whether w is wanted packed and its bytes lie in the mapping. */
static bool pack_this(const finch_map *map, const finch_weight *w) {
    size_t bytes = finch_row_bytes(w->type, w->cols) * w->rows;
    const uint8_t *p = w->data, *base = map->data;
    return finch_weight_pack_wanted(w) && p >= base && bytes <= map->size && (size_t)(p - base) <= map->size - bytes;
}

/* The file's pages under [p, p + bytes) released: a private file mapping
 * never written, so they are the page cache's and would be read again
 * from the file if touched (they are not: the weight has moved). */
static void release_mapped(const void *p, size_t bytes) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) / page * page, b = ((uintptr_t)p + bytes) / page * page;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The packed matrices move out of a mapped file into one private buffer on
 * 2 MB pages (finch_alloc_huge), each packed there as it is copied; the
 * other weights stay mapped and shared. */
static finch_status pack_into_copy(finch_model *m, finch_weight **ws, size_t n) {
    finch_model_storage *s = m->storage;
    size_t total = 0, at = 0;
    for (size_t i = 0; i < n; i++) total += (finch_row_bytes(ws[i]->type, ws[i]->cols) * ws[i]->rows + 63) / 64 * 64;
    if (!total) return FINCH_OK;
    if (!(s->packed = finch_alloc_huge(total, &s->packed_mapped)))
        return FINCH_OK; /* no room for the copy: the weights stay mapped, unpacked (the same results) */
    for (size_t i = 0; i < n; i++) {
        size_t bytes = finch_row_bytes(ws[i]->type, ws[i]->cols) * ws[i]->rows;
        const void *from = ws[i]->data;
        memcpy(s->packed + at, from, bytes);
        finch_status st = finch_weight_pack(NULL, ws[i], s->packed + at);
        if (st) return st;
        release_mapped(from, bytes);
        at += (bytes + 63) / 64 * 64;
    }
    mprotect(s->packed, s->packed_mapped, PROT_READ);
    return FINCH_OK;
}

/* The file read into private memory: the matrices packed where they are,
 * the buffer writable for that long (all of it at once, so that its 2 MB
 * pages are not split at weight boundaries). */
static finch_status pack_in_place(finch_model *m, finch_weight **ws, size_t n) {
    const finch_map *map = &m->storage->gguf.map;
    if (mprotect((void *)map->data, map->mapped, PROT_READ | PROT_WRITE)) return FINCH_OK; /* stays unpacked */
    finch_status st = FINCH_OK;
    for (size_t i = 0; i < n && !st; i++) st = finch_weight_pack(NULL, ws[i], (void *)ws[i]->data);
    mprotect((void *)map->data, map->mapped, PROT_READ);
    return st;
}

/* The quantized matrices that the kernels in use have a packed decode
 * kernel for are packed (16 rows interleaved: kernels_wpack.c), where
 * finch_set_weight_packing and the load mode say: by default a file read
 * into private memory (--load read) in place, and a mapped file under
 * --load auto that fits (finch_load_copies) into a private copy; under
 * --load mmap, and for files under 64 MB, the weights stay as stored
 * (FINCH_WPACK_ON: into a copy).  A tied output is the embedding's bytes,
 * which are then packed too. */
static finch_status pack_weights(finch_model *m) {
    const finch_map *map = &m->storage->gguf.map;
    finch_weight_packing mode = finch_get_weight_packing();
    if (!m->storage->has_gguf || !map->data || mode == FINCH_WPACK_OFF) return FINCH_OK;
    bool in_place = map->private_copy, copy = !in_place && (mode == FINCH_WPACK_ON || finch_load_copies(map->size));
    if (!in_place && !copy) return FINCH_OK;
    size_t cap = 7 * m->cfg.n_layer + 1, n = 0; /* n_layer <= 4096: checked */
    finch_weight **ws = finch_alloc(cap, sizeof *ws);
    if (!ws) return FINCH_ERR_NOMEM;
    size_t n_all = matmul_weights(m, ws, cap);
    for (size_t i = 0; i < n_all; i++)
        if (pack_this(map, ws[i])) ws[n++] = ws[i];
    finch_status st = in_place ? pack_in_place(m, ws, n) : pack_into_copy(m, ws, n);
    free(ws);
    if (!st && m->cfg.tied_output) m->tok_embd = m->output; /* the same bytes, now packed */
    return st;
}

static finch_status finish_load(finch_model *m) {
    finch_status st;
    finch_model_storage *s = m->storage;
    s->n_tensors = s->has_gguf ? s->gguf.n_tensors : s->has_hf ? s->hf.tensors.n : 0;
    if (s->n_tensors && !(s->used = finch_zalloc(s->n_tensors, sizeof(bool)))) return FINCH_ERR_NOMEM;
    if ((st = finch_config_validate(&m->cfg)) || (st = bind_weights(m)) || (st = check_all_used(m)) ||
        (st = pack_weights(m)) ||
        (st = load_tokenizer(m)) || (st = check_tokenizer(m)))
        return st;
    return FINCH_OK;
}

finch_status finch_model_load(const char *path, finch_model **out) {
    *out = NULL;
    finch_model *m;
    finch_status st = model_new(&m);
    if (st) return st;
    if ((st = open_source(m, path)) || (st = finish_load(m))) {
        finch_fail_prefix(st, "%s", path);
        finch_model_free(m);
        return st;
    }
    *out = m;
    return FINCH_OK;
}

finch_status finch_model_load_llama2c(const char *path, const char *tokenizer_path, finch_model **out) {
    *out = NULL;
    finch_model *m;
    finch_status st = model_new(&m);
    if (st) return st;
    if ((st = llama2c_open(path, &m->storage->l2c)) == FINCH_OK) {
        m->storage->has_l2c = true;
        m->cfg = m->storage->l2c.cfg;
        snprintf(m->source_format, sizeof m->source_format, "llama2c");
        st = finish_load(m);
    }
    if (st == FINCH_OK && tokenizer_path)
        st = finch_tokenizer_from_llama2c(tokenizer_path, m->cfg.vocab, &m->tokenizer);
    if (st) {
        finch_fail_prefix(st, "%s", path);
        finch_model_free(m);
        return st;
    }
    *out = m;
    return FINCH_OK;
}

void finch_model_free(finch_model *m) {
    if (!m) return;
    finch_model_storage *s = m->storage;
    if (s) {
        if (s->has_gguf) gguf_close(&s->gguf);
        if (s->has_hf) hf_close(&s->hf);
        if (s->has_l2c) llama2c_close(&s->l2c);
        for (size_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
        free(s->owned);
        free(s->used);
        finch_free_huge(s->packed, s->packed_mapped);
        free(s);
    }
    if (m->tokenizer) finch_tokenizer_free(m->tokenizer);
    free(m->layers);
    free(m);
}

/* ------------------------------------------------------ HF name mapping */

bool hf_name_from_gguf(const char *gguf_name, char *out, size_t cap) {
    finch_config llama = { .arch = "llama" };
    return finch_arch_hf_name(&llama, gguf_name, out, cap);
}

/* ------------------------------------------------------------ describe */

static void describe_types(const finch_model *m, FILE *f) {
    size_t counts[64] = { 0 };
    for (size_t l = 0; l < m->cfg.n_layer; l++) {
        const finch_layer *L = &m->layers[l];
        const finch_weight *ws[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t i = 0; i < 7; i++) counts[ws[i]->type & 63]++;
    }
    fprintf(f, "tensor types: embedding %s, output %s, layer matrices", finch_dtype_name(m->tok_embd.type),
            finch_dtype_name(m->output.type));
    for (size_t t = 0; t < FINCH_DTYPE_SLOTS; t++)
        if (counts[t]) fprintf(f, " %s x%zu", finch_dtype_name((finch_dtype)t), counts[t]);
    fprintf(f, "\n");
}

/* How many of the matmul weights are packed for decode (kernels_wpack.c),
 * or would be where the load mode lets the loader write them. */
static void describe_packing(const finch_model *m, FILE *f) {
    size_t n = 1, packable = finch_weight_pack_wanted(&m->output) || m->output.packed, packed = m->output.packed;
    for (size_t l = 0; l < m->cfg.n_layer; l++) {
        const finch_layer *L = &m->layers[l];
        const finch_weight *ws[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t i = 0; i < 7; i++, n++) {
            packable += ws[i]->packed || finch_weight_pack_wanted(ws[i]);
            packed += ws[i]->packed;
        }
    }
    fprintf(f, "packed for decode: %zu of %zu matrices %s\n", packed ? packed : packable, n,
            packed ? "(at this load)" : "(under --load auto or read, for files of 64 MB and more, with this CPU's kernels)");
}

static size_t weight_bytes(const finch_weight *w) {
    return w->data ? finch_row_bytes(w->type, w->cols) * w->rows : 0;
}

size_t finch_model_weight_bytes(const finch_model *m) {
    const finch_config *c = &m->cfg;
    size_t bytes = weight_bytes(&m->tok_embd) + weight_bytes(&m->out_norm);
    if (!c->tied_output) bytes += weight_bytes(&m->output);
    for (size_t l = 0; m->layers && l < c->n_layer; l++) {
        const finch_layer *L = &m->layers[l];
        const finch_weight *ws[] = { &L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk, &L->bv,
                                     &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down,
                                     &L->q_norm, &L->k_norm, &L->post_attn_norm, &L->post_ffn_norm };
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) bytes += weight_bytes(ws[i]);
    }
    return bytes;
}

void finch_model_describe(const finch_model *m, FILE *f) {
    const finch_config *c = &m->cfg;
    size_t bytes = finch_model_weight_bytes(m);
    fprintf(f, "format: %s\narchitecture: %s\n", m->source_format, c->arch);
    fprintf(f, "dim %zu, layers %zu, heads %zu, kv heads %zu (group %zu), head dim %zu, ffn %zu\n",
            c->dim, c->n_layer, c->n_head, c->n_kv_head, c->n_head / c->n_kv_head, c->head_dim, c->ffn_dim);
    fprintf(f, "vocab %zu, context length %zu, rms eps %g, rope base %g, rope dim %zu, rope pairing %s\n",
            c->vocab, c->ctx_len, (double)c->rms_eps, (double)c->rope_base, c->rope_dim,
            c->rope_pairing == FINCH_ROPE_ADJACENT ? "adjacent (2i, 2i+1)" : "half (i, i+d/2)");
    fprintf(f, "output: %s%s\n", c->tied_output ? "tied to the token embedding" : "separate matrix",
            c->has_qkv_bias ? ", q/k/v biases" : "");
    finch_arch_describe(c, f);
    if (m->rope_freqs.data) fprintf(f, "rope frequency factors: %zu (Llama 3)\n", m->rope_freqs.cols);
    describe_types(m, f);
    describe_packing(m, f);
    fprintf(f, "weights: %.2f MB\n", (double)bytes / 1e6);
    if (m->tokenizer)
        fprintf(f, "tokenizer: %s, %zu tokens, bos %d, eos %d, add bos %s\n", finch_tokenizer_kind(m->tokenizer),
                finch_tokenizer_vocab(m->tokenizer), finch_tokenizer_bos(m->tokenizer),
                finch_tokenizer_eos(m->tokenizer), finch_tokenizer_add_bos(m->tokenizer) ? "yes" : "no");
    else
        fprintf(f, "tokenizer: none\n");
}
