# The README's first command: examples/demo.sh runs the release flow end to end and exits 0, twice
# (the second run reuses what is there); what it made is then checked without fwrel: the tags with
# plain git verify-tag, the bundle listing against docs/bundle.md, the audit log's hash chain
# against the head recorded in the signed tag.
. "$FWREL_SRC/tests/lib.sh"
export FWREL_BIN
D=$T/demo
G=$D/gnupg
trap 'gpgconf --homedir "$G" --kill gpg-agent >/dev/null 2>&1; rm -rf "$T"' EXIT
T1=fwrel-example/prod/v1.0.0
T2=fwrel-example/prod/v1.1.0

expect_rc 0 "examples/demo.sh" bash "$FWREL_SRC/examples/demo.sh" "$D"
[ "$(echo "$OUT" | grep -c "^ACCEPTED: the device would accept")" -eq 2 ] && ok ||
    fail "the demo's device did not accept both bundles: $OUT"
echo "$OUT" | grep -q "^INFO approve .*1 of 2 required approvals" && ok ||
    fail "release 1.1.0 was not made pending (1 of 2 approvals): $OUT"
echo "$OUT" | grep -q "^released fwrel-example 1.1.0 (prod), counter 2, secure_version 2" && ok ||
    fail "release 1.1.0 was not recorded after --approve: $OUT"
echo "$OUT" | grep -q "^VERIFIED: every check of" && ok || fail "the CI check: $OUT"
echo "$ERR" | grep -q "tampered.fwb: rejected at manifest.binds" && ok ||
    fail "the tampered bundle was not refused: $ERR"

# Each tag verifies with plain git and the demo's GnuPG home; the tag names the release.
for t in 1:$T1 2:$T2; do
    expect_rc 0 "git verify-tag ${t#*:}" env GNUPGHOME="$G" git -C "$D/releases" verify-tag "${t#*:}"
    echo "$ERR" | grep -q "Good signature from \"Approver ${t%%:*} " && ok || fail "${t#*:} signer: $ERR"
done
# A tag whose message was changed does not verify (the check above can fail).
git -C "$D/releases" cat-file tag $T1 | sed 's/^counter: 1$/counter: 9/' >"$T/forged"
forged=$(git -C "$D/releases" hash-object -t tag -w "$T/forged")
git -C "$D/releases" tag forged "$forged" 2>/dev/null || git -C "$D/releases" update-ref refs/tags/forged "$forged"
expect_rc 1 "git verify-tag of an edited tag" env GNUPGHOME="$G" git -C "$D/releases" verify-tag forged
git -C "$D/releases" update-ref -d refs/tags/forged

# The repository's bundles are the demo's bundle files.
for v in 1.0.0:$T1 1.1.0:$T2; do
    git -C "$D/releases" show "${v#*:}:${v#*:}/bundle.fwb" >"$T/repo.fwb"
    expect_same "$T/repo.fwb" "$D/bundles/fwrel-example-${v%:*}.fwb" "bundle $v in the repository"
done

