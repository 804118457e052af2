"""Full-image updates through OTAUpdateManager on the unix build, against the real fleet-server.

The image is a real application image (the RELAYS build's firmware.bin, linked after the
loader) packed and signed with `firmware/pack_image.py sign` (the staged file: header + deflate
stream) and published with fleet-admin. The unix build has no loader: its image stage
(iotlib.ota.image.ImageStage without _iotimage) puts the file in place as on the device
(`ota/image.z`), so these tests cover download -> verify -> stage -> reset and the refusals;
the swap itself is tested in rp2040py (test_image.py, test_image_rp2.py,
test_image_wifi.py).
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from harness.run import BUILD, ROOT, run_unix
from iot_sign import keygen, load_private_key, sign_manifest
from harness.ota_fleet import IMAGE_BOOT, OtaFleet

sys.path.insert(0, str(ROOT / "firmware"))
import pack_image as P  # noqa: E402

pytestmark = pytest.mark.unix

APP_SIZE = P.L["APP_SIZE"]

class ImageFleet(OtaFleet):
    boot_script = IMAGE_BOOT

    def boot(self, *steps, **cfg):
        out = self.run_boot(*steps, **cfg)
        return [json.loads(l[7:]) for l in out.splitlines() if l.startswith("RESULT ")], out

    def sign_image(self, app, version, min_version=None):
        """With the CLI, as a release would: firmware/pack_image.py sign."""
        out = self.tmp / ("image-%s" % version)
        cmd = [sys.executable, str(ROOT / "firmware" / "pack_image.py"), "sign", "--key",
               self.key["private.pem"], "--version", version, "--out", str(out), str(app)]
        if min_version:
            cmd[-1:-1] = ["--min-version", min_version]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return out.read_bytes(), json.loads(out.with_name(out.name + ".json").read_text())

    def staged(self):
        """The staged file's bytes, or None."""
        p = self.root / "image.z"
        return p.read_bytes() if p.exists() else None

    def ranges(self):
        """The Range headers the fleet-server logged, in order (its JSON access log)."""
        out = []
        for line in (self.tmp / "server.log").read_text().splitlines():
            if line.startswith("{") and '"range"' in line:
                out.append(json.loads(line)["range"])
        return out

    def part(self):
        """The partial download's bytes, or None."""
        p = self.root / "download.part"
        return p.read_bytes() if p.exists() else None

    def set_mode(self, mode):
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "image_mode").write_text(mode)


@pytest.fixture
def fleet(tmp_path):
    f = ImageFleet(tmp_path)
    yield f
    f.close()


@pytest.fixture(scope="module")
def app():
    path = BUILD / "rp2" / "RELAYS" / "firmware.bin"
    if not path.exists():
        pytest.fail("%s is missing: build it with `firmware/build.sh rp2`" % path)
    return path


def test_image_downloads_verifies_and_stages_then_resets(fleet, app):
    blob, m = fleet.sign_image(app, "1.1.0", min_version="1.0.0")
    assert m["kind"] == "image" and m["size"] == len(blob) < app.stat().st_size  # compressed
    fleet.publish(blob, m)
    res, out = fleet.boot("check")
    assert "RESET" in out, out
    assert fleet.staged() == blob  # in place for the loader, as downloaded
    assert "ota.installed" in fleet.audit() and '"slot":"image"' in fleet.audit()
    assert not (fleet.root / "a").exists() and fleet.part() is None
    assert len(fleet.ranges()) == (len(blob) + 4095) // 4096


