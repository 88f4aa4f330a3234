#!/bin/sh
# peer_bench.sh - finch and llama.cpp on the same random-weight GGUF files,
# alternately in one window, so the ratio is fair on a shared, drifting
# machine (docs/bench.md).
#
#   tools/peer_bench.sh LLAMA_BENCH [ROUNDS]      (default 2 rounds)
#
# LLAMA_BENCH: the llama-bench binary (tools/build_llamacpp.sh prints it).
# Each round runs, for every TinyLlama-shape file in bench-models/ (F32, F16,
# Q8_0, and the quantized ones tools/peer_quant_models.sh made in quant/),
# PEER_PAIRS pairs (default 3), each llama.cpp's pp512 + tg64 once (2
# threads, its defaults, after its warm-up runs) and right after it
# `finch bench` once (also 512 prefill tokens and 64 decode steps).  The
# shared machine's memory bandwidth switches between two states that last
# tens of seconds (docs/bench.md, "Two bandwidth states"), so decode runs
# a minute apart can differ by 1.5x: only runs side by side compare.  The
# line gives each engine's mean over the pairs, the ratio of the means and
# the median and range of the pairs' own ratios.  The raw outputs go to
# bench-models/peer/ and a summary to stdout.
set -eu
llama_bench=${1:?usage: tools/peer_bench.sh LLAMA_BENCH [ROUNDS]}
rounds=${2:-2}
finch=${FINCH_BIN:-build/finch}
pairs=${PEER_PAIRS:-3}
case $pairs in '' | *[!0-9]* | 0) echo "peer_bench: PEER_PAIRS must be a positive integer, not '$pairs'" >&2; exit 2 ;; esac
case $rounds in '' | *[!0-9]* | 0) echo "peer_bench: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2 ;; esac
[ -x "$llama_bench" ] || { echo "peer_bench: '$llama_bench' is not an executable" >&2; exit 2; }
[ -x "$finch" ] || { echo "peer_bench: '$finch' not built (run make)" >&2; exit 2; }
out=bench-models/peer
mkdir -p "$out"
for round in $(seq 1 "$rounds"); do
    for m in bench-models/tinyllama-1.1b-f32.gguf bench-models/tinyllama-1.1b-f16.gguf \
             bench-models/tinyllama-1.1b-q8_0.gguf bench-models/quant/tinyllama-1.1b-*.gguf; do
        case $m in *'*'*) continue ;; esac # no quantized files (no llama-quantize)
        [ -f "$m" ] || { echo "peer_bench: $m missing (make bench writes it)" >&2; exit 2; }
        name=$(basename "$m" .gguf)
        rm -f "$out/$name".*."$round".*.csv "$out/$name".*."$round".*.json
        for pair in $(seq 1 "$pairs"); do
            "$llama_bench" -m "$m" -t 2 -p 512 -n 64 -r 1 -o csv >"$out/$name.llama.$round.$pair.csv" 2>/dev/null
            # finch's Finch-against-chunked part kept short: the pair's
            # two runs as close together as their prefill and decode allow
            "$finch" bench -m "$m" -t 2 --decode 64 --no-probe --finch-text 64 --question 8 --chunk 64 \
                --json >"$out/$name.finch.$round.$pair.json"
        done
        /usr/bin/python3 - "$name" "$round" "$pairs" "$out" bench-models/bench.json <<'PY'
import csv, json, math, os, statistics, sys
name, rnd, pairs, out, bench_json = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
llama, finch = {"pp": [], "tg": []}, {"pp": [], "tg": []}
for p in range(1, pairs + 1):
    for r in csv.DictReader(open(f"{out}/{name}.llama.{rnd}.{p}.csv")):
        llama["pp" if int(r["n_prompt"]) else "tg"].append(float(r["avg_ts"]))
    f = json.load(open(f"{out}/{name}.finch.{rnd}.{p}.json"))["models"][0]
    finch["pp"].append(f["prefill_tok_s"])
    finch["tg"].append(f["decode_tok_s"])
mean = lambda v: sum(v) / len(v)
def phase(label, key):
    ratios = [a / b for a, b in zip(finch[key], llama[key])]
    return (f"{label} finch {mean(finch[key]):7.1f} llama.cpp {mean(llama[key]):7.1f} "
            f"ratio {mean(finch[key]) / mean(llama[key]):.2f} "
            f"(pairs: median {statistics.median(ratios):.2f}, {min(ratios):.2f}-{max(ratios):.2f})")
line = f"round {rnd} {name:22s} {phase('prefill', 'pp')} | {phase('decode', 'tg')}"
# Both engines as fractions of the probes of the last `make bench` (its
# bench.json), with finch's work per token (the same files, the same work).
probe = json.load(open(bench_json))["machine"] if os.path.exists(bench_json) else {}
peak, bw = probe.get("peak_fma_gflops"), probe.get("read_bw_gbs")
if peak and bw and not (math.isnan(peak) or math.isnan(bw)):
    flop_tok = f["prefill_flop"] / f["prefill_tokens"]
    line += (f" | of peak: prefill {mean(finch['pp']) * flop_tok / 1e9 / peak:.2f} / "
             f"{mean(llama['pp']) * flop_tok / 1e9 / peak:.2f}, decode "
             f"{mean(finch['tg']) * f['decode_weight_bytes'] / 1e9 / bw:.2f} / "
             f"{mean(llama['tg']) * f['decode_weight_bytes'] / 1e9 / bw:.2f} (finch / llama.cpp)")
print(line)
PY
    done
done
