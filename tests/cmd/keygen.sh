# fwrel-keygen: every scheme; keys 0600 and encrypted (openssl decrypts them); outputs together
# or not at all, including when a later write fails; passphrase sources (file, fd, terminal);
# refusals with their exit code, one stderr line and nothing written.
. "$FWREL_SRC/tests/lib.sh"
printf 'a long and secret passphrase\n' >"$T/pass"
chmod 600 "$T/pass"

for s in rsa3072 ecdsa192 ecdsa256 ecdsa384; do
    expect_rc 0 "keygen $s" fwrel-keygen --scheme "$s" --passphrase-file "$T/pass" -o "$T/$s.pem"
    [ "$(stat -c %a "$T/$s.pem")" = 600 ] && ok || fail "$s.pem mode $(stat -c %a "$T/$s.pem")"
    [ "$(stat -c %a "$T/$s.pub.pem")" = 644 ] && ok || fail "$s.pub.pem mode"
    head -1 "$T/$s.pem" | grep -qx -- "-----BEGIN ENCRYPTED PRIVATE KEY-----" && ok ||
        fail "$s.pem is not encrypted PKCS#8"
    openssl pkcs8 -in "$T/$s.pem" -passin "file:$T/pass" -out "$T/$s.clear" 2>/dev/null && ok ||
        fail "openssl pkcs8 cannot decrypt $s.pem with the passphrase"
    openssl asn1parse -in "$T/$s.pem" | grep -q ":scrypt" && ok || fail "$s.pem: no scrypt KDF"
    openssl asn1parse -in "$T/$s.pem" | grep -q ":aes-256-cbc" && ok || fail "$s.pem: not AES-256-CBC"
    openssl pkcs8 -in "$T/$s.pem" -passin pass:wrong -out /dev/null 2>/dev/null &&
        fail "$s.pem opens with a wrong passphrase" || ok
    cmp -s <(openssl pkey -in "$T/$s.pem" -passin "file:$T/pass" -pubout) "$T/$s.pub.pem" && ok ||
        fail "$s.pub.pem is not the key's public key"
    [ "$(stat -c %s "$T/$s.digest.bin")" -eq 32 ] && ok || fail "$s digest is not 32 bytes"
    # The digest re-derives from the private key alone (--export) ...
    expect_rc 0 "export $s" fwrel-keygen --export "$T/$s.pem" --passphrase-file "$T/pass" -o "$T/re-$s"
    expect_same "$T/re-$s.digest.bin" "$T/$s.digest.bin" "$s digest re-derived"
    expect_same "$T/re-$s.pub.pem" "$T/$s.pub.pem" "$s public key re-derived"
    # ... and, for ECDSA, from the public point by the formula of docs/esp-formats.md §2.4,
    # without fwrel (the RSA digest against espsecure's is in the sbv2 unit and conformance tests).
    case $s in
    ecdsa192) want=$(ec_digest "$T/$s.pub.pem" 1 24) ;;
    ecdsa256) want=$(ec_digest "$T/$s.pub.pem" 2 32) ;;
    ecdsa384) want=$(ec_digest "$T/$s.pub.pem" 3 48) ;;
    *) continue ;;
    esac
    [ "$(hex "$T/$s.digest.bin")" = "$want" ] && ok || fail "$s digest is not §2.4's"
