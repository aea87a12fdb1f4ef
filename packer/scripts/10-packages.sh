#!/usr/bin/env bash
# Installs the SBC's Debian packages and the base image's pending updates.
#
# No service starts during the build, on EC2 or in a chroot: a policy-rc.d
# refuses every start while apt runs, and each service first starts on the
# instance's own boot, after sbc-first-boot has filled in its addresses.
set -euo pipefail

readonly PACKAGES=(
  kamailio
  kamailio-tls-modules
  rtpengine-daemon
  nftables
  chrony
  unattended-upgrades
  auditd
  openssh-server
  systemd
  systemd-sysv
  iproute2
  # sbc-first-boot and sbc-cert-check: IMDSv2, signed AWS calls, PEM checks
  curl
  jq
  ca-certificates
  openssl
)
readonly POLICY_RC_D=/usr/sbin/policy-rc.d

log() {
  printf '==> packages: %s\n' "$*"
}

# A policy-rc.d already in place (the chroot build writes one) is left as is.
if [[ ! -e "$POLICY_RC_D" ]]; then
  cat >"$POLICY_RC_D" <<'EOF'
#!/bin/sh
# Written by the image build: no service starts while packages install.
exit 101
EOF
  chmod 0755 "$POLICY_RC_D"
  trap 'rm -f "$POLICY_RC_D"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
# The base image's own apt timers may hold the lock for a while after boot.
# No fsync per package: a build that crashes is thrown away, and the disk is
# synced when the builder stops before its snapshot.
apt_options=(
  -y
  -q
  -o DPkg::Lock::Timeout=600
  -o Dpkg::Options::=--force-confdef
  -o Dpkg::Options::=--force-confold
  -o Dpkg::Options::=--force-unsafe-io
)

log 'updating package lists'
apt-get "${apt_options[@]}" update

log 'applying pending updates of the base image'
apt-get "${apt_options[@]}" full-upgrade

log "installing ${PACKAGES[*]}"
apt-get "${apt_options[@]}" install --no-install-recommends "${PACKAGES[@]}"

log 'installed versions'
dpkg-query -W -f '    ${Package} ${Version}\n' "${PACKAGES[@]}"
