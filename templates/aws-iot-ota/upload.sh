#!/bin/sh
# Put this release's file into S3 and create the OTA update job with the AWS CLI (credentials and
# region as the CLI finds them; no secret is kept in this file): aws s3 cp to the key that
# create-ota-update.json names, then aws iot create-ota-update with that request, whose file
# carries the release's custom code signature (docs/exports.md "aws-iot-ota").
set -eu
cd "$(dirname "$0")"
file={{product}}'-'{{version}}'.bin'
aws s3 cp "$file" 's3://'{{s3_bucket}}'/'{{product}}'/'{{product}}'-'{{version}}'.bin' || {
    echo "upload.sh: the S3 upload failed" >&2
    exit 1
}
aws iot create-ota-update --cli-input-json file://create-ota-update.json || {
    echo "upload.sh: create-ota-update failed" >&2
    exit 1
}
echo "upload.sh: OTA update "{{product}}'-'{{counter}}" created"
