#!/usr/bin/python3
"""peer_compare.py - finch's and llama.cpp's logits for the same GGUF file and
the same token ids, and the largest |difference| (docs/llamacpp-agreement.md).

    /usr/bin/python3 tools/peer_compare.py -m MODEL.gguf
        [--ids 1,2,3 | --ids-npy FILE.npy | --random N [--seed S]]
        [-t THREADS] [--batch N] [--threshold X] [--per-position]
        [--no-repack] [--kv f32|f16] [--json] [--keep DIR]
        [--quant-math q8|fp32] [--llama-model OTHER.gguf]

Both sides compute the logits of every position in forward calls of --batch
tokens (default 512): finch through build/peer/finch_logits (its library),
llama.cpp through build/peer/llamacpp_logits (F32 KV cache, flash attention
off); tools/build_peer_logits.sh builds both.  FINCH_LOGITS and LLAMA_LOGITS
override the two binaries (e.g. to compare another finch build).

--quant-math fp32 makes finch dequantize the weights and keep f32
activations (issue 13's second arithmetic); compare that with llama.cpp on
the dequantized file (--llama-model NAME-deq-f32.gguf, written by
DEQUANT=1 tools/make_quant_models.sh): no activation is quantized on either
side, so the two agree as F32 files do, and the dequantizers are checked
exactly.

Prints the max |logit diff| over all positions, where it is, the first
position whose max |diff| exceeds --threshold (default 1e-4), and how many
positions have the same argmax.  --json prints the same as one JSON object.
Exit 0 when both ran (the numbers are for reading, not a pass/fail), 2 for bad
input, 1 when an engine failed (its own one-line error is shown).
"""

import argparse
import json
import mmap
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_reader  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def die(code, msg):
    print(f"peer_compare: {msg}", file=sys.stderr)
    sys.exit(code)


