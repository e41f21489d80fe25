# esp_encrypted_img: every encrypted vector (RSA-3072 and ECC-256, plain and signed-then-encrypted)
# decrypts to its source image; every tampered one is refused and leaves nothing.
. "$FWREL_SRC/tests/lib.sh"
need_vectors
V=$FWREL_VECTORS
n=0
for f in "$V"/enc/*.bin; do
    b=$(basename "$f" .bin)
    key="$V/keys/test-enc-rsa3072-priv.pem"
    case "$b" in *ecc256*) key="$V/keys/test-enc-ecc256-priv.pem" ;; esac
    src="$V/images/${b%.enc-*}.bin"
    [ -f "$src" ] || src="$V/sbv2/${b%.enc-*}.bin"
    expect_rc 0 "decrypt $b" fwrel-encrypt --decrypt --key "$key" -o "$T/$b.dec" "$f"
    expect_same "$T/$b.dec" "$src" "$b plaintext"
    n=$((n + 1))
done
[ "$n" -ge 6 ] && ok || fail "only $n encrypted vectors"
expect_rc 1 "wrong RSA key" fwrel-encrypt --decrypt --key "$V/keys/test-sbv2-rsa3072-a.pem" -o "$T/w.dec" \
    "$V/enc/esp32c3-idf5.3-hello_world-Jan13242342.enc-rsa3072.bin"
expect_absent "$T/w.dec" "wrong key"
for t in "$V"/tampered/*enc-rsa3072*; do
    b=$(basename "$t" .bin)
    run fwrel-encrypt --decrypt --key "$V/keys/test-enc-rsa3072-priv.pem" -o "$T/$b.dec" "$t"
    case "$RC" in 1 | 3) ok ;; *) fail "$b: exit $RC: $ERR" ;; esac
    expect_err "^fwrel-encrypt: .*$b.bin: " "$b"
    expect_absent "$T/$b.dec" "$b"
done
finish
