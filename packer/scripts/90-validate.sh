#!/usr/bin/env bash
# The last step of the build: checks the finished image against the policy
# and prints one line per check, expected against actual. Any mismatch fails
# the build, so an image that breaks the policy is never registered.
#
# Runs on the EC2 builder and in the local chroot (there inside a private
# network namespace with only loopback up). Nothing is started: Kamailio and
# nftables only check their configuration.
set -euo pipefail

readonly RECORD_FILE=/etc/sbc-ami/installed-files
readonly KAMAILIO_CFG=/etc/kamailio/kamailio.cfg
readonly RTPENGINE_CONF=/etc/rtpengine/rtpengine.conf
readonly NFTABLES_CONF=/etc/nftables.conf
readonly CHRONY_SOURCES=/etc/chrony/sources.d/amazon-time-sync.sources
readonly AUDITD_CONF=/etc/audit/auditd.conf
readonly RTPENGINE_DEFAULTS=/etc/default/rtpengine-daemon
# Stand-in addresses: the real ones come from IMDSv2 at boot, and
# `kamailio -c` needs addresses that exist where it runs.
readonly CHECK_ADDRESS=127.0.0.1

failures=0
checks=0

row() {
  printf '%-48.48s %-26.26s %-26.26s %s\n' "$@"
}

# check NAME EXPECTED ACTUAL: equal strings pass.
check() {
  local name="$1" expected="$2" actual="$3" verdict=ok
  checks=$((checks + 1))
  if [[ "$expected" != "$actual" ]]; then
    verdict=MISMATCH
    failures=$((failures + 1))
  fi
  row "$name" "$expected" "${actual:-<none>}" "$verdict"
}

# check_match NAME PATTERN ACTUAL: an extended regular expression that
# must match the whole actual value.
check_match() {
  local name="$1" pattern="$2" actual="$3" verdict=ok
  checks=$((checks + 1))
  if [[ ! "$actual" =~ ^($pattern)$ ]]; then
    verdict=MISMATCH
    failures=$((failures + 1))
  fi
  row "$name" "$pattern" "${actual:-<none>}" "$verdict"
}

section() {
  printf '\n-- %s\n' "$*"
}

# ------------------------------------------------------------- config checks

section 'configuration syntax'
kamailio_status=0
kamailio_output="$(
  SBC_PRIVATE_IP="$CHECK_ADDRESS" SBC_PUBLIC_IP="$CHECK_ADDRESS" \
    kamailio -c -f "$KAMAILIO_CFG" 2>&1
)" || kamailio_status=$?
check 'kamailio -c (addresses 127.0.0.1)' 'exit 0' "exit $kamailio_status"
[[ "$kamailio_output" == *'config file ok'* ]] ||
  printf '%s\n' "$kamailio_output" | tail -n 20
nft_status=0
nft_output="$(nft -c -f "$NFTABLES_CONF" 2>&1)" || nft_status=$?
check "nft -c -f $NFTABLES_CONF" 'exit 0' "exit $nft_status"
[[ -z "$nft_output" ]] || printf '%s\n' "$nft_output" | tail -n 20

# ------------------------------------------------------------------- sysctl

