"""No job record is lost: the engine never opens its own files as input, the store notices and repairs a
deleted write-ahead log, and a job folder whose row is gone is restored, never deleted.

Background (issue 13): closing any descriptor of a SQLite file drops every POSIX lock the process holds on it.
The engine used to open its own ``jobs.sqlite3`` when a client named it as ``timeline_path``; the next outside
opener (a backup, ``sqlite3 ... 'pragma integrity_check'``) then deleted the live ``-wal``, and every later
commit went into a deleted file, lost at the next crash.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.service import demo_job, write_timeline

from captionbridge.plugin.service.client import EngineError
from captionbridge.plugin.service.jobs import JobService
from captionbridge.plugin.service.store import JobStore

OUTSIDE_OPENER = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect(sys.argv[1])\n"
    "assert db.execute('pragma integrity_check').fetchone()[0] == 'ok'\n"
    "print(db.execute('select count(*) from jobs').fetchone()[0])\n"
    "db.close()\n"
)


def outside_open(db: Path) -> int:
    """What a backup tool or ``sqlite3 db 'pragma integrity_check'`` does: open, read, close (another
    process)."""
    done = subprocess.run(
        [sys.executable, "-c", OUTSIDE_OPENER, str(db)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(done.stdout.strip())


def outside_ids(db: Path) -> set[str]:
    code = (
        "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n"
        "print('\\n'.join(r[0] for r in db.execute('select id from jobs')))\ndb.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=30, check=True
    )
    return set(done.stdout.split())


def test_engine_refuses_its_own_files_then_an_outside_opener_and_a_crash_lose_no_job(
    engine_factory, tmp_path
):
    """The issue's reproduction: POST the engine's own database, open it from outside, submit, kill -9,
    restart."""
    eng = engine_factory("own-files", workers=1)
    client = eng.start()
    db = eng.config / "jobs.sqlite3"
    with pytest.raises(EngineError) as err:
        client.submit(db, {})
    assert err.value.status == 422
    assert outside_open(db) == 0  # the outside opener that used to delete the live -wal
    jobs = [
        client.submit(
            write_timeline(tmp_path / f"j{i}.otio", [f"j{i} a", f"j{i} b"], delay=0.4 if i == 0 else 0),
            {"formats": ["json"]},
        )
        for i in range(3)
    ]
    eng.kill()
    client = eng.start()
    for job in jobs:
        assert client.wait(job["id"], timeout=30, interval=0.05)["state"] == "succeeded"
    assert outside_open(db) == 3
    assert Path(f"{db}-wal").exists()
    # refused before anything opened it, whichever way it is named
    link = tmp_path / "innocent.otio"
    link.symlink_to(db)
    for named in (db, Path(f"{db}-wal"), link, eng.config / "token", eng.config / "jobs"):
        with pytest.raises(EngineError) as err:
            client.submit(named, {})
        assert err.value.status == 422 and err.value.code == "timeline_not_found", named
        assert "never reads its own files" in err.value.message and "\n" not in err.value.message
    assert outside_ids(db) == {j["id"] for j in jobs}


def test_media_inside_the_engine_folders_is_refused(engine_factory, tmp_path):
    """A timeline whose clip points at the engine's database fails with a clear reason; the database is
    untouched."""
    eng = engine_factory("own-media", workers=1, job="default:run")
    client = eng.start()
    db = eng.config / "jobs.sqlite3"
    timeline = write_timeline(tmp_path / "sneaky.otio", ["clip"], media=db)
    job = client.submit(timeline, {"formats": ["json"]})
    status = client.wait(job["id"], timeout=120, interval=0.1)
    assert status["state"] == "failed", status
    assert (
        status["error"]["code"] == "bad_input" and "never reads its own files" in status["error"]["message"]
    )
    outside_open(db)
    again = client.submit(write_timeline(tmp_path / "after.otio", ["x"]), {"formats": ["json"]})
    eng.kill()
    client = eng.start()
    assert client.status(again["id"])["id"] == again["id"]


def test_store_repairs_a_deleted_write_ahead_log(tmp_path):
    """Even when something in the process drops the locks, the store notices the deleted log and saves every
    commit."""
    db = tmp_path / "jobs.sqlite3"
    store = JobStore(db)
    try:
        store.add(JobStore.new_id(), "/a.otio", {}, uploaded=False)
        with open(db, "rb"):
            pass  # closing this descriptor drops the store's POSIX locks (the defect's mechanism)
        outside_open(db)
        assert not Path(f"{db}-wal").exists()  # the outside opener took itself for the last user
        later = store.add(JobStore.new_id(), "/b.otio", {}, uploaded=False)
        assert later.id in outside_ids(db)  # not in a deleted file: another process (or a restart) sees it
        assert store.incidents == 1 and store.broken is None
        store.finish(later.id, "succeeded", document={}, files=[])
        assert store.check()
    finally:
        store.close()
    assert len(outside_ids(db)) == 2


def test_store_that_cannot_repair_itself_takes_no_more_work(tmp_path, monkeypatch):
    service = JobService(tmp_path / "data", job_function=demo_job, workers=1)
    try:
        db = service.store.db_path
        with open(db, "rb"):
            pass
        outside_open(db)

        def refuse():
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(service.store, "_connect", refuse)
        with pytest.raises(Exception) as err:
            service.submit(JobStore.new_id(), write_timeline(tmp_path / "t.otio", ["a"]), {}, uploaded=False)
        assert getattr(err.value, "http_status", None) == 503 and "restart the engine" in str(err.value)
    finally:
        monkeypatch.undo()
        service.store.close()


def test_janitor_restores_a_job_whose_row_was_lost_instead_of_deleting_it(tmp_path):
    service = JobService(tmp_path / "data", job_function=demo_job, workers=1, result_ttl=3600)
    service.start()
    try:
        done = service.submit(
            JobStore.new_id(), write_timeline(tmp_path / "d.otio", ["a", "b"]), {}, uploaded=False
        )
        queued_id = JobStore.new_id()
        deadline = time.monotonic() + 30
        while service.get(done.id).state != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        files = service.get(done.id).files
        service.stop()
        service = JobService(tmp_path / "data", job_function=demo_job, workers=1, result_ttl=3600)
        queued = service.submit(queued_id, write_timeline(tmp_path / "q.otio", ["q"]), {}, uploaded=False)
        for job_id in (done.id, queued.id):  # the rows are lost (as a deleted -wal loses them)
            service.store.delete(job_id)
            old = time.time() - 3600
            os.utime(service.job_dir(job_id), (old, old))
        service.expire()
        assert service.job_dir(done.id).is_dir()
        restored = service.get(done.id)
        assert restored.state == "succeeded" and restored.files == files
        assert [c["text"]["en"] for c in service.result(done.id)["cues"]] == ["a", "b"]
        assert service.get(queued.id).state == "queued"
        service.start()
        deadline = time.monotonic() + 30
        while service.get(queued.id).state != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        service.stop()


def test_job_folder_records_how_the_job_ended(tmp_path):
    service = JobService(tmp_path / "data", job_function=demo_job, workers=1)
    service.start()
    try:
        job = service.submit(
            JobStore.new_id(), write_timeline(tmp_path / "r.otio", ["a"]), {}, uploaded=False
        )
        deadline = time.monotonic() + 30
        while service.get(job.id).state != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        record_path = service.job_dir(job.id) / "job.json"
        deadline = time.monotonic() + 5
        while json.loads(record_path.read_text())["state"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        record = json.loads(record_path.read_text())
        assert record["id"] == job.id and record["files"] == ["r.captions.json", "r.en.srt"]
        assert record_path.stat().st_mode & 0o777 == 0o600
        assert service.job_dir(job.id).stat().st_mode & 0o777 == 0o700
    finally:
        service.stop()


def test_purge_removes_what_the_job_put_in_the_shared_cache(tmp_path, monkeypatch):
    from captionbridge.core.speech.transcript_cache import TranscriptCache, media_fingerprint
    from captionbridge.core.storage import cache_root

    monkeypatch.setenv("CAPTIONBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    media = tmp_path / "media.wav"
    media.write_bytes(b"RIFF" + b"\0" * 64)

    def caching_job(timeline, out_dir, options, progress):
        media_fingerprint(media)
        TranscriptCache().put("ef" + "1" * 62, {"words": ["private", "words"]})
        return demo_job(timeline, out_dir, options, progress)

    other = TranscriptCache()
    other.put("aa" + "2" * 62, {"words": ["another job's"]})  # not this job's: stays
    service = JobService(tmp_path / "data", job_function=caching_job, workers=1)
    service.start()
    try:
        job = service.submit(
            JobStore.new_id(), write_timeline(tmp_path / "c.otio", ["a"]), {}, uploaded=False
        )
        deadline = time.monotonic() + 30
        while service.get(job.id).state != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cached = sorted(p.name for p in cache_root().rglob("*.json"))
        assert len(cached) == 3
        service.purge(job.id)
        assert sorted(p.name for p in cache_root().rglob("*.json")) == ["aa" + "2" * 62 + ".json"]
        assert not service.job_dir(job.id).exists()
    finally:
        service.stop()
