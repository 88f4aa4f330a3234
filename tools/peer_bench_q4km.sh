#!/bin/sh
# peer_bench_q4km.sh - the end of `make bench`: the TinyLlama-shape file quantized
# to Q4_K_M by llama.cpp's llama-quantize (from the F16 bench file), measured
# by finch and by llama.cpp's llama-bench side by side (docs/bench.md).
#
#   tools/peer_bench_q4km.sh FINCH LLAMACPP_DIR [SRC.gguf] [THREADS]
#
# SRC defaults to bench-models/tinyllama-1.1b-f16.gguf; the Q4_K_M file is
# written once, next to it in quant/ (NAME-q4_k_m.gguf, the "-f16" of the
# name replaced).  THREADS (default 2) is given to both engines.  Without a
# llama.cpp build (tools/build_llamacpp.sh) this prints one line and exits
# 0: the rest of the bench stands alone.  When finch refuses the file (a
# build without the quantized types), its row is skipped with finch's own
# one-line reason and llama.cpp's figures are still printed.  Numbers only:
# nothing here passes or fails, except bad arguments (exit 2).
set -eu
finch=${1:?usage: tools/peer_bench_q4km.sh FINCH LLAMACPP_DIR [SRC.gguf] [THREADS]}
dir=${2:?usage: tools/peer_bench_q4km.sh FINCH LLAMACPP_DIR [SRC.gguf] [THREADS]}
src=${3:-bench-models/tinyllama-1.1b-f16.gguf}
threads=${4:-2}
bin=$dir/src/build/bin
[ -x "$finch" ] || { echo "peer_bench_q4km: '$finch' is not an executable (run make)" >&2; exit 2; }
[ -f "$src" ] || { echo "peer_bench_q4km: $src missing (tools/make_bench_models.py writes it)" >&2; exit 2; }
if [ ! -x "$bin/llama-quantize" ] || [ ! -x "$bin/llama-bench" ]; then
    echo "bench: no llama.cpp build in $dir (tools/build_llamacpp.sh $dir): no Q4_K_M row, no llama.cpp figures"
    exit 0
fi
name=$(basename "$src" .gguf)
name=${name%-f16}
name=${name%-f32}
out=$(dirname "$src")/quant/$name-q4_k_m.gguf
mkdir -p "$(dirname "$out")"
if [ ! -s "$out" ]; then
    echo "bench: writing $out (llama-quantize Q4_K_M, a minute or two) ..."
    if ! "$bin/llama-quantize" "$src" "$out.tmp" Q4_K_M "$threads" >"$out.log" 2>&1; then
        rm -f "$out.tmp"
        echo "peer_bench_q4km: llama-quantize failed: see $out.log" >&2
        exit 1
    fi
    mv "$out.tmp" "$out"
    rm -f "$out.log"
fi
label=$(basename "$out" .gguf)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# finch: the same prefill and decode as the main table, a small Finch text
# (the Finch-vs-prefill figure of this row is not the point here)
if "$finch" bench -m "$out" -t "$threads" --prefill 512 --decode 16 --finch-text 64 --question 8 --chunk 64 \
       --no-probe --json >"$tmp/finch.json" 2>"$tmp/finch.err"; then
    finch_ok=1
else
    finch_ok=0
    echo "bench: $label: skipped by finch: $(tail -n 1 "$tmp/finch.err")"
fi
# llama.cpp: its defaults (F16 KV cache, flash attention on), as in docs/bench.md
"$bin/llama-bench" -m "$out" -t "$threads" -p 512 -n 64 -r 2 -o csv >"$tmp/llama.csv" 2>"$tmp/llama.err" ||
    { echo "peer_bench_q4km: llama-bench failed: $(tail -n 1 "$tmp/llama.err")" >&2; exit 1; }
/usr/bin/python3 - "$tmp/llama.csv" "$tmp/finch.json" "$finch_ok" "$label" "$threads" <<'EOF'
import csv, json, sys
llama_csv, finch_json, finch_ok, label, threads = sys.argv[1:]
rows = list(csv.DictReader(open(llama_csv)))
llama = {("pp" if int(r["n_prompt"]) else "tg"): float(r["avg_ts"]) for r in rows}
print(f"{label}, {threads} threads (llama.cpp: llama-bench pp512 / tg64, its defaults):")
print(f"  llama.cpp  prefill {llama['pp']:8.1f} tok/s   decode {llama['tg']:6.1f} tok/s")
if finch_ok == "1":
    f = json.load(open(finch_json))["models"][0]
    print(f"  finch      prefill {f['prefill_tok_s']:8.1f} tok/s   decode {f['decode_tok_s']:6.1f} tok/s")
    print(f"  finch / llama.cpp: prefill {f['prefill_tok_s'] / llama['pp']:.2f}, "
          f"decode {f['decode_tok_s'] / llama['tg']:.2f}")
EOF
