#!/usr/bin/env bash
# Hardens the installed system: file modes and owners for the SBC's keys and
# configuration, rtpengine kept away from iptables (nftables is the only
# firewall), and the services enabled for the next boot.
#
# `systemctl enable` works offline, so this runs the same on a booted EC2
# builder and in a chroot without systemd; nothing is started here.
set -euo pipefail

readonly RTPENGINE_DEFAULTS=/etc/default/rtpengine-daemon
readonly UNITS=(
  kamailio.service
  rtpengine-daemon.service
  nftables.service
  chrony.service
  auditd.service
  unattended-upgrades.service
  ssh.service
  sbc-ssh-host-keys.service
  sbc-first-boot.service
  sbc-cert-check.timer
)

log() {
  printf '==> hardening: %s\n' "$*"
}

die() {
  printf '==> hardening: ERROR: %s\n' "$*" >&2
  exit 1
}

# Key and certificate folder: Kamailio reads it as its group, nobody else
# may list it. The key itself arrives at boot (0640 root:kamailio).
log 'TLS folder /etc/kamailio/tls 0750 root:kamailio'
install -d -o root -g kamailio -m 0750 /etc/kamailio/tls

# A rendered file that is not world-readable is read by its service through
# the service's group (DOMAIN: 0640 root:SERVICE).
share_with_service() {
  local dir="$1" group="$2" file
  while IFS= read -r -d '' file; do
    chgrp "$group" "$file"
    log "$file 0640 root:$group"
  done < <(find "$dir" -maxdepth 1 -type f -perm 0640 -print0)
}
share_with_service /etc/kamailio kamailio
share_with_service /etc/rtpengine rtpengine

# Debian's unit adds an iptables rule and loads the kernel module at each
# start; the nftables ruleset already opens the RTP range and rtpengine runs
# in userspace.
log "rtpengine iptables management off ($RTPENGINE_DEFAULTS)"
[[ -f "$RTPENGINE_DEFAULTS" ]] || die "$RTPENGINE_DEFAULTS is missing"
if grep -q '^MANAGE_IPTABLES=' "$RTPENGINE_DEFAULTS"; then
  sed -i 's/^MANAGE_IPTABLES=.*/MANAGE_IPTABLES=no/' "$RTPENGINE_DEFAULTS"
else
  printf 'MANAGE_IPTABLES=no\n' >>"$RTPENGINE_DEFAULTS"
fi

# Nothing under /etc may be writable by group or others.
log 'removing group/world write from /etc'
find /etc -xdev \( -type f -o -type d \) -perm /0022 \
  -exec chmod go-w {} + -exec printf '    fixed %s\n' {} +

log "enabling ${UNITS[*]}"
systemctl enable "${UNITS[@]}"
