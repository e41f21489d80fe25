# fwrel-keygen --keystore: every key of each example policy, --provision's digests equal to
# docs/esp-formats.md §2.4's (re-derived without fwrel), nothing in the keystore readable by others,
# a second run changes nothing, a wrong passphrase changes nothing (exit 4), rotation and revocation
# recorded, a policy naming a revoked key refused with its id, refusals with one line and nothing
# written.
. "$FWREL_SRC/tests/lib.sh"
printf 'keystore passphrase\n' >"$T/pass"
printf 'not the passphrase\n' >"$T/wrong"
chmod 600 "$T/pass" "$T/wrong"

for P in "$FWREL_SRC"/policies/*.yaml; do
    name=$(basename "$P" .yaml)
    D="$T/ks-$name" O="$T/prov-$name"
    expect_rc 0 "$name: keygen --policy --provision" \
        fwrel-keygen --policy "$P" --keystore "$D" --provision "$O" --no-passphrase
    # Every key the policy names is in the index, active, epoch 1.
    nkeys=$(sed -n '/^keys:/,$p' "$P" | grep -cE '^  [a-z0-9][a-z0-9._-]*:')
    run fwrel-keygen --keystore "$D" --list
    [ "$(printf '%s\n' "$OUT" | grep -c '^active .* epoch 1 ')" -eq "$nkeys" ] && ok ||
        fail "$name: $nkeys keys expected active in: $OUT"
    [ -z "$(find "$D" -perm /077)" ] && ok || fail "$name: readable by others: $(find "$D" -perm /077)"
    # Every digest file equals docs/esp-formats.md §2.4's digest of the matching public key.
    ndig=0
    for dig in "$O"/*digest*; do
        [ -e "$dig" ] || continue
        key=$(basename "$dig" .digest.bin)
        alg=$(grep -E "^  $key: " "$P" | sed 's/.*alg: *\([a-z0-9]*\).*/\1/')
        [ "$(stat -c %s "$dig")" -eq 32 ] && ok || fail "$dig is not 32 bytes"
        [ "$(hex "$dig")" = "$(sbv2_digest "$O/$key.pub.pem" "$alg")" ] && ok ||
            fail "$dig is not the docs/esp-formats.md §2.4 digest of $key ($alg)"
        expect_same "$O/$key.pub.pem" "$D/keys/$key.1.pub.pem" "$key: provisioned public key"
        ndig=$((ndig + 1))
    done
    case $name in
    *sbv1*) [ "$ndig" -eq 0 ] && [ "$(stat -c %s "$O"/*.pub.raw)" -eq 64 ] && ok ||
        fail "$name: SBv1 provisions a 64-byte raw key, no digest" ;;
    *) [ "$ndig" -ge 1 ] && ok || fail "$name: no digest provisioned" ;;
    esac
    [ -s "$O/README.txt" ] && ok || fail "$name: no README.txt"
    for f in "$O"/*; do
        case $f in
        *.private.pem | *device_hmac_key.bin | *-xts.bin | *hmac.bin)
            [ "$(stat -c %a "$f")" = 600 ] && ok || fail "$f: a device secret not 0600" ;;
        esac
        [ "$f" = "$O/README.txt" ] || grep -q "^$(basename "$f")\$" "$O/README.txt" && ok ||
            fail "$name: README.txt does not list $(basename "$f")"
    done
    # A second run without --force changes nothing.
    before=$(tree_sum "$D")
    expect_rc 0 "$name: second run" fwrel-keygen --policy "$P" --keystore "$D" --no-passphrase
    [ "$(printf '%s\n' "$OUT" | grep -c '^kept ')" -eq "$nkeys" ] && ok || fail "$name: not all kept: $OUT"
    [ "$(tree_sum "$D")" = "$before" ] && ok || fail "$name: second run changed the keystore"
    # The provisioning directory is not written twice without --force.
    expect_rc 5 "$name: provision exists" fwrel-keygen --policy "$P" --keystore "$D" \
        --provision "$O" --no-passphrase
    expect_err "^fwrel-keygen: $O: exists \(use --force to write into it\)$" "$name: provision exists"
done

# The S3 production policy with a passphrase: keys and raw secrets encrypted at rest.
P="$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml"
D="$T/enc"
expect_rc 0 "encrypted keystore" fwrel-keygen --policy "$P" --keystore "$D" --passphrase-file "$T/pass" \
    --provision "$T/enc-prov"
head -1 "$D/keys/sb-slot0.1.pem" | grep -qx -- "-----BEGIN ENCRYPTED PRIVATE KEY-----" && ok ||
    fail "keystore private key not encrypted"
head -1 "$D/keys/flash-xts.1.sec" | grep -qx -- "-----BEGIN FWREL ENCRYPTED SECRET-----" && ok ||
    fail "flash key not sealed at rest"
[ ! -e "$D/keys/flash-xts.1.bin" ] && ok || fail "flash key stored raw with a passphrase"
[ "$(stat -c %s "$T/enc-prov/flash-xts.bin")" -eq 32 ] && ok || fail "provisioned flash key not 32 raw bytes"
openssl pkcs8 -in "$D/keys/img-enc.1.pem" -passin "file:$T/pass" -out "$T/img.clear" 2>/dev/null &&
    cmp -s <(openssl pkey -in "$T/img.clear") <(openssl pkey -in "$T/enc-prov/img-enc.private.pem") && ok ||
    fail "provisioned image key is not the keystore's"

# A wrong passphrase: exit 4, one line naming the keystore, nothing changed.
before=$(tree_sum "$D")
expect_rc 4 "wrong passphrase" fwrel-keygen --policy "$P" --keystore "$D" --passphrase-file "$T/wrong" --force
expect_err "^fwrel-keygen: $D: wrong keystore passphrase$" "wrong passphrase"
[ "$(tree_sum "$D")" = "$before" ] && ok || fail "a wrong passphrase changed the keystore"
expect_rc 4 "rotate, wrong passphrase" fwrel-keygen --keystore "$D" --rotate sb-slot0 --passphrase-file "$T/wrong"
[ "$(tree_sum "$D")" = "$before" ] && ok || fail "a wrong passphrase changed the keystore (rotate)"
expect_rc 4 "encrypted keystore, no passphrase" fwrel-keygen --policy "$P" --keystore "$D" --no-passphrase
expect_err "^fwrel-keygen: $D: its keys are encrypted: a passphrase is needed$" "no passphrase"
[ "$(tree_sum "$D")" = "$before" ] && ok || fail "a refused run changed the keystore"

# Rotation: the old key retired and kept, the next epoch active; by purpose, every key of it.
old_id=$(fwrel-keygen --keystore "$D" --list | awk '$2 == "sb-slot0" {print $7}')
expect_rc 0 "rotate sb-slot0" fwrel-keygen --keystore "$D" --rotate sb-slot0 --passphrase-file "$T/pass"
run fwrel-keygen --keystore "$D" --list
printf '%s\n' "$OUT" | grep -Eq "^retired +sb-slot0 +epoch 1 .* $old_id\$" && ok || fail "old key not retired: $OUT"
printf '%s\n' "$OUT" | grep -Eq "^active +sb-slot0 +epoch 2 " && ok || fail "no epoch 2: $OUT"
[ -f "$D/keys/sb-slot0.1.pem" ] && [ -f "$D/keys/sb-slot0.2.pem" ] && ok || fail "rotation lost a key file"
expect_rc 0 "rotate a purpose" fwrel-keygen --keystore "$D" --rotate manifest-sign --passphrase-file "$T/pass" --json
[ "$(printf '%s\n' "$OUT" | grep -o '"status": "active"' | wc -l)" -ge 3 ] && ok || fail "rotate --json: $OUT"
run fwrel-keygen --keystore "$D" --list
[ "$(printf '%s\n' "$OUT" | grep -cE '^active +mf-[a-z0-9-]+ +epoch 2 ')" -eq 3 ] && ok ||
    fail "manifest-sign keys not all rotated: $OUT"

# Revocation of a secure boot slot: recorded, the eFuse command printed (not run).
expect_rc 0 "revoke sb-slot1" fwrel-keygen --keystore "$D" --revoke sb-slot1 --reason superseded \
    --policy "$P"
printf '%s\n' "$OUT" | grep -q "espefuse.py --chip esp32s3 burn_efuse SECURE_BOOT_KEY_REVOKE1 1" && ok ||
    fail "no revoke command: $OUT"
grep -q '"status": "revoked"' "$D/index.json" && ok || fail "revocation not in the index"
rev_id=$(fwrel-keygen --keystore "$D" --list | awk '$2 == "sb-slot1" {print $7}')
# The policy names the revoked key: refused, naming it and its id, nothing changed.
before=$(tree_sum "$D")
expect_rc 4 "policy names a revoked key" fwrel-keygen --policy "$P" --keystore "$D" --passphrase-file "$T/pass"
expect_err "^fwrel-keygen: $D: key sb-slot1 \(id $rev_id\) is revoked: give --rotate sb-slot1 for a new one$" \
    "revoked key named"
[ "$(tree_sum "$D")" = "$before" ] && ok || fail "a refused run changed the keystore (revoked)"
expect_rc 4 "revoke twice" fwrel-keygen --keystore "$D" --revoke sb-slot1 --reason compromised
expect_err "^fwrel-keygen: $D: no active key sb-slot1$" "revoke twice"

# Permissions: a keystore others can enter, or a key file others can read, is refused.
chmod 755 "$D"
expect_rc 4 "keystore 0755" fwrel-keygen --keystore "$D" --list
expect_err "^fwrel-keygen: $D: keystore is accessible by group or others \(mode 0755\)$" "keystore 0755"
chmod 700 "$D"
chmod 644 "$D/keys/img-enc.1.pem"
expect_rc 4 "key file 0644" fwrel-keygen --keystore "$D" --list
expect_err "^fwrel-keygen: $D: keys/img-enc.1.pem is readable by group or others \(mode 0644\)$" "key 0644"
chmod 600 "$D/keys/img-enc.1.pem"

# Usage errors.
expect_rc 2 "two modes" fwrel-keygen --keystore "$D" --list --revoke sb-slot0
expect_rc 2 "provision without policy" fwrel-keygen --keystore "$D" --rotate hmac --provision "$T/x"
expect_absent "$T/x" "provision without policy"
expect_rc 2 "policy without keystore" fwrel-keygen --policy "$P"
expect_rc 3 "malformed policy" fwrel-keygen --policy "$FWREL_SRC/README.md" --keystore "$T/new"
expect_absent "$T/new" "malformed policy"
# The audit log: with --repo, one keygen entry naming each key created; a run that changes
# nothing adds none; without --repo and no repository, nothing is created beside the policy.
P="$FWREL_SRC/policies/esp32c6-ecdsa.yaml"
expect_rc 0 "keygen --repo" fwrel-keygen --policy "$P" --keystore "$T/ks-log" --repo "$T/rel" --no-passphrase
run python3 -c 'import json,sys; [print(e["event"], len(e["outputs"]), e["inputs"][0]["name"]) for e in map(json.loads, open(sys.argv[1]))]' "$T/rel/audit/audit.jsonl"
nkeys=$(sed -n '/^keys:/,$p' "$P" | grep -cE '^  [a-z0-9][a-z0-9._-]*:')
[ "$OUT" = "keygen $nkeys esp32c6-ecdsa.yaml" ] && ok || fail "keygen audit entry: $OUT"
grep -q "\"name\":\"keys/img-enc-ecc.1.pub.pem\",\"sha256\":\"$(sha256sum <"$T/ks-log/keys/img-enc-ecc.1.pub.pem" | cut -c1-64)\"" \
    "$T/rel/audit/audit.jsonl" && ok || fail "keygen audit entry: public key hash"
expect_rc 0 "keygen --repo again" fwrel-keygen --policy "$P" --keystore "$T/ks-log" --repo "$T/rel" --no-passphrase
[ "$(wc -l <"$T/rel/audit/audit.jsonl")" -eq 1 ] && ok || fail "a run that changed nothing was logged"
expect_rc 0 "rotate --repo" fwrel-keygen --keystore "$T/ks-log" --rotate mf-ci --policy "$P" --repo "$T/rel" --no-passphrase
[ "$(wc -l <"$T/rel/audit/audit.jsonl")" -eq 2 ] && ok || fail "rotation not logged"
[ ! -e "$FWREL_SRC/releases" ] && [ ! -e "$FWREL_SRC/releases-dev" ] && ok ||
    fail "keygen created the policies' release repository in the source tree"
# The ECC image key: the device's HMAC key, and (for device emulation) the P-256 key derived from
# it, whose public half is the host's encryption key; both 0600.
O="$T/prov-esp32c6-ecdsa"
[ "$(stat -c %a "$O/img-enc-ecc.private.pem")" = 600 ] && [ "$(stat -c %a "$O/img-enc-ecc.device_hmac_key.bin")" = 600 ] &&
    ok || fail "ECC image key files not 0600"
[ "$(openssl pkey -in "$O/img-enc-ecc.private.pem" -pubout 2>/dev/null)" = "$(cat "$O/img-enc-ecc.pub.pem")" ] &&
    ok || fail "the derived image key's public half is not the encryption key"
finish
