# The exports the release signs (docs/exports.md "mender", "aws-iot-ota"), and the plain image
# only where the policy allows it ("plain-dir"), in one release.
# mender: fwrel writes the Mender Artifact v3 itself (libarchive) and signs it with the policy's
# mender key; Debian's mender-artifact validates it with the key's public half and reads back the
# name, device types and version; a tampered artifact fails validation. aws-iot-ota: the
# customCodeSigning signature in create-ota-update.json verifies with `openssl dgst -sha256
# -verify` over exactly the served file, and with the signer certificate README.txt's command
# makes from the aws_ota key (what the device holds). An export without its key is refused before any key is
# opened. Skipped (77) where mender-artifact is not installed (scripts/deps.sh installs it).
. "$FWREL_SRC/tests/lib.sh"
command -v mender-artifact >/dev/null || { echo "skipped: no mender-artifact"; exit 77; }
approvers_home
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" |
    sed -e 's|^exports: .*|exports: [{name: mender, base_url: "https://mender.example.org"}, {name: aws-iot-ota, target_arn: "arn:aws:iot:eu-west-1:123456789012:thinggroup/thermostats", role_arn: "arn:aws:iam::123456789012:role/ota", s3_bucket: acme-fw, certificate_path: "/spiffs/ota_signer.pem"}, {name: plain-dir, plain_image: "true"}]|' \
        -e 's|^hmac: .*|mender: {key: mender-sign}\naws_ota: {key: aws-sign}|' \
        -e 's|^  ota-hmac: .*|  mender-sign: {purpose: mender-sign, alg: ecdsa256}\n  aws-sign: {purpose: aws-ota-sign, alg: ecdsa256}|' >"$T/policy.yaml"
grep -q '^mender: {key: mender-sign}' "$T/policy.yaml" && ok || fail "policy not edited"
expect_rc 0 "--check-policy with the mender export" fwrel-bundle --check-policy "$T/policy.yaml" \
    --templates "$FWREL_SRC/templates"

# refused NAME SED-SCRIPT MESSAGE: the policy edited by SED-SCRIPT is refused by --check-policy
# (exit 3) with "NAME.yaml: MESSAGE" as its one stderr line.
refused() {
    sed "$2" "$T/policy.yaml" >"$T/$1.yaml"
    expect_rc 3 "$1: refused" fwrel-bundle --check-policy "$T/$1.yaml" --templates "$FWREL_SRC/templates"
    expect_err "$1.yaml: $3$" "$1"
}
# Without its key an export that signs is a policy error, before any key is opened.
refused nokey '/^mender: /d; /^  mender-sign: /d' "export 'mender' signs a Mender artifact: \
the policy needs mender: \\{key: NAME\\} \\(a key of purpose mender-sign\\)"
refused noaws '/^aws_ota: /d; /^  aws-sign: /d' "export 'aws-iot-ota' signs the served file: \
the policy needs aws_ota: \\{key: NAME\\} \\(a key of purpose aws-ota-sign\\)"
# The export keys sign in the release as software keys: an HSM one is refused up front.
refused hsm 's|^  mender-sign: .*|  mender-sign: {purpose: mender-sign, alg: ecdsa256, hsm: "pkcs11:token=t;object=o"}|' \
    "export 'mender': the mender key must be a software key, not an HSM key"
# The plain image only where the policy allows it for that export.
refused noplain 's|{name: plain-dir, plain_image: "true"}|plain-dir|' \
    "export 'plain-dir' copies the plain image: the policy allows it only with the setting plain_image: true"
# A release stops there too, before the keystore is opened (there is none here).
expect_rc 3 "a release without the mender key" env SOURCE_DATE_EPOCH=$(($(date +%s) - 60)) \
    fwrel-bundle --policy "$T/nokey.yaml" --keystore "$T/none" --repo "$T/r0" \
    --channel beta --gnupg-home "$G" --no-passphrase --templates "$FWREL_SRC/templates" \
    -A "$A1" -o "$T/b0.fwb" "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml"
