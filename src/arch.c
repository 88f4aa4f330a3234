/* arch.c - model families: switches, GGUF keys, Hugging Face names.
 *
 * The GGUF side follows what llama.cpp's converter writes and its loader
 * reads (keys "<arch>.*"); every key under the architecture's prefix must be
 * one this engine implements, so a file that asks for arithmetic finch does
 * not do is refused, naming the key, instead of running as if it were
 * absent. */
#include "arch.h"

#include <math.h>
#include <string.h>

enum { A_LLAMA = 1, A_QWEN2 = 2, A_QWEN3 = 4, A_GEMMA2 = 8, A_GEMMA3 = 16, A_PHI3 = 32, A_ALL = 63 };

static const struct {
    const char *name;
    int id;
    finch_rope_pairing pairing;
    int qkv_bias, qk_norm, post_norms, gemma;
} families[] = {
    { "llama", A_LLAMA, FINCH_ROPE_ADJACENT, 0, 0, 0, 0 },
    { "qwen2", A_QWEN2, FINCH_ROPE_HALF, 1, 0, 0, 0 },
    { "qwen3", A_QWEN3, FINCH_ROPE_HALF, 0, 1, 0, 0 },
    { "gemma2", A_GEMMA2, FINCH_ROPE_HALF, 0, 0, 1, 1 },
    { "gemma3", A_GEMMA3, FINCH_ROPE_HALF, 0, 1, 1, 1 },
    { "phi3", A_PHI3, FINCH_ROPE_HALF, 0, 0, 0, 0 },
};
#define N_FAMILIES (sizeof families / sizeof families[0])

static int family_id(const finch_config *c) {
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (!strcmp(c->arch, families[i].name)) return families[i].id;
    return 0;
}

finch_status finch_arch_setup(const char *arch, size_t len, finch_config *c) {
    for (size_t i = 0; i < N_FAMILIES; i++) {
        if (strlen(families[i].name) != len || memcmp(arch, families[i].name, len)) continue;
        snprintf(c->arch, sizeof c->arch, "%s", families[i].name);
        c->rope_pairing = families[i].pairing;
        c->has_qkv_bias = families[i].qkv_bias;
        c->qk_norm = families[i].qk_norm;
        c->post_norms = families[i].post_norms;
        if (families[i].gemma) c->ffn_act = FINCH_ACT_GELU_TANH;
        return FINCH_OK;
    }
    return finch_fail(FINCH_ERR_UNSUPPORTED,
                      "architecture '%.*s' is not supported (llama, qwen2, qwen3, gemma2, gemma3, phi3)",
                      (int)(len > 32 ? 32 : len), arch);
}

int finch_arch_fused(const finch_config *c) { return family_id(c) == A_PHI3; }
int finch_arch_gemma(const finch_config *c) { return (family_id(c) & (A_GEMMA2 | A_GEMMA3)) != 0; }

/* ------------------------------------------------------------- GGUF keys */

/* The keys under "<arch>." this engine reads, and the families it reads
 * them for.  rope.scaling.finetuned is a note about training only. */
static const struct { const char *key; int families; } known_keys[] = {
    { "context_length", A_ALL }, { "embedding_length", A_ALL }, { "block_count", A_ALL },
    { "feed_forward_length", A_ALL }, { "vocab_size", A_ALL },
    { "attention.head_count", A_ALL }, { "attention.head_count_kv", A_ALL },
    { "attention.layer_norm_rms_epsilon", A_ALL }, { "attention.key_length", A_ALL },
    { "attention.value_length", A_ALL }, { "rope.dimension_count", A_ALL }, { "rope.freq_base", A_ALL },
    { "rope.scaling.type", A_ALL }, { "rope.scaling.factor", A_ALL }, { "rope.scale_linear", A_ALL },
    { "rope.scaling.original_context_length", A_ALL }, { "rope.scaling.attn_factor", A_ALL },
    { "rope.scaling.yarn_beta_fast", A_ALL }, { "rope.scaling.yarn_beta_slow", A_ALL },
    { "rope.scaling.yarn_attn_factor", A_ALL }, { "rope.scaling.yarn_ext_factor", A_ALL },
    { "rope.scaling.finetuned", A_ALL }, { "attention.sliding_window", A_ALL },
    { "attention.sliding_window_pattern", A_GEMMA2 | A_GEMMA3 },
    { "rope.freq_base_swa", A_GEMMA2 | A_GEMMA3 },
    { "attn_logit_softcapping", A_GEMMA2 }, { "final_logit_softcapping", A_GEMMA2 | A_GEMMA3 },
};

