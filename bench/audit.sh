#!/usr/bin/env bash
# Benchmark: fwrel-verify --repo (the auditor mode) on a release repository of N releases made
# with real signing by bench/gen-releases.sh (64 KiB images, beta channel, one approval), timed
# with --jobs 1 and --jobs 2 (and any others in JOBS): releases per second, and the speedup over
# one job. Each audit must pass (exit 0).
#
# Usage: bench/audit.sh [BUILD_DIR] [N]   (defaults: build, 200)
#   REPO_DIR=DIR  audit DIR (made by gen-releases.sh) instead of generating a new one (kept);
#   RUNS=K        median of K runs per job count (default 3); JOBS="1 2 4" job counts.
set -euo pipefail
cd "$(dirname "$0")/.."
S=$PWD
B=$(cd "${1:-build}" && pwd)
N=${2:-200}
RUNS=${RUNS:-3}
JOBS=${JOBS:-1 2}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. bench/lib.sh

if [ -n "${REPO_DIR:-}" ]; then
    D=$REPO_DIR
else
    D=$W/gen
    echo "generating $N releases"
    bench/gen-releases.sh "$N" "$D" "$B"
fi
n=$(git -C "$D/releases" tag | wc -l)
"$B/fwrel-verify" --repo "$D/releases" --all --policy "$D/policy.yaml" --gnupg-home "$D/gnupg" \
    --jobs 1 --quiet ||
    { echo "the audit of $D fails" >&2; exit 1; }
echo "auditing $n releases ($(nproc) CPUs, median of $RUNS runs)"
printf '%-6s %10s %12s %8s\n' jobs seconds releases/s speedup
base=
for j in $JOBS; do
    ms=$(median_ms "$B/fwrel-verify" --repo "$D/releases" --all --policy "$D/policy.yaml" \
        --gnupg-home "$D/gnupg" --jobs "$j")
    [ -n "$base" ] || base=$ms
    awk -v j="$j" -v ms="$ms" -v n="$n" -v b="$base" \
        'BEGIN{printf "%-6s %10.2f %12.2f %7.2fx\n", j, ms/1000, n/(ms/1000), b/ms}'
done
