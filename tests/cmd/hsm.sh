# HSM keys through PKCS#11, for real with SoftHSM2 (a token created in the test's temporary
# directory): SBv2 RSA-3072-PSS and ECDSA P-256 images signed on the token verify with the public
# key and equal a software-signed image but for the signature; manifests signed on the token
# verify on the device; refusals (wrong PIN, no key, two keys, pin-value, missing module, SBv1)
# with their exit code, one stderr line and no output.
. "$FWREL_SRC/tests/lib.sh"
if ! command -v softhsm2-util >/dev/null 2>&1; then
    echo "skipped: no softhsm2"
    exit 77
fi
cd "$T"
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" \
    >softhsm2.conf
export SOFTHSM2_CONF="$T/softhsm2.conf"
softhsm2-util --init-token --free --label fwrel-test --pin 1234 --so-pin 5678 >/dev/null ||
    fail "softhsm2-util --init-token"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa.p8 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.p8 2>/dev/null
openssl genpkey -algorithm ED25519 -out ed.p8 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dup1.p8 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dup2.p8 2>/dev/null
for k in rsa:01 ec:02 dup1:03 dup2:04 ed:05; do
    name=${k%%:*}
    label=$name
    case $name in dup*) label=dup ;; esac
    softhsm2-util --import "$name.p8" --token fwrel-test --label "$label" --id "${k#*:}" \
        --pin 1234 >/dev/null || fail "import $name"
    openssl pkey -in "$name.p8" -pubout -out "$name.pub" 2>/dev/null
done
printf '1234\n' >pin
printf '9999\n' >badpin
chmod 600 pin badpin
TOK='pkcs11:token=fwrel-test'

fwrel-testimg --chip esp32c3 --version v2.4.1 --project blinky -o c3.bin >/dev/null
fwrel-testimg --chip esp32c6 --version v2.4.1 --project blinky -o c6.bin >/dev/null

# sector_prefix FILE: the signed image up to and including the block's image digest (the
# signature sector is the last 4 KiB; magic, version, padding and digest are its first 36 bytes).
same_but_signature() { # same_but_signature A B DESC
    local sa sb
    sa=$(stat -c %s "$1")
    sb=$(stat -c %s "$2")
    if [ "$sa" -ne "$sb" ]; then
        fail "$3: sizes $sa and $sb"
    elif cmp -s -n $((sa - 4096 + 36)) "$1" "$2"; then
        ok
    else
        fail "$3: the images differ before the signature"
    fi
}

