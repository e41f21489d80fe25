# fwrel-verify --repo, the auditor mode, on a release repository made by fwrel-bundle with a real
# keystore, a real GnuPG home and real git: four releases on two channels (the last one approved
# later: --approve, --record) audit clean; then, each
# on a copy of the repository, a tag re-pointed or re-signed, a bundle rewritten in history (even
# re-signed by a pinned approver, which plain `git verify-tag` accepts), the live audit log edited,
# truncated or ending in a torn line, a release with a lower secure_version, a tag signed by a key
# the release does not pin, and a key compromised since before the releases each fail with exit
# 1 and the step named; a key superseded after them leaves them valid at release time, noted. The HTML report is escaped, and rendered by chromium when it is installed.
. "$FWREL_SRC/tests/lib.sh"
release_setup
img 1.0.0 1; img 1.0.1 1; img 1.1.0 2; img 1.1.1 2; img 1.2.0 1; img 1.3.0 2

R="$T/releases"
N=0
E0=$(( $(date +%s) / 3600 * 3600 - 86400 )) # a day ago: within the channels' validity
bundle() { # POLICY CHANNEL IMAGE APPROVER...
    local pol=$1 ch=$2 im=$3
    shift 3
    N=$((N + 1))
    SOURCE_DATE_EPOCH=$((E0 + 3600 * N)) fwrel-bundle -q --policy "$pol" \
        --keystore "$T/ks" --repo "${REPO:-$R}" --channel "$ch" --gnupg-home "$G" \
        --no-passphrase --user rel-op --templates "$FWREL_SRC/templates" "$@" "$im"
}
P=acme-thermostat
B1=$P/beta/v1.0.0 P2=$P/prod/v1.0.1 B3=$P/beta/v1.1.0 P4=$P/prod/v1.1.1
expect_rc 0 "release $B1" bundle "$T/policy.yaml" beta "$T/app-1.0.0.bin" -A "$A1"
expect_rc 0 "release $P2" bundle "$T/policy.yaml" prod "$T/app-1.0.1.bin" -A "$A1" -A "$A2"
expect_rc 0 "release $B3" bundle "$T/policy.yaml" beta "$T/app-1.1.0.bin" -A "$A2"
# The last one with approvals gathered later: made with one of two, approved, then recorded.
expect_rc 0 "release $P4: pending" bundle "$T/policy.yaml" prod "$T/app-1.1.1.bin" -A "$A2" \
    -o "$T/p4.fwb"
expect_rc 0 "release $P4: approved" fwrel-bundle -q --approve "$T/p4.fwb" -A "$A3" --gnupg-home "$G"
expect_rc 0 "release $P4: recorded" env SOURCE_DATE_EPOCH=$((E0 + 3600 * 5)) \
    fwrel-bundle -q --record "$T/p4.fwb" --policy "$T/policy.yaml" --repo "$R" --gnupg-home "$G" \
    --user rel-op
LOG=audit/audit.jsonl

audit() { # REPO [OPTIONS...]: against the policy in force, unless told --no-policy or --policy
    local repo=$1 pol=(--policy "$T/policy.yaml")
    shift
    case " $* " in *" --no-policy "* | *" --policy "*) pol=() ;; esac
    fwrel-verify --repo "$repo" --gnupg-home "$G" "${pol[@]}" "$@"
}

# --- a clean repository ---------------------------------------------------------------------
expect_rc 0 "clean audit" audit "$R" --all
[ -z "$ERR" ] && ok || fail "clean audit wrote to stderr: $ERR"
for t in $B1 $P2 $B3 $P4; do
    printf '%s\n' "$OUT" | grep -Eq "^$t +[0-9.]+ +[12] +[1-4] +[12] of [12] +verified$" && ok ||
        fail "table row for $t: $OUT"
done
printf '%s\n' "$OUT" | grep -q "^VERIFIED: 4 releases, every check passed$" && ok || fail "verdict: $OUT"
printf '%s\n' "$OUT" | grep -q "^PASS audit.log: $LOG: .* chain valid" && ok || fail "audit.log: $OUT"
printf '%s\n' "$OUT" | grep -q "^PASS repo.branch: 4 commits, linear" && ok || fail "repo.branch: $OUT"
# Every step of every release ran and passed (keys skipped without --keystore).
expect_rc 0 "clean audit --json" audit "$R" --all --json --jobs 2
printf '%s\n' "$OUT" >"$T/clean.json"
python3 - "$T/clean.json" "$B1" "$P2" "$B3" "$P4" <<'PY' && ok || fail "--json of the clean audit"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["mode"] == "repo" and j["verified"] is True and j["failed_releases"] == 0, j
assert j["checks_passed"] is True and len(j["policy"]) == 64, j
assert j["jobs"] == 2, j["jobs"]
assert [r["tag"] for r in j["releases"]] == sys.argv[2:], [r["tag"] for r in j["releases"]]
want = ["tag.signature", "tag.message", "tag.name", "bundle.blob", "ci.bundle.read",
        "ci.bundle.sums", "ci.record.parse", "ci.record.policy", "ci.record.members",
        "ci.approvals", "ci.exports", "ci.against", "record.tree", "policy", "approvals",
        "tag.signer", "record.fields", "audit.copy", "audit.live", "repo.branch", "release.dir",
        "history.counter", "history.secure_version", "history.version", "keys"]
