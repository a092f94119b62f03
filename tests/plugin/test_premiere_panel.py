"""The Premiere panel (js/panel.js) and its ExtendScript host (jsx/host.jsx) under Node.js with a fake `app`,
against an engine on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
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
    "29.97DF@01h": dict(rate="30000/1001", start_frame=107892, start_tc="01:00:00;00", df=True, display_format=102),
    "23.976@01h": dict(rate="24000/1001", start_frame=86400, start_tc="01:00:00:00", df=False, display_format=110),
    "59.94DF@00h": dict(rate="60000/1001", start_frame=0, start_tc="00:00:00;00", df=True, display_format=106),
}


def run_panel(tmp_path, engine, **cfg):
    cfg.setdefault("output_dir", str(tmp_path / "out"))
    env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(engine.config if engine else tmp_path / "nowhere"))
    run = subprocess.run([NODE, str(HARNESS), json.dumps(cfg)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("clock", sorted(CLOCKS))
@pytest.mark.parametrize("es3", [False, True], ids=["json", "es3-no-json"])
def test_generate_captions_end_to_end(tmp_path, clock, es3):
    c = CLOCKS[clock]
    with LoopbackEngine(tmp_path, drop_frame=c["df"]) as engine:
        out = run_panel(tmp_path, engine, es3_no_json=es3, options={"language": "en", "translate_to": "zh"}, **c)
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
    # one caption track per language, SRT at the sequence start, subtitle format
    assert result["ok"], result
    assert [(t["name"], t["start"], t["format"]) for t in calls["captionTracks"]] == [
        ("Sequence 01.en.srt", 0, 6), ("Sequence 01.zh.srt", 0, 6)]
    for track, lang in zip(calls["captionTracks"], ("en", "zh")):
        assert srt_frames(track["path"], rate) == [(cue.start_frame, cue.end_frame) for cue in doc.cues]
        body = Path(track["path"]).read_text(encoding="utf-8")
        assert doc.cues[0].text[lang] in body
    assert "English: 30 captions, Chinese: 30 captions added as caption tracks" in result["message"]
    assert out["progress"][-1] == ["adding caption tracks", 100]


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
    assert job["state"] == "cancelled" and out["calls"]["captionTracks"] == [] and out["calls"]["imports"] == []
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


def test_panel_srt_milliseconds_are_exact_frame_starts_rounded_up():
    """The panel writes its own SRT (no Python in Premiere): its times must equal ceil(frame / rate) in ms, computed
    here with exact fractions."""
    frames = list(range(0, 3000, 7)) + [17982, 107892, 123456, 863136]
    rates = [(24000, 1001), (30000, 1001), (60000, 1001), (25, 1)]
    script = ("const p = require(process.argv[1]); const frames = JSON.parse(process.argv[2]);"
              "const rates = JSON.parse(process.argv[3]);"
              "console.log(JSON.stringify(rates.map(([n, d]) => frames.map(f => p.frameMsCeil(f, n, d)))));")
    run = subprocess.run([NODE, "-e", script, str(ROOT / "plugin" / "premiere" / "js" / "panel.js"),
                          json.dumps(frames), json.dumps(rates)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    for (num, den), row in zip(rates, got):
        assert row == [exact_ms_up(f, Fraction(num, den)) for f in frames], (num, den)
