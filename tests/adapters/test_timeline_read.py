"""adapters.timeline_read: format detection, exact clocks from each format, the adapters' gaps fixed, clear
errors."""

import zipfile
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from fixtures.timelines import (
    ClipSpec,
    SequenceSpec,
    fcpxml_string,
    otio_timeline,
    write_click_wav,
    write_fcpxml,
    write_otio,
    write_xmeml,
    xmeml_string,
)

from captionbridge.adapters.timeline_read import detect_format, load_timeline, media_path_from_url
from captionbridge.adapters.xmeml_fixes import read_xmeml
from captionbridge.core.errors import InputError, TimelineError

CASES = [
    ("24000/1001", "01:00:00:00", False, 86400),
    ("30000/1001", "01:00:00;00", True, 107892),
    ("30000/1001", "01:00:00:00", False, 108000),
    ("25", "10:00:00:00", False, 900000),
    ("50", "01:00:00:00", False, 180000),
    ("60000/1001", "01:00:00;00", True, 215784),
    ("60000/1001", "00:59:59:00", False, 215940),
]


@pytest.fixture
def media(tmp_path):
    return write_click_wav(tmp_path / "media 素材" / "clip one.wav", 6, [1.0], sample_rate=48000)


def _seq(rate, tc, drop, wav, name="Seq 1"):
    return SequenceSpec.at(
        name,
        rate,
        tc,
        [
            ClipSpec(0, 48, wav.path, source_in=5, track="A1"),
            ClipSpec(60, 100, wav.path, source_in=0, track="A1"),
            ClipSpec(0, 100, wav.path, track="V1"),
        ],
        drop_frame=drop,
    )


@pytest.mark.parametrize("rate,tc,drop,start", CASES, ids=[f"{c[0]}@{c[1]}" for c in CASES])
@pytest.mark.parametrize("fmt", ["xmeml", "xmeml4", "otio", "resolve", "fcpxml", "fcpxmld"])
def test_clock_from_every_format(tmp_path, media, rate, tc, drop, start, fmt):
    seq = _seq(rate, tc, drop, media)
    path = {
        "xmeml": lambda: write_xmeml(tmp_path / "t.xml", seq, 5),
        "xmeml4": lambda: write_xmeml(tmp_path / "t.xml", seq, 4),
        "otio": lambda: write_otio(tmp_path / "t.otio", seq),
        "resolve": lambda: write_otio(tmp_path / "t.otio", seq, resolve_style=True),
        "fcpxml": lambda: write_fcpxml(tmp_path / "t.fcpxml", seq, "1.8"),
        "fcpxmld": lambda: write_fcpxml(tmp_path / "t.fcpxmld", seq, "1.10", bundle=True),
    }[fmt]()
    loaded = load_timeline(path)
    assert loaded.timebase.rate == Fraction(rate)
    assert loaded.timebase.start_frame == start
    assert loaded.timebase.drop_frame is drop
    assert loaded.timebase.start_timecode == tc
    assert loaded.duration_frames == 100
    assert loaded.name == "Seq 1"
    assert (
        loaded.format
        == {
            "xmeml": "fcp_xml",
            "xmeml4": "fcp_xml",
            "otio": "otio_json",
            "resolve": "otio_json",
            "fcpxml": "fcpx_xml",
            "fcpxmld": "fcpx_xml",
        }[fmt]
    )


def test_detection_by_content_not_suffix(tmp_path, media):
    seq = _seq("25", "01:00:00:00", False, media)
    odd = tmp_path / "export.txt"
    odd.write_text(xmeml_string(seq), encoding="utf-8")
    assert detect_format(odd) == "fcp_xml"
    assert load_timeline(odd).timebase.start_frame == 90000
    js = tmp_path / "timeline.json"
    otio.adapters.write_to_file(otio_timeline(seq), str(js), adapter_name="otio_json")
    assert detect_format(js) == "otio_json"
    fx = tmp_path / "cut.xml"
    fx.write_text(fcpxml_string(seq), encoding="utf-8")
    assert detect_format(fx) == "fcpx_xml"
    # a .xml that is really xmeml with a BOM and a DOCTYPE
    bom = tmp_path / "bom.xml"
    bom.write_bytes(b"\xef\xbb\xbf" + xmeml_string(seq).encode("utf-8"))
    assert load_timeline(bom).timebase.rate == 25


