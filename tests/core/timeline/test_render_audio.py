"""core.timeline.render_audio: every click marker lands within one sample at 16 kHz and 48 kHz, at every
editor rate, from xmeml, OTIO and Resolve-style OTIO; speed, channels, gain, nests, mutes, missing media, WAV
output, decode_region."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fixtures.timelines import (
    ClipSpec,
    SequenceSpec,
    expected_click_positions,
    find_clicks,
    write_click_wav,
    write_fcpxml,
    write_otio,
    write_xmeml,
)

from captionbridge.adapters.timeline_read import load_timeline
from captionbridge.core.errors import InputError, MissingMediaError
from captionbridge.core.timeline.regions import audio_regions
from captionbridge.core.timeline.render_audio import decode_region, region_sample_range, render_audio

RATES = [
    ("24000/1001", "01:00:00:00", False),
    ("30000/1001", "01:00:00;00", True),
    ("25", "01:00:00:00", False),
    ("50", "10:00:00:00", False),
    ("60000/1001", "01:00:00:00", False),
]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("render") / "Media 素材 with spaces"
    a = write_click_wav(
        folder / "dialogue 对白.wav",
        10,
        [0.5, 1.25, 2.0, 3.3, 4.9, 6.1, 7.77, 9.2],
        sample_rate=48000,
        noise=0.002,
        seed=1,
    )
    b = write_click_wav(
        folder / "room tone.wav",
        10,
        [0.8, 2.6, 5.5, 8.05],
        sample_rate=44100,
        channels=2,
        noise=0.002,
        seed=2,
    )
    c = write_click_wav(folder / "foley.wav", 10, [1.1, 4.4, 6.6], sample_rate=32000)
    return {w.path: w for w in (a, b, c)}


def _edit(rate, tc, drop, media):
    a, b, c = list(media)
    r = Fraction(rate)

    def f(seconds):
        return int(seconds * r)

    return SequenceSpec.at(
        "Render",
        rate,
        tc,
        [
            ClipSpec(0, f(2.1), a, source_in=f(0.3), track="A1"),  # trimmed head
            ClipSpec(f(2.6), f(5.0), a, source_in=f(3.0), track="A1"),  # after a gap
            ClipSpec(f(5.0), f(6.0), c, source_in=f(5.5), track="A1", enabled=False),  # disabled: silent
            ClipSpec(f(6.0), f(9.0), b, source_in=f(4.0), track="A2"),
            ClipSpec(f(0.2), f(2.0), c, source_in=f(3.9), track="A3"),
            ClipSpec(0, f(9.0), a, track="V1"),
        ],
        drop_frame=drop,
    )


def _assert_clicks(signal, expected, sample_rate):
    found = find_clicks(signal, threshold=0.2, min_gap=int(sample_rate * 0.05))
    assert len(found) == len(expected), (found, [float(e) for e in expected])
    for got, want in zip(found, expected):
        assert abs(got - want) <= 1, (got, float(want))


@pytest.mark.parametrize("rate,tc,drop", RATES, ids=[r[0] for r in RATES])
@pytest.mark.parametrize("fmt", ["xmeml", "otio", "resolve"])
def test_click_markers_land_within_one_sample(tmp_path, media, rate, tc, drop, fmt):
    seq = _edit(rate, tc, drop, media)
    path = {
        "xmeml": lambda: write_xmeml(tmp_path / "t.xml", seq),
        "otio": lambda: write_otio(tmp_path / "t.otio", seq),
        "resolve": lambda: write_otio(tmp_path / "t.otio", seq, resolve_style=True),
    }[fmt]()
    loaded = load_timeline(path)
    regions = audio_regions(loaded)
    assert len(regions) == 4
    for sr in (16000, 48000):
        result = render_audio(regions, loaded.duration_frames, loaded.timebase, sr)
        n = -(-loaded.duration_frames * sr * Fraction(rate).denominator // Fraction(rate).numerator)
        assert result.num_samples == len(result.samples) == n
        assert result.samples.dtype == np.float32
        expected = expected_click_positions(seq, media, sr)
        assert len(expected) >= 6
        _assert_clicks(result.samples, expected, sr)


def test_fcpxml_render(tmp_path, media):
    seq = _edit("24000/1001", "01:00:00:00", False, media)
    loaded = load_timeline(write_fcpxml(tmp_path / "t.fcpxml", seq, "1.10"))
    result = render_audio(audio_regions(loaded), loaded.duration_frames, loaded.timebase, 16000)
    _assert_clicks(result.samples, expected_click_positions(seq, media, 16000), 16000)


def test_nested_sequence_audio_lands(tmp_path, media):
    a = list(media)[0]
    wav = media[a]
    nest = SequenceSpec.at(
        "Nest",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 100, a, source_in=0, track="A1"),  # nest frames 0-100 = source 0-4 s
            ClipSpec(100, 200, a, source_in=150, track="A1"),  # nest frames 100-200 = source 6-10 s
            ClipSpec(0, 200, a, track="V1"),
        ],
    )
    seq = SequenceSpec.at(
        "Outer",
        "25",
        "01:00:00:00",
        [
            ClipSpec(50, 150, nest=nest, source_in=25, track="A1"),  # shows nest frames 25-125
            ClipSpec(50, 150, nest=nest, source_in=25, track="V1"),
        ],
    )
    expected = []
    for click in wav.click_seconds():
        if Fraction(1) <= click < 4:  # nest frames 25..100 -> outer 50..125
            expected.append((2 + (click - 1)) * 16000)
        if Fraction(6) <= click < 7:  # nest frames 100..125 -> outer 125..150
            expected.append((5 + (click - 6)) * 16000)
    for path in (write_xmeml(tmp_path / "n.xml", seq), write_otio(tmp_path / "n.otio", seq)):
        loaded = load_timeline(path)
        result = render_audio(audio_regions(loaded), loaded.duration_frames, loaded.timebase, 16000)
        _assert_clicks(result.samples, sorted(expected), 16000)


def test_speed_change_places_clicks(tmp_path, media):
    a = list(media)[0]
    seq = SequenceSpec.at(
        "Speed",
        "25",
        "00:00:00:00",
        [
            ClipSpec(
                0, 100, a, source_in=50, speed=2.0, track="A1"
            ),  # 4 s at 2x from source 2 s: source 2..10 s
        ],
    )
    expected = [(c - 2) / 2 * 16000 for c in media[a].click_seconds() if 2 <= c < 10]
    for path in (write_xmeml(tmp_path / "s.xml", seq), write_otio(tmp_path / "s.otio", seq)):
        loaded = load_timeline(path)
        (region,) = audio_regions(loaded)
        assert region.speed == 2
        result = render_audio([region], loaded.duration_frames, loaded.timebase, 16000)
        found = find_clicks(result.samples, threshold=0.1, min_gap=800)
        assert len(found) == len(expected)
        assert all(abs(g - w) <= 1 for g, w in zip(found, expected)), (found, expected)


def test_exploded_channels_gain_and_mute(tmp_path):
    left_only = write_click_wav(tmp_path / "stereo.wav", 4, [1.0, 3.0], channels=2, click_channel=0)
    right_only = write_click_wav(tmp_path / "stereo2.wav", 4, [2.0], channels=2, click_channel=1)
    # Premiere's stereo tracks as exploded pairs: A1+A2 (xmeml) = editor track A1, A3+A4 = A2; A5 (mono) = A3
    seq = SequenceSpec.at(
        "Chan",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 100, left_only.path, track="A1", channel=1, channels=2, gain=0.5),
            ClipSpec(0, 100, left_only.path, track="A2", channel=2, channels=2),
            ClipSpec(0, 100, right_only.path, track="A3", channel=1, channels=2),
            ClipSpec(0, 100, right_only.path, track="A4", channel=2, channels=2),
            ClipSpec(0, 100, right_only.path, track="A5", channel=2, channels=2),
        ],
        muted_tracks=["A5"],
    )
    loaded = load_timeline(write_xmeml(tmp_path / "c.xml", seq))
    regions = audio_regions(loaded)
    assert [(r.track_label, r.channels) for r in regions] == [
        ("A1", (0,)),
        ("A1", (1,)),
        ("A2", (0,)),
        ("A2", (1,)),
    ]
    out = render_audio(regions, loaded.duration_frames, loaded.timebase, 48000).samples
    # left clicks once, at half level (gain 0.5 on channel 1; channel 2 is silent there); right click once
    assert out[48000] == pytest.approx(0.4, abs=1e-4) and out[3 * 48000] == pytest.approx(0.4, abs=1e-4)
    assert out[2 * 48000] == pytest.approx(0.8, abs=1e-4)
    assert find_clicks(out, 0.2) == [48000, 96000, 144000]
    first = render_audio(audio_regions(loaded, "A1"), loaded.duration_frames, loaded.timebase, 48000).samples
    assert find_clicks(first, 0.2) == [48000, 144000]
    assert render_audio(audio_regions(loaded, "A3"), loaded.duration_frames, loaded.timebase, 48000).peak == 0


def test_sum_does_not_clip_and_wav_matches_memory(tmp_path):
    loud = write_click_wav(tmp_path / "loud.wav", 2, [1.0])
    seq = SequenceSpec.at(
        "Sum",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 50, loud.path, track="A1"),
            ClipSpec(0, 50, loud.path, track="A2"),
        ],
    )
    loaded = load_timeline(write_otio(tmp_path / "s.otio", seq))
    regions = audio_regions(loaded)
    mem = render_audio(regions, loaded.duration_frames, loaded.timebase, 48000)
    assert mem.peak == pytest.approx(1.6, abs=1e-4)
    wav = tmp_path / "out dir 输出" / "mix.wav"
    wav.parent.mkdir()
    disk = render_audio(regions, loaded.duration_frames, loaded.timebase, 48000, out=wav)
    assert disk.samples is None and disk.path == wav and disk.peak == pytest.approx(1.6, abs=1e-4)
    data, sr = sf.read(str(wav), dtype="float32")
    assert sr == 48000 and data.ndim == 1 and len(data) == mem.num_samples
    assert np.array_equal(data, mem.samples)
    assert not list(wav.parent.glob("*.part"))


def test_decode_region_matches_the_full_render(tmp_path, media):
    seq = _edit("24000/1001", "01:00:00:00", False, media)
    loaded = load_timeline(write_xmeml(tmp_path / "d.xml", seq))
    regions = audio_regions(loaded, "A1")
    full = render_audio(regions, loaded.duration_frames, loaded.timebase, 16000).samples
    for region in regions:
        lo, hi = region_sample_range(region, 16000)
        alone = decode_region(region, 16000)
        assert alone.dtype == np.float32 and len(alone) == hi - lo
        np.testing.assert_allclose(alone, full[lo:hi], atol=1e-6)


def test_missing_media_error_and_allow_missing(tmp_path, media):
    a = list(media)[0]
    gone = tmp_path / "offline 离线.wav"
    seq = SequenceSpec.at(
        "Miss",
        "30000/1001",
        "01:00:00;00",
        [
            ClipSpec(0, 60, a, track="A1", name="here"),
            ClipSpec(60, 120, gone, track="A1", name="away"),
            ClipSpec(1800, 1860, tmp_path / "other.wav", track="A2", name="also away"),
        ],
        drop_frame=True,
    )
    loaded = load_timeline(write_xmeml(tmp_path / "m.xml", seq))
    regions = audio_regions(loaded)
    with pytest.raises(MissingMediaError) as err:
        render_audio(regions, loaded.duration_frames, loaded.timebase)
    message = err.value.message
    assert str(gone) in message and "away" in message and "01:00:02;00" in message
    assert "also away" in message and "01:01:00;02" in message and "--allow-missing" in message
    assert len(err.value.missing) == 2 and err.value.exit_code != 0
    ok = render_audio(regions, loaded.duration_frames, loaded.timebase, 16000, allow_missing=True)
    assert [m["clip"] for m in ok.missing] == ["away", "also away"]
    assert ok.regions_rendered == 1 and any("missing" in w for w in ok.warnings)
    start, end = (int(Fraction(60 * 1001 * 16000, 30000)) + 1, int(Fraction(120 * 1001 * 16000, 30000)))
    assert not ok.samples[start:end].any()


def test_undecodable_media_names_file_and_clip(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    seq = SequenceSpec.at("Bad", "25", "00:00:00:00", [ClipSpec(0, 25, bad, track="A1", name="broken clip")])
    loaded = load_timeline(write_otio(tmp_path / "b.otio", seq))
    with pytest.raises(InputError) as err:
        render_audio(audio_regions(loaded), loaded.duration_frames, loaded.timebase)
    assert "broken.wav" in err.value.message and "broken clip" in err.value.message


def test_compressed_sources_flac_and_aac(tmp_path):
    """FLAC and AAC in MP4 (encoder priming, edit list) land within one sample too: placement follows the
    pts."""
    import av

    flac = write_click_wav(tmp_path / "clicks.flac", 6, [1.0, 2.5, 4.0], subtype="PCM_16")
    src = write_click_wav(tmp_path / "src.wav", 6, [1.0, 2.5, 4.0])
    m4a = tmp_path / "clicks.m4a"
    data, sr = sf.read(str(src.path), dtype="float32")
    with av.open(str(m4a), "w") as out:
        stream = out.add_stream("aac", rate=sr)
        stream.layout = "mono"
        for i in range(0, len(data), 1024):
            frame = av.AudioFrame.from_ndarray(data[None, i : i + 1024], format="fltp", layout="mono")
            frame.sample_rate = sr
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    for path, tolerance in ((flac.path, 1), (m4a, 1)):
        seq = SequenceSpec.at("C", "25", "00:00:00:00", [ClipSpec(10, 140, path, source_in=20, track="A1")])
        loaded = load_timeline(write_otio(tmp_path / f"{Path(path).suffix[1:]}.otio", seq))
        out = render_audio(audio_regions(loaded), loaded.duration_frames, loaded.timebase, 16000).samples
        expected = [(Fraction(10, 25) + c - Fraction(20, 25)) * 16000 for c in (1, Fraction(5, 2), 4)]
        found = find_clicks(out, threshold=0.15, min_gap=800)
        assert len(found) == 3, (path, found)
        assert all(abs(g - w) <= tolerance for g, w in zip(found, expected)), (path, found, expected)


def test_each_source_is_opened_once(tmp_path, media, monkeypatch):
    import av

    seq = _edit("25", "01:00:00:00", False, media)
    # many more uses of the same files than files
    extra = [
        ClipSpec(300 + i * 5, 305 + i * 5, list(media)[i % 3], source_in=i * 3 % 200, track="A4")
        for i in range(40)
    ]
    seq.clips.extend(extra)
    loaded = load_timeline(write_xmeml(tmp_path / "once.xml", seq))
    regions = audio_regions(loaded)
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    result = render_audio(regions, loaded.duration_frames, loaded.timebase, 16000)
    assert result.regions_rendered == len(regions) > 40
    assert sorted(opened) == sorted(str(p) for p in media)


def test_progress_and_cancel_remove_the_partial_wav(tmp_path, media):
    from captionbridge.core.errors import Cancelled
    from captionbridge.core.progress import Progress

    seq = _edit("25", "01:00:00:00", False, media)
    loaded = load_timeline(write_otio(tmp_path / "p.otio", seq))
    regions = audio_regions(loaded)
    seen = []
    progress = Progress({"render": 1.0}, listener=lambda stage, fraction, eta: seen.append((stage, fraction)))
    render_audio(regions, loaded.duration_frames, loaded.timebase, 16000, progress=progress)
    assert seen[-1] == ("render", 1.0) and all(s == "render" for s, _ in seen)
    assert [f for _, f in seen] == sorted(f for _, f in seen)

    def cancel_soon(stage, fraction, eta):
        if fraction > 0:
            progress.cancel()

    progress = Progress({"render": 1.0}, listener=cancel_soon)
    out = tmp_path / "cancelled.wav"
    with pytest.raises(Cancelled):
        render_audio(regions, loaded.duration_frames, loaded.timebase, 16000, out=out, progress=progress)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_fcpxml_constant_retime_is_honoured(tmp_path, media):
    a = list(media)[0]
    seq = SequenceSpec.at(
        "Retime",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 100, a, source_in=50, speed=2.0, track="A1"),  # 4 s at 2x from source 2 s
        ],
    )
    path = write_fcpxml(tmp_path / "r.fcpxml", seq, "1.10")
    loaded = load_timeline(path)
    (region,) = audio_regions(loaded)
    assert region.speed == 2 and region.source_offset == 2
    out = render_audio([region], loaded.duration_frames, loaded.timebase, 16000).samples
    expected = [(c - 2) / 2 * 16000 for c in media[a].click_seconds() if 2 <= c < 10]
    found = find_clicks(out, threshold=0.1, min_gap=800)
    assert len(found) == len(expected) and all(abs(g - w) <= 1 for g, w in zip(found, expected))
    # a variable retime is reported on the clip, not silently mis-timed
    text = path.read_text(encoding="utf-8").replace(
        'interp="linear"/></timeMap>', 'interp="linear"/><timept time="9s" value="30s"/></timeMap>'
    )
    path.write_text(text, encoding="utf-8")
    loaded = load_timeline(path)
    (region,) = audio_regions(loaded)
    assert region.speed == 1 and any("variable-speed retime" in w for w in region.warnings)
    assert any("variable-speed retime" in w for w in loaded.warnings)


def test_resolve_camera_file_counted_from_its_timecode(tmp_path):
    """Resolve OTIO without available_range on a camera .mov starting at 01:00:00:00: the source range counts
    from the file's timecode origin (90000 at 25 fps); the reader finds that origin in the file's tmcd
    track."""
    from fixtures.timelines import write_camera_mov

    cam = write_camera_mov(tmp_path / "A001 camera 摄影.mov", 3, [1.0, 2.0], timecode="01:00:00:00", fps=25)
    seq = SequenceSpec.at(
        "Cam",
        "25",
        "01:00:00:00",
        [
            ClipSpec(0, 50, cam.path, source_in=12, media_tc_frame=90000, track="A1"),
        ],
    )
    loaded = load_timeline(write_otio(tmp_path / "cam.otio", seq, resolve_style=True, available_range=False))
    (region,) = audio_regions(loaded)
    assert region.media_start == 3600 and region.source_offset == Fraction(12, 25)
    out = render_audio([region], loaded.duration_frames, loaded.timebase, 16000).samples
    expected = [(c - Fraction(12, 25)) * 16000 for c in (1, 2)]
    found = find_clicks(out, 0.2, 800)
    assert len(found) == 2 and all(abs(g - w) <= 1 for g, w in zip(found, expected)), (found, expected)


def test_channels_across_audio_streams(tmp_path):
    """A camera file with one mono stream per input: channel 2 is the second stream (Premiere's sourcetrack
    2)."""
    from fixtures.timelines import write_camera_mov

    cam = write_camera_mov(tmp_path / "two mics.mov", 3, [1.0], extra_streams=[[2.0]])
    seq = SequenceSpec.at(
        "Mics",
        "25",
        "00:00:00:00",
        [
            ClipSpec(0, 75, cam.path, track="A1", channel=1),
            ClipSpec(0, 75, cam.path, track="A2", channel=2),
        ],
    )
    loaded = load_timeline(write_xmeml(tmp_path / "mics.xml", seq))
    first, second = audio_regions(loaded)
    assert (first.channels, second.channels) == ((0,), (1,))
    for regions, clicks in (([first], [16000]), ([second], [32000]), ([first, second], [16000, 32000])):
        out = render_audio(regions, loaded.duration_frames, loaded.timebase, 16000)
        assert find_clicks(out.samples, 0.2, 800) == clicks and not out.warnings


@pytest.mark.parametrize("sample_rate", [16000, 48000])
def test_clips_after_a_sample_trimmed_clip_stay_sample_exact(tmp_path, sample_rate):
    """Issue 14: after a clip whose OTIO range is not a whole number of frames (audio trimmed on samples,
    range at rate 48000), later clips were rendered about a sub-frame early (positions rounded to frames).
    Positions are the exact rational sums of the OTIO ranges; only the output sample is rounded."""
    import opentimelineio as otio

    rate = Fraction(24000, 1001)
    first = write_click_wav(tmp_path / "first.wav", 4, [0.25], sample_rate=48000)
    second = write_click_wav(tmp_path / "second.wav", 4, [0.5, 1.5], sample_rate=48000)
    tl = otio.schema.Timeline("samples", global_start_time=otio.opentime.RationalTime(86400, float(rate)))
    track = otio.schema.Track("A1", kind=otio.schema.TrackKind.Audio)
    # 100,003 samples = 2.083396 s = 49.95 frames at 23.976: the next clip starts between frames
    trimmed = Fraction(100003, 48000)
    track.append(
        otio.schema.Clip(
            "sample trim",
            otio.schema.ExternalReference(first.path.as_uri()),
            otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, 48000), otio.opentime.RationalTime(100003, 48000)
            ),
        )
    )
    track.append(
        otio.schema.Clip(
            "after",
            otio.schema.ExternalReference(second.path.as_uri()),
            otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, float(rate)), otio.opentime.RationalTime(48, float(rate))
            ),
        )
    )
    tl.tracks.append(track)
    path = tmp_path / "samples.otio"
    otio.adapters.write_to_file(tl, str(path))
    loaded = load_timeline(path)
    regions = audio_regions(loaded)
    assert regions[1].start_seconds == trimmed  # exact, not the nearest frame
    result = render_audio(regions, loaded.duration_frames, loaded.timebase, sample_rate=sample_rate)
    clicks = find_clicks(result.samples)
    want = [Fraction(1, 4), trimmed + Fraction(1, 2), trimmed + Fraction(3, 2)]
    assert len(clicks) == 3
    for got, seconds in zip(clicks, want):
        assert abs(got - seconds * sample_rate) <= 1, (got, float(seconds * sample_rate))
    # decode_region agrees with the mix
    lo, _ = region_sample_range(regions[1], sample_rate)
    alone = find_clicks(decode_region(regions[1], sample_rate))
    assert [lo + k for k in alone] == clicks[1:]
    # and transcription puts that audio at the same exact timeline time (words land where the audio is)
    from captionbridge.core.speech.transcribe import _merge_regions

    spans = _merge_regions(regions, loaded.timebase)
    assert [s.timeline_start for s in spans] == [0, trimmed]
    assert spans[1].source_duration == Fraction(48 * 1001, 24000)
