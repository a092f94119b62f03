"""Regenerate the bundled example (run once by a maintainer; its output is committed).

Makes two short interview recordings with espeak-ng (en-us, two voices), a small picture track, and the same
edit as a Premiere-style FCP7 XML (xmeml) and an OTIO timeline: 23.976 fps, start 01:00:00:00, source trims, a
gap, a music bed on A2, and picture cuts on V1.

    python examples/make_example.py      # needs espeak-ng and sox (Debian packages)
"""

from __future__ import annotations

import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import soundfile as sf

HERE = Path(__file__).resolve().parent
MEDIA = HERE / "media"
RATE = Fraction(24000, 1001)
START_FRAME = 86400  # 01:00:00:00 at 23.976
SAMPLE_RATE = 22050

TEXT_A = (
    "Welcome back to the harbour. Every morning before sunrise, the boats leave the quay in the same order. "
    "My grandfather fished these waters for forty years, and he never once used a map. "
    "He said the sea tells you where to go, if you are patient enough to listen. "
    "Today, most of the crews rely on sonar and satellite weather reports. "
    "But the old routes are still the safest ones when the fog comes in."
)
TEXT_B = (
    "The market opens at six. By seven, the best fish have already been sold to restaurants in the city. "
    "What is left goes to families from the village, and nothing is wasted. "
    "We are trying to keep this tradition alive, but it is not easy. "
    "Young people move away, and the boats get older every year."
)


def speak(text: str, voice: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-g", "6", "-w", str(raw), text], check=True)
        subprocess.run(
            ["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out), "pad", "0.8", "1.0"],
            check=True,
        )


def music_bed(out: Path, seconds: float) -> None:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * t / 8.0)
    sf.write(out, (0.08 * chord * envelope).astype(np.float32), SAMPLE_RATE, subtype="PCM_16", format="FLAC")


def picture(out: Path, frames: int) -> None:
    """A tiny 23.976 fps picture whose colour changes every 48 frames (so cuts are visible)."""
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for i in range(frames):
            shade = np.full((36, 64, 3), ((i // 48) * 53) % 256, dtype=np.uint8)
            shade[..., 1] = (i * 3) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(shade, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def media_seconds(path: Path) -> Fraction:
    info = sf.info(str(path))
    return Fraction(info.frames, info.samplerate)


def clip(name: str, media: Path, kind: str, src_in: int, duration: int, available: int) -> otio.schema.Clip:
    ref = otio.schema.ExternalReference(
        target_url=f"media/{media.name}",
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, float(RATE)), otio.opentime.RationalTime(available, float(RATE))
        ),
    )
    return otio.schema.Clip(
        name=name,
        media_reference=ref,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(src_in, float(RATE)), otio.opentime.RationalTime(duration, float(RATE))
        ),
    )


def gap(duration: int) -> otio.schema.Gap:
    return otio.schema.Gap(
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, float(RATE)), otio.opentime.RationalTime(duration, float(RATE))
        )
    )


def build() -> None:
    MEDIA.mkdir(exist_ok=True)
    a, b, m, v = (
        MEDIA / n for n in ("interview_a.flac", "interview_b.flac", "music_bed.flac", "picture.mp4")
    )
    speak(TEXT_A, "en-us", a)
    speak(TEXT_B, "en-us+m3", b)
    a_frames = int(media_seconds(a) * RATE)
    b_frames = int(media_seconds(b) * RATE)
    # Edit: A trimmed 1.5 s in, B trimmed 0.5 s in and out, a 1.5 s gap between them.
    a_in, a_len = 36, a_frames - 36 - 12
    b_in, b_len = 12, b_frames - 12 - 24
    gap_len = 36
    total = a_len + gap_len + b_len
    music_bed(m, float(total / RATE) + 2)
    picture_frames = total + 96
    picture(v, picture_frames)

    tl = otio.schema.Timeline(name="Harbour interview")
    tl.global_start_time = otio.opentime.RationalTime(START_FRAME, float(RATE))
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    cuts = [0, 170, 410, 655, a_len + gap_len, a_len + gap_len + 300, total]
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
        v1.append(clip(f"Shot {i + 1}", v, "video", (lo * 7) % 96, hi - lo, picture_frames))
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    a1.append(clip("Interview A", a, "audio", a_in, a_len, a_frames))
    a1.append(gap(gap_len))
    a1.append(clip("Interview B", b, "audio", b_in, b_len, b_frames))
    a2 = otio.schema.Track(name="A2", kind=otio.schema.TrackKind.Audio)
    a2.append(clip("Music bed", m, "audio", 0, total, int(media_seconds(m) * RATE)))
    tl.tracks.extend([v1, a1, a2])
    otio.adapters.write_to_file(tl, str(HERE / "harbour_interview.otio"))
    otio.adapters.write_to_file(tl, str(HERE / "harbour_interview.xml"), adapter_name="fcp_xml")
    print(f"timeline: {total} frames ({float(total / RATE):.1f} s); media in {MEDIA}")


if __name__ == "__main__":
    build()
