# fwrel-verify --repo --shard I/N and --merge-reports (issue 15 point 8, docs/verify.md
# "Sharding"): on a repository of four releases, the shards 1/2 and 2/2 each audit the releases
# their tag names hash to (re-derived here with python's hashlib), with the whole history's checks;
# their --json reports merged give the unsharded run's report, text, JUnit and verdict byte for
# byte, in any order and for 3 shards too. A release re-signed by a key no policy pins fails in
# exactly one shard and in the merge, with the unsharded run's error line. With stderr on a terminal
# (a pty) the audit rewrites one progress line there and erases it, stdout unchanged; never with
# -q, --json or off a terminal (stderr compared byte for byte). Malformed shards are
# usage errors; reports that are not one audit's shards (another state or policy, a shard twice or
# missing, a release twice, missing or in the wrong shard) are refused, writing nothing.
. "$FWREL_SRC/tests/lib.sh"
release_setup
img 1.0.0 1; img 1.0.1 1; img 1.1.0 2; img 1.1.1 2

R="$T/releases"
N=0
E0=$(( $(date +%s) / 3600 * 3600 - 86400 ))
bundle() { # CHANNEL IMAGE APPROVER...
    local ch=$1 im=$2
    shift 2
    N=$((N + 1))
    SOURCE_DATE_EPOCH=$((E0 + 3600 * N)) fwrel-bundle -q --policy "$T/policy.yaml" \
        --keystore "$T/ks" --repo "$R" --channel "$ch" --gnupg-home "$G" --no-passphrase \
        --user rel-op --templates "$FWREL_SRC/templates" "$@" "$im"
}
P=acme-thermostat
B1=$P/beta/v1.0.0 P2=$P/prod/v1.0.1 B3=$P/beta/v1.1.0 P4=$P/prod/v1.1.1
expect_rc 0 "release $B1" bundle beta "$T/app-1.0.0.bin" -A "$A1"
expect_rc 0 "release $P2" bundle prod "$T/app-1.0.1.bin" -A "$A1" -A "$A2"
expect_rc 0 "release $B3" bundle beta "$T/app-1.1.0.bin" -A "$A2"
expect_rc 0 "release $P4" bundle prod "$T/app-1.1.1.bin" -A "$A2" -A "$A3"

audit() { # REPO [OPTIONS...]
    local repo=$1
    shift
    fwrel-verify --repo "$repo" --gnupg-home "$G" --all --jobs 1 "$@"
}
# shard_of TAG N: 1 + the first 8 bytes of SHA-256(TAG), big-endian, mod N.
shard_of() {
    python3 -c 'import hashlib, sys
print(1 + int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:8], "big") % int(sys.argv[2]))' "$1" "$2"
}
tags_of() { # REPORT.json: the tags of its releases, one line
    python3 -c 'import json, sys; print(" ".join(r["tag"] for r in json.load(open(sys.argv[1]))["releases"]))' "$1"
}
same_json() { # A B DESC: equal JSON documents
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
        "$1" "$2" && ok || fail "$3: $(diff <(python3 -m json.tool "$1") <(python3 -m json.tool "$2") | head -20)"
}

# --- a clean repository: 1/2 + 2/2 merged is the unsharded audit ------------------------------
run audit "$R" --policy "$T/policy.yaml" --json
[ "$RC" -eq 0 ] && ok || fail "unsharded audit: exit $RC: $ERR"
printf '%s\n' "$OUT" >"$T/full.json"
run audit "$R" --policy "$T/policy.yaml"
printf '%s\n' "$OUT" >"$T/full.txt"
expect_rc 0 "unsharded --junit" audit "$R" --policy "$T/policy.yaml" --junit "$T/full.xml"
want1="" want2=""
for t in $B1 $P2 $B3 $P4; do
    case $(shard_of "$t" 2) in 1) want1="$want1 $t" ;; 2) want2="$want2 $t" ;; esac
done
[ -n "$want1" ] && [ -n "$want2" ] && ok || fail "the fixture's tags all hash to one shard"
for i in 1 2; do
    run audit "$R" --policy "$T/policy.yaml" --shard $i/2 --json
    [ "$RC" -eq 0 ] && ok || fail "shard $i/2: exit $RC: $ERR"
    printf '%s\n' "$OUT" >"$T/s$i.json"
