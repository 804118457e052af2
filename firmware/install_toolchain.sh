#!/usr/bin/env bash
# Install the bookworm toolchain with apt, only what is missing (a warm machine installs nothing).
set -euo pipefail
packages=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
          qemu-system-arm libffi-dev libusb-1.0-0-dev pkg-config curl xz-utils cmake make
          chromium  # chromium: the console's browser tests (driven by Playwright, no downloaded browser)
          wrk)  # wrk: the REST API bench's load generator (ci/bench/bench_relays_api.py)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "toolchain: apt-get install ${missing[*]}" >&2
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
