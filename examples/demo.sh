#!/usr/bin/env bash
# examples/demo.sh WORKDIR - the fwrel release flow on the embedded example, non-interactively:
# three approvers (a GnuPG home of its own) -> the release policy -> the product's keys in a
# keystore and what goes onto the device -> two example firmware versions -> release 1.0.0
# approved 2-of-3 at once, release 1.1.0 approved later (--approve, then --record) -> signed git
# tags checked with plain git -> a bundle listed -> the hash-chained audit log -> a device profile
# -> both bundles taken as that device would, checked as CI would, and a tampered copy refused.
#
# Uses the commands in $FWREL_BIN, else ./build (scripts/setup.sh builds them there).
# Running it again in the same WORKDIR reuses what is there and checks it again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${1:?usage: examples/demo.sh WORKDIR}
B=${FWREL_BIN:-$here/../build}
export PATH="$B:$PATH"
for c in fwrel-keygen fwrel-bundle fwrel-verify fwrel-testimg; do
    command -v "$c" >/dev/null || { echo "demo: $c not built; run scripts/setup.sh first" >&2; exit 2; }
done
for c in gpg gpgconf git tar python3; do
    command -v "$c" >/dev/null || { echo "demo: needs $c (scripts/deps.sh installs it)" >&2; exit 2; }
done
mkdir -p "$W"
W=$(cd "$W" && pwd)
umask 077
mkdir -p "$W/firmware" "$W/bundles"
G=$W/gnupg
# The demo's gpg-agent (started by gpg and by fwrel-bundle's gpgme) ends with the demo.
trap 'gpgconf --homedir "$G" --kill gpg-agent >/dev/null 2>&1 || true' EXIT

step() { printf '\n== %s\n' "$*"; }
# secret FILE: 24 random bytes as hex in FILE (0600), once.
secret() { [ -f "$1" ] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo; } >"$1"; }

step "1. three approvers: OpenPGP keys in a GnuPG home of the demo's own (0700)"
mkdir -p "$G"
chmod 700 "$G"
# The demo's approver keys have no passphrase (a real approver's key has one: fwrel-bundle
# --pgp-passphrase-file, loopback pinentry); nothing is cached by the agent in any case.
printf 'default-cache-ttl 0\nmax-cache-ttl 0\n' >"$G/gpg-agent.conf"
gpg_demo() { gpg --homedir "$G" --batch --pinentry-mode loopback --passphrase '' "$@"; }
for i in 1 2 3; do
    gpg_demo --list-secret-keys "approver$i@example.invalid" >/dev/null 2>&1 ||
        gpg_demo --quick-gen-key "Approver $i <approver$i@example.invalid>" ed25519 sign never 2>/dev/null
done
fpr() { gpg --homedir "$G" --batch --with-colons --list-secret-keys "approver$1@example.invalid" |
    awk -F: '/^fpr/ { print $10; exit }'; }
A1=$(fpr 1) A2=$(fpr 2) A3=$(fpr 3)
printf 'approver 1: %s\napprover 2: %s\napprover 3: %s\n' "$A1" "$A2" "$A3"

step "2. the release policy (examples/policy.yaml.in with the approvers' fingerprints)"
sed -e "s/@APPROVER1@/$A1/" -e "s/@APPROVER2@/$A2/" -e "s/@APPROVER3@/$A3/" \
    "$here/policy.yaml.in" >"$W/policy.yaml"
fwrel-bundle --check-policy "$W/policy.yaml"

step "3. the product's keys in a keystore (sealed with a passphrase from a file, 0600), and what goes onto the device; the release repository's audit log records them"
secret "$W/passphrase"
if [ ! -d "$W/provision" ]; then
    fwrel-keygen --policy "$W/policy.yaml" --keystore "$W/keystore" --provision "$W/provision" \
        --repo "$W/releases" --passphrase-file "$W/passphrase"
fi
ls -l "$W/provision"

step "4. the example firmware: ESP32-S3 app images 1.0.0 (secure_version 1) and 1.1.0 (secure_version 2)"
for v in 1.0.0:1 1.1.0:2; do
    [ -f "$W/firmware/app-${v%:*}.bin" ] ||
        fwrel-testimg --chip esp32s3 --version "${v%:*}" --secure-version "${v#*:}" \
            --project fwrel-example --size 200000 -o "$W/firmware/app-${v%:*}.bin"
done
fwrel-verify --info "$W/firmware/app-1.1.0.bin" | grep -E "^(Detected|Project|App version|Secure version)"

release() { fwrel-bundle --policy "$W/policy.yaml" --keystore "$W/keystore" --repo "$W/releases" \
    --channel prod --gnupg-home "$G" --passphrase-file "$W/passphrase" "$@"; }
tagged() { git -C "$W/releases" rev-parse -q --verify "refs/tags/$1" >/dev/null 2>&1; }
T1=fwrel-example/prod/v1.0.0
T2=fwrel-example/prod/v1.1.0
B1=$W/bundles/fwrel-example-1.0.0.fwb
B2=$W/bundles/fwrel-example-1.1.0.fwb

