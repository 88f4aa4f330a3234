/* hf_arch.c - family-specific config.json fields (see hf_arch.h).  The
 * formulas follow transformers' modeling_rope_utils and each family's
 * modeling file; a field that changes the arithmetic and is not
 * implemented is refused, naming it. */
#include "hf_arch.h"
#include "arch.h"
#include "util.h"

#include <math.h>
#include <string.h>

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return j && !cJSON_IsNull(j) ? j : NULL;
}

/* A positive finite number field of `o` (named `what` in errors); absent
 * leaves *out unchanged. */
static finch_status num_field(const cJSON *o, const char *key, const char *what, float *out) {
    const cJSON *j = item(o, key);
    if (!j) return FINCH_OK;
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0) || !isfinite((float)j->valuedouble))
        return finch_fail(FINCH_ERR_FORMAT, "config.json %s%s is not a positive number", what, key);
    *out = (float)j->valuedouble;
    return FINCH_OK;
}

static finch_status size_field(const cJSON *o, const char *key, const char *what, size_t *out) {
    float v = 0;
    finch_status st = num_field(o, key, what, &v);
    if (st || v == 0) return st;
    if (v != floorf(v) || v > 4294967295.0f)
        return finch_fail(FINCH_ERR_FORMAT, "config.json %s%s is not a positive integer", what, key);
    *out = (size_t)v;
    return FINCH_OK;
}

/* Every field of the scaling object must be one the type uses. */
static finch_status check_scaling_fields(const cJSON *rs, const char *const *allowed) {
    for (const cJSON *f = rs->child; f; f = f->next) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], f->string)) i++;
        if (!allowed[i])
            return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_scaling.%.64s is not supported", f->string);
    }
    return FINCH_OK;
}

static finch_status yarn_fields(const cJSON *rs, finch_config *c) {
    static const char *const allowed[] = { "type", "rope_type", "factor", "original_max_position_embeddings",
                                           "beta_fast", "beta_slow", "attention_factor", "truncate", "rope_theta", NULL };
    finch_status st = check_scaling_fields(rs, allowed);
    const cJSON *trunc = item(rs, "truncate");
    if (st == FINCH_OK && trunc && !cJSON_IsTrue(trunc))
        return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_scaling.truncate false is not supported");
    c->rope_scaling = FINCH_ROPE_SCALING_YARN;
    c->rope_orig_ctx = c->ctx_len;
    c->yarn_beta_fast = 32.0f;
    c->yarn_beta_slow = 1.0f;
    c->rope_mscale = 1.0f + 0.1f * logf(c->rope_factor);
    if (st == FINCH_OK) st = size_field(rs, "original_max_position_embeddings", "rope_scaling.", &c->rope_orig_ctx);
    if (st == FINCH_OK) st = num_field(rs, "beta_fast", "rope_scaling.", &c->yarn_beta_fast);
    if (st == FINCH_OK) st = num_field(rs, "beta_slow", "rope_scaling.", &c->yarn_beta_slow);
    if (st == FINCH_OK) st = num_field(rs, "attention_factor", "rope_scaling.", &c->rope_mscale);
    return st;
}

