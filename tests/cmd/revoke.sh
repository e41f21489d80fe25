# fwrel-keygen --revoke: the reason and the date are recorded (--reason is required; --since a real
# date, not in the future, not before the key was made), and the eFuse command printed is the one
# the chip really has (docs/esp-formats.md §2.9): none for ESP32 Secure Boot V1 and for ESP32-C2
# (one digest), SECURE_BOOT_KEY_REVOKEn on the chips with three digest slots (C6, H2 here; S3 in
# keygen_policy.sh). Refusals change nothing.
. "$FWREL_SRC/tests/lib.sh"

# ESP32-C2: the C6 example with one digest slot and C2's chip.
sed -e 's/^chip: esp32c6/chip: esp32c2/' -e 's/chip_revision: .*/chip_revision: {min: "1.0", max: "1.99"}/' \
    -e '/{slot: 1, key: sb-ecdsa-1}/d' -e '/^  sb-ecdsa-1:/d' \
    "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$T/esp32c2.yaml"
sed -e 's/^chip: esp32c6/chip: esp32h2/' "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$T/esp32h2.yaml"
cp "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" "$T/esp32c6.yaml"
cp "$FWREL_SRC/policies/esp32-sbv1-dev.yaml" "$T/esp32.yaml"

# revoke CHIP KEY: a keystore for the chip's policy, the key revoked as superseded.
revoke() {
    local chip=$1 key=$2
    expect_rc 0 "$chip: keygen" fwrel-keygen -q --policy "$T/$chip.yaml" --keystore "$T/ks-$chip" \
        --no-passphrase
    expect_rc 0 "$chip: revoke $key" fwrel-keygen --keystore "$T/ks-$chip" --policy "$T/$chip.yaml" \
        --revoke "$key" --reason superseded --json
}
no_efuse() { # CHIP WHY
    python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["efuse_command"] is None, j
' "$OUT" && ok || fail "$1: an eFuse command printed: $OUT"
    run fwrel-keygen --keystore "$T/ks-$1" --list
}

revoke esp32 sbv1-signing
no_efuse esp32
rm -rf "$T/ks-esp32"
expect_rc 0 "esp32: keygen" fwrel-keygen -q --policy "$T/esp32.yaml" --keystore "$T/ks-esp32" --no-passphrase
expect_rc 0 "esp32: revoke, text" fwrel-keygen --keystore "$T/ks-esp32" --policy "$T/esp32.yaml" \
    --revoke sbv1-signing --reason compromised
printf '%s\n' "$OUT" | grep -qxF "Secure boot slot 0 is recorded as revoked. Secure Boot V1 has one key and no revocation eFuse: no espefuse command revokes it on a device; devices keep accepting it." &&
    ok || fail "esp32: text: $OUT"
printf '%s\n' "$OUT" | grep -q "espefuse.py" && fail "esp32: espefuse printed: $OUT" || ok

revoke esp32c2 sb-ecdsa-0
no_efuse esp32c2
for chip in esp32c6 esp32h2; do
    revoke "$chip" sb-ecdsa-1
    python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["efuse_command"] == "espefuse.py --chip %s burn_efuse SECURE_BOOT_KEY_REVOKE1 1" % sys.argv[2], j
r = [k for k in j["changed"] if k["name"] == "sb-ecdsa-1"][0]
assert r["status"] == "revoked" and r["reason"] == "superseded" and r["since"], r
' "$OUT" "$chip" && ok || fail "$chip: eFuse command: $OUT"
done

# The reason and the date: recorded in the index and listed.
D="$T/ks-esp32c6"
python3 -c '
import json, sys
k = [k for k in json.load(open(sys.argv[1]))["keys"] if k["name"] == "sb-ecdsa-1"][0]
assert k["status"] == "revoked" and k["reason"] == "superseded" and k["since"] == k["changed"], k
' "$D/index.json" && ok || fail "reason and since not in the index"
run fwrel-keygen --keystore "$D" --list
printf '%s\n' "$OUT" | grep -Eq "^revoked +sb-ecdsa-1 +epoch 1 .* superseded since [0-9-]{10}T[0-9:]{8}Z$" &&
    ok || fail "--list: $OUT"
made=$(python3 -c 'import json,sys; print([k["created"] for k in json.load(open(sys.argv[1]))["keys"]
    if k["name"] == "mf-ci"][0])' "$D/index.json")
expect_rc 0 "compromised since it was made" fwrel-keygen -q --keystore "$D" --revoke mf-ci \
    --reason compromised --since "$made"
python3 -c '
import json, sys
k = [k for k in json.load(open(sys.argv[1]))["keys"] if k["name"] == "mf-ci"][0]
assert k["reason"] == "compromised" and k["since"] == sys.argv[2], k
' "$D/index.json" "$made" && ok || fail "compromise date not recorded"

# Refusals: nothing changes.
before=$(tree_sum "$D")
expect_rc 2 "no reason" fwrel-keygen --keystore "$D" --revoke mf-release
expect_err "^fwrel-keygen: --revoke needs --reason superseded or --reason compromised \(see fwrel-keygen --help\)$" "no reason"
expect_rc 2 "unknown reason" fwrel-keygen --keystore "$D" --revoke mf-release --reason lost
expect_err "^fwrel-keygen: --revoke needs --reason superseded or --reason compromised \(see fwrel-keygen --help\)$" "unknown reason"
expect_rc 2 "--since without --revoke" fwrel-keygen --keystore "$D" --list --since 2026-01-01
expect_err "^fwrel-keygen: --reason and --since go with --revoke \(see fwrel-keygen --help\)$" "--since without --revoke"
expect_rc 2 "future date" fwrel-keygen --keystore "$D" --revoke mf-release --reason compromised \
    --since 2999-01-01
expect_err "^fwrel-keygen: the revocation date 2999-01-01T00:00:00Z is in the future$" "future date"
expect_rc 2 "before the key" fwrel-keygen --keystore "$D" --revoke mf-release --reason compromised \
    --since 2001-01-01
expect_err "^fwrel-keygen: the revocation date 2001-01-01T00:00:00Z is before key mf-release was made \([0-9TZ:-]+\)$" \
    "before the key"
expect_rc 2 "not a date" fwrel-keygen --keystore "$D" --revoke mf-release --reason compromised \
    --since 2026-02-30
expect_err "^fwrel-keygen: not a date: \"2026-02-30\"" "not a date"
[ "$(tree_sum "$D")" = "$before" ] && ok || fail "a refused revocation changed the keystore"
finish
