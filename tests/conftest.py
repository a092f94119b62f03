"""Shared test setup. Each area keeps its fixtures in ``tests/fixtures/<area>.py``; all are loaded here."""

from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (``CI=true``, set by ``.ci/run``) a skip is a failure: everything the tests need is installed
    there, so a test that skips is a test that did not run. Elsewhere ``fixtures.paths.absent()`` may skip."""
    from fixtures.paths import in_ci

    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
