#!/usr/bin/env bash
# Build the images: firmware/build.sh [unix] [qemu] [rp2]   (no argument: all three)
#
#   VARIANTS="RELAYS SENSORS"   rp2 variants of boards/PICO_W_IOT to build
#   MICROPY_DIR=/path           a full upstream MicroPython checkout instead of Debian's tarball
#   IOTLIB_WIRELESS=ON|OFF      force the Wi-Fi driver on or off (default: on when MICROPY_DIR has it)
#   IOTLIB_BUILD=/path          where the images go (default: build/ in this repo)
#   IOTLIB_LOADER=ON|OFF        rp2: build the OTA image loader and link the application after it (default ON; OFF: plain image, no loader)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/versions.env"
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(unix qemu rp2)
VARIANTS=${VARIANTS:-RELAYS SENSORS}
jobs=$(nproc)
out=${IOTLIB_BUILD:-$root/build}

die() { echo "build: error: $*" >&2; exit 1; }
for t in "${targets[@]}"; do
    case $t in unix|qemu|rp2) ;; *) die "unknown target '$t' (choose from unix, qemu, rp2)";; esac
done
for v in $VARIANTS; do
    [ -f "$root/boards/PICO_W_IOT/mpconfigvariant_$v.cmake" ] \
        || die "unknown variant '$v' (boards/PICO_W_IOT has: $(cd "$root/boards/PICO_W_IOT" && ls mpconfigvariant_*.cmake | sed 's/mpconfigvariant_//; s/.cmake//' | tr '\n' ' '))"
done

"$here/install_toolchain.sh"
deps=$("$here/fetch_deps.sh") || exit 1
eval "$deps"
"$here/vendor_microdot.sh"
if [ "$MICROPY_UPSTREAM" = 0 ]; then
    # The tarball has no git metadata: name the release, or the banner takes this repo's describe.
    export MICROPY_GIT_TAG=v$MICROPY_VERSION MICROPY_GIT_HASH=debian-ds
fi
mkdir -p "$out"

# Run a make-based port build quietly; on failure show the errors and where the log is.
make_port() {  # log-file make-arguments...
    local log=$1; shift
    mkdir -p "$(dirname "$log")"
    if ! make -C "$MICROPY_DIR/ports/$1" -j"$jobs" "${@:2}" >"$log" 2>&1; then
        grep -E "error|Error" "$log" | head -n 20 >&2
        die "$1 build failed, full log in $log"
    fi
}

build_unix() {
    echo "build: unix simulation binary" >&2
    make_port "$out/unix.log" unix VARIANT_DIR="$root/firmware/unix-sim" BUILD="$out/unix" \
        PROG=micropython USER_C_MODULES="$root/c_modules" FROZEN_MANIFEST="$root/firmware/unix-sim/manifest.py" \
        MICROPY_PY_BTREE=0
    echo "build: $out/unix/micropython" >&2
}

build_qemu() {
    echo "build: qemu MPS2_AN385 image" >&2
    make_port "$out/qemu.log" qemu BOARD=MPS2_AN385 BUILD="$out/qemu" \
        USER_C_MODULES="$root/c_modules" FROZEN_MANIFEST=
    echo "build: $out/qemu/firmware.elf" >&2
}

build_rp2() {
    local dir=$out/rp2 wireless=()
    [ "$MICROPY_UPSTREAM" = 0 ] || dir=$out/rp2-upstream
    [ -z "${IOTLIB_WIRELESS:-}" ] || wireless=(-DIOTLIB_WIRELESS="$IOTLIB_WIRELESS")
    echo "build: rp2 PICO_W_IOT variants: $VARIANTS" >&2
    cmake -S "$root" -B "$dir" -DMICROPY_DIR="$MICROPY_DIR" -DPICO_SDK_PATH="$PICO_SDK_PATH" \
        -Dpicotool_DIR="$PICOTOOL_DIR" -DIOTLIB_VARIANTS="${VARIANTS// /;}" "${wireless[@]}" \
        -DIOTLIB_LOADER="${IOTLIB_LOADER:-ON}" >/dev/null
    if ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
        grep -E "error|Error" "$dir/build.log" | head -n 20 >&2
        die "rp2 build failed, full log in $dir/build.log"
    fi
    grep -E "^size:" "$dir/build.log" >&2
    for v in $VARIANTS; do
        [ -f "$dir/PICO_W_IOT-$v.uf2" ] || die "no UF2 for $v"
        echo "build: $dir/PICO_W_IOT-$v.uf2" >&2
    done
}

for t in "${targets[@]}"; do "build_$t"; done
