#!/usr/bin/python3
"""make_bench_models.py - random-weight GGUF files in real model shapes, for
`finch bench` and for running llama.cpp's llama-bench on the same files.

    /usr/bin/python3 tools/make_bench_models.py [--out bench-models] [NAME ...]

NAME is one of the keys of MODELS below (default: all of them).  Files are
written to an ignored folder (bench-models/), never committed; a file that is
already there with the expected size is kept, so a second run costs nothing.

The weights are random (normal, std 0.02; norms 1), which is all a speed
measurement needs: every engine does the same work on them.  The vocabulary
is a synthetic SentencePiece-style one of the right size (specials, the 256
byte tokens, then made-up pieces), so the files load in llama.cpp too.
Layout and names follow llama.cpp's converter, as tools/gguf_writer.py does.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

# Shapes of the public models (their config.json files); types as issue 5 asks.
TINYLLAMA = dict(arch="llama", dim=2048, n_layer=22, n_head=32, n_kv_head=4, ffn_dim=5632,
                 vocab=32000, ctx_len=2048, rope_base=10000.0, rms_eps=1e-5, bias=False,
                 tied=False)
QWEN25_05B = dict(arch="qwen2", dim=896, n_layer=24, n_head=14, n_kv_head=2, ffn_dim=4864,
                  vocab=151936, ctx_len=32768, rope_base=1000000.0, rms_eps=1e-6, bias=True,
                  tied=True)
SMALL = dict(arch="llama", dim=512, n_layer=8, n_head=8, n_kv_head=8, ffn_dim=1376,
             vocab=32000, ctx_len=2048, rope_base=10000.0, rms_eps=1e-5, bias=False,
             tied=False)

# The llama.cpp agreement checks (docs/llamacpp-agreement.md): a small llama
# whose every matrix dimension the 256-value K-quant blocks divide, with GQA,
# to be quantized by llama-quantize (tools/make_quant_models.sh).  Written only
# when named, not by `make bench`.
AGREE = dict(arch="llama", dim=256, n_layer=4, n_head=4, n_kv_head=2, ffn_dim=768,
             vocab=4096, ctx_len=2048, rope_base=10000.0, rms_eps=1e-5, bias=False,
             tied=False)

# Llama-2-7B's shape (make bench-7b, tools/bench_7b.sh): 13.5 GB in F16, so
# written only when named, never by default.
LLAMA2_7B = dict(arch="llama", dim=4096, n_layer=32, n_head=32, n_kv_head=32, ffn_dim=11008,
                 vocab=32000, ctx_len=4096, rope_base=10000.0, rms_eps=1e-5, bias=False,
                 tied=False)
ON_REQUEST = {
    "llama2-7b-f16": (LLAMA2_7B, gw.GGML_F16),
    "llama2-7b-q8_0": (LLAMA2_7B, gw.GGML_Q8_0),
}
MODELS = {
    "tinyllama-1.1b-f32": (TINYLLAMA, gw.GGML_F32),
    "tinyllama-1.1b-f16": (TINYLLAMA, gw.GGML_F16),
    "tinyllama-1.1b-q8_0": (TINYLLAMA, gw.GGML_Q8_0),
    "qwen2.5-0.5b-f16": (QWEN25_05B, gw.GGML_F16),
    "small-f32": (SMALL, gw.GGML_F32),
}
EXTRA_MODELS = {
    "agree-256-f32": (AGREE, gw.GGML_F32),
    **ON_REQUEST,
}

ROWS_PER_DRAW = 1024  # rows drawn at a time: bounded memory for any shape


def synthetic_vocab(n):
    """SentencePiece-style: <unk> <s> </s>, 256 byte tokens, then pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    i = 0
    while len(tokens) < n:
        tokens.append(f"\u2581p{i}")
        types.append(1)
        i += 1
    scores = [0.0] * 259 + [-float(k) for k in range(n - 259)]
    return dict(tokens=tokens, scores=scores, types=types, bos=1, eos=2, unk=0)


