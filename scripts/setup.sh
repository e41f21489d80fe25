#!/usr/bin/env bash
# Set everything up: install the dependencies, build fwrel into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# FWREL_TESTS=ON (the default, said so): examples/demo.sh makes its firmware with the test helper
# fwrel-testimg, which is built with the tests.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFWREL_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
for c in fwrel-keygen fwrel-sign fwrel-encrypt fwrel-bundle fwrel-verify fwrel-testimg; do
    [ -x "build/$c" ] || { echo "setup: build/$c was not built" >&2; exit 1; }
done
echo "fwrel built in build/ (commands: build/fwrel-*)"
