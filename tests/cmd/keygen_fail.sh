# fwrel-keygen --policy --provision fails closed: a failure injected at every step (after the
# first key, while provisioning, while preparing the keystore change, at the audit append, at
# the commit, while publishing the provisioning directory), and a real write error under
# RLIMIT_FSIZE, leave the keystore and the provisioning directory exactly as they were (names,
# types, modes, sizes, contents: new ones absent, an existing one with its user files intact),
# exit with one stderr line and append a "fail" entry to a valid audit chain. A SIGKILL leaves no
# named file in the output and the next run undoes it. The audit log, the provisioning README and
# the listings never hold a hash of a raw secret (HMAC, flash encryption key).
. "$FWREL_SRC/tests/lib.sh"
# The C6 example policy (fast ECDSA keys) with an HMAC key and a flash encryption key: 8 keys.
P="$T/policy.yaml"
sed 's/^image_encryption: .*/&\nhmac: {key: ota-hmac}\nflash_encryption: {key: flash-xts}/' \
    "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$P"
printf '  ota-hmac: {purpose: hmac, alg: hmac256}\n  flash-xts: {purpose: flash-encrypt, alg: aes256}\n' >>"$P"
W="$T/w"
D="$W/ks"
O="$W/prov"
R="$T/rel"
LOG="$R/audit/audit.jsonl"
mkdir "$W"

