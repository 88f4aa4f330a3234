#!/bin/sh
# tools/make_results.sh - regenerate every table and figure of docs/results.md
# from scratch.
#
#   tools/make_results.sh [SECTION ...]      (no section: all of them)
#
# Sections (each writes under $RESULTS (out/results), git-ignored, and can be rerun alone):
#   needle        the shipped needle model, 24 filler items, all 16 presses, 2x..64x
#   kjv           the same model on a King James Bible haystack, per-head vs per-layer selection
#   oneshot       the items of ruler-needle in oneshot mode (kvpress's setting)
#   squad         TinyStories-656K on 120 answerable SQuAD v2 items (fidelity)
#   ruler-needle  the RULER-style table on the needle model (tools/ruler_needle.py)
#   ruler-tiny    the RULER-style table on TinyStories-656K (`finch ruler`, 512 tokens)
#   ruler-native  `finch ruler`'s own items on the needle model (why ruler-needle exists)
#   kept          the kept-position map of finch on one needle item
#   figures       copy the SVGs into docs/results/ and render PNGs (rsvg-convert)
#   tables        the Markdown tables, to $RESULTS/tables.md
#
# Needs build/finch (make), /usr/bin/python3 with numpy, the assets
# (../shared/assets or $FINCH_ASSETS: TinyStories-656K, the SQuAD v2 sample,
# the Bible haystack) and, for PNGs, rsvg-convert (librsvg2-bin,
# tools/deps.sh).  Nothing derived from the assets is written outside $RESULTS
# except numbers and figures.  One thread per eval (-t 1): the numbers do not
# depend on it, and the machine is shared.
set -eu

FINCH=${FINCH:-build/finch}
PY=${PYTHON:-/usr/bin/python3}
RESULTS=${RESULTS:-out/results}
ASSETS=${FINCH_ASSETS:-../shared/assets}
TS=${TINYSTORIES:-$ASSETS/models/tinystories-656k}
NEEDLE=testdata/models/needle.gguf
DOCS=docs/results
THREADS=${THREADS:-1}
ALL_PRESSES=finch,truncate,streaming,snapkv,h2o,tova,knorm,random,snapkv-q,keydiff,chunkkv,pyramidkv,adakv,adakv-finch,rag,lingua

mkdir -p "$RESULTS"

# One sweep: eval DIR ARGS...  -> $RESULTS/DIR/ (results.json, figures),
# the table on $RESULTS/DIR.txt, progress and CPU time on $RESULTS/DIR.log.
# A sweep with a results.json is resumed: an interrupted one loses at most
# the item in flight, a finished one only rewrites its table and figures
# (seconds; e.g. after a rebuild).  Delete $RESULTS/DIR to measure it again.
run_eval() {
    dir=$1; shift
    resume=""
    [ -f "$RESULTS/$dir/results.json" ] && resume=--resume
    echo "make_results: $FINCH eval $* -t $THREADS $resume --out $RESULTS/$dir" >&2
    /usr/bin/time -f "cpu user %U s, sys %S s, wall %e s" -a -o "$RESULTS/$dir.log" \
        "$FINCH" eval "$@" -t "$THREADS" --progress $resume --out "$RESULTS/$dir" \
        >"$RESULTS/$dir.txt.tmp" 2>>"$RESULTS/$dir.log"
    mv "$RESULTS/$dir.txt.tmp" "$RESULTS/$dir.txt"
}

needle_tasks() {
    [ -f "$RESULTS/needle-filler.jsonl" ] ||
        $PY tools/needle_tasks.py gen --out "$RESULTS/needle-filler.jsonl" --n 24 \
            --lengths 1000,2000,3000 --depths random --needles 4 --haystack filler --seed 11
}

sec_needle() {
    needle_tasks
    run_eval needle-filler -m $NEEDLE --task "$RESULTS/needle-filler.jsonl" --press $ALL_PRESSES \
        --ratio 2,4,8,16,32,64 --chunk 256 -n 2
}

