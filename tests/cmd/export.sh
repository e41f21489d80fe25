# Exports end to end: a real release (an image signed and pre-encrypted, a signed and encrypted
# manifest, the secure-FOTA manifest, an HMAC key) rendered into each shipped export with the
# test helper fwrel-export, then checked with what each server side uses: openssl s_server -WWW
# serves https-dir as its README says and curl fetches the device URL the README gives;
# sha256sum -c; the secure-fota upload.sh run against a listener on 127.0.0.1 (the request
# captured, a redirect and a reply other than "OK" refused), with hostile values; python's json
# and hmac read flask-ota's manifest.json as ota_server.py does.
# Refusals: exit code, one stderr line, nothing written.
. "$FWREL_SRC/tests/lib.sh"
cd "$T"
TPL="$FWREL_SRC/templates"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out enc.pem 2>/dev/null
openssl genpkey -algorithm ED25519 -out msign.pem 2>/dev/null
openssl genpkey -algorithm X25519 -out dev.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out fsign.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out fdev.pem 2>/dev/null
for k in enc dev fdev; do openssl pkey -in $k.pem -pubout -out $k.pub 2>/dev/null; done
fwrel-testimg --chip esp32 --version 2.1.0 --secure-version 3 -o app.bin >/dev/null
fwrel-keygen --scheme rsa3072 --no-passphrase -o sb.pem >/dev/null
fwrel-sign -k sb.pem -o app.signed.bin app.bin >/dev/null
fwrel-encrypt --key enc.pub -o app.enc app.signed.bin >/dev/null
now=$(date +%s)
printf '{"product": "blinky", "device_types": ["devkitc-1"], "channel": "prod", "counter": 17,
 "created": %d, "expires": %d}\n' "$now" $((now + 86400)) >release.json
fwrel-encrypt --manifest --signed-image app.signed.bin --plain-image app.bin --encrypted-image \
    app.enc --sign-key msign.pem --recipient dev.pub -o rel.fwm release.json >/dev/null
fwrel-encrypt --secure-fota --sign-key fsign.pem --recipient fdev.pub -o app.sfm app.bin >/dev/null
head -c 32 /dev/urandom >hmac.key
for f in app.enc rel.fwm app.sfm; do [ -s $f ] && ok || fail "release file $f was not made"; done
ART="--image app.enc --manifest rel.fwm --secure-fota-manifest app.sfm --hmac-key hmac.key"
VARS="product=blinky version=2.1.0 channel=prod counter=17 secure_version=3 device_type=devkitc-1 created=2026-11-22T13:45:00Z"

# https-dir, served by openssl s_server -WWW exactly as its README.txt says (the files copied to
# DOCROOT<path of base_url>, the server run from DOCROOT on the URL's port) and fetched with curl
# at the README's device URL: the bytes are the image (issue 17: the URL's path and the directory
# the README names agree; the port is the URL's, not a fixed 8070).
if ! openssl s_server -help >/dev/null 2>&1; then
    skip "https-dir served: openssl s_server is not available"
else
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
        -out cert.pem -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
    fetched=no
    for attempt in 1 2 3; do
        port=$((20000 + RANDOM % 20000))
        rm -rf www docroot
        # shellcheck disable=SC2086
        expect_rc 0 "render https-dir" fwrel-export --root "$TPL" $ART https-dir www $VARS \
            base_url=https://localhost:$port/fw/blinky
        url=$(sed -n 's/^  CONFIG_EXAMPLE_FIRMWARE_UPGRADE_URL="\(.*\)"$/\1/p' www/README.txt)
        [ "$url" = "https://localhost:$port/fw/blinky/blinky.bin" ] && ok || fail "device URL '$url'"
        copy=$(sed -n 's/^  \(mkdir -p DOCROOT.*\)$/\1/p' www/README.txt)
        [ "$copy" = "mkdir -p DOCROOT/fw/blinky && cp -p * DOCROOT/fw/blinky/" ] && ok ||
            fail "README copy command '$copy'"
        serve=$(sed -n 's/^  cd DOCROOT && \(openssl s_server .*\)$/\1/p' www/README.txt)
        [ "$serve" = "openssl s_server -WWW -key server_key.pem -cert server_cert.pem -port $port" ] &&
            ok || fail "README server command '$serve'"
        (cd www && eval "$(printf '%s\n' "$copy" | sed "s|DOCROOT|$T/docroot|g")")
        cp key.pem docroot/server_key.pem
        cp cert.pem docroot/server_cert.pem
        # shellcheck disable=SC2086
        (cd docroot && exec $serve >/dev/null 2>&1) &
        server=$!
        for _ in $(seq 50); do
            curl -s --cacert cert.pem -o fetched.bin "$url" && break
            kill -0 "$server" 2>/dev/null || break
            sleep 0.1
        done
        curl -s --cacert cert.pem -o fetched.fwm "https://localhost:$port/fw/blinky/blinky-2.1.0.fwm"
        curl -s --cacert cert.pem -o latest.json "https://localhost:$port/fw/blinky/latest.json"
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        if [ -s fetched.bin ]; then
            fetched=yes
            break
        fi
    done
    [ "$fetched" = yes ] && ok || fail "openssl s_server -WWW did not serve the directory"
    expect_same fetched.bin app.enc "the device URL serves the pre-encrypted image"
    expect_same fetched.fwm rel.fwm "the versioned manifest URL serves the manifest"
    python3 - latest.json app.enc "https://localhost:$port/fw/blinky" <<'PY' && ok || fail "latest.json"