# RSA-3072 PSS on esp32c3, ECDSA P-256 on esp32c6: the PIN from --passphrase-file, then from
# the URI's pin-source.
for kc in rsa:c3 ec:c6; do
    k=${kc%%:*}
    img=${kc#*:}.bin
    expect_rc 0 "$k: sign on the HSM" fwrel-sign -k "$TOK;object=$k" --passphrase-file pin \
        -o "$k.hsm.bin" "$img"
    hsm_digest=$(printf '%s\n' "$OUT" | sed -n 's/.*block key digest: //p')
    expect_rc 0 "$k: verify the HSM-signed image" fwrel-verify --sbv2 --key "$k.pub" "$k.hsm.bin"
    printf '%s\n' "$OUT" | grep -q "^PASS sbv2.block0 " && ok || fail "$k: block 0: $OUT"
    expect_rc 1 "$k: another key does not verify it" fwrel-verify --sbv2 --key dup1.pub "$k.hsm.bin"
    expect_rc 0 "$k: sign with the software key" fwrel-sign -k "$k.p8" -o "$k.sw.bin" "$img"
    sw_digest=$(printf '%s\n' "$OUT" | sed -n 's/.*block key digest: //p')
    same_but_signature "$k.hsm.bin" "$k.sw.bin" "$k: HSM and software images"
    [ -n "$hsm_digest" ] && [ "$hsm_digest" = "$sw_digest" ] && ok ||
        fail "$k: block key digests '$hsm_digest' and '$sw_digest'"
    expect_rc 0 "$k: pin-source in the URI" \
        fwrel-sign -k "$TOK;object=$k?pin-source=file:$T/pin" -o "$k.src.bin" "$img"
    expect_rc 0 "$k: verify (pin-source)" fwrel-verify --sbv2 --key "$k.pub" "$k.src.bin"
done
# --append: an HSM block after a block of another (software) key; either key verifies the image,
# a third does not.
expect_rc 0 "software block" fwrel-sign -k dup1.p8 -o one.bin c6.bin
expect_rc 0 "append an HSM block" fwrel-sign -a -k "$TOK;object=ec" --passphrase-file pin \
    -o two.bin one.bin
expect_rc 0 "appended image with the HSM key" fwrel-verify --sbv2 --key ec.pub two.bin
printf '%s\n' "$OUT" | grep -q "^PASS sbv2.block1 " && ok || fail "append: block 1: $OUT"
expect_rc 0 "appended image with the software key" fwrel-verify --sbv2 --key dup1.pub two.bin
expect_rc 1 "appended image with a third key" fwrel-verify --sbv2 --key dup2.pub two.bin

# By id, and with the module named in the URI.
expect_rc 0 "by id and module-path" fwrel-sign -k "$TOK;id=%02?module-path=/usr/lib/softhsm/libsofthsm2.so" \
    --passphrase-file pin -o id.bin c6.bin
expect_rc 0 "verify (by id)" fwrel-verify --sbv2 --key ec.pub id.bin

# Refusals: exit code, one line naming the URI, no output.
# sign_refused RC PATTERN DESC ARGS...: fwrel-sign -o x.bin ARGS exits RC with one stderr line
# matching PATTERN and writes no x.bin.
sign_refused() {
    local rc=$1 pat=$2 desc=$3
    shift 3
    expect_rc "$rc" "$desc" fwrel-sign -o x.bin "$@"
    expect_err "$pat" "$desc"
    expect_absent x.bin "$desc"
}
sign_refused 4 "^fwrel-sign: pkcs11:token=fwrel-test;object=rsa: wrong PIN$" "wrong PIN" \
    -k "$TOK;object=rsa" --passphrase-file badpin c3.bin
sign_refused 4 "^fwrel-sign: pkcs11:token=fwrel-test;object=nope: no private key matches$" "no key" \
    -k "$TOK;object=nope" --passphrase-file pin c3.bin
sign_refused 4 "^fwrel-sign: pkcs11:token=fwrel-test;object=dup: more than one private key matches$" \
    "two keys" -k "$TOK;object=dup" --passphrase-file pin c6.bin
sign_refused 4 "^fwrel-sign: pkcs11:token=other;object=rsa: no PKCS#11 token matches$" "no token" \
    -k "pkcs11:token=other;object=rsa" --passphrase-file pin c3.bin
sign_refused 2 "^fwrel-sign: .*pin-value" "pin-value" -k "$TOK;object=rsa?pin-value=1234" c3.bin
sign_refused 5 "^fwrel-sign: pkcs11:.*: cannot load PKCS#11 module $T/nope.so: " "missing module" \
    -k "$TOK;object=rsa?module-path=$T/nope.so" --passphrase-file pin c3.bin
sign_refused 2 "^fwrel-sign: .*Secure Boot V2 images only" "--sbv1" \
    --sbv1 -k "$TOK;object=ec" --passphrase-file pin c3.bin
sign_refused 4 "^fwrel-sign: c3.bin: esp32c3 does not accept ECDSA P-256 signatures$" \
    "ECDSA on esp32c3" -k "$TOK;object=ec" --passphrase-file pin c3.bin
cp c3.bin bad.bin
printf '\x00' | dd of=bad.bin bs=1 seek=0 conv=notrunc status=none
sign_refused 3 "^fwrel-sign: bad.bin: " "HSM key, malformed image" \
    -k "$TOK;object=rsa" --passphrase-file pin bad.bin
sign_refused 4 "^fwrel-sign: pkcs11:token=fwrel-test;object=ed: unsupported key type ED25519" \
    "Ed25519 for an image" -k "$TOK;object=ed" --passphrase-file pin c6.bin

# Manifests: signed on the token by the RSA, the ECDSA and the Ed25519 key, verified on the device.
openssl genpkey -algorithm X25519 -out dev.pem 2>/dev/null
openssl pkey -in dev.pem -pubout -out dev.pub 2>/dev/null
now=$(date +%s)
cat >m.json <<JSON
{
  "format": "fwrel-manifest", "format_version": 1,
  "product": "thermo", "device_types": ["thermo-a"],
  "chip": "esp32c3", "chip_rev_min": 3, "chip_rev_max": 199,
  "version": "2.1.0", "secure_version": 2, "counter": 6, "channel": "prod",
  "created": $((now - 60)), "expires": $((now + 86400)),
  "image": {"plain": {"sha256": "$(printf '%064d' 0)", "size": 1},
            "signed": {"sha256": "$(printf '%064d' 1)", "size": 2},
            "encrypted": {"sha256": "$(printf '%064d' 2)", "size": 3}},
  "image_name": "thermo-2.1.0.enc"
}
JSON
{
    thermo_profile
    echo 'channel: prod'
    echo 'manifest: {key: dev.pem, trusted_keys: [rsa.pub, ec.pub, ed.pub], threshold: 3, counter: 5}'
} >dev.yaml
expect_rc 0 "manifest signed on the HSM" fwrel-encrypt --manifest --sign-key "$TOK;object=rsa" \
    --sign-key "$TOK;object=ec" --sign-key "$TOK;object=ed" --passphrase-file pin \
    --recipient dev.pub -o m.fwm m.json
expect_rc 0 "the device accepts it" fwrel-verify --manifest --device dev.yaml m.fwm
printf '%s\n' "$OUT" | grep -q "PASS manifest.threshold .*3 of 3 required" && ok ||
    fail "threshold step: $OUT"
sed 's/trusted_keys: \[rsa.pub, ec.pub, ed.pub\]/trusted_keys: [rsa.pub, ec.pub, dup1.pub]/' dev.yaml >other.yaml
expect_rc 1 "other trusted keys refuse it" fwrel-verify --manifest --device other.yaml m.fwm
expect_rc 4 "manifest: wrong PIN" fwrel-encrypt --manifest --sign-key "$TOK;object=ec" \
    --passphrase-file badpin --recipient dev.pub -o m2.fwm m.json
expect_err "^fwrel-encrypt: pkcs11:token=fwrel-test;object=ec: wrong PIN$" "manifest: wrong PIN"
expect_absent m2.fwm "manifest: wrong PIN"
expect_rc 4 "manifest: two keys" fwrel-encrypt --manifest --sign-key "$TOK;object=dup" \
    --passphrase-file pin --recipient dev.pub -o m2.fwm m.json
expect_err "^fwrel-encrypt: pkcs11:token=fwrel-test;object=dup: more than one private key matches$" \
    "manifest: two keys"
expect_absent m2.fwm "manifest: two keys"
finish