finch_status finch_arch_check_keys(const gguf_file *g, const finch_config *c) {
    size_t plen = strlen(c->arch);
    int id = family_id(c);
    for (size_t i = 0; i < g->n_kv; i++) {
        gguf_str k = g->kv[i].key;
        if (k.len <= plen + 1 || memcmp(k.ptr, c->arch, plen) || k.ptr[plen] != '.') continue;
        const char *rest = k.ptr + plen + 1;
        size_t rlen = k.len - plen - 1, j;
        for (j = 0; j < sizeof known_keys / sizeof known_keys[0]; j++)
            if ((known_keys[j].families & id) && strlen(known_keys[j].key) == rlen &&
                !memcmp(known_keys[j].key, rest, rlen))
                break;
        if (j == sizeof known_keys / sizeof known_keys[0])
            return finch_fail(FINCH_ERR_UNSUPPORTED, "GGUF key %.*s is not supported by this engine",
                              (int)(k.len > 96 ? 96 : k.len), k.ptr);
        if (g->kv[i].type == GGUF_ARRAY)
            return finch_fail(FINCH_ERR_UNSUPPORTED, "GGUF key %.*s: per-layer arrays are not supported",
                              (int)(k.len > 96 ? 96 : k.len), k.ptr);
        /* a number stored as a string would be skipped by the readers */
        if ((g->kv[i].type == GGUF_STRING) != (rlen == 17 && !memcmp(rest, "rope.scaling.type", 17)))
            return finch_fail(FINCH_ERR_FORMAT, "GGUF key %.*s has type %s", (int)(k.len > 96 ? 96 : k.len),
                              k.ptr, gguf_type_name(g->kv[i].type));
    }
    return FINCH_OK;
}

static bool key_f32(const gguf_file *g, const finch_config *c, const char *key, float *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", c->arch, key);
    return gguf_get_f32(g, k, out);
}

static bool key_u64(const gguf_file *g, const finch_config *c, const char *key, uint64_t *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", c->arch, key);
    return gguf_get_u64(g, k, out);
}

/* YaRN's parameters: llama.cpp's defaults (beta 32 / 1, the trained
 * context); the magnitude is Hugging Face's attention_factor when the file
 * carries it, else 0.1 ln(factor) + 1, times rope.scaling.attn_factor. */
static finch_status yarn_params(const gguf_file *g, finch_config *c) {
    uint64_t orig = c->ctx_len;
    float attn = 1.0f, mscale;
    key_u64(g, c, "rope.scaling.original_context_length", &orig);
    if (orig == 0 || orig > UINT32_MAX) return finch_fail(FINCH_ERR_FORMAT, "%s.rope.scaling.original_context_length out of range", c->arch);
    c->rope_orig_ctx = (size_t)orig;
    c->yarn_beta_fast = 32.0f;
    c->yarn_beta_slow = 1.0f;
    key_f32(g, c, "rope.scaling.yarn_beta_fast", &c->yarn_beta_fast);
    key_f32(g, c, "rope.scaling.yarn_beta_slow", &c->yarn_beta_slow);
    if (!(c->yarn_beta_fast > 0 && c->yarn_beta_slow > 0 && isfinite(c->yarn_beta_fast) && isfinite(c->yarn_beta_slow)))
        return finch_fail(FINCH_ERR_FORMAT, "%s: YaRN beta values out of range", c->arch);
    mscale = 1.0f + 0.1f * logf(c->rope_factor);
    key_f32(g, c, "rope.scaling.yarn_attn_factor", &mscale);
    key_f32(g, c, "rope.scaling.attn_factor", &attn);
    c->rope_mscale = mscale * attn;
    if (!(c->rope_mscale > 0 && isfinite(c->rope_mscale)))
        return finch_fail(FINCH_ERR_FORMAT, "%s: YaRN attention factor out of range", c->arch);
    return FINCH_OK;
}

/* rope.scaling.type: absent means linear when a factor is given, as in
 * llama.cpp; "none" ignores the factor. */
