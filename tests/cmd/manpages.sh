# Every command has a man page that documents every option its --help lists.
. "$FWREL_SRC/tests/lib.sh"
found=0
for bin in "$FWREL_BIN"/fwrel-keygen "$FWREL_BIN"/fwrel-sign "$FWREL_BIN"/fwrel-encrypt \
           "$FWREL_BIN"/fwrel-bundle "$FWREL_BIN"/fwrel-verify; do
    [ -x "$bin" ] || continue
    found=$((found + 1))
    name=$(basename "$bin")
    page="$FWREL_SRC/docs/man/$name.1"
    if [ ! -f "$page" ]; then
        fail "$name has no man page"
        continue
    fi
    ok
    if command -v man >/dev/null && MANWIDTH=80 man -l "$page" >/dev/null 2>"$T/man.err" && [ -s "$T/man.err" ]; then
        fail "$name.1 renders with warnings: $(cat "$T/man.err")"
    fi
    for opt in $("$bin" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
        esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
        if grep -q -- "$esc" "$page" || grep -q -- "$opt" "$page"; then
            ok
        else
            fail "$name.1 does not document $opt"
        fi
    done
    expect_rc 0 "$name --version" "$bin" --version
    case "$OUT" in "$name "*) ok ;; *) fail "$name --version printed '$OUT'" ;; esac
    expect_rc 2 "$name --no-such-option" "$bin" --no-such-option
    expect_err "^$name: unknown option --no-such-option" "$name unknown option"
done
[ "$found" -gt 0 ] || fail "no command built"
finish
