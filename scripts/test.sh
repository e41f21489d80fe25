#!/usr/bin/env bash
# Run the whole test suite: a warnings-as-errors build with every ctest layer
# (unit, command, conformance, fuzz corpus replay, header test), then the same
# suite under AddressSanitizer + UndefinedBehaviorSanitizer, then the unit tests
# under ThreadSanitizer (the output writer and the encryption relay are threads).
#
# Each sanitizer tree is built at the lowest CPU priority while the layer before it
# runs its tests (the command tests wait on gpg, git and fsync for much of their
# time): the tests keep the CPU they ask for, the build takes what is left. The
# ThreadSanitizer tree builds the unit tests only, the only thing it runs, and runs
# them (niced) beside the AddressSanitizer layer.
#
# ctest runs twice as many tests at once as there are cores: the command tests spend most of their
# time waiting on gpg-agent, git and fsync (cmd/audit_repo: about a tenth of its wall time on the
# CPU), and the longest start first (COST in tests/CMakeLists.txt).
#
# The AddressSanitizer layer runs every test that runs the project's code (not the checks of the
# source text alone, label "source" in tests/CMakeLists.txt), with FWREL_TEST_LAYER=asan. One thing
# is left out there, pure process orchestration that the normal layer runs in full: the SIGKILL
# loops of cmd/bundle (a kill at each of 13 steps, then 10 at random moments) and cmd/release_faults
# (a kill at each of 11 steps) kill one release there instead of one per step (tests/lib.sh
# kill_steps). A process killed by SIGKILL ends before the sanitizers can report; what it ran before
# the kill is the code of the whole releases the layer runs anyway; the next release still undoes,
# under the sanitizers, what the kill left. The failure injection loops (error paths that return and
# clean up) run at every step in both layers.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
phase() { echo "== $1 ($((SECONDS - start)) s)"; }
phase "dependencies"
scripts/deps.sh
jobs=$(nproc)
ctest_jobs=$((2 * jobs))
status=0

# bg_build DIR TARGET ARGS...: configure DIR with ARGS and build TARGET there, niced, in the
# background, its output in DIR/build.log; sets BG_PID and BG_LOG.
bg_build() {
    local dir=$1 target=$2
    shift 2
    mkdir -p "$dir"
    BG_LOG=$dir/build.log
    (cmake -S . -B "$dir" -DFWREL_WERROR=ON "$@" >/dev/null &&
        nice -n 19 cmake --build "$dir" -j"$jobs" --target "$target") >"$BG_LOG" 2>&1 &
    BG_PID=$!
}
# bg_wait: wait for the background build; on failure show its output and stop.
bg_wait() {
    if ! wait "$BG_PID"; then
        cat "$BG_LOG"
        echo "build of $BG_LOG failed: see above" >&2
        exit 1
    fi
}

phase "normal build"
cmake -S . -B build-test -DFWREL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$jobs"
phase "normal tests (AddressSanitizer tree building beside them)"
bg_build build-asan all -DFWREL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-test && ctest --output-on-failure -j"$ctest_jobs") || status=1
phase "AddressSanitizer build (rest)"
bg_wait

phase "AddressSanitizer tests (ThreadSanitizer unit tests building, then running, beside them)"
# The ThreadSanitizer layer is built and then run beside the AddressSanitizer tests (their command
# tests wait on gpg, git and fsync), niced: the AddressSanitizer tests keep the CPU they ask for.
# Its output is shown when the AddressSanitizer layer is done.
mkdir -p build-tsan
(cmake -S . -B build-tsan -DFWREL_WERROR=ON -DFWREL_SANITIZE_THREAD=ON -DCMAKE_BUILD_TYPE=Debug \
    >/dev/null && nice -n 19 cmake --build build-tsan -j"$jobs" --target unit-tests >/dev/null &&
    cd build-tsan && TSAN_OPTIONS=halt_on_error=1 nice ctest --output-on-failure -j"$jobs" -R '^unit/') \
    >build-tsan/layer.log 2>&1 &
tsan_layer=$!
(
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    cd build-asan && FWREL_TEST_LAYER=asan ctest --output-on-failure -j"$ctest_jobs" -LE '^source$'
) || status=1

phase "ThreadSanitizer build and unit tests (rest)"
if ! wait "$tsan_layer"; then
    status=1
    echo "the ThreadSanitizer layer failed: its build or tests, see below" >&2
fi
cat build-tsan/layer.log
phase "done, status $status"
exit $status
