# The preflight of fwrel-bundle (issue 15 point 1; docs/bundle.md "Preflight"): every check that
# can fail runs before any private key is opened. For each mistake: the exit code, the exact
# stderr line, nothing written (no output, no repository, no tag, no audit entry), and no key
# opened: the keystore and OpenPGP passphrase descriptors were never read (their offset is 0).
# Also the ESP-IDF version and chip-revision refusals (point 5) and the templates found beside
# the executable in the build tree and wherever it is carried (point 3).
. "$FWREL_SRC/tests/lib.sh"
G="$T/gnupg"
trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; gpgconf --homedir "$T/g2" --kill all \
    >/dev/null 2>&1; rm -rf "$T"' EXIT
printf 'approver three\n' >"$T/pgp-pass"
chmod 600 "$T/pgp-pass"
make_approvers "$G" 'approver three'
[ -n "$A3" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
# ESP32-C6, ECDSA; prod needs one approval, beta none; the third approver (whose key has a
# passphrase) pinned too.
sed 's|^    - 89ABCDEF0123456789ABCDEF0123456789ABCDEF$|&\n    - FEDCBA9876543210FEDCBA9876543210FEDCBA98|' \
    "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$T/policy.in"
pin_approvers "$T/policy.in" >"$T/policy.yaml"
grep -q "$A3" "$T/policy.yaml" || { echo "FAIL: the third approver is not pinned"; exit 1; }
printf 'keystore passphrase\n' >"$T/pass"
chmod 600 "$T/pass"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --passphrase-file "$T/pass" ||
    { echo "FAIL: keygen"; exit 1; }
img() { fwrel-testimg --chip esp32c6 --version "$1" --secure-version 1 --project acme \
    --size 100000 "${@:3}" -o "$T/$2"; }
img 1.0.0 app.bin
R="$T/releases"

# try DESC RC PATTERN POLICY [ARGS...]: a prod release that must fail in the preflight. The
# keystore passphrase comes on fd 3 and the OpenPGP one on fd 4, both regular files: their
# offsets after the run show whether anything read them.
try() {
    local desc=$1 rc=$2 pat=$3 policy=$4
    shift 4
    local out=${OUTP:-$T/out.fwb}
    rm -f "$out"
    exec 3<"$T/pass" 4<"$T/pgp-pass"
    run fwrel-bundle --policy "$policy" --keystore "$T/ks" --repo "$R" --channel prod \
        --gnupg-home "${GH:-$G}" --passphrase-fd 3 --pgp-passphrase-fd 4 -o "$out" "$@"
    local pos3 pos4
    pos3=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/3)
    pos4=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/4)
    exec 3<&- 4<&-
    [ "$RC" -eq "$rc" ] && ok || fail "$desc: exit $RC, expected $rc: $ERR"
    expect_err "$pat" "$desc"
    expect_absent "$out" "$desc"
    [ ! -e "$R" ] && ok || fail "$desc: the repository was made (no audit entry, no tag expected)"
    [ "$pos3" = 0 ] && ok || fail "$desc: the keystore passphrase was read (offset $pos3)"
    [ "$pos4" = 0 ] && ok || fail "$desc: the OpenPGP passphrase was read (offset $pos4)"
}

# --- an export name typo: refused by --check-policy and by the release, with the known names ---
sed 's|^exports: .*|exports: [secure_fota]|' "$T/policy.yaml" >"$T/typo.yaml"
known="aws-iot-ota, flask-ota, hawkbit, https-dir, memfault, mender, plain-dir, rainmaker, secure-fota, thingsboard"
expect_rc 3 "check-policy: export typo" fwrel-bundle --check-policy "$T/typo.yaml"
# No --templates: found beside the executable (the source's templates in the build tree).
expect_err "^fwrel-bundle: $T/typo.yaml: export 'secure_fota': no such export in $FWREL_SRC/templates \(known: $known\)$" \
    "check-policy: export typo"
