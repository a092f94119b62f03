"""Run the engine: token, job service, HTTP server on a socket we bind ourselves, and ``service.json`` for
discovery."""

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
from ...core.storage import OFFLINE_ENVS, cache_root, protect_folder
from .app import DEFAULT_MAX_UPLOAD, LOOPBACK_HOSTS, GuardSettings, create_app
from .jobs import DEFAULT_RESULT_TTL, JobFunction, JobService
from .paths import (
    SERVICE_FILE,
    config_dir,
    ensure_private_dir,
    load_or_create_token,
    read_service_file,
    weak_token,
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
    # Host names (Host header) a non-loopback engine answers to, besides the loopback names and the bound
    # address.
    allow_hosts: tuple[str, ...] = ()
    # Fetch a model named by its hub name when a job asks for one not yet on disk. Off: a client can never
    # make the engine contact the network; the user turns it on for the engine with ``serve
    # --allow-downloads``.
    allow_downloads: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
    # and without it every request on a kept-alive connection waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets on Linux
    if os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServiceStartError(
                f"port {port} on {host} is already in use (another captionbridge serve?): "
                "stop it or pass --port"
            ) from None
        raise ServiceStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def lock_data_dir(data: Path):
    """Hold an exclusive lock on the data folder for the life of the process (released by the OS on any
    exit)."""
    handle = os.fdopen(os.open(data / "engine.lock", os.O_RDWR | os.O_CREAT, 0o600), "a+")
    if os.name == "posix":
        os.chmod(data / "engine.lock", 0o600)
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own locking still keeps the database consistent
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ServiceStartError(
            f"another CaptionBridge engine already uses the data folder {data}: stop it, "
            "or pass a different --data-dir"
        ) from None
    return handle


UNPACK_PER_UPLOAD_BYTE = 16  # an uploaded .otioz may unpack to 16x the upload limit at most


def allowed_host_names(opts: ServeOptions) -> frozenset[str]:
    """The Host header names the engine answers to: loopback, the address it is bound to (unless a wildcard),
    and what ``--allow-host`` adds. The check stays on for every bind address (DNS rebinding)."""
    allowed = set(LOOPBACK_HOSTS) | {h.strip().strip("[]").lower() for h in opts.allow_hosts if h.strip()}
    bound = opts.host.strip("[]").lower()
    if bound not in ("0.0.0.0", "::", ""):
        allowed.add(bound)
    return frozenset(allowed)


STALE_UNPACK_AGE = 24 * 3600.0


def remove_stale_unpacks(folder: Path | None = None, max_age: float = STALE_UNPACK_AGE) -> int:
    """Remove ``captionbridge-otioz-*`` folders a killed process left in the temp folder (older versions
    unpacked bundles there; the CLI still does). Only this user's, and only old ones: a CLI run may be using a
    fresh one."""
    import shutil
    import tempfile
    import time

    folder = Path(folder or tempfile.gettempdir())
    removed = 0
    for path in folder.glob("captionbridge-otioz-*"):
        try:
            st = path.lstat()
            if (
                path.is_dir()
                and not path.is_symlink()
                and (os.name != "posix" or st.st_uid == os.getuid())
                and time.time() - st.st_mtime > max_age
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def build_service(
    opts: ServeOptions, job_function: JobFunction | None = None
) -> tuple[JobService, GuardSettings, Path]:
    config = ensure_private_dir(opts.config or config_dir())
    token = load_or_create_token(config)
    problem = weak_token(token)
    if problem:
        log.warning(
            "the service token in %s is weak (%s): delete the file and restart the engine to get a strong "
            "one",
            config / "token",
            problem,
        )
    data = ensure_private_dir(opts.data_dir or config)
    _locks.append(lock_data_dir(data))
    protect_folder(config, f"the engine's config folder {config}")
    protect_folder(cache_root(), f"CaptionBridge's cache folder {cache_root()}")
    service = JobService(
        data,
        job_function=job_function,
        workers=opts.workers,
        result_ttl=opts.result_ttl,
        unpack_limit=UNPACK_PER_UPLOAD_BYTE * opts.max_upload_bytes,
    )
    if remove_stale_unpacks():
        log.info("removed bundles a killed CaptionBridge process had left unpacked in the temp folder")
    settings = GuardSettings(
        token=token, max_upload_bytes=opts.max_upload_bytes, allowed_hosts=allowed_host_names(opts)
    )
    return service, settings, config


def serve(
    opts: ServeOptions,
    job_function: JobFunction | None = None,
    on_ready: Callable[[dict], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM); queued and running jobs survive for the next start."""
    config = opts.config or config_dir()
    if os.name == "posix":  # everything the engine writes (job folders, results, caches) is owner-only
        os.umask(0o077)
    if not opts.allow_downloads:  # before anything imports huggingface_hub, which reads these once
        for name in (*OFFLINE_ENVS, "TRANSFORMERS_OFFLINE"):
            os.environ[name] = "1"
    existing = read_service_file(config)
    if existing and _pid_alive(existing.get("pid")) and existing.get("pid") != os.getpid():
        log.warning(
            "service.json says another engine (pid %s) serves %s:%s",
            existing.get("pid"),
            existing.get("host"),
            existing.get("port"),
        )
    sock = bind_socket(opts.host, opts.port)
    service, settings, config = build_service(opts, job_function)
    port = sock.getsockname()[1]
    app = create_app(service, settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level=opts.log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
    )
    info = {"host": opts.host, "port": port, "pid": os.getpid(), "version": __version__}
    service_file = config / SERVICE_FILE
    service.start()
    try:
        with _stop_signals(server):  # from here on a stop signal ends the server, however early it comes
            write_json_atomic(service_file, info)
            log.info(
                "CaptionBridge engine %s on http://%s:%d (%d worker%s, data in %s)",
                __version__,
                opts.host,
                port,
                service.workers,
                "" if service.workers == 1 else "s",
                service.data_dir,
            )
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
    """SIGINT/SIGTERM ask the server to stop, also before uvicorn has put its own handlers in (a signal in
    that window used to be swallowed and the engine ran on). uvicorn re-raises the signal after its graceful
    shutdown, which lands here again as a no-op, so our cleanup runs."""
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
