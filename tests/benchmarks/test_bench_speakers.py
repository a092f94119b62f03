"""The speaker benchmark's own measures: DER through pyannote.metrics and the wrongly-mixed-cue count."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fixtures.paths import load_benchmark

from captionbridge.core.model import Cue, Word


@pytest.fixture(scope="module")
def bench(conversations_module):
    return load_benchmark("bench_speakers", conversations_module)


def test_der_ignores_label_names_and_counts_confusion(bench):
    reference = [(0.0, 4.0, "A"), (4.2, 8.0, "B")]
    assert bench.der(reference, [(0.0, 4.0, "x"), (4.2, 8.0, "y")]) == 0.0
    # 0.125 s either side of each reference boundary is not scored: A 3.75 s, B 3.55 s, all of B confused
    assert bench.der(reference, [(0.0, 8.0, "x")]) == pytest.approx(3.55 / 7.3, abs=1e-6)
    assert bench.der(reference, [(0.0, 4.0, "x"), (4.2, 8.0, "y")], collar=0.0) == 0.0


def test_turns_join_runs_of_one_speaker(bench):
    words = [
        replace(Word("a", 0, 1), speaker="S1"),
        replace(Word("b", 1.1, 2), speaker="S1"),
        replace(Word("c", 2.5, 3), speaker="S2"),
    ]
    assert bench.turns_of(words, lambda w: w.speaker) == [(0, 2, "S1"), (2.5, 3, "S2")]


def test_wrongly_mixed_cues(bench):
    w = [
        replace(Word(t, k, k + 0.5), speaker=s)
        for k, (t, s) in enumerate([("Yes.", "S2"), ("Good.", "S1"), ("Fine", "S1"), ("then.", "S2")])
    ]
    truth = {id(x): x.speaker for x in w}
    right = Cue(0, 50, {"en": "- Yes.\n- Good."}, tuple(w[:2]), ("S2", "S1"))
    single = Cue(60, 80, {"en": "Fine"}, (w[2],), ("S1",))
    assert bench.wrongly_mixed([right, single], truth) == 0
    # the diarization called "then." S1: one cue, one speaker shown, two true speakers
    wrong_words = (w[2], replace(w[3], speaker="S1"))
    truth[id(wrong_words[1])] = "S2"
    wrong = Cue(90, 140, {"en": "Fine then."}, wrong_words, ("S1",))
    assert bench.wrongly_mixed([wrong], truth) == 1
    three_words = (w[0], w[1], w[3])
    three = Cue(0, 50, {"en": "- Yes.\n- Good then."}, three_words, ("S2", "S1"))
    assert bench.wrongly_mixed([three], {id(w[0]): "S2", id(w[1]): "S1", id(w[3]): "S3"}) == 1
    split_wrong = Cue(0, 50, {"en": "- Yes. Good.\n- Fine"}, (w[0], w[1], w[2]), ("S2", "S1"))
    assert bench.wrongly_mixed([split_wrong], {id(w[0]): "S2", id(w[1]): "S2", id(w[2]): "S1"}) == 1
