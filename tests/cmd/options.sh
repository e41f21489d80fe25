# One vocabulary (docs/cli.md): every command's option table is the table in docs/cli.md (same
# options, same short letters, a value or not, aliases), a short letter means one thing in every
# command, espsecure's habits are usage errors with a hint and write nothing, options go in any
# order, and a policy error's place is printed alike by every command.
. "$FWREL_SRC/tests/lib.sh"

CMDS="keygen sign encrypt bundle verify"
for c in $CMDS; do
    fwrel-$c --list-options >"$T/list-$c" || fail "fwrel-$c --list-options"
done

# The table against the commands' own tables.
if python3 - "$FWREL_SRC/docs/cli.md" "$T" $CMDS <<'PY'; then ok; else fail "docs/cli.md and the option tables differ"; fi
import sys, re
doc, tmp, cmds = sys.argv[1], sys.argv[2], sys.argv[3:]
letters = {"k": "keygen", "s": "sign", "e": "encrypt", "b": "bundle", "v": "verify"}
rows, bad = {}, []
for line in open(doc, encoding="utf-8"):
    m = re.match(r"^\| `(--[^`]+)` \| (`-(.)`)? *\| ([^|]*)\| ([^|]*)\| ([^|]*)\|$", line)
    if not m:
        continue
    name, short, arg, where, meaning = m.group(1), m.group(3) or "-", m.group(4).strip(), m.group(5).split(), m.group(6).strip()
    if name in rows:
        bad.append("docs/cli.md lists %s twice" % name)
    alias = re.match(r"same as `(--[^`]+)`", meaning)
    kind = "alias" if alias else ("flag" if arg == "" else "value")
    target = alias.group(1) if alias else None
    cs = cmds if where == ["all"] else [letters[w] for w in where]
    rows[name] = (short, kind, target, set(cs))
# One letter, one option; one option, one letter.
by_short = {}
for name, (short, _, _, _) in rows.items():
    if short != "-":
        by_short.setdefault(short, []).append(name)
for s, names in by_short.items():
    if len(names) > 1:
        bad.append("-%s means %s" % (s, " and ".join(names)))
for c in cmds:
    have = {}
    for line in open("%s/list-%s" % (tmp, c)):
        name, short, arg, kind = line.split()
        short = short[1:] if short != "-" else "-"
        kind = {"multi": "value"}.get(kind, kind)
        have[name] = (short, kind, arg if kind == "alias" else None)
    want = {n: (r[0], r[1], r[2]) for n, r in rows.items() if c in r[3]}
    for n in sorted(set(have) | set(want)):
        if n not in want:
            bad.append("fwrel-%s has %s, docs/cli.md does not list it for fwrel-%s" % (c, n, c))
        elif n not in have:
            bad.append("docs/cli.md lists %s for fwrel-%s, which has no such option" % (n, c))
        elif have[n] != want[n]:
            bad.append("fwrel-%s %s: the command says %s, docs/cli.md %s" % (c, n, have[n], want[n]))
for b in bad:
    print("options: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# --help lists what --list-options lists.
for c in $CMDS; do
    fwrel-$c --help >"$T/help-$c"
    while read -r name short _; do
        grep -q -- "$name" "$T/help-$c" || fail "fwrel-$c --help does not show $name"
        [ "$short" = - ] || grep -q -- "$short, $name" "$T/help-$c" || fail "fwrel-$c --help: $short, $name"
    done <"$T/list-$c"
done

fwrel-testimg --chip esp32s3 --version 1.2.3 -o "$T/app.bin" >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o "$T/k.pem" >/dev/null

# Friction 1: espsecure's "--version 2" and subcommand are usage errors with a hint; nothing signed.
expect_rc 2 "--version 2" fwrel-sign --version 2 --keyfile "$T/k.pem" -o "$T/out.bin" "$T/app.bin"
expect_err "^fwrel-sign: --version 2 is espsecure's spelling of --sbv2: use --sbv2 \(--version alone prints the version\) \(see fwrel-sign --help\)$" "--version 2"
[ -z "$OUT" ] && ok || fail "--version 2 printed '$OUT'"
expect_absent "$T/out.bin" "--version 2"
expect_rc 2 "--version=1" fwrel-verify --version=1 --keyfile "$T/k.pub.pem" "$T/app.bin"
expect_err "^fwrel-verify: --version 1 is espsecure's spelling of --sbv1: use --sbv1 " "--version=1"
expect_rc 2 "sign_data" fwrel-sign sign_data --version 2 --keyfile "$T/k.pem" -o "$T/out.bin" "$T/app.bin"
expect_err "^fwrel-sign: fwrel-sign takes no subcommand: for 'sign_data' use fwrel-sign -k KEY -o OUT IMAGE \(see fwrel-sign --help\)$" "sign_data"
expect_absent "$T/out.bin" "sign_data"
expect_rc 2 "sign-data" fwrel-sign sign-data --keyfile "$T/k.pem" -o "$T/out.bin" "$T/app.bin"
expect_err "^fwrel-sign: fwrel-sign takes no subcommand: for 'sign-data' use " "sign-data"
expect_absent "$T/out.bin" "sign-data"
for c in $CMDS; do
    expect_rc 0 "fwrel-$c --version" fwrel-$c --version
    case $OUT in "fwrel-$c "[0-9]*) ok ;; *) fail "fwrel-$c --version printed '$OUT'" ;; esac
    expect_rc 2 "fwrel-$c --version --json" fwrel-$c --version --json
    expect_err "^fwrel-$c: --version goes alone: it prints the version \(see fwrel-$c --help\)$" "fwrel-$c --version --json"
