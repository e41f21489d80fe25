# fwrel-bundle, the release pipeline, on a real keystore, a real GnuPG home and a real git
# repository: a release and its bundle members, plain `git verify-tag`, the audit chain, the
# history checks (rollback, same or lower version, an image or a bundle released again), approvals
# gathered later (--approve, --record), reproducibility with SOURCE_DATE_EPOCH, and failure
# injection and SIGKILL at every step leaving the repository, the audit chain and the output
# consistent.
. "$FWREL_SRC/tests/lib.sh"
G="$T/gnupg"
trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
# Approvers 1 and 2 without a passphrase, approver 3 with one (given from a file).
printf 'approver three\n' >"$T/pgp-pass"
chmod 600 "$T/pgp-pass"
make_approvers "$G" 'approver three'
[ -n "$A3" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >"$T/policy.yaml"
pass_keystore
img() { fwrel-testimg --chip esp32s3 --version "$1" --secure-version "$2" --project acme \
    --size "${3:-150000}" -o "$T/app-$1-$2.bin"; }
img 1.0.0 1; img 1.1.0 2; img 1.2.0 1; img 0.9.0 3; img 1.0.0 3; img 1.3.0 0; img 2.0.0 3

R="$T/releases"
bundle() {
    fwrel-bundle --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$R" --channel prod \
        --gnupg-home "$G" --passphrase-file "$T/pass" --templates "$FWREL_SRC/templates" "$@"
}

# --- a release -------------------------------------------------------------------------------
expect_rc 0 "release 1.0.0" bundle -A "$A1" -A "$A2" -o "$T/b1.fwb" "$T/app-1.0.0-1.bin"
TAG1=acme-thermostat/prod/v1.0.0
# Released once at the keystore's default scrypt cost; the ~80 releases below at a lower one.
ks_cheap_kdf "$T/ks" "$T/pass" || fail "ks_cheap_kdf"
printf '%s\n' "$OUT" | grep -q "^released acme-thermostat 1.0.0 (prod), counter 1, secure_version 1: tag $TAG1" &&
    ok || fail "release summary: $OUT"
for s in policy keys image lock history secureboot encrypt manifest exports record approve bundle audit repo; do
    printf '%s\n' "$OUT" | grep -Eq "^PASS $s " && ok || fail "step $s not reported as PASS: $OUT"
done
run git -C "$R" tag
[ "$OUT" = "$TAG1" ] && ok || fail "tags: $OUT"
expect_rc 0 "git verify-tag" env GNUPGHOME="$G" git -C "$R" verify-tag "$TAG1"
printf '%s\n' "$ERR" | grep -q "Good signature from \"Approver 1" && ok || fail "verify-tag: $ERR"
# The tree holds the bundle (the same bytes as -o), its release.json and the audit log.
run git -C "$R" ls-tree -r --name-only main
[ "$OUT" = "$(printf '%s\n' "$TAG1/bundle.fwb" "$TAG1/release.json" audit/audit.jsonl)" ] && ok ||
    fail "tree: $OUT"
git -C "$R" show "main:$TAG1/bundle.fwb" >"$T/b1.git"
expect_same "$T/b1.fwb" "$T/b1.git" "bundle in the repository and -o"
# The documented members, sorted, mode 0644, owner 0/0.
run tar tvf "$T/b1.fwb"
members=$(printf '%s\n' "$OUT" | awk '{print $6}')
want=$(printf '%s\n' SHA256SUMS "approvals/$A1.asc" "approvals/$A2.asc" | sort
       printf '%s\n' exports/flask-ota/README.txt "exports/flask-ota/firmware/1.0.0.bin" \
           exports/flask-ota/firmware/manifest.json exports/https-dir/README.txt \
           exports/https-dir/SHA256SUMS exports/https-dir/acme-thermostat-1.0.0.bin \
           exports/https-dir/acme-thermostat-1.0.0.fwm exports/https-dir/acme-thermostat.bin \
           exports/https-dir/acme-thermostat.fwm exports/https-dir/latest.json firmware.enc \
           manifest.fwm release.json)
[ "$(printf '%s\n' "$members" | LC_ALL=C sort)" = "$(printf '%s\n' "$want" | LC_ALL=C sort)" ] && ok ||
    fail "members: $members"
# The artifacts first, then name order; modes and owners fixed; each export copy of an
# artifact a hard link to it (the bundle holds each image once).
[ "$(printf '%s\n' "$members" | head -2 | tr '\n' ' ')" = "firmware.enc manifest.fwm " ] && ok ||
    fail "order: $members"
rest=$(printf '%s\n' "$members" | tail -n +3)
[ "$rest" = "$(printf '%s\n' "$rest" | LC_ALL=C sort)" ] && ok || fail "order: $members"
[ "$(printf '%s\n' "$OUT" | awk '{print substr($1, 2), $2}' | sort -u)" = "rw-r--r-- 0/0" ] && ok ||
    fail "modes and owners: $OUT"
links=$(printf '%s\n' "$OUT" | awk '$1 ~ /^h/ {print $6, $9}')
want_links=$(printf '%s\n' "exports/flask-ota/firmware/1.0.0.bin firmware.enc" \
    "exports/https-dir/acme-thermostat-1.0.0.bin firmware.enc" \
    "exports/https-dir/acme-thermostat-1.0.0.fwm manifest.fwm" \
    "exports/https-dir/acme-thermostat.bin firmware.enc" "exports/https-dir/acme-thermostat.fwm manifest.fwm")
[ "$links" = "$want_links" ] && ok || fail "export links: $links"
fwsize=$(stat -c %s "$T/app-1.0.0-1.bin")
[ "$(stat -c %s "$T/b1.fwb")" -lt $((2 * fwsize + 65536)) ] && ok || fail "the bundle holds the image more than once"
# SHA256SUMS checks with sha256sum; each approval verifies with gpg over it.
mkdir "$T/x1" && tar xf "$T/b1.fwb" -C "$T/x1"
expect_rc 0 "sha256sum -c SHA256SUMS" sh -c "cd '$T/x1' && sha256sum --quiet -c SHA256SUMS"
for a in "$A1" "$A2"; do
    expect_rc 0 "approval $a" gpg --homedir "$G" --verify "$T/x1/approvals/$a.asc" "$T/x1/SHA256SUMS"
done
# release.json: the input image's hash, the counter, the policy's hash, the served image's hash.
python3 - "$T/x1/release.json" "$(sha256sum <"$T/app-1.0.0-1.bin" | cut -c1-64)" \
    "$(sha256sum <"$T/policy.yaml" | cut -c1-64)" "$(sha256sum <"$T/x1/firmware.enc" | cut -c1-64)" <<'PY' && ok || fail "release.json fields"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "fwrel-release-1" and r["version"] == "1.0.0" and r["counter"] == 1, r
assert r["input"]["sha256"] == sys.argv[2] and r["policy_sha256"] == sys.argv[3], r
assert r["image"]["sha256"] == sys.argv[4] and r["encrypted"] is True, r
PY
run audit_ok "$R/audit/audit.jsonl"
[ "$RC" -eq 0 ] && [ "${OUT%% *}" -eq 5 ] && ok || fail "audit chain: $OUT $ERR"
# sign, encrypt, one approve per approver (by that fingerprint), then bundle.
run python3 -c 'import json,sys; [print(e["event"], e["who"].get("fingerprint", "-"), e["outputs"][0]["name"]) for e in map(json.loads, open(sys.argv[1]))]' "$R/audit/audit.jsonl"
want=$(printf '%s\n' "sign - signed image" "encrypt - firmware.enc" \
    "$(printf '%s\n' "approve $A1 approvals/$A1.asc" "approve $A2 approvals/$A2.asc" | LC_ALL=C sort)" \
    "bundle $A1 $TAG1/bundle.fwb")
[ "$OUT" = "$want" ] && ok || fail "audit entries: $OUT"
# The tag message records the audit head and the bundle's hash.
run git -C "$R" cat-file tag "$TAG1"
head=$(audit_ok "$R/audit/audit.jsonl" | cut -d' ' -f2)
printf '%s\n' "$OUT" | grep -q "^audit: audit/audit.jsonl head:$head entries:5$" && ok ||
    fail "tag message audit head: $OUT"
printf '%s\n' "$OUT" | grep -q "^bundle: $TAG1/bundle.fwb sha256:$(sha256sum <"$T/b1.fwb" | cut -c1-64) " &&
    ok || fail "tag message bundle hash"

# --- history checks: each refused with exit 1, the reason named, nothing changed ----------------
before=$(git -C "$R" for-each-ref --format='%(refname) %(objectname)')
refuse() { # DESC PATTERN ARGS...
    local desc=$1 pat=$2
    shift 2
    expect_rc 1 "$desc" bundle -A "$A1" -A "$A2" -o "$T/refused.fwb" "$@"
    expect_err "$pat" "$desc"
    expect_absent "$T/refused.fwb" "$desc"
}
refuse "same image again" "this image was released already as $TAG1" "$T/app-1.0.0-1.bin"
refuse "same version, other image" "tag $TAG1 exists: version 1.0.0 was released already" "$T/app-1.0.0-3.bin"
refuse "lower version" "version 0.9.0 is not above 1.0.0 of $TAG1, an earlier prod release" "$T/app-0.9.0-3.bin"
refuse "secure_version below the floor" "secure_version 0 is below the policy's minimum 1" "$T/app-1.3.0-0.bin"
refuse "approver not pinned" "[0-9A-F]{40} is not an approver the policy pins" \
    -A 0000000000000000000000000000000000000001 "$T/app-1.1.0-2.bin"
run git -C "$R" for-each-ref --format='%(refname) %(objectname)'
[ "$OUT" = "$before" ] && ok || fail "refs changed by refusals"
run audit_ok "$R/audit/audit.jsonl"
[ "$RC" -eq 0 ] && ok || fail "audit chain after refusals: $ERR"
# Refusals after the lock each added one failure record naming the reason (the approver is
# refused before the lock: no record).
n=$(grep -c '"result":"fail"' "$R/audit/audit.jsonl")
[ "$n" -eq 3 ] && ok || fail "failure records: $n, expected 3"
grep -q '"reason":"release acme-thermostat/prod/v0.9.0 failed at history: version 0.9.0 is not above' \
    "$R/audit/audit.jsonl" && ok || fail "failure record reason"

# --- approvals gathered later ------------------------------------------------------------------
expect_rc 2 "too few approvers without -o" bundle -A "$A1" "$T/app-1.1.0-2.bin"
expect_err "the prod channel needs 2 approvals and 1 approver is given: give --output" "too few approvers"
expect_rc 0 "pending bundle" bundle -A "$A1" -o "$T/b2.fwb" "$T/app-1.1.0-2.bin"
tail -1 "$R/audit/audit.jsonl" | grep -q '"event":"bundle".*"outputs":\[{"name":"b2.fwb"' && ok ||
    fail "the pending bundle's audit entry does not name the output file"
printf '%s\n' "$OUT" | grep -q "written with 1 of 2 approvals" && ok || fail "pending: $OUT"
[ "$(git -C "$R" tag | wc -l)" -eq 1 ] && ok || fail "a pending bundle made a tag"
# --approve and --record check what they sign: the pending 1.1.0 bundle carrying 1.0.0's image,
# manifest and exports, its SHA256SUMS remade (so that they pass), is refused by both at
# record.members (the CI checks of fwrel-verify --bundle), before any signature; nothing written.
rm -rf "$T/mix.d" "$T/b1.d" && mkdir "$T/mix.d" "$T/b1.d" && tar -xf "$T/b2.fwb" -C "$T/mix.d" &&
    tar -xf "$T/b1.fwb" -C "$T/b1.d" && rm -r "$T/mix.d/approvals" "$T/mix.d/exports" &&
    cp "$T/b1.d/firmware.enc" "$T/b1.d/manifest.fwm" "$T/mix.d/" && cp -r "$T/b1.d/exports" "$T/mix.d/" &&
    fwrel-mkbundle write --sums -o "$T/mix.fwb" -C "$T/mix.d" >/dev/null || fail "mixed bundle"
cp "$T/mix.fwb" "$T/mix.before"
expect_rc 1 "approve 1.1.0's record with 1.0.0's image" fwrel-bundle --approve "$T/mix.fwb" \
    -A "$A1" -A "$A2" --gnupg-home "$G"
expect_err "^fwrel-bundle: $T/mix.fwb: rejected at record.members: firmware.enc: [0-9]+ bytes, sha256 [0-9a-f]{16}\.\.\., the record says" \
    "approve a mixed bundle"
printf '%s\n' "$OUT" | grep -q "^FAIL record.members" && ! printf '%s\n' "$OUT" | grep -q "^approving" &&
    ok || fail "approve a mixed bundle: $OUT"
cmp -s "$T/mix.fwb" "$T/mix.before" && ok || fail "a refused approval changed the bundle"
# Approvals made outside fwrel (gpg over the remade SHA256SUMS) do not make --record take it.
tar -xOf "$T/mix.fwb" SHA256SUMS >"$T/mix.sums"
for a in "$A1" "$A2"; do
    gpg --homedir "$G" --batch -q --yes --pinentry-mode loopback --passphrase '' -u "$a" --armor \
        --detach-sign -o "$T/mix.asc" "$T/mix.sums" && fwrel-mkbundle approve "$T/mix.fwb" "$a" "$T/mix.asc" ||
        fail "approval of the mixed bundle by $a"
done
n=$(wc -l <"$R/audit/audit.jsonl")
expect_rc 1 "record 1.1.0's record with 1.0.0's image" fwrel-bundle --record "$T/mix.fwb" \
    --policy "$T/policy.yaml" --repo "$R" --gnupg-home "$G" --tag-signer "$A1"
expect_err "^fwrel-bundle: bundle: rejected at record.members: firmware.enc: [0-9]+ bytes, sha256 [0-9a-f]{16}\.\.\., the record says" "record a mixed bundle"
[ "$(wc -l <"$R/audit/audit.jsonl")" -eq "$n" ] && [ "$(git -C "$R" tag | wc -l)" -eq 1 ] && ok ||
    fail "a refused record changed the repository"
# The tar structure: a pax global header (path=../../pwned) in front, a member after the end.
python3 - "$T/b2.fwb" "$T" <<'PY'
import sys, tarfile
src = open(sys.argv[1], "rb").read()
g = tarfile.TarInfo.create_pax_global_header({"path": "../../pwned"})
open(sys.argv[2] + "/global.fwb", "wb").write(g + src)
t = tarfile.TarInfo("exports/https-dir/late.txt"); t.size = 3
open(sys.argv[2] + "/trailing.fwb", "wb").write(src + t.tobuf(format=tarfile.USTAR_FORMAT) + b"hi\n" + b"\0" * 509)
PY
for k in global trailing; do
    cp "$T/$k.fwb" "$T/$k.before"
    expect_rc 3 "approve a bundle with a $k tar edit" fwrel-bundle --approve "$T/$k.fwb" -A "$A2" \
        --gnupg-home "$G"
    expect_err "^fwrel-bundle: $T/$k.fwb: (.*: pax global header|trailing data after the end-of-archive)" "approve $k"
    cmp -s "$T/$k.fwb" "$T/$k.before" && ok || fail "a refused approval changed $k.fwb"
    cp "$T/$k.before" "$T/$k.fwb"
    fwrel-mkbundle approve "$T/$k.fwb" "$A2" "$T/mix.asc" >/dev/null 2>&1 # refused too: no matter
    expect_rc 3 "record a bundle with a $k tar edit" fwrel-bundle --record "$T/$k.fwb" \
        --policy "$T/policy.yaml" --repo "$R" --channel prod --gnupg-home "$G" --tag-signer "$A1"
    expect_err "^fwrel-bundle: bundle: (.*: pax global header|trailing data after the end-of-archive)" "record $k"
done
# --approve shows what is approved (also in --json) before signing.
cp "$T/b2.fwb" "$T/b2.json-copy"
expect_rc 0 "approve --json" fwrel-bundle --json --approve "$T/b2.json-copy" -A "$A2" --gnupg-home "$G"
printf '%s' "$OUT" | python3 -c 'import json, sys
d = json.load(sys.stdin)
assert (d["product"], d["release_version"], d["channel"], d["counter"]) == ("acme-thermostat", "1.1.0", "prod", 2), d
assert d["image_sha256"] == sys.argv[1] and d["approvals"] == 2, d' \
    "$(tar -xOf "$T/b2.fwb" firmware.enc | sha256sum | cut -d' ' -f1)" && ok || fail "approve --json: $OUT"
expect_rc 1 "record with 1 of 2" fwrel-bundle --record "$T/b2.fwb" --policy "$T/policy.yaml" \
    --repo "$R" --channel prod --gnupg-home "$G"
expect_err "1 of 2 required approvals" "record with 1 of 2"
expect_rc 1 "approve by an approver not pinned by the release" fwrel-bundle --approve "$T/b2.fwb" \
    -A 0000000000000000000000000000000000000001 --gnupg-home "$G"
cp "$T/b2.fwb" "$T/b2.before"
expect_rc 4 "approve without the approver's passphrase" fwrel-bundle --approve "$T/b2.fwb" -A "$A3" \
    --gnupg-home "$G"
cmp -s "$T/b2.fwb" "$T/b2.before" && ok || fail "a failed approval changed the bundle"
printf 'wrong\n' >"$T/pgp-wrong"
chmod 600 "$T/pgp-wrong"
expect_rc 4 "approve with a wrong passphrase" fwrel-bundle --approve "$T/b2.fwb" -A "$A3" \
    --gnupg-home "$G" --pgp-passphrase-file "$T/pgp-wrong"
expect_err "wrong passphrase" "approve with a wrong passphrase"
expect_rc 0 "approve" fwrel-bundle --approve "$T/b2.fwb" -A "$A3" --gnupg-home "$G" \
    --pgp-passphrase-file "$T/pgp-pass"
printf '%s\n' "$OUT" | grep -q "2 of 2 required approvals" && ok || fail "approve: $OUT"
printf '%s\n' "$OUT" | head -2 | tr '\n' ' ' | grep -Eq "^approving acme-thermostat 1\.1\.0 \(prod\), counter 2, secure_version 2, for esp32s3   image    firmware\.enc, [0-9]+ bytes, sha256 $(tar -xOf "$T/b2.fwb" firmware.enc | sha256sum | cut -d' ' -f1) " &&
    ok || fail "approve does not show what is approved: $OUT"
expect_rc 1 "approve twice" fwrel-bundle --approve "$T/b2.fwb" -A "$A3" --gnupg-home "$G" \
    --pgp-passphrase-file "$T/pgp-pass"
expect_err "approvals/$A3.asc: already in the bundle" "approve twice"
# A bundle whose member was changed after approval is refused by --record.
python3 - "$T/b2.fwb" "$T/b2.bad" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.find(b'"version":"1.1.0"')
d[i + 12] ^= 1
open(sys.argv[2], "wb").write(d)
PY
expect_rc 1 "record a tampered bundle" fwrel-bundle --record "$T/b2.bad" --policy "$T/policy.yaml" \
    --repo "$R" --channel prod --gnupg-home "$G"
expect_err "^fwrel-bundle: bundle: rejected at bundle.sums: SHA256SUMS: release.json: digest mismatch$" "record a tampered bundle"
expect_rc 0 "record (the channel from the bundle)" fwrel-bundle --record "$T/b2.fwb" \
    --policy "$T/policy.yaml" --repo "$R" --gnupg-home "$G" --tag-signer "$A1"
TAG2=acme-thermostat/prod/v1.1.0
# --record logged the approval given later, not again the one logged with the pending bundle.
run python3 -c 'import json,sys; [print(e["event"], e["who"].get("fingerprint", "-")) for e in map(json.loads, open(sys.argv[1]))]' "$R/audit/audit.jsonl"
[ "$(printf '%s\n' "$OUT" | tail -2)" = "$(printf '%s\n' "approve $A3" "bundle $A1")" ] && ok ||
    fail "audit entries of --record: $(printf "%s\n" "$OUT" | tr "\n" ";")"
[ "$(printf '%s\n' "$OUT" | grep -c "^approve $A1$")" -eq 2 ] && ok || fail "approvals by $A1 logged: $OUT"
expect_rc 0 "verify-tag 2" env GNUPGHOME="$G" git -C "$R" verify-tag "$TAG2"
git -C "$R" show "main:$TAG2/bundle.fwb" >"$T/b2.git"
expect_same "$T/b2.fwb" "$T/b2.git" "recorded bundle"
expect_rc 1 "record again" fwrel-bundle --record "$T/b2.fwb" --policy "$T/policy.yaml" --repo "$R" \
    --channel prod --gnupg-home "$G"
expect_err "this image was released already as $TAG2" "record again"
expect_rc 1 "rollback: secure_version below the last release" bundle -A "$A1" -A "$A2" "$T/app-1.2.0-1.bin"
expect_err "secure_version 1 is below 2 of acme-thermostat/prod/v1.1.0, an earlier release \(rollback\)" "rollback"
# An old bundle recorded again, after a newer release, is refused.
expect_rc 1 "old bundle recorded again" fwrel-bundle --record "$T/b1.fwb" --policy "$T/policy.yaml" \
    --repo "$R" --channel prod --gnupg-home "$G"
expect_err "this image was released already as $TAG1" "old bundle recorded again"
run audit_ok "$R/audit/audit.jsonl"
[ "$RC" -eq 0 ] && ok || fail "audit chain: $ERR"

# --- reproducibility ---------------------------------------------------------------------------
# A fixed release time a day ago (an older one than the channel's validity is refused).
SDE=$(( $(date +%s) - 86400 ))
for k in a b; do
    SOURCE_DATE_EPOCH=$SDE fwrel-bundle -q --policy "$T/policy.yaml" --keystore "$T/ks" \
        --repo "$T/rep-$k" --channel prod --gnupg-home "$G" --passphrase-file "$T/pass" \
        --templates "$FWREL_SRC/templates" -A "$A1" -A "$A2" -o "$T/rep-$k.fwb" "$T/app-1.0.0-1.bin" ||
        fail "reproducible release $k"
done
python3 - "$T/rep-a.fwb" "$T/rep-b.fwb" "$SDE" <<'PY' && ok || fail "reproducibility: see above"
import json, sys, tarfile
a, b = (tarfile.open(p) for p in sys.argv[1:3])
ma, mb = a.getmembers(), b.getmembers()
hdr = lambda m: (m.name, m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime, m.type)
assert [hdr(m) for m in ma] == [hdr(m) for m in mb], "headers differ"
assert all(m.mtime == int(sys.argv[3]) for m in ma)
ra = json.load(a.extractfile("release.json")); rb = json.load(b.extractfile("release.json"))
# Random by design (docs/bundle.md): the signature sector, the encryption, hence their hashes.
rand = {("signed_image", "sha256"), ("image", "sha256"), ("manifest", "sha256"), ("manifest", "size")}
for k in ra:
    for f in (ra[k] if isinstance(ra[k], dict) else {None: 0}):
        if (k, f) in rand:
            continue
        va = ra[k] if f is None else ra[k][f]; vb = rb[k] if f is None else rb[k][f]
        assert va == vb, "release.json %s.%s differs" % (k, f)
subst = lambda t, r: t.replace(r["image"]["sha256"], "IMG").replace(r["manifest"]["sha256"], "MAN") \
    .replace(r["signed_image"]["sha256"], "SIG")
random_members = {"firmware.enc", "manifest.fwm", "SHA256SUMS", "release.json"}
for m in ma:
    da, db = a.extractfile(m.name).read(), b.extractfile(m.name).read()
    if m.name in random_members or m.name.startswith("approvals/"):
        continue
    if da == db:
        continue
    if da == a.extractfile("firmware.enc").read() and db == b.extractfile("firmware.enc").read():
        continue  # a copy of the served image
    if da == a.extractfile("manifest.fwm").read() and db == b.extractfile("manifest.fwm").read():
        continue  # a copy of the manifest
    ta, tb = subst(da.decode(), ra), subst(db.decode(), rb)
    if ta != tb:
        import re
        ta, tb = re.sub(r'"hmac": *"[0-9a-f]+"', "", ta), re.sub(r'"hmac": *"[0-9a-f]+"', "", tb)
    assert ta == tb, "%s differs beyond the random fields" % m.name
PY

# --- failure injection at every step, then SIGKILL at every step ------------------------------
steps="policy image preflight lock history keys secureboot encrypt manifest exports record approve bundle output audit repo blobs tree commit sign tag-object branch tag-ref"
i=0
for s in $steps; do
    i=$((i + 1))
    before=$(git -C "$R" for-each-ref --format='%(refname) %(objectname)')
    nlog=$(wc -l <"$R/audit/audit.jsonl")
    FWREL_TEST_FAIL_AT=$s expect_rc 5 "failure at $s" bundle -A "$A1" -A "$A2" -o "$T/inj.fwb" "$T/app-2.0.0-3.bin"
    expect_err "injected failure at $s" "failure at $s"
    expect_absent "$T/inj.fwb" "failure at $s"
    run git -C "$R" for-each-ref --format='%(refname) %(objectname)'
    [ "$OUT" = "$before" ] && ok || fail "failure at $s changed the refs"
    run audit_ok "$R/audit/audit.jsonl"
    [ "$RC" -eq 0 ] && ok || fail "failure at $s broke the audit chain: $ERR"
    added=$(( $(wc -l <"$R/audit/audit.jsonl") - nlog ))
    case $s in
        policy | image | preflight) [ "$added" -eq 0 ] ;;
        lock) [ "$added" -le 1 ] ;;
        history | keys | secureboot | encrypt | manifest | exports | record | approve | bundle | output | audit)
            [ "$added" -eq 1 ] && tail -1 "$R/audit/audit.jsonl" | grep -q "failed at $s: injected failure at $s" ;;
        *) [ "$added" -eq 6 ] && tail -1 "$R/audit/audit.jsonl" | grep -q '"result":"fail"' &&
            tail -2 "$R/audit/audit.jsonl" | head -1 | grep -q '"event":"bundle"' ;;
    esac && ok || fail "failure at $s: $added audit records added"
    [ -z "$(ls "$T" | grep '^fwrel-release\.' || true)" ] && ok || fail "failure at $s left a temporary directory"
