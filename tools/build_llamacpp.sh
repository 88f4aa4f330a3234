#!/bin/sh
# build_llamacpp.sh - build llama.cpp (the CPU speed peer) from the npm
# registry, outside the repository, to run it beside finch on the same GGUF
# files (docs/bench.md).  Nothing of llama.cpp is committed.
#
#   tools/build_llamacpp.sh [DIR]        (default DIR: ../llamacpp)
#
# node-llama-cpp@3.22.1 ships llama.cpp release sources (commit de3ff81) as a
# git bundle; we clone that bundle and build llama-bench (speed) and
# llama-completion (to check that both engines give the same answer) with the
# CPU's native flags.  About 10 minutes on 2 cores.
set -eu
dir=${1:-../llamacpp}
for tool in npm git cmake c++; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build_llamacpp: '$tool' not found (install npm, git, cmake, g++)" >&2; exit 2; }
done
mkdir -p "$dir"
cd "$dir"
if [ ! -d src ]; then
    npm pack --silent node-llama-cpp@3.22.1 >/dev/null
    tar xzf node-llama-cpp-3.22.1.tgz package/llama/gitRelease.bundle
    git clone -q package/llama/gitRelease.bundle src
fi
cd src
cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF >/dev/null
cmake --build build -j"$(nproc)" --target llama-bench llama-completion llama-quantize llama >/dev/null
echo "$(pwd)/build/bin/llama-bench"
