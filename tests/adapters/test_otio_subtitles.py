"""OTIO round trip: subtitle tracks appended to an untouched timeline, read back on every frame; our OTIO
plugin."""

from __future__ import annotations

import json
import subprocess
import sys

import opentimelineio as otio
import pytest
from fixtures.editor_roundtrip import make_document, make_timeline

from captionbridge.adapters import otio_subtitles as subs
from captionbridge.core.errors import CaptionBridgeError, TimelineError
from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase


def test_write_keeps_input_and_adds_one_track_per_language(tmp_path, editor_clock):
    doc = make_document(editor_clock)
    timeline = make_timeline(doc)
    before = timeline.to_json_string()
    out = subs.write_otio_with_subtitles(timeline, doc, tmp_path / "reel.captions.otio")
    assert timeline.to_json_string() == before, "the caller's timeline object was modified"

    back = otio.adapters.read_from_file(str(out))
    # Everything that was in the input is still there, byte for byte once our additions are removed.
    assert subs.strip_subtitles(back).to_json_string() == before
    assert back.global_start_time == timeline.global_start_time
    tracks = subs.subtitle_tracks(back)
    assert [(t.name, t.kind, t.metadata["captionbridge"]["language"]) for t in tracks] == [
        ("Subtitles (en)", "Subtitle", "en"),
        ("Subtitles (zh)", "Subtitle", "zh"),
    ]

    for track in tracks:
        lang = track.metadata["captionbridge"]["language"]
        assert track.metadata["captionbridge"]["rate"] == doc.to_dict()["timeline"]["rate"]
        assert track.metadata["captionbridge"]["start_timecode"] == doc.timebase.start_timecode
        clips = [c for c in track if isinstance(c, otio.schema.Clip)]
        assert len(clips) == len(doc.cues)
        ranges = track.range_of_all_children()
        for clip, cue in zip(clips, doc.cues):
            rng = ranges[clip]
            assert rng.start_time.rate == float(doc.timebase.rate)
            assert (rng.start_time.value, rng.end_time_exclusive().value) == (cue.start_frame, cue.end_frame)
            meta = clip.metadata["captionbridge"]
            assert meta["text"] == cue.text[lang]
            assert meta["start_timecode"] == doc.timebase.timecode(cue.start_frame)
            # the timecode OTIO computes from global start + track position agrees with ours
            absolute = back.global_start_time + rng.start_time
            assert (
                otio.opentime.to_timecode(absolute, absolute.rate, doc.timebase.drop_frame)
                == meta["start_timecode"]
            )
        # gaps only between cues
        assert all(isinstance(c, (otio.schema.Clip, otio.schema.Gap)) for c in track)

    src_words = [
        w
        for c in subs.subtitle_tracks(back, "en")[0]
        if isinstance(c, otio.schema.Clip)
        for w in c.metadata["captionbridge"]["words"]
    ]
    assert [w["text"] for w in src_words] == [w.text for w in doc.words]
    assert all(
        "words" not in c.metadata["captionbridge"] for c in tracks[1] if isinstance(c, otio.schema.Clip)
    )


def test_read_back_document_equals_written(tmp_path, editor_clock):
    doc = make_document(editor_clock)
    out = subs.write_otio_with_subtitles(make_timeline(doc), doc, tmp_path / "r.otio")
    again = subs.document_from_otio(otio.adapters.read_from_file(str(out)))
    assert again.timebase == doc.timebase
    assert [(c.start_frame, c.end_frame, c.text) for c in again.cues] == [
        (c.start_frame, c.end_frame, c.text) for c in doc.cues
    ]
    assert [(w.text, w.start_frame, w.end_frame) for w in again.words] == [
        (w.text, w.start_frame, w.end_frame) for w in doc.words
    ]
    assert again.source_language == "en" and again.languages == ["en", "zh"]


def test_low_confidence_words_become_stack_markers(tmp_path):
    doc = make_document("23.976@01h")
    low = [w for w in doc.words if w.confidence < 0.5]
    assert low, "fixture must contain low-confidence words"
    back = otio.adapters.read_from_file(
        str(subs.write_otio_with_subtitles(make_timeline(doc), doc, tmp_path / "m.otio"))
    )
    markers = subs.low_confidence_markers(back)
    assert [
        (m.marked_range.start_time.value, m.marked_range.end_time_exclusive().value, m.name) for m in markers
    ] == [(w.start_frame, w.end_frame, f"check: {w.text}") for w in low]
    assert all(m.color == otio.schema.MarkerColor.RED for m in markers)
    assert [m.name for m in back.tracks.markers][0] == "editor note"
    none = otio.adapters.read_from_file(
        str(subs.write_otio_with_subtitles(make_timeline(doc), doc, tmp_path / "n.otio", markers=False))
    )
    assert subs.low_confidence_markers(none) == []


