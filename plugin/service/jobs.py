"""The job queue: workers that run caption jobs one at a time each, with progress, cancel and crash recovery.

Workers are threads of the service process, so the model cache of ``captionbridge.core.speech.models`` stays
warm across jobs. A job writes into ``<data>/jobs/<id>/out.partial``; only a job that succeeded is renamed to
``out/`` and published, so a failed, cancelled or interrupted job leaves nothing half-written. On start, jobs
that were queued resume in order, and a job that was running when the process died is retried once
(``max_attempts``) or marked failed with the reason.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.corrections.store import CorrectionStore
from ...core.errors import Cancelled, CaptionBridgeError
from ...core.progress import Progress
from ...core.storage import cache_root, job_scope, protect_folder, write_private
from .errors import EngineUnavailable, JobFinished, JobNotFinished, JobNotFound, ResultFileNotFound, shown
from .store import Job, JobStore

log = logging.getLogger("captionbridge.service")

JobFunction = Callable[[Path, Path, dict, Progress], dict]

DEFAULT_RESULT_TTL = 7 * 24 * 3600.0
PROGRESS_PERSIST_INTERVAL = 0.5
STORE_CHECK_INTERVAL = 1.0
RECORD = (
    "job.json"  # in each job's folder: the job as submitted and how it ended, so a lost row can be restored
)
RESULT = "result.json"
SCRATCH = "scratch"  # where the job unpacks a bundle; removed after the job and at every start
REVIEW_MEDIA_DIR = ".review"  # inside a job's out/: the review page's audio and peaks


def default_job_function(timeline_path: Path, out_dir: Path, options: dict, progress: Progress) -> dict:
    """Run ``captionbridge.plugin.caption_job.run_caption_job`` (the CLI's ``caption`` command, as a
    function)."""
    run = _caption_job()
    # the review page's copy of the mix, published with out/ (never listed as a job file)
    return run(timeline_path, out_dir, options, progress, review_dir=out_dir / REVIEW_MEDIA_DIR)


def _caption_job() -> JobFunction:
    try:
        from ..caption_job import run_caption_job
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("captionbridge.plugin.caption_job"):
            raise EngineUnavailable(
                "this build of CaptionBridge has no caption engine "
                "(captionbridge.plugin.caption_job is missing): reinstall captionbridge"
            )
        raise
    return run_caption_job


def job_stages(job_function: JobFunction) -> dict[str, float] | None:
    """Stage weights of a job function, so progress is a percentage of the whole job.

    A job function may carry them as ``fn.stages``; the default job takes ``STAGES`` from the caption job
    module.
    """
    stages = getattr(job_function, "stages", None)
    if stages is None and job_function is default_job_function:
        try:
            from .. import caption_job

            stages = getattr(caption_job, "STAGES", None) or getattr(
                caption_job.run_caption_job, "stages", None
            )
        except ImportError:
            stages = None
    return dict(stages) if stages else None


def cuda_device_count() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


def default_workers() -> int:
    """One worker per GPU; one on CPU (CTranslate2 already uses every core for one job)."""
    return max(1, cuda_device_count())


@dataclass
class _Running:
    job_id: str
    cancel_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stage: str = "starting"
    progress: float = 0.0
    eta: float | None = None
    updated_at: float = field(default_factory=time.time)
    persisted_at: float = 0.0
    shutdown: bool = False


class JobService:
    """The queue, its workers and the janitor that expires old results."""

    def __init__(
        self,
        data_dir: Path,
        *,
        job_function: JobFunction | None = None,
        workers: int | None = None,
        result_ttl: float = DEFAULT_RESULT_TTL,
        max_attempts: int = 2,
        cancel_wait: float = 5.0,
        unpack_limit: int | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Nothing in the data folder is ever read as a timeline or media (a job's own folder excepted).
        protect_folder(self.data_dir, f"the engine's data folder {self.data_dir}")
        self.store = JobStore(self.data_dir / "jobs.sqlite3")
        self.unpack_limit = unpack_limit
        self.job_function = job_function or default_job_function
        self.workers = workers if workers and workers > 0 else default_workers()
        self.result_ttl = float(result_ttl)
        self.max_attempts = max(1, int(max_attempts))
        self.cancel_wait = cancel_wait
        self._gpus = cuda_device_count()
        self._cond = threading.Condition()
        self._running: dict[str, _Running] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._records = threading.RLock()  # a job's folder and row go away together (purge, expiry, restore)

    # ---- lifecycle
    # -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self.expire()
        for index in range(self.workers):
            t = threading.Thread(
                target=self._worker, args=(index,), name=f"captionbridge-worker-{index}", daemon=True
            )
            t.start()
            self._threads.append(t)
        janitor = threading.Thread(target=self._janitor, name="captionbridge-janitor", daemon=True)
        janitor.start()
        self._threads.append(janitor)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running jobs are stopped and put back in the queue for the next start."""
        self._stopping.set()
        with self._cond:
            for running in self._running.values():
                running.shutdown = True
                running.cancel_event.set()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.store.close()

    def recover(self) -> None:
        """Put back jobs a dead process left running: retried while attempts remain, else failed with the
        reason.

        Also restores jobs whose folder holds a record but whose row the database lost, and removes what jobs
        unpacked into their scratch folders (a process killed mid-job leaves it)."""
        for folder in self.jobs_dir.iterdir() if self.jobs_dir.is_dir() else ():
            shutil.rmtree(folder / SCRATCH, ignore_errors=True)
            if folder.is_dir() and _looks_like_id(folder.name) and self.store.get(folder.name) is None:
                self._restore(folder)
        for job in self.store.list(("running",)):
            self._clear_partial(job.id)
            if job.attempts < self.max_attempts:
                log.warning("job %s was interrupted (attempt %d); queued again", job.id, job.attempts)
                self.store.requeue(job.id, "queued (retry after the service stopped mid-job)")
            else:
                log.warning("job %s was interrupted %d times; marked failed", job.id, job.attempts)
                self.store.finish(
                    job.id,
                    "failed",
                    error_status=500,
                    error={
                        "code": "interrupted",
                        "message": f"the service stopped while this job was running ({job.attempts} "
                        "attempts, "
                        f"the last at stage {job.stage!r}); the job may crash the engine: check the "
                        "timeline and its media, then submit it again",
                    },
                )
                self._save_record(job.id)

    # ---- public operations
    # -------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def submit(self, job_id: str, timeline_path: Path, options: dict, uploaded: bool) -> Job:
        if self._stopping.is_set():
            raise EngineUnavailable("the service is shutting down; submit the job again once it is back")
        if not self.store.check():
            raise EngineUnavailable(f"the engine takes no new jobs: {self.store.broken}")
        folder = self.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            job = self.store.add(job_id, str(timeline_path), options, uploaded)
        except BaseException:
            if not uploaded:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        self._save_record(job_id)
        with self._cond:
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id) if _looks_like_id(job_id) else None
        if job is None:
            raise JobNotFound(
                f"no job {shown(job_id)}: unknown, or its results expired "
                f"(results are kept {self.result_ttl:g} s)",
                details={"id": shown(job_id, 200)},
            )
        running = self._running.get(job_id)
        if (
            running is not None and job.state == "running"
        ):  # live progress, newer than the last write to SQLite
            job.stage, job.progress, job.eta_seconds, job.updated_at = (
                running.stage,
                running.progress * 100.0,
                running.eta,
                running.updated_at,
            )
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or ask a running one to stop and wait up to ``cancel_wait`` for it."""
        running = None
        with self._cond:  # workers claim and register a job under the same lock: no job slips between
            job = self.get(job_id)
            if job.state == "queued":
                self.store.cancel_if_queued(
                    job_id, Cancelled("cancelled by the user before it started").to_dict()
                )
                self._clear_partial(job_id)
                self._save_record(job_id)
                return self.get(job_id)
            if job.state == "running":
                running = self._running.get(job_id)
                if running is not None:
                    running.stage = "cancelling"
                    running.cancel_event.set()
            elif job.finished:
                raise JobFinished(
                    f"job {job_id} already {job.state}; nothing to cancel "
                    "(DELETE with ?purge=true removes its results)",
                    details={"state": job.state},
                )
        if running is not None:
            running.done.wait(self.cancel_wait)
        # A job function that checks for cancellation rarely may still be "running" (stage "cancelling") here.
        return self.get(job_id)

    def purge(self, job_id: str) -> None:
        """Remove a finished job and its files."""
        job = self.get(job_id)
        if not job.finished:
            raise JobNotFinished(
                f"job {job_id} is {job.state}: cancel it before purging it", details={"state": job.state}
            )
        with self._records:
            cache_files = self._read_record(self.job_dir(job_id)).get("cache_files") or []
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            self.store.delete(job_id)
        remove_cache_files(cache_files)

    def result(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        if job.state == "succeeded":
            document = self.store.document(job_id) or {}
            return {**document, "files": list(job.files)}
        if job.state in ("failed", "cancelled") and job.error:
            exc = CaptionBridgeError(
                job.error.get("message", f"job {job.state}"), details=job.error.get("details")
            )
            exc.code = job.error.get("code", "job_failed")
            exc.http_status = 409 if job.state == "cancelled" else (job.error_status or 500)
            raise exc
        raise JobNotFinished(
            f"job {job_id} is {job.state} ({job.stage}, {job.progress:.0f}%): poll "
            f"GET /v1/jobs/{job_id} until it has finished",
            details={"state": job.state},
        )

    def file_path(self, job_id: str, name: str) -> Path:
        job = self.get(job_id)
        if job.state != "succeeded":
            raise JobNotFinished(
                f"job {job_id} is {job.state}: it has no files", details={"state": job.state}
            )
        # Only names the job published are served; the resolved path must stay inside the job's out folder.
        out = (self.job_dir(job_id) / "out").resolve()
        if name not in job.files or _unsafe_name(name):
            raise ResultFileNotFound(
                f"job {job_id} has no file {shown(name)}; its files are {', '.join(job.files) or 'none'}",
                details={"files": list(job.files)},
            )
        path = (out / name).resolve()
        if path.parent != out or not path.is_file():
            raise ResultFileNotFound(
                f"file {name!r} of job {job_id} is gone from disk", details={"files": job.files}
            )
        return path

    def stats(self) -> dict[str, Any]:
        return {"workers": self.workers, "jobs": self.store.counts()}

    # ---- the record in each job's folder
    # ---------------------------------------------------------------------
    def _save_record(self, job_id: str, **extra: Any) -> None:
        """Write ``<job>/job.json`` from the job's row (and ``result.json`` once it succeeded)."""
        with self._records:
            self._save_record_locked(job_id, extra)

    def _save_record_locked(self, job_id: str, extra: dict) -> None:
        job = self.store.get(job_id)
        folder = self.job_dir(job_id)
        if job is None or not folder.is_dir():
            return
        previous = self._read_record(folder)
        record = {
            "id": job.id,
            "seq": self.store.seq_of(job_id),
            "state": job.state,
            "timeline_path": job.timeline_path,
            "uploaded": job.uploaded,
            "options": job.options,
            "attempts": job.attempts,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "error": job.error,
            "error_status": job.error_status,
            "files": job.files,
            "cache_files": sorted(
                set(previous.get("cache_files") or []) | set(extra.get("cache_files") or [])
            ),
        }
        try:
            if job.state == "succeeded":
                write_private(folder / RESULT, json.dumps(self.store.document(job_id) or {}))
            write_private(folder / RECORD, json.dumps(record))
        except OSError as exc:
            log.error("cannot write the record of job %s in %s: %s", job_id, folder, exc)

    @staticmethod
    def _read_record(folder: Path) -> dict:
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _restore(self, folder: Path) -> bool:
        """Put back a job whose row is gone but whose folder holds its record; False when it holds none."""
        record = self._read_record(folder)
        if record.get("id") != folder.name or not isinstance(record.get("timeline_path"), str):
            return False
        document = None
        if record.get("state") == "succeeded":
            try:
                document = json.loads((folder / RESULT).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                document = None
        job = self.store.restore(record, document)
        log.warning(
            "job %s: its row was missing from the job database; restored from %s as %s",
            folder.name,
            folder / RECORD,
            job.state,
        )
        self._save_record(job.id)
        return True

    def expire(self) -> int:
        """Delete finished jobs older than the result TTL, and job folders no job owns."""
        removed = 0
        for job_id in self.store.expired(time.time() - self.result_ttl):
            # Files first, then the row: once a job reads as gone, nothing of it is left on disk.
            with self._records:
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                self.store.delete(job_id)
            removed += 1
        if not self.store.check():
            return removed  # a database that lost its log cannot say which folders are orphans
        for folder in self.jobs_dir.iterdir() if self.jobs_dir.is_dir() else ():
            with self._records:
                if not folder.is_dir() or self.store.get(folder.name) is not None:
                    continue
                if self._restore(folder):  # the row was lost, the job was not: never delete it
                    continue
                # An upload whose job row was never written (the process died in between) has no record and no
                # results; anything else without a row is kept for the user to look at.
                if (
                    (folder / RECORD).exists()
                    or (folder / "out").exists()
                    or time.time() - folder.stat().st_mtime <= 60
                ):
                    continue
                shutil.rmtree(folder, ignore_errors=True)
        return removed

    # ---- workers
    # -----------------------------------------------------------------------------------------------
    def _worker(self, index: int) -> None:
        while not self._stopping.is_set():
            with self._cond:
                job = self.store.claim_next() if not self._stopping.is_set() else None
                if job is None:
                    self._cond.wait(timeout=1.0)
                    continue
                running = _Running(job.id)
                self._running[job.id] = running
            try:
                self._run(job, running, index)
            except Exception:  # never let a worker die: the job is already marked failed or requeued
                log.exception("worker %d: unexpected error around job %s", index, job.id)
            finally:
                with self._cond:
                    self._running.pop(job.id, None)
                running.done.set()

    def _janitor(self) -> None:
        interval = max(1.0, min(60.0, self.result_ttl / 4))
        next_expire = time.monotonic() + interval
        while not self._stopping.wait(STORE_CHECK_INTERVAL):
            try:
                self.store.check()  # notices a deleted write-ahead log within a second
                if time.monotonic() >= next_expire:
                    next_expire = time.monotonic() + interval
                    self.expire()
            except Exception:
                log.exception("janitor failed")

    def _listener(self, running: _Running) -> Callable[[str, float, float | None], None]:
        def listen(stage: str, fraction: float, eta: float | None) -> None:
            changed = stage != running.stage
            running.stage, running.progress, running.eta, running.updated_at = (
                stage,
                fraction,
                eta,
                time.time(),
            )
            now = time.monotonic()
            if changed or now - running.persisted_at >= PROGRESS_PERSIST_INTERVAL:
                running.persisted_at = now
                self.store.set_progress(running.job_id, stage, fraction * 100.0, eta)

        return listen

    def _clear_partial(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id) / "out.partial", ignore_errors=True)

    def _run(self, job: Job, running: _Running, index: int) -> None:
        job_dir = self.job_dir(job.id)
        partial, out = job_dir / "out.partial", job_dir / "out"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        partial.mkdir(parents=True, mode=0o700)
        options = dict(job.options)
        if "vocabulary" not in options:  # words people corrected more than once in review: decoder hotwords
            vocabulary = CorrectionStore(self.data_dir).vocabulary(language=options.get("language"))
            if vocabulary:
                options["vocabulary"] = vocabulary
        if self._gpus > 1 and options.get("device", "auto") in ("auto", "cuda"):
            options["device_index"] = index % self._gpus  # one worker per GPU: each keeps its own warm model
        progress = Progress(
            job_stages(self.job_function), listener=self._listener(running), cancel_event=running.cancel_event
        )
        started = time.monotonic()
        log.info("job %s: started (attempt %d) on worker %d", job.id, job.attempts, index)
        self._save_record(job.id)  # attempts count, should the database lose the row while it runs
        scope_cm = job_scope(
            job_dir, scratch=job_dir / SCRATCH, unpack_limit=self.unpack_limit if job.uploaded else None
        )
        scope = scope_cm.__enter__()
        try:
            try:
                progress.check_cancelled()
                result = self.job_function(Path(job.timeline_path), partial, options, progress)
            finally:  # before the job reads as finished: a purge right after it knows its cache files, and
                # nothing it unpacked is left (the unpacked bundle's own finalizer then finds it gone)
                scope_cm.__exit__(None, None, None)
                shutil.rmtree(job_dir / SCRATCH, ignore_errors=True)
                self._save_record(job.id, cache_files=sorted(scope.cache_files))
            document, files = _check_result(result, partial)
            partial.rename(out)  # publish atomically: out/ exists only for a job that succeeded
            self.store.finish(job.id, "succeeded", document=document, files=files)
            log.info("job %s: succeeded in %.1f s (%d files)", job.id, time.monotonic() - started, len(files))
        except Cancelled as exc:
            if running.shutdown:
                self.store.requeue(job.id, "queued (resumes after the service restarts)", count_attempt=False)
                log.info("job %s: stopped for shutdown, back in the queue", job.id)
            else:
                self.store.finish(job.id, "cancelled", error=exc.to_dict(), error_status=409)
                log.info("job %s: cancelled after %.1f s", job.id, time.monotonic() - started)
        except CaptionBridgeError as exc:
            self.store.finish(
                job.id,
                "failed",
                error=exc.to_dict(),
                error_status=exc.http_status,
                stage=f"failed at {running.stage}",
            )
            log.info("job %s: failed: %s: %s", job.id, exc.code, exc.message)
        except Exception as exc:
            log.exception("job %s: internal error", job.id)
            self.store.finish(
                job.id,
                "failed",
                error_status=500,
                stage=f"failed at {running.stage}",
                error={
                    "code": "internal_error",
                    "message": f"{type(exc).__name__}: {exc} (a CaptionBridge bug: please report it with the "
                    "timeline)",
                },
            )
        finally:
            shutil.rmtree(partial, ignore_errors=True)
            # drop the job's audio and arrays before the next job (the model stays warm), and the
            # LoadedTimeline of an unpacked bundle, whose finalizer removes its folder
            gc.collect()
            shutil.rmtree(job_dir / SCRATCH, ignore_errors=True)
            self._save_record(job.id)


def remove_cache_files(paths: list[str]) -> None:
    """Remove shared-cache files a purged job used (transcripts, media index entries): only inside the
    cache."""
    root = Path(os.path.realpath(cache_root()))
    for name in paths:
        path = Path(os.path.realpath(name))
        if root in path.parents and path.suffix == ".json":
            try:
                path.unlink()
            except OSError:
                pass


def _check_result(result: Any, out_dir: Path) -> tuple[dict, list[str]]:
    if not isinstance(result, dict) or not isinstance(result.get("document"), dict):
        raise TypeError("the job function must return {'document': dict, 'files': [names]}")
    files = []
    for name in result.get("files") or []:
        if not isinstance(name, str) or _unsafe_name(name) or not (out_dir / name).is_file():
            raise TypeError(f"the job function listed a file it did not write into its out folder: {name!r}")
        if name not in files:
            files.append(name)
    return result["document"], files


def _unsafe_name(name: str) -> bool:
    return (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or ":" in name
        or name.startswith(".")
    )


def _looks_like_id(job_id: str) -> bool:
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)