import hashlib, json, sys
j = json.load(open(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
base = sys.argv[3]
assert j["version"] == "2.1.0" and j["secure_version"] == 3, j
assert j["size"] == len(data) and j["sha256"] == hashlib.sha256(data).hexdigest(), j
assert j["url"] == base + "/blinky-2.1.0.bin" and j["stable_url"] == base + "/blinky.bin", j
assert j["manifest_url"] == base + "/blinky-2.1.0.fwm", j
PY
fi
expect_same www/blinky-2.1.0.bin app.enc "versioned image"
(cd www && sha256sum --quiet -c SHA256SUMS) && ok || fail "sha256sum -c SHA256SUMS"
[ "$(ls www | tr '\n' ' ')" = "README.txt SHA256SUMS blinky-2.1.0.bin blinky-2.1.0.fwm blinky.bin blinky.fwm latest.json " ] &&
    ok || fail "https-dir files: $(ls www | tr '\n' ' ')"

# secure-fota: upload.sh against a listener on 127.0.0.1 that answers as the Update Server
# (200 "OK"), with a redirect, with 200 and another body, and with 500: only the first passes.
# The request it captured carries every field the server reads: id (slot * 65536 + counter, one
# per device type), deviceType, fwName, the parts manifestFile and firmwareFile (the exact bytes)
# and Basic authentication; hostile values arrive intact and run nothing.
cat >listener.py <<'PY'
import http.server, json, sys, threading
mode, out = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "ab") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                                "type": self.headers.get("Content-Type"),
                                "body": body.hex()}).encode() + b"\n")
        if mode == "redirect":
            self.send_response(302); self.send_header("Location", "/login")
            self.send_header("Content-Length", "0"); self.end_headers(); return
        code, text = {"ok": (200, b"OK"), "other": (200, b"ERROR"), "fail": (500, b"no")}[mode]
        self.send_response(code); self.send_header("Content-Length", str(len(text)))
        self.end_headers(); self.wfile.write(text)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
# listen MODE: start the listener; PORT and LPID are set.
listen() {
    rm -f captured.jsonl port.txt
    python3 listener.py "$1" "$T/captured.jsonl" >port.txt &
    LPID=$!
    for _ in $(seq 300); do [ -s port.txt ] && break; sleep 0.1; done
    PORT=$(cat port.txt)
}
evil=$(printf 'evil" $(touch pwned1) `touch pwned2` '"'"'q'"'"' \\ \n; touch pwned3')
for mode in ok redirect other fail; do
    listen $mode
    rm -rf fota
    # shellcheck disable=SC2086
    expect_rc 0 "render secure-fota" fwrel-export --root "$TPL" $ART secure-fota fota $VARS \
        "base_url=http://127.0.0.1:$PORT/x'y\$(touch\${IFS}pwned4)"
    want=0
    [ $mode = ok ] || want=1

    expect_rc $want "upload.sh against a server answering '$mode'" \
        env FOTA_USER=alice:secret sh fota/upload.sh
    kill "$LPID" 2>/dev/null
    wait "$LPID" 2>/dev/null
    case $mode in
    ok) printf '%s\n' "$OUT" | grep -qx "upload.sh: devkitc-1: uploaded" && ok || fail "ok: $OUT" ;;
    redirect) expect_err "^upload.sh: devkitc-1: HTTP 302, not 200 \(nothing is followed\)$" "302" ;;
    other) expect_err "^upload.sh: devkitc-1: the server did not answer OK$" "not OK" ;;
    fail) expect_err "^upload.sh: devkitc-1: HTTP 500, not 200 \(nothing is followed\)$" "500" ;;
    esac
    [ $mode = ok ] && cp captured.jsonl ok.jsonl
