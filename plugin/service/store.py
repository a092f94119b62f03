"""Jobs and their results in SQLite, so a restart of the service loses nothing.

One row per job. The result document is kept as JSON in the row; the job's files live in ``<data>/jobs/<id>/``
(``input/`` for an uploaded timeline, ``out/`` for what the job wrote). All access goes through one connection
guarded by a lock: the service is one process, and SQLite in WAL mode makes every commit durable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT 'queued',
    progress REAL NOT NULL DEFAULT 0,
    eta_seconds REAL,
    error TEXT,
    error_status INTEGER,
    timeline_path TEXT NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    document TEXT,
    files TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs (state, seq);
"""


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    id: str
    state: str
    stage: str
    progress: float
    eta_seconds: float | None
    error: dict | None
    error_status: int | None
    timeline_path: str
    uploaded: bool
    options: dict
    attempts: int
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    files: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def status(self) -> dict[str, Any]:
        """The public status object of ``GET /v1/jobs/{id}``."""
        return {
            "id": self.id,
            "state": self.state,
            "stage": self.stage,
            "progress": round(max(0.0, min(100.0, self.progress)), 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "error": self.error,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "files": list(self.files),
        }


_COLUMNS = ("id", "state", "stage", "progress", "eta_seconds", "error", "error_status", "timeline_path", "uploaded",
            "options", "attempts", "created_at", "updated_at", "started_at", "finished_at", "files")


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], state=row["state"], stage=row["stage"], progress=row["progress"],
               eta_seconds=row["eta_seconds"], error=json.loads(row["error"]) if row["error"] else None,
               error_status=row["error_status"], timeline_path=row["timeline_path"], uploaded=bool(row["uploaded"]),
               options=json.loads(row["options"]), attempts=row["attempts"], created_at=row["created_at"],
               updated_at=row["updated_at"], started_at=row["started_at"], finished_at=row["finished_at"],
               files=json.loads(row["files"] or "[]"))


class JobStore:
    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        for suffix in ("", "-wal", "-shm"):  # jobs name the user's files: owner-only
            try:
                os.chmod(f"{self.db_path}{suffix}", 0o600)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple = ()) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs {sql}", args).fetchone()
        return _row_to_job(row) if row else None

    def _many(self, sql: str, args: tuple = ()) -> list[Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs {sql}", args).fetchall()
        return [_row_to_job(r) for r in rows]

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def add(self, job_id: str, timeline_path: str, options: dict, uploaded: bool) -> Job:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, seq, state, stage, timeline_path, uploaded, options, created_at, updated_at)"
                " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), 'queued', 'queued', ?, ?, ?, ?, ?)",
                (job_id, timeline_path, int(uploaded), json.dumps(options), now, now))
        return self.get(job_id)  # type: ignore[return-value]

    def get(self, job_id: str) -> Job | None:
        return self._one("WHERE id = ?", (job_id,))

    def document(self, job_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT document FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def list(self, states: tuple[str, ...] = STATES) -> list[Job]:
        marks = ", ".join("?" * len(states))
        return self._many(f"WHERE state IN ({marks}) ORDER BY seq", tuple(states))

    def claim_next(self) -> Job | None:
        """Atomically take the oldest queued job and mark it running (one more attempt)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE jobs SET state = 'running', stage = 'starting', progress = 0, eta_seconds = NULL,"
                        " attempts = attempts + 1, started_at = ?, updated_at = ? WHERE id = ?", (now, now, row[0]))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self.get(row[0]) if row is not None else None

    def set_progress(self, job_id: str, stage: str, progress: float, eta: float | None) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET stage = ?, progress = ?, eta_seconds = ?, updated_at = ?"
                             " WHERE id = ? AND state = 'running'", (stage, progress, eta, time.time(), job_id))

    def finish(self, job_id: str, state: str, *, error: dict | None = None, error_status: int | None = None,
               document: dict | None = None, files: list[str] | None = None, stage: str | None = None) -> None:
        assert state in FINISHED
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = ?, stage = ?, progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END,"
                " eta_seconds = NULL, error = ?, error_status = ?, document = ?, files = ?, finished_at = ?,"
                " updated_at = ? WHERE id = ?",
                (state, stage or state, state, json.dumps(error) if error else None, error_status,
                 json.dumps(document) if document is not None else None, json.dumps(files or []), now, now, job_id))

    def cancel_if_queued(self, job_id: str, error: dict) -> bool:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = 'cancelled', stage = 'cancelled', error = ?, error_status = 409,"
                " finished_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
                (json.dumps(error), now, now, job_id))
            return cur.rowcount == 1

    def requeue(self, job_id: str, stage: str, *, count_attempt: bool = True) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'queued', stage = ?, progress = 0, eta_seconds = NULL, started_at = NULL,"
                " attempts = attempts - ?, updated_at = ? WHERE id = ?",
                (stage, 0 if count_attempt else 1, time.time(), job_id))

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def expired(self, before: float) -> Iterator[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')"
                                    " AND finished_at < ?", (before,)).fetchall()
        return iter([r[0] for r in rows])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {r[0]: r[1] for r in rows}
