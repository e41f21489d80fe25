# tests/lib.sh - shared helpers for command and conformance tests (sourced).
#
# Environment (set by ctest): FWREL_BIN (build dir with the commands),
# FWREL_SRC (source dir), FWREL_VECTORS (../shared/vectors, or empty).
set -u
: "${FWREL_BIN:?FWREL_BIN must point to the build directory}"
: "${FWREL_SRC:?FWREL_SRC must point to the source directory}"
FWREL_VECTORS=${FWREL_VECTORS:-}
export PATH="$FWREL_BIN:$PATH"

T=$(mktemp -d "${TMPDIR:-/tmp}/fwrel-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
PASSED=0
FAILED=0
SKIPPED=0

fail() {
    echo "FAIL: $*" >&2
    FAILED=$((FAILED + 1))
}

ok() {
    PASSED=$((PASSED + 1))
}

skip() {
    echo "skipped: $*"
    SKIPPED=$((SKIPPED + 1))
}

# need_vectors: exit 77 (skipped) when the shared vectors are absent.
need_vectors() {
    if [ -z "$FWREL_VECTORS" ] || [ ! -f "$FWREL_VECTORS/vectors.json" ]; then
        echo "skipped: no vectors"
        exit 77
    fi
}

# run CMD...: runs a command, capturing $RC, $OUT (stdout) and $ERR (stderr).
run() {
    "$@" >"$T/.out" 2>"$T/.err"
    RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}

# expect_rc N DESC CMD...: the command exits N.
expect_rc() {
    local want=$1 desc=$2
    shift 2
    run "$@"
    if [ "$RC" -eq "$want" ]; then
        ok
    else
        fail "$desc: exit $RC, expected $want; stderr: $ERR"
    fi
}

# expect_err PATTERN DESC: stderr is exactly one line and matches the grep -E pattern.
expect_err() {
    local pat=$1 desc=$2
    local lines
    lines=$(printf '%s\n' "$ERR" | grep -c .)
    if [ "$lines" -ne 1 ]; then
        fail "$desc: stderr has $lines lines, expected one: $ERR"
    elif printf '%s\n' "$ERR" | grep -Eq -- "$pat"; then
        ok
    else
        fail "$desc: stderr '$ERR' does not match '$pat'"
    fi
}

# expect_absent PATH DESC: nothing was written at PATH (nor a temporary beside it).
expect_absent() {
    local p=$1 desc=$2
    local dir base
    dir=$(dirname "$p")
    base=$(basename "$p")
    if [ -e "$p" ] || [ -L "$p" ]; then
        fail "$desc: $p exists after a failure"
    elif ls -a "$dir" 2>/dev/null | grep -q "^\.$base\..*~$"; then
        fail "$desc: a temporary file for $p was left behind"
    else
        ok
    fi
}

# expect_same A B DESC: two files are byte-identical.
expect_same() {
    if cmp -s "$1" "$2"; then ok; else fail "$3: $1 and $2 differ"; fi
}

# finish: print the closing line and exit non-zero on any failure.
finish() {
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
    exit $?
}