# The value each key has after systemd-sysctl applies every file at boot:
# files ordered by name, /etc replacing a same-named file of /usr/lib, the
# last assignment of a key winning.
declare -A sysctl_value=()
declare -A sysctl_file=()
load_sysctl() {
  local dir file name line key value
  local sp='[[:space:]]*'
  local assignment="^$sp-?([^=[:space:]]+)$sp=$sp(.*[^[:space:]])?$sp\$"
  for dir in /usr/lib/sysctl.d /usr/local/lib/sysctl.d /etc/sysctl.d; do
    for file in "$dir"/*.conf; do
      [[ -e "$file" ]] || continue
      sysctl_file["$(basename "$file")"]="$file"
    done
  done
  while IFS= read -r name; do
    [[ -n "$name" ]] || continue
    while IFS= read -r line || [[ -n "$line" ]]; do
      [[ "$line" =~ ^[[:space:]]*([#\;].*)?$ ]] && continue
      [[ "$line" =~ $assignment ]] || continue
      key="${BASH_REMATCH[1]//\//.}"
      value="${BASH_REMATCH[2]}"
      sysctl_value["$key"]="$value"
    done <"${sysctl_file[$name]}"
  done < <(printf '%s\n' "${!sysctl_file[@]}" | LC_ALL=C sort)
}
load_sysctl

section 'sysctl values applied at boot'
while read -r key pattern; do
  check_match "$key" "$pattern" "${sysctl_value[$key]:-}"
done <<'EOF'
net.ipv4.ip_forward 0
net.ipv6.conf.all.forwarding 0
net.ipv4.conf.all.send_redirects 0
net.ipv4.conf.default.send_redirects 0
net.ipv4.conf.all.accept_redirects 0
net.ipv4.conf.default.accept_redirects 0
net.ipv6.conf.all.accept_redirects 0
net.ipv6.conf.default.accept_redirects 0
net.ipv4.conf.all.accept_source_route 0
net.ipv4.conf.default.accept_source_route 0
net.ipv6.conf.all.accept_source_route 0
net.ipv6.conf.default.accept_source_route 0
net.ipv4.conf.all.rp_filter 1|2
net.ipv4.conf.default.rp_filter 1|2
net.ipv4.conf.all.log_martians 1
net.ipv4.conf.default.log_martians 1
net.ipv4.tcp_syncookies 1
kernel.randomize_va_space 2
kernel.yama.ptrace_scope 1
fs.suid_dumpable 0
kernel.sysrq 0
fs.protected_hardlinks 1
fs.protected_symlinks 1
EOF

# ---------------------------------------------------------------- file modes

mode_of() {
  stat -c '%04a' "$1" 2>/dev/null || true
}

section 'installed files: mode and content as installed'
if [[ -f "$RECORD_FILE" ]]; then
  while read -r mode digest path; do
    actual_mode="$(mode_of "$path")"
    actual_digest="$(sha256sum <"$path" 2>/dev/null | cut -d' ' -f1)" || true
    check "$path" "$mode ${digest:0:12}" "${actual_mode:-missing} ${actual_digest:0:12}"
  done <"$RECORD_FILE"
else
  check "$RECORD_FILE" 'present' 'missing'
fi

section 'owners, modes and readers'
owner_of() {
  stat -c '%U:%G' "$1" 2>/dev/null || printf 'missing'
}
check '/etc/kamailio/tls' '0750 root:kamailio' \
  "$(mode_of /etc/kamailio/tls) $(owner_of /etc/kamailio/tls)"
check 'files in /etc/kamailio/tls (fetched at boot)' '0' \
  "$(find /etc/kamailio/tls -mindepth 1 2>/dev/null | wc -l || true)"
if [[ -f "$RECORD_FILE" ]]; then
  not_root="$(cut -d' ' -f3 "$RECORD_FILE" | xargs -r stat -c '%U %n' |
    awk '$1 != "root" { print $2 }' | tr '\n' ' ')" || true
  check 'installed files not owned by root' '' "${not_root% }"
fi
writable="$(find /etc -xdev \( -type f -o -type d \) -perm /0022 2>/dev/null |
  head -n 5 | tr '\n' ' ')" || true
check 'group/world-writable under /etc' '' "${writable% }"
for reader in kamailio:"$KAMAILIO_CFG" kamailio:/etc/kamailio/tls.cfg \
  rtpengine:"$RTPENGINE_CONF"; do
  user="${reader%%:*}"
  file="${reader#*:}"
  if runuser -u "$user" -- test -r "$file" 2>/dev/null; then
    check "$user reads $file" 'readable' 'readable'
  else
    check "$user reads $file" 'readable' 'unreadable'
  fi
done

# ------------------------------------------------------------------- secrets

section 'no private key, password or cloud credential in the image'
# Pseudo file systems and runtime folders are not part of the image.
scan_files() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
    -o -path /tmp/sbc-ami-validate \) -prune -o -type f -size -4M -print0
}
pem_keys="$(scan_files | xargs -0 -r grep -IlE \
  '^-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----' 2>/dev/null | head -n 5 |
  tr '\n' ' ')" || true
check 'files holding a PEM private key' '' "${pem_keys% }"
aws_keys="$(scan_files | xargs -0 -r grep -IlE \
  '(^|[^A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}([^A-Z0-9]|$)|aws_secret_access_ke[y]' \
  2>/dev/null | head -n 5 | tr '\n' ' ')" || true
check 'files holding an AWS access key' '' "${aws_keys% }"
key_files="$(find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune \
  -o \( -name '*.key' -o -name 'ssh_host_*_key' -o -path '*/.aws/credentials' \) \
  -print 2>/dev/null | head -n 5 | tr '\n' ' ')" || true
check 'key or credential files' '' "${key_files% }"
passwords="$(awk -F: '$2 !~ /^[!*]/ { print $1 }' /etc/shadow |
  tr '\n' ' ')" || true
check 'accounts with a password or none' '' "${passwords% }"

