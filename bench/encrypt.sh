#!/usr/bin/env bash
# Benchmark: esp_encrypted_img encryption and decryption of 1, 4 and 8 MiB images (RSA-3072 scheme)
# beside the floor `openssl dgst -sha256` on the same file: median wall time, ratio, peak RSS.
# The three run in turn, RUNS times, so that the floor and fwrel see the same state of the machine.
# Usage: bench/encrypt.sh [BUILD_DIR]   (RUNS=N to change the run count)
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${1:-build}" && pwd)
RUNS=${RUNS:-9}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. bench/lib.sh
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$W/dev.pem" 2>/dev/null
openssl pkey -in "$W/dev.pem" -pubout -out "$W/dev.pub" 2>/dev/null
printf '%-12s %5s %10s %10s %7s %10s\n' operation MiB "fwrel ms" "floor ms" ratio "fwrel KiB"
for mib in 1 4 8; do
    rm -f "$W"/app.enc* "$W"/app.dec*
    img="$W/app-$mib.bin"
    "$B/fwrel-testimg" --chip esp32s3 --size $((mib * 1048576 - 8192)) -o "$img"
    # The image to decrypt, read once so that it is in the page cache as the plain image is
    # (the encryptor writes with O_DIRECT, past the cache).
    "$B/fwrel-encrypt" --key "$W/dev.pub" -o "$W/app.enc" "$img" >/dev/null
    cat "$W/app.enc" >/dev/null
    # Each run writes a new file, as a release does (replacing one would add the old file's
    # deletion to the time); the outputs are removed between sizes.
    floor=() enc=() dec=()
    for i in $(seq "$RUNS"); do
        floor+=("$(time_us openssl dgst -sha256 "$img")")
        enc+=("$(time_us "$B/fwrel-encrypt" --key "$W/dev.pub" -o "$W/app.enc.$i" "$img")")
        dec+=("$(time_us "$B/fwrel-encrypt" -d --key "$W/dev.pem" -o "$W/app.dec.$i" "$W/app.enc")")
    done
    g=$(median_of "${floor[@]}")
    f=$(median_of "${enc[@]}")
    k=$(peak_kb "$B/fwrel-encrypt" --force --key "$W/dev.pub" -o "$W/app.enc.x" "$img")
    printf '%-12s %5s %10s %10s %7s %10s\n' encrypt $mib "$f" "$g" "$(ratio "$f" "$g")" "$k"
    f=$(median_of "${dec[@]}")
    k=$(peak_kb "$B/fwrel-encrypt" --force -d --key "$W/dev.pem" -o "$W/app.dec.x" "$W/app.enc")
    printf '%-12s %5s %10s %10s %7s %10s\n' decrypt $mib "$f" "$g" "$(ratio "$f" "$g")" "$k"
done
echo "(median of $RUNS runs in turn; floor = openssl dgst -sha256 on the same file; KiB = peak RSS)"
