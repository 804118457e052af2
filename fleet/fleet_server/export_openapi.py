"""Print the OpenAPI document with every component enabled: `python -m fleet_server.export_openapi > fleet/openapi.json`."""

from __future__ import annotations

import json
import sys

from .app import create_app
from .settings import Settings


class _NoStorage:
    """Building the document touches no storage; this stands in so export needs no database."""

    def close(self) -> None:
        pass


def openapi_document() -> dict:
    return create_app(Settings(), _NoStorage(), server_secret="").openapi()


def main() -> None:
    json.dump(openapi_document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
