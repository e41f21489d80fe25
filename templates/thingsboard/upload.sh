#!/bin/sh
# Create this release's OTA package on a ThingsBoard server and upload its file, with the REST API:
#   POST /api/otaPackage                 ota-package.json (title, version, type, deviceProfileId);
#                                        the answer's id.id names the package
#   POST /api/otaPackage/<id>?checksumAlgorithm=SHA256&checksum=<sha256>, multipart part "file"
# TB_TOKEN is a JWT of a tenant administrator (POST /api/auth/login gives one); no secret is kept
# in this file. Each request must be answered 200; anything else, a redirect included, stops the
# script with exit 1. python3 reads the package id from the answer.
set -eu
cd "$(dirname "$0")"
: "${TB_TOKEN:?set TB_TOKEN to a tenant administrator JWT}"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
die() { echo "upload.sh: $*" >&2; exit 1; }
post() { # what URL CURL-ARGS...: the answer in $tmp/answer, which must be 200
    what=$1 url=$2 && shift 2
    code=$(curl --silent --show-error --globoff --header "X-Authorization: Bearer $TB_TOKEN" \
        --output "$tmp/answer" --write-out '%{http_code}' "$@" "$url") || die "$what: curl failed"
    [ "$code" = 200 ] || die "$what: HTTP $code, not 200 (nothing is followed)"
}
file={{product}}'-'{{version}}'.bin'
post "create the package" {{base_url}}'/api/otaPackage' \
    --header 'Content-Type: application/json' --data-binary @ota-package.json
id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"]["id"])' "$tmp/answer") ||
    die "the server's answer has no package id"
case $id in *[!0-9a-f-]* | '') die "package id '$id' is not a UUID" ;; esac
post "upload the file" {{base_url}}"/api/otaPackage/$id?checksumAlgorithm=SHA256&checksum="{{image_sha256|url}} \
    --form "file=@$file;type=application/octet-stream"
echo "upload.sh: OTA package $id: $file uploaded"
