# One exit-code mapping for every command (error.h fwrel_error_exit_code()): the same malformed
# image is exit 3 with the same line "<prog>: <image>: <reason>" from fwrel-sign, fwrel-encrypt,
# fwrel-verify --info and fwrel-bundle; a corrupt one (bad checksum) is bad input (3) to the three
# that make something of it and the verdict (1) of the verifier; each command's refusal is exit 1;
# a malformed policy is "<prog>: FILE:LINE:COL: reason", exit 3, from every command that reads
# one; and the file named is the one the error is about (a keystore that does not open names the
# keystore, not the repository), never guessed from the message.
. "$FWREL_SRC/tests/lib.sh"
approvers_home
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >"$T/policy.yaml"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase ||
    { echo "FAIL: keygen"; exit 1; }
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/k.pem" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/k2.pem" >/dev/null
fwrel-testimg --chip esp32s3 --version 1.0.0 --secure-version 1 --project acme --size 65536 \
    -o "$T/app.bin" >/dev/null
fwrel-testimg --chip esp32c3 --version 1.0.0 --secure-version 1 --project acme --size 65536 \
    -o "$T/c3.bin" >/dev/null
# M: malformed (the magic byte); C: corrupt (the checksum byte, before the 32-byte hash).
cp "$T/app.bin" "$T/M.bin"
printf '\x00' | dd of="$T/M.bin" bs=1 seek=0 conv=notrunc status=none
cp "$T/app.bin" "$T/C.bin"
off=$(($(stat -c %s "$T/C.bin") - 33))
printf '\x55' | dd of="$T/C.bin" bs=1 seek="$off" conv=notrunc status=none
M="$T/M.bin" C="$T/C.bin"
magic='invalid magic byte 0x00 \(expected 0xe9\)'
sum='checksum mismatch \(stored 0x[0-9a-f]{2}, computed 0x[0-9a-f]{2}\)'

bundle() {
    fwrel-bundle -q --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$T/rel" --channel beta \
        --gnupg-home "$G" --no-passphrase --templates "$FWREL_SRC/templates" -A "$A1" "$@"
}
# each_maker N REASON-PATTERN IMAGE: fwrel-sign, fwrel-encrypt and fwrel-bundle exit N, name the
# image with the same reason, and write nothing.
each_maker() {
    local n=$1 why=$2 img=$3
    rm -f "$T/out.bin"
    expect_rc "$n" "fwrel-sign $img" fwrel-sign -k "$T/k.pem" -o "$T/out.bin" "$img"
    expect_err "^fwrel-sign: $img: $why$" "fwrel-sign $img"
    expect_absent "$T/out.bin" "fwrel-sign $img"
    expect_rc "$n" "fwrel-encrypt $img" fwrel-encrypt --key "$T/k.pub.pem" -o "$T/out.bin" "$img"
    expect_err "^fwrel-encrypt: $img: not a sound ESP app image \($why\); --raw to encrypt it anyway$" \
        "fwrel-encrypt $img"
    expect_absent "$T/out.bin" "fwrel-encrypt $img"
    expect_rc "$n" "fwrel-bundle $img" bundle -o "$T/out.bin" "$img"
    expect_err "^fwrel-bundle: $img: $why$" "fwrel-bundle $img"
    expect_absent "$T/out.bin" "fwrel-bundle $img"
}

# --- a malformed image: exit 3 from every command ---------------------------------------------
each_maker 3 "$magic" "$M"
expect_rc 3 "fwrel-verify --info malformed" fwrel-verify --info "$M"
expect_err "^fwrel-verify: $M: $magic$" "fwrel-verify --info malformed"
# --json: the same code, the file and what it is.
run fwrel-bundle --json --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$T/rel" \
    --channel beta --gnupg-home "$G" --no-passphrase --templates "$FWREL_SRC/templates" -A "$A1" "$M"
[ "$RC" -eq 3 ] && ok || fail "bundle --json malformed: exit $RC"
python3 -c '
import json, sys
e = json.loads(sys.argv[1])["error"]
assert (e["code"], e["name"], e["file"], e["about"]) == (3, "bad-input", sys.argv[2], "input"), e
' "$OUT" "$M" && ok || fail "bundle --json malformed: $OUT"

# --- a corrupt image: bad input to the makers, the verifier's refusal -------------------------
each_maker 3 "$sum" "$C"
expect_rc 1 "fwrel-verify --info corrupt" fwrel-verify --info "$C"
expect_err "^fwrel-verify: $C: $sum$" "fwrel-verify --info corrupt"

