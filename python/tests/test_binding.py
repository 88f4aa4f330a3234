"""pytest suite of the Python binding (python/finch) over the tiny models
and the fixtures of the PyTorch twin (testdata/, tools/finch_ref.py).
Run from the repository root: `make test` runs it, or
`/usr/bin/python3 -m pytest python/tests`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
sys.path.insert(0, os.path.join(ROOT, "python"))
import finch  # noqa: E402

TD = os.path.join(ROOT, "testdata")
FIX = os.path.join(TD, "fixtures", "finch")
TOL = 1e-4


def model_path(rel):
    if rel.startswith("asset:"):
        root = os.environ.get("FINCH_ASSETS") or os.path.join(ROOT, os.pardir, "shared", "assets")
        p = os.path.join(root, rel[len("asset:"):])
        return p if os.path.exists(p) else None
    return os.path.join(ROOT, rel)


_models = {}


def model(rel):
    if rel not in _models:
        _models[rel] = finch.Model(model_path(rel), threads=1)
    return _models[rel]


def cases():
    with open(os.path.join(FIX, "cases.json")) as f:
        return json.load(f)["cases"]


def adjacent_to_half(k):
    """keys [..., d] from adjacent pairs (2i, 2i+1) to rotate-half (i, i+d/2)."""
    return np.concatenate([k[..., 0::2], k[..., 1::2]], axis=-1)


def run_case(c, **extra):
    d = os.path.join(FIX, c["name"])
    m = model(c["model"])
    kw = dict(mode=c["mode"], select=c["select"], normalize=["off", "on", "authors"][c["normalize"]],
              schedule=c.get("schedule_kind", "proportional"))
    if "cr" in c:
        kw["cr"] = c["cr"]
    else:
        kw["budget"] = c["budget"]
    if c.get("chunk"):
        kw["chunk"] = c["chunk"]
    if c.get("kv_chunk"):
        kw["kv_chunk"] = c["kv_chunk"]
    kw["rerotate"] = bool(c.get("rerotate", 1))
    kw["protect"] = c.get("protect", 0)
    if c["n_prompt"]:
        kw["prompt_ids"] = np.load(os.path.join(d, "prompt_ids.npy"))
    kw.update(extra)
    r = m.compress(np.load(os.path.join(d, "context_ids.npy")), np.load(os.path.join(d, "question_ids.npy")), **kw)
    return m, d, r


@pytest.mark.parametrize("case", cases(), ids=lambda c: c["name"])
def test_fixture_case(case):
    if model_path(case["model"]) is None:
        pytest.skip(f"{case['model']} not present")
    m, d, r = run_case(case)
    L, G = m.config["n_layer"], m.config["n_kv_head"]
    assert r.kept.dtype == np.int32 and r.kept.shape == (L, G, case["n_kept"])
    np.testing.assert_array_equal(r.kept, np.load(os.path.join(d, "kept.npy")))
    assert r.schedule.tolist() == case["schedule"]
    keys = np.load(os.path.join(d, "keys.npy"))  # the twin's keys: the file's own layout
    native = r.native_keys()
    assert np.abs(native - keys).max() < TOL
    hf = adjacent_to_half(keys) if m.config["rope_pairing"] == "adjacent" else keys
    assert r.keys.dtype == np.float32 and np.abs(r.keys - hf).max() < TOL
    assert np.abs(r.values - np.load(os.path.join(d, "values.npy"))).max() < TOL
    assert r.logits.shape == (m.config["vocab"],)
    assert np.abs(r.logits - np.load(os.path.join(d, "logits.npy"))).max() < TOL
    assert r.scores.shape == (L, G, case["n_ctx"]) and r.margins.shape == (L, G)
    if case["name"].endswith("keep-all"):
        assert np.isinf(r.margins).all()
    elif not case.get("kv_chunk"):  # kvpress chunks may cut between equal question scores
        assert r.margins.min() >= case["margin"] * 0.99  # the twin's smallest gap, within rounding
    assert r.meta["format"] == "finch-dump" and r.meta["version"] == 1
    K = (case["n_kept"] - case["n_question"] if case["mode"] == "oneshot" else case["n_kept"]) - case.get("protect", 0)
    if case.get("kv_chunk"):
        K = int((r.kept[0, 0] < case["n_ctx"]).sum())
    assert r.meta["params"]["K"] == K and r.meta["params"]["protect"] == case.get("protect", 0)


@pytest.mark.parametrize("case", [c for c in cases() if "f16_margin" in c], ids=lambda c: c["name"])
def test_fixture_case_f16_cache(case):
    """cache_type="f16" against the twin's f16 emulation (the bounds of
    tests/test_finch_fixtures.c: kept exactly, logits 1e-3)."""
    m, d, r = run_case(case, cache_type="f16")
    np.testing.assert_array_equal(r.kept, np.load(os.path.join(d, "kept_f16.npy")))
    assert np.abs(r.logits - np.load(os.path.join(d, "logits_f16.npy"))).max() < 1e-3
    assert r.meta["params"]["cache_type"] == "f16"
    with pytest.raises(finch.FinchError, match="cache type 'q8' is not supported"):
        run_case(case, cache_type="q8")


def test_logits_every_position():
    m = model("testdata/models/tiny-llama.gguf")
    d = os.path.join(TD, "fixtures", "tiny-llama")
    out = m.logits(np.load(os.path.join(d, "tokens.npy")))
    ref = np.load(os.path.join(d, "logits.npy"))
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert np.abs(out - ref).max() < TOL


def test_logits_hf_directory_and_layouts():
    """The HF directory of tiny-llama-gqa's weights: the same logits and
    values; keys in the HF layout equal whatever the file's own layout."""
    d = os.path.join(TD, "fixtures", "tiny-hf-llama")
    hf = model("testdata/models/tiny-hf-llama")
    assert hf.config["source_format"] == "hf" and hf.config["rope_pairing"] == "half"
    assert np.abs(hf.logits(np.load(os.path.join(d, "tokens.npy"))) - np.load(os.path.join(d, "logits.npy"))).max() < TOL
    gg = model("testdata/models/tiny-llama-gqa.gguf")
    c = os.path.join(FIX, "gqa-it-head-norm-c10")
    args = (np.load(os.path.join(c, "context_ids.npy")), np.load(os.path.join(c, "question_ids.npy")))
    a, b = hf.compress(*args, budget=12, chunk=10), gg.compress(*args, budget=12, chunk=10)
    np.testing.assert_array_equal(a.kept, b.kept)
    assert np.abs(a.keys - b.keys).max() < TOL and np.abs(a.values - b.values).max() < TOL
    assert np.abs(a.native_keys() - b.native_keys()).max() > 0.1  # the files' own layouts differ


