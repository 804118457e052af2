#!/usr/bin/env bash
# Fetch every build dependency from Debian trixie into the cache (outside the repo),
# verify pinned hashes, and build the host tools (mpy-cross, picotool) once.
# A warm cache downloads nothing. Prints the resolved paths as shell assignments
# on stdout (the Makefile evaluates them); progress goes to stderr.
#
#   firmware/fetch_deps.sh            fetch into $PIOT_CACHE (default ~/.cache/pico-w-iot)
#   MICROPY_DIR=/path fetch_deps.sh   use a full upstream checkout instead of the tarball
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${PIOT_CACHE:-$HOME/.cache/pico-w-iot}
mkdir -p "$cache"

say() { echo "fetch: $*" >&2; }
die() { echo "fetch: error: $*" >&2; exit 1; }

# ---- private apt configuration: trixie without touching the system's sources ----
apt_dir=$cache/apt
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o "Dir::Cache::archives=$apt_dir/archives" -o APT::Sandbox::User=root
          -o Debug::NoLocking=1)
apt_ready() {
    local mirror; mirror=$("$here/debian_mirror.sh")
    [ "$(cat "$apt_dir/lists/.updated" 2>/dev/null)" = "$mirror" ] && return 0
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/cache"
    printf 'deb %s %s main\ndeb-src %s %s main\n' "$mirror" "$DEBIAN_SUITE" \
        "$mirror" "$DEBIAN_SUITE" > "$apt_dir/sources.list"
    say "apt update ($DEBIAN_SUITE from $mirror, private lists)"
    apt-get "${apt_opts[@]}" -qq update >&2 || die "apt update for $DEBIAN_SUITE from $mirror failed"
    echo "$mirror" > "$apt_dir/lists/.updated"
}

# Download one file of a source package (the .orig tarball alone: some .dsc answer 404 here)
# and check its SHA-256 against the pin, or against apt's signed index when unpinned.
fetch_orig() {  # package file-glob [sha256]
    local pkg=$1 pattern=$2 want=${3:-} dest=$cache/src line url name sha
    mkdir -p "$dest"
    name=$(cd "$dest" && ls $pattern 2>/dev/null | head -n1 || true)
    if [ -z "$name" ]; then
        apt_ready
        line=$(apt-get "${apt_opts[@]}" source --print-uris "$pkg" 2>/dev/null \
               | while read -r u n rest; do [[ $n == $pattern ]] && echo "$u $n $rest"; done \
               | head -n1) || true
        [ -n "$line" ] || die "no $pattern in Debian $DEBIAN_SUITE source package $pkg"
        url=$(echo "$line" | cut -d"'" -f2); name=$(echo "$line" | awk '{print $2}')
        sha=$(echo "$line" | awk '{print $4}' | sed 's/^SHA256://')
        [ -n "$want" ] || want=$sha
        say "download $name"
        curl -fsSL --retry 3 -o "$dest/$name.part" "$url" || die "download of $url failed"
        mv "$dest/$name.part" "$dest/$name"
    fi
    if [ -n "$want" ]; then
        sha=$(sha256sum "$dest/$name" | cut -d' ' -f1)
        [ "$sha" = "$want" ] || { rm -f "$dest/$name";
            die "$name: SHA-256 mismatch (got $sha, pinned $want); the file was removed"; }
    fi
    echo "$dest/$name"
}

# Download an arch-all binary package and unpack it with dpkg -x (never dpkg -i trixie packages).
fetch_deb() {  # package version
    local pkg=$1 ver=$2 out=$cache/deb/$1
    if [ ! -f "$out/.unpacked-$ver" ]; then
        apt_ready
        mkdir -p "$cache/deb"
        (cd "$cache/deb" && apt-get "${apt_opts[@]}" -qq download "$pkg=$ver" >&2) \
            || die "download of $pkg=$ver failed"
        rm -rf "$out"; dpkg -x "$cache/deb/${pkg}_${ver//:/%3a}_all.deb" "$out"
        touch "$out/.unpacked-$ver"
    fi
    echo "$out"
}

unpack_once() {  # tarball destination
    local tarball=$1 dest=$2
    if [ ! -f "$dest/.unpacked" ]; then
        say "unpack $(basename "$tarball")"
        rm -rf "$dest"; mkdir -p "$dest"
        tar -xf "$tarball" -C "$dest" --strip-components=1
        touch "$dest/.unpacked"
    fi
}

# ---- MicroPython ----
if [ -n "${MICROPY_DIR:-}" ]; then
    MICROPY_DIR=$(cd "$MICROPY_DIR" 2>/dev/null && pwd) || die "MICROPY_DIR=$MICROPY_DIR does not exist"
    for f in py/mpconfig.h ports/rp2/CMakeLists.txt ports/unix/Makefile mpy-cross/Makefile; do
        [ -f "$MICROPY_DIR/$f" ] || die "MICROPY_DIR=$MICROPY_DIR is not a MicroPython tree (no $f)"
    done
    upstream=1
else
    tarball=$(fetch_orig micropython "$MICROPY_ORIG" "$MICROPY_SHA256")
    MICROPY_DIR=$cache/micropython-$MICROPY_VERSION
    unpack_once "$tarball" "$MICROPY_DIR"
    upstream=0
fi

