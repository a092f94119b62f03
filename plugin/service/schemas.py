"""The published shapes of the API (OpenAPI 3.1 via FastAPI): request bodies, responses and errors."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

API_DESCRIPTION = """\
The local CaptionBridge engine. Editors' scripts (Resolve, Premiere) submit a timeline, poll the job, and
fetch the captions.

**Finding it.** The config folder is `$CAPTIONBRIDGE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/captionbridge` or
`~/.config/captionbridge` (Linux), `~/Library/Application Support/CaptionBridge` (macOS),
`%APPDATA%\\CaptionBridge` (Windows). `<config>/token` holds the token (created on first run, owner-only);
while the engine runs, `<config>/service.json` holds `{"host", "port", "pid", "version"}`.

**Every request** needs `Authorization: Bearer <token>` (401 otherwise). Requests from browser pages (any
`Origin` header, `null` included) are refused with 403, and so are requests addressed to a host name other
than the loopback address the engine listens on. No CORS headers are sent.

**Errors** are always `{"error": {"code", "message", "details"?}}` with a fitting status. Stable codes:
`unauthorized` 401, `forbidden_origin`/`forbidden_host` 403, `bad_request` 400/422, `bad_option` 422,
`timeline_not_found` 422, `bad_timeline` 422, `payload_too_large` 413, `unsupported_media_type` 415,
`job_not_found` 404, `file_not_found` 404, `job_not_finished`/`job_finished`/`cancelled` 409,
`engine_unavailable` 503, `internal_error` 500; a failed job carries the engine's own code (`missing_media`,
`bad_timeline`, `model_unavailable`, `interrupted`, ...) in its `error` and in the result's error response.

**Jobs** go `queued` → `running` → `succeeded` | `failed` | `cancelled`. Results are kept for the engine's
`--result-ttl` and survive restarts; a job that was running when the engine died is retried once, then failed
with code `interrupted`.
"""


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="stable machine-readable code, e.g. bad_option, missing_media")
    message: str = Field(description="one line a user can act on")
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


class JobStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str = Field(
        description="what the job is doing: queued, starting, a pipeline stage, succeeded, ..."
    )
    progress: float = Field(ge=0, le=100, description="percent of the whole job")
    eta_seconds: float | None = Field(ge=0, description="estimated seconds left, null while unknown")
    error: ErrorDetail | None
    created_at: str = Field(description="ISO 8601 UTC")
    updated_at: str = Field(description="ISO 8601 UTC")
    files: list[str] = Field(
        description="names of the files the job wrote (GET .../files/{name}); empty until it succeeded"
    )


class JobList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[JobStatus]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    workers: int
    jobs: dict[str, int] = Field(description="number of jobs per state")
    warm_models: list[str] = Field(description="models loaded and kept warm in this engine process")


class ActiveModel(BaseModel):
    model: str = Field(description="the model new jobs run (a fine-tuned name, or the packaged default)")
    path: str = Field(description="its folder")
    source: str = Field(description="tuned, package, folder or hub")
    previous: str | None = Field(None, description="the fine-tuned model active before (for rollback)")
    released: list[str] = Field(description="warm models this reload let go (neither active nor previous)")


class ModelList(BaseModel):
    models: list[dict[str, Any]] = Field(description="as `captionbridge models` lists them")
    warnings: list[str]


class CaptionResult(BaseModel):
    """The JSON contract (`<stem>.captions.json`) plus the job's file names."""

    model_config = ConfigDict(extra="allow")
    timeline: dict[str, Any] = Field(description='{name, rate: "24000/1001", start_timecode, drop_frame}')
    source_language: str
    languages: list[str]
    words: list[dict[str, Any]] = Field(
        description="{text, start_frame, end_frame, start, end, confidence, speaker (with speakers on)}"
    )
    cues: list[dict[str, Any]] = Field(
        description="{start_frame, end_frame, start_timecode, end_timecode, text: {lang: text}, "
        "speakers: [id, ...] (with speakers on; two for the two-speaker dash form)}"
    )
    speakers: list[dict[str, Any]] | None = Field(
        default=None,
        description="with speakers on: [{id, name (when one was given)}, ...] in order of first speech; "
        "absent otherwise",
    )
    warnings: list[str] | None = Field(default=None, description="what the job noticed and could not fix")
    files: list[str]


_ERROR_TEXT = {
    400: "malformed request",
    401: "missing or wrong token",
    403: "browser origin or foreign host",
    404: "no such job or file",
    409: "the job is not in a state that allows this",
    413: "upload too large",
    415: "unsupported content type",
    422: "bad option, timeline or input",
    500: "internal error, or the job was interrupted twice",
    503: "engine unavailable",
}


def responses(model: type[BaseModel], ok: int = 200, *errors: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {ok: {"model": model, "description": "success"}}
    for status in sorted({401, 403, *errors}):
        out[status] = {"model": ErrorResponse, "description": _ERROR_TEXT.get(status, "error")}
    return out


def file_responses() -> dict[int | str, dict[str, Any]]:
    out = responses(ErrorResponse, 200, 404, 409)
    out[200] = {
        "description": "the file's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
    return out


_MEDIA_TYPES = {
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".ass": "text/x-ssa",
    ".ttml": "application/ttml+xml",
    ".json": "application/json",
    ".otio": "application/json",
    ".fcpxml": "application/xml",
    ".xml": "application/xml",
    ".txt": "text/plain",
}


def media_type(name: str) -> str:
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _MEDIA_TYPES.get(suffix, "application/octet-stream")


def submit_request_body(options_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["timeline_path"],
                        "properties": {
                            "timeline_path": {
                                "type": "string",
                                "description": "absolute path of a timeline on this machine "
                                "(.otio, .otioz, FCP7 .xml, .fcpxml, .fcpxmld)",
                            },
                            "options": options_schema,
                        },
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["timeline"],
                        "properties": {
                            "timeline": {
                                "type": "string",
                                "format": "binary",
                                "description": "the exported timeline file",
                            },
                            "options": {
                                "type": "string",
                                "description": "the options object as a JSON string",
                                "contentMediaType": "application/json",
                            },
                        },
                    }
                },
            },
        }
    }


def finish_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec plus the bearer-token security scheme on every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "the contents of <config>/token",
    }
    spec["security"] = [{"bearerToken": []}]
    spec["servers"] = [{"url": "http://127.0.0.1:8765", "description": "default local engine"}]
    # FastAPI documents its own 422 body for operations with parameters; ours answer every error the same way.
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            resp = operation.get("responses", {}).get("422")
            if resp is not None:
                resp["content"] = {"application/json": {"schema": error_ref}}
                if resp.get("description") == "Validation Error":
                    resp["description"] = _ERROR_TEXT[422]
    schemas = components.get("schemas", {})
    schemas.setdefault(
        "ErrorResponse", ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = spec
    return spec
