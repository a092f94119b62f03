"""core.timeline.regions: timeline -> audio regions (trims, gaps, disabled, muted, nests, speed, channels,
gain), cut points, missing media."""

from fractions import Fraction

import opentimelineio as otio
import pytest
from fixtures.timelines import (
    ClipSpec,
    SequenceSpec,
    add_bwf_timecode,
    write_click_wav,
    write_fcpxml,
    write_otio,
    write_xmeml,
)

from captionbridge.adapters.timeline_read import load_timeline
from captionbridge.core.errors import TimelineError
from captionbridge.core.timeline.regions import (
    audio_regions,
    describe_missing,
    missing_media,
    skipped_clips,
    video_cut_points,
)


@pytest.fixture
def wavs(tmp_path):
    folder = tmp_path / "Media 素材 dir"
    return (
        write_click_wav(folder / "interview 采访.wav", 12, [1.0], sample_rate=48000),
        write_click_wav(folder / "music.wav", 12, [2.0], sample_rate=44100, channels=2),
    )


def _edit(a, b, rate="24000/1001", tc="01:00:00:00", drop=False):
    nest = SequenceSpec.at(
        "Nest 嵌套",
        rate,
        "00:00:00:00",
        [
            ClipSpec(0, 40, a.path, source_in=0, track="A1", name="n1"),
            ClipSpec(40, 120, a.path, source_in=100, track="A1", name="n2"),
            ClipSpec(0, 120, a.path, track="V1", name="nv"),
        ],
    )
    return SequenceSpec.at(
        "Edit",
        rate,
        tc,
        [
            ClipSpec(0, 48, a.path, source_in=24, track="A1", name="first"),
            ClipSpec(72, 120, a.path, source_in=0, track="A1", name="after gap"),
            ClipSpec(120, 150, a.path, source_in=200, track="A1", name="disabled", enabled=False),
            ClipSpec(150, 230, nest=nest, source_in=30, track="A1", name="nest"),
            ClipSpec(0, 200, b.path, track="A2", name="music"),
            ClipSpec(0, 100, a.path, track="V1", name="v1"),
            ClipSpec(100, 150, a.path, track="V1", name="v2"),
            ClipSpec(150, 230, nest=nest, source_in=30, track="V1", name="nest"),
        ],
        drop_frame=drop,
    )


@pytest.mark.parametrize("fmt", ["xmeml", "otio", "resolve"])
def test_regions_trims_gap_disabled_nest(tmp_path, wavs, fmt):
    a, b = wavs
    seq = _edit(a, b)
    path = {
        "xmeml": lambda: write_xmeml(tmp_path / "e.xml", seq),
        "otio": lambda: write_otio(tmp_path / "e.otio", seq),
        "resolve": lambda: write_otio(tmp_path / "e.otio", seq, resolve_style=True),
    }[fmt]()
    loaded = load_timeline(path)
    rate = Fraction(24000, 1001)
    regions = audio_regions(loaded, "A1")
    got = [
        (r.clip_name, r.timeline_start_frame, r.timeline_end_frame, r.source_offset, r.nest_path)
        for r in regions
    ]
    assert got == [
        ("first", 0, 48, 24 / rate, ()),
        ("after gap", 72, 120, Fraction(0), ()),
        # the nest starts at frame 150 showing nest frames 30..110: n1 from its frame 30, then n2 from nest 40
        ("n1", 150, 160, 30 / rate, ("Nest 嵌套",)),
        ("n2", 160, 230, 100 / rate, ("Nest 嵌套",)),
    ]
    assert all(r.source_path == a.path for r in regions)
    assert all(r.track_label == "A1" and r.speed == 1 and r.timebase == loaded.timebase for r in regions)
    skipped = skipped_clips(loaded, ["A1"])
    assert [(s.clip_name, s.reason) for s in skipped] == [("disabled", "disabled")]
    both = audio_regions(loaded)
    assert len(both) == 5 and {r.track_label for r in both} == {"A1", "A2"}
    music = [r for r in both if r.clip_name == "music"][0]
    assert music.source_path == b.path and music.timeline_end_frame == 200
    assert audio_regions(loaded, "A2") == [music]