done
# SIGKILL at each step: no tag without its bundle, no partial output, a valid chain; the next
# release repairs what was left and succeeds.
for s in $(kill_steps history secureboot manifest bundle output audit repo blobs commit sign tag-object \
    branch tag-ref); do
    FWREL_TEST_KILL_AT=$s TMPDIR="$T" bundle -q -A "$A1" -A "$A2" -o "$T/kill.fwb" "$T/app-2.0.0-3.bin" \
        >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 137 ] && ok || fail "kill at $s: exit $rc"
    [ ! -e "$T/kill.fwb" ] && ok || fail "kill at $s left the output"
    [ -z "$(ls -a "$T" | grep '^\.kill\.fwb\.' || true)" ] && ok || fail "kill at $s left a partial output"
    git -C "$R" tag | while read -r t; do
        git -C "$R" cat-file -e "$t:$t/bundle.fwb" 2>/dev/null || echo "tag $t has no bundle"
    done | grep -q . && fail "kill at $s: a tag without its bundle" || ok
    run audit_ok "$R/audit/audit.jsonl"
    [ "$RC" -eq 0 ] && ok || fail "kill at $s broke the audit chain: $ERR"
    rm -rf "$T"/fwrel-release.* # a killed process cannot clean its temporary directory
done
# SIGKILL at random moments (0 to 400 ms into a release): the same invariants each time.
for k in $(kill_steps 1 2 3 4 5 6 7 8 9 10); do
    delay=$(python3 -c "import random; print(random.uniform(0, 0.4))")
    TMPDIR="$T" bundle -q -A "$A1" -A "$A2" -o "$T/kill.fwb" "$T/app-2.0.0-3.bin" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    # $pid is the subshell running bundle(); the release is its child fwrel-bundle. Stop the
    # subshell (it cannot start the child any more), kill the child, then the subshell: a kill of
    # the subshell alone would leave the release running on, unkilled.
    kill -STOP "$pid" 2>/dev/null
    pkill -9 -P "$pid" 2>/dev/null
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if git -C "$R" rev-parse -q --verify refs/tags/acme-thermostat/prod/v2.0.0 >/dev/null; then
        # It was recorded before the kill: the output is the recorded bundle, or absent when the
        # kill fell between the tag and the output's publication.
        [ ! -e "$T/kill.fwb" ] ||
            cmp -s "$T/kill.fwb" <(git -C "$R" show main:acme-thermostat/prod/v2.0.0/bundle.fwb) &&
            ok || fail "random kill $k: an output that is not the recorded bundle"
        break
    fi
    [ ! -e "$T/kill.fwb" ] && ok || fail "random kill $k ($delay s) left the output without a tag"
    [ -z "$(ls -a "$T" | grep '^\.kill\.fwb\.' || true)" ] && ok || fail "random kill $k left a partial output"
    run audit_ok "$R/audit/audit.jsonl"
    [ "$RC" -eq 0 ] && ok || fail "random kill $k ($delay s) broke the audit chain: $ERR"
    rm -rf "$T"/fwrel-release.*
