#!/bin/sh
# build_peer_logits.sh - compile our peer tools (docs/llamacpp-agreement.md)
# against a llama.cpp build (tools/build_llamacpp.sh makes one) and a finch
# build (finch_logits):
#   llamacpp_logits   llama.cpp's logits for given ids (tools/llamacpp_logits.c)
#   finch_logits      finch's logits for every position (tools/finch_logits.c)
#
#   tools/build_peer_logits.sh [LLAMACPP_DIR] [OUT_DIR]      (or: make peer)
#
# LLAMACPP_DIR: the directory given to build_llamacpp.sh (default ../llamacpp;
# its source tree is LLAMACPP_DIR/src, the libraries LLAMACPP_DIR/src/build/bin).
# OUT_DIR: default build/peer (ignored).  finch_logits links $FINCH_LIB/libfinch.so
# (default build/, run make first) with the headers of $FINCH_INC (default
# include/): point both at another finch build to compare that one.  The
# binaries find the libraries through an rpath, so they run from anywhere
# while those builds stay in place.  Prints the path of llamacpp_logits.
set -eu
dir=${1:-../llamacpp}
out=${2:-build/peer}
src=$dir/src
lib=$src/build/bin
here=$(cd "$(dirname "$0")" && pwd)
finch_lib=${FINCH_LIB:-build}
finch_inc=${FINCH_INC:-$here/../include}
cc=${CC:-cc}
[ -f "$src/include/llama.h" ] || { echo "build_peer_logits: $src/include/llama.h missing (run tools/build_llamacpp.sh $dir)" >&2; exit 2; }
[ -e "$lib/libllama.so" ] || { echo "build_peer_logits: $lib/libllama.so missing (run tools/build_llamacpp.sh $dir)" >&2; exit 2; }
[ -f "$finch_lib/libfinch.so" ] || { echo "build_peer_logits: $finch_lib/libfinch.so missing (run make)" >&2; exit 2; }
lib=$(cd "$lib" && pwd)
finch_lib=$(cd "$finch_lib" && pwd)
mkdir -p "$out"
flags="-std=c11 -O2 -Wall -Wextra -Wshadow -I$finch_inc -I$here"
# not linked with libfinch: the peer stays apart from finch
"$cc" $flags -I"$src/include" -I"$src/ggml/include" "$here/llamacpp_logits.c" -o "$out/llamacpp_logits.tmp" \
    -L"$lib" -lllama -lggml -lggml-base -Wl,-rpath,"$lib"
mv "$out/llamacpp_logits.tmp" "$out/llamacpp_logits"
"$cc" $flags "$here/finch_logits.c" -o "$out/finch_logits.tmp" -L"$finch_lib" -lfinch -ldl -Wl,-rpath,"$finch_lib"
mv "$out/finch_logits.tmp" "$out/finch_logits"
echo "$(cd "$out" && pwd)/llamacpp_logits"
