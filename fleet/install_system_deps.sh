#!/usr/bin/env bash
# System packages the fleet tests and benchmarks need (only what is missing; a warm machine installs
# nothing): Debian's PostgreSQL server, which the tests start themselves in a temporary folder.
set -euo pipefail
packages=(postgresql)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "fleet: apt-get install ${missing[*]}" >&2
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
