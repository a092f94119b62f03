"""The review copy of a timeline's mix: a compressed Ogg Vorbis file and a waveform peak file, per caption
job.

The review page plays the engine's own render of the timeline (sample 0 is the timeline's first frame, exactly
what the words were timed on), so a cue played there is what the recogniser heard. The mix is rendered
streamed to a temporary WAV (bounded memory, as ``render_audio``), then encoded block by block; the peaks are
the minimum and maximum of every ``PEAK_SECONDS`` of audio as signed bytes, which the page draws at any zoom
without decoding the audio.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .render_audio import render_audio
from .timebase import Timebase

AUDIO_NAME = "mix.ogg"
PEAKS_NAME = "peaks.i8"
INFO_NAME = "media.json"
REVIEW_SAMPLE_RATE = 24000
PEAKS_PER_SECOND = 100  # one min/max pair per 10 ms: 720,000 pairs (1.4 MB) for two hours
_BLOCK_SECONDS = 30


@dataclass(frozen=True)
class ReviewMedia:
    folder: Path
    sample_rate: int
    samples: int
    peaks_per_second: int
    peak: float

    @property
    def audio(self) -> Path:
        return self.folder / AUDIO_NAME

    @property
    def peaks(self) -> Path:
        return self.folder / PEAKS_NAME

    def to_dict(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "samples": self.samples,
            "peaks_per_second": self.peaks_per_second,
            "duration": self.samples / self.sample_rate,
            "peak": round(self.peak, 4),
        }


def read_review_media(folder: Path) -> ReviewMedia | None:
    """The review media in ``folder``, or None when it was never made (or is incomplete)."""
    folder = Path(folder)
    try:
        info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (folder / AUDIO_NAME).is_file() or not (folder / PEAKS_NAME).is_file():
        return None
    return ReviewMedia(
        folder,
        int(info["sample_rate"]),
        int(info["samples"]),
        int(info["peaks_per_second"]),
        float(info.get("peak", 0.0)),
    )


def write_review_media(
    regions,
    duration_frames: int,
    timebase: Timebase,
    folder: Path,
    *,
    sample_rate: int = REVIEW_SAMPLE_RATE,
    progress=None,
) -> ReviewMedia:
    """Render ``regions`` (missing media is silent) and write ``mix.ogg``, ``peaks.i8`` and ``media.json``.

    The three files appear together or not at all (written under temporary names, then renamed; ``media.json``
    last, and only its presence makes the media readable).
    """
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if duration_frames <= 0:
        raise InputError("the timeline is empty: there is no audio to review")
    fd, wav_name = tempfile.mkstemp(prefix=".mix-", suffix=".wav", dir=folder)
    os.close(fd)
    wav = Path(wav_name)
    ogg_tmp, peaks_tmp = folder / f".{AUDIO_NAME}.part", folder / f".{PEAKS_NAME}.part"
    try:
        result = render_audio(
            regions,
            duration_frames,
            timebase,
            sample_rate,
            out=wav,
            allow_missing=True,
            progress=progress,
            progress_stage="render",
        )
        bucket = sample_rate // PEAKS_PER_SECOND
        peak = 0.0
        with (
            sf.SoundFile(str(wav)) as src,
            sf.SoundFile(
                str(ogg_tmp), "w", sample_rate, 1, format="OGG", subtype="VORBIS", compression_level=0.9
            ) as dst,
            peaks_tmp.open("wb") as peaks,
        ):
            block = bucket * PEAKS_PER_SECOND * _BLOCK_SECONDS
            while True:
                data = src.read(block, dtype="float32", always_2d=False)
                if data.size == 0:
                    break
                dst.write(data)
                peak = max(peak, float(np.max(np.abs(data))))
                pad = (-data.size) % bucket
                padded = np.concatenate([data, np.zeros(pad, np.float32)]) if pad else data
                frames = padded.reshape(-1, bucket)
                pairs = np.stack([frames.min(axis=1), frames.max(axis=1)], axis=1)
                peaks.write(np.clip(np.round(pairs * 127), -127, 127).astype(np.int8).tobytes())
        os.replace(ogg_tmp, folder / AUDIO_NAME)
        os.replace(peaks_tmp, folder / PEAKS_NAME)
        media = ReviewMedia(folder, sample_rate, result.num_samples, PEAKS_PER_SECOND, round(peak, 4))
        info_tmp = folder / f".{INFO_NAME}.part"
        info_tmp.write_text(json.dumps(media.to_dict()), encoding="utf-8")
        os.replace(info_tmp, folder / INFO_NAME)
        return media
    finally:
        for leftover in (wav, ogg_tmp, peaks_tmp):
            try:
                leftover.unlink()
            except OSError:
                pass


def write_timeline_review_media(loaded, folder: Path, tracks=None, progress=None) -> ReviewMedia:
    """The review media of a loaded timeline (the same tracks the caption job heard)."""
    from .regions import audio_regions

    return write_review_media(
        audio_regions(loaded, tracks), loaded.duration_frames, loaded.timebase, folder, progress=progress
    )
