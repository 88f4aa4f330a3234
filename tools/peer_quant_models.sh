#!/bin/sh
# peer_quant_models.sh - the quantized TinyLlama-shape bench files, made by
# llama.cpp's llama-quantize from the F16 bench file, for the alternating
# rounds of tools/peer_bench.sh (`make bench`, docs/bench.md).
#
#   tools/peer_quant_models.sh LLAMACPP_DIR [SRC.gguf] [THREADS]
#
# SRC defaults to bench-models/tinyllama-1.1b-f16.gguf; each type of
# PEER_QUANT_TYPES (default "BF16 Q4_K_M Q4_0 Q5_K_M Q6_K") is written once next
# to it in quant/ (NAME-q4_k_m.gguf, ..., the "-f16" of the name replaced),
# through a temporary file, about a minute each on 2 cores.  Without a
# llama.cpp build (tools/build_llamacpp.sh) this prints one line and exits 0:
# the rest of the bench stands alone.  Bad arguments exit 2, a failed
# llama-quantize exits 1 (its log kept beside the file).
set -eu
dir=${1:?usage: tools/peer_quant_models.sh LLAMACPP_DIR [SRC.gguf] [THREADS]}
src=${2:-bench-models/tinyllama-1.1b-f16.gguf}
threads=${3:-2}
types=${PEER_QUANT_TYPES:-BF16 Q4_K_M Q4_0 Q5_K_M Q6_K}
bin=$dir/src/build/bin
[ -f "$src" ] || { echo "peer_quant_models: $src missing (tools/make_bench_models.py writes it)" >&2; exit 2; }
if [ ! -x "$bin/llama-quantize" ]; then
    echo "bench: no llama.cpp build in $dir (tools/build_llamacpp.sh $dir): no quantized rows, no llama.cpp figures"
    exit 0
fi
name=$(basename "$src" .gguf)
name=${name%-f16}
name=${name%-f32}
mkdir -p "$(dirname "$src")/quant"
for t in $types; do
    out=$(dirname "$src")/quant/$name-$(echo "$t" | tr 'A-Z' 'a-z').gguf
    [ -s "$out" ] && continue
    echo "bench: writing $out (llama-quantize $t, about a minute) ..."
    if ! "$bin/llama-quantize" "$src" "$out.tmp" "$t" "$threads" >"$out.log" 2>&1; then
        rm -f "$out.tmp"
        echo "peer_quant_models: llama-quantize $t failed: see $out.log" >&2
        exit 1
    fi
    mv "$out.tmp" "$out"
    rm -f "$out.log"
done
