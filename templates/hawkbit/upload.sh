#!/bin/sh
# Publish this release on an Eclipse hawkBit server with the Management API:
#   POST /rest/v1/softwaremodules                  [{name, version, type}]; the answer's [0].id
#   POST /rest/v1/softwaremodules/<id>/artifacts   multipart "file", with filename, md5sum and
#                                                  sha256sum (the server refuses a mismatch)
#   POST /rest/v1/distributionsets                 [{name, version, type, modules: [{id}]}]
# HAWKBIT_USER names the account (user, and curl asks for the password, or user:password); no
# secret is kept in this file. Each request must be answered 201; anything else, a redirect
# included, stops the script with exit 1. python3 writes the JSON bodies and reads the ids.
set -eu
cd "$(dirname "$0")"
: "${HAWKBIT_USER:?set HAWKBIT_USER to the uploader account}"
die() { echo "upload.sh: $*" >&2; exit 1; }
file={{product}}'-'{{version}}'.bin'
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
post() { # what URL CURL-ARGS...: the answer in $tmp/answer, which must be 201
    what=$1 url=$2 && shift 2
    code=$(curl --silent --show-error --globoff --user "$HAWKBIT_USER" --output "$tmp/answer" \
        --write-out '%{http_code}' "$@" "$url") || die "$what: curl failed"
    [ "$code" = 201 ] || die "$what: HTTP $code, not 201 (nothing is followed)"
}
first_id() { # the id of the answer's first object
    python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))[0]["id"]))' "$tmp/answer" ||
        die "$1: the server's answer has no id"
}
python3 - "$tmp/sm.json" {{product}} {{version}} \
    {{#module_type}}{{module_type}}{{/module_type}}{{^module_type}}os{{/module_type}} <<'PY'
import json, sys
json.dump([{"name": sys.argv[2], "version": sys.argv[3], "type": sys.argv[4]}],
          open(sys.argv[1], "w"))
PY
post "create the software module" {{base_url}}'/rest/v1/softwaremodules' \
    --header 'Content-Type: application/json' --data-binary "@$tmp/sm.json"
sm=$(first_id "create the software module")
post "upload the artifact" {{base_url}}"/rest/v1/softwaremodules/$sm/artifacts" \
    --form "file=@$file;type=application/octet-stream" --form filename="$file" \
    --form md5sum={{image_md5}} --form sha256sum={{image_sha256}}
python3 - "$tmp/ds.json" {{product}} {{version}} "$sm" \
    {{#ds_type}}{{ds_type}}{{/ds_type}}{{^ds_type}}os{{/ds_type}} <<'PY'
import json, sys
json.dump([{"name": sys.argv[2], "version": sys.argv[3], "type": sys.argv[5],
            "modules": [{"id": int(sys.argv[4])}]}], open(sys.argv[1], "w"))
PY
post "create the distribution set" {{base_url}}'/rest/v1/distributionsets' \
    --header 'Content-Type: application/json' --data-binary "@$tmp/ds.json"
echo "upload.sh: software module $sm and distribution set $(first_id "create the distribution set") created"