done
[ " $(tags_of "$T/s1.json")" = "$want1" ] && ok || fail "shard 1/2 audited $(tags_of "$T/s1.json"), not$want1"
[ " $(tags_of "$T/s2.json")" = "$want2" ] && ok || fail "shard 2/2 audited $(tags_of "$T/s2.json"), not$want2"
# Each shard ran the whole history's checks: its releases have every step the unsharded run gives.
python3 - "$T/full.json" "$T/s1.json" "$T/s2.json" <<'PY' && ok || fail "a shard's releases differ from the unsharded run's"
import json, sys
full = {r["tag"]: r for r in json.load(open(sys.argv[1]))["releases"]}
for f in sys.argv[2:]:
    j = json.load(open(f))
    assert j["repository"]["releases"] == list(full), j["repository"]
    for r in j["releases"]:
        assert r == full[r["tag"]], r["tag"]
PY
run audit "$R" --policy "$T/policy.yaml" --shard 1/2
expect_out "^SHARD 1/2: 2 of 4 releases, every check passed \(merge the shards' --json reports with --merge-reports for the repository's verdict\)$" "shard verdict line"

expect_rc 0 "merge 1/2 2/2" fwrel-verify --merge-reports "$T/s1.json" "$T/s2.json" --json
printf '%s\n' "$OUT" >"$T/merged.json"
same_json "$T/merged.json" "$T/full.json" "merged --json is the unsharded --json"
expect_rc 0 "merge 2/2 1/2" fwrel-verify --merge-reports "$T/s2.json" "$T/s1.json" --json
printf '%s\n' "$OUT" >"$T/merged21.json"
same_json "$T/merged21.json" "$T/full.json" "merged in the other order"
expect_rc 0 "merge, text" fwrel-verify --merge-reports "$T/s1.json" "$T/s2.json"
printf '%s\n' "$OUT" >"$T/merged.txt"
expect_same "$T/merged.txt" "$T/full.txt" "merged text is the unsharded text"
grep -q "^VERIFIED: 4 releases, every check passed$" "$T/merged.txt" && ok || fail "merged verdict"
expect_rc 0 "merge --junit" fwrel-verify --merge-reports "$T/s1.json" "$T/s2.json" --junit "$T/merged.xml"
expect_same "$T/merged.xml" "$T/full.xml" "merged JUnit is the unsharded JUnit"
# Three shards.
for i in 1 2 3; do
    run audit "$R" --policy "$T/policy.yaml" --shard $i/3 --json
    printf '%s\n' "$OUT" >"$T/t$i.json"
done
expect_rc 0 "merge 3 shards" fwrel-verify --merge-reports "$T/t3.json" "$T/t1.json" "$T/t2.json" --json
printf '%s\n' "$OUT" >"$T/merged3.json"
same_json "$T/merged3.json" "$T/full.json" "3 shards merged"

# --- one bad release: found by exactly its shard and by the merge -----------------------------
C="$T/bad"
cp -a "$R" "$C"
GIT="git -c user.name=Mallory -c user.email=m@example.invalid -c gpg.program=gpg"
git -C "$C" cat-file tag "$P4" | sed '1,/^$/d; /^-----BEGIN PGP SIGNATURE-----/,$d' >"$T/msg"
GNUPGHOME="$G" $GIT -c user.signingkey="$M" -C "$C" tag -f -s -F "$T/msg" "$P4" "$P4^{commit}" >/dev/null 2>&1
run audit "$C" --policy "$T/policy.yaml" --json
printf '%s\n' "$OUT" >"$T/badfull.json"
[ "$RC" -eq 1 ] && ok || fail "unsharded audit of the bad repository: exit $RC"
full_err=$ERR
expect_err "^fwrel-verify: $C: 1 of 4 releases failed; first: $P4: tag.signer: the tag is signed by $M, not an approver the policy pins$" "unsharded: the bad release"
sp4=$(shard_of "$P4" 2)
for i in 1 2; do
    run audit "$C" --policy "$T/policy.yaml" --shard $i/2 --json
    printf '%s\n' "$OUT" >"$T/bad$i.json"
    if [ "$i" = "$sp4" ]; then
        [ "$RC" -eq 1 ] && ok || fail "shard $i/2 of the bad repository: exit $RC, expected 1"
        expect_err "^fwrel-verify: $C: 1 of 2 releases failed; first: $P4: tag.signer: " "shard $i/2 finds $P4"
    else
        [ "$RC" -eq 0 ] && [ -z "$ERR" ] && ok || fail "shard $i/2 (not $P4's): exit $RC: $ERR"
    fi