for n, r in enumerate(j["releases"], 1):
    names = []
    for s in r["steps"]:
        if s["step"] not in names:
            names.append(s["step"])
    assert names == want, (r["tag"], names)
    for s in r["steps"]:
        ok = s["verdict"] in ("pass", "info") or (s["verdict"] == "skip" and s["step"] in
                                                    ("ci.record.policy", "ci.against", "keys"))
        assert ok, (r["tag"], s)
    assert r["verdict"] == "pass" and r["failed_step"] is None and r["counter"] == n, r
    assert r["signer"] in r["pinned_approvers"] and len(r["approvers"]) == r["approvals_required"], r
    assert [k["role"] for k in r["keys"]][:1] == ["secure-boot"] and "status" not in r["keys"][0], r
assert [r["secure_version"] for r in j["releases"]] == [1, 1, 2, 2]
assert [r["channel"] for r in j["releases"]] == ["beta", "prod", "beta", "prod"]
log = j["audit_logs"][0]
# Five "bundle" entries: four releases and the pending bundle (named by its output file).
assert log["path"] == "audit/audit.jsonl" and log["valid"] and log["releases"] == 5, log
assert log["untagged"] == 0 and log["failed"] == 0, log
assert all(s["verdict"] in ("pass", "info") for s in j["repository_steps"]), j["repository_steps"]
PY
# One job or two: the same answer.
run audit "$R" --all --jobs 1
one=$OUT
run audit "$R" --all --jobs 2
[ "$one" = "$OUT" ] && ok || fail "--jobs 1 and --jobs 2 differ"
expect_rc 0 "--product" audit "$R" --product "$P"
printf '%s\n' "$OUT" | grep -q "^VERIFIED: 4 releases" && ok || fail "--product: $OUT"
expect_rc 1 "--product with no release" audit "$R" --product other-product --no-policy
expect_err "^fwrel-verify: $R: repository: repo.tags: 4 tags, 0 of them releases of other-product" \
    "--product with no release"
# With the keystore: every key id of every release is in its index, all active.
expect_rc 0 "clean audit --keystore" audit "$R" --all --keystore "$T/ks" --json
python3 -c '
import json, sys
j = json.load(sys.stdin)
for r in j["releases"]:
    k = [s for s in r["steps"] if s["step"] == "keys"]
    assert k[0]["verdict"] == "pass", k
    assert r["keys"] and all(x["status"] == "active" and x["name"] for x in r["keys"]), r["keys"]
' <<<"$OUT" && ok || fail "keys with --keystore: $OUT"

# Without a policy: every check passes, but the verdict says the approvers were not checked
# against one (issue 13 point 9), and --json does not say verified.
expect_rc 0 "--no-policy" audit "$R" --all --no-policy
printf '%s\n' "$OUT" | grep -q "^NOT VERIFIED AGAINST A POLICY: 4 releases, every check passed, but approvals and tag signers were checked only against each release's own record (--no-policy)$" &&
    ok || fail "--no-policy verdict: $OUT"
printf '%s\n' "$OUT" | grep -q "^VERIFIED" && fail "--no-policy says VERIFIED: $OUT" || ok
printf '%s\n' "$OUT" | grep -q "^INFO policy: no policy given: approvals and tag signers were checked only against" &&
    ok || fail "--no-policy: no policy line: $OUT"
expect_rc 0 "--no-policy --json" audit "$R" --all --no-policy --json
python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["verified"] is False and j["checks_passed"] is True and j["policy"] is None, j
' <<<"$OUT" && ok || fail "--no-policy --json: $OUT"
expect_rc 0 "--no-policy --report" audit "$R" --all --no-policy --report "$T/nopol.html"
grep -q 'NOT VERIFIED AGAINST A POLICY: 4 releases' "$T/nopol.html" && ok || fail "--no-policy report"
grep -q 'VERIFIED: 4 releases, every check passed</p>' "$T/nopol.html" && fail "--no-policy report says VERIFIED" || ok

