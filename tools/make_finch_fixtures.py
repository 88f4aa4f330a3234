#!/usr/bin/python3
"""make_finch_fixtures.py - reference outputs of Finch (tools/finch_ref.py on
llama_ref.LlamaRef) for tests/test_finch_fixtures.c.

For every case it writes testdata/fixtures/finch/<case>/:
  context_ids.npy, question_ids.npy (int32), prompt_ids.npy (int32, when the
  case feeds explicit prompt ids), kept.npy (int32 [L, G, n_kept]),
  keys.npy, values.npy (float32 [L, G, n_kept, head_dim]: the compressed
  cache before the prompt), logits.npy (float32 [vocab]: last prompt position),
  answer.npy (int32: greedy continuation, up to 6 tokens)
and testdata/fixtures/finch/cases.json listing the cases and their settings.

F16 KV cache (finch --cache-type f16): for the cases of F16_CASES the twin
also runs with its cache rounded to f16 (LlamaRef.kv_f16: K and V rounded
when stored, re-rotated keys rounded again) on the same ids, into
kept_f16.npy, keys_f16.npy, values_f16.npy, logits_f16.npy, answer_f16.npy;
the case gets "f16_margin" in cases.json.  A draw whose f16 margin is below
MIN_MARGIN gets no f16 files.  --f16-only adds them to the fixtures already
written (the other files untouched).

Ids are random within the vocabulary (seeded).  A case whose top-k cut has
a relative score gap below MIN_MARGIN is redrawn with the next seed, so
float rounding cannot flip a kept index between C and PyTorch.

Usage: /usr/bin/python3 tools/make_finch_fixtures.py [--out testdata]
The tinystories-656k cases are written only when ../shared/assets (or
$FINCH_ASSETS) holds the model; the C test skips them otherwise.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import finch_ref  # noqa: E402
from gguf_reader import load_gguf_model  # noqa: E402
from llama_ref import LlamaRef, load_hf_dir  # noqa: E402

MIN_MARGIN = 1e-4

# (model key, path as the C test opens it, N, m)
MODELS = [
    ("llama", "testdata/models/tiny-llama.gguf", 47, 5),
    ("gqa", "testdata/models/tiny-llama-gqa.gguf", 60, 6),
    ("qwen2", "testdata/models/tiny-qwen2.gguf", 53, 4),
    ("tinystories", "asset:models/tinystories-656k", 90, 8),
    # the family models (tools/make_family_models.py), as HF directories
    # (the twin's layout): scaled RoPE re-rotation, sliding windows over a
    # compacted cache, q/k norms, Gemma's switches
    ("llama3", "testdata/models/families/llama3-hf", 47, 5),
    ("mistral", "testdata/models/families/mistral-hf", 47, 5),
    ("qwen3", "testdata/models/families/qwen3-hf", 47, 5),
    ("gemma2", "testdata/models/families/gemma2-hf", 47, 5),
    ("gemma3", "testdata/models/families/gemma3-hf", 47, 5),
    ("phi3", "testdata/models/families/phi3-hf", 47, 5),
]
FAMILY_CASES = ("it-head-norm-c10", "os-head-cr")

# (suffix, settings); budget K or cr; chunk 0 = one chunk
CASES = [
    ("it-head-norm-c10", dict(mode="iterative", select="head", normalize=1, budget=12, chunk=10)),
    ("it-head-norm-cdiv", dict(mode="iterative", select="head", normalize=1, budget=14, chunk=None)),
    ("it-head-raw-c9", dict(mode="iterative", select="head", normalize=0, budget=12, chunk=9)),
    ("it-layer-norm-c10", dict(mode="iterative", select="layer", normalize=1, budget=10, chunk=10)),
    ("it-layer-raw-c8", dict(mode="iterative", select="layer", normalize=0, budget=16, chunk=8)),
    ("it-head-prompt-c16", dict(mode="iterative", select="head", normalize=1, budget=9, chunk=16,
                                prompt=3)),
    ("it-keep-all", dict(mode="iterative", select="head", normalize=1, budget=1000, chunk=7,
                         n_ctx=20)),
    ("os-head-cr", dict(mode="oneshot", select="head", normalize=1, cr=0.7, prompt=2)),
    ("os-layer-raw-cr", dict(mode="oneshot", select="layer", normalize=0, cr=0.75, prompt=1)),
    # a protected prefix (a chat template's BOS + header): always kept, not in K
    ("it-head-protect-c10", dict(mode="iterative", select="head", normalize=1, budget=12, chunk=10,
                                 protect=5)),
    ("it-layer-protect-c9", dict(mode="iterative", select="layer", normalize=1, budget=10, chunk=9,
                                 protect=3)),
    ("os-head-protect-cr", dict(mode="oneshot", select="head", normalize=1, cr=0.7, prompt=2, protect=4)),
    # the references' variants (normalize 2 = the authors' weight, keys seen)
    ("it-head-authors-c10", dict(mode="iterative", select="head", normalize=2, budget=12, chunk=10)),
    ("it-head-sched-authors-c9", dict(mode="iterative", select="head", normalize=1, budget=12, chunk=9,
                                      schedule_kind="authors")),
    ("it-layer-authors-sched-c8", dict(mode="iterative", select="layer", normalize=2, budget=16, chunk=8,
                                       schedule_kind="authors")),
    ("os-head-authors-cr", dict(mode="oneshot", select="head", normalize=2, cr=0.7, prompt=2)),
    # kvpress chunk_length 16 (the last chunk cuts into the question)
    ("os-head-kvchunk16", dict(mode="oneshot", select="head", normalize=1, cr=0.5, kv_chunk=16, prompt=2)),
    # kvpress rerotate_keys=False: keys at their positions, the prompt at N + m + 1
    ("os-head-norot", dict(mode="oneshot", select="head", normalize=1, cr=0.7, prompt=2, rerotate=0)),
]

NORMALIZE = {0: False, 1: True, 2: "authors"}

# (model key, case suffix) run again with the twin's f16 cache.  Not
# os-head-norot: without re-rotation finch shifts every kept key by one
# offset (one more rounding in f16), which kvpress does not.
F16_MODELS = ("llama", "gqa", "qwen2", "mistral", "gemma2")
F16_SUFFIXES = ("it-head-norm-c10", "it-layer-norm-c10", "os-head-cr", "it-head-protect-c10")
F16_FILES = ("kept", "keys", "values", "logits", "answer")


# kvpress's single-string interface (finch run --delimiter): text, delimiter
DELIMITER_CASES = [
    ("Once upon a time the little cat sat<|finch_sep|>What did the cat do?", "<|finch_sep|>"),
    ("The magic number is 42. The end.\n##\n the magic number is", "\n##\n"),
    ("Lily had a toy. ### Who had a toy", " ### "),
]


def write_delimiter_cases(root):
    """fixtures/finch/delimiter.json: the ids `finch run --delimiter` must
    feed, by the SentencePiece twin (tools/tok_ref.py) on the tiny
    vocabulary: the context as a text start (BOS, space marker), the
    question as the continuation of the same text (neither)."""
    from tok_ref import build_tiny_spm_vocab, spm_encode
    vocab = build_tiny_spm_vocab()
    out = []
    for text, delim in DELIMITER_CASES:
        ctx, q = text.split(delim)
        out.append({"model": "testdata/models/tiny-llama.gguf", "text": text, "delimiter": delim,
                    "context_ids": spm_encode(vocab, ctx, add_bos=True, add_dummy_prefix=True),
                    "question_ids": spm_encode(vocab, q, add_bos=False, add_dummy_prefix=False)})
    with open(os.path.join(root, "delimiter.json"), "w") as f:
        json.dump({"cases": out}, f, indent=1)
        f.write("\n")


def asset_path(rel):
    root = os.environ.get("FINCH_ASSETS") or "../shared/assets"
    p = os.path.join(root, rel)
    return p if os.path.exists(p) else None


def load_family(name):
    import make_family_models as mf
    import tok_ref
    fam = {f["name"]: f for f in mf.FAMILIES}[name]
    cfg = mf.twin_cfg(fam, len(tok_ref.build_tiny_spm_vocab()["tokens"]))
    return LlamaRef(cfg, mf.family_weights(cfg, fam["seed"]))


def load(path):
    if "/families/" in path:
        return load_family(os.path.basename(path)[:-len("-hf")])
    if path.startswith("asset:"):
        p = asset_path(path[len("asset:"):])
        if p is None:
            return None
        cfg, w = load_hf_dir(p)
    else:
        cfg, w, _ = load_gguf_model(path)
    return LlamaRef(cfg, w)


def divisor_chunk(N):
    """A chunk size in 7..N/2 that divides N (N is chosen to have one)."""
    for s in range(7, N // 2 + 1):
        if N % s == 0:
            return s
    raise ValueError(f"no divisor chunk for N={N}")


def run_case(model, st, C, Q, P):
    protect = st.get("protect", 0)
    if st["mode"] == "oneshot":
        n_kept = finch_ref.oneshot_n_kept(len(C) - protect, len(Q), st["cr"]) + protect
        return finch_ref.finch_oneshot(model, C, Q, n_kept, st["select"], NORMALIZE[st["normalize"]], P,
                                       protect, st.get("kv_chunk"), st["cr"], bool(st.get("rerotate", 1)))
    return finch_ref.finch_iterative(model, C, Q, st["budget"], st["chunk"], st["select"],
                                     NORMALIZE[st["normalize"]], P, protect, st.get("schedule_kind", "proportional"))


def write_f16(model, case, d, st, C, Q, P):
    """The case again with the twin's f16 cache, into d/*_f16.npy; sets
    case["f16_margin"] (nothing when the draw's f16 margin is too small)."""
    model.kv_f16 = True
    try:
        out = run_case(model, st, C, Q, P)
    finally:
        model.kv_f16 = False
    if out["margin"] < MIN_MARGIN:
        print(f"{case['name']}: f16 margin {out['margin']:.2e} too small, no f16 reference")
        return
    for f in F16_FILES:
        np.save(os.path.join(d, f + "_f16.npy"), out[f])
    case["f16_margin"] = float(min(out["margin"], 1e300))
    case["n_answer_f16"] = int(out["answer"].size)
    print(f"{case['name']}: f16 margin {case['f16_margin']:.2e}")


def wants_f16(key, suffix):
    return key in F16_MODELS and suffix in F16_SUFFIXES


def add_f16_only(root):
    """--f16-only: the f16 references of the fixtures already written."""
    path = os.path.join(root, "cases.json")
    with open(path) as f:
        listing = json.load(f)
    models = {key: p for key, p, _, _ in MODELS}
    for case in listing["cases"]:
        key, suffix = case["name"].split("-", 1)
        if not wants_f16(key, suffix):
            continue
        model = load(models[key])
        d = os.path.join(root, case["name"])
        st = {k: case[k] for k in ("mode", "select", "normalize", "budget", "chunk", "cr", "protect",
                                   "kv_chunk", "schedule_kind", "rerotate") if k in case}
        ids = [np.load(os.path.join(d, f + ".npy")).tolist() for f in ("context_ids", "question_ids")]
        P = np.load(os.path.join(d, "prompt_ids.npy")).tolist() if case["n_prompt"] else None
        write_f16(model, case, d, st, ids[0], ids[1], P)
    with open(path, "w") as f:
        json.dump(listing, f, indent=1)
        f.write("\n")


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    ap.add_argument("--f16-only", action="store_true", help="only add the f16 references")
    args = ap.parse_args(argv)
    root = os.path.join(args.out, "fixtures", "finch")
    if args.f16_only:
        return add_f16_only(root)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(root)
    listing, total = [], 0
    for key, path, N0, m in MODELS:
        model = load(path)
        if model is None:
            print(f"skip {key}: {path} not found")
            continue
        vocab = model.cfg["vocab"]
        for ci, (suffix, settings) in enumerate(CASES):
            if "/families/" in path and suffix not in FAMILY_CASES:
                continue
            if key == "tinystories" and "protect" in settings:
                continue  # no new files made from the asset model
            st = dict(settings)
            N = st.pop("n_ctx", N0)
            n_prompt = st.pop("prompt", 0)
            if "chunk" in st and st["chunk"] is None:
                N = N - N % 10 if N % 10 else N  # make N divisible by 10
                st["chunk"] = divisor_chunk(N)
            for attempt in range(50):
                rng = np.random.default_rng([ci, attempt, sum(map(ord, key))])
                C = rng.integers(0, vocab, N).astype(np.int32)
                Q = rng.integers(0, vocab, m).astype(np.int32)
                P = rng.integers(0, vocab, n_prompt).astype(np.int32) if n_prompt else None
                out = run_case(model, st, C.tolist(), Q.tolist(), None if P is None else P.tolist())
                if out["margin"] >= MIN_MARGIN:
                    break
            else:
                raise RuntimeError(f"{key}-{suffix}: no draw with a safe top-k margin")
            name = f"{key}-{suffix}"
            d = os.path.join(root, name)
            os.makedirs(d)
            np.save(os.path.join(d, "context_ids.npy"), C)
            np.save(os.path.join(d, "question_ids.npy"), Q)
            if P is not None:
                np.save(os.path.join(d, "prompt_ids.npy"), P)
            for f in ("kept", "keys", "values", "logits", "answer"):
                np.save(os.path.join(d, f + ".npy"), out[f])
            case = {"name": name, "model": path, "n_ctx": int(N), "n_question": int(m),
                    "n_prompt": int(n_prompt), "n_kept": int(out["kept"].shape[2]),
                    "n_answer": int(out["answer"].size),
                    "schedule": [int(k) for k in out["schedule"]],
                    "margin": float(min(out["margin"], 1e300))}
            case.update({k: v for k, v in st.items()})
            if wants_f16(key, suffix):
                write_f16(model, case, d, st, C.tolist(), Q.tolist(), None if P is None else P.tolist())
            listing.append(case)
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            total += size
            print(f"{name}: N={N} m={m} kept={case['n_kept']} schedule={case['schedule']} "
                  f"margin={case['margin']:.2e} {size} bytes")
    write_delimiter_cases(root)
    with open(os.path.join(root, "cases.json"), "w") as f:
        json.dump({"cases": listing}, f, indent=1)
        f.write("\n")
    print(f"{len(listing)} cases, {total} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
