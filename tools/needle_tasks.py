#!/usr/bin/python3
"""needle_tasks.py - needle-in-a-haystack tasks for finch's needle model, and
their evaluation with the PyTorch twin or the C engine.

A task is one JSON line:
  {"id", "context", "question", "answers": ["4821"],
   "length", "n_tokens", "depth", "n_needles", "haystack", "key", "needles": [...]}
where the context is a haystack with needles "The special magic number for
<key> is <value>." inserted at sentence boundaries, the question is
"What is the special magic number for <key>? The special magic number for
<key> is", and the answer is the asked needle's value.  The prompt a model
sees is context + " " + question.  "length" is the number of positions the
task needs: the prompt (BOS included, as the needle model's tokenizer counts
tokens) plus 3 for the answer " <value>", "." and "</s>"; n_tokens is the
prompt's actual size (<= length - 3), so a task of length 4096 fits the
needle model's 4096-position window with its answer.  "depth" is the asked needle's place in the
haystack (0 = first sentence, 1 = last); the other needles' depths are
random.  Keys are distinct; values are distinct.

Haystacks:
  filler  our own short sentences (tools/make_needle_model.py FILLER_SENTENCES)
          in seeded random order
  kjv     contiguous text of the King James Bible from
          ../shared/assets/haystack/kjv_bible.txt.gz (or $FINCH_ASSETS/...),
          read at run time, never copied; verse references removed, verses
          cut into clauses after . ; : ? ! (the units a needle goes between)

Commands
  gen   --out FILE.jsonl [--n N] [--lengths 256,512,...] [--depths 0,0.25,...]
        [--needles 1,2,3,4] [--haystack filler|kjv] [--seed S]
        tasks cycle through the grid lengths x depths x needles
  eval  --tasks FILE.jsonl --model MODEL.gguf --engine torch|finch
        [--finch build/finch] [--json OUT.json]
        exact match of the greedy answer (the first generated token, decoded
        and stripped) with answers[0]; tables by length, depth, needles.
        torch: the twin (tools/llama_ref.py) on the weights read back from the
        GGUF file (tools/gguf_reader.py); finch: `finch generate -p TEXT
        -n 3 --dump DIR` per task, prompt ids checked against ours.

Example (the table in docs/needle-model.md):
  /usr/bin/python3 tools/needle_tasks.py gen --out /tmp/needle.jsonl --n 200 \\
      --lengths 256,512,1024,2048,4096 --depths 0,0.25,0.5,0.75,1 --needles 1,2,3,4
  /usr/bin/python3 tools/needle_tasks.py eval --tasks /tmp/needle.jsonl \\
      --model testdata/models/needle.gguf --engine finch --finch build/finch
"""

import argparse
import gzip
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_needle_model as nm  # noqa: E402

NEEDLE = "The special magic number for {key} is {value}."
QUESTION = "What is the special magic number for {key}? The special magic number for {key} is"
ANSWER_ROOM = 3  # positions left after the prompt: the value, ".", "</s>"


def assets_dir():
    env = os.environ.get("FINCH_ASSETS")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "shared", "assets"))


_KJV = None


def kjv_verses():
    """The Bible's verses (references removed) as clauses, read at run time."""
    global _KJV
    if _KJV is None:
        path = os.path.join(assets_dir(), "haystack", "kjv_bible.txt.gz")
        if not os.path.exists(path):
            raise SystemExit(f"{path}: not found (set FINCH_ASSETS)")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            verses = [re.sub(r"^\S+\s+", "", line.strip()) for line in f if line.strip()]
        # clauses (split after . ; : ? !) so that the haystack fills its budget closely
        _KJV = [c for v in verses for c in re.split(r"(?<=[.;:?!])\s+", v) if c]
    return _KJV


