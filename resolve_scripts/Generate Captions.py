"""Generate Captions - CaptionBridge for DaVinci Resolve (Workspace > Scripts > Utility > Generate Captions).

Runs inside Resolve (Studio; the free edition runs only Lua menu scripts since 21.1: use "Generate
Captions.lua"). Standard library only: it talks to the local CaptionBridge engine over HTTP
(``captionbridge serve``).

Flow
  1. Check product and version. Studio-only functions are never called on the free edition (there they return
     False and open an upsell dialog that blocks later calls until a person closes it).
  2. Export the current timeline: OTIO (18.5+), else FCP7 XML. Read its start frame, rate and drop-frame.
  3. Ask for options (a Fusion UI dialog where available; defaults otherwise), submit to the engine, show
     progress.
  4. Per language: add a subtitle track, name it, import an SRT of that language written from the engine's
     frames, place each cue with ``recordFrame = timeline start frame + cue frame`` (record frames are
     absolute: a 25 fps timeline at 01:00:00:00 starts at frame 90000), then **read back**
     ``GetItemListInTrack("subtitle", n)`` and compare count and frames. ``AppendToTimeline`` may return True
     and place nothing; overlapping placements are dropped silently - so nothing is trusted until read back.
  5. When placement fails: remove what was partly placed, then fall back in order: (a) import the engine's
     FCPXML (``<caption>`` elements on the same timecodes) as a new timeline and verify it; (b) keep the
     sidecar SRT and tell the user exactly what to drag where. Text+ titles are not used: no documented call
     sets a title's duration or target track, so they cannot be placed frame-accurately without a person.
  6. Low-confidence words become timeline markers (``AddMarker``) for review.
  7. Restore the user's page, current timeline, playhead, marks, track enables/locks and media pool folder.
  8. Record which job captioned this timeline and on which tracks (``<config>/editor-jobs.json``), for "Review
     Captions" (opens the engine's review page on that job) and "Update Captions" (replaces those tracks with
     the latest approved version, verified by read-back; the old track goes only once the new one is right).

Everything is in importable functions (``run(resolve, options, ui, engine)``) so tests can drive it against a
fake.
"""

from __future__ import print_function

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

try:  # Python 3 (Resolve 18+ needs 3.6+)
    import urllib.error as _urlerror
    import urllib.request as _urlrequest
except ImportError:  # pragma: no cover
    raise SystemExit("CaptionBridge needs Python 3.6 or newer for Resolve scripting")

SCRIPT_VERSION = "0.1.0"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
HEALTH_TIMEOUT = 3  # seconds: is the engine there at all (a stuck engine never freezes Resolve longer)
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
STUDIO_ONLY = frozenset(
    [
        "CreateSubtitlesFromAudio",
        "DetectSceneCuts",
        "AnalyzeDolbyVision",
        "CreateMagicMask",
        "SetVoiceIsolationState",
    ]
)
LOW_CONFIDENCE = 0.5
MAX_MARKERS = 300
LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
    "und": "Captions",
}
DEFAULT_OPTIONS = {
    "language": "auto",
    "translate_to": None,
    "preset": None,
    "tracks": None,
    "formats": ["srt", "fcpxml", "json"],
    "model": None,
    "device": "auto",
    "review_markers": True,
    "output_dir": None,
    # who speaks: None/"off", "auto" or a number of speakers; names for S1, S2, ... ("Ana,Ben")
    "speakers": None,
    "speaker_names": None,
    # one subtitle track per speaker (needs speakers): each cue on the track of the speaker who starts it
    "speaker_tracks": False,
}
SPEAKER_CHOICES = [(None, "Off"), ("auto", "Detect"), (2, "2"), (3, "3"), (4, "4"), (5, "5"), (6, "6")]


class CaptionBridgeScriptError(Exception):
    """A failure the user can act on; the message says what to do."""


class EngineError(CaptionBridgeScriptError):
    status = None
    code = None  # the engine's error code ("job_not_found", "version_not_found", ...) when it refused


class EngineUnreachable(EngineError):
    timed_out = False


