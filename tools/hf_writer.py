#!/usr/bin/python3
"""hf_writer.py - write a Hugging Face model directory (config.json +
model.safetensors, optionally tokenizer.json + tokenizer_config.json) from
GGUF-style weights in HF orientation (the layout llama_ref.py uses).

  write_safetensors(path, {hf_name: np.ndarray}, dtype='F32'|'F16'|'BF16')
  write_hf_dir(path, cfg, weights, arch='llama', tokenizer=None)
  random_weights(cfg, seed) -> weights (also used by make_fixtures.py)

Command line: a random model for experiments
  /usr/bin/python3 tools/hf_writer.py OUT_DIR [--seed 0] [--dim 64] ...
"""

import json
import os
import struct
import sys

import numpy as np

from llama_ref import gguf_name_to_hf


def _bf16(a):
    from gguf_writer import f32_to_bf16_bits
    return f32_to_bf16_bits(a)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Our own safetensors writer: u64 header size, JSON header (padded with
    spaces to a multiple of 8), raw little-endian data in sorted-name order."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = _bf16(a).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_config(cfg, arch="llama", ctx_len=512):
    hc = {
        "architectures": ["Qwen2ForCausalLM" if arch == "qwen2" else "LlamaForCausalLM"],
        "model_type": arch,
        "hidden_size": cfg["dim"], "intermediate_size": cfg["ffn_dim"],
        "num_hidden_layers": cfg["n_layer"], "num_attention_heads": cfg["n_head"],
        "num_key_value_heads": cfg["n_kv_head"], "head_dim": cfg["head_dim"],
        "vocab_size": cfg["vocab"], "max_position_embeddings": ctx_len,
        "rms_norm_eps": cfg["rms_eps"], "rope_theta": cfg["rope_base"], "rope_scaling": None,
        "hidden_act": "silu", "tie_word_embeddings": bool(cfg["tied"]),
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }
    if arch == "llama":
        hc["attention_bias"] = bool(cfg["bias"])
        hc["mlp_bias"] = False
    if cfg["rope_dim"] != cfg["head_dim"]:
        hc["partial_rotary_factor"] = cfg["rope_dim"] / cfg["head_dim"]
    return hc


def write_hf_dir(path, cfg, weights, arch="llama", tokenizer=None, dtype="F32", ctx_len=512):
    """tokenizer: None or (tokenizer_json dict, tokenizer_config dict)."""
    if cfg["pairing"] != "half":
        raise ValueError("HF directories hold rotate-half (unpermuted) weights")
    os.makedirs(path, exist_ok=True)
    t = {}
    for k, v in weights.items():
        if k == "output.weight" and cfg["tied"]:
            continue
        v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        t[gguf_name_to_hf(k)] = v
    write_safetensors(os.path.join(path, "model.safetensors"), t, dtype)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_config(cfg, arch, ctx_len), f, indent=2)
        f.write("\n")
    if tokenizer is not None:
        tj, tc = tokenizer
        with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
        with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=2)
            f.write("\n")


def random_weights(cfg, seed):
    """Deterministic random weights (numpy float32, HF orientation) scaled so
    the test models have peaked attention and logits of order 1:
    q/k rows ~ N(0, (1.5/sqrt(dim))^2), other matrices ~ N(0, 1/fan_in),
    embeddings ~ N(0, 1) (N(0, 1/16) when tied), norms 1 + N(0, 0.1^2), biases N(0, 0.5^2)."""
    rng = np.random.default_rng(seed)
    dim, hd, H, G, F, V = (cfg["dim"], cfg["head_dim"], cfg["n_head"], cfg["n_kv_head"],
                           cfg["ffn_dim"], cfg["vocab"])

    def mat(rows, cols, scale=1.0):
        return (rng.standard_normal((rows, cols)) * scale / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    # tied: the embedding is also the output matrix; keep logits of order 1
    emb_std = 0.25 if cfg["tied"] else 1.0
    w = {"token_embd.weight": (emb_std * rng.standard_normal((V, dim))).astype(np.float32)}
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        w[p + "attn_norm.weight"] = norm(dim)
        w[p + "attn_q.weight"] = mat(H * hd, dim, 1.5)
        w[p + "attn_k.weight"] = mat(G * hd, dim, 1.5)
        w[p + "attn_v.weight"] = mat(G * hd, dim)
        if cfg["bias"]:
            w[p + "attn_q.bias"] = (0.5 * rng.standard_normal(H * hd)).astype(np.float32)
            w[p + "attn_k.bias"] = (0.5 * rng.standard_normal(G * hd)).astype(np.float32)
            w[p + "attn_v.bias"] = (0.5 * rng.standard_normal(G * hd)).astype(np.float32)
        w[p + "attn_output.weight"] = mat(dim, H * hd)
        w[p + "ffn_norm.weight"] = norm(dim)
        w[p + "ffn_gate.weight"] = mat(F, dim)
        w[p + "ffn_up.weight"] = mat(F, dim)
        w[p + "ffn_down.weight"] = mat(dim, F)
    w["output_norm.weight"] = norm(dim)
    if not cfg["tied"]:
        w["output.weight"] = mat(V, dim, 2.0)
    return w


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="write a random-weight HF Llama directory")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=96)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    a = ap.parse_args(argv)
    cfg = {"dim": a.dim, "n_layer": a.layers, "n_head": a.heads, "n_kv_head": a.kv_heads,
           "head_dim": a.dim // a.heads, "ffn_dim": a.ffn, "vocab": a.vocab, "rms_eps": 1e-5,
           "rope_base": a.rope_base, "rope_dim": a.dim // a.heads, "pairing": "half",
           "tied": a.tied, "bias": False}
    write_hf_dir(a.out, cfg, random_weights(cfg, a.seed), dtype=a.dtype)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:])
