# Manifests end to end: fwrel-encrypt --manifest (sign with a threshold of keys, encrypt to the
# devices) and fwrel-verify --manifest --device (decrypt, signatures, threshold, device type,
# chip, expiry under faketime, counter). Each refusal: exit code, one line, the step named.
. "$FWREL_SRC/tests/lib.sh"
cd "$T"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out s1.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out s2.pem 2>/dev/null
openssl genpkey -algorithm ED25519 -out s3.pem 2>/dev/null
openssl genpkey -algorithm X25519 -out dev.pem 2>/dev/null
openssl genpkey -algorithm X25519 -out other.pem 2>/dev/null
for k in s1 s2 s3 dev other; do openssl pkey -in $k.pem -pubout -out $k.pub 2>/dev/null; done
now=$(date +%s)
body() { # body COUNTER EXTRA
    cat <<JSON
{
  "format": "fwrel-manifest", "format_version": 1,
  "product": "thermo", "device_types": ["thermo-a", "thermo-b"],
  "chip": "esp32c3", "chip_rev_min": 3, "chip_rev_max": 199,
  "version": "2.1.0", "secure_version": 2, "counter": $1, "channel": "prod",
  "created": $((now - 60)), "expires": $((now + 86400)),
  "image": {"plain": {"sha256": "$(printf '%064d' 0)", "size": 1},
            "signed": {"sha256": "$(printf '%064d' 1)", "size": 2},
            "encrypted": {"sha256": "$(printf '%064d' 2)", "size": 3}},
  "image_name": "thermo-2.1.0.enc"${2:-}
}
JSON
}
body 6 >m.json
{
    thermo_profile
    echo 'channels: [beta, prod]'
    echo 'manifest: {key: dev.pem, trusted_keys: [s1.pub, s2.pub, s3.pub], threshold: 2, counter: 5}'
} >dev.yaml

expect_rc 0 "sign 2 of 3 and encrypt" fwrel-encrypt --manifest --sign-key s1.pem --sign-key s3.pem \
    --recipient dev.pub --recipient s2.pub -o m.fwm m.json
expect_rc 0 "the device accepts it" fwrel-verify --manifest --device dev.yaml m.fwm
echo "$OUT" | grep -q "PASS manifest.threshold .*2 of 2 required" && ok || fail "threshold step: $OUT"
expect_rc 0 "--json" fwrel-verify --json --manifest --device dev.yaml m.fwm
echo "$OUT" | grep -q '"accepted": true' && ok || fail "--json: $OUT"

sed 's/threshold: 2/threshold: 3/' dev.yaml >t3.yaml
expect_rc 1 "3 of 3 required, 2 given" fwrel-verify --manifest --device t3.yaml m.fwm
expect_err "rejected at manifest.signatures: 2 valid signatures from trusted keys, 3 required" "threshold"
# libfaketime is preloaded before ASan's runtime in sanitizer builds: allow that order.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
expect_rc 1 "expired (faketime +2 days)" faketime -f '+2d' fwrel-verify --manifest --device dev.yaml m.fwm
expect_err "rejected at manifest.expiry: .*expired" "expiry"
sed 's/device_type: thermo-a/device_type: oven/' dev.yaml >oven.yaml
expect_rc 1 "another device type" fwrel-verify --manifest --device oven.yaml m.fwm
expect_err "rejected at manifest.device-type" "device type"
sed 's/counter: 5/counter: 6/' dev.yaml >replay.yaml
expect_rc 1 "a replayed release" fwrel-verify --manifest --device replay.yaml m.fwm
expect_err "rejected at manifest.counter" "counter"
sed 's/key: dev.pem/key: other.pem/' dev.yaml >other.yaml
expect_rc 1 "not addressed to this device" fwrel-verify --manifest --device other.yaml m.fwm
expect_err "rejected at manifest.open: .*not addressed" "wrong device"
cp m.fwm flip.fwm
size=$(stat -c %s flip.fwm)
printf '\x01' | dd of=flip.fwm bs=1 seek=$((size - 20)) conv=notrunc status=none
expect_rc 1 "a flipped byte" fwrel-verify --manifest --device dev.yaml flip.fwm
expect_err "rejected at manifest.open" "flipped byte"

# From the release's images and a template of the release fields only.
fwrel-testimg --chip esp32c3 --version 2.4.6 --secure-version 3 -o app.bin >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o sb.pem >/dev/null
fwrel-sign -k sb.pem -o app.signed.bin app.bin >/dev/null
fwrel-encrypt --key s1.pub -o app.enc app.signed.bin >/dev/null
cat >release.json <<JSON
{"product": "thermo", "device_types": ["thermo-a"], "channel": "beta", "counter": 9,
 "created": $((now - 10)), "expires": $((now + 3600))}
JSON
expect_rc 0 "a manifest from the images" fwrel-encrypt --manifest --signed-image app.signed.bin \
    --plain-image app.bin --encrypted-image app.enc --sign-key s1.pem --sign-key s2.pem --recipient dev.pub \
    -o rel.fwm release.json
expect_rc 0 "the device reads it" fwrel-verify --manifest --device dev.yaml rel.fwm
echo "$OUT" | grep -q "PASS manifest.parse .*thermo 2.4.6 (beta), counter 9" && ok || fail "derived fields: $OUT"
printf '{"product": "thermo", "version": "9.9"}' >override.json
expect_rc 3 "a template may not set derived fields" fwrel-encrypt --manifest --signed-image app.signed.bin \
    --encrypted-image app.enc --sign-key s1.pem --recipient dev.pub -o x.fwm override.json
expect_rc 2 "--signed-image without --encrypted-image" fwrel-encrypt --manifest --signed-image app.signed.bin \
    --sign-key s1.pem --recipient dev.pub -o x.fwm release.json

# Bad manifests and keys: refused before anything is written.
body 7 ', "colour": "red"' >unknown.json
expect_rc 3 "unknown field" fwrel-encrypt --manifest --sign-key s1.pem --recipient dev.pub -o x.fwm unknown.json
expect_err "^fwrel-encrypt: unknown.json: .*unknown field 'colour'" "unknown field"
body 7 ', "product": "again"' >dup.json
expect_rc 3 "duplicate key" fwrel-encrypt --manifest --sign-key s1.pem --recipient dev.pub -o x.fwm dup.json
body 7.5 >float.json
expect_rc 3 "a float" fwrel-encrypt --manifest --sign-key s1.pem --recipient dev.pub -o x.fwm float.json
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out r2048.pem 2>/dev/null
openssl pkey -in r2048.pem -pubout -out r2048.pub 2>/dev/null
expect_rc 4 "an RSA-2048 recipient" fwrel-encrypt --manifest --sign-key s1.pem --recipient r2048.pub -o x.fwm m.json
expect_absent x.fwm "refusals"
expect_rc 2 "no recipient" fwrel-encrypt --manifest --sign-key s1.pem -o x.fwm m.json
expect_rc 2 "--manifest without --device" fwrel-verify --manifest m.fwm
expect_rc 5 "existing output" fwrel-encrypt --manifest --sign-key s1.pem --recipient dev.pub -o m.fwm m.json
finish
