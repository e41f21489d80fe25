#!/usr/bin/env bash
# Install what fwrel needs to build and test, from Debian 12's packages.
set -euo pipefail
PACKAGES=(
    build-essential cmake pkg-config git
    libssl-dev libyaml-dev libjansson-dev libcmocka-dev
    libarchive-dev libgit2-dev libgpgme-dev libp11-kit-dev p11-kit softhsm2 gnupg
    faketime xxd openssl time man-db procps python3 python3-yaml chromium dpkg-dev
    libmbedtls-dev gcc-riscv64-unknown-elf mender-artifact
)
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "Installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
