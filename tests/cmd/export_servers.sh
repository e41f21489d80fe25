# The update-server upload scripts (docs/exports.md: thingsboard, hawkbit, rainmaker, memfault),
# rendered with the test helper fwrel-export and run against a listener on 127.0.0.1 that answers
# as the server's API does (tests/cmd/export_listener.py). Each captured request carries every
# field that API documents as required, with the release's values: the exact bytes of the served
# file, its SHA-256 (and MD5 for hawkBit), the version, and the policy's settings. A redirect or
# another status stops the script with exit 1 and one line on stderr.
. "$FWREL_SRC/tests/lib.sh"
cd "$T"
TPL="$FWREL_SRC/templates"
LISTENER="$FWREL_SRC/tests/cmd/export_listener.py"
head -c 70001 /dev/urandom >app.enc
SHA=$(sha256sum app.enc | cut -d' ' -f1)
VARS="product=blinky version=2.1.0 channel=prod counter=17 secure_version=3 device_type=devkitc-1 created=2026-11-22T13:45:00Z"

# listen ROUTES-JSON: start the listener; PORT and LPID are set, captured.jsonl is empty.
listen() {
    rm -f captured.jsonl port.txt
    printf '%s\n' "$1" >routes.json
    python3 "$LISTENER" routes.json "$T/captured.jsonl" >port.txt &
    LPID=$!
    for _ in $(seq 300); do [ -s port.txt ] && break; sleep 0.1; done
    PORT=$(cat port.txt)
}
stop() {
    kill "$LPID" 2>/dev/null
    wait "$LPID" 2>/dev/null
}
# check NAME: the python on stdin reads captured.jsonl (argv[1]) and app.enc (argv[2]).
check() {
    python3 - captured.jsonl app.enc "$SHA" >check.out 2>&1 && ok || fail "$1: $(cat check.out)"
}

# ThingsBoard: create the OTA package, then upload the file with checksumAlgorithm and checksum.
UUID=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
TB_ROUTES='[{"method": "POST", "path": "/api/otaPackage", "code": 200, "body": "{\"id\": {\"entityType\": \"OTA_PACKAGE\", \"id\": \"'$UUID'\"}}"},
 {"method": "POST", "path": "/api/otaPackage/'$UUID'", "code": 200, "body": "{}"}]'
listen "$TB_ROUTES"
# shellcheck disable=SC2086
expect_rc 0 "render thingsboard" fwrel-export --root "$TPL" --image app.enc thingsboard tb $VARS \
    base_url=http://127.0.0.1:$PORT device_profile_id=6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d
expect_rc 0 "thingsboard upload.sh" env TB_TOKEN=jwt.tok.en sh tb/upload.sh
stop
printf '%s\n' "$OUT" | grep -qx "upload.sh: OTA package $UUID: blinky-2.1.0.bin uploaded" && ok ||
    fail "thingsboard: $OUT"
check thingsboard <<'PY'
import email.parser, email.policy, json, sys, urllib.parse
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 2, r
a, b = r
assert a["method"] == "POST" and a["path"] == "/api/otaPackage", a
assert a["headers"]["x-authorization"] == "Bearer jwt.tok.en", a
j = json.loads(bytes.fromhex(a["body"]))
assert j["title"] == "blinky" and j["version"] == "2.1.0" and j["type"] == "FIRMWARE", j
assert j["deviceProfileId"] == {"entityType": "DEVICE_PROFILE",
                                "id": "6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d"}, j
u = urllib.parse.urlsplit(b["path"])
assert u.path == "/api/otaPackage/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", u
q = urllib.parse.parse_qs(u.query)
assert q == {"checksumAlgorithm": ["SHA256"], "checksum": [sys.argv[3]]}, q
assert b["headers"]["x-authorization"] == "Bearer jwt.tok.en"
m = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
    b"Content-Type: " + b["headers"]["content-type"].encode() + b"\r\n\r\n" + bytes.fromhex(b["body"]))
parts = {p.get_param("name", header="content-disposition"): p for p in m.iter_parts()}
assert list(parts) == ["file"], parts
assert parts["file"].get_content() == open(sys.argv[2], "rb").read()
assert parts["file"].get_filename() == "blinky-2.1.0.bin"
PY
# A redirect (a login page) is no upload: exit 1, one line, the file is not sent.
listen '[{"method": "POST", "path": "/api/otaPackage", "code": 302, "body": ""}]'
# shellcheck disable=SC2086
expect_rc 0 "render thingsboard" fwrel-export --root "$TPL" --image app.enc thingsboard tb2 $VARS \
    base_url=http://127.0.0.1:$PORT device_profile_id=6a7b8c9d-0e1f-2a3b-4c5d-6e7f8a9b0c1d
expect_rc 1 "thingsboard upload.sh against a redirect" env TB_TOKEN=t sh tb2/upload.sh
stop
expect_err "^upload.sh: create the package: HTTP 302, not 200 \(nothing is followed\)$" "302"
[ "$(wc -l <captured.jsonl)" = 1 ] && ok || fail "thingsboard went on after a redirect"

# hawkBit: software module, artifact with md5sum and sha256sum, distribution set.
listen '[{"method": "POST", "path": "/rest/v1/softwaremodules", "code": 201, "body": "[{\"id\": 7}]"},
 {"method": "POST", "path": "/rest/v1/softwaremodules/7/artifacts", "code": 201, "body": "{}"},
 {"method": "POST", "path": "/rest/v1/distributionsets", "code": 201, "body": "[{\"id\": 9}]"}]'
