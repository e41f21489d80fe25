# HSM keys named in a release policy, for real with SoftHSM2 (a token in the test's temporary
# directory): fwrel-keygen --policy records the secure boot slot-0 key (RSA-3072) and a manifest
# signer (ECDSA P-256) by URI and public key, keeps them on a second run, refuses a wrong PIN, a
# wrong algorithm, another key under the same URI (recorded with --force) and Secure Boot V1;
# --provision's digest equals the one re-derived from the token's public key; fwrel-bundle signs
# the image and the manifest on the token: the signed image verifies with the HSM key and the
# bundle passes a device that holds only the provisioned files; a wrong PIN fails the release with
# nothing recorded but a failure entry in the audit log.
. "$FWREL_SRC/tests/lib.sh"
if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
    echo "skipped: no softhsm2"
    exit 77
fi
G="$T/gnupg"
trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
cd "$T"
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" \
    >softhsm2.conf
export SOFTHSM2_CONF="$T/softhsm2.conf"
# make_token SB_KEY: the token fwrel-test with SB_KEY as "sb0" and mf.p8 as "mf".
make_token() {
    softhsm2-util --delete-token --token fwrel-test >/dev/null 2>&1
    softhsm2-util --init-token --free --label fwrel-test --pin 1234 --so-pin 5678 >/dev/null ||
        fail "softhsm2-util --init-token"
    softhsm2-util --import "$1" --token fwrel-test --label sb0 --id 01 --pin 1234 >/dev/null ||
        fail "import $1"
    softhsm2-util --import mf.p8 --token fwrel-test --label mf --id 02 --pin 1234 >/dev/null ||
        fail "import mf"
}
for k in sb0:RSA:rsa_keygen_bits:3072 sbnew:RSA:rsa_keygen_bits:3072 mf:EC:ec_paramgen_curve:P-256 \
    sbv1:EC:ec_paramgen_curve:P-256; do
    IFS=: read -r name alg opt val <<EOF
$k
EOF
    openssl genpkey -algorithm "$alg" -pkeyopt "$opt:$val" -out "$name.p8" 2>/dev/null
    openssl pkey -in "$name.p8" -pubout -out "$name.pub" 2>/dev/null
done
make_token sb0.p8
printf '1234\n' >pin
printf '9999\n' >badpin
printf 'keystore passphrase\n' >pass
chmod 600 pin badpin pass
SB='pkcs11:token=fwrel-test;object=sb0'
MF='pkcs11:token=fwrel-test;object=mf'

# One approver in a GnuPG home of the test's own; the policy pins it and two placeholders.
mkdir -m 700 "$G"
gpg --homedir "$G" --batch --pinentry-mode loopback --passphrase '' \
    --quick-gen-key "Approver <a@example.invalid>" ed25519 sign never >/dev/null 2>&1
A1=$(gpg --homedir "$G" --with-colons --list-secret-keys | awk -F: '/^fpr/{print $10; exit}')
[ -n "$A1" ] || { echo "FAIL: no GnuPG key"; exit 1; }
sed -e "s/0123456789ABCDEF0123456789ABCDEF01234567/$A1/" \
    -e "s|^  sb-slot0: {purpose: secure-boot, alg: rsa3072}|  sb-slot0: {purpose: secure-boot, alg: rsa3072, hsm: \"$SB\"}|" \
    -e "s|^  mf-release-2: {purpose: manifest-sign, alg: ecdsa256}|  mf-release-2: {purpose: manifest-sign, alg: ecdsa256, hsm: \"$MF\"}|" \
    "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >policy.yaml