def make_tasks(n, lengths, depths, needles, haystack="filler", seed=0, vocab=None):
    """n tasks cycling through lengths x depths x needles (depths None:
    uniform random).  Returns a list of task dicts."""
    vocab = vocab or nm.build_vocab()
    enc = nm.Encoder(vocab)
    keys, values = vocab["keys"], vocab["values"]
    grid = list(itertools.product(lengths, depths if depths else [None], needles))
    ntok = {}

    def count(s):
        c = ntok.get(s)
        if c is None:
            c = ntok[s] = len(enc.encode(s, add_bos=False))
        return c

    tasks = []
    for t in range(n):
        L, depth, k = grid[t % len(grid)]
        rng = np.random.default_rng([seed, t])
        if depth is None:
            depth = float(rng.uniform())
        ki = rng.choice(len(keys), size=k, replace=False)
        vi = rng.choice(len(values), size=k, replace=False)
        nd = [NEEDLE.format(key=keys[a], value=values[b]) for a, b in zip(ki, vi)]
        q = QUESTION.format(key=keys[ki[0]])
        budget = L - ANSWER_ROOM - 1 - count(q) - sum(count(s) for s in nd)
        if budget < 0:
            raise SystemExit(f"length {L} too short for {k} needles")
        # haystack sentences up to the budget
        hay, used = [], 0
        if haystack == "filler":
            src = (nm.FILLER_SENTENCES[j] for j in
                   itertools.chain.from_iterable(rng.permutation(len(nm.FILLER_SENTENCES))
                                                 for _ in itertools.count()))
        elif haystack == "kjv":
            verses = kjv_verses()
            start = int(rng.integers(len(verses)))
            src = (verses[(start + j) % len(verses)] for j in itertools.count())
        else:
            raise SystemExit(f"unknown haystack {haystack!r}")
        for s in src:
            c = count(s)
            if used + c > budget:
                break
            hay.append(s)
            used += c
        # insert: the asked needle at `depth`, the others at random depths
        deps = [depth] + [float(x) for x in rng.uniform(size=k - 1)]
        slots = [int(round(d * len(hay))) for d in deps]
        order = sorted(range(k), key=lambda j: (slots[j], j))
        parts, prev = [], 0
        for j in order:
            parts += hay[prev:slots[j]]
            parts.append(nd[j])
            prev = slots[j]
        parts += hay[prev:]
        context = " ".join(parts)
        n_tokens = len(enc.encode(context)) + count(q)
        assert n_tokens <= L - ANSWER_ROOM, (n_tokens, L)
        tasks.append({
            "id": f"needle-{haystack}-{t:04d}", "context": context, "question": q,
            "answers": [values[vi[0]]], "length": L, "n_tokens": n_tokens, "depth": depth,
            "n_needles": k, "haystack": haystack, "key": keys[ki[0]],
            "needles": [{"key": keys[a], "value": values[b], "depth": d}
                        for a, b, d in zip(ki, vi, deps)]})
    return tasks


# ------------------------------------------------------------------- eval

