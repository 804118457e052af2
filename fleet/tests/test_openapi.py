"""The served OpenAPI document is valid and identical to the repo copy; so is the config JSON Schema."""

import json
import subprocess
import sys

from openapi_spec_validator import validate

from fleet_devtools.fleet_harness import FLEET_DIR


def _module_output(module: str) -> dict:
    res = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(res.stdout)


def test_served_document_is_valid_and_matches_repo_copy(server):
    with server.client() as c:
        served = c.get("/openapi.json").json()
    validate(served)
    repo_copy = json.loads((FLEET_DIR / "openapi.json").read_text())
    assert served == repo_copy, "fleet/openapi.json drifted: run python -m fleet_server.export_openapi > fleet/openapi.json"
    assert _module_output("fleet_server.export_openapi") == repo_copy


def test_document_promises_400_not_422():
    doc = json.loads((FLEET_DIR / "openapi.json").read_text())
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "422" not in op["responses"], (method, path)
    assert "400" in doc["paths"]["/api/devices"]["post"]["responses"]


def test_device_config_schema_matches_repo_copy():
    repo_copy = json.loads((FLEET_DIR / "fleet_server" / "device_config.schema.json").read_text())
    assert _module_output("fleet_server.device_config") == repo_copy, (
        "device_config.schema.json drifted: run python -m fleet_server.device_config > "
        "fleet/fleet_server/device_config.schema.json")
    assert repo_copy["additionalProperties"] is False