done
rm -f "$T/kill.fwb"
git -C "$R" rev-parse -q --verify refs/tags/acme-thermostat/prod/v2.0.0 >/dev/null ||
    expect_rc 0 "release after the kills" bundle -A "$A1" -A "$A2" "$T/app-2.0.0-3.bin"
expect_rc 0 "verify-tag after the kills" env GNUPGHOME="$G" git -C "$R" verify-tag acme-thermostat/prod/v2.0.0
expect_rc 0 "git fsck" git -C "$R" fsck --strict --no-progress

# Two releases at once: the lock serializes them; the second sees the first in its history.
img 3.0.0 3; img 3.1.0 3
bundle -q -A "$A1" -A "$A2" "$T/app-3.0.0-3.bin" >"$T/c1.out" 2>"$T/c1.err" &
p1=$!
bundle -q -A "$A1" -A "$A2" "$T/app-3.1.0-3.bin" >"$T/c2.out" 2>"$T/c2.err" &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
if [ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]; then
    ok # 3.0.0 first, then 3.1.0 above it
elif [ "$r2" -eq 0 ] && [ "$r1" -eq 1 ] && grep -q "version 3.0.0 is not above 3.1.0" "$T/c1.err"; then
    ok # 3.1.0 took the lock first: 3.0.0 is then a rollback of the version, refused