# shellcheck disable=SC2086
expect_rc 0 "render hawkbit" fwrel-export --root "$TPL" --image app.enc hawkbit hb $VARS \
    base_url=http://127.0.0.1:$PORT
expect_rc 0 "hawkbit upload.sh" env HAWKBIT_USER=admin:pw sh hb/upload.sh
stop
printf '%s\n' "$OUT" | grep -qx "upload.sh: software module 7 and distribution set 9 created" &&
    ok || fail "hawkbit: $OUT"
check hawkbit <<'PY'
import base64, email.parser, email.policy, hashlib, json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
data = open(sys.argv[2], "rb").read()
assert [x["path"] for x in r] == ["/rest/v1/softwaremodules", "/rest/v1/softwaremodules/7/artifacts",
                                  "/rest/v1/distributionsets"], r
for x in r:
    assert x["headers"]["authorization"] == "Basic " + base64.b64encode(b"admin:pw").decode()
assert json.loads(bytes.fromhex(r[0]["body"])) == [{"name": "blinky", "version": "2.1.0", "type": "os"}]
m = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
    b"Content-Type: " + r[1]["headers"]["content-type"].encode() + b"\r\n\r\n" + bytes.fromhex(r[1]["body"]))
parts = {p.get_param("name", header="content-disposition"): p for p in m.iter_parts()}
assert sorted(parts) == ["file", "filename", "md5sum", "sha256sum"], parts
assert parts["file"].get_content() == data
assert parts["filename"].get_content() == "blinky-2.1.0.bin"
assert parts["md5sum"].get_content() == hashlib.md5(data).hexdigest()
assert parts["sha256sum"].get_content() == sys.argv[3]
assert json.loads(bytes.fromhex(r[2]["body"])) == [
    {"name": "blinky", "version": "2.1.0", "type": "os", "modules": [{"id": 7}]}]
PY

# ESP RainMaker: the image with fw_version and model given (pre-encryption hides the app
# descriptor RainMaker would read them from), then the OTA job for the group.
listen '[{"method": "POST", "path": "/v1/admin/otaimage", "code": 200, "body": "{\"ota_image_id\": \"img-42\"}"},
 {"method": "POST", "path": "/v1/admin/otajob", "code": 200, "body": "{\"ota_job_id\": \"job-1\"}"}]'
# shellcheck disable=SC2086
expect_rc 0 "render rainmaker" fwrel-export --root "$TPL" --image app.enc rainmaker rm $VARS \
    base_url=http://127.0.0.1:$PORT group_id=grp-9 model=thermo-x
expect_rc 0 "rainmaker upload.sh" env RM_TOKEN=acc.tok sh rm/upload.sh
stop
check rainmaker <<'PY'
import base64, json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["path"] for x in r] == ["/v1/admin/otaimage", "/v1/admin/otajob"], r
for x in r:
    assert x["headers"]["authorization"] == "acc.tok"
i = json.loads(bytes.fromhex(r[0]["body"]))
assert base64.b64decode(i.pop("base64_fwimage"), validate=True) == open(sys.argv[2], "rb").read()
assert i == {"image_name": "blinky 2.1.0", "fw_version": "2.1.0", "model": "thermo-x",
             "type": "blinky"}, i
assert json.loads(bytes.fromhex(r[1]["body"])) == {"job_name": "blinky-2.1.0",
                                                   "ota_image_id": "img-42", "groups": ["grp-9"]}
PY

# Memfault: prepare the upload, PUT the payload to the URL it names, create the release artifact
# with the policy's hardware version and software type.
listen '[{"method": "POST", "path": "/api/v0/organizations/acme/projects/thermo/upload", "code": 200,
  "body": "{\"data\": {\"upload_url\": \"http://127.0.0.1:{port}/s3/put-here\", \"token\": \"tk-1\"}}"},
 {"method": "PUT", "path": "/s3/put-here", "code": 200, "body": ""},
 {"method": "POST", "path": "/api/v0/organizations/acme/projects/thermo/release-artifacts", "code": 202, "body": "{}"}]'
# shellcheck disable=SC2086
expect_rc 0 "render memfault" fwrel-export --root "$TPL" --image app.enc memfault mf $VARS \
    base_url=http://127.0.0.1:$PORT organization=acme project=thermo hardware_version=evt2 \
    software_type=main-fw
expect_rc 0 "memfault upload.sh" env MEMFAULT_ORG_TOKEN=oat_x sh mf/upload.sh
stop
check memfault <<'PY'
import base64, json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [(x["method"], x["path"]) for x in r] == [
    ("POST", "/api/v0/organizations/acme/projects/thermo/upload"), ("PUT", "/s3/put-here"),
    ("POST", "/api/v0/organizations/acme/projects/thermo/release-artifacts")], r
auth = "Basic " + base64.b64encode(b":oat_x").decode()
assert r[0]["headers"]["authorization"] == auth and r[2]["headers"]["authorization"] == auth
assert "authorization" not in r[1]["headers"]  # the token never goes to the storage URL
data = open(sys.argv[2], "rb").read()
assert json.loads(bytes.fromhex(r[0]["body"])) == {"size": len(data)}
assert bytes.fromhex(r[1]["body"]) == data
assert json.loads(bytes.fromhex(r[2]["body"])) == {
    "file": {"token": "tk-1"}, "software_version": {"version": "2.1.0", "software_type": "main-fw"},
    "hardware_version": "evt2"}
PY
finish