def gguf_vocab(path):
    """The vocabulary size: the length of tokenizer.ggml.tokens, read from the
    header only (the tensors are never touched)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        b = gguf_reader._Buf(mm)
        if b.take(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        if b.unpack("<I") not in (2, 3):
            raise ValueError("unsupported GGUF version")
        b.unpack("<Q")
        for _ in range(b.unpack("<Q")):
            key = b.string()
            value = gguf_reader._value(b, b.unpack("<I"))
            if key == "tokenizer.ggml.tokens":
                return len(value)
    raise ValueError("no tokenizer.ggml.tokens")


def token_ids(args):
    if args.ids:
        try:
            ids = [int(x) for x in args.ids.split(",")]
        except ValueError:
            die(2, f"--ids {args.ids}: expected comma-separated token ids")
        return np.array(ids, dtype=np.int32)
    if args.ids_npy:
        return np.load(args.ids_npy).astype(np.int32)
    try:
        vocab = gguf_vocab(args.model)
    except (OSError, ValueError) as e:
        die(2, f"{args.model}: cannot read the vocabulary size ({e})")
    rng = np.random.default_rng(args.seed)
    return rng.integers(0, vocab, size=args.random, dtype=np.int32)


def run_engine(name, argv):
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        die(1, f"{name} failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")


def compare(finch, llama, threshold):
    if finch.shape != llama.shape:
        die(1, f"shapes differ: finch {finch.shape}, llama.cpp {llama.shape}")
    diff = np.abs(finch.astype(np.float64) - llama.astype(np.float64))
    per_pos = diff.max(axis=1)
    pos, col = np.unravel_index(int(np.argmax(diff)), diff.shape)
    over = np.nonzero(per_pos > threshold)[0]
    return dict(positions=int(finch.shape[0]), vocab=int(finch.shape[1]), max_abs_diff=float(diff.max()),
                at_position=int(pos), at_id=int(col), threshold=threshold,
                first_over_threshold=int(over[0]) if len(over) else None,
                positions_over_threshold=int(len(over)),
                argmax_agree=int((finch.argmax(axis=1) == llama.argmax(axis=1)).sum()),
                max_abs_logit=float(np.abs(llama).max()), per_position=per_pos.tolist())


def binaries():
    finch_bin = os.environ.get("FINCH_LOGITS", os.path.join(ROOT, "build/peer/finch_logits"))
    llama_bin = os.environ.get("LLAMA_LOGITS", os.path.join(ROOT, "build/peer/llamacpp_logits"))
    for b in (finch_bin, llama_bin):
        if not os.access(b, os.X_OK):
            die(2, f"{b}: not built (run tools/build_peer_logits.sh)")
    return finch_bin, llama_bin


def compare_file(model, ids, opts, keep=None):
    """Both engines on `ids`; opts has threads, batch, kv, no_repack,
    threshold, quant_math and llama_model (the parsed command line, or
    tools/peer_table.py's)."""
    finch_bin, llama_bin = binaries()
    with tempfile.TemporaryDirectory(prefix="peer_compare.") as tmp:
        out = keep or tmp
        os.makedirs(out, exist_ok=True)
        ids_path = os.path.join(out, "ids.npy")
        np.save(ids_path, np.asarray(ids, dtype=np.int32))
        common = ["--ids-npy", ids_path, "-t", str(opts.threads), "--batch", str(opts.batch)]
        run_engine("finch", [finch_bin, "-m", model] + common + ["-o", os.path.join(out, "finch.npy")]
                   + (["--quant-math", opts.quant_math] if opts.quant_math else []))
        run_engine("llama.cpp", [llama_bin, "-m", opts.llama_model or model] + common
                   + ["--kv", opts.kv, "-o", os.path.join(out, "llama.npy")]
                   + (["--no-repack"] if opts.no_repack else []))
        r = compare(np.load(os.path.join(out, "finch.npy")), np.load(os.path.join(out, "llama.npy")),
                    opts.threshold)
    r["model"] = model
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--ids")
    g.add_argument("--ids-npy")
    g.add_argument("--random", type=int, metavar="N")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-t", "--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threshold", type=float, default=1e-4)
    ap.add_argument("--per-position", action="store_true")
    ap.add_argument("--no-repack", action="store_true", help="llama.cpp without repacked weights")
    ap.add_argument("--kv", choices=["f32", "f16"], default="f32")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="keep ids.npy, finch.npy, llama.npy there")
    ap.add_argument("--quant-math", choices=["q8", "fp32"], help="finch's arithmetic for quantized weights")
    ap.add_argument("--llama-model", metavar="FILE", help="the file llama.cpp runs (default: -m)")
    args = ap.parse_args()
    for m in (args.model, args.llama_model):
        if m and not os.path.isfile(m):
            die(2, f"{m}: no such file")
    binaries()
    ids = token_ids(args)
    if ids.ndim != 1 or len(ids) == 0:
        die(2, "the ids must be a non-empty 1-D list")
    r = compare_file(args.model, ids, args, args.keep)
    if args.json:
        if not args.per_position:
            del r["per_position"]
        print(json.dumps(r))
        return
    print(f"{args.model}: {r['positions']} positions, vocab {r['vocab']}, {args.threads} thread(s), "
          f"batch {args.batch}")
    print(f"max |logit diff| {r['max_abs_diff']:.3g} (position {r['at_position']}, id {r['at_id']}; "
          f"largest |logit| {r['max_abs_logit']:.3g})")
    first = r["first_over_threshold"]
    print(f"positions over {args.threshold:g}: {r['positions_over_threshold']}"
          + (f", the first at position {first}" if first is not None else ""))
    print(f"same argmax at {r['argmax_agree']} of {r['positions']} positions")
    if args.per_position:
        for i, d in enumerate(r["per_position"]):
            print(f"  position {i:5d}  max |diff| {d:.3g}")


if __name__ == "__main__":
    main()
