"""The build's own inputs: bad ones stop it with a one-line reason, a warm cache downloads nothing."""
import os
import shutil
import subprocess

from conftest import ROOT

BUILD_SH = str(ROOT / "firmware" / "build.sh")
FETCH_SH = str(ROOT / "firmware" / "fetch_deps.sh")


def run(cmd, **env):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **env))


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if "error" in line]


def test_unknown_variant_is_refused_before_building():
    proc = run([BUILD_SH, "rp2"], VARIANTS="RELAYS HEATERS")
    assert proc.returncode != 0
    assert error_lines(proc) == [
        "build: error: unknown variant 'HEATERS' (boards/PICO_W_IOT has: RELAYS SENSORS )"]


def test_unknown_target_is_refused():
    proc = run([BUILD_SH, "esp32"])
    assert proc.returncode != 0
    assert "unknown target 'esp32'" in proc.stderr


def test_micropy_dir_that_is_not_micropython_is_refused(tmp_path):
    (tmp_path / "py").mkdir()
    proc = run([FETCH_SH], MICROPY_DIR=str(tmp_path))
    assert proc.returncode != 0
    assert error_lines(proc) == [
        "fetch: error: MICROPY_DIR=%s is not a MicroPython tree (no py/mpconfig.h)" % tmp_path]
    proc = run([FETCH_SH], MICROPY_DIR=str(tmp_path / "missing"))
    assert "does not exist" in proc.stderr and proc.returncode != 0


def test_tampered_tarball_is_refused_and_removed(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    tarball = src / "micropython_1.25.0+ds.orig.tar.xz"
    tarball.write_bytes(b"not the release we pinned")
    proc = run([FETCH_SH], PIOT_CACHE=str(tmp_path))
    assert proc.returncode != 0
    [line] = error_lines(proc)
    assert "micropython_1.25.0+ds.orig.tar.xz: SHA-256 mismatch" in line
    assert "7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea" in line
    assert not tarball.exists()


def test_warm_cache_downloads_nothing(deps):
    # With every proxy pointing at a closed port, any download would fail the run.
    closed = "http://127.0.0.1:9"
    proc = run([FETCH_SH], http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed,
               HTTPS_PROXY=closed)
    assert proc.returncode == 0, proc.stderr
    assert "download" not in proc.stderr and "apt update" not in proc.stderr
    assert "MICROPY_DIR=%s" % deps["MICROPY_DIR"] in proc.stdout


def test_upstream_checkout_without_mbedtls_names_the_submodule(tmp_path, deps):
    # A MicroPython checkout whose submodules were not initialised gets told what to run.
    tree = tmp_path / "micropython"
    for path in ("py/mpconfig.h", "ports/rp2/CMakeLists.txt", "ports/unix/Makefile",
                 "mpy-cross/Makefile"):
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(deps["MICROPY_DIR"], path), tree / path)
    proc = run([FETCH_SH], MICROPY_DIR=str(tree))
    assert proc.returncode != 0
    assert "git submodule update --init lib/mbedtls" in proc.stderr


def test_release_build_refuses_the_development_ota_key():
    proc = run([BUILD_SH, "unix"], IOTLIB_RELEASE="1")
    assert proc.returncode != 0
    assert error_lines(proc) == ["build: error: IOTLIB_RELEASE is set but the images would "
                                 "trust the development OTA key: set IOTLIB_OTA_KEY"]


def test_ota_key_that_is_not_a_p256_public_key_is_refused(tmp_path):
    bad = tmp_path / "public.raw"
    bad.write_bytes(b"\x04" + bytes(10))
    proc = run([BUILD_SH, "unix"], IOTLIB_OTA_KEY=str(bad))
    assert proc.returncode != 0
    [line] = error_lines(proc)
    assert "is not a raw P-256 public key" in line
