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
