#!/usr/bin/env bash
# Install the pinned Microdot from PyPI into build/vendor (frozen by manifest.py, never committed).
# The wheel is cached, so a warm build downloads nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${PIOT_CACHE:-$HOME/.cache/pico-w-iot}/pypi
dest=$here/../build/vendor
wheel=$cache/microdot-$MICRODOT_VERSION-py3-none-any.whl
if [ ! -f "$wheel" ]; then
    mkdir -p "$cache"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$cache" "microdot==$MICRODOT_VERSION" \
        || { echo "vendor: error: could not download microdot==$MICRODOT_VERSION from PyPI" >&2; exit 1; }
fi
if [ ! -f "$dest/microdot/.version-$MICRODOT_VERSION" ]; then
    rm -rf "$dest/microdot"; mkdir -p "$dest"
    python3 -m zipfile -e "$wheel" "$dest/wheel-tmp"
    mv "$dest/wheel-tmp/microdot" "$dest/microdot"; rm -rf "$dest/wheel-tmp"
    touch "$dest/microdot/.version-$MICRODOT_VERSION"
fi
