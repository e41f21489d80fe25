# fwrel-encrypt: round trips for both schemes and many sizes; every bad input refused with one
# line, its exit code, and no output (no plaintext ever published before the tag checks).
. "$FWREL_SRC/tests/lib.sh"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$T/rsa.pem" 2>/dev/null
openssl pkey -in "$T/rsa.pem" -pubout -out "$T/rsa.pub" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem" 2>/dev/null
openssl pkey -in "$T/ec.pem" -pubout -out "$T/ec.pub" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa2048.pem" 2>/dev/null
fwrel-testimg --chip esp32s3 --size 70000 -o "$T/app.bin" >/dev/null

for k in rsa ec; do
    expect_rc 0 "encrypt $k" fwrel-encrypt --key "$T/$k.pub" -o "$T/app.$k.enc" "$T/app.bin"
    [ "$(stat -c %s "$T/app.$k.enc")" -eq $(($(stat -c %s "$T/app.bin") + 512)) ] && ok || fail "$k size"
    expect_rc 0 "decrypt $k" fwrel-encrypt --decrypt --key "$T/$k.pem" -o "$T/app.$k.dec" "$T/app.$k.enc"
    expect_same "$T/app.$k.dec" "$T/app.bin" "$k round trip"
done
expect_rc 0 "encrypt again" fwrel-encrypt --key "$T/rsa.pub" -o "$T/again.enc" "$T/app.bin"
cmp -s "$T/app.rsa.enc" "$T/again.enc" && fail "two encryptions gave the same bytes" || ok
for size in 0 1 15 16 65537 1048579; do
    head -c "$size" /dev/urandom >"$T/raw$size"
    expect_rc 0 "raw $size" fwrel-encrypt --raw --key "$T/ec.pub" -o "$T/raw$size.enc" "$T/raw$size"
    expect_rc 0 "raw $size back" fwrel-encrypt -d --key "$T/ec.pem" -o "$T/raw$size.dec" "$T/raw$size.enc"
    expect_same "$T/raw$size.dec" "$T/raw$size" "raw $size round trip"
done

# poke FILE OFFSET HEX
poke() { printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
flip() { # flip NAME OFFSET: a copy of the RSA image with one byte flipped
    cp "$T/app.rsa.enc" "$T/$1.enc"
    local old
    old=$(od -An -tu1 -j "$2" -N1 "$T/$1.enc" | tr -d ' ')
    poke "$T/$1.enc" "$2" "$(printf '%02x' $((old ^ 1)))"
}
bad() { # bad CODE NAME
    expect_rc "$1" "$2" fwrel-encrypt -d --key "$T/rsa.pem" -o "$T/$2.dec" "$T/$2.enc"
    expect_err "^fwrel-encrypt: .*$2.enc: " "$2"
    expect_absent "$T/$2.dec" "$2"
}
flip magic 0 && bad 3 magic
flip wrapped 100 && bad 1 wrapped
flip iv 390 && bad 1 iv
flip tag 410 && bad 1 tag
flip cipher 5000 && bad 1 cipher
cp "$T/app.rsa.enc" "$T/huge.enc"; poke "$T/huge.enc" 404 ffffffff
bad 3 huge
head -c -1 "$T/app.rsa.enc" >"$T/short.enc" && bad 3 short
cp "$T/app.rsa.enc" "$T/long.enc"; printf 'x' >>"$T/long.enc" && bad 3 long
head -c 100 "$T/app.rsa.enc" >"$T/stub.enc" && bad 3 stub
expect_rc 1 "wrong key" fwrel-encrypt -d --key "$T/ec.pem" -o "$T/wk.dec" "$T/app.rsa.enc"
expect_absent "$T/wk.dec" "wrong key"
expect_rc 4 "RSA-2048" fwrel-encrypt --key "$T/rsa2048.pem" -o "$T/x.enc" "$T/app.bin"
expect_absent "$T/x.enc" "RSA-2048"
expect_rc 3 "not an image" fwrel-encrypt --key "$T/rsa.pub" -o "$T/x.enc" "$T/raw65537"
expect_err "^fwrel-encrypt: .*raw65537: not a sound ESP app image \\(invalid magic byte 0x[0-9a-f]{2} \\(expected 0xe9\\)\\); --raw to encrypt it anyway$" "not an image"
expect_absent "$T/x.enc" "not an image"
expect_rc 5 "existing output" fwrel-encrypt --key "$T/rsa.pub" -o "$T/app.rsa.enc" "$T/app.bin"
expect_rc 2 "no key" fwrel-encrypt -o "$T/x.enc" "$T/app.bin"
expect_rc 2 "--raw with --decrypt" fwrel-encrypt -d --raw --key "$T/rsa.pem" -o "$T/x" "$T/app.rsa.enc"
# A 16-byte RSA-wrapped key (esp_enc_img_gen.py wraps 32): esp_encrypted_img decrypts it with the
# key zero-extended to 32 bytes; so does --decrypt, with one warning line on stderr and in --json.
if python3 -c 'import cryptography' 2>/dev/null; then
    python3 - "$T/rsa.pub" "$T/app.bin" "$T/short.k16.enc" <<'PY'
import os, struct, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
pub = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
pt = open(sys.argv[2], "rb").read()
k16, iv = os.urandom(16), os.urandom(16)
wrapped = pub.encrypt(k16, padding.PKCS1v15())
ct = AESGCM(k16 + bytes(16)).encrypt(iv, pt, None)
hdr = struct.pack("<I", 0x0788B6CF) + wrapped + iv + struct.pack("<I", len(pt)) + ct[-16:] + bytes(88)
open(sys.argv[3], "wb").write(hdr + ct[:-16])
PY
    expect_rc 0 "16-byte wrapped key" fwrel-encrypt -d --key "$T/rsa.pem" -o "$T/k16.dec" "$T/short.k16.enc"
    expect_err "^fwrel-encrypt: .*short.k16.enc: warning: the RSA-wrapped image key is 16 bytes, not 32: zero-extended to 32, as the device does$" "16-byte key warning"
    expect_same "$T/k16.dec" "$T/app.bin" "16-byte key plaintext"
    expect_rc 0 "16-byte wrapped key --json" fwrel-encrypt --json -d --key "$T/rsa.pem" -o "$T/k16j.dec" "$T/short.k16.enc"
    echo "$OUT" | tr -d '\n' | grep -Eq '"warnings": *\[ *"the RSA-wrapped image key is 16 bytes' &&
        ok || fail "--json warnings: $OUT"
    expect_rc 0 "32-byte key: no warning" fwrel-encrypt -d --key "$T/rsa.pem" -o "$T/app.rsa.dec2" "$T/app.rsa.enc"
    [ -z "$ERR" ] && ok || fail "32-byte key warned: $ERR"
else
    skip "python3 cryptography is not installed: no 16-byte key image"
fi
finish
