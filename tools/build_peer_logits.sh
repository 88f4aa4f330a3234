#!/bin/sh
# build_peer_logits.sh - compile our peer tools against a llama.cpp build
# (tools/build_llamacpp.sh makes one), into the ignored build/peer/:
#   llamacpp_logits   llama.cpp's logits for given ids (tools/llamacpp_logits.c)
#   finch_logits      finch's logits for every position (tools/finch_logits.c,
#                     against $FINCH_LIB/libfinch.so, default build/, with
#                     the headers of $FINCH_INC, default include/; built
#                     when that exists: another finch build is compared by
#                     pointing both at it)
#
#   tools/build_peer_logits.sh [LLAMACPP_DIR] [OUT_DIR]
#
# LLAMACPP_DIR: the directory given to build_llamacpp.sh (default ../llamacpp;
# its source tree is LLAMACPP_DIR/src, the libraries LLAMACPP_DIR/src/build/bin).
# Prints the path of llamacpp_logits.  The binary finds libllama through an
# rpath, so it runs from anywhere as long as that build stays in place.
set -eu
dir=${1:-../llamacpp}
out=${2:-build/peer}
src=$dir/src
lib=$src/build/bin
cc=${CC:-cc}
[ -f "$src/include/llama.h" ] || { echo "build_peer_logits: $src/include/llama.h missing (run tools/build_llamacpp.sh $dir)" >&2; exit 2; }
[ -e "$lib/libllama.so" ] || { echo "build_peer_logits: $lib/libllama.so missing (run tools/build_llamacpp.sh $dir)" >&2; exit 2; }
lib=$(cd "$lib" && pwd)
mkdir -p "$out"
here=$(dirname "$0")
"$cc" -std=c11 -O2 -Wall -Wextra -I"$src/include" -I"$src/ggml/include" "$here/llamacpp_logits.c" \
    -o "$out/llamacpp_logits.tmp" -L"$lib" -lllama -lggml -lggml-base -Wl,-rpath,"$lib"
mv "$out/llamacpp_logits.tmp" "$out/llamacpp_logits"
finch_lib=${FINCH_LIB:-build}
if [ -f "$finch_lib/libfinch.so" ]; then
    finch_lib=$(cd "$finch_lib" && pwd)
    "$cc" -std=c11 -O2 -Wall -Wextra -I"${FINCH_INC:-$here/../include}" "$here/finch_logits.c" -o "$out/finch_logits.tmp" \
        -L"$finch_lib" -lfinch -ldl -Wl,-rpath,"$finch_lib"
    mv "$out/finch_logits.tmp" "$out/finch_logits"
else
    echo "build_peer_logits: $finch_lib/libfinch.so missing (run make): finch_logits not built" >&2
fi
echo "$(cd "$out" && pwd)/llamacpp_logits"
