#!/usr/bin/python3
"""peer_table.py - the per-type agreement table of docs/llamacpp-agreement.md:
finch against llama.cpp on each given GGUF file (tools/peer_compare.py does
one file).

    /usr/bin/python3 tools/peer_table.py [--long N] [--short N] [--seeds S]
        [--no-repack] [--quant-math q8|fp32] FILE.gguf ...

For each file, as a Markdown row:
  - long: N random ids (default 300, seed 1): the max |logit diff|, the first
    position over 1e-4, the positions with the same argmax;
  - short: S seeds (default 10) of N random ids (default 16): the smallest,
    median and largest max |logit diff|, and how many seeds stay under 1e-5
    (a seed with no activation rounded differently; see the note for why a
    few hundred positions always show one).
With --quant-math fp32, finch dequantizes the weights and llama.cpp runs
the dequantized sibling NAME-deq-f32.gguf (DEQUANT=1
tools/make_quant_models.sh writes it). FINCH_LOGITS / LLAMA_LOGITS choose
the binaries as for peer_compare.py.
"""

import argparse
import os
import sys
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_compare as pc  # noqa: E402


def random_ids(model, n, seed):
    return np.random.default_rng(seed).integers(0, pc.gguf_vocab(model), size=n, dtype=np.int32)


def dequantized_sibling(model):
    if model.endswith(("-f32.gguf", "-f16.gguf")):
        return model  # nothing to dequantize
    path = model[:-5] + "-deq-f32.gguf"
    if not os.path.isfile(path):
        pc.die(2, f"{path}: missing (DEQUANT=1 tools/make_quant_models.sh writes it)")
    return path


def row(model, args, opts):
    name = os.path.basename(model)[:-5] if model.endswith(".gguf") else os.path.basename(model)
    opts.llama_model = dequantized_sibling(model) if args.quant_math == "fp32" else None
    long = pc.compare_file(model, random_ids(model, args.long, 1), opts)
    short = np.array([pc.compare_file(model, random_ids(model, args.short, s), opts)["max_abs_diff"]
                      for s in range(1, args.seeds + 1)])
    first = long["first_over_threshold"]
    return (f"| {name} | {long['max_abs_diff']:.1e} | {'-' if first is None else first} | "
            f"{long['argmax_agree']}/{long['positions']} | {short.min():.1e} / {np.median(short):.1e} / "
            f"{short.max():.1e} | {(short < 1e-5).sum()}/{args.seeds} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--long", type=int, default=300)
    ap.add_argument("--short", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--no-repack", action="store_true")
    ap.add_argument("--quant-math", choices=["q8", "fp32"])
    args = ap.parse_args()
    deq = [m for m in args.models if m.endswith("-deq-f32.gguf")]
    if deq:  # the dequantized siblings are llama.cpp's side of --quant-math fp32
        print(f"peer_table: leaving out {len(deq)} -deq-f32 file(s)", file=sys.stderr)
    args.models = [m for m in args.models if m not in deq]
    for m in args.models:
        if not os.path.isfile(m):
            pc.die(2, f"{m}: no such file")
    opts = SimpleNamespace(threads=1, batch=512, kv="f32", no_repack=args.no_repack, threshold=1e-4,
                           quant_math=args.quant_math, llama_model=None)
    print(f"| file | max diff, {args.long} ids | first over 1e-4 | same argmax | "
          f"{args.short} ids x {args.seeds} seeds: min / median / max | seeds under 1e-5 |")
    print("|---|---|---|---|---|---|")
    for m in args.models:
        print(row(m, args, opts), flush=True)


if __name__ == "__main__":
    main()