def test_otioz_bundle(tmp_path, media):
    seq = _seq("24000/1001", "01:00:00:00", False, media)
    tl = otio_timeline(seq)
    path = tmp_path / "bundle.otioz"
    otio.adapters.write_to_file(tl, str(path), adapter_name="otioz")
    loaded = load_timeline(path)
    assert loaded.format == "otioz" and loaded.timebase.start_frame == 86400
    clip = loaded.timeline.find_clips()[0]
    local = loaded.resolve_media_path(clip.media_reference.target_url)
    assert local.is_file() and local.read_bytes() == media.path.read_bytes()
    # the unpacked bundle lives as long as the LoadedTimeline (a long-running engine must not fill /tmp)
    import gc

    folder = loaded.media_root
    del loaded, clip
    gc.collect()
    assert not folder.exists()


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"<xmeml version='5'><sequence><name>x</name>", "not well-formed"),
        (b"<?xml version='1.0'?><html><body/></html>", "root <html>"),
        (b'{"hello": 1}', "not an OpenTimelineIO"),
        (b'{"OTIO_SCHEMA": "Timeline.1", "tracks": ', "damaged"),
        (b"\x00\x01\x02garbage" * 10, "its content is not"),
        (b"PK\x03\x04garbage", "damaged zip"),
        (b"<xmeml version='5'><bin><name>b</name></bin></xmeml>", "no <sequence>"),
    ],
)
def test_corrupt_or_unknown_files_fail_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad.otio"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_timeline(path)
    assert message in err.value.message
    assert "\n" not in err.value.message and str(path) in err.value.message


def test_unknown_kind_of_file(tmp_path):
    path = tmp_path / "clip.mov"
    path.write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"\x00" * 64)
    with pytest.raises(InputError, match="unknown timeline format"):
        load_timeline(path)


def test_missing_file_and_zip_without_content(tmp_path):
    with pytest.raises(InputError, match="no such timeline"):
        load_timeline(tmp_path / "nope.otio")
    z = tmp_path / "x.otioz"
    with zipfile.ZipFile(z, "w") as bundle:
        bundle.writestr("other.txt", "hi")
    with pytest.raises(InputError, match="without content.otio"):
        load_timeline(z)


def test_unsupported_rate_is_a_clear_error(tmp_path, media):
    seq = _seq("25", "00:00:00:00", False, media)
    text = xmeml_string(seq).replace("<timebase>25</timebase>", "<timebase>1000</timebase>")
    path = tmp_path / "rate.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TimelineError, match="unsupported frame rate"):
        load_timeline(path)


def test_resolve_drop_frame_label_and_missing_drop_frame_is_not_guessed(tmp_path, media):
    seq = _seq("30000/1001", "01:00:00;00", True, media)
    tl = otio_timeline(seq, resolve_style=True)
    assert tl.metadata["Resolve_OTIO"]["Timeline Frame Rate"] == "29.97 DF"
    path = tmp_path / "df.otio"
    otio.adapters.write_to_file(tl, str(path))
    assert load_timeline(path).timebase.drop_frame is True
    # the same timeline with no drop-frame statement anywhere: non-drop, never inferred from 29.97
    tl.metadata.clear()
    otio.adapters.write_to_file(tl, str(path))
    loaded = load_timeline(path)
    assert loaded.timebase.drop_frame is False and loaded.timebase.start_frame == 107892


def test_xmeml_without_displayformat_uses_its_own_label(tmp_path, media):
    seq = _seq("30000/1001", "01:00:00;00", True, media)
    text = xmeml_string(seq).replace("<displayformat>DF</displayformat>", "")
    path = tmp_path / "nodisplay.xml"
    path.write_text(text, encoding="utf-8")
    assert load_timeline(path).timebase.drop_frame is True  # "01:00:00;00" in the document itself