static finch_status llama3_fields(const cJSON *rs, finch_config *c) {
    static const char *const allowed[] = { "type", "rope_type", "factor", "original_max_position_embeddings",
                                           "low_freq_factor", "high_freq_factor", "rope_theta", NULL };
    finch_status st = check_scaling_fields(rs, allowed);
    c->rope_scaling = FINCH_ROPE_SCALING_LLAMA3;
    c->rope_low_freq_factor = 1.0f;
    c->rope_high_freq_factor = 4.0f;
    c->rope_orig_ctx = 8192;
    if (st == FINCH_OK) st = num_field(rs, "low_freq_factor", "rope_scaling.", &c->rope_low_freq_factor);
    if (st == FINCH_OK) st = num_field(rs, "high_freq_factor", "rope_scaling.", &c->rope_high_freq_factor);
    if (st == FINCH_OK) st = size_field(rs, "original_max_position_embeddings", "rope_scaling.", &c->rope_orig_ctx);
    if (st == FINCH_OK && !(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return finch_fail(FINCH_ERR_FORMAT, "config.json rope_scaling: high_freq_factor must exceed low_freq_factor");
    return st;
}

/* transformers v5 keys the parameters by layer type (Gemma 3):
 * {"full_attention": {...}, "sliding_attention": {...}}.  The full ones are
 * the scaling; the sliding ones must be plain RoPE and give the local base. */
static finch_status per_layer_type_params(const cJSON **rs, finch_config *c) {
    const cJSON *full = item(*rs, "full_attention"), *sliding = item(*rs, "sliding_attention");
    if (!full && !sliding) return FINCH_OK;
    for (const cJSON *f = (*rs)->child; f; f = f->next)
        if (strcmp(f->string, "full_attention") && strcmp(f->string, "sliding_attention"))
            return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_parameters.%.64s is not supported", f->string);
    if (!cJSON_IsObject(full) || (sliding && !cJSON_IsObject(sliding)))
        return finch_fail(FINCH_ERR_FORMAT, "config.json rope_parameters: full_attention / sliding_attention are not objects");
    if (sliding) {
        const cJSON *t = item(sliding, "rope_type");
        for (const cJSON *f = sliding->child; f; f = f->next)
            if (strcmp(f->string, "rope_type") && strcmp(f->string, "rope_theta"))
                return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_parameters.sliding_attention.%.64s is not supported",
                                  f->string);
        if (t && !(cJSON_IsString(t) && !strcmp(t->valuestring, "default")))
            return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_parameters.sliding_attention: only default RoPE is supported");
        finch_status st = num_field(sliding, "rope_theta", "rope_parameters.sliding_attention.", &c->rope_base_local);
        if (st) return st;
    }
    *rs = full;
    return FINCH_OK;
}

finch_status hf_rope_scaling(const cJSON *root, finch_config *c) {
    const cJSON *rs = item(root, "rope_scaling");
    const char *key = "rope_scaling";
    if (!rs) { rs = item(root, "rope_parameters"); key = "rope_parameters"; }
    if (!rs) return FINCH_OK;
    if (!cJSON_IsObject(rs)) return finch_fail(FINCH_ERR_FORMAT, "config.json %s is not an object", key);
    finch_status st = per_layer_type_params(&rs, c);
    if (st) return st;
    const cJSON *type = item(rs, "rope_type");
    if (!type) type = item(rs, "type");
    if (!cJSON_IsString(type)) return finch_fail(FINCH_ERR_FORMAT, "config.json %s has no rope_type", key);
    st = num_field(rs, "rope_theta", "rope_parameters.", &c->rope_base);
    const char *t = type->valuestring;
    if (st || !strcmp(t, "default")) return st;
    c->rope_factor = 1.0f;
    if ((st = num_field(rs, "factor", "rope_scaling.", &c->rope_factor))) return st;
    if (!(c->rope_factor >= 1.0f))
        return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_scaling.factor %g is not supported (must be >= 1)",
                          (double)c->rope_factor);
    if (!strcmp(t, "linear")) {
        static const char *const allowed[] = { "type", "rope_type", "factor", "rope_theta", NULL };
        c->rope_scaling = FINCH_ROPE_SCALING_LINEAR;
        return check_scaling_fields(rs, allowed);
    }
    if (!strcmp(t, "llama3")) return llama3_fields(rs, c);
    if (!strcmp(t, "yarn")) return yarn_fields(rs, c);
    return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_scaling type '%.32s' is not supported "
                      "(linear, llama3, yarn)", t);
}

/* A layer_types list must say what the engine does: the layers the
 * window pattern of c marks, "sliding_attention", the others
 * "full_attention". */