expect_err "export 'mender' signs a Mender artifact" "release without the mender key"
expect_absent "$T/b0.fwb" "nothing written"
expect_absent "$T/r0" "no repository made"

fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase ||
    { echo "FAIL: keygen"; exit 1; }
fwrel-testimg --chip esp32s3 --version 1.0.0 --secure-version 1 --project acme --size 65536 \
    -o "$T/app.bin"
expect_rc 0 "release with the mender export" env SOURCE_DATE_EPOCH=$(($(date +%s) - 60)) \
    fwrel-bundle --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$T/releases" \
    --channel beta --gnupg-home "$G" --no-passphrase --templates "$FWREL_SRC/templates" \
    -A "$A1" -o "$T/b.fwb" "$T/app.bin"
mkdir "$T/x"
tar -xf "$T/b.fwb" -C "$T/x" || fail "tar -x"
M="$T/x/exports/mender/acme-thermostat-1.0.0.mender"
[ -f "$M" ] && ok || fail "no artifact"

# The public half of the mender key, as the keystore keeps it (docs/keystore.md).
cp "$T/ks/keys/mender-sign.1.pub.pem" "$T/mender.pub.pem" && ok || fail "no mender public key"

expect_rc 0 "mender-artifact validate -k" mender-artifact validate -k "$T/mender.pub.pem" "$M"
expect_rc 0 "mender-artifact read -k" mender-artifact read -k "$T/mender.pub.pem" "$M"
printf '%s\n' "$OUT" | grep -q "^  Name: acme-thermostat-1.0.0$" && ok || fail "name: $OUT"
printf '%s\n' "$OUT" | grep -q "^  Compatible devices: '\[thermostat-v2 thermostat-v2-pro\]'$" &&
    ok || fail "device types: $OUT"
printf '%s\n' "$OUT" | grep -q "^  Signature: signed and verified correctly$" && ok ||
    fail "signature: $OUT"
printf '%s\n' "$OUT" | grep -q "rootfs-image.version: 1.0.0$" && ok || fail "version: $OUT"
printf '%s\n' "$OUT" | grep -q "name: *acme-thermostat-1.0.0.bin$" && ok || fail "file: $OUT"

# The payload is the served image, byte for byte, and the layout is mender-mcu's (no compression).
mkdir "$T/a"
tar -xf "$M" -C "$T/a" || fail "tar -x artifact"
[ "$(tar -tf "$M" | tr '\n' ' ')" = "version manifest manifest.sig header.tar data/0000.tar " ] &&
    ok || fail "layout: $(tar -tf "$M" | tr '\n' ' ')"
tar -xOf "$T/a/data/0000.tar" acme-thermostat-1.0.0.bin | cmp -s - "$T/x/firmware.enc" && ok ||
    fail "payload is not firmware.enc"

# Another key does not validate it, nor does a changed byte anywhere in the signed part.
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.pem" 2>/dev/null
openssl ec -in "$T/other.pem" -pubout -out "$T/other.pub.pem" 2>/dev/null
expect_rc 4 "validate with another key" mender-artifact validate -k "$T/other.pub.pem" "$M"
cp "$M" "$T/t.mender"
# The payload's last byte (inside data/0000.tar, so the tar stays readable).
off=$(($(stat -c %s "$T/t.mender") - 1024 - 1024 - 1))
while [ "$(dd if="$T/t.mender" bs=1 skip=$off count=1 2>/dev/null | od -An -tx1 | tr -d ' ')" = 00 ]; do
    off=$((off - 1))
done
printf '\377' | dd of="$T/t.mender" bs=1 seek=$off conv=notrunc 2>/dev/null
cmp -s "$M" "$T/t.mender" && fail "not tampered" || ok
expect_rc 4 "validate a tampered payload" mender-artifact validate -k "$T/mender.pub.pem" \
    "$T/t.mender"
