"""Run the engine: token, job service, HTTP server on a socket we bind ourselves, and ``service.json`` for discovery."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from ... import __version__
from ...core.errors import CaptionBridgeError
from .app import DEFAULT_MAX_UPLOAD, LOOPBACK_HOSTS, GuardSettings, create_app
from .jobs import DEFAULT_RESULT_TTL, JobFunction, JobService
from .paths import (
    SERVICE_FILE,
    config_dir,
    ensure_private_dir,
    load_or_create_token,
    read_service_file,
    write_json_atomic,
)

log = logging.getLogger("captionbridge.service")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


_locks: list = []


class ServiceStartError(CaptionBridgeError):
    code = "service_start_failed"
    exit_code = 6


@dataclass
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int | None = None
    data_dir: Path | None = None
    result_ttl: float = DEFAULT_RESULT_TTL
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    config: Path | None = None
    log_level: str = "info"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServiceStartError(f"port {port} on {host} is already in use (another captionbridge serve?): "
                                    "stop it or pass --port") from None
        raise ServiceStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def lock_data_dir(data: Path):
    """Hold an exclusive lock on the data folder for the life of the process (released by the OS on any exit)."""
    handle = open(data / "engine.lock", "a+")
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own locking still keeps the database consistent
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ServiceStartError(f"another CaptionBridge engine already uses the data folder {data}: stop it, "
                                "or pass a different --data-dir") from None
    return handle


def build_service(opts: ServeOptions, job_function: JobFunction | None = None) -> tuple[JobService, GuardSettings, Path]:
    config = ensure_private_dir(opts.config or config_dir())
    token = load_or_create_token(config)
    data = ensure_private_dir(opts.data_dir or config)
    _locks.append(lock_data_dir(data))
    service = JobService(data, job_function=job_function, workers=opts.workers, result_ttl=opts.result_ttl)
    allowed = set(LOOPBACK_HOSTS) | {opts.host.strip("[]").lower()}
    if not is_loopback(opts.host):
        allowed = None  # reachable on purpose from elsewhere: the token is then the only gate
    settings = GuardSettings(token=token, max_upload_bytes=opts.max_upload_bytes,
                             allowed_hosts=None if allowed is None else frozenset(allowed))
    return service, settings, config


def serve(opts: ServeOptions, job_function: JobFunction | None = None,
          on_ready: Callable[[dict], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM); queued and running jobs survive for the next start."""
    config = opts.config or config_dir()
    existing = read_service_file(config)
    if existing and _pid_alive(existing.get("pid")) and existing.get("pid") != os.getpid():
        log.warning("service.json says another engine (pid %s) serves %s:%s", existing.get("pid"),
                    existing.get("host"), existing.get("port"))
    sock = bind_socket(opts.host, opts.port)
    service, settings, config = build_service(opts, job_function)
    port = sock.getsockname()[1]
    app = create_app(service, settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level=opts.log_level, access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=5))
    info = {"host": opts.host, "port": port, "pid": os.getpid(), "version": __version__}
    service_file = config / SERVICE_FILE
    service.start()
    try:
        with _stop_signals(server):  # from here on a stop signal ends the server, however early it comes
            write_json_atomic(service_file, info)
            log.info("CaptionBridge engine %s on http://%s:%d (%d worker%s, data in %s)", __version__, opts.host,
                     port, service.workers, "" if service.workers == 1 else "s", service.data_dir)
            if on_ready:
                on_ready(info)
            server.run(sockets=[sock])
    finally:
        service.stop()
        sock.close()
        current = read_service_file(config)
        if current and current.get("pid") == os.getpid():
            try:
                service_file.unlink()
            except OSError:
                pass


@contextlib.contextmanager
def _stop_signals(server: uvicorn.Server):
    """SIGINT/SIGTERM ask the server to stop, also before uvicorn has put its own handlers in (a signal in that
    window used to be swallowed and the engine ran on). uvicorn re-raises the signal after its graceful shutdown,
    which lands here again as a no-op, so our cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(*_):
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
