"""The bay's side of the facility cluster: a speech backend (``core.speech.remote``) that sends each source
span to the cluster once; and, when the cluster offers them, translation (``core.translate.remote``: the
sentences) and speakers (``core.speech.remote``: a timeline's mix and its timed words), ``ClusterStages``.

Per job: ask the cluster for the spans it already has transcripts of (shared cache, keyed by the audio's
content hash + source range + the cluster's model + settings; nothing is decoded or uploaded for those); for
the rest, decode the span, compress it (16 kHz mono FLAC), ask whether the cluster already has that audio,
upload it only if not, queue a job, and poll it. Requests are idempotent (each job carries a request id), so a
retry after a lost answer never queues the same span twice. A cluster that cannot be reached raises
``RemoteUnavailable`` (the engine then transcribes locally) or, with ``on_unreachable = "wait"``, is waited
for.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from ..errors import CaptionBridgeError
from ..speech.remote import RemoteUnavailable, SpanRequest
from .facility import ClusterConfig
from .stages import SPEAKERS, TRANSLATE, direction
from .wire import encode_flac, pcm_hash, to_pcm16

log = logging.getLogger(__name__)

# What changes a transcript, sent with every job (the cluster adds its own model and compute type).
WIRE_SETTINGS = (
    "language",
    "beam_size",
    "vad",
    "vad_threshold",
    "simplified_chinese",
    "initial_prompt",
    "hotwords",
    "no_speech_threshold",
    "log_prob_threshold",
    "compression_ratio_threshold",
    "temperature",
    "refine_timing",
    "language_windows",
)


class ClusterRefused(CaptionBridgeError):
    """The cluster answered but refused this bay (revoked or wrong token, or a request it rejects)."""

    code = "cluster_refused"
    exit_code = 3
    http_status = 502


class ClusterUnreachable(CaptionBridgeError):
    """The cluster stayed unreachable while the bay was told to wait for it."""

    code = "cluster_unreachable"
    exit_code = 1
    http_status = 503


class _Rejected(Exception):
    """The cluster answered but would not do it (HTTP 400-class other than 401/403): version skew, a bad
    span."""


class _Down(Exception):
    """Connection refused, timed out, TLS failure, or the cluster's proxy says the app is not there (5xx)."""


def wire_settings(options) -> dict:
    settings = {name: getattr(options, name) for name in WIRE_SETTINGS}
    settings["temperature"] = list(settings["temperature"])
    return settings