done
[ -x fota/upload.sh ] && ok || fail "upload.sh is not executable"
expect_same fota/firmware.manifest app.sfm "manifestFile is the secure-FOTA manifest"
expect_same fota/firmware.bin app.enc "firmwareFile is the pre-encrypted image"
python3 - ok.jsonl fota/upload.json app.sfm app.enc <<'PY' && ok || fail "the captured upload"
import base64, email.parser, email.policy, hashlib, json, sys, urllib.parse
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert len(reqs) == 1, reqs
r = reqs[0]
u = urllib.parse.urlsplit(r["path"])
assert u.path == "/x'y$(touch${IFS}pwned4)/uploadFile", u.path
q = urllib.parse.parse_qs(u.query, strict_parsing=True)
d = hashlib.sha256(b"fwrel secure-fota id\0blinky\0devkitc-1").digest()
slot = 1 + int.from_bytes(d[:4], "big") % 32767
assert q == {"id": [str(slot * 65536 + 17)], "deviceType": ["devkitc-1"],
             "fwName": ["blinky-2.1.0"]}, q
assert 0 < slot * 65536 + 17 < 2**31
assert r["auth"] == "Basic " + base64.b64encode(b"alice:secret").decode()
msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
    b"Content-Type: " + r["type"].encode() + b"\r\n\r\n" + bytes.fromhex(r["body"]))
parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
         for p in msg.iter_parts()}
assert parts["manifestFile"] == open(sys.argv[3], "rb").read()
assert parts["firmwareFile"] == open(sys.argv[4], "rb").read()
j = json.load(open(sys.argv[2]))
assert j["uploads"] == [{"id": slot * 65536 + 17, "deviceType": "devkitc-1",
    "deviceManifestUrl": j["url"][:-len("/uploadFile")] + "/update/newest/manifest?deviceType=devkitc-1",
    "deviceBinaryUrl": j["url"][:-len("/uploadFile")] + "/update/newest/binary?deviceType=devkitc-1"}], j
PY
# Hostile device type and URL: the request carries them intact, nothing runs.
listen ok
rm -rf fota
# shellcheck disable=SC2086
expect_rc 0 "render secure-fota, hostile" fwrel-export --root "$TPL" $ART secure-fota fota $VARS \
    "device_type=$evil" "base_url=http://127.0.0.1:$PORT/x'y\$(touch\${IFS}pwned4)"
bash -n fota/upload.sh && ok || fail "upload.sh: bash -n"
sh -n fota/upload.sh && ok || fail "upload.sh: sh -n"
expect_rc 0 "upload.sh, hostile values" env FOTA_USER=alice:secret sh fota/upload.sh
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
python3 - captured.jsonl "$evil" <<'PY' && ok || fail "hostile deviceType"
import json, sys, urllib.parse
r = [json.loads(l) for l in open(sys.argv[1])][0]
q = urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query)
assert q["deviceType"] == [sys.argv[2]], q
PY
ls pwned* >/dev/null 2>&1 && fail "a value ran a command" || ok
python3 - fota/upload.json "$evil" <<'PY' && ok || fail "upload.json does not hold the values intact"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["uploads"][0]["deviceType"] == sys.argv[2], j
assert set(j) == {"url", "fwName", "manifestFile", "firmwareFile", "uploads"}
assert set(j["uploads"][0]) == {"id", "deviceType", "deviceManifestUrl", "deviceBinaryUrl"}
PY
# The id is the server's global primary key: two products with the same counter and device type
# on one server get different ids (each product's slot is its own), both the documented formula.
for prod in blinky lamp; do
    rm -rf "fota-$prod"
    # shellcheck disable=SC2086
    fwrel-export --root "$TPL" $ART secure-fota "fota-$prod" $VARS product=$prod \
        base_url=https://ota.example.net >/dev/null 2>&1 || fail "render secure-fota for $prod"
done
python3 - fota-blinky/upload.json fota-lamp/upload.json <<'PY' && ok || fail "secure-fota ids of two products"
import hashlib, json, sys
def upload_id(product):
    d = hashlib.sha256(b"fwrel secure-fota id\0" + product.encode() + b"\0devkitc-1").digest()
    return (1 + int.from_bytes(d[:4], "big") % 32767) * 65536 + 17
a, b = (json.load(open(f))["uploads"][0]["id"] for f in sys.argv[1:3])
assert (a, b) == (upload_id("blinky"), upload_id("lamp")) and a != b, (a, b)
PY

