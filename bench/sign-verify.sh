#!/usr/bin/env bash
# Benchmark: sign and verify 1, 4 and 8 MiB images with RSA-3072 (SBv2) and ECDSA P-256 (SBv1),
# beside the floor `openssl dgst -sha256 -sign` (PSS, salt 32) / `-verify` on the same file.
# Prints the median wall time of RUNS runs and the peak RSS of one run, and the ratios.
#
# Usage: bench/sign-verify.sh [BUILD_DIR]   (default: build; RUNS=N to change the run count)
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${1:-build}" && pwd)
RUNS=${RUNS:-9}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. bench/lib.sh
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 2; }



"$B/fwrel-keygen" --scheme rsa3072 --no-passphrase -o "$W/rsa.pem" >/dev/null
"$B/fwrel-keygen" --scheme ecdsa256 --sbv1 --no-passphrase -o "$W/ec.pem" >/dev/null

printf '%-26s %5s %10s %10s %7s %10s %10s\n' "operation" "MiB" "fwrel ms" "floor ms" "ratio" \
    "fwrel KiB" "floor KiB"
for mib in 1 4 8; do
    "$B/fwrel-testimg" --chip esp32s3 --size $((mib * 1048576 - 8192)) -o "$W/s3-$mib.bin" >/dev/null
    "$B/fwrel-testimg" --chip esp32 --size $((mib * 1048576 - 8192)) -o "$W/e-$mib.bin" >/dev/null
    img="$W/s3-$mib.bin"
    rm -f "$W/out.bin"
    sign() { rm -f "$W/out.bin"; "$B/fwrel-sign" -k "$W/rsa.pem" -o "$W/out.bin" "$img"; }
    floor_sign() {
        openssl dgst -sha256 -sign "$W/rsa.pem" -sigopt rsa_padding_mode:pss \
            -sigopt rsa_pss_saltlen:32 -out "$W/floor.sig" "$img"
    }
    f=$(median_ms sign); g=$(median_ms floor_sign)
    fk=$(peak_kb bash -c "rm -f '$W/out.bin'; '$B/fwrel-sign' -k '$W/rsa.pem' -o '$W/out.bin' '$img'")
    gk=$(peak_kb openssl dgst -sha256 -sign "$W/rsa.pem" -sigopt rsa_padding_mode:pss \
        -sigopt rsa_pss_saltlen:32 -out "$W/floor.sig" "$img")
    printf '%-26s %5s %10s %10s %7s %10s %10s\n' "sign sbv2 rsa3072" $mib "$f" "$g" \
        "$(ratio "$f" "$g")" "$fk" "$gk"

    sign
    openssl pkey -in "$W/rsa.pem" -pubout -out "$W/rsa.pub" 2>/dev/null
    verify() { "$B/fwrel-verify" --sbv2 --key "$W/rsa.pub" "$W/out.bin"; }
    floor_verify() {
        openssl dgst -sha256 -verify "$W/rsa.pub" -sigopt rsa_padding_mode:pss \
            -sigopt rsa_pss_saltlen:32 -signature "$W/floor.sig" "$img"
    }
    f=$(median_ms verify); g=$(median_ms floor_verify)
    fk=$(peak_kb "$B/fwrel-verify" --sbv2 --key "$W/rsa.pub" "$W/out.bin")
    gk=$(peak_kb openssl dgst -sha256 -verify "$W/rsa.pub" -sigopt rsa_padding_mode:pss \
        -sigopt rsa_pss_saltlen:32 -signature "$W/floor.sig" "$img")
    printf '%-26s %5s %10s %10s %7s %10s %10s\n' "verify sbv2 rsa3072" $mib "$f" "$g" \
        "$(ratio "$f" "$g")" "$fk" "$gk"

    img="$W/e-$mib.bin"
    sign1() { rm -f "$W/out1.bin"; "$B/fwrel-sign" --sbv1 -k "$W/ec.pem" -o "$W/out1.bin" "$img"; }
    floor_sign1() { openssl dgst -sha256 -sign "$W/ec.pem" -out "$W/floor1.sig" "$img"; }
    f=$(median_ms sign1); g=$(median_ms floor_sign1)
    fk=$(peak_kb bash -c "rm -f '$W/out1.bin'; '$B/fwrel-sign' --sbv1 -k '$W/ec.pem' -o '$W/out1.bin' '$img'")
    gk=$(peak_kb openssl dgst -sha256 -sign "$W/ec.pem" -out "$W/floor1.sig" "$img")
    printf '%-26s %5s %10s %10s %7s %10s %10s\n' "sign sbv1 ecdsa256" $mib "$f" "$g" \
        "$(ratio "$f" "$g")" "$fk" "$gk"
done
echo "(median of $RUNS runs; KiB = peak RSS of one run; floor = openssl dgst on the same file)"
