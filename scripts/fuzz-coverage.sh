#!/usr/bin/env bash
# scripts/fuzz-coverage.sh [BUILD_DIR] - line coverage of the verifiers by the fuzz corpora
# (docs/fuzzing.md). Builds every fuzz target with clang's source-based coverage
# (-fprofile-instr-generate -fcoverage-mapping) as corpus replayers (driver.c, no libFuzzer),
# replays each fuzz/corpus/<target>/ once, merges the profiles and prints llvm-cov's report for
# manifest.c, bundle_verify.c, device.c, bundle.c, release.c and auditor.c: all corpora together, then
# the trusted-path targets alone. Needs clang, llvm-profdata and llvm-cov (same LLVM version).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzzcov}
flags="-fprofile-instr-generate -fcoverage-mapping"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" >/dev/null
targets=$(cd fuzz && ls fuzz_*.c | sed 's/\.c$//')
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets >/dev/null
prof=$build/fuzzcov
rm -rf "$prof"
mkdir -p "$prof"
objects=()
for t in $targets; do
    m=${t#fuzz_}
    LLVM_PROFILE_FILE="$prof/$m.profraw" "$build/fuzz/$t" "fuzz/corpus/$m" >/dev/null
    objects+=(-object "$build/fuzz/$t")
done
files=(libfwrel/src/manifest.c libfwrel/src/bundle_verify.c libfwrel/src/device.c
    libfwrel/src/bundle.c libfwrel/src/release.c libfwrel/src/auditor.c)
llvm-profdata merge -sparse "$prof"/*.profraw -o "$prof/all.profdata"
echo "== all corpora"
llvm-cov report "${objects[@]:1}" -instr-profile="$prof/all.profdata" "${files[@]}"
trusted=(manifest_trusted bverify_device bverify_ci release)
tobj=()
for m in "${trusted[@]}"; do
    tobj+=(-object "$build/fuzz/fuzz_$m")
done
tprof=()
for m in "${trusted[@]}"; do
    tprof+=("$prof/$m.profraw")
done
llvm-profdata merge -sparse "${tprof[@]}" -o "$prof/trusted.profdata"
echo "== trusted-path targets only (${trusted[*]})"
llvm-cov report "${tobj[@]:1}" -instr-profile="$prof/trusted.profdata" "${files[@]}"