# ESPHome's OTA checks an MD5 of the file it receives: image_md5 is the served file's MD5, for a
# template of the user's own (docs/exports.md section 4).
mkdir -p user/esphome
printf '%s\n' 'description: ESPHome OTA' 'variables:' '  required: [image_md5, image_sha256]' \
    'files:' '  ota.json: {escape: json}' 'copies:' '  "firmware.bin": image' >user/esphome/export.yaml
printf '%s\n' '{"md5": "{{image_md5}}", "sha256": "{{image_sha256}}"}' >user/esphome/ota.json
# shellcheck disable=SC2086
expect_rc 0 "an export with image_md5" fwrel-export --root user $ART esphome esp $VARS
[ "$(cat esp/ota.json)" = "{\"md5\": \"$(md5sum <app.enc | cut -c1-32)\", \"sha256\": \"$(sha256sum <app.enc | cut -c1-64)\"}" ] &&
    ok || fail "image_md5: $(cat esp/ota.json)"
expect_same esp/firmware.bin app.enc "the ESPHome file is the served one"
# fwrel-export, like fwrel-bundle, renders only from a root it is given.
# shellcheck disable=SC2086
expect_rc 2 "no template root" fwrel-export $ART https-dir noroot $VARS
expect_absent noroot "no template root"

# flask-ota: manifest.json read as ota_server.py reads it; hmac as its calculate_hmac_signature.
# shellcheck disable=SC2086
expect_rc 0 "render flask-ota" fwrel-export --root "$TPL" $ART flask-ota flask $VARS
python3 - flask hmac.key <<'PY' && ok || fail "flask-ota manifest.json"
import hashlib, hmac, json, sys
m = json.load(open(sys.argv[1] + "/firmware/manifest.json"))
v = m["versions"][m["current_version"]]
data = open(sys.argv[1] + "/firmware/" + v["filename"], "rb").read()
key = open(sys.argv[2], "rb").read()
assert len(key) == 32
assert v["hmac"] == hmac.new(key, data, hashlib.sha256).hexdigest()
assert v["sha256"] == hashlib.sha256(data).hexdigest() and v["size"] == len(data)
assert v["download_url"] == "/firmware/" + v["version"] + ".bin" and m["force_update"] is False
PY
mac=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(xxd -p -c 64 hmac.key)" -r app.enc | cut -d' ' -f1)
grep -q "\"hmac\": \"$mac\"," flask/firmware/manifest.json && ok || fail "hmac is not openssl's"
expect_same flask/firmware/2.1.0.bin app.enc "the served file"

# Refusals: one line, exit code, nothing written.
# shellcheck disable=SC2086
expect_rc 3 "plain text refuses a newline" fwrel-export --root "$TPL" $ART https-dir bad1 $VARS \
    "base_url=https://h
CONFIG_X=y"
expect_err "^fwrel-export: https-dir: README.txt:24: value of 'base_url' has a control character$" \
    "newline in README"
expect_absent bad1 "newline in README"
# shellcheck disable=SC2086
expect_rc 3 "a name that leaves the directory" fwrel-export --root "$TPL" $ART https-dir bad2 \
    $VARS product=../up base_url=https://h
expect_err "^fwrel-export: https-dir: export 'https-dir' needs a plain name in 'product' \(\[A-Za-z0-9._-\], starting and ending with a letter or digit\): '\.\./up'$" \
    "traversal"
expect_absent bad2 "traversal"
expect_rc 3 "a missing variable" fwrel-export --root "$TPL" flask-ota bad3 version=1
expect_err "^fwrel-export: flask-ota: export 'flask-ota' needs variable 'image_sha256'$" "missing"
expect_absent bad3 "missing variable"
mkdir -p user/mine
cp "$TPL/flask-ota/export.yaml" user/mine/
mkdir user/mine/firmware
ln -s "$TPL/flask-ota/firmware/manifest.json" user/mine/firmware/manifest.json
cp "$TPL/flask-ota/README.txt" user/mine/
# shellcheck disable=SC2086
expect_rc 3 "a symbolic link in a user export" fwrel-export --root user $ART mine bad4 $VARS
expect_err "^fwrel-export: mine: firmware/manifest.json: is a symbolic link \(not followed\)$" "link"
expect_absent bad4 "symbolic link"
# The same user export with a real file renders, without rebuilding anything.
rm user/mine/firmware/manifest.json
cp "$TPL/flask-ota/firmware/manifest.json" user/mine/firmware/
# shellcheck disable=SC2086
expect_rc 0 "a user export" fwrel-export --root user $ART mine good $VARS
expect_same good/firmware/manifest.json flask/firmware/manifest.json "user export output"
finish
