#!/usr/bin/env bash
# Print the Debian mirror to fetch from: DEBIAN_MIRROR when set, else the first Debian archive in
# the machine's own apt sources (one-line .list or deb822 .sources), so users behind their own
# mirror are served; deb.debian.org as the last resort. APT_ETC points elsewhere for tests.
set -euo pipefail
if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    exit 0
fi
etc=${APT_ETC:-/etc/apt}
uri=$(cat "$etc"/sources.list "$etc"/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; break } }' \
      | grep -E '/debian/?$' | head -n1 || true)
[ -n "$uri" ] || uri=$(cat "$etc"/sources.list.d/*.sources 2>/dev/null \
      | awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }' \
      | grep -E '/debian/?$' | head -n1 || true)
echo "${uri:-http://deb.debian.org/debian}"
