# Where the device's own code (ESP-IDF v5.5.5 esp_image_format.c + secure_boot_signatures_app.c,
# compiled on a host) and fwrel disagreed (docs/compat.md): ESP32-C6 apps without descriptor,
# the build's single ECDSA curve, a signed file missing its sector's 0xFF tail. Each verdict of
# fwrel-verify --device is the device's; fwrel-sign and fwrel-bundle refuse what it would not load.
. "$FWREL_SRC/tests/lib.sh"
G="$T/gnupg"
trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
fwrel-testimg --chip esp32c6 --no-app-desc -o "$T/legacy.bin" >/dev/null
fwrel-testimg --chip esp32c6 --version 1.0.0 -o "$T/c6.bin" >/dev/null
for c in 192 256; do
    fwrel-keygen --scheme ecdsa$c --no-passphrase -o "$T/p$c.pem" >/dev/null
    eval "d$c=$(od -An -v -tx1 "$T/p$c.digest.bin" | tr -d ' \n')"
done
profile() { # profile FILE CURVE_SETTING
    printf 'chip: esp32c6\npartition_size: 0x100000\nsecure_boot: {mode: v2, scheme: ecdsa%s, key_digests: [%s, %s]}\n' \
        "$2" "$d192" "$d256" >"$1"
}
profile "$T/c6.yaml" ""
profile "$T/c6-p192.yaml" ", ecdsa_curve: p192"

# 1. No app descriptor: the C6 refuses to load it, so fwrel-sign refuses to sign it.
expect_rc 3 "sign a C6 app without descriptor" fwrel-sign -k "$T/p256.pem" -o "$T/legacy.signed" "$T/legacy.bin"
expect_err "^fwrel-sign: .*legacy.bin: esp32c6 refuses an app without an app descriptor at 0x20 \(\"Failed to fetch app description header!\"\): --ignore-chip to sign anyway$" "sign without descriptor"
expect_absent "$T/legacy.signed" "sign without descriptor"
expect_rc 0 "--ignore-chip signs it" fwrel-sign --ignore-chip -k "$T/p256.pem" -o "$T/legacy.signed" "$T/legacy.bin"
expect_rc 1 "device: no descriptor" fwrel-verify --device "$T/c6.yaml" "$T/legacy.signed"
expect_err "^fwrel-verify: .*legacy.signed: rejected at image.app-desc: Failed to fetch app description header! \(word 0x[0-9a-f]{8} at 0x20\)$" "device: no descriptor"

# 2. The curve: a P-192 block on a (default) P-256 device, its key in eFuse all the same.
expect_rc 0 "sign P-192" fwrel-sign -k "$T/p192.pem" -o "$T/c6-p192.signed" "$T/c6.bin"
expect_rc 0 "sign P-256" fwrel-sign -k "$T/p256.pem" -o "$T/c6-p256.signed" "$T/c6.bin"
expect_rc 1 "P-192 block, P-256 device" fwrel-verify --device "$T/c6.yaml" "$T/c6-p192.signed"
expect_err "rejected at sbv2.accept: no valid signature: block 0 ECDSA curve mismatch: actual \(curve_id 1\), expected \(curve_id 2\)" "curve mismatch"
expect_rc 0 "P-192 device" fwrel-verify --device "$T/c6-p192.yaml" "$T/c6-p192.signed"
expect_rc 1 "P-256 block, P-192 device" fwrel-verify --device "$T/c6-p192.yaml" "$T/c6-p256.signed"
expect_err "ECDSA curve mismatch: actual \(curve_id 2\), expected \(curve_id 1\)" "curve mismatch 2"

# 3. The sector's 0xFF tail (and block 0's padding) missing: the device reads erased flash there.
size=$(stat -c %s "$T/c6-p256.signed")
head -c $((size - 4096 + 1200)) "$T/c6-p256.signed" >"$T/cut.signed"
expect_rc 0 "device: sector tail missing" fwrel-verify --device "$T/c6.yaml" "$T/cut.signed"
run fwrel-verify --json --device "$T/c6.yaml" "$T/cut.signed"
echo "$OUT" | grep -q 'the other 2896 read as erased flash (0xFF), as on the device' && ok ||
    fail "--json: no sbv2.sector note: $OUT"
expect_rc 1 "espsecure mode: the same file" fwrel-verify --sbv2 --key "$T/p256.pem" "$T/cut.signed"
expect_err "Invalid datafile. Data size should be non-zero & a multiple of 4096.$" "espsecure size rule"
head -c $((size - 4096 + 1100)) "$T/c6-p256.signed" >"$T/cut2.signed"
expect_rc 1 "device: block 0 cut" fwrel-verify --device "$T/c6.yaml" "$T/cut2.signed"
expect_err "rejected at sbv2.accept: no valid signature: block 0 CRC mismatch" "block 0 cut"

# A release of such an image for a C6 product is refused before anything is signed.
make_approvers "$G"
[ -n "$A1" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
mkdir -p "$T/p"
pin_approvers "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$T/p/policy.yaml"
printf 'keystore passphrase\n' >"$T/pass"
chmod 600 "$T/pass"
fwrel-keygen -q --policy "$T/p/policy.yaml" --keystore "$T/ks" --passphrase-file "$T/pass" ||
    { echo "FAIL: keygen"; exit 1; }
expect_rc 1 "bundle a C6 app without descriptor" fwrel-bundle --policy "$T/p/policy.yaml" \
    --keystore "$T/ks" --channel beta --gnupg-home "$G" --passphrase-file "$T/pass" \
    --templates "$FWREL_SRC/templates" --tag-signer "$A1" -o "$T/legacy.fwb" "$T/legacy.bin"
expect_err "no app descriptor" "bundle without descriptor"
expect_absent "$T/legacy.fwb" "bundle without descriptor"
finish
