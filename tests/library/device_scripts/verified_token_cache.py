# Run by tests/library/test_auth.py; ARGS: the tenant key and the tokens (good, forged, other).
import json, os
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.auth_manager import AuthManager
auth = AuthManager("device_key", tenant="acme", namespace="plant1", api_key=ARGS["api_key"])
r = []
def check(token, permission="relays:write"):
    ok, reason, c = auth.authorize(token, permission)
    r.append([ok, reason, c.get("sub") if c else None])
check(ARGS["good"]); check(ARGS["good"])          # verified, then from the cache
check(ARGS["forged"])                     # the same signature over another payload
check(ARGS["good"], "admin:config")     # RBAC still runs on a cached token
auth.clock.offset_s = 200     # past exp + leeway (30 s)
check(ARGS["good"])
auth.clock.offset_s = 0
check(ARGS["good"])
auth.api_key = "another-tenant-key-" + "9" * 40  # key rotated: the cached token is void
check(ARGS["good"]); check(ARGS["other"])
for i in range(20):  # many distinct valid tokens: the cache stays bounded
    auth.authorize(auth.issue("u%d" % i, "operator", ttl_s=600 + i), "relays:read")
r.append(len(auth._verified._tokens))
print(json.dumps(r))