try "export typo" 3 \
    "^fwrel-bundle: export 'secure_fota': no such export in $FWREL_SRC/templates \(known: $known\)$" \
    "$T/typo.yaml" -A "$A3" "$T/app.bin"

# --- SemVer build metadata: the exports refuse it as a file name, before any signature -------
img 1.3.0+b5 app-meta.bin
try "build metadata" 3 \
    "^fwrel-bundle: export https-dir: export 'https-dir' needs a plain name in 'version' \(\[A-Za-z0-9._-\], starting and ending with a letter or digit\): '1.3.0\+b5'$" \
    "$T/policy.yaml" -A "$A3" "$T/app-meta.bin"

# --- ESP-IDF versions: git describe's default, -dirty in prod, a v-prefixed tag -----------------
img 6970792-dirty app-describe.bin
try "git describe version" 1 \
    '^fwrel-bundle: app version "6970792-dirty" is not SemVer 2.0 \(ESP-IDF takes it from PROJECT_VER, version.txt or git describe; set PROJECT_VER\)$' \
    "$T/policy.yaml" -A "$A3" "$T/app-describe.bin"
img 1.2.3-dirty app-dirty.bin
try "-dirty in prod" 1 \
    '^fwrel-bundle: app version "1.2.3-dirty" is a build from a modified tree \(git describe --dirty\): the prod channel releases no -dirty version; build from a clean checkout or set PROJECT_VER$' \
    "$T/policy.yaml" -A "$A3" "$T/app-dirty.bin"
img v1.2.3 app-v.bin
try "v-prefixed version under semver" 1 \
    '^fwrel-bundle: app version "v1.2.3" is not SemVer 2.0 \(ESP-IDF takes it from PROJECT_VER, version.txt or git describe; set PROJECT_VER without the v, or versioning scheme v-semver in the policy\)$' \
    "$T/policy.yaml" -A "$A3" "$T/app-v.bin"
# Under versioning scheme v-semver the same image is release 1.2.3 (tag .../v1.2.3); 1.2.3 alone
# is refused.
sed 's|^release:|versioning: {rule: semver-increasing, scheme: v-semver}\nrelease:|' \
    "$T/policy.yaml" >"$T/vsemver.yaml"
try "plain version under v-semver" 1 \
    '^fwrel-bundle: app version "1.0.0" does not start with v \(the policy.s versioning scheme is v-semver; ESP-IDF takes it from PROJECT_VER, version.txt or git describe; set PROJECT_VER to v<major>.<minor>.<patch>\)$' \
    "$T/vsemver.yaml" -A "$A3" "$T/app.bin"
exec 3<"$T/pass"
expect_rc 0 "v-semver release" fwrel-bundle -q --policy "$T/vsemver.yaml" --keystore "$T/ks" \
    --repo "$T/rel-v" --channel beta --gnupg-home "$G" --passphrase-fd 3 --tag-signer "$A1" \
    "$T/app-v.bin"
exec 3<&-
[ "$(git -C "$T/rel-v" tag)" = "acme-sensor/beta/v1.2.3" ] && ok ||
    fail "v-semver: tag $(git -C "$T/rel-v" tag)"
# A -dirty build may go to beta.
exec 3<"$T/pass"
expect_rc 0 "-dirty in beta" fwrel-bundle -q --policy "$T/policy.yaml" --keystore "$T/ks" \
    --repo "$T/rel-d" --channel beta --gnupg-home "$G" --passphrase-fd 3 --tag-signer "$A1" \
    "$T/app-dirty.bin"
exec 3<&-

