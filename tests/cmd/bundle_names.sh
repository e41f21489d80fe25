# Errors name the right thing (issue 15 point 4): a wrong OpenPGP passphrase names the approver's
# key by fingerprint and user id, not the bundle; a protected key without a passphrase says which
# options unlock it; at a terminal a passphrase gets three tries, as gpg and ssh give (only at a
# terminal: a file or a descriptor gives the same passphrase again). A failed approval leaves the
# bundle as it was.
. "$FWREL_SRC/tests/lib.sh"
G="$T/gnupg"
trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
make_approvers "$G" "approver three passphrase"
[ -n "$A3" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >"$T/policy.yaml"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase || { echo "FAIL: keygen"; exit 1; }
fwrel-testimg --chip esp32s3 --version 1.0.0 --secure-version 1 --size 65536 -o "$T/app.bin" >/dev/null
expect_rc 0 "a bundle waiting for approvals" fwrel-bundle -p "$T/policy.yaml" -K "$T/ks" -c prod \
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
finish
