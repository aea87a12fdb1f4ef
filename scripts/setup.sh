#!/usr/bin/env bash
# Installs what local mode and the tests run for real (Debian packages) and
# the npm dependencies. Run as root on Debian 12 with Node.js 22.18 or newer.
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

# The CLI, npm start and npm run bench run the TypeScript sources through
# Node's type stripping, on by default from Node.js 22.18 (and 23.6).
readonly NODE_MAJOR=22 NODE_MINOR=18
node_version=$(node -p 'process.versions.node' 2>/dev/null || echo none)
IFS=. read -r node_major node_minor _ <<<"$node_version"
if ! [[ "$node_major" =~ ^[0-9]+$ && "$node_minor" =~ ^[0-9]+$ ]] ||
  ((node_major < NODE_MAJOR ||
    (node_major == NODE_MAJOR && node_minor < NODE_MINOR) ||
    (node_major == 23 && node_minor < 6))); then
  echo "sbc-ami needs Node.js ${NODE_MAJOR}.${NODE_MINOR} or newer;" \
    "found ${node_version}" >&2
  exit 2
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup needs root: it installs Debian packages (apt-get)" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${DEBIAN_PACKAGES[@]}"

npm ci --no-audit --no-fund
