# fwrel-verify --bundle: a release bundle built from parts (fwrel-testimg, fwrel-sign, fwrel-encrypt,
# fwrel-export, fwrel-mkbundle, gpg) verified as the device would (--device) and as CI would. A
# good bundle passes both; each damaged or mismatched bundle fails with exit 1 and the error line
# naming the step; TMPDIR (a fresh directory) is empty after every run: no plaintext is left.
. "$FWREL_SRC/tests/lib.sh"
cd "$T"
mkdir tmp
export TMPDIR="$T/tmp"
export GNUPGHOME="$T/gnupg"
mkdir -m 700 "$GNUPGHOME"
trap 'gpgconf --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
# libfaketime is preloaded before ASan's runtime in sanitizer builds: allow that order.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"

tmp_empty() {
    if [ -z "$(ls -A "$TMPDIR")" ]; then ok; else fail "$1: left in TMPDIR: $(ls -A "$TMPDIR")"; fi
}
# verify_dev DESC RC STEP BUNDLE [PROFILE]: device mode exits RC, names STEP (when RC is 1).
verify_dev() {
    expect_rc "$2" "$1 (device)" fwrel-verify --bundle --device "${5:-dev.yaml}" "$4"
    [ "$2" -ne 1 ] || expect_err "^fwrel-verify: $4: rejected at $3[:.]" "$1 (device)"
    tmp_empty "$1 (device)"
}
# verify_ci DESC RC STEP BUNDLE [OPTIONS...]: CI mode exits RC, names STEP (when RC is 1);
# --no-policy unless the options give --policy.
verify_ci() {
    local desc=$1 rc=$2 st=$3 b=$4
    shift 4
    case " $* " in *" --policy "*) ;; *) set -- --no-policy "$@" ;; esac
    expect_rc "$rc" "$desc (CI)" fwrel-verify --bundle "$@" "$b"
    [ "$rc" -ne 1 ] || expect_err "^fwrel-verify: $b: rejected at $st:" "$desc (CI)"
    tmp_empty "$desc (CI)"
}
# json_step BUNDLE STEP VERDICT [ARGS...]: --json reports STEP with VERDICT.
json_step() {
    local b=$1 st=$2 v=$3
    shift 3
    case " $* " in *" --policy "* | *" --device "*) ;; *) set -- --no-policy "$@" ;; esac
    run fwrel-verify --json --bundle "$@" "$b"
    if printf '%s' "$OUT" | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if any(s["step"] == sys.argv[1] and s["verdict"] == sys.argv[2] for s in r["steps"]) else 1)
' "$st" "$v"; then ok; else fail "$b: --json step $st is not $v: $OUT"; fi
}
# unpack BUNDLE DIR: extract, then give each export copy (a hard link to firmware.enc or
# manifest.fwm in the tar) its own file, so that editing one member changes only that member.
unpack() {
    rm -rf "$2" && mkdir "$2" && tar -xf "$1" -C "$2" &&
        find "$2" -type f -links +1 -exec sh -c 'cp -p "$1" "$1.x" && mv "$1.x" "$1"' _ {} \;
}
flip() { # flip FILE OFFSET: xor one byte with 1
    python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[o] ^= 1; open(p, "wb").write(b)' "$1" "$2"
}
approve() { # approve BUNDLE FPR...: detached signatures over its SHA256SUMS
    local b=$1
    shift
    tar -xOf "$b" SHA256SUMS >sums.txt
    for f in "$@"; do
        gpg --batch -q --yes --pinentry-mode loopback --passphrase '' -u "$f" --armor \
            --detach-sign -o sig.asc sums.txt && fwrel-mkbundle approve "$b" "$f" sig.asc ||
            fail "approval by $f"
    done
}
genkey() { # genkey NAME: an ed25519 OpenPGP key; prints its fingerprint
    gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-gen-key "$1 <$1@test>" \
        ed25519 sign never 2>/dev/null
    gpg --with-colons --list-keys "$1@test" | awk -F: '/^fpr/ {print $10; exit}'
}