class ClusterBackend:
    def __init__(self, config: ClusterConfig):
        self.config = config
        self.last_stats: dict = {}
        self._context = None
        if config.url.startswith("https://"):
            self._context = (
                ssl.create_default_context(cafile=config.ca_cert)
                if config.ca_cert
                else ssl.create_default_context()
            )

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: dict | None = None, data: bytes | None = None
    ) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.config.token}", "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = "audio/flac"
        request = urllib.request.Request(self.config.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(
                request, timeout=self.config.request_timeout_s, context=self._context
            ) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            payload = _json_or_text(exc)
            if exc.code in (401, 403):
                raise ClusterRefused(
                    f"the facility cluster at {self.config.url} refused this bay "
                    f"({_message(payload)}): ask the facility admin for a new token "
                    "(captionbridge cluster add-bay NAME) and put it in the facility config"
                ) from None
            if exc.code >= 500:
                raise _Down(f"HTTP {exc.code} {_message(payload)}") from None
            return exc.code, payload
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, ssl.SSLError):  # nothing was sent: the cluster's certificate is not trusted
                detail = getattr(reason, "verify_message", None) or reason.reason or reason
                raise _Down(f"TLS failed: {detail}; check ca_cert in the facility config") from None
            raise _Down(str(reason or exc)) from None

    def _expect(self, status: int, payload: dict, what: str) -> dict:
        if status >= 400:
            raise _Rejected(
                f"the facility cluster at {self.config.url} rejected {what} ({_message(payload)})"
            )
        return payload

    def info(self) -> dict:
        """The cluster's model and state (raises ``_Down`` when unreachable)."""
        return self._expect(*self._call("GET", "/v1/info"), "a status request")

    def _reach(self, what: str | None = None) -> dict:
        """The cluster's ``/v1/info``; ``what`` names a stage other than transcription for the messages."""
        here = (
            f"the {what} was done on this machine instead" if what else "transcribed on this machine instead"
        )
        undone = f"the {what} was not done" if what else "the job was not transcribed"
        deadline = time.monotonic() + (
            self.config.wait_timeout_s if self.config.on_unreachable == "wait" else 0
        )
        announced = False
        while True:
            try:
                return self.info()
            except _Rejected as exc:
                raise RemoteUnavailable(f"{exc}: {here}") from None
            except _Down as exc:
                if time.monotonic() >= deadline:
                    if self.config.on_unreachable == "wait":
                        raise ClusterUnreachable(
                            f"the facility cluster at {self.config.url} stayed unreachable for "
                            f"{self.config.wait_timeout_s:.0f} s ({exc}); {undone}. Start "
                            "the "
                            'cluster, or set on_unreachable = "fallback" to transcribe locally'
                        ) from None
                    raise RemoteUnavailable(
                        f"facility cluster at {self.config.url} unreachable ({exc}): {here} "
                        '(slower); set on_unreachable = "wait" in the facility config to wait for '
                        "the "
                        "cluster"
                    ) from None
                if not announced:
                    log.warning(
                        "facility cluster at %s unreachable (%s): waiting up to %.0f s",
                        self.config.url,
                        exc,
                        self.config.wait_timeout_s,
                    )
                    announced = True
                time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))

    # -- the backend
    # -------------------------------------------------------------------------------------------
    def transcribe_spans(self, requests: list[SpanRequest], options, report: Callable[[float], None]) -> dict:
        started = time.monotonic()
        stats = {
            "cluster": self.config.url,
            "cache_hits": 0,
            "uploaded_bytes": 0,
            "uploads_skipped": 0,
            "jobs": 0,
            "resubmitted": 0,
            "replica_seconds": 0.0,
            "warnings": [],
        }
        self.last_stats = stats
        info = self._reach()
        asked = str(options.model or "auto")
        if asked != "auto" and info.get("model_name") not in (asked, Path(asked).name):
            stats["warnings"].append(
                f"model {options.model!r} was asked for; the facility cluster transcribes with "
                f"{info.get('model_name')!r}"
            )
        settings = wire_settings(options)
        total = sum(r.seconds for r in requests) or 1.0
        done: dict[int, dict] = {}
        audio: dict[int, tuple[bytes, str]] = {}

        def progress() -> None:
            report(sum(requests_by[i].seconds for i in done) / total)

        requests_by = {r.index: r for r in requests}
        try:
            identities = {}
            for r in requests:
                if r.identity is None:  # nothing to hash without decoding: name it by its audio
                    audio[r.index] = encode_flac(r.audio())
                    identities[r.index] = "pcm:" + audio[r.index][1]
                else:
                    identities[r.index] = r.identity
            found = self._retrying(
                lambda: self._expect(
                    *self._call(
                        "POST",
                        "/v1/lookup",
                        {"settings": settings, "identities": [identities[r.index] for r in requests]},
                    ),
                    "a cache lookup",
                )
            )
            for r, hit in zip(requests, found.get("results", [])):
                if hit is not None:
                    done[r.index] = hit
                    stats["cache_hits"] += 1
            progress()
            jobs: dict[str, int] = {}
            for r in requests:
                if r.index in done:
                    continue
                job = self._submit(r, identities[r.index], settings, audio, stats)
                audio.pop(r.index, None)  # sent: the compressed span is not kept
                jobs[job] = r.index
            while jobs:
                for job_id in list(jobs):
                    index = jobs[job_id]
                    status, payload = self._retrying(lambda j=job_id: self._call("GET", f"/v1/jobs/{j}"))
                    if status == 404:  # the cluster lost it (ingress restarted): queue it again, once more
                        stats["resubmitted"] += 1
                        del jobs[job_id]
                        jobs[self._submit(requests_by[index], identities[index], settings, audio, stats)] = (
                            index
                        )
                        continue
                    payload = self._expect(status, payload, f"job {job_id}")
                    if payload.get("state") == "done":
                        done[index] = payload["result"]
                        stats["replica_seconds"] += float(
                            (payload["result"].get("replica") or {}).get("seconds", 0)
                        )
                        del jobs[job_id]
                        progress()
                    elif payload.get("state") == "failed":
                        raise RemoteUnavailable(
                            f"the facility cluster could not transcribe a span "
                            f"({payload.get('error')}): transcribed on this machine instead",
                            partial=done,
                        )
                if jobs:
                    time.sleep(self.config.poll_interval_s)
        except _Rejected as exc:  # the editor still gets captions; the admin gets a reason to look into
            raise RemoteUnavailable(
                f"{exc}: the remaining {len(requests) - len(done)} span(s) were transcribed on "
                "this machine instead; tell the facility admin (are the cluster and this bay on "
                "the same CaptionBridge version?)",
                partial=done,
            ) from None
        except _Down as exc:
            if self.config.on_unreachable == "wait":
                raise ClusterUnreachable(
                    f"the facility cluster at {self.config.url} went away during the job and "
                    f"stayed away for {self.config.wait_timeout_s:.0f} s ({exc}); the job was "
                    "not finished. Start the cluster and run it again (spans already done are "
                    'in the cluster\'s cache), or set on_unreachable = "fallback"'
                ) from None
            raise RemoteUnavailable(
                f"facility cluster at {self.config.url} went away during the job ({exc}): "
                f"the remaining {len(requests) - len(done)} span(s) were transcribed on this "
                "machine instead",
                partial=done,
            ) from None
        finally:
            stats["seconds"] = round(time.monotonic() - started, 3)
        return done

    def _submit(self, r: SpanRequest, identity: str, settings: dict, audio: dict, stats: dict) -> str:
        if r.index not in audio:
            audio[r.index] = encode_flac(r.audio())
        flac, digest = audio[r.index]
        missing = self._retrying(
            lambda: self._expect(
                *self._call("POST", "/v1/audio/missing", {"hashes": [digest]}), "an audio check"
            )
        )
        if digest in missing.get("missing", []):
            self._retrying(
                lambda: self._expect(*self._call("PUT", f"/v1/audio/{digest}", data=flac), "an audio upload")
            )
            stats["uploaded_bytes"] += len(flac)
        else:
            stats["uploads_skipped"] += 1
        body = {
            "request_id": uuid.uuid4().hex,
            "identity": identity,
            "audio": digest,
            "settings": settings,
            "seconds": r.seconds,
        }
        created = self._retrying(lambda: self._expect(*self._call("POST", "/v1/jobs", body), "a job"))
        stats["jobs"] += 1
        return created["id"]

    def _retrying(self, call):
        """``call()`` again while the cluster is briefly away (a proxy restarting, a node failing over); the
        requests are idempotent. Gives up with ``_Down`` after ``retry_window_s`` (``wait_timeout_s`` when
        told to wait)."""
        window = (
            self.config.wait_timeout_s if self.config.on_unreachable == "wait" else self.config.retry_window_s
        )
        deadline = time.monotonic() + max(window, self.config.retry_window_s)
        while True:
            try:
                return call()
            except _Down:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)