else
    fail "concurrent releases: $r1 $(cat "$T/c1.err"), $r2 $(cat "$T/c2.err")"
fi
run python3 -c 'import json,sys
c = [json.loads(l)["counter"] for l in sys.stdin]
assert c == list(range(1, len(c) + 1)), c' < <(for t in $(git -C "$R" tag); do
    git -C "$R" show "$t:$t/release.json"; echo; done | grep . | python3 -c '
import json, sys
for r in sorted((json.loads(l) for l in sys.stdin), key=lambda r: r["counter"]):
    print(json.dumps({"counter": r["counter"]}))')
[ "$RC" -eq 0 ] && ok || fail "release counters not 1..n after concurrent releases: $ERR"
run audit_ok "$R/audit/audit.jsonl"
[ "$RC" -eq 0 ] && ok || fail "audit chain after concurrent releases: $ERR"

# --- the secure-fota export: its 1024-byte manifest, checked with plain openssl -----------------
sed -e 's/^  recipients: \[mf-device\]/  recipients: [mf-device, mf-fota]/' \
    -e 's/^exports: \[https-dir, flask-ota\]/exports: [https-dir, flask-ota, secure-fota]/' \
    -e 's/^  mf-device: {purpose: manifest-encrypt, alg: x25519}/&\n  mf-fota: {purpose: manifest-encrypt, alg: rsa4096}/' \
    "$T/policy.yaml" >"$T/policy-sf.yaml"