def test_overlapping_cues_of_a_language_go_to_a_second_lane_not_dropped(tmp_path):
    tb = Timebase.from_start_timecode(25, "01:00:00:00", False)
    cues = [Cue(0, 50, {"en": "one"}), Cue(40, 90, {"en": "two overlaps"}), Cue(90, 100, {"en": "three"})]
    doc = CaptionDocument("o", tb, "en", [], cues, ["en"])
    timeline = otio.schema.Timeline(name="o", global_start_time=otio.opentime.RationalTime(90000, 25))
    back = subs.add_subtitles(timeline, doc)
    tracks = subs.subtitle_tracks(back, "en")
    assert [t.metadata["captionbridge"]["lane"] for t in tracks] == [0, 1]
    again = subs.document_from_otio(back)
    assert [(c.start_frame, c.end_frame, c.text["en"]) for c in again.cues] == [
        (0, 50, "one"),
        (40, 90, "two overlaps"),
        (90, 100, "three"),
    ]


@pytest.mark.parametrize("rate,start,message", [(24, 86400, "24 fps"), (25, 0, "starts at frame 0")])
def test_captions_for_another_clock_are_refused(rate, start, message):
    doc = make_document("25@01h")
    timeline = otio.schema.Timeline(name="x", global_start_time=otio.opentime.RationalTime(start, rate))
    with pytest.raises(TimelineError, match=message):
        subs.add_subtitles(timeline, doc)


def test_timeline_without_global_start_time_is_left_without_one():
    doc = make_document("25@01h", 5)
    timeline = make_timeline(doc)
    timeline.global_start_time = None
    out = subs.add_subtitles(timeline, doc)
    assert out.global_start_time is None and len(subs.subtitle_tracks(out)) == 2
    again = subs.document_from_otio(out)  # the clock comes from the tracks' metadata
    assert again.timebase == doc.timebase


def test_bad_output_suffix_is_a_clear_error(tmp_path):
    doc = make_document("25@01h", 3)
    with pytest.raises(CaptionBridgeError, match="must end in .otio"):
        subs.write_otio_with_subtitles(make_timeline(doc), doc, tmp_path / "x.json")


def test_otioz_output(tmp_path):
    doc = make_document("29.97DF@01h", 5)
    with pytest.raises(CaptionBridgeError, match="A000.mov.*write .otio instead"):
        subs.write_otio_with_subtitles(make_timeline(doc), doc, tmp_path / "r.otioz")
    timeline = make_timeline(doc)
    for track in timeline.tracks:
        for clip in track.find_clips():
            media = tmp_path / clip.name
            media.write_bytes(b"\0")
            clip.media_reference = otio.schema.ExternalReference(
                target_url=otio.url_utils.url_from_filepath(str(media))
            )
    out = subs.write_otio_with_subtitles(timeline, doc, tmp_path / "r.otioz")
    back = otio.adapters.read_from_file(str(out))
    assert len(subs.subtitle_tracks(back)) == 2
    assert [(c.start_frame, c.end_frame, c.text) for c in subs.document_from_otio(back).cues] == [
        (c.start_frame, c.end_frame, c.text) for c in doc.cues
    ]


# -- the plugin: registered through the entry point
# ---------------------------------------------------------------
def test_manifest_registers_our_adapters():
    manifest = otio.plugins.ActiveManifest(force_reload=True)
    names = {a.name: a for a in manifest.adapters}
    assert {"captionbridge_srt", "captionbridge_vtt"} <= set(names)
    assert otio.adapters.from_filepath("x.srt").name == "captionbridge_srt"
    assert otio.adapters.from_filepath("x.vtt").name == "captionbridge_vtt"
    for name in ("captionbridge_srt", "captionbridge_vtt"):
        feats = names[name].module()
        assert callable(feats.read_from_file) and callable(feats.write_to_string)
    raw = json.loads(open(manifest.adapters[0]._json_path).read()) if manifest.adapters[0]._json_path else {}
    assert raw.get("OTIO_SCHEMA", "PluginManifest.1") == "PluginManifest.1"


@pytest.mark.parametrize("suffix", ["srt", "vtt"])
@pytest.mark.parametrize("clock_name", ["23.976@01h", "29.97DF@01h", "59.94DF@00h59"])
def test_srt_adapter_round_trips_every_frame(tmp_path, clock_name, suffix):
    doc = make_document(clock_name, 60)
    timeline = subs.timeline_from_document(doc, ["en"])
    srt = tmp_path / f"x.{suffix}"
    otio.adapters.write_to_file(timeline, str(srt))  # picked by suffix: our adapter
    text = srt.read_text()
    assert text.startswith("1\n" if suffix == "srt" else "WEBVTT") and "-->" in text
    tb = doc.timebase
    back = otio.adapters.read_from_file(
        str(srt), rate=str(tb.rate), start_timecode=tb.start_timecode, drop_frame=tb.drop_frame, language="en"
    )
    assert back.global_start_time.value == tb.start_frame
    again = subs.document_from_otio(back)
    assert [(c.start_frame, c.end_frame, c.text["en"]) for c in again.cues] == [
        (c.start_frame, c.end_frame, c.text["en"]) for c in doc.cues
    ]