def _json_or_text(exc: urllib.error.HTTPError) -> dict:
    try:
        raw = exc.read()
        return json.loads(raw) if raw else {}
    except (ValueError, OSError):
        return {}


def _message(payload: dict) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return error.get("message") or error.get("code") or "no reason given"
    return (
        str(error or payload.get("detail") or "no reason given") if isinstance(payload, dict) else "no reason"
    )


class StageUnavailable(RemoteUnavailable):
    """The cluster is there but does not run this stage (or this direction): done on this machine."""


class ClusterStages:
    """Translation and speakers on the facility cluster, through the same front desk, token, retries and
    fall back rules as transcription (``ClusterBackend``). Each call raises ``RemoteUnavailable`` when the
    caller should do the work itself (the reason in its message), ``ClusterRefused`` when the bay is refused,
    ``ClusterUnreachable`` when told to wait and the cluster stayed away."""

    def __init__(self, backend: ClusterBackend):
        self.backend = backend
        self.config = backend.config
        self.last_stats: dict = {}

    # -- translation ---------------------------------------------------------------------------------------
    def translate(self, texts: list[str], source: str, target: str, num_hypotheses: int) -> list[list[str]]:
        info = self.backend._reach("translation")
        offered = (info.get("stages") or {}).get(TRANSLATE) or {}
        pair = direction(source, target)
        if pair not in offered:
            raise StageUnavailable(
                f"the facility cluster at {self.config.url} has no {source}->{target} translation model: "
                "translated on this machine instead"
            )
        stats = self.last_stats = {"cluster": self.config.url, "model": offered[pair], "texts": len(texts)}
        body = {"kind": TRANSLATE, "source": source, "target": target, "num_hypotheses": num_hypotheses}
        result = self._job(body | {"texts": list(texts)}, "translation", stats)
        hypotheses = result.get("hypotheses")
        if not isinstance(hypotheses, list) or len(hypotheses) != len(texts):
            raise RemoteUnavailable(
                f"the facility cluster at {self.config.url} answered {len(hypotheses or [])} translations "
                f"for {len(texts)} sentences: translated on this machine instead; tell the facility admin"
            )
        return hypotheses

    # -- speakers --------------------------------------------------------------------------------------------
    def diarize(self, samples, words: list[list], speakers, previous: dict | None) -> dict:
        """``words`` are [text, start, end] in seconds of ``samples`` (16 kHz mono); returns the replica's
        result: speaker_of_word, speakers, voices, seconds, windows."""
        info = self.backend._reach("speaker labelling")
        if not (info.get("stages") or {}).get(SPEAKERS):
            raise StageUnavailable(
                f"the facility cluster at {self.config.url} does not label speakers: labelled on this "
                "machine instead"
            )
        pcm = to_pcm16(samples)
        digest = pcm_hash(pcm)
        body = {
            "kind": SPEAKERS,
            "audio": digest,
            "words": words,
            "speakers": speakers,
            "previous": previous,
            "seconds": round(len(pcm) / 16000, 3),
        }
        stats = self.last_stats = {"cluster": self.config.url, "cache_hit": False, "uploaded_bytes": 0}
        with self._failing("speaker labelling"):
            hit = self.backend._retrying(
                lambda: self.backend._expect(
                    *self.backend._call("POST", "/v1/lookup", body | {"kind": SPEAKERS}), "a cache lookup"
                )
            )["results"][0]
            if hit is not None:
                stats["cache_hit"] = True
                return hit
            missing = self.backend._retrying(
                lambda: self.backend._expect(
                    *self.backend._call("POST", "/v1/audio/missing", {"hashes": [digest]}), "an audio check"
                )
            )
            if digest in missing.get("missing", []):
                flac, flac_digest = encode_flac(samples)
                assert flac_digest == digest
                self.backend._retrying(
                    lambda: self.backend._expect(
                        *self.backend._call("PUT", f"/v1/audio/{digest}", data=flac), "an audio upload"
                    )
                )
                stats["uploaded_bytes"] = len(flac)
        return self._job(body, "speaker labelling", stats)

    # -- one job -------------------------------------------------------------------------------------------
    def _job(self, body: dict, what: str, stats: dict) -> dict:
        """Submit ``body`` (a fresh request id; the same one if the submit is resent) and wait for its
        result; a job the cluster lost (its front desk restarted) is submitted again."""
        started = time.monotonic()
        with self._failing(what):
            resubmitted = 0
            while True:
                created = self.backend._retrying(
                    lambda: self.backend._expect(
                        *self.backend._call("POST", "/v1/jobs", body | {"request_id": uuid.uuid4().hex}),
                        f"a {what} job",
                    )
                )
                job_id = created["id"]
                payload = created
                while payload.get("state") not in ("done", "failed"):
                    time.sleep(self.config.poll_interval_s)
                    status, payload = self.backend._retrying(
                        lambda: self.backend._call("GET", f"/v1/jobs/{job_id}")
                    )
                    if status == 404:
                        break
                    payload = self.backend._expect(status, payload, f"job {job_id}")
                if payload.get("state") == "done":
                    stats.update(seconds=round(time.monotonic() - started, 3), resubmitted=resubmitted)
                    return payload["result"]
                if payload.get("state") == "failed":
                    raise RemoteUnavailable(
                        f"the facility cluster could not do the {what} ({payload.get('error')}): done on "
                        "this machine instead"
                    )
                resubmitted += 1  # lost with the front desk: once more

    def _failing(self, what: str):
        return _StageErrors(self.config, what)


class _StageErrors:
    """Turns the cluster going away or rejecting a request into the bay's rule: local work with the reason,
    or (told to wait) a clear failure."""

    def __init__(self, config: ClusterConfig, what: str):
        self.config, self.what = config, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, _Rejected):
            raise RemoteUnavailable(
                f"{exc}: the {self.what} was done on this machine instead; tell the facility admin (are the "
                "cluster and this bay on the same CaptionBridge version?)"
            ) from None
        if isinstance(exc, _Down):
            if self.config.on_unreachable == "wait":
                raise ClusterUnreachable(
                    f"the facility cluster at {self.config.url} went away during the {self.what} and stayed "
                    f"away for {self.config.wait_timeout_s:.0f} s ({exc}); the job was not finished. Start "
                    'the cluster and run it again, or set on_unreachable = "fallback"'
                ) from None
            raise RemoteUnavailable(
                f"facility cluster at {self.config.url} went away during the {self.what} ({exc}): done on "
                "this machine instead"
            ) from None
        return False