static finch_status check_layer_types(const cJSON *types, const finch_config *c) {
    size_t l = 0;
    for (const cJSON *e = types->child; e; e = e->next, l++) {
        bool local = cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
        if (!local && !(cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")))
            return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json layer_types[%zu] is not supported", l);
        if (local != (bool)finch_layer_is_local(c, l))
            return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json layer_types: layer %zu differs from the "
                              "window pattern this engine implements", l);
    }
    return FINCH_OK;
}

/* Gemma's layer pattern: sliding_window_pattern (Gemma 3), or a layer_types
 * list that must follow one (every p-th layer global). */
static finch_status gemma_pattern(const cJSON *root, finch_config *c, size_t period) {
    c->swa_period = period;
    finch_status st = size_field(root, "sliding_window_pattern", "", &c->swa_period);
    if (c->swa_period == 1) c->sliding_window = c->swa_period = 0; /* every layer global */
    const cJSON *types = item(root, "layer_types");
    if (st || !types) return st;
    if (!cJSON_IsArray(types) || (size_t)cJSON_GetArraySize(types) != c->n_layer)
        return finch_fail(FINCH_ERR_FORMAT, "config.json layer_types is not a list of %zu layers", c->n_layer);
    size_t l = 0, n_local = 0;
    period = 0;
    for (const cJSON *e = types->child; e; e = e->next, l++) {
        bool full = cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention");
        if (full && !period) period = l + 1;
        n_local += cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
    }
    if (n_local == 0) c->sliding_window = 0; /* every layer global */
    c->swa_period = period; /* 0: every layer local; 1 (a global first layer) is refused below */
    return check_layer_types(types, c);
}

static finch_status gemma_fields(const cJSON *root, finch_config *c) {
    bool g3 = !strcmp(c->arch, "gemma3");
    float scalar = (float)c->head_dim;
    finch_status st = num_field(root, "query_pre_attn_scalar", "", &scalar);
    if (st == FINCH_OK) st = num_field(root, "attn_logit_softcapping", "", &c->attn_softcap);
    if (st == FINCH_OK) st = num_field(root, "final_logit_softcapping", "", &c->final_softcap);
    if (st) return st;
    c->attn_scale = 1.0f / sqrtf(scalar);
    c->embd_scale = sqrtf((float)c->dim);
    c->sliding_window = 4096;
    if ((st = size_field(root, "sliding_window", "", &c->sliding_window))) return st;
    if (g3) {
        if (c->rope_base_local == 0) c->rope_base_local = 10000.0f; /* else rope_parameters gave it */
        if ((st = num_field(root, "rope_local_base_freq", "", &c->rope_base_local))) return st;
    }
    return gemma_pattern(root, c, g3 ? 6 : 2);
}

finch_status hf_family_fields(const cJSON *root, finch_config *c) {
    float prf = 1.0f;
    finch_status st = num_field(root, "partial_rotary_factor", "", &prf);
    if (st) return st;
    c->rope_dim = (size_t)((float)c->head_dim * prf);
    if (prf > 1.0f || c->rope_dim == 0 || c->rope_dim % 2)
        return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json partial_rotary_factor %g gives %zu rotated dims of %zu",
                          (double)prf, c->rope_dim, c->head_dim);
    if (strcmp(c->arch, "gemma3") && c->rope_base_local != 0) { /* from rope_parameters.sliding_attention */
        if (c->rope_base_local != c->rope_base || c->rope_scaling != FINCH_ROPE_SCALING_NONE)
            return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json rope_parameters.sliding_attention differs from "
                              "full_attention (only Gemma 3 has local RoPE)");
        c->rope_base_local = 0;
    }
    if (finch_arch_gemma(c)) return gemma_fields(root, c);
    if (strcmp(c->arch, "qwen2") && strcmp(c->arch, "qwen3")) /* Mistral, Phi-3: every layer */
        st = size_field(root, "sliding_window", "", &c->sliding_window);
    const cJSON *types = item(root, "layer_types");
    if (st || !types) return st;
    if (!cJSON_IsArray(types) || (size_t)cJSON_GetArraySize(types) != c->n_layer)
        return finch_fail(FINCH_ERR_FORMAT, "config.json layer_types is not a list of %zu layers", c->n_layer);
    return check_layer_types(types, c);
}
