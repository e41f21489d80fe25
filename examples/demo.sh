#!/usr/bin/env bash
# examples/demo.sh WORKDIR - the fwrel flow on the embedded example, non-interactively:
# example firmware -> Secure Boot V2 key (encrypted at rest) -> signed image -> a device
# profile that trusts the key -> verified as that device would, and a tampered copy refused.
#
# Uses the commands in $FWREL_BIN, else ./build (scripts/setup.sh builds them there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${1:?usage: examples/demo.sh WORKDIR}
B=${FWREL_BIN:-$here/../build}
export PATH="$B:$PATH"
for c in fwrel-keygen fwrel-sign fwrel-verify fwrel-testimg; do
    command -v "$c" >/dev/null || { echo "demo: $c not built; run scripts/setup.sh first" >&2; exit 2; }
done
mkdir -p "$W"
W=$(cd "$W" && pwd)
umask 077
mkdir -p "$W/keys" "$W/firmware" "$W/out"

step() { printf '\n== %s\n' "$*"; }

step "1. the example firmware (ESP32-S3 app image, version 1.0.0, secure_version 1)"
[ -f "$W/firmware/app-1.0.0.bin" ] ||
    fwrel-testimg --chip esp32s3 --version 1.0.0 --secure-version 1 --project fwrel-example \
        --size 200000 -o "$W/firmware/app-1.0.0.bin"
fwrel-verify --info "$W/firmware/app-1.0.0.bin" | grep -E "^(Detected|Project|App version|ESP-IDF|Secure version|Checksum|Validation)"

step "2. a Secure Boot V2 signing key, encrypted with a passphrase from a file (0600)"
if [ ! -f "$W/keys/passphrase" ]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/keys/passphrase"
    echo >>"$W/keys/passphrase"
fi
[ -f "$W/keys/sb-slot0.pem" ] ||
    fwrel-keygen --scheme rsa3072 --passphrase-file "$W/keys/passphrase" -o "$W/keys/sb-slot0.pem"
ls -l "$W/keys"

step "3. sign the image"
fwrel-sign --force -k "$W/keys/sb-slot0.pem" --passphrase-file "$W/keys/passphrase" \
    -o "$W/out/app-1.0.0.signed.bin" "$W/firmware/app-1.0.0.bin"

step "4. the device: eFuse slot 0 holds the key digest, secure_version 1 burnt, 1.5 MiB partition"
cat >"$W/device.yaml" <<YAML
chip: esp32s3
chip_revision: "0.2"
partition_size: 0x180000
secure_boot:
  mode: v2
  key_digests:
    - $(od -An -tx1 "$W/keys/sb-slot0.digest.bin" | tr -d ' \n')
anti_rollback:
  secure_version: 1
running:
  version: "0.9.0"
YAML
cat "$W/device.yaml"

step "5. verify as the device would"
fwrel-verify --device "$W/device.yaml" "$W/out/app-1.0.0.signed.bin"

step "6. verify as espsecure would (compatibility mode)"
fwrel-verify --sbv2 --key "$W/keys/sb-slot0.pub.pem" "$W/out/app-1.0.0.signed.bin"

step "7. one flipped byte: the device refuses it"
cp "$W/out/app-1.0.0.signed.bin" "$W/out/tampered.bin"
printf '\x55' | dd of="$W/out/tampered.bin" bs=1 seek=1000 conv=notrunc status=none
if fwrel-verify --quiet --device "$W/device.yaml" "$W/out/tampered.bin"; then
    echo "demo: a tampered image was accepted" >&2
    exit 1
fi
echo
echo "demo: done; everything is in $W"
