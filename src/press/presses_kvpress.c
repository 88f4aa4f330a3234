/* presses_kvpress.c - presses the field compares Finch with today, as NVIDIA
 * kvpress defines them (read from the kvpress/presses/ files; our own code):
 *
 *   keydiff   KeyDiffPress: keys least like the mean key are kept
 *   chunkkv   ChunkKVPress(SnapKVPress()): SnapKV's scores pooled over
 *             chunks of 20 rows and summed over the KV heads; whole chunks
 *             are kept, the same chunks in every head
 *
 * Both are driven by src/press/finch.c like every press (chunks, k_t schedule,
 * top-k with ties to the smaller row, compaction, re-rotation).
 * docs/presses.md states the formulas; tests/test_presses_kvpress.c checks
 * them against brute forces. */
#include "presses.h"

#include <math.h>
#include <stdlib.h>

/* =============================================================== keydiff */

/* kvpress: anchor = mean_j normalize(k_j); score = -cos(k_j, anchor), with
 * F.normalize's eps 1e-12 on each norm and cosine_similarity's 1e-8 on
 * their product.  The mean runs over every candidate row of the step (the
 * keys in the cache when kvpress compresses). */
static void keydiff_finish(const finch_score_step *s, size_t l, double *acc) {
    size_t d = s->kv->head_dim, nc = s->n_cols;
    double anchor[FINCH_KEYDIFF_MAX_HEAD_DIM]; /* larger heads: refused by finch_scorer_prepare */
    float row[FINCH_KEYDIFF_MAX_HEAD_DIM];     /* an f16 cache's key as f32 */
    if (d > FINCH_KEYDIFF_MAX_HEAD_DIM) return;
    for (size_t g = 0; g < s->kv->n_kv_head; g++) {
        for (size_t i = 0; i < d; i++) anchor[i] = 0;
        for (size_t j = 0; j < nc; j++) {
            const float *k = finch_kv_key_f32(s->kv, l, g, j, row);
            double n2 = 0;
            for (size_t i = 0; i < d; i++) n2 += (double)k[i] * k[i];
            double inv = 1.0 / fmax(sqrt(n2), 1e-12);
            for (size_t i = 0; i < d; i++) anchor[i] += (double)k[i] * inv;
        }
        double na2 = 0;
        for (size_t i = 0; i < d; i++) {
            anchor[i] /= (double)nc;
            na2 += anchor[i] * anchor[i];
        }
        for (size_t j = 0; j < nc; j++) {
            const float *k = finch_kv_key_f32(s->kv, l, g, j, row);
            double dot = 0, n2 = 0;
            for (size_t i = 0; i < d; i++) {
                dot += (double)k[i] * anchor[i];
                n2 += (double)k[i] * k[i];
            }
            acc[g * nc + j] = -dot / fmax(sqrt(n2) * sqrt(na2), 1e-8);
        }
    }
}

const finch_scorer finch_scorer_keydiff = { .id = FINCH_SCORER_KEYDIFF, .finish = keydiff_finish };

/* =============================================================== chunkkv */

static void chunkkv_rows(const finch_score_step *s, size_t *lo, size_t *hi) {
    finch_scorer_get(FINCH_SCORER_SNAPKV)->rows(s, lo, hi);
}

/* SnapKV's scores, then for every chunk of FINCH_CHUNKKV_LENGTH candidate
 * rows after the protected prefix (the last chunk may be shorter): the mean
 * over its rows of the scores summed over the KV heads.  Every row of every
 * head takes its chunk's score, so top-k keeps whole chunks, best first,
 * the same in every head; when the budget ends inside a chunk it keeps
 * that chunk's first rows (ties go to the smaller row). */
static void chunkkv_finish(const finch_score_step *s, size_t l, double *acc) {
    finch_scorer_get(FINCH_SCORER_SNAPKV)->finish(s, l, acc);
    size_t G = s->kv->n_kv_head, nc = s->n_cols, P = s->p->protect < nc ? s->p->protect : nc;
    for (size_t c0 = P; c0 < nc; c0 += FINCH_CHUNKKV_LENGTH) {
        size_t c1 = nc - c0 < FINCH_CHUNKKV_LENGTH ? nc : c0 + FINCH_CHUNKKV_LENGTH;
        double sum = 0;
        for (size_t g = 0; g < G; g++)
            for (size_t j = c0; j < c1; j++) sum += acc[g * nc + j];
        double mean = sum / (double)(c1 - c0);
        for (size_t g = 0; g < G; g++)
            for (size_t j = c0; j < c1; j++) acc[g * nc + j] = mean;
    }
}

const finch_scorer finch_scorer_chunkkv = {
    .id = FINCH_SCORER_CHUNKKV, .rows = chunkkv_rows, .finish = chunkkv_finish,
};
