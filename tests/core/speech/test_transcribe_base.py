"""Real transcription with the packaged Whisper base: JFK (real speech), espeak English and Mandarin,
timelines."""

from __future__ import annotations

from fractions import Fraction

import pytest
from fixtures.paths import SHARED_DATA, shared_file

from captionbridge.core.speech import models
from captionbridge.core.speech.chinese_text import is_cjk, to_simplified
from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_audio, transcribe_regions
from captionbridge.core.speech.transcript_cache import TranscriptCache
from captionbridge.core.timeline.regions import AudioRegion
from captionbridge.core.timeline.timebase import Timebase

JFK = SHARED_DATA / "jfk.flac"
JFK_REFERENCE = (
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(base_whisper_model):
    return models.load_whisper(str(base_whisper_model), "cpu", "int8")


def test_jfk_is_transcribed_with_language_detection(base, speech_corpus_module, tmp_path):
    shared_file("jfk.flac")
    result = transcribe_audio(
        JFK, TranscribeOptions(language="auto"), model=base, cache=TranscriptCache(tmp_path)
    )
    assert result.language == "en" and result.language_probability > 0.5
    assert speech_corpus_module.wer(JFK_REFERENCE, result.text) <= 0.15, result.text
    assert all(0.0 <= w.start < w.end <= 11.0 and 0 < w.confidence <= 1 for w in result.words)


def test_espeak_english_on_a_23976_timeline(base, espeak_english, speech_corpus_module, tmp_path):
    """The corpus placed at 00:00:10:00 on a 23.976 timeline starting 01:00:00:00: text, times, and
    silence."""
    tb = Timebase.from_start_timecode("24000/1001", "01:00:00:00", False)
    start = 240  # 10 s in
    frames = tb.frame_at(espeak_english.duration, "floor")
    clip = AudioRegion(
        clip_name="take",
        track_name="A1",
        track_index=1,
        timeline_start_frame=start,
        timeline_end_frame=start + frames,
        source_path=espeak_english.path,
        source_offset=Fraction(0),
        timebase=tb,
    )
    cache = TranscriptCache(tmp_path)
    result = transcribe_regions([clip], tb, TranscribeOptions(language="en"), model=base, cache=cache)
    assert speech_corpus_module.wer(espeak_english.reference_text, result.text) <= 0.1, result.text
    offset = float(tb.seconds(start))
    shifted = [
        type(w)(w.text, w.start + offset, w.end + offset, w.event_start + offset, w.start_exact, w.end_exact)
        for w in espeak_english.words
    ]
    starts, _ = speech_corpus_module.timing_errors(shifted, result.words)
    assert len(starts) >= 0.9 * len(shifted)
    assert sum(abs(s) for s in starts) / len(starts) < 0.08
    for w in result.words:
        assert w.start_frame == tb.frame_at(w.start) and start <= w.start_frame < start + frames
    non_speech = [(a + offset, b + offset, kind) for a, b, kind in espeak_english.non_speech]
    assert not [w for w in result.words for a, b, _ in non_speech if w.start >= a + 0.1 and w.end <= b - 0.1]
    # a re-run is served from the cache
    again = transcribe_regions([clip], tb, TranscribeOptions(language="en"), model=base, cache=cache)
    assert again.stats["cached_spans"] == 1 and [w.text for w in again.words] == [
        w.text for w in result.words
    ]


def test_mandarin_is_simplified_per_character_and_punctuated(base, espeak_mandarin):
    # greedy, no temperature fallback: base finds synthetic Mandarin improbable and would retry at every
    # temperature
    options = TranscribeOptions(language="zh", cache=False, temperature=(0.0,), beam_size=1)
    result = transcribe_audio(espeak_mandarin.path, options, model=base)
    assert result.language == "zh" and result.words
    text = "".join(w.text for w in result.words)
    assert to_simplified(text) == text  # Simplified script
    for w in result.words:
        assert sum(is_cjk(c) for c in w.text) <= 1  # one character per timed unit
        assert w.language == "zh"
    assert text[-1] in "。？！"
    assert all(a.start <= b.start for a, b in zip(result.words, result.words[1:]))


def test_music_and_noise_give_no_words(base, speech_corpus_module):
    import numpy as np

    rng = np.random.default_rng(3)
    bed = np.concatenate(
        [
            speech_corpus_module._tone_bed(6.0, 0.2),
            speech_corpus_module._noise(rng, 4.0, 0.2),
            np.zeros(16000, np.float32),
            (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32),
        ]
    )
    for vad in (True, False):  # with VAD off, the decoder-side gates alone must hold
        result = transcribe_audio(bed, TranscribeOptions(language="en", vad=vad, cache=False), model=base)
        assert result.words == [], [w.text for w in result.words]