def test_image_refusals_stage_nothing(fleet, app, tmp_path):
    blob, m = fleet.sign_image(app, "1.1.0")
    unsigned = fleet.publish(blob, dict(m, signature="00"))
    other = keygen(str(tmp_path / "attacker"))
    key = load_private_key(fleet.key["private.pem"])
    wrong = dict(fleet.publish(blob, sign_manifest(load_private_key(other["private.pem"]), "image",
                                                   "1.2.0", None, blob)))
    evil = blob[:-4] + b"evil"  # tampered after signing: the signature covers the old hash
    tampered = fleet.publish(evil, dict(m, version="1.3.0", sha256=hashlib.sha256(evil).hexdigest()))
    big = os.urandom(APP_SIZE + 4096)  # signed, but larger than the application region
    oversized = fleet.publish(big, sign_manifest(key, "image", "1.4.0", None, big))
    old = fleet.publish(*fleet.sign_image(app, "0.9.0"))
    needs = fleet.publish(*fleet.sign_image(app, "1.5.0", min_version="1.2.0"))
    raw = app.read_bytes()  # signed, but the bare firmware.bin, not a staged-image file
    not_staged = fleet.publish(raw, sign_manifest(key, "image", "1.6.0", None, raw))
    relabelled = P.stage_file(raw, "1.0.5")  # a good file whose header names another version
    relabel = fleet.publish(relabelled, sign_manifest(key, "image", "1.7.0", None, relabelled))
    res, out = fleet.boot(unsigned, wrong, tampered, oversized, old, needs, "metrics", not_staged, relabel)
    assert [r.get("reason") for r in res[:6]] == [
        "unsigned", "bad_signature", "bad_signature", "oversized", "downgrade", "min_version"], res
    assert str(APP_SIZE) in res[3]["detail"]
    assert "iot_ota_download_bytes 0" in res[6]["text"]  # all refused before downloading
    assert res[7]["reason"] == "bad_image" and "format-2" in res[7]["detail"], res[7]
    assert res[8]["reason"] == "bad_image" and "1.0.5" in res[8]["detail"], res[8]
    assert out.count("ALARM") == 8 and "RESET" not in out
    assert fleet.audit().count("ota.refused") == 8
    assert fleet.ranges() == ["bytes=0-4095"] * 2  # the header is in the first chunk: no more asked
    assert fleet.staged() is None and fleet.part() is None


def test_image_bytes_that_do_not_match_the_signed_hash_are_not_staged(fleet, app):
    blob, m = fleet.sign_image(app, "1.1.0")
    fleet.publish(blob, m)
    other = blob[:1000] + bytes(255 - b for b in blob[1000:1010]) + blob[1010:]
    decoy = fleet.publish(other, dict(m, sha256=hashlib.sha256(other).hexdigest()))
    res, out = fleet.boot(dict(m, url=decoy["url"]))
    assert res[0]["reason"] == "bad_hash" and "ALARM" in out and "RESET" not in out
    assert fleet.staged() is None and fleet.part() is None


def test_image_trial_confirms_through_commit_and_reports_boot_mode(fleet):
    fleet.set_mode("trial")  # what the loader reports after a swap (simulated: no loader)
    offer = {"kind": "image", "version": "2.0.0", "size": 10, "sha256": "00", "signature": "00",
             "url": "/api/artifacts/x"}
    res, out = fleet.boot("state", "rollback", offer, "commit", healthy=False)
    assert res[0]["image_mode"] == "trial" and res[0]["image_trial_boots"] == 1 and res[0]["trial"]
    assert res[1]["reason"] == "image_trial"
    assert res[2]["reason"] == "on_trial"
    assert res[3]["reason"] == "not_ready" and "RESET" not in out
    res, out = fleet.boot("commit")
    assert res == [] and "RESET" in out  # confirmed, then the reset that the loader records
    assert (fleet.root / "image_mode").read_text() == "normal"
    assert "ota.committed" in fleet.audit()
    res, out = fleet.boot("state")
    assert res[0]["image_mode"] == "normal" and not res[0]["trial"]


def test_image_trial_that_never_gets_healthy_resets_at_the_deadline(fleet):
    fleet.set_mode("trial")
    res, out = fleet.boot("trial", healthy=False, deadline=1)
    assert "RESET" in out and "ota_trial_failed" in out
    assert "ota.trial_failed" in fleet.audit()


def test_image_download_resumes_with_range_after_the_link_drops(fleet, app):
    blob, m = fleet.sign_image(app, "1.1.0")
    fleet.publish(blob, m)
    # poll + 3 chunks, then the link is lost
    res, out = fleet.boot("check", cut_after=4)
    assert res[0]["reason"] == "interrupted" and "RESET" not in out
    assert fleet.part() == blob[:3 * 4096] and fleet.staged() is None
    assert fleet.ranges() == ["bytes=0-4095", "bytes=4096-8191", "bytes=8192-12287"]
    # the next boot re-hashes the 3 chunks it has and asks for the 4th
    res, out = fleet.boot("check")
    assert "RESET" in out, out
    assert fleet.ranges()[3] == "bytes=12288-16383" and "bytes=0-4095" not in fleet.ranges()[3:]
    assert len(fleet.ranges()) == (len(blob) + 4095) // 4096
    assert fleet.staged() == blob and fleet.part() is None