# ---- pico-sdk and TinyUSB: upstream checkouts bring their own submodules ----
if [ "$upstream" = 1 ] && [ -f "$MICROPY_DIR/lib/pico-sdk/pico_sdk_init.cmake" ]; then
    PICO_SDK_PATH=$MICROPY_DIR/lib/pico-sdk
else
    PICO_SDK_PATH=$(fetch_deb pico-sdk-source "$PICO_SDK_DEB_VERSION")/usr/src/pico-sdk
    tusb=$(fetch_deb tinyusb-source "$TINYUSB_DEB_VERSION")/usr/src/tinyusb
    export PICO_TINYUSB_PATH=$tusb
    # rp2's CMakeLists always takes TinyUSB from MICROPY_DIR/lib/tinyusb (empty in the tarball).
    if [ "$upstream" = 0 ] && [ ! -f "$MICROPY_DIR/lib/tinyusb/src/tusb.h" ]; then
        rm -rf "$MICROPY_DIR/lib/tinyusb"; ln -s "$tusb" "$MICROPY_DIR/lib/tinyusb"
    fi
fi

# ---- Mbed TLS: the tarball's lib/mbedtls is empty; upstream has the submodule ----
if [ ! -f "$MICROPY_DIR/lib/mbedtls/include/mbedtls/ssl.h" ]; then
    [ "$upstream" = 0 ] || die "MICROPY_DIR has no lib/mbedtls: run 'git submodule update --init lib/mbedtls'"
    mbed=$(fetch_orig mbedtls "mbedtls_${MBEDTLS_SERIES}.*.orig.tar.*")
    rm -rf "$MICROPY_DIR/lib/mbedtls"
    unpack_once "$mbed" "$MICROPY_DIR/lib/mbedtls"
fi
# The sanity checks want a micropython-lib; our manifests never require() from it.
if [ ! -e "$MICROPY_DIR/lib/micropython-lib/README.md" ] && [ "$upstream" = 0 ]; then
    mkdir -p "$MICROPY_DIR/lib/micropython-lib"
    echo "placeholder: this build requires nothing from micropython-lib" > "$MICROPY_DIR/lib/micropython-lib/README.md"
fi

# ---- host tools, built once ----
if [ ! -x "$MICROPY_DIR/mpy-cross/build/mpy-cross" ]; then
    say "build mpy-cross"
    make -s -C "$MICROPY_DIR/mpy-cross" -j"$(nproc)" >&2 || die "mpy-cross build failed"
fi

picotool_bin=$cache/picotool-install/picotool/picotool
if [ ! -x "$picotool_bin" ]; then
    if command -v picotool >/dev/null 2>&1 && [ "$upstream" = 1 ]; then
        picotool_bin=$(command -v picotool)
    else
        src=$(fetch_orig picotool "$PICOTOOL_ORIG" "$PICOTOOL_SHA256")
        unpack_once "$src" "$cache/picotool-src"
        say "build picotool (about 40 s)"
        cmake -S "$cache/picotool-src" -B "$cache/picotool-build" -DUSE_PRECOMPILED=false \
            -DPICO_SDK_PATH="$PICO_SDK_PATH" -DCMAKE_INSTALL_PREFIX="$cache/picotool-install" \
            -DPICOTOOL_FLAT_INSTALL=1 -DCMAKE_BUILD_TYPE=Release >"$cache/picotool-build.log" 2>&1 \
            && cmake --build "$cache/picotool-build" -j"$(nproc)" >>"$cache/picotool-build.log" 2>&1 \
            && cmake --install "$cache/picotool-build" >>"$cache/picotool-build.log" 2>&1 \
            || die "picotool build failed, see $cache/picotool-build.log"
        [ -x "$picotool_bin" ] || die "picotool built but not found at $picotool_bin"
    fi
fi
picotool_dir=$(dirname "$picotool_bin")

# ---- the radio: cyw43-driver and lwIP into a Wi-Fi tree of their own ----
# The Debian tree stays as Debian ships it (the radio-less build uses it); the Wi-Fi tree is a
# hard-linked copy of it with the two libraries unpacked into lib/, where ports/rp2 expects them.
wifi_dir=
if [ "$upstream" = 1 ]; then
    # A full checkout brings its own submodules (or the board says what is missing).
    wifi_dir=$MICROPY_DIR
elif [ "${IOTLIB_WIRELESS:-ON}" != OFF ]; then
    wifi_dir=$cache/micropython-$MICROPY_VERSION-wifi
    if [ ! -f "$wifi_dir/.tree-ready" ]; then
        say "make the Wi-Fi tree (hard links to $MICROPY_DIR)"
        rm -rf "$wifi_dir"; mkdir -p "$wifi_dir"
        cp -al "$MICROPY_DIR/." "$wifi_dir/" || die "could not make $wifi_dir"
        rm -rf "$wifi_dir/lib/cyw43-driver" "$wifi_dir/lib/lwip"  # the tarball's empty submodule folders
        touch "$wifi_dir/.tree-ready"
    fi
    "$here/fetch_wifi.sh" "$wifi_dir"
fi
cat <<EOF
MICROPY_DIR=$MICROPY_DIR
MICROPY_WIFI_DIR=$wifi_dir
MICROPY_UPSTREAM=$upstream
PICO_SDK_PATH=$PICO_SDK_PATH
PICO_TINYUSB_PATH=${PICO_TINYUSB_PATH:-}
PICOTOOL=$picotool_bin
PICOTOOL_DIR=$picotool_dir
EOF