grep -q "mf-fota: {purpose" "$T/policy-sf.yaml" && grep -q "secure-fota\]" "$T/policy-sf.yaml" ||
    fail "secure-fota policy not made"
# The release's keystore with the one key the export adds (the others kept: keygen makes only the
# RSA-4096 recipient), provisioned.
cp -a "$T/ks" "$T/ks-sf"
expect_rc 0 "keygen for secure-fota" fwrel-keygen --policy "$T/policy-sf.yaml" --keystore "$T/ks-sf" \
    --provision "$T/prov-sf" --passphrase-file "$T/pass"
[ "$(printf '%s\n' "$OUT" | grep -c '^created ')" -eq 1 ] && ok || fail "keygen for secure-fota: $OUT"
expect_rc 0 "release with secure-fota" fwrel-bundle --json --policy "$T/policy-sf.yaml" \
    --keystore "$T/ks-sf" --repo "$T/rel-sf" --channel prod --gnupg-home "$G" --passphrase-file "$T/pass" \
    --templates "$FWREL_SRC/templates" -A "$A1" -A "$A2" -o "$T/sf.fwb" "$T/app-1.0.0-1.bin"
# --json: the release's facts beside the tool's own version, every step passed or skipped.
printf '%s' "$OUT" | python3 -c '
import json, subprocess, sys
d = json.load(sys.stdin)
assert d["ok"] and d["recorded"] and d["release_version"] == "1.0.0" and d["counter"] == 1, d
assert d["version"] == subprocess.run(["fwrel-bundle", "--version"], capture_output=True,
                                      text=True).stdout.split()[-1], d["version"]
