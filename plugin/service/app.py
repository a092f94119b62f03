"""The HTTP API of the local engine (FastAPI). ``create_app`` wires the routes to a ``JobService``.

Security, in front of every route (``LocalGuard``): the Host must be the loopback name the service answers on
(defeats DNS rebinding), a browser's cross-origin ``Origin`` is refused with 403 (no CORS headers are ever
sent), ``Authorization: Bearer <token>`` is required (401), and request bodies are capped (413).
"""

from __future__ import annotations

import hmac
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ... import __version__
from ...core.errors import CaptionBridgeError
from . import schemas
from .errors import BadRequest, EngineUnavailable, PayloadTooLarge, UnsupportedMediaType, shown
from .intake import check_timeline, resolve_timeline_path, safe_upload_name
from .jobs import JobService
from .options import OPTIONS_SCHEMA, BadOption, validate_options
from .review import ReviewGate, is_review_path, register_review
from .review_jobs import ReviewJobs

log = logging.getLogger("captionbridge.service")

DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
API_TITLE = "CaptionBridge local engine"


@dataclass
class GuardSettings:
    token: str
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    # Host names the service answers to; None = any (only when the user bound a non-loopback address on
    # purpose).
    allowed_hosts: frozenset[str] | None = field(default=LOOPBACK_HOSTS)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"error": err}


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class LocalGuard:
    """Pure ASGI middleware: Host, Origin, token and body-size checks before any route runs."""

    def __init__(self, app, settings: GuardSettings, review=None):
        self.app = app
        self.settings = settings
        self.review = review  # review.ReviewGate: /review paths use the page's session instead of the token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.review is not None and is_review_path(scope.get("path", "")):
            host_problem = self._check_host(headers)
            return await self.review(scope, receive, send, self.app, headers, host_problem)
        problem = self._check(headers)
        if problem is not None:
            status, code, message, extra = problem
            return await _send_json(send, status, error_body(code, message), extra)
        if scope.get("method") == "HEAD":  # every GET route answers HEAD: headers of the GET, no body
            scope = {**scope, "method": "GET"}
            send = _headers_only(send)
        limit = self.settings.max_upload_bytes
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(
                        f"request body over the {limit}-byte upload limit", details={"limit_bytes": limit}
                    )
            return message

        return await self.app(scope, limited_receive, send)

    def _check_host(self, headers: dict[str, str]):
        allowed = self.settings.allowed_hosts
        host = headers.get("host", "")
        if allowed is not None and _host_name(host) not in allowed:
            return (
                403,
                "forbidden_host",
                f"requests must address the engine as {', '.join(sorted(allowed))}, not {shown(host, 80)}",
                (),
            )
        return None

    def _check(self, headers: dict[str, str]):
        host_problem = self._check_host(headers)
        if host_problem is not None:
            return host_problem
        origin = headers.get("origin")
        # The token API is for scripts, not pages, so every Origin is foreign here, "null" too (sandboxed
        # iframes and data: pages send it); the Premiere panel talks through Node's http module, which sends
        # no Origin at all. Our own review page lives under /review with its own session and Origin checks
        # (review.ReviewGate).
        if origin is not None:
            return (
                403,
                "forbidden_origin",
                "browser pages may not use the CaptionBridge engine (cross-origin request refused)",
                (),
            )
        auth = headers.get("authorization", "")
        scheme, _, supplied = auth.partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            return (
                401,
                "unauthorized",
                (
                    "missing token: send 'Authorization: Bearer <token>' with the token "
                    "from the CaptionBridge config folder's 'token' file"
                ),
                ((b"www-authenticate", b"Bearer"),),
            )
        if not hmac.compare_digest(supplied.strip().encode(), self.settings.token.encode()):
            return (
                401,
                "unauthorized",
                (
                    "wrong token: read it again from the CaptionBridge config folder's "
                    "'token' file (it changes when the file is deleted)"
                ),
                ((b"www-authenticate", b"Bearer"),),
            )
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.settings.max_upload_bytes
            except ValueError:
                return (400, "bad_request", "unreadable Content-Length header", ())
            if too_big:
                return (
                    413,
                    "payload_too_large",
                    f"request body of {length} bytes is over the {self.settings.max_upload_bytes}-byte limit",
                    (),
                )
        return None


def _headers_only(send):
    async def send_headers(message):
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers


MAX_MESSAGE = 1000