# tar tvf lists exactly the documented members (docs/bundle.md): firmware.enc and manifest.fwm
# first, then the rest in bytewise order, release.json last; each a regular file 0644 owned 0/0,
# or (an export copy) a hard link to firmware.enc or manifest.fwm; two approvals by pinned keys.
A1=$(gpg --homedir "$G" --batch --with-colons --list-keys approver1@example.invalid | awk -F: '/^fpr/{print $10; exit}')
A2=$(gpg --homedir "$G" --batch --with-colons --list-keys approver2@example.invalid | awk -F: '/^fpr/{print $10; exit}')
for v in 1.0.0 1.1.0; do
    b=$D/bundles/fwrel-example-$v.fwb
    expect_rc 0 "tar tvf $v" tar tvf "$b"
    listing=$OUT
    names=$(echo "$listing" | awk '{print $6}')
    bad=$(echo "$listing" | awk '$2 != "0/0" || !($1 == "-rw-r--r--" && NF == 6 ||
        $1 == "hrw-r--r--" && $6 ~ /^exports\// && $7 " " $8 == "link to" &&
        ($9 == "firmware.enc" || $9 == "manifest.fwm"))')
    [ -z "$bad" ] && ok || fail "bundle $v: members not 0644 0/0 files or export links: $bad"
    [ "$(echo "$names" | head -2 | tr '\n' ' ')" = "firmware.enc manifest.fwm " ] && ok ||
        fail "bundle $v: the artifacts are not first: $names"
    rest=$(echo "$names" | tail -n +3)
    [ "$rest" = "$(echo "$rest" | LC_ALL=C sort)" ] && ok || fail "bundle $v: not in bytewise order: $names"
    echo "$listing" | grep -q "^hrw-r--r-- .* exports/flask-ota/firmware/$v.bin link to firmware.enc$" &&
        ok || fail "bundle $v: the flask-ota image is not a link to firmware.enc"
    [ "$(echo "$names" | tail -n1)" = release.json ] && ok || fail "bundle $v: release.json not last"
    for m in SHA256SUMS firmware.enc manifest.fwm release.json "approvals/$A1.asc" "approvals/$A2.asc" \
        exports/https-dir/fwrel-example-$v.bin exports/flask-ota/firmware/$v.bin; do
        echo "$names" | grep -qxF "$m" && ok || fail "bundle $v: $m missing: $names"
    done
    other=$(echo "$names" | grep -vxE 'SHA256SUMS|firmware\.enc|manifest\.fwm|release\.json|approvals/[0-9A-F]{40}\.asc|exports/[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*){1,3}')
    [ -z "$other" ] && ok || fail "bundle $v: members not in docs/bundle.md: $other"
    [ "$(echo "$names" | grep -c '^approvals/')" -eq 2 ] && ok || fail "bundle $v: not two approvals"
done

# The audit log: seq 1..N, prev = SHA-256 of the previous line (zeros first), every line ends with a
# newline; its head and count are those recorded in the last signed tag and in its commit.
cat >"$T/chain.py" <<'PY'
import hashlib, json, sys
data = open(sys.argv[1], "rb").read()
if not data.endswith(b"\n"):
    sys.exit("torn last line")
prev, n = "0" * 64, 0
for n, line in enumerate(data[:-1].split(b"\n"), 1):
    e = json.loads(line)
    if e["seq"] != n or e["prev"] != prev:
        sys.exit(f"line {n}: chain broken")
    if line != json.dumps(e, sort_keys=True, separators=(",", ":")).encode():
        sys.exit(f"line {n}: not canonical")
    prev = hashlib.sha256(line).hexdigest()
print(f"head:{prev} entries:{n}")
PY
log=$D/releases/audit/audit.jsonl
expect_rc 0 "audit chain" python3 "$T/chain.py" "$log"
head=$OUT
[ "$(echo "$head" | sed 's/.*entries://')" -ge 3 ] && ok || fail "audit log: $head"
git -C "$D/releases" cat-file tag $T2 | grep -qxF "audit: audit/audit.jsonl $head" && ok ||
    fail "the last tag does not record the log's head $head"
git -C "$D/releases" show "$T2:audit/audit.jsonl" >"$T/committed.jsonl"
expect_same "$T/committed.jsonl" "$log" "the committed audit log"
# The check can fail: an edited line breaks the chain.
sed '1s/"result":"ok"/"result":"ko"/' "$log" >"$T/edited.jsonl"
expect_rc 1 "audit chain of an edited log" python3 "$T/chain.py" "$T/edited.jsonl"

# Secrets: the GnuPG home and keystore are 0700, the passphrase file 0600, never on a command line.
[ "$(stat -c %a "$G")" = 700 ] && ok || fail "gnupg home mode"
[ "$(stat -c %a "$D/keystore")" = 700 ] && ok || fail "keystore mode"
[ "$(stat -c %a "$D/passphrase")" = 600 ] && ok || fail "passphrase file mode"
grep -q 'default-cache-ttl 0' "$G/gpg-agent.conf" && ok || fail "gpg-agent.conf"

expect_rc 0 "examples/demo.sh again in the same directory" bash "$FWREL_SRC/examples/demo.sh" "$D"
[ "$(echo "$OUT" | grep -c "is released already")" -eq 2 ] && ok || fail "second run released again: $OUT"
expect_rc 0 "audit chain after the second run" python3 "$T/chain.py" "$log"
[ "$OUT" = "$head" ] && ok || fail "the second run changed the audit log: $OUT, was $head"
finish
