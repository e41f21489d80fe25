# Exports made by fwrel-bundle from a real release history (issue 17), on a real keystore, GnuPG
# home and git repository: the second release of a channel carries a flask-ota manifest.json
# listing both releases in the server's format (hmac for the current one, with the key
# fwrel-keygen --provision writes for the server), and the two exports copied into one directory
# are what the server reads; secure-fota uploads once per device type of the policy, each with its
# own id; https-dir takes its base_url from the
# policy's per-export setting; --check-policy refuses an export that does not exist and a
# setting the export does not declare; extracting an export from the bundle with tar needs the
# files its hard links point to (docs/exports.md "Exports in the bundle").
. "$FWREL_SRC/tests/lib.sh"
approvers_home
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" |
    sed -e 's|^exports: \[https-dir, flask-ota\]|exports: [{name: https-dir, base_url: "https://cdn.example.org/fw"}, flask-ota]|' \
        -e 's/^  recipients: \[mf-device\]/  recipients: [mf-device, mf-fota]/' \
        -e 's/^  mf-device: {purpose: manifest-encrypt, alg: x25519}/&\n  mf-fota: {purpose: manifest-encrypt, alg: rsa4096}/' \
        >"$T/policy.yaml"
grep -q '^exports: \[{name: https-dir' "$T/policy.yaml" && ok || fail "policy not edited"
expect_rc 0 "--check-policy with per-export settings" fwrel-bundle --check-policy "$T/policy.yaml" \
    --templates "$FWREL_SRC/templates"

# A misspelt export and an undeclared setting are policy errors, caught by --check-policy.
sed 's|^exports: .*|exports: [secure_fota]|' "$T/policy.yaml" >"$T/bad1.yaml"
expect_rc 3 "an export that does not exist" fwrel-bundle --check-policy "$T/bad1.yaml" \
    --templates "$FWREL_SRC/templates"
expect_err "^fwrel-bundle: .*bad1.yaml: export 'secure_fota': no such export in .*/templates \(known: .*secure-fota.*\)$" \
    "unknown export"
sed 's|^exports: .*|exports: [{name: flask-ota, base_url: "https://x.example"}]|' "$T/policy.yaml" >"$T/bad2.yaml"
expect_rc 3 "a setting the export does not declare" fwrel-bundle --check-policy "$T/bad2.yaml" \
    --templates "$FWREL_SRC/templates"
expect_err "^fwrel-bundle: .*bad2.yaml: export flask-ota: export 'flask-ota' has no setting 'base_url' \(none\)$" \
    "unknown setting"
sed 's|^exports: .*|exports: [{name: https-dir, base_url: "ftp://x"}]|' "$T/policy.yaml" >"$T/bad3.yaml"
expect_rc 3 "a per-export base_url that is no http(s) URL" fwrel-bundle --check-policy "$T/bad3.yaml"
expect_err "bad3.yaml:[0-9]+:[0-9]+: base_url must be an http\(s\) URL without a trailing '/'$" \
    "bad base_url"

# secure-fota too: one upload per device type of the policy (thermostat-v2, thermostat-v2-pro).
sed -i 's|^exports: \[\(.*\)\]$|exports: [\1, {name: secure-fota, base_url: "https://fota.example.net"}]|' \
    "$T/policy.yaml"
grep -q 'flask-ota, {name: secure-fota' "$T/policy.yaml" && ok || fail "secure-fota not added"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase ||
    { echo "FAIL: keygen"; exit 1; }
# The server's HMAC_KEY is the raw key fwrel-keygen --provision writes (docs/exports.md).
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase --provision "$T/prov" ||
    fail "provision"
[ "$(stat -c %s "$T/prov/ota-hmac.bin")" = 32 ] && ok || fail "no 32-byte ota-hmac.bin"
img() { fwrel-testimg --chip esp32s3 --version "$1" --secure-version 1 --project acme \
    --size 65536 -o "$T/app-$1.bin"; }