assert d["tag"] == "acme-thermostat/prod/v1.0.0" and len(d["commit"]) == 40 and d["approvals"] == 2
assert all(s["verdict"] in ("pass", "skip") for s in d["steps"]), d["steps"]
' && ok || fail "fwrel-bundle --json: $OUT"
mkdir "$T/sf" && tar xf "$T/sf.fwb" -C "$T/sf"
M="$T/sf/exports/secure-fota/firmware.manifest"
[ "$(stat -c %s "$M" 2>/dev/null)" = 1024 ] && ok || fail "secure-fota manifest not 1024 bytes"
head -c 512 "$M" | openssl pkeyutl -decrypt -inkey "$T/prov-sf/mf-fota.private.pem" \
    -pkeyopt rsa_padding_mode:pkcs1 -out "$T/sf/desc.bin" 2>/dev/null
tail -c 512 "$M" | openssl pkeyutl -decrypt -inkey "$T/prov-sf/mf-fota.private.pem" \
    -pkeyopt rsa_padding_mode:pkcs1 -out "$T/sf/sig.bin" 2>/dev/null
dd if="$T/app-1.0.0-1.bin" of="$T/sf/desc.want" bs=1 skip=32 count=256 2>/dev/null
expect_same "$T/sf/desc.bin" "$T/sf/desc.want" "secure-fota manifest: the app descriptor"
expect_rc 0 "secure-fota manifest: signature" openssl dgst -sha256 -verify \
    "$T/prov-sf/mf-security.pub.pem" -signature "$T/sf/sig.bin" "$T/sf/desc.bin"