def test_xmeml_fixes(tmp_path, media):
    stereo = write_click_wav(tmp_path / "st.wav", 6, [1.0], channels=2)
    nest = SequenceSpec.at(
        "Nest",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 50, media.path, track="A1", name="inner a"),
            ClipSpec(50, 100, media.path, source_in=10, track="A1", name="inner b"),
            ClipSpec(0, 100, media.path, track="V1", name="inner v"),
        ],
    )
    seq = SequenceSpec.at(
        "Fixes",
        "25",
        "01:00:00:00",
        [
            ClipSpec(0, 25, media.path, track="A1", name="off", enabled=False),
            ClipSpec(25, 75, media.path, track="A1", name="fast", speed=2.0, source_in=20),
            ClipSpec(0, 60, nest=nest, source_in=20, track="A2", name="nested"),
            ClipSpec(0, 60, nest=nest, source_in=20, track="V1", name="nested"),
            ClipSpec(0, 50, stereo.path, track="A3", channel=1, channels=2, name="L"),
            ClipSpec(0, 50, stereo.path, track="A4", channel=2, channels=2, name="R"),
            ClipSpec(80, 90, media.path, track="A1", name="quiet", gain=0.5),
        ],
        muted_tracks=["A4"],
    )
    path = write_xmeml(tmp_path / "fixes.xml", seq)
    released = otio.adapters.read_from_file(str(path), adapter_name="fcp_xml")
    fixed = load_timeline(path).timeline
    # released adapter: disabled clip still enabled, nest empty, exploded channel 2 dropped
    rel_audio = [t for t in released.tracks if t.kind == "Audio"]
    assert len(rel_audio) == 3
    assert all(c.enabled for c in released.find_clips())
    audio = [t for t in fixed.tracks if t.kind == "Audio"]
    assert len(audio) == 4
    clips = {c.name: c for c in fixed.find_clips(shallow_search=False)}
    assert clips["off"].enabled is False
    assert audio[3].enabled is False  # muted track
    fast = clips["fast"]
    warp = [e for e in fast.effects if isinstance(e, otio.schema.LinearTimeWarp)]
    assert warp and warp[0].time_scalar == 2.0
    start = fast.source_range.start_time.value - fast.media_reference.available_range.start_time.value
    assert start == 20  # in/out count retimed frames: source frame = in x speed
    assert list(clips["L"].metadata["captionbridge"]["channels"]) == [0]
    assert list(clips["R"].metadata["captionbridge"]["channels"]) == [1]
    assert clips["quiet"].metadata["captionbridge"]["gain"] == 0.5
    nested = [c for c in audio[1] if isinstance(c, otio.schema.Stack)]
    assert len(nested) == 1 and nested[0].source_range.start_time.value == 20
    assert [t.kind for t in nested[0]] == ["Video", "Audio"]
    assert {c.name for c in nested[0].find_clips()} == {"inner a", "inner b", "inner v"}


def test_fixed_reader_matches_released_on_plain_sequences(tmp_path, media):
    """The memoised context and shared media references change speed, not results."""
    clips = [
        ClipSpec(i * 12, i * 12 + 10, media.path, source_in=i % 7, track=f"A{1 + i % 3}") for i in range(60)
    ]
    seq = SequenceSpec.at("plain", "24000/1001", "01:00:00:00", clips)
    text = xmeml_string(seq)
    released = otio.adapters.read_from_string(text, adapter_name="fcp_xml")
    fixed, info = read_xmeml(text)
    assert info.start_frame == 86400 and info.drop_frame is False and info.ntsc
    rel = [(c.name, c.source_range, c.range_in_parent()) for c in released.find_clips()]
    fix = [(c.name, c.source_range, c.range_in_parent()) for c in fixed.find_clips()]
    assert rel == fix and len(fix) == 60