img 1.0.0; img 1.1.0
R="$T/releases"
T0=$(($(date +%s) - 86400))
N=0
bundle() { # VERSION
    N=$((N + 1))
    SOURCE_DATE_EPOCH=$((T0 + 3600 * N)) fwrel-bundle --policy "$T/policy.yaml" \
        --keystore "$T/ks" --repo "$R" --channel beta --gnupg-home "$G" --no-passphrase \
        --templates "$FWREL_SRC/templates" -A "$A1" -o "$T/b-$1.fwb" "$T/app-$1.bin"
}
expect_rc 0 "release 1.0.0" bundle 1.0.0
expect_rc 0 "release 1.1.0" bundle 1.1.0

# tar cannot extract an export alone: its image and manifest are hard links to firmware.enc and
# manifest.fwm. Naming those too works (docs/exports.md).
mkdir "$T/x1" "$T/x2"
expect_rc 2 "tar -x of an export alone" tar -xf "$T/b-1.1.0.fwb" -C "$T/x1" exports/flask-ota
expect_rc 0 "tar -x of an export with the link targets" tar -xf "$T/b-1.1.0.fwb" -C "$T/x2" \
    firmware.enc manifest.fwm exports/flask-ota exports/https-dir
expect_same "$T/x2/exports/flask-ota/firmware/1.1.0.bin" "$T/x2/firmware.enc" "extracted image"

# The second release's manifest.json lists both releases as ota_server.py writes and reads it.
mkdir "$T/x0"
tar -xf "$T/b-1.0.0.fwb" -C "$T/x0" firmware.enc
python3 - "$T/x2/exports/flask-ota/firmware/manifest.json" "$T/x0/firmware.enc" \
    "$T/x2/firmware.enc" "$T/prov/ota-hmac.bin" $((T0 + 3600)) $((T0 + 7200)) <<'PY' && ok ||
import datetime, hashlib, hmac, json, sys
m = json.load(open(sys.argv[1]))
old, new = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
key = open(sys.argv[4], "rb").read()
t = [datetime.datetime.fromtimestamp(int(x), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
     for x in sys.argv[5:7]]
want = {
    "current_version": "1.1.0",
    "versions": {
        "1.0.0": {"version": "1.0.0", "filename": "1.0.0.bin", "size": len(old),
                  "upload_date": t[0], "download_url": "/firmware/1.0.0.bin"},
        "1.1.0": {"version": "1.1.0", "filename": "1.1.0.bin",
                  "sha256": hashlib.sha256(new).hexdigest(),
                  "hmac": hmac.new(key, new, hashlib.sha256).hexdigest(), "size": len(new),
                  "upload_date": t[1], "download_url": "/firmware/1.1.0.bin"},
    },
    "force_update": False,
}
assert m == want, json.dumps(m, indent=2)
# The keys in the order the server's json.dump(indent=2) writes them.
assert list(m) == ["current_version", "versions", "force_update"]
assert list(m["versions"]["1.1.0"]) == ["version", "filename", "sha256", "hmac", "size",
                                        "upload_date", "download_url"]
# What GET /firmware/manifest answers (get_latest_firmware + get_manifest).
cur = m["versions"][m["current_version"]]
assert cur["hmac"] == hmac.new(key, new, hashlib.sha256).hexdigest()
PY
    fail "flask-ota manifest.json of the second release"
# The update on the server is a copy, no hand merge: the first release's firmware/ installed,
# the second's copied over it; every entry then resolves as ota_server.py resolves it (its
# get_manifest answer from versions[current_version]; download_firmware: /firmware/<v>.bin for a
# key v that secure_filename() leaves unchanged, sending FIRMWARE_DIR/<filename>).
tar -xf "$T/b-1.0.0.fwb" -C "$T/x0" manifest.fwm exports/flask-ota
mkdir "$T/srv"
cp -p "$T/x0/exports/flask-ota/firmware/"* "$T/srv/"
cp -p "$T/x2/exports/flask-ota/firmware/"* "$T/srv/"
python3 - "$T/srv" "$T/x0/firmware.enc" "$T/x2/firmware.enc" "$T/prov/ota-hmac.bin" <<'PY' && ok ||
import hashlib, hmac, json, os, re, sys
d = sys.argv[1]
old, new = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
key = open(sys.argv[4], "rb").read()
assert sorted(os.listdir(d)) == ["1.0.0.bin", "1.1.0.bin", "manifest.json"], os.listdir(d)
m = json.load(open(os.path.join(d, "manifest.json")))
cur = m["versions"][m["current_version"]]
answer = {k: cur[k] for k in ("version", "download_url", "sha256", "hmac", "size")}
assert answer == {"version": "1.1.0", "download_url": "/firmware/1.1.0.bin",
                  "sha256": hashlib.sha256(new).hexdigest(),
                  "hmac": hmac.new(key, new, hashlib.sha256).hexdigest(), "size": len(new)}, answer
assert m.get("force_update", False) is False
served = {"1.0.0": old, "1.1.0": new}
assert sorted(m["versions"]) == sorted(served)
for v, e in m["versions"].items():
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) and ".." not in v, v
    assert e["download_url"] == "/firmware/" + v + ".bin", e
    data = open(os.path.join(d, e["filename"]), "rb").read()
    assert data == served[v] and len(data) == e["size"], v