done
expect_rc 1 "merge of the bad repository" fwrel-verify --merge-reports "$T/bad1.json" "$T/bad2.json" --json
printf '%s\n' "$OUT" >"$T/badmerged.json"
[ "$ERR" = "$full_err" ] && ok || fail "the merge's error '$ERR' is not the unsharded '$full_err'"
same_json "$T/badmerged.json" "$T/badfull.json" "merged --json of the bad repository"

# --- progress on a terminal (issue 15 point 9): stderr a pty, stdout a file ------------------------
on_tty() { # OUT ERR CMD...: CMD with stderr on a terminal (raw: bytes as written), stdout to OUT;
    # what the terminal received goes to ERR; prints the exit code
    python3 - "$@" <<'PY'
import os, sys, tty
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
m, s = os.openpty()
tty.setraw(s)
pid = os.fork()
if pid == 0:
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.dup2(s, 2)
    os.close(m)
    os.execvp(cmd[0], cmd)
os.close(s)
data = b""
while True:
    try:
        chunk = os.read(m, 65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
_, st = os.waitpid(pid, 0)
open(err, "wb").write(data)
print(os.waitstatus_to_exitcode(st))
PY
}
V=(fwrel-verify --repo "$R" --gnupg-home "$G" --all --jobs 1 --policy "$T/policy.yaml")
# The line, rewritten after each release, then erased; stdout as without a terminal.
rc=$(on_tty "$T/tty.out" "$T/tty.err" "${V[@]}")
[ "$rc" = 0 ] && ok || fail "audit on a terminal: exit $rc"
for n in 1 2 3 4; do printf '\rfwrel-verify: auditing releases: %d of 4' $n; done >"$T/want.err"
printf '\r\033[K' >>"$T/want.err"
expect_same "$T/tty.err" "$T/want.err" "progress on a terminal"
expect_same "$T/tty.out" "$T/full.txt" "stdout with progress on the terminal"
# A shard counts its own releases.
rc=$(on_tty "$T/tty.out" "$T/tty.err" "${V[@]}" --shard 1/2)
for n in 1 2; do printf '\rfwrel-verify: auditing releases: %d of 2' $n; done >"$T/want.err"
printf '\r\033[K' >>"$T/want.err"
[ "$rc" = 0 ] && ok || fail "shard on a terminal: exit $rc"
expect_same "$T/tty.err" "$T/want.err" "progress of a shard"
# Never with -q or --json, nor when stderr is not a terminal.
: >"$T/empty"
rc=$(on_tty "$T/tty.out" "$T/tty.err" "${V[@]}" -q)
[ "$rc" = 0 ] && ok || fail "-q on a terminal: exit $rc"
expect_same "$T/tty.err" "$T/empty" "no progress with -q"
[ ! -s "$T/tty.out" ] && ok || fail "-q printed $(cat "$T/tty.out")"
rc=$(on_tty "$T/tty.out" "$T/tty.err" "${V[@]}" --json)
[ "$rc" = 0 ] && ok || fail "--json on a terminal: exit $rc"
expect_same "$T/tty.err" "$T/empty" "no progress with --json"
"${V[@]}" >/dev/null 2>"$T/notty.err"
expect_same "$T/notty.err" "$T/empty" "no progress when stderr is not a terminal"
# A failure: the line is erased before the error line.
V[2]=$C
rc=$(on_tty "$T/tty.out" "$T/tty.err" "${V[@]}")
[ "$rc" = 1 ] && ok || fail "bad repository on a terminal: exit $rc"
for n in 1 2 3 4; do printf '\rfwrel-verify: auditing releases: %d of 4' $n; done >"$T/want.err"
printf '\r\033[K%s\n' "$full_err" >>"$T/want.err"
expect_same "$T/tty.err" "$T/want.err" "progress erased before the error line"

# --- malformed shards: usage errors --------------------------------------------------------------
for s in 0/2 3/2 1/0 0/0 1/1025 01/2 1/02 +1/2 1/+2 -1/2 1/2x 1/ /2 1 a/b " 1/2" "1/2 " 1//2 1/2/3 \
    99999999999999999999/1; do
    expect_rc 2 "--shard '$s'" audit "$R" --policy "$T/policy.yaml" --shard "$s"
    expect_err "^fwrel-verify: --shard must be I/N, 1 <= I <= N <= 1024 \(see fwrel-verify --help\)$" "--shard '$s'"
done
expect_rc 0 "--shard 1/1 is the whole audit" audit "$R" --policy "$T/policy.yaml" --shard 1/1 --json
expect_rc 0 "--shard 1024/1024" audit "$R" --policy "$T/policy.yaml" --shard 1024/1024 --json
expect_rc 2 "--shard without --repo" fwrel-verify --shard 1/2 --info "$T/app-1.0.0.bin"
expect_rc 2 "--merge-reports without reports" fwrel-verify --merge-reports
expect_err "^fwrel-verify: --merge-reports needs the shards' reports \(FILE\.\.\.\) \(see fwrel-verify --help\)$" "no reports"

# --- reports that are not one audit's shards: refused (exit 3), nothing written --------------------
refused() { # PATTERN DESC REPORT...
    local pat=$1 desc=$2
    shift 2
    expect_rc 3 "$desc" fwrel-verify --merge-reports "$@" --junit "$T/refused.xml"
    expect_err "$pat" "$desc"
    expect_absent "$T/refused.xml" "$desc"
}
refused "^fwrel-verify: $T/s1.json: shard 1/2, but 1 reports are merged$" "a shard missing" "$T/s1.json"
refused "^fwrel-verify: $T/s1.json: shard 1/2 given twice$" "a shard twice" "$T/s1.json" "$T/s1.json"
other=$((3 - sp4))
refused "^fwrel-verify: $T/bad$other.json: another repository or state" "another repository state" \
    "$T/s$sp4.json" "$T/bad$other.json"
run audit "$R" --no-policy --shard 2/2 --json
printf '%s\n' "$OUT" >"$T/np2.json"
refused "^fwrel-verify: $T/np2.json: its policy differs from the first report's$" "another policy" \
    "$T/s1.json" "$T/np2.json"
refused "^fwrel-verify: $T/full.json: not the report of a shard \(--shard I/N\)$" "an unsharded report" \
    "$T/full.json"
printf 'not json\n' >"$T/junk.json"
refused "^fwrel-verify: $T/junk.json: not the --json report of fwrel-verify --repo$" "not JSON" \
    "$T/s1.json" "$T/junk.json"
# Edited reports: a release moved, duplicated or dropped.
edit() { # IN OUT PYTHON: j is the report
    python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(j, open(sys.argv[2], "w"))' "$@"
}
edit "$T/s2.json" "$T/nopol.json" 'del j["policy"]'
refused "^fwrel-verify: $T/nopol.json: not the --json report of fwrel-verify --repo$" "a report without its policy" \
    "$T/s1.json" "$T/nopol.json"
first1=$(tags_of "$T/s1.json" | cut -d' ' -f1)
edit "$T/s1.json" "$T/drop1.json" 'j["releases"] = j["releases"][1:]'
refused "^fwrel-verify: $T/drop1.json: release $first1 is in no report \(shard 1 of 2\)$" "a release missing" \
    "$T/drop1.json" "$T/s2.json"
python3 -c 'import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
b["releases"].append(a["releases"][0]); json.dump(b, open(sys.argv[3], "w"))' "$T/s1.json" "$T/s2.json" "$T/dup2.json"
refused "^fwrel-verify: $T/dup2.json: release $first1 is given twice$" "a release twice" \
    "$T/s1.json" "$T/dup2.json"
refused "^fwrel-verify: $T/dup2.json: release $first1 is shard 1's, not 2's$" "a release in the wrong shard" \
    "$T/drop1.json" "$T/dup2.json"
finish