def test_fcpxml_exact_rates_and_start(tmp_path, media):
    seq = _seq("24000/1001", "01:00:00:00", False, media)
    path = write_fcpxml(tmp_path / "x.fcpxml", seq, "1.9")
    # the released adapter: 23 fps, and the start timecode becomes a one-hour gap
    released = otio.adapters.read_from_file(str(path), adapter_name="fcpx_xml")
    rel_clip = released.find_clips()[0]
    assert rel_clip.source_range.duration.rate == 23
    loaded = load_timeline(path)
    clip = loaded.timeline.find_clips()[0]
    assert clip.source_range.duration.rate == pytest.approx(24000 / 1001, abs=1e-12)
    assert clip.range_in_parent().start_time.value == 0
    assert loaded.timebase.start_timecode == "01:00:00:00"


def test_media_urls(tmp_path):
    assert media_path_from_url("file://localhost/Volumes/My%20Drive/%E7%B4%A0%E6%9D%90.wav") == Path(
        "/Volumes/My Drive/素材.wav"
    )
    assert media_path_from_url("file:///tmp/a%20b.wav") == Path("/tmp/a b.wav")
    assert media_path_from_url("/bare/path with space.wav") == Path("/bare/path with space.wav")
    assert media_path_from_url("media/x.wav", tmp_path) == tmp_path / "media/x.wav"
    win = media_path_from_url("C:\\Media\\clip.wav")
    assert "clip.wav" in str(win) and not win.exists()


def test_xmeml_with_several_sequences_uses_the_first_and_says_so(tmp_path, media):
    one = xmeml_string(_seq("25", "01:00:00:00", False, media, name="First"))
    two = xmeml_string(_seq("25", "02:00:00:00", False, media, name="Second"))
    body = lambda text: text[text.index("<sequence") : text.rindex("</xmeml>")]  # noqa: E731
    both = (
        '<?xml version="1.0"?><xmeml version="5"><bin><name>Bin</name><children>'
        + body(one)
        + body(two).replace('id="sequence-1"', 'id="sequence-9"').replace("file-1", "file-9")
        + "</children></bin></xmeml>"
    )
    path = tmp_path / "bin.xml"
    path.write_text(both, encoding="utf-8")
    loaded = load_timeline(path)
    assert loaded.name == "First" and loaded.timebase.start_timecode == "01:00:00:00"
    assert any("2 sequences" in w and "'First'" in w for w in loaded.warnings)


def test_otiod_bundle(tmp_path, media):
    seq = _seq("25", "01:00:00:00", False, media)
    path = tmp_path / "bundle.otiod"
    otio.adapters.write_to_file(otio_timeline(seq), str(path), adapter_name="otiod")
    loaded = load_timeline(path)
    assert loaded.format == "otiod" and loaded.timebase.start_frame == 90000
    clip = loaded.timeline.find_clips()[0]
    assert loaded.resolve_media_path(clip.media_reference.target_url).is_file()


def test_editor_drop_frame_setting_overrides_a_silent_document(tmp_path, media):
    seq = _seq("30000/1001", "01:00:00;00", True, media)
    tl = otio_timeline(seq, resolve_style=True)
    tl.metadata.clear()  # a Resolve OTIO that does not say DF
    path = tmp_path / "silent.otio"
    otio.adapters.write_to_file(tl, str(path))
    assert load_timeline(path).timebase.start_timecode == "00:59:56:12"  # frame 107892 read as NDF
    loaded = load_timeline(path, drop_frame=True)
    assert (
        loaded.timebase.drop_frame and loaded.timebase.start_timecode == "01:00:00;00" and not loaded.warnings
    )
    xml = write_xmeml(tmp_path / "df.xml", seq)
    assert any("editor's setting" in w for w in load_timeline(xml, drop_frame=False).warnings)
    with pytest.raises(TimelineError, match="drop-frame does not exist"):
        load_timeline(
            write_xmeml(tmp_path / "25.xml", _seq("25", "01:00:00:00", False, media)), drop_frame=True
        )
