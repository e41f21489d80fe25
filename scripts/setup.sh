#!/usr/bin/env bash
# Set everything up: install the dependencies, build fwrel into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "fwrel built in build/ (commands: build/fwrel-*)"