# snap: every entry under $W (hidden ones too) with its type, mode and size, and every file's
# SHA-256: equal snaps, same trees.
snap() {
    (cd "$W" && find . -printf '%p %y %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort)
}
# entry N: event, result, reason and number of outputs of the log's line N from the end.
entry() {
    tail -n "$1" "$LOG" | head -1 | python3 -c 'import json, sys
e = json.loads(sys.stdin.read())
print(e["event"], e["result"], e.get("reason", "-"), len(e["outputs"]))'
}
nlines() { if [ -f "$LOG" ]; then wc -l <"$LOG"; else echo 0; fi; }
keygen() { fwrel-keygen --policy "$P" --keystore "$D" --repo "$R" --no-passphrase "$@"; }

# inject STEP ERR AT NEW ARGS...: FWREL_TEST_FAIL_AT=STEP fails the run with exit 5 and the one
# stderr line ERR (a grep -E pattern), $W unchanged, NEW more audit entries (the last the fail
# entry "keygen failed at AT"; with 2, an ok entry written before the failure and undone).
inject() {
    local step=$1 err=$2 at=$3 new=$4 before n
    shift 4
    before=$(snap)
    n=$(nlines)
    FWREL_TEST_FAIL_AT=$step expect_rc 5 "failure at $step" keygen "$@"
    expect_err "$err" "failure at $step"
    [ "$(snap)" = "$before" ] && ok ||
        fail "failure at $step changed the keystore or provision: $(diff <(printf '%s\n' "$before") <(snap))"
    run audit_len "$LOG"
    [ "$RC" -eq 0 ] && [ "$OUT" -eq $((n + new)) ] && ok ||
        fail "failure at $step: audit chain $OUT (expected $((n + new)) entries): $ERR"
    run entry 1
    [ "$OUT" = "keygen fail keygen failed at $at: injected failure at $step 0" ] && ok ||
        fail "failure at $step: fail entry: $OUT"
    if [ "$new" -eq 2 ]; then
        run entry 2
        [ "${OUT%% *}" = keygen ] && printf '%s\n' "$OUT" | grep -q '^keygen ok - ' && ok ||
            fail "failure at $step: the entry before the fail entry: $OUT"
    fi
}

# --- a new keystore and a new provisioning directory: nothing of either remains ---------------
inject keygen.key "^fwrel-keygen: $D: injected failure at keygen.key$" keys 1 --provision "$O"
inject keygen.provision "^fwrel-keygen: $O/sb-ecdsa-0.pub.pem: injected failure at keygen.provision$" \
    provision 1 --provision "$O"
inject keystore.link "^fwrel-keygen: $D: injected failure at keystore.link$" prepare 1 --provision "$O"
inject keygen.audit "^fwrel-keygen: audit log: injected failure at keygen.audit$" audit 1 --provision "$O"
inject keygen.commit "^fwrel-keygen: $D: injected failure at keygen.commit$" commit 2 --provision "$O"
inject keystore.commit "^fwrel-keygen: $D: injected failure at keystore.commit$" commit 2 --provision "$O"
inject keygen.publish "^fwrel-keygen: $O: injected failure at keygen.publish$" publish 2 --provision "$O"
inject outdir.publish "^fwrel-keygen: $O: injected failure at outdir.publish$" publish 2 --provision "$O"
[ -z "$(ls -A "$W")" ] && ok || fail "failed runs left: $(ls -A "$W")"

# --- the keystore made; then every key rotated (--force) and provisioned into the existing
# directory, which holds a file of the user's: a failure leaves both as they were --------------
expect_rc 0 "keygen --provision" keygen --provision "$O"
printf 'operator notes\n' >"$O/notes.txt"
inject keygen.key "^fwrel-keygen: $D: injected failure at keygen.key$" keys 1 --force --provision "$O"
inject keygen.provision "^fwrel-keygen: $O/sb-ecdsa-0.pub.pem: injected failure at keygen.provision$" \
    provision 1 --force --provision "$O"
inject keygen.audit "^fwrel-keygen: audit log: injected failure at keygen.audit$" audit 1 --force --provision "$O"
inject keygen.commit "^fwrel-keygen: $D: injected failure at keygen.commit$" commit 2 --force --provision "$O"
inject keygen.publish "^fwrel-keygen: $O: injected failure at keygen.publish$" publish 2 --force --provision "$O"
inject outdir.file "^fwrel-keygen: $O: injected failure at outdir.file$" publish 2 --force --provision "$O"
# Publishing stops at the fourth file (a directory holds its name): the three published are put
# back.
rm "$O/sb-ecdsa-1.digest.bin"
mkdir "$O/sb-ecdsa-1.digest.bin"
before=$(snap)
expect_rc 5 "publication stopped half-way" keygen --force --provision "$O"
expect_err "^fwrel-keygen: $O: sb-ecdsa-1.digest.bin: is a directory$" "publication stopped half-way"
[ "$(snap)" = "$before" ] && ok || fail "a publication stopped half-way changed: $(diff <(printf '%s\n' "$before") <(snap))"
run entry 1
[ "$OUT" = "keygen fail keygen failed at publish: sb-ecdsa-1.digest.bin: is a directory 0" ] && ok ||
    fail "publication stopped half-way: fail entry: $OUT"
rmdir "$O/sb-ecdsa-1.digest.bin"

# A real write error: under RLIMIT_FSIZE (SIGXFSZ ignored, so write() fails with EFBIG) the new
# index (16 entries) cannot be written. The log is in a repository of its own (the limit would
# stop appends to the long one).
before=$(snap)
run bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' - fwrel-keygen --policy "$P" --keystore "$D" \
    --repo "$T/rel2" --no-passphrase --force --provision "$O"
[ "$RC" -eq 5 ] && ok || fail "RLIMIT_FSIZE: exit $RC: $ERR"
expect_err "^fwrel-keygen: $D: write failed: File too large$" "RLIMIT_FSIZE"
[ "$(snap)" = "$before" ] && ok || fail "RLIMIT_FSIZE changed: $(diff <(printf '%s\n' "$before") <(snap))"
run audit_len "$T/rel2/audit/audit.jsonl"
[ "$RC" -eq 0 ] && [ "$OUT" -eq 1 ] && grep -q '"reason":"keygen failed at prepare: write failed: File too large","result":"fail"' \
    "$T/rel2/audit/audit.jsonl" && ok || fail "RLIMIT_FSIZE: no fail entry: $OUT $ERR"

# --- SIGKILL -----------------------------------------------------------------------------------
# Killed while provisioning a new keystore: no file under a final name; the staging directories
# are private and say what they are; the next run undoes the keystore change, removes them and
# says so.
W2="$T/w2"
mkdir "$W2"
FWREL_TEST_KILL_AT=keygen.provision fwrel-keygen --policy "$P" --keystore "$W2/ks" \
    --no-passphrase --provision "$W2/prov" >/dev/null 2>&1
[ $? -eq 137 ] && ok || fail "not killed at keygen.provision"
[ ! -e "$W2/prov" ] && [ -z "$(ls -A "$W2/ks/keys")" ] && ok ||
    fail "killed run left named files: $(find "$W2" | sort)"
[ "$(find "$W2" -maxdepth 1 -name '.prov.fwrel-staging-*' -perm 700 | wc -l)" -eq 1 ] &&
    [ "$(find "$W2/ks" -maxdepth 1 -name '.txn-*' -perm 700 | wc -l)" -eq 1 ] && ok ||
    fail "killed run: staging directories: $(find "$W2" -maxdepth 2 | sort)"
expect_rc 0 "run after a kill" fwrel-keygen --policy "$P" --keystore "$W2/ks" --no-passphrase \
    --provision "$W2/prov"
printf '%s\n' "$OUT" | grep -q "^$W2/ks: undid 1 change(s) left unfinished by a killed fwrel-keygen" &&
    ok || fail "run after a kill: not said: $OUT"
[ -z "$(find "$W2" -name '.txn-*' -o -name '*.fwrel-staging-*')" ] && [ -s "$W2/prov/README.txt" ] &&
    ok || fail "run after a kill: leftovers: $(find "$W2" -maxdepth 2 | sort)"
# Killed after the new key files were linked into keys/, before the commit point: the next run
# that opens the keystore for writing takes them out again.
before=$(cd "$D" && find . -printf '%p %y %m %s\n' | sort)
FWREL_TEST_KILL_AT=keygen.commit keygen --force >/dev/null 2>&1
[ $? -eq 137 ] && ok || fail "not killed at keygen.commit"
[ "$(ls "$D/keys" | grep -c '\.2\.')" -gt 0 ] && ok || fail "killed at commit: no staged links to undo"
expect_rc 0 "run after a kill at commit" keygen
[ "$(cd "$D" && find . -printf '%p %y %m %s\n' | sort)" = "$before" ] && ok ||
    fail "kill at commit not undone: $(diff <(printf '%s\n' "$before") <(cd "$D" && find . -printf '%p %y %m %s\n' | sort))"

# Every other window of a --force rotation with --provision (fwrel_keygen_run: staged, then
# committed): killed after the first new key is staged, while provisioning, after the keystore
# change is prepared (before the audit entry): the keystore (every file's bytes), the
# provisioning directory and the audit log are as before the run, once the next run has opened
# the keystore, which says so; a kill leaves no mix of old and new.
for step in keygen.key keygen.provision keygen.audit; do
    before=$(snap)
    n=$(nlines)
    FWREL_TEST_KILL_AT=$step keygen --force --provision "$O" >/dev/null 2>&1
    [ $? -eq 137 ] && ok || fail "not killed at $step"
    expect_rc 0 "run after a kill at $step" keygen
    printf '%s\n' "$OUT" | grep -q "^$D: undid 1 change(s) left unfinished by a killed fwrel-keygen" &&
        ok || fail "run after a kill at $step: not said: $OUT"
    # The provisioning staging directory is removed by the next run for the same OUTDIR (above).
    rm -rf "$W"/.prov.fwrel-staging-*
    [ "$(snap)" = "$before" ] && [ "$(nlines)" -eq "$n" ] && ok ||
        fail "kill at $step: not as before: $(diff <(printf '%s\n' "$before") <(snap))"
done

# --- no hash of a secret anywhere --------------------------------------------------------------
# The raw secrets of the keystore made above (no passphrase: .bin files). Neither their SHA-256,
# nor the domain-separated hash fwrel used as their id before, appears in the audit log, the
# repository, the provisioning directory or the listings; each is logged by its random id.
run fwrel-keygen --keystore "$D" --list
LIST=$OUT
run fwrel-keygen --keystore "$D" --list --json
LIST="$LIST $OUT"
for k in ota-hmac flash-xts; do
    f="$D/keys/$k.1.bin"
    [ -f "$f" ] || { fail "no $f"; continue; }
    plain=$(sha256sum <"$f" | cut -c1-64)
    legacy=$(python3 -c 'import hashlib, sys
print(hashlib.sha256(b"fwrel-keystore-secret-id\0" + open(sys.argv[1], "rb").read()).hexdigest())' "$f")
    for h in "$plain" "$legacy"; do
        ! grep -rqa "$h" "$R" "$O" "$D/index.json" && ! printf '%s\n' "$LIST" | grep -q "$h" && ok ||
            fail "$k: a hash of the secret is written: $(grep -rla "$h" "$R" "$O" "$D/index.json")"
    done
    id=$(printf '%s\n' "$LIST" | awk -v k="$k" '$2 == k {print $7}')
    grep -q "\"name\":\"$k.1 (key id)\",\"sha256\":\"$id\",\"size\":0" "$LOG" && ok ||
        fail "$k: not logged by its id $id"
done
finish
