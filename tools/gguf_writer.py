#!/usr/bin/python3
"""gguf_writer.py - our own minimal GGUF v3 writer (no gguf-py needed).

File layout (little-endian):
  "GGUF", u32 version (3), u64 n_tensors, u64 n_kv,
  n_kv x (string key, u32 value type, value),
  n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
               u64 offset relative to the data section),
  zero padding to `alignment` (32 unless general.alignment says otherwise),
  tensor data, each tensor starting at a multiple of `alignment`.
Strings are u64 byte length + UTF-8 bytes.  Arrays are u32 element type,
u64 count, elements.  ne[0] is the innermost dimension, so a row-major matrix
W [rows, cols] is written with dims (cols, rows).

Tensor encodings (as ggml stores them)
  F32   4 bytes / value
  F16   IEEE half, round to nearest even (numpy astype, = ggml/F16C)
  BF16  top 16 bits of the f32, round to nearest even (ggml_compute_fp32_to_bf16)
  Q8_0  per block of 32 values: f16 d then 32 x int8 q; as ggml's
        quantize_row_q8_0_ref: amax = max|x|, d = amax/127, id = d ? 1/d : 0,
        q = roundf(x*id) (half away from zero), all in float32, d stored f16.
        Dequantised value: q * f16(d).

write_model_gguf() writes a Llama-family model the way llama.cpp's converter
does: arch 'llama' gets its q/k weights permuted from the HF (rotate-half)
row order to the adjacent-pair order; arch 'qwen2' is written unpermuted.
"""

import os
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3

# metadata value types
GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16 = 0, 1, 2, 3
GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL = 4, 5, 6, 7
GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR_FMT = {GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
               GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?",
               GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d"}

# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
GGML_TYPE_NAMES = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q8_0: "Q8_0", GGML_BF16: "BF16"}
GGML_TYPE_BY_NAME = {v: k for k, v in GGML_TYPE_NAMES.items()}
QK8_0 = 32
# llama.cpp's general.file_type (LLAMA_FTYPE_*)
FILE_TYPE = {GGML_F32: 0, GGML_F16: 1, GGML_Q8_0: 7, GGML_BF16: 32,
             # llama.h's LLAMA_FTYPE_MOSTLY_* of the other quantized types
             2: 2, 3: 3, 6: 8, 7: 9, 10: 10, 11: 12, 12: 15, 13: 17, 14: 18, 20: 25, 23: 30}


# ------------------------------------------------------------- encodings

