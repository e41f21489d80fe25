#!/bin/sh
# Upload this release to Memfault as an OTA payload, as `memfault upload-ota-payload` does:
#   POST <api>/api/v0/organizations/<org>/projects/<project>/upload   {size}; the answer's
#        data.upload_url and data.token
#   PUT  <upload_url>                                                 the file
#   POST <api>/api/v0/organizations/<org>/projects/<project>/release-artifacts
#        {file: {token}, software_version: {version, software_type}, hardware_version}
# MEMFAULT_ORG_TOKEN is an Organization Auth Token (sent as the Basic password); no secret is
# kept in this file. The POSTs must be answered 200 (prepare) and 202 (artifact), the PUT 200;
# anything else, a redirect included, stops the script with exit 1.
set -eu
cd "$(dirname "$0")"
: "${MEMFAULT_ORG_TOKEN:?set MEMFAULT_ORG_TOKEN to an Organization Auth Token}"
file={{product}}'-'{{version}}'.bin'
api={{base_url}}'/api/v0/organizations/'{{organization|url}}'/projects/'{{project|url}}
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
die() { echo "upload.sh: $*" >&2; exit 1; }
call() { # what WANT-CODE URL CURL-ARGS...: the answer in $tmp/answer
    what=$1 want=$2 url=$3 && shift 3
    code=$(curl --silent --show-error --globoff --output "$tmp/answer" --write-out '%{http_code}' \
        "$@" "$url") || die "$what: curl failed"
    [ "$code" = "$want" ] || die "$what: HTTP $code, not $want (nothing is followed)"
}
call "prepare the upload" 200 "$api/upload" --user ":$MEMFAULT_ORG_TOKEN" \
    --header 'Content-Type: application/json' --data-binary '{"size": '{{image_size}}'}'
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["data"][sys.argv[2]])' \
    "$tmp/prepared" "$1" || die "the prepared upload has no $1"; }
mv "$tmp/answer" "$tmp/prepared"
url=$(field upload_url)
token=$(field token)
call "upload the payload" 200 "$url" --upload-file "$file" \
    --header 'Content-Type: application/octet-stream'
python3 - "$tmp/artifact.json" "$token" {{version}} {{software_type}} {{hardware_version}} <<'PY'
import json, sys
json.dump({"file": {"token": sys.argv[2]},
           "software_version": {"version": sys.argv[3], "software_type": sys.argv[4]},
           "hardware_version": sys.argv[5]}, open(sys.argv[1], "w"))
PY
call "create the release artifact" 202 "$api/release-artifacts" --user ":$MEMFAULT_ORG_TOKEN" \
    --header 'Content-Type: application/json' --data-binary "@$tmp/artifact.json"
echo "upload.sh: OTA payload "{{version}}" uploaded for "{{hardware_version}}
