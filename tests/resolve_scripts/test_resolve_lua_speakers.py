"""One subtitle track per speaker in ``Generate Captions.lua`` (the free edition's script), with lua5.4
against the Lua fake Resolve and the loopback engine through the real curl."""

from __future__ import annotations

from collections import Counter

from fixtures.loopback_engine import LoopbackEngine
from test_resolve_lua import run_lua

CLOCK = {"rate": "25", "start_frame": 90000, "start_tc": "01:00:00:00", "df": False}
OPTIONS = {"speakers": "auto", "speaker_names": "Ana,Ben", "speaker_tracks": True}
NAMES = {"S1": "Ana", "S2": "Ben", "S3": "Speaker 3"}


def test_lua_one_track_per_speaker_every_cue_once(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, dict(CLOCK, studio=False, version=[21, 1, 0]), engine, OPTIONS)
        job = next(iter(engine.jobs.values()))
    report, state, doc = out["report"], out["state"], job["document"]
    assert report["ok"], out["messages"]
    assert job["options"]["speakers"] == "auto" and job["options"]["speaker_names"] == ["Ana", "Ben"]
    tracks = {t["name"]: t["items"] for t in state["subtitle"]}
    assert len(tracks) == 6
    start = CLOCK["start_frame"]
    for lang, lang_name in (("en", "English"), ("zh", "Chinese")):
        got = []
        for sid, who in NAMES.items():
            items = tracks[f"{who} - {lang_name} (CaptionBridge)"]
            mine = [c for c in doc.cues if c.speakers[0] == sid]
            assert [tuple(i) for i in items] == [
                (start + c.start_frame, start + c.end_frame, c.text[lang]) for c in mine
            ]
            got.extend((s, e) for s, e, _ in items)
        assert Counter(got) == Counter((start + c.start_frame, start + c.end_frame) for c in doc.cues)
    title, text, error = out["messages"][-1]
    assert (
        title == "Captions added" and not error and "3 speaker tracks" in text and "Ana - English: " in text
    )


def test_lua_speaker_tracks_need_speakers(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(
            tmp_path, dict(CLOCK, studio=False, version=[21, 1, 0]), engine, {"speaker_tracks": True}
        )
        assert not engine.jobs, "refused before anything was exported or sent"
    title, text, error = out["messages"][-1]
    assert error and "One subtitle track per speaker needs speaker labels" in text
    assert not out["state"]["subtitle"]  # (an empty Lua table encodes as {})


def test_lua_a_failing_speaker_track_leaves_none_and_falls_back(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(
            tmp_path,
            dict(CLOCK, studio=False, version=[21, 1, 0], placement="nothing", fcpxml_import=False),
            engine,
            OPTIONS,
        )
    assert not out["report"]["ok"] and not out["state"]["subtitle"]
    title, text, error = out["messages"][-1]
    assert error and title == "Import the captions by hand"
    for lang in ("en", "zh"):
        srt = out["report"]["languages"][lang]["srt"]
        assert srt.endswith(f".{lang}.srt") and srt in text
