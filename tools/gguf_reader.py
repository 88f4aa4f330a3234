#!/usr/bin/python3
"""gguf_reader.py - a small, strict GGUF v2/v3 reader (numpy), independent of
the writer, used by check_fixtures.py to prove the files round-trip.

  read_gguf(path)  -> GGUF(version, alignment, meta{key: value},
                           meta_types{key: type}, tensors{name: Tensor})
  tensor_f32(t)    -> float32 array shaped [ne[n-1], ..., ne[0]]
  load_gguf_model(path) -> (cfg, weights) for llama_ref.LlamaRef, weights as
                           stored (q/k rows in the file's order; pairing
                           'adjacent' for arch llama, 'half' for qwen2)

Command line: /usr/bin/python3 tools/gguf_reader.py FILE.gguf  (a listing)
"""

import struct
import sys
from collections import namedtuple

import numpy as np

GGUF = namedtuple("GGUF", "version alignment meta meta_types tensors data_offset")
Tensor = namedtuple("Tensor", "name ne type offset nbytes data")

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
F32, F16, Q8_0, BF16 = 0, 1, 8, 30
TYPE_NAMES = {F32: "F32", F16: "F16", Q8_0: "Q8_0", BF16: "BF16"}


class _Buf:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise ValueError(f"truncated GGUF at byte {self.p} (need {n})")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.unpack("<Q")
        return self.take(n).decode("utf-8")


def _value(b, t):
    if t in _SCALARS:
        return b.unpack(_SCALARS[t])
    if t == 8:
        return b.string()
    if t == 9:
        et = b.unpack("<I")
        n = b.unpack("<Q")
        if et == 9:
            raise ValueError("nested arrays not supported")
        return [_value(b, et) for _ in range(n)]
    raise ValueError(f"bad metadata type {t}")


def row_bytes(t, n):
    if t == F32:
        return 4 * n
    if t in (F16, BF16):
        return 2 * n
    if t == Q8_0:
        if n % 32:
            raise ValueError("Q8_0 row not a multiple of 32")
        return n // 32 * 34
    import quants  # the other quantized types (tools/quants.py)
    if t in quants.TRAITS:
        return quants.row_bytes(t, n)
    raise ValueError(f"unsupported tensor type {t}")


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    b = _Buf(data)
    if b.take(4) != b"GGUF":
        raise ValueError(f"{path}: bad magic")
    version = b.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"{path}: unsupported version {version}")
    n_t = b.unpack("<Q")
    n_kv = b.unpack("<Q")
    meta, meta_types = {}, {}
    for _ in range(n_kv):
        k = b.string()
        t = b.unpack("<I")
        if k in meta:
            raise ValueError(f"duplicate key {k}")
        meta[k] = _value(b, t)
        meta_types[k] = t
    align = int(meta.get("general.alignment", 32))
    infos = []
    for _ in range(n_t):
        name = b.string()
        nd = b.unpack("<I")
        if nd < 1 or nd > 4:
            raise ValueError(f"{name}: bad n_dims {nd}")
        ne = tuple(b.unpack("<Q") for _ in range(nd))
        t = b.unpack("<I")
        off = b.unpack("<Q")
        infos.append((name, ne, t, off))
    data_off = (b.p + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        if off % align:
            raise ValueError(f"{name}: misaligned offset")
        n_rows = int(np.prod(ne[1:], dtype=np.int64)) if len(ne) > 1 else 1
        nbytes = row_bytes(t, ne[0]) * n_rows
        s = data_off + off
        if s + nbytes > len(data):
            raise ValueError(f"{name}: data out of range")
        tensors[name] = Tensor(name, ne, t, off, nbytes, data[s:s + nbytes])
    return GGUF(version, align, meta, meta_types, tensors, data_off)


def tensor_f32(t):
    shape = tuple(int(x) for x in t.ne[::-1])
    if t.type == F32:
        a = np.frombuffer(t.data, dtype="<f4")
    elif t.type == F16:
        a = np.frombuffer(t.data, dtype="<f2").astype(np.float32)
    elif t.type == BF16:
        a = (np.frombuffer(t.data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif t.type == Q8_0:
        rec = np.frombuffer(t.data, dtype=[("d", "<f2"), ("qs", "i1", (32,))])
        a = (rec["qs"].astype(np.float32) * rec["d"].astype(np.float32)[:, None]).reshape(-1)
    else:
        import quants
        if t.type not in quants.TRAITS:
            raise ValueError(f"unsupported type {t.type}")
        a = quants.dequantize(t.type, np.frombuffer(t.data, np.uint8), int(t.ne[0]))
    return a.reshape(shape).astype(np.float32)


def q8_0_blocks(t):
    """(d [rows, nb] float32 (the f16 scales), q [rows, nb, 32] int8) of a
    2-D Q8_0 tensor, straight from the file."""
    if t.type != Q8_0 or len(t.ne) != 2:
        raise ValueError(f"{t.name}: not a 2-D Q8_0 tensor")
    rec = np.frombuffer(t.data, dtype=[("d", "<f2"), ("qs", "i1", (32,))])
    rows, nb = int(t.ne[1]), int(t.ne[0]) // 32
    return rec["d"].astype(np.float32).reshape(rows, nb), rec["qs"].reshape(rows, nb, 32).copy()


def load_gguf_model(path):
    """(cfg, weights, gguf) for LlamaRef, straight from the file."""
    g = read_gguf(path)
    m = g.meta
    arch = m["general.architecture"]
    if arch not in ("llama", "qwen2"):
        raise ValueError(f"unsupported arch {arch}")
    dim = int(m[f"{arch}.embedding_length"])
    H = int(m[f"{arch}.attention.head_count"])
    G = int(m.get(f"{arch}.attention.head_count_kv", H))
    hd = dim // H
    weights = {k: tensor_f32(t) for k, t in g.tensors.items()}
    cfg = {
        "dim": dim, "n_layer": int(m[f"{arch}.block_count"]), "n_head": H, "n_kv_head": G,
        "head_dim": hd, "ffn_dim": int(m[f"{arch}.feed_forward_length"]),
        "vocab": weights["token_embd.weight"].shape[0],
        "rms_eps": float(m[f"{arch}.attention.layer_norm_rms_epsilon"]),
        "rope_base": float(m.get(f"{arch}.rope.freq_base", 10000.0)),
        "rope_dim": int(m.get(f"{arch}.rope.dimension_count", hd)),
        "pairing": "adjacent" if arch == "llama" else "half",
        "tied": "output.weight" not in weights,
        "bias": "blk.0.attn_q.bias" in weights,
    }
    return cfg, weights, g


def main(argv):
    g = read_gguf(argv[0])
    print(f"GGUF v{g.version}, alignment {g.alignment}, {len(g.meta)} keys, "
          f"{len(g.tensors)} tensors, data at {g.data_offset}")
    for k, v in g.meta.items():
        s = repr(v)
        print(f"  {k} [{g.meta_types[k]}] = {s[:100]}{'...' if len(s) > 100 else ''}")
    for t in g.tensors.values():
        print(f"  {t.name:28s} {TYPE_NAMES.get(t.type, t.type):5s} ne={t.ne} off={t.offset}")


if __name__ == "__main__":
    main(sys.argv[1:])