[ "$(grep -c 'hsm: "pkcs11:' policy.yaml)" -eq 2 ] && ok || fail "policy: the hsm keys not set"
keygen() { fwrel-keygen --keystore "$T/ks" --passphrase-file "$T/pass" "$@"; }
# no_keys DESC: the keystore records no key (it may have been created empty) and has no key file.
no_keys() {
    if [ -e ks/index.json ] && [ "$(fwrel-keygen --keystore ks --list)" != "" ]; then
        fail "$1: keys were recorded"
    elif [ -n "$(ls -A ks/keys 2>/dev/null)" ]; then
        fail "$1: key files were written"
    else
        ok
    fi
}

# --- fwrel-keygen --policy -------------------------------------------------------------------
# Refusals before anything is recorded: a wrong PIN, an HSM key of another algorithm, SBv1.
expect_rc 4 "keygen: wrong PIN" keygen --policy policy.yaml --pin-file badpin
expect_err "^fwrel-keygen: $SB: wrong PIN$" "keygen: wrong PIN"
no_keys "keygen: wrong PIN"
expect_rc 4 "keygen: no PIN" keygen --policy policy.yaml </dev/null
no_keys "keygen: no PIN"
sed "s|^  mf-release-1: {purpose: manifest-sign, alg: ed25519}|  mf-release-1: {purpose: manifest-sign, alg: ed25519, hsm: \"$SB\"}|" \
    policy.yaml >wrongalg.yaml
expect_rc 4 "keygen: an RSA HSM key for an ed25519 key" keygen --policy wrongalg.yaml --pin-file pin
expect_err "^fwrel-keygen: wrongalg.yaml: key mf-release-1: the HSM key \(id [0-9a-f]{64}\) is rsa3072, the policy says ed25519$" \
    "keygen: wrong algorithm"
no_keys "keygen: wrong algorithm"
sed "s|^  sbv1-signing: {purpose: secure-boot, alg: ecdsa256}|  sbv1-signing: {purpose: secure-boot, alg: ecdsa256, hsm: \"$MF\"}|" \
    "$FWREL_SRC/policies/esp32-sbv1-dev.yaml" >sbv1.yaml
expect_rc 2 "keygen: SBv1 HSM key" fwrel-keygen --keystore ks1 --no-passphrase --policy sbv1.yaml \
    --pin-file pin
expect_err "^fwrel-keygen: sbv1.yaml: key sbv1-signing: HSM keys sign Secure Boot V2 images only" \
    "keygen: SBv1 HSM key"

# Recorded: the URI and the token's public key; no private file.
expect_rc 0 "keygen --policy with HSM keys" keygen --policy policy.yaml --pin-file pin
sb_id=$(openssl pkey -pubin -in sb0.pub -outform DER 2>/dev/null | sha256sum | cut -c1-64)
expect_out "^created  sb-slot0 +epoch 1 +secure-boot +rsa3072 +[0-9a-f]{64} hsm $SB$" "keygen output"
expect_out "^created  mf-release-2 +epoch 1 +manifest-sign +ecdsa256 +[0-9a-f]{64} hsm $MF$" \
    "keygen output"
expect_out "^created  mf-release-1 +epoch 1 +manifest-sign +ed25519 +[0-9a-f]{64}$" \
    "keygen output (software key)"
[ ! -e ks/keys/sb-slot0.1.pem ] && [ ! -e ks/keys/mf-release-2.1.pem ] && ok ||
    fail "a private file for an HSM key"
expect_same ks/keys/sb-slot0.1.pub.pem sb0.pub "the recorded public key of sb-slot0"
expect_same ks/keys/mf-release-2.1.pub.pem mf.pub "the recorded public key of mf-release-2"
run fwrel-keygen --keystore ks --list
printf '%s\n' "$OUT" | grep -Eq "^active   sb-slot0 +epoch 1 .* hsm $SB$" && ok || fail "--list: $OUT"
printf '%s\n' "$OUT" | grep -Eq "^active   mf-release-2 +epoch 1 .* hsm $MF$" && ok || fail "--list: $OUT"
run fwrel-keygen --json --keystore ks --list
printf '%s\n' "$OUT" | python3 -c '
import json, sys
keys = {k["name"]: k for k in json.load(sys.stdin)["keys"]}
assert keys["sb-slot0"]["uri"] == sys.argv[1] and keys["mf-release-2"]["uri"] == sys.argv[2], keys
assert "uri" not in keys["mf-release-1"], keys' "$SB" "$MF" && ok || fail "--list --json: $OUT"
# A second run keeps them (and reads the token again); the index does not change.
cp ks/index.json index.1
expect_rc 0 "keygen again" keygen --policy policy.yaml --pin-file pin
printf '%s\n' "$OUT" | grep -Eq "^kept     sb-slot0 +epoch 1 .* hsm $SB$" && ok || fail "kept: $OUT"
printf '%s\n' "$OUT" | grep -Eq "^kept     mf-release-2 +epoch 1 " && ok || fail "kept: $OUT"
expect_same ks/index.json index.1 "index after a second run"

# --provision: the digest of the HSM key is the SBv2 digest of the token's public key.
expect_rc 0 "keygen --provision" keygen --policy policy.yaml --pin-file pin --provision prov
[ "$(hex prov/sb-slot0.digest.bin)" = "$(sbv2_digest sb0.pub rsa3072)" ] && ok ||
    fail "provisioned digest $(hex prov/sb-slot0.digest.bin), re-derived $(sbv2_digest sb0.pub rsa3072)"
expect_same prov/sb-slot0.pub.pem sb0.pub "provisioned secure boot public key"
expect_same prov/mf-release-2.pub.pem mf.pub "provisioned manifest signing key"
grep -q "burn_key BLOCK_KEY0 sb-slot0.digest.bin SECURE_BOOT_DIGEST0" prov/README.txt && ok ||
    fail "README: $(cat prov/README.txt)"

# --- fwrel-bundle -----------------------------------------------------------------------------
img() { fwrel-testimg --chip esp32s3 --version "$1" --secure-version 1 --project acme \
    --size 150000 -o "app-$1.bin" >/dev/null; }
img 1.0.0
img 1.1.0
R="$T/releases"
bundle() {
    fwrel-bundle --policy policy.yaml --keystore ks --repo "$R" --channel beta --gnupg-home "$G" \
        --passphrase-file pass --templates "$FWREL_SRC/templates" -A "$A1" "$@"
}
expect_rc 0 "release with HSM keys" bundle --pin-file pin -o b1.fwb app-1.0.0.bin
for s in secureboot manifest repo; do
    printf '%s\n' "$OUT" | grep -Eq "^PASS $s " && ok || fail "step $s: $OUT"
done
TAG1=acme-thermostat/beta/v1.0.0
[ "$(git -C "$R" tag)" = "$TAG1" ] && ok || fail "tags: $(git -C "$R" tag)"
mkdir x1 && tar xf b1.fwb -C x1
# release.json names the HSM keys by id.
python3 - x1/release.json "$sb_id" "$(openssl pkey -pubin -in mf.pub -outform DER 2>/dev/null | sha256sum | cut -c1-64)" <<'PY' && ok || fail "release.json key ids"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["keys"]["secure_boot"] == [sys.argv[2]], r
assert sys.argv[3] in r["keys"]["manifest_signers"], r
PY
# The signed image inside: decrypted with the provisioned image key, it verifies with the HSM
# key's public half and not with another key.
expect_rc 0 "decrypt firmware.enc" fwrel-encrypt --decrypt --key prov/img-enc.private.pem \
    -o signed.bin x1/firmware.enc
expect_rc 0 "the image verifies with the HSM key" fwrel-verify --sbv2 --key sb0.pub signed.bin
printf '%s\n' "$OUT" | grep -q "^PASS sbv2.block0 " && ok || fail "block 0: $OUT"
expect_rc 1 "another key does not verify it" fwrel-verify --sbv2 --key sbnew.pub signed.bin
# A device holding only the provisioned files accepts the bundle: the eFuse digest, the image
# key, the manifest key and all three manifest signers (threshold 3: the HSM signer signed).
cat >dev.yaml <<YAML
chip: esp32s3
chip_revision: "0.2"
partition_size: 0x1e0000
device_type: thermostat-v2
product: acme-thermostat
channel: beta
secure_boot: {mode: v2, key_digests: [$(hex prov/sb-slot0.digest.bin)]}
anti_rollback: {secure_version: 1}
image_key: prov/img-enc.private.pem
manifest:
  key: prov/mf-device.private.pem
  trusted_keys: [prov/mf-release-1.pub.pem, prov/mf-release-2.pub.pem, prov/mf-security.pub.pem]
  threshold: 3
  counter: 0
YAML
expect_rc 0 "the device accepts the bundle" fwrel-verify --bundle --device dev.yaml b1.fwb
sed 's|prov/mf-release-2.pub.pem|sbnew.pub|' dev.yaml >dev2.yaml
expect_rc 1 "without the HSM signer the threshold is not met" \
    fwrel-verify --bundle --device dev2.yaml b1.fwb

# A wrong PIN: exit 4, one line naming the key, no output, no tag, a failure entry last.
head_before=$(git -C "$R" rev-parse HEAD)
expect_rc 4 "release: wrong PIN" bundle --pin-file badpin -o b2.fwb app-1.1.0.bin
expect_err "^fwrel-bundle: key sb-slot0 \($SB\): wrong PIN$" "release: wrong PIN"
expect_absent b2.fwb "release: wrong PIN"
[ "$(git -C "$R" tag)" = "$TAG1" ] && [ "$(git -C "$R" rev-parse HEAD)" = "$head_before" ] && ok ||
    fail "wrong PIN: the repository changed"
tail -n 1 "$R/audit/audit.jsonl" | python3 -c '
import json, sys
e = json.loads(sys.stdin.read())
assert e["result"] == "fail" and "wrong PIN" in json.dumps(e), e' && ok ||
    fail "wrong PIN: last audit entry: $(tail -n 1 "$R/audit/audit.jsonl")"
# The PIN from the URI's pin-source: keygen and the bundle need no --pin-file then.
sed "s|object=sb0\"|object=sb0?pin-source=file:$T/pin\"|; s|object=mf\"|object=mf?pin-source=file:$T/pin\"|" \
    policy.yaml >pinsrc.yaml
expect_rc 4 "release: policy and keystore URIs differ" fwrel-bundle --policy pinsrc.yaml \
    --keystore ks --repo "$R" --channel beta --gnupg-home "$G" --passphrase-file pass \
    --templates "$FWREL_SRC/templates" -A "$A1" -o b2.fwb app-1.1.0.bin
expect_err "^fwrel-bundle: key sb-slot0: the policy names the HSM key .*pin-source.*, the keystore records the HSM key $SB \(id $sb_id\): run fwrel-keygen --policy$" \
    "release: URIs differ"
expect_absent b2.fwb "release: URIs differ"

# --- another key under the same URI ---------------------------------------------------------
make_token sbnew.p8
new_id=$(openssl pkey -pubin -in sbnew.pub -outform DER 2>/dev/null | sha256sum | cut -c1-64)
cp ks/index.json index.2
expect_rc 4 "keygen: another key under the URI" keygen --policy policy.yaml --pin-file pin
expect_err "^fwrel-keygen: $T/ks: key sb-slot0: the keystore records id $sb_id for this URI, the token now holds id $new_id: give --force or --rotate sb-slot0 to record the new key$" \
    "keygen: another key under the URI"
expect_same ks/index.json index.2 "index after the refusal"
expect_rc 4 "release: the token holds another key" bundle --pin-file pin -o b2.fwb app-1.1.0.bin
expect_err "^fwrel-bundle: key sb-slot0: the token holds id $new_id, the keystore records $sb_id$" \
    "release: the token holds another key"
expect_absent b2.fwb "release: the token holds another key"
expect_rc 0 "keygen --rotate sb-slot0" keygen --policy policy.yaml --pin-file pin --rotate sb-slot0
printf '%s\n' "$OUT" | grep -Eq "^rotated  sb-slot0 +epoch 2 .* $new_id hsm $SB$" && ok ||
    fail "rotate: $OUT"
run fwrel-keygen --keystore ks --list
printf '%s\n' "$OUT" | grep -Eq "^retired  sb-slot0 +epoch 1 .* $sb_id hsm $SB$" && ok || fail "--list: $OUT"
expect_rc 4 "keygen --rotate again: the same key" keygen --policy policy.yaml --pin-file pin \
    --rotate sb-slot0
expect_err "^fwrel-keygen: $T/ks: key sb-slot0: the token holds the key recorded already" \
    "rotate: the same key"
expect_rc 0 "release with the new HSM key" bundle --pin-file pin -o b2.fwb app-1.1.0.bin
mkdir x2 && tar xf b2.fwb -C x2
expect_rc 0 "decrypt (new key)" fwrel-encrypt --decrypt --key prov/img-enc.private.pem \
    -o signed2.bin x2/firmware.enc
expect_rc 0 "the image verifies with the new HSM key" fwrel-verify --sbv2 --key sbnew.pub signed2.bin
expect_rc 1 "not with the retired one" fwrel-verify --sbv2 --key sb0.pub signed2.bin

# --- Secure Boot V1: the bundle refuses an HSM key -------------------------------------------
sed "s|, hsm: \"$MF\"||" sbv1.yaml >sbv1-soft.yaml
expect_rc 0 "keygen (SBv1, software)" fwrel-keygen --keystore ks1 --no-passphrase --policy sbv1-soft.yaml
fwrel-testimg --chip esp32 --min-rev 300 --max-rev 399 --version 1.0.0 --project acme --size 100000 -o app-esp32.bin >/dev/null
expect_rc 2 "release: SBv1 with an HSM key" fwrel-bundle --policy sbv1.yaml --keystore ks1 \
    --repo "$T/rel1" --no-passphrase --pin-file pin --templates "$FWREL_SRC/templates" \
    --gnupg-home "$G" --tag-signer "$A1" \
    -o v1.fwb app-esp32.bin
expect_err "^fwrel-bundle: key sbv1-signing is held in an HSM: HSM keys sign Secure Boot V2 images only, not Secure Boot V1$" \
    "release: SBv1"
expect_absent v1.fwb "release: SBv1"
finish
