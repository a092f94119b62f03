"""Caption files: every format round-trips to identical frames, read back by pysubs2 and by FFmpeg (PyAV)."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import pysubs2
import pytest
from fixtures.captions import EDITOR_RATES, editor_timebase, words_from_text
from fixtures.exact_time import exact_ms_up, stamps_ms
from hypothesis import given, settings
from hypothesis import strategies as st

from captionbridge.adapters.caption_formats import (
    CJK_FONT,
    LATIN_FONT,
    WRITERS,
    read_caption_file,
    read_captions,
    register_writer,
    write_captions,
)
from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.captions.validate import has_hard, validate_cues
from captionbridge.core.errors import InputError
from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase

EN_TEXT = (
    "Good evening, and welcome to the programme. Tonight we travel to the mountains of Yunnan, "
    "where farmers have grown tea for more than a thousand years. The work begins before dawn, "
    "when the air is still cold and the leaves are wet with dew. Nobody here is in a hurry."
)
ZH_LINES = [
    "晚上好 欢迎收看本节目",
    "今晚我们前往云南的群山",
    "那里的农民种茶已有千年",
    "工作在黎明前开始",
    "空气依然寒冷",
    "茶叶上还带着露水",
    "这里没有人着急",
    "一切都慢慢来",
    "再见",
]


def bilingual_doc(timebase: Timebase) -> CaptionDocument:
    words = words_from_text(EN_TEXT, timebase, start=0.4)
    cues = compose_cues(words, timebase, "netflix-en", "en")
    cues = [c.with_text("zh", ZH_LINES[i % len(ZH_LINES)]) for i, c in enumerate(cues)]
    return CaptionDocument("tea", timebase, "en", words=words, cues=cues, languages=["en", "zh"])


def frames(cues):
    return [(c.start_frame, c.end_frame) for c in cues]


def decode_with_ffmpeg(path: Path, timebase: Timebase, offset: int = 0):
    """(start frame, end frame, text) of each event as FFmpeg's demuxer/decoder sees it (editors floor)."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            start = Fraction(packet.pts) * stream.time_base
            end = Fraction(packet.pts + packet.duration) * stream.time_base
            texts = [re.sub(r"\{[^}]*\}", "", sub.dialogue.decode()) for sub in packet.decode()]
            out.append((timebase.frame_at(start) - offset, timebase.frame_at(end) - offset, "\n".join(texts)))
    return out


@pytest.mark.parametrize("label", [r[0] for r in EDITOR_RATES])
def test_every_format_round_trips_to_identical_frames(tmp_path, label):
    tb = editor_timebase(label)
    doc = bilingual_doc(tb)
    paths = write_captions(doc, tmp_path, "tea", ["json", "srt", "vtt", "ass", "ttml"])
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "tea.captions.json",
            "tea.en.srt",
            "tea.zh.srt",
            "tea.en.vtt",
            "tea.zh.vtt",
            "tea.en.ass",
            "tea.zh.ass",
            "tea.en.ttml",
            "tea.zh.ttml",
            "tea.bilingual.srt",
            "tea.bilingual.ass",
        ]
    )
    want = frames(doc.cues)
    for path in paths:
        cues = read_captions(path, tb)
        assert frames(cues) == want, path.name
        langs = (
            ["en", "zh"]
            if path.name.startswith(("tea.captions", "tea.bilingual"))
            else [path.name.split(".")[1]]
        )
        for lang in langs:
            assert [c.text[lang] for c in cues] == [c.text[lang] for c in doc.cues], (path.name, lang)
    # pysubs2 itself, independent of our reader: floor(ms) -> frame gives the same frames
    for path in tmp_path.glob("*.srt"):
        ssa = pysubs2.load(str(path))
        assert [(tb.frame_from_ms(e.start), tb.frame_from_ms(e.end)) for e in ssa] == want
    # FFmpeg's own subtitle demuxers/decoders (what editors built on FFmpeg read)
    for path in [
        tmp_path / "tea.en.srt",
        tmp_path / "tea.en.vtt",
        tmp_path / "tea.en.ass",
        tmp_path / "tea.bilingual.srt",
        tmp_path / "tea.bilingual.ass",
    ]:
        decoded = decode_with_ffmpeg(path, tb)
        assert [(a, b) for a, b, _ in decoded] == want, path.name
    bilingual = decode_with_ffmpeg(tmp_path / "tea.bilingual.srt", tb)
    assert bilingual[0][2] == doc.cues[0].text["zh"] + "\n" + doc.cues[0].text["en"]  # Chinese over English


