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
# llama.cpp's pp512 + tg64 (2 threads, its defaults; the mean of its 3
# repetitions) and then `finch bench` on the same file FINCH_REPS times
# (default 3; also 512 prefill tokens and 64 decode steps, the mean of the
# runs): a single decode run lands in one of the shared machine's
# bandwidth states (docs/bench.md), so one run against llama.cpp's mean of
# three was no fair comparison.  The raw outputs go to bench-models/peer/
# and a summary to stdout.
set -eu
llama_bench=${1:?usage: tools/peer_bench.sh LLAMA_BENCH [ROUNDS]}
rounds=${2:-2}
finch=${FINCH_BIN:-build/finch}
reps=${FINCH_REPS:-3}
case $reps in '' | *[!0-9]* | 0) echo "peer_bench: FINCH_REPS must be a positive integer, not '$reps'" >&2; exit 2 ;; esac
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
        "$llama_bench" -m "$m" -t 2 -p 512 -n 64 -r 3 -o csv >"$out/$name.llama.$round.csv" 2>/dev/null
        rm -f "$out/$name.finch.$round".*.json
        for rep in $(seq 1 "$reps"); do
            "$finch" bench -m "$m" -t 2 --decode 64 --no-probe --json >"$out/$name.finch.$round.$rep.json"
        done
        /usr/bin/python3 - "$out/$name.llama.$round.csv" "$name" "$round" bench-models/bench.json \
            "$out/$name.finch.$round".*.json <<'EOF'
import csv, json, math, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
llama = {("pp" if int(r["n_prompt"]) else "tg"): float(r["avg_ts"]) for r in rows}
runs = [json.load(open(p))["models"][0] for p in sys.argv[5:]]
f = dict(runs[0])  # the work per token is the same in every run; the rates are their means
for key in ("prefill_tok_s", "decode_tok_s"):
    f[key] = sum(r[key] for r in runs) / len(runs)
line = (f"round {sys.argv[3]} {sys.argv[2]:22s} prefill finch {f['prefill_tok_s']:7.1f} llama.cpp {llama['pp']:7.1f} "
        f"ratio {f['prefill_tok_s'] / llama['pp']:.2f} | decode finch {f['decode_tok_s']:6.1f} "
        f"llama.cpp {llama['tg']:6.1f} ratio {f['decode_tok_s'] / llama['tg']:.2f} "
        f"(finch: mean of {len(runs)} runs, decode {min(r['decode_tok_s'] for r in runs):.1f}-"
        f"{max(r['decode_tok_s'] for r in runs):.1f})")
# Both engines as fractions of the probes of the last `make bench` (its
# bench.json), with finch's work per token (the same files, the same work).
probe = json.load(open(sys.argv[4]))["machine"] if os.path.exists(sys.argv[4]) else {}
peak, bw = probe.get("peak_fma_gflops"), probe.get("read_bw_gbs")
if peak and bw and not (math.isnan(peak) or math.isnan(bw)):
    flop_tok = f["prefill_flop"] / f["prefill_tokens"]
    line += (f" | of peak: prefill {f['prefill_tok_s'] * flop_tok / 1e9 / peak:.2f} / "
             f"{llama['pp'] * flop_tok / 1e9 / peak:.2f}, decode "
             f"{f['decode_tok_s'] * f['decode_weight_bytes'] / 1e9 / bw:.2f} / "
             f"{llama['tg'] * f['decode_weight_bytes'] / 1e9 / bw:.2f} (finch / llama.cpp)")
print(line)
EOF
    done
done
