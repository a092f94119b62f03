"""The local engine service: an HTTP API (FastAPI) over a persistent job queue, safe on localhost.

``captionbridge serve`` runs it (``server.serve``); ``client.EngineClient`` talks to it with the standard
library only. Modules: ``paths`` (config folder, token, service.json), ``options`` (job options), ``intake``
(timeline checks), ``store`` (SQLite), ``jobs`` (queue and workers), ``schemas`` + ``app`` (HTTP API),
``server``.
"""

from importlib import import_module as _import_module

# Lazy exports, so importing ``captionbridge.plugin.service.client`` does not load FastAPI and uvicorn.
_EXPORTS = {
    "serve": "server",
    "ServeOptions": "server",
    "JobService": "jobs",
    "default_job_function": "jobs",
    "create_app": "app",
    "GuardSettings": "app",
    "EngineClient": "client",
    "EngineError": "client",
    "config_dir": "paths",
    "load_or_create_token": "paths",
    "read_service_file": "paths",
    "validate_options": "options",
    "openapi_spec": "spec",
}
__all__ = [
    "EngineClient",
    "EngineError",
    "GuardSettings",
    "JobService",
    "ServeOptions",
    "config_dir",
    "create_app",
    "default_job_function",
    "load_or_create_token",
    "openapi_spec",
    "read_service_file",
    "serve",
    "validate_options",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(_import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