# Usage errors: exit 2, one line.
expect_rc 2 "--repo without --policy or --no-policy" fwrel-verify --repo "$R" --all --gnupg-home "$G"
expect_err "^fwrel-verify: --repo needs --policy POLICY \(the approvers in force\) or --no-policy \(see" "no policy"
expect_rc 2 "--policy and --no-policy" audit "$R" --all --policy "$T/policy.yaml" --no-policy
expect_err "^fwrel-verify: --policy and --no-policy exclude each other \(see" "--policy --no-policy"
expect_rc 2 "--policy of another product" audit "$R" --product other-product
expect_err "^fwrel-verify: the policy is for product $P, not other-product \(see" "--policy of another product"
printf 'fwrel-policy: 2\n' >"$T/bad-policy.yaml"
expect_rc 3 "--repo with a malformed policy" audit "$R" --all --policy "$T/bad-policy.yaml"
expect_err "^fwrel-verify: $T/bad-policy.yaml:[0-9]+:[0-9]+: policy schema version 2; this fwrel reads version 1$" "malformed policy"
expect_rc 2 "--repo without --product or --all" audit "$R"
expect_err "^fwrel-verify: --repo needs --product PRODUCT or --all" "--repo alone"
expect_rc 2 "--repo with a FILE" audit "$R" --all "$T/app-1.0.0.bin"
expect_err "^fwrel-verify: --repo takes no FILE argument" "--repo FILE"
expect_rc 2 "--jobs 0" audit "$R" --all --jobs 0
expect_err "^fwrel-verify: --jobs must be 1\.\.256" "--jobs 0"
expect_rc 2 "--report without --repo" fwrel-verify --report "$T/x.html" --info "$T/app-1.0.0.bin"
expect_absent "$T/x.html" "--report without --repo"
expect_rc 3 "not a repository" audit "$T/ks" --all
expect_err "^fwrel-verify: $T/ks: not a bare git repository" "not a repository"

# --- each tampering, on a copy --------------------------------------------------------------
C="$T/c"
copy() { rm -rf "$C" && cp -a "$R" "$C"; }
# rejected DESC N STEP TAG: exit 1, one stderr line naming N failed releases and the first
# failure; stdout names STEP failed for TAG ("-" for a repository step).
rejected() {
    local desc=$1 n=$2 step=$3 tag=$4
    shift 4
    expect_rc 1 "$desc" audit "$C" --all "$@"
    if [ "$tag" = - ]; then
        expect_err "^fwrel-verify: $C: (repository: $step: |$n of [0-9]+ releases failed; first: )" "$desc"
        printf '%s\n' "$OUT" | grep -q "^FAIL $step: " && ok || fail "$desc: no FAIL $step: $OUT"
    else
        expect_err "^fwrel-verify: $C: $n of [0-9]+ releases failed; first: " "$desc"
        printf '%s\n' "$OUT" | grep -q "^FAIL $tag $step: " && ok ||
            fail "$desc: no FAIL $tag $step: $OUT"
    fi
}
tag_message() { git -C "$1" cat-file tag "$2" | sed '1,/^$/d; /^-----BEGIN PGP SIGNATURE-----/,$d'; }
GIT="git -c user.name=Mallory -c user.email=m@example.invalid -c gpg.program=gpg"

# rewrite_p4 MODE,BLOB,PATH: on a fresh copy, the last release's commit rewritten with that entry
# (update-index --cacheinfo; BLOB in $R), the branch moved, and its tag re-made with the same
# message, signed by a pinned approver.
rewrite_p4() {
    copy
    local old tree new
    old=$(git -C "$C" rev-parse "$P4^{commit}")
    GIT_INDEX_FILE="$T/index" git -C "$C" read-tree "$old"
    GIT_INDEX_FILE="$T/index" git -C "$C" update-index --add --cacheinfo "$1"
    tree=$(GIT_INDEX_FILE="$T/index" git -C "$C" write-tree)
    new=$($GIT -C "$C" commit-tree "$tree" -p "$old^" -m "release $P4")
    git -C "$C" update-ref refs/heads/main "$new" "$old"
    tag_message "$C" "$P4" >"$T/msg"
    GNUPGHOME="$G" $GIT -c user.signingkey="$A2" -C "$C" tag -f -s -F "$T/msg" "$P4" "$new" >/dev/null 2>&1
}