def test_tokenize_detokenize():
    m = model("testdata/models/tiny-llama.gguf")
    with open(os.path.join(TD, "fixtures", "tokenizer", "tiny-spm.json")) as f:
        vectors = json.load(f)["cases"]
    for v in vectors:
        ids = m.tokenize(v["text"])
        assert ids.dtype == np.int32
        assert ids.tolist() == v["ids"], v["text"]
    ids = m.tokenize("Once upon a time", bos=False)
    assert ids[0] != m.config["bos"]
    assert m.detokenize(ids) == "Once upon a time"
    assert m.config["n_layer"] == 2 and m.config["vocab"] == 348 and m.config["arch"] == "llama"


def test_steps_and_save(tmp_path):
    c = next(c for c in cases() if c["name"] == "llama-it-head-norm-c10")
    d = os.path.join(FIX, c["name"])
    m = model(c["model"])
    r = m.compress(np.load(os.path.join(d, "context_ids.npy")), np.load(os.path.join(d, "question_ids.npy")),
                   budget=12, chunk=10, steps=True)
    T = len(c["schedule"])
    assert r.steps_kept.shape == (T, 2, 4, 12) and r.steps_scores.shape == (T, 2, 4, c["n_ctx"])
    np.testing.assert_array_equal(r.steps_kept[-1], r.kept)
    for t, k in enumerate(c["schedule"]):
        assert (r.steps_kept[t] >= 0).sum(axis=-1).tolist() == [[k] * 4] * 2
    out = tmp_path / "dump"
    r.save(str(out))
    np.testing.assert_array_equal(np.load(out / "kept.npy"), r.kept)
    np.testing.assert_array_equal(np.load(out / "keys.npy"), r.keys)
    np.testing.assert_array_equal(np.load(out / "prompt_ids.npy"), np.load(os.path.join(d, "question_ids.npy")))
    meta = json.load(open(out / "meta.json"))
    assert meta["key_layout"] == "hf" and meta["params"]["threads"] == 1
    r.save(str(tmp_path / "native"), layout="native")
    np.testing.assert_array_equal(np.load(tmp_path / "native" / "keys.npy"), r.native_keys())
    exe = os.environ.get("FINCH_BIN") or os.path.join(ROOT, "build", "finch")
    if os.access(exe, os.X_OK):
        p = subprocess.run([exe, "compare", str(out), str(tmp_path / "native")], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_errors_carry_the_library_message(tmp_path):
    with pytest.raises(finch.FinchError) as e:
        finch.Model(str(tmp_path / "missing.gguf"))
    assert "missing.gguf" in str(e.value)
    m = model("testdata/models/tiny-llama.gguf")
    ctx, q = np.arange(3, 40, dtype=np.int32), np.array([5, 6, 7], dtype=np.int32)
    with pytest.raises(finch.FinchError, match="unknown Finch mode 'bogus'"):
        m.compress(ctx, q, budget=4, mode="bogus")
    with pytest.raises(finch.FinchError, match="oneshot mode needs a non-empty answer prefix"):
        m.compress(ctx, q, budget=4, mode="oneshot")
    with pytest.raises(finch.FinchError, match="exactly one budget"):
        m.compress(ctx, q, budget=4, ratio=2)
    with pytest.raises(finch.FinchError, match="outside the vocabulary"):
        m.compress(np.array([1, 9999]), q, budget=1)
    with pytest.raises(finch.FinchError, match="non-empty question"):
        m.compress(ctx, [], budget=4)
    with pytest.raises(finch.FinchError, match="unknown press"):
        m.compress(ctx, q, budget=4, press="nope")
    with pytest.raises(finch.FinchError, match="exceed the model's 512 positions"):
        m.logits(np.ones(600, dtype=np.int32))
    with pytest.raises(finch.FinchError) as e:
        m.compress(ctx, q, budget=4, select="row")
    assert e.value.status == 4 and "unknown selection 'row'" in str(e.value)
    own = finch.Model(model_path("testdata/models/tiny-llama.gguf"), threads=1)
    r = own.compress(ctx, q, budget=4)
    own.close()
    with pytest.raises(finch.FinchError, match="the model of this result was closed"):
        r.save(str(tmp_path / "closed"))
