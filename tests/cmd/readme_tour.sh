# README.md's quick tour, verbatim (issue 15 point 3): the fenced block under "## A quick tour" is
# taken out of README.md and run line by line, as it is, in one bash with `set -e`, from a copy of
# the checkout's layout (build/ is this build tree, policies/ the source's). The README must be
# exactly runnable: any line that fails fails this test.
. "$FWREL_SRC/tests/lib.sh"
trap 'gpgconf --homedir "$T/co/tour/gnupg" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
python3 - "$FWREL_SRC/README.md" >"$T/tour.sh" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
start = lines.index("## A quick tour")
i = start + 1
while not lines[i].startswith("```"):
    i += 1
j = i + 1
while not lines[j].startswith("```"):
    j += 1
block = lines[i + 1:j]
assert len(block) >= 10, "the tour has %d lines" % len(block)
print("\n".join(block))
PY
[ -s "$T/tour.sh" ] && ok || { fail "no quick tour in README.md"; finish; }
mkdir "$T/co"
ln -s "$FWREL_BIN" "$T/co/build"
ln -s "$FWREL_SRC/policies" "$T/co/policies"
# No GnuPG home of the caller's, no installed templates: only what the tour makes and finds.
run env -u GNUPGHOME bash -c 'cd "$1" && set -euo pipefail && . "$2"' tour "$T/co" "$T/tour.sh"
[ "$RC" -eq 0 ] && ok || fail "the quick tour failed (exit $RC): $ERR"
# What the tour made: a signed image that verifies, a release in the repository, the audit report.
[ -s "$T/co/tour/app.signed.bin" ] && ok || fail "no app.signed.bin"
cmp -s "$T/co/tour/app.check" "$T/co/tour/app.signed.bin" && ok || fail "decryption differs"
[ "$(git -C "$T/co/tour/releases" tag)" = "acme-sensor/beta/v1.0.0" ] && ok || fail "no release tag"
[ -s "$T/co/tour/audit.html" ] && ok || fail "no audit report"
echo "$OUT" | grep -q "^VERIFIED: every check of c6.fwb passed" && ok || fail "the CI check: $OUT"
finish
