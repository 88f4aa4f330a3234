#!/usr/bin/python3
"""results_tables.py - the Markdown tables of docs/results.md from the
results.json files `finch eval` writes (tools/make_results.sh runs it).

  pivot RESULTS.json --metric em|f1|kl|top1|score [--ci] [--digits D]
        rows: presses (full first, then --press order), columns: ratios;
        a cell is the mean over the items, with --ci its 95% bootstrap
        interval in brackets
  ruler RESULTS.json --ratio R [--ci] [--metric score|kl|...] [--task-file FILE]
        RULER's table: rows presses, columns the task kinds in file order,
        a cell is RULER's score (100 x mean string match; or the mean of
        another record field, e.g. kl) at ratio R, then the average over
        the task kinds (RULER prints the plain mean of the task scores)
  ruler-avg RESULTS.json [--task-file FILE]
        rows presses, columns ratios, a cell RULER's average over the task
        kinds (the ruler table's avg column at every ratio)

The intervals are the ones the figures draw: src/eval/bootstrap.c
replicated (1000 resamples of the items, indices from splitmix64 seeded
20240601, items in file order, the 26th and 975th sorted means), so a
table's bracket and the figure's error bar agree.
"""

import argparse
import json
import math
import sys

M64 = (1 << 64) - 1
SEED, RESAMPLES = 20240601, 1000


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def ci95(values):
    """finch_bootstrap_ci95: (lo, hi) or None for fewer than 2 values."""
    x = [v for v in values if v is not None and not math.isnan(v)]
    if len(x) < 2:
        return (x[0], x[0]) if x else None
    state, means, m = SEED, [], len(x)
    for _ in range(RESAMPLES):
        s = 0.0
        for _ in range(m):
            state, r = splitmix64(state)
            s += x[r % m]
        means.append(s / m)
    means.sort()
    return means[int(math.floor(0.025 * RESAMPLES))], means[int(math.ceil(0.975 * RESAMPLES)) - 1]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def task_kinds(path):
    """{id: task kind} of a RULER JSONL (its "task" field; finch ruler and
    tools/ruler_needle.py write it)."""
    kinds = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                kinds[f"{j['index']:.0f}"] = j.get("task", "?")
    return kinds


def runs(doc, metric, kinds=None):
    """{(press, ratio): [(task kind, value) per scored item, in file order]}."""
    out = {}
    for it in doc["items"]:
        if "skipped" in it:
            continue
        recs = [dict(it["full"], press="full", ratio=1)] + it["runs"]
        for r in recs:
            v = r.get(metric)
            out.setdefault((r["press"], r["ratio"]), []).append(((kinds or {}).get(it["id"]), v))
    return out


def fmt(v, digits, scale=1.0):
    return "-" if v is None else f"{v * scale:.{digits}f}"


def cell(vals, digits, with_ci, scale=1.0):
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    if not vals:
        return "-"
    s = fmt(sum(vals) / len(vals), digits, scale)
    if with_ci:
        lo_hi = ci95(vals)
        if lo_hi and len(vals) > 1:
            s += f" [{fmt(lo_hi[0], digits, scale)}, {fmt(lo_hi[1], digits, scale)}]"
    return s


def press_order(doc):
    return ["full"] + list(doc["config"]["presses"])


def pivot(doc, metric, with_ci, digits):
    """Rows presses, columns 1x (the full cache's own row) then the ratios."""
    data, ratios = runs(doc, metric), doc["config"]["ratios"]
    lines = ["| press | 1x | " + " | ".join(f"{r:g}x" for r in ratios) + " |",
             "|---|" + "---:|" * (len(ratios) + 1)]
    for p in press_order(doc):
        if p == "full":
            cells = [cell([v for _, v in data[("full", 1)]], digits, with_ci)] + ["" for _ in ratios]
        else:
            cells = [""] + [cell([v for _, v in data.get((p, r), [])], digits, with_ci) for r in ratios]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ruler(doc, ratio, with_ci, task_file, metric="score"):
    """RULER's table of `metric` (score: x 100, one digit; else as recorded, three)."""
    of = task_kinds(task_file or doc["config"]["task"])
    data = runs(doc, metric, of)
    scale, digits = (100.0, 1) if metric == "score" else (1.0, 3)
    kinds = []
    for it in doc["items"]:
        if "skipped" not in it and of.get(it["id"]) not in kinds:
            kinds.append(of.get(it["id"]))
    lines = ["| press | " + " | ".join(k.replace("niah_", "") for k in kinds) + " | avg |",
             "|---|" + "---:|" * (len(kinds) + 1)]
    for p in press_order(doc):
        key = ("full", 1) if p == "full" else (p, ratio)
        cells, means = [], []
        for k in kinds:
            vals = [v for d, v in data.get(key, []) if d == k and v is not None]
            cells.append(cell(vals, digits, with_ci, scale))
            if vals:
                means.append(scale * sum(vals) / len(vals))
        avg = f"{sum(means) / len(means):.{digits}f}" if means else "-"
        name = "full (1x)" if p == "full" else p
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {avg} |")
    return "\n".join(lines)


def ruler_avg(doc, task_file):
    """Rows presses, columns ratios: RULER's average over the task kinds."""
    of = task_kinds(task_file or doc["config"]["task"])
    data, ratios = runs(doc, "score", of), doc["config"]["ratios"]
    kinds = sorted({k for vals in data.values() for k, _ in vals}, key=str)

    def avg(key):
        means = []
        for k in kinds:
            vals = [v for d, v in data.get(key, []) if d == k and v is not None]
            if vals:
                means.append(100.0 * sum(vals) / len(vals))
        return f"{sum(means) / len(means):.1f}" if means else "-"

    lines = ["| press | 1x | " + " | ".join(f"{r:g}x" for r in ratios) + " |",
             "|---|" + "---:|" * (len(ratios) + 1)]
    for p in press_order(doc):
        cells = [avg(("full", 1))] + ["" for _ in ratios] if p == "full" else [""] + [avg((p, r)) for r in ratios]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a1 = sub.add_parser("pivot")
    a1.add_argument("results")
    a1.add_argument("--metric", default="em", choices=["em", "f1", "kl", "top1", "nll", "score"])
    a1.add_argument("--ci", action="store_true")
    a1.add_argument("--digits", type=int, default=2)
    a2 = sub.add_parser("ruler")
    a2.add_argument("results")
    a2.add_argument("--ratio", type=float, required=True)
    a2.add_argument("--ci", action="store_true")
    a2.add_argument("--metric", default="score", choices=["score", "kl", "em", "top1", "nll"])
    a2.add_argument("--task-file", help="the RULER JSONL evaluated (default: results.json's config.task)")
    a3 = sub.add_parser("ruler-avg")
    a3.add_argument("results")
    a3.add_argument("--task-file", help="the RULER JSONL evaluated (default: results.json's config.task)")
    a = ap.parse_args(argv)
    doc = load(a.results)
    if a.cmd == "pivot":
        print(pivot(doc, a.metric, a.ci, a.digits))
    elif a.cmd == "ruler-avg":
        print(ruler_avg(doc, a.task_file))
    else:
        if a.ratio not in doc["config"]["ratios"]:
            raise SystemExit(f"ratio {a.ratio:g} is not in the sweep ({doc['config']['ratios']})")
        print(ruler(doc, a.ratio, a.ci, a.task_file, a.metric))


if __name__ == "__main__":
    main(sys.argv[1:])
