"""The review page the engine serves: one-time links, the page's session, and its routes.

Who may see it (``ReviewGate``, run by ``LocalGuard`` for every path under ``/review``):

- A client holding the engine token mints a one-time link (``POST /v1/review/links``):
  ``/review/open?code=...``. Opening it once sets an ``HttpOnly; SameSite=Strict`` session cookie for the host
  it was opened on (127.0.0.1, no Domain attribute), and redirects to the page. A second use of the same link
  is refused. The token itself never reaches the page.
- Every other ``/review`` request needs that cookie. A browser request from another web origin is refused (its
  ``Origin`` or ``Sec-Fetch-Site`` says so); writes must carry the page's own ``Origin``.
- Every ``/review`` response carries a strict Content-Security-Policy (scripts and styles only from the page's
  own files, no inline script, nothing remote), ``nosniff``, ``no-referrer`` and no caching.
- Media and files are served only from the job's own folder, by names the job or version published.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from . import schemas
from .errors import BadRequest
from .review_jobs import LOW_CONFIDENCE, ReviewJobs

REVIEW_PREFIX = "/review"
COOKIE = "cb_review"
LINK_TTL = 300.0  # a one-time link works for 5 minutes
SESSION_TTL = 12 * 3600.0  # a page session lasts 12 hours from its last request
MAX_REVIEW_BODY = 32 * 1024 * 1024
PAGE_DIR = Path(__file__).resolve().parent / "review_page"
PAGE_FILES = {
    "review.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
    "timecode.js": "text/javascript; charset=utf-8",
    "waveform.js": "text/javascript; charset=utf-8",
    "edits.js": "text/javascript; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class _Link:
    expires: float
    job_id: str | None


@dataclass
class _Session:
    expires: float
    host: str


def is_review_path(path: str) -> bool:
    return path == REVIEW_PREFIX or path.startswith(REVIEW_PREFIX + "/")


class ReviewGate:
    """One-time links and page sessions, checked in front of every ``/review`` request."""

    def __init__(self, link_ttl: float = LINK_TTL, session_ttl: float = SESSION_TTL):
        self.link_ttl, self.session_ttl = link_ttl, session_ttl
        self._links: dict[str, _Link] = {}
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    # ---- links and sessions
    # ------------------------------------------------------------------------------------
    def mint(self, job_id: str | None) -> tuple[str, float]:
        code = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._links = {k: v for k, v in self._links.items() if v.expires > now}
            self._links[code] = _Link(now + self.link_ttl, job_id)
        return code, self.link_ttl

    def redeem(self, code: str, host: str) -> tuple[str, str | None] | None:
        """Use a link once: a new session id and the job it opens, or None (unknown, used or expired)."""
        now = time.time()
        with self._lock:
            link = None
            for known in list(self._links):
                if hmac.compare_digest(known.encode(), code.encode()):
                    link = self._links.pop(known)
                    break
            if link is None or link.expires < now:
                return None
            sid = secrets.token_urlsafe(32)
            self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}
            self._sessions[sid] = _Session(now + self.session_ttl, host)
        return sid, link.job_id

    def session_ok(self, sid: str | None, host: str) -> bool:
        if not sid:
            return False
        now = time.time()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or session.expires < now or session.host != host:
                return False
            session.expires = now + self.session_ttl
            return True

    # ---- the gate
    # -------------------------------------------------------------------------------------------------
    def check(self, scope, headers: dict[str, str]):
        """None when the request may pass, else (status, code, message)."""
        method = scope.get("method", "GET").upper()
        host = headers.get("host", "").strip().lower()
        own_origin = f"http://{host}"
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            if scope.get("path") == f"{REVIEW_PREFIX}/open":
                return (
                    403,
                    "forbidden_origin",
                    (
                        "review links open only from the address bar, a terminal or an "
                        "editor, not from another web page: paste the link into the "
                        "browser's address bar"
                    ),
                )
            return (
                403,
                "forbidden_origin",
                "the review page answers only its own pages (cross-site request refused)",
            )
        origin = headers.get("origin")
        if origin is not None and origin != own_origin:
            return 403, "forbidden_origin", f"requests from {origin} may not use the review page"
        if method in UNSAFE_METHODS and origin is None:
            return (
                403,
                "forbidden_origin",
                "changes must come from the review page itself (no Origin header sent)",
            )
        if scope.get("path") == f"{REVIEW_PREFIX}/open":
            return None
        if not self.session_ok(_cookie(headers), host):
            return (
                401,
                "review_session",
                (
                    "no review session: open the page with a new link (run 'captionbridge "
                    "review JOB_ID', or Review captions in the editor)"
                ),
            )
        return None

    async def __call__(self, scope, receive, send, app, headers: dict[str, str], host_problem):
        """Serve one ``/review`` request (``LocalGuard`` has checked nothing else: the Host check is passed
        in)."""
        problem = host_problem or self.check(scope, headers)

        async def secured_send(message):
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        *SECURITY_HEADERS,
                        (b"cache-control", b"no-store"),
                    ],
                }
            await send(message)

        if problem is not None:
            status, code, message = problem[:3]
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            await secured_send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_REVIEW_BODY:
                    raise BadRequest(f"request body over the {MAX_REVIEW_BODY}-byte limit of the review page")
            return message

        await app(scope, limited_receive, secured_send)


def _cookie(headers: dict[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


class ReviewLinkRequest(BaseModel):
    job_id: str | None = Field(default=None, description="the job the page opens on; none: the job list")


class ReviewLink(BaseModel):
    url: str = Field(description="one-time link to the review page; it works once, for expires_in seconds")
    path: str
    expires_in: float


class VersionInfo(BaseModel):
    version: int
    approved_at: str
    files: list[str]
    cues: int
    exported_to: str | None = None
    warnings: list[str] = []


class VersionList(BaseModel):
    versions: list[VersionInfo]


class VersionResult(schemas.CaptionResult):
    """An approved version: the JSON contract with the reviewed cues, its number and files."""

    version: int
    approved_at: str


class ReviewImport(BaseModel):
    document: dict = Field(description="a CaptionBridge captions JSON (<stem>.captions.json)")
    source_path: str | None = Field(
        default=None, description="where the JSON is: approved versions are also written beside it"
    )
    timeline_path: str | None = Field(
        default=None, description="the timeline the captions are for: its audio is played on the page"
    )


def register_review(app: FastAPI, reviews: ReviewJobs, gate: ReviewGate) -> None:
    """Add the review page's routes, and the token-protected API that mints links and reads versions."""

    # ---- token API (/v1)
    # ------------------------------------------------------------------------------------------
    @app.post(
        "/v1/review/links",
        tags=["review"],
        operation_id="createReviewLink",
        status_code=201,
        summary="Mint a one-time link to the review page (optionally for one job)",
        responses=schemas.responses(ReviewLink, 201, 400, 404, 409, 422),
    )
    def create_link(request: Request, body: ReviewLinkRequest | None = None):
        job_id = body.job_id if body else None
        if job_id:
            reviews.finished_job(job_id)
        code, ttl = gate.mint(job_id)
        path = f"{REVIEW_PREFIX}/open?{urlencode({'code': code})}"
        host = request.headers.get("host", "127.0.0.1")
        return JSONResponse({"url": f"http://{host}{path}", "path": path, "expires_in": ttl}, status_code=201)

    @app.post(
        "/v1/review/imports",
        tags=["review"],
        operation_id="importCaptions",
        status_code=201,
        summary="Make a finished job from a captions JSON, to review it",
        responses=schemas.responses(schemas.JobStatus, 201, 400, 422),
    )
    async def import_captions(body: ReviewImport):
        job = await run_in_threadpool(
            reviews.import_document, body.document, body.source_path, body.timeline_path
        )
        return JSONResponse(job.status(), status_code=201)

    @app.get(
        "/v1/jobs/{job_id}/versions",
        tags=["review"],
        operation_id="listVersions",
        summary="The approved versions of a job, oldest first",
        responses=schemas.responses(VersionList, 200, 404, 409),
    )
    def list_versions(job_id: str):
        reviews.finished_job(job_id)
        return {"versions": reviews.versions(job_id)}

    @app.get(
        "/v1/jobs/{job_id}/versions/{version}",
        tags=["review"],
        operation_id="getVersion",
        summary="One approved version (a number, or 'latest'): its captions (JSON contract) and files",
        responses=schemas.responses(VersionResult, 200, 404, 409),
    )
    def get_version(job_id: str, version: str):
        info = reviews.version(job_id, version)
        return {
            **info["document"],
            "version": info["version"],
            "approved_at": info["approved_at"],
            "files": info["files"],
        }

    @app.get(
        "/v1/jobs/{job_id}/versions/{version}/files/{name}",
        tags=["review"],
        operation_id="getVersionFile",
        summary="One file of an approved version",
        responses=schemas.file_responses(),
    )
    def get_version_file(job_id: str, version: str, name: str):
        path = reviews.version_file(job_id, version, name)
        return FileResponse(path, media_type=schemas.media_type(name), filename=name)

    # ---- the page (/review, session cookie)
    # -----------------------------------------------------------------------
    @app.get(f"{REVIEW_PREFIX}/open", include_in_schema=False)
    def open_link(request: Request):
        code = (parse_qs(request.url.query).get("code") or [""])[0]
        host = request.headers.get("host", "").strip().lower()
        redeemed = gate.redeem(code, host) if code else None
        if redeemed is None:
            return JSONResponse(
                {
                    "error": {
                        "code": "link_used",
                        "message": (
                            "this review link was already used or has expired: links work once. Run "
                            "'captionbridge review' "
                            "(or Review captions in the editor) for a new one"
                        ),
                    }
                },
                status_code=403,
            )
        sid, job_id = redeemed
        target = f"{REVIEW_PREFIX}/" + (f"#job={job_id}" if job_id else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            sid,
            max_age=int(gate.session_ttl),
            path=REVIEW_PREFIX,
            httponly=True,
            samesite="strict",
            secure=False,
        )
        return response

    @app.get(f"{REVIEW_PREFIX}/", include_in_schema=False)
    def page():
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.get(f"{REVIEW_PREFIX}/static/{{name}}", include_in_schema=False)
    def static(name: str):
        if name not in PAGE_FILES:
            return JSONResponse(
                {"error": {"code": "not_found", "message": f"no page file {name!r}"}}, status_code=404
            )
        return FileResponse(PAGE_DIR / name, media_type=PAGE_FILES[name])

    @app.get(f"{REVIEW_PREFIX}/api/jobs", include_in_schema=False)
    def page_jobs():
        return {"jobs": reviews.job_list()}

    @app.get(f"{REVIEW_PREFIX}/api/queue", include_in_schema=False)
    def page_queue(threshold: float = LOW_CONFIDENCE):
        if not 0.0 <= threshold <= 1.0:
            raise BadRequest(f"threshold {threshold} is not a confidence: use a number from 0 to 1")
        return reviews.queue(threshold)

    @app.get(f"{REVIEW_PREFIX}/api/jobs/{{job_id}}", include_in_schema=False)
    async def page_job(job_id: str):
        # straight to JSON: FastAPI's encoder would walk every one of a long job's words first
        return JSONResponse(await run_in_threadpool(reviews.view, job_id))

    @app.get(f"{REVIEW_PREFIX}/api/jobs/{{job_id}}/audio", include_in_schema=False)
    async def page_audio(job_id: str):
        media = await run_in_threadpool(reviews.media, reviews.finished_job(job_id))
        return FileResponse(media.audio, media_type="audio/ogg")

    @app.get(f"{REVIEW_PREFIX}/api/jobs/{{job_id}}/peaks", include_in_schema=False)
    async def page_peaks(job_id: str):
        media = await run_in_threadpool(reviews.media, reviews.finished_job(job_id))
        return FileResponse(
            media.peaks,
            media_type="application/octet-stream",
            headers={
                "X-Peaks-Per-Second": str(media.peaks_per_second),
                "X-Duration": repr(media.samples / media.sample_rate),
            },
        )

    @app.put(f"{REVIEW_PREFIX}/api/jobs/{{job_id}}/draft", include_in_schema=False)
    async def page_save_draft(job_id: str, request: Request):
        body = await _json_body(request)
        return JSONResponse(await run_in_threadpool(reviews.save_draft, job_id, body))

    @app.delete(f"{REVIEW_PREFIX}/api/jobs/{{job_id}}/draft", include_in_schema=False)
    def page_discard_draft(job_id: str):
        reviews.discard_draft(job_id)
        return Response(status_code=204)

    @app.post(f"{REVIEW_PREFIX}/api/jobs/{{job_id}}/approve", include_in_schema=False)
    async def page_approve(job_id: str, request: Request):
        body = await _json_body(request)
        return JSONResponse(await run_in_threadpool(reviews.approve, job_id, body), status_code=201)

    @app.get(
        f"{REVIEW_PREFIX}/api/jobs/{{job_id}}/versions/{{version}}/files/{{name}}", include_in_schema=False
    )
    def page_version_file(job_id: str, version: str, name: str):
        path = reviews.version_file(job_id, version, name)
        return FileResponse(path, media_type=schemas.media_type(name), filename=name)


async def _json_body(request: Request):
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise BadRequest("send the draft as application/json")
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