step "5. release 1.0.0, approved by approvers 1 and 2 at once: bundle, audit entry, commit, signed tag"
if ! tagged "$T1"; then
    rm -f "$B1"
    release --approver "$A1" --approver "$A2" -o "$B1" "$W/firmware/app-1.0.0.bin"
else
    echo "$T1 is released already"
fi
# The repository holds the bundle beside its release.json.
[ -f "$B1" ] || git -C "$W/releases" show "$T1:$T1/bundle.fwb" >"$B1"

step "6. release 1.1.0 the pending way: approver 1 at bundle time, approver 2 later, then recorded"
if ! tagged "$T2"; then
    [ -f "$B2" ] || release --approver "$A1" -o "$B2" "$W/firmware/app-1.1.0.bin"
    tar tf "$B2" | grep -q "^approvals/$A2.asc$" ||
        fwrel-bundle --approve "$B2" --approver "$A2" --gnupg-home "$G"
    # The policy has two channels (beta, prod): --record is told which one. Approver 2 signs the tag.
    fwrel-bundle --record "$B2" --policy "$W/policy.yaml" --repo "$W/releases" --channel prod \
        --gnupg-home "$G" --tag-signer "$A2"
else
    echo "$T2 is released already"
fi
[ -f "$B2" ] || git -C "$W/releases" show "$T2:$T2/bundle.fwb" >"$B2"

step "7. the release repository: each tag verified with plain git"
git -C "$W/releases" log --format='%h %s' --all
for t in "$T1" "$T2"; do
    GNUPGHOME=$G git -C "$W/releases" verify-tag "$t"
    echo "verify-tag $t: good signature"
done

step "8. a bundle: one uncompressed tar, sorted, uid/gid 0 (docs/bundle.md)"
tar tvf "$B2"

step "9. the audit log: one JSON line per event, each holding the SHA-256 of the one before"
python3 - "$W/releases/audit/audit.jsonl" <<'PY'
import hashlib, json, sys
prev = "0" * 64
for n, line in enumerate(open(sys.argv[1], "rb").read().split(b"\n")[:-1], 1):
    e = json.loads(line)
    assert e["seq"] == n and e["prev"] == prev, f"line {n}: chain broken"
    print(f'{e["seq"]:3} {e["time"]} {e["event"]:8} {e["result"]:4} prev {e["prev"][:16]}...')
    prev = hashlib.sha256(line).hexdigest()
print(f"chain valid, head {prev}")
PY

step "10. the device: eFuse key digests of slots 0-2, secure_version 1, the provisioned keys"
digest() { od -An -tx1 "$W/provision/sb-slot$1.digest.bin" | tr -d ' \n'; }
cat >"$W/device.yaml" <<YAML
chip: esp32s3
chip_revision: "0.2"
partition_size: 0x1e0000
secure_boot:
  mode: v2
  key_digests:
    - $(digest 0)
    - $(digest 1)
    - $(digest 2)
anti_rollback:
  secure_version: 1
  field_bits: 16
device_type: example-board
product: fwrel-example
channel: prod
manifest:
  key: provision/mf-device.private.pem
  trusted_keys: [provision/mf-release-1.pub.pem, provision/mf-release-2.pub.pem, provision/mf-security.pub.pem]
  threshold: 2
  counter: 0
image_key: provision/img-enc.private.pem
YAML
cat "$W/device.yaml"

step "11. the device takes both releases: manifest, 2-of-3 signatures, decryption, Secure Boot, anti-rollback"
for b in "$B1" "$B2"; do
    fwrel-verify --bundle --device "$W/device.yaml" "$b"
done

step "12. CI checks a bundle: sums, record, approvals by pinned keys, exports, the input image"
fwrel-verify --bundle --policy "$W/policy.yaml" --gnupg-home "$G" --against "$W/firmware/app-1.1.0.bin" "$B2"

step "13. one flipped byte in the served image: the device refuses the bundle"
cp "$B1" "$W/bundles/tampered.fwb"
off=$(python3 -c 'import sys, tarfile
m = tarfile.open(sys.argv[1]).getmember("firmware.enc"); print(m.offset_data + m.size // 2)' "$B1")
byte=$(od -An -tu1 -j "$off" -N1 "$B1" | tr -d ' ')
printf "\\$(printf %03o $((byte ^ 0x01)))" | dd of="$W/bundles/tampered.fwb" bs=1 seek="$off" conv=notrunc status=none
rc=0
fwrel-verify --quiet --bundle --device "$W/device.yaml" "$W/bundles/tampered.fwb" || rc=$?
if [ "$rc" -ne 1 ]; then
    echo "demo: the tampered bundle gave exit $rc, not 1 (rejected)" >&2
    exit 1
fi
echo
echo "demo: done; everything is in $W"
