import subprocess
import sys
from fractions import Fraction

from captionbridge.core.model import CaptionDocument, Cue, Word
from captionbridge.core.timeline.timebase import Timebase


def test_cli_version_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "captionbridge" in out.stdout


def test_document_round_trip_keeps_frames_and_timecodes():
    tb = Timebase.from_start_timecode("29.97", "01:00:00;00", drop_frame=True)
    w = Word.at("hello", 1.0, 1.5, tb, 0.9)
    doc = CaptionDocument("t", tb, "en", [w], [Cue(30, 60, {"en": "hello"})], ["en"])
    data = doc.to_dict()
    assert data["timeline"] == {
        "name": "t",
        "rate": "30000/1001",
        "start_timecode": "01:00:00;00",
        "drop_frame": True,
    }
    assert data["cues"][0]["start_timecode"] == "01:00:01;00"
    back = CaptionDocument.from_dict(data)
    assert (
        back.timebase == tb and back.cues[0].start_frame == 30 and back.words[0].start_frame == w.start_frame
    )
    assert tb.rate == Fraction(30000, 1001)
