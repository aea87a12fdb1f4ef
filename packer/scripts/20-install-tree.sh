#!/usr/bin/env bash
# Installs the configuration rendered from the SIP profile and the image's
# static files into the root filesystem, owned by root, and records what it
# installed so the validation step can compare the image against it.
#
#   $SBC_STAGING_DIR/rendered  the rendered tree: its modes are final
#   $SBC_STAGING_DIR/files     static files: 0755 when executable, else 0644
#                              (0640 under etc/audit, as auditd wants)
set -euo pipefail

readonly STAGING_DIR="${SBC_STAGING_DIR:-/tmp/sbc-ami}"
readonly RENDERED_DIR="$STAGING_DIR/rendered"
readonly FILES_DIR="$STAGING_DIR/files"
readonly RECORD_DIR=/etc/sbc-ami
readonly RECORD_FILE="$RECORD_DIR/installed-files"

log() {
  printf '==> install-tree: %s\n' "$*"
}

die() {
  printf '==> install-tree: ERROR: %s\n' "$*" >&2
  exit 1
}

# Refuses anything but plain files and directories under the allowed top
# folders, so a tree can never replace a binary or follow a symlink out.
check_tree() {
  local root="$1"
  shift
  local allowed=("$@")
  local entry relative top ok

  [[ -d "$root" ]] || die "$root is missing or not a directory"

  while IFS= read -r -d '' entry; do
    relative="${entry#"$root"/}"
    if [[ -L "$entry" ]] || { [[ ! -f "$entry" ]] && [[ ! -d "$entry" ]]; }; then
      die "$entry: only regular files and directories may be installed"
    fi
    [[ -f "$entry" ]] || continue
    ok=
    for top in "${allowed[@]}"; do
      [[ "$relative" == "$top"/* ]] && ok=1
    done
    [[ -n "$ok" ]] || die "$relative: outside ${allowed[*]}"
  done < <(find "$root" -mindepth 1 -print0)
}

# The mode a static file gets: its executable bit decides, auditd's files
# are not world-readable.
static_mode() {
  local source="$1" relative="$2"
  if [[ "$relative" == etc/audit/* ]]; then
    printf '0640'
  elif [[ -x "$source" ]]; then
    printf '0755'
  else
    printf '0644'
  fi
}

# The mode a rendered file gets: its own, refused when it is setuid, setgid,
# sticky or writable by anyone but root.
rendered_mode() {
  local source="$1" mode
  mode="$(stat -c '%a' "$source")"
  if ((8#$mode & 8#7022)); then
    die "$source: mode $mode is setuid, setgid, sticky or group/world-writable"
  fi
  printf '%04o' "$((8#$mode))"
}

install_tree() {
  local root="$1" kind="$2"
  local source relative mode target count=0

  while IFS= read -r -d '' source; do
    relative="${source#"$root"/}"
    if [[ "$kind" == rendered ]]; then
      mode="$(rendered_mode "$source")"
    else
      mode="$(static_mode "$source" "$relative")"
    fi
    target="/$relative"
    install -D -o root -g root -m "$mode" "$source" "$target"
    printf '%s %s %s\n' "$mode" "$(sha256sum <"$target" | cut -d' ' -f1)" \
      "$target" >>"$RECORD_FILE.new"
    count=$((count + 1))
  done < <(find "$root" -type f -print0 | sort -z)

  log "installed $count $kind files from $root"
}

check_tree "$RENDERED_DIR" etc
check_tree "$FILES_DIR" etc usr/local/sbin

install -d -o root -g root -m 0755 "$RECORD_DIR"
rm -f "$RECORD_FILE.new"
install_tree "$RENDERED_DIR" rendered
install_tree "$FILES_DIR" static
chmod 0644 "$RECORD_FILE.new"
mv -f "$RECORD_FILE.new" "$RECORD_FILE"

log "recorded modes and digests in $RECORD_FILE"