# 1. The last tag replaced by an unsigned one with the same message and commit.
copy
tag_message "$C" "$P4" >"$T/msg"
$GIT -C "$C" tag -f -a -F "$T/msg" "$P4" "$P4^{commit}" >/dev/null 2>&1
rejected "unsigned tag" 1 tag.signature "$P4"
expect_err "first: $P4: tag.signature: tag is not signed" "unsigned tag"
expect_rc 1 "unsigned tag --json" audit "$C" --all --json
python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["verified"] is False and j["failed_releases"] == 1 and j["error"]["code"] == 1, j
bad = [r for r in j["releases"] if r["verdict"] == "fail"]
assert [(r["tag"], r["failed_step"]) for r in bad] == [(sys.argv[1], "tag.signature")], bad
assert bad[0]["signer"] == "", bad[0]
' "$P4" <<<"$OUT" && ok || fail "unsigned tag --json: $OUT"
# 2. A tag re-pointed (lightweight) to the release before it: that commit has two tags, the
#    last commit none.
copy
git -C "$C" tag -f "$P4" "$B3^{commit}" >/dev/null 2>&1
rejected "re-pointed tag" 2 tag.signature "$P4"
printf '%s\n' "$OUT" | grep -q "^FAIL $B3 repo.branch: commit [0-9a-f]* carries 2 release tags" &&
    ok || fail "re-pointed tag: $B3 repo.branch: $OUT"
printf '%s\n' "$OUT" | grep -q "^FAIL repo.branch: 1 commit of the release branch has no release tag" &&
    ok || fail "re-pointed tag: repo.branch: $OUT"
# 3. The last release's bundle rewritten: a new blob, tree and commit made with plumbing, the
#    branch moved, and the tag re-made with the same message and signed by a pinned approver.
#    Plain git verify-tag accepts it; the auditor does not.
git -C "$R" show "$P4:$P4/bundle.fwb" >"$T/b4.fwb"
printf '\001' | dd of="$T/b4.fwb" bs=1 seek=700 conv=notrunc 2>/dev/null
rewrite_p4 "100644,$(git -C "$R" hash-object -w "$T/b4.fwb"),$P4/bundle.fwb"
expect_rc 0 "git verify-tag accepts the re-signed tag" env GNUPGHOME="$G" git -C "$C" verify-tag "$P4"
rejected "bundle rewritten" 1 bundle.blob "$P4"
expect_err "first: $P4: bundle.blob: $P4/bundle.fwb in the tree has sha256 " "bundle rewritten"
# The changed byte lands in some member: SHA256SUMS no longer matches it (or, if it is
# SHA256SUMS itself, the approvals over it fail).
printf '%s\n' "$OUT" | grep -Eq "^FAIL $P4 ci\.(bundle\.sums|approvals): " && ok ||
    fail "bundle rewritten: CI checks: $OUT"
# 4. The same, without changing anything, re-signed by a key the release does not pin.
copy
tag_message "$C" "$P4" >"$T/msg"
GNUPGHOME="$G" $GIT -c user.signingkey="$M" -C "$C" tag -f -s -F "$T/msg" "$P4" "$P4^{commit}" >/dev/null 2>&1
rejected "tag signed by an unpinned key" 1 tag.signer "$P4"
expect_err "first: $P4: tag.signer: the tag is signed by $M, not an approver the policy pins" \
    "tag signed by an unpinned key"
rejected "tag signed by an unpinned key, no policy" 1 tag.signer "$P4" --no-policy
expect_err "first: $P4: tag.signer: the tag is signed by $M, not an approver the release pins" \
    "tag signed by an unpinned key, no policy"
# 5. A bundle changed in the middle of the history by rewriting the release's commit and every
#    commit after it (each tag re-made with its own message by a pinned approver).
copy
git -C "$C" show "$B3:$B3/bundle.fwb" >"$T/b3.fwb"
printf '\001' | dd of="$T/b3.fwb" bs=1 seek=700 conv=notrunc 2>/dev/null
blob=$(git -C "$C" hash-object -w "$T/b3.fwb")
parent=$(git -C "$C" rev-parse "$P2^{commit}")
for t in $B3 $P4; do
    GIT_INDEX_FILE="$T/index" git -C "$C" read-tree "$t^{commit}"
    GIT_INDEX_FILE="$T/index" git -C "$C" update-index --cacheinfo "100644,$blob,$B3/bundle.fwb"
    tree=$(GIT_INDEX_FILE="$T/index" git -C "$C" write-tree)
    parent=$($GIT -C "$C" commit-tree "$tree" -p "$parent" -m "release $t")
    tag_message "$C" "$t" >"$T/msg"
    GNUPGHOME="$G" $GIT -c user.signingkey="$A1" -C "$C" tag -f -s -F "$T/msg" "$t" "$parent" >/dev/null 2>&1
