#!/bin/sh
# tests/mpi_test.sh MPI_FINCH [PLAIN_FINCH] - `finch eval` under mpirun
# (make test-mpi, .ci/run; docs/mpi.md):
#   0. the plain build (PLAIN_FINCH) does not link Open MPI;
#   1. 2 and 3 ranks (and -np 1) write what one process writes, row for row:
#      results.json, items.csv, results.csv (timing columns aside), both
#      plots and the table on stdout;
#   2. a rank killed mid-run (FINCH_EVAL_MPI_FAULT) stops the job, and
#      --resume completes the results: the same rows, none twice or missing
#      (once from a journal in the older names: budget_flag);
#   3. a rank whose unit fails stops the job with one line naming the rank,
#      the unit and the error, exit 2.
# Needs mpirun (openmpi-bin) and python3 (the standard library) for the
# comparison; the task file is generated here (the needle task format).
set -eu
mpi_finch=$1
plain_finch=${2:-}
model=testdata/models/needle.gguf
tmp=$(mktemp -d "${TMPDIR:-/tmp}/finch-mpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "mpi_test: FAIL: $*" >&2; exit 1; }

mpirun_flags="--oversubscribe"
[ "$(id -u)" = 0 ] && mpirun_flags="$mpirun_flags --allow-run-as-root"
run_np() { # run_np N OUT [more flags]
    np=$1; out=$2; shift 2
    mpirun $mpirun_flags -np "$np" "$mpi_finch" eval $eval_flags --out "$tmp/$out" "$@" >"$tmp/$out.stdout"
}

# 8 needle tasks of 128..384 tokens, the needle at the start, middle, end:
# the same construction as tools/needle_tasks.py (filler sentences, one
# "special magic number" needle), written without Python.
tasks=$tmp/tasks.jsonl
: >"$tasks"
i=0
for words in 24 48 72 96 24 48 72 96; do
    key=$(echo "laptop pizza guitar rocket tennis robot camera piano" | cut -d' ' -f$((i + 1)))
    num=$((1000 + i * 1111))
    ctx=""
    depth=$((i % 3))
    n=0
    while [ $n -lt "$words" ]; do
        [ $n = $((words * depth / 2)) ] && ctx="$ctx The special magic number for $key is $num."
        ctx="$ctx The sky is blue. The grass is green."
        n=$((n + 4))
    done
    [ "$depth" = 2 ] && ctx="$ctx The special magic number for $key is $num."
    printf '{"id": "mpi-%d", "context": "%s", "question": "What is the special magic number for %s? The special magic number for %s is", "answers": ["%d."]}\n' \
        "$i" "${ctx# }" "$key" "$key" "$num" >>"$tasks"
    i=$((i + 1))
done
eval_flags="-m $model --task $tasks --chunk 32 -n 4 --press finch,snapkv,h2o,streaming --ratio 2,4,8"

# JSON without its timing: "seconds*" (seconds, seconds_compress,
# seconds_generate) dropped; imported by both comparisons below.
cat >"$tmp/nosec.py" <<'EOF'
def nosec(x):
    if isinstance(x, dict): return {k: nosec(v) for k, v in x.items() if not k.startswith("seconds")}
    if isinstance(x, list): return [nosec(v) for v in x]
    return x
EOF

# The same outputs, timing aside: "seconds*" dropped from the JSON and the
# CSV files (nosec.py), the table's seconds column cut.
same() { # same DIR_A DIR_B
    python3 - "$1" "$2" "$tmp" <<'EOF' || fail "$2 differs from $1"
import csv, json, sys
a, b = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from nosec import nosec
def rows(path):
    with open(path) as f:
        r = list(csv.reader(f))
    keep = [i for i, name in enumerate(r[0]) if not name.startswith("seconds")]
    return [[row[i] for i in keep] for row in r]
def table(path):  # the seconds column: 9 characters ending where "seconds" ends
    lines = open(path).read().splitlines()
    end = lines[1].index("seconds") + len("seconds")
    return [ln[:end - 9] + ln[end:] for ln in lines]
ja, jb = (json.load(open(d + "/results.json")) for d in (a, b))
assert nosec(ja) == nosec(jb), "results.json"
for f in ("items.csv", "results.csv"):
    assert rows(a + "/" + f) == rows(b + "/" + f), f
for f in ("accuracy.svg", "fidelity.svg"):
    assert open(a + "/" + f).read() == open(b + "/" + f).read(), f
assert table(a + ".stdout") == table(b + ".stdout"), "the table"
ids = [it["id"] for it in jb["items"]]
assert len(ids) == len(set(ids)) == 8, "items missing or twice: %r" % ids
assert all(len(it["runs"]) == 12 for it in jb["items"]), "runs missing or twice"
print("mpi_test: %s = %s: %d items, %d rows" % (b.rsplit("/", 1)[1], a.rsplit("/", 1)[1], len(ids),
      sum(1 + len(it["runs"]) for it in jb["items"])))
EOF
}

# 1. one process, then 1, 2 and 3 ranks.
if [ -n "$plain_finch" ]; then
    ! ldd "$plain_finch" | grep -q libmpi || fail "$plain_finch links Open MPI: the plain build must not"
    "$plain_finch" eval $eval_flags --out "$tmp/one" --dump-items "$tmp/one.items" >"$tmp/one.stdout"
else
    "$mpi_finch" eval $eval_flags --out "$tmp/one" --dump-items "$tmp/one.items" >"$tmp/one.stdout"
fi
for np in 1 2 3; do
    if [ $np = 2 ]; then
        run_np $np np$np --dump-items "$tmp/np2.items" --progress 2>"$tmp/np2.err"
    else
        run_np $np np$np
    fi
    same "$tmp/one" "$tmp/np$np"
    [ ! -e "$tmp/np$np/journal.jsonl" ] || fail "np$np: the journal is left behind after a complete run"
done
# --dump-items under MPI: rank 0 writes each item's file as one process
# does (timing aside); --progress: one line per item with elapsed and ETA.
python3 - "$tmp/one.items" "$tmp/np2.items" "$tmp" <<'EOF' || fail "--dump-items under MPI differs from one process"
import json, os, sys
a, b = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from nosec import nosec
names = sorted(os.listdir(a))
assert names == sorted(os.listdir(b)) and len(names) == 8, (names, os.listdir(b))
for n in names:
    assert nosec(json.load(open(a + "/" + n))) == nosec(json.load(open(b + "/" + n))), n
print("mpi_test: --dump-items: %d item files as one process writes them" % len(names))
EOF
[ "$(grep -c '^finch eval: item [1-8]/8 (mpi-[0-7]): done, [0-9.]* s; elapsed [0-9:]*, ETA [0-9:]*$' "$tmp/np2.err")" = 8 ] ||
    { cat "$tmp/np2.err" >&2; fail "--progress under MPI: not one line with elapsed and ETA per item"; }

# 2. a rank dies (SIGKILL) mid-run: rank 1 on its 6th unit (mpirun then
#    ends the job), rank 0 (the coordinator) on its 10th.  The journal keeps
#    the units done (a torn last line is cut off); --resume on 2 ranks
#    completes the same results.
for fault in kill:1:6 kill:0:10; do
    if FINCH_EVAL_MPI_FAULT=$fault run_np 2 killed 2>"$tmp/killed.err"; then
        fail "the job with a killed rank ($fault) exited 0"
    fi
    [ -s "$tmp/killed/journal.jsonl" ] || fail "no journal after the killed run ($fault)"
    kept=$(($(wc -l <"$tmp/killed/journal.jsonl") - 1))
    [ "$kept" -ge 5 ] && [ "$kept" -lt 104 ] || fail "the killed run ($fault) journaled $kept of 104 units"
    printf '{"item": "mpi-7", "unit": 3, "rec' >>"$tmp/killed/journal.jsonl" # a crash mid-write: cut off
    # an earlier build's journal named budget_kind budget_flag: it resumes too
    [ "$fault" = kill:1:6 ] && sed -i '1s/"budget_kind":/"budget_flag":/' "$tmp/killed/journal.jsonl"
    [ "$fault" != kill:1:6 ] || grep -q '"budget_flag":' "$tmp/killed/journal.jsonl" || fail "no budget_flag written"
    run_np 2 killed --resume
    same "$tmp/one" "$tmp/killed"
    echo "mpi_test: $fault: $kept of 104 units journaled when it died; --resume completed them"
    rm -rf "$tmp/killed" "$tmp/killed.stdout"
done

# 3. rank 1's 3rd unit fails: one line naming the rank, the unit and the
#    error; exit 2; the journal keeps what was done, --resume completes.
rc=0
FINCH_EVAL_MPI_FAULT=fail:1:3 run_np 2 failed 2>"$tmp/failed.err" || rc=$?
[ $rc = 2 ] || fail "a failing unit: exit $rc, expected 2"
grep '^finch: error: injected failure (FINCH_EVAL_MPI_FAULT=fail:1:3) (rank 1, item .mpi-[0-9]*., unit [0-9]*: .*)$' \
    "$tmp/failed.err" >/dev/null || { cat "$tmp/failed.err" >&2; fail "no one-line error naming rank 1 and the unit"; }
[ "$(grep -c '^finch: error' "$tmp/failed.err")" = 1 ] || fail "more than one error line"
run_np 3 failed --resume
same "$tmp/one" "$tmp/failed"
echo "mpi_test: all passed"
