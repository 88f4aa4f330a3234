#!/bin/sh
# bench_7b.sh - what one Finch item costs at the paper's scale: a
# Llama-2-7B-shape random-weight file, finch beside llama.cpp (make bench-7b,
# docs/reproduce.md "7B-shape benchmark").
#
#   tools/bench_7b.sh [LLAMA_BIN_DIR]
#
# Writes bench-models/7b/llama2-7b-f16.gguf (13.5 GB, streamed), then, when
# LLAMA_BIN_DIR holds llama-quantize, bench-models/7b/llama2-7b-q4_k_m.gguf
# (3.8 GB; the F16 file is removed after) or else llama2-7b-q8_0.gguf (7.2
# GB, written directly).  Measures, 2 threads: prefill of a SQuAD-sized item
# (200 tokens) on both engines, and Finch iterative on an 8,000-token text
# compressed 93x (question 32, chunk 512) beside finch's plain chunked
# prefill of the same text and llama.cpp's prefill of 8,000 tokens, each
# with its peak RSS.  Needs ~20 GB free disk and ~8 GB free memory; takes
# tens of minutes on 2 cores.  Raw outputs in bench-models/7b/ too (not in
# bench-models/ itself, whose every *.gguf `make bench` measures).
set -eu
bin=${1:-}
finch=${FINCH_BIN:-build/finch}
dir=${BENCH_DIR:-bench-models}
py=${PYTHON:-/usr/bin/python3}
[ -x "$finch" ] || { echo "bench_7b: '$finch' not built (run make)" >&2; exit 2; }
free_gb=$(df -Pk "$(dirname "$dir/.")" | awk 'NR == 2 { print int($4 / 1048576) }')
out=$dir/7b
mkdir -p "$out"
if [ -n "$bin" ] && [ -x "$bin/llama-quantize" ]; then
    model=$out/llama2-7b-q4_k_m.gguf
    if [ ! -f "$model" ]; then
        [ "$free_gb" -ge 20 ] || { echo "bench_7b: $free_gb GB free, 20 needed" >&2; exit 2; }
        "$py" tools/make_bench_models.py --out "$out" llama2-7b-f16
        "$bin/llama-quantize" "$out/llama2-7b-f16.gguf" "$model.tmp" Q4_K_M 2 >"$out/quantize.log" 2>&1
        mv "$model.tmp" "$model"
        rm -f "$out/llama2-7b-f16.gguf"
    fi
else
    model=$out/llama2-7b-q8_0.gguf
    [ -f "$model" ] || [ "$free_gb" -ge 9 ] || { echo "bench_7b: $free_gb GB free, 9 needed" >&2; exit 2; }
    "$py" tools/make_bench_models.py --out "$out" llama2-7b-q8_0
fi
echo "model: $model"
if [ -n "$bin" ] && [ -x "$bin/llama-bench" ]; then
    for p in 200 8000; do
        /usr/bin/time -f "%M" -o "$out/llama.pp$p.rss" \
            "$bin/llama-bench" -m "$model" -t 2 -p "$p" -n 0 -r 1 -o csv >"$out/llama.pp$p.csv" 2>/dev/null
        # the avg_ts column by its header (the last one is stddev_ts)
        ts=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; gsub(/"/, "", h); if (h == "avg_ts") c = i } }
                      NR == 2 && c { v = $c; gsub(/"/, "", v); print v }' "$out/llama.pp$p.csv")
        echo "llama.cpp prefill $p: $ts tok/s, peak RSS $(($(cat "$out/llama.pp$p.rss") / 1024)) MB"
    done
fi
# --rss: Finch alone on 200 and 8,000 tokens, each in its own child process,
# so that its peak RSS is not the plain chunked prefill's full cache (K is
# the 200-token text's, 3, for both: a cache 84 tokens smaller than K 87's).
/usr/bin/time -f "%M" -o "$out/finch.rss" "$finch" bench -m "$model" -t 2 --no-probe --prefill 200 \
    --decode 4 --finch-text 8000 --question 32 --ratio 93 --chunk 512 \
    --rss "$model" --rss-short 200 --rss-long 8000 --json >"$out/finch.json"
"$py" - "$out/finch.json" "$out/finch.rss" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["models"][0]
rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
print(f"finch prefill 200: {m['prefill_tok_s']:.1f} tok/s; Finch iterative on 8000 tokens (93x): "
      f"{m['finch_seconds']:.1f} s, plain chunked prefill {m['chunked_prefill_seconds']:.1f} s "
      f"(ratio {m['finch_seconds'] / m['chunked_prefill_seconds']:.3f}); peak RSS {rss:.0f} MB")
r = json.load(open(sys.argv[1]))["rss"]
print(f"Finch alone (its own process, K {r['budget']}): 200 tokens {r['short_seconds']:.1f} s, "
      f"peak RSS {r['short_peak_rss_mb']:.0f} MB; 8000 tokens {r['long_seconds']:.1f} s, "
      f"peak RSS {r['long_peak_rss_mb']:.0f} MB")
PY
