# fwrel-verify --device: verdicts, --json steps, profile errors with line:column, exit codes.
. "$FWREL_SRC/tests/lib.sh"
fwrel-testimg --chip esp32c3 --version 2.0.0 --secure-version 2 -o "$T/app.bin" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/k.pem" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/other.pem" >/dev/null
fwrel-sign -k "$T/k.pem" -o "$T/signed.bin" "$T/app.bin" >/dev/null
digest=$(od -An -tx1 "$T/k.digest.bin" | tr -d ' \n')
profile() { # profile FILE EFUSE_SV RUNNING_VERSION PARTITION
    cat >"$1" <<YAML
chip: esp32c3
chip_revision: "0.4"
partition_size: $4
secure_boot: {mode: v2, key_digests: [$digest]}
anti_rollback: {secure_version: $2}
running: {version: "$3"}
YAML
}
profile "$T/ok.yaml" 2 1.0.0 0x100000
expect_rc 0 "accepted" fwrel-verify --device "$T/ok.yaml" "$T/signed.bin"
expect_rc 0 "--json" fwrel-verify --json --device "$T/ok.yaml" "$T/signed.bin"
echo "$OUT" | grep -q '"accepted": true' && echo "$OUT" | grep -q '"failed_step": null' &&
    echo "$OUT" | grep -q '"step": "sbv2.accept"' && ok || fail "--json accepted: $OUT"

profile "$T/rollback.yaml" 3 1.0.0 0x100000
expect_rc 1 "rollback" fwrel-verify --device "$T/rollback.yaml" "$T/signed.bin"
expect_err "^fwrel-verify: .*signed.bin: rejected at anti-rollback: " "rollback"
run fwrel-verify --json --device "$T/rollback.yaml" "$T/signed.bin"
[ "$RC" -eq 1 ] && echo "$OUT" | grep -q '"failed_step": "anti-rollback"' && ok || fail "--json rollback: $OUT"
profile "$T/same.yaml" 2 2.0.0 0x100000
expect_rc 1 "same version as running" fwrel-verify --device "$T/same.yaml" "$T/signed.bin"
expect_err "rejected at ota.version" "same version"
profile "$T/small.yaml" 2 1.0.0 0x2000
expect_rc 1 "does not fit" fwrel-verify --device "$T/small.yaml" "$T/signed.bin"
expect_err "rejected at partition.fit: Image length [0-9]+ doesn't fit" "does not fit"
fwrel-sign -k "$T/other.pem" -o "$T/other.bin" "$T/app.bin" >/dev/null
expect_rc 1 "signed by an untrusted key" fwrel-verify --device "$T/ok.yaml" "$T/other.bin"
expect_err "rejected at sbv2.accept: .*not in eFuse" "untrusted key"
expect_rc 1 "unsigned" fwrel-verify --device "$T/ok.yaml" "$T/app.bin"

printf 'chip: esp32c3\npartition_size: 0x100000\nsecure_boot: {mode: v2, key_digests: [abc]}\n' >"$T/bad.yaml"
expect_rc 3 "bad hex in the profile" fwrel-verify --device "$T/bad.yaml" "$T/signed.bin"
expect_err "^fwrel-verify: .*bad.yaml:3:[0-9]+: key digest must be 32 bytes of hex$" "bad hex"
printf 'chip: esp32c3\npartition_size: 0x100000\nchip: esp32\n' >"$T/dup.yaml"
expect_rc 3 "duplicate key" fwrel-verify --device "$T/dup.yaml" "$T/signed.bin"
expect_err "dup.yaml:3:1: duplicate key 'chip'" "duplicate key"
printf 'base: &b {chip: esp32}\nchip: *b\n' >"$T/alias.yaml"
expect_rc 3 "alias" fwrel-verify --device "$T/alias.yaml" "$T/signed.bin"
expect_rc 5 "a missing profile" fwrel-verify --device "$T/none.yaml" "$T/signed.bin"
finish
