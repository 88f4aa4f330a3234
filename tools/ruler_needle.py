#!/usr/bin/python3
"""ruler_needle.py - RULER-style needle tasks in the needle model's own words.

`finch ruler` writes RULER's templates (7-digit values, made-up key words,
"One of the special magic numbers for ... is: ...").  The needle model
(testdata/models/needle.gguf, docs/needle-model.md) has a 1384-piece
vocabulary and one retrieval circuit, so on those files it answers nothing
(every press, the full cache included, scores 0).  This script writes the
RULER needle variants it *can* answer, in RULER's JSONL (index, input,
outputs, length, answer_prefix, task), so that `finch eval` reads them as a
RULER file, splits the question at RULER's "\\nWhat is/are all the special
magic" and scores RULER's string_match_all per task:

  niah_single_1    filler haystack (RULER: noise), one needle
  niah_single_2    King James Bible haystack (RULER: essays), one needle
  niah_multikey_1  Bible haystack, the needle and 3 distractor needles
  niah_multikey_2  a haystack made only of distractor needles (RULER's
                   "haystack: needle"); the asked key and value occur once,
                   distractor keys may repeat (the model has 96 keys)
  niah_multiquery  4 needles; the question names all 4 keys, as RULER's,
                   but the answer prefix asks one of them (the model answers
                   one value): each context is written 4 times, once per
                   key, so the mean over its 4 items is RULER's
                   string_match_all of an answer listing all 4 values

Not written, and why: niah_multivalue (4 values of one key; the model reads
one of them whichever the press kept, so string match cannot tell keeping 1
from keeping 4), vt and cwe (multi-hop and counting: the circuit does one
lookup).

Needle "The special magic number for K is V.", question "\\nWhat is the
special magic number for K?", answer prefix " The special magic number for
K is" (RULER's niah answer prefix, shortened to the model's words).  Length
counts BOS + context + question + answer prefix + 3 (value, ".", "</s>") +
2 slack tokens (the pieces are tokenized apart), each with the model's
tokenizer (make_needle_model.Encoder).

  /usr/bin/python3 tools/ruler_needle.py --out FILE.jsonl --length 2048 \\
      --samples 8 [--tasks a,b] [--seed 7]

The Bible haystack is read from ../shared/assets (or $FINCH_ASSETS) at run
time; the files written hold its text, so keep them out of git (out/).
"""

import argparse
import itertools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_needle_model as nm  # noqa: E402
import needle_tasks as nt  # noqa: E402

QUESTION_ONE = "\nWhat is the special magic number for {key}?"
QUESTION_ALL = "\nWhat are all the special magic numbers for {keys}?"
PREFIX = " The special magic number for {key} is"
ROOM = 3 + 2  # value, ".", "</s>"; slack for pieces tokenized apart
TASKS = ["niah_single_1", "niah_single_2", "niah_multikey_1", "niah_multikey_2", "niah_multiquery"]


class Maker:
    def __init__(self, length, seed):
        self.vocab = nm.build_vocab()
        self.enc = nm.Encoder(self.vocab)
        self.keys, self.values = self.vocab["keys"], self.vocab["values"]
        self.length, self.seed, self.cache = length, seed, {}

    def count(self, s):
        c = self.cache.get(s)
        if c is None:
            c = self.cache[s] = len(self.enc.encode(s, add_bos=False))
        return c

    def hay_source(self, kind, rng, distractor):
        """An endless stream of haystack sentences."""
        if kind == "filler":
            order = itertools.chain.from_iterable(rng.permutation(len(nm.FILLER_SENTENCES)) for _ in itertools.count())
            return (nm.FILLER_SENTENCES[j] for j in order)
        if kind == "kjv":
            verses = nt.kjv_verses()
            start = int(rng.integers(len(verses)))
            return (verses[(start + j) % len(verses)] for j in itertools.count())
        return (nt.NEEDLE.format(key=self.keys[a], value=self.values[b]) for a, b in distractor())

    def context(self, hay, needles, budget, rng):
        """Haystack sentences up to `budget` tokens with the needles at random depths."""
        parts, used = [], 0
        for s in hay:
            if used + self.count(s) > budget:
                break
            parts.append(s)
            used += self.count(s)
        slots = sorted((int(round(float(d) * len(parts))), j) for j, d in enumerate(rng.uniform(size=len(needles))))
        for slot, j in reversed(slots):
            parts.insert(slot, needles[j])
        return " ".join(parts)

    def item(self, task, t):
        rng = np.random.default_rng([self.seed, TASKS.index(task), t])
        k = 4 if task in ("niah_multikey_1", "niah_multiquery") else 1
        ki = rng.choice(len(self.keys), size=k, replace=False)
        vi = rng.choice(len(self.values), size=k, replace=False)
        needles = [nt.NEEDLE.format(key=self.keys[a], value=self.values[b]) for a, b in zip(ki, vi)]
        if task == "niah_multiquery":
            names = [self.keys[a] for a in ki]
            q = QUESTION_ALL.format(keys=", ".join(names[:-1]) + " and " + names[-1])
        else:
            q = QUESTION_ONE.format(key=self.keys[ki[0]])
        others_k = [a for a in range(len(self.keys)) if a not in ki]
        others_v = [b for b in range(len(self.values)) if b not in vi]

        def distractor():  # keys and values other than the needles', drawn with repeats
            while True:
                yield others_k[int(rng.integers(len(others_k)))], others_v[int(rng.integers(len(others_v)))]

        hay_kind = {"niah_single_1": "filler", "niah_multiquery": "filler", "niah_multikey_2": "needles"}.get(task, "kjv")
        longest_prefix = max(self.count(PREFIX.format(key=self.keys[a])) for a in ki)
        budget = self.length - 1 - ROOM - self.count(q) - longest_prefix - sum(self.count(s) for s in needles)
        if budget < 0:
            raise SystemExit(f"--length {self.length} is too short for {task}")
        ctx = self.context(self.hay_source(hay_kind, rng, distractor), needles, budget, rng)
        asked = range(k) if task == "niah_multiquery" else range(1)
        return [{"input": ctx + q, "outputs": [self.values[vi[j]]], "length": self.length,
                 "answer_prefix": PREFIX.format(key=self.keys[ki[j]]), "task": task} for j in asked]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--length", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=8, help="contexts per task")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    tasks = a.tasks.split(",")
    for task in tasks:
        if task not in TASKS:
            raise SystemExit(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    mk, lines = Maker(a.length, a.seed), []
    for task in tasks:
        for t in range(a.samples):
            lines += mk.item(task, t)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for i, line in enumerate(lines):
            f.write(json.dumps({"index": i, **line}) + "\n")
    os.replace(tmp, a.out)
    print(f"wrote {len(lines)} items ({', '.join(tasks)}; {a.samples} contexts each) to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
