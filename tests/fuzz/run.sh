#!/bin/sh
# run.sh - run the libFuzzer targets built by fuzz.mk (from the repository
# root).
#
#   sh tests/fuzz/run.sh fuzz SECONDS "FLAGS" TARGET...   fuzz each target
#   sh tests/fuzz/run.sh smoke 0 "FLAGS" TARGET...        seeds + regressions once
#
# Each target works on $FUZZ_DIR/corpus-<target>, a copy of
# tests/fuzz/corpus/<target> (new inputs found go there, never into the
# repository), plus, for the GGUF targets, llama.cpp's vocab-only GGUFs from
# $FUZZ_ASSETS when present.  A crash, leak, timeout or sanitizer report
# fails the run; the input is kept in $FUZZ_DIR/artifacts-<target>/.
set -u
mode=$1 seconds=$2 flags=$3
shift 3
dir=${FUZZ_DIR:-build/fuzz}
assets=${FUZZ_ASSETS:-../shared/assets}
# Leaks are bugs too; a hang of 20 s on one input is one.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
common="-timeout=20 -rss_limit_mb=2048 -print_final_stats=1"
failed=""

for t in "$@"; do
    bin=$dir/fuzz_$t
    corpus=$dir/corpus-$t
    art=$dir/artifacts-$t
    log=$dir/log-$t.txt
    mkdir -p "$corpus" "$art"
    if [ -d "tests/fuzz/corpus/$t" ]; then cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null; fi
    case $t in
    gguf|tokenizer_gguf)
        for f in "$assets"/tokenizers/llamacpp/*.gguf; do
            [ -f "$f" ] && cp "$f" "$corpus"/ && chmod u+w "$corpus/$(basename "$f")"
        done ;;
    esac
    dict=""
    [ -f "tests/fuzz/dict/$t.dict" ] && dict="-dict=tests/fuzz/dict/$t.dict"
    if [ "$mode" = smoke ]; then
        # Seeds first (-runs=0: execute the corpus, mutate nothing), then
        # every saved regression input of this target, one by one.
        "$bin" $common $dict -runs=0 $flags "tests/fuzz/corpus/$t" >"$log" 2>&1
        rc=$?
        regs=$(ls tests/fuzz/regressions/"$t"-* 2>/dev/null)
        if [ $rc -eq 0 ] && [ -n "$regs" ]; then
            # shellcheck disable=SC2086
            "$bin" $common $flags $regs >>"$log" 2>&1
            rc=$?
        fi
    else
        # shellcheck disable=SC2086
        "$bin" $common $dict -max_total_time="$seconds" -artifact_prefix="$art/" $flags "$corpus" >"$log" 2>&1
        rc=$?
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{ s += $1 } END { print s }')
    if [ $rc -ne 0 ]; then
        echo "fuzz $t: FAILED (exit $rc), see $log"
        grep -E "ERROR|runtime error|SUMMARY|Test unit written|fuzz:" "$log" | head -n 20
        failed="$failed $t"
    else
        echo "fuzz $t: ok, ${execs:-?} executions"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: failures in:$failed"
    exit 1
fi
echo "fuzz: all targets passed"