def tensor_bytes(rows, cols, gtype):
    if gtype == gw.GGML_F32:
        return rows * cols * 4
    if gtype in (gw.GGML_F16, gw.GGML_BF16):
        return rows * cols * 2
    if gtype == gw.GGML_Q8_0:
        return rows * (cols // gw.QK8_0) * 34
    raise ValueError(gtype)


def random_matrix(seed, rows, cols, gtype):
    """Bytes of a [rows, cols] normal(0, 0.02) matrix, drawn in row blocks."""
    def produce():
        rng = np.random.default_rng(seed)
        parts = []
        for r0 in range(0, rows, ROWS_PER_DRAW):
            n = min(ROWS_PER_DRAW, rows - r0)
            block = rng.standard_normal((n, cols), dtype=np.float32) * np.float32(0.02)
            parts.append(gw.encode_tensor(block, gtype))
        return b"".join(parts)
    return produce


def build(path, cfg, gtype, name):
    head_dim = cfg["dim"] // cfg["n_head"]
    kv_dim = cfg["n_kv_head"] * head_dim
    arch = cfg["arch"]
    w = gw.GGUFWriter()
    gw.add_llama_hparams(w, arch, dict(cfg, rope_dim=head_dim), gtype, name, cfg["ctx_len"])
    gw.add_tokenizer_llama(w, synthetic_vocab(cfg["vocab"]))

    seed = [0]

    def matrix(tname, rows, cols):
        seed[0] += 1
        w.add_lazy_tensor(tname, (cols, rows), gtype, tensor_bytes(rows, cols, gtype),
                          random_matrix(seed[0], rows, cols, gtype))

    def ones(tname, n):
        w.add_tensor(tname, np.ones(n, dtype=np.float32), gw.GGML_F32)

    def bias(tname, n):
        seed[0] += 1
        rng = np.random.default_rng(seed[0])
        w.add_tensor(tname, rng.standard_normal(n, dtype=np.float32) * np.float32(0.02),
                     gw.GGML_F32)

    matrix("token_embd.weight", cfg["vocab"], cfg["dim"])
    for layer in range(cfg["n_layer"]):
        p = f"blk.{layer}."
        ones(p + "attn_norm.weight", cfg["dim"])
        matrix(p + "attn_q.weight", cfg["dim"], cfg["dim"])
        matrix(p + "attn_k.weight", kv_dim, cfg["dim"])
        matrix(p + "attn_v.weight", kv_dim, cfg["dim"])
        if cfg["bias"]:
            bias(p + "attn_q.bias", cfg["dim"])
            bias(p + "attn_k.bias", kv_dim)
            bias(p + "attn_v.bias", kv_dim)
        matrix(p + "attn_output.weight", cfg["dim"], cfg["dim"])
        ones(p + "ffn_norm.weight", cfg["dim"])
        matrix(p + "ffn_gate.weight", cfg["ffn_dim"], cfg["dim"])
        matrix(p + "ffn_up.weight", cfg["ffn_dim"], cfg["dim"])
        matrix(p + "ffn_down.weight", cfg["dim"], cfg["ffn_dim"])
    ones("output_norm.weight", cfg["dim"])
    if not cfg["tied"]:
        matrix("output.weight", cfg["vocab"], cfg["dim"])
    expected = len(w._header()) + sum((len(t[3]) + 31) // 32 * 32 for t in w.tensors)
    if os.path.exists(path) and os.path.getsize(path) == expected:
        print(f"{path}: present ({expected / 1e9:.2f} GB)")
        return
    print(f"{path}: writing {expected / 1e9:.2f} GB ...", flush=True)
    w.write(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench-models")
    ap.add_argument("names", nargs="*", help=f"models to write (default all of {', '.join(MODELS)}; "
                    f"also {', '.join(EXTRA_MODELS)})")
    args = ap.parse_args()
    names = args.names or list(MODELS)
    known = dict(MODELS, **EXTRA_MODELS)
    for n in names:
        if n not in known:
            sys.exit(f"make_bench_models: unknown model '{n}' (known: {', '.join(known)})")
    os.makedirs(args.out, exist_ok=True)
    for n in names:
        cfg, gtype = known[n]
        build(os.path.join(args.out, n + ".gguf"), cfg, gtype, n)


if __name__ == "__main__":
    main()
