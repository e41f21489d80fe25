# The secure-fota compatibility manifest: 1024 bytes that plain openssl decrypts and verifies with
# the commands docs/manifest.md gives, holding exactly the image's esp_app_desc_t.
. "$FWREL_SRC/tests/lib.sh"
cd "$T"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out sign.pem 2>/dev/null
openssl pkey -in sign.pem -pubout -out sign.pub 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out dev.pem 2>/dev/null
openssl pkey -in dev.pem -pubout -out dev.pub 2>/dev/null
fwrel-testimg --chip esp32 --version 3.1.4 --secure-version 2 -o app.bin >/dev/null
fwrel-testimg --chip esp32 --no-app-desc -o legacy.bin >/dev/null

expect_rc 0 "make" fwrel-encrypt --secure-fota --sign-key sign.pem --recipient dev.pub -o app.manifest app.bin
[ "$(stat -c %s app.manifest)" -eq 1024 ] && ok || fail "not 1024 bytes"
# docs/manifest.md section 5, verbatim:
head -c 512 app.manifest | openssl pkeyutl -decrypt -inkey dev.pem -pkeyopt rsa_padding_mode:pkcs1 -out desc.bin
tail -c 512 app.manifest | openssl pkeyutl -decrypt -inkey dev.pem -pkeyopt rsa_padding_mode:pkcs1 -out sig.bin
run openssl dgst -sha256 -verify sign.pub -signature sig.bin desc.bin
[ "$RC" -eq 0 ] && echo "$OUT" | grep -q "Verified OK" && ok || fail "openssl does not verify: $OUT $ERR"
cmp -s desc.bin <(tail -c +33 app.bin | head -c 256) && ok || fail "the descriptor is not the image's"
# Altered: openssl refuses it.
cp app.manifest bad.manifest
printf '\x00' | dd of=bad.manifest bs=1 seek=700 conv=notrunc status=none
tail -c 512 bad.manifest | openssl pkeyutl -decrypt -inkey dev.pem -pkeyopt rsa_padding_mode:pkcs1 -out sig2.bin 2>/dev/null &&
    openssl dgst -sha256 -verify sign.pub -signature sig2.bin desc.bin >/dev/null 2>&1 && fail "altered manifest verifies" || ok

expect_rc 3 "no app descriptor" fwrel-encrypt --secure-fota --sign-key sign.pem --recipient dev.pub -o l.manifest legacy.bin
expect_err "^fwrel-encrypt: .*legacy.bin: no app descriptor" "no app descriptor"
expect_rc 4 "a 3072-bit recipient" fwrel-encrypt --secure-fota --sign-key sign.pem --recipient sign.pub -o x.manifest app.bin
expect_absent x.manifest "wrong key sizes"
expect_rc 2 "two signers" fwrel-encrypt --secure-fota --sign-key sign.pem --sign-key sign.pem --recipient dev.pub \
    -o x.manifest app.bin
finish
