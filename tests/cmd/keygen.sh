# fwrel-keygen: every scheme; keys 0600 and encrypted; outputs together or not at all;
# passphrase sources; refusals with one stderr line and nothing written.
. "$FWREL_SRC/tests/lib.sh"
printf 'a long and secret passphrase\n' >"$T/pass"
chmod 600 "$T/pass"

for s in rsa3072 ecdsa192 ecdsa256 ecdsa384; do
    expect_rc 0 "keygen $s" fwrel-keygen --scheme "$s" --passphrase-file "$T/pass" -o "$T/$s.pem"
    [ "$(stat -c %a "$T/$s.pem")" = 600 ] && ok || fail "$s.pem mode $(stat -c %a "$T/$s.pem")"
    grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$T/$s.pem" && ok || fail "$s.pem is not encrypted"
    openssl pkey -in "$T/$s.pem" -passin "file:$T/pass" -noout 2>/dev/null && ok ||
        fail "openssl cannot decrypt $s.pem with the passphrase"
    openssl pkey -in "$T/$s.pem" -passin pass:wrong -noout 2>/dev/null && fail "$s.pem opens with a wrong passphrase" || ok
    [ "$(stat -c %s "$T/$s.digest.bin")" -eq 32 ] && ok || fail "$s digest is not 32 bytes"
    cmp -s <(openssl pkey -in "$T/$s.pem" -passin "file:$T/pass" -pubout) "$T/$s.pub.pem" && ok ||
        fail "$s.pub.pem is not the key's public key"
    # The digest re-derives from the public key alone.
    expect_rc 0 "export $s" fwrel-keygen --export "$T/$s.pem" --passphrase-file "$T/pass" -o "$T/re-$s"
    expect_same "$T/re-$s.digest.bin" "$T/$s.digest.bin" "$s digest re-derived"
done
expect_rc 0 "sbv1 key" fwrel-keygen --scheme ecdsa256 --sbv1 --no-passphrase -o "$T/v1.pem"
[ "$(stat -c %s "$T/v1.pub.raw")" -eq 64 ] && ok || fail "v1.pub.raw is not 64 bytes"
grep -q "BEGIN PRIVATE KEY" "$T/v1.pem" && ok || fail "--no-passphrase key is not plain PKCS#8"
[ "$(stat -c %a "$T/v1.pem")" = 600 ] && ok || fail "unencrypted key mode"
expect_rc 0 "passphrase from a descriptor" fwrel-keygen --scheme ecdsa256 --passphrase-fd 4 -o "$T/fd.pem" 4<"$T/pass"
openssl pkey -in "$T/fd.pem" -passin "file:$T/pass" -noout 2>/dev/null && ok || fail "fd key"
expect_rc 0 "--json" fwrel-keygen --json --scheme rsa3072 --no-passphrase -o "$T/j.pem"
echo "$OUT" | grep -q '"key_id": "[0-9a-f]\{64\}"' && echo "$OUT" | grep -q '"encrypted": false' && ok ||
    fail "--json: $OUT"

# Refusals.
cp "$T/rsa3072.pem" "$T/keep.pem"
expect_rc 5 "existing key" fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/rsa3072.pem"
expect_err "^fwrel-keygen: .*rsa3072.pem: exists \(use --force to replace\)$" "existing key"
expect_same "$T/rsa3072.pem" "$T/keep.pem" "existing key untouched"
touch "$T/half.digest.bin"
expect_rc 5 "one existing sibling" fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/half.pem"
expect_absent "$T/half.pem" "one existing sibling"
expect_absent "$T/half.pub.pem" "one existing sibling"
expect_rc 0 "--force replaces" fwrel-keygen --scheme rsa3072 --no-passphrase --force -o "$T/half.pem"
printf 'x\n' >"$T/open"
chmod 644 "$T/open"
expect_rc 4 "passphrase file readable by others" fwrel-keygen --scheme rsa3072 --passphrase-file "$T/open" -o "$T/o.pem"
expect_err "^fwrel-keygen: .*open: .*group or others" "passphrase file readable by others"
expect_absent "$T/o.pem" "passphrase file readable by others"
: >"$T/empty"
chmod 600 "$T/empty"
expect_rc 4 "empty passphrase" fwrel-keygen --scheme rsa3072 --passphrase-file "$T/empty" -o "$T/o.pem"
expect_absent "$T/o.pem" "empty passphrase"
expect_rc 4 "no terminal, no passphrase source" fwrel-keygen --scheme rsa3072 -o "$T/o.pem" </dev/null
expect_absent "$T/o.pem" "no terminal"
expect_rc 2 "no output" fwrel-keygen --scheme rsa3072 --no-passphrase
expect_rc 2 "unknown scheme" fwrel-keygen --scheme rsa2048 --no-passphrase -o "$T/o.pem"
expect_rc 2 "--sbv1 with RSA" fwrel-keygen --scheme rsa3072 --sbv1 --no-passphrase -o "$T/o.pem"
expect_rc 2 "a passphrase on argv" fwrel-keygen --scheme rsa3072 --passphrase hunter2 -o "$T/o.pem"
expect_rc 2 "two sources" fwrel-keygen --scheme rsa3072 --no-passphrase --passphrase-file "$T/pass" -o "$T/o.pem"
expect_absent "$T/o.pem" "usage errors"
expect_rc 4 "export with a wrong passphrase" fwrel-keygen --export "$T/rsa3072.pem" --passphrase-file "$T/empty" -o "$T/x"
printf 'nope\n' >"$T/wrong"
chmod 600 "$T/wrong"
expect_rc 4 "export with a wrong passphrase" fwrel-keygen --export "$T/rsa3072.pem" --passphrase-file "$T/wrong" -o "$T/x"
expect_err "^fwrel-keygen: .*rsa3072.pem: wrong passphrase" "wrong passphrase"
expect_absent "$T/x.pub.pem" "wrong passphrase"
expect_rc 3 "export of a non-key" fwrel-keygen --export "$T/pass" -o "$T/x"
finish
