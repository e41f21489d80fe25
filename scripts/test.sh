#!/usr/bin/env bash
# Run the whole test suite: a warnings-as-errors build with every ctest layer
# (unit, command, conformance, fuzz corpus replay, header test), then the same
# suite under AddressSanitizer + UndefinedBehaviorSanitizer, then the unit tests
# under ThreadSanitizer (the output writer and the encryption relay are threads).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
status=0

cmake -S . -B build-test -DFWREL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$jobs"
(cd build-test && ctest --output-on-failure -j"$jobs") || status=1

cmake -S . -B build-asan -DFWREL_WERROR=ON -DFWREL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs") || status=1
unset ASAN_OPTIONS UBSAN_OPTIONS

cmake -S . -B build-tsan -DFWREL_WERROR=ON -DFWREL_SANITIZE_THREAD=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-tsan -j"$jobs"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j"$jobs" -R '^unit/') ||
    status=1

exit $status