done
git -C "$C" update-ref refs/heads/main "$parent"
rejected "bundle rewritten in the middle" 1 bundle.blob "$B3"
expect_err "first: $B3: bundle.blob: " "bundle rewritten in the middle"
# 6. An earlier release's bundle changed only in the last release's tree (its own commit keeps
#    the original): the last commit changes a file that is not its release's.
rewrite_p4 "100644,$(git -C "$R" hash-object -w "$T/b3.fwb"),$B3/bundle.fwb"
rejected "an earlier bundle changed in a later tree" 1 repo.branch "$P4"
expect_err "first: $P4: repo.branch: the commit modifies $B3/bundle.fwb, outside its release" \
    "an earlier bundle changed in a later tree"

# 7. The live audit log edited in the middle (a line of the first release).
copy
sed -i '2s/"user":"rel-op"/"user":"someone"/' "$C/$LOG"
grep -q '"user":"someone"' "$C/$LOG" && ok || fail "the edit did not apply"
rejected "audit log edited" 4 audit.log -
printf '%s\n' "$OUT" | grep -q "^FAIL audit.log: $LOG: .*line 3" && ok || fail "audit log edited: line: $OUT"
for t in $B1 $P2 $B3 $P4; do
    printf '%s\n' "$OUT" | grep -q "^FAIL $t audit.live: the log committed at the tag is not a prefix of the live log (they differ at line 2)" &&
        ok || fail "audit log edited: $t audit.live: $OUT"
done
# 8. The live log truncated: its last line (the last release's own entry) removed.
copy
sed -i '$d' "$C/$LOG"
rejected "audit log truncated" 1 audit.live "$P4"
expect_err "first: $P4: audit.live: the live log has [0-9]+ entries; the tag names entry [0-9]+ \(truncated\?\)" \
    "audit log truncated"
printf '%s\n' "$OUT" | grep -q "^PASS audit.log: " && ok || fail "truncated log: the chain itself is valid: $OUT"
# 9. A torn last line appended to the live log.
copy
printf '{"event":"sign","inputs":[{"na' >>"$C/$LOG"
rejected "torn last line" 0 audit.log -
expect_err "^fwrel-verify: $C: repository: audit.log: $LOG: .*torn" "torn last line"
printf '%s\n' "$OUT" | grep -q "^FAIL $P4 " && fail "torn line: a release failed: $OUT" || ok
# 10. The last release removed with its tag and commit: nothing signed names it any more, so the
#     audit passes (docs/verify.md says so); the live log still holds its entries, and the
#     summary names the bundle entry without a tag.
copy
git -C "$C" tag -d "$P4" >/dev/null
git -C "$C" update-ref refs/heads/main "$B3^{commit}"
expect_rc 0 "last release removed" audit "$C" --all
printf '%s\n' "$OUT" | grep -q "^INFO audit.log: $LOG: 1 bundle entry names no tag of the repository (first $P4)" &&
    ok || fail "last release removed: no note of its bundle entry: $OUT"
# 11. A release with a lower secure_version, made under a policy whose anti-rollback is not
#    monotonic: the release is well signed and approved; the history is not.
copy
sed 's/monotonic: true/monotonic: false/' "$T/policy.yaml" >"$T/policy-nm.yaml"
# Under the monotonic policy fwrel-bundle refuses it with the very reason the auditor gives below
# (one rule, rules.h: the policy in force's monotonic, before and after).
REPO=$C expect_rc 1 "release with a lower secure_version, monotonic" \
    bundle "$T/policy.yaml" beta "$T/app-1.2.0.bin" -A "$A1"
expect_err "^fwrel-bundle: secure_version 1 is below 2 of $B3, an earlier release \(rollback\)$" \
    "lower secure_version, monotonic"
REPO=$C expect_rc 0 "release with a lower secure_version" \
    bundle "$T/policy-nm.yaml" beta "$T/app-1.2.0.bin" -A "$A1"
B5=$P/beta/v1.2.0
rejected "lower secure_version" 1 history.secure_version "$B5"
expect_err "first: $B5: history.secure_version: secure_version 1 is below 2 of $B3, an earlier release \(rollback\)" \
    "lower secure_version"
# ... and the policy change is visible (a note, not a failure: the given policy's rule applies).
printf '%s\n' "$OUT" | grep -q "^INFO policy: policy sha256 [0-9a-f]*\.\.\. ($P) applied; 1 release records another policy (first $B5): the policy changed$" &&
    ok || fail "policy change not reported: $OUT"