@pytest.mark.parametrize("label", [r[0] for r in EDITOR_RATES])
@pytest.mark.parametrize("absolute", [False, True])
def test_written_times_are_exact_frame_starts_rounded_up(tmp_path, label, absolute):
    """The times in the files' own text equal ceil(frame / rate) at the format's resolution, computed here
    with exact fractions (not with the writer's or the validator's rounding)."""
    tb = editor_timebase(label)
    doc = bilingual_doc(tb)
    offset = tb.start_frame if absolute else 0
    edges = [f + offset for c in doc.cues for f in (c.start_frame, c.end_frame)]
    formats = ["srt", "vtt"] + ([] if absolute and tb.seconds(tb.start_frame) >= 36000 else ["ass"])
    for path in write_captions(doc, tmp_path, "t", formats, languages=["en"], absolute=absolute):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ass":
            text = text[text.index("[Events]") :]
        quantum = 10 if path.suffix == ".ass" else 1
        assert stamps_ms(text) == [exact_ms_up(f, tb.rate, quantum) for f in edges], path.name


def test_rounding_to_nearest_millisecond_would_land_early(tmp_path):
    """Why we round up: at 23.976 nearest-ms times floor to the previous frame for many cues."""
    tb = Timebase(Fraction(24000, 1001))
    early = sum(tb.frame_from_ms(round(f * 1001 / 24)) != f for f in range(1000))
    assert early > 300
    assert all(tb.frame_from_ms(tb.ms_ceil(f)) == f for f in range(100000))


def test_absolute_times_include_the_start_timecode(tmp_path):
    tb = editor_timebase("23.976")  # 01:00:00:00 = frame 86400 = 3603.6 s
    doc = bilingual_doc(tb)
    (srt,) = write_captions(doc, tmp_path, "abs", ["srt"], languages=["en"], absolute=True)
    first = pysubs2.load(str(srt))[0]
    assert first.start == tb.ms_ceil(doc.cues[0].start_frame + 86400)
    assert srt.read_text().split("\n")[1].startswith("01:00:0")
    assert frames(read_captions(srt, tb)) == frames(doc.cues)  # detected as absolute
    assert frames(read_captions(srt, tb, absolute=True)) == frames(doc.cues)
    assert [(a, b) for a, b, _ in decode_with_ffmpeg(srt, tb, offset=86400)] == frames(doc.cues)
    (rel,) = write_captions(doc, tmp_path, "rel", ["srt"], languages=["en"])
    assert rel.read_text().split("\n")[1].startswith("00:00:0")
    assert read_caption_file(rel, tb).absolute is False


def test_drop_frame_absolute_times_are_real_time(tmp_path):
    tb = editor_timebase("29.97DF")  # 01:00:00;00 = frame 107892 = 3599.9964 s
    doc = CaptionDocument("df", tb, "en", cues=[Cue(0, 30, {"en": "First frame."})], languages=["en"])
    (srt,) = write_captions(doc, tmp_path, "df", ["srt"], absolute=True)
    assert "00:59:59,997 --> 01:00:00,998" in srt.read_text()  # 107922 * 1001 / 30 = 3600997.4 ms, up
    assert frames(read_captions(srt, tb, absolute=True)) == [(0, 30)]


def test_bilingual_ass_has_two_styles_chinese_above_english(tmp_path):
    doc = bilingual_doc(Timebase(25))
    (ass,) = write_captions(doc, tmp_path, "tea", ["bilingual-ass"])
    ssa = pysubs2.load(str(ass))
    assert {"ZH", "EN"} <= set(ssa.styles)
    # Chinese in a CJK font; English in a Latin font (a CJK font's Latin glyphs look wrong in English
    # captions)
    assert ssa.styles["ZH"].fontname == CJK_FONT and ssa.styles["EN"].fontname == LATIN_FONT
    first = ssa.events[0].text
    assert first.index("{\\rZH}") < first.index("{\\rEN}")
    assert ssa.events[0].plaintext.split("\n")[0] == doc.cues[0].text["zh"]
    cues = read_captions(ass, Timebase(25))
    assert cues[0].text == {"zh": doc.cues[0].text["zh"], "en": doc.cues[0].text["en"]}


def test_json_contract_round_trip_carries_the_timebase(tmp_path):
    tb = editor_timebase("29.97DF")
    doc = bilingual_doc(tb)
    (path,) = write_captions(doc, tmp_path, "tea", ["json"])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["timeline"]["rate"] == "30000/1001" and data["timeline"]["drop_frame"] is True
    assert data["timeline"]["start_timecode"] == "01:00:00;00"
    assert data["languages"] == ["en", "zh"]
    loaded = read_caption_file(path)
    assert loaded.timebase == tb
    assert [c.text for c in loaded.cues] == [c.text for c in doc.cues]
    assert frames(loaded.cues) == frames(doc.cues)
    with pytest.raises(InputError, match="not 25"):
        read_caption_file(path, Timebase(25))


def test_ttml_uses_exact_frames(tmp_path):
    tb = editor_timebase("23.976")
    doc = bilingual_doc(tb)
    (path,) = write_captions(doc, tmp_path, "tea", ["ttml"], languages=["en"])
    text = path.read_text()
    assert 'ttp:frameRate="24"' in text and 'ttp:frameRateMultiplier="1000 1001"' in text
    assert f'begin="{doc.cues[0].start_frame}f"' in text


