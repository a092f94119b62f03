"""The Ray Serve application: ``Transcriber`` replicas holding a warm Whisper model (one per GPU, or CPU
replicas), autoscaled between a minimum and a maximum, behind ``Ingress``, the facility's HTTP front door
(FastAPI on Serve's proxy, HTTPS when it listens beyond loopback). The ingress runs on the head node, where
the cluster's data folder (bay tokens, shared transcript cache, audio store, access log) lives; its state and
rules are ``core.cluster.hub``.
"""

import asyncio
import logging
import os
import time

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
    GPU); on a GPU, a span's speech chunks are decoded in batches (faster-whisper's batched pipeline)."""

    def __init__(self, model: str | None, device: str, compute_type: str, cpu_threads: int):
        from ...core.speech.models import load_whisper, resolve_device, resolve_model

        self.model_name = model
        self.device = device
        self.compute_type = compute_type
        self.resolved = resolve_model(model)
        self.model = load_whisper(model, device, compute_type, cpu_threads)
        self.compute = ":".join(resolve_device(device, compute_type))

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


def _error(exc: CaptionBridgeError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)


@serve.deployment(max_ongoing_requests=10000, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class Ingress:
    def __init__(self, transcriber, data_dir: str, max_inflight: int, max_upload_bytes: int):
        self.transcriber = transcriber
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
                self._hub = Hub(
                    self.data_dir, self._run_on_replica, model, self.max_inflight, self.max_upload_bytes
                )
                asyncio.get_running_loop().create_task(self._hub.run_forever())
        return self._hub

    async def _run_on_replica(self, flac: bytes, audio_hash: str, settings: dict) -> dict:
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
            return await self.transcriber.transcribe.remote(flac, audio_hash, settings)
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
        }

    @api.post("/v1/lookup")
    async def lookup(self, request: Request):
        try:
            hub, bay = await self._bay(request)
            body = await self._json(request)
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
        return (await self.hub()).stats()


def build_app(
    model: str | None,
    device: str,
    data_dir: str,
    min_replicas: int,
    max_replicas: int,
    cpus_per_replica: float,
    max_upload_bytes: int,
):
    """The bound application ``serve.run`` deploys."""
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
                "target_ongoing_requests": 1,
                "upscale_delay_s": 5,
                "downscale_delay_s": 600,
            }
        }
    )
    transcriber = Transcriber.options(ray_actor_options=actor, **scaling).bind(
        model, device, compute_type, max(1, int(cpus_per_replica)) if device != "cuda" else 0
    )
    ingress = Ingress.options(
        ray_actor_options={"num_cpus": 0, "resources": {"node:__internal_head__": 0.001}}
    )
    return ingress.bind(transcriber, data_dir, max_replicas, max_upload_bytes)