# --- a refusal: exit 1 from every command -----------------------------------------------------
expect_rc 1 "fwrel-bundle refuses an image for another chip" bundle "$T/c3.bin"
expect_err "^fwrel-bundle: the image is for esp32c3, the policy for esp32s3$" "bundle refusal"
fwrel-sign --digest-out "$T/d.bin" --pub-key "$T/k2.pub.pem" "$T/app.bin" >/dev/null
openssl pkeyutl -sign -inkey "$T/k2.pem" -in "$T/d.bin" -out "$T/d.sig" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
rm -f "$T/out.bin"
expect_rc 1 "fwrel-sign refuses a signature from another key" fwrel-sign --pub-key "$T/k.pub.pem" \
    --signature "$T/d.sig" -o "$T/out.bin" "$T/app.bin"
expect_err "^fwrel-sign: $T/app.bin: " "sign refusal"
expect_absent "$T/out.bin" "sign refusal"
fwrel-encrypt --key "$T/k.pub.pem" -o "$T/app.enc" "$T/app.bin" >/dev/null
expect_rc 1 "fwrel-encrypt refuses the wrong key" fwrel-encrypt --decrypt --key "$T/k2.pem" \
    -o "$T/out.bin" "$T/app.enc"
expect_err "^fwrel-encrypt: $T/app.enc: " "encrypt refusal"
expect_absent "$T/out.bin" "encrypt refusal"
fwrel-sign -k "$T/k.pem" -o "$T/signed.bin" "$T/app.bin" >/dev/null
digest=$(od -An -tx1 "$T/k2.digest.bin" | tr -d ' \n')
[ ${#digest} -eq 64 ] || { echo "FAIL: no key digest"; exit 1; }
cat >"$T/dev.yaml" <<YAML
chip: esp32s3
chip_revision: "0.2"
partition_size: 0x100000
secure_boot: {mode: v2, key_digests: [$digest]}
YAML
expect_rc 1 "fwrel-verify --device refuses an untrusted signer" fwrel-verify --device "$T/dev.yaml" \
    "$T/signed.bin"
expect_err "^fwrel-verify: $T/signed.bin: " "verify refusal"

# --- a malformed policy: "<prog>: FILE:LINE:COL: reason", exit 3, from each reader ------------
printf 'fwrel-policy: 1\nproduct: [\n' >"$T/bad.yaml"
pol='bad.yaml:3:1: did not find expected node content$'
expect_rc 3 "--check-policy" fwrel-bundle --check-policy "$T/bad.yaml"
expect_err "^fwrel-bundle: $T/$pol" "--check-policy"
expect_rc 3 "a release under a malformed policy" fwrel-bundle -q --policy "$T/bad.yaml" \
    --keystore "$T/ks" --repo "$T/rel" --channel beta --gnupg-home "$G" -A "$A1" "$T/app.bin"
expect_err "^fwrel-bundle: $T/$pol" "release policy"
expect_rc 3 "fwrel-keygen --policy" fwrel-keygen -q --policy "$T/bad.yaml" --keystore "$T/ks2" \
    --no-passphrase
expect_err "^fwrel-keygen: $T/$pol" "keygen policy"
expect_rc 3 "fwrel-verify --repo --policy" fwrel-verify --repo "$T/rel" --all --gnupg-home "$G" \
    --policy "$T/bad.yaml"
expect_err "^fwrel-verify: $T/$pol" "auditor policy"

# --- the file named is the one that failed: a keystore, not the repository --------------------
mkdir -m 755 "$T/notks"
expect_rc 4 "an open keystore" fwrel-verify --repo "$T/rel" --all --no-policy --gnupg-home "$G" \
    --keystore "$T/notks"
expect_err "^fwrel-verify: $T/notks: keystore is accessible by group or others \(mode 0755\)$" \
    "keystore named"
expect_rc 5 "a missing keystore" fwrel-verify --repo "$T/rel" --all --no-policy --gnupg-home "$G" \
    --keystore "$T/none"
expect_err "^fwrel-verify: $T/none: cannot open the keystore: No such file or directory$" \
    "missing keystore named"
expect_rc 3 "not a repository" fwrel-verify --repo "$T/notks" --all --no-policy --gnupg-home "$G"
expect_err "^fwrel-verify: $T/notks: not a bare git repository$" "repository named"
finish
