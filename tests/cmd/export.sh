# Exports end to end: a real release (an image signed and pre-encrypted, a signed and encrypted
# manifest, the secure-FOTA manifest, an HMAC key) rendered into each shipped export with the
# test helper fwrel-export, then checked with what each server side uses: openssl s_server -WWW
# serves https-dir and curl fetches the device URL the README gives; sha256sum -c; bash -n and
# the arguments the secure-fota curl command line really passes (printf in curl's place), with
# hostile values; python's json and hmac read flask-ota's manifest.json as ota_server.py does.
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
VARS="product=blinky version=2.1.0 counter=17 device_type=devkitc-1 created=2026-11-22T13:45:00Z"

# https-dir, served by openssl s_server -WWW and fetched at the README's device URL.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
    -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
fetched=no
for attempt in 1 2 3; do
    port=$((20000 + RANDOM % 20000))
    rm -rf www
    # shellcheck disable=SC2086
    expect_rc 0 "render https-dir" fwrel-export --root "$TPL" $ART https-dir www $VARS \
        base_url=https://localhost:$port
    url=$(sed -n 's/^  CONFIG_EXAMPLE_FIRMWARE_UPGRADE_URL="\(.*\)"$/\1/p' www/README.txt)
    [ "$url" = "https://localhost:$port/blinky.bin" ] && ok || fail "device URL '$url'"
    (cd www && exec openssl s_server -WWW -key ../key.pem -cert ../cert.pem -accept "$port" \
        >/dev/null 2>&1) &
    server=$!
    for _ in $(seq 50); do
        curl -s --cacert cert.pem -o fetched.bin "$url" && break
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    curl -s --cacert cert.pem -o fetched.fwm "https://localhost:$port/blinky-2.1.0.fwm"
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
expect_same www/blinky-2.1.0.bin app.enc "versioned image"
(cd www && sha256sum --quiet -c SHA256SUMS) && ok || fail "sha256sum -c SHA256SUMS"
[ "$(ls www | tr '\n' ' ')" = "README.txt SHA256SUMS blinky-2.1.0.bin blinky-2.1.0.fwm blinky.bin blinky.fwm " ] &&
    ok || fail "https-dir files: $(ls www | tr '\n' ' ')"

# secure-fota: the upload command's arguments come out intact, hostile values included.
evil=$(printf 'evil" $(touch pwned1) `touch pwned2` '"'"'q'"'"' \\ \n; touch pwned3')
base="https://fota.example.net:8443/x'y \$(touch pwned4)"
# shellcheck disable=SC2086
expect_rc 0 "render secure-fota" fwrel-export --root "$TPL" $ART secure-fota fota $VARS \
    "device_type=$evil" "base_url=$base"
[ -x fota/upload.sh ] && ok || fail "upload.sh is not executable"
expect_same fota/firmware.manifest app.sfm "manifestFile is the secure-FOTA manifest"
expect_same fota/firmware.bin app.enc "firmwareFile is the pre-encrypted image"
bash -n fota/upload.sh && ok || fail "upload.sh: bash -n"
sh -n fota/upload.sh && ok || fail "upload.sh: sh -n"
line=$(grep '^curl ' fota/upload.sh)
[ -n "$line" ] && ok || fail "no curl line in upload.sh"
(cd fota && FOTA_USER=alice bash -c "printf '%s\n' ${line#curl }") >args.txt
q() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
{
    printf '%s\n' --fail --show-error --user alice --form manifestFile=@firmware.manifest \
        --form firmwareFile=@firmware.bin
    printf '%s/uploadFile?id=17&deviceType=%s&fwName=blinky-2.1.0\n' "$base" "$(q "$evil")"
} >want.txt
expect_same args.txt want.txt "curl's arguments"
ls pwned* >/dev/null 2>&1 && fail "a value ran a command" || ok
python3 - fota/upload.json "$evil" "$base" <<'PY' && ok || fail "upload.json does not hold the values intact"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["deviceType"] == sys.argv[2], j["deviceType"]
assert j["url"] == sys.argv[3] + "/uploadFile" and j["fwName"] == "blinky-2.1.0" and j["id"] == 17
assert set(j) == {"url", "id", "deviceType", "fwName", "manifestFile", "firmwareFile",
                  "deviceManifestUrl", "deviceBinaryUrl"}
PY

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
expect_err "^fwrel-export: https-dir: README.txt:19: value of 'base_url' has a control character$" \
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