static finch_status rope_scaling(const gguf_file *g, finch_config *c) {
    char k[128];
    gguf_str type = { "linear", 6 };
    float factor = 0.0f, ext = 1.0f;
    if (key_f32(g, c, "rope.scaling.yarn_ext_factor", &ext) && ext != 1.0f)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "%s.rope.scaling.yarn_ext_factor %g is not supported (only 1)",
                          c->arch, (double)ext);
    snprintf(k, sizeof k, "%s.rope.scaling.type", c->arch);
    if (gguf_find(g, k) && !gguf_get_str(g, k, &type))
        return finch_fail(FINCH_ERR_FORMAT, "GGUF key %s is not a string", k);
    if (!key_f32(g, c, "rope.scaling.factor", &factor)) key_f32(g, c, "rope.scale_linear", &factor);
    if (gguf_str_eq(type, "none") || factor == 0.0f || factor == 1.0f) {
        if (!gguf_str_eq(type, "none") && !gguf_str_eq(type, "linear") && !gguf_str_eq(type, "yarn"))
            goto unsupported;
        return FINCH_OK;
    }
    if (!(factor > 1.0f && isfinite(factor)))
        return finch_fail(FINCH_ERR_UNSUPPORTED, "%s.rope.scaling.factor %g is not supported (must be > 1)", c->arch, (double)factor);
    c->rope_factor = factor;
    if (gguf_str_eq(type, "linear")) { c->rope_scaling = FINCH_ROPE_SCALING_LINEAR; return FINCH_OK; }
    if (gguf_str_eq(type, "yarn")) { c->rope_scaling = FINCH_ROPE_SCALING_YARN; return yarn_params(g, c); }
unsupported:
    return finch_fail(FINCH_ERR_UNSUPPORTED, "RoPE scaling '%.*s' (%s) is not supported (linear, yarn, llama3 factors)",
                      (int)(type.len > 32 ? 32 : type.len), type.ptr, k);
}

/* Sliding window, its layer pattern and local RoPE base, soft-caps and the
 * query scale, as llama.cpp's gemma2 / gemma3 loaders read them. */
static finch_status gemma_and_window(const gguf_file *g, finch_config *c) {
    int id = family_id(c);
    uint64_t window = id == A_GEMMA2 ? 4096 : 0, period = id == A_GEMMA2 ? 2 : id == A_GEMMA3 ? 6 : 0;
    key_u64(g, c, "attention.sliding_window", &window);
    key_u64(g, c, "attention.sliding_window_pattern", &period);
    if (window > UINT32_MAX || period > 4096 || period == 1)
        return finch_fail(FINCH_ERR_FORMAT, "%s: sliding window %llu or pattern %llu out of range", c->arch,
                          (unsigned long long)window, (unsigned long long)period);
    c->sliding_window = (size_t)window;
    c->swa_period = (size_t)period;
    if (id == A_GEMMA3 && window) c->rope_base_local = 10000.0f;
    key_f32(g, c, "rope.freq_base_swa", &c->rope_base_local);
    if (c->rope_base_local != 0 && !(c->rope_base_local > 1 && isfinite(c->rope_base_local)))
        return finch_fail(FINCH_ERR_FORMAT, "%s.rope.freq_base_swa out of range", c->arch);
    key_f32(g, c, "attn_logit_softcapping", &c->attn_softcap);
    key_f32(g, c, "final_logit_softcapping", &c->final_softcap);
    if (!(c->attn_softcap >= 0 && c->final_softcap >= 0 && isfinite(c->attn_softcap) && isfinite(c->final_softcap)))
        return finch_fail(FINCH_ERR_FORMAT, "%s: soft-capping values out of range", c->arch);
    if (finch_arch_gemma(c)) {
        c->embd_scale = sqrtf((float)c->dim);
        /* GGUF carries no query_pre_attn_scalar: llama.cpp takes dim/heads
         * for the 27B models (46 and 62 layers), head_dim otherwise. */
        if ((id == A_GEMMA2 && c->n_layer == 46) || (id == A_GEMMA3 && c->n_layer == 62))
            c->attn_scale = 1.0f / sqrtf((float)(c->dim / c->n_head));
    }
    return FINCH_OK;
}

finch_status finch_arch_gguf_extras(const gguf_file *g, finch_config *c) {
    finch_status st;
    uint64_t vlen;
    if ((st = finch_arch_check_keys(g, c))) return st;
    if (key_u64(g, c, "attention.value_length", &vlen) && vlen != c->head_dim)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "%s.attention.value_length %llu differs from the key length %zu",
                          c->arch, (unsigned long long)vlen, c->head_dim);
    if ((st = rope_scaling(g, c))) return st;
    return gemma_and_window(g, c);
}

/* -------------------------------------------------------- HF tensor names */

static const char *const hf_whole[][2] = {
    { "token_embd.weight", "model.embed_tokens.weight" },
    { "output_norm.weight", "model.norm.weight" },
    { "output.weight", "lm_head.weight" },
};

/* Per-layer names; `families` 0 means every family not listed before it
 * with the same GGUF name (the table is searched in order). */