def test_nest_trim_clamps_clips_that_run_past_it(tmp_path, wavs):
    a, b = wavs
    nest = SequenceSpec.at(
        "Long nest",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 500, a.path, track="A1", name="long inner"),
        ],
    )
    seq = SequenceSpec.at(
        "Outer",
        "25",
        "01:00:00:00",
        [
            ClipSpec(10, 60, nest=nest, source_in=100, track="A1", name="trimmed nest"),
        ],
    )
    for path in (write_xmeml(tmp_path / "n.xml", seq), write_otio(tmp_path / "n.otio", seq)):
        regions = audio_regions(load_timeline(path))
        assert [(r.timeline_start_frame, r.timeline_end_frame, r.source_offset) for r in regions] == [
            (10, 60, Fraction(100, 25))
        ]


def test_muted_track_and_track_selection(tmp_path, wavs):
    a, b = wavs
    seq = SequenceSpec.at(
        "Mute",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 50, a.path, track="A1"),
            ClipSpec(0, 50, b.path, track="A2"),
        ],
        muted_tracks=["A2"],
    )
    loaded = load_timeline(write_xmeml(tmp_path / "m.xml", seq))
    assert [r.track_label for r in audio_regions(loaded)] == ["A1"]
    assert audio_regions(loaded, "A2") == []
    assert skipped_clips(loaded, "A2")[0].reason == "track muted"
    with pytest.raises(TimelineError, match="no audible audio clips"):
        audio_regions(loaded, "A2", require_audio=True)
    with pytest.raises(TimelineError, match=r"no audio track 'A7'.*A1, A2"):
        audio_regions(loaded, "A1,A7")


def test_speed_channels_gain(tmp_path, wavs):
    a, b = wavs
    seq = SequenceSpec.at(
        "Fx",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 50, a.path, track="A1", speed=2.0, source_in=10, name="double"),
            ClipSpec(0, 50, b.path, track="A2", channel=1, channels=2, name="L", gain=0.5),
            ClipSpec(0, 50, b.path, track="A3", channel=2, channels=2, name="R"),
        ],
    )
    for path in (write_xmeml(tmp_path / "fx.xml", seq), write_otio(tmp_path / "fx.otio", seq)):
        regions = {r.clip_name: r for r in audio_regions(load_timeline(path))}
        assert regions["double"].speed == 2 and regions["double"].source_offset == Fraction(10, 25)
        assert regions["double"].source_duration == 4
        assert regions["L"].channels == (0,) and regions["L"].gain == 0.5
        assert regions["R"].channels == (1,) and regions["R"].gain == 1.0


def test_reversed_and_variable_speed_are_reported_per_clip(tmp_path, wavs):
    a, _ = wavs
    seq = SequenceSpec.at(
        "Rev",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 50, a.path, track="A1", speed=2.0, name="rev"),
            ClipSpec(50, 80, a.path, track="A1", speed=2.0, name="var"),
        ],
    )
    text = (tmp_path / "x").parent / "rev.xml"
    write_xmeml(text, seq)
    xml = text.read_text(encoding="utf-8")
    first, second = xml.split("<name>reverse</name><value>FALSE</value>", 1)
    xml = first + "<name>reverse</name><value>TRUE</value>" + second
    idx = xml.rfind("<name>variablespeed</name><valuemin>0</valuemin><valuemax>1</valuemax><value>0</value>")
    xml = xml[:idx] + xml[idx:].replace("<value>0</value>", "<value>1</value>", 1)
    text.write_text(xml, encoding="utf-8")
    loaded = load_timeline(text)
    regions = audio_regions(loaded)
    assert [r.clip_name for r in regions] == ["var"]
    assert any("variable speed" in w for w in regions[0].warnings)
    assert [(s.clip_name, s.reason) for s in skipped_clips(loaded)] == [
        ("rev", "reverse playback is not supported")
    ]
    assert any("rev" in w and "reverse" in w for w in loaded.warnings)


