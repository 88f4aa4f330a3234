/* formats.h - the map of src/formats/: model files in and out.
 *
 * Every reader trusts nothing: counts, lengths, offsets and sizes read from
 * a file are checked before use, and a key or tensor the engine would not
 * use is refused by name.  The engine (src/engine/model.c) calls these.
 *
 *   gguf.c/.h         GGUF v2/v3 reader (mmap) and v3 writer
 *   safetensors.c/.h  Hugging Face directories: config.json, mapped shards
 *   hf_arch.c/.h      the family-specific fields of config.json (RoPE
 *                     scaling, sliding windows, Gemma and Phi-3 switches)
 *   arch.c/.h         the model families: switches, GGUF keys, HF names
 *   llama2c.c/.h      llama2.c legacy checkpoints
 *   npy.c/.h          NumPy .npy reader and writer (ids, dumps, fixtures)
 *   convert.c         a loaded model written back as GGUF (`finch convert`)
 */
#ifndef FINCH_FORMATS_H
#define FINCH_FORMATS_H

#include "arch.h"
#include "gguf.h"
#include "hf_arch.h"
#include "llama2c.h"
#include "npy.h"
#include "safetensors.h"

#endif
