# fwrel-verify --info and compatibility mode: reports, verdicts, exit codes, one stderr line.
. "$FWREL_SRC/tests/lib.sh"

poke() {
    printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

fwrel-testimg --chip esp32c3 --version v2.4.1 --secure-version 3 --project blinky -o "$T/c3.bin" >/dev/null
fwrel-testimg --chip esp32 --no-app-desc -o "$T/legacy.bin" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/rsa.pem" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/other.pem" >/dev/null

expect_rc 0 "--info" fwrel-verify --info "$T/c3.bin"
for want in "Detected image type: ESP32-C3" "Project name: blinky" "App version: v2.4.1" \
    "Secure version: 3" "ESP-IDF: " "Checksum: 0x.. \(valid\)" "Validation hash: [0-9a-f]{64} \(valid\)" \
    "Signature: none"; do
    echo "$OUT" | grep -Eq "^$want" && ok || fail "--info lacks '$want'"
done
expect_rc 0 "--info --json" fwrel-verify --info --json "$T/c3.bin"
echo "$OUT" | grep -q '"secure_version": 3' && echo "$OUT" | grep -q '"project_name": "blinky"' && ok ||
    fail "--info --json: $OUT"
expect_rc 0 "--info on an image without app descriptor" fwrel-verify --info "$T/legacy.bin"
echo "$OUT" | grep -q "No application descriptor" && ok || fail "legacy image: $OUT"

cp "$T/c3.bin" "$T/badsum.bin"
off=$(($(stat -c %s "$T/badsum.bin") - 33)) # the checksum byte, before the 32-byte hash
old=$(od -An -tu1 -j "$off" -N1 "$T/c3.bin" | tr -d ' ')
poke "$T/badsum.bin" "$off" "$(printf '%02x' $((old ^ 1)))"
expect_rc 1 "--info on a bad checksum" fwrel-verify --info "$T/badsum.bin"
expect_err "^fwrel-verify: .*badsum.bin: .*checksum" "bad checksum"
echo "$OUT" | grep -q "(invalid)" && ok || fail "--info does not say invalid: $OUT"

fwrel-sign -k "$T/rsa.pem" -o "$T/signed.bin" "$T/c3.bin" >/dev/null
expect_rc 0 "--info on a signed image" fwrel-verify --info "$T/signed.bin"
echo "$OUT" | grep -q "Signature block 0: RSA-3072, public key digest $(xxd -p -c 64 "$T/rsa.digest.bin")" &&
    ok || fail "--info does not show the block key digest: $OUT"

expect_rc 0 "compat: right key" fwrel-verify --sbv2 --key "$T/rsa.pub.pem" "$T/signed.bin"
expect_rc 0 "compat: private key" fwrel-verify --sbv2 --key "$T/rsa.pem" "$T/signed.bin"
expect_rc 1 "compat: other key" fwrel-verify --sbv2 --key "$T/other.pub.pem" "$T/signed.bin"
expect_err "^fwrel-verify: .*signed.bin: " "compat: other key"
expect_rc 0 "compat --json" fwrel-verify --json --sbv2 --key "$T/rsa.pub.pem" "$T/signed.bin"
echo "$OUT" | grep -q '"valid": true' && ok || fail "compat --json: $OUT"

head -c 4095 "$T/signed.bin" >"$T/short.bin"
expect_rc 1 "compat: not a multiple of 4096" fwrel-verify --sbv2 --key "$T/rsa.pub.pem" "$T/short.bin"
expect_rc 3 "a malformed key file" fwrel-verify --sbv2 --key "$T/c3.bin" "$T/signed.bin"
expect_err "^fwrel-verify: .*c3.bin: " "malformed key"
expect_rc 2 "two modes" fwrel-verify --info --sbv2 --key "$T/rsa.pem" "$T/signed.bin"
expect_rc 2 "no mode" fwrel-verify "$T/signed.bin"
expect_rc 2 "--key without a scheme" fwrel-verify --key "$T/rsa.pem" "$T/signed.bin"
mkfifo "$T/fifo"
expect_rc 3 "a FIFO" fwrel-verify --info "$T/fifo"
expect_err "^fwrel-verify: .*fifo: not a regular file" "a FIFO"
expect_rc 3 "/dev/zero" fwrel-verify --info /dev/zero
finish