# ... audited against the policy it was made under, the same rule fwrel-bundle applied (issue 14:
# the pipeline allowed it, the auditor always refused it), and held monotonic without a policy.
expect_rc 0 "lower secure_version under its own non-monotonic policy" audit "$C" --all \
    --policy "$T/policy-nm.yaml" --json
python3 -c '
import json, sys
r = [r for r in json.loads(sys.argv[1])["releases"] if r["tag"] == sys.argv[2]][0]
s = [s for s in r["steps"] if s["step"] == "history.secure_version"][0]
assert s["verdict"] == "pass", s
assert s["detail"] == "secure_version 1 (the policy does not hold it monotonic)", s
' "$OUT" "$B5" && ok || fail "non-monotonic policy: history.secure_version: $OUT"
rejected "lower secure_version, no policy" 1 history.secure_version "$B5" --no-policy
# 12. Keys at release time (docs/rules.md): a key revoked for supersession after the releases
#     leaves them valid, with a note; compromised since a date on or before them fails every
#     release it signed, with the exact reason; a retired key is noted.
cp -a "$T/ks" "$T/ks-superseded"
expect_rc 0 "revoke mf-release-1 superseded" fwrel-keygen -q --keystore "$T/ks-superseded" \
    --revoke mf-release-1 --reason superseded
expect_rc 0 "superseded key: audit clean" audit "$R" --all --keystore "$T/ks-superseded" --json
python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["verified"] is True, j
n = 0
for r in j["releases"]:
    keys = [s for s in r["steps"] if s["step"] == "keys"]
    assert keys[0]["verdict"] == "pass", keys
    info = [s for s in keys if s["verdict"] == "info"]
    if [k for k in r["keys"] if k.get("name") == "mf-release-1"]:
        n += 1
        assert info and "mf-release-1 epoch 1 (id " in info[0]["detail"] and \
            ", after the release at " in info[0]["detail"] and \
            info[0]["detail"].endswith(": valid at release time"), keys
assert n == 4, n
' <<<"$OUT" && ok || fail "superseded key: valid at release time: $OUT"
cp -a "$T/ks" "$T/ks-revoked"
made=$(python3 -c 'import json,sys; print([k["created"] for k in json.load(open(sys.argv[1]))["keys"]
    if k["name"] == "mf-release-1"][0])' "$T/ks/index.json")
mid=$(python3 -c 'import json,sys; print([k["id"] for k in json.load(open(sys.argv[1]))["keys"]
    if k["name"] == "mf-release-1"][0][:16])' "$T/ks/index.json")
expect_rc 0 "revoke mf-release-1 compromised" fwrel-keygen -q --keystore "$T/ks-revoked" \
    --revoke mf-release-1 --reason compromised --since "$made"
copy
rejected "compromised key" 4 keys "$B1" --keystore "$T/ks-revoked"
# P4's release time: the time of its entry in the audit log its tag commits.
t4=$(git -C "$R" show "$P4:$LOG" | tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["time"])')
printf '%s\n' "$OUT" | grep -qxF "FAIL $P4 keys: signed with mf-release-1 epoch 1 (id $mid...) compromised since $made, at or before the release at $t4" &&
    ok || fail "compromised key: $OUT"
cp -a "$T/ks" "$T/ks-rotated"
expect_rc 0 "rotate mf-release-1" fwrel-keygen -q --keystore "$T/ks-rotated" --no-passphrase \
    --rotate mf-release-1
expect_rc 0 "retired key" audit "$R" --all --keystore "$T/ks-rotated" --json
python3 -c '
import json, sys
j = json.load(sys.stdin)
for r in j["releases"]:
    info = [s for s in r["steps"] if s["step"] == "keys" and s["verdict"] == "info"]
    assert info and "mf-release-1 epoch 1 (id " in info[0]["detail"] and \
        "retired at " in info[0]["detail"], r["steps"]
    assert [k for k in r["keys"] if k.get("name") == "mf-release-1"][0]["status"] == "retired"
' <<<"$OUT" && ok || fail "retired key noted: $OUT"

# 13. Issue 13 point 5: a forged release under this product's name and path whose signed message
#     names another product. --product used to skip it by that message before checking anything
#     (VERIFIED); it is selected by its name and path, and fails naming the disagreement.
copy
P6=$P/prod/v1.3.0
old=$(git -C "$C" rev-parse "$P4^{commit}")
GIT_INDEX_FILE="$T/index" git -C "$C" read-tree "$old"
for f in bundle.fwb release.json; do
    GIT_INDEX_FILE="$T/index" git -C "$C" update-index --add --cacheinfo \
        "100644,$(git -C "$C" rev-parse "$P4:$P4/$f"),$P6/$f"
