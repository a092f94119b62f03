"""The engine's OpenAPI spec without running it: ``python -m captionbridge.plugin.service.spec [OUT.json]``.

The same document is served at ``GET /openapi.json``; a copy is kept in ``plugin/service/openapi.json`` for
the editors' scripts and panels.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def openapi_spec() -> dict:
    from .app import GuardSettings, create_app
    from .jobs import JobService

    with tempfile.TemporaryDirectory() as tmp:
        service = JobService(Path(tmp), job_function=lambda *a: {}, workers=1)
        try:
            return create_app(service, GuardSettings(token="unused")).openapi()
        finally:
            service.store.close()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    text = json.dumps(openapi_spec(), indent=2, ensure_ascii=False) + "\n"
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
