"""AuthManager verifies API tokens made by PyJWT and refuses every forged or stale one."""
import base64
import json
import time

import pytest

import jwt as pyjwt

from harness.run import run_unix
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix

API_KEY = "tenant-api-key-" + "0123456789abcdef" * 4


def claims(**over):
    now = int(time.time())
    body = {"sub": "alice", "tenant": "acme", "namespace": "plant1", "role": "operator",
            "permissions": ["relays:read", "relays:write", "sensors:read"], "iss": "fleet",
            "aud": "iotlib", "iat": now, "exp": now + 600}
    body.update(over)
    return body


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def authorize_all(tokens, permission="relays:write", roles=None):
    code = """
import json
from iotlib.auth_manager import AuthManager
auth = AuthManager("device_key", tenant="acme", namespace="plant1", api_key=%r)
roles = %r
if roles: auth.set_roles(roles)
for name, token in %r:
    ok, reason, c = auth.authorize(token, %r)
    print(json.dumps([name, ok, reason]))
""" % (API_KEY, roles, list(tokens.items()), permission)
    out = run_unix(code)
    return {name: (ok, reason) for name, ok, reason in map(json.loads, out.splitlines())}


def test_pyjwt_tokens_accepted_and_forgeries_refused():
    now = int(time.time())
    good = pyjwt.encode(claims(), API_KEY, algorithm="HS256")
    head, body, sig = good.split(".")
    tampered_body = b64(dict(claims(), role="admin"))
    results = authorize_all({
        "good": good,
        "alg_none": b64({"alg": "none", "typ": "JWT"}) + "." + body + ".",
        "alg_hs512": pyjwt.encode(claims(), API_KEY, algorithm="HS512"),
        "expired": pyjwt.encode(claims(exp=now - 120, iat=now - 700), API_KEY),
        "not_yet_valid": pyjwt.encode(claims(nbf=now + 600), API_KEY),
        "wrong_audience": pyjwt.encode(claims(aud="someone-else"), API_KEY),
        "wrong_issuer": pyjwt.encode(claims(iss="evil"), API_KEY),
        "wrong_tenant": pyjwt.encode(claims(tenant="globex"), API_KEY),
        "wrong_namespace": pyjwt.encode(claims(namespace="plant2"), API_KEY),
        "tampered": head + "." + tampered_body + "." + sig,
        "wrong_key": pyjwt.encode(claims(), "another-tenant-key-0123456789abcd"),
        "garbage": "not.a.token",
        "viewer_writes": pyjwt.encode(claims(role="viewer"), API_KEY),
        "unknown_role": pyjwt.encode(claims(role="root"), API_KEY),
        "skew_ok": pyjwt.encode(claims(exp=now - 10), API_KEY),
    })
    assert results["good"] == (True, "ok")
    assert results["skew_ok"] == (True, "ok")  # within the 30 s clock-skew tolerance
    assert results["alg_none"] == (False, "algorithm")
    assert results["alg_hs512"] == (False, "algorithm")
    assert results["expired"] == (False, "expired")
    assert results["not_yet_valid"] == (False, "not_yet_valid")
    assert results["wrong_audience"] == (False, "audience")
    assert results["wrong_issuer"] == (False, "issuer")
    assert results["wrong_tenant"] == (False, "tenant")
    assert results["wrong_namespace"] == (False, "namespace")
    assert results["tampered"] == (False, "signature")
    assert results["wrong_key"] == (False, "signature")
    assert results["garbage"][0] is False
    assert results["viewer_writes"] == (False, "forbidden")
    assert results["unknown_role"] == (False, "unknown_role")


def test_roles_from_configuration_override_defaults():
    token = pyjwt.encode(claims(role="viewer", permissions=None), API_KEY)
    results = authorize_all({"viewer": token}, roles={"viewer": ["relays:read", "relays:write"]})
    assert results["viewer"] == (True, "ok")


def test_tokens_issued_on_device_verify_in_pyjwt_and_back():
    out = run_unix("""
from iotlib.auth_manager import AuthManager
auth = AuthManager("k", tenant="acme", namespace="plant1", api_key=%r)
t = auth.issue("bob", "admin", ttl_s=60)
print(t)
print(auth.authorize(t, "ota:admin")[:2])
""" % API_KEY).splitlines()
    decoded = pyjwt.decode(out[0], API_KEY, algorithms=["HS256"], audience="iotlib",
                           issuer="fleet")
    assert decoded["role"] == "admin" and decoded["tenant"] == "acme"
    assert out[1] == "(True, 'ok')"


def test_device_key_file_hot_reload_and_token_expiry(tmp_path):
    (tmp_path / "device.key").write_text("first-key\n")
    out = run_unix("\n" + device_script(__file__, "device_key_hot_reload.py"), cwd=str(tmp_path)).splitlines()
    assert out == ["first-key", "tok False", "None", "second-key tok2"]


def test_verified_token_cache_never_outlives_the_token_or_its_key():
    # A verified token is cached until it expires (a repeat skips HMAC/base64/JSON); the
    # cache must not let a forgery, an expired token or a changed key through.
    good = pyjwt.encode(claims(exp=int(time.time()) + 120), API_KEY, algorithm="HS256")
    head, body, sig = good.split(".")
    forged = ".".join((head, b64(claims(role="admin", sub="mallory")), sig))  # same signature
    other = pyjwt.encode(claims(sub="bob"), "another-tenant-key-" + "9" * 40, algorithm="HS256")
    out = run_unix(device_script(__file__, "verified_token_cache.py"),
                   env=script_env(api_key=API_KEY, good=good, forged=forged, other=other))
    r = json.loads(out.splitlines()[-1])
    assert r[0] == r[1] == [True, "ok", "alice"]
    assert r[2][:2] == [False, "signature"]
    assert r[3][:2] == [False, "forbidden"]
    assert r[4][:2] == [False, "expired"]
    assert r[5] == [True, "ok", "alice"]
    assert r[6][:2] == [False, "signature"] and r[7] == [True, "ok", "bob"]
    assert r[8] == 8