done
tree=$(GIT_INDEX_FILE="$T/index" git -C "$C" write-tree)
new=$($GIT -C "$C" commit-tree "$tree" -p "$old" -m "release $P6")
git -C "$C" update-ref refs/heads/main "$new" "$old"
tag_message "$C" "$P4" | sed "1s/^fwrel release $P 1.1.1 (prod)\$/fwrel release other-product 1.3.0 (prod)/" >"$T/msg"
head -1 "$T/msg" | grep -q "^fwrel release other-product 1.3.0 (prod)$" && ok || fail "forged message: $(head -1 "$T/msg")"
GNUPGHOME="$G" $GIT -c user.signingkey="$A1" -C "$C" tag -s -F "$T/msg" "$P6" "$new" >/dev/null 2>&1
expect_rc 1 "forged release under $P's path, --product" audit "$C" --product "$P"
expect_err "^fwrel-verify: $C: 1 of 5 releases failed; first: $P6: tag.name: the tag name says product $P, the message other-product$" \
    "forged release under $P's path"
printf '%s\n' "$OUT" | grep -q "^FAIL $P6 bundle.blob: the tag names $P4/bundle.fwb, not $P6/bundle.fwb" &&
    ok || fail "forged release: bundle.blob: $OUT"
expect_rc 1 "forged release under $P's path, --no-policy" audit "$C" --product "$P" --no-policy
expect_err "first: $P6: tag.name: the tag name says product $P, the message other-product$" \
    "forged release, --no-policy"
# The same release tagged under the other product's name: its commit writes under $P's path.
git -C "$C" tag -d "$P6" >/dev/null
GNUPGHOME="$G" $GIT -c user.signingkey="$A1" -C "$C" tag -s -F "$T/msg" "other-product/prod/v1.3.0" "$new" >/dev/null 2>&1
expect_rc 1 "forged release by path, --product" audit "$C" --product "$P"
expect_err "first: other-product/prod/v1.3.0: bundle.blob: " "forged release by path"
printf '%s\n' "$OUT" | grep -q "^FAIL other-product/prod/v1.3.0 repo.branch: the commit adds $P6/bundle.fwb, outside its release" &&
    ok || fail "forged release by path: repo.branch: $OUT"

# 14. Issue 13 point 9: a release approved (and tagged) by a key of the keyring that the policy in
#     force does not pin, made under a policy of its own that pins it: its own record vouches for
#     it (--no-policy passes, as the old audit did), the policy does not.
copy
sed "/- $A3$/{p;s/$A3/$M/}" "$T/policy.yaml" >"$T/policy-m.yaml"
REPO=$C expect_rc 0 "release approved by an unpinned key" \
    bundle "$T/policy-m.yaml" beta "$T/app-1.3.0.bin" -A "$M"
B6=$P/beta/v1.3.0
expect_rc 0 "its own record vouches for it (--no-policy)" audit "$C" --all --no-policy
rejected "release approved by a key the policy does not pin" 1 approvals "$B6"
expect_err "first: $B6: approvals: approvals/$M.asc: signed by a key the policy does not pin; 0 of 1 required approvals$" \
    "release approved by a key the policy does not pin"
printf '%s\n' "$OUT" | grep -q "^FAIL $B6 tag.signer: the tag is signed by $M, not an approver the policy pins" &&
    ok || fail "unpinned approver: tag.signer: $OUT"
# 15. A prod release made under a policy of its own requiring no approval (said explicitly, so it
#     loads): it passes by its own record, and fails against the policy in force (2 required).
copy
sed 's/^  prod: {sign_slots: \[0\]}/  prod: {sign_slots: [0], approvals_required: 0, allow_no_approvals: true}/' \
    "$T/policy.yaml" >"$T/policy-weak.yaml"
grep -q "allow_no_approvals" "$T/policy-weak.yaml" && ok || fail "the weak policy was not made"
REPO=$C expect_rc 0 "prod release without approvals" \
    bundle "$T/policy-weak.yaml" prod "$T/app-1.3.0.bin" --tag-signer "$A1"
P6=$P/prod/v1.3.0
expect_rc 0 "its own record vouches for it (--no-policy)" audit "$C" --all --no-policy
rejected "prod release without approvals" 1 approvals "$P6"
expect_err "first: $P6: approvals: 0 of 2 required approvals$" "prod release without approvals"

