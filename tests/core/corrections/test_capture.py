"""core.corrections.capture: which approved cues are corrections, with the model's words that fall in them."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import soundfile as sf

from captionbridge.core.corrections.capture import corrections_from_approval, span_audio
from captionbridge.core.model import CaptionDocument, Cue, Word
from captionbridge.core.timeline.timebase import Timebase

TB = Timebase(Fraction(25))


def model_doc():
    words = [
        Word.at(t, s, e, TB, c, "en")
        for t, s, e, c in [
            ("the", 1.0, 1.2, 0.9),
            ("harbor", 1.2, 1.6, 0.3),
            ("master", 1.6, 2.0, 0.8),
            ("came", 3.0, 3.3, 0.95),
            ("home", 3.3, 3.7, 0.9),
        ]
    ]
    cues = [Cue(25, 52, {"en": "the harbor master"}), Cue(75, 95, {"en": "came home"})]
    return CaptionDocument(
        name="harbour", timebase=TB, source_language="en", words=words, cues=cues, languages=["en"]
    ).to_dict()


def test_text_timing_and_untouched_cues():
    doc = model_doc()
    before = [Cue.from_dict(c) for c in doc["cues"]]
    approved = [
        Cue(25, 52, {"en": "the Harbour\nmaster"}),
        Cue(75, 92, {"en": "came home"}),
        Cue(120, 140, {"en": "(music)"}),
    ]
    records = corrections_from_approval(doc, before, approved, job_id="j1", model="base")
    assert [(r.corrected_text, r.timing_only) for r in records] == [
        ("the Harbour master", False),
        ("came home", True),
    ]
    text = records[0]
    assert [w["text"] for w in text.model_words] == ["the", "harbor", "master"]
    assert text.model_words[1]["confidence"] == 0.3 and (text.start, text.end) == (1.0, 52 / 25)
    assert (
        corrections_from_approval(doc, approved, approved, job_id="j1") == []
    )  # approved again: nothing new


def test_span_audio_is_cut_from_the_mix_at_16k(tmp_path):
    rate = 24000
    t = np.arange(rate * 4) / rate
    mix = (0.5 * np.sin(2 * np.pi * 440 * t) * (t >= 2)).astype(np.float32)  # silent until 2 s, then a tone
    path = tmp_path / "mix.ogg"
    sf.write(str(path), mix, rate, format="OGG", subtype="VORBIS")
    quiet, loud = span_audio(path, rate, 0.5, 1.5), span_audio(path, rate, 2.5, 3.5)
    assert abs(len(loud) - 16000) <= 64 and abs(len(quiet) - 16000) <= 64
    assert np.abs(quiet).max() < 0.01 and 0.3 < np.abs(loud).max() < 0.7
