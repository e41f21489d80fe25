# Faults around a release (fwrel-bundle, issue 13 point 11): a kill or a size limit mid-release
# leaves nothing named in TMPDIR and no plaintext image bytes anywhere under it; a full disk under
# the audit log fails whole with the cause named and the chain intact; terminal escape sequences
# from images and bundles are shown escaped; a SOURCE_DATE_EPOCH whose manifest would be expired
# on arrival is refused before any signature; the policy's audit log stays inside the repository.
. "$FWREL_SRC/tests/lib.sh"
G="$T/gnupg"
R="$T/releases"
trap 'umount "$R/audit" 2>/dev/null; gpgconf --homedir "$G" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
make_approvers "$G"
[ -n "$A1" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
# ESP32-C6, Secure Boot V2 ECDSA, encrypted images; the beta channel needs no approval.
pin_approvers "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$T/policy.yaml"
pass_keystore
img() { fwrel-testimg --chip esp32c6 --version "$1" --secure-version 1 --project acme \
    --size 150000 -o "$T/app-$1.bin"; }
S="$T/scratch" # the releases' TMPDIR
mkdir "$S"
bundle() {
    TMPDIR="$S" fwrel-bundle --policy "${POLICY:-$T/policy.yaml}" --keystore "$T/ks" --repo "$R" \
        --channel beta --gnupg-home "$G" --passphrase-file "$T/pass" \
        --templates "$FWREL_SRC/templates" --tag-signer "$A1" "$@"
}
# clean_tmp DESC IMAGE: TMPDIR holds no file at all, and no file under it holds 4 KiB of IMAGE.
clean_tmp() {
    [ -z "$(ls -A "$S")" ] && ok || fail "$1: left in TMPDIR: $(ls -A "$S")"
    python3 - "$S" "$2" <<'PY' && ok || fail "$1: plaintext image bytes under TMPDIR"
import os, sys
chunk = open(sys.argv[2], "rb").read()[8192:12288]
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        assert chunk not in open(os.path.join(d, f), "rb").read(), os.path.join(d, f)
PY
    rm -rf "${S:?}"/* "$S"/.[!.]* 2>/dev/null
}

img 1.0.0
expect_rc 0 "release 1.0.0" bundle -q "$T/app-1.0.0.bin"
clean_tmp "a release" "$T/app-1.0.0.bin"

# --- a. SIGKILL at each step, and a size limit: nothing named, no plaintext --------------------
img 1.1.0
for s in $(kill_steps history secureboot encrypt manifest exports record approve bundle output audit \
    repo); do
    FWREL_TEST_KILL_AT=$s bundle -q -o "$T/kill.fwb" "$T/app-1.1.0.bin" >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 137 ] && ok || fail "kill at $s: exit $rc"
    clean_tmp "kill at $s" "$T/app-1.1.0.bin"
    run audit_ok "$R/audit/audit.jsonl"
    [ "$RC" -eq 0 ] && ok || fail "kill at $s broke the audit chain: $ERR"
done
# RLIMIT_FSIZE at the signed image's size: signing fits, the encrypted image does not. The
# command fails (a write refused with EFBIG, not killed by SIGXFSZ), logs why, leaves nothing.
signed=$(( (($(stat -c %s "$T/app-1.1.0.bin") + 4095) / 4096 + 1) * 4096 ))
nlog=$(wc -l <"$R/audit/audit.jsonl")
run bash -c "ulimit -f $((signed / 1024)); exec \"\$@\"" bash env TMPDIR="$S" fwrel-bundle -q \
    --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$R" --channel beta --gnupg-home "$G" \
    --passphrase-file "$T/pass" --templates "$FWREL_SRC/templates" --tag-signer "$A1" \
    -o "$T/limit.fwb" "$T/app-1.1.0.bin"
[ "$RC" -eq 5 ] && ok || fail "size limit: exit $RC: $ERR"
expect_err "^fwrel-bundle: the encrypted image \(an unnamed file in $S\): write failed: File too large$" \
    "size limit"
expect_absent "$T/limit.fwb" "size limit"
clean_tmp "size limit" "$T/app-1.1.0.bin"
[ "$(($(wc -l <"$R/audit/audit.jsonl") - nlog))" -eq 1 ] &&
    tail -1 "$R/audit/audit.jsonl" | grep -q 'failed at encrypt: .*File too large' && ok ||
    fail "size limit: the failure is not logged"
# Device-mode verification decrypts into TMPDIR too: nothing left there either.
expect_rc 0 "release 1.1.0" bundle -q -o "$T/b2.fwb" "$T/app-1.1.0.bin"
clean_tmp "release 1.1.0" "$T/app-1.1.0.bin"

# --- b. a full disk under the audit log: all or nothing, the cause named -------------------------
cp -p "$R/audit/audit.jsonl" "$T/log-saved"
if mount -t tmpfs -o size=64k,mode=0750 tmpfs "$R/audit" 2>/dev/null; then
    cp -p "$T/log-saved" "$R/audit/audit.jsonl"
    dd if=/dev/zero of="$R/audit/filler" bs=4096 2>/dev/null # until the tmpfs is full
    n=0
    for v in 1.2.0 1.3.0 1.4.0 1.5.0 1.6.0 1.7.0; do
        img "$v"
        cp "$R/audit/audit.jsonl" "$T/log-before"
        run bundle -q "$T/app-$v.bin"
        [ "$RC" -eq 0 ] || break
        n=$((n + 1))
    done
    [ "$RC" -eq 5 ] && ok || fail "full disk: exit $RC after $n releases: $ERR"
    expect_err "^fwrel-bundle: audit log: writing the log: No space left on device$" "full disk"
    run audit_ok "$R/audit/audit.jsonl"
    [ "$RC" -eq 0 ] && ok || fail "full disk: the chain: $ERR"
    # Only whole entries of the failed release were added (those that fitted), no byte more.
    python3 - "$T/log-before" "$R/audit/audit.jsonl" <<'PY' && ok || fail "full disk: log changed"
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert b.startswith(a) and b.endswith(b"\n"), "not the log before plus whole lines"
PY
    cp -p "$R/audit/audit.jsonl" "$T/log-saved"
    umount "$R/audit"
    cp -p "$T/log-saved" "$R/audit/audit.jsonl"
else
    skip "full disk: cannot mount a tmpfs (not root)"
fi

# --- c. terminal escape sequences are shown escaped ---------------------------------------------
fwrel-testimg --chip esp32c6 --version "$(printf '9.9.9\033[2J\007')" --secure-version 1 \
    --project "$(printf 'acme\033]0;pwned\007\302\233x\377')" --size 150000 -o "$T/esc.bin"
run fwrel-verify --info "$T/esc.bin"
[ "$RC" -eq 0 ] && ok || fail "--info: exit $RC: $ERR"
printf '%s' "$OUT" | grep -q "^App version: 9.9.9\\\\x1b\[2J\\\\x07$" && ok || fail "--info version: $OUT"
printf '%s' "$OUT" | grep -q "^Project name: acme\\\\x1b\]0;pwned\\\\x07\\\\u009bx\\\\xff$" && ok ||
    fail "--info project: $OUT"
for f in "$T/.out" "$T/.err"; do
    if od -An -tx1 "$f" | grep -Eq ' (1b|07|9b|ff)'; then fail "raw control bytes in $f"; else ok; fi
done
# The release refuses the version, and says so without the raw bytes (report and error).
run bundle "$T/esc.bin"
[ "$RC" -eq 1 ] && ok || fail "escape version: exit $RC"
expect_err "^fwrel-bundle: app version \"9.9.9\\\\x1b\[2J\\\\x07\" is not SemVer 2.0 \(ESP-IDF takes it from PROJECT_VER, version.txt or git describe; set PROJECT_VER\)$" \
    "escape version"
printf '%s\n' "$OUT" | grep -q "^FAIL image  *app version \"9.9.9\\\\x1b\[2J\\\\x07\" is not" && ok ||
    fail "escape version: report: $OUT"
for f in "$T/.out" "$T/.err"; do
    if od -An -tx1 "$f" | grep -Eq ' (1b|07|9b|ff)'; then fail "raw control bytes in $f"; else ok; fi
done
run fwrel-verify --json --info "$T/esc.bin"
if printf '%s' "$OUT" | od -An -tx1 | grep -Eq ' (1b|07|c2)'; then fail "--json: raw bytes"; else ok; fi
printf '%s' "$OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' && ok || fail "--json is not JSON"

# --- d. SOURCE_DATE_EPOCH: expired on arrival, or in the future ---------------------------------
img 2.0.0
nlog=$(wc -l <"$R/audit/audit.jsonl")
old=$(( $(date +%s) - 61 * 86400 )) # the beta channel's manifests are valid 60 days
SOURCE_DATE_EPOCH=$old run bundle -q -o "$T/old.fwb" "$T/app-2.0.0.bin"
[ "$RC" -eq 2 ] && ok || fail "old SOURCE_DATE_EPOCH: exit $RC: $ERR"
expect_err "^fwrel-bundle: the release time .* \(SOURCE_DATE_EPOCH\) plus the beta channel's validity of 1440 h ends at .*, in the past: the manifest would be expired on arrival" \
    "old SOURCE_DATE_EPOCH"
expect_absent "$T/old.fwb" "old SOURCE_DATE_EPOCH"
[ "$(wc -l <"$R/audit/audit.jsonl")" -eq "$nlog" ] && ok || fail "old SOURCE_DATE_EPOCH logged or signed"
SOURCE_DATE_EPOCH=$(( $(date +%s) + 86400 )) run bundle -q "$T/app-2.0.0.bin"
[ "$RC" -eq 2 ] && ok || fail "future SOURCE_DATE_EPOCH: exit $RC"
expect_err "SOURCE_DATE_EPOCH\) is in the future" "future SOURCE_DATE_EPOCH"
SOURCE_DATE_EPOCH=$(( $(date +%s) - 59 * 86400 )) expect_rc 0 "SOURCE_DATE_EPOCH 59 days ago" \
    bundle -q "$T/app-2.0.0.bin"
# fwrel-encrypt --manifest: an expires in the past is refused (exit 3), nothing written.
cd "$T" || exit 1
openssl genpkey -algorithm ed25519 -out mk.pem 2>/dev/null
openssl genpkey -algorithm x25519 -out rk.pem 2>/dev/null
openssl pkey -in rk.pem -pubout -out rk.pub 2>/dev/null
now=$(date +%s)
printf '{"product":"acme-sensor","device_types":["sensor-c6"],"channel":"beta","counter":9,"created":%d,"expires":%d}\n' \
    $((now - 7200)) $((now - 3600)) >expired.json
expect_rc 3 "fwrel-encrypt --manifest: expired" fwrel-encrypt --manifest --signed-image "$T/app-1.0.0.bin" \
    --encrypted-image "$T/app-1.0.0.bin" --sign-key mk.pem --recipient rk.pub -o exp.fwm expired.json
expect_err "^fwrel-encrypt: expired.json: expires $((now - 3600)) is in the past \(now [0-9]+\): the manifest would be expired on arrival$" \
    "fwrel-encrypt --manifest: expired"
expect_absent "$T/exp.fwm" "fwrel-encrypt --manifest: expired"

# --- e. the audit log stays inside the repository -----------------------------------------------
for bad in .git/hooks/post-commit.jsonl hooks/post-commit ../x.jsonl /tmp/x.jsonl a/../b.jsonl \
    a//b.jsonl ./a.jsonl refs/heads/main.jsonl HOOKS/x.jsonl objects/x.jsonl audit/.x.jsonl config; do
    sed "s|log: audit/audit.jsonl|log: \"$bad\"|" "$T/policy.yaml" >"$T/bad-policy.yaml"
    run fwrel-bundle --check-policy "$T/bad-policy.yaml"
    [ "$RC" -eq 3 ] && ok || fail "audit log $bad: exit $RC: $ERR"
    expect_err "^fwrel-bundle: $T/bad-policy.yaml:[0-9]+:[0-9]+: log '$bad': " "audit log $bad"
done
sed "s|log: audit/audit.jsonl|log: logs-of/audit/x.jsonl|" "$T/policy.yaml" >"$T/ok-policy.yaml"
expect_rc 0 "audit log in a directory of its own" fwrel-bundle --check-policy "$T/ok-policy.yaml"
# At use time: a symbolic link on the way out of the repository is refused, nothing written.
mkdir "$T/outside"
sed "s|log: audit/audit.jsonl|log: escape/audit.jsonl|" "$T/policy.yaml" >"$T/link-policy.yaml"
ln -s "$T/outside" "$R/escape"
img 2.1.0
POLICY="$T/link-policy.yaml" run bundle -q "$T/app-2.1.0.bin"
[ "$RC" -eq 5 ] && ok || fail "symlinked audit directory: exit $RC: $ERR"
expect_err "^fwrel-bundle: audit log: $R/escape is a symbolic link, not a directory$" \
    "symlinked audit directory"
[ -z "$(ls -A "$T/outside")" ] && ok || fail "written through the link: $(ls -A "$T/outside")"
rm "$R/escape"
ln -s "$T/outside/audit.jsonl" "$R/audit/link.jsonl"
sed "s|log: audit/audit.jsonl|log: audit/link.jsonl|" "$T/policy.yaml" >"$T/link-policy.yaml"
POLICY="$T/link-policy.yaml" run bundle -q "$T/app-2.1.0.bin"
[ "$RC" -eq 5 ] && ok || fail "symlinked audit log: exit $RC: $ERR"
expect_err "^fwrel-bundle: audit log: $R/audit/link.jsonl is a symbolic link, not a regular file$" \
    "symlinked audit log"
[ ! -e "$T/outside/audit.jsonl" ] && ok || fail "written through the log's link"
finish
