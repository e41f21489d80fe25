# The README's first command: examples/demo.sh runs end to end and exits 0, twice (idempotent).
. "$FWREL_SRC/tests/lib.sh"
export FWREL_BIN
expect_rc 0 "examples/demo.sh" bash "$FWREL_SRC/examples/demo.sh" "$T/demo"
[ "$(echo "$OUT" | grep -c "^ACCEPTED")" -eq 2 ] && ok || fail "the demo's device did not accept manifest and image: $OUT"
echo "$OUT" | grep -q "PASS manifest.threshold .*2 of 2 required" && ok || fail "the manifest threshold: $OUT"
echo "$ERR" | grep -q "rejected at image.checksum" && ok || fail "the tampered copy was not refused: $ERR"
expect_rc 0 "examples/demo.sh again in the same directory" bash "$FWREL_SRC/examples/demo.sh" "$T/demo"
[ "$(stat -c %a "$T/demo/keys/sb-slot0.pem")" = 600 ] && ok || fail "demo key mode"
finish
