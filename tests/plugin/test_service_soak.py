"""A bounded soak: jobs submitted (by path and by upload) while the engine is killed with SIGKILL and
restarted several times, with an outside program reading the job database all along. At the end every accepted
job is either done or failed with a clear reason, none is missing, and nothing lies outside the job
folders."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

from fixtures.service import write_timeline

from captionbridge.plugin.service.client import EngineError

ROUNDS = 4
JOBS_PER_ROUND = 6
ENGINE_FILES = {
    "token",
    "service.json",
    "jobs.sqlite3",
    "jobs.sqlite3-wal",
    "jobs.sqlite3-shm",
    "engine.lock",
    "jobs",
}


class OutsideReader(threading.Thread):
    """What a backup or a curious user does: open the database, read, check it, close; again and again."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db, self.stop, self.reads, self.problems = db, threading.Event(), 0, []

    def run(self):
        while not self.stop.wait(0.03):
            if not self.db.exists():
                continue
            try:
                con = sqlite3.connect(str(self.db), timeout=1)
                try:
                    con.execute("SELECT COUNT(*) FROM jobs").fetchone()
                    if self.reads % 10 == 0:
                        result = con.execute("PRAGMA quick_check").fetchone()[0]
                        if result != "ok":
                            self.problems.append(result)
                    self.reads += 1
                finally:
                    con.close()
            except sqlite3.OperationalError:  # busy, or the engine has not made the table yet
                pass


def test_kill_restart_soak_loses_no_job(engine_factory, tmp_path):
    rng = random.Random(13)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    eng = engine_factory("soak", workers=1, env={"TMPDIR": str(tmpdir)})
    accepted: dict[str, str] = {}
    reader = OutsideReader(eng.config / "jobs.sqlite3")
    reader.start()
    try:
        for round_no in range(ROUNDS):
            client = eng.start()
            with_own_db = None
            try:
                client.submit(eng.config / "jobs.sqlite3", {})
            except EngineError as exc:
                with_own_db = exc.status
            assert with_own_db == 422
            for k in range(JOBS_PER_ROUND):
                clips = [f"r{round_no} j{k} c{n}" for n in range(rng.randint(1, 4))]
                timeline = write_timeline(
                    tmp_path / f"r{round_no}_{k}.otio", clips, delay=rng.choice([0, 0.05, 0.2])
                )
                job = client.upload(timeline, {"formats": ["json"]}) if k % 2 else client.submit(timeline, {})
                accepted[job["id"]] = " ".join(clips)
                if k == JOBS_PER_ROUND // 2:
                    time.sleep(rng.uniform(0, 0.4))
            time.sleep(rng.uniform(0.05, 0.5))
            eng.kill()  # SIGKILL, mid-queue, often mid-job
        client = eng.start()
        deadline = time.monotonic() + 120
        final = {}
        for job_id in accepted:
            status = client.wait(job_id, timeout=max(1.0, deadline - time.monotonic()), interval=0.05)
            final[job_id] = status
        eng.stop()
    finally:
        reader.stop.set()
        reader.join(5)
    assert reader.reads > 20 and reader.problems == []
    assert len(final) == ROUNDS * JOBS_PER_ROUND
    for job_id, status in final.items():
        assert status["state"] in ("succeeded", "failed"), status
        if status["state"] == "failed":
            assert status["error"]["code"] == "interrupted" and status["error"]["message"], status
    succeeded = [j for j, s in final.items() if s["state"] == "succeeded"]
    assert len(succeeded) >= len(final) // 2
    # nothing outside the job folders: the config folder holds the engine's own files, jobs/ one folder per
    # job
    assert {p.name for p in eng.config.iterdir()} <= ENGINE_FILES
    assert {p.name for p in (eng.config / "jobs").iterdir()} <= set(accepted)
    for folder in (eng.config / "jobs").iterdir():
        assert not (folder / "out.partial").exists() and not (folder / "scratch").exists()
    assert list(tmpdir.iterdir()) == []
