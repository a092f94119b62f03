"""The mixed-cue benchmark's own pieces: its composer settings (restored after each use), cue measures and the
truth of a Whisper word."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from fixtures.paths import load_benchmark

from captionbridge.core.captions import compose
from captionbridge.core.model import Word
from captionbridge.core.timeline.timebase import Timebase

TB = Timebase(25)


@pytest.fixture(scope="module")
def bench(conversations_module):
    return load_benchmark("bench_speakers_mixed_cues", conversations_module)


def said(script) -> list[Word]:
    """(speaker, text) turns 0.15 s apart, 0.3 s a word."""
    words, t = [], 0.5
    for speaker, text in script:
        for tok in text.split():
            words.append(replace(Word.at(tok, t, t + 0.28, TB), speaker=speaker))
            t += 0.3
        t += 0.15
    return words


def test_settings_switch_the_sentence_stop_and_are_restored(bench):
    words = said([("S1", "Good."), ("S1", "Then we send it tonight."), ("S2", "I will call the network.")])
    before = (compose.SENTENCE_TURN_GAP, compose.SENTENCE_TURN_SPEAKERS)
    off = [c.text["en"] for c in bench.compose_with("off", words)]
    on = [c.text["en"] for c in bench.compose_with("0", words)]
    assert off[0].startswith("Good. Then") and on[:2] == ["Good.", "Then we send it tonight."]
    one_voice = [replace(w, speaker="S1") for w in words]
    assert [c.text["en"] for c in bench.compose_with("0", one_voice)][0].startswith("Good. Then")
    assert [c.text["en"] for c in bench.compose_with("0/1", one_voice)][0] == "Good."
    assert (compose.SENTENCE_TURN_GAP, compose.SENTENCE_TURN_SPEAKERS) == before == (Fraction(0), 2)
    with pytest.raises(SystemExit, match="clause stop was not adopted"):
        bench.compose_with("0c0.25", words)


def test_cue_measures_count_late_and_short_cues(bench):
    words = said([("S1", "Yes."), ("S1", "Then we send it tonight."), ("S2", "Fine.")])
    cues = bench.compose_with("0", words)
    m = bench.cue_measures(cues)
    assert m["cues"] == len(cues) == 3
    # "Yes." (0.28 s) is held for the 5/6 s minimum: the next cue starts after it, later than its speech
    late = cues[1].start_frame - cues[1].words[0].start_frame
    assert late > TB.rate / 4 and m["late_over_quarter_second"] == 1 and m["late_frames_total"] >= late
    assert m["one_word_cues"] == 2 and m["hard"] == {}


def test_a_whisper_word_takes_the_speaker_of_the_reference_word_at_its_middle(bench):
    ref = [Word("Go", 1.0, 1.2), Word("on.", 1.2, 1.5), Word("Good", 1.7, 2.0)]
    ref = [replace(w, speaker=s) for w, s in zip(ref, ["S4", "S4", "S3"])]
    assert bench.nearest_speaker(ref, Word("Good", 1.0, 1.5)) == "S4"  # Whisper's "Good" over "Go on."
    assert bench.nearest_speaker(ref, Word("morning", 1.9, 2.3)) == "S3"
    assert bench.nearest_speaker(ref, Word("uh", 1.52, 1.6)) == "S4"  # in the pause: the nearer word
