"""Every error the engine service answers with: one table of stable codes and HTTP statuses.

Each is a ``CaptionBridgeError`` (so the CLI and the service show the same one-line message); the service
turns it into ``{"error": {"code", "message", "details"}}`` with the status given here.
"""

from __future__ import annotations

from ...core.errors import CaptionBridgeError, InputError, TimelineError


def service_error(code: str, http_status: int, base: type[CaptionBridgeError] = CaptionBridgeError) -> type:
    """A ``base`` subclass answering ``http_status`` with ``code`` (its class name is the code in
    CamelCase)."""
    name = "".join(part.title() for part in code.split("_"))
    return type(name, (base,), {"code": code, "http_status": http_status, "__module__": __name__})


BadRequest = service_error("bad_request", 400)
PayloadTooLarge = service_error("payload_too_large", 413)
UnsupportedMediaType = service_error("unsupported_media_type", 415)
BadOption = service_error("bad_option", 422)  # an option the service does not know, or a value it cannot use
TimelineNotFound = service_error("timeline_not_found", 422, InputError)
CorruptTimeline = service_error("bad_timeline", 422, TimelineError)
JobNotFound = service_error("job_not_found", 404)
ResultFileNotFound = service_error("file_not_found", 404)
JobNotFinished = service_error("job_not_finished", 409)
JobFinished = service_error("job_finished", 409)
EngineUnavailable = service_error("engine_unavailable", 503)


def shown(value: object, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters, for echoing what a client sent inside an error message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"
