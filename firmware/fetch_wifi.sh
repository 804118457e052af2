#!/usr/bin/env bash
# Put the Pico W's radio libraries into a MicroPython tree: firmware/fetch_wifi.sh <tree>
# cyw43-driver and lwIP at the commits MicroPython v1.25.0 pins (versions.env), unpacked into
# <tree>/lib/cyw43-driver and <tree>/lib/lwip where ports/rp2 expects its submodules.
# From the source snapshots in IOTLIB_WIFI_SOURCES (default: ../shared/deps beside the project),
# SHA-256 checked before anything is unpacked; without a snapshot, cloned from upstream at the
# pinned commit (the commit id is the check). A tree already holding a commit is left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
tree=${1:?usage: fetch_wifi.sh <micropython-tree>}
sources=${IOTLIB_WIFI_SOURCES:-$(cd "$here/../.." && pwd)/shared/deps}

say() { echo "fetch: $*" >&2; }
die() { echo "fetch: error: $*" >&2; exit 1; }

fetch_pinned() {  # name commit snapshot sha256 git-url destination
    local name=$1 commit=$2 snapshot=$3 want=$4 url=$5 dest=$6 file=$sources/$3 sha tmp
    [ -f "$dest/.unpacked-$commit" ] && return 0
    if [ -f "$file" ]; then
        sha=$(sha256sum "$file" | cut -d' ' -f1)
        [ "$sha" = "$want" ] || die "$file: SHA-256 mismatch (got $sha, pinned $want); nothing was unpacked"
        say "unpack $snapshot (SHA-256 verified)"
        rm -rf "$dest"; mkdir -p "$dest"
        tar -xzf "$file" -C "$dest" --strip-components=1 || { rm -rf "$dest"; die "unpacking $file failed"; }
    else
        say "no $snapshot in $sources: cloning $name at $commit from $url"
        tmp=$(mktemp -d)
        if ! { git -C "$tmp" init -q && git -C "$tmp" fetch -q --depth 1 "$url" "$commit" \
               && git -C "$tmp" checkout -q FETCH_HEAD; } >&2 2>&1; then
            rm -rf "$tmp"
            die "could not fetch $name $commit from $url (or put $snapshot in IOTLIB_WIFI_SOURCES=$sources)"
        fi
        if [ "$(git -C "$tmp" rev-parse HEAD)" != "$commit" ]; then
            rm -rf "$tmp"; die "$url gave another commit than the pinned $commit"
        fi
        rm -rf "$dest"; mkdir -p "$dest"
        git -C "$tmp" archive HEAD | tar -x -C "$dest"
        rm -rf "$tmp"
    fi
    touch "$dest/.unpacked-$commit"
}

[ -f "$tree/py/mpconfig.h" ] || die "$tree is not a MicroPython tree"
fetch_pinned cyw43-driver "$CYW43_DRIVER_COMMIT" "$CYW43_DRIVER_SNAPSHOT" "$CYW43_DRIVER_SHA256" \
    "${CYW43_DRIVER_GIT_URL:-$CYW43_DRIVER_GIT}" "$tree/lib/cyw43-driver"
fetch_pinned lwip "$LWIP_COMMIT" "$LWIP_SNAPSHOT" "$LWIP_SHA256" "${LWIP_GIT_URL:-$LWIP_GIT}" "$tree/lib/lwip"
