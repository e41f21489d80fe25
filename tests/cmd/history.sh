# The release history fwrel-bundle believes (history.h), on a real keystore, GnuPG home and git
# repository: tags off the release branch (unsigned, or signed by a pinned approver) carrying
# counter 4294967295, secure_version 16 and version 99.0.0 are ignored and reported, and the next
# release gets the right counter; a release tag replaced by one signed by an unpinned key, or
# deleted, stops the next release (exit 1, the commit and its release named) and the auditor fails
# it, until fwrel-bundle --repair-history signs it again (in the audit log); the counter is not
# reused; a release killed between its branch and its tag is still undone by the next one (the
# journal says so); a forged commit on the branch's tip cannot be tagged again, only dropped.
. "$FWREL_SRC/tests/lib.sh"
release_setup
img 1.0.0 1; img 1.1.0 2; img 1.2.0 2; img 1.3.0 2; img 1.4.0 3; img 1.5.0 3

R="$T/releases"
P=acme-thermostat
# Release times an hour apart from a day ago: a manifest is never expired on arrival.
T0=$(($(date +%s) - 86400))
N=0
release_in() { # POLICY REPO VERSION [OPTIONS...]: a beta release of app-VERSION.bin, the next hour
    local pol=$1 repo=$2 v=$3
    shift 3
    N=$((N + 1))
    SOURCE_DATE_EPOCH=$((T0 + 3600 * N)) fwrel-bundle --policy "$pol" \
        --keystore "$T/ks" --repo "$repo" --channel beta --gnupg-home "$G" --no-passphrase \
        --user rel-op --templates "$FWREL_SRC/templates" "$@" "$T/app-$v.bin"
}
bundle() { release_in "$T/policy.yaml" "$R" "$1" -A "$A1" "${@:2}"; } # VERSION [OPTIONS...]
repair() { # COMMIT [OPTIONS...]
    local c=$1
    shift
    N=$((N + 1))
    SOURCE_DATE_EPOCH=$((T0 + 3600 * N)) fwrel-bundle --repair-history "$c" \
        --policy "$T/policy.yaml" --repo "$R" --gnupg-home "$G" --user rel-op "$@"
}
audit() { fwrel-verify --repo "$R" --gnupg-home "$G" --all --policy "$T/policy.yaml" "$@"; }
refs() { git -C "$R" for-each-ref --format='%(refname) %(objectname)'; }
counter_of() { git -C "$R" show "main:$P/beta/v$1/release.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counter"])'; }
# forge PARENT VERSION: a commit on PARENT adding $P/beta/vVERSION/release.json, a copy of
# v1.0.0's with counter 4294967295, secure_version 16 and that version (canonical, as fwrel
# writes it); prints its id. No ref is moved.
forge() {
    local parent=$1 v=$2 blob tree
    blob=$(git -C "$R" show "main:$P/beta/v1.0.0/release.json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
r["counter"], r["secure_version"], r["version"] = 4294967295, 16, sys.argv[1]
sys.stdout.write(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n")' "$v" |
        git -C "$R" hash-object -w --stdin)
    rm -f "$T/index"
    GIT_INDEX_FILE="$T/index" git -C "$R" read-tree "$parent"
    GIT_INDEX_FILE="$T/index" git -C "$R" update-index --add --cacheinfo "100644,$blob,$P/beta/v$v/release.json"
    tree=$(GIT_INDEX_FILE="$T/index" git -C "$R" write-tree)
    git -C "$R" -c user.name=x -c user.email=x@example.invalid commit-tree -p "$parent" \
        -m "release $P/beta/v$v" "$tree"
}
gittag() { GNUPGHOME="$G" git -C "$R" -c user.name=x -c user.email=x@example.invalid tag "$@"; }

expect_rc 0 "release 1.0.0" bundle 1.0.0
expect_rc 0 "release 1.1.0" bundle 1.1.0
C2=$(git -C "$R" rev-parse main)

# --- tags off the release branch: ignored and reported ----------------------------------------
OFF1=$(forge main 99.0.0)
OFF2=$(forge main 98.0.0)
gittag -a -m "fwrel release $P 99.0.0 (beta)" "$P/beta/v99.0.0" "$OFF1"  # unsigned
gittag -s -u "$A1" -m "fwrel release $P 98.0.0 (beta)" "$P/beta/v98.0.0" "$OFF2"  # a pinned signer
expect_rc 0 "release 1.2.0 beside forged tags" bundle 1.2.0
printf '%s\n' "$OUT" | grep -q "^released $P 1.2.0 (beta), counter 3, secure_version 2: tag $P/beta/v1.2.0" &&
    ok || fail "release 1.2.0: $OUT"
expect_out "^INFO history +tag $P/beta/v99.0.0 ignored: its commit $OFF1 is not on the release branch$" \
    "unsigned off-branch tag not reported"
expect_out "^INFO history +tag $P/beta/v98.0.0 ignored: its commit $OFF2 is not on the release branch$" \
    "signed off-branch tag not reported"
[ "$(counter_of 1.2.0)" = 3 ] && ok || fail "counter of 1.2.0: $(counter_of 1.2.0)"
C3=$(git -C "$R" rev-parse main)
gittag -d "$P/beta/v99.0.0" "$P/beta/v98.0.0" >/dev/null

# --- a release tag re-signed by a key the policy does not pin -----------------------------------
git -C "$R" cat-file tag "$P/beta/v1.1.0" | sed -n '/^$/,/^-----BEGIN PGP SIGNATURE/p' | sed '1d;$d' >"$T/msg2"
gittag -d "$P/beta/v1.1.0" >/dev/null
gittag -s -u "$M" -F "$T/msg2" "$P/beta/v1.1.0" "$C2"
before=$(refs)
expect_rc 1 "release on a tag by an unpinned key" bundle 1.3.0
expect_err "^fwrel-bundle: release commit $C2 \($P/beta/v1.1.0, counter 2\) on the release branch has no verified tag: repair it first \(fwrel-bundle --repair-history $C2\)$" \
    "unpinned tag"
printf '%s\n' "$OUT" | grep -Eq "^INFO history +tag $P/beta/v1.1.0 ignored: signed by $M, not a key the policy pins$" &&
    ok || fail "unpinned tag not reported: $OUT"
[ "$(refs)" = "$before" ] && ok || fail "a refused release changed the refs"
# The impostor tag must go before the release is signed again.
expect_rc 1 "repair beside the impostor tag" repair "$C2" --tag-signer "$A1"
expect_err "tag $P/beta/v1.1.0 exists but is not a verified release tag \(see the ignored tags\): delete it, then repair$" \
    "repair beside the impostor"
gittag -d "$P/beta/v1.1.0" >/dev/null
expect_rc 2 "repair without a signer" repair "$C2"
expect_err "a repair needs --tag-signer FPR" "repair without a signer"
expect_rc 1 "repair by an unpinned signer" repair "$C2" --tag-signer "$M"
expect_err "$M is not an approver the policy pins" "repair by an unpinned signer"
expect_rc 0 "repair $C2" repair "$C2" --tag-signer "$A1"
printf '%s\n' "$OUT" | grep -q "^repaired $P 1.1.0 (beta), counter 2: tag $P/beta/v1.1.0 on commit ${C2:0:12}$" &&
    ok || fail "repair output: $OUT"
expect_rc 0 "git verify-tag after the repair" env GNUPGHOME="$G" git -C "$R" verify-tag "$P/beta/v1.1.0"
tail -1 "$R/audit/audit.jsonl" | python3 -c '
import json, sys
e = json.loads(sys.stdin.read())
assert e["event"] == "repair" and e["result"] == "ok", e
assert e["who"]["fingerprint"] == sys.argv[1], e
assert e["inputs"][0]["name"] == "%s/beta/v1.1.0/release.json at commit %s" % (sys.argv[2], sys.argv[3]), e
assert e["outputs"][0]["name"] == "refs/tags/%s/beta/v1.1.0" % sys.argv[2], e' "$A1" "$P" "$C2" &&
    ok || fail "repair entry in the audit log: $(tail -1 "$R/audit/audit.jsonl")"
# A refused repair is in the audit log too.
grep -q "\"event\":\"repair\".*\"reason\":\"repair of commit $C2 failed at repair: tag $P/beta/v1.1.0 exists but" \
    "$R/audit/audit.jsonl" && ok || fail "refused repair not logged"

# --- the newest tag deleted -------------------------------------------------------------------
gittag -d "$P/beta/v1.2.0" >/dev/null
before=$(refs)
expect_rc 1 "release after the newest tag was deleted" bundle 1.3.0
expect_err "^fwrel-bundle: release commit $C3 \($P/beta/v1.2.0, counter 3\) on the release branch has no verified tag: repair it first \(fwrel-bundle --repair-history $C3\)$" \
    "deleted tag"
[ "$(refs)" = "$before" ] && ok || fail "a refused release changed the refs"
[ "$(git -C "$R" rev-parse main)" = "$C3" ] && ok || fail "the tagless release was dropped from main"
grep -q "\"reason\":\"release $P/beta/v1.3.0 failed at history: release commit $C3" "$R/audit/audit.jsonl" &&
    ok || fail "refusal not logged"
# The auditor fails it too.
expect_rc 1 "audit with the tag deleted" audit
printf '%s\n' "$OUT" | grep -q "^FAIL repo.branch: 1 commit of the release branch has no release tag ($C3)$" &&
    ok || fail "auditor does not name $C3: $OUT"
expect_rc 0 "repair $C3" repair "$C3" --tag-signer "$A2"
expect_rc 0 "release 1.3.0 after the repair" bundle 1.3.0
[ "$(counter_of 1.3.0)" = 4 ] && ok || fail "counter reused: $(counter_of 1.3.0)"
expect_rc 0 "audit after the repairs" audit
[ -z "$ERR" ] && ok || fail "audit after the repairs: $ERR"

# --- a release killed between its branch and its tag is undone, as before ---------------------
FWREL_TEST_KILL_AT=tag-ref TMPDIR="$T" run bundle 1.4.0 -q
[ "$RC" -eq 137 ] && ok || fail "kill at tag-ref: exit $RC $ERR"
[ -s "$R/fwrel-release.journal" ] && ok || fail "no journal after the kill"
K=$(git -C "$R" rev-parse main)
rm -rf "$T"/fwrel-release.*
expect_rc 0 "release after the kill" bundle 1.4.0
[ "$(counter_of 1.4.0)" = 5 ] && ok || fail "counter after the kill: $(counter_of 1.4.0)"
[ "$(git -C "$R" rev-parse main^)" = "$(git -C "$R" rev-parse "$P/beta/v1.3.0^{commit}")" ] && ok ||
    fail "the killed release's commit $K stayed on the branch"
[ ! -e "$R/fwrel-release.journal" ] && ok || fail "the journal outlived the release"

# --- a forged commit on the tip: only dropped ----------------------------------------------------
F=$(forge main 99.1.0)
git -C "$R" update-ref refs/heads/main "$F"
expect_rc 1 "release on a forged tip" bundle 1.5.0
expect_err "release commit $F \($P/beta/v99.1.0, counter 4294967295\) on the release branch has no verified tag" \
    "forged tip"
expect_rc 1 "tag the forged commit" repair "$F" --tag-signer "$A1"
expect_err "commit $F \($P/beta/v99.1.0\) breaks the history; if it is not a release of yours, drop it \(--drop\): counter 4294967295 follows 5 \($P/beta/v1.4.0\): a release is missing$" \
    "tag the forged commit"
expect_rc 1 "drop a commit that is not untagged" repair "$(git -C "$R" rev-parse main^)" --drop --tag-signer "$A1"
expect_err "is not an untagged commit of the release branch" "drop a tagged commit"
expect_rc 0 "drop the forged commit" repair "$F" --drop --tag-signer "$A1"
[ "$(git -C "$R" rev-parse main)" = "$(git -C "$R" rev-parse "$P/beta/v1.4.0^{commit}")" ] && ok ||
    fail "the forged commit is still on the branch"
tail -1 "$R/audit/audit.jsonl" | grep -q "\"event\":\"repair\".*\"inputs\":\[{\"name\":\"$P/beta/v99.1.0/release.json at commit $F\"" &&
    ok || fail "drop not in the audit log"
expect_rc 0 "release 1.5.0" bundle 1.5.0
[ "$(counter_of 1.5.0)" = 6 ] && ok || fail "counter of 1.5.0: $(counter_of 1.5.0)"
expect_rc 0 "final audit" audit
# --- a policy pinning no approver: only the tag signer the operator gives is believed ------------
# (trust anchors come from the policy or the command line, never from the GnuPG home: before,
# any key of the home, such as Mallory's, made a tag the history believed.)
sed -e '/^approvals:/,/^  required:/d' \
    -e 's/^  beta: .*/  beta: {sign_slots: [0], approvals_required: 0, allow_no_approvals: true}/' \
    -e '/^  prod: /d' "$T/policy.yaml" >"$T/policy-open.yaml"
R2="$T/releases-open"
open_bundle() { release_in "$T/policy-open.yaml" "$R2" "$@"; } # VERSION [OPTIONS...]
expect_rc 0 "open policy: release 1.0.0" open_bundle 1.0.0 --tag-signer "$A1"
expect_rc 0 "open policy: release 1.1.0" open_bundle 1.1.0 --tag-signer "$A1"
O2=$(git -C "$R2" rev-parse main)
# The newest tag replaced by one Mallory signs (a key of the home that nobody named).
git -C "$R2" cat-file tag "$P/beta/v1.1.0" | sed -n '/^$/,/^-----BEGIN PGP SIGNATURE/p' | sed '1d;$d' >"$T/msg-open"
GNUPGHOME="$G" git -C "$R2" -c user.name=x -c user.email=x@example.invalid tag -d "$P/beta/v1.1.0" >/dev/null
GNUPGHOME="$G" git -C "$R2" -c user.name=x -c user.email=x@example.invalid tag -s -u "$M" \
    -F "$T/msg-open" "$P/beta/v1.1.0" "$O2"
before=$(git -C "$R2" for-each-ref --format='%(refname) %(objectname)')
expect_rc 1 "open policy: release on a tag by a key nobody named" open_bundle 1.2.0 --tag-signer "$A1"
expect_err "^fwrel-bundle: release commit $O2 \($P/beta/v1.1.0, counter 2\) on the release branch has no verified tag: repair it first \(fwrel-bundle --repair-history $O2\)$" \
    "open policy: tag by a key nobody named"
printf '%s\n' "$OUT" | grep -Eq "^INFO history +tag $P/beta/v1.1.0 ignored: signed by $M, not a key the policy pins$" &&
    ok || fail "open policy: Mallory's tag not reported: $OUT"
[ "$(git -C "$R2" for-each-ref --format='%(refname) %(objectname)')" = "$before" ] && ok ||
    fail "open policy: a refused release changed the refs"
# Naming Mallory as this run's tag signer does not make the earlier releases hers either.
expect_rc 1 "open policy: Mallory as the tag signer" open_bundle 1.2.0 --tag-signer "$M"
expect_err "^fwrel-bundle: release commit [0-9a-f]{40} \($P/beta/v1.0.0, counter 1\) on the release branch has no verified tag" \
    "open policy: Mallory as the tag signer"
expect_rc 2 "--drop alone" fwrel-bundle --drop --policy "$T/policy.yaml" "$T/app-1.5.0.bin"
expect_err "--drop goes with --repair-history" "--drop alone"

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
