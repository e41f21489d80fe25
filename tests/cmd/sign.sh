# fwrel-sign: signs what it should, refuses what it should, with one stderr line,
# its exit code, and no output left behind.
. "$FWREL_SRC/tests/lib.sh"

# poke FILE OFFSET HEXBYTES: overwrite bytes in place.
poke() {
    printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

fwrel-testimg --chip esp32s3 --version 1.2.3 --secure-version 2 -o "$T/s3.bin" >/dev/null
fwrel-testimg --chip esp32 --version 1.0.0 -o "$T/e.bin" >/dev/null
fwrel-testimg --chip esp32c2 --version 1.0.0 -o "$T/c2.bin" >/dev/null
printf 'correct horse battery staple\n' >"$T/pass"
chmod 600 "$T/pass"
fwrel-keygen --scheme rsa3072 --passphrase-file "$T/pass" -o "$T/rsa.pem" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/rsa2.pem" >/dev/null
fwrel-keygen --scheme ecdsa256 --no-passphrase -o "$T/ec.pem" >/dev/null
fwrel-keygen --scheme ecdsa256 --sbv1 --no-passphrase -o "$T/v1.pem" >/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa2048.pem" 2>/dev/null

# Good paths.
expect_rc 0 "sign sbv2 with an encrypted key" fwrel-sign -k "$T/rsa.pem" --passphrase-file "$T/pass" \
    -o "$T/ok.bin" "$T/s3.bin"
size=$(stat -c %s "$T/ok.bin")
[ $((size % 4096)) -eq 0 ] && ok || fail "signed size $size is not a multiple of 4096"
expect_rc 0 "our signature verifies" fwrel-verify --sbv2 --key "$T/rsa.pub.pem" "$T/ok.bin"
expect_rc 0 "append a second block" fwrel-sign --append -k "$T/rsa2.pem" -o "$T/ok2.bin" "$T/ok.bin"
expect_rc 0 "block 0 still verifies" fwrel-verify --sbv2 --key "$T/rsa.pub.pem" "$T/ok2.bin"
expect_rc 0 "block 1 verifies" fwrel-verify --sbv2 --key "$T/rsa2.pub.pem" "$T/ok2.bin"
expect_rc 0 "passphrase from a file descriptor" fwrel-sign -k "$T/rsa.pem" --passphrase-fd 3 \
    -o "$T/fd.bin" "$T/s3.bin" 3<"$T/pass"
expect_rc 0 "sbv1 on ESP32" fwrel-sign --sbv1 -k "$T/v1.pem" -o "$T/v1.bin" "$T/e.bin"
expect_rc 0 "sbv1 signature verifies with the raw key" fwrel-verify --sbv1 --key "$T/v1.pub.raw" "$T/v1.bin"
expect_rc 0 "sbv1 is deterministic" fwrel-sign --sbv1 -k "$T/v1.pem" -o "$T/v1b.bin" "$T/e.bin"
expect_same "$T/v1.bin" "$T/v1b.bin" "sbv1 signing twice"
run fwrel-sign --json -k "$T/rsa2.pem" -o "$T/j.bin" "$T/s3.bin"
echo "$OUT" | grep -q '"ok": true' && echo "$OUT" | grep -q '"sbv2_key_digest"' && ok ||
    fail "--json result: $OUT"

# External signing: digest out, sign with openssl, attach.
expect_rc 0 "digest-out" fwrel-sign --digest-out "$T/d.bin" --pub-key "$T/rsa2.pub.pem" "$T/s3.bin"
[ "$(stat -c %s "$T/d.bin")" -eq 32 ] && ok || fail "digest is not 32 bytes"
openssl pkeyutl -sign -inkey "$T/rsa2.pem" -in "$T/d.bin" -out "$T/d.sig" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
expect_rc 0 "attach an external signature" fwrel-sign --pub-key "$T/rsa2.pub.pem" \
    --signature "$T/d.sig" -o "$T/ext.bin" "$T/s3.bin"
expect_rc 0 "external signature verifies" fwrel-verify --sbv2 --key "$T/rsa2.pub.pem" "$T/ext.bin"
expect_rc 1 "a signature from another key is refused" fwrel-sign --pub-key "$T/rsa.pub.pem" \
    --signature "$T/d.sig" -o "$T/ext2.bin" "$T/s3.bin"
expect_err "^fwrel-sign: .*s3.bin: " "foreign signature: one line"
expect_absent "$T/ext2.bin" "foreign signature"

# Bad inputs: exit code, one line naming the file, nothing written.
bad() { # bad CODE DESC FILE-PATTERN IMAGE [extra args]
    local code=$1 desc=$2 pat=$3 img=$4
    shift 4
    rm -f "$T/out.bin"
    expect_rc "$code" "$desc" fwrel-sign -k "$T/rsa2.pem" "$@" -o "$T/out.bin" "$img"
    expect_err "^fwrel-sign: $pat: " "$desc"
    expect_absent "$T/out.bin" "$desc"
}
head -c 100 "$T/s3.bin" >"$T/trunc.bin"
bad 3 "truncated image" ".*trunc.bin" "$T/trunc.bin"
cp "$T/s3.bin" "$T/seg17.bin"; poke "$T/seg17.bin" 1 11
bad 3 "17 segments" ".*seg17.bin" "$T/seg17.bin"
cp "$T/s3.bin" "$T/seg0.bin"; poke "$T/seg0.bin" 1 00
bad 3 "0 segments" ".*seg0.bin" "$T/seg0.bin"
cp "$T/s3.bin" "$T/len3.bin"; poke "$T/len3.bin" 28 03000000
bad 3 "segment length not a multiple of 4" ".*len3.bin" "$T/len3.bin"
cp "$T/s3.bin" "$T/lenbig.bin"; poke "$T/lenbig.bin" 28 fcffffff
bad 3 "segment length that overflows" ".*lenbig.bin" "$T/lenbig.bin"
cp "$T/s3.bin" "$T/magic.bin"; poke "$T/magic.bin" 0 e8
bad 3 "bad magic" ".*magic.bin" "$T/magic.bin"
cp "$T/s3.bin" "$T/trail.bin"; printf 'xyz!' >>"$T/trail.bin"
bad 3 "trailing bytes" ".*trail.bin" "$T/trail.bin"
mkfifo "$T/fifo"
bad 3 "a FIFO as input" ".*fifo" "$T/fifo"
bad 3 "/dev/zero as input" "/dev/zero" /dev/zero
bad 5 "a missing input" ".*missing.bin" "$T/missing.bin"
bad 4 "RSA-2048 key" ".*" "$T/s3.bin" -k "$T/rsa2048.pem"

rm -f "$T/out.bin"
expect_rc 5 "a missing passphrase file" fwrel-sign -k "$T/rsa.pem" --passphrase-file "$T/nopass" \
    -o "$T/out.bin" "$T/s3.bin"
expect_absent "$T/out.bin" "a missing passphrase file"
printf 'wrong\n' >"$T/wrong"; chmod 600 "$T/wrong"
expect_rc 4 "wrong passphrase" fwrel-sign -k "$T/rsa.pem" --passphrase-file "$T/wrong" -o "$T/out.bin" "$T/s3.bin"
expect_err "^fwrel-sign: .*rsa.pem: .*passphrase" "wrong passphrase"
expect_absent "$T/out.bin" "wrong passphrase"
expect_rc 4 "missing passphrase (no terminal)" fwrel-sign -k "$T/rsa.pem" -o "$T/out.bin" "$T/s3.bin" </dev/null
expect_absent "$T/out.bin" "missing passphrase"

expect_rc 4 "ECDSA on ESP32" fwrel-sign -k "$T/ec.pem" -o "$T/out.bin" "$T/e.bin"
expect_err "^fwrel-sign: .*e.bin: " "ECDSA on ESP32"
expect_absent "$T/out.bin" "ECDSA on ESP32"
expect_rc 4 "RSA on ESP32-C2" fwrel-sign -k "$T/rsa2.pem" -o "$T/out.bin" "$T/c2.bin"
expect_absent "$T/out.bin" "RSA on ESP32-C2"
expect_rc 4 "two blocks on ESP32" fwrel-sign -k "$T/rsa2.pem" -k "$T/rsa2.pem" -o "$T/out.bin" "$T/e.bin"
expect_absent "$T/out.bin" "two blocks on ESP32"
expect_rc 4 "SBv1 on ESP32-S3" fwrel-sign --sbv1 -k "$T/v1.pem" -o "$T/out.bin" "$T/s3.bin"
expect_absent "$T/out.bin" "SBv1 on ESP32-S3"

cp "$T/ok.bin" "$T/exists.bin"
expect_rc 5 "output exists" fwrel-sign -k "$T/rsa2.pem" -o "$T/exists.bin" "$T/s3.bin"
expect_err "^fwrel-sign: .*exists.bin: exists" "output exists"
expect_same "$T/exists.bin" "$T/ok.bin" "existing output untouched"
expect_rc 0 "--force replaces" fwrel-sign -k "$T/rsa2.pem" --force -o "$T/exists.bin" "$T/s3.bin"

expect_rc 2 "no key" fwrel-sign -o "$T/out.bin" "$T/s3.bin"
expect_rc 2 "four keys" fwrel-sign -k a -k b -k c -k d -o "$T/out.bin" "$T/s3.bin"
expect_rc 2 "duplicate option" fwrel-sign -o "$T/out.bin" -o "$T/out2.bin" -k "$T/rsa2.pem" "$T/s3.bin"
expect_err "^fwrel-sign: option --output given more than once" "duplicate option"
expect_rc 2 "a passphrase on argv is not an option" fwrel-sign --passphrase secret -k "$T/rsa.pem" \
    -o "$T/out.bin" "$T/s3.bin"
expect_absent "$T/out.bin" "usage errors"

# Four blocks in all are refused.
expect_rc 0 "three blocks" fwrel-sign -k "$T/rsa2.pem" -k "$T/rsa2.pem" -k "$T/rsa2.pem" -o "$T/abc.bin" "$T/s3.bin"
expect_rc 2 "a fourth block" fwrel-sign --append -k "$T/rsa2.pem" -o "$T/out.bin" "$T/abc.bin"
expect_absent "$T/out.bin" "a fourth block"
finish