def _capped(value: Any, limit: int = MAX_MESSAGE) -> Any:
    """An error body never echoes megabytes a client sent: strings cut, lists and dicts shortened."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"... ({len(value)} characters)"
    if isinstance(value, dict):
        return {_capped(k, 200): _capped(v, limit) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_capped(v, limit) for v in value[:50]]
    return value


async def _send_json(send, status: int, body: dict, extra_headers=()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "bad_request",
    500: "internal_error",
    503: "unavailable",
}


def create_app(service: JobService, settings: GuardSettings) -> FastAPI:
    app = FastAPI(
        title=API_TITLE,
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description=schemas.API_DESCRIPTION,
        openapi_url="/openapi.json",
    )
    app.state.service = service

    @app.exception_handler(CaptionBridgeError)
    async def _caption_error(request: Request, exc: CaptionBridgeError):
        return JSONResponse({"error": _capped(exc.to_dict())}, status_code=exc.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = f"no such endpoint {request.method} {request.url.path}: see GET /openapi.json"
        elif exc.status_code == 405:  # Starlette names only the first matching route's methods
            allowed = sorted(_allowed_methods(app, request.scope))
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            error_body("bad_request", _capped(f"{where}: {first.get('msg', 'invalid request')}")),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "internal_error",
                f"internal error ({type(exc).__name__}) on {request.method} "
                f"{request.url.path[:200]}: a CaptionBridge bug, the engine log has the details",
            ),
            status_code=500,
        )

    @app.get(
        "/v1/health",
        tags=["service"],
        operation_id="health",
        summary="Is the engine up",
        responses=schemas.responses(schemas.Health),
    )
    def health():
        if not service.store.check():
            raise EngineUnavailable(f"the engine takes no new jobs: {service.store.broken}")
        return {"status": "ok", "version": __version__, **service.stats(), "warm_models": warm_models()}

    @app.get(
        "/v1/models",
        tags=["service"],
        operation_id="listModels",
        summary="Models the engine can use",
        responses=schemas.responses(schemas.ModelList),
    )
    def models():
        return list_models()

    @app.post(
        "/v1/models/reload",
        tags=["service"],
        operation_id="reloadModels",
        summary="Switch new jobs to the active fine-tuned model",
        responses=schemas.responses(schemas.ActiveModel),
    )
    def reload_models():
        """Jobs resolve their model once when they start, so a running job keeps the model it began with; new
        jobs take the model ``captionbridge finetune activate`` chose. Warm copies of other models are let go,
        except the previous one (kept for a rollback)."""
        return reload_active_model()

    @app.post(
        "/v1/jobs",
        tags=["jobs"],
        operation_id="submitJob",
        status_code=202,
        summary="Submit a timeline for captioning",
        responses=schemas.responses(schemas.JobStatus, 202, 400, 413, 415, 422, 503),
        openapi_extra=schemas.submit_request_body(OPTIONS_SCHEMA),
    )
    async def submit(request: Request):
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/json":
            job = await _submit_json(request)
        elif ctype == "multipart/form-data":
            job = await _submit_upload(request)
        else:
            raise UnsupportedMediaType(
                'send the job as application/json {"timeline_path", "options"} or as '
                "multipart/form-data with a 'timeline' file and an 'options' JSON field"
            )
        return JSONResponse(job.status(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    async def _submit_json(request: Request):
        body = await request.body()
        try:
            data = json.loads(body or b"null")
        except RecursionError:
            raise BadRequest(
                'request body nests JSON too deeply: a job is {"timeline_path", "options"}'
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest('request body must be a JSON object {"timeline_path": ..., "options": {...}}')
        unknown = sorted(set(data) - {"timeline_path", "options"})
        if unknown:
            raise BadRequest(
                f'unknown field {shown(unknown[0])}: a job is {{"timeline_path", "options"}}',
                details={"field": shown(unknown[0], 200)},
            )
        if "timeline_path" not in data:
            raise BadRequest("timeline_path is required (or upload the timeline as multipart/form-data)")
        options = validate_options(data.get("options"))
        path = resolve_timeline_path(data["timeline_path"])
        await run_in_threadpool(check_timeline, path)
        return service.submit(service.store.new_id(), path, options, uploaded=False)

    async def _submit_upload(request: Request):
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=settings.max_upload_bytes)
        except CaptionBridgeError:
            raise
        except Exception as exc:  # malformed multipart, too many parts
            raise BadRequest(f"unreadable multipart body: {getattr(exc, 'detail', None) or exc}") from None
        try:
            unknown = sorted(set(form.keys()) - {"timeline", "options"})
            if unknown:
                raise BadRequest(
                    f"unknown form field {shown(unknown[0])}: send 'timeline' (file) and 'options' (JSON)",
                    details={"field": shown(unknown[0], 200)},
                )
            upload = form.get("timeline")
            if not isinstance(upload, UploadFile):
                raise BadRequest("form field 'timeline' must be the timeline file")
            raw_options = form.get("options")
            if isinstance(raw_options, UploadFile):
                raw_options = (await raw_options.read()).decode("utf-8", "replace")
            try:
                parsed = json.loads(raw_options) if raw_options not in (None, "") else None
            except RecursionError:
                raise BadOption(
                    "form field 'options' nests JSON too deeply: send a flat options object"
                ) from None
            except ValueError as exc:
                raise BadOption(f"form field 'options' is not valid JSON: {exc}") from None
            options = validate_options(parsed)
            job_id = service.store.new_id()
            folder = service.job_dir(job_id) / "input"
            path = folder / safe_upload_name(upload.filename)
            try:
                await run_in_threadpool(_save_upload, upload, path, settings.max_upload_bytes)
                await run_in_threadpool(check_timeline, path, max_bytes=settings.max_upload_bytes)
                return service.submit(job_id, path, options, uploaded=True)
            except BaseException:
                shutil.rmtree(service.job_dir(job_id), ignore_errors=True)  # nothing half-written
                raise
        finally:
            await form.close()

    @app.get(
        "/v1/jobs",
        tags=["jobs"],
        operation_id="listJobs",
        summary="All jobs the engine keeps, oldest first",
        responses=schemas.responses(schemas.JobList),
    )
    def list_jobs():
        return {"jobs": [job.status() for job in service.store.list()]}

    @app.get(
        "/v1/jobs/{job_id}",
        tags=["jobs"],
        operation_id="getJob",
        summary="State, stage, progress and ETA of a job",
        responses=schemas.responses(schemas.JobStatus, 200, 404),
    )
    def job_status(job_id: str):
        return service.get(job_id).status()

    @app.delete(
        "/v1/jobs/{job_id}",
        tags=["jobs"],
        operation_id="cancelJob",
        summary="Cancel a job (a running job stops at its next progress check); ?purge=true removes a "
        "finished job and its files",
        responses=schemas.responses(schemas.JobStatus, 200, 404, 409),
    )
    def cancel_job(job_id: str, purge: bool = False):
        if purge:
            job = service.get(job_id)
            if job.finished:
                status = job.status()
                service.purge(job_id)
                return status
        return service.cancel(job_id).status()

    @app.get(
        "/v1/jobs/{job_id}/result",
        tags=["jobs"],
        operation_id="getResult",
        summary="The captions (JSON contract) of a finished job, and the names of its files",
        responses=schemas.responses(schemas.CaptionResult, 200, 404, 409, 422, 500, 503),
    )
    def job_result(job_id: str):
        return service.result(job_id)

    @app.get(
        "/v1/jobs/{job_id}/files/{name}",
        tags=["jobs"],
        operation_id="getFile",
        summary="One file the job wrote (SRT, VTT, ...)",
        responses=schemas.file_responses(),
    )
    def job_file(job_id: str, name: str):
        path = service.file_path(job_id, name)
        return FileResponse(path, media_type=schemas.media_type(name), filename=name)

    review_gate = ReviewGate()
    register_review(app, ReviewJobs(service), review_gate)
    app.openapi = lambda: schemas.finish_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(LocalGuard, settings=settings, review=review_gate)
    return app


def _allowed_methods(app: FastAPI, scope) -> set[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return methods


def _save_upload(upload: UploadFile, path: Path, limit: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = 0
    src = upload.file
    src.seek(0)
    with path.open("wb") as dst:
        while chunk := src.read(1024 * 1024):
            written += len(chunk)
            if written > limit:
                raise PayloadTooLarge(
                    f"timeline upload over the {limit}-byte limit", details={"limit_bytes": limit}
                )
            dst.write(chunk)


def warm_models() -> list[str]:
    """Model folders this engine process holds loaded (``core.speech.models``' warm cache), as "path (device,
    type)"."""
    try:
        from ...core.speech.models import warm_models as cached
    except ImportError:
        return []
    out = []
    for key in cached():
        path, device, compute_type = (list(key) + [None, None, None])[:3]
        out.append(f"{path} ({device}, {compute_type})")
    return out


def reload_active_model() -> dict[str, Any]:
    from ...core.finetune.registry import active
    from ...core.speech import models as speech_models

    resolved = speech_models.resolve_model("auto")
    previous = active().get("previous")
    keep = {resolved.path}
    if previous:
        keep.add(str(speech_models.tuned_root() / previous))
    released = speech_models.release_warm_models(keep)
    return {
        "model": resolved.name,
        "path": resolved.path,
        "source": resolved.source,
        "previous": previous,
        "released": released,
    }


def list_models() -> dict[str, Any]:
    """Every speech and translation model this engine can use, as JSON (``captionbridge models --json``)."""
    from ...core.speech.models import list_models as speech_models
    from ...core.translate import backends  # noqa: F401 (registers the translation models)

    return {"models": [_jsonable(m) for m in speech_models()], "warnings": []}


def _jsonable(item: Any) -> dict[str, Any]:
    import dataclasses

    if hasattr(item, "to_dict"):
        item = item.to_dict()
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        item = dataclasses.asdict(item)
    elif hasattr(item, "_asdict"):
        item = item._asdict()
    if not isinstance(item, dict):
        item = {"name": str(item)}
    return json.loads(json.dumps(item, default=str))
