#!/bin/sh
# Upload this release to ESP RainMaker and start its OTA job, with the admin API:
#   POST /v1/admin/otaimage  {image_name, fw_version, model, type, base64_fwimage}; the answer
#                            names ota_image_id
#   POST /v1/admin/otajob    {job_name, ota_image_id, groups}
# fw_version is the release's version and model the product (or the policy's model setting):
# RainMaker would read both from the image's app descriptor, which pre-encryption hides.
# RM_TOKEN is an admin access token (sent as Authorization); no secret is kept in this file.
# Each request must be answered 200; anything else, a redirect included, stops the script with
# exit 1. python3 writes the JSON bodies and reads the image id.
set -eu
cd "$(dirname "$0")"
: "${RM_TOKEN:?set RM_TOKEN to a RainMaker admin access token}"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
die() { echo "upload.sh: $*" >&2; exit 1; }
post() { # what URL BODY-FILE: the answer in $tmp/answer, which must be 200
    code=$(curl --silent --show-error --globoff --header "Authorization: $RM_TOKEN" \
        --header 'Content-Type: application/json' --data-binary "@$3" --output "$tmp/answer" \
        --write-out '%{http_code}' "$2") || die "$1: curl failed"
    [ "$code" = 200 ] || die "$1: HTTP $code, not 200 (nothing is followed)"
}
file={{product}}'-'{{version}}'.bin'
python3 - "$file" "$tmp/image.json" {{product}}' '{{version}} {{version}} \
    {{#model}}{{model}}{{/model}}{{^model}}{{product}}{{/model}} \
    {{#image_type}}{{image_type}}{{/image_type}}{{^image_type}}{{product}}{{/image_type}} <<'PY'
import base64, json, sys
data = open(sys.argv[1], "rb").read()
json.dump({"image_name": sys.argv[3], "fw_version": sys.argv[4], "model": sys.argv[5],
           "type": sys.argv[6], "base64_fwimage": base64.b64encode(data).decode()},
          open(sys.argv[2], "w"))
PY
post "upload the image" {{base_url}}'/v1/admin/otaimage' "$tmp/image.json"
id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ota_image_id"])' "$tmp/answer") ||
    die "the server's answer has no ota_image_id"
python3 - "$tmp/job.json" {{product}}'-'{{version}} "$id" {{group_id}} <<'PY'
import json, sys
json.dump({"job_name": sys.argv[2], "ota_image_id": sys.argv[3], "groups": [sys.argv[4]]},
          open(sys.argv[1], "w"))
PY
post "start the OTA job" {{base_url}}'/v1/admin/otajob' "$tmp/job.json"
echo "upload.sh: OTA image $id uploaded, job "{{product}}'-'{{version}}" started"
