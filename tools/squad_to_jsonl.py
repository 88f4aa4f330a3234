#!/usr/bin/python3
"""squad_to_jsonl.py - the SQuAD v2 sample in ../shared/assets/eval/squad2_500/
(queries.json: id, context, question; ground_truth.json: answers,
is_impossible) as a `finch eval` task file, one JSON object per line:

    {"id": ..., "context": ..., "question": ..., "answers": [...]}

Unanswerable items get "answers": [] (SQuAD v2 scores them against "").
The output goes to out/eval/ by default, which git ignores: the data is not
ours to commit.

    /usr/bin/python3 tools/squad_to_jsonl.py [--src DIR] [--out FILE]
        [--answerable-only] [--limit N]
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def default_src():
    assets = os.environ.get("FINCH_ASSETS") or os.path.join(ROOT, "..", "shared", "assets")
    return os.path.join(assets, "eval", "squad2_500")


def convert(src, answerable_only=False, limit=None):
    with open(os.path.join(src, "queries.json"), encoding="utf-8") as f:
        queries = json.load(f)["queries"]
    with open(os.path.join(src, "ground_truth.json"), encoding="utf-8") as f:
        truth = json.load(f)
    tasks = []
    for q in queries:
        gt = truth.get(q["id"])
        if gt is None:
            raise SystemExit(f"squad_to_jsonl: no ground truth for id {q['id']}")
        answers = [] if gt.get("is_impossible") else list(gt["answers"])
        if answerable_only and not answers:
            continue
        tasks.append({"id": q["id"], "context": q["context"], "question": q["question"], "answers": answers})
        if limit is not None and len(tasks) >= limit:
            break
    return tasks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=default_src(), help="folder with queries.json and ground_truth.json")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "eval", "squad2_500.jsonl"))
    ap.add_argument("--answerable-only", action="store_true", help="leave out the unanswerable items")
    ap.add_argument("--limit", type=int, default=None, help="at most N items")
    a = ap.parse_args()
    if not os.path.isdir(a.src):
        sys.exit(f"squad_to_jsonl: {a.src} not found (set FINCH_ASSETS or --src)")
    tasks = convert(a.src, a.answerable_only, a.limit)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    n_ans = sum(1 for t in tasks if t["answers"])
    print(f"squad_to_jsonl: {len(tasks)} tasks ({n_ans} answerable) -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
