# fwrel-verify --bundle --extract DIR [MEMBER...] (issue 15 point 9, docs/verify.md "Extracting a
# bundle"): after every CI check passed, the members (all, one export, one file) are written under
# DIR, each export file a regular file with firmware.enc's bytes (the tar's hard link
# materialised), byte-identical to what tar gives; a tampered bundle, a member not in the bundle,
# an existing file, and a symbolic link under DIR pointing outside are refused with nothing written
# (nothing outside DIR either).
. "$FWREL_SRC/tests/lib.sh"
release_setup
img 1.0.0 1
expect_rc 0 "release" fwrel-bundle -q --policy "$T/policy.yaml" --keystore "$T/ks" \
    --repo "$T/releases" --channel prod --gnupg-home "$G" --no-passphrase --user rel-op \
    --templates "$FWREL_SRC/templates" -A "$A1" -A "$A2" -o "$T/b.fwb" "$T/app-1.0.0.bin"
B=$T/b.fwb
x() { fwrel-verify --bundle --policy "$T/policy.yaml" --gnupg-home "$G" "$@"; }

# The reference: tar's members, each export file (a hard link in the tar) its own file.
mkdir "$T/ref"
tar -xf "$B" -C "$T/ref" || fail "tar -x"
members=$(tar -tf "$B" | sort)
flask=$(tar -tf "$B" | grep '^exports/flask-ota/' | sort)
[ -n "$flask" ] && ok || fail "the bundle has no flask-ota export: $members"

# --- all members -----------------------------------------------------------------------------
expect_rc 0 "extract all" x --extract "$T/all" "$B"
expect_out "^VERIFIED: every check of $B passed$" "extract all: verdict"
[ "$(cd "$T/all" && find . -type f | sed 's|^\./||' | sort)" = "$members" ] && ok ||
    fail "extract all: files differ from the members"
for m in $members; do
    cmp -s "$T/all/$m" "$T/ref/$m" && ok || fail "extract all: $m differs from tar's"
    [ "$(stat -c %h "$T/all/$m")" = 1 ] && ok || fail "extract all: $m is a hard link"
done
for m in $flask; do
    [ "$(basename "$m")" = firmware.enc ] || continue
    cmp -s "$T/all/$m" "$T/all/firmware.enc" && ok || fail "$m is not firmware.enc's bytes"
done
[ -z "$(find "$T/all" -type l)" ] && ok || fail "extract all made a symbolic link"

# --- one export, one file ------------------------------------------------------------------------
expect_rc 0 "extract one export" x --extract "$T/one" "$B" exports/flask-ota
[ "$(cd "$T/one" && find . -type f | sed 's|^\./||' | sort)" = "$flask" ] && ok ||
    fail "extract exports/flask-ota gave $(cd "$T/one" && find . -type f)"
for m in $flask; do cmp -s "$T/one/$m" "$T/ref/$m" && ok || fail "one export: $m differs"; done
expect_rc 0 "extract one file into an existing directory" x --extract "$T/one" "$B" release.json
expect_same "$T/one/release.json" "$T/ref/release.json" "one file"
expect_rc 0 "--json" x --json --extract "$T/j" "$B" exports/flask-ota/
printf '%s' "$OUT" | python3 -c 'import json, sys
j = json.load(sys.stdin); assert j["accepted"] is True and j["extracted_to"] == sys.argv[1], j' "$T/j" &&
    ok || fail "--json: $OUT"

# --- refusals: nothing written ----------------------------------------------------------------
cp "$B" "$T/bad.fwb"
python3 - "$T/bad.fwb" <<'PY'
import sys, tarfile, io
# Flip a byte of release.json's data in the tar (its checksum stays valid: a content change).
b = bytearray(open(sys.argv[1], "rb").read())
with tarfile.open(sys.argv[1]) as t:
    m = t.getmember("release.json")
    off = m.offset_data + 10