expect_err "acme-thermostat-1.0.0.bin: invalid checksum" "tampered payload"
# The signed manifest itself: one digest changed (its first hex digit, in the second member).
cp "$M" "$T/m.mender"
moff=$((512 + 512 + 512))
c=$(dd if="$T/m.mender" bs=1 skip=$moff count=1 2>/dev/null)
[ "$c" = 0 ] && n=1 || n=0
printf '%s' "$n" | dd of="$T/m.mender" bs=1 seek=$moff conv=notrunc 2>/dev/null
expect_rc 4 "validate a tampered manifest" mender-artifact validate -k "$T/mender.pub.pem" \
    "$T/m.mender"
expect_err "invalid checksum" "tampered manifest"
# The signature: its first base64 character changed (manifest.sig's data, the third member).
cp "$M" "$T/s.mender"
soff=$((4 * 512 + 512))
c=$(dd if="$T/s.mender" bs=1 skip=$soff count=1 2>/dev/null)
[ "$c" = A ] && n=B || n=A
printf '%s' "$n" | dd of="$T/s.mender" bs=1 seek=$soff conv=notrunc 2>/dev/null
expect_rc 4 "validate a tampered signature" mender-artifact validate -k "$T/mender.pub.pem" \
    "$T/s.mender"
expect_err "verification failed" "tampered signature"

# The mender upload.sh against a listener on 127.0.0.1 answering as the Management API (201):
# the request carries the artifact (the exact bytes), its size and the token.
cp -r "$T/x/exports/mender" "$T/up"
rm -f "$T/captured.jsonl"
printf '%s\n' '[{"method": "POST", "path": "/api/management/v1/deployments/artifacts", "code": 201, "body": ""}]' >"$T/routes.json"
python3 "$FWREL_SRC/tests/cmd/export_listener.py" "$T/routes.json" "$T/captured.jsonl" >"$T/port.txt" &
LPID=$!
for _ in $(seq 300); do [ -s "$T/port.txt" ] && break; sleep 0.1; done
sed -i "s|'https://mender.example.org'|'http://127.0.0.1:$(cat "$T/port.txt")'|" "$T/up/upload.sh"
expect_rc 0 "mender upload.sh" env MENDER_TOKEN=pat-1 sh "$T/up/upload.sh"
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
python3 - "$T/captured.jsonl" "$M" <<'PY' && ok || fail "the captured mender upload"
import email.parser, email.policy, json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1 and r[0]["path"] == "/api/management/v1/deployments/artifacts", r
assert r[0]["headers"]["authorization"] == "Bearer pat-1"
m = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
    b"Content-Type: " + r[0]["headers"]["content-type"].encode() + b"\r\n\r\n" + bytes.fromhex(r[0]["body"]))
parts = {p.get_param("name", header="content-disposition"): p for p in m.iter_parts()}
data = open(sys.argv[2], "rb").read()
assert sorted(parts) == ["artifact", "description", "size"], parts
assert parts["artifact"].get_content() == data
assert parts["size"].get_content() == str(len(data))
assert parts["description"].get_content() == "acme-thermostat 1.0.0"
PY