F1=$(genkey alice)
F2=$(genkey bob)
F3=$(genkey mallory)
[ ${#F1} -eq 40 ] && [ ${#F3} -eq 40 ] || { fail "gpg keys"; finish; }

# Keys: secure boot, image encryption (device holds the private half), manifest signers and the
# device's manifest key.
fwrel-keygen --scheme rsa3072 --no-passphrase -o sb.pem >/dev/null
openssl pkey -in sb.pem -pubout -out sb.pub 2>/dev/null
for k in img s1 s2; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $k.pem 2>/dev/null
    openssl pkey -in $k.pem -pubout -out $k.pub 2>/dev/null
done
openssl genpkey -algorithm X25519 -out dev.pem 2>/dev/null
openssl pkey -in dev.pem -pubout -out dev.pub 2>/dev/null
id() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
now=$(date +%s)
# A shipped example policy pinning F1 and F2 (one approval required): only its hash, approvers and
# channels matter to CI mode.
sed "s/0123456789ABCDEF0123456789ABCDEF01234567/$F1/; s/89ABCDEF0123456789ABCDEF0123456789ABCDEF/$F2/" \
    "$FWREL_SRC/policies/esp32c6-ecdsa.yaml" >policy.yaml

# release NAME VERSION [ENCRYPT [CHANNEL]]: images, manifest, exports, record and a bundle NAME.fwb
# approved by F1 and F2. ENCRYPT 0: firmware.enc is the signed image itself. CHANNEL: prod.
release() {
    local n=$1 v=$2 enc=${3:-1} ch=${4:-prod} served
    fwrel-testimg --chip esp32c3 --version "$v" --secure-version 2 --size 40000 -o $n.bin >/dev/null
    fwrel-sign -k sb.pem -o $n.signed $n.bin >/dev/null
    served=$n.signed
    if [ "$enc" = 1 ]; then
        fwrel-encrypt --key img.pub -o $n.enc $n.signed >/dev/null
        served=$n.enc
    fi
    printf '{"product": "thermo", "device_types": ["thermo-a"], "channel": "%s", "counter": 7,
             "created": %s, "expires": %s}' $ch $((now - 60)) $((now + 86400)) >$n.tpl
    fwrel-encrypt --manifest --signed-image $n.signed --plain-image $n.bin --encrypted-image $served \
        --sign-key s1.pem --sign-key s2.pem --recipient dev.pub -o $n.fwm $n.tpl >/dev/null
    rm -rf $n.d && mkdir -p $n.d/exports
    fwrel-export --root "$FWREL_SRC/templates" --image $served --manifest $n.fwm https-dir \
        $n.d/exports/https-dir product=thermo version="$v" base_url=https://updates.test:8070 \
        created=2026-11-22T13:45:00Z secure_version=2 counter=7 >/dev/null
    cp $served $n.d/firmware.enc
    cp $n.fwm $n.d/manifest.fwm
    fwrel-mkbundle record -o $n.d/release.json product=thermo version="$v" channel=$ch \
        chip=esp32c3 device_type=thermo-a counter=7 secure_version=2 created=$((now - 60)) \
        expires=$((now + 86400)) policy_sha256="$(sha256sum policy.yaml | cut -d' ' -f1)" \
        input=$n.bin signed=$n.signed image=$served manifest=$n.fwm encrypted=$enc \
        approver=$F1 approver=$F2 required=2 sign_key="$(id sb)" manifest_signer="$(id s1)" \
        manifest_signer="$(id s2)" threshold=2 recipient="$(id dev)" image_key="$(id img)"
    fwrel-mkbundle write --sums -o $n.unapproved.fwb -C $n.d
    cp $n.unapproved.fwb $n.fwb
    approve $n.fwb "$F1" "$F2"
}
release a 1.2.0
release b 1.3.0
release p 1.2.0 0
release be 1.4.0 1 beta
[ -s a.fwb ] && [ -s b.fwb ] && [ -s p.fwb ] && ok || { fail "bundles from parts"; finish; }

{
    thermo_profile
    cat <<YAML
channel: prod
secure_boot: {mode: v2, key_digests: [$(rsa_digest sb.pub)]}
image_key: img.pem
manifest: {key: dev.pem, trusted_keys: [s1.pub, s2.pub], threshold: 2, counter: 5}
YAML
} >dev.yaml
grep -v '^image_key' dev.yaml >plain.yaml

# A good bundle passes both modes.
verify_dev "good bundle" 0 - a.fwb
for s in bundle.read manifest.threshold manifest.binds ota.decision image.decrypt \
    manifest.signed-image sbv2.accept anti-rollback; do
    printf '%s\n' "$OUT" | grep -q "^PASS $s" && ok || fail "good bundle: no PASS $s: $OUT"
done
printf '%s\n' "$OUT" | grep -q "^ACCEPTED" && ok || fail "good bundle: verdict: $OUT"
verify_ci "good bundle" 0 - a.fwb
for s in bundle.read bundle.sums record.parse record.members approvals exports; do
    printf '%s\n' "$OUT" | grep -q "^PASS $s" && ok || fail "good bundle CI: no PASS $s: $OUT"
done
verify_ci "good bundle, its policy" 0 - a.fwb --policy policy.yaml --gnupg-home "$GNUPGHOME"
verify_ci "good bundle, its input image" 0 - a.fwb --against a.bin
json_step a.fwb against pass --against a.bin
json_step a.fwb image.decrypt pass --device dev.yaml
run fwrel-verify --json --bundle --no-policy a.fwb
printf '%s' "$OUT" | python3 -c 'import json, sys
r = json.load(sys.stdin)
assert r["mode"] == "bundle-ci" and r["accepted"] is True and r["policy_checked"] is False, r
assert [s["step"] for s in r["steps"]][:3] == ["bundle.read", "bundle.sums", "record.parse"], r' &&
    ok || fail "--json CI result: $OUT"
# Not encrypted: firmware.enc is the signed image; a device without image_key takes it.
verify_dev "plain bundle" 0 - p.fwb plain.yaml
verify_ci "plain bundle" 0 - p.fwb
verify_dev "plain bundle, device expects encrypted images" 1 image.decrypt p.fwb
expect_rc 2 "encrypted bundle, profile without image_key" fwrel-verify --bundle --device plain.yaml a.fwb
expect_err "^fwrel-verify: plain.yaml: .*no image_key" "no image_key"

# One flipped byte in each member (SHA256SUMS and approvals kept as they were).
for m in firmware.enc manifest.fwm release.json SHA256SUMS exports/https-dir/README.txt \
    exports/https-dir/thermo.bin; do
    unpack a.fwb x.d
    flip x.d/$m $(($(stat -c %s x.d/$m) / 2))
    fwrel-mkbundle write -o x.fwb -C x.d
    verify_ci "flipped byte in $m" 1 bundle.sums x.fwb
done
json_step x.fwb exports fail # the export copy, flipped last
unpack a.fwb x.d && flip x.d/firmware.enc 700 && fwrel-mkbundle write -o x.fwb -C x.d
verify_dev "flipped byte in firmware.enc" 1 manifest.binds x.fwb
unpack a.fwb x.d && flip x.d/manifest.fwm 100 && fwrel-mkbundle write -o x.fwb -C x.d
verify_dev "flipped byte in manifest.fwm" 1 manifest.open x.fwb
# The device never reads release.json, SHA256SUMS or approvals.
for m in release.json SHA256SUMS; do
    unpack a.fwb x.d && flip x.d/$m 10 && fwrel-mkbundle write -o x.fwb -C x.d
    verify_dev "flipped byte in $m" 0 - x.fwb
done
unpack a.fwb x.d && rm -r x.d/approvals && fwrel-mkbundle write -o x.fwb -C x.d
verify_dev "no approvals" 0 - x.fwb

# An export copy replaced, SHA256SUMS remade and approved again: only the exports check sees it.
unpack a.unapproved.fwb x.d
cp b.enc x.d/exports/https-dir/thermo-1.2.0.bin
fwrel-mkbundle write --sums -o x.fwb -C x.d && approve x.fwb "$F1" "$F2"
verify_ci "export copy of another image" 1 exports x.fwb
expect_err "exports/https-dir/thermo-1.2.0.bin is not a copy of firmware.enc" "export copy"
unpack a.unapproved.fwb x.d
sed -i "s/^Image: [0-9]* bytes/Image: 12 bytes/" x.d/exports/https-dir/README.txt
fwrel-mkbundle write --sums -o x.fwb -C x.d && approve x.fwb "$F1" "$F2"
verify_ci "export text with a wrong size" 1 exports x.fwb
expect_err "README.txt: says 12 bytes" "export size"
unpack a.unapproved.fwb x.d
sed -i "1s/^[0-9a-f]*/$(sha256sum b.enc | cut -d' ' -f1)/" x.d/exports/https-dir/SHA256SUMS
fwrel-mkbundle write --sums -o x.fwb -C x.d && approve x.fwb "$F1" "$F2"
verify_ci "export SHA256SUMS with another digest" 1 exports x.fwb

# Approvals: below the threshold; by an unpinned key; by the policy's approvers.
cp a.unapproved.fwb x.fwb && approve x.fwb "$F1"
verify_ci "one approval of two" 1 approvals x.fwb
expect_err "1 of 2 required approvals" "below threshold"
verify_dev "one approval of two" 0 - x.fwb
cp a.fwb x.fwb && approve x.fwb "$F3"
verify_ci "an approval by an unpinned key" 1 approvals x.fwb
expect_err "approvals/$F3.asc: signed by a key the policy does not pin" "unpinned"
cp a.unapproved.fwb x.fwb && approve x.fwb "$F1" "$F3"
verify_ci "an unpinned key does not count" 1 approvals x.fwb
unpack a.fwb x.d && cp x.d/approvals/$F1.asc x.d/approvals/$F3.asc && fwrel-mkbundle write -o x.fwb -C x.d
verify_ci "an approval under another key's name" 1 approvals x.fwb
expect_err "approvals/$F3.asc: signed by $F1, not by that key" "approval name"
sed "s/$F1/$F3/" policy.yaml >other-policy.yaml
verify_ci "another policy" 1 record.policy a.fwb --policy other-policy.yaml
json_step a.fwb approvals fail --policy other-policy.yaml

# Mix and match: release A's record, manifest and exports with release B's firmware.enc, the sums
# remade so that they pass.
unpack a.unapproved.fwb x.d && cp b.d/firmware.enc x.d/firmware.enc
fwrel-mkbundle write --sums -o x.fwb -C x.d && approve x.fwb "$F1" "$F2"
verify_ci "A's manifest with B's image" 1 record.members x.fwb
json_step x.fwb bundle.sums pass
json_step x.fwb approvals pass
verify_dev "A's manifest with B's image" 1 manifest.binds x.fwb

# The profile pins the product and the channels: a beta release (one approval would do for beta)
# is refused by a prod device, a prod release by a beta device, another product's by both.
verify_dev "a beta release on a prod device" 1 manifest.channel be.fwb
expect_err "rejected at manifest.channel: a beta release, the device takes prod$" "beta on prod"
sed 's/^channel: prod$/channels: [dev, beta]/' dev.yaml >beta-dev.yaml
verify_dev "a beta release on a beta device" 0 - be.fwb beta-dev.yaml
verify_dev "a prod release on a beta device" 1 manifest.channel a.fwb beta-dev.yaml
expect_err "rejected at manifest.channel: a prod release, the device takes dev, beta$" "prod on beta"
sed 's/^product: thermo$/product: oven/' dev.yaml >oven-product.yaml
verify_dev "another product's release" 1 manifest.product a.fwb oven-product.yaml
expect_err "rejected at manifest.product: manifest for product thermo, the device runs oven$" "product"
grep -v '^product:' dev.yaml >noproduct.yaml
expect_rc 3 "a profile with a manifest section and no product" fwrel-verify --bundle --device noproduct.yaml a.fwb
expect_err "^fwrel-verify: noproduct.yaml:1:1: product is required with a manifest section" "no product"
grep -v '^channel:' dev.yaml >nochannel.yaml
expect_rc 3 "a profile with a manifest section and no channel" fwrel-verify --bundle --device nochannel.yaml a.fwb
expect_err "^fwrel-verify: nochannel.yaml:1:1: channel is required with a manifest section" "no channel"

# CI mode says whether a policy was checked: --policy P, or --no-policy said explicitly.
expect_rc 2 "CI mode without --policy or --no-policy" fwrel-verify --bundle a.fwb
expect_err "^fwrel-verify: --bundle without --device \(CI\) needs --policy POLICY, or --no-policy to check without one \\(see fwrel-verify --help\\)$" "no policy"
expect_rc 2 "--policy and --no-policy" fwrel-verify --bundle --policy policy.yaml --no-policy a.fwb
expect_rc 2 "--no-policy with --device" fwrel-verify --bundle --device dev.yaml --no-policy a.fwb
expect_rc 0 "--no-policy" fwrel-verify --bundle --no-policy a.fwb
[ "$(printf '%s\n' "$OUT" | tail -1)" = "VERIFIED (without policy: approvers and thresholds not checked against a policy, the bundle's own were used): every other check of a.fwb passed" ] &&
    ok || fail "--no-policy verdict: $OUT"
printf '%s\n' "$OUT" | grep -q "^VERIFIED: " && fail "--no-policy printed a plain VERIFIED" || ok
expect_rc 0 "--policy" fwrel-verify --bundle --policy policy.yaml --gnupg-home "$GNUPGHOME" a.fwb
[ "$(printf '%s\n' "$OUT" | tail -1)" = "VERIFIED: every check of a.fwb passed" ] && ok || fail "--policy verdict: $OUT"

# Wrong target, freeze, rollback, an update to the running version.
sed 's/device_type: thermo-a/device_type: oven/' dev.yaml >oven.yaml
verify_dev "another device type" 1 manifest.device-type a.fwb oven.yaml
sed 's/^chip: esp32c3/chip: esp32c6/; s/^secure_boot:.*/secure_boot: {mode: v2, scheme: ecdsa, key_digests: ['"$(printf '%064d' 1)"']}/' \
    dev.yaml >c6.yaml
verify_dev "another chip" 1 manifest.chip a.fwb c6.yaml
expect_rc 1 "expired (faketime +2 days)" faketime -f '+2d' fwrel-verify --bundle --device dev.yaml a.fwb
expect_err "rejected at manifest.expiry: .*expired" "freeze"
tmp_empty "freeze"
sed 's/secure_version: 2}/secure_version: 3}/' dev.yaml >rollback.yaml
verify_dev "eFuse secure_version above the image's" 1 manifest.secure-version a.fwb rollback.yaml
printf 'running: {version: "1.2.0"}\n' | cat dev.yaml - >running.yaml
verify_dev "the running version again" 1 ota.decision a.fwb running.yaml

# Structure: the reader takes exactly the tar the writer makes (docs/bundle.md "Reading"). Each
# bundle below is a.fwb with its tar structure edited (tarx.py: headers in the writer's form, or
# Python tarfile's own), refused by both modes at bundle.read with its reason.
cat >tarx.py <<'PY'
import sys, tarfile
B = 512
def writer_header(name, size, typ=b"0", link=b"", mtime=0):
    h = bytearray(B)
    h[0:len(name)] = name
    h[100:108] = b"000644 \0"
    h[108:116] = h[116:124] = h[329:337] = h[337:345] = b"000000 \0"
    h[124:136] = b"%011o " % size
    h[136:148] = b"%011o " % mtime
    h[156:157] = typ
    h[157:157 + len(link)] = link
    h[257:265] = b"ustar\x0000"
    return fix(h)
def fix(h):
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return h
def entries(data):
    """The members of a writer-made tar: [name, header, payload (data and padding)]."""
    out, off = [], 0
    while data[off] != 0:
        h = bytearray(data[off:off + B])
        size = int(h[124:135], 8)
        n = (size + B - 1) // B * B
        out.append([bytes(h[:100]).rstrip(b"\0"), h, data[off + B:off + B + n]])
        off += B + n
    return out
def tar(es):
    body = b"".join(bytes(h) + p for _, h, p in es) + b"\0" * 1024
    return body + b"\0" * (-len(body) % 10240)
def entry(name, payload=b"", typ=b"0", link=b"", mtime=0):
    return [name, writer_header(name, len(payload), typ, link, mtime),
            payload + b"\0" * (-len(payload) % B)]
def at(es, name):
    return next(i for i, e in enumerate(es) if e[0] == name)
src = open(sys.argv[1], "rb").read()
es = entries(src)
mtime = int(es[0][1][136:147], 8)
def write(path, es_or_bytes):
    open(path, "wb").write(es_or_bytes if isinstance(es_or_bytes, (bytes, bytearray)) else tar(es_or_bytes))
def edited(f):
    e = [[n, bytearray(h), p] for n, h, p in es]
    f(e)
    return e
write("extra.fwb", edited(lambda e: e.append(entry(b"notes.txt", b"hi\n", mtime=mtime))))
write("missing.fwb", edited(lambda e: e.pop(at(e, b"manifest.fwm"))))
big = writer_header(b"firmware.enc", 40 << 20, mtime=mtime)
open("oversize.fwb", "wb").write(bytes(big) + b"\0" * 1024)
# A pax global header setting path: GNU tar and Python's tarfile apply it to every member.
g = tarfile.TarInfo.create_pax_global_header({"path": "../../pwned"})
write("global.fwb", g + src)
# A GNU long name and a pax path in front of release.json: GNU tar takes the pax path
# (../../pwned), Python's tarfile the long name (release.json).
def gnu_pax(e):
    i = at(e, b"release.json")
    l = tarfile.TarInfo("release.json")._create_gnu_long_header("release.json",
                                                                tarfile.GNUTYPE_LONGNAME,
                                                                "utf-8", "strict")
    x = tarfile.TarInfo("release.json")._create_pax_generic_header({"path": "../../pwned"},
                                                                   tarfile.XHDTYPE, "utf-8")
    e.insert(i, [b"", l + x, b""])
write("gnulong.fwb", edited(gnu_pax))
write("hardout.fwb", edited(lambda e: e.insert(at(e, b"release.json"), entry(
    b"exports/https-dir/evil.bin", typ=b"1", link=b"../../../etc/passwd", mtime=mtime))))
write("symlink.fwb", edited(lambda e: e.insert(at(e, b"release.json"), entry(
    b"exports/https-dir/evil.bin", typ=b"2", link=b"/etc/passwd", mtime=mtime))))
write("dup.fwb", edited(lambda e: e.append(e[at(e, b"release.json")])))
# Trailing data: a whole member after the end of the archive.
t = tarfile.TarInfo("exports/https-dir/late.txt"); t.size = 3
write("trailing.fwb", src + t.tobuf(format=tarfile.USTAR_FORMAT) + b"hi\n" + b"\0" * 509)
def badsum(e):
    e[at(e, b"manifest.fwm")][1][100:107] = b"000755 "
write("badsum.fwb", edited(badsum))
def base256(e):
    h = e[at(e, b"firmware.enc")][1]
    h[124:136] = bytes([0x80]) + int(h[124:135], 8).to_bytes(11, "big")
    fix(h)
write("base256.fwb", edited(base256))
PY
python3 tarx.py a.fwb || fail "tarx.py"
# What other readers make of the attacks (the old reader passed both): ../../pwned.
python3 -c 'import sys, tarfile
assert "../../pwned" in tarfile.open(sys.argv[1]).getnames()' global.fwb &&
    tar -tf gnulong.fwb 2>/dev/null | grep -qx '../../pwned' &&
    ok || fail "Python tarfile / GNU tar do not read ../../pwned from the attack bundles"
# check_struct NAME REASON: refused at bundle.read by both modes with REASON.
check_struct() {
    verify_ci "$1" 1 bundle.read $1.fwb
    expect_err "$2" "$1 (CI)"
    verify_dev "$1" 1 bundle.read $1.fwb
    expect_err "$2" "$1 (device)"
}
check_struct extra "notes.txt: not a bundle member"
check_struct missing "manifest.fwm: missing|hard link to manifest.fwm before it"
check_struct oversize "firmware.enc: declared size [0-9]+ larger than"
check_struct global "@PaxHeader: pax global header \(typeflag 'g'\), which other readers apply"
check_struct gnulong "@LongLink: GNU long name header \(typeflag 'L'\)$"
check_struct hardout "exports/https-dir/evil.bin: hard link$"
check_struct symlink "exports/https-dir/evil.bin: symbolic link$"
check_struct dup "release.json: duplicate member$"
check_struct trailing "trailing data after the end-of-archive marker at byte [0-9]+"
check_struct badsum "manifest.fwm: bad header checksum \(tar header at byte [0-9]+\)$"
check_struct base256 "firmware.enc: size in base-256 \(binary\) form, not the writer's octal$"
# What the reader takes, GNU tar and Python's tarfile extract to the same tree.
mkdir gnu.d py.d && tar -xf a.fwb -C gnu.d && python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
if hasattr(tarfile, "data_filter"):
    t.extractall(sys.argv[2], filter="data")
else:
    t.extractall(sys.argv[2])' a.fwb py.d &&
    diff -r gnu.d py.d >/dev/null &&
    [ "$(cd gnu.d && find . -printf '%p %y %s %n\n' | sort)" = "$(cd py.d && find . -printf '%p %y %s %n\n' | sort)" ] &&
    ok || fail "GNU tar and Python tarfile extract a.fwb differently"
rm -rf gnu.d py.d
# Endless data: a 10 GiB sparse file is refused from its size, never read (fast, little memory).
truncate -s 10G sparse.fwb
verify_ci "a 10 GiB sparse file" 1 bundle.read sparse.fwb
expect_err "too large: 10737418240 bytes" "a 10 GiB sparse file"
verify_dev "a 10 GiB sparse file" 1 bundle.read sparse.fwb
rm -f sparse.fwb

# --against: another image.
verify_ci "--against another image" 1 against a.fwb --against b.bin
expect_rc 5 "--against a missing file" fwrel-verify --bundle --no-policy --against nope.bin a.fwb

# End to end: a bundle made by the release pipeline (fwrel-bundle) from a keystore provisioned for
# the policy, approved by F1; the device profile from what --provision hands out (and the derived
# image key from the keystore, the private half of what the device derives from its HMAC key).
mkdir e2e && cp policy.yaml e2e/policy.yaml
fwrel-keygen --policy e2e/policy.yaml --keystore ks --provision prov --no-passphrase >/dev/null
fwrel-testimg --chip esp32c6 --version 1.0.0 --secure-version 1 --size 30000 -o e2e.bin >/dev/null
expect_rc 0 "fwrel-bundle makes a release" fwrel-bundle --policy e2e/policy.yaml --keystore ks \
    --no-passphrase --channel prod --approver "$F1" --templates "$FWREL_SRC/templates" \
    --user tester --email tester@test -o e2e.fwb e2e.bin
cat >e2e.yaml <<YAML
chip: esp32c6
partition_size: 0x180000
device_type: sensor-c6
product: acme-sensor
channel: prod
secure_boot: {mode: v2, scheme: ecdsa, key_digests: [$(hex prov/sb-ecdsa-0.digest.bin), $(hex prov/sb-ecdsa-1.digest.bin)]}
anti_rollback: {secure_version: 1}
image_key: ks/keys/img-enc-ecc.1.pem
manifest: {key: prov/mf-device-p256.private.pem, trusted_keys: [prov/mf-ci.pub.pem, prov/mf-release.pub.pem], threshold: 2}
YAML
verify_dev "pipeline bundle" 0 - e2e.fwb e2e.yaml
verify_ci "pipeline bundle" 0 - e2e.fwb --policy e2e/policy.yaml --against e2e.bin
json_step e2e.fwb exports pass
verify_ci "pipeline bundle, another input image" 1 against e2e.fwb --against a.bin
unpack e2e.fwb x.d && cp a.enc x.d/firmware.enc && fwrel-mkbundle write --sums -o x.fwb -C x.d
verify_dev "pipeline bundle with another firmware.enc" 1 manifest.binds x.fwb e2e.yaml
verify_ci "pipeline bundle with another firmware.enc" 1 record.members x.fwb
sed 's/secure_version: 1}/secure_version: 2}/' e2e.yaml >e2e-rollback.yaml
verify_dev "pipeline bundle, eFuse above it" 1 manifest.secure-version e2e.fwb e2e-rollback.yaml

# Usage.
expect_rc 2 "--against with --device" fwrel-verify --bundle --device dev.yaml --against a.bin a.fwb
expect_rc 2 "--policy without --bundle" fwrel-verify --policy policy.yaml a.fwb
expect_rc 2 "--bundle with --manifest" fwrel-verify --bundle --manifest --device dev.yaml a.fwb
finish
