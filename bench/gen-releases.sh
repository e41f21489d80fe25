#!/usr/bin/env bash
# Generate a release repository of N releases made by fwrel-bundle with real signing, for
# bench/audit.sh: a GnuPG home with three approvers (ed25519, no passphrase), the ESP32-S3 SBv2
# RSA-3072 example policy with their fingerprints, an unsealed keystore made by
# fwrel-keygen --policy, and N images of 64 KiB (fwrel-testimg) released on the beta channel
# (1 approval) as versions 1.0.0, 1.0.1, ... with secure_version 1, 2, ... stepping every 50
# releases and SOURCE_DATE_EPOCH stepping one minute per release.
#
# DIR receives gnupg/, policy.yaml, ks/, releases/ (the bare repository) and gen.log. DIR must
# not exist. Prints the wall time of the releases.
#
# Usage: bench/gen-releases.sh N DIR [BUILD_DIR]   (default BUILD_DIR: build)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 N DIR [BUILD_DIR]" >&2; exit 2; }
N=$1
D=$2
cd "$(dirname "$0")/.."
S=$PWD
B=$(cd "${3:-build}" && pwd)
case $N in '' | *[!0-9]*) echo "N must be a number" >&2; exit 2 ;; esac
[ ! -e "$D" ] || { echo "$D exists" >&2; exit 2; }
mkdir -p "$D"
D=$(cd "$D" && pwd)
export PATH="$B:$PATH"
G=$D/gnupg
. tests/approvers.sh
make_approvers "$G"
# Mark the trust database checked now, so that no gpg run later rebuilds it.
gpg --homedir "$G" --check-trustdb >/dev/null 2>&1 || true
pin_approvers "$S/policies/esp32s3-sbv2-rsa-prod.yaml" >"$D/policy.yaml"
fwrel-keygen -q --policy "$D/policy.yaml" --keystore "$D/ks" --no-passphrase
mkdir "$D/img"
# 20 days ago at midnight: within the beta channel's 30-day validity (a SOURCE_DATE_EPOCH whose
# manifest would be expired on arrival is refused).
epoch=$(( $(date +%s) / 86400 * 86400 - 20 * 86400 ))
start=$(date +%s%N)
for i in $(seq 0 $((N - 1))); do
    sv=$((1 + i / 50))
    fwrel-testimg --chip esp32s3 --version "1.0.$i" --secure-version "$sv" --project acme \
        --size 65536 -o "$D/img/app.bin"
    SOURCE_DATE_EPOCH=$((epoch + 60 * i)) \
        fwrel-bundle -q --policy "$D/policy.yaml" --keystore "$D/ks" --repo "$D/releases" \
        --channel beta -A "$A1" --gnupg-home "$G" --no-passphrase --templates "$S/templates" \
        "$D/img/app.bin" >>"$D/gen.log" 2>&1 ||
        { echo "release $i failed: $(tail -1 "$D/gen.log")" >&2; exit 1; }
done
end=$(date +%s%N)
rm -rf "$D/img"
gpgconf --homedir "$G" --kill gpg-agent >/dev/null 2>&1 || true
awk -v n="$N" -v ns="$((end - start))" \
    'BEGIN{printf "%d releases in %.1f s (%.0f ms each)\n", n, ns/1e9, ns/1e6/n}'