grep -q "\"sha256\": \"$(sha256sum <"$M" | cut -c1-64)\"" "$T/sf/exports/secure-fota/upload.json" && ok ||
    fail "upload.json does not carry the manifest's hash"
sed -e 's/, mf-fota\]/]/' -e '/mf-fota: {purpose/d' "$T/policy-sf.yaml" >"$T/policy-sf2.yaml"
expect_rc 2 "secure-fota without an RSA-4096 recipient" fwrel-bundle --policy "$T/policy-sf2.yaml" \
    --keystore "$T/ks-sf" --repo "$T/rel-sf" --channel prod --passphrase-file "$T/pass" -A "$A1" -A "$A2" \
    "$T/app-1.1.0-2.bin"
expect_err "the secure-fota export needs an RSA-3072 manifest signer in the prod channel and an RSA-4096 manifest recipient" \
    "secure-fota without an RSA-4096 recipient"

# --- usage ----------------------------------------------------------------------------------------
expect_rc 2 "no image" fwrel-bundle --policy "$T/policy.yaml" --keystore "$T/ks"
expect_err "a release needs one IMAGE" "no image"
expect_rc 2 "no policy" fwrel-bundle --keystore "$T/ks" "$T/app-1.0.0-1.bin"
expect_err "a release needs --policy POLICY" "no policy"
expect_rc 2 "two modes" fwrel-bundle --approve "$T/b1.fwb" --record "$T/b1.fwb"
expect_rc 2 "bad channel" fwrel-bundle --policy "$T/policy.yaml" --keystore "$T/ks" --channel dev \
    --no-passphrase "$T/app-1.0.0-1.bin"
expect_err "the policy has no channel 'dev'" "bad channel"
expect_rc 2 "two keystore passphrase sources" fwrel-bundle --policy "$T/policy.yaml" \
    --keystore "$T/ks" --passphrase-file "$T/pass" --no-passphrase "$T/app-1.0.0-1.bin"
expect_err "--passphrase-file, --passphrase-fd and --no-passphrase exclude each other" \
    "two keystore passphrase sources"
expect_rc 2 "two GnuPG passphrase sources" fwrel-bundle --policy "$T/policy.yaml" \
    --keystore "$T/ks" --no-passphrase --pgp-passphrase-file "$T/pass" --pgp-passphrase-fd 3 \
    "$T/app-1.0.0-1.bin"
expect_err "--pgp-passphrase-file and --pgp-passphrase-fd exclude each other" \
    "two GnuPG passphrase sources"
expect_rc 2 "GnuPG passphrase fd not a number" fwrel-bundle --approve "$T/b1.fwb" -A "$A1" \
    --pgp-passphrase-fd three
expect_err "--pgp-passphrase-fd needs a file descriptor number" "GnuPG passphrase fd not a number"
finish
