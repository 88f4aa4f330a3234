#!/usr/bin/python3
"""make_fixtures.py - regenerate finch's test models and reference tensors.

  /usr/bin/python3 tools/make_fixtures.py --out testdata      (= make fixtures)

Everything is deterministic (fixed seeds).  Writes
  OUT/models/tiny-llama{,-f16,-bf16,-q8_0}.gguf, tiny-llama-gqa.gguf,
  OUT/models/tiny-qwen2.gguf, OUT/models/tiny-hf-llama/ (HF directory)
  OUT/fixtures/<model>/*.npy + meta.json        (see testdata/README.md)
  OUT/fixtures/tokenizer/tiny-spm.json          (tokenizer test vectors)
  OUT/fixtures/tinystories/                     (when the shared assets exist)
  OUT/models/quant/, OUT/fixtures/tiny-quant-*/ (tools/make_quant_fixtures.py)
plus whatever tools/finch_ref.py's build_fixtures(out, log, assets) adds when
that module exists, then runs check_fixtures.py on the result.

Reference tensors are computed by llama_ref.LlamaRef from the weights exactly
as stored in each file (dequantised), in the layout the engine sees for that
file: GGUF 'llama' files hold q/k rows permuted to adjacent pairs and are run
with pairing 'adjacent'; 'qwen2' files and HF directories use 'half'.
Each GGUF llama model is also run in HF orientation (un-permuted weights,
pairing 'half'); the two must agree (checked here, max |diff| reported).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gguf_reader as gr  # noqa: E402
import gguf_writer as gw  # noqa: E402
import hf_writer  # noqa: E402
import llama_ref  # noqa: E402
import tok_ref  # noqa: E402
from llama_ref import LlamaRef, argmax_first, permute_rows_half_to_adjacent  # noqa: E402

torch.set_num_threads(2)

N_TOKENS = 12
CHUNK = 5            # chunked feed: tokens[:CHUNK] at 0, tokens[CHUNK:] at pos0=CHUNK
CTX_LEN = 512
GEN_TINYSTORIES = 32
TINYSTORIES_PROMPT = "Once upon a time"

# Base models.  Every matmul input dimension (dim, H*hd, ffn) is a multiple
# of 32 so that Q8_0 applies to all 2-D weights.
BASES = [
    {"name": "tiny-llama", "arch": "llama", "seed": 1001,
     "cfg": dict(dim=64, n_layer=2, n_head=4, n_kv_head=4, head_dim=16, ffn_dim=64,
                 rms_eps=1e-5, rope_base=10000.0, rope_dim=16, tied=False, bias=False),
     "variants": [("tiny-llama", gw.GGML_F32), ("tiny-llama-f16", gw.GGML_F16),
                  ("tiny-llama-bf16", gw.GGML_BF16), ("tiny-llama-q8_0", gw.GGML_Q8_0)]},
    {"name": "tiny-llama-gqa", "arch": "llama", "seed": 1002, "hf_dir": "tiny-hf-llama",
     "cfg": dict(dim=32, n_layer=2, n_head=4, n_kv_head=2, head_dim=8, ffn_dim=64,
                 rms_eps=1e-5, rope_base=500000.0, rope_dim=8, tied=False, bias=False),
     "variants": [("tiny-llama-gqa", gw.GGML_F32)]},
    {"name": "tiny-qwen2", "arch": "qwen2", "seed": 1003,
     "cfg": dict(dim=32, n_layer=2, n_head=4, n_kv_head=2, head_dim=8, ffn_dim=64,
                 rms_eps=1e-6, rope_base=1000000.0, rope_dim=8, tied=True, bias=True),
     "variants": [("tiny-qwen2", gw.GGML_F32)]},
]

TOKENIZER_CASES = [
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily.",
    "The cat sat on the mat.",
    "Hello world",
    "  two  spaces",
    "tab\tand\nnewline",
    "caf\u00e9 \u00fcber na\u00efve",
    "\u65e5\u672c",
    "emoji \U0001F600!",
    "",
    " ",
    "Lily and Tom played.",
]


def save(d, name, arr, dtype):
    np.save(os.path.join(d, name), np.ascontiguousarray(np.asarray(arr), dtype=dtype))


def t2n(t):
    return t.detach().cpu().numpy()


def reference_run(model, tokens):
    """All the fixture tensors of one model for one token sequence."""
    n = len(tokens)
    r = model.forward(tokens, return_q=True, return_attn=True)
    out = {
        "logits": t2n(r["logits"]),
        "hidden": np.stack([t2n(h) for h in r["hidden"]]),
        "k": np.stack([t2n(k) for k, _ in r["kv"]]),
        "v": np.stack([t2n(v) for _, v in r["kv"]]),
        "q": np.stack([t2n(q) for q in r["q"]]),
        "attn": np.stack([t2n(a) for a in r["attn"]]),
    }
    tok = argmax_first(r["logits"][-1])
    d = model.forward([tok], pos0=n, past=r["kv"])
    out["decode_token"] = np.array([tok], dtype=np.int32)
    out["decode"] = t2n(d["logits"][0])
    c = CHUNK if n > CHUNK else max(1, n // 2)
    r1 = model.forward(tokens[:c])
    r2 = model.forward(tokens[c:], pos0=c, past=r1["kv"])
    out["chunk_sizes"] = np.array([c, n - c], dtype=np.int32)
    out["logits_chunked"] = np.concatenate([t2n(r1["logits"]), t2n(r2["logits"])])
    out["k_chunked"] = np.stack([t2n(k) for k, _ in r2["kv"]])
    return out


def write_fixture_dir(d, tokens, res, meta):
    os.makedirs(d, exist_ok=True)
    save(d, "tokens.npy", tokens, np.int32)
    for k in ("logits", "hidden", "k", "v", "q", "attn", "decode", "logits_chunked"):
        save(d, k + ".npy", res[k], np.float32)
    save(d, "decode_token.npy", res["decode_token"], np.int32)
    save(d, "chunk_sizes.npy", res["chunk_sizes"], np.int32)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def permute_k_to_adjacent(k, rope_dim):
    """k [..., hd] in HF layout -> the same keys in adjacent layout."""
    hd = k.shape[-1]
    order = permute_rows_half_to_adjacent(np.arange(hd), 1, hd, rope_dim)
    return k[..., order]


def build_tiny(out, log):
    vocab = tok_ref.build_tiny_spm_vocab()
    V = len(vocab["tokens"])
    mdir = os.path.join(out, "models")
    os.makedirs(mdir, exist_ok=True)
    summary = {}
    for base in BASES:
        cfg = dict(base["cfg"], vocab=V, pairing="half")
        # GGUF stores eps and theta as f32: use exactly those values
        cfg["rms_eps"] = float(np.float32(cfg["rms_eps"]))
        cfg["rope_base"] = float(np.float32(cfg["rope_base"]))
        w = hf_writer.random_weights(cfg, base["seed"])
        rng = np.random.default_rng(base["seed"] + 7)
        tokens = [vocab["bos"]] + [int(x) for x in rng.integers(3, V, N_TOKENS - 1)]
        for vname, wtype in base["variants"]:
            path = os.path.join(mdir, vname + ".gguf")
            stored = gw.write_model_gguf(path, base["arch"], cfg, w, wtype, name=vname,
                                         ctx_len=CTX_LEN, vocab=vocab)
            # HF orientation, rotate-half pairing
            res_half = reference_run(LlamaRef(cfg, stored), tokens)
            if base["arch"] == "llama":
                # the file's own layout: permuted q/k rows, adjacent pairing
                fcfg = dict(cfg, pairing="adjacent")
                fw = {}
                for k, v in stored.items():
                    if ".attn_q." in k or ".attn_k." in k:
                        heads = cfg["n_head"] if ".attn_q." in k else cfg["n_kv_head"]
                        v = permute_rows_half_to_adjacent(v, heads, cfg["head_dim"], cfg["rope_dim"])
                    fw[k] = v
                res = reference_run(LlamaRef(fcfg, fw), tokens)
                eq = {
                    "logits": maxdiff(res["logits"], res_half["logits"]),
                    "hidden": maxdiff(res["hidden"], res_half["hidden"]),
                    "decode": maxdiff(res["decode"], res_half["decode"]),
                    "k": maxdiff(res["k"], permute_k_to_adjacent(res_half["k"], cfg["rope_dim"])),
                    "v": maxdiff(res["v"], res_half["v"]),
                }
                log(f"  {vname}: adjacent(permuted) vs half(HF): " +
                    ", ".join(f"{k} {v:.2e}" for k, v in eq.items()))
                if max(eq.values()) > 1e-5:
                    raise SystemExit(f"{vname}: pairing equivalence failed: {eq}")
                pairing = "adjacent"
            else:
                res, eq, pairing = res_half, None, "half"
            ch = maxdiff(res["logits"], res["logits_chunked"])
            chk = maxdiff(res["k"], res["k_chunked"])
            if ch > 1e-5 or chk > 1e-5:
                raise SystemExit(f"{vname}: chunked feed differs: logits {ch}, k {chk}")
            meta = {
                "model": f"models/{vname}.gguf", "arch": base["arch"],
                "weight_type": gw.GGML_TYPE_NAMES[wtype], "pairing_in_file": pairing,
                "cfg": dict(cfg, pairing=pairing), "seed": base["seed"],
                "n_tokens": len(tokens), "chunk_sizes": [int(x) for x in res["chunk_sizes"]],
                "decode_token": int(res["decode_token"][0]),
                "max_diff_chunked_vs_prefill_logits": ch,
                "max_diff_adjacent_vs_half": eq,
                "note": "reference computed from the dequantised stored weights",
            }
            write_fixture_dir(os.path.join(out, "fixtures", vname), tokens, res, meta)
            summary[vname] = {"chunked": ch, "pairing_equivalence": eq}
            if wtype == gw.GGML_Q8_0:
                build_q8act(out, vname, path, tokens, res, log)
            log(f"  {vname}: {path} ({os.path.getsize(path)} bytes), chunked-vs-prefill "
                f"logits {ch:.2e}, decode token {int(res['decode_token'][0])}")
        if "hf_dir" in base:
            hname = base["hf_dir"]
            hdir = os.path.join(mdir, hname)
            hf_writer.write_hf_dir(hdir, cfg, w, arch=base["arch"],
                                   tokenizer=(tok_ref.hf_tokenizer_json(vocab),
                                              tok_ref.hf_tokenizer_config()),
                                   ctx_len=CTX_LEN)
            hcfg, hw = llama_ref.load_hf_dir(hdir)
            assert hcfg == cfg, (hcfg, cfg)
            res = reference_run(LlamaRef(hcfg, hw), tokens)
            gqa = np.load(os.path.join(out, "fixtures", base["variants"][0][0], "logits.npy"))
            d = maxdiff(res["logits"], gqa)
            log(f"  {hname}: HF dir (half) vs {base['variants'][0][0]}.gguf fixture (adjacent): "
                f"logits max diff {d:.2e}")
            if d > 1e-5:
                raise SystemExit(f"{hname}: HF and GGUF disagree ({d})")
            meta = {"model": f"models/{hname}", "arch": base["arch"], "weight_type": "F32",
                    "pairing_in_file": "half", "cfg": cfg, "seed": base["seed"],
                    "n_tokens": len(tokens), "chunk_sizes": [int(x) for x in res["chunk_sizes"]],
                    "decode_token": int(res["decode_token"][0]),
                    "same_weights_as": base["variants"][0][0],
                    "max_diff_logits_vs_gguf": d,
                    "max_diff_chunked_vs_prefill_logits":
                        maxdiff(res["logits"], res["logits_chunked"])}
            write_fixture_dir(os.path.join(out, "fixtures", hname), tokens, res, meta)
    return vocab, summary


def q8act_model(path):
    """The model of a Q8_0 GGUF as ggml-style kernels compute it: every
    product with a Q8_0 matrix quantizes its input to Q8_0 as well (the
    token embedding is only gathered, unless it is also the output)."""
    cfg, w, g = gr.load_gguf_model(path)
    quant = {}
    for name, t in g.tensors.items():
        if t.type == gr.Q8_0 and (name != "token_embd.weight" or cfg["tied"]):
            quant[name] = gr.q8_0_blocks(t)
    return LlamaRef(cfg, w, quant=quant), cfg


def build_q8act(out, vname, path, tokens, res_deq, log):
    name = vname + "-q8act"
    model, cfg = q8act_model(path)
    res = reference_run(model, tokens)
    d = maxdiff(res["logits"], res_deq["logits"])
    ch = maxdiff(res["logits"], res["logits_chunked"])
    meta = {"model": f"models/{vname}.gguf", "arch": "llama", "weight_type": "Q8_0",
            "pairing_in_file": cfg["pairing"], "cfg": cfg,
            "act_quant": "q8_0: each matmul input row quantized per 32-block as llama.cpp's "
                         "x86 quantize_row_q8_0 (id = 127/amax, ties to even); block dot = "
                         "(d_w * d_x) * isum, f32 accumulation over blocks in order",
            "n_tokens": len(tokens), "chunk_sizes": [int(x) for x in res["chunk_sizes"]],
            "decode_token": int(res["decode_token"][0]),
            "max_diff_logits_vs_dequantized_fixture": d,
            "max_diff_chunked_vs_prefill_logits": ch}
    write_fixture_dir(os.path.join(out, "fixtures", name), tokens, res, meta)
    log(f"  {name}: Q8_0 activations too; logits differ from {vname} (f32 activations) "
        f"by {d:.3g}; chunked-vs-prefill {ch:.2e}; decode token {int(res['decode_token'][0])}")


def build_tokenizer_cases(out, vocab, log):
    tj = tok_ref.hf_tokenizer_json(vocab)
    ids = [tok_ref.spm_encode(vocab, t) for t in TOKENIZER_CASES]
    ref = tok_ref.sentencepiece_encode(vocab, TOKENIZER_CASES)
    cases = []
    for i, t in enumerate(TOKENIZER_CASES):
        hf = tok_ref.hf_bpe_encode(tj, t)
        c = {"text": t, "ids": ids[i], "decoded": tok_ref.spm_decode(vocab, ids[i])}
        if ref is not None and ref[i] != ids[i]:
            raise SystemExit(f"tokenizer: sentencepiece disagrees on {t!r}: {ref[i]} vs {ids[i]}")
        if hf != ids[i]:
            c["ids_hf_tokenizer_json"] = hf
        cases.append(c)
    verified = None
    if ref is not None:
        import sentencepiece
        verified = f"sentencepiece {sentencepiece.__version__}: {len(ref)}/{len(ref)} agree"
    d = os.path.join(out, "fixtures", "tokenizer")
    os.makedirs(d, exist_ok=True)
    doc = {"vocab": "tokenizer.ggml.* of testdata/models/tiny-*.gguf "
                    "(and tokenizer.json of tiny-hf-llama)",
           "add_bos": True, "bos": vocab["bos"], "eos": vocab["eos"],
           "n_vocab": len(vocab["tokens"]),
           "verified_by": verified or "not verified (sentencepiece not installed)",
           "cases": cases}
    with open(os.path.join(d, "tiny-spm.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    n_hf = sum(1 for c in cases if "ids_hf_tokenizer_json" in c)
    log(f"  tokenizer: {len(cases)} cases, {verified}; HF-BPE differs on {n_hf}")


def build_tinystories(out, assets, log):
    src = os.path.join(assets, "models", "tinystories-656k")
    if not os.path.exists(os.path.join(src, "model.safetensors")):
        log(f"  tinystories: {src} absent, fixtures left as they are")
        return
    cfg, w = llama_ref.load_hf_dir(src)
    m = LlamaRef(cfg, w)
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    inv = llama_ref.load_hf_tokenizer_vocab(src)
    tokens = tok_ref.hf_bpe_encode(tj, TINYSTORIES_PROMPT)
    res = reference_run(m, tokens)
    gen = m.generate_greedy(tokens, GEN_TINYSTORIES)
    gen_bos = m.generate_greedy([1], GEN_TINYSTORIES)
    text = llama_ref.decode_pieces([inv[i] for i in tokens[1:] + gen])
    text_bos = llama_ref.decode_pieces([inv[i] for i in gen_bos])
    d = os.path.join(out, "fixtures", "tinystories")
    os.makedirs(d, exist_ok=True)
    save(d, "tokens.npy", tokens, np.int32)
    for k in ("logits", "hidden", "k", "v", "decode", "logits_chunked"):
        save(d, k + ".npy", res[k], np.float32)
    save(d, "decode_token.npy", res["decode_token"], np.int32)
    save(d, "chunk_sizes.npy", res["chunk_sizes"], np.int32)
    save(d, "generated.npy", gen, np.int32)
    save(d, "generated_from_bos.npy", gen_bos, np.int32)
    meta = {"model": "../shared/assets/models/tinystories-656k (HF directory)",
            "cfg": cfg, "prompt": TINYSTORIES_PROMPT,
            "tokens": tokens, "pieces": [inv[i] for i in tokens],
            "tokenized_by": "tools/tok_ref.py hf_bpe_encode (tokenizer.json BPE merges; "
                            "BOS from the post-processor)",
            "generated": gen, "generated_text": text,
            "generated_from_bos": gen_bos, "generated_from_bos_text": text_bos,
            "greedy": "argmax, ties to the smaller id, through the KV cache",
            "chunk_sizes": [int(x) for x in res["chunk_sizes"]],
            "max_diff_chunked_vs_prefill_logits": maxdiff(res["logits"], res["logits_chunked"])}
    with open(os.path.join(d, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    log(f"  tinystories: prompt ids {tokens}; greedy {GEN_TINYSTORIES}: {text!r}")
    log(f"  tinystories: from BOS: {text_bos!r}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="testdata")
    ap.add_argument("--assets", default=os.environ.get(
        "FINCH_ASSETS", os.path.join(HERE, "..", "..", "shared", "assets")))
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args(argv)
    log = print
    log(f"make_fixtures: writing {a.out}")
    vocab, _ = build_tiny(a.out, log)
    build_tokenizer_cases(a.out, vocab, log)
    build_tinystories(a.out, a.assets, log)
    import make_quant_fixtures  # one model per quantized GGUF type
    make_quant_fixtures.build(a.out, log)
    # Finch reference modes (tools/finch_ref.py, when present) add their own
    # fixtures through build_fixtures(out_dir, log, assets_dir).
    import importlib.util
    if importlib.util.find_spec("finch_ref") is not None:
        import finch_ref
        if hasattr(finch_ref, "build_fixtures"):
            log("finch_ref.build_fixtures")
            finch_ref.build_fixtures(a.out, log, a.assets)
    if not a.no_check:
        import check_fixtures
        rc = check_fixtures.main(["--dir", a.out])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