PY
    fail "flask-ota: the two exports copied into one directory, as the server reads it"
# secure-fota: one upload per device type of the policy, in its order, each with its own id
# (slot of product and device type, times 65536, plus the counter: no two products or device
# types share one), run against a listener answering as the Update Server ("OK").
tar -xf "$T/b-1.1.0.fwb" -C "$T/x2" manifest.fwm exports/secure-fota
rm -f "$T/captured.jsonl"
printf '%s\n' '[{"method": "POST", "path": "/uploadFile", "code": 200, "body": "OK"}]' >"$T/routes.json"
python3 "$FWREL_SRC/tests/cmd/export_listener.py" "$T/routes.json" "$T/captured.jsonl" >"$T/port.txt" &
LPID=$!
for _ in $(seq 300); do [ -s "$T/port.txt" ] && break; sleep 0.1; done
sed -i "s|'https://fota.example.net'|'http://127.0.0.1:$(cat "$T/port.txt")'|" \
    "$T/x2/exports/secure-fota/upload.sh"
expect_rc 0 "secure-fota upload.sh" env FOTA_USER=alice:pw sh "$T/x2/exports/secure-fota/upload.sh"
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
python3 - "$T/captured.jsonl" "$T/x2/exports/secure-fota/upload.json" <<'PY' && ok ||
import hashlib, json, sys, urllib.parse
def upload_id(product, device_type, counter):
    d = hashlib.sha256(b"fwrel secure-fota id\0" + product.encode() + b"\0" + device_type.encode()).digest()
    return (1 + int.from_bytes(d[:4], "big") % 32767) * 65536 + counter
r = [json.loads(l) for l in open(sys.argv[1])]
types = ["thermostat-v2", "thermostat-v2-pro"]
assert len(r) == 2, r
ids = []
for req, t in zip(r, types):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(req["path"]).query, strict_parsing=True)
    assert q == {"id": [str(upload_id("acme-thermostat", t, 2))], "deviceType": [t],
                 "fwName": ["acme-thermostat-1.1.0"]}, q
    ids.append(int(q["id"][0]))
assert len(set(ids)) == 2 and all(0 < i < 2**31 for i in ids), ids
# Another product's ids on the same server differ (its slot is its own).
assert not set(ids) & {upload_id("acme-other", t, 2) for t in types}
j = json.load(open(sys.argv[2]))
assert [(u["id"], u["deviceType"]) for u in j["uploads"]] == list(zip(ids, types)), j["uploads"]
PY
    fail "secure-fota: one upload per device type of the policy"
# https-dir: the per-export base_url is the device's URL.
grep -qx '  CONFIG_EXAMPLE_FIRMWARE_UPGRADE_URL="https://cdn.example.org/fw/acme-thermostat.bin"' \
    "$T/x2/exports/https-dir/README.txt" && ok || fail "https-dir device URL"
grep -q '"url": "https://cdn.example.org/fw/acme-thermostat-1.1.0.bin"' \
    "$T/x2/exports/https-dir/latest.json" && ok || fail "latest.json url"
finish
