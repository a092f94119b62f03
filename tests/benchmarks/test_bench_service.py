"""The service benchmark's per-job isolation check (benchmarks/bench_service.py) on a real engine process:
every concurrent job's result carries its own marker (timeline name, file names), and the check does fail when
results are paired with the wrong jobs."""

from __future__ import annotations

import concurrent.futures
import importlib.util

import pytest
from fixtures.paths import REPO
from fixtures.service import write_timeline


@pytest.fixture(scope="module")
def bench_service():
    path = REPO / "benchmarks" / "bench_service.py"
    spec = importlib.util.spec_from_file_location("captionbridge_bench_service", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_concurrent_jobs_each_carry_their_own_marker(bench_service, shared_engine, tmp_path):
    client = shared_engine.client
    paths = [write_timeline(tmp_path / f"report_{i:02d}.otio", [f"clip {i}"], delay=0.05) for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        jobs = list(pool.map(lambda p: client.submit(p, {"formats": ["json", "srt"]}), paths))
    ids = [j["id"] for j in jobs]
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        assert client.wait(job_id, timeout=60, interval=0.05)["state"] == "succeeded"
    report = bench_service.isolation_report(client, ids, paths)
    assert report == {"results_with_their_own_marker": 12, "results_without": []}
    # the same check with results paired to the wrong jobs (what a queue mixing results up would return) fails
    shifted = bench_service.isolation_report(client, ids[1:] + ids[:1], paths)
    assert shifted["results_with_their_own_marker"] == 0 and len(shifted["results_without"]) == 12


def test_marker_needs_the_name_and_every_file(bench_service, tmp_path):
    path = write_timeline(tmp_path / "report_03.otio", ["a"])
    good = {"timeline": {"name": "report_03"}, "files": ["report_03.captions.json", "report_03.en.srt"]}
    assert bench_service.carries_own_marker(good, path)
    assert not bench_service.carries_own_marker({**good, "timeline": {"name": "report_04"}}, path)
    assert not bench_service.carries_own_marker(
        {**good, "files": ["report_03.en.srt", "report_04.en.srt"]}, path
    )
    assert not bench_service.carries_own_marker({**good, "files": []}, path)