# plain-dir: the secure-boot-signed image, not encrypted: release.json's signed_image.
P="$T/x/exports/plain-dir/acme-thermostat-1.0.0-signed.img"
python3 - "$T/x/release.json" "$P" "$T/x/firmware.enc" <<'PY' && ok || fail "plain-dir's image"
import hashlib, json, sys
r = json.load(open(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
assert hashlib.sha256(data).hexdigest() == r["signed_image"]["sha256"], r["signed_image"]
assert len(data) == r["signed_image"]["size"]
assert data != open(sys.argv[3], "rb").read()
assert data[0] == 0xE9  # an ESP image, not the esp_encrypted_img file
PY

# aws-iot-ota: the signature in the CreateOTAUpdate request is over exactly the served file.
A="$T/x/exports/aws-iot-ota"
[ "$(cat "$A/acme-thermostat-1.0.0.bin" | sha256sum)" = "$(sha256sum <"$T/x/firmware.enc")" ] &&
    ok || fail "the S3 file is not the served image"
python3 - "$A/create-ota-update.json" "$T/sig.der" >"$T/aws.txt" <<'PY' || fail "create-ota-update.json"
import base64, json, sys
j = json.load(open(sys.argv[1]))
f = j["files"][0]
c = f["codeSigning"]["customCodeSigning"]
open(sys.argv[2], "wb").write(base64.b64decode(c["signature"]["inlineDocument"], validate=True))
print(j["otaUpdateId"], j["targets"][0], j["roleArn"], f["fileName"],
      f["fileLocation"]["s3Location"]["bucket"], f["fileLocation"]["s3Location"]["key"],
      c["certificateChain"]["certificateName"], c["hashAlgorithm"], c["signatureAlgorithm"])
PY
[ "$(cat "$T/aws.txt")" = "acme-thermostat-1 arn:aws:iot:eu-west-1:123456789012:thinggroup/thermostats arn:aws:iam::123456789012:role/ota acme-thermostat-1.0.0.bin acme-fw acme-thermostat/acme-thermostat-1.0.0.bin /spiffs/ota_signer.pem SHA256 ECDSA" ] &&
    ok || fail "create-ota-update.json fields: $(cat "$T/aws.txt")"
expect_rc 0 "openssl dgst -verify over the served file" openssl dgst -sha256 -verify \
    "$T/ks/keys/aws-sign.1.pub.pem" -signature "$T/sig.der" "$A/acme-thermostat-1.0.0.bin"
cp "$A/acme-thermostat-1.0.0.bin" "$T/t.bin"
printf '\001' | dd of="$T/t.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_rc 1 "the signature does not verify another file" openssl dgst -sha256 -verify \
    "$T/ks/keys/aws-sign.1.pub.pem" -signature "$T/sig.der" "$T/t.bin"
# The device verifies with an X.509 certificate (esp-aws-iot's iot_crypto.c parses the signer
# PEM with mbedtls_x509_crt_parse; a bare public key is refused): README.txt's command makes it
# from the keystore's aws_ota key, and it holds that key's public half, which verifies the
# signature over the served file (docs/exports.md "aws-iot-ota").
req=$(sed -n 's/^  \(openssl req .*\)$/\1/p' "$A/README.txt")
[ "$(printf '%s\n' "$req" | grep -c .)" = 1 ] && ok || fail "README.txt's certificate command: $req"
(cd "$T" && eval "$(printf '%s\n' "$req" | sed "s|KEYSTORE/keys/AWS_KEY.pem|$T/ks/keys/aws-sign.1.pem|")") \
    >/dev/null 2>&1 && ok || fail "README.txt's certificate command failed"
openssl x509 -in "$T/aws_codesign.crt" -noout -pubkey >"$T/cert.pub.pem" 2>/dev/null
expect_same "$T/cert.pub.pem" "$T/ks/keys/aws-sign.1.pub.pem" "the certificate's key is the aws_ota key"
expect_rc 0 "the certificate verifies the signature" openssl dgst -sha256 -verify "$T/cert.pub.pem" \
    -signature "$T/sig.der" "$A/acme-thermostat-1.0.0.bin"
openssl x509 -in "$T/aws_codesign.crt" -noout -ext extendedKeyUsage 2>/dev/null | grep -qx ' *Code Signing' &&
    ok || fail "the certificate is not for code signing"
grep -qx '  the certificate "/spiffs/ota_signer.pem" (certificateName, the setting certificate_path; the' \
    "$A/README.txt" && ok || fail "README.txt does not name certificate_path"
finish
