"""The per-model word-timing calibration (benchmarks/calibrate_word_timing.py): the fit recovers a known
lag."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from fixtures.paths import REPO

from captionbridge.core.speech.word_timing import LagModel


@pytest.fixture(scope="module")
def calibrate(speech_corpus_module):
    sys.modules.setdefault("speech_corpus", speech_corpus_module)  # one libespeak-ng binding per process
    path = REPO / "benchmarks" / "calibrate_word_timing.py"
    spec = importlib.util.spec_from_file_location("captionbridge_calibrate_word_timing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_recovers_a_known_lag(calibrate):
    truth = LagModel(average=0.0, base=-0.02, per_letter_a=0.011, per_letter_b=-0.021, per_second_b=0.48)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(400):
        la, lb, dur = int(rng.integers(1, 12)), int(rng.integers(1, 12)), float(rng.uniform(0.1, 0.6))
        lag = truth.base + truth.per_letter_a * la + truth.per_letter_b * lb + truth.per_second_b * dur
        rows.append((lag + float(rng.normal(0, 0.01)), la, lb, dur))
    fitted = calibrate.fit(rows)
    assert fitted.per_letter_a == pytest.approx(truth.per_letter_a, abs=0.001)
    assert fitted.per_letter_b == pytest.approx(truth.per_letter_b, abs=0.001)
    assert fitted.per_second_b == pytest.approx(truth.per_second_b, abs=0.02)
    assert fitted.low < fitted.average < fitted.high
    assert fitted.lag("quick", "fox", 0.3) == pytest.approx(truth.lag("quick", "fox", 0.3), abs=0.01)


def test_boundary_rows_are_running_speech_only(calibrate, speech_corpus_module):
    corpus = speech_corpus_module.make_corpus("en", sentences=2, pauses=(1.0,), noise_seconds=0.0)
    # Whisper-like words: the reference shifted 50 ms early, the first word of each sentence left out of the
    # rows
    words = [calibrate._W(w.text, w.start - 0.05, w.end - 0.05) for w in corpus.words]
    rows = calibrate.boundary_rows(corpus, words)
    exact = [w for w in corpus.words if w.start_exact]
    assert 0 < len(rows) <= len(exact) - 2
    assert all(
        abs(r[0] - 0.05) < 0.03 for r in rows
    )  # real minus Whisper's boundary: +50 ms (minus the gaps)
