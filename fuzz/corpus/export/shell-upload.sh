#!/bin/sh
# Upload this release to a secure-FOTA Update Server: one multipart POST to /uploadFile
# with the parts manifestFile and firmwareFile and the parameters id, deviceType and
# fwName, as its FW Author application sends it. HTTP Basic authentication: curl asks for
# the password of the account named in FOTA_USER; no secret is kept in this file. For a
# self-signed server certificate, point CURL_CA_BUNDLE at it.
set -eu
cd "$(dirname "$0")"
curl --fail --show-error --user "${FOTA_USER:?set FOTA_USER to the uploader account}" --form manifestFile=@firmware.manifest --form firmwareFile=@firmware.bin {{base_url}}'/uploadFile?id='{{counter|url}}'&deviceType='{{device_type|url}}'&fwName='{{product|url}}'-'{{version|url}}
