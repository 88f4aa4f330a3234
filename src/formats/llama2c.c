/* llama2c.c - llama2.c legacy checkpoints: a 28-byte header of seven int32
 * and then plain f32 arrays in a fixed order.  Nothing in the file says
 * where an array starts, so the header alone fixes the layout: the sizes it
 * implies must add up to exactly the file size before anything is used. */
#include "llama2c.h"

#include <stdio.h>
#include <string.h>

#define HEADER_BYTES 28
#define MAGIC_AK42 0x616b3432u /* newer llama2.c export formats start with "ak42" */

/* One array of the file: `count` consecutive matrices of ne0 x ne1 floats
 * (count = 1 or n_layer).  name == NULL: skipped (the RoPE tables). */
typedef struct {
    const char *name; /* printf format; per-layer names take the layer */
    size_t count;
    uint32_t n_dims;
    size_t ne0, ne1;
} section;

static finch_status read_header(const uint8_t *data, size_t size, int32_t h[7]) {
    if (size < HEADER_BYTES)
        return finch_fail(FINCH_ERR_FORMAT, "llama2.c checkpoint of %zu bytes is shorter than its header", size);
    for (int i = 0; i < 7; i++) {
        uint32_t v = 0;
        for (int b = 0; b < 4; b++) v |= (uint32_t)data[4 * i + b] << (8 * b);
        if (i == 0 && v == MAGIC_AK42)
            return finch_fail(FINCH_ERR_UNSUPPORTED, "llama2.c export version 1+ (\"ak42\") is not supported, only the legacy v0 layout");
        h[i] = (int32_t)v;
    }
    return FINCH_OK;
}

static finch_status fill_config(const int32_t h[7], finch_config *c) {
    const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++)
        if (h[i] <= 0 && !(i == 5 && h[i] < 0))
            return finch_fail(FINCH_ERR_FORMAT, "llama2.c header %s = %d", names[i], (int)h[i]);
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "llama");
    c->dim = (size_t)h[0];
    c->ffn_dim = (size_t)h[1];
    c->n_layer = (size_t)h[2];
    c->n_head = (size_t)h[3];
    c->n_kv_head = (size_t)h[4];
    c->vocab = h[5] < 0 ? (size_t)(-(int64_t)h[5]) : (size_t)h[5];
    c->ctx_len = (size_t)h[6];
    c->tied_output = h[5] > 0;
    if (c->dim % c->n_head != 0 || c->n_head % c->n_kv_head != 0 || (c->dim / c->n_head) % 2 != 0)
        return finch_fail(FINCH_ERR_FORMAT, "llama2.c header: dim %zu, %zu heads, %zu kv heads do not fit "
                          "(need dim %% heads == 0, heads %% kv_heads == 0, even head size)",
                          c->dim, c->n_head, c->n_kv_head);
    c->head_dim = c->dim / c->n_head;
    c->rope_dim = c->head_dim;
    c->rms_eps = 1e-5f;
    c->rope_base = 10000.0f;
    c->rope_pairing = FINCH_ROPE_ADJACENT; /* run.c rotates pairs (2i, 2i+1) */
    return FINCH_OK;
}

/* The file's arrays in order; returns how many apply. */
static size_t layout(const finch_config *c, section s[14]) {
    size_t L = c->n_layer, d = c->dim, f = c->ffn_dim, kv = c->n_kv_head * c->head_dim;
    size_t n = 0;
    s[n++] = (section){"token_embd.weight", 1, 2, d, c->vocab};
    s[n++] = (section){"blk.%zu.attn_norm.weight", L, 1, d, 1};
    s[n++] = (section){"blk.%zu.attn_q.weight", L, 2, d, d};
    s[n++] = (section){"blk.%zu.attn_k.weight", L, 2, d, kv};
    s[n++] = (section){"blk.%zu.attn_v.weight", L, 2, d, kv};
    s[n++] = (section){"blk.%zu.attn_output.weight", L, 2, d, d};
    s[n++] = (section){"blk.%zu.ffn_norm.weight", L, 1, d, 1};
    s[n++] = (section){"blk.%zu.ffn_gate.weight", L, 2, d, f};
    s[n++] = (section){"blk.%zu.ffn_down.weight", L, 2, f, d};
    s[n++] = (section){"blk.%zu.ffn_up.weight", L, 2, d, f};
    s[n++] = (section){"output_norm.weight", 1, 1, d, 1};
    s[n++] = (section){NULL, 1, 2, c->head_dim / 2, c->ctx_len}; /* freq_cis_real */
    s[n++] = (section){NULL, 1, 2, c->head_dim / 2, c->ctx_len}; /* freq_cis_imag */
    if (!c->tied_output) s[n++] = (section){"output.weight", 1, 2, d, c->vocab};
    return n;
}

