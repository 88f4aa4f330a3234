/* rope.c - RoPE frequencies and rotation (see rope.h).
 *
 * Every variant keeps the angle linear in the position (p * f_i), which is
 * what makes Finch's re-rotation exact: rotating a key of position p by
 * (q - p) * f_i gives the key of position q.  The formulas follow Hugging
 * Face's modeling_rope_utils and ggml's rope (both compute the same
 * numbers); here in double, rounded to float once per angle. */
#include "rope.h"

#include <math.h>

int finch_layer_is_local(const finch_config *c, size_t l) {
    if (c->sliding_window == 0) return 0;
    if (c->swa_period < 2) return 1;
    return l % c->swa_period < c->swa_period - 1;
}

int finch_rope_layer_local(const finch_config *c, size_t l) {
    return c->rope_base_local > 0 && finch_layer_is_local(c, l);
}

/* YaRN's correction dimension: the pair index whose wavelength fits
 * n_rot rotations into the original context (HF find_correction_dim). */
static double yarn_corr_dim(double rope_dim, double orig_ctx, double n_rot, double base) {
    return rope_dim * log(orig_ctx / (n_rot * 2.0 * M_PI)) / (2.0 * log(base));
}

/* Weight of the extrapolated (unscaled) frequency of pair i: 1 for the
 * fast pairs below `low`, 0 for the slow ones above `high`, linear between. */
static double yarn_extrap_weight(double low, double high, double i) {
    double y = (i - low) / fmax(0.001, high - low);
    return 1.0 - fmin(1.0, fmax(0.0, y));
}

static void yarn_blend(const finch_config *c, double *inv_freq, size_t half) {
    double d = (double)c->rope_dim, base = c->rope_base;
    double orig = (double)c->rope_orig_ctx;
    double low = floor(yarn_corr_dim(d, orig, c->yarn_beta_fast, base));
    double high = ceil(yarn_corr_dim(d, orig, c->yarn_beta_slow, base));
    low = fmax(0.0, low);
    high = fmin(d - 1.0, high);
    for (size_t i = 0; i < half; i++) {
        double w = yarn_extrap_weight(low, high, (double)i);
        inv_freq[i] = inv_freq[i] / c->rope_factor * (1.0 - w) + inv_freq[i] * w;
    }
}

void finch_rope_set_init(const finch_model *m, int local, finch_rope_set *set) {
    const finch_config *c = &m->cfg;
    size_t half = c->rope_dim / 2;
    double base = local ? c->rope_base_local : c->rope_base;
    const float *ff = local ? NULL : m->rope_freqs.data;
    for (size_t i = 0; i < half; i++) {
        set->inv_freq[i] = pow(base, -2.0 * (double)i / (double)c->rope_dim);
        if (ff) set->inv_freq[i] /= (double)ff[i];
    }
    set->mscale = 1.0f;
    if (local) return;
    if (c->rope_scaling == FINCH_ROPE_SCALING_LINEAR)
        for (size_t i = 0; i < half; i++) set->inv_freq[i] /= c->rope_factor;
    if (c->rope_scaling == FINCH_ROPE_SCALING_YARN) {
        yarn_blend(c, set->inv_freq, half);
        set->mscale = c->rope_mscale > 0 ? c->rope_mscale : 1.0f;
    }
}

void finch_rope_angles(const finch_rope_set *set, size_t half, double pos, float scale,
                       float *cosv, float *sinv) {
    for (size_t i = 0; i < half; i++) {
        double a = pos * set->inv_freq[i];
        cosv[i] = (float)(cos(a) * scale);
        sinv[i] = (float)(sin(a) * scale);
    }
}

void finch_rope_rotate(float *vec, const float *cosv, const float *sinv, size_t rope_dim,
                       finch_rope_pairing pairing) {
    size_t half = rope_dim / 2;
    for (size_t i = 0; i < half; i++) {
        size_t a = pairing == FINCH_ROPE_ADJACENT ? 2 * i : i;
        size_t b = pairing == FINCH_ROPE_ADJACENT ? 2 * i + 1 : i + half;
        float x0 = vec[a], x1 = vec[b];
        vec[a] = x0 * cosv[i] - x1 * sinv[i];
        vec[b] = x1 * cosv[i] + x0 * sinv[i];
    }
}

void finch_rope_llama3_factors(size_t rope_dim, double base, double factor, double low_freq_factor,
                               double high_freq_factor, double orig_ctx, float *out) {
    double low_wavelen = orig_ctx / low_freq_factor, high_wavelen = orig_ctx / high_freq_factor;
    for (size_t i = 0; i < rope_dim / 2; i++) {
        double freq = pow(base, -2.0 * (double)i / (double)rope_dim);
        double wavelen = 2.0 * M_PI / freq;
        if (wavelen < high_wavelen) out[i] = 1.0f;
        else if (wavelen > low_wavelen) out[i] = (float)factor;
        else {
            double smooth = (orig_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            out[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
}
