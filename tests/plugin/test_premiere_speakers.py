"""Speakers in the Premiere panel (js/core.js + jsx/host.jsx under Node with the fake `app`, against the
loopback engine): one caption track per speaker (each cue in exactly one speaker's SRT, read back like any
track), or one track per language with name labels; refused before anything is exported when speakers are off.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

from fixtures.fake_resolve import srt_frames
from fixtures.loopback_engine import LoopbackEngine
from test_premiere_panel import CLOCKS, run_panel

NAMES = {"S1": "Ana", "S2": "Ben", "S3": "Speaker 3"}


def test_one_caption_track_per_speaker_every_cue_once(tmp_path):
    c = CLOCKS["29.97DF@01h"]
    options = {
        "language": "en",
        "translate_to": "zh",
        "speakers": "auto",
        "speaker_names": "Ana, Ben",
        "speaker_layout": "tracks",
    }
    with LoopbackEngine(tmp_path, drop_frame=True) as engine:
        out = run_panel(tmp_path, engine, options=options, **c)
        job = next(iter(engine.jobs.values()))
    assert "error" not in out, out
    result, doc = out["result"], job["document"]
    assert job["options"]["speakers"] == "auto" and job["options"]["speaker_names"] == ["Ana", "Ben"]
    assert "speaker_marks" not in job["options"]
    assert result["ok"] and result["verified"], result
    job_name = f"Sequence 01 {job['id'][:8]}"
    tracks = out["calls"]["captionTracks"]
    assert [t["name"] for t in tracks] == [
        f"{job_name}.{lang}.{name}.srt" for lang in ("en", "zh") for name in NAMES.values()
    ]
    rate = Fraction(c["rate"])
    for lang in ("en", "zh"):
        got = []
        for sid, name in NAMES.items():
            track = next(t for t in tracks if t["name"] == f"{job_name}.{lang}.{name}.srt")
            mine = [cue for cue in doc.cues if cue.speakers[0] == sid]
            assert srt_frames(track["path"], rate) == [(x.start_frame, x.end_frame) for x in mine]
            body = Path(track["path"]).read_text(encoding="utf-8")
            assert all(x.text[lang] in body for x in mine)
            got.extend(srt_frames(track["path"], rate))
        # nothing lost, nothing twice
        assert Counter(got) == Counter((x.start_frame, x.end_frame) for x in doc.cues)
    # every track read back from the exported sequence, and the message names the speakers
    assert len(out["caption_tracks"]["seq-1"]) == 6
    assert "English, Ana: " in result["message"] and "Chinese, Speaker 3: " in result["message"]
    assert "read back from Premiere" in result["message"]


def test_one_track_with_name_labels(tmp_path):
    options = {"language": "en", "speakers": 2, "speaker_layout": "labels"}
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, options=options, **CLOCKS["25@01h"])
        job = next(iter(engine.jobs.values()))
    assert out["result"]["ok"] and out["result"]["verified"], out
    assert job["options"]["speaker_marks"] == "label" and job["options"]["speakers"] == 2
    assert len(out["calls"]["captionTracks"]) == 2  # one per language (the loopback engine gives en + zh)


def test_a_speaker_layout_needs_speakers_and_is_refused_before_export(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(tmp_path, engine, options={"speaker_layout": "tracks"}, **CLOCKS["25@01h"])
        assert not engine.jobs
    assert out["error"]["user"] and "needs speakers" in out["error"]["message"]
    assert out["calls"]["exports"] == [] and out["calls"]["captionTracks"] == []


def test_a_result_without_speakers_is_one_track_per_language_and_says_so(tmp_path, monkeypatch):
    import fixtures.loopback_engine as loopback

    monkeypatch.setattr(loopback, "label_speakers", lambda doc, options: doc)
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(
            tmp_path, engine, options={"speakers": "auto", "speaker_layout": "tracks"}, **CLOCKS["25@01h"]
        )
    assert out["result"]["ok"], out
    assert [t["name"].rsplit(".", 2)[-2] for t in out["calls"]["captionTracks"]] == ["en", "zh"]
    assert "No speakers were found" in out["result"]["message"]


def test_a_missing_speaker_track_is_caught_by_the_read_back(tmp_path):
    options = {"speakers": "auto", "speaker_layout": "tracks"}
    with LoopbackEngine(tmp_path) as engine:
        out = run_panel(
            tmp_path, engine, options=options, caption_track_silently_missing=True, **CLOCKS["25@01h"]
        )
    result = out["result"]
    assert not result["ok"] and "does not show them" in result["message"]
    assert "English, Speaker 1:" in result["message"] and "File > Import" in result["message"]


def test_the_panel_offers_the_speaker_layout_only_with_speakers(tmp_path):
    """index.html's scripts as CEP loads them: the layout menu starts disabled and follows the Speakers menu
    and the names field."""
    from test_premiere_panel import _panel_ui

    steps = [["", ""], ["auto", ""], ["", ""], ["", "Ana,Ben"], ["3", ""], ["", "  "]]
    out = _panel_ui(tmp_path, tmp_path / "nowhere", speaker_steps=steps)
    assert out["initially_disabled"] is True
    assert out["layout_disabled"] == [True, False, True, False, False, True]


def test_update_puts_the_reviewed_speakers_on_their_own_tracks(engine_factory, tmp_path):
    """Update captions with one track per speaker: the approved version, a cue given to another speaker and a
    speaker renamed on the review page, becomes one new caption track per speaker."""
    import json

    from fixtures.review import PageClient, write_review_timeline
    from test_premiere_review import panel

    eng = engine_factory("premiere-speakers", job="fixtures.review:speaker_review_job")
    client = eng.start()
    timeline = write_review_timeline(tmp_path / "export" / "Sequence 01.otio")
    job_id = client.submit(timeline, {"formats": ["srt", "json"], "speakers": 2})["id"]
    assert client.wait(job_id, timeout=60)["state"] == "succeeded"
    out = panel(tmp_path, eng.config, action="review")
    page = PageClient(client.base_url)
    assert page.open_link(out["result"]["url"])[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    view["cues"][0]["speakers"] = ["S2"]
    body = {"cues": view["cues"], "speakers": [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]}
    status, _, text = page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", body, headers={"Origin": page.base}
    )
    assert status == 201, text

    out = panel(tmp_path, eng.config, action="update", speaker_layout="tracks")
    result = out["result"]
    assert result["ok"] and result["version"] == 1, out
    tracks = out["calls"]["captionTracks"]
    assert [t["name"].rsplit(".", 3)[-3:] for t in tracks] == [["en", "Ana", "srt"], ["en", "Bernard", "srt"]]
    rate = Fraction(24000, 1001)
    for track, sid in zip(tracks, ("S1", "S2")):
        assert srt_frames(track["path"], rate) == [
            (c["start_frame"], c["end_frame"]) for c in view["cues"] if c["speakers"][0] == sid
        ]
    assert "CaptionBridge v1 English, Bernard" in out["items"]
