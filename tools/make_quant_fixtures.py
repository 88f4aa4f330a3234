#!/usr/bin/python3
"""make_quant_fixtures.py - one tiny model per quantized GGUF type, with the
twin's reference tensors in both of finch's arithmetics.

  /usr/bin/python3 tools/make_quant_fixtures.py --out testdata
  (also run by tools/make_fixtures.py, i.e. make fixtures)

First checks tools/quants.py against the gguf package of llama.cpp's
gguf-py (GGUF_PY, default /work/llamacpp/src/gguf-py; never committed): our
dequantizers must equal gguf-py's bit for bit.  Then, per type T, writes
  OUT/models/quant/tiny-quant-T.gguf  every 2-D weight in T (random, seeded;
                                      a folder of its own: `finch bench
                                      --models-dir testdata/models` is tested
                                      on the others)
  OUT/fixtures/tiny-quant-T/          reference from the dequantized weights
                                      and f32 activations (= --quant-math fp32)
  OUT/fixtures/tiny-quant-T-q8act/    reference with every product computed
                                      as finch's Q8 arithmetic (tools/quants.py
                                      matmul_q8: activations quantized to T's
                                      partner, exact integer block sums)
The model: llama, one layer, dim 256 (the K-quants' super-block), 4 heads of
64, one KV head, FFN 256, 32 tokens of vocabulary, no tokenizer (the tests
feed ids).  The 32-value types use the same model at dim 64 (heads of 16,
FFN 64).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import gguf_reader as gr  # noqa: E402
import gguf_writer as gw  # noqa: E402
import hf_writer  # noqa: E402
import quants  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402
from make_fixtures import maxdiff, reference_run, write_fixture_dir  # noqa: E402

CFG = dict(dim=256, n_layer=1, n_head=4, n_kv_head=1, head_dim=64, ffn_dim=256, rms_eps=1e-5,
           rope_base=10000.0, rope_dim=64, tied=False, bias=False, vocab=32, pairing="half")
# the 32-value types: the same model at dim 64 (smaller files)
CFG32 = dict(CFG, dim=64, head_dim=16, rope_dim=16, ffn_dim=64)
SEED = 1300
N_TOKENS = 12


def q8_model(path):
    """The file's model with every 2-D product in finch's Q8 arithmetic
    (the token embedding is only gathered)."""
    cfg, w, g = gr.load_gguf_model(path)
    fns = {}
    for name, t in g.tensors.items():
        if len(t.ne) == 2 and name != "token_embd.weight" and t.type in quants.TRAITS:
            raw = np.frombuffer(t.data, np.uint8).reshape(int(t.ne[1]), -1)
            fns[name] = (lambda tt, r: lambda x: quants.matmul_q8(tt, r, x))(t.type, raw)
    return LlamaRef(cfg, w, qmatmul=fns), cfg


def build(out, log):
    quants.check_against_gguf_py(log)
    rng = np.random.default_rng(SEED + 1)
    tokens = [int(x) for x in rng.integers(0, CFG["vocab"], N_TOKENS)]
    os.makedirs(os.path.join(out, "models", "quant"), exist_ok=True)
    for t in quants.WEIGHT_TYPES:
        cfg = dict(CFG if quants.TRAITS[t][1] == 256 else CFG32)
        cfg["rms_eps"] = float(np.float32(cfg["rms_eps"]))
        w = hf_writer.random_weights(cfg, SEED)
        tname = quants.TRAITS[t][0]
        vname = f"tiny-quant-{tname}"
        path = os.path.join(out, "models", "quant", vname + ".gguf")
        gw.write_model_gguf(path, "llama", cfg, w, t, name=vname, ctx_len=64)
        fcfg, fw, _ = gr.load_gguf_model(path)     # as stored, the file's row order
        res = reference_run(LlamaRef(fcfg, fw), tokens)
        common = {"model": f"models/quant/{vname}.gguf", "arch": "llama", "weight_type": tname,
                  "pairing_in_file": "adjacent", "cfg": fcfg, "seed": SEED, "n_tokens": N_TOKENS,
                  "chunk_sizes": [int(x) for x in res["chunk_sizes"]]}
        write_fixture_dir(os.path.join(out, "fixtures", vname), tokens, res,
                          dict(common, decode_token=int(res["decode_token"][0]),
                               note="dequantized weights, f32 activations (--quant-math fp32)"))
        model, _ = q8_model(path)
        rq = reference_run(model, tokens)
        d = maxdiff(rq["logits"], res["logits"])
        write_fixture_dir(os.path.join(out, "fixtures", vname + "-q8act"), tokens, rq,
                          dict(common, decode_token=int(rq["decode_token"][0]),
                               max_diff_logits_vs_fp32_fixture=d,
                               note="every product in finch's Q8 arithmetic (tools/quants.py "
                                    "matmul_q8), the default --quant-math q8"))
        log(f"  {vname}: {os.path.getsize(path)} bytes; Q8 arithmetic moves the logits by {d:.3g}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "testdata"))
    a = ap.parse_args(argv)
    build(a.out, print)


if __name__ == "__main__":
    main(sys.argv[1:])
