# Errors name the right thing (issue 15 point 4): a wrong OpenPGP passphrase names the approver's
# key by fingerprint and user id, not the bundle; a protected key without a passphrase says which
# options unlock it; at a terminal a passphrase gets three tries, as gpg and ssh give (only at a
# terminal: a file or a descriptor gives the same passphrase again). A failed approval leaves the
# bundle as it was.
. "$FWREL_SRC/tests/lib.sh"
approvers_home "approver three passphrase"
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >"$T/policy.yaml"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase || { echo "FAIL: keygen"; exit 1; }
fwrel-testimg --chip esp32s3 --version 1.0.0 --secure-version 1 --size 65536 -o "$T/app.bin" >/dev/null
R="$T/rel"
expect_rc 0 "a bundle waiting for approvals" fwrel-bundle -p "$T/policy.yaml" -K "$T/ks" -c prod -r "$R" \
    --gnupg-home "$G" --no-passphrase --templates "$FWREL_SRC/templates" -A "$A1" -o "$T/b.fwb" "$T/app.bin"
cp "$T/b.fwb" "$T/b.before"
WHO="OpenPGP key $A3 \(Approver 3 <a3@example.invalid>\)"

printf 'wrong\n' >"$T/wrong"
printf 'approver three passphrase\n' >"$T/right"
chmod 600 "$T/wrong" "$T/right"
expect_rc 4 "wrong passphrase" fwrel-bundle --approve "$T/b.fwb" -A "$A3" --gnupg-home "$G" \
    --pgp-passphrase-file "$T/wrong"
expect_err "^fwrel-bundle: $WHO: wrong passphrase$" "wrong passphrase names the approver"
expect_same "$T/b.fwb" "$T/b.before" "wrong passphrase: bundle unchanged"
expect_rc 4 "no passphrase, no terminal" setsid -w fwrel-bundle --approve "$T/b.fwb" -A "$A3" --gnupg-home "$G" </dev/null
expect_err "^fwrel-bundle: $WHO: protected: a passphrase is needed \(--pgp-passphrase-file, --pgp-passphrase-fd, a terminal or gpg-agent\)$" \
    "protected key names the options"
expect_same "$T/b.fwb" "$T/b.before" "no passphrase: bundle unchanged"

# At a terminal: wrong twice, then right (approved); wrong three times (refused, unchanged).
tty_approve() { # BUNDLE PASS... : prints the exit code and the transcript
    python3 - "$@" <<'PY'
import os, pty, sys, time
bundle, answers = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("fwrel-bundle", ["fwrel-bundle", "--approve", bundle, "-A", os.environ["A3"],
                               "--gnupg-home", os.environ["G"]])
out, buf = b"", b""
deadline = time.time() + 120
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    buf += chunk
    if b"Passphrase for" in buf and answers:
        buf = b""
        os.write(fd, answers.pop(0).encode() + b"\n")
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
PY
}
export A3 G
out=$(tty_approve "$T/b.fwb" wrong wrong wrong)
[ "$(printf '%s\n' "$out" | head -1)" = 4 ] && ok || fail "three wrong tries: $out"
printf '%s\n' "$out" | grep -q "Wrong passphrase (try 3 of 3). Passphrase for OpenPGP key $A3 (Approver 3 <a3@example.invalid>): " &&
    ok || fail "no third try: $out"
printf '%s\n' "$out" | grep -Eq "^fwrel-bundle: $WHO: wrong passphrase \(3 tries\)$" && ok || fail "three tries: $out"
expect_same "$T/b.fwb" "$T/b.before" "three wrong tries: bundle unchanged"
out=$(tty_approve "$T/b.fwb" wrong wrong "approver three passphrase")
[ "$(printf '%s\n' "$out" | head -1)" = 0 ] && ok || fail "right at the third try: $out"
printf '%s\n' "$out" | grep -q "2 of 2 required approvals" && ok || fail "not approved: $out"

# --- --record signs the tag with the first approver given (point 4), in the order given, not
# the fingerprints' order; a protected tag signer's error names the options that unlock it -------
if [[ "$A1" > "$A3" ]]; then HI=$A1 HN=1 LO=$A3; else HI=$A3 HN=3 LO=$A1; fi
expect_rc 4 "record: protected tag signer, no passphrase" setsid -w fwrel-bundle --record "$T/b.fwb" \
    -p "$T/policy.yaml" -r "$R" --gnupg-home "$G" -A "$A3" </dev/null
