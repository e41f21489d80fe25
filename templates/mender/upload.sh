#!/bin/sh
# Upload this release's Mender Artifact to a Mender server with the Management API:
# POST /api/management/v1/deployments/artifacts, multipart/form-data with the parts "artifact"
# (the file, required), "size" (its size in bytes) and "description". Authorization: a personal
# access token in MENDER_TOKEN (Bearer); no secret is kept in this file. For a self-signed server
# certificate, point CURL_CA_BUNDLE at it. The upload must be answered 201 (Created); anything
# else, a redirect included (curl does not follow it), stops the script with exit 1.
set -eu
cd "$(dirname "$0")"
: "${MENDER_TOKEN:?set MENDER_TOKEN to a personal access token}"
file={{product}}'-'{{version}}'.mender'
size=$(wc -c <"$file" | tr -d ' ')
code=$(curl --silent --show-error --globoff --output /dev/null --write-out '%{http_code}' \
    --header "Authorization: Bearer $MENDER_TOKEN" \
    --form "size=$size" --form description={{product}}' '{{version}} \
    --form "artifact=@$file;type=application/octet-stream" \
    {{base_url}}'/api/management/v1/deployments/artifacts') || {
    echo "upload.sh: curl failed" >&2
    exit 1
}
if [ "$code" != 201 ]; then
    echo "upload.sh: HTTP $code, not 201 (nothing is followed)" >&2
    exit 1
fi
echo "upload.sh: uploaded $file"