def test_image_resume_still_checks_the_hash_and_drops_a_corrupted_part(fleet, app):
    blob, m = fleet.sign_image(app, "1.1.0")
    fleet.publish(blob, m)
    fleet.boot("check", cut_after=3)
    part = fleet.root / "download.part"
    data = bytearray(part.read_bytes())
    data[5000] ^= 0xFF  # a downloaded chunk changed behind the record's back
    part.write_bytes(bytes(data))
    res, out = fleet.boot("check")
    assert res[0]["reason"] == "bad_hash" and "RESET" not in out
    assert fleet.staged() is None and fleet.part() is None
    res, out = fleet.boot("check")  # starts over from byte 0, and stages the image
    assert "RESET" in out and fleet.ranges()[-((len(blob) + 4095) // 4096)] == "bytes=0-4095"
    assert fleet.staged() == blob


def test_image_partial_download_of_another_version_is_discarded(fleet, app):
    old, m_old = fleet.sign_image(app, "1.1.0")
    fleet.publish(old, m_old)
    fleet.boot("check", cut_after=3)
    assert fleet.part() == old[:2 * 4096]
    blob, m = fleet.sign_image(app, "1.2.0")  # the same image, signed as a newer version
    fleet.publish(blob, m)
    res, out = fleet.boot("check")
    assert "RESET" in out, out
    assert fleet.ranges()[2] == "bytes=0-4095"  # not resumed from the 1.1.0 partial
    assert fleet.staged()[56:72].rstrip(b"\0") == b"1.2.0"  # the header's version


# ---- the layout's numbers on the device: generated from firmware/loader/layout.h ----------

sys.path.insert(0, str(ROOT / "firmware" / "loader"))
import layout as LAYOUT  # noqa: E402  firmware/loader/layout.py: layout.h for Python

LAYOUT_PY = ROOT / "firmware" / "loader" / "layout.py"


def test_frozen_layout_is_layout_h():
    """The device's numbers are layout.h's: the frozen iotlib.ota.layout (which the build
    generates) and what the image stage uses agree with the header, as pack_image.py does."""
    h = LAYOUT.read()
    out = run_unix("""
import iotlib.ota.layout as L, iotlib.ota.image as S
print(repr((L.APP_SIZE, L.STAGE_HDR_SIZE, L.STAGE_WINDOW, L.STAGE_FORMAT, L.MAX_TRIAL_BOOTS)))
print(repr((S.APP_SIZE, S.HEADER_SIZE, S.WINDOW, S.FORMAT, S.ImageStage.APP_SIZE)))
print(repr((S.MAGIC, S.ImageStage("ota").path, L.STAGE_PATH)))
""").strip().splitlines()
    numbers = (h["APP_SIZE"], h["STAGE_HDR_SIZE"], h["STAGE_WINDOW"], h["STAGE_FORMAT"])
    assert out[0] == repr(numbers + (h["MAX_TRIAL_BOOTS"],))
    assert out[1] == repr(numbers + (h["APP_SIZE"],))
    assert out[2] == repr((h["STAGE_MAGIC"].encode() + b"\0", h["STAGE_PATH"], h["STAGE_PATH"]))
    assert (P.L["APP_SIZE"], P.FLASH_SIZE) == (h["APP_SIZE"], h["FLASH_SIZE"])
    # what firmware/build.sh generated (always in this repo's build/, as the manifest reads it)
    generated = ROOT / "build" / "generated" / "iotlib" / "ota" / "layout.py"
    assert generated.read_text() == LAYOUT.device_module(h)


def test_editing_layout_h_changes_the_generated_numbers(tmp_path):
    """One place to edit: a changed layout.h gives the device module and pack_image.py the
    new numbers; a header that lacks one is refused with its name, and the module already
    generated is left as it was."""
    text = (ROOT / "firmware" / "loader" / "layout.h").read_text()
    edited = tmp_path / "layout.h"
    edited.write_text(text.replace("0x0F0000u", "0x0E0000u").replace("32768u", "16384u"))
    out = tmp_path / "gen" / "layout.py"
    subprocess.run([sys.executable, str(LAYOUT_PY), str(out), "--header", str(edited)], check=True)
    values = {}
    exec(out.read_text(), values)
    assert (values["APP_SIZE"], values["STAGE_WINDOW"]) == (0x0E0000, 16384)
    assert values["STAGE_HDR_SIZE"] == LAYOUT.read()["STAGE_HDR_SIZE"]
    assert P.layout(str(edited))["APP_SIZE"] == 0x0E0000
    before = out.read_text()
    edited.write_text("\n".join(l for l in text.splitlines() if "IOT_STAGE_WINDOW" not in l))
    r = subprocess.run([sys.executable, str(LAYOUT_PY), str(out), "--header", str(edited)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "IOT_STAGE_WINDOW" in r.stderr, r.stderr
    assert out.read_text() == before