# ------------------------------------------------------------------------------------------------------------
# Engine (HTTP, standard library only)
# ------------------------------------------------------------------------------------------------------------
def config_dir(env=None, platform=None):
    """Where the engine keeps its token and service.json (same rules as the engine)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if env.get("CAPTIONBRIDGE_CONFIG_DIR"):
        return env["CAPTIONBRIDGE_CONFIG_DIR"]
    home = env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~")
    if platform.startswith("win"):
        return os.path.join(env.get("APPDATA") or os.path.join(home, "AppData", "Roaming"), "CaptionBridge")
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "CaptionBridge")
    base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "captionbridge")


def _read_json(path):
    try:
        with open(path, "r") as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


class Engine(object):
    """A client of the CaptionBridge engine's /v1 API."""

    def __init__(self, base_url, token, timeout=30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.pid = None
        self.config = None  # the config folder it was found through (None when given a URL)
        self._last_timed_out, self._last_error = False, None
        # Never send localhost traffic through a system proxy.
        self._opener = _urlrequest.build_opener(_urlrequest.ProxyHandler({}))

    @classmethod
    def discover(cls, config=None, start=True, wait=30.0, script="Generate Captions"):
        """Find the running engine (service.json + token); start ``captionbridge serve`` if it is not
        running. ``script``: the menu entry the user runs again once the engine is there."""
        config = config or config_dir()
        engine = cls._from_config(config)
        if engine is not None:
            state, detail = engine.check()
            if state == "ok":
                return engine
            if state == "hung":  # starting a second engine would not help: it could not take the port
                raise EngineError(
                    "The CaptionBridge engine at %s (process %s) accepts connections but does not "
                    "answer within %d s (%s): it is stuck or overloaded. Stop it (Ctrl-C in its "
                    "terminal, or end the process), start `captionbridge serve` again, then run "
                    "%s again." % (engine.base_url, engine.pid, HEALTH_TIMEOUT, detail, script)
                )
        if start and start_engine(config):
            deadline = time.time() + wait
            while time.time() < deadline:
                engine = cls._from_config(config)
                if engine is not None and engine.alive():
                    return engine
                time.sleep(0.5)
        raise EngineError(
            "The CaptionBridge engine is not running. Open a terminal, run `captionbridge serve` and "
            "leave it open, then run Workspace > Scripts > %s again. (Looked for "
            "%s.)" % (script, os.path.join(config, "service.json"))
        )

    @classmethod
    def _from_config(cls, config):
        info = _read_json(os.path.join(config, "service.json"))
        try:
            with open(os.path.join(config, "token"), "r") as handle:
                token = handle.read().strip()
        except (IOError, OSError):
            return None
        if not info or not token:
            return None
        host = info.get("host") or DEFAULT_HOST
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        engine = cls("http://%s:%s" % (host, info.get("port") or DEFAULT_PORT), token)
        engine.pid = info.get("pid")
        engine.config = config
        return engine

    def check(self):
        """("ok" | "hung" | "down", detail): a service.json whose process is dead or whose port does not
        answer is stale ("down"); one whose live process accepts but does not answer in time is "hung"."""
        try:
            if self.alive():
                return "ok", None
        except EngineUnreachable as exc:  # alive() turns these into False; kept for clarity
            return "down", str(exc)
        return ("hung" if self._last_timed_out and _pid_alive(self.pid) else "down"), self._last_error

    def alive(self):
        """True when the engine answers; a refused token is an error of its own (not "not running")."""
        try:
            self.request("GET", "/v1/health", timeout=HEALTH_TIMEOUT)
            return True
        except EngineUnreachable as exc:
            self._last_timed_out, self._last_error = exc.timed_out, getattr(exc, "reason", str(exc))
            return False
        except EngineError as exc:
            if exc.status in (401, 403):
                raise EngineError(
                    "The CaptionBridge engine at %s refused this computer's access token (%s). "
                    "Restart `captionbridge serve` so that it and Resolve use the same token file."
                    % (self.base_url, exc.status)
                ) from None
            return True

    def request(self, method, path, body=None, timeout=None, raw=False):
        data = None
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = _urlrequest.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            response = self._opener.open(req, timeout=timeout or self.timeout)
            payload = response.read()
        except _urlerror.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            err = {}
            try:
                err = json.loads(text).get("error") or {}
                message = err.get("message") or text
            except (ValueError, AttributeError):
                message = text or exc.reason
            error = EngineError("The engine refused %s %s (%s): %s" % (method, path, exc.code, message))
            error.status = exc.code
            error.code = err.get("code") if isinstance(err, dict) else None
            raise error from None
        except (_urlerror.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = EngineUnreachable(
                "Cannot reach the CaptionBridge engine at %s (%s). Is `captionbridge serve` "
                "running?" % (self.base_url, reason)
            )
            error.timed_out = isinstance(reason, socket.timeout) or "timed out" in str(reason)
            error.reason = str(reason)
            raise error from None
        if raw:
            return payload
        return json.loads(payload.decode("utf-8")) if payload else {}

    def submit(self, timeline_path, options):
        job = self.request("POST", "/v1/jobs", {"timeline_path": timeline_path, "options": options})
        return job["id"]

    def status(self, job_id):
        return self.request("GET", "/v1/jobs/%s" % job_id)

    def result(self, job_id):
        return self.request("GET", "/v1/jobs/%s/result" % job_id)

    def file(self, job_id, name):
        return self.request("GET", "/v1/jobs/%s/files/%s" % (job_id, _quote(name)), raw=True, timeout=120)

    def cancel(self, job_id):
        return self.request("DELETE", "/v1/jobs/%s" % job_id)

    def wait(self, job_id, on_progress=None, poll=0.5, cancelled=None):
        """Poll until the job ends; ``on_progress(stage, percent, eta)``; ``cancelled()`` True cancels the
        job."""
        cancel_sent = False
        while True:
            status = self.status(job_id)
            if on_progress:
                on_progress(
                    status.get("stage") or status.get("state"),
                    status.get("progress") or 0,
                    status.get("eta_seconds"),
                )
            if status.get("state") in TERMINAL_STATES:
                return status
            if cancelled and not cancel_sent and cancelled():
                self.cancel(job_id)
                cancel_sent = True
                continue
            time.sleep(poll)


def _pid_alive(pid):
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name == "nt":
        return True  # no cheap check there: the port check decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _quote(name):
    try:
        from urllib.parse import quote
    except ImportError:  # pragma: no cover
        from urllib import quote
    return quote(name, safe="")


def start_engine(config):
    """Start ``captionbridge serve`` in the background (path from ``install.json`` written by the installer,
    or PATH). Returns True when a process was started."""
    install = _read_json(os.path.join(config, "install.json")) or {}
    exe = os.environ.get("CAPTIONBRIDGE_CLI") or install.get("cli") or shutil.which("captionbridge")
    if not exe or not os.path.exists(exe):
        return False
    kwargs = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if os.name == "nt":
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    try:
        subprocess.Popen([exe, "serve"], **kwargs)
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------------------------
def parse_rate(text):
    """Resolve's "23.976", "29.97 DF", "25", "59.94" -> exact (num, den)."""
    cleaned = re.sub(r"[^0-9./]", "", str(text or "").upper().replace("NDF", "").replace("DF", ""))
    if not cleaned:
        raise CaptionBridgeScriptError("Resolve reports no frame rate for this timeline (%r)" % (text,))
    if "/" in cleaned:
        num, den = cleaned.split("/", 1)
        value = float(num) / float(den)
    else:
        value = float(cleaned)
    nominal = int(round(value))
    if nominal and abs(value - nominal * 1000.0 / 1001.0) < 0.01 and abs(value - nominal) > 0.001:
        return nominal * 1000, 1001
    if abs(value - nominal) < 0.001:
        return nominal, 1
    raise CaptionBridgeScriptError("Unsupported timeline frame rate %r" % (text,))


def rate_string(num, den):
    return str(num) if den == 1 else "%d/%d" % (num, den)


def timecode_to_frames(timecode, nominal, drop):
    parts = [int(p) for p in re.split(r"[:;.]", timecode.strip())]
    if len(parts) != 4:
        raise CaptionBridgeScriptError("Unreadable timecode %r" % (timecode,))
    h, m, s, f = parts
    frames = ((h * 60 + m) * 60 + s) * nominal + f
    if drop:
        minutes = h * 60 + m
        frames -= (nominal // 15) * (minutes - minutes // 10)
    return frames


def frames_to_timecode(frames, nominal, drop):
    if drop:
        dropped = nominal // 15
        per_10 = nominal * 600 - dropped * 9
        per_min = nominal * 60 - dropped
        tens, rem = divmod(frames, per_10)
        if rem > dropped:
            frames += dropped * 9 * tens + dropped * ((rem - dropped) // per_min)
        else:
            frames += dropped * 9 * tens
    f = frames % nominal
    s = (frames // nominal) % 60
    m = (frames // (nominal * 60)) % 60
    h = frames // (nominal * 3600)
    return "%02d:%02d:%02d%s%02d" % (h, m, s, ";" if drop else ":", f)


def frame_ms_ceil(frame, num, den):
    """A frame's exact start rounded up to the millisecond (editors floor ms to frames: it lands on
    ``frame``)."""
    return -((-frame * 1000 * den) // num)


def _srt_time(ms):
    h, rem = divmod(ms, 3600000)
    m, rem = divmod(rem, 60000)
    s, ms = divmod(rem, 1000)
    return "%02d:%02d:%02d,%03d" % (h, m, s, ms)


def write_srt(cues, language, num, den, path):
    """SRT of one language, times from the timeline's first frame (00:00:00,000 = frame 0)."""
    lines = []
    n = 0
    for cue in cues:
        text = (cue["text"].get(language) or "").strip()
        if not text:
            continue
        n += 1
        lines.append(
            "%d\n%s --> %s\n%s\n"
            % (
                n,
                _srt_time(frame_ms_ceil(cue["start_frame"], num, den)),
                _srt_time(frame_ms_ceil(cue["end_frame"], num, den)),
                text,
            )
        )
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines))
    return n


# ------------------------------------------------------------------------------------------------------------
# Resolve helpers
# ------------------------------------------------------------------------------------------------------------
def _call(obj, name, *args, **kwargs):
    """Call an API method that may not exist in this Resolve version; None when it is missing or raises."""
    default = kwargs.pop("default", None)
    method = getattr(obj, name, None)
    if method is None:
        return default
    try:
        return method(*args)
    except Exception:  # the scripting bridge raises on missing/invalid calls
        return default


def product_info(resolve):
    name = str(_call(resolve, "GetProductName") or "DaVinci Resolve")
    version = _call(resolve, "GetVersion") or []
    numbers = []
    for part in list(version)[:3]:
        try:
            numbers.append(int(part))
        except (TypeError, ValueError):
            break
    if not numbers:
        text = str(_call(resolve, "GetVersionString") or "0")
        numbers = [int(p) for p in re.findall(r"\d+", text)[:3]] or [0]
    while len(numbers) < 3:
        numbers.append(0)
    return {"name": name, "studio": "studio" in name.lower(), "version": tuple(numbers)}


def studio_call(ctx, obj, name, *args):
    """Call a Studio-only function only on Studio (on free it returns False and blocks Resolve with a
    dialog)."""
    if name in STUDIO_ONLY and not ctx["product"]["studio"]:
        return None
    return _call(obj, name, *args)


def timeline_clock(timeline):
    rate_text = str(_call(timeline, "GetSetting", "timelineFrameRate") or "")
    df_setting = str(_call(timeline, "GetSetting", "timelineDropFrameTimecode") or "")
    start_tc = str(_call(timeline, "GetStartTimecode") or "00:00:00:00")
    num, den = parse_rate(rate_text)
    drop = (
        ("DF" in rate_text.upper().replace("NDF", ""))
        or df_setting.strip().lower() in ("1", "true")
        or ";" in start_tc
    )
    nominal = int(round(float(num) / den))
    if drop and nominal not in (30, 60):
        drop = False
    start_frame = _call(timeline, "GetStartFrame")
    from_tc = timecode_to_frames(start_tc, nominal, drop)
    if start_frame is None:
        start_frame = from_tc
    return {
        "num": num,
        "den": den,
        "rate": rate_string(num, den),
        "nominal": nominal,
        "drop_frame": drop,
        "start_frame": int(start_frame),
        "start_timecode": start_tc,
        "start_frame_from_timecode": from_tc,
    }


def export_timeline(resolve, timeline, folder, product):
    """Export the timeline for the engine: OTIO (18.5+), FCP7 XML otherwise or if OTIO export fails."""
    name = safe_name(_call(timeline, "GetName") or "timeline")
    attempts = []
    if product["version"] >= (18, 5, 0) and getattr(resolve, "EXPORT_OTIO", None) is not None:
        attempts.append(("otio", os.path.join(folder, name + ".otio"), resolve.EXPORT_OTIO))
    if getattr(resolve, "EXPORT_FCP_7_XML", None) is not None:
        attempts.append(("xml", os.path.join(folder, name + ".xml"), resolve.EXPORT_FCP_7_XML))
    tried = []
    for kind, path, constant in attempts:
        ok = _call(timeline, "Export", path, constant, getattr(resolve, "EXPORT_NONE", 0))
        if ok and os.path.isfile(path) and os.path.getsize(path) > 0:
            return path, kind
        tried.append(kind.upper())
    raise CaptionBridgeScriptError(
        "Resolve could not export the timeline (%s tried). Check that the timeline is "
        "not empty and that %s is writable." % (", ".join(tried) or "no format", folder)
    )


def safe_name(text):
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", str(text)).strip(" .")
    return cleaned[:80] or "timeline"


TRACK_TYPES = ("video", "audio", "subtitle")


def save_state(resolve, project, timeline, media_pool):
    state = {
        "page": _call(resolve, "GetCurrentPage"),
        "timeline": timeline,
        "timecode": _call(timeline, "GetCurrentTimecode"),
        "marks": _call(timeline, "GetMarkInOut"),
        "folder": _call(media_pool, "GetCurrentFolder") if media_pool else None,
        "tracks": {},
    }
    for kind in TRACK_TYPES:
        count = _call(timeline, "GetTrackCount", kind) or 0
        for index in range(1, int(count) + 1):
            state["tracks"][(kind, index)] = (
                _call(timeline, "GetIsTrackEnabled", kind, index),
                _call(timeline, "GetIsTrackLocked", kind, index),
            )
    return state


def restore_state(resolve, project, media_pool, state):
    timeline = state["timeline"]
    current = _call(project, "GetCurrentTimeline")
    if current is not None and timeline is not None and current is not timeline:
        _call(project, "SetCurrentTimeline", timeline)
    for (kind, index), (enabled, locked) in state["tracks"].items():
        if enabled is not None and _call(timeline, "GetIsTrackEnabled", kind, index) != enabled:
            _call(timeline, "SetTrackEnable", kind, index, enabled)
        if locked is not None and _call(timeline, "GetIsTrackLocked", kind, index) != locked:
            _call(timeline, "SetTrackLock", kind, index, locked)
    marks = state.get("marks")
    if isinstance(marks, dict):
        now = _call(timeline, "GetMarkInOut")
        if now != marks:
            _call(timeline, "ClearMarkInOut", "all")
            for kind, mark in marks.items():
                if isinstance(mark, dict) and "in" in mark and "out" in mark:
                    _call(timeline, "SetMarkInOut", mark["in"], mark["out"], kind)
    if state.get("timecode"):
        _call(timeline, "SetCurrentTimecode", state["timecode"])
    if media_pool is not None and state.get("folder") is not None:
        _call(media_pool, "SetCurrentFolder", state["folder"])
    if state.get("page") and _call(resolve, "GetCurrentPage") != state["page"]:
        _call(resolve, "OpenPage", state["page"])


def caption_bin(media_pool):
    root = _call(media_pool, "GetRootFolder")
    if root is None:
        return None
    for folder in _call(root, "GetSubFolderList", default=[]) or []:
        if _call(folder, "GetName") == "CaptionBridge":
            return folder
    return _call(media_pool, "AddSubFolder", root, "CaptionBridge")


# ------------------------------------------------------------------------------------------------------------
# Placement and verification
# ------------------------------------------------------------------------------------------------------------
def subtitle_items(timeline, track_index):
    return list(_call(timeline, "GetItemListInTrack", "subtitle", track_index, default=[]) or [])


def verify_track(timeline, track_index, expected):
    """Compare what Resolve holds on the subtitle track with ``expected`` [(start, end)] absolute frames."""
    items = subtitle_items(timeline, track_index)
    got = sorted((int(_call(i, "GetStart", default=-1)), int(_call(i, "GetEnd", default=-1))) for i in items)
    problems = []
    if len(got) != len(expected):
        problems.append("%d of %d captions are on the track" % (len(got), len(expected)))
    got_starts = set(s for s, _ in got)
    missing = [s for s, _ in expected if s not in got_starts]
    if missing:
        problems.append(
            "%d captions are not on their frame (first expected at record frame %d)"
            % (len(missing), missing[0])
        )
    ends = dict(got)
    wrong_end = [s for s, e in expected if s in ends and ends[s] != e]
    return {"ok": not problems, "count": len(got), "problems": problems, "wrong_ends": len(wrong_end)}


def _clear_track(timeline, track_index):
    items = subtitle_items(timeline, track_index)
    if items:
        _call(timeline, "DeleteClips", items, False)


def _add_subtitle_track(timeline, name):
    before = int(_call(timeline, "GetTrackCount", "subtitle", default=0) or 0)
    if not _call(timeline, "AddTrack", "subtitle"):
        return None
    after = int(_call(timeline, "GetTrackCount", "subtitle", default=0) or 0)
    if after != before + 1:
        return None
    _call(timeline, "SetTrackName", "subtitle", after, name)
    return after


def place_language(ctx, language, cues, srt_path, track_name=None):
    """Put one language's cues on a new, named subtitle track; verified. Returns a report dict."""
    timeline, media_pool, clock = ctx["timeline"], ctx["media_pool"], ctx["clock"]
    start = clock["start_frame"]
    cues = [c for c in cues if (c["text"].get(language) or "").strip()]
    expected = [(start + c["start_frame"], start + c["end_frame"]) for c in cues]
    report = {
        "language": language,
        "expected": len(cues),
        "placed": 0,
        "method": None,
        "track": None,
        "problems": [],
        "srt": srt_path,
    }
    name = track_name or "%s (CaptionBridge)" % LANGUAGE_NAMES.get(language, language)
    track = _add_subtitle_track(timeline, name)
    if track is None:
        report["problems"].append("Resolve did not add a subtitle track")
        return report
    report["track"] = track
    report["track_name"] = name
    items = _call(media_pool, "ImportMedia", [srt_path], default=[]) or []
    srt_item = items[0] if items else None
    if srt_item is None:
        report["problems"].append(
            "Resolve did not import %s into the Media Pool" % os.path.basename(srt_path)
        )
    else:
        # Strategy 1: one placement per cue, recordFrame = timeline start frame + cue frame.
        infos = [
            {
                "mediaPoolItem": srt_item,
                "startFrame": c["start_frame"],
                "endFrame": c["end_frame"],
                "recordFrame": start + c["start_frame"],
                "trackIndex": track,
            }
            for c in cues
        ]
        strategies = [
            ("per-cue", infos),
            # Strategy 2: the whole subtitle file at the timeline's first frame (what a drag does).
            ("whole-file", [{"mediaPoolItem": srt_item, "recordFrame": start, "trackIndex": track}]),
        ]
        for label, clip_infos in strategies:
            _call(media_pool, "AppendToTimeline", clip_infos)  # its return value is not trusted
            check = verify_track(timeline, track, expected)
            report["placed"] = check["count"]
            if check["ok"]:
                report["method"] = "subtitle_track"
                report["strategy"] = label
                if check["wrong_ends"]:
                    report["problems"].append(
                        "%d captions end on another frame than asked" % check["wrong_ends"]
                    )
                return report
            report["problems"].append("%s placement: %s" % (label, "; ".join(check["problems"])))
            _clear_track(timeline, track)
    # Leave no half-placed or empty track behind.
    _clear_track(timeline, track)
    _call(timeline, "DeleteTrack", "subtitle", track)
    report["track"] = None
    report["placed"] = 0
    return report


def fallback_fcpxml(ctx, fcpxml_path, languages, cues):
    """Import the engine's FCPXML (<caption> on the same timecodes) as a new timeline and verify its
    captions."""
    project, media_pool, timeline = ctx["project"], ctx["media_pool"], ctx["timeline"]
    if not fcpxml_path or not os.path.isfile(fcpxml_path):
        return None
    name = "%s captions" % (_call(timeline, "GetName") or "Timeline")
    new = _call(
        media_pool, "ImportTimelineFromFile", fcpxml_path, {"timelineName": name, "importSourceClips": False}
    )
    if not new:
        return None
    counts = []
    total = int(_call(new, "GetTrackCount", "subtitle", default=0) or 0)
    for index in range(1, total + 1):
        counts.append(len(subtitle_items(new, index)))
    wanted = [len([c for c in cues if (c["text"].get(lang) or "").strip()]) for lang in languages]
    _call(project, "SetCurrentTimeline", timeline)
    # every language that failed on the user's timeline must be complete on one of the imported tracks
    remaining = list(counts)
    complete = True
    for n in wanted:
        if n in remaining:
            remaining.remove(n)
        else:
            complete = False
    if not complete:
        _call(media_pool, "DeleteTimelines", [new])
        return None
    return {"timeline_name": _call(new, "GetName") or name, "tracks": total}


# ------------------------------------------------------------------------------------------------------------
# One subtitle track per speaker
# ------------------------------------------------------------------------------------------------------------
NO_SPEAKER = ""  # the group of cues the engine gave no speaker


def speaker_display_names(result):
    """Speaker id -> the name to show: the engine's speakers list (a given name, else "Speaker N" for "SN"),
    then any id found only on cues."""
    names = {}
    for entry in result.get("speakers") or []:
        if isinstance(entry, dict) and entry.get("id"):
            names[str(entry["id"])] = str(entry.get("name") or _default_speaker_name(str(entry["id"])))
    for cue in result.get("cues") or []:
        for sid in cue.get("speakers") or []:
            names.setdefault(str(sid), _default_speaker_name(str(sid)))
    return names


def _default_speaker_name(speaker_id):
    if speaker_id[:1] == "S" and speaker_id[1:].isdigit():
        return "Speaker %d" % int(speaker_id[1:])
    return speaker_id


def has_speakers(result):
    return any(cue.get("speakers") for cue in result.get("cues") or [])


def speaker_groups(cues, language, names):
    """[(speaker id, [cues])] for one language, every cue with text in exactly one group: the group of the
    speaker who starts it (a two-speaker cue keeps its dash/label lines on its first speaker's track; a cue
    without a speaker goes to the NO_SPEAKER group). Speakers in the order of ``names`` (the engine's list),
    groups without a cue left out."""
    groups = {}
    for cue in cues:
        if not (cue["text"].get(language) or "").strip():
            continue
        owner = str((cue.get("speakers") or [NO_SPEAKER])[0])
        groups.setdefault(owner, []).append(cue)
    order = [sid for sid in names if sid in groups] + sorted(
        sid for sid in groups if sid not in names and sid != NO_SPEAKER
    )
    if NO_SPEAKER in groups:
        order.append(NO_SPEAKER)
    return [(sid, groups[sid]) for sid in order]


def speaker_track_name(speaker_id, names, language, languages):
    """ "Ana (CaptionBridge)"; with several languages "Ana - Chinese (CaptionBridge)"."""
    who = names.get(speaker_id) or (_default_speaker_name(speaker_id) if speaker_id else "No speaker")
    who = re.sub(r"[\x00-\x1f]+", " ", who).strip()[:40] or "Speaker"
    if len(languages) > 1:
        return "%s - %s (CaptionBridge)" % (who, LANGUAGE_NAMES.get(language, language))
    return "%s (CaptionBridge)" % who


def _delete_tracks(timeline, indices):
    for index in sorted(set(i for i in indices if i), reverse=True):
        _clear_track(timeline, index)
        _call(timeline, "DeleteTrack", "subtitle", index)


def verify_speaker_tracks(timeline, tracks, cues, language, start):
    """Read back every speaker track of one language: each has exactly its own cues, and together they hold
    every cue of the language once (nothing lost, nothing twice)."""
    problems = []
    got = []
    for entry in tracks:
        items = subtitle_items(timeline, entry["track"])
        frames = sorted(
            (int(_call(i, "GetStart", default=-1)), int(_call(i, "GetEnd", default=-1))) for i in items
        )
        if frames != sorted(entry["expected"]):
            problems.append(
                "%d of %d captions of %s are on their track"
                % (len(set(frames) & set(entry["expected"])), len(entry["expected"]), entry["name"])
            )
        got.extend(frames)
    wanted = sorted(
        (start + c["start_frame"], start + c["end_frame"])
        for c in cues
        if (c["text"].get(language) or "").strip()
    )
    if sorted(got) != wanted:
        problems.append("the speaker tracks hold %d captions, the language has %d" % (len(got), len(wanted)))
    return {"ok": not problems, "count": len(got), "problems": problems}


def place_speakers(ctx, language, cues, folder, stem, names, languages):
    """One new subtitle track per speaker for one language, each named after its speaker and verified by
    read-back, then all of them together against the language's cues. On any failure every track made here
    is removed again (nothing half placed) and the report's method stays None."""
    timeline, start = ctx["timeline"], ctx["clock"]["start_frame"]
    clock = ctx["clock"]
    report = {
        "language": language,
        "expected": len([c for c in cues if (c["text"].get(language) or "").strip()]),
        "placed": 0,
        "method": None,
        "track": None,
        "problems": [],
        "srt": None,
        "speakers": [],
        "two_speaker_cues": len(
            [c for c in cues if len(c.get("speakers") or []) > 1 and (c["text"].get(language) or "").strip()]
        ),
    }
    placed = []
    for speaker_id, group in speaker_groups(cues, language, names):
        name = speaker_track_name(speaker_id, names, language, languages)
        srt = os.path.join(
            folder, "%s.%s.%s.srt" % (stem, language, safe_name(speaker_id or "no-speaker").replace(" ", "_"))
        )
        write_srt(group, language, clock["num"], clock["den"], srt)
        one = place_language(ctx, language, group, srt, track_name=name)
        entry = {
            "speaker": speaker_id or None,
            "name": name,
            "track": one["track"],
            "placed": one["placed"],
            "srt": srt,
            "expected": [(start + c["start_frame"], start + c["end_frame"]) for c in group],
        }
        if one["method"] is None:
            report["problems"].append("%s: %s" % (name, "; ".join(one["problems"])))
            _delete_tracks(timeline, [e["track"] for e in placed])
            report["speakers"] = placed + [entry]
            for e in report["speakers"]:
                e["track"] = None
            return report
        report.setdefault("strategy", one.get("strategy"))
        placed.append(entry)
    check = verify_speaker_tracks(timeline, placed, cues, language, start)
    report["speakers"] = placed
    if not check["ok"]:
        report["problems"].extend(check["problems"])
        _delete_tracks(timeline, [e["track"] for e in placed])
        for e in placed:
            e["track"] = None
        return report
    report.update(method="subtitle_track", placed=check["count"])
    report["track"] = placed[0]["track"] if placed else None
    report["track_name"] = placed[0]["name"] if placed else None
    report["srt"] = placed[0]["srt"] if placed else None
    return report


def add_review_markers(ctx, words):
    """Low-confidence words -> timeline markers (frames relative to the timeline start), one per frame."""
    timeline = ctx["timeline"]
    added = 0
    seen = set()
    low = [w for w in words if float(w.get("confidence", 1.0)) < LOW_CONFIDENCE]
    for word in low[:MAX_MARKERS]:
        frame = int(word["start_frame"])
        if frame in seen:
            continue
        seen.add(frame)
        duration = max(1, int(word["end_frame"]) - frame)
        note = "CaptionBridge: low confidence (%.0f%%), check this word" % (
            100 * float(word.get("confidence", 0))
        )
        if _call(
            timeline,
            "AddMarker",
            frame,
            "Yellow",
            "check: %s" % word["text"].strip(),
            note,
            duration,
            "captionbridge",
        ):
            added += 1
    return {"added": added, "low_confidence_words": len(low), "capped": len(low) > MAX_MARKERS}


# ------------------------------------------------------------------------------------------------------------
# User interface
# ------------------------------------------------------------------------------------------------------------
class ConsoleUI(object):
    """Prints to Resolve's Console (Workspace > Console); defaults for options."""

    def ask_options(self, defaults, context):
        return dict(defaults)

    def progress(self, stage, percent, eta):
        eta_text = "" if eta is None else " (about %ds left)" % int(eta)
        print("CaptionBridge: %s %d%%%s" % (stage, int(percent), eta_text))

    def cancelled(self):
        return False

    def message(self, title, text, error=False):
        print("%s%s: %s" % ("ERROR " if error else "", title, text))

    def offer(self, title, text, action):
        """A message with a button for a next step (``action``); True when it was chosen."""
        self.message(title, text)
        return False

    def close(self):
        pass


class FusionUI(ConsoleUI):
    """Dialogs through Fusion's UIManager (available in Studio and free, Python and Lua)."""

    LANGUAGES = [("auto", "Detect"), ("en", "English"), ("zh", "Chinese")]
    TRANSLATIONS = [(None, "No translation"), ("en", "Add English"), ("zh", "Add Chinese")]

    def __init__(self, fusion, bmd):
        self.ui = fusion.UIManager
        self.disp = bmd.UIDispatcher(self.ui)
        self.window = None
        self._cancel = False

    def ask_options(self, defaults, context):
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {
                "ID": "CaptionBridgeOptions",
                "WindowTitle": "Generate Captions",
                "Geometry": [300, 300, 480, 340],
            },
            ui.VGroup(
                [
                    ui.Label({"Text": "Timeline: %s (%s)" % (context["name"], context["clock"])}),
                    ui.HGroup([ui.Label({"Text": "Spoken language"}), ui.ComboBox({"ID": "Language"})]),
                    ui.HGroup([ui.Label({"Text": "Translation"}), ui.ComboBox({"ID": "Translate"})]),
                    ui.HGroup(
                        [
                            ui.Label({"Text": "Audio tracks (e.g. A1,A2; empty = all)"}),
                            ui.LineEdit({"ID": "Tracks", "Text": ""}),
                        ]
                    ),
                    ui.HGroup(
                        [
                            ui.Label({"Text": "Caption preset (empty = default)"}),
                            ui.LineEdit({"ID": "Preset", "Text": defaults.get("preset") or ""}),
                        ]
                    ),
                    ui.HGroup([ui.Label({"Text": "Speakers"}), ui.ComboBox({"ID": "Speakers"})]),
                    ui.HGroup(
                        [
                            ui.Label({"Text": "Speaker names (e.g. Ana,Ben; optional)"}),
                            ui.LineEdit({"ID": "SpeakerNames", "Text": ""}),
                        ]
                    ),
                    ui.CheckBox(
                        {
                            "ID": "SpeakerTracks",
                            "Text": "One subtitle track per speaker",
                            "Checked": False,
                            "Enabled": False,
                        }
                    ),
                    ui.CheckBox({"ID": "Markers", "Text": "Mark words to review", "Checked": True}),
                    ui.HGroup(
                        [
                            ui.Button({"ID": "Cancel", "Text": "Cancel"}),
                            ui.Button({"ID": "OK", "Text": "Generate"}),
                        ]
                    ),
                ]
            ),
        )
        items = win.GetItems()
        for _, label in self.LANGUAGES:
            items["Language"].AddItem(label)
        for _, label in self.TRANSLATIONS:
            items["Translate"].AddItem(label)
        for _, label in SPEAKER_CHOICES:
            items["Speakers"].AddItem(label)

        def speakers_on():
            named = bool(str(items["SpeakerNames"].Text or "").strip())
            return int(items["Speakers"].CurrentIndex) > 0 or named

        def on_speakers(ev):  # one track per speaker is offered only while speakers are on
            items["SpeakerTracks"].Enabled = speakers_on()
            if not speakers_on():
                items["SpeakerTracks"].Checked = False

        answer = {}

        def on_ok(ev):
            answer["ok"] = True
            disp.ExitLoop()

        def on_cancel(ev):
            disp.ExitLoop()

        win.On.OK.Clicked = on_ok
        win.On.Cancel.Clicked = on_cancel
        win.On.CaptionBridgeOptions.Close = on_cancel
        win.On.Speakers.CurrentIndexChanged = on_speakers
        win.On.SpeakerNames.TextChanged = on_speakers
        win.Show()
        disp.RunLoop()
        win.Hide()
        if not answer.get("ok"):
            return None
        options = dict(defaults)
        options["language"] = self.LANGUAGES[int(items["Language"].CurrentIndex)][0]
        options["translate_to"] = self.TRANSLATIONS[int(items["Translate"].CurrentIndex)][0]
        tracks = [t.strip().upper() for t in str(items["Tracks"].Text or "").split(",") if t.strip()]
        options["tracks"] = tracks or None
        options["preset"] = str(items["Preset"].Text or "").strip() or None
        options["review_markers"] = bool(items["Markers"].Checked)
        options["speakers"] = SPEAKER_CHOICES[int(items["Speakers"].CurrentIndex)][0]
        names = [n.strip() for n in str(items["SpeakerNames"].Text or "").split(",") if n.strip()]
        options["speaker_names"] = names or None
        options["speaker_tracks"] = bool(items["SpeakerTracks"].Checked) and speakers_on()
        return options

    def progress(self, stage, percent, eta):
        ConsoleUI.progress(self, stage, percent, eta)
        try:
            if self.window is None:
                self.window = self.disp.AddWindow(
                    {
                        "ID": "CaptionBridgeProgress",
                        "WindowTitle": "CaptionBridge",
                        "Geometry": [320, 320, 420, 80],
                    },
                    self.ui.VGroup([self.ui.Label({"ID": "Status", "Text": ""})]),
                )
                self.window.Show()
            eta_text = "" if eta is None else ", about %ds left" % int(eta)
            self.window.GetItems()["Status"].Text = "%s: %d%%%s" % (stage, int(percent), eta_text)
        except Exception:
            pass

    def message(self, title, text, error=False):
        ConsoleUI.message(self, title, text, error)
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {"ID": "CaptionBridgeMessage", "WindowTitle": title, "Geometry": [300, 300, 560, 260]},
            ui.VGroup(
                [
                    ui.TextEdit({"ID": "Text", "Text": text, "ReadOnly": True}),
                    ui.Button({"ID": "OK", "Text": "OK"}),
                ]
            ),
        )
        win.On.OK.Clicked = lambda ev: disp.ExitLoop()
        win.On.CaptionBridgeMessage.Close = lambda ev: disp.ExitLoop()
        win.Show()
        disp.RunLoop()
        win.Hide()

    def offer(self, title, text, action):
        ConsoleUI.message(self, title, text)
        ui, disp = self.ui, self.disp
        chosen = []
        win = disp.AddWindow(
            {"ID": "CaptionBridgeOffer", "WindowTitle": title, "Geometry": [300, 300, 560, 260]},
            ui.VGroup(
                [
                    ui.TextEdit({"ID": "Text", "Text": text, "ReadOnly": True}),
                    ui.HGroup(
                        [
                            ui.Button({"ID": "OK", "Text": "Close"}),
                            ui.Button({"ID": "Action", "Text": action}),
                        ]
                    ),
                ]
            ),
        )

        def on_action(ev):
            chosen.append(True)
            disp.ExitLoop()

        win.On.Action.Clicked = on_action
        win.On.OK.Clicked = lambda ev: disp.ExitLoop()
        win.On.CaptionBridgeOffer.Close = lambda ev: disp.ExitLoop()
        win.Show()
        disp.RunLoop()
        win.Hide()
        return bool(chosen)

    def close(self):
        if self.window is not None:
            self.window.Hide()


# ------------------------------------------------------------------------------------------------------------
# The whole flow
# ------------------------------------------------------------------------------------------------------------
def engine_options(options, clock=None):
    out = {}
    for key in ("language", "translate_to", "preset", "tracks", "formats", "model", "device"):
        value = options.get(key)
        if value not in (None, "", []):
            out[key] = value
    speakers = options.get("speakers")
    if speakers not in (None, "", "off", "Off", 0):
        out["speakers"] = speakers
    names = options.get("speaker_names")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    if names and any(names):
        out["speaker_names"] = [n for n in names if n]
        out.setdefault("speakers", "auto")  # names imply labelling, as on the command line
    if clock is not None:
        # Resolve's OTIO export may not say drop-frame: the timeline's own setting decides.
        out["drop_frame"] = bool(clock["drop_frame"])
    return out


def check_speaker_options(options):
    """One track per speaker needs speaker labels: refused (before anything is exported) when they are
    off."""
    if options.get("speaker_tracks") and "speakers" not in engine_options(options):
        raise CaptionBridgeScriptError(
            "One subtitle track per speaker needs speaker labels: set Speakers to Detect or a number of "
            "speakers (or give their names), or untick One subtitle track per speaker."
        )


def output_folder(options, timeline_name):
    if options.get("output_dir"):
        base = options["output_dir"]
    else:
        home = os.path.expanduser("~")
        docs = os.path.join(home, "Documents")
        base = os.path.join(docs if os.path.isdir(docs) else home, "CaptionBridge")
    folder = os.path.join(base, "%s %s" % (safe_name(timeline_name), time.strftime("%Y-%m-%d %H%M%S")))
    os.makedirs(folder, exist_ok=True)
    return folder


def _check_result_clock(result, clock):
    tl = result.get("timeline") or {}
    if str(tl.get("rate")) != clock["rate"]:
        raise CaptionBridgeScriptError(
            "The engine read the timeline at %s fps but Resolve says %s: captions would drift, so none were "
            "placed. "
            "Check the timeline frame rate in Timeline Settings." % (tl.get("rate"), clock["rate"])
        )
    theirs = str(tl.get("start_timecode") or "").replace(";", ":")
    if theirs and theirs != clock["start_timecode"].replace(";", ":"):
        raise CaptionBridgeScriptError(
            "The engine read a start timecode of %s but the timeline starts at %s: captions would land on "
            "the wrong "
            "frames, so none were placed." % (tl.get("start_timecode"), clock["start_timecode"])
        )


def _placed_summary(language, lang_report):
    if lang_report.get("speakers"):
        return "%s: %d captions on %d speaker tracks (%s)" % (
            LANGUAGE_NAMES.get(language, language),
            lang_report["placed"],
            len(lang_report["speakers"]),
            ", ".join(
                "%s: %d on track %d" % (e["name"].replace(" (CaptionBridge)", ""), e["placed"], e["track"])
                for e in lang_report["speakers"]
            ),
        )
    return "%s: %d captions on subtitle track %d" % (
        LANGUAGE_NAMES.get(language, language),
        lang_report["placed"],
        lang_report["track"],
    )


def run(resolve, options=None, ui=None, engine=None, work_dir=None):
    """Generate captions for the current timeline. Returns a report dict; every outcome is told to the
    user."""
    ui = ui or ConsoleUI()
    report = {"ok": False, "languages": {}, "messages": [], "markers": None}

    def tell(title, text, error=False):
        report["messages"].append({"title": title, "text": text, "error": error})
        ui.message(title, text, error)

    product = product_info(resolve)
    report["product"] = product
    project_manager = _call(resolve, "GetProjectManager")
    project = _call(project_manager, "GetCurrentProject") if project_manager else None
    timeline = _call(project, "GetCurrentTimeline") if project else None
    if timeline is None:
        tell(
            "Generate Captions",
            "Open a project and a timeline first (Edit page), then run Generate Captions.",
            error=True,
        )
        return report
    media_pool = _call(project, "GetMediaPool")
    state = save_state(resolve, project, timeline, media_pool)
    temp = work_dir or tempfile.mkdtemp(prefix="captionbridge-")
    if not os.path.isdir(temp):
        os.makedirs(temp)
    ctx = {
        "resolve": resolve,
        "project": project,
        "timeline": timeline,
        "media_pool": media_pool,
        "product": product,
        "ui": ui,
    }
    try:
        clock = timeline_clock(timeline)
        ctx["clock"] = clock
        report["clock"] = clock
        name = _call(timeline, "GetName") or "Timeline"
        label = "%s%s fps, starts %s" % (
            "%.3f" % (float(clock["num"]) / clock["den"]) if clock["den"] != 1 else str(clock["num"]),
            " DF" if clock["drop_frame"] else "",
            clock["start_timecode"],
        )
        chosen = ui.ask_options(dict(DEFAULT_OPTIONS, **(options or {})), {"name": name, "clock": label})
        if chosen is None:
            report["messages"].append({"title": "Generate Captions", "text": "cancelled", "error": False})
            return report
        check_speaker_options(chosen)
        engine = engine or Engine.discover()
        path, kind = export_timeline(resolve, timeline, temp, product)
        report["export"] = {"path": path, "kind": kind}
        job_id = engine.submit(path, engine_options(chosen, clock))
        report["job"] = job_id
        status = engine.wait(job_id, ui.progress, poll=float(chosen.get("poll", 0.5)), cancelled=ui.cancelled)
        if status.get("state") != "succeeded":
            error = status.get("error") or {}
            if status.get("state") == "cancelled":
                tell("Generate Captions", "Cancelled; nothing was changed on the timeline.")
            else:
                tell(
                    "Generate Captions",
                    "The engine could not caption this timeline: %s"
                    % (error.get("message") or status.get("state")),
                    error=True,
                )
            return report
        result = engine.result(job_id)
        _check_result_clock(result, clock)
        folder = output_folder(chosen, name)
        report["folder"] = folder
        files = {}
        for file_name in result.get("files") or []:
            target = os.path.join(folder, os.path.basename(file_name))
            with open(target, "wb") as handle:
                handle.write(engine.file(job_id, file_name))
            files[file_name] = target
        cues = result.get("cues") or []
        languages = list(result.get("languages") or [result.get("source_language") or "und"])
        if not cues:
            tell(
                "Generate Captions",
                "No speech was found on the timeline's audio tracks; no captions were added.",
            )
            report["ok"] = True
            return report
        bin_folder = caption_bin(media_pool)
        if bin_folder is not None:
            _call(media_pool, "SetCurrentFolder", bin_folder)
        failed = []
        by_speaker = bool(chosen.get("speaker_tracks"))
        names = speaker_display_names(result)
        if by_speaker and not has_speakers(result):
            by_speaker = False
            report["speaker_tracks"] = "no speakers in the result"
        for language in languages:
            srt = os.path.join(folder, "%s.%s.srt" % (safe_name(name), language))
            write_srt(cues, language, clock["num"], clock["den"], srt)
            if by_speaker:
                lang_report = place_speakers(ctx, language, cues, folder, safe_name(name), names, languages)
                lang_report["srt"] = srt  # the whole language, for the fallbacks below
            else:
                lang_report = place_language(ctx, language, cues, srt)
            report["languages"][language] = lang_report
            if lang_report["method"] is None:
                failed.append(language)
        if chosen.get("review_markers", True) and result.get("words"):
            report["markers"] = add_review_markers(ctx, result["words"])
        if failed:
            fcpxml = next((p for n, p in files.items() if n.lower().endswith(".fcpxml")), None)
            imported = fallback_fcpxml(ctx, fcpxml, failed, cues)
            if imported:
                for language in failed:
                    report["languages"][language]["method"] = "fcpxml_timeline"
                tell(
                    "Captions on a new timeline",
                    "Resolve did not keep captions placed on '%s' (%s). They are on a new timeline '%s' "
                    "(subtitle tracks, same timecodes). In the Media Pool open it, select the subtitle "
                    "track's "
                    "clips, copy, then on '%s' put the playhead at %s, select the subtitle track and paste."
                    % (
                        name,
                        "; ".join(p for lang in failed for p in report["languages"][lang]["problems"]),
                        imported["timeline_name"],
                        name,
                        clock["start_timecode"],
                    ),
                    error=True,
                )
            else:
                steps = []
                for language in failed:
                    lang_report = report["languages"][language]
                    lang_report["method"] = "sidecar"
                    steps.append("- %s: %s" % (LANGUAGE_NAMES.get(language, language), lang_report["srt"]))
                tell(
                    "Import the captions by hand",
                    "Resolve did not place the captions on '%s' (%s), so nothing was left half done. The "
                    "caption "
                    "files are ready:\n%s\n\nFor each file: File > Import > Subtitle..., choose it, then "
                    "drag it "
                    "from the Media Pool onto a subtitle track at the very start of the timeline (%s, record "
                    "frame "
                    "%d) with snapping on. Its first caption then starts at %s."
                    % (
                        name,
                        "; ".join(p for lang in failed for p in report["languages"][lang]["problems"]),
                        "\n".join(steps),
                        clock["start_timecode"],
                        clock["start_frame"],
                        frames_to_timecode(
                            clock["start_frame"] + cues[0]["start_frame"],
                            clock["nominal"],
                            clock["drop_frame"],
                        ),
                    ),
                    error=True,
                )
        placed = [lang for lang in languages if report["languages"][lang]["method"] == "subtitle_track"]
        if placed:  # what Update Captions replaces later: this job's tracks on this timeline
            record_job(
                engine,
                project,
                timeline,
                {
                    "job": job_id,
                    "version": 0,
                    "timeline": name,
                    "at": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "tracks": dict((lang, report["languages"][lang]["track_name"]) for lang in placed),
                    # one track per speaker: language -> {speaker id ("" = none) -> track name}
                    "speaker_tracks": dict(
                        (lang, dict((e["speaker"] or NO_SPEAKER, e["name"]) for e in rep["speakers"]))
                        for lang, rep in ((x, report["languages"][x]) for x in placed)
                        if rep.get("speakers")
                    ),
                },
            )
        if placed and not failed:
            report["ok"] = True
            summary = ", ".join(_placed_summary(lang, report["languages"][lang]) for lang in placed)
            extra = ""
            if report.get("speaker_tracks"):
                extra += (
                    "\nNo speakers were found in these captions (Speakers was %s), so each language is on "
                    "one track." % (chosen.get("speakers") or "off")
                )
            two = sum(report["languages"][lang].get("two_speaker_cues", 0) for lang in placed)
            if two:
                extra += (
                    "\n%d two-speaker captions (one dashed line per speaker) are on the track of the speaker "
                    "who starts them." % two
                )
            if report["markers"] and report["markers"]["added"]:
                extra += "\n%d yellow markers show words to check." % report["markers"]["added"]
            extra += (
                "\nTo check them against the sound and correct them: Workspace > Scripts > Review Captions; "
                "then Update Captions puts the approved version here."
            )
            text = "%s. Files: %s%s" % (summary, folder, extra)
            if getattr(ui, "offer", None) is None:
                tell("Captions added", text)
            else:  # the dialog's own button opens the review page on these captions now
                report["messages"].append({"title": "Captions added", "text": text, "error": False})
                if ui.offer("Captions added", text, "Review Captions"):
                    report["review"] = review(resolve, ui=ui, engine=engine)
        return report
    except CaptionBridgeScriptError as exc:
        tell("Generate Captions", str(exc), error=True)
        return report
    finally:
        try:
            restore_state(resolve, project, media_pool, state)
        finally:
            ui.close()
            if work_dir is None:
                shutil.rmtree(temp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------------
# Review and update: the job each timeline was captioned by is recorded in <config>/editor-jobs.json
# ------------------------------------------------------------------------------------------------------------
RECORD_FILE = "editor-jobs.json"


def timeline_key(project, timeline):
    uid = _call(timeline, "GetUniqueId")
    if uid:
        return "resolve:uid:%s" % uid
    return "resolve:%s/%s" % (_call(project, "GetName") or "", _call(timeline, "GetName") or "")


def _records_path(engine):
    return os.path.join(getattr(engine, "config", None) or config_dir(), RECORD_FILE)


def _read_records(engine):
    """(records, None), or (None, what to tell the user) when the file is there but is not a JSON object (it
    is then left as it is: the Premiere panel and the other script keep their jobs in it too)."""
    path = _records_path(engine)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            records = json.load(handle)
    except FileNotFoundError:
        return {}, None
    except (IOError, OSError, ValueError) as exc:
        records, why = None, str(exc)
    else:
        why = "not a JSON object"
    if isinstance(records, dict):
        return records, None
    return None, (
        "CaptionBridge's record of which job captioned which timeline (%s) cannot be read (%s). Move it "
        "away or repair it, then run this again; it is left as it is until then." % (path, why)
    )


def record_job(engine, project, timeline, record):
    path = _records_path(engine)
    records, problem = _read_records(engine)
    if problem:
        return  # never overwrite what cannot be read; only Update Captions will not find this job
    records[timeline_key(project, timeline)] = record
    tmp = path + ".part"
    try:
        with open(tmp, "w") as handle:
            json.dump(records, handle, indent=1)
        os.replace(tmp, path)
    except (IOError, OSError):
        pass  # the captions are placed; only Update Captions will not find this job


def find_job(engine, project, timeline):
    records, problem = _read_records(engine)
    if problem:
        raise CaptionBridgeScriptError(problem)
    return records.get(timeline_key(project, timeline))


def _open_url(url):
    import webbrowser

    return webbrowser.open(url, new=2)


def review(resolve, ui=None, engine=None, open_url=None):
    """Open the engine's review page on the job that captioned the current timeline (the job list
    otherwise)."""
    ui = ui or ConsoleUI()
    report = {"ok": False, "messages": [], "url": None, "job": None}
    try:
        project_manager = _call(resolve, "GetProjectManager")
        project = _call(project_manager, "GetCurrentProject") if project_manager else None
        timeline = _call(project, "GetCurrentTimeline") if project else None
        engine = engine or Engine.discover(script="Review Captions")
        record = find_job(engine, project, timeline) if timeline is not None else None
        body = {"job_id": record["job"]} if record else {}
        lost = None
        try:
            link = engine.request("POST", "/v1/review/links", body)
        except EngineError as exc:
            if record and exc.status == 404:  # the job expired on the engine: show the list instead
                lost, record = record["job"], None
                link = engine.request("POST", "/v1/review/links", {})
            else:
                raise
        report["url"], report["job"] = link["url"], record["job"] if record else None
        (open_url or _open_url)(link["url"])
        text = (
            (
                "The review page is open in your browser (%s). Correct the captions, Approve, then run "
                "Workspace > Scripts > Update Captions." % link["url"]
            )
            if record
            else (
                "No CaptionBridge job is recorded for this timeline: the review page shows every job (%s)."
                % link["url"]
            )
        )
        if lost:
            text = (
                "The engine no longer has job %s, which captioned this timeline (deleted, or its results "
                "expired): the review page shows every job (%s)." % (lost, link["url"])
            )
        report["messages"].append({"title": "Review Captions", "text": text, "error": False})
        ui.message("Review Captions", text)
        report["ok"] = True
    except CaptionBridgeScriptError as exc:
        report["messages"].append({"title": "Review Captions", "text": str(exc), "error": True})
        ui.message("Review Captions", str(exc), True)
    finally:
        ui.close()
    return report


def _track_indices_named(timeline, name, exclude=None):
    count = int(_call(timeline, "GetTrackCount", "subtitle", default=0) or 0)
    return [
        i
        for i in range(1, count + 1)
        if i != exclude and _call(timeline, "GetTrackName", "subtitle", i) == name
    ]


def _update_speaker_tracks(ctx, record, language, version, cues, folder, stem, languages):
    """Update Captions for a language placed one track per speaker: the approved version (its speakers as
    reviewed: a cue moved to another speaker moves track, a new speaker gets a track) goes on new speaker
    tracks, verified; only then are the old speaker tracks of that language removed, and the record says which
    tracks are the job's now. A failed placement removes the new tracks and leaves the old ones as they
    were."""
    timeline = ctx["timeline"]
    names = speaker_display_names(version)
    if not has_speakers(version):  # a version without speakers: its cues on one "No speaker" track
        names = {}
    lang_report = place_speakers(
        ctx, language, cues, folder, "%s.v%s" % (stem, version.get("version")), names, languages
    )
    if lang_report["method"] is not None and not lang_report["speakers"]:  # nothing to put in their place
        lang_report["method"] = None
        lang_report["problems"].append(
            "the approved version has no %s captions" % LANGUAGE_NAMES.get(language, language)
        )
    if lang_report["method"] is None:
        return lang_report
    old_names = set(record["speaker_tracks"][language].values())
    new_tracks = [e["track"] for e in lang_report["speakers"]]
    others = dict(
        (i, _call(timeline, "GetTrackName", "subtitle", i))
        for i in range(1, int(_call(timeline, "GetTrackCount", "subtitle", default=0) or 0) + 1)
        if i not in new_tracks
    )
    old_indices = [i for i, track_name in others.items() if track_name in old_names]
    # the user renamed or deleted these: nothing of theirs is removed, and Update says so
    lang_report["missing_tracks"] = sorted(n for n in old_names if n not in others.values())
    for index in sorted(old_indices, reverse=True):
        _clear_track(timeline, index)
        if _call(timeline, "DeleteTrack", "subtitle", index):
            for e in lang_report["speakers"]:
                if index < e["track"]:
                    e["track"] -= 1
    for e in lang_report["speakers"]:
        _call(timeline, "SetTrackName", "subtitle", e["track"], e["name"])
    start = ctx["clock"]["start_frame"]
    check = verify_speaker_tracks(timeline, lang_report["speakers"], cues, language, start)
    lang_report["placed"] = check["count"]
    lang_report["problems"].extend(check["problems"])
    lang_report["track"] = lang_report["speakers"][0]["track"]
    record["speaker_tracks"][language] = dict(
        (e["speaker"] or NO_SPEAKER, e["name"]) for e in lang_report["speakers"]
    )
    record["tracks"][language] = lang_report["speakers"][0]["name"]
    return lang_report


def update(resolve, ui=None, engine=None, work_dir=None):
    """Replace the subtitle tracks a job put on the current timeline with its latest approved version.

    The new version goes on a new track first and is verified by read-back; only then is the old track of that
    language removed (so a failed placement leaves the previous captions as they were)."""
    ui = ui or ConsoleUI()
    report = {"ok": False, "languages": {}, "messages": [], "version": None}

    def tell(text, error=False):
        report["messages"].append({"title": "Update Captions", "text": text, "error": error})
        ui.message("Update Captions", text, error)

    project_manager = _call(resolve, "GetProjectManager")
    project = _call(project_manager, "GetCurrentProject") if project_manager else None
    timeline = _call(project, "GetCurrentTimeline") if project else None
    if timeline is None:
        tell("Open the timeline that was captioned first (Edit page), then run Update Captions.", error=True)
        ui.close()
        return report
    media_pool = _call(project, "GetMediaPool")
    state = save_state(resolve, project, timeline, media_pool)
    temp = work_dir or tempfile.mkdtemp(prefix="captionbridge-")
    if not os.path.isdir(temp):
        os.makedirs(temp)
    ctx = {"resolve": resolve, "project": project, "timeline": timeline, "media_pool": media_pool, "ui": ui}
    try:
        clock = timeline_clock(timeline)
        ctx["clock"] = clock
        name = _call(timeline, "GetName") or "Timeline"
        engine = engine or Engine.discover(script="Update Captions")
        record = find_job(engine, project, timeline)
        if not record:
            tell(
                "No CaptionBridge job is recorded for '%s': run Generate Captions on it first (then Review "
                "Captions and Approve)." % name,
                error=True,
            )
            return report
        try:
            version = engine.request("GET", "/v1/jobs/%s/versions/latest" % record["job"])
        except EngineError as exc:
            if exc.status == 404 and exc.code == "job_not_found":
                tell(
                    "The engine no longer has job %s, which captioned '%s' (it was deleted, or the engine "
                    "keeps its jobs in another folder now). Nothing was changed: run Generate Captions again "
                    "to caption this timeline anew. (%s)" % (record["job"], name, exc),
                    error=True,
                )
                return report
            if exc.status == 404:
                tell(
                    "No approved version of these captions yet: run Review Captions, correct them, press "
                    "Approve, then run Update Captions again. (%s)" % exc,
                    error=True,
                )
                return report
            raise
        report["version"] = version.get("version")
        _check_result_clock(version, clock)
        cues = version.get("cues") or []
        languages = [
            lang for lang in (version.get("languages") or []) if lang in record.get("tracks", {})
        ] or list(record.get("tracks", {}))
        bin_folder = caption_bin(media_pool)
        if bin_folder is not None:
            _call(media_pool, "SetCurrentFolder", bin_folder)
        failed, notes = [], []
        speaker_records = record.get("speaker_tracks") or {}
        for language in languages:
            if speaker_records.get(language):
                lang_report = _update_speaker_tracks(
                    ctx, record, language, version, cues, temp, safe_name(name), languages
                )
                report["languages"][language] = lang_report
                if lang_report["method"] is None or lang_report["problems"]:
                    failed.append(language)
                for missing in lang_report.get("missing_tracks") or []:
                    notes.append(
                        "There was no subtitle track named '%s' on '%s' any more (renamed or deleted), so "
                        "nothing old was removed for it: if you renamed it, delete that track yourself."
                        % (missing, name)
                    )
                continue
            old_name = record["tracks"][language]
            srt = os.path.join(temp, "%s.v%s.%s.srt" % (safe_name(name), version.get("version"), language))
            write_srt(cues, language, clock["num"], clock["den"], srt)
            lang_report = place_language(ctx, language, cues, srt)
            report["languages"][language] = lang_report
            if lang_report["method"] is None:
                failed.append(language)
                continue
            new_index = lang_report["track"]
            old_tracks = _track_indices_named(timeline, old_name, exclude=new_index)
            if not old_tracks:  # the user renamed or deleted it: nothing of theirs is removed
                notes.append(
                    "There was no subtitle track named '%s' on '%s' any more (renamed or deleted), so "
                    "nothing old was removed for %s: if you renamed it, delete that track yourself."
                    % (old_name, name, LANGUAGE_NAMES.get(language, language))
                )
            for index in sorted(old_tracks, reverse=True):
                _clear_track(timeline, index)
                if _call(timeline, "DeleteTrack", "subtitle", index) and index < new_index:
                    new_index -= 1
            _call(timeline, "SetTrackName", "subtitle", new_index, old_name)
            lang_report["track"] = new_index
            start = clock["start_frame"]
            expected = [
                (start + c["start_frame"], start + c["end_frame"])
                for c in cues
                if (c["text"].get(language) or "").strip()
            ]
            check = verify_track(
                timeline, new_index, expected
            )  # read back once more, after the old track went
            lang_report["placed"] = check["count"]
            if not check["ok"]:
                lang_report["problems"].extend(check["problems"])
                failed.append(language)
        if failed:
            tell(
                "Version %s could not be placed for %s (%s); the previous captions of %s were left as they "
                "were."
                % (
                    version.get("version"),
                    ", ".join(LANGUAGE_NAMES.get(x, x) for x in failed),
                    "; ".join(p for x in failed for p in report["languages"][x]["problems"]),
                    "that language" if len(failed) == 1 else "those languages",
                ),
                error=True,
            )
        done = [x for x in languages if x not in failed]
        if done:
            record["version"] = version.get("version")
            record_job(engine, project, timeline, record)
        if done and not failed:
            report["ok"] = True
            tell(
                "Captions updated to version %s: %s."
                % (
                    version.get("version"),
                    ", ".join(_placed_summary(x, report["languages"][x]) for x in done),
                )
                + "".join("\n" + note for note in notes)
            )
        return report
    except CaptionBridgeScriptError as exc:
        tell(str(exc), error=True)
        return report
    finally:
        try:
            restore_state(resolve, project, media_pool, state)
        finally:
            ui.close()
            if work_dir is None:
                shutil.rmtree(temp, ignore_errors=True)


def _resolve_app():
    """The app object inside Resolve's menu (``resolve`` global), or through the scripting module when
    external."""
    main_module = sys.modules.get("__main__")
    app = getattr(main_module, "resolve", None) or globals().get("resolve")
    if app is not None:
        return app
    bmd = getattr(main_module, "bmd", None) or globals().get("bmd")
    if bmd is not None:
        return bmd.scriptapp("Resolve")
    try:
        import DaVinciResolveScript as dvr  # external scripting (Studio; Preferences > General > Local)

        return dvr.scriptapp("Resolve")
    except ImportError:
        return None


def _ui():
    main_module = sys.modules.get("__main__")
    fusion = getattr(main_module, "fusion", None) or globals().get("fusion")
    bmd = getattr(main_module, "bmd", None) or globals().get("bmd")
    if fusion is not None and bmd is not None:
        try:
            return FusionUI(fusion, bmd)
        except Exception:
            pass
    return ConsoleUI()


def _menu_entry(entry, action, app=None):
    """A menu entry: ``action(app, ui=...)`` inside Resolve (exit status 0 when it went well, 1 when not),
    or a one-line message and 2 where there is no Resolve."""
    app = app or _resolve_app()
    if app is None:
        print(f"{entry} must run inside DaVinci Resolve (Workspace > Scripts > {entry}).")
        return 2
    return 0 if action(app, ui=_ui()).get("ok") else 1


def main_review(app=None):
    return _menu_entry("Review Captions", review, app)


def main_update(app=None):
    return _menu_entry("Update Captions", update, app)


def main():
    return _menu_entry("Generate Captions", run)


# Resolve runs menu scripts with `resolve`, `fusion` and `bmd` injected as globals; the module name is not
# always "__main__". Tests import this file without those globals, so nothing runs on import there.
if __name__ == "__main__" or "resolve" in globals() or "bmd" in globals():
    main()
