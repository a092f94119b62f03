"""The review copy of a timeline's mix: Ogg Vorbis on the timeline's own clock, and its waveform peaks."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf

from captionbridge.adapters.timeline_read import load_timeline
from captionbridge.core.errors import InputError
from captionbridge.core.timeline.review_audio import (
    PEAKS_PER_SECOND,
    read_review_media,
    write_review_media,
    write_timeline_review_media,
)
from captionbridge.core.timeline.timebase import Timebase


def timeline_with_click(tmp_path, gap_frames=24, click_at=1.0):
    """A 23.976 timeline at 01:00:00:00: a gap, then a clip whose media has a click ``click_at`` s in."""
    rate = Fraction(24000, 1001)
    sr = 48000
    media = np.zeros(int(3 * sr), np.float32)
    media[int(click_at * sr) : int(click_at * sr) + 240] = 0.9
    wav = tmp_path / "click.wav"
    sf.write(str(wav), media, sr)
    tl = otio.schema.Timeline(
        name="clicks", global_start_time=otio.opentime.from_timecode("01:00:00:00", float(rate))
    )
    track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    track.append(
        otio.schema.Gap(
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, float(rate)),
                otio.opentime.RationalTime(gap_frames, float(rate)),
            )
        )
    )
    track.append(
        otio.schema.Clip(
            name="click",
            media_reference=otio.schema.ExternalReference(target_url=wav.resolve().as_uri()),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, float(rate)), otio.opentime.RationalTime(72, float(rate))
            ),
        )
    )
    tl.tracks.append(track)
    path = tmp_path / "clicks.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path, rate


def test_the_review_mix_is_on_the_timelines_clock(tmp_path):
    path, rate = timeline_with_click(tmp_path)
    loaded = load_timeline(path)
    media = write_timeline_review_media(loaded, tmp_path / "review")
    assert read_review_media(tmp_path / "review") == media
    audio, sr = sf.read(str(media.audio), dtype="float32")
    assert sr == media.sample_rate and media.audio.read_bytes()[:4] == b"OggS"
    assert abs(len(audio) - loaded.duration_frames * sr / rate) <= 1
    # the click sits 24 frames (the gap) + 1 s into the timeline, within a couple of milliseconds after
    # encoding
    expected = float(Fraction(24) / rate) + 1.0
    onset = np.argmax(np.abs(audio) > 0.3) / sr
    assert abs(onset - expected) < 0.003
    peaks = np.frombuffer(media.peaks.read_bytes(), np.int8).reshape(-1, 2)
    assert len(peaks) == int(np.ceil(len(audio) / (sr / PEAKS_PER_SECOND)))
    loud = np.nonzero(peaks[:, 1] > 60)[0]
    assert loud.size and abs(loud[0] / PEAKS_PER_SECOND - expected) <= 0.011
    assert (peaks[: int(expected * PEAKS_PER_SECOND) - 1] == 0).all()  # silence before it reads as silence


def test_nothing_half_written(tmp_path):
    assert read_review_media(tmp_path) is None
    with pytest.raises(InputError, match="empty"):
        write_review_media([], 0, Timebase(Fraction(25)), tmp_path / "r")
    assert read_review_media(tmp_path / "r") is None
    assert not [p for p in (tmp_path / "r").iterdir() if p.name != ".gitkeep"]
