"""A standard-library client for the local engine (urllib only), for the CLI, tests and scripts.

    client = EngineClient.discover()                 # reads <config>/service.json and <config>/token
    job = client.submit("/abs/edit.otio", {"language": "en", "formats": ["srt"]})
    done = client.wait(job["id"], on_progress=print)
    captions = client.result(job["id"])
    srt = client.file(job["id"], captions["files"][0])

Errors from the engine raise ``EngineError`` (``status``, ``code``, ``message``, ``details``).
"""

from __future__ import annotations

import json
import mimetypes
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

FINISHED = ("succeeded", "failed", "cancelled")


class EngineError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def _config_dir() -> Path:
    from .paths import config_dir  # stdlib-only module

    return config_dir()


def _form_filename(name: str) -> str:
    """A file name as browsers put it in multipart/form-data (HTML's rule): UTF-8, only quote, CR and LF
    escaped."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class EngineClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def discover(cls, config: Path | None = None, timeout: float = 30.0) -> EngineClient:
        """The running engine advertised in ``<config>/service.json``, with the token from
        ``<config>/token``."""
        config = Path(config) if config else _config_dir()
        try:
            info = json.loads((config / "service.json").read_text(encoding="utf-8"))
            token = (config / "token").read_text(encoding="ascii").strip()
        except (OSError, ValueError) as exc:
            raise EngineError(
                0,
                "engine_not_running",
                f"no CaptionBridge engine is running (nothing in {config}: {exc}); "
                "start one with `captionbridge serve`",
            ) from None
        host = info.get("host", "127.0.0.1")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return cls(f"http://{host}:{int(info['port'])}", token, timeout)

    # ---- HTTP
    # --------------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        req = urllib.request.Request(self.base_url + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if content_type:
            req.add_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                err = json.loads(payload)["error"]
                raise EngineError(
                    exc.code, err.get("code", "error"), err.get("message", ""), err.get("details")
                )
            except (ValueError, KeyError, TypeError):
                raise EngineError(exc.code, "http_error", payload[:200].decode("utf-8", "replace")) from None
        except urllib.error.URLError as exc:
            raise EngineError(
                0, "engine_unreachable", f"cannot reach the engine at {self.base_url}: {exc.reason}"
            )
        return data if raw else json.loads(data or b"null")

    # ---- API
    # ---------------------------------------------------------------------------------------------------
    def health(self) -> dict:
        return self.request("GET", "/v1/health")

    def models(self) -> dict:
        return self.request("GET", "/v1/models")

    def submit(self, timeline_path: str | os.PathLike, options: dict | None = None) -> dict:
        """Queue a timeline that lies on this machine (the engine reads it in place)."""
        body = json.dumps(
            {"timeline_path": os.path.abspath(timeline_path), "options": options or {}}
        ).encode()
        return self.request("POST", "/v1/jobs", body=body, content_type="application/json")

    def upload(
        self, timeline: str | os.PathLike | bytes, options: dict | None = None, filename: str | None = None
    ) -> dict:
        """Queue a timeline by uploading it (multipart/form-data)."""
        if isinstance(timeline, bytes):
            data, name = timeline, filename or "timeline.otio"
        else:
            data, name = Path(timeline).read_bytes(), filename or Path(timeline).name
        boundary = "captionbridge-" + secrets.token_hex(12)
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(options or {})}\r\n".encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="timeline"; '
            f'filename="{_form_filename(name)}"\r\nContent-Type: {ctype}\r\n\r\n'.encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
        return self.request(
            "POST", "/v1/jobs", body=b"".join(parts), content_type=f"multipart/form-data; boundary={boundary}"
        )

    def status(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}")

    def jobs(self) -> list[dict]:
        return self.request("GET", "/v1/jobs")["jobs"]

    def cancel(self, job_id: str) -> dict:
        return self.request("DELETE", f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}")

    def purge(self, job_id: str) -> dict:
        return self.request("DELETE", f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}?purge=true")

    def result(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}/result")

    def file(self, job_id: str, name: str) -> bytes:
        return self.request(
            "GET",
            f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}/files/{urllib.parse.quote(name, safe='')}",
            raw=True,
        )

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        interval: float = 0.25,
        on_progress: Callable[[dict], None] | None = None,
    ) -> dict:
        """Poll until the job has finished; returns its last status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if on_progress:
                on_progress(status)
            if status["state"] in FINISHED:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {status['state']} ({status['stage']}) after {timeout} s"
                )
            time.sleep(interval)