sec_kjv() {
    [ -f "$RESULTS/needle-kjv.jsonl" ] ||
        $PY tools/needle_tasks.py gen --out "$RESULTS/needle-kjv.jsonl" --n 24 \
            --lengths 1000,2000,3000 --depths random --needles 4 --haystack kjv --seed 12
    run_eval needle-kjv-head -m $NEEDLE --task "$RESULTS/needle-kjv.jsonl" \
        --press finch,snapkv,snapkv-q,h2o,tova,adakv-finch --ratio 8,16,32,64 --chunk 256 -n 2 --select head
    run_eval needle-kjv-layer -m $NEEDLE --task "$RESULTS/needle-kjv.jsonl" \
        --press finch --ratio 8,16,32,64 --chunk 256 -n 2 --select layer
}

# Oneshot feeds "\n" after the question: the RULER-style file (question,
# then the answer prefix) suits it; needle_tasks.py's (the prefix inside the
# question) does not (docs/results.md, section 3).
sec_oneshot() {
    ruler_needle_tasks
    run_eval ruler-needle-oneshot -m $NEEDLE --task "$RESULTS/ruler-needle.jsonl" --press $ALL_PRESSES \
        --ratio 8,32 -n 2 --mode oneshot
}

sec_squad() {
    [ -f "$RESULTS/squad-answerable.jsonl" ] ||
        $PY tools/squad_to_jsonl.py --src "$ASSETS/eval/squad2_500" --answerable-only --out "$RESULTS/squad-answerable.jsonl"
    run_eval tiny-squad -m "$TS" --task "$RESULTS/squad-answerable.jsonl" --limit 120 --chunk 64 -n 8 \
        --ratio 2,4,8,16,32 --press $ALL_PRESSES
}

ruler_needle_tasks() {
    [ -f "$RESULTS/ruler-needle.jsonl" ] ||
        $PY tools/ruler_needle.py --out "$RESULTS/ruler-needle.jsonl" --length 2048 --samples 10 --seed 7
}

sec_ruler_needle() {
    ruler_needle_tasks
    run_eval ruler-needle -m $NEEDLE --task "$RESULTS/ruler-needle.jsonl" --press $ALL_PRESSES \
        --ratio 8,16,32,64 --chunk 256 -n 2
}

sec_ruler_tiny() {
    [ -f "$RESULTS/ruler-tiny.jsonl" ] ||
        "$FINCH" ruler -m "$TS" --length 512 --samples 20 --seed 42 -o "$RESULTS/ruler-tiny.jsonl" \
            --tasks niah_single_1,niah_multikey_1,niah_multivalue,niah_multiquery,vt,cwe,fwe,qa_1 \
            --squad "$ASSETS/eval/squad2_500"
    run_eval ruler-tiny -m "$TS" --task "$RESULTS/ruler-tiny.jsonl" --press $ALL_PRESSES \
        --ratio 2,4,8,16 --chunk 64 -n 8
}

sec_ruler_native() {
    [ -f "$RESULTS/ruler-native.jsonl" ] ||
        "$FINCH" ruler -m $NEEDLE --length 1024 --samples 2 --seed 42 -o "$RESULTS/ruler-native.jsonl" \
            --tasks niah_single_1,niah_multikey_1,niah_multivalue,niah_multiquery,vt,cwe
    run_eval ruler-native -m $NEEDLE --task "$RESULTS/ruler-native.jsonl" --press finch,snapkv-q --ratio 8
}

# The third needle item (2980 positions; its needle starts at 2666).
sec_kept() {
    needle_tasks
    $PY - "$RESULTS/needle-filler.jsonl" "$RESULTS" <<'EOF'
import json, sys
t = [json.loads(l) for l in open(sys.argv[1])][2]
open(sys.argv[2] + "/kept-context.txt", "w").write(t["context"])
open(sys.argv[2] + "/kept-question.txt", "w").write(t["question"])
EOF
    "$FINCH" run -m $NEEDLE -f "$RESULTS/kept-context.txt" -q "$(cat "$RESULTS/kept-question.txt")" --ratio 8 \
        --chunk 256 -n 2 -t "$THREADS" --plot-kept "$RESULTS/needle-kept.svg" --mark 2666 >"$RESULTS/kept.txt"
}