expect_err "^fwrel-bundle: $WHO: protected: a passphrase is needed \(--pgp-passphrase-file, --pgp-passphrase-fd, a terminal or gpg-agent\); or let another approver sign the tag: --tag-signer FPR$" \
    "record: the protected tag signer's error names --tag-signer"
[ -z "$(git -C "$R" tag 2>/dev/null)" ] && ok || fail "record refused in the preflight made a tag"
expect_rc 1 "record: an approver given who has not approved" fwrel-bundle --record "$T/b.fwb" \
    -p "$T/policy.yaml" -r "$R" --gnupg-home "$G" -A "$A2"
expect_err "^fwrel-bundle: approver $A2 has not approved the bundle: approve it first \(--approve\), or give the tag signer with --tag-signer FPR$" \
    "record: -A of an approver without approval"
expect_rc 0 "record, approvers given in other than fingerprint order" fwrel-bundle --record "$T/b.fwb" \
    -p "$T/policy.yaml" -r "$R" --gnupg-home "$G" --pgp-passphrase-file "$T/right" -A "$HI" -A "$LO"
printf '%s\n' "$OUT" | grep -q "^PASS repo .*signed by $HI$" && ok || fail "record: tag not signed by $HI: $OUT"
expect_rc 0 "verify-tag" env GNUPGHOME="$G" git -C "$R" verify-tag acme-thermostat/prod/v1.0.0
printf '%s\n' "$ERR" | grep -q "Good signature from \"Approver $HN <" && ok || fail "tag signer: $ERR"

# --- approvers by e-mail or whole user id (point 6): a name stands for exactly one key the
# policy pins, never for another key of the GnuPG home; refused with nothing written ------------
gpg --homedir "$G" --batch --pinentry-mode loopback --passphrase '' \
    --quick-gen-key "Mallory <m@example.invalid>" ed25519 sign never >/dev/null 2>&1
fwrel-testimg --chip esp32s3 --version 1.1.0 --secure-version 1 --size 65536 -o "$T/app2.bin" >/dev/null
rel() { fwrel-bundle -p "$T/policy.yaml" -K "$T/ks" -c prod -r "$R" --gnupg-home "$G" --no-passphrase \
    --templates "$FWREL_SRC/templates" "$@"; }
log_before=$(sha256sum <"$R/audit/audit.jsonl")
expect_rc 1 "an e-mail of a key in the home that the policy does not pin" rel -A m@example.invalid \
    -A "$A1" -o "$T/m.fwb" "$T/app2.bin"
expect_err "^fwrel-bundle: 'm@example.invalid' is none of the approvers the policy pins \(by e-mail or whole user id\): Approver 1 <a1@example.invalid>, Approver 2 <a2@example.invalid>, Approver 3 <a3@example.invalid>$" \
    "unpinned e-mail"
expect_absent "$T/m.fwb" "unpinned e-mail"
# A user id on two pinned keys (each key's own, self-signed).
for a in "$A1" "$A2"; do
    gpg --homedir "$G" --batch --pinentry-mode loopback --passphrase '' \
        --quick-add-uid "$a" "Release Team <team@example.invalid>" >/dev/null 2>&1
done
expect_rc 2 "a user id two pinned keys carry" rel -A "Release Team <team@example.invalid>" \
    -A "$A1" -o "$T/m.fwb" "$T/app2.bin"
expect_err "^fwrel-bundle: 'Release Team <team@example.invalid>' stands for 2 approvers the policy pins: $A1, $A2: give the fingerprint$" \
    "ambiguous user id"
expect_rc 2 "an e-mail two pinned keys carry, as tag signer" rel --tag-signer team@example.invalid \
    -A "$A1" -A "$A2" "$T/app2.bin"
expect_err "^fwrel-bundle: 'team@example.invalid' stands for 2 approvers the policy pins: $A1, $A2: give the fingerprint$" \
    "ambiguous tag signer"
expect_absent "$T/m.fwb" "ambiguous user id"
[ "$(sha256sum <"$R/audit/audit.jsonl")" = "$log_before" ] && ok || fail "a refused name changed the audit log"
[ "$(git -C "$R" tag)" = acme-thermostat/prod/v1.0.0 ] && ok || fail "a refused name made a tag"
# By e-mail (any case, bare or in <>) and by whole user id: the bundle, the tag and the audit log
# carry the fingerprints; the tag signer is the first given.
expect_rc 0 "approvers by e-mail and user id" rel -A "<A2@Example.Invalid>" \
    -A "Approver 1 <a1@example.invalid>" "$T/app2.bin"