static const struct { const char *gguf, *hf; int families; } hf_layer[] = {
    { "attn_norm.weight", "input_layernorm.weight", 0 },
    { "attn_q.weight", "self_attn.q_proj.weight", 0 },   { "attn_q.bias", "self_attn.q_proj.bias", 0 },
    { "attn_k.weight", "self_attn.k_proj.weight", 0 },   { "attn_k.bias", "self_attn.k_proj.bias", 0 },
    { "attn_v.weight", "self_attn.v_proj.weight", 0 },   { "attn_v.bias", "self_attn.v_proj.bias", 0 },
    { "attn_qkv.weight", "self_attn.qkv_proj.weight", A_PHI3 },
    { "attn_q_norm.weight", "self_attn.q_norm.weight", 0 },
    { "attn_k_norm.weight", "self_attn.k_norm.weight", 0 },
    { "attn_output.weight", "self_attn.o_proj.weight", 0 },
    { "ffn_norm.weight", "pre_feedforward_layernorm.weight", A_GEMMA2 | A_GEMMA3 },
    { "ffn_norm.weight", "post_attention_layernorm.weight", 0 },
    { "post_attention_norm.weight", "post_attention_layernorm.weight", A_GEMMA2 | A_GEMMA3 },
    { "post_ffw_norm.weight", "post_feedforward_layernorm.weight", A_GEMMA2 | A_GEMMA3 },
    { "ffn_gate.weight", "mlp.gate_proj.weight", 0 },
    { "ffn_up.weight", "mlp.gate_up_proj.weight", A_PHI3 },
    { "ffn_up.weight", "mlp.up_proj.weight", 0 },
    { "ffn_down.weight", "mlp.down_proj.weight", 0 },
};

bool finch_arch_hf_name(const finch_config *c, const char *gguf_name, char *out, size_t cap) {
    int id = family_id(c);
    for (size_t i = 0; i < sizeof hf_whole / sizeof hf_whole[0]; i++)
        if (!strcmp(gguf_name, hf_whole[i][0])) return snprintf(out, cap, "%s", hf_whole[i][1]) < (int)cap;
    unsigned long layer;
    int used = 0;
    if (sscanf(gguf_name, "blk.%lu.%n", &layer, &used) != 1 || used == 0) return false;
    for (size_t i = 0; i < sizeof hf_layer / sizeof hf_layer[0]; i++) {
        if (strcmp(gguf_name + used, hf_layer[i].gguf)) continue;
        if (hf_layer[i].families && !(hf_layer[i].families & id)) continue;
        return snprintf(out, cap, "model.layers.%lu.%s", layer, hf_layer[i].hf) < (int)cap;
    }
    return false;
}

/* --------------------------------------------------------------- describe */

void finch_arch_describe(const finch_config *c, FILE *f) {
    static const char *const scaling[] = { "none", "linear", "yarn", "llama3" };
    fprintf(f, "rope scaling: %s", scaling[c->rope_scaling & 3]);
    if (c->rope_scaling != FINCH_ROPE_SCALING_NONE) fprintf(f, ", factor %g", (double)c->rope_factor);
    if (c->rope_scaling == FINCH_ROPE_SCALING_YARN)
        fprintf(f, ", original context %zu, beta %g / %g, magnitude %g", c->rope_orig_ctx,
                (double)c->yarn_beta_fast, (double)c->yarn_beta_slow, (double)c->rope_mscale);
    fprintf(f, "\n");
    if (c->sliding_window) {
        size_t n = 0;
        fprintf(f, "sliding window: %zu positions, layers", c->sliding_window);
        for (size_t l = 0; l < c->n_layer; l++)
            if (finch_layer_is_local(c, l) && n++ < 12) fprintf(f, "%s%zu", n > 1 ? "," : " ", l);
        fprintf(f, "%s; local rope base %g\n", n > 12 ? ",..." : "",
                (double)(c->rope_base_local > 0 ? c->rope_base_local : c->rope_base));
    }
    if (c->qk_norm || c->post_norms || c->ffn_act || c->embd_scale > 0 || c->attn_scale > 0 ||
        c->attn_softcap > 0 || c->final_softcap > 0)
        fprintf(f, "switches:%s%s%s embedding scale %g, attention scale %g, soft-caps %g / %g\n",
                c->qk_norm ? " q/k norm," : "", c->post_norms ? " post norms," : "",
                c->ffn_act == FINCH_ACT_GELU_TANH ? " GELU-tanh MLP," : "",
                (double)(c->embd_scale > 0 ? c->embd_scale : 1.0f),
                (double)(c->attn_scale > 0 ? c->attn_scale : 1.0f / sqrtf((float)c->head_dim)),
                (double)c->attn_softcap, (double)c->final_softcap);
}