# docs/results/NAME.svg from $RESULTS/DIR/FIGURE.svg; a third argument
# "png": also NAME.png (what docs/results.md shows inline, ~150 KB each).
copy_fig() {
    cp "$RESULTS/$1" "$DOCS/$2.svg"
    if [ "${3:-}" = png ] && command -v rsvg-convert >/dev/null; then
        rsvg-convert --zoom 1.5 --background-color white "$DOCS/$2.svg" -o "$DOCS/$2.png"
    fi
}

sec_figures() {
    mkdir -p $DOCS
    for f in f1 time-compress time-generate; do
        copy_fig needle-filler/$f.svg needle-$f
    done
    for f in accuracy fidelity time; do
        copy_fig needle-filler/$f.svg needle-$f png
    done
    copy_fig needle-kept.svg needle-kept png
    copy_fig ruler-needle/score.svg ruler-needle-score png
    copy_fig ruler-tiny/fidelity.svg ruler-tiny-fidelity png
    copy_fig tiny-squad/fidelity.svg tiny-squad-fidelity png
    command -v rsvg-convert >/dev/null || echo "make_results: no rsvg-convert: SVG only (tools/deps.sh results)" >&2
}

sec_tables() {
    T="$PY tools/results_tables.py"
    {
        echo "## needle-filler EM"; $T pivot "$RESULTS/needle-filler/results.json" --metric em --ci
        echo "## needle-filler KL"; $T pivot "$RESULTS/needle-filler/results.json" --metric kl --digits 3
        echo "## needle-kjv-head EM"; $T pivot "$RESULTS/needle-kjv-head/results.json" --metric em --ci
        echo "## needle-kjv-layer EM"; $T pivot "$RESULTS/needle-kjv-layer/results.json" --metric em --ci
        for r in 8 32; do
            echo "## ruler-needle-oneshot @${r}x"; $T ruler "$RESULTS/ruler-needle-oneshot/results.json" --ratio $r --ci
        done
        echo "## tiny-squad KL"; $T pivot "$RESULTS/tiny-squad/results.json" --metric kl --ci --digits 3
        for r in 8 16 32 64; do
            echo "## ruler-needle @${r}x"; $T ruler "$RESULTS/ruler-needle/results.json" --ratio $r --ci
        done
        echo "## ruler-needle KL"; $T pivot "$RESULTS/ruler-needle/results.json" --metric kl --digits 3
        echo "## ruler-tiny @4x"; $T ruler "$RESULTS/ruler-tiny/results.json" --ratio 4
        echo "## ruler-tiny KL"; $T pivot "$RESULTS/ruler-tiny/results.json" --metric kl --ci --digits 3
        echo "## ruler-native"; $T ruler "$RESULTS/ruler-native/results.json" --ratio 8
    } >"$RESULTS/tables.md"
    echo "make_results: wrote $RESULTS/tables.md" >&2
}

sections=${*:-needle kjv squad ruler-needle oneshot ruler-tiny ruler-native kept figures tables}
echo "make_results: $("$FINCH" --version 2>/dev/null | head -1); tree $(git rev-parse --short HEAD 2>/dev/null || echo ?); $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" >&2
for s in $sections; do
    case $s in
        needle) sec_needle ;; kjv) sec_kjv ;; oneshot) sec_oneshot ;; squad) sec_squad ;;
        ruler-needle) sec_ruler_needle ;; ruler-tiny) sec_ruler_tiny ;; ruler-native) sec_ruler_native ;;
        kept) sec_kept ;; figures) sec_figures ;; tables) sec_tables ;;
        *) echo "make_results: unknown section '$s'" >&2; exit 2 ;;
    esac
done
