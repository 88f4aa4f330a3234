#!/usr/bin/python3
"""llamacpp_families.py - the family models (tools/make_family_models.py)
against llama.cpp's logits, as a second oracle.

  /usr/bin/python3 tools/llamacpp_families.py --logits-bin PATH/llamacpp_logits [--dir testdata]

PATH/llamacpp_logits is the peer program of the quantization work
(tools/llamacpp_logits.c, built against a llama.cpp build).  For each family
it prints max |llama.cpp - twin| over the fixture's 12 positions, and where
llama.cpp knowingly computes another model, the twin made to compute that
model too:
  mistral, phi3   llama.cpp runs these without their sliding window (it
                  ignores the `llama` key and disables Phi-3's SWA): equal up
                  to the window, and to the twin without a window;
  gemma2, gemma3  ggml's CPU GELU rounds its input to f16 and reads an f16
                  table: the twin with that GELU.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import llama_ref  # noqa: E402
import make_family_models as mf  # noqa: E402
import tok_ref  # noqa: E402


def gelu_ggml_f16(x, approximate="none", _gelu=torch.nn.functional.gelu):
    y = _gelu(x.half().float(), approximate="tanh").half().float()
    return torch.where(x <= -10, torch.zeros_like(x), torch.where(x >= 10, x, y))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logits-bin", required=True)
    ap.add_argument("--dir", default="testdata")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    V = len(tok_ref.build_tiny_spm_vocab()["tokens"])
    print(f"{'family':8} {'vs twin':>10} {'first diverging position':>25} {'vs twin as llama.cpp computes':>30}")
    for fam in mf.FAMILIES:
        name = fam["name"]
        fdir = os.path.join(a.dir, "fixtures", "families", name)
        with tempfile.TemporaryDirectory() as td:
            out = os.path.join(td, "l.npy")
            subprocess.run([a.logits_bin, "-m", os.path.join(a.dir, "models", "families", name + ".gguf"),
                            "--ids-npy", os.path.join(fdir, "tokens.npy"), "-o", out], check=True)
            lc = np.load(out)
        twin = np.load(os.path.join(fdir, "logits.npy"))
        per_pos = np.abs(lc - twin).max(axis=1)
        bad = np.nonzero(per_pos > 1e-4)[0]
        other = ""
        if name in ("mistral", "phi3", "gemma2", "gemma3"):
            cfg = mf.twin_cfg(fam, V)
            w = mf.family_weights(cfg, fam["seed"])
            toks = np.load(os.path.join(fdir, "tokens.npy")).tolist()
            if name in ("mistral", "phi3"):
                ref = llama_ref.LlamaRef(dict(cfg, sliding_window=None), w).forward(toks)["logits"]
                what = "no window"
            else:
                saved, torch.nn.functional.gelu = torch.nn.functional.gelu, gelu_ggml_f16
                try:
                    ref = llama_ref.LlamaRef(cfg, w).forward(toks)["logits"]
                finally:
                    torch.nn.functional.gelu = saved
                what = "f16 GELU"
            other = f"{float(np.abs(ref.numpy() - lc).max()):.2e} ({what})"
        print(f"{name:8} {per_pos.max():10.2e} {str(bad[0]) if len(bad) else '-':>25} {other:>30}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
