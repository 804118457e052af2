#!/usr/bin/env bash
# Debian's chronyd for the tests (a real, third-party NTP server on a loopback port) without
# installing the chrony package: installing it would replace systemd-timesyncd, the time
# daemon of a user's machine. The binary package of the machine's own release is downloaded
# with apt-get (which checks it against the signed index), unpacked with dpkg -x into the
# cache and run once to prove it works here. Prints chronyd's path; a warm cache downloads
# nothing. The tests run it with -x: it never touches the host clock.
set -euo pipefail
cache=${PIOT_CACHE:-$HOME/.cache/pico-w-iot}
dest=$cache/chrony
bin=$dest/root/usr/sbin/chronyd

say() { echo "fetch: $*" >&2; }
die() { echo "fetch: error: $*" >&2; exit 1; }

if [ -x "$bin" ] && "$bin" -v >/dev/null 2>&1; then echo "$bin"; exit 0; fi
mkdir -p "$dest"
download() {
    (cd "$dest" && apt-get -qq -o APT::Sandbox::User="$(id -un)" download chrony) \
        >"$dest/download.log" 2>&1
}
if ! download; then
    # a fresh machine has no package lists yet: refresh them once (nothing is installed)
    say "apt-get update (to download chrony's package, not to install it)"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >&2 || die "apt-get update failed"
    download || die "apt-get download chrony failed: $(tail -n3 "$dest/download.log")"
fi
deb=$(ls -t "$dest"/chrony_*.deb | head -n1)
say "unpack $(basename "$deb") (dpkg -x, not installed)"
rm -rf "$dest/root"
dpkg -x "$deb" "$dest/root"
find "$dest" -maxdepth 1 -name 'chrony_*.deb' ! -name "$(basename "$deb")" -delete
"$bin" -v >/dev/null 2>&1 || die "$bin does not run on this machine: $("$bin" -v 2>&1 | head -n2)"
echo "$bin"