# ---------------------------------------------------------------------- sshd

section 'sshd effective settings'
sshd_tmp="$(mktemp -d /tmp/sbc-ami-validate.XXXXXX)"
made_run_sshd=
if [[ ! -d /run/sshd ]]; then
  mkdir -p /run/sshd
  made_run_sshd=1
fi
cleanup() {
  rm -rf "$sshd_tmp"
  if [[ -n "$made_run_sshd" ]]; then
    rmdir /run/sshd 2>/dev/null || true
  fi
}
trap cleanup EXIT
# sshd -T loads a host key; a throwaway one lives only for this check.
ssh-keygen -q -t ed25519 -N '' -f "$sshd_tmp/host_key" >/dev/null
declare -A sshd_value=()
while read -r key value; do
  sshd_value["$key"]="$value"
done < <(sshd -T -h "$sshd_tmp/host_key" 2>&1 || true)
rm -rf "$sshd_tmp"
while read -r key pattern; do
  check_match "sshd $key" "$pattern" "${sshd_value[$key]:-}"
done <<'EOF'
permitrootlogin no
passwordauthentication no
kbdinteractiveauthentication no
permitemptypasswords no
allowtcpforwarding no
allowagentforwarding no
allowstreamlocalforwarding no
x11forwarding no
permittunnel no
maxauthtries 4
logingracetime [1-9]|[1-5][0-9]|60
EOF

# ------------------------------------------------------------------ services

section 'services enabled for boot'
for unit in kamailio.service rtpengine-daemon.service nftables.service \
  chrony.service auditd.service unattended-upgrades.service \
  sbc-ssh-host-keys.service sbc-first-boot.service sbc-cert-check.timer; do
  check "$unit" enabled "$(systemctl is-enabled "$unit" 2>/dev/null || true)"
done

section 'service settings'
manage_iptables="$(sed -n 's/^MANAGE_IPTABLES=//p' "$RTPENGINE_DEFAULTS" |
  tail -n 1)" || true
check 'rtpengine MANAGE_IPTABLES' no "$manage_iptables"
listen_ng="$(sed -n 's/^[[:space:]]*listen-ng[[:space:]]*=[[:space:]]*//p' \
  "$RTPENGINE_CONF" | tail -n 1)" || true
check_match 'rtpengine listen-ng on loopback' \
  '(127\.0\.0\.1|\[::1\]|localhost):[0-9]+' "$listen_ng"
table="$(sed -n 's/^[[:space:]]*table[[:space:]]*=[[:space:]]*//p' \
  "$RTPENGINE_CONF" | tail -n 1)" || true
check 'rtpengine kernel table (userspace only)' '-1' "$table"
time_source="$(grep -E '^[[:space:]]*server[[:space:]]+169\.254\.169\.123' \
  "$CHRONY_SOURCES" 2>/dev/null | tr -s ' ' | head -n 1)" || true
check_match 'chrony Amazon Time Sync source' \
  'server 169\.254\.169\.123( [a-z0-9]+)*' "$time_source"
check_match 'chrony source options' '.*prefer.*' "$time_source"
check_match 'chrony source iburst' '.*iburst.*' "$time_source"
sourcedir="$(grep -cE '^sourcedir[[:space:]]+/etc/chrony/sources\.d' \
  /etc/chrony/chrony.conf 2>/dev/null)" || true
check 'chrony reads /etc/chrony/sources.d' 1 "$sourcedir"
reboot="$(apt-config dump |
  sed -n 's/^Unattended-Upgrade::Automatic-Reboot "\(.*\)";$/\1/p')" || true
check 'unattended-upgrades automatic reboot' false "$reboot"
periodic="$(apt-config dump |
  sed -n 's/^APT::Periodic::Unattended-Upgrade "\(.*\)";$/\1/p')" || true
check 'unattended-upgrades enabled' 1 "$periodic"
for key in disk_full_action disk_error_action admin_space_left_action; do
  value="$(sed -n "s/^${key}[[:space:]]*=[[:space:]]*//p" "$AUDITD_CONF" |
    tail -n 1)" || true
  check_match "auditd $key (never halts)" \
    '[Ss][Yy][Ss][Ll][Oo][Gg]|[Rr][Oo][Tt][Aa][Tt][Ee]|[Ss][Uu][Ss][Pp][Ee][Nn][Dd]' \
    "$value"
done

printf '\n%d checks, %d mismatches\n' "$checks" "$failures"
if ((failures > 0)); then
  printf 'validation FAILED: the image does not match the policy\n' >&2
  exit 1
fi
printf 'validation passed\n'
