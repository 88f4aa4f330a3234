/* rope.h - RoPE frequencies of every variant the loaders accept (plain,
 * linear, Llama 3 per-pair factors, YaRN), and the rotation itself.  One
 * place computes them, so the forward pass and Finch's re-rotation can
 * never disagree. */
#ifndef FINCH_ROPE_H
#define FINCH_ROPE_H

#include "finch.h"

/* The frequencies of one layer kind: angle of pair i at position p is
 * p * inv_freq[i]; the forward pass multiplies cos and sin by mscale. */
typedef struct {
    double *inv_freq; /* [rope_dim/2] */
    float mscale;
} finch_rope_set;

/* Fill set (inv_freq allocated by the caller, rope_dim/2 doubles) for the
 * global layers (local = 0) or the sliding-window layers (local = 1) of m. */
void finch_rope_set_init(const finch_model *m, int local, finch_rope_set *set);
/* 1 when layer l uses the local set (a windowed layer of a model that
 * gives its local layers their own base, as gemma3 does). */
int finch_rope_layer_local(const finch_config *c, size_t l);
/* cos/sin [rope_dim/2] of angle pos * inv_freq[i], times `scale`. */
void finch_rope_angles(const finch_rope_set *set, size_t half, double pos, float scale,
                       float *cosv, float *sinv);
/* Rotate one head vector by the angles in cos/sin ([rope_dim/2]). */
void finch_rope_rotate(float *vec, const float *cosv, const float *sinv, size_t rope_dim,
                       finch_rope_pairing pairing);
/* Llama 3 per-pair factors (HF rope_type llama3; llama.cpp's converter
 * writes the same values as rope_freqs.weight): out[rope_dim/2]. */
void finch_rope_llama3_factors(size_t rope_dim, double base, double factor, double low_freq_factor,
                               double high_freq_factor, double orig_ctx, float *out);

#endif
