#!/usr/bin/python3
"""make_family_models.py - one random-weight model per supported family, in
both layouts, with the twin's reference logits.

  /usr/bin/python3 tools/make_family_models.py --out testdata   (part of make fixtures)

For each family below it writes
  OUT/models/families/<name>.gguf   the GGUF layout llama.cpp's converter writes
                                    (llama: q/k rows permuted to adjacent pairs,
                                    Llama 3 factors as rope_freqs.weight; gemma:
                                    norms stored as 1 + w; phi3: fused attn_qkv and
                                    ffn_up = gate|up)
  OUT/models/families/<name>-hf/    config.json + model.safetensors (+ tokenizer)
  OUT/fixtures/families/<name>/     tokens.npy [n], logits.npy [n, V] (one prefill),
                                    logits_chunked.npy (tokens[:5], then the rest),
                                    decode_token.npy, decode.npy, meta.json
The reference is tools/llama_ref.py run on the HF-orientation weights with the
family's switches, as Hugging Face computes the model (the GGUF file holds the
same model).  Deterministic (fixed seeds).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gguf_writer as gw  # noqa: E402
import hf_writer  # noqa: E402
import tok_ref  # noqa: E402
from llama_ref import LlamaRef, argmax_first, permute_rows_half_to_adjacent  # noqa: E402

N_TOKENS = 12
CHUNK = 5
CTX_LEN = 512

# Shapes: dim 32, 4 heads, 2 KV heads; windows shorter than the 12 tokens so
# that they cut.  "hf" is the config.json beyond the shapes; "gguf" the
# <arch>.* keys beyond the shapes; "twin" the twin's switches.
FAMILIES = [
    {"name": "llama3", "arch": "llama", "hf_arch": "LlamaForCausalLM", "seed": 2001,
     "shape": dict(n_layer=2, head_dim=8, rope_base=500000.0),
     "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 8.0, "original_max_position_embeddings": 1024}},
    {"name": "mistral", "arch": "llama", "hf_arch": "MistralForCausalLM", "seed": 2002,
     "shape": dict(n_layer=2, head_dim=8, rope_base=1000000.0), "window": 5},
    {"name": "qwen3", "arch": "qwen3", "hf_arch": "Qwen3ForCausalLM", "seed": 2003,
     "shape": dict(n_layer=2, head_dim=16, rope_base=1000000.0), "qk_norm": True,
     "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}},
    {"name": "gemma2", "arch": "gemma2", "hf_arch": "Gemma2ForCausalLM", "seed": 2004,
     "shape": dict(n_layer=2, head_dim=8, rope_base=10000.0), "gemma": True, "window": 4,
     "period": 2, "attn_softcap": 2.0, "final_softcap": 3.0},
    {"name": "gemma3", "arch": "gemma3", "hf_arch": "Gemma3ForCausalLM", "seed": 2005,
     "shape": dict(n_layer=3, head_dim=8, rope_base=1000000.0), "gemma": True, "qk_norm": True,
     "window": 4, "period": 3, "rope_base_local": 10000.0,
     "rope_scaling": {"rope_type": "linear", "factor": 2.0}},
    {"name": "phi3", "arch": "phi3", "hf_arch": "Phi3ForCausalLM", "seed": 2006,
     "shape": dict(n_layer=2, head_dim=8, rope_base=10000.0), "window": 6, "rope_dim": 4},
]


def twin_cfg(fam, vocab):
    s = fam["shape"]
    hd = s["head_dim"]
    cfg = dict(dim=32, n_layer=s["n_layer"], n_head=4, n_kv_head=2, head_dim=hd, ffn_dim=64,
               vocab=vocab, rms_eps=float(np.float32(1e-6)),
               rope_base=float(np.float32(s["rope_base"])), rope_dim=fam.get("rope_dim", hd),
               pairing="half", tied=bool(fam.get("gemma")), bias=False, ctx_len=CTX_LEN)
    if "rope_scaling" in fam:
        cfg["rope_scaling"] = fam["rope_scaling"]
    if fam.get("window"):
        cfg["sliding_window"] = fam["window"]
        p = fam.get("period")
        if p:
            cfg["layer_types"] = ["full_attention" if l % p == p - 1 else "sliding_attention"
                                  for l in range(cfg["n_layer"])]
    if fam.get("rope_base_local"):
        cfg["rope_base_local"] = fam["rope_base_local"]
    cfg["qk_norm"] = bool(fam.get("qk_norm"))
    if fam.get("gemma"):
        cfg.update(post_norms=True, act="gelu_tanh", embd_scale=float(np.sqrt(np.float32(32.0))),
                   attn_scale=float(hd) ** -0.5)
    for k in ("attn_softcap", "final_softcap"):
        if fam.get(k):
            cfg[k] = fam[k]
    return cfg


def family_weights(cfg, seed):
    """HF-orientation weights with effective norm multipliers."""
    w = hf_writer.random_weights(cfg, seed)
    rng = np.random.default_rng(seed + 1)
    hd, dim = cfg["head_dim"], cfg["dim"]
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        if cfg["qk_norm"]:
            w[p + "attn_q_norm.weight"] = (1 + 0.1 * rng.standard_normal(hd)).astype(np.float32)
            w[p + "attn_k_norm.weight"] = (1 + 0.1 * rng.standard_normal(hd)).astype(np.float32)
        if cfg.get("post_norms"):
            w[p + "post_attention_norm.weight"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
            w[p + "post_ffw_norm.weight"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
    return w


# ------------------------------------------------------------------- GGUF

def gguf_keys(w, fam, cfg):
    a = fam["arch"]
    w.add_u32(f"{a}.attention.key_length", cfg["head_dim"])
    w.add_u32(f"{a}.attention.value_length", cfg["head_dim"])
    rs = cfg.get("rope_scaling")
    if rs and rs["rope_type"] == "linear":
        w.add_string(f"{a}.rope.scaling.type", "linear")
        w.add_f32(f"{a}.rope.scaling.factor", rs["factor"])
    if rs and rs["rope_type"] == "yarn":
        w.add_string(f"{a}.rope.scaling.type", "yarn")
        w.add_f32(f"{a}.rope.scaling.factor", rs["factor"])
        w.add_u32(f"{a}.rope.scaling.original_context_length", rs["original_max_position_embeddings"])
    if fam.get("window"):
        w.add_u32(f"{a}.attention.sliding_window", fam["window"])
    if fam.get("period"):
        w.add_u32(f"{a}.attention.sliding_window_pattern", fam["period"])
    if fam.get("rope_base_local"):
        w.add_f32(f"{a}.rope.freq_base_swa", fam["rope_base_local"])
    for k, key in (("attn_softcap", "attn_logit_softcapping"), ("final_softcap", "final_logit_softcapping")):
        if fam.get(k):
            w.add_f32(f"{a}.{key}", fam[k])


def llama3_factors(cfg):
    """rope_freqs.weight as llama.cpp's converter computes it (float32 freqs)."""
    import math
    rs, d, base = cfg["rope_scaling"], cfg["rope_dim"], cfg["rope_base"]
    freqs = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    lo, hi, orig, factor = rs["low_freq_factor"], rs["high_freq_factor"], \
        rs["original_max_position_embeddings"], rs["factor"]
    out = []
    for f in freqs.tolist():
        wl = 2 * math.pi / f
        if wl < orig / hi:
            out.append(1.0)
        elif wl > orig / lo:
            out.append(factor)
        else:
            sm = (orig / wl - lo) / (hi - lo)
            out.append(1 / ((1 - sm) / factor + sm))
    return np.array(out, dtype=np.float32)