done
rm -f "$T"/*.clear

expect_rc 0 "sbv1 key" fwrel-keygen --scheme ecdsa256 --sbv1 --no-passphrase -o "$T/v1.pem"
[ "$(stat -c %s "$T/v1.pub.raw")" -eq 64 ] && ok || fail "v1.pub.raw is not 64 bytes"
[ -e "$T/v1.digest.bin" ] && fail "--sbv1 wrote a digest" || ok
head -1 "$T/v1.pem" | grep -qx -- "-----BEGIN PRIVATE KEY-----" && ok ||
    fail "--no-passphrase key is not plain PKCS#8"
[ "$(stat -c %a "$T/v1.pem")" = 600 ] && ok || fail "unencrypted key mode"
# The raw key is X||Y of the public key.
der=$(sed '/-----/d' "$T/v1.pub.pem" | base64 -d | od -An -v -tx1 | tr -d ' \n')
[ "$(hex "$T/v1.pub.raw")" = "${der: -128}" ] && ok || fail "v1.pub.raw is not X||Y"
expect_rc 0 "--sbv1 implies ecdsa256" fwrel-keygen --sbv1 --no-passphrase -o "$T/v1b.pem"

expect_rc 0 "passphrase from a descriptor" \
    fwrel-keygen --scheme ecdsa256 --passphrase-fd 4 -o "$T/fd.pem" 4<"$T/pass"
openssl pkcs8 -in "$T/fd.pem" -passin "file:$T/pass" -out /dev/null 2>/dev/null && ok || fail "fd key"

expect_rc 0 "-o without .pem" fwrel-keygen --scheme ecdsa256 --no-passphrase -o "$T/plain"
[ -f "$T/plain" ] && [ -f "$T/plain.pub.pem" ] && [ -f "$T/plain.digest.bin" ] && ok ||
    fail "-o without .pem: $(ls "$T" | grep plain | tr '\n' ' ')"

expect_rc 0 "--json" fwrel-keygen --json --scheme ecdsa384 --no-passphrase -o "$T/j.pem"
echo "$OUT" | grep -q '"key_id": "[0-9a-f]\{64\}"' && echo "$OUT" | grep -q '"encrypted": false' &&
    echo "$OUT" | grep -q '"scheme": "ecdsa384"' &&
    echo "$OUT" | grep -q "\"private_key\": \"$T/j.pem\"" &&
    echo "$OUT" | grep -q "\"sbv2_key_digest\": \"$(hex "$T/j.digest.bin")\"" && ok ||
    fail "--json: $OUT"
expect_rc 0 "text output" fwrel-keygen --scheme ecdsa256 --no-passphrase -o "$T/t.pem"
echo "$OUT" | grep -q "^wrote $T/t.pem (private key, NOT encrypted)$" &&
    echo "$OUT" | grep -q "^digest: *$(hex "$T/t.digest.bin")$" && ok || fail "text output: $OUT"
expect_rc 0 "--quiet" fwrel-keygen -q --scheme ecdsa256 --no-passphrase -o "$T/q.pem"
[ -z "$OUT" ] && ok || fail "--quiet printed: $OUT"

# An existing output: exit 5, one line, nothing changed (any of the three files).
for f in rsa3072.pem rsa3072.pub.pem rsa3072.digest.bin; do cp "$T/$f" "$T/keep-$f"; done
expect_rc 5 "existing key" fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/rsa3072.pem"
expect_err "^fwrel-keygen: $T/rsa3072.pem: exists \(use --force to replace\)$" "existing key"
for f in rsa3072.pem rsa3072.pub.pem rsa3072.digest.bin; do
    expect_same "$T/$f" "$T/keep-$f" "existing key: $f untouched"
done
touch "$T/half.digest.bin"
expect_rc 5 "one existing sibling" fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/half.pem"
expect_err "^fwrel-keygen: $T/half.digest.bin: exists \(use --force to replace\)$" "one existing sibling"
expect_absent "$T/half.pem" "one existing sibling"
expect_absent "$T/half.pub.pem" "one existing sibling"
[ -s "$T/half.digest.bin" ] && fail "existing sibling overwritten" || ok
expect_rc 0 "--force replaces" fwrel-keygen --scheme rsa3072 --no-passphrase --force -o "$T/half.pem"
[ "$(stat -c %s "$T/half.digest.bin")" -eq 32 ] && ok || fail "--force did not replace"

# A later write fails (the digest appears while the passphrase is read): the files this run
# published are taken back, the intruder is left alone.
mkfifo "$T/slow"
fwrel-keygen --scheme ecdsa256 --passphrase-fd 3 -o "$T/race.pem" 3<"$T/slow" \
    >"$T/race.out" 2>"$T/race.err" &
pid=$!
exec 5>"$T/slow"
# Wait until it sleeps in the passphrase read, i.e. after its check of the outputs.
for _ in $(seq 100); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$FWREL_BIN/fwrel-keygen" ] &&
        [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = S ] && break
    sleep 0.1
done
echo intruder >"$T/race.digest.bin"
cat "$T/pass" >&5
exec 5>&-
wait $pid
RC=$?
ERR=$(cat "$T/race.err")
[ "$RC" -eq 5 ] && ok || fail "later write failure: exit $RC: $ERR"
expect_err "^fwrel-keygen: $T/race.digest.bin: exists \(use --force to replace\)$" "later write failure"
expect_absent "$T/race.pem" "later write failure"
expect_absent "$T/race.pub.pem" "later write failure"
[ "$(cat "$T/race.digest.bin")" = intruder ] && ok || fail "later write failure: intruder replaced"

# Passphrase refusals: exit 4, nothing written.
printf 'x\n' >"$T/open"
chmod 644 "$T/open"
expect_rc 4 "passphrase file readable by others" \
    fwrel-keygen --scheme rsa3072 --passphrase-file "$T/open" -o "$T/o.pem"
expect_err "^fwrel-keygen: $T/open: passphrase file is readable by group or others$" \
    "passphrase file readable by others"
for f in o.pem o.pub.pem o.digest.bin; do expect_absent "$T/$f" "passphrase file readable"; done
: >"$T/empty"
chmod 600 "$T/empty"
expect_rc 4 "empty passphrase" fwrel-keygen --scheme rsa3072 --passphrase-file "$T/empty" -o "$T/o.pem"
expect_err "empty passphrase$" "empty passphrase"
expect_absent "$T/o.pem" "empty passphrase"
# No controlling terminal (a new session), no source: refused, never hangs.
expect_rc 4 "no terminal, no passphrase source" setsid -w fwrel-keygen --scheme rsa3072 -o "$T/o.pem"
expect_err "no terminal" "no terminal"
expect_absent "$T/o.pem" "no terminal"

# Usage errors: exit 2, one line, nothing written.
usage() {
    expect_rc 2 "$1" "${@:2}"
    expect_err "^fwrel-keygen: .*\(see fwrel-keygen --help\)$" "$1"
}
usage "no output" fwrel-keygen --scheme rsa3072 --no-passphrase
usage "no scheme" fwrel-keygen --no-passphrase -o "$T/o.pem"
usage "two schemes" fwrel-keygen --scheme rsa3072 --scheme ecdsa256 --no-passphrase -o "$T/o.pem"
usage "unknown scheme" fwrel-keygen --scheme rsa2048 --no-passphrase -o "$T/o.pem"
usage "--sbv1 with RSA" fwrel-keygen --scheme rsa3072 --sbv1 --no-passphrase -o "$T/o.pem"
usage "--sbv1 with P-384" fwrel-keygen --scheme ecdsa384 --sbv1 --no-passphrase -o "$T/o.pem"
usage "a passphrase on argv" fwrel-keygen --scheme rsa3072 --passphrase hunter2 -o "$T/o.pem"
usage "two sources" fwrel-keygen --scheme rsa3072 --no-passphrase --passphrase-file "$T/pass" -o "$T/o.pem"
usage "bad fd" fwrel-keygen --scheme rsa3072 --passphrase-fd x -o "$T/o.pem"
usage "--scheme and --export" fwrel-keygen --scheme rsa3072 --export "$T/v1.pem" -o "$T/o.pem"
usage "an argument" fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/o.pem" extra
for f in o.pem o.pub.pem o.digest.bin o.pub.raw; do expect_absent "$T/$f" "usage errors"; done

# --export refusals.
expect_rc 4 "export with an empty passphrase" \
    fwrel-keygen --export "$T/rsa3072.pem" --passphrase-file "$T/empty" -o "$T/x"
printf 'nope\n' >"$T/wrong"
chmod 600 "$T/wrong"
expect_rc 4 "export with a wrong passphrase" \
    fwrel-keygen --export "$T/rsa3072.pem" --passphrase-file "$T/wrong" -o "$T/x"
expect_err "^fwrel-keygen: $T/rsa3072.pem: wrong passphrase$" "wrong passphrase"
expect_absent "$T/x.pub.pem" "wrong passphrase"
expect_rc 4 "export of an encrypted key without a passphrase" \
    fwrel-keygen --export "$T/rsa3072.pem" --no-passphrase -o "$T/x"
expect_err "^fwrel-keygen: $T/rsa3072.pem: key is encrypted: a passphrase is needed" "no passphrase"
expect_rc 3 "export of a non-key" fwrel-keygen --export "$T/pass" -o "$T/x"
expect_err "^fwrel-keygen: $T/pass: no PEM private key found$" "export of a non-key"
expect_rc 4 "export --sbv1 of a P-384 key" fwrel-keygen --sbv1 --export "$T/j.pem" -o "$T/x"
openssl genrsa -out "$T/rsa2048.pem" 2048 2>/dev/null
expect_rc 4 "export of an RSA-2048 key" fwrel-keygen --export "$T/rsa2048.pem" -o "$T/x"
expect_err "RSA key has 2048 bits. Only RSA-3072 is supported.$" "RSA-2048"
expect_absent "$T/x.pub.pem" "export refusals"
# Keys as openssl and espsecure write them (PKCS#1, SEC1 with EC PARAMETERS, legacy encrypted PEM).
openssl genrsa -traditional -out "$T/trad.pem" 3072 2>/dev/null
openssl ecparam -name prime256v1 -genkey -out "$T/ecparam.pem"
openssl ec -in "$T/ecparam.pem" -aes256 -passout "file:$T/pass" -out "$T/legacy.pem" 2>/dev/null
for k in trad ecparam legacy; do
    expect_rc 0 "export of an openssl $k key" \
        fwrel-keygen --export "$T/$k.pem" --passphrase-file "$T/pass" -o "$T/ex-$k"
    openssl pkey -in "$T/$k.pem" -passin "file:$T/pass" -pubout 2>/dev/null |
        cmp -s - "$T/ex-$k.pub.pem" && ok || fail "$k: exported public key differs from openssl's"
done

# The terminal: echo off, asked twice, restored after ^C. Needs a pseudo-terminal (python3).
if command -v python3 >/dev/null; then
    cat >"$T/tty_prompt.py" <<'EOF'
import os, pty, select, sys, time
mode, out = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    cmd = "fwrel-keygen --scheme ecdsa256 -o '%s'; echo \"rc=$?\"; stty -a" % out
    os.execvp("sh", ["sh", "-c", "trap 'echo interrupted' INT; " + cmd])
buf = b""
def expect(text, timeout=20):
    global buf
    end = time.time() + timeout
    while text.encode() not in buf:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            sys.exit("timeout waiting for %r; got %r" % (text, buf))
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            sys.exit("end of output waiting for %r; got %r" % (text, buf))
        buf += data
expect("New passphrase for")
if mode == "interrupt":
    os.write(fd, b"\x03")
    expect("rc=130")
    expect("extproc")  # the last local flag stty -a prints
    lflags = buf[buf.index(b"speed"):].split()
    if b"echo" not in lflags or b"-echo" in lflags:
        sys.exit("echo not restored after ^C: %r" % buf)
    sys.exit(0)
secret = b"pty-secret-passphrase"
os.write(fd, secret + b"\n")
expect("Repeat the passphrase")
os.write(fd, (secret if mode == "ok" else b"something else") + b"\n")
expect("rc=")
expect("extproc")
if secret in buf:
    sys.exit("the passphrase was echoed: %r" % buf)
if mode == "ok" and b"rc=0" not in buf:
    sys.exit("keygen failed: %r" % buf)
if mode == "mismatch" and (b"rc=4" not in buf or b"do not match" not in buf):
    sys.exit("mismatch not refused: %r" % buf)
EOF
    printf 'pty-secret-passphrase\n' >"$T/ptypass"
    chmod 600 "$T/ptypass"
    expect_rc 0 "terminal prompt" python3 "$T/tty_prompt.py" ok "$T/tty.pem"
    openssl pkcs8 -in "$T/tty.pem" -passin "file:$T/ptypass" -out /dev/null 2>/dev/null && ok ||
        fail "terminal key does not decrypt with the typed passphrase"
    expect_rc 0 "terminal: passphrases differ" python3 "$T/tty_prompt.py" mismatch "$T/tty2.pem"
    expect_absent "$T/tty2.pem" "terminal: passphrases differ"
    expect_rc 0 "terminal: ^C restores echo" python3 "$T/tty_prompt.py" interrupt "$T/tty3.pem"
    expect_absent "$T/tty3.pem" "terminal: ^C"
else
    skip "no python3 for the terminal tests"
fi
finish
