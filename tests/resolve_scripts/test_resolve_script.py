"""The real ``resolve_scripts/Generate Captions.py`` run end to end against a fake Resolve and an engine on
loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from fractions import Fraction

import pytest
from fixtures.exact_time import exact_ms_up
from fixtures.fake_resolve import FakeResolve, srt_frames
from fixtures.loopback_engine import LoopbackEngine
from fixtures.paths import REPO

from captionbridge.core.timeline.timebase import Timebase

SCRIPT = REPO / "resolve_scripts" / "Generate Captions.py"


def load_script():
    spec = importlib.util.spec_from_file_location("generate_captions_resolve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingUI:
    def __init__(self, options=None):
        self.options = options
        self.progress_calls = []
        self.messages = []

    def ask_options(self, defaults, context):
        self.context = context
        return dict(defaults, **(self.options or {}))

    def progress(self, stage, percent, eta):
        self.progress_calls.append((stage, percent))

    def cancelled(self):
        return False

    def message(self, title, text, error=False):
        self.messages.append((title, text, error))

    def close(self):
        pass


CLOCKS = {  # name -> FakeResolve kwargs, Timebase
    "25@01h": (
        dict(rate_setting="25", start_timecode="01:00:00:00", start_frame=90000),
        ("25", "01:00:00:00", False),
    ),
    "23.976@01h": (
        dict(rate_setting="23.976", start_timecode="01:00:00:00", start_frame=86400),
        ("24000/1001", "01:00:00:00", False),
    ),
    "29.97DF@01h": (
        dict(rate_setting="29.97", start_timecode="01:00:00;00", start_frame=107892, drop_frame_setting="1"),
        ("30000/1001", "01:00:00;00", True),
    ),
    "50@00h": (
        dict(rate_setting="50", start_timecode="00:00:00:00", start_frame=0),
        ("50", "00:00:00:00", False),
    ),
    "59.94DF@01h": (
        dict(rate_setting="59.94", start_timecode="01:00:00;00", start_frame=215784, drop_frame_setting="1"),
        ("60000/1001", "01:00:00;00", True),
    ),
}


def run_script(tmp_path, engine, resolve, options=None):
    gc = load_script()
    ui = RecordingUI(dict({"output_dir": str(tmp_path / "out"), "poll": 0.01}, **(options or {})))
    client = gc.Engine.discover(config=str(engine.config), start=False)
    report = gc.run(resolve, ui=ui, engine=client, work_dir=str(tmp_path / "work"))
    return gc, ui, report


def snapshot_state(resolve):
    tl = resolve.timeline
    return (
        resolve._page,
        tl._playhead,
        json.dumps(tl._marks, sort_keys=True),
        [(t["enabled"], t["locked"]) for k in ("video", "audio") for t in tl._tracks[k]],
        resolve._project._current is tl,
        resolve._project._media_pool._current.GetName(),
    )


@pytest.mark.parametrize("clock", sorted(CLOCKS))
def test_every_cue_lands_on_its_frame(tmp_path, clock):
    kwargs, (rate, start_tc, df) = CLOCKS[clock]
    resolve = FakeResolve(**kwargs)
    before = snapshot_state(resolve)
    with LoopbackEngine(tmp_path, drop_frame=df) as engine:
        gc, ui, report = run_script(tmp_path, engine, resolve)
        job = next(iter(engine.jobs.values()))
    assert report["ok"], ui.messages
    doc = job["document"]
    tb = Timebase.from_start_timecode(rate, start_tc, df)
    assert doc.timebase == tb, "the exported timeline did not carry the clock"
    tl = resolve.timeline
    assert tl.GetTrackCount("subtitle") == 2
    for index, lang in ((1, "en"), (2, "zh")):
        assert (
            tl.GetTrackName("subtitle", index)
            == {"en": "English", "zh": "Chinese"}[lang] + " (CaptionBridge)"
        )
        items = tl.GetItemListInTrack("subtitle", index)
        assert [(i.GetStart(), i.GetEnd()) for i in items] == [
            (tb.start_frame + c.start_frame, tb.start_frame + c.end_frame) for c in doc.cues
        ]
        assert [i._text for i in items] == [c.text[lang] for c in doc.cues]
        assert report["languages"][lang]["method"] == "subtitle_track"
        # the SRT it imported is frame-exact when floored like an editor
        assert srt_frames(report["languages"][lang]["srt"], tb.rate) == [
            (c.start_frame, c.end_frame) for c in doc.cues
        ]
    # low-confidence words are markers relative to the timeline start
    low = sorted({w.start_frame for w in doc.words if w.confidence < 0.5})
    assert sorted(tl.GetMarkers()) == low and low
    # state restored, user told, engine used with the token and no Origin
    assert snapshot_state(resolve) == before
    assert ui.messages[-1][0] == "Captions added" and not ui.messages[-1][2]
    assert ui.progress_calls and ui.progress_calls[-1][1] == 100
    assert all("Origin" not in h for _, _, h in engine.requests)
    assert job["options"]["formats"] == ["srt", "fcpxml", "json"]
    assert job["options"]["drop_frame"] is df, "the timeline's own drop-frame setting goes to the engine"
    assert resolve.upsell_dialogs == 0


def test_export_is_otio_and_uses_live_constants(tmp_path):
    resolve = FakeResolve()
    with LoopbackEngine(tmp_path) as engine:
        _, _, report = run_script(tmp_path, engine, resolve)
        job = next(iter(engine.jobs.values()))
    assert report["export"]["kind"] == "otio" and job["timeline_path"].endswith(".otio")


def test_before_18_5_exports_fcp7_xml(tmp_path):
    resolve = FakeResolve(version=(18, 1, 4))
    gc = load_script()
    path, kind = gc.export_timeline(resolve, resolve.timeline, str(tmp_path), gc.product_info(resolve))
    assert kind == "xml" and path.endswith(".xml")
    assert "<frame>90000</frame>" in open(path).read()
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve)
        job = next(iter(engine.jobs.values()))
    assert job["timeline_path"].endswith(".xml") and report["ok"], ui.messages


def test_free_edition_never_calls_studio_only_functions(tmp_path):
    resolve = FakeResolve(studio=False, version=(19, 0, 2))
    with LoopbackEngine(tmp_path) as engine:
        gc, ui, report = run_script(tmp_path, engine, resolve)
    assert report["ok"], ui.messages
    assert resolve.upsell_dialogs == 0
    called = {name for _, name in resolve.calls}
    assert not called & gc.STUDIO_ONLY
    # the guard itself refuses on free
    ctx = {"product": gc.product_info(resolve)}
    assert (
        gc.studio_call(ctx, resolve.timeline, "CreateSubtitlesFromAudio") is None
        and resolve.upsell_dialogs == 0
    )


def test_whole_file_strategy_when_per_cue_places_nothing(tmp_path):
    resolve = FakeResolve(placement="whole_file")
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve)
        doc = next(iter(engine.jobs.values()))["document"]
    assert report["ok"], ui.messages
    assert report["languages"]["en"]["strategy"] == "whole-file"
    items = resolve.timeline.GetItemListInTrack("subtitle", 1)
    assert [i.GetStart() for i in items] == [90000 + c.start_frame for c in doc.cues]


def test_append_places_nothing_falls_back_to_fcpxml_timeline_and_tells_user(tmp_path):
    resolve = FakeResolve(placement="nothing")
    before = snapshot_state(resolve)
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve)
        doc = next(iter(engine.jobs.values()))["document"]
    assert not report["ok"]
    assert {r["method"] for r in report["languages"].values()} == {"fcpxml_timeline"}
    # nothing half-placed on the user's timeline, and it is current again
    assert resolve.timeline.GetTrackCount("subtitle") == 0
    assert snapshot_state(resolve) == before
    imported = resolve._project._timelines[1]
    assert imported.GetName() == "Reel 1 captions"
    for index in (1, 2):
        assert [i.GetStart() for i in imported.GetItemListInTrack("subtitle", index)] == [
            90000 + c.start_frame for c in doc.cues
        ]
    title, text, error = ui.messages[-1]
    assert error and "Reel 1 captions" in text and "01:00:00:00" in text and "0 of 30" in text


def test_one_language_failing_goes_to_the_fcpxml_timeline_the_other_stays(tmp_path):
    resolve = FakeResolve(subtitle_track_limit=1)
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve)
        doc = next(iter(engine.jobs.values()))["document"]
    assert report["languages"]["en"]["method"] == "subtitle_track"
    assert report["languages"]["zh"]["method"] == "fcpxml_timeline"
    assert [i.GetStart() for i in resolve.timeline.GetItemListInTrack("subtitle", 1)] == [
        90000 + c.start_frame for c in doc.cues
    ]
    assert resolve._project._current is resolve.timeline
    title, text, error = ui.messages[-1]
    assert error and "did not add a subtitle track" in text and "Reel 1 captions" in text


def test_when_everything_fails_the_sidecar_is_kept_and_user_told_what_to_drag_where(tmp_path):
    resolve = FakeResolve(
        placement="nothing",
        fcpxml_import=False,
        rate_setting="29.97",
        start_timecode="01:00:00;00",
        start_frame=107892,
        drop_frame_setting="1",
    )
    with LoopbackEngine(tmp_path, drop_frame=True) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve)
        doc = next(iter(engine.jobs.values()))["document"]
    assert not report["ok"]
    assert resolve.timeline.GetTrackCount("subtitle") == 0
    title, text, error = ui.messages[-1]
    assert error and title == "Import the captions by hand"
    for lang in ("en", "zh"):
        srt = report["languages"][lang]["srt"]
        assert report["languages"][lang]["method"] == "sidecar"
        assert srt in text and os.path.isfile(srt)
        assert srt_frames(srt, Fraction(30000, 1001)) == [(c.start_frame, c.end_frame) for c in doc.cues]
    assert "File > Import > Subtitle" in text and "01:00:00;00" in text and "record frame 107892" in text
    assert doc.timebase.timecode(doc.cues[0].start_frame) in text


def test_engine_failure_is_reported_and_nothing_changes(tmp_path):
    resolve = FakeResolve()
    before = snapshot_state(resolve)
    with LoopbackEngine(tmp_path, fail_with="no audio on the timeline's audio tracks") as engine:
        _, ui, report = run_script(tmp_path, engine, resolve)
    assert not report["ok"]
    assert ui.messages[-1][2] and "no audio on the timeline" in ui.messages[-1][1]
    assert resolve.timeline.GetTrackCount("subtitle") == 0 and snapshot_state(resolve) == before


def test_engine_not_running_says_how_to_start_it(tmp_path):
    gc = load_script()
    with pytest.raises(gc.EngineError, match="captionbridge serve"):
        gc.Engine.discover(config=str(tmp_path), start=False)
    resolve = FakeResolve()
    ui = RecordingUI()
    # no CLI to start either (CAPTIONBRIDGE_CLI points nowhere)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(tmp_path))
        mp.setenv("CAPTIONBRIDGE_CLI", str(tmp_path / "missing" / "captionbridge"))
        report = gc.run(resolve, ui=ui)
    assert not report["ok"] and "captionbridge serve" in ui.messages[-1][1]


def test_wrong_token_is_a_clear_error(tmp_path):
    resolve = FakeResolve()
    gc = load_script()
    ui = RecordingUI({"output_dir": str(tmp_path / "out")})
    with LoopbackEngine(tmp_path) as engine, pytest.MonkeyPatch.context() as mp:
        (engine.config / "token").write_text("wrong")
        mp.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(engine.config))
        report = gc.run(resolve, ui=ui)
    assert not report["ok"] and "refused this computer's access token (401)" in ui.messages[-1][1]


def test_no_timeline_open(tmp_path):
    gc = load_script()
    ui = RecordingUI()
    report = gc.run(FakeResolve(has_timeline=False), ui=ui)
    assert not report["ok"] and "Open a project and a timeline" in ui.messages[-1][1]


def test_clock_helpers_match_timebase():
    gc = load_script()
    assert gc.parse_rate("23.976") == (24000, 1001) and gc.parse_rate("29.97 DF") == (30000, 1001)
    assert gc.parse_rate("25") == (25, 1) and gc.parse_rate("59.94") == (60000, 1001)
    for rate, df, nominal in (("30000/1001", True, 30), ("60000/1001", True, 60), ("25", False, 25)):
        tb = Timebase(rate, 0, df)
        for frame in (0, 1, 1799, 1800, 17982, 107892, 123456, 863136):
            tc = tb.timecode(frame)
            assert gc.frames_to_timecode(frame, nominal, df) == tc
            assert gc.timecode_to_frames(tc, nominal, df) == frame
        for frame in range(0, 3000, 7):
            num, den = Fraction(rate).numerator, Fraction(rate).denominator
            assert gc.frame_ms_ceil(frame, num, den) == exact_ms_up(frame, Fraction(num, den))


def test_config_dir_rules():
    gc = load_script()
    assert gc.config_dir({"CAPTIONBRIDGE_CONFIG_DIR": "/x"}, "linux") == "/x"
    assert gc.config_dir({"HOME": "/h", "XDG_CONFIG_HOME": "/c"}, "linux") == "/c/captionbridge"
    assert gc.config_dir({"HOME": "/h"}, "linux") == "/h/.config/captionbridge"
    assert gc.config_dir({"HOME": "/h"}, "darwin") == "/h/Library/Application Support/CaptionBridge"
    assert gc.config_dir({"APPDATA": "C:\\U\\AppData\\Roaming", "USERPROFILE": "C:\\U"}, "win32").endswith(
        "CaptionBridge"
    )


def test_script_is_standard_library_only():
    import ast

    tree = ast.parse(SCRIPT.read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = set(sys.stdlib_module_names) | {"DaVinciResolveScript"}
    assert mods <= allowed, mods - allowed


def test_against_the_real_service(tmp_path, real_service):
    gc = load_script()
    resolve = FakeResolve()
    ui = RecordingUI({"output_dir": str(tmp_path / "out"), "poll": 0.1, "formats": ["srt", "fcpxml"]})
    client = gc.Engine.discover(config=str(real_service), start=False)
    report = gc.run(resolve, ui=ui, engine=client)
    assert report["ok"], ui.messages
    result = client.result(report["job"])
    assert result["timeline"]["start_timecode"] == "01:00:00:00" and result["timeline"]["rate"] == "25"
    for index, lang in ((1, "en"), (2, "zh")):
        items = resolve.timeline.GetItemListInTrack("subtitle", index)
        assert [(i.GetStart(), i.GetEnd(), i._text) for i in items] == [
            (90000 + c["start_frame"], 90000 + c["end_frame"], c["text"][lang]) for c in result["cues"]
        ]


def test_start_engine_uses_the_cli_recorded_by_the_installer(tmp_path):
    import time

    gc = load_script()
    marker = tmp_path / "started.txt"
    cli = tmp_path / "captionbridge"
    cli.write_text(f"#!/bin/sh\necho \"$@\" > '{marker}'\n")
    cli.chmod(0o755)
    (tmp_path / "install.json").write_text(json.dumps({"cli": str(cli)}))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CAPTIONBRIDGE_CLI", raising=False)
        assert gc.start_engine(str(tmp_path)) is True
    deadline = time.time() + 10
    while time.time() < deadline and not marker.exists():
        time.sleep(0.05)
    assert marker.read_text().strip() == "serve"
    (tmp_path / "install.json").write_text(json.dumps({"cli": str(tmp_path / "gone")}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(tmp_path / "empty"))
        mp.delenv("CAPTIONBRIDGE_CLI", raising=False)
        assert gc.start_engine(str(tmp_path)) is False


def test_cancel_from_the_progress_window(tmp_path):
    class CancellingUI(RecordingUI):
        def cancelled(self):
            return True

    gc = load_script()
    resolve = FakeResolve()
    before = snapshot_state(resolve)
    ui = CancellingUI({"output_dir": str(tmp_path / "out"), "poll": 0.01})
    with LoopbackEngine(tmp_path, polls_to_finish=50) as engine:
        report = gc.run(resolve, ui=ui, engine=gc.Engine.discover(config=str(engine.config), start=False))
        job = next(iter(engine.jobs.values()))
    assert job["state"] == "cancelled" and not report["ok"]
    assert ui.messages[-1] == ("Generate Captions", "Cancelled; nothing was changed on the timeline.", False)
    assert resolve.timeline.GetTrackCount("subtitle") == 0 and snapshot_state(resolve) == before


def test_runs_when_resolve_injects_its_globals(tmp_path):
    """Resolve executes the menu script with ``resolve``/``fusion``/``bmd`` globals; it must run then."""
    resolve = FakeResolve(has_timeline=False)
    printed = []
    namespace = {
        "__name__": "resolve_menu_script",
        "resolve": resolve,
        "print": lambda *a, **k: printed.append(a),
    }
    exec(compile(SCRIPT.read_text(), str(SCRIPT), "exec"), namespace)
    assert any("Open a project and a timeline" in " ".join(map(str, a)) for a in printed)
