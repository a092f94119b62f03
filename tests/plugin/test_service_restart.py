"""A restart loses nothing: queued jobs resume, an interrupted job is retried once, then failed with its
reason."""

from __future__ import annotations

import time

from fixtures.service import write_timeline


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_job_then_restart_loses_nothing(engine_factory, tmp_path):
    eng = engine_factory("restart", workers=1)
    client = eng.start()
    names = [[f"job{i} clip{k}" for k in range(4)] for i in range(4)]
    jobs = [
        client.submit(
            write_timeline(tmp_path / f"r{i}.otio", names[i], delay=0.3 if i == 0 else 0.02),
            {"formats": ["srt", "json"]},
        )
        for i in range(4)
    ]
    wait_for(lambda: client.status(jobs[0]["id"])["progress"] > 0, what="first job running")
    assert [client.status(j["id"])["state"] for j in jobs[1:]] == ["queued"] * 3
    eng.kill()  # SIGKILL: no cleanup at all
    assert (eng.config / "service.json").exists()  # stale discovery file from the dead process
    assert (eng.config / "jobs" / jobs[0]["id"] / "out.partial").exists()

    client = eng.start()
    for i, job in enumerate(jobs):
        status = client.wait(job["id"], timeout=30, interval=0.05)
        assert status["state"] == "succeeded", status
        assert [c["text"]["en"] for c in client.result(job["id"])["cues"]] == names[i]
    assert not (eng.config / "jobs" / jobs[0]["id"] / "out.partial").exists()
    assert sorted(client.result(jobs[0]["id"])["files"]) == ["r0.captions.json", "r0.en.srt"]


def test_job_that_kills_the_engine_is_retried_once_then_failed(engine_factory, tmp_path):
    eng = engine_factory("crasher", workers=1)
    client = eng.start()
    crasher = client.submit(write_timeline(tmp_path / "crash.otio", ["boom"], crash=True), {})
    after = client.submit(write_timeline(tmp_path / "after.otio", ["fine"]), {})
    eng.proc.wait(20)  # the job took the engine down (like a segfault or the OOM killer)
    try:
        eng.start()
    except RuntimeError as exc:  # the retry can take it down before the client has even connected
        assert "exited with -9" in str(exc), exc
    eng.proc.wait(20)  # the retry takes it down again
    client = eng.start()
    status = client.wait(crasher["id"], timeout=20, interval=0.05)
    assert status["state"] == "failed" and status["error"]["code"] == "interrupted"
    assert "2 attempts" in status["error"]["message"]
    assert client.wait(after["id"], timeout=20, interval=0.05)["state"] == "succeeded"


def test_clean_stop_requeues_running_job(engine_factory, tmp_path):
    eng = engine_factory("graceful", workers=1)
    client = eng.start()
    job = client.submit(write_timeline(tmp_path / "g.otio", [f"c{k}" for k in range(8)], delay=0.2), {})
    wait_for(lambda: client.status(job["id"])["progress"] > 0, what="job running")
    assert eng.stop() == 0
    assert not (eng.config / "service.json").exists()
    client = eng.start()
    status = client.wait(job["id"], timeout=30, interval=0.05)
    assert status["state"] == "succeeded"
    assert len(client.result(job["id"])["cues"]) == 8


def test_second_engine_on_same_data_refused(engine_factory):
    first = engine_factory("shared-data")
    first.start()
    second = engine_factory("shared-data")
    try:
        second.start(timeout=15)
    except RuntimeError as exc:
        assert "already uses the data folder" in str(exc) or "in use" in str(exc)
    else:
        raise AssertionError("a second engine started on the same data folder")
