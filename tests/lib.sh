# tests/lib.sh - shared helpers for command and conformance tests (sourced).
#
# Environment (set by ctest): FWREL_BIN (build dir with the commands),
# FWREL_SRC (source dir), FWREL_VECTORS (../shared/vectors, or empty).
set -u
: "${FWREL_BIN:?FWREL_BIN must point to the build directory}"
: "${FWREL_SRC:?FWREL_SRC must point to the source directory}"
FWREL_VECTORS=${FWREL_VECTORS:-}
export PATH="$FWREL_BIN:$PATH"
# python3, when PATH finds a wrapper script in its place (a version manager's shim, such as pyenv's,
# costs a second or more at each start, and the tests start python3 hundreds of times): the
# directory of the interpreter it runs, asked once, put in front of the rest of PATH, so that
# python3 is that interpreter itself (also for `python3 ... &`: $! is its process).
fwrel_py=$(command -v python3 || echo /dev/null)
if [ "$(head -c 2 "$fwrel_py")" = "#!" ]; then
    fwrel_py=$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))') &&
        [ -x "$fwrel_py/python3" ] && PATH="$FWREL_BIN:$fwrel_py:${PATH#"$FWREL_BIN:"}"
fi
unset fwrel_py

. "$FWREL_SRC/tests/approvers.sh"

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

# expect_out PATTERN DESC: a line of stdout matches the grep -E pattern.
expect_out() {
    if printf '%s\n' "$OUT" | grep -Eq -- "$1"; then ok; else fail "$2: $OUT"; fi
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

# hex FILE: the bytes of FILE as lower-case hex, one line.
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# rev_hex HEX: the byte order of HEX reversed.
rev_hex() { printf '%s\n' "$1" | fold -w2 | tac | tr -d '\n'; }

# ec_digest PUB.pem CURVE_ID BYTES: the SBv2 key digest re-derived without fwrel
# (docs/esp-formats.md §2.2, §2.4):
# SHA-256 of curve_id || X (LE) || Y (LE), zero-filled to 64 bytes for P-192. The last 2*BYTES
# bytes of the DER SubjectPublicKeyInfo are X || Y big-endian.
ec_digest() {
    local der x y pad=""
    der=$(sed '/-----/d' "$1" | base64 -d | od -An -v -tx1 | tr -d ' \n')
    x=${der: -$(($3 * 4)):$(($3 * 2))}
    y=${der: -$(($3 * 2))}
    [ "$3" -eq 24 ] && pad=$(printf '0%.0s' $(seq 32))
    printf '%02x%s%s%s' "$2" "$(rev_hex "$x")" "$(rev_hex "$y")" "$pad" | xxd -r -p |
        sha256sum | cut -d' ' -f1
}

# rsa_digest PUB.pem: the SBv2 RSA-3072 key digest re-derived without fwrel
# (docs/esp-formats.md §2.2, §2.4):
# SHA-256 of n || e || R^2 mod n || -1/n mod 2^32, each little-endian (384, 4, 384, 4 bytes).
# openssl prints n; python3 does the arithmetic.
rsa_digest() {
    local n
    n=$(openssl rsa -pubin -in "$1" -noout -modulus | cut -d= -f2)
    python3 -c '
import hashlib, sys
n = int(sys.argv[1], 16)
le = lambda v, k: v.to_bytes(k, "little")
blob = le(n, 384) + le(65537, 4) + le(pow(2, 2 * 3072, n), 384) + le((-pow(n, -1, 1 << 32)) % (1 << 32), 4)
print(hashlib.sha256(blob).hexdigest())' "$n"
}

# sbv2_digest PUB.pem ALG: rsa_digest or ec_digest by the policy's algorithm name.
sbv2_digest() {
    case $2 in
    rsa3072) rsa_digest "$1" ;;
    ecdsa192) ec_digest "$1" 1 24 ;;
    ecdsa256) ec_digest "$1" 2 32 ;;
    ecdsa384) ec_digest "$1" 3 48 ;;
    esac
}

# tree_sum DIR: one line per file under DIR (path, mode, SHA-256), sorted: equal sums, same tree.
tree_sum() {
    (cd "$1" && find . -type f -printf '%p %m ' -exec sha256sum {} \; | sort)
}