# --- chip revision: the image's range and the policy's, and the ESP-IDF option to set --------
sed 's|^chip_revision: .*|chip_revision: {min: "0.2", max: "0.99"}|' "$T/policy.yaml" >"$T/rev.yaml"
img 1.0.0 app-rev0.bin --min-rev 0 --max-rev 99
try "chip revision floor" 1 \
    '^fwrel-bundle: image supports chip revision v0.0..v0.99, policy requires min v0.2: set CONFIG_ESP32C6_REV_MIN_2 \(Minimum Supported ESP32-C6 Revision\) in menuconfig and build again$' \
    "$T/rev.yaml" -A "$A3" "$T/app-rev0.bin"
sed 's|^chip_revision: .*|chip_revision: {min: "0.0", max: "0.50"}|' "$T/policy.yaml" >"$T/rev2.yaml"
try "chip revision ceiling" 1 \
    "^fwrel-bundle: image supports chip revision v0.0..v0.99, policy allows at most v0.50: ESP-IDF sets the image's maximum \(its supported revisions, not a menuconfig option\); raise the policy's chip_revision max if the product takes those revisions$" \
    "$T/rev2.yaml" -A "$A3" "$T/app-rev0.bin"

# --- OpenPGP: an approver's or the tag signer's secret key missing from the GnuPG home ---------
cp -a "$G" "$T/g2"
gpg --homedir "$T/g2" --batch --yes --delete-secret-keys "$A3" >/dev/null 2>&1
gpg --homedir "$T/g2" --batch --yes --delete-secret-keys "$A2" >/dev/null 2>&1
GH="$T/g2" try "approver without a secret key" 4 \
    "^fwrel-bundle: approver $A3: no secret key $A3$" "$T/policy.yaml" -A "$A1" -A "$A3" "$T/app.bin"
GH="$T/g2" try "tag signer without a secret key" 4 \
    "^fwrel-bundle: tag signer $A2: no secret key $A2$" "$T/policy.yaml" -A "$A1" --tag-signer "$A2" \
    "$T/app.bin"

# --- outputs: the output's directory, an output that exists ----------------------------------
OUTP="$T/no/such/dir/b.fwb" try "output directory missing" 5 \
    "^fwrel-bundle: $T/no/such/dir/b.fwb: cannot write in $T/no/such/dir: No such file or directory$" \
    "$T/policy.yaml" -A "$A3" "$T/app.bin"

# --- templates: --templates wrong, none found beside a carried executable, then found there ---
try "templates given missing" 5 \
    "^fwrel-bundle: export templates $T/none: No such file or directory$" \
    "$T/policy.yaml" -A "$A3" --templates "$T/none" "$T/app.bin"
mkdir -p "$T/carried/bin"
cp "$FWREL_BIN/fwrel-bundle" "$T/carried/bin/"
run "$T/carried/bin/fwrel-bundle" --check-policy "$T/policy.yaml"
if [ -d /usr/local/share/fwrel/templates ]; then
    skip "templates installed in /usr/local: the carried executable finds them"
else
    [ "$RC" -eq 5 ] && ok || fail "carried, no templates: exit $RC: $ERR"
    expect_err "^fwrel-bundle: $T/policy.yaml: no export templates \(tried $T/carried/bin/../share/fwrel/templates, .*/share/fwrel/templates\): give --templates DIR$" \
        "carried, no templates"
fi
mkdir -p "$T/carried/share/fwrel"
cp -r "$FWREL_SRC/templates" "$T/carried/share/fwrel/templates"
expect_rc 0 "carried, templates beside it" "$T/carried/bin/fwrel-bundle" --check-policy \
    "$T/policy.yaml"
run "$T/carried/bin/fwrel-bundle" --check-policy "$T/typo.yaml"
expect_err "^fwrel-bundle: $T/typo.yaml: export 'secure_fota': no such export in $T/carried/share/fwrel/templates \(known: $known\)$" \
    "carried: the templates beside it are the ones checked"

# --- and with everything right, the same release goes through --------------------------------
exec 3<"$T/pass" 4<"$T/pgp-pass"
expect_rc 0 "the release" fwrel-bundle -q --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$R" \
    --channel prod --gnupg-home "$G" --passphrase-fd 3 --pgp-passphrase-fd 4 -A "$A3" \
    --tag-signer "$A1" -o "$T/out.fwb" "$T/app.bin"