def write_gguf(path, fam, cfg, w, vocab):
    a = fam["arch"]
    g = gw.GGUFWriter()
    # general.name without the family: llama.cpp keys vocabulary quirks on it
    gw.add_llama_hparams(g, a, cfg, gw.GGML_F32, "finch tiny family model", CTX_LEN)
    gguf_keys(g, fam, cfg)
    gw.add_tokenizer_llama(g, vocab)
    g.add_tensor("token_embd.weight", w["token_embd.weight"])
    if a == "llama" and cfg.get("rope_scaling"):
        g.add_tensor("rope_freqs.weight", llama3_factors(cfg))
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        q, k = w[p + "attn_q.weight"], w[p + "attn_k.weight"]
        if a == "llama":
            q = permute_rows_half_to_adjacent(q, cfg["n_head"], cfg["head_dim"], cfg["rope_dim"])
            k = permute_rows_half_to_adjacent(k, cfg["n_kv_head"], cfg["head_dim"], cfg["rope_dim"])
        names = ["attn_norm.weight"]
        if a == "phi3":
            g.add_tensor(p + "attn_qkv.weight", np.concatenate([q, k, w[p + "attn_v.weight"]]))
            g.add_tensor(p + "ffn_up.weight", np.concatenate([w[p + "ffn_gate.weight"], w[p + "ffn_up.weight"]]))
        else:
            g.add_tensor(p + "attn_q.weight", q)
            g.add_tensor(p + "attn_k.weight", k)
            names += ["attn_v.weight", "ffn_gate.weight", "ffn_up.weight"]
        names += ["attn_output.weight", "ffn_norm.weight", "ffn_down.weight", "attn_q_norm.weight",
                  "attn_k_norm.weight", "post_attention_norm.weight", "post_ffw_norm.weight"]
        for n in names:
            if p + n in w:
                g.add_tensor(p + n, w[p + n])
    g.add_tensor("output_norm.weight", w["output_norm.weight"])
    if not cfg["tied"]:
        g.add_tensor("output.weight", w["output.weight"])
    g.write(path)