def f32_to_bf16_bits(x):
    """ggml_compute_fp32_to_bf16: round to nearest even, NaN kept quiet."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16) & 0xFFFF
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    rounded = np.where(nan, ((u >> 16) | 64) & 0xFFFF, rounded)
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _roundf(x):
    """C roundf: half away from zero (exact: x is float32, done in float64)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_q8_0(x):
    """x: float32 array whose last dim is a multiple of 32.  Returns
    (d_f16 [..., nb], q_int8 [..., nb, 32])."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[-1] % QK8_0:
        raise ValueError(f"Q8_0 needs rows that are a multiple of {QK8_0}, got {x.shape[-1]}")
    blocks = x.reshape(x.shape[:-1] + (x.shape[-1] // QK8_0, QK8_0))
    amax = np.abs(blocks).max(axis=-1)                      # float32
    d = (amax / np.float32(127.0)).astype(np.float32)       # float32 division
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    x0 = (blocks * inv[..., None]).astype(np.float32)       # float32 product
    q = _roundf(x0).astype(np.int8)
    return d.astype(np.float16), q


def dequantize_q8_0(d, q):
    v = q.astype(np.float32) * d.astype(np.float32)[..., None]
    return v.reshape(v.shape[:-2] + (v.shape[-2] * v.shape[-1],))


def encode_tensor(arr, gtype):
    """Bytes of a row-major float array in ggml type gtype."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if gtype == GGML_F32:
        return arr.astype("<f4").tobytes()
    if gtype == GGML_F16:
        return arr.astype("<f2").tobytes()
    if gtype == GGML_BF16:
        return f32_to_bf16_bits(arr).astype("<u2").tobytes()
    if gtype == GGML_Q8_0:
        d, q = quantize_q8_0(arr)
        nb = d.size
        rec = np.zeros(nb, dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
        rec["d"] = d.reshape(-1)
        rec["qs"] = q.reshape(nb, QK8_0)
        return rec.tobytes()
    import quants  # the other quantized types (tools/quants.py)
    if gtype in quants.TRAITS:
        return quants.quantize(gtype, arr.reshape(-1, arr.shape[-1])).tobytes()
    raise ValueError(f"unsupported ggml type {gtype}")


def stored_values(arr, gtype):
    """What a reader gets back (as float32) after storing arr in gtype."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if gtype == GGML_F32:
        return arr.copy()
    if gtype == GGML_F16:
        return arr.astype(np.float16).astype(np.float32)
    if gtype == GGML_BF16:
        return bf16_bits_to_f32(f32_to_bf16_bits(arr)).reshape(arr.shape)
    if gtype == GGML_Q8_0:
        return dequantize_q8_0(*quantize_q8_0(arr)).reshape(arr.shape)
    import quants
    if gtype in quants.TRAITS:
        n = arr.shape[-1]
        return quants.dequantize(gtype, quants.quantize(gtype, arr.reshape(-1, n)), n).reshape(arr.shape)
    raise ValueError(f"unsupported ggml type {gtype}")


# ---------------------------------------------------------------- writer

def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    """Collect metadata and tensors, then write(path).  Keys keep the order
    in which they were added."""

    def __init__(self, alignment=32):
        self.kv = []          # (key, type, encoded value bytes)
        self.tensors = []     # (name, ne tuple, ggml type, data bytes)
        self.alignment = alignment
        if alignment != 32:
            self.add_u32("general.alignment", alignment)

    # -- metadata
    def _add(self, key, vtype, payload):
        if any(k == key for k, _, _ in self.kv):
            raise ValueError(f"duplicate key {key}")
        self.kv.append((key, vtype, payload))

    def add_scalar(self, key, vtype, value):
        self._add(key, vtype, struct.pack(_SCALAR_FMT[vtype], value))

    def add_u8(self, k, v): self.add_scalar(k, GGUF_UINT8, v)
    def add_i8(self, k, v): self.add_scalar(k, GGUF_INT8, v)
    def add_u16(self, k, v): self.add_scalar(k, GGUF_UINT16, v)
    def add_i16(self, k, v): self.add_scalar(k, GGUF_INT16, v)
    def add_u32(self, k, v): self.add_scalar(k, GGUF_UINT32, v)
    def add_i32(self, k, v): self.add_scalar(k, GGUF_INT32, v)
    def add_u64(self, k, v): self.add_scalar(k, GGUF_UINT64, v)
    def add_i64(self, k, v): self.add_scalar(k, GGUF_INT64, v)
    def add_f32(self, k, v): self.add_scalar(k, GGUF_FLOAT32, v)
    def add_f64(self, k, v): self.add_scalar(k, GGUF_FLOAT64, v)
    def add_bool(self, k, v): self.add_scalar(k, GGUF_BOOL, bool(v))

    def add_string(self, key, value):
        self._add(key, GGUF_STRING, _str(value))

    def add_array(self, key, etype, values):
        """Array of scalars (etype one of the scalar types) or strings."""
        body = struct.pack("<IQ", etype, len(values))
        if etype == GGUF_STRING:
            body += b"".join(_str(v) for v in values)
        elif etype == GGUF_ARRAY:
            raise ValueError("nested arrays are not supported")
        else:
            body += b"".join(struct.pack(_SCALAR_FMT[etype], v) for v in values)
        self._add(key, GGUF_ARRAY, body)

    # -- tensors
    def add_tensor(self, name, arr, gtype=GGML_F32):
        """arr: row-major numpy array (float); stored with ne reversed."""
        arr = np.asarray(arr)
        ne = tuple(int(s) for s in arr.shape[::-1])
        if gtype == GGML_Q8_0 and ne[0] % QK8_0:
            raise ValueError(f"{name}: Q8_0 rows must be a multiple of 32")
        if gtype not in (GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0):
            import quants
            quants.row_bytes(gtype, ne[0])  # raises when the blocks do not divide the rows
        self.add_raw_tensor(name, ne, gtype, encode_tensor(arr, gtype))

    def add_raw_tensor(self, name, ne, gtype, data):
        if any(t[0] == name for t in self.tensors):
            raise ValueError(f"duplicate tensor {name}")
        self.tensors.append((name, tuple(ne), gtype, bytes(data)))

    def add_lazy_tensor(self, name, ne, gtype, nbytes, produce):
        """A tensor whose nbytes bytes come from produce() only when the file
        is written, so multi-GB models never sit in memory whole."""
        if any(t[0] == name for t in self.tensors):
            raise ValueError(f"duplicate tensor {name}")
        self.tensors.append((name, tuple(ne), gtype, _Lazy(nbytes, produce)))

    def _header(self):
        a = self.alignment
        out = bytearray(GGUF_MAGIC)
        out += struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))
        for key, vtype, payload in self.kv:
            out += _str(key) + struct.pack("<I", vtype) + payload
        offset = 0
        for name, ne, gtype, data in self.tensors:
            out += _str(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", n) for n in ne)
            out += struct.pack("<IQ", gtype, offset)
            offset += (len(data) + a - 1) // a * a
        out += b"\0" * ((-len(out)) % a)
        return bytes(out)

    def _chunks(self):
        yield self._header()
        for name, ne, gtype, data in self.tensors:
            body = data.produce() if isinstance(data, _Lazy) else data
            if len(body) != len(data):
                raise ValueError(f"{name}: produced {len(body)} bytes, declared {len(data)}")
            yield body
            yield b"\0" * ((-len(body)) % self.alignment)

    def to_bytes(self):
        return b"".join(self._chunks())

    def write(self, path):
        """Streams to path + '.tmp', then renames: never a half-written file."""
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            for chunk in self._chunks():
                f.write(chunk)
        os.replace(tmp, path)


class _Lazy:
    def __init__(self, nbytes, produce):
        self.nbytes, self.produce = nbytes, produce

    def __len__(self):
        return self.nbytes


# ------------------------------------------------------- model convenience

def add_tokenizer_llama(w, vocab):
    """tokenizer.ggml.* keys of a SentencePiece ('llama') vocabulary as
    produced by tok_ref.build_tiny_spm_vocab."""
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", GGUF_STRING, vocab["tokens"])
    w.add_array("tokenizer.ggml.scores", GGUF_FLOAT32, vocab["scores"])
    w.add_array("tokenizer.ggml.token_type", GGUF_INT32, vocab["types"])
    w.add_u32("tokenizer.ggml.bos_token_id", vocab["bos"])
    w.add_u32("tokenizer.ggml.eos_token_id", vocab["eos"])
    w.add_u32("tokenizer.ggml.unknown_token_id", vocab["unk"])
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_bool("tokenizer.ggml.add_space_prefix", True)


def add_llama_hparams(w, arch, cfg, wtype, name, ctx_len):
    """general.* and <arch>.* hyperparameter keys of a Llama-family model."""
    w.add_string("general.architecture", arch)
    w.add_string("general.name", name)
    w.add_u32("general.file_type", FILE_TYPE[wtype])
    w.add_u32(f"{arch}.context_length", ctx_len)
    w.add_u32(f"{arch}.embedding_length", cfg["dim"])
    w.add_u32(f"{arch}.block_count", cfg["n_layer"])
    w.add_u32(f"{arch}.feed_forward_length", cfg["ffn_dim"])
    w.add_u32(f"{arch}.attention.head_count", cfg["n_head"])
    w.add_u32(f"{arch}.attention.head_count_kv", cfg["n_kv_head"])
    w.add_f32(f"{arch}.attention.layer_norm_rms_epsilon", cfg["rms_eps"])
    w.add_f32(f"{arch}.rope.freq_base", cfg["rope_base"])
    w.add_u32(f"{arch}.rope.dimension_count", cfg["rope_dim"])
    w.add_u32(f"{arch}.vocab_size", cfg["vocab"])


def write_model_gguf(path, arch, cfg, weights, wtype=GGML_F32, name="model",
                     ctx_len=512, vocab=None):
    """Write a Llama-family model.  weights: GGUF-style names in HF
    orientation (see llama_ref.py), numpy or torch.  2-D weights are stored
    in wtype, 1-D tensors (norms, biases) in F32 as llama.cpp does.

    Returns the weights as stored, dequantised to float32, in HF orientation
    (un-permuted), i.e. what a reference must use to match an engine reading
    this file exactly."""
    from llama_ref import permute_rows_half_to_adjacent, permute_rows_adjacent_to_half
    if arch not in ("llama", "qwen2"):
        raise ValueError(f"unsupported arch {arch}")
    if cfg["pairing"] != "half":
        raise ValueError("weights must be given in HF (rotate-half) orientation")
    if arch == "llama" and cfg["bias"]:
        raise ValueError("arch llama has no q/k/v biases")
    if arch == "qwen2" and cfg["rope_dim"] != cfg["head_dim"]:
        raise ValueError("qwen2 rotates the whole head")
    if cfg["head_dim"] * cfg["n_head"] != cfg["dim"]:
        raise ValueError("GGUF llama/qwen2 assume head_dim = dim / n_head")
    w = GGUFWriter()
    add_llama_hparams(w, arch, cfg, wtype, name, ctx_len)
    if vocab is not None:
        if len(vocab["tokens"]) != cfg["vocab"]:
            raise ValueError("tokenizer size differs from the embedding rows")
        add_tokenizer_llama(w, vocab)

    def np32(t):
        return np.ascontiguousarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t,
                                    dtype=np.float32)

    order = ["token_embd.weight"]
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        order += [p + "attn_norm.weight", p + "attn_q.weight", p + "attn_q.bias",
                  p + "attn_k.weight", p + "attn_k.bias", p + "attn_v.weight",
                  p + "attn_v.bias", p + "attn_output.weight", p + "ffn_norm.weight",
                  p + "ffn_gate.weight", p + "ffn_up.weight", p + "ffn_down.weight"]
    order += ["output_norm.weight", "output.weight"]
    stored = {}
    for key in order:
        if key not in weights:
            continue
        if key == "output.weight" and cfg["tied"]:
            continue
        a = np32(weights[key])
        heads = None
        if arch == "llama" and (".attn_q." in key or ".attn_k." in key):
            heads = cfg["n_head"] if ".attn_q." in key else cfg["n_kv_head"]
            a = permute_rows_half_to_adjacent(a, heads, cfg["head_dim"], cfg["rope_dim"])
        t = wtype if a.ndim == 2 else GGML_F32
        w.add_tensor(key, a, t)
        back = stored_values(a, t)
        if heads is not None:
            back = permute_rows_adjacent_to_half(back, heads, cfg["head_dim"], cfg["rope_dim"])
        stored[key] = back
    w.write(path)
    return stored
