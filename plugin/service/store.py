"""Jobs and their results in SQLite, so a restart of the service loses nothing.

One row per job. The result document is kept as JSON in the row; the job's files live in ``<data>/jobs/<id>/``
(``input/`` for an uploaded timeline, ``out/`` for what the job wrote). All access goes through one connection
guarded by a lock: the service is one process, and SQLite in WAL mode makes every commit durable.
"""

from __future__ import annotations

import json
import logging
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

log = logging.getLogger("captionbridge.service")

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


_COLUMNS = (
    "id",
    "state",
    "stage",
    "progress",
    "eta_seconds",
    "error",
    "error_status",
    "timeline_path",
    "uploaded",
    "options",
    "attempts",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "files",
)


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        state=row["state"],
        stage=row["stage"],
        progress=row["progress"],
        eta_seconds=row["eta_seconds"],
        error=json.loads(row["error"]) if row["error"] else None,
        error_status=row["error_status"],
        timeline_path=row["timeline_path"],
        uploaded=bool(row["uploaded"]),
        options=json.loads(row["options"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        files=json.loads(row["files"] or "[]"),
    )


class JobStore:
    """The one connection of this process to the job database, and a watch on its write-ahead log.

    SQLite's WAL mode relies on POSIX locks, and closing *any* descriptor of the database file in this process
    drops them all; another program that opens and closes the database (a backup, ``sqlite3 ... 'pragma
    integrity_check'``) then takes itself for the last user and deletes the live ``-wal``/``-shm``, and every
    later commit would go into a deleted file. The service never opens its own files as input
    (``core.storage.protect_folder``), and ``check()`` (before every write and once a second from the janitor)
    notices a log that is no longer the file on disk: it checkpoints what only the deleted log holds into the
    database file, and opens a fresh connection. If that fails the store is ``broken`` and takes no more work.
    """

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.broken: str | None = None
        self.incidents = 0
        self._db = self._connect()
        with self._lock:
            self._db.executescript(_SCHEMA)
        self._ids = self._file_ids()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the -wal and -shm now
        for suffix in ("", "-wal", "-shm"):  # jobs name the user's files: owner-only
            try:
                os.chmod(f"{self.db_path}{suffix}", 0o600)
            except OSError:
                pass
        return db

    def _file_ids(self) -> tuple:
        ids = []
        for suffix in ("", "-wal", "-shm"):
            try:
                st = os.stat(f"{self.db_path}{suffix}")
                ids.append((st.st_dev, st.st_ino))
            except OSError:
                ids.append(None)
        return tuple(ids)

    def check(self) -> bool:
        """True while the database, its log and its index on disk are the files this connection writes."""
        with self._lock:
            if self.broken is not None:
                return False
            if self._file_ids() == self._ids:
                return True
            self.incidents += 1
            log.error(
                "the job database's write-ahead log %s-wal was deleted or replaced by another program "
                "while the engine was using it; saving what it held into %s",
                self.db_path,
                self.db_path,
            )
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                self._db.close()
                self._db = self._connect()
                self._ids = self._file_ids()
                self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()
            except (sqlite3.Error, OSError) as exc:
                self.broken = (
                    f"the job database {self.db_path} lost its write-ahead log to another program and "
                    f"could not be repaired ({exc}): restart the engine"
                )
                log.error("%s", self.broken)
                return False
            log.warning("job database repaired: every commit is back in %s", self.db_path)
            return True

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            self.check()
            return self._db.execute(sql, args)

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
            self._write(
                "INSERT INTO jobs"
                " (id, seq, state, stage, timeline_path, uploaded, options, created_at, updated_at)"
                " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), 'queued', 'queued',"
                " ?, ?, ?, ?, ?)",
                (job_id, timeline_path, int(uploaded), json.dumps(options), now, now),
            )
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
            self.check()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE jobs SET state = 'running', stage = 'starting', progress = 0, eta_seconds = "
                        "NULL,"
                        " attempts = attempts + 1, started_at = ?, updated_at = ? WHERE id = ?",
                        (now, now, row[0]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self.get(row[0]) if row is not None else None

    def set_progress(self, job_id: str, stage: str, progress: float, eta: float | None) -> None:
        with self._lock:
            self._write(
                "UPDATE jobs SET stage = ?, progress = ?, eta_seconds = ?, updated_at = ?"
                " WHERE id = ? AND state = 'running'",
                (stage, progress, eta, time.time(), job_id),
            )

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        error: dict | None = None,
        error_status: int | None = None,
        document: dict | None = None,
        files: list[str] | None = None,
        stage: str | None = None,
    ) -> None:
        assert state in FINISHED
        now = time.time()
        with self._lock:
            self._write(
                "UPDATE jobs SET state = ?, stage = ?, progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE "
                "progress END,"
                " eta_seconds = NULL, error = ?, error_status = ?, document = ?, files = ?, finished_at = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    state,
                    stage or state,
                    state,
                    json.dumps(error) if error else None,
                    error_status,
                    json.dumps(document) if document is not None else None,
                    json.dumps(files or []),
                    now,
                    now,
                    job_id,
                ),
            )

    def cancel_if_queued(self, job_id: str, error: dict) -> bool:
        now = time.time()
        with self._lock:
            cur = self._write(
                "UPDATE jobs SET state = 'cancelled', stage = 'cancelled', error = ?, error_status = 409,"
                " finished_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
                (json.dumps(error), now, now, job_id),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: str, stage: str, *, count_attempt: bool = True) -> None:
        with self._lock:
            self._write(
                "UPDATE jobs SET state = 'queued', stage = ?, progress = 0, eta_seconds = NULL, started_at = "
                "NULL,"
                " attempts = attempts - ?, updated_at = ? WHERE id = ?",
                (stage, 0 if count_attempt else 1, time.time(), job_id),
            )

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._write("DELETE FROM jobs WHERE id = ?", (job_id,))

    def expired(self, before: float) -> Iterator[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < ?",
                (before,),
            ).fetchall()
        return iter([r[0] for r in rows])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {r[0]: r[1] for r in rows}

    def restore(self, record: dict, document: dict | None) -> Job:
        """Put back the row of a job from the record in its folder (``JobService`` writes one per job)."""
        now = time.time()
        state = record.get("state") if record.get("state") in FINISHED else "queued"
        error = record.get("error") if state in ("failed", "cancelled") else None
        if state == "succeeded" and document is None:
            state, error = (
                "failed",
                {
                    "code": "interrupted",
                    "message": "the job's result was lost with the job "
                    "database (restored from its folder): submit the job again",
                },
            )
        with self._lock:
            self._write(
                "INSERT OR IGNORE INTO jobs (id, seq, state, stage, timeline_path, uploaded, options, "
                "attempts,"
                " created_at, updated_at, finished_at, error, error_status, document, files)"
                " VALUES (?, COALESCE(?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs)), ?, ?, ?, ?, ?, ?, ?, "
                "?, ?,"
                " ?, ?, ?, ?)",
                (
                    record["id"],
                    record.get("seq"),
                    state,
                    state if state != "queued" else "queued (restored after the job database lost it)",
                    record["timeline_path"],
                    int(bool(record.get("uploaded"))),
                    json.dumps(record.get("options") or {}),
                    int(record.get("attempts") or 0),
                    float(record.get("created_at") or now),
                    now,
                    (record.get("finished_at") or now) if state in FINISHED else None,
                    json.dumps(error) if error else None,
                    record.get("error_status") if error else None,
                    json.dumps(document) if document is not None and state == "succeeded" else None,
                    json.dumps((record.get("files") or []) if state == "succeeded" else []),
                ),
            )
        return self.get(record["id"])  # type: ignore[return-value]

    def seq_of(self, job_id: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None