def test_resolve_source_counted_from_media_timecode(tmp_path, wavs):
    """Resolve counts source frames from the media's timecode origin; with no available_range the reader takes
    the origin from the file itself (BWF time_reference)."""
    a, _ = wavs
    tc_wav = write_click_wav(tmp_path / "tc.wav", 12, [3.0])
    add_bwf_timecode(tc_wav.path, 3600)  # the recording starts at 01:00:00:00
    seq = SequenceSpec.at(
        "TC",
        "24",
        "01:00:00:00",
        [
            ClipSpec(0, 48, tc_wav.path, source_in=24, media_tc_frame=86400, track="A1"),
        ],
    )
    with_range = load_timeline(write_otio(tmp_path / "r1.otio", seq, resolve_style=True))
    without = load_timeline(write_otio(tmp_path / "r2.otio", seq, resolve_style=True, available_range=False))
    clip = without.timeline.find_clips()[0]
    assert clip.media_reference.available_range is None
    assert clip.source_range.start_time.value == 86424
    for loaded in (with_range, without):
        (region,) = audio_regions(loaded)
        assert region.source_offset == 1 and region.media_start == 3600


def test_video_cut_points(tmp_path, wavs):
    a, b = wavs
    seq = _edit(a, b)
    for path in (write_xmeml(tmp_path / "c.xml", seq), write_otio(tmp_path / "c.otio", seq)):
        loaded = load_timeline(path)
        # v1 | v2 at 100, nest from 150 (its inner video clip spans the whole nest), end of picture at 230
        assert video_cut_points(loaded) == [100, 150]


def test_missing_media_lists_every_clip_with_timecode(tmp_path, wavs):
    a, _ = wavs
    gone = tmp_path / "gone 丢失.wav"
    seq = SequenceSpec.at(
        "Missing",
        "30000/1001",
        "01:00:00;00",
        [
            ClipSpec(0, 30, a.path, track="A1"),
            ClipSpec(30, 60, gone, track="A1", name="lost one"),
            ClipSpec(1800, 1830, gone, track="A2", name="lost again"),
            ClipSpec(60, 90, tmp_path / "other.wav", track="A1", name="lost two"),
        ],
        drop_frame=True,
    )
    loaded = load_timeline(write_xmeml(tmp_path / "miss.xml", seq))
    missing = missing_media(audio_regions(loaded))
    assert [(m["clip"], m["timecode"], m["track"]) for m in missing] == [
        ("lost one", "01:00:01;00", "A1"),
        ("lost two", "01:00:02;00", "A1"),
        ("lost again", "01:01:00;02", "A2"),
    ]
    line = describe_missing(missing)
    assert "2 media files are missing" in line and str(gone) in line and "1 more use" in line
    assert "\n" not in line


def test_fcpxml_regions(tmp_path, wavs):
    a, b = wavs
    seq = SequenceSpec.at(
        "FCP",
        "30000/1001",
        "01:00:00;00",
        [
            ClipSpec(0, 48, a.path, source_in=12, track="A1", name="one"),
            ClipSpec(60, 90, a.path, source_in=0, track="A1", name="two", enabled=False),
            ClipSpec(10, 70, b.path, track="A2", name="music"),
        ],
        drop_frame=True,
    )
    for path in (
        write_fcpxml(tmp_path / "f.fcpxml", seq, "1.8"),
        write_fcpxml(tmp_path / "f2.fcpxmld", seq, "1.10", bundle=True, video_assets=True),
    ):
        loaded = load_timeline(path)
        regions = audio_regions(loaded)
        assert [
            (r.clip_name, r.track_label, r.timeline_start_frame, r.timeline_end_frame) for r in regions
        ] == [("one", "A1", 0, 48), ("music", "A2", 10, 70)]
        assert regions[0].source_offset == Fraction(12 * 1001, 30000)
        assert [s.clip_name for s in skipped_clips(loaded)] == ["two"]
        assert loaded.timebase.drop_frame and loaded.timebase.start_frame == 107892


