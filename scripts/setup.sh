#!/usr/bin/env bash
# Installs what local mode and the tests run for real (Debian packages) and
# the npm dependencies. Run as root on Debian 12 with Node.js 22 or newer.
set -euo pipefail

cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  kamailio
  kamailio-tls-modules
  rtpengine-daemon
  sipsak
  nftables
  iproute2
  debootstrap
  packer
  shellcheck
  openssl
  openssh-server
  ca-certificates
  unzip
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup needs root: it installs Debian packages (apt-get)" >&2
  exit 2
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 22 ]; then
  echo "sbc-ami needs Node.js 22 or newer; found $(node --version 2>/dev/null || echo none)" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${DEBIAN_PACKAGES[@]}"

npm ci --no-audit --no-fund
