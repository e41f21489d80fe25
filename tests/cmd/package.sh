# fwrel travels as a package (issue 15 point 3): `cpack` makes a .deb with its Debian dependencies
# declared; unpacked with dpkg-deb -x into a scratch root (not installed), the demo runs from there
# with the templates found in the unpacked prefix (../share/fwrel/templates beside the executable),
# not in the source or build tree.
. "$FWREL_SRC/tests/lib.sh"
command -v dpkg-deb >/dev/null || { echo "skipped: no dpkg-deb"; exit 77; }
command -v cpack >/dev/null || { echo "FAIL: no cpack"; exit 1; }
D=$T/demo
trap 'gpgconf --homedir "$D/gnupg" --kill gpg-agent >/dev/null 2>&1; rm -rf "$T"' EXIT

expect_rc 0 "cpack" cpack --config "$FWREL_BIN/CPackConfig.cmake" -B "$T/pkg"
deb=$(ls "$T"/pkg/fwrel_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && ok || { fail "cpack made no .deb: $OUT $ERR"; finish; }

# The declared dependencies: the shared libraries the commands link (dpkg-shlibdeps) and GnuPG.
run dpkg-deb -f "$deb" Depends
depends=$OUT
for lib in libssl3 libyaml libjansson libarchive libgit2 libgpgme gnupg gpg-agent; do
    echo "$depends" | grep -q "$lib" && ok || fail "Depends lacks $lib: $depends"
done
[ "$(dpkg-deb -f "$deb" Package)" = fwrel ] && ok || fail "package name"

# The contents: the five commands, the templates, the man pages, the documents; no test helper.
expect_rc 0 "dpkg-deb -x" dpkg-deb -x "$deb" "$T/root"
for f in usr/bin/fwrel-keygen usr/bin/fwrel-sign usr/bin/fwrel-encrypt usr/bin/fwrel-bundle \
    usr/bin/fwrel-verify usr/share/fwrel/templates/https-dir/export.yaml \
    usr/share/man/man1/fwrel-bundle.1 usr/share/doc/fwrel/README.md usr/share/doc/fwrel/policy.md \
    usr/share/bash-completion/completions/fwrel-verify; do
    [ -e "$T/root/$f" ] && ok || fail "the package lacks $f"
done
[ ! -e "$T/root/usr/bin/fwrel-testimg" ] && ok || fail "the package holds a test helper"

# The unpacked fwrel-bundle finds the templates of its own prefix: a misspelt export is named
# against them (the build tree's and the source's are not used).
sed 's|^exports: .*|exports: [secure_fota]|' "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >"$T/typo.yaml"
expect_rc 3 "unpacked: --check-policy" "$T/root/usr/bin/fwrel-bundle" --check-policy "$T/typo.yaml"
expect_err "^fwrel-bundle: $T/typo.yaml: export 'secure_fota': no such export in $T/root/usr/share/fwrel/templates \(known: .*https-dir.*\)$" \
    "unpacked: templates of the prefix"

# The demo, with the unpacked commands first on PATH; the example images are made by the build's
# test helper (the only program taken from the build tree).
mkdir "$T/helpers"
ln -s "$FWREL_BIN/fwrel-testimg" "$T/helpers/fwrel-testimg"
expect_rc 0 "the demo from the unpacked package" env FWREL_BIN="$T/root/usr/bin" \
    PATH="$T/root/usr/bin:$T/helpers:$PATH" bash "$FWREL_SRC/examples/demo.sh" "$D"
[ "$(echo "$OUT" | grep -c "^ACCEPTED: the device would accept")" -eq 2 ] && ok ||
    fail "the demo's device did not accept both bundles: $OUT $ERR"
# Its bundles carry the exports rendered from the unpacked templates.
tar tf "$D/bundles/fwrel-example-1.0.0.fwb" | grep -q '^exports/https-dir/' && ok ||
    fail "the demo's bundle has no https-dir export"
finish
