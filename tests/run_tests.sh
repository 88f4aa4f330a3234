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
failed=$((failed + crashed))
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
