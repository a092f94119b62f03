"""The Premiere panel (js/panel.js) and its ExtendScript host (jsx/host.jsx) under Node.js with a fake `app`,
against an engine on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import xml.etree.ElementTree as ET
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fixtures.exact_time import exact_ms_up
from fixtures.fake_resolve import srt_frames
from fixtures.loopback_engine import LoopbackEngine
from fixtures.paths import REPO, absent

ROOT = REPO
NODE = shutil.which("node")
HARNESS = ROOT / "tests" / "premiere" / "harness.js"


@pytest.fixture(autouse=True)
def _needs_node():
    if not NODE:
        absent("Node.js is not installed (Debian: apt-get install nodejs)")


CLOCKS = {
    "25@01h": dict(rate="25", start_frame=90000, start_tc="01:00:00:00", df=False, display_format=101),
    "25@10h": dict(rate="25", start_frame=900000, start_tc="10:00:00:00", df=False, display_format=101),
    "29.97DF@01h": dict(
        rate="30000/1001", start_frame=107892, start_tc="01:00:00;00", df=True, display_format=102
    ),
    "23.976@01h": dict(
        rate="24000/1001", start_frame=86400, start_tc="01:00:00:00", df=False, display_format=110
    ),
    "59.94DF@00h": dict(
        rate="60000/1001", start_frame=0, start_tc="00:00:00;00", df=True, display_format=106
    ),
}


def run_panel(tmp_path, engine, **cfg):
    cfg.setdefault("output_dir", str(tmp_path / "out"))
    temp = (
        tmp_path / "tmp"
    )  # the panel's os.tmpdir(): every captionbridge-* folder it makes must be gone after
    temp.mkdir(exist_ok=True)
    env = dict(
        os.environ,
        CAPTIONBRIDGE_CONFIG_DIR=str(engine.config if engine else tmp_path / "nowhere"),
        TMPDIR=str(temp),
        TMP=str(temp),
        TEMP=str(temp),
    )
    run = subprocess.run(
        [NODE, str(HARNESS), json.dumps(cfg)], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["temp_left"] == [], "the temporary export folder was left behind"
    return out


@pytest.mark.parametrize("clock", sorted(CLOCKS))
@pytest.mark.parametrize("es3", [False, True], ids=["json", "es3-no-json"])
def test_generate_captions_end_to_end(tmp_path, clock, es3):
    c = CLOCKS[clock]
    with LoopbackEngine(tmp_path, drop_frame=c["df"]) as engine:
        out = run_panel(
            tmp_path, engine, es3_no_json=es3, options={"language": "en", "translate_to": "zh"}, **c
        )
        job = next(iter(engine.jobs.values()))
    assert "error" not in out, out
    result, calls, info = out["result"], out["calls"], out["info"]
    doc = job["document"]
    # the host read the clock from ticks exactly
    rate = Fraction(c["rate"])
    assert (info["rate_num"], info["rate_den"]) == (rate.numerator, rate.denominator)
    assert info["start_frame"] == c["start_frame"] and info["drop_frame"] == c["df"]
    assert doc.timebase.rate == rate and doc.timebase.start_frame == c["start_frame"]
    # the exported xmeml went to the engine, with the user's options and no browser Origin
    assert calls["exports"][0]["path"] == job["timeline_path"] and calls["exports"][0]["suppress"] == 1
    assert job["options"] == {"formats": ["srt", "json"], "language": "en", "translate_to": "zh"}
    assert all("Origin" not in h for _, _, h in engine.requests)
    # one caption track per language on the exported sequence, SRT at the sequence start, subtitle format
    assert result["ok"] and result["verified"], result
    job_name = f"Sequence 01 {job['id'][:8]}"  # the job id tells this run's tracks from an earlier run's
    assert [(t["sequence"], t["name"], t["start"], t["format"]) for t in calls["captionTracks"]] == [
        ("seq-1", f"{job_name}.en.srt", 0, 6),
        ("seq-1", f"{job_name}.zh.srt", 0, 6),
    ]
    # ... and read back from exports of that sequence before and after
    assert [e["sequence"] for e in calls["projectExports"]] == ["seq-1", "seq-1"]
    for track, lang in zip(calls["captionTracks"], ("en", "zh")):
        assert srt_frames(track["path"], rate) == [(cue.start_frame, cue.end_frame) for cue in doc.cues]
        body = Path(track["path"]).read_text(encoding="utf-8")
        assert doc.cues[0].text[lang] in body
    assert (
        "English: 30 captions, Chinese: 30 captions added as caption tracks to \u201cSequence 01\u201d and "
        "read "
        "back from Premiere" in result["message"]
    )
    assert out["progress"][-1] == ["adding caption tracks", 100]
    # the job is recorded for the sequence (by its id): Review and Update captions work on it
    records = json.loads((engine.config / "editor-jobs.json").read_text(encoding="utf-8"))
    assert records["premiere:seq-1"] == {"job": job["id"], "version": 0, "sequence": "Sequence 01"}
    # the engine's access token is in no file the panel wrote
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert written and not any(engine.token in p.read_text(encoding="utf-8") for p in written)


def test_premiere_refusing_a_caption_track_is_reported_with_the_files(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, refuse_captions=True, **CLOCKS["25@01h"])
    result = out["result"]
    assert not result["ok"]
    assert "could not be created" in result["message"] and "File > Import" in result["message"]
    for f in result["files"]:
        assert f["path"] in result["message"] and os.path.isfile(f["path"])


def test_cancel_stops_the_job_and_changes_nothing(tmp_path):
    with LoopbackEngine(tmp_path, polls_to_finish=50) as engine:
        out = run_panel(tmp_path, engine, cancel=True, **CLOCKS["25@01h"])
        job = next(iter(engine.jobs.values()))
    assert out["result"] == {"ok": False, "cancelled": True, "message": "Cancelled; nothing changed."}
    assert (
        job["state"] == "cancelled" and out["calls"]["captionTracks"] == [] and out["calls"]["imports"] == []
    )
    assert any(method == "DELETE" for method, _, _ in engine.requests)


def test_clear_errors(tmp_path):
    out = run_panel(tmp_path, None, no_sequence=True, **CLOCKS["25@01h"])
    assert out["error"]["user"] and "Open a sequence" in out["error"]["message"]
    out = run_panel(tmp_path, None, **CLOCKS["25@01h"])
    assert out["error"]["user"] and "captionbridge serve" in out["error"]["message"]
    with LoopbackEngine(tmp_path / "e1") as engine:
        out = run_panel(tmp_path, engine, export_fails=True, **CLOCKS["25@01h"])
    assert out["error"]["user"] and "could not export the sequence" in out["error"]["message"]
    with LoopbackEngine(tmp_path / "e2", fail_with="the sequence has no audio") as engine:
        out = run_panel(tmp_path, engine, **CLOCKS["25@01h"])
    assert "the sequence has no audio" in out["error"]["message"]
    with LoopbackEngine(tmp_path / "e3") as engine:
        (engine.config / "token").write_text("stale")
        out = run_panel(tmp_path, engine, **CLOCKS["25@01h"])
    assert "refused this computer's access token (401)" in out["error"]["message"]


def test_manifest_is_a_valid_cep_manifest():
    root = ET.parse(ROOT / "manifests" / "premiere_manifest.xml").getroot()
    assert root.tag == "ExtensionManifest" and root.get("ExtensionBundleId") == "com.captionbridge.premiere"
    ext_id = root.find("ExtensionList/Extension").get("Id")
    dispatch = root.find("DispatchInfoList/Extension")
    assert dispatch.get("Id") == ext_id
    assert root.find("ExecutionEnvironment/HostList/Host").get("Name") == "PPRO"
    res = dispatch.find("DispatchInfo/Resources")
    for rel in (res.findtext("MainPath"), res.findtext("ScriptPath")):
        assert (ROOT / "plugin" / "premiere" / rel).is_file(), rel
    params = [p.text for p in res.iter("Parameter")]
    assert "--enable-nodejs" in params


def test_host_jsx_is_es3():
    """ExtendScript is ES3: no let/const/arrow functions/template strings in the host file."""
    import re

    code = (ROOT / "plugin" / "premiere" / "jsx" / "host.jsx").read_text()
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    code = re.sub(r"//[^\n]*", "", code)
    assert not re.search(r"\b(let|const|class)\s", code)
    assert "=>" not in code and "`" not in code and ".indexOf(" not in code


def test_panel_against_the_real_service(tmp_path, real_service):
    class Config:
        config = real_service

    out = run_panel(tmp_path, Config, **CLOCKS["25@01h"])
    assert "error" not in out, out
    assert out["result"]["ok"] and len(out["calls"]["captionTracks"]) == 2
    frames = srt_frames(out["calls"]["captionTracks"][0]["path"], Fraction(25))
    assert len(frames) == 30 and all(e > s for s, e in frames)


# -- defects of issue 20
# -----------------------------------------------------------------------------------------


def _assert_hand_import(result, text):
    """A failure after the SRT files exist: not ok, says why, and gives every file with the hand-import
    steps."""
    assert not result["ok"], result
    assert text in result["message"], result["message"]
    assert "File > Import" in result["message"] and "first frame" in result["message"]
    assert result["files"]
    for f in result["files"]:
        assert f["path"] in result["message"] and os.path.isfile(f["path"])


def test_a_throwing_create_caption_track_gives_the_files_to_import_by_hand(tmp_path):
    """Premiere throwing in createCaptionTrack reached the panel as CEP's "EvalScript error." and the user saw
    a JSON parse error; now the host catches it and the panel gives the SRT files to import by hand."""
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, throw_on_caption=True, **CLOCKS["25@01h"])
    assert "error" not in out, out
    _assert_hand_import(out["result"], "The caption file could not be parsed")
    assert "EvalScript" not in out["result"]["message"] and "JSON" not in out["result"]["message"]


def test_a_non_json_answer_from_premiere_is_a_failure_with_the_files(tmp_path):
    """Whatever CEP answers instead of JSON (the host script not loaded, an exception it could not catch) is a
    failure with the hand-import instructions, not a panel error."""
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, eval_error_on="cb_importCaptions", **CLOCKS["25@01h"])
    assert "error" not in out, out
    _assert_hand_import(out["result"], "Premiere's scripting host failed while adding the caption tracks")
    with LoopbackEngine(tmp_path / "e2") as engine:
        out = run_panel(tmp_path, engine, host_not_loaded=True, **CLOCKS["25@01h"])
    assert (
        out["error"]["user"] and "scripting host failed while reading the sequence" in out["error"]["message"]
    )


HOST_CALLS = [
    "cb_sequenceInfo()",
    'cb_exportSequence("seq-1", "/tmp/x.xml")',
    'cb_importCaptions(\'{"sequence_id": "seq-1", "clock": {}, "items": []}\')',
    'cb_importCaptions("not json")',
    'cb_exportSequenceProject("seq-1", "/tmp/x.prproj")',
]


@pytest.mark.parametrize("es3", [False, True], ids=["json", "es3-no-json"])
def test_every_host_function_answers_json_whatever_premiere_throws(es3):
    """Every cb_* function returns JSON {"ok": false, "error"} when any part of Premiere's DOM throws."""
    script = r"""
const fs = require("fs"), vm = require("vm");
const boom = () => { throw new Error("Premiere exploded"); };
const seq = { sequenceID: "seq-1", name: "S", get timebase() { boom(); }, zeroPoint: "0",
              exportAsFinalCutProXML: boom, exportAsProject: boom, createCaptionTrack: boom,
              getSettings: boom };
const sequences = [seq]; sequences.numSequences = 1;
const variants = [
  { get project() { boom(); } },
  { project: { get activeSequence() { boom(); }, get sequences() { boom(); } } },
  { project: { activeSequence: seq, sequences, rootItem: { children: [] }, importFiles: boom,
               openSequence: boom } },
];
const out = [];
for (const app of variants) {
  const ctx = vm.createContext({ app, File: function () { boom(); }, Sequence: {} });
  if (process.argv[2] === "es3") vm.runInContext("JSON = undefined;", ctx);
  vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), ctx);
  for (const call of JSON.parse(process.argv[3])) {
    let text;
    try { text = String(vm.runInContext(call, ctx)); } catch (e) { text = "THREW " + e.message; }
    out.push([call, text]);
  }
}
process.stdout.write(JSON.stringify(out));
"""
    host = ROOT / "plugin" / "premiere" / "jsx" / "host.jsx"
    run = subprocess.run(
        [NODE, "-e", script, str(host), "es3" if es3 else "json", json.dumps(HOST_CALLS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    answers = json.loads(run.stdout)
    assert len(answers) == 3 * len(HOST_CALLS)
    for call, text in answers:
        answer = json.loads(text)  # never "EvalScript error." (an exception) and never a non-JSON string
        assert answer["ok"] is False and answer["error"], (call, text)


def test_captions_go_to_the_exported_sequence_when_the_user_switches_sequences(tmp_path):
    """The user opened another (25 fps) sequence while the engine worked: the 23.976 captions go to the
    sequence that was exported, which is opened again, and nothing lands on the other one."""
    c = CLOCKS["23.976@01h"]
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, during_job="switch", **c)
        doc = next(iter(engine.jobs.values()))["document"]
    result, calls = out["result"], out["calls"]
    assert result["ok"] and result["verified"], result
    assert [t["sequence"] for t in calls["captionTracks"]] == ["seq-1", "seq-1"]  # one per language
    assert out["caption_tracks"]["seq-2"] == [] and len(out["caption_tracks"]["seq-1"]) == 2
    assert calls["opened"] == ["seq-1"] and out["active_sequence"] == "seq-1"
    frames = srt_frames(calls["captionTracks"][0]["path"], Fraction(c["rate"]))
    assert frames == [(cue.start_frame, cue.end_frame) for cue in doc.cues]


@pytest.mark.parametrize(
    "change, text",
    [
        ("delete", "\u201cSequence 01\u201d is no longer in the project"),
        (
            "change_rate",
            "changed while captions were made (it was 23.976 fps starting at frame 86400, now 29.97 fps",
        ),
    ],
)
def test_refuses_when_the_exported_sequence_is_gone_or_changed(tmp_path, change, text):
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, during_job=change, **CLOCKS["23.976@01h"])
    assert "error" not in out, out
    _assert_hand_import(out["result"], text)
    assert out["calls"]["captionTracks"] == [] and out["calls"]["imports"] == []


def _config_for(tmp_path, port):
    config = tmp_path / "stuck-config"
    config.mkdir(exist_ok=True)
    (config / "token").write_text("t0ken")
    (config / "service.json").write_text(json.dumps({"host": "127.0.0.1", "port": port}))

    class Config:
        pass

    Config.config = config
    return Config


def test_a_stuck_engine_is_reported_within_seconds_not_a_minute(tmp_path):
    """An engine that accepts connections and never answers: the health check gives up after 3 s (was: the
    panel froze for the 60 s request timeout) and nothing was exported."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # never accept(): connections complete, no answer ever comes
    try:
        out = run_panel(tmp_path, _config_for(tmp_path, silent.getsockname()[1]), **CLOCKS["25@01h"])
    finally:
        silent.close()
    assert out["error"]["user"], out
    assert "did not answer GET /v1/health within 3 s" in out["error"]["message"]
    assert "captionbridge serve" in out["error"]["message"]
    assert out["elapsed_ms"] < 20000 and out["calls"]["exports"] == []


class _HangingEngine:
    """Answers health and job submission, then never answers a poll (or a DELETE): an engine that hangs
    mid-job."""

    def __init__(self):
        self.release = threading.Event()
        self.requests = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                engine.requests.append(("GET", self.path))
                if self.path == "/v1/health":
                    return self._send(200, {"status": "ok"})
                engine.release.wait(30)

            def do_POST(self):
                engine.requests.append(("POST", self.path))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(202, {"id": "job-1", "state": "queued"})

            def do_DELETE(self):
                engine.requests.append(("DELETE", self.path))
                engine.release.wait(30)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_an_engine_hanging_mid_job_is_reported_and_every_request_is_bounded(tmp_path):
    engine = _HangingEngine()
    try:
        out = run_panel(
            tmp_path,
            _config_for(tmp_path, engine.server.server_address[1]),
            timeouts={"poll": 400, "cancel": 400},
            **CLOCKS["25@01h"],
        )
    finally:
        engine.close()
    assert (
        out["error"]["user"] and "did not answer GET /v1/jobs/job-1 within 0.4 s" in out["error"]["message"]
    )
    assert [r for r in engine.requests if r[0] == "GET" and r[1] != "/v1/health"] == [
        ("GET", "/v1/jobs/job-1")
    ] * 3
    assert ("DELETE", "/v1/jobs/job-1") in engine.requests  # the panel gave up: the job is not left running
    assert out["calls"]["captionTracks"] == []


@pytest.mark.parametrize("stage", ["health", "poll"])
def test_cancel_works_while_the_engine_hangs(tmp_path, stage):
    """Cancel answers at once at every stage, even while a request hangs (was: only seen between polls)."""
    long = {"health": 60000, "poll": 60000, "submit": 60000, "cancel": 500}
    if stage == "health":
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        try:
            out = run_panel(
                tmp_path,
                _config_for(tmp_path, silent.getsockname()[1]),
                cancel_after_ms=300,
                timeouts=long,
                **CLOCKS["25@01h"],
            )
        finally:
            silent.close()
        assert out["calls"]["exports"] == []
    else:
        engine = _HangingEngine()
        try:
            out = run_panel(
                tmp_path,
                _config_for(tmp_path, engine.server.server_address[1]),
                cancel_after_ms=600,
                timeouts=long,
                **CLOCKS["25@01h"],
            )
        finally:
            engine.close()
        assert ("DELETE", "/v1/jobs/job-1") in engine.requests  # the job is cancelled on the engine (bounded)
    assert out["result"] == {"ok": False, "cancelled": True, "message": "Cancelled; nothing changed."}, out
    assert out["elapsed_ms"] < 15000 and out["calls"]["captionTracks"] == []


def test_a_track_premiere_did_not_really_make_is_caught_by_the_read_back(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, caption_track_silently_missing=True, **CLOCKS["25@01h"])
    _assert_hand_import(out["result"], "reading \u201cSequence 01\u201d back does not show them")
    assert out["result"]["verified"] is True


def test_an_earlier_run_on_the_same_sequence_does_not_pass_for_a_missing_track(tmp_path):
    """Captioned twice; the second time Premiere says it made the tracks but did not: the first run's tracks
    (same texts) must not make the second look verified."""
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(
            tmp_path, engine, runs=[{}, {"caption_track_silently_missing": True}], **CLOCKS["25@01h"]
        )
    first, second = out["runs"]
    assert first["result"]["ok"] and first["result"]["verified"], first
    _assert_hand_import(second["result"], "back does not show them")
    assert len(out["caption_tracks"]["seq-1"]) == 2


def test_without_a_read_back_the_panel_says_so_instead_of_added(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, no_export_as_project=True, **CLOCKS["25@01h"])
    result = out["result"]
    assert result["ok"] and result["verified"] is False
    assert "no way to read them back" in result["message"] and "check the caption tracks" in result["message"]
    assert "added as caption tracks" not in result["message"]


def _panel_ui(tmp_path, config_dir, **cfg):
    cfg.setdefault(
        "sequence_info",
        {
            "ok": True,
            "sequence_id": "seq-1",
            "name": "Sequence 01",
            "rate": "25",
            "rate_num": 25,
            "rate_den": 1,
            "start_frame": 90000,
        },
    )
    env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(config_dir))
    run = subprocess.run(
        [NODE, str(ROOT / "tests" / "premiere" / "panel_ui.js"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_panel_page_cancel_button_stops_a_stuck_engine(tmp_path):
    """index.html's scripts wired as CEP loads them: Generate disables itself and enables Cancel; Cancel while
    the engine hangs ends the run at once with the buttons back."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        out = _panel_ui(tmp_path, _config_for(tmp_path, silent.getsockname()[1]).config, cancel_after_ms=300)
    finally:
        silent.close()
    assert out["scripts"] == ["js/core.js", "js/panel.js", "js/review.js"]
    first, done = out["seen"]
    assert first["generate_disabled"] and not first["cancel_disabled"]
    assert done["status"] == "Cancelled; nothing changed." and done["className"] == ""
    assert not done["generate_disabled"] and done["cancel_disabled"] and done["elapsed_ms"] < 2500


def test_the_panel_page_shows_an_engine_that_is_not_running(tmp_path):
    out = _panel_ui(tmp_path, tmp_path / "nowhere")
    done = out["seen"][-1]
    assert done["className"] == "error" and "run `captionbridge serve`" in done["status"]
    assert "please report" not in done["status"]


def test_panel_srt_milliseconds_are_exact_frame_starts_rounded_up():
    """The panel writes its own SRT (no Python in Premiere): its times must equal ceil(frame / rate) in ms,
    computed here with exact fractions."""
    frames = list(range(0, 3000, 7)) + [17982, 107892, 123456, 863136]
    rates = [(24000, 1001), (30000, 1001), (60000, 1001), (25, 1)]
    script = (
        "const p = require(process.argv[1]); const frames = JSON.parse(process.argv[2]);"
        "const rates = JSON.parse(process.argv[3]);"
        "console.log(JSON.stringify(rates.map(([n, d]) => frames.map(f => p.frameMsCeil(f, n, d)))));"
    )
    run = subprocess.run(
        [
            NODE,
            "-e",
            script,
            str(ROOT / "plugin" / "premiere" / "js" / "core.js"),
            json.dumps(frames),
            json.dumps(rates),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    for (num, den), row in zip(rates, got):
        assert row == [exact_ms_up(f, Fraction(num, den)) for f in frames], (num, den)
