#!/usr/bin/env bash
# Removes what belongs to the build machine rather than to the image: SSH
# host keys (each instance makes its own at boot, sbc-ssh-host-keys), the
# machine id, package caches, cloud-init state, shell histories and the
# staged files. Run after hardening, before validation.
set -euo pipefail

readonly STAGING_DIR="${SBC_STAGING_DIR:-/tmp/sbc-ami}"

log() {
  printf '==> scrub: %s\n' "$*"
}

log 'removing SSH host keys'
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub

# An empty machine-id makes systemd generate a new one on first boot.
log 'emptying the machine id'
if [[ -e /etc/machine-id ]]; then
  : >/etc/machine-id
fi
rm -f /var/lib/dbus/machine-id

log 'cleaning package caches and lists'
apt-get -q clean
rm -rf /var/lib/apt/lists/*

if command -v cloud-init >/dev/null 2>&1; then
  log 'cleaning cloud-init state and logs'
  cloud-init clean --logs
fi

log 'removing shell histories and the staged files'
rm -f /root/.bash_history /home/*/.bash_history
rm -rf "$STAGING_DIR"