b[off] ^= 1
open(sys.argv[1], "wb").write(b)
PY
expect_rc 1 "tampered bundle" x --extract "$T/t" "$T/bad.fwb"
expect_err "^fwrel-verify: $T/bad.fwb: rejected at " "tampered bundle"
expect_absent "$T/t" "tampered bundle"
mkdir "$T/t2"
expect_rc 1 "tampered bundle, existing DIR" x --extract "$T/t2" "$T/bad.fwb" exports/flask-ota
[ -z "$(ls -A "$T/t2")" ] && ok || fail "tampered bundle wrote $(ls -A "$T/t2")"

expect_rc 2 "a member not in the bundle" x --extract "$T/n" "$B" exports/nope
expect_err "^fwrel-verify: $B: exports/nope: not in the bundle$" "a member not in the bundle"
expect_absent "$T/n" "a member not in the bundle"
expect_rc 2 "one good, one missing" x --extract "$T/n" "$B" release.json exports/flask
expect_err "^fwrel-verify: $B: exports/flask: not in the bundle$" "a prefix is not a directory"
expect_absent "$T/n" "one good, one missing"
for bad in /etc/passwd ../release.json exports/../release.json ""; do
    expect_rc 2 "member '$bad'" x --extract "$T/n" "$B" "$bad"
    expect_err "^fwrel-verify: $B: $bad: not a member name of a bundle$" "member '$bad'"
done
expect_absent "$T/n" "bad member names"

# An existing file: refused, nothing else written (the other members checked first).
mkdir -p "$T/e/exports"
printf 'mine\n' >"$T/e/SHA256SUMS"
expect_rc 5 "an existing file" x --extract "$T/e" "$B"
expect_err "^fwrel-verify: $T/e/SHA256SUMS: exists$" "an existing file"
[ "$(cd "$T/e" && find . | sort | tr '\n' ' ')" = ". ./SHA256SUMS ./exports " ] && ok ||
    fail "an existing file: wrote $(cd "$T/e" && find .)"
[ "$(cat "$T/e/SHA256SUMS")" = mine ] && ok || fail "the existing file was changed"

# A symbolic link under DIR pointing outside: refused, nothing written there or outside.
mkdir "$T/outside" "$T/s"
ln -s "$T/outside" "$T/s/exports"
expect_rc 5 "a symbolic link in DIR" x --extract "$T/s" "$B" exports/flask-ota
expect_err "^fwrel-verify: $T/s/exports: not a directory \(a symbolic link\): nothing is written outside the directory given$" "a symbolic link in DIR"
[ -z "$(ls -A "$T/outside")" ] && ok || fail "written outside DIR: $(ls -A "$T/outside")"
[ "$(ls -A "$T/s")" = exports ] && ok || fail "a symbolic link in DIR: wrote $(ls -A "$T/s")"
# ... also when extracting everything (the other members would fit): nothing at all.
expect_rc 5 "a symbolic link in DIR, all members" x --extract "$T/s" "$B"
[ "$(ls -A "$T/s")" = exports ] && [ -z "$(ls -A "$T/outside")" ] && ok ||
    fail "all members with a symbolic link: wrote $(ls -A "$T/s") $(ls -A "$T/outside")"
# A file where a directory goes.
mkdir "$T/f" && : >"$T/f/exports"
expect_rc 5 "a file where a directory goes" x --extract "$T/f" "$B"
expect_err "^fwrel-verify: $T/f/exports: not a directory$" "a file where a directory goes"

# --- usage -----------------------------------------------------------------------------------------
expect_rc 2 "--extract without --bundle" fwrel-verify --extract "$T/u" --info "$T/app-1.0.0.bin"
expect_rc 2 "--extract with --device" fwrel-verify --bundle --device "$T/none.yaml" --extract "$T/u" "$B"
expect_rc 2 "members without --extract" x "$B" release.json
expect_absent "$T/u" "usage errors"
finish
