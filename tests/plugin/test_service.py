"""The engine service end to end over HTTP: a real `serve` process on loopback, submit, poll, fetch,
cancel."""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest
from fixtures.service import write_timeline

from captionbridge.plugin.service.client import EngineError


def test_submit_poll_fetch(shared_engine, tmp_path):
    client = shared_engine.client
    timeline = write_timeline(tmp_path / "edit one.otio", ["hello there", "second line", "third"])
    job = client.submit(timeline, {"language": "en", "formats": ["srt", "json"], "tracks": ["A1"]})
    assert job["state"] == "queued" and len(job["id"]) == 32
    seen = []
    status = client.wait(job["id"], timeout=30, interval=0.05, on_progress=seen.append)
    assert status["state"] == "succeeded", status
    assert status["progress"] == 100 and status["error"] is None
    assert status["files"] == ["edit one.captions.json", "edit one.en.srt"]
    assert all(0 <= s["progress"] <= 100 for s in seen)
    result = client.result(job["id"])
    assert result["files"] == status["files"]
    assert (
        result["timeline"]["rate"] == "24000/1001" and result["timeline"]["start_timecode"] == "01:00:00:00"
    )
    assert [c["text"]["en"] for c in result["cues"]] == ["hello there", "second line", "third"]
    assert [(c["start_frame"], c["end_frame"]) for c in result["cues"]] == [(0, 48), (48, 96), (96, 144)]
    assert result["cues"][1]["start_timecode"] == "01:00:02:00"
    srt = client.file(job["id"], "edit one.en.srt").decode()
    assert "00:00:02,002 --> 00:00:04,004" in srt and "second line" in srt
    on_disk = json.loads(client.file(job["id"], "edit one.captions.json"))
    assert on_disk["cues"] == result["cues"]
    assert any(j["id"] == job["id"] for j in client.jobs())


def test_upload_timeline_multipart(shared_engine, tmp_path):
    client = shared_engine.client
    timeline = write_timeline(tmp_path / "up.otio", ["uploaded clip"])
    job = client.upload(timeline, {"formats": ["json"]})
    status = client.wait(job["id"], timeout=30, interval=0.05)
    assert status["state"] == "succeeded" and status["files"] == ["up.captions.json"]
    assert client.result(job["id"])["cues"][0]["text"] == {"en": "uploaded clip"}


def test_concurrent_submissions_all_complete(shared_engine, tmp_path):
    client = shared_engine.client
    timelines = [
        write_timeline(tmp_path / f"t{i}.otio", [f"job {i} clip {k}" for k in range(3)], delay=0.02)
        for i in range(10)
    ]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        jobs = list(pool.map(lambda t: client.submit(t, {"formats": ["json"]}), timelines))
    assert len({j["id"] for j in jobs}) == 10
    for i, job in enumerate(jobs):
        status = client.wait(job["id"], timeout=60, interval=0.05)
        assert status["state"] == "succeeded", status
        result = client.result(job["id"])
        assert [c["text"]["en"] for c in result["cues"]] == [
            f"job {i} clip {k}" for k in range(3)
        ]  # no crossing
        assert result["timeline"]["name"] == f"t{i}" and result["files"] == [
            f"t{i}.captions.json"
        ]  # its marker


def test_cancel_running_job_stops_promptly(shared_engine, tmp_path):
    client = shared_engine.client
    timeline = write_timeline(tmp_path / "long.otio", [f"c{i}" for i in range(60)], delay=0.25)
    job = client.submit(timeline, {"formats": ["json", "srt"]})
    deadline = time.monotonic() + 20
    while (status := client.status(job["id"]))["state"] != "running" or status["progress"] <= 0:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["eta_seconds"] is None or status["eta_seconds"] > 0
    t0 = time.monotonic()
    cancelled = client.cancel(job["id"])
    assert cancelled["state"] == "cancelled", cancelled
    assert time.monotonic() - t0 < 2.0
    assert cancelled["error"]["code"] == "cancelled" and cancelled["files"] == []
    with pytest.raises(EngineError) as err:
        client.result(job["id"])
    assert err.value.status == 409 and err.value.code == "cancelled"
    with pytest.raises(EngineError) as err:
        client.cancel(job["id"])
    assert err.value.status == 409 and err.value.code == "job_finished"
    # the worker is free again: a new job runs
    quick = client.submit(write_timeline(tmp_path / "after.otio", ["after"]), {"formats": ["json"]})
    assert client.wait(quick["id"], timeout=30, interval=0.05)["state"] == "succeeded"


def test_cancel_queued_job(engine_factory, tmp_path):
    eng = engine_factory("one-worker", workers=1)
    client = eng.start()
    slow = client.submit(write_timeline(tmp_path / "slow.otio", ["a", "b", "c", "d"], delay=0.5), {})
    queued = client.submit(write_timeline(tmp_path / "queued.otio", ["x"]), {})
    assert client.status(queued["id"])["state"] == "queued"
    assert client.cancel(queued["id"])["state"] == "cancelled"
    assert client.wait(slow["id"], timeout=30, interval=0.05)["state"] == "succeeded"
    assert client.status(queued["id"])["state"] == "cancelled"  # never ran
    assert not (eng.config / "jobs" / queued["id"] / "out").exists()
    purged = client.purge(slow["id"])
    assert purged["state"] == "succeeded"
    with pytest.raises(EngineError) as err:
        client.status(slow["id"])
    assert err.value.status == 404 and err.value.code == "job_not_found"
    assert not (eng.config / "jobs" / slow["id"]).exists()


def test_result_before_finish_is_409(shared_engine, tmp_path):
    client = shared_engine.client
    job = client.submit(write_timeline(tmp_path / "wait.otio", ["a", "b", "c"], delay=0.3), {})
    with pytest.raises(EngineError) as err:
        client.result(job["id"])
    assert err.value.status == 409 and err.value.code == "job_not_finished"
    with pytest.raises(EngineError) as err:
        client.file(job["id"], "wait.en.srt")
    assert err.value.status == 409
    client.cancel(job["id"])


def test_service_json_and_token_file(engine_factory):
    eng = engine_factory("discovery")
    client = eng.start()
    info = json.loads((eng.config / "service.json").read_text())
    assert info == {
        "host": "127.0.0.1",
        "port": info["port"],
        "pid": eng.proc.pid,
        "version": client.health()["version"],
    }
    token_file = eng.config / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert len(eng.token) >= 40
    health = client.health()
    assert health["status"] == "ok" and health["workers"] == 1
    assert eng.stop() == 0
    assert not (eng.config / "service.json").exists()  # removed on clean exit
    client2 = eng.start()  # same token on the next run
    assert client2.token == client.token


def test_results_expire(engine_factory, tmp_path):
    eng = engine_factory("ttl", result_ttl=1.5)
    client = eng.start()
    job = client.submit(write_timeline(tmp_path / "short.otio", ["a"]), {})
    assert client.wait(job["id"], timeout=30, interval=0.05)["state"] == "succeeded"
    assert (eng.config / "jobs" / job["id"] / "out").is_dir()
    deadline = time.monotonic() + 10
    while True:
        try:
            client.status(job["id"])
        except EngineError as exc:
            assert exc.status == 404 and exc.code == "job_not_found"
            break
        assert time.monotonic() < deadline, "result never expired"
        time.sleep(0.2)
    assert not (eng.config / "jobs" / job["id"]).exists()