# --------------------------------------------------------------------- HF

HF_LAYER = {
    "attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight", "attn_k_norm.weight": "self_attn.k_norm.weight",
    "attn_output.weight": "self_attn.o_proj.weight", "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
HF_GEMMA = {"ffn_norm.weight": "pre_feedforward_layernorm.weight",
            "post_attention_norm.weight": "post_attention_layernorm.weight",
            "post_ffw_norm.weight": "post_feedforward_layernorm.weight"}


def hf_tensors(fam, cfg, w):
    names = dict(HF_LAYER, **(HF_GEMMA if fam.get("gemma") else {}))
    out = {"model.embed_tokens.weight": w["token_embd.weight"],
           "model.norm.weight": w["output_norm.weight"]}
    if not cfg["tied"]:
        out["lm_head.weight"] = w["output.weight"]
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        for n, hn in names.items():
            if p + n in w:
                out[f"model.layers.{l}.{hn}"] = w[p + n]
        if fam["arch"] == "phi3":
            pre = f"model.layers.{l}."
            out[pre + "self_attn.qkv_proj.weight"] = np.concatenate(
                [out.pop(pre + "self_attn.q_proj.weight"), out.pop(pre + "self_attn.k_proj.weight"),
                 out.pop(pre + "self_attn.v_proj.weight")])
            out[pre + "mlp.gate_up_proj.weight"] = np.concatenate(
                [out.pop(pre + "mlp.gate_proj.weight"), out.pop(pre + "mlp.up_proj.weight")])
    if fam.get("gemma"):  # Gemma's RMSNorm multiplies by (1 + w)
        out = {k: (v - 1.0 if k.endswith("norm.weight") else v) for k, v in out.items()}
    return out


def hf_config(fam, cfg):
    hc = hf_writer.hf_config(cfg, "llama", CTX_LEN)
    hc["architectures"] = [fam["hf_arch"]]
    hc["model_type"] = fam["name"] if fam["name"] != "llama3" else "llama"
    for k in ("attention_bias", "mlp_bias"):
        hc.pop(k, None)
    hc["rope_scaling"] = cfg.get("rope_scaling")
    if fam.get("window"):
        hc["sliding_window"] = fam["window"]
    if fam.get("gemma"):
        hc.pop("hidden_act")
        hc["hidden_activation"] = "gelu_pytorch_tanh"
        hc["query_pre_attn_scalar"] = cfg["head_dim"]
        hc["attn_logit_softcapping"] = fam.get("attn_softcap")
        hc["final_logit_softcapping"] = fam.get("final_softcap")
    if fam["name"] == "gemma3":
        hc["sliding_window_pattern"] = fam["period"]
        hc["rope_local_base_freq"] = fam["rope_base_local"]
    return hc


def write_hf(path, fam, cfg, w, vocab):
    os.makedirs(path, exist_ok=True)
    hf_writer.write_safetensors(os.path.join(path, "model.safetensors"), hf_tensors(fam, cfg, w))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_config(fam, cfg), f, indent=2)
        f.write("\n")
    with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok_ref.hf_tokenizer_json(vocab), f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(tok_ref.hf_tokenizer_config(), f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------ fixtures

def t2n(t):
    return t.detach().cpu().numpy()


def write_fixture(d, tokens, model, meta):
    os.makedirs(d, exist_ok=True)
    n = len(tokens)
    r = model.forward(tokens)
    tok = argmax_first(r["logits"][-1])
    dec = model.forward([tok], pos0=n, past=r["kv"])
    r1 = model.forward(tokens[:CHUNK])
    r2 = model.forward(tokens[CHUNK:], pos0=CHUNK, past=r1["kv"])
    chunked = np.concatenate([t2n(r1["logits"]), t2n(r2["logits"])])
    np.save(os.path.join(d, "tokens.npy"), np.array(tokens, np.int32))
    np.save(os.path.join(d, "logits.npy"), t2n(r["logits"]).astype(np.float32))
    np.save(os.path.join(d, "logits_chunked.npy"), chunked.astype(np.float32))
    np.save(os.path.join(d, "decode_token.npy"), np.array([tok], np.int32))
    np.save(os.path.join(d, "decode.npy"), t2n(dec["logits"][0]).astype(np.float32))
    meta = dict(meta, decode_token=tok,
                max_diff_chunked_vs_prefill=float(np.max(np.abs(chunked - t2n(r["logits"])))))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    return meta


def build(out, log, only=None):
    vocab = tok_ref.build_tiny_spm_vocab()
    V = len(vocab["tokens"])
    mdir = os.path.join(out, "models", "families")
    os.makedirs(mdir, exist_ok=True)
    for fam in FAMILIES:
        if only and fam["name"] not in only:
            continue
        cfg = twin_cfg(fam, V)
        w = family_weights(cfg, fam["seed"])
        rng = np.random.default_rng(fam["seed"] + 7)
        tokens = [vocab["bos"]] + [int(x) for x in rng.integers(3, V, N_TOKENS - 1)]
        name = fam["name"]
        write_gguf(os.path.join(mdir, name + ".gguf"), fam, cfg, w, vocab)
        write_hf(os.path.join(mdir, name + "-hf"), fam, cfg, w, vocab)
        model = LlamaRef(cfg, w)
        plain = LlamaRef(dict(cfg, rope_scaling=None, sliding_window=None, attn_softcap=None,
                              final_softcap=None), w)
        meta = {"family": fam["name"], "gguf": f"models/families/{name}.gguf",
                "hf": f"models/families/{name}-hf",
                "cfg": cfg, "seed": fam["seed"],
                "max_diff_vs_plain_llama_switches": float(torch.max(torch.abs(
                    model.forward(tokens)["logits"] - plain.forward(tokens)["logits"])))}
        meta = write_fixture(os.path.join(out, "fixtures", "families", name), tokens, model, meta)
        log(f"  {name}: decode token {meta['decode_token']}, chunked vs prefill "
            f"{meta['max_diff_chunked_vs_prefill']:.2e}, scaling/window/cap effect "
            f"{meta['max_diff_vs_plain_llama_switches']:.3g}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="testdata")
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    build(a.out, print, a.only)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
