# Our signed images match the oracle's: SBv1 byte for byte (RFC 6979); SBv2 byte for byte
# outside the signature field and the CRC of each block (PSS salt and ECDSA k are random),
# and our signatures verify. Public keys and key digests match espsecure's byte for byte.
. "$FWREL_SRC/tests/lib.sh"
need_vectors
V=$FWREL_VECTORS

# sbv2_diff_ok OURS THEIRS: every differing byte lies in a block's signature field or CRC.
sbv2_diff_ok() {
    local size
    size=$(stat -c %s "$1")
    [ "$size" -eq "$(stat -c %s "$2")" ] || return 1
    cmp -l "$1" "$2" | awk -v sector=$((size - 4096)) -v f="$1" '
        BEGIN { bad = 0 }
        {
            off = $1 - 1 - sector
            if (off < 0 || off >= 3 * 1216) { bad = 1; next }
            b = int(off / 1216); o = off - b * 1216
            if (o >= 1196 && o < 1200) next                      # CRC
            # the block version byte tells RSA (2) from ECDSA (3); read it from the file, once
            # per block (not per differing byte: a signature differs in hundreds of bytes)
            if (!(b in vers)) {
                cmd = "od -An -tu1 -j " (sector + b * 1216 + 1) " -N1 " f
                cmd | getline v; close(cmd)
                cmd = "od -An -tu1 -j " (sector + b * 1216 + 36) " -N1 " f
                cmd | getline c; close(cmd)
                vers[b] = v + 0; curves[b] = c + 0
            }
            ver = vers[b]; curve = curves[b]
            if (ver == 2 && o >= 812 && o < 1196) next             # RSA signature
            if (ver == 3 && curve != 3 && o >= 101 && o < 165) next # ECDSA P-192/P-256 r||s
            if (ver == 3 && o >= 149 && o < 245) next               # ECDSA P-384 r||s
            bad = 1
        }
        END { exit bad }'
}

for v in "$V"/sbv1/*.bin; do
    [ -f "$v" ] || continue
    base=$(basename "$v" .sbv1-ecdsa256-a.bin)
    run fwrel-sign --sbv1 --ignore-chip -k "$V/keys/test-sbv1-ecdsa256-a.pem" -o "$T/$base.sbv1" \
        "$V/images/$base.bin"
    [ "$RC" -eq 0 ] || { fail "sbv1 sign $base: exit $RC: $ERR"; continue; }
    expect_same "$T/$base.sbv1" "$v" "sbv1 $base byte for byte"
done

for v in "$V"/sbv2/*.bin; do
    name=$(basename "$v" .bin)
    base=${name%%.sbv2-*}
    variant=${name#*.sbv2-}
    case "$variant" in
        rsa3072-a|ecdsa256-a|ecdsa384-a|ecdsa192-a)
            scheme=${variant%-a}
            run fwrel-sign --ignore-chip -k "$V/keys/test-sbv2-$scheme-a.pem" -o "$T/$name" \
                "$V/images/$base.bin"
            ;;
        rsa3072-abc)
            run fwrel-sign -k "$V/keys/test-sbv2-rsa3072-a.pem" -k "$V/keys/test-sbv2-rsa3072-b.pem" \
                -k "$V/keys/test-sbv2-rsa3072-c.pem" -o "$T/$name" "$V/images/$base.bin"
            ;;
        rsa3072-a+b-appended)
            run fwrel-sign -k "$V/keys/test-sbv2-rsa3072-a.pem" -o "$T/$name.a" "$V/images/$base.bin"
            [ "$RC" -eq 0 ] && run fwrel-sign --append -k "$V/keys/test-sbv2-rsa3072-b.pem" \
                -o "$T/$name" "$T/$name.a"
            ;;
        rsa3072-a+ecdsa256-a)
            run fwrel-sign --ignore-chip -k "$V/keys/test-sbv2-rsa3072-a.pem" \
                -k "$V/keys/test-sbv2-ecdsa256-a.pem" -o "$T/$name" "$V/images/$base.bin"
            ;;
        *)
            skip "$name: no fwrel equivalent ($variant)"
            continue
            ;;
    esac
    [ "$RC" -eq 0 ] || { fail "sbv2 sign $name: exit $RC: $ERR"; continue; }
    if sbv2_diff_ok "$T/$name" "$v"; then ok; else fail "$name differs outside signature/CRC"; fi
    first=$(echo "$variant" | sed -E 's/^(rsa3072|ecdsa256|ecdsa384|ecdsa192).*/\1/')
    expect_rc 0 "$name: our signature verifies" fwrel-verify --sbv2 \
        --key "$V/keys/test-sbv2-$first-a.pub.pem" "$T/$name"
done

# Public keys and eFuse digests of existing keys, as espsecure extract-public-key / digest-sbv2-public-key.
for k in "$V"/keys/test-sbv2-*.pem; do
    case "$k" in *.pub.pem) continue ;; esac
    n=$(basename "$k" .pem)
    expect_rc 0 "export $n" fwrel-keygen --export "$k" -o "$T/$n"
    expect_same "$T/$n.pub.pem" "$V/keys/$n.pub.pem" "$n public key"
    expect_same "$T/$n.digest.bin" "$V/keys/$n.pubkey-digest.bin" "$n key digest"
done
expect_rc 0 "export sbv1" fwrel-keygen --sbv1 --export "$V/keys/test-sbv1-ecdsa256-a.pem" -o "$T/sbv1"
expect_same "$T/sbv1.pub.raw" "$V/keys/test-sbv1-ecdsa256-a.pub.raw" "sbv1 raw public key"
finish
