"""Application bundles end to end on the unix build, against the real fleet-server on loopback.

Each run of the unix binary is one boot of the device: it calls BundleStore.boot(), imports
the application (`ota_app`, from a bundle or absent = factory code) and drives
OTAUpdateManager through a list of steps. Bundles are signed with a fresh key pair by
tools/iot-sign and published with fleet-admin, as an operator would.
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from harness.ota_fleet import FACTORY, OtaFleet, device_env
from harness.run import BUILD, run_unix
from iot_sign import keygen, load_private_key, pack_bundle, sign_manifest

pytestmark = pytest.mark.unix

@pytest.fixture
def fleet(tmp_path):
    f = OtaFleet(tmp_path)
    yield f
    f.close()


def test_install_trial_commit_and_it_sticks(fleet):
    fleet.publish(*fleet.bundle("1.1.0"))
    boot, app, res, out = fleet.boot("check")
    assert app == "factory" and boot["slot"] is None
    assert "RESET" in out, out  # installed, then rebooted
    assert "ota.installed" in fleet.audit()

    fleet.publish(*fleet.bundle("1.2.0"))
    boot, app, res, out = fleet.boot("state", "check", "commit")
    assert app == "1.1.0" and boot["trial"] and boot["boots"] == 1
    assert res[0]["running_version"] == "1.1.0" and res[0]["deadline_left_s"] > 0
    # no second install while on trial: the other slot is the way back
    assert res[1]["reason"] == "on_trial"
    assert res[2] == {"ok": True, "version": "1.1.0"}

    for _ in range(5):  # many boots later: still the committed bundle, no trial
        boot, app, res, out = fleet.boot()
        assert app == "1.1.0" and not boot["trial"] and boot["active_version"] == "1.1.0"
    boot, app, res, out = fleet.boot("check")
    assert "RESET" in out and fleet.boot("commit")[1] == "1.2.0"
    boot, app, res, out = fleet.boot("check")
    assert app == "1.2.0" and res == [{"ok": True, "update": None}]  # nothing newer


def test_next_bundle_goes_to_the_other_slot_and_rollback_returns_to_previous(fleet):
    fleet.publish(*fleet.bundle("1.1.0"))
    fleet.boot("check")
    fleet.boot("commit")
    fleet.publish(*fleet.bundle("1.2.0"))
    boot, app, res, _ = fleet.boot("check")
    assert app == "1.1.0"
    boot, app, res, _ = fleet.boot("commit")
    assert app == "1.2.0" and boot["slot"] != boot["active"]  # trial ran from the other slot
    boot, app, res, _ = fleet.boot("rollback")  # admin steps back from a committed bundle
    assert app == "1.2.0" and res[0]["to"] == "1.1.0"
    boot, app, res, _ = fleet.boot()
    assert app == "1.1.0"
    boot, app, res, _ = fleet.boot("rollback")
    assert res[0]["to"] == FACTORY
    boot, app, res, _ = fleet.boot()
    assert app == "factory"  # the frozen code is the last resort


def test_unhealthy_bundle_rolls_back_at_the_deadline(fleet):
    fleet.publish(*fleet.bundle("1.1.0", healthy=False))
    fleet.boot("check")
    boot, app, res, out = fleet.boot("commit", "trial", deadline=1)
    assert app == "1.1.0" and boot["trial"]
    assert res[0]["ok"] is False and res[0]["reason"] == "not_ready"
    assert "RESET" in out and "ALARM" in out  # rolled back by itself, alarm raised
    boot, app, res, out = fleet.boot("check")
    assert app == "factory"
    assert "deadline" in boot["last_event"]
    # the failed version is offered again by the service but not taken again
    assert res[0]["ok"] is False and res[0]["reason"] == "rolled_back"
    log = fleet.audit()
    assert "ota.commit_refused" in log and "ota.rollback" in log


def test_bundle_that_never_commits_rolls_back_by_boot_count(fleet):
    fleet.publish(*fleet.bundle("1.1.0", healthy=False))
    fleet.boot("check", max_boots=2)
    apps = [fleet.boot(max_boots=2)[1] for _ in range(3)]  # e.g. crashes before commit
    assert apps == ["1.1.0", "1.1.0", "factory"]
    boot = fleet.boot(max_boots=2)[0]
    assert "boot count" in boot["last_event"] and boot["pending"] is None


def test_bundle_that_crashes_on_import_still_rolls_back(fleet):
    blob, m = fleet.bundle("1.1.0")
    blob = pack_bundle({"ota_app.py": b"raise RuntimeError('broken build')\n"})
    priv = load_private_key(fleet.key["private.pem"])
    fleet.publish(blob, sign_manifest(priv, "bundle", "1.1.0", None, blob))
    fleet.boot("check", max_boots=1)
    env = device_env()
    probe = ("from iotlib.ota.bundle import BundleStore\n"
             "print(BundleStore(%r, max_boots=1).boot()['version'])\nimport ota_app\n" % str(fleet.root))
    p = subprocess.run([str(BUILD / "unix" / "micropython"), "-c", probe], env=env,
                       capture_output=True, text=True, timeout=30, cwd=str(fleet.tmp))
    assert p.returncode != 0 and "broken build" in p.stderr and p.stdout.strip() == "1.1.0"
    boot, app, _, _ = fleet.boot(max_boots=1)
    assert app == "factory" and "boot count" in boot["last_event"]


def test_downgrade_and_min_version_are_refused_with_alarm_and_audit(fleet):
    old = fleet.publish(*fleet.bundle("0.9.0"))
    same = fleet.publish(*fleet.bundle(FACTORY))
    needs = fleet.publish(*fleet.bundle("2.0.0", min_version="1.5.0"))
    boot, app, res, out = fleet.boot(old, same, needs)
    assert [r["reason"] for r in res] == ["downgrade", "downgrade", "min_version"]
    assert out.count("ALARM") == 3 and app == "factory"
    log = fleet.audit()
    assert log.count("ota.refused") == 3 and "downgrade" in log and "min_version" in log
    # after committing 1.1.0, 1.0.5 is a downgrade too
    fleet.publish(*fleet.bundle("1.1.0"))
    fleet.boot("check")
    fleet.boot("commit")
    older = fleet.publish(*fleet.bundle("1.0.5"))
    boot, app, res, _ = fleet.boot(older)
    assert app == "1.1.0" and res[0]["reason"] == "downgrade"


def test_unsigned_wrongly_signed_tampered_and_oversized_are_refused(fleet, tmp_path):
    blob, m = fleet.bundle("1.1.0")
    unsigned = fleet.publish(blob, dict(m, signature="00"))
    other = keygen(str(tmp_path / "attacker"))
    wrong = fleet.publish(*fleet.bundle("1.2.0", key=other["private.pem"]))
    # tampered after signing: the service accepts it (hash and size re-computed) but the
    # signature still covers the original hash
    blob3, m3 = fleet.bundle("1.3.0")
    evil = blob3[:-4] + b"evil"
    tampered = fleet.publish(evil, dict(m3, sha256=hashlib.sha256(evil).hexdigest()))
    big = fleet.publish(*fleet.bundle("1.4.0", extra={"big.mpy": os.urandom(300 * 1024)}))
    boot, app, res, out = fleet.boot(unsigned, wrong, tampered, big, "metrics")
    assert [r.get("reason") for r in res[:4]] == ["unsigned", "bad_signature", "bad_signature", "oversized"]
    assert out.count("ALARM") == 4
    metrics = res[4]["text"]
    assert 'iot_ota_refused_total{reason="bad_signature"} 2' in metrics
    assert "iot_ota_download_bytes 0" in metrics  # refused before a byte was downloaded
    assert fleet.boot()[1] == "factory"
    assert not (fleet.root / "a").exists() and not (fleet.root / "b").exists()


def test_bytes_that_do_not_match_the_signed_hash_are_refused(fleet):
    blob_a, m_a = fleet.bundle("1.1.0", compress=False)
    blob_b, m_b = fleet.bundle("1.1.1", compress=False)
    assert len(blob_a) == len(blob_b)
    fleet.publish(blob_a, m_a)
    other = fleet.publish(blob_b, m_b)
    # a correctly signed manifest whose URL serves other bytes of the same size
    boot, app, res, out = fleet.boot(dict(m_a, url=other["url"]))
    assert res[0]["reason"] == "bad_hash" and "ALARM" in out
    assert not (fleet.root / "download.part").exists()


def test_download_resumes_with_range_after_the_link_drops(fleet):
    blob, m = fleet.bundle("1.1.0", compress=False, extra={"pad.mpy": os.urandom(5000)})
    fleet.publish(blob, m)
    # poll + 2 chunks of 1 KiB, then the link is lost
    boot, app, res, out = fleet.boot("check", chunk=1024, cut_after=3)
    assert res[0]["reason"] == "interrupted" and "RESET" not in out
    assert (fleet.root / "download.part").stat().st_size == 2048
    boot, app, res, out = fleet.boot("check", "state", chunk=1024)
    assert "RESET" in out
    boot, app, res, out = fleet.boot("state")
    assert app == "1.1.0" and boot["trial"]


def test_resume_needs_the_same_artefact(fleet):
    """A partial download of another artefact is discarded, not mixed in."""
    fleet.root.mkdir(parents=True)
    (fleet.root / "download.part").write_bytes(b"x" * 100)
    (fleet.root / "download.json").write_text(json.dumps({"sha256": "0" * 64}))
    fleet.publish(*fleet.bundle("1.1.0"))
    boot, app, res, out = fleet.boot("check")
    assert "RESET" in out
    assert fleet.boot()[1] == "1.1.0"


def test_c_verifier_agrees_with_the_host_signer(tmp_path):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    keys = keygen(str(tmp_path / "k"))
    priv = load_private_key(keys["private.pem"])
    msg = b"iotota-v1 statement"
    sig = priv.sign(msg, ec.ECDSA(hashes.SHA256()))
    other = keygen(str(tmp_path / "o"))
    code = """
import _iotota, binascii
u = binascii.unhexlify
raw, der, oth, d, s = u(%r), u(%r), u(%r), u(%r), u(%r)
print(_iotota.verify_p256(raw, d, s), _iotota.verify_p256(der, d, s))
bad = bytearray(d); bad[5] ^= 1
print(_iotota.verify_p256(raw, bytes(bad), s), _iotota.verify_p256(oth, d, s))
for args in ((raw[:64], d, s), (raw, d[:31], s), (raw, d, b"\\x30\\x02\\x00\\x00" * 4), (b"\\x05" + raw[1:], d, s)):
    try:
        _iotota.verify_p256(*args)
        print("accepted")
    except ValueError:
        print("ValueError")
""" % tuple(x.hex() for x in (pathlib.Path(keys["public.raw"]).read_bytes(),
                              pathlib.Path(keys["public.der"]).read_bytes(),
                              pathlib.Path(other["public.raw"]).read_bytes(),
                              hashlib.sha256(msg).digest(), sig))
    assert run_unix(code).split() == ["True", "True", "False", "False"] + ["ValueError"] * 4
