# fwrel-bundle --check-policy: every example policy passes; malformed variants exit 3 with
# exactly one line "FILE:LINE:COL: reason", within a second and 64 MiB.
. "$FWREL_SRC/tests/lib.sh"
P="$FWREL_SRC/policies"
for f in "$P"/*.yaml; do
    expect_rc 0 "$(basename "$f") passes" fwrel-bundle --check-policy "$f"
    echo "$OUT" | grep -q "valid (sha256 $(sha256sum "$f" | cut -c1-64))" && ok ||
        fail "$(basename "$f"): no valid line with the file's hash: $OUT"
done
run fwrel-bundle --json --check-policy "$P/esp32s3-sbv2-rsa-prod.yaml"
[ "$RC" -eq 0 ] && echo "$OUT" | grep -q '"manifest_threshold": 2' &&
    echo "$OUT" | grep -q '"scheme": "sbv2-rsa3072"' &&
    echo "$OUT" | grep -q '"max_image_size": 1961984' && ok || fail "--json: $OUT"

base="$P/esp32s3-sbv2-rsa-prod.yaml"
# variant NAME SED-EXPRESSION: a copy of the S3 policy with one change.
variant() { sed "$2" "$base" >"$T/$1.yaml"; }
# bad NAME TEXT PATTERN: exit 3 and one stderr line "FILE:LINE:COL: reason" matching PATTERN, LINE
# being the line of the variant where TEXT first appears; under a second and 64 MiB.
bad() {
    local f="$T/$1.yaml" line
    line=$(grep -n -F -m1 -- "$2" "$f" | cut -d: -f1)
    run /usr/bin/time -f "%e %M" -o "$T/time" fwrel-bundle --check-policy "$f"
    [ "$RC" -eq 3 ] && ok || fail "$1: exit $RC, expected 3: $ERR"
    expect_err "^fwrel-bundle: $f:$line:[0-9]+: $3" "$1"
    read -r secs kib < <(tail -n1 "$T/time")
    awk -v s="$secs" -v k="$kib" 'BEGIN { exit !(s < 1.0 && k < 65536) }' && ok ||
        fail "$1: took $secs s and $kib KiB"
}
variant unknown-key 's/^product: acme-thermostat/product: acme-thermostat\nproduct_name: x/'
bad unknown-key 'product_name:' "unknown key 'product_name'"
variant duplicate-key 's/^chip: esp32s3/chip: esp32s3\nchip: esp32c3/'
bad duplicate-key 'chip: esp32c3' "duplicate key 'chip'"
variant string-number 's/^partition_size: 0x1e0000.*/partition_size: big/'
bad string-number 'big' "partition_size"
variant out-of-range 's/  efuse_bits: 16 .*/  efuse_bits: 17/'
bad out-of-range 'efuse_bits: 17' "efuse_bits"
variant bad-hex 's/    - 0123456789ABCDEF0123456789ABCDEF01234567/    - 0123456789ABCDEF0123456789ABCDEF0123456Z/'
bad bad-hex '6Z' "fingerprint must be 40 hex digits"
variant threshold 's/^  threshold: 2/  threshold: 4/'
bad threshold 'threshold: 4' "threshold"
variant undefined-key 's/  signers: \[mf-release-1,/  signers: [mf-nobody,/'
bad undefined-key 'mf-nobody' "key 'mf-nobody' is not defined in keys"
variant wrong-purpose 's/  recipients: \[mf-device\]/  recipients: [img-enc]/'
bad wrong-purpose 'recipients: [img-enc]' "key 'img-enc' is a image-encrypt key, not manifest-encrypt"
variant scheme 's/  scheme: sbv2-rsa3072/  scheme: sbv1/'
bad scheme 'scheme: sbv1' "esp32s3 does not support sbv1"
# A weak channel (issue 13 point 9): no approval required is refused unless the policy says so.
variant weak-beta 's/approvals_required: 1, validity: 30d/approvals_required: 0, validity: 30d/'
bad weak-beta 'beta: {' "channel 'beta' requires no approvals: say allow_no_approvals: true if that is intended"
variant weak-noapprovals '/^approvals:/,/^  required: 2/d; s/approvals_required: 1, //'
bad weak-noapprovals 'beta: {' "channel 'beta' requires no approvals: say allow_no_approvals: true"
variant allow-with-approvals 's/approvals_required: 1, validity: 30d/approvals_required: 1, allow_no_approvals: true/'
bad allow-with-approvals 'allow_no_approvals' "allow_no_approvals: true, but channel 'beta' requires 1 approvals"
variant weak-allowed 's/approvals_required: 1, validity: 30d/approvals_required: 0, allow_no_approvals: true/'
expect_rc 0 "a weak channel said so" fwrel-bundle --check-policy "$T/weak-allowed.yaml"
# An alias bomb ("billion laughs"): refused at the first anchor, never expanded.
{
    echo 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    for i in b c d e f g h i j; do
        prev=$(printf '%s' "$i" | tr 'b-j' 'a-i')
        echo "$i: &$i [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"
    done
} >"$T/alias-bomb.yaml"
bad alias-bomb '&a' "anchor"
finish
