#!/usr/bin/python3
"""check_fixtures.py - prove that testdata/ round-trips and is self-consistent.

  /usr/bin/python3 tools/check_fixtures.py [--dir testdata] [--assets DIR]

For every fixture directory:
  * re-read the model file with our own readers (tools/gguf_reader.py for
    GGUF, llama_ref.load_hf_dir for HF directories), check its metadata,
    tensor types and shapes, re-run llama_ref.LlamaRef in the file's own
    pairing and compare every recorded tensor;
  * re-compute the logits with a second, naive float64 numpy implementation
    (explicit loops over heads and rotation pairs) as an independent check of
    the reference itself;
  * tokenizer vectors: re-encode with the vocabulary read back from the GGUF.
Unit checks of the building blocks run first: RoPE re-rotation, the
half/adjacent permutation (full and partial rope_dim), Q8_0 / BF16 / F16
encodings against hand-computed values.
When tools/finch_ref.py exists and defines check_fixtures(dir, check, assets),
it runs last; check(cond, what) records a pass/fail line.
Exit status 0 when everything passes.
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
import llama_ref  # noqa: E402
import tok_ref  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402

torch.set_num_threads(2)

FAILS = []


def check(cond, what):
    print(f"    {'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        FAILS.append(what)


def maxdiff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# ------------------------------------------------------------ unit checks

def unit_checks():
    print("unit checks")
    g = torch.Generator().manual_seed(0)
    for pairing in ("half", "adjacent"):
        for rd in (16, 8):
            x = torch.randn(3, 7, 16, generator=g)
            pos = torch.arange(7) + 11
            k = llama_ref.rope(x, pos, pairing, 10000.0, rd)
            delta = torch.tensor([-11, -5, 0, 3, 17, -17, 40])
            k2 = llama_ref.rerotate(k, delta, pairing, 10000.0, rd)
            direct = llama_ref.rope(x, pos + delta, pairing, 10000.0, rd)
            d = maxdiff(k2, direct)
            check(d < 1e-5, f"rerotate == rope at p+delta ({pairing}, rope_dim {rd}): {d:.2e}")
            check(torch.equal(k[..., rd:], x[..., rd:]), f"dims >= rope_dim untouched ({pairing}, {rd})")
    # half on HF weights == adjacent on permuted weights (also partial rope)
    for rd in (16, 8):
        cfg = dict(dim=64, n_layer=2, n_head=4, n_kv_head=2, head_dim=16, ffn_dim=64, vocab=50,
                   rms_eps=1e-5, rope_base=10000.0, rope_dim=rd, pairing="half", tied=True,
                   bias=True)
        import hf_writer
        w = hf_writer.random_weights(cfg, 7)
        wa = {}
        for k, v in w.items():
            if ".attn_q." in k or ".attn_k." in k:
                heads = 4 if ".attn_q." in k else 2
                v = llama_ref.permute_rows_half_to_adjacent(v, heads, 16, rd)
                back = llama_ref.permute_rows_adjacent_to_half(v, heads, 16, rd)
                check(np.array_equal(back, w[k]), f"permute inverse {k} rope_dim {rd}") \
                    if k == "blk.0.attn_q.weight" else None
            wa[k] = v
        ids = [1, 5, 9, 2, 33, 49, 0, 7]
        a = LlamaRef(cfg, w).forward(ids)["logits"]
        b = LlamaRef(dict(cfg, pairing="adjacent"), wa).forward(ids)["logits"]
        d = maxdiff(a, b) / float(a.abs().max())
        check(d < 1e-6, f"float32 LlamaRef: adjacent(permuted) == half(HF), rope_dim {rd}: "
                        f"max |diff| / max |logit| = {d:.2e}")
        a = naive_logits(cfg, w, ids)
        b = naive_logits(dict(cfg, pairing="adjacent"), wa, ids)
        d = maxdiff(a, b)
        check(d < 1e-10, f"float64 naive: adjacent(permuted) == half(HF), rope_dim {rd}: {d:.2e}")
    # the llama.cpp formula for the full-head permutation
    wq = np.arange(4 * 16 * 3, dtype=np.float32).reshape(64, 3)
    lc = wq.reshape(4, 2, 8, 3).swapaxes(1, 2).reshape(64, 3)
    check(np.array_equal(llama_ref.permute_rows_half_to_adjacent(wq, 4), lc),
          "permutation == llama.cpp convert_hf_to_gguf permute")
    # Q8_0: hand-computed blocks
    x = np.zeros(32, np.float32)
    x[:6] = [127.0, 0.5, -0.5, 2.5, -2.5, 1.49]
    d, q = gw.quantize_q8_0(x)
    check(float(d[0]) == 1.0 and list(q[0, :6]) == [127, 1, -1, 3, -3, 1],
          "Q8_0 d = amax/127, roundf half away from zero")
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    rt = gw.stored_values(x, gw.GGML_Q8_0)
    check(maxdiff(rt, x) <= 3 / 127 / 2 + 1e-3, f"Q8_0 round trip error {maxdiff(rt, x):.3e}")
    check(len(gw.encode_tensor(x, gw.GGML_Q8_0)) == 2 * 34, "Q8_0 block = 34 bytes")
    # BF16: round to nearest even on the dropped 16 bits
    u = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x7FC00001], np.uint32).view(np.float32)
    check(list(gw.f32_to_bf16_bits(u)) == [0x3F80, 0x3F82, 0x3F81, 0x7FC0],
          "BF16 ties-to-even and NaN")
    check(list(gw.f32_to_bf16_bits(np.array([1.0, -2.0], np.float32))) == [0x3F80, 0xC000],
          "BF16 exact values")
    check(gw.encode_tensor(np.array([1.0, 65504.0], np.float32), gw.GGML_F16)
          == bytes([0x00, 0x3C, 0xFF, 0x7B]), "F16 encoding")


# ------------------------------------------------- naive float64 forward

def naive_logits(cfg, w, ids):
    """Independent float64 forward with explicit loops (slow, tiny models)."""
    W = {k: np.asarray(v, np.float64) for k, v in w.items()}
    H, G, hd, rd = cfg["n_head"], cfg["n_kv_head"], cfg["head_dim"], cfg["rope_dim"]
    eps = cfg["rms_eps"]
    n = len(ids)

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x) + eps) * g

    def rot(vec, p):
        out = vec.copy()
        for i in range(rd // 2):
            th = p * cfg["rope_base"] ** (-2.0 * i / rd)
            a, b = (i, i + rd // 2) if cfg["pairing"] == "half" else (2 * i, 2 * i + 1)
            c, s = np.cos(th), np.sin(th)
            out[a] = vec[a] * c - vec[b] * s
            out[b] = vec[b] * c + vec[a] * s
        return out

    X = [W["token_embd.weight"][t].copy() for t in ids]
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        Q, K, Vv = [], [], []
        for i in range(n):
            h = rms(X[i], W[p + "attn_norm.weight"])
            q = W[p + "attn_q.weight"] @ h
            k = W[p + "attn_k.weight"] @ h
            v = W[p + "attn_v.weight"] @ h
            if cfg["bias"]:
                q, k, v = q + W[p + "attn_q.bias"], k + W[p + "attn_k.bias"], v + W[p + "attn_v.bias"]
            Q.append([rot(q[j * hd:(j + 1) * hd], i) for j in range(H)])
            K.append([rot(k[j * hd:(j + 1) * hd], i) for j in range(G)])
            Vv.append([v[j * hd:(j + 1) * hd] for j in range(G)])
        for i in range(n):
            o = np.zeros(H * hd)
            for hh in range(H):
                g = hh // (H // G)
                s = np.array([Q[i][hh] @ K[j][g] / np.sqrt(hd) for j in range(i + 1)])
                a = np.exp(s - s.max())
                a /= a.sum()
                o[hh * hd:(hh + 1) * hd] = sum(a[j] * Vv[j][g] for j in range(i + 1))
            X[i] = X[i] + W[p + "attn_output.weight"] @ o
            h = rms(X[i], W[p + "ffn_norm.weight"])
            gt = W[p + "ffn_gate.weight"] @ h
            X[i] = X[i] + W[p + "ffn_down.weight"] @ (gt / (1 + np.exp(-gt)) * (W[p + "ffn_up.weight"] @ h))
    out = W["token_embd.weight"] if cfg["tied"] else W["output.weight"]
    return np.stack([out @ rms(x, W["output_norm.weight"]) for x in X])


# ---------------------------------------------------------- model fixtures

def compare_run(model, fdir, tol=0.0):
    import make_fixtures
    tokens = [int(t) for t in np.load(os.path.join(fdir, "tokens.npy"))]
    res = make_fixtures.reference_run(model, tokens)
    for k in ("logits", "hidden", "k", "v", "q", "attn", "decode", "logits_chunked",
              "decode_token", "chunk_sizes"):
        f = os.path.join(fdir, k + ".npy")
        if not os.path.exists(f):
            continue
        ref = np.load(f)
        want = np.int32 if k in ("decode_token", "chunk_sizes") else np.float32
        check(ref.dtype == want and ref.flags.c_contiguous, f"{k}.npy dtype {ref.dtype}")
        d = maxdiff(ref, res[k])
        check(d <= tol, f"{k} {tuple(ref.shape)} re-run max diff {d:.2e}")
    return tokens


def check_quant_fixture(root, name, meta, path):
    """tools/make_quant_fixtures.py's models: every 2-D weight in the type,
    and the reference re-run (dequantized, or the Q8 emulation for -q8act)."""
    import make_quant_fixtures
    import quants
    cfg, w, g = gr.load_gguf_model(path)
    want_t = next(t for t, tr in quants.TRAITS.items() if tr[0] == meta["weight_type"])
    check(all(t.type == (want_t if len(t.ne) == 2 else gr.F32) for t in g.tensors.values()),
          f"tensor types: 2-D {meta['weight_type']}, 1-D F32")
    check(cfg == meta["cfg"], "cfg from file == meta cfg")
    model = make_quant_fixtures.q8_model(path)[0] if name.endswith("-q8act") else LlamaRef(cfg, w)
    compare_run(model, os.path.join(root, "fixtures", name))
    return g


def check_gguf_fixture(root, name, meta):
    path = os.path.join(root, meta["model"])
    if name.startswith("tiny-quant-"):
        return check_quant_fixture(root, name, meta, path)
    cfg, w, g = gr.load_gguf_model(path)
    check(g.version == 3 and g.alignment == 32, f"{meta['model']}: GGUF v{g.version}")
    check(cfg == meta["cfg"], f"cfg from file == meta cfg ({cfg['pairing']})")
    want_t = gw.GGML_TYPE_BY_NAME[meta["weight_type"]]
    types_ok = all(t.type == (want_t if len(t.ne) == 2 else gr.F32) for t in g.tensors.values())
    check(types_ok, f"tensor types: 2-D {meta['weight_type']}, 1-D F32")
    check(all(t.offset % 32 == 0 for t in g.tensors.values()), "tensor offsets aligned to 32")
    arch = g.meta["general.architecture"]
    check(arch == meta["arch"], f"general.architecture = {arch}")
    check(g.meta_types[f"{arch}.context_length"] == 4
          and g.meta_types[f"{arch}.attention.layer_norm_rms_epsilon"] == 6,
          "metadata value types (u32 lengths, f32 eps)")
    check(g.meta.get("tokenizer.ggml.model") == "llama"
          and len(g.meta["tokenizer.ggml.tokens"]) == cfg["vocab"], "tokenizer.ggml.* present")
    check(("output.weight" in g.tensors) != cfg["tied"], "output.weight present iff untied")
    if "act_quant" in meta:
        import make_fixtures
        model, _ = make_fixtures.q8act_model(path)
        compare_run(model, os.path.join(root, "fixtures", name))
        return g
    model = LlamaRef(cfg, w)
    tokens = compare_run(model, os.path.join(root, "fixtures", name))
    nl = naive_logits(cfg, w, tokens)
    d = maxdiff(nl, np.load(os.path.join(root, "fixtures", name, "logits.npy")))
    check(d < 1e-4, f"naive float64 loops vs logits.npy: {d:.2e}")
    return g


def check_hf_fixture(root, name, meta):
    path = os.path.join(root, meta["model"])
    cfg, w = llama_ref.load_hf_dir(path)
    check(cfg == meta["cfg"], "cfg from config.json == meta cfg")
    compare_run(LlamaRef(cfg, w), os.path.join(root, "fixtures", name))
    other = os.path.join(root, "fixtures", meta["same_weights_as"])
    for k in ("logits", "hidden", "v", "decode"):
        d = maxdiff(np.load(os.path.join(other, k + ".npy")),
                    np.load(os.path.join(root, "fixtures", name, k + ".npy")))
        check(d < 1e-5, f"{k}: HF dir (half) vs {meta['same_weights_as']} (GGUF, adjacent) {d:.2e}")
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    check(len(tj["model"]["vocab"]) == cfg["vocab"], "tokenizer.json vocab size")


def check_tokenizer(root, g):
    with open(os.path.join(root, "fixtures", "tokenizer", "tiny-spm.json"), encoding="utf-8") as f:
        doc = json.load(f)
    vocab = {"tokens": g.meta["tokenizer.ggml.tokens"], "scores": g.meta["tokenizer.ggml.scores"],
             "types": g.meta["tokenizer.ggml.token_type"],
             "bos": g.meta["tokenizer.ggml.bos_token_id"],
             "eos": g.meta["tokenizer.ggml.eos_token_id"],
             "unk": g.meta["tokenizer.ggml.unknown_token_id"], "merges": []}
    tok_ref.check_spm_vocab(vocab)
    check(True, "every merged piece is reachable from two higher-scoring pieces")
    bad = [c["text"] for c in doc["cases"] if tok_ref.spm_encode(vocab, c["text"]) != c["ids"]]
    check(not bad, f"{len(doc['cases'])} tokenizer cases re-encode from the GGUF vocab {bad}")
    sp = tok_ref.sentencepiece_encode(vocab, [c["text"] for c in doc["cases"]])
    if sp is not None:
        bad = [c["text"] for c, s in zip(doc["cases"], sp) if s != c["ids"]]
        check(not bad, f"sentencepiece library agrees on all cases {bad}")
    bad = [c["text"] for c in doc["cases"] if tok_ref.spm_decode(vocab, c["ids"]) != c["decoded"]]
    check(not bad, "decode of ids == recorded text")


def check_tinystories(root, assets):
    fdir = os.path.join(root, "fixtures", "tinystories")
    src = os.path.join(assets, "models", "tinystories-656k")
    if not os.path.isdir(fdir):
        print("  tinystories: no fixtures")
        return
    if not os.path.exists(os.path.join(src, "model.safetensors")):
        print(f"  tinystories: SKIP ({src} absent)")
        return
    cfg, w = llama_ref.load_hf_dir(src)
    m = LlamaRef(cfg, w)
    tokens = compare_run(m, fdir)
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    check(tok_ref.hf_bpe_encode(tj, "Once upon a time") == tokens, f"prompt ids {tokens}")
    gen = np.load(os.path.join(fdir, "generated.npy"))
    check(gen.dtype == np.int32 and list(gen) == m.generate_greedy(tokens, len(gen)),
          f"greedy generation of {len(gen)} tokens reproduces")
    # greedy without the cache (full re-prefill each step) gives the same ids
    ids = list(tokens)
    for _ in range(len(gen)):
        ids.append(llama_ref.argmax_first(m.forward(ids)["logits"][-1]))
    check(ids[len(tokens):] == list(gen), "greedy with full re-prefill == cached greedy")
    inv = llama_ref.load_hf_tokenizer_vocab(src)
    text = llama_ref.decode_pieces([inv[i] for i in tokens[1:] + list(gen)])
    print(f"    text: {text!r}")
    check(text.startswith(" Once upon a time"), "decodes to English starting 'Once upon a time'")
    nl = naive_logits(cfg, {k: v.numpy() for k, v in w.items()}, tokens)
    d = maxdiff(nl, np.load(os.path.join(fdir, "logits.npy")))
    check(d < 1e-4, f"naive float64 loops vs logits.npy: {d:.2e}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(HERE, "..", "testdata"))
    ap.add_argument("--assets", default=os.environ.get(
        "FINCH_ASSETS", os.path.join(HERE, "..", "..", "shared", "assets")))
    a = ap.parse_args(argv)
    FAILS.clear()
    unit_checks()
    fx = os.path.join(a.dir, "fixtures")
    first_gguf = None
    for name in sorted(os.listdir(fx)):
        mpath = os.path.join(fx, name, "meta.json")
        if name == "tinystories" or not os.path.exists(mpath):
            continue
        with open(mpath) as f:
            meta = json.load(f)
        print(f"fixture {name} ({meta['model']})")
        if meta["model"].endswith(".gguf"):
            g = check_gguf_fixture(a.dir, name, meta)
            first_gguf = first_gguf or g
        else:
            check_hf_fixture(a.dir, name, meta)
    print("tokenizer")
    check_tokenizer(a.dir, first_gguf)
    print("tinystories")
    check_tinystories(a.dir, a.assets)
    import importlib.util
    if importlib.util.find_spec("finch_ref") is not None:
        import finch_ref
        if hasattr(finch_ref, "check_fixtures"):
            print("finch_ref.check_fixtures")
            finch_ref.check_fixtures(a.dir, check, a.assets)
    if FAILS:
        print(f"check_fixtures: {len(FAILS)} FAILED")
        for f in FAILS:
            print("  -", f)
        return 1
    print("check_fixtures: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