# ks_cheap_kdf KS PASSFILE: re-encrypt the private keys (PKCS#8 PEM) of keystore KS with scrypt
# N=2^10 r=8 p=1 instead of fwrel's N=2^14 r=8 p=4, 64 times less work per key load (a release
# loads four: over a second of CPU at the default cost). PKCS#8 records its scrypt parameters and
# fwrel reads them from the file, so the keys load as before; for tests that run many releases,
# after one release at the default cost. Sealed secrets (.sec) keep theirs.
ks_cheap_kdf() {
    local f
    for f in "$1"/keys/*.pem; do
        case $f in *.pub.pem) continue ;; esac
        grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$f" || continue
        openssl pkcs8 -topk8 -v2 aes-256-cbc -scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 1 \
            -passin "file:$2" -passout stdin -in "$f" -out "$f.cheap" <"$2" &&
            chmod 600 "$f.cheap" && mv "$f.cheap" "$f" || return 1
    done
}

# audit_ok LOG: the audit chain LOG is whole: every line complete, seq counting from 1, each prev
# the SHA-256 of the line before; prints the number of entries and the SHA-256 of the last line.
# audit_len LOG: the same check, printing the number of entries only.
audit_ok() {
    python3 - "$1" "${2:-}" <<'PY'
import hashlib, json, sys
prev, seq = "0" * 64, 0
for line in open(sys.argv[1], "rb"):
    assert line.endswith(b"\n"), "torn line"
    e = json.loads(line)
    seq += 1
    assert e["seq"] == seq and e["prev"] == prev, "chain broken at line %d" % seq
    prev = hashlib.sha256(line[:-1]).hexdigest()
print(seq) if sys.argv[2] == "len" else print(seq, prev)
PY
}
audit_len() { audit_ok "$1" len; }

# approvers_home [PASS3]: the GnuPG home $G of approvers A1 to A3 (make_approvers; A3's key
# protected by PASS3 when given), its agent stopped and $T removed at exit.
approvers_home() {
    G="$T/gnupg"
    trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
    make_approvers "$G" "$@"
    [ -n "$A3" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
}

# release_setup: the fixture of the release history tests. A GnuPG home $G (its agent stopped at
# exit) with the three approvers ($A1..$A3) and Mallory ($M), a key in the same home that no
# policy pins; the RSA prod example policy pinning the approvers ($T/policy.yaml) and its keystore
# $T/ks without passphrase. Defines img VERSION SECURE_VERSION, making the ESP32-S3 app
# $T/app-VERSION.bin (project acme, 64 KiB).
release_setup() {
    approvers_home
    gpg --homedir "$G" --batch --pinentry-mode loopback --passphrase '' \
        --quick-gen-key "Mallory <m@example.invalid>" ed25519 sign never >/dev/null 2>&1
    M=$(gpg --homedir "$G" --with-colons --list-secret-keys m@example.invalid |
        awk -F: '/^fpr/{print $10; exit}')
    pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >"$T/policy.yaml"
    fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase ||
        { echo "FAIL: keygen"; exit 1; }
    img() {
        fwrel-testimg --chip esp32s3 --version "$1" --secure-version "$2" --project acme \
            --size 65536 -o "$T/app-$1.bin"
    }
}

# pass_keystore: the keystore $T/ks of $T/policy.yaml, its keys under the passphrase in $T/pass.
pass_keystore() {
    printf 'keystore passphrase\n' >"$T/pass"
    chmod 600 "$T/pass"
    fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --passphrase-file "$T/pass" ||
        { echo "FAIL: keygen"; exit 1; }
}

# thermo_profile: the lines the thermo-a test device profiles share (an ESP32-C3 rev 0.4, a 1 MiB
# partition, secure_version 2); the caller adds its channels, keys and trust.
thermo_profile() {
    printf '%s\n' 'chip: esp32c3' 'chip_revision: "0.4"' 'partition_size: 0x100000' \
        'device_type: thermo-a' 'product: thermo' 'anti_rollback: {secure_version: 2}'
}

# kill_steps STEP...: the steps at which a test kills a release with SIGKILL: all of them, but
# in the AddressSanitizer layer of scripts/test.sh (FWREL_TEST_LAYER=asan) the last one only. A
# process killed by SIGKILL ends before the sanitizers can report anything; what it ran before the
# kill is the code of the whole releases that layer runs anyway; and the next release still undoes,
# under the sanitizers, what the one kill left.
kill_steps() {
    if [ "${FWREL_TEST_LAYER:-}" = asan ]; then echo "${@: -1}"; else echo "$@"; fi
}

# planted_check CHECK WANT WHAT: the checker CHECK (a function printing one line per fault in the
# tree given) finds exactly the faults WANT planted in $T/tree, and none in the repository (else
# a failure "WHAT:" and what it found): a checker first proves that it finds each fault.
planted_check() {
    local check=$1 want=$2 what=$3 got
    got=$("$check" "$T/tree")
    if [ "$got" = "$want" ]; then ok; else fail "planted tree: expected:
$want
got:
$got"; fi
    got=$("$check" "$FWREL_SRC")
    if [ -z "$got" ]; then ok; else fail "$what:
$got"; fi
}

# finish: print the closing line and exit non-zero on any failure.
finish() {
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
    exit $?
}
