#!/bin/bash
# fuzz/make-seeds.sh BUILD_DIR - (re)make the valid signed seeds of the trusted-path fuzz targets
# (manifest_trusted, bverify_device, bverify_ci, release) from the throw-away keys in fuzz/keys,
# with the fwrel-fuzzseeds helper of BUILD_DIR (a normal build). The approvals are signed in a
# temporary GnuPG home that holds fuzz/keys/approvers.sec.asc, removed afterwards. The seeds are
# random (fresh nonces and signatures) and all valid at FWREL_FUZZ_NOW (fuzz/fuzz.h).
set -euo pipefail
build=${1:?usage: fuzz/make-seeds.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$build/fwrel-fuzzseeds" ] || { echo "no $build/fwrel-fuzzseeds: build first" >&2; exit 2; }
home=$(mktemp -d "${TMPDIR:-/tmp}/fwrel-seeds.XXXXXX")
trap 'gpgconf --homedir "$home" --kill all >/dev/null 2>&1 || true; rm -rf "$home"' EXIT
chmod 700 "$home"
gpg --homedir "$home" --batch --quiet --import "$here/keys/approvers.sec.asc" 2>/dev/null
"$build/fwrel-fuzzseeds" "$here/keys" "$here/corpus" "$home"