def test_region_walk_is_linear(tmp_path, wavs):
    """4,000 clips on two tracks: one range_of_all_children pass per track (no per-clip walks)."""
    a, _ = wavs
    tl = otio.schema.Timeline("big", global_start_time=otio.opentime.RationalTime(0, 25))
    for t in range(2):
        track = otio.schema.Track(f"A{t + 1}", kind="Audio")
        ref = otio.schema.ExternalReference(target_url=str(a.path))
        for i in range(2000):
            track.append(
                otio.schema.Clip(
                    f"c{i}",
                    media_reference=ref,
                    source_range=otio.opentime.TimeRange(
                        otio.opentime.RationalTime(i % 50, 25), otio.opentime.RationalTime(5, 25)
                    ),
                )
            )
        tl.tracks.append(track)
    path = tmp_path / "big.otio"
    otio.adapters.write_to_file(tl, str(path))
    loaded = load_timeline(path)
    import time

    t0 = time.perf_counter()
    regions = audio_regions(loaded)
    elapsed = time.perf_counter() - t0
    assert len(regions) == 4000 and regions[-1].timeline_end_frame == 10000
    assert elapsed < 10  # generous: a quadratic walk takes far longer; the benchmark measures the real figure


def test_xmeml_transition_cuts_at_its_centre(tmp_path, wavs):
    a, b = wavs
    seq = SequenceSpec.at(
        "X",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 55, a.path, source_in=0, track="A1", name="out"),
            ClipSpec(55, 100, b.path, source_in=25, track="A1", name="in"),
        ],
    )
    path = write_xmeml(tmp_path / "x.xml", seq)
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "<start>0</start><end>55</end><in>0</in><out>55</out>",
        "<start>0</start><end>-1</end><in>0</in><out>60</out>",
    )
    transition = (
        "<transitionitem><start>50</start><end>60</end><alignment>center</alignment>"
        "<rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate><effect><name>Cross Fade (+3dB)</name>"
        "<effectid>KGAudioTransCrossFade3dB</effectid><effecttype>transition</effecttype>"
        "<mediatype>audio</mediatype></effect></transitionitem>"
    )
    text = text.replace(
        "<start>55</start><end>100</end><in>25</in><out>70</out>",
        "<start>-1</start><end>100</end><in>20</in><out>70</out>",
    )
    first_end = text.index("</clipitem>", text.index("<name>out</name>")) + len("</clipitem>")
    text = text[:first_end] + transition + text[first_end:]
    path.write_text(text, encoding="utf-8")
    loaded = load_timeline(path)
    regions = audio_regions(loaded)
    # the edit sounds as a cut at the transition's centre (frame 55); the fade itself is not mixed
    assert [
        (r.clip_name, r.timeline_start_frame, r.timeline_end_frame, r.source_offset) for r in regions
    ] == [("out", 0, 55, Fraction(0)), ("in", 55, 100, Fraction(25, 25))]


@pytest.mark.parametrize("fmt", ["xmeml", "otio", "resolve"])
def test_sped_up_clip_inside_a_head_trimmed_nest(tmp_path, wavs, fmt):
    """A 2x clip in a nest whose head is trimmed by 25 frames: the cut-off head consumed 25 frames x 2 = 2 s
    of source, so the region starts 2 s (not 1 s) after the clip's own source in."""
    a, b = wavs
    nest = SequenceSpec.at(
        "Fast nest",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 100, a.path, source_in=10, speed=2.0, track="A1", name="fast inner"),
            ClipSpec(0, 100, a.path, track="V1", name="nv"),
        ],
    )
    seq = SequenceSpec.at(
        "Outer",
        "25",
        "01:00:00:00",
        [
            ClipSpec(50, 100, nest=nest, source_in=25, track="A1", name="trimmed nest"),
            ClipSpec(50, 100, nest=nest, source_in=25, track="V1", name="trimmed nest"),
        ],
    )
    path = {
        "xmeml": lambda: write_xmeml(tmp_path / "f.xml", seq),
        "otio": lambda: write_otio(tmp_path / "f.otio", seq),
        "resolve": lambda: write_otio(tmp_path / "f.otio", seq, resolve_style=True),
    }[fmt]()
    (region,) = audio_regions(load_timeline(path))
    assert (region.clip_name, region.timeline_start_frame, region.timeline_end_frame) == (
        "fast inner",
        50,
        100,
    )
    assert region.speed == 2
    assert region.source_offset == Fraction(10, 25) + Fraction(25, 25) * 2  # 0.4 s + 2 s
    assert region.source_duration == 4  # 50 frames at 2x
