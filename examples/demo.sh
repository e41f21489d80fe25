#!/usr/bin/env bash
# examples/demo.sh WORKDIR - the fwrel flow on the embedded example, non-interactively:
# example firmware -> Secure Boot V2 key (encrypted at rest) -> signed image -> pre-encrypted
# image -> a release manifest signed 2-of-2 and encrypted to the device -> a device profile ->
# the manifest and the image checked as that device would, and a tampered copy refused.
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

step "4. the device's own keys: image decryption (P-256) and manifest decryption (X25519); two release signers"
for k in device-image device-manifest rel1 rel2; do
    [ -f "$W/keys/$k.pem" ] || case $k in
        device-image) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/keys/$k.pem" ;;
        device-manifest) openssl genpkey -algorithm X25519 -out "$W/keys/$k.pem" ;;
        *) openssl genpkey -algorithm ED25519 -out "$W/keys/$k.pem" ;;
    esac
    openssl pkey -in "$W/keys/$k.pem" -pubout -out "$W/keys/$k.pub" 2>/dev/null
done
ls "$W/keys"

step "5. pre-encrypt the signed image for the device (esp_encrypted_img, ECC scheme)"
fwrel-encrypt --force --key "$W/keys/device-image.pub" -o "$W/out/app-1.0.0.enc" "$W/out/app-1.0.0.signed.bin"

step "6. the release manifest: bound to the three images, signed by both signers, encrypted to the device"
now=$(date +%s)
cat >"$W/release.json" <<JSON
{"product": "fwrel-example", "device_types": ["example-board"], "channel": "prod", "counter": 1,
 "created": $now, "expires": $((now + 30 * 86400))}
JSON
fwrel-encrypt --force --manifest --signed-image "$W/out/app-1.0.0.signed.bin" --plain-image "$W/firmware/app-1.0.0.bin" \
    --encrypted-image "$W/out/app-1.0.0.enc" --sign-key "$W/keys/rel1.pem" --sign-key "$W/keys/rel2.pem" \
    --recipient "$W/keys/device-manifest.pub" -o "$W/out/app-1.0.0.fwm" "$W/release.json"

step "7. the device: eFuse slot 0 holds the key digest, secure_version 1 burnt, 1.5 MiB partition"
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
device_type: example-board
manifest:
  key: keys/device-manifest.pem
  trusted_keys: [keys/rel1.pub, keys/rel2.pub]
  threshold: 2
  counter: 0
YAML
cat "$W/device.yaml"

step "8. the device reads the manifest: decrypt, 2-of-2 signatures, type, chip, expiry, counter"
fwrel-verify --manifest --device "$W/device.yaml" "$W/out/app-1.0.0.fwm"

step "9. the device decrypts the image (the GCM tag checks before any plaintext appears)"
fwrel-encrypt --force --decrypt --key "$W/keys/device-image.pem" -o "$W/out/app-1.0.0.decrypted.bin" "$W/out/app-1.0.0.enc"
cmp "$W/out/app-1.0.0.decrypted.bin" "$W/out/app-1.0.0.signed.bin"

step "10. verify the decrypted image as the device would"
fwrel-verify --device "$W/device.yaml" "$W/out/app-1.0.0.decrypted.bin"

step "11. verify as espsecure would (compatibility mode)"
fwrel-verify --sbv2 --key "$W/keys/sb-slot0.pub.pem" "$W/out/app-1.0.0.signed.bin"

step "12. one flipped byte: the device refuses it"
cp "$W/out/app-1.0.0.signed.bin" "$W/out/tampered.bin"
printf '\x55' | dd of="$W/out/tampered.bin" bs=1 seek=1000 conv=notrunc status=none
if fwrel-verify --quiet --device "$W/device.yaml" "$W/out/tampered.bin"; then
    echo "demo: a tampered image was accepted" >&2
    exit 1
fi
echo
echo "demo: done; everything is in $W"