/* Bytes of one matrix of a section, and of the whole section. */
static bool section_bytes(const section *s, size_t *one, size_t *all) {
    return finch_mul_ok(s->ne0, s->ne1, one) && finch_mul_ok(*one, sizeof(float), one) &&
           finch_mul_ok(*one, s->count, all);
}

static finch_status check_size(const section *s, size_t n, size_t size) {
    size_t total = HEADER_BYTES, one, all;
    for (size_t i = 0; i < n; i++)
        if (!section_bytes(&s[i], &one, &all) || !finch_add_ok(total, all, &total))
            return finch_fail(FINCH_ERR_FORMAT, "llama2.c header implies a size that overflows");
    if (total != size)
        return finch_fail(FINCH_ERR_FORMAT, "llama2.c checkpoint is %zu bytes but its header implies %zu", size, total);
    return FINCH_OK;
}

/* Called once the sizes add up, so no offset below can leave the file. */
static finch_status add_tensors(const section *s, size_t n, const uint8_t *data, finch_tensor_list *l) {
    size_t off = HEADER_BYTES, one = 0, all = 0;
    char name[96];
    for (size_t i = 0; i < n; i++) {
        section_bytes(&s[i], &one, &all);
        for (size_t k = 0; k < s[i].count && s[i].name; k++) {
            snprintf(name, sizeof name, s[i].name, k);
            finch_tensor_ref t = {.name = name, .type = FINCH_F32, .n_dims = s[i].n_dims,
                                  .ne = {s[i].ne0, s[i].ne1, 1, 1}, .data = data + off + k * one, .nbytes = one};
            finch_status st = finch_tensor_list_push(l, &t);
            if (st != FINCH_OK) return st;
        }
        off += all;
    }
    return finch_tensor_list_finish(l);
}

finch_status llama2c_parse(const uint8_t *data, size_t size, llama2c_file *out) {
    int32_t h[7];
    section s[14];
    memset(out, 0, sizeof *out);
    if ((uintptr_t)data % sizeof(float) != 0)
        return finch_fail(FINCH_ERR_ARG, "llama2.c buffer is not 4-byte aligned");
    finch_status st = read_header(data, size, h);
    if (st == FINCH_OK) st = fill_config(h, &out->cfg);
    size_t n = st == FINCH_OK ? layout(&out->cfg, s) : 0;
    if (st == FINCH_OK) st = check_size(s, n, size);
    if (st == FINCH_OK) st = add_tensors(s, n, data, &out->tensors);
    if (st != FINCH_OK) llama2c_close(out);
    return st;
}

finch_status llama2c_open(const char *path, llama2c_file *out) {
    finch_map m;
    memset(out, 0, sizeof *out);
    finch_status st = finch_map_file(path, &m);
    if (st != FINCH_OK) return st;
    if ((st = llama2c_parse(m.data, m.size, out)) != FINCH_OK) {
        finch_unmap(&m);
        return finch_fail_prefix(st, "%s", path);
    }
    out->map = m;
    return FINCH_OK;
}

void llama2c_close(llama2c_file *f) {
    finch_tensor_list_free(&f->tensors);
    finch_unmap(&f->map);
    memset(f, 0, sizeof *f);
}

const finch_tensor_ref *llama2c_find(const llama2c_file *f, const char *name) {
    return finch_tensor_list_find(&f->tensors, name);
}
