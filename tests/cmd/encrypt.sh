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
finish
