"""Shared test setup. Each area keeps its fixtures in ``tests/fixtures/<area>.py``; all are loaded here."""

from pathlib import Path

pytest_plugins = sorted(
    f"fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)