def test_srt_adapter_picks_language_and_reports_missing(tmp_path):
    doc = make_document("25@01h", 4)
    timeline = subs.timeline_from_document(doc)
    zh = otio.adapters.write_to_string(timeline, "captionbridge_srt", language="zh")
    assert "我们选择登月。" in zh and "moon" not in zh
    with pytest.raises(CaptionBridgeError, match="no fr subtitle track"):
        otio.adapters.write_to_string(timeline, "captionbridge_srt", language="fr")


def test_bad_srt_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.srt"
    bad.write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(CaptionBridgeError, match="bad.srt"):
        otio.adapters.read_from_file(str(bad))


def test_otioconvert_uses_the_plugin(tmp_path):
    doc = make_document("25@01h", 6)
    srt = tmp_path / "in.srt"
    srt.write_text(
        otio.adapters.write_to_string(subs.timeline_from_document(doc, ["en"]), "captionbridge_srt")
    )
    out = tmp_path / "out.otio"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "opentimelineio.console.otioconvert",
            "-i",
            str(srt),
            "-o",
            str(out),
            "-a",
            "rate=25",
            "-a",
            "start_timecode=01:00:00:00",
            "-a",
            "language=en",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    again = subs.document_from_otio(otio.adapters.read_from_file(str(out)))
    assert again.timebase.start_frame == 90000
    assert [(c.start_frame, c.end_frame) for c in again.cues] == [
        (c.start_frame, c.end_frame) for c in doc.cues
    ]


@pytest.mark.parametrize("fmt", ["xmeml", "otio", "resolve", "fcpxml"])
def test_with_timelines_as_the_reader_loads_them(tmp_path, fmt, click_wav, timeline_factory):
    """``captionbridge caption T --formats otio`` path: the reader's timeline + subtitle tracks, input
    untouched."""
    from fixtures.editor_roundtrip import document_for
    from fixtures.timelines import ClipSpec, SequenceSpec

    from captionbridge.adapters.timeline_read import load_timeline

    wav = click_wav("a b.wav", 20.0, [1.0])
    seq = SequenceSpec.at("Reel 2", "30000/1001", "01:00:00;00", [ClipSpec(0, 500, wav.path)], True)
    loaded = load_timeline(timeline_factory(seq, fmt))
    before = loaded.timeline.to_json_string()
    doc = document_for(loaded.timebase, 12, loaded.name)
    out = subs.write_otio_with_subtitles(loaded.timeline, doc, tmp_path / "reel.captions.otio")
    back = otio.adapters.read_from_file(str(out))
    assert subs.strip_subtitles(back).to_json_string() == before
    again = subs.document_from_otio(back)
    assert again.timebase == loaded.timebase == doc.timebase
    assert [(c.start_frame, c.end_frame) for c in again.cues] == [
        (c.start_frame, c.end_frame) for c in doc.cues
    ]
    # the caption file is itself a timeline the reader accepts, on the same clock
    reloaded = load_timeline(out)
    assert reloaded.timebase == loaded.timebase


def test_otioconvert_writes_one_language_of_a_captioned_timeline(tmp_path):
    doc = make_document("29.97DF@01h", 8)
    src = subs.write_otio_with_subtitles(make_timeline(doc), doc, tmp_path / "reel.captions.otio")
    out = tmp_path / "reel.zh.srt"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "opentimelineio.console.otioconvert",
            "-i",
            str(src),
            "-o",
            str(out),
            "-A",
            "language=zh",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    back = otio.adapters.read_from_file(
        str(out), rate="30000/1001", start_timecode="01:00:00;00", drop_frame=True, language="zh"
    )
    again = subs.document_from_otio(back)
    assert [(c.start_frame, c.end_frame, c.text["zh"]) for c in again.cues] == [
        (c.start_frame, c.end_frame, c.text["zh"]) for c in doc.cues
    ]


def test_foreign_subtitle_tracks_are_read_too():
    rate = 25
    rt = lambda f: otio.opentime.RationalTime(f, rate)  # noqa: E731
    tl = otio.schema.Timeline(name="other tool", global_start_time=rt(90000))
    track = otio.schema.Track(name="Subs", kind="Subtitle")
    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(10))))
    track.append(otio.schema.Clip(name="Hello", source_range=otio.opentime.TimeRange(rt(500), rt(20))))
    tl.tracks.append(track)
    doc = subs.document_from_otio(tl)
    assert doc.timebase == Timebase(25, 90000) and doc.languages == ["und"]
    assert [(c.start_frame, c.end_frame, c.text) for c in doc.cues] == [(10, 30, {"und": "Hello"})]
    with pytest.raises(CaptionBridgeError, match="no Subtitle track"):
        subs.document_from_otio(otio.schema.Timeline(name="empty"))