def eval_torch(tasks, model, vocab, log):
    """Greedy answer from the twin on the weights read back from the file,
    plus the circuit's margins on each task, in pre-softmax score units
    (nats): layer 0, the score at the intended offset (-1, -2, -3) minus the
    best other score of the row (smallest over rows >= 3 and heads); layer 1,
    the last position's score on the needle's value token minus its best
    other score (smallest over heads); and the answer's logit minus the
    runner-up's."""
    import torch
    from gguf_reader import load_gguf_model
    from llama_ref import LlamaRef, argmax_first
    cfg, w, _ = load_gguf_model(model)
    m = LlamaRef(cfg, w)
    enc = nm.Encoder(vocab)
    eos = vocab["eos"]
    out = []
    for i, t in enumerate(tasks):
        ids = enc.encode(t["context"] + " " + t["question"])
        t0 = time.time()
        r = m.forward(ids, return_q=True)
        n = len(ids)
        rt = float(cfg["head_dim"]) ** 0.5
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        # layer 0: score at the intended offset minus the best other score
        s0 = (r["q"][0] @ r["kv"][0][0].repeat_interleave(cfg["n_head"] // cfg["n_kv_head"], 0)
              .transpose(1, 2)) / rt
        s0 = s0.masked_fill(~causal, float("-inf"))
        gap0 = float("inf")
        rows = torch.arange(3, n)
        for h, o in enumerate(nm.OFFSETS):
            right = s0[h, rows, rows + o].clone()
            s0[h, rows, rows + o] = float("-inf")
            gap0 = min(gap0, float((right - s0[h, rows].max(-1).values).min()))
        del s0
        # layer 1, last position: the needle's value token against the rest
        q1 = r["q"][1][:, -1]                                   # [H, hd]
        k1 = r["kv"][1][0].repeat_interleave(cfg["n_head"] // cfg["n_kv_head"], 0)
        s1 = (k1 @ q1.unsqueeze(-1)).squeeze(-1) / rt           # [H, n]
        vid = vocab["value_ids"][vocab["values"].index(t["answers"][0])]
        pos = [j for j, x in enumerate(ids) if x == vid]
        if len(pos) == 1:
            other = s1.clone()
            other[:, pos[0]] = float("-inf")
            gap1 = float((s1[:, pos[0]] - other.max(-1).values).min())
            score1 = float(s1[:, pos[0]].min())
        else:
            gap1 = score1 = float("nan")
        lg = r["logits"][-1]
        top = torch.topk(lg, 2).values
        gen = [argmax_first(lg)]
        past, at = r["kv"], n
        while len(gen) < 3 and gen[-1] != eos:
            r = m.forward([gen[-1]], pos0=at, past=past)
            past, at = r["kv"], at + 1
            gen.append(argmax_first(r["logits"][-1]))
        out.append({"id": t["id"], "ids": gen, "n_prompt": n, "s": time.time() - t0,
                    "gap_layer0": gap0, "gap_layer1": gap1, "score_layer1": score1,
                    "logit_gap": float(top[0] - top[1])})
        if (i + 1) % 20 == 0:
            log(f"  {i + 1}/{len(tasks)}")
    return out


def eval_finch(tasks, model, vocab, finch, log):
    enc = nm.Encoder(vocab)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, t in enumerate(tasks):
            text = t["context"] + " " + t["question"]
            d = os.path.join(tmp, f"d{i}")
            t0 = time.time()
            r = subprocess.run([finch, "generate", "-m", model, "-p", text, "-n", "3",
                                "--dump", d], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{t['id']}: finch exited {r.returncode}: {r.stderr.strip()}")
            pid = np.load(os.path.join(d, "prompt_ids.npy")).tolist()
            gen = np.load(os.path.join(d, "generated.npy")).tolist()
            if pid != enc.encode(text):
                raise SystemExit(f"{t['id']}: finch's prompt ids differ from the Python encoder's")
            out.append({"id": t["id"], "ids": gen, "n_prompt": len(pid), "s": time.time() - t0})
            if (i + 1) % 20 == 0:
                log(f"  {i + 1}/{len(tasks)}")
    return out


def table(tasks, res, vocab, field, fmt=str):
    enc = nm.Encoder(vocab)
    rows = {}
    for t, r in zip(tasks, res):
        ok = enc.decode(r["ids"][:1]).strip() == t["answers"][0]
        key = t[field]
        a = rows.setdefault(key, [0, 0])
        a[0] += ok
        a[1] += 1
    lines = [f"| {field} | exact | n |", "|---|---|---|"]
    for key in sorted(rows):
        ok, n = rows[key]
        lines.append(f"| {fmt(key)} | {100.0 * ok / n:.1f}% | {n} |")
    return lines


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=200)
    g.add_argument("--lengths", default="256,512,1024,2048,4096")
    g.add_argument("--depths", default="0,0.25,0.5,0.75,1",
                   help="comma list, or 'random'")
    g.add_argument("--needles", default="1,2,3,4")
    g.add_argument("--haystack", default="filler", choices=["filler", "kjv"])
    g.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("eval")
    e.add_argument("--tasks", required=True)
    e.add_argument("--model", default="testdata/models/needle.gguf")
    e.add_argument("--engine", choices=["torch", "finch"], default="torch")
    e.add_argument("--finch", default="build/finch")
    e.add_argument("--json", help="write per-task results here")
    a = ap.parse_args(argv)
    if a.cmd == "gen":
        depths = None if a.depths == "random" else [float(x) for x in a.depths.split(",")]
        tasks = make_tasks(a.n, [int(x) for x in a.lengths.split(",")], depths,
                           [int(x) for x in a.needles.split(",")], a.haystack, a.seed)
        tmp = a.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for t in tasks:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
        os.replace(tmp, a.out)
        print(f"wrote {len(tasks)} tasks to {a.out}")
        return
    with open(a.tasks, encoding="utf-8") as f:
        tasks = [json.loads(line) for line in f if line.strip()]
    vocab = nm.build_vocab()
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.time()
    if a.engine == "torch":
        res = eval_torch(tasks, a.model, vocab, log)
    else:
        res = eval_finch(tasks, a.model, vocab, a.finch, log)
    enc = nm.Encoder(vocab)
    n_ok = sum(enc.decode(r["ids"][:1]).strip() == t["answers"][0] for t, r in zip(tasks, res))
    n_full = sum(r["ids"] == [vocab["value_ids"][vocab["values"].index(t["answers"][0])],
                              vocab["id"]["."], vocab["eos"]] for t, r in zip(tasks, res))
    print(f"engine {a.engine}, model {a.model}, tasks {a.tasks}: exact match "
          f"{n_ok}/{len(tasks)} = {100.0 * n_ok / len(tasks):.1f}%; "
          f"continuation '<value> . </s>': {n_full}/{len(tasks)}; {time.time() - t0:.1f} s")
    if a.engine == "torch":
        print(f"margins (min over tasks): layer 0, intended offset over any other key "
              f"{min(r['gap_layer0'] for r in res):.2f} nats; layer 1, needle value over any "
              f"other position {min(r['gap_layer1'] for r in res):.2f} nats (needle score "
              f"{min(r['score_layer1'] for r in res):.2f}); answer logit over the runner-up "
              f"{min(r['logit_gap'] for r in res):.2f}")
    for field, fmt in (("length", str), ("depth", lambda d: f"{d:.2f}"), ("n_needles", str)):
        print()
        print("\n".join(table(tasks, res, vocab, field, fmt)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump([dict(id=t["id"], answer=t["answers"][0], got=enc.decode(r["ids"]),
                            **{k: v for k, v in r.items() if k != "id"})
                       for t, r in zip(tasks, res)], f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
