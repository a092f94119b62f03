"""FCPXML <caption> and FCP7 Text-generator output: rates, start timecodes and every cue's frame, parsed
back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction

import opentimelineio as otio
import pytest
from fixtures.editor_roundtrip import make_document

from captionbridge.adapters.fcpxml_captions import (
    caption_role,
    fcp_time,
    read_fcpxml_captions,
    write_fcpxml_captions,
)
from captionbridge.adapters.xmeml_titles import write_xmeml_titles
from captionbridge.core.errors import InputError
from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase

EXPECTED = {  # clock -> (frameDuration, tcStart, tcFormat)
    "23.976@01h": ("1001/24000s", "86486400/24000s", "NDF"),  # 86400 frames = 3603.6 s
    "29.97DF@01h": ("1001/30000s", "107999892/30000s", "DF"),  # 107892 frames = 3599.9964 s
    "25@01h": ("1/25s", "3600s", "NDF"),
    "50@10h": ("1/50s", "36000s", "NDF"),
    "59.94DF@00h59": ("1001/60000s", None, "DF"),
}


def test_fcp_time_is_exact():
    tb = Timebase.from_start_timecode("24000/1001", "01:00:00:00", False)
    assert fcp_time(0, tb) == "0s"
    assert fcp_time(1, tb) == "1001/24000s"
    assert fcp_time(24000, tb) == "1001s"
    assert Fraction(fcp_time(86400, tb)[:-1]) == Fraction(36036, 10)


@pytest.mark.parametrize("version", ["1.9", "1.10"])
def test_fcpxml_round_trip(tmp_path, editor_clock, version):
    doc = make_document(editor_clock)
    out = write_fcpxml_captions(doc, tmp_path / "reel.fcpxml", version=version)
    raw = out.read_text(encoding="utf-8")
    assert raw.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>')
    root = ET.parse(out).getroot()
    assert root.tag == "fcpxml" and root.get("version") == version
    fmt = root.find("resources/format")
    seq = root.find("library/event/project/sequence")
    frame_dur, tc_start, tc_format = EXPECTED[editor_clock]
    assert fmt.get("frameDuration") == frame_dur
    assert seq.get("tcFormat") == tc_format
    if tc_start:
        assert seq.get("tcStart") == tc_start
    # tcStart is exactly the start frame
    assert Fraction(seq.get("tcStart")[:-1]) == doc.timebase.start_frame / doc.timebase.rate

    parsed = read_fcpxml_captions(out)
    assert parsed["frame_duration"] == 1 / doc.timebase.rate
    assert parsed["tc_start_frames"] == doc.timebase.start_frame
    for lang, role_lang in (("en", "en"), ("zh", "zh-Hans")):
        caps = [c for c in parsed["captions"] if c["language"] == role_lang]
        assert [(c["start_frame"], c["end_frame"], c["text"]) for c in caps] == [
            (c.start_frame, c.end_frame, c.text[lang]) for c in doc.cues
        ]
        assert len({c["lane"] for c in caps}) == 1
    roles = {c.get("role") for c in root.iter("caption")}
    assert roles == {"iTT?captionFormat=ITT.en", "iTT?captionFormat=ITT.zh-Hans"}
    # every time attribute is a whole number of frames
    fd = Fraction(frame_dur[:-1])
    for el in root.iter():
        for key in ("offset", "start", "duration"):
            if el.get(key):
                assert (Fraction(el.get(key)[:-1]) / fd).denominator == 1, (el.tag, key, el.get(key))


def test_fcpxml_language_subset_bundle_and_overlap(tmp_path):
    tb = Timebase.from_start_timecode(25, "01:00:00:00", False)
    doc = CaptionDocument(
        "o",
        tb,
        "en",
        [],
        [Cue(0, 50, {"en": "one", "zh": "一"}), Cue(40, 90, {"en": "two", "zh": "二"})],
        ["en", "zh"],
    )
    out = write_fcpxml_captions(doc, tmp_path / "o.fcpxmld", languages=["zh"])
    assert (out / "Info.fcpxml").is_file()
    parsed = read_fcpxml_captions(out)
    assert [(c["start_frame"], c["end_frame"], c["text"], c["lane"]) for c in parsed["captions"]] == [
        (0, 50, "一", 1),
        (40, 90, "二", 2),
    ]
    with pytest.raises(InputError, match="no fr text"):
        write_fcpxml_captions(doc, tmp_path / "x.fcpxml", languages=["fr"])
    with pytest.raises(InputError, match="version"):
        write_fcpxml_captions(doc, tmp_path / "x.fcpxml", version="1.6")


def test_caption_roles():
    assert caption_role("en") == "iTT?captionFormat=ITT.en"
    assert caption_role("zh") == "iTT?captionFormat=ITT.zh-Hans"
    assert caption_role("fr") == "iTT?captionFormat=ITT.fr"


def test_xmeml_titles_read_back_by_otio_fcp_xml(tmp_path, editor_clock):
    doc = make_document(editor_clock, 25)
    out = write_xmeml_titles(doc, tmp_path / "reel.xml")
    root = ET.parse(out).getroot()
    seq = root.find("sequence")
    tb = doc.timebase
    assert seq.findtext("rate/timebase") == str(tb.nominal_fps)
    assert seq.findtext("rate/ntsc") == ("TRUE" if tb.rate.denominator == 1001 else "FALSE")
    assert seq.findtext("timecode/string") == tb.start_timecode
    assert seq.findtext("timecode/frame") == str(tb.start_frame)
    assert seq.findtext("timecode/displayformat") == ("DF" if tb.drop_frame else "NDF")

    # An independent reader: OTIO's fcp_xml adapter.
    timeline = otio.adapters.read_from_file(str(out), adapter_name="fcp_xml")
    assert Fraction(timeline.global_start_time.rate).limit_denominator(1001) == tb.rate
    assert round(timeline.global_start_time.value) == tb.start_frame
    video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    assert len(video) == 2  # en, zh
    for track, lang in zip(video, ("en", "zh")):
        ranges = track.range_of_all_children()
        clips = [c for c in track if isinstance(c, otio.schema.Clip)]
        assert [
            (round(ranges[c].start_time.value), round(ranges[c].end_time_exclusive().value)) for c in clips
        ] == [(c.start_frame, c.end_frame) for c in doc.cues]
        assert all(isinstance(c.media_reference, otio.schema.GeneratorReference) for c in clips)
    texts = [g.find("effect/parameter[parameterid='str']/value").text for g in root.iter("generatoritem")]
    assert texts[: len(doc.cues)] == [c.text["en"].replace("\n", "\r") for c in doc.cues]


def test_markup_characters_survive_both_formats(tmp_path):
    tb = Timebase.from_start_timecode("24000/1001", "00:59:58:00", False)
    text = 'Tom & Jerry <live> "quoted"\n第二行'
    doc = CaptionDocument("A&B <cut>", tb, "en", [], [Cue(10, 40, {"en": text})], ["en"])
    parsed = read_fcpxml_captions(write_fcpxml_captions(doc, tmp_path / "m.fcpxml"))
    assert parsed["captions"][0]["text"] == text and parsed["tc_start_frames"] == tb.start_frame
    root = ET.parse(write_xmeml_titles(doc, tmp_path / "m.xml")).getroot()
    gen = root.find(".//generatoritem")
    assert gen.find("effect/parameter[parameterid='str']/value").text == text.replace("\n", "\r")
    assert gen.findtext("name") == 'Tom & Jerry <live> "quoted" 第二行'
    assert root.findtext("sequence/name") == "A&B <cut> captions"
    assert (gen.findtext("start"), gen.findtext("end")) == ("10", "40")


def test_xmeml_titles_added_on_top_of_the_source_edit(tmp_path, click_wav):
    from fixtures.editor_roundtrip import document_for
    from fixtures.timelines import ClipSpec, SequenceSpec, write_xmeml

    wav = click_wav("take 1.wav", 20.0, [1.0])
    seq = SequenceSpec.at(
        "Reel 3",
        "30000/1001",
        "01:00:00;00",
        [ClipSpec(0, 300, wav.path, track="A1"), ClipSpec(0, 300, wav.path, track="V1")],
        True,
    )
    source = write_xmeml(tmp_path / "reel 3.xml", seq)
    doc = document_for(seq.timebase, 10, "Reel 3")
    out = write_xmeml_titles(doc, tmp_path / "reel 3.titles.xml", source=source)

    before = otio.adapters.read_from_file(str(source), adapter_name="fcp_xml")
    after = otio.adapters.read_from_file(str(out), adapter_name="fcp_xml")
    assert after.global_start_time == before.global_start_time
    video_before = [t for t in before.tracks if t.kind == otio.schema.TrackKind.Video]
    video_after = [t for t in after.tracks if t.kind == otio.schema.TrackKind.Video]
    audio = lambda tl: [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Audio]  # noqa: E731
    assert len(video_after) == len(video_before) + 2
    assert [t.to_json_string() for t in audio(after)] == [t.to_json_string() for t in audio(before)]
    assert [t.to_json_string() for t in video_after[: len(video_before)]] == [
        t.to_json_string() for t in video_before
    ]
    for track in video_after[len(video_before) :]:
        ranges = track.range_of_all_children()
        clips = [c for c in track if isinstance(c, otio.schema.Clip)]
        assert [
            (round(ranges[c].start_time.value), round(ranges[c].end_time_exclusive().value)) for c in clips
        ] == [(c.start_frame, c.end_frame) for c in doc.cues]

    other = document_for(Timebase("25", 0), 3)
    with pytest.raises(InputError, match="caption this sequence again"):
        write_xmeml_titles(other, tmp_path / "x.xml", source=source)


# The parts of Apple's FCPXML 1.10 DTD for the elements we write: allowed attributes, required attributes, and
# the order children may come in (a regular expression over child tag names).
DTD = {
    "fcpxml": ({"version"}, {"version"}, r"(resources )?(library )?"),
    "resources": (set(), set(), r"((asset|effect|format|media|locator) )*"),
    "format": (
        {
            "id",
            "name",
            "frameDuration",
            "fieldOrder",
            "width",
            "height",
            "paspH",
            "paspV",
            "colorSpace",
            "projection",
            "stereoscopic",
        },
        {"id"},
        r"",
    ),
    "library": ({"location", "colorProcessing"}, set(), r"((event|smart-collection) )*"),
    "event": ({"name", "uid"}, set(), r"((clip|audition|mc-clip|ref-clip|sync-clip|asset-clip|project) )*"),
    "project": ({"name", "uid", "id", "modDate"}, set(), r"sequence "),
    "sequence": (
        {"format", "duration", "tcStart", "tcFormat", "audioLayout", "audioRate", "renderFormat", "keywords"},
        {"format"},
        r"(note )?spine (metadata )?",
    ),
    "spine": (
        {"lane", "offset", "name", "format"},
        set(),
        r"((audio|video|clip|title|mc-clip|ref-clip|sync-clip|"
        r"asset-clip|audition|gap|transition) )*",
    ),
    "gap": (
        {"name", "offset", "start", "duration", "enabled"},
        {"duration"},
        r"(note )?((audio|video|clip|title|caption|mc-clip|ref-clip|sync-clip|asset-clip|audition|spine) )*"
        r"((marker|chapter-marker|rating|keyword|analysis-marker) )*(metadata )?",
    ),
    "caption": (
        {"lane", "offset", "name", "start", "duration", "enabled", "role"},
        {"duration"},
        r"(text )*(text-style-def )*(note )?",
    ),
    "text": (
        {"display-style", "roll-up-height", "position", "placement", "alignment"},
        set(),
        r"(text-style )*",
    ),
    "text-style-def": ({"id", "name"}, {"id"}, r"text-style "),
    "text-style": (
        {
            "ref",
            "font",
            "fontSize",
            "fontFace",
            "fontColor",
            "backgroundColor",
            "bold",
            "italic",
            "strokeColor",
            "strokeWidth",
            "baseline",
            "shadowColor",
            "shadowOffset",
            "shadowBlurRadius",
            "kerning",
            "alignment",
            "lineSpacing",
            "tabStops",
            "baselineOffset",
            "underline",
        },
        set(),
        r"(param )*",
    ),
    "marker": ({"start", "duration", "value", "completed", "note"}, {"start", "value"}, r""),
}


@pytest.mark.parametrize("version", ["1.9", "1.10"])
def test_fcpxml_follows_the_dtd(tmp_path, version):
    import re

    doc = make_document("29.97DF@01h", 30)
    root = ET.parse(write_fcpxml_captions(doc, tmp_path / "d.fcpxml", version=version)).getroot()
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    for el in root.iter():
        assert el.tag in DTD, f"unexpected element <{el.tag}>"
        allowed, required, children = DTD[el.tag]
        assert set(el.attrib) <= allowed, (el.tag, set(el.attrib) - allowed)
        assert required <= set(el.attrib), (el.tag, required - set(el.attrib))
        assert re.fullmatch(children, "".join(c.tag + " " for c in el)), (el.tag, [c.tag for c in el])
        for ref in ("ref", "format"):
            if el.get(ref) and el.tag != "format":
                assert el.get(ref) in ids, (el.tag, ref)
    assert len({el.get("id") for el in root.iter() if el.get("id")}) == len(
        [e for e in root.iter() if e.get("id")]
    )


def test_fcpxml_low_confidence_markers(tmp_path):
    doc = make_document("23.976@01h", 30)
    parsed = read_fcpxml_captions(write_fcpxml_captions(doc, tmp_path / "m.fcpxml"))
    low = {}
    for w in doc.words:
        if w.confidence < 0.5:
            low.setdefault(w.start_frame, w)
    assert [(m["start_frame"], m["end_frame"], m["value"]) for m in parsed["markers"]] == [
        (f, w.end_frame, f"check: {w.text}") for f, w in low.items()
    ]
    none = read_fcpxml_captions(write_fcpxml_captions(doc, tmp_path / "n.fcpxml", markers=False))
    assert none["markers"] == []