def test_every_written_file_passes_validation(tmp_path):
    tb = editor_timebase("25")
    doc = bilingual_doc(tb)
    for path in write_captions(doc, tmp_path, "tea", ["srt", "vtt", "ass"]):
        f = read_caption_file(path, tb)
        for lang in f.languages:
            preset = "netflix-en" if lang == "en" else "netflix-zh"
            assert not has_hard(validate_cues(f.cues, tb, preset, lang, source_times=f.source_times)), path


def test_missing_translation_is_an_error_not_a_gap(tmp_path):
    tb = Timebase(25)
    doc = CaptionDocument(
        "x", tb, "en", cues=[Cue(0, 30, {"en": "One."}), Cue(40, 80, {"en": "Two."})], languages=["en", "zh"]
    )
    with pytest.raises(InputError, match="2 cue\\(s\\) have no 'zh' text"):
        write_captions(doc, tmp_path, "x", ["srt"])


def test_formats_registry(tmp_path):
    doc = CaptionDocument("x", Timebase(25), "en", cues=[Cue(0, 30, {"en": "One."})], languages=["en"])
    with pytest.raises(InputError, match="unknown caption format"):
        write_captions(doc, tmp_path, "x", ["scc"])
    assert write_captions(doc, tmp_path, "x", ["otio", "fcpxml"]) == []  # written by their own adapters
    with pytest.raises(InputError, match="two languages"):
        write_captions(doc, tmp_path, "x", ["bilingual-srt"])
    with pytest.raises(InputError, match="plain file stem"):
        write_captions(doc, tmp_path, "a/b", ["srt"])
    register_writer("txt", lambda d, out, stem, langs, absolute: [out / f"{stem}.txt"])
    try:
        assert write_captions(doc, tmp_path, "x", ["txt"]) == [tmp_path / "x.txt"]
    finally:
        WRITERS.pop("txt")


def test_reader_errors_are_clear(tmp_path):
    tb = Timebase(25)
    with pytest.raises(InputError, match="no such caption file"):
        read_captions(tmp_path / "missing.srt", tb)
    bad = tmp_path / "x.doc"
    bad.write_text("hi")
    with pytest.raises(InputError, match="unknown caption file type"):
        read_captions(bad, tb)
    srt = tmp_path / "x.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nHi\n")
    with pytest.raises(InputError, match="no frame rate"):
        read_captions(srt)
    srt.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nCaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        read_captions(srt, tb)
    srt.write_text("1\n00:00:03,000 --> 00:00:02,000\nBackwards\n")
    with pytest.raises(InputError, match="ends at or before it starts"):
        read_captions(srt, tb)


@settings(max_examples=25, deadline=None)
@given(
    label=st.sampled_from([r[0] for r in EDITOR_RATES]),
    starts=st.lists(st.integers(0, 10 * 3600 * 60), min_size=1, max_size=12, unique=True),
    absolute=st.booleans(),
)
def test_any_frames_round_trip_through_pysubs2_and_ffmpeg(tmp_path_factory, label, starts, absolute):
    """Random frames up to 10 hours at every rate: SRT/VTT/ASS -> pysubs2 and FFmpeg -> the same frames."""
    tb = editor_timebase(label)
    frames_in = []
    for start in sorted(starts):
        if frames_in and start < frames_in[-1][1] + 2:
            continue
        frames_in.append((start, start + 1 + start % 97))
    doc = CaptionDocument(
        "p", tb, "en", cues=[Cue(a, b, {"en": f"cue {a}"}) for a, b in frames_in], languages=["en"]
    )
    out = tmp_path_factory.mktemp("rt")
    offset = tb.start_frame if absolute else 0
    formats = ["srt", "vtt", "ass"]
    if (
        tb.ms_ceil(frames_in[-1][1] + offset) > 35_999_990
    ):  # ASS stops at 9:59:59.99: a clear error, no clamping
        with pytest.raises(InputError, match="later than ASS can store"):
            write_captions(doc, out, "p", ["ass"], absolute=absolute)
        formats.remove("ass")
    for path in write_captions(doc, out, "p", formats, absolute=absolute):
        assert frames(read_captions(path, tb, absolute=absolute)) == frames_in, path.name
        assert [(a, b) for a, b, _ in decode_with_ffmpeg(path, tb, offset)] == frames_in, path.name


def test_a_failed_write_leaves_no_files(tmp_path):
    tb = editor_timebase("25")  # starts at 10:00:00:00: absolute ASS times cannot be stored
    doc = CaptionDocument("x", tb, "en", cues=[Cue(0, 30, {"en": "One."})], languages=["en"])
    with pytest.raises(InputError, match="later than ASS can store"):
        write_captions(doc, tmp_path, "x", ["json", "srt", "ass"], absolute=True)
    assert list(tmp_path.iterdir()) == []
    assert len(write_captions(doc, tmp_path, "x", ["json", "srt", "ass"])) == 3  # relative times fit