# 16. Issue 13 point 11: the release directory holds exactly its two files, plain (100644). An
#     extra file, an executable bundle and a symlink, each added by rewriting the last release's
#     commit and re-signing its tag by a pinned approver (rewrite_p4), fail release.dir.
blob=$(printf 'notes\n' | git -C "$R" hash-object -w --stdin)
rewrite_p4 "100644,$blob,$P4/notes.txt"
rejected "extra file in a release directory" 1 release.dir "$P4"
expect_err "first: $P4: release.dir: $P4/notes.txt is not a file of a release \(mode 100644\)$" "extra file"
rewrite_p4 "100755,$(git -C "$R" rev-parse "$P4:$P4/bundle.fwb"),$P4/bundle.fwb"
rejected "executable bundle" 1 release.dir "$P4"
expect_err "first: $P4: release.dir: $P4/bundle.fwb has mode 100755, executable, not 100644$" "executable bundle"
blob=$(printf '../../../../etc/passwd' | git -C "$R" hash-object -w --stdin)
rewrite_p4 "120000,$blob,$P4/passwd"
rejected "symlink in a release directory" 1 release.dir "$P4"
expect_err "first: $P4: release.dir: $P4/passwd is not a file of a release \(mode 120000, a symlink\)$" "symlink"

# 17. Issue 13 point 11: a FIFO as the live audit log is refused at once (it used to hang the
#     auditor forever on open): the log step fails, naming it. timeout guards the test: the
#     audit itself (GnuPG for every tag) takes seconds, the old hang forever (exit 124).
copy
rm "$C/$LOG" && mkfifo "$C/$LOG"
run timeout 120 fwrel-verify --repo "$C" --all --gnupg-home "$G" --policy "$T/policy.yaml"
[ "$RC" -eq 1 ] && ok || fail "FIFO live log: exit $RC (124: hung): $ERR"
printf '%s\n' "$OUT" | grep -q "^FAIL audit.log: $LOG: the live log is not a regular file$" && ok ||
    fail "FIFO live log: $OUT"
expect_err "first: $B1: audit.live: no live log at $LOG: the live log is not a regular file$" "FIFO live log"

# --- the HTML report ----------------------------------------------------------------------
# A hostile tag name (git allows <, >, &, " and ' in ref names) on a copy, signed by an approver
# with the first release's message: a failed release like any other (its files are not where its
# name says), and escaped everywhere in the report.
copy
HT="x/<b>&\"'q"
tag_message "$C" "$B1" >"$T/msg"
GNUPGHOME="$G" $GIT -c user.signingkey="$A1" -C "$C" tag -s -F "$T/msg" "$HT" "$B1^{commit}" >/dev/null 2>&1
run audit "$C" --all --report "$T/hostile.html"
[ "$RC" -eq 1 ] && ok || fail "hostile tag: exit $RC: $ERR"
printf '%s\n' "$OUT" | grep -qF "FAIL $HT bundle.blob: the tag names $B1/bundle.fwb, not $HT/bundle.fwb" &&
    ok || fail "hostile tag: bundle.blob: $OUT"
printf '%s\n' "$OUT" | grep -qF "FAIL $HT record.tree: invalid path in the repository" &&
    ok || fail "hostile tag: record.tree: $OUT"
grep -q '<b>&' "$T/hostile.html" && fail "hostile tag name not escaped" || ok
grep -q 'x/&lt;b&gt;&amp;&quot;&#39;q' "$T/hostile.html" && ok || fail "hostile tag name: escaped form missing"
grep -Eiq '<script|src=|href="(https?:|//)|@import|url\(' "$T/hostile.html" &&
    fail "the report refers to something outside itself or runs a script" || ok

expect_rc 0 "clean audit --report" audit "$R" --all --report "$T/audit.html"
for t in $B1 $P2 $B3 $P4; do
    grep -q ">$t</a>" "$T/audit.html" && ok || fail "report: no timeline entry for $t"
done
grep -q 'VERIFIED: 4 releases, every check passed' "$T/audit.html" && ok || fail "report verdict"
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
    skip "no chromium"
else
    # A private profile, no network; the page needs neither.
    chrome() { timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$T/chrome" "$@" 2>/dev/null; }
    (cd "$T" && chrome --screenshot="$T/audit.png" --window-size=1280,2000 "file://$T/audit.html")
    if [ -s "$T/audit.png" ] && [ "$(head -c 8 "$T/audit.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
        ok
    else
        fail "chromium made no PNG screenshot of the report"
    fi
    chrome --dump-dom "file://$T/audit.html" >"$T/dom.html"
    for t in $B1 $P2 $B3 $P4; do
        grep -q ">$t</a>" "$T/dom.html" && ok || fail "rendered report: no $t"
    done
    grep -q 'VERIFIED: 4 releases' "$T/dom.html" && ok || fail "rendered report: verdict"
fi
finish