exec 3<&- 4<&-
[ -s "$T/out.fwb" ] && ok || fail "the release wrote no bundle"

# --- a wrong OpenPGP passphrase: refused in the preflight, naming the key (fingerprint and user
# id), before the keystore passphrase is read (its descriptor untouched) and before any key is
# opened: no output, no tag, the audit log byte for byte as it was (no failure entry) ----------
img 1.1.0 app-2.bin
printf 'wrong\n' >"$T/pgp-wrong"
chmod 600 "$T/pgp-wrong"
log_before=$(sha256sum <"$R/audit/audit.jsonl")
tags_before=$(git -C "$R" tag)
# unlock_refused DESC REASON [PGPFILE]: the prod release of app-2.bin, the OpenPGP passphrase from
# PGPFILE on fd 4 (none given: no OpenPGP passphrase source at all), refused in the preflight with
# exit 4 and "OpenPGP key A3 (uid): REASON"; no output, no tag, the audit log unchanged, the
# keystore passphrase unread; pos4 is where fd 4 was left.
unlock_refused() {
    local desc=$1 reason=$2 pgp=${3:-} pos3
    exec 3<"$T/pass"
    if [ -n "$pgp" ]; then exec 4<"$pgp"; set -- --pgp-passphrase-fd 4; else set --; fi
    run fwrel-bundle --policy "$T/policy.yaml" --keystore "$T/ks" --repo "$R" --channel prod \
        --gnupg-home "$G" --passphrase-fd 3 "$@" -A "$A3" --tag-signer "$A1" \
        -o "$T/out2.fwb" "$T/app-2.bin" </dev/null
    pos3=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/3)
    exec 3<&-
    if [ -n "$pgp" ]; then pos4=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/4); exec 4<&-; fi
    [ "$RC" -eq 4 ] && ok || fail "$desc: exit $RC: $ERR"
    expect_err "^fwrel-bundle: OpenPGP key $A3 \(Approver 3 <a3@example.invalid>\): $reason$" "$desc"
    printf '%s\n' "$OUT" | grep -q "^FAIL preflight " && ok || fail "$desc: not refused in the preflight: $OUT"
    expect_absent "$T/out2.fwb" "$desc"
    [ "$pos3" = 0 ] && ok || fail "$desc: the keystore passphrase was read (offset $pos3)"
    [ "$(sha256sum <"$R/audit/audit.jsonl")" = "$log_before" ] && ok || fail "$desc: the audit log changed"
    [ "$(git -C "$R" tag)" = "$tags_before" ] && ok || fail "$desc: a tag was made"
}
unlock_refused "wrong OpenPGP passphrase" "wrong passphrase" "$T/pgp-wrong"
[ "$pos4" = 6 ] && ok || fail "wrong OpenPGP passphrase: its descriptor was read to offset $pos4, not once"
# No OpenPGP passphrase source at all, the approver's key protected (and no terminal): refused in
# the preflight too, naming the key and the options that unlock it.
unlock_refused "protected key, no passphrase source" \
    "protected: a passphrase is needed \(--pgp-passphrase-file, --pgp-passphrase-fd, a terminal or gpg-agent\)"
# The right one on a descriptor read once (gpg-agent caches nothing here): the preflight's unlock
# and the approval use the same line.
exec 3<"$T/pass" 4<"$T/pgp-pass"
expect_rc 0 "the right OpenPGP passphrase, read once" fwrel-bundle -q --policy "$T/policy.yaml" \
    --keystore "$T/ks" --repo "$R" --channel prod --gnupg-home "$G" --passphrase-fd 3 \
    --pgp-passphrase-fd 4 -A "$A3" --tag-signer "$A1" "$T/app-2.bin"
exec 3<&- 4<&-

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
