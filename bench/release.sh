#!/usr/bin/env bash
# Benchmark: a whole release of a 4 MiB image with fwrel-bundle (ESP32-S3 SBv2 RSA-3072 policy:
# signing, pre-encryption, a manifest signed 3 times, two exports, two OpenPGP approvals, the
# reproducible bundle, the audit entry, the commit and the OpenPGP-signed git tag), beside the
# floor `openssl dgst -sha256` on the same image; then where the time goes, step by step.
#
# The whole release: median wall time of RUNS releases, each of a new version (1.0.N) into the
# same repository. The steps: fwrel-bundle's test hook FWREL_TEST_KILL_AT=STEP SIGKILLs the
# process as it reaches STEP, so the median time to reach each step is the time of everything
# before it; a step's time is the difference to the next one (the last step, repo, runs to the
# end of a whole release). SIGKILL rather than FWREL_TEST_FAIL_AT: a failure after the lock
# appends a failure entry to the audit log and cleans up, which would be counted in the step.
#
# The policy is policies/esp32s3-sbv2-rsa-prod.yaml with 8 MiB partitions (a 4 MiB image does not
# fit the example's 1920 KiB ones) and fresh approver fingerprints; the keystore is unsealed
# (--no-passphrase) unless SEALED=1 (scrypt-sealed with a passphrase file, as in examples/demo.sh).
#
# Usage: bench/release.sh [BUILD_DIR]   (default: build; RUNS=N to change the run count)
set -euo pipefail
cd "$(dirname "$0")/.."
S=$PWD
B=$(cd "${1:-build}" && pwd)
RUNS=${RUNS:-9}
SEALED=${SEALED:-0}
W=$(mktemp -d)
G=$W/gnupg
trap 'gpgconf --homedir "$G" --kill gpg-agent >/dev/null 2>&1; rm -rf "$W"' EXIT
. bench/lib.sh
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 2; }

# Three approvers without passphrases in a GnuPG home of the benchmark's own.
. tests/approvers.sh
make_approvers "$G"
pin_approvers policies/esp32s3-sbv2-rsa-prod.yaml |
    sed 's/^partition_size: .*/partition_size: 0x800000/' >"$W/policy.yaml"
if [ "$SEALED" = 1 ]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/passphrase"
    chmod 600 "$W/passphrase"
    PASS=(--passphrase-file "$W/passphrase")
else
    PASS=(--no-passphrase)
fi
"$B/fwrel-keygen" --policy "$W/policy.yaml" --keystore "$W/keystore" "${PASS[@]}" -q

# Images 1.0.1 ... : one per release (a version is released once); 4 MiB of image data.
N=0
image() {
    local v=1.0.$1
    [ -f "$W/app-$v.bin" ] || "$B/fwrel-testimg" --chip esp32s3 --version "$v" --secure-version 1 \
        --size 4194304 -o "$W/app-$v.bin" >/dev/null
    echo "$W/app-$v.bin"
}
release() {
    TMPDIR=$W/tmp "$B/fwrel-bundle" --policy "$W/policy.yaml" --keystore "$W/keystore" \
        --repo "$W/releases" --channel prod --approver "$A1" --approver "$A2" \
        --gnupg-home "$G" "${PASS[@]}" --templates "$S/templates" -q "$@"
}
mkdir -p "$W/tmp"

# median_run KILL_AT: median wall ms of RUNS releases, killed at KILL_AT (empty: whole releases,
# each of the next version). The next image and a clean TMPDIR are made outside the timing.
median_run() {
    local t=() img s e
    for _ in $(seq "$RUNS"); do
        if [ -z "$1" ]; then
            N=$((N + 1))
            img=$(image "$N")
        else
            img=$(image $((N + 1)))
        fi
        rm -rf "${W:?}/tmp" && mkdir "$W/tmp"
        s=$(date +%s%N)
        { FWREL_TEST_KILL_AT=$1 release "$img" >/dev/null 2>&1 || true; } 2>/dev/null
        e=$(date +%s%N)
        t+=($(((e - s) / 1000)))
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p" | awk '{printf "%.2f", $1/1000}'
}

# A warm-up release: starts the approvers' gpg-agent, fills the page cache.
N=1
release "$(image 1)" >/dev/null
img=$(image 2)
size=$(stat -c %s "$img")
floor=$(median_ms openssl dgst -sha256 "$img")
whole=$(median_run "")
N=$((1 + RUNS)) # median_run ran in a subshell: releases 1.0.2 ... 1.0.(RUNS+1) were made
git -C "$W/releases" rev-parse -q --verify "refs/tags/acme-thermostat/prod/v1.0.$N" >/dev/null ||
    { echo "bench: the timed releases were not recorded" >&2; exit 1; }
N=$((N + 1))
peak=$(peak_kb bash -c "TMPDIR='$W/tmp' '$B/fwrel-bundle' --policy '$W/policy.yaml' \
    --keystore '$W/keystore' --repo '$W/releases' --channel prod --approver $A1 \
    --approver $A2 --gnupg-home '$G' ${PASS[*]} --templates '$S/templates' -q '$(image "$N")'")
tag=acme-thermostat/prod/v1.0.$N
bundle=$(git -C "$W/releases" cat-file -s "$tag:$tag/bundle.fwb")

echo "release of a $size-byte image (bundle $bundle bytes), keystore $([ "$SEALED" = 1 ] && echo sealed || echo unsealed)"
printf '%-28s %10s %10s %7s %10s\n' operation "fwrel ms" "floor ms" ratio "peak KiB"
printf '%-28s %10s %10s %7s %10s\n' "whole release" "$whole" "$floor" "$(ratio "$whole" "$floor")" "$peak"
echo
steps=(policy keys image lock history secureboot encrypt manifest exports record approve bundle output audit repo)
declare -A at
for s in "${steps[@]}"; do at[$s]=$(median_run "$s"); done
printf '%-12s %12s %10s %7s  %s\n' step "reached ms" "step ms" share "(what the step does)"
what=([0]="process start, arguments, policy read and checked"
    [1]="keystore opened, 10 keys loaded" [2]="image parsed and checked (chip, size, versions)"
    [3]="release repository opened and locked" [4]="history read under the lock"
    [5]="Secure Boot V2 signature (RSA-3072)" [6]="esp_encrypted_img pre-encryption"
    [7]="manifest signed 3 times and encrypted" [8]="two exports rendered"
    [9]="release.json and SHA256SUMS" [10]="two OpenPGP approvals (gpgme)"
    [11]="the reproducible tar in memory" [12]="(no -o output here)" [13]="audit entry appended, fsync"
    [14]="commit of the bundle, signed tag, exit")
for i in "${!steps[@]}"; do
    s=${steps[$i]}
    if [ "$i" -lt $((${#steps[@]} - 1)) ]; then next=${at[${steps[$((i + 1))]}]}; else next=$whole; fi
    d=$(awk -v a="$next" -v b="${at[$s]}" 'BEGIN{printf "%.2f", a-b}')
    printf '%-12s %12s %10s %6s%%  %s\n' "$s" "${at[$s]}" "$d" \
        "$(awk -v d="$d" -v w="$whole" 'BEGIN{printf "%.0f", 100*d/w}')" "${what[$i]}"
done
echo "(median of $RUNS runs; floor = openssl dgst -sha256 on the image; reached = time until the"
echo " step starts (FWREL_TEST_KILL_AT); step = the difference to the next; peak = RSS of one release)"
