#!/bin/sh
# Upload this release to a secure-FOTA Update Server, once per device type: a multipart POST to
# /uploadFile with the parts manifestFile and firmwareFile and the parameters id, deviceType
# and fwName, as its FW Author application sends it. HTTP Basic authentication: curl asks for
# the password of the account named in FOTA_USER; no secret is kept in this file. For a
# self-signed server certificate, point CURL_CA_BUNDLE at it. Each upload must be answered
# 200 with the body "OK" (the server's answer); anything else, a redirect included (curl does
# not follow it), stops the script with exit 1.
set -eu
cd "$(dirname "$0")"
: "${FOTA_USER:?set FOTA_USER to the uploader account}"
upload() { # URL DEVICE_TYPE
    out=$(curl --silent --show-error --globoff --user "$FOTA_USER" \
        --form manifestFile=@firmware.manifest \
        --form firmwareFile=@firmware.bin --write-out '\n%{http_code}' "$1") || {
        echo "upload.sh: $2: curl failed" >&2
        exit 1
    }
    code=$(printf '%s\n' "$out" | tail -n 1)
    body=$(printf '%s\n' "$out" | sed '$d')
    if [ "$code" != 200 ]; then
        echo "upload.sh: $2: HTTP $code, not 200 (nothing is followed)" >&2
        exit 1
    fi
    if [ "$body" != OK ]; then
        echo "upload.sh: $2: the server did not answer OK" >&2
        exit 1
    fi
    echo "upload.sh: $2: uploaded"
}
{{*targets}}upload {{base_url}}'/uploadFile?id='{{upload_id|url}}'&deviceType='{{device_type|url}}'&fwName='{{product|url}}'-'{{version|url}} {{device_type}}
{{/targets}}