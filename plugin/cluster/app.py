"""The Ray Serve application: ``Transcriber`` replicas holding a warm Whisper model (one per GPU, or CPU
replicas), autoscaled between a minimum and a maximum, and ``Stages`` replicas holding the offline
translation models and the voice encoder (translation requests from different bays batched into one model
call with ``serve.batch``), behind ``Ingress``, the facility's HTTP front door (FastAPI on Serve's proxy,
HTTPS when it listens beyond loopback). The ingress runs on the head node, where the cluster's data folder
(bay tokens, shared cache, audio store, access log) lives; its state and rules are ``core.cluster.hub``.
"""

import asyncio
import logging
import os
import time
from collections import Counter

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from ...core.cluster.hub import Hub, ReplicaLost
from ...core.errors import CaptionBridgeError

APP_NAME = "captionbridge"
log = logging.getLogger("captionbridge.cluster")
api = FastAPI(title="CaptionBridge facility cluster", docs_url=None, redoc_url=None, openapi_url=None)


@serve.deployment(max_ongoing_requests=1, health_check_period_s=5, graceful_shutdown_timeout_s=5)
class Transcriber:
    """One warm model. One span at a time per replica (CTranslate2 already uses the replica's cores or its
    GPU); on a GPU, a span's speech chunks are decoded in batches (faster-whisper's batched pipeline).

    With ``whisper_batch`` above 1 (opt-in, ``cluster deploy --whisper-batch-size``), spans that arrive
    together are gathered by ``serve.batch`` (up to that many, or what came within ``batch_wait_s``) and
    those with one window of speech and the same settings are decoded in one batch
    (``core.cluster.whisper_batch``: first temperature only, no fallback)."""

    def __init__(
        self,
        model: str | None,
        device: str,
        compute_type: str,
        cpu_threads: int,
        whisper_batch: int = 1,
        batch_wait_s: float = 0.02,
    ):
        import threading

        from ...core.speech.models import load_whisper, resolve_device, resolve_model

        self.model_name = model
        self.device = device
        self.compute_type = compute_type
        self.resolved = resolve_model(model)
        self.model = load_whisper(model, device, compute_type, cpu_threads)
        self.compute = ":".join(resolve_device(device, compute_type))
        self.whisper_batch = max(1, int(whisper_batch))
        if self.whisper_batch > 1:
            # batched decodes are not today's decodes: the shared cache keeps their transcripts apart
            self.compute += "+whisper-batch"
        self.transcribe_batched.set_max_batch_size(self.whisper_batch)
        self.transcribe_batched.set_batch_wait_timeout_s(max(0.0, float(batch_wait_s)))
        self.decode_lock = threading.Lock()
        self.batches: Counter = Counter()

    def describe(self) -> dict:
        import dataclasses

        import ray

        from ...core.speech.word_timing import lag_model_for

        lag = lag_model_for(
            self.resolved.name, self.resolved.path if os.path.isdir(self.resolved.path) else None
        )
        return {
            "model_id": self.resolved.cache_key,
            "model_name": self.resolved.name,
            "compute": self.compute,
            "timing": dataclasses.asdict(lag),
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "whisper_batch": self.whisper_batch,
            "batches": dict(self.batches),
        }

    def transcribe(self, flac: bytes, audio_hash: str, settings: dict) -> dict:
        import ctranslate2

        from ...core.cluster.wire import decode_flac
        from ...core.speech.transcribe import TranscribeOptions, transcribe_span_samples

        started = time.perf_counter()
        # a span's words must not depend on which spans this replica decoded before (temperature fallback
        # samples)
        ctranslate2.set_random_seed(0)
        samples = decode_flac(flac, audio_hash)
        options = TranscribeOptions(
            **settings, model=self.model_name, device=self.device, compute_type=self.compute_type, cache=False
        )
        result = transcribe_span_samples(samples, options, self.model)
        result["replica"] = {
            "seconds": round(time.perf_counter() - started, 3),
            "audio_seconds": round(len(samples) / 16000, 3),
            "compute": self.compute,
        }
        return result

    # -- batched (opt-in)
    async def transcribe_in_batch(self, flac: bytes, audio_hash: str, settings: dict) -> dict:
        """``transcribe``, through the batch (what the ingress calls when Whisper batching is on)."""
        answer = await self.transcribe_batched({"flac": flac, "audio_hash": audio_hash, "settings": settings})
        if isinstance(answer, BaseException):
            raise answer
        return answer

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.02)
    async def transcribe_batched(self, requests: list) -> list:
        import dataclasses

        import ctranslate2

        from ...core.cluster.whisper_batch import WINDOW, transcribe_together
        from ...core.cluster.wire import decode_flac
        from ...core.speech.transcribe import TranscribeOptions

        started = time.perf_counter()
        spans, answers, slots = [], [None] * len(requests), []
        for n, request in enumerate(requests):
            try:
                samples = await asyncio.to_thread(decode_flac, request["flac"], request["audio_hash"])
                options = TranscribeOptions(
                    **request["settings"],
                    model=self.model_name,
                    device=self.device,
                    compute_type=self.compute_type,
                    cache=False,
                )
            except Exception as exc:  # this span's own failure, not its batch's
                answers[n] = exc
                continue
            if options.batch_size == 0 and len(samples) <= WINDOW:
                # one window: the sequential decode the batch stands in for (a GPU would otherwise decode the
                # span's chunks in its own batched pipeline, alone)
                options = dataclasses.replace(options, batch_size=1)
            spans.append((samples, options))
            slots.append(n)
        results, meeting = await asyncio.to_thread(
            transcribe_together, self.model, spans, self.decode_lock, lambda: ctranslate2.set_random_seed(0)
        )
        seconds = round(time.perf_counter() - started, 3)
        for slot, (n, (samples, _), result) in enumerate(zip(slots, spans, results)):
            if isinstance(result, dict):
                result["replica"] = {
                    "seconds": round(seconds / len(spans), 3),  # its share of the batch
                    "batch_seconds": seconds,
                    "audio_seconds": round(len(samples) / 16000, 3),
                    "compute": self.compute,
                    "batched_requests": len(requests),
                    "decoded_together": meeting.together_with(slot),  # 1: decoded on its own
                }
            answers[n] = result
        self.batches["batches"] += 1
        self.batches["requests"] += len(requests)
        self.batches["largest"] = max(self.batches["largest"], len(requests))
        self.batches["decoded_together"] += sum(meeting.batched)
        self.batches["decoded_alone"] += len(meeting.alone)
        self.batches["largest_decoded_together"] = max(
            [self.batches["largest_decoded_together"], *meeting.batched]
        )
        self.batches["failed_batches"] += 1 if meeting.failure else 0
        return answers


def _model_id(*parts, folder=None) -> str:
    """A model's identity for the shared cache: what it is and how it runs, plus the content of its files."""
    from ...core.speech.transcript_cache import cache_key, media_fingerprint

    files = {}
    if folder is not None and os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                files[name] = media_fingerprint(path)
    elif folder is not None and os.path.isfile(folder):
        files[os.path.basename(folder)] = media_fingerprint(folder)
    return cache_key(parts=[str(p) for p in parts], files=files)


@serve.deployment(max_ongoing_requests=64, health_check_period_s=5, graceful_shutdown_timeout_s=5)
class Stages:
    """Translation and speakers. One warm translation model per direction it can find (the folders given at
    deploy, else the ones ``resolve_translator`` finds offline on the node) and the voice encoder.

    Translation requests that arrive together (from any bays) are batched: ``serve.batch`` gathers up to
    ``max_batch_size`` of them (or what came within ``batch_wait_s``), and their sentences go to the model in
    one call, sorted by length into the model's own batches. Speaker labelling runs ``diarize`` on the
    request's mix and words."""

    def __init__(
        self,
        translation_models: list,
        translate: bool,
        speakers: bool,
        device: str,
        max_batch_size: int,
        batch_wait_s: float,
    ):
        from ...core.errors import CaptionBridgeError as Refusal
        from ...core.translate.backends import resolve_translator

        self.device = device
        self.translators: dict = {}
        self.translation_models: dict = {}
        self.problems: list = []
        for source, target in (("en", "zh"), ("zh", "en")) if translate else ():
            for model in list(translation_models) or [None]:
                try:
                    translator = resolve_translator(source, target, model, device, offline=True)
                except Refusal as exc:  # not this direction, or nothing offline
                    self.problems.append(f"{source}->{target} {model or '(default)'}: {exc}")
                    continue
                folder = getattr(getattr(translator, "folder", None), "path", None) or getattr(
                    translator, "path", None
                )
                self.translators[f"{source}-{target}"] = translator
                self.translation_models[f"{source}-{target}"] = {
                    "model_id": _model_id(
                        translator.backend,
                        translator.name,
                        translator.device,
                        getattr(translator, "compute_type", ""),
                        folder=str(folder) if folder else None,
                    ),
                    "model_name": translator.name,
                }
                break
        self.encoder = None
        self.speaker_model = None
        if speakers:
            from ...core.speech.speakers import SpeakerEncoder, encoder_weights_path

            try:
                self.encoder = SpeakerEncoder(device)
                self.speaker_model = {
                    "model_id": _model_id(
                        "resemblyzer", str(self.encoder.device), folder=str(encoder_weights_path())
                    ),
                    "model_name": "resemblyzer",
                }
            except (Refusal, ImportError) as exc:  # no voice model, or no torch on this node
                self.problems.append(f"speakers: {exc}")
        self.translate_batched.set_max_batch_size(max(1, int(max_batch_size)))
        self.translate_batched.set_batch_wait_timeout_s(max(0.0, float(batch_wait_s)))
        self.batches: Counter = Counter()

    def describe(self) -> dict:
        return {
            "translate": self.translation_models,
            "speakers": self.speaker_model,
            "problems": self.problems,
            "batches": dict(self.batches),
            "pid": os.getpid(),
        }

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def translate_batched(self, requests: list) -> list:
        groups: dict = {}
        for n, request in enumerate(requests):
            groups.setdefault((request["source"], request["target"], request["num_hypotheses"]), []).append(n)
        out: list = [None] * len(requests)
        for (source, target, hypotheses), members in groups.items():
            translator = self.translators.get(f"{source}-{target}")
            if translator is None:
                raise RuntimeError(f"no {source}->{target} translation model on this replica")
            texts = [t for n in members for t in requests[n]["texts"]]
            started = time.perf_counter()
            answers = await asyncio.to_thread(translator.translate, texts, source, target, hypotheses, 16)
            seconds = round(time.perf_counter() - started, 4)
            self.batches["busy_s"] = round(self.batches["busy_s"] + seconds, 3)  # time in the model
            at = 0
            for n in members:
                count = len(requests[n]["texts"])
                out[n] = {
                    "hypotheses": answers[at : at + count],
                    "replica": {"seconds": seconds, "batched_requests": len(members), "texts": len(texts)},
                }
                at += count
        self.batches["batches"] += 1
        self.batches["requests"] += len(requests)
        self.batches["largest"] = max(self.batches["largest"], len(requests))
        return out

    async def translate(self, request: dict) -> dict:
        return await self.translate_batched(request)

    async def diarize(self, flac: bytes, audio_hash: str, request: dict) -> dict:
        return await asyncio.to_thread(self._diarize, flac, audio_hash, request)

    def _diarize(self, flac: bytes, audio_hash: str, request: dict) -> dict:
        from ...core.cluster.wire import decode_flac
        from ...core.model import Word
        from ...core.speech.speakers import diarize

        if self.encoder is None:
            raise RuntimeError("this replica has no voice model")
        started = time.perf_counter()
        samples = decode_flac(flac, audio_hash)
        words = [Word(text, start, end) for text, start, end in request["words"]]
        result = diarize(
            samples, words, request["speakers"], encoder=self.encoder, previous=request.get("previous")
        )
        return {
            "speaker_of_word": [w.speaker for w in result.words],
            "speakers": list(result.speakers),
            "voices": result.voices,
            "seconds": result.seconds,
            "windows": result.windows,
            "replica": {
                "seconds": round(time.perf_counter() - started, 3),
                "audio_seconds": round(len(samples) / 16000, 3),
            },
        }


def _error(exc: CaptionBridgeError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)


@serve.deployment(max_ongoing_requests=10000, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class Ingress:
    def __init__(
        self,
        transcriber,
        data_dir: str,
        max_inflight: int,
        max_upload_bytes: int,
        stages=None,
        stage_inflight: int = 1,
        speaker_inflight: int = 1,
        whisper_batch: int = 1,
    ):
        self.transcriber = transcriber
        self.whisper_batch = max(1, int(whisper_batch))
        self.stages = stages
        self.stage_inflight = stage_inflight
        self.speaker_inflight = speaker_inflight
        self.data_dir = data_dir
        self.max_inflight = max_inflight
        self.max_upload_bytes = max_upload_bytes
        self._hub: Hub | None = None
        self._hub_lock = asyncio.Lock()

    async def hub(self) -> Hub:
        async with self._hub_lock:
            if self._hub is None:
                model = await self.transcriber.describe.remote()
                model = {k: model[k] for k in ("model_id", "model_name", "compute", "timing")}
                stages = {}
                if self.stages is not None:
                    offered = await self.stages.describe.remote()
                    for problem in offered["problems"]:
                        log.warning("stage not offered: %s", problem)
                    if offered["translate"]:
                        stages["translate"] = {
                            "runner": self._translate_on_replica,
                            "models": offered["translate"],
                            "max_inflight": self.stage_inflight,
                        }
                    if offered["speakers"]:
                        stages["speakers"] = {
                            "runner": self._diarize_on_replica,
                            "model": offered["speakers"],
                            "max_inflight": self.speaker_inflight,
                        }
                self._hub = Hub(
                    self.data_dir,
                    self._run_on_replica,
                    model,
                    self.max_inflight,
                    self.max_upload_bytes,
                    stages=stages,
                )
                asyncio.get_running_loop().create_task(self._hub.run_forever())
        return self._hub

    async def _run_on_replica(self, flac: bytes, audio_hash: str, settings: dict) -> dict:
        t = self.transcriber
        method = t.transcribe_in_batch if self.whisper_batch > 1 else t.transcribe
        return await self._on_replica(lambda: method.remote(flac, audio_hash, settings))

    async def _translate_on_replica(self, request: dict) -> dict:
        return await self._on_replica(lambda: self.stages.translate.remote(request))

    async def _diarize_on_replica(self, flac: bytes, audio_hash: str, request: dict) -> dict:
        return await self._on_replica(lambda: self.stages.diarize.remote(flac, audio_hash, request))

    async def _on_replica(self, call) -> dict:
        """``call()``'s answer; a replica (or its node) that died before answering is ``ReplicaLost``."""
        import ray.exceptions as rex

        lost = tuple(
            getattr(rex, name)
            for name in (
                "RayActorError",
                "ActorDiedError",
                "ActorUnavailableError",
                "NodeDiedError",
                "WorkerCrashedError",
            )
            if hasattr(rex, name)
        )
        try:
            return await call()
        except lost as exc:
            raise ReplicaLost(
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None

    async def _bay(self, request: Request) -> tuple[Hub, str]:
        hub = await self.hub()
        return hub, hub.authenticate(request.headers.get("authorization"))

    async def _json(self, request: Request) -> dict:
        try:
            return await request.json()
        except ValueError:
            raise CaptionBridgeError("the request body is not JSON") from None

    # -- routes
    # ---------------------------------------------------------------------------------------------------
    @api.get("/v1/info")
    async def info(self, request: Request):
        try:
            hub, bay = await self._bay(request)
        except CaptionBridgeError as exc:
            return _error(exc)
        return {
            "bay": bay,
            "model": hub.model["model_id"],
            "model_name": hub.model["model_name"],
            "compute": hub.model["compute"],
            "queued": len(hub.queue),
            "inflight": hub.inflight,
            "stages": hub.offered(),
        }

    @api.post("/v1/lookup")
    async def lookup(self, request: Request):
        try:
            hub, bay = await self._bay(request)
            body = await self._json(request)
            if body.get("kind") not in (None, "transcribe"):
                return {"results": hub.lookup_stage(bay, body.get("kind"), body)}
            return {"results": hub.lookup(bay, body.get("settings"), body.get("identities"))}
        except CaptionBridgeError as exc:
            return _error(exc)

    @api.post("/v1/audio/missing")
    async def audio_missing(self, request: Request):
        try:
            hub, bay = await self._bay(request)
            body = await self._json(request)
            return {"missing": hub.missing_audio(bay, body.get("hashes"))}
        except CaptionBridgeError as exc:
            return _error(exc)

    @api.put("/v1/audio/{digest}")
    async def audio_put(self, digest: str, request: Request):
        try:
            hub, bay = await self._bay(request)
            length = int(request.headers.get("content-length") or 0)
            if length > hub.max_upload_bytes:
                raise CaptionBridgeError(f"audio of {length} bytes is over the cluster's limit")
            data = await request.body()
            await asyncio.to_thread(hub.put_audio, bay, digest, data)
            return JSONResponse({"stored": digest}, status_code=201)
        except CaptionBridgeError as exc:
            return _error(exc)

    @api.post("/v1/jobs")
    async def submit(self, request: Request):
        try:
            hub, bay = await self._bay(request)
            return JSONResponse(hub.submit(bay, await self._json(request)), status_code=201)
        except CaptionBridgeError as exc:
            return _error(exc)

    @api.get("/v1/jobs/{job_id}")
    async def job(self, job_id: str, request: Request):
        try:
            hub, bay = await self._bay(request)
            return hub.view(bay, job_id)
        except CaptionBridgeError as exc:
            return _error(exc)

    # -- for `captionbridge cluster status` (through a Serve handle, not HTTP)
    # ------------------------------------
    async def stats(self) -> dict:
        hub = await self.hub()
        out = hub.stats()
        if self.whisper_batch > 1:
            try:
                out["transcriber_replica"] = await asyncio.wait_for(self.transcriber.describe.remote(), 10)
            except Exception as exc:  # a replica restarting: the rest of the status still counts
                out["transcriber_replica"] = {"error": type(exc).__name__}
        if self.stages is not None and hub.stages:
            try:
                out["stage_replica"] = await asyncio.wait_for(self.stages.describe.remote(), 10)
            except Exception as exc:  # a replica restarting: the rest of the status still counts
                out["stage_replica"] = {"error": type(exc).__name__}
        return out


def build_app(
    model: str | None,
    device: str,
    data_dir: str,
    min_replicas: int,
    max_replicas: int,
    cpus_per_replica: float,
    max_upload_bytes: int,
    stages: tuple = ("translate", "speakers"),
    translation_models: tuple = (),
    stage_replicas: int = 1,
    stage_cpus: float = 1.0,
    max_batch_size: int = 16,
    batch_wait_s: float = 0.02,
    whisper_batch: int = 1,
):
    """The bound application ``serve.run`` deploys."""
    whisper_batch = max(1, int(whisper_batch))
    compute_type = "auto"
    actor = {"num_cpus": cpus_per_replica}
    if device == "cuda":
        actor = {"num_cpus": 1, "num_gpus": 1}
    scaling = (
        {"num_replicas": min_replicas}
        if min_replicas == max_replicas
        else {
            "autoscaling_config": {
                "min_replicas": min_replicas,
                "max_replicas": max_replicas,
                "target_ongoing_requests": whisper_batch,
                "upscale_delay_s": 5,
                "downscale_delay_s": 600,
            }
        }
    )
    transcriber = Transcriber.options(
        ray_actor_options=actor, max_ongoing_requests=whisper_batch, **scaling
    ).bind(
        model,
        device,
        compute_type,
        max(1, int(cpus_per_replica)) if device != "cuda" else 0,
        whisper_batch,
        batch_wait_s,
    )
    ingress = Ingress.options(
        ray_actor_options={"num_cpus": 0, "resources": {"node:__internal_head__": 0.001}}
    )
    helper = None
    if stages:
        stage_actor = {"num_cpus": stage_cpus}
        if device == "cuda":
            stage_actor = {"num_cpus": 1, "num_gpus": 0.25}  # small models: a quarter of a GPU each
        helper = Stages.options(
            ray_actor_options=stage_actor,
            num_replicas=stage_replicas,
            max_ongoing_requests=max(4, 2 * max_batch_size),
        ).bind(
            list(translation_models),
            "translate" in stages,
            "speakers" in stages,
            device,
            max_batch_size,
            batch_wait_s,
        )
    # enough translation requests in flight for whole batches on every stage replica; one mix per replica at
    # a time for speakers (a feature's diarization holds its replica's cores, others queue fairly meanwhile)
    stage_inflight = max(2, stage_replicas * max(1, max_batch_size))
    # with Whisper batching, enough spans in flight to fill every replica's batch
    return ingress.bind(
        transcriber,
        data_dir,
        max_replicas * whisper_batch,
        max_upload_bytes,
        helper,
        stage_inflight,
        stage_replicas,
        whisper_batch,
    )