T2=acme-thermostat/prod/v1.1.0
git -C "$R" show "main:$T2/bundle.fwb" >"$T/b2.fwb"
[ "$(tar tf "$T/b2.fwb" | grep '^approvals/' | LC_ALL=C sort)" = "$(printf 'approvals/%s.asc\n' "$A1" "$A2" | LC_ALL=C sort)" ] &&
    ok || fail "approvals by name: $(tar tf "$T/b2.fwb" | grep approvals)"
git -C "$R" cat-file tag "$T2" | grep -q "^approvals: 2 of 2: .*$A2" && ok || fail "tag message: $(git -C "$R" cat-file tag "$T2")"
expect_rc 0 "verify-tag by name" env GNUPGHOME="$G" git -C "$R" verify-tag "$T2"
printf '%s\n' "$ERR" | grep -Eq '(Good signature from|aka) "Approver 2 <' && ok || fail "tag signer by name: $ERR"
tail -3 "$R/audit/audit.jsonl" | grep -c "\"fingerprint\":\"$A2\"" | grep -qx 2 && ok ||
    fail "audit log: $(tail -3 "$R/audit/audit.jsonl")"
# --approve by e-mail too.
cp "$T/b.fwb" "$T/b3.fwb"
expect_rc 1 "approve by the e-mail of an unpinned key" fwrel-bundle --approve "$T/b3.fwb" -A m@example.invalid \
    --gnupg-home "$G"
expect_err "^fwrel-bundle: $T/b3.fwb: 'm@example.invalid' is none of the approvers the release's policy pins" "approve by unpinned e-mail"
expect_same "$T/b.fwb" "$T/b3.fwb" "approve by unpinned e-mail: unchanged"
expect_rc 0 "approve by e-mail" fwrel-bundle --approve "$T/b3.fwb" -A a2@example.invalid --gnupg-home "$G"
tar tf "$T/b3.fwb" | grep -qx "approvals/$A2.asc" && ok || fail "approve by e-mail: $(tar tf "$T/b3.fwb")"
# --record judges the record's product by the rulebook's rule (rules.c, as the auditor does).
sed 's/^product: acme-thermostat/product: acme-other/' "$T/policy.yaml" >"$T/other.yaml"
expect_rc 1 "record under another product's policy" fwrel-bundle --record "$T/b3.fwb" \
    -p "$T/other.yaml" -r "$T/rel-other" --gnupg-home "$G"
expect_err "^fwrel-bundle: bundle: the policy is for product acme-other, not acme-thermostat$" \
    "record under another product's policy"
[ ! -e "$T/rel-other" ] && ok || fail "a refused record made its repository"

# --- a wrong keystore passphrase names the keystore (point 5), whichever key the run uses -------
printf 'keystore\n' >"$T/kpass"
printf 'not it\n' >"$T/kwrong"
chmod 600 "$T/kpass" "$T/kwrong"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks2" --passphrase-file "$T/kpass" ||
    fail "keygen with a passphrase"
before=$(tree_sum "$T/ks2")
expect_rc 4 "keygen: rotate one key, wrong passphrase" fwrel-keygen --keystore "$T/ks2" \
    --rotate mf-security --passphrase-file "$T/kwrong"
expect_err "^fwrel-keygen: $T/ks2: wrong keystore passphrase$" "keygen rotate: the keystore named"
[ "$(tree_sum "$T/ks2")" = "$before" ] && ok || fail "a wrong passphrase changed the keystore"
fwrel-testimg --chip esp32s3 --version 1.2.0 --secure-version 1 --size 65536 -o "$T/app3.bin" >/dev/null
expect_rc 4 "bundle: wrong keystore passphrase" fwrel-bundle -p "$T/policy.yaml" -K "$T/ks2" -c prod \
    -r "$R" --gnupg-home "$G" --passphrase-file "$T/kwrong" --templates "$FWREL_SRC/templates" \
    -A "$A1" -A "$A2" -o "$T/b4.fwb" "$T/app3.bin"
expect_err "^fwrel-bundle: $T/ks2: wrong keystore passphrase$" "bundle: the keystore named"
expect_absent "$T/b4.fwb" "bundle: wrong keystore passphrase"
[ "$(git -C "$R" tag | wc -l)" -eq 2 ] && ok || fail "wrong keystore passphrase: a tag was made"
finish
