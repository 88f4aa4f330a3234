/* engine.h - the map of src/engine/: a model file becomes logits.
 *
 * In the order the data flows (docs/engine.md):
 *
 *   model.c/.h     from a file (src/formats/) to a finch_model: the
 *                  hyperparameters, every weight bound by name with its
 *                  shape checked, the tokenizer (src/tokenizer/) attached
 *   rope.c/.h      RoPE frequencies of every variant, and the rotation
 *                  (shared with Finch's key re-rotation, src/press/)
 *   transformer.c  the forward pass over a plain-array KV cache, whole
 *                  (finch_forward) or one layer at a time (forward.h: a
 *                  press scores between layers); the arithmetic is in
 *                  src/kernels/
 *   kv_cache.c     the cache's rows as f32 or f16 (--cache-type): every
 *                  reader and writer that must not care which goes through it
 *   generate.c/.h  how a feed is cut into forward calls (a ++ b, batches),
 *                  the one feed loop and the one decode loop (one callback
 *                  type, one EOS rule), for plain generation and every
 *                  press
 *   sampler.c      greedy, temperature and top-p sampling with a seed
 *   finite.c/.h    NaN and Inf in weights and logits, refused by name
 *   memory.c       what a run needs against what the machine has
 */
#ifndef FINCH_ENGINE_H
#define FINCH_ENGINE_H

#include "finite.h"
#include "model.h"
#include "rope.h"

#endif
