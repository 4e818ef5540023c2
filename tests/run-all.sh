#!/usr/bin/env bash
# The whole test suite, as the README's second command and .ci/run run it.
#   tests/run-all.sh            install deps, build (normal + ASan/UBSan), run every test label
#   VZ_SKIP_SANITIZE=1          skip the sanitizer build (quicker local runs)
set -euo pipefail
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests: unit, integration, fuzz-regress"
(cd build && ctest --output-on-failure -j"$jobs" -L 'unit|integration|fuzz-regress')

echo "== unit tests under valgrind (memcheck; definite leaks and errors fail)"
vg_fail=0
while read -r cmd; do
	if ! valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 "$cmd" >"build/valgrind-$(basename "$cmd").log" 2>&1; then
		echo "valgrind: $(basename "$cmd") failed:"; tail -n 40 "build/valgrind-$(basename "$cmd").log"; vg_fail=1
	else
		echo "valgrind: $(basename "$cmd") clean"
	fi
done < <(cd build && ctest -L unit --show-only=json-v1 | jq -r '.tests[].command[0]')
[ "$vg_fail" = 0 ] || { echo "valgrind found errors"; exit 1; }

if [ "${VZ_SKIP_SANITIZE:-0}" != 1 ]; then
	echo "== build (ASan+UBSan)"
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVZ_SANITIZE=ON >/dev/null
	cmake --build build-asan -j"$jobs"
	echo "== tests under ASan+UBSan"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	(cd build-asan && ctest --output-on-failure -j"$jobs" -L 'unit|integration|fuzz-regress')
fi
echo "== all tests passed in $(( $(date +%s) - start )) s"
