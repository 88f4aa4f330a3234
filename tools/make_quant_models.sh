#!/bin/sh
# make_quant_models.sh - random-weight GGUF files quantized by llama.cpp's own
# llama-quantize into every type of issue 13, for comparing finch with
# llama.cpp (tools/peer_compare.py, docs/llamacpp-agreement.md).  Written into
# the ignored bench-models/quant/; a file already there is kept.
#
#   tools/make_quant_models.sh [LLAMACPP_DIR] [BASE] [TYPE ...]
#
# LLAMACPP_DIR: as given to tools/build_llamacpp.sh (default ../llamacpp).
# BASE: the name of a tools/make_bench_models.py model to start from (default
# agree-256-f32: a 4-layer llama, dim 256, GQA, FFN 768, vocab 4096, every
# matrix dimension a multiple of 256 so that every block size divides it).
# TYPE: llama-quantize type names (default: all of them below).
#
# Two files per type: NAME-TYPE.gguf is llama-quantize's default mixture
# (as downloaded files are: e.g. Q4_K_M keeps some tensors in Q6_K, and
# output.weight becomes Q6_K for most types), NAME-TYPE-pure.gguf has every
# matrix in TYPE (--pure), to check one type alone.  No type here needs an
# importance matrix (llama-quantize asks for one only for IQ1_*, IQ2_*,
# IQ3_XXS and Q2_K_S) or --allow-requantize (the base is F32/F16).
#
# DEQUANT=1 also writes NAME-TYPE[-pure]-deq-f32.gguf: the same weights
# dequantized by llama.cpp (llama-quantize --allow-requantize ... F32), for
# checking finch's FP32 arithmetic (tools/peer_compare.py --quant-math fp32).
set -eu
dir=${1:-../llamacpp}
base=${2:-agree-256-f32}
[ $# -gt 2 ] && shift 2 || set --
types=${*:-Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K IQ4_NL IQ4_XS}
quantize=$dir/src/build/bin/llama-quantize
out=bench-models/quant
[ -x "$quantize" ] || { echo "make_quant_models: $quantize missing (run tools/build_llamacpp.sh $dir)" >&2; exit 2; }
mkdir -p "$out"
/usr/bin/python3 tools/make_bench_models.py --out "$out" "$base" >/dev/null
stem=${base%-f32}
stem=${stem%-f16}
for t in $types; do
    lower=$(echo "$t" | tr 'A-Z' 'a-z')
    for variant in mixed pure; do
        f=$out/$stem-$lower.gguf
        flag=
        if [ "$variant" = pure ]; then f=$out/$stem-$lower-pure.gguf; flag=--pure; fi
        [ -s "$f" ] && continue
        # written under a temporary name: no half-written file is left behind
        if ! "$quantize" $flag "$out/$base.gguf" "$f.tmp" "$t" 2 >"$f.log" 2>&1; then
            rm -f "$f.tmp"
            echo "make_quant_models: llama-quantize $flag $t failed: see $f.log" >&2
            exit 1
        fi
        mv "$f.tmp" "$f"
        rm -f "$f.log"
        echo "$f"
    done
done
[ "${DEQUANT:-0}" = 1 ] || exit 0
for t in $types; do
    lower=$(echo "$t" | tr 'A-Z' 'a-z')
    for f in "$out/$stem-$lower.gguf" "$out/$stem-$lower-pure.gguf"; do
        d=${f%.gguf}-deq-f32.gguf
        [ -s "$d" ] && continue
        if ! "$quantize" --allow-requantize "$f" "$d.tmp" F32 2 >"$d.log" 2>&1; then
            rm -f "$d.tmp"
            echo "make_quant_models: dequantizing $f failed: see $d.log" >&2
            exit 1
        fi
        mv "$d.tmp" "$d"
        rm -f "$d.log"
        echo "$d"
    done
done