done
expect_rc 2 "encrypt --version 2: no --sbv2 there" fwrel-encrypt --version 2
expect_err "^fwrel-encrypt: --version goes alone: it prints the version " "encrypt --version 2"

# Friction 6: -k is a key file everywhere, --keyfile espsecure's spelling of --key; options in
# any order.
expect_rc 0 "sign --keyfile, options after the image" fwrel-sign "$T/app.bin" --keyfile "$T/k.pem" -o "$T/signed.bin"
expect_rc 0 "verify --sbv2 --keyfile" fwrel-verify --sbv2 --keyfile "$T/k.pub.pem" "$T/signed.bin"
expect_rc 0 "verify --sbv2 -k" fwrel-verify "$T/signed.bin" -k "$T/k.pub.pem" --sbv2
expect_rc 2 "--key and --keyfile are one option" fwrel-verify --sbv2 --key "$T/k.pub.pem" --keyfile "$T/k.pub.pem" "$T/signed.bin"
expect_err "^fwrel-verify: option --key given more than once " "--key and --keyfile"
expect_rc 0 "sign --append-signatures" fwrel-sign --append-signatures -k "$T/k.pem" -o "$T/signed2.bin" "$T/signed.bin"
fwrel-keygen --scheme ecdsa256 --no-passphrase -o "$T/dev.pem" >/dev/null
expect_rc 0 "encrypt --keyfile" fwrel-encrypt --keyfile "$T/dev.pub.pem" -o "$T/app.enc" "$T/app.bin"
expect_rc 0 "decrypt -d -k" fwrel-encrypt -d -k "$T/dev.pem" -o "$T/app.dec" "$T/app.enc"
expect_same "$T/app.bin" "$T/app.dec" "encrypt and decrypt"
expect_rc 2 "the keystore is -K, not -k" fwrel-keygen -k "$T/ks" -l
expect_err "^fwrel-keygen: unknown option -k " "keygen -k"
expect_rc 2 "the approver is -A, not -a" fwrel-bundle --approve "$T/x.fwb" -a 1111111111111111111111111111111111111111
expect_err "^fwrel-bundle: unknown option -a " "bundle -a"
expect_rc 2 "the device has no -d" fwrel-verify -d "$T/profile" "$T/app.bin"
expect_err "^fwrel-verify: unknown option -d " "verify -d"

# A flag after an option that takes a value is a flag, not the value.
sed 's/@APPROVER1@/1111111111111111111111111111111111111111/; s/@APPROVER2@/2222222222222222222222222222222222222222/; s/@APPROVER3@/3333333333333333333333333333333333333333/' \
    "$FWREL_SRC/examples/policy.yaml.in" >"$T/p.yaml"
expect_rc 0 "--check-policy --json P" fwrel-bundle --check-policy --json "$T/p.yaml"
printf '%s' "$OUT" | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j["valid"] and j["policy"].endswith("p.yaml") else 1)' &&
    ok || fail "--check-policy --json P: $OUT"
expect_rc 0 "--check-policy P --json" fwrel-bundle --check-policy "$T/p.yaml" --json
expect_rc 2 "--check-policy --policy P" fwrel-bundle --check-policy --policy "$T/p.yaml"
expect_err "^fwrel-bundle: option --check-policy needs a value \(see fwrel-bundle --help\)$" "--check-policy --policy"
expect_rc 2 "--check-policy --json" fwrel-bundle --check-policy --json
expect_err "^fwrel-bundle: option --check-policy needs a value " "--check-policy --json alone"

# A policy error's place, printed alike by fwrel-bundle and fwrel-keygen (file:line:column:).
sed 's/threshold: 2/threshold: 5/' "$T/p.yaml" >"$T/bad.yaml"
expect_rc 3 "bundle: bad policy" fwrel-bundle --check-policy "$T/bad.yaml"
expect_err "^fwrel-bundle: $T/bad.yaml:[0-9]+:[0-9]+: threshold must be" "bundle: policy place"
b=${ERR#fwrel-bundle: }
expect_rc 3 "keygen: bad policy" fwrel-keygen -K "$T/ks" -p "$T/bad.yaml" --no-passphrase
expect_err "^fwrel-keygen: $T/bad.yaml:[0-9]+:[0-9]+: threshold must be" "keygen: policy place"
[ "${ERR#fwrel-keygen: }" = "$b" ] && ok || fail "the place differs: '$b' and '${ERR#fwrel-keygen: }'"
expect_absent "$T/ks" "keygen: bad policy"

# Completion from the table: every option, file names after an option that takes one.
for c in $CMDS; do
    expect_rc 0 "fwrel-$c --completion bash" fwrel-$c --completion bash
    printf '%s\n' "$OUT" >"$T/comp-$c.bash"
    got=$(bash -c '. "$1"; COMP_WORDS=(fwrel-'$c' --); COMP_CWORD=1; _fwrel_'$c'; printf "%s\n" "${COMPREPLY[@]}"' _ "$T/comp-$c.bash" | sort)
    want=$(cut -d' ' -f1 "$T/list-$c" | sort)
    [ "$got" = "$want" ] && ok || fail "fwrel-$c completion offers '$got'"
done
got=$(cd "$T" && bash -c '. "$1"; COMP_WORDS=(fwrel-sign -k k.p); COMP_CWORD=2; _fwrel_sign; printf "%s\n" "${COMPREPLY[@]}"' _ "$T/comp-sign.bash")
[ "$(printf '%s\n' "$got" | sort | tr '\n' ' ')" = "k.pem k.pub.pem " ] && ok || fail "completion after -k: '$got'"
expect_rc 2 "--completion zsh" fwrel-sign --completion zsh
expect_err "^fwrel-sign: --completion knows bash, not 'zsh' " "--completion zsh"
finish
