"""The cluster's front desk, without Ray: bays, the shared transcript cache, the audio store, jobs and fair
share, for every stage a bay sends (transcription, and translation and speakers when the cluster offers them:
``stages``).

The Ray Serve ingress (``plugin/cluster/app.py``) owns one ``Hub`` and gives it ``runner``, a coroutine that
runs one span on a model replica. Everything a bay can do goes through a method that takes the bay's name
first, and a bay only ever sees its own jobs. Jobs are queued per bay and dispatched round robin, at most
``max_inflight`` at once (the replicas' capacity), so a long job from one bay never starves the others. A
replica that dies mid-span (``ReplicaLost``) costs one retry on another replica; the span's result is stored
once, under its cache key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..errors import CaptionBridgeError, InputError
from ..speech.transcribe import ALGORITHM_VERSION, TranscribeOptions
from ..speech.transcript_cache import TranscriptCache, cache_key
from .bays import BayRegistry
from .client import WIRE_SETTINGS
from .fairshare import FairQueue
from .stages import (
    SPEAKERS,
    TRANSCRIBE,
    TRANSLATE,
    direction,
    kind_of,
    speakers_key,
    speakers_request,
    translate_keys,
    translate_request,
)
from .wire import decode_flac

log = logging.getLogger("captionbridge.cluster")
HASH = re.compile(r"^[0-9a-f]{64}$")
JOB_TTL_S = 3600.0
AUDIO_TTL_S = 14 * 24 * 3600.0  # uploaded audio unused this long is deleted (transcripts stay in the cache)
ATTEMPTS = 2  # the first try and one retry on another replica


class ReplicaLost(Exception):
    """The replica running a span died (process killed, node lost) before answering."""


class NotFound(CaptionBridgeError):
    code = "not_found"
    http_status = 404


class Unauthorized(CaptionBridgeError):
    code = "unauthorized"
    http_status = 401


Runner = Callable[[bytes, str, dict], Awaitable[dict]]


class Hub:
    def __init__(
        self,
        data_dir: Path,
        runner: Runner,
        model: dict,
        max_inflight: int = 1,
        max_upload_bytes: int = 512 * 1024 * 1024,
        audio_ttl_s: float = AUDIO_TTL_S,
        stages: dict | None = None,
    ):
        """``stages``: what else the cluster runs, ``{"translate": {"runner": async (request) ->
        {"hypotheses"}, "models": {"en-zh": {"model_id", "model_name"}, ...}, "max_inflight": n},
        "speakers": {"runner": async (flac, digest, request) -> result, "model": {"model_id",
        "model_name"}, "max_inflight": n}}``."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bays = BayRegistry(self.data_dir)
        self.cache = TranscriptCache(root=self.data_dir, enabled=True)
        self.audio_dir = self.data_dir / "audio"
        self.runner = runner
        self.model = model  # model_id, model_name, compute, timing (from a replica)
        self.max_inflight = max(1, int(max_inflight))
        self.max_upload_bytes = max_upload_bytes
        self.audio_ttl_s = audio_ttl_s
        self._audio_swept = 0.0
        self.queue = FairQueue()  # transcription; the other stages have their own (``queues``)
        self.stages = {k: v for k, v in (stages or {}).items() if k in (TRANSLATE, SPEAKERS)}
        self.queues = {TRANSCRIBE: self.queue, **{k: FairQueue() for k in self.stages}}
        self.running_by_kind: Counter = Counter()
        self.jobs: dict[str, dict] = {}
        self.by_request: dict[tuple[str, str], str] = {}
        self.counters: Counter = Counter()
        self.stage_counters: dict[str, Counter] = defaultdict(Counter)
        self.per_bay: dict[str, Counter] = defaultdict(Counter)
        self.transcribed: Counter = (
            Counter()
        )  # cache key -> spans transcribed (exactly once, barring a new model)
        self._running: dict[str, asyncio.Future] = {}  # cache key -> the span being transcribed for it
        self._wake: asyncio.Event | None = None
        self._access = self.data_dir / "access.log"

    @property
    def inflight(self) -> int:
        return self.running_by_kind[TRANSCRIBE]

    def limit(self, kind: str) -> int:
        if kind == TRANSCRIBE:
            return self.max_inflight
        return max(1, int(self.stages[kind].get("max_inflight", 1)))

    def offered(self) -> dict:
        """What a bay may send here besides transcription (for ``/v1/info``)."""
        out: dict = {}
        if TRANSLATE in self.stages:
            out[TRANSLATE] = {d: m.get("model_name") for d, m in self.stages[TRANSLATE]["models"].items()}
        if SPEAKERS in self.stages:
            out[SPEAKERS] = self.stages[SPEAKERS]["model"].get("model_name")
        return out

    def _stage(self, kind: str) -> dict:
        if kind not in self.stages:
            raise InputError(f"this cluster does not run the {kind} stage (it was deployed without it)")
        return self.stages[kind]

    def _translation_model(self, request: dict) -> dict:
        models = self._stage(TRANSLATE)["models"]
        model = models.get(direction(request["source"], request["target"]))
        if model is None:
            raise InputError(
                f"this cluster has no {request['source']}->{request['target']} translation model "
                f"(it translates {', '.join(sorted(models)) or 'nothing'})"
            )
        return model

    # -- auth and audit
    # -------------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> str:
        token = (
            (authorization or "")[7:].strip() if (authorization or "").lower().startswith("bearer ") else None
        )
        bay = self.bays.authenticate(token)
        if bay is None:
            self.counters["refused"] += 1
            raise Unauthorized(
                "unknown or revoked bay token: ask the facility admin for one "
                "(captionbridge cluster add-bay NAME)"
            )
        return bay

    def audit(self, bay: str, action: str, **fields) -> None:
        record = {"time": round(time.time(), 3), "bay": bay, "action": action, **fields}
        log.info("bay %s: %s %s", bay, action, " ".join(f"{k}={v}" for k, v in fields.items()))
        try:
            with open(self._access, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError:
            pass

    # -- cache
    # ----------------------------------------------------------------------------------------------------
    def _options(self, settings: dict) -> TranscribeOptions:
        if not isinstance(settings, dict):
            raise InputError("settings must be an object")
        unknown = sorted(set(settings) - set(WIRE_SETTINGS))
        if unknown:
            raise InputError(f"unknown transcription setting(s): {', '.join(unknown)}")
        try:
            return TranscribeOptions(**settings)
        except TypeError as exc:
            raise InputError(f"bad transcription settings: {exc}") from exc

    def key(self, identity: str, settings: dict) -> str:
        options = self._options(settings)
        if not isinstance(identity, str) or not identity or len(identity) > 200:
            raise InputError("each span needs an identity (its content hash and range)")
        return cache_key(
            identity=identity,
            model=self.model["model_id"],
            compute=self.model["compute"],
            settings={**options.settings_key(), "language_windows": options.language_windows},
            algorithm=ALGORITHM_VERSION,
            timing=self.model.get("timing"),
        )

    def lookup(self, bay: str, settings: dict, identities: list) -> list:
        if not isinstance(identities, list) or len(identities) > 100000:
            raise InputError("identities must be a list")
        results = []
        for identity in identities:
            hit = self.cache.get(self.key(identity, settings))
            results.append(hit)
            self.counters["lookups"] += 1
            self.per_bay[bay]["lookups"] += 1
            if hit is not None:
                self.counters["hits"] += 1
                self.per_bay[bay]["hits"] += 1
        self.audit(bay, "lookup", spans=len(identities), hits=sum(r is not None for r in results))
        return results

    def lookup_stage(self, bay: str, kind: str, body: dict) -> list:
        """Cached results of a translation request (one per text: its candidates, or None) or of a speakers
        request (one entry: the result, or None)."""
        if kind == TRANSLATE:
            request = translate_request(body)
            keys = translate_keys(self._translation_model(request), request)
        elif kind == SPEAKERS:
            request = speakers_request(body)
            keys = [speakers_key(self._stage(SPEAKERS)["model"], request)]
        else:
            raise InputError(f"unknown stage {kind!r}: use translate or speakers")
        found = [self.cache.get(k) for k in keys]
        hits = sum(f is not None for f in found)
        self._count(bay, kind, lookups=len(keys), hits=hits)
        self.audit(bay, "lookup", stage=kind, items=len(keys), hits=hits)
        if kind == TRANSLATE:
            return [None if f is None else f["hypotheses"] for f in found]
        return found

    def _count(self, bay: str, kind: str, **amounts) -> None:
        for name, amount in amounts.items():
            self.stage_counters[kind][name] += amount
            self.per_bay[bay][f"{kind}_{name}"] += amount

    # -- audio
    # ----------------------------------------------------------------------------------------------------
    def _audio_path(self, digest: str) -> Path:
        if not HASH.match(digest or ""):
            raise InputError("an audio hash is 64 lowercase hex digits (sha256 of the 16-bit PCM)")
        return self.audio_dir / digest[:2] / f"{digest}.flac"

    def missing_audio(self, bay: str, hashes: list) -> list[str]:
        if not isinstance(hashes, list):
            raise InputError("hashes must be a list")
        missing = []
        for digest in hashes:
            path = self._audio_path(digest)
            try:
                os.utime(path)  # in use again: kept for another audio_ttl_s
            except FileNotFoundError:
                missing.append(digest)
        self.audit(bay, "audio-check", asked=len(hashes), missing=len(missing))
        return missing

    def put_audio(self, bay: str, digest: str, data: bytes) -> None:
        path = self._audio_path(digest)
        if len(data) > self.max_upload_bytes:
            raise InputError(
                f"audio of {len(data)} bytes is over the cluster's limit of {self.max_upload_bytes}"
            )
        decode_flac(data, digest)  # refuses anything that is not the 16 kHz mono audio it claims to be
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self.per_bay[bay]["uploaded_bytes"] += len(data)
        self.audit(bay, "audio-upload", audio=digest, bytes=len(data))

    # -- jobs
    # -----------------------------------------------------------------------------------------------------
    def submit(self, bay: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise InputError("a job is a JSON object")
        request_id = str(body.get("request_id") or "")
        if not re.match(r"^[A-Za-z0-9_-]{8,64}$", request_id):
            raise InputError(
                "request_id must be 8-64 letters, digits, '_' or '-' (it makes a retried submit safe)"
            )
        known = self.by_request.get((bay, request_id))
        if known in self.jobs:
            return self.view(bay, known)  # the same submit again (its answer was lost): the same job
        kind = kind_of(body)
        if kind != TRANSCRIBE:
            return self._submit_stage(bay, kind, request_id, body)
        key = self.key(body.get("identity"), body.get("settings"))
        digest = body.get("audio")
        seconds = float(body.get("seconds") or 0.0)
        job = _new_job(
            TRANSCRIBE, bay, request_id, key=key, audio=digest, settings=body.get("settings"), seconds=seconds
        )
        hit = self.cache.get(key)
        if hit is not None:
            job.update(state="done", result=hit, finished=time.time())
            for counter in (self.counters, self.per_bay[bay]):  # done meanwhile (by another bay): a cache hit
                counter["lookups"] += 1
                counter["hits"] += 1
        elif not self._audio_path(digest).is_file():
            raise _audio_missing(digest)
        self.jobs[job["id"]] = job
        self.by_request[(bay, request_id)] = job["id"]
        self.counters["jobs"] += 1
        self.per_bay[bay]["jobs"] += 1
        self.per_bay[bay]["seconds_asked"] += seconds
        self.audit(bay, "job", job=job["id"], audio=digest, seconds=round(seconds, 3), state=job["state"])
        if job["state"] == "queued":
            self.queue.push(bay, job["id"])
            self._poke()
        return self.view(bay, job["id"])

    def _submit_stage(self, bay: str, kind: str, request_id: str, body: dict) -> dict:
        job = _new_job(kind, bay, request_id)
        if kind == TRANSLATE:
            request = translate_request(body)
            keys = translate_keys(self._translation_model(request), request)
            found = [self.cache.get(k) for k in keys]
            todo = [n for n, hit in enumerate(found) if hit is None]
            job.update(payload=request, keys=keys, found=found, todo=todo, audio=None, key=None)
            job["seconds"] = float(sum(len(request["texts"][n]) for n in todo))  # characters to translate
            self._count(bay, kind, lookups=len(keys), hits=len(keys) - len(todo))
            if not todo:
                job.update(state="done", result={"hypotheses": [f["hypotheses"] for f in found]})
        else:
            request = speakers_request(body)
            key = speakers_key(self._stage(SPEAKERS)["model"], request)
            job.update(payload=request, key=key, audio=request["audio"], seconds=request["seconds"])
            hit = self.cache.get(key)
            self._count(bay, kind, lookups=1, hits=int(hit is not None))
            if hit is not None:
                job.update(state="done", result=hit)
            elif not self._audio_path(request["audio"]).is_file():
                raise _audio_missing(request["audio"])
        if job["state"] == "done":
            job["finished"] = time.time()
        self.jobs[job["id"]] = job
        self.by_request[(bay, request_id)] = job["id"]
        self._count(bay, kind, jobs=1)
        self.audit(bay, "job", stage=kind, job=job["id"], audio=job["audio"], state=job["state"])
        if job["state"] == "queued":
            self.queues[kind].push(bay, job["id"])
            self._poke()
        return self.view(bay, job["id"])

    def view(self, bay: str, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None or job["bay"] != bay:  # another bay's job is as good as absent
            if job is not None:
                self.counters["refused"] += 1
                self.audit(bay, "refused", job=job_id, reason="another bay's job")
            raise NotFound(f"no job {job_id} for bay {bay}")
        out = {
            k: job[k] for k in ("id", "kind", "state", "attempts", "error", "seconds", "created", "finished")
        }
        if job["state"] == "queued":
            out["queue_position"] = self._position(bay, job_id, job["kind"])
        if job["state"] == "done":
            out["result"] = job["result"]
        return out

    def _position(self, bay: str, job_id: str, kind: str = TRANSCRIBE) -> int | None:
        queue = self.queues[kind]._queues.get(bay) or ()
        for n, jid in enumerate(queue):
            if jid == job_id:
                return n
        return None

    # -- dispatch
    # -------------------------------------------------------------------------------------------------
    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run_forever(self) -> None:
        self._wake = asyncio.Event()
        while True:
            for kind, queue in self.queues.items():
                while self.running_by_kind[kind] < self.limit(kind):
                    picked = queue.pop()
                    if picked is None:
                        break
                    bay, job_id = picked
                    job = self.jobs.get(job_id)
                    if job is None or job["state"] != "queued":
                        continue
                    self.running_by_kind[kind] += 1
                    runner = self._run_translation if kind == TRANSLATE else self._run
                    asyncio.get_running_loop().create_task(runner(job))
            self._expire()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=30.0)
            except asyncio.TimeoutError:
                pass

    async def _run(self, job: dict) -> None:
        owner = None
        try:
            hit = self.cache.get(
                job["key"]
            )  # another bay's job for the same span may have finished meanwhile
            if (
                hit is None and job["key"] in self._running
            ):  # or be running now: share it, do not run it twice
                job["state"] = "running"
                hit = await asyncio.shield(self._running[job["key"]])
            if hit is not None:
                job.update(state="done", result=hit, finished=time.time())
                self.audit(job["bay"], "done", job=job["id"], shared=True)
                return
            owner = self._running[job["key"]] = asyncio.get_running_loop().create_future()
            job["state"] = "running"
            data = await asyncio.to_thread(self._audio_path(job["audio"]).read_bytes)
            if job["kind"] == SPEAKERS:
                runner, payload = self.stages[SPEAKERS]["runner"], job["payload"]
            else:
                runner, payload = self.runner, job["settings"]
            result = await self._attempts(job, lambda: runner(data, job["audio"], payload))
            self.cache.put(job["key"], result)
            owner.set_result(result)
            if job["kind"] == TRANSCRIBE:
                self.transcribed[job["key"]] += 1
                self.counters["transcribed"] += 1
                self.counters["seconds_transcribed"] += job["seconds"]
            else:
                self._count(job["bay"], job["kind"], done=1)
            job.update(state="done", result=result, finished=time.time())
            self.audit(job["bay"], "done", job=job["id"], attempts=job["attempts"])
        except Exception as exc:  # a bad span must not take the dispatcher down; the bay hears why
            message = exc.message if isinstance(exc, CaptionBridgeError) else f"{type(exc).__name__}: {exc}"
            job.update(state="failed", error=message[:500], finished=time.time())
            self.counters["failed"] += 1
            self.audit(job["bay"], "failed", job=job["id"], error=message[:200])
            if owner is not None and not owner.done():
                owner.set_exception(exc)
                owner.exception()  # retrieved here: jobs waiting on it fail with it, nobody else has to
        finally:
            if owner is not None and self._running.get(job["key"]) is owner:
                del self._running[job["key"]]
            self.running_by_kind[job["kind"]] -= 1
            self._poke()

    async def _attempts(self, job: dict, call) -> dict:
        """``call()`` on a replica; a replica lost mid-request costs one retry on another."""
        for attempt in range(1, ATTEMPTS + 1):
            job["attempts"] = attempt
            try:
                return await call()
            except ReplicaLost as exc:
                self.counters["replica_lost"] += 1
                self.audit(job["bay"], "replica-lost", job=job["id"], attempt=attempt, error=str(exc)[:200])
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _run_translation(self, job: dict) -> None:
        """The texts of a translation job that were not in the cache (maybe done meanwhile for another bay)
        go to a translation replica in one request; each answer is cached under its own text's key."""
        try:
            job["state"] = "running"
            request, keys, found = job["payload"], job["keys"], job["found"]
            for n in job["todo"]:
                found[n] = found[n] or self.cache.get(keys[n])
            todo = [n for n in job["todo"] if found[n] is None]
            if todo:
                runner = self.stages[TRANSLATE]["runner"]
                part = {**request, "texts": [request["texts"][n] for n in todo]}
                answer = await self._attempts(job, lambda: runner(part))
                hypotheses = answer.get("hypotheses") if isinstance(answer, dict) else None
                if not isinstance(hypotheses, list) or len(hypotheses) != len(todo):
                    raise RuntimeError("the translation replica answered a different number of texts")
                for n, hyps in zip(todo, hypotheses):
                    found[n] = {"hypotheses": list(hyps)}
                    self.cache.put(keys[n], found[n])
                self._count(job["bay"], TRANSLATE, translated=len(todo))
            self._count(job["bay"], TRANSLATE, done=1)
            result = {"hypotheses": [f["hypotheses"] for f in found]}
            job.update(state="done", result=result, finished=time.time())
            self.audit(job["bay"], "done", stage=TRANSLATE, job=job["id"], translated=len(todo))
        except Exception as exc:  # the bay hears why; the dispatcher goes on
            message = exc.message if isinstance(exc, CaptionBridgeError) else f"{type(exc).__name__}: {exc}"
            job.update(state="failed", error=message[:500], finished=time.time())
            self.counters["failed"] += 1
            self.audit(job["bay"], "failed", stage=TRANSLATE, job=job["id"], error=message[:200])
        finally:
            self.running_by_kind[TRANSLATE] -= 1
            self._poke()

    def expire_audio(self, now: float | None = None) -> int:
        """Delete uploaded audio nobody has used for ``audio_ttl_s`` (not while a job still needs it)."""
        now = time.time() if now is None else now
        needed = {j["audio"] for j in self.jobs.values() if j["state"] in ("queued", "running")}
        removed = 0
        for path in self.audio_dir.glob("*/*.flac"):
            try:
                if path.stem not in needed and now - path.stat().st_mtime > self.audio_ttl_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def _expire(self) -> None:
        now = time.time()
        if now - self._audio_swept > 3600:
            self._audio_swept = now
            self.expire_audio(now)
        for job_id, job in list(self.jobs.items()):
            if job["finished"] and now - job["finished"] > JOB_TTL_S:
                del self.jobs[job_id]
                self.by_request.pop((job["bay"], job["request_id"]), None)

    # -- status
    # ---------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        states = Counter(j["state"] for j in self.jobs.values())
        lookups = self.counters["lookups"]
        running = Counter(j["bay"] for j in self.jobs.values() if j["state"] == "running")
        queued: Counter = Counter()
        for queue in self.queues.values():
            queued.update(queue.depth())
        bays = {}
        for bay in sorted(set(self.per_bay) | set(queued) | set(running)):
            c = self.per_bay[bay]
            bays[bay] = {
                "queued": queued.get(bay, 0),
                "running": running.get(bay, 0),
                "jobs": c["jobs"],
                "lookups": c["lookups"],
                "cache_hits": c["hits"],
                "uploaded_bytes": c["uploaded_bytes"],
                "seconds_asked": round(c["seconds_asked"], 3),
                **{
                    f"{kind}_{name}": c[f"{kind}_{name}"]
                    for kind in self.stages
                    for name in ("jobs", "lookups", "hits")
                },
            }
        stages = {}
        for kind in self.stages:
            c = self.stage_counters[kind]
            stages[kind] = {
                "queued": len(self.queues[kind]),
                "inflight": self.running_by_kind[kind],
                "max_inflight": self.limit(kind),
                "jobs": c["jobs"],
                "done": c["done"],
                "lookups": c["lookups"],
                "hits": c["hits"],
                "hit_rate": round(c["hits"] / c["lookups"], 4) if c["lookups"] else None,
                **({"texts_translated": c["translated"]} if kind == TRANSLATE else {}),
            }
        return {
            "model": self.model,
            "inflight": self.inflight,
            "max_inflight": self.max_inflight,
            "jobs": dict(states),
            "bays": bays,
            "stages": stages,
            "offered": self.offered(),
            "cache": {
                "lookups": lookups,
                "hits": self.counters["hits"],
                "hit_rate": round(self.counters["hits"] / lookups, 4) if lookups else None,
            },
            "transcribed_spans": self.counters["transcribed"],
            "max_transcriptions_per_span": max(self.transcribed.values(), default=0),
            "replicas_lost": self.counters["replica_lost"],
            "failed": self.counters["failed"],
            "refused": self.counters["refused"],
        }


def _new_job(kind: str, bay: str, request_id: str, **fields) -> dict:
    """A queued job's record; ``fields`` are the kind's own (key, audio, settings, seconds, payload ...)."""
    return {
        "id": secrets.token_hex(12),
        "kind": kind,
        "bay": bay,
        "request_id": request_id,
        **fields,
        "state": "queued",
        "attempts": 0,
        "error": None,
        "result": None,
        "created": time.time(),
        "finished": None,
    }


def _audio_missing(digest: str) -> InputError:
    return InputError(f"audio {digest} is not on the cluster: upload it first (PUT /v1/audio/{digest})")
