#!/bin/sh
# Runs every cmocka suite given as an argument (from the repository root),
# even when one fails, and prints one closing line with the totals.
passed=0; failed=0; skipped=0; crashed=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ] && [ -z "$f" ]; then crashed=$((crashed + 1)); echo "suite $t exited with $rc"; fi
done
# The Python binding's pytest suite (PYTEST_DIR, with FINCH_LIB): its counts
# join the totals; skipped with one line when Python lacks numpy or pytest.
if [ -n "${PYTEST_DIR:-}" ]; then
    py=${PYTHON:-/usr/bin/python3}
    if [ -n "${PYTEST_SKIP:-}" ]; then
        echo "python tests: skipped ($PYTEST_SKIP)"
    elif ! "$py" -c 'import numpy, pytest' >/dev/null 2>&1; then
        echo "python tests: skipped ($py lacks numpy or pytest: sudo apt-get install python3-numpy python3-pytest)"
    else
        out=$(PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest -q -p no:cacheprovider "$PYTEST_DIR" 2>&1); rc=$?
        printf '%s\n' "$out"
        last=$(printf '%s\n' "$out" | tail -n 1)
        count() { printf '%s\n' "$last" | sed -n "s/.*[^0-9]\([0-9][0-9]*\) $1.*/\1/p; s/^\([0-9][0-9]*\) $1.*/\1/p" | head -n 1; }
        p=$(count passed); f=$(count failed); e=$(count error); s=$(count skipped)
        passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0})); skipped=$((skipped + ${s:-0}))
        if [ $rc -ne 0 ] && [ -z "$f$e" ]; then crashed=$((crashed + 1)); echo "pytest exited with $rc"; fi
    fi
fi
failed=$((failed + crashed))
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
