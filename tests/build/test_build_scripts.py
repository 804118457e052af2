"""The build's own inputs: bad ones stop it with a one-line reason, a warm cache downloads nothing."""
import os
import shutil
import subprocess

import pytest

from harness.run import ROOT

pytestmark = pytest.mark.host

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


# ---- the radio's libraries: cyw43-driver and lwIP, pinned, verified before unpacking ----
FETCH_WIFI = str(ROOT / "firmware" / "fetch_wifi.sh")
SHARED_DEPS = ROOT.parent / "shared" / "deps"


def empty_micropython_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "py").mkdir(parents=True)
    (tree / "py" / "mpconfig.h").write_text("")
    return tree


def test_wifi_snapshot_with_another_sha256_is_refused_and_nothing_unpacked(tmp_path):
    tree = empty_micropython_tree(tmp_path)
    sources = tmp_path / "deps"
    sources.mkdir()
    (sources / "cyw43-driver-dd75682.tar.gz").write_bytes(b"a driver we did not pin")
    proc = run([FETCH_WIFI, str(tree)], IOTLIB_WIFI_SOURCES=str(sources))
    assert proc.returncode != 0
    [line] = error_lines(proc)
    assert "cyw43-driver-dd75682.tar.gz: SHA-256 mismatch" in line
    assert "b61d43ea12362f35d85ebe2717f942c0cc149e7dce947e852b8aaad2965d1865" in line
    assert not (tree / "lib").exists()


def test_wifi_snapshots_unpack_once_into_the_tree(tmp_path):
    tree = empty_micropython_tree(tmp_path)
    proc = run([FETCH_WIFI, str(tree)], IOTLIB_WIFI_SOURCES=str(SHARED_DEPS))
    assert proc.returncode == 0, proc.stderr
    assert (tree / "lib" / "cyw43-driver" / "src" / "cyw43.h").is_file()
    assert (tree / "lib" / "cyw43-driver" / "firmware").is_dir()  # the CYW43439 blob
    assert (tree / "lib" / "lwip" / "src" / "include" / "lwip" / "init.h").is_file()
    assert proc.stderr.count("SHA-256 verified") == 2
    again = run([FETCH_WIFI, str(tree)], IOTLIB_WIFI_SOURCES=str(SHARED_DEPS))
    assert again.returncode == 0 and again.stderr == ""


def test_without_snapshots_the_pinned_commit_is_cloned_or_the_error_says_where(tmp_path):
    # A reachable repository that lacks the pinned commit: refused, and the message names
    # both the commit and the snapshot that would do instead.
    tree = empty_micropython_tree(tmp_path)
    repo = tmp_path / "cyw43-driver.git"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t",
                    "commit", "-q", "--allow-empty", "-m", "not the pinned commit"], check=True)
    proc = run([FETCH_WIFI, str(tree)], IOTLIB_WIFI_SOURCES=str(tmp_path / "none"),
               CYW43_DRIVER_GIT_URL=str(repo))
    assert proc.returncode != 0
    assert "cloning cyw43-driver at dd7568229f3bf7a37737b9e1ef250c26efe75b23" in proc.stderr
    [line] = [line for line in error_lines(proc) if line.startswith("fetch: error")]
    assert "could not fetch cyw43-driver dd7568229f3bf7a37737b9e1ef250c26efe75b23" in line
    assert "cyw43-driver-dd75682.tar.gz" in line
    assert not (tree / "lib" / "cyw43-driver" / "src").exists()


# ---- the Debian mirror is the machine's own ----
MIRROR_SH = str(ROOT / "firmware" / "debian_mirror.sh")


def test_debian_mirror_is_read_from_the_machines_apt_sources(tmp_path):
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example.org/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example.org/debian-security\nSuites: bookworm-security\n")
    env = {"APT_ETC": str(tmp_path), "DEBIAN_MIRROR": ""}
    assert run([MIRROR_SH], **env).stdout.strip() == "http://mirror.example.org/debian"
    # A one-line sources.list is read too (and first, as apt lists it first).
    (tmp_path / "sources.list").write_text(
        "# local\ndeb [arch=amd64] http://apt.internal:3142/debian bookworm main\n")
    assert run([MIRROR_SH], **env).stdout.strip() == "http://apt.internal:3142/debian"
    # DEBIAN_MIRROR wins over both.
    env["DEBIAN_MIRROR"] = "http://other.example/debian"
    assert run([MIRROR_SH], **env).stdout.strip() == "http://other.example/debian"
    # Nothing configured: Debian's own redirector.
    assert run([MIRROR_SH], APT_ETC=str(tmp_path / "empty"),
               DEBIAN_MIRROR="").stdout.strip() == "http://deb.debian.org/debian"
