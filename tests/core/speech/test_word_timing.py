"""Word boundary refinement: on synthetic bursts (exact answers) and on espeak-ng speech with the base
model."""

from __future__ import annotations

import numpy as np
import pytest

from captionbridge.core.speech.word_timing import HOP, LAG_MODELS, refine_word_times, speech_activity

BASE = LAG_MODELS["base"]

SR = 16000


def bursts(spans, total, level=0.3, noise=0.0, seed=0):
    """Audio with voiced-like bursts (harmonics of 150 Hz) at ``spans`` seconds, optional noise floor."""
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(int(total * SR)) * noise).astype(np.float32)
    for a, b in spans:
        t = np.arange(int(a * SR), int(b * SR)) / SR
        audio[int(a * SR) : int(b * SR)] += level * sum(
            np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6)
        )
    return audio


def test_activity_finds_runs_and_ignores_short_gaps():
    audio = bursts([(1.0, 1.5), (1.56, 2.0), (4.0, 4.5)], 6.0)  # 60 ms gap: a stop closure, not a pause
    runs = speech_activity(audio, SR).runs()
    assert len(runs) == 2
    assert runs[0][0] == pytest.approx(1.0, abs=HOP) and runs[0][1] == pytest.approx(2.0, abs=HOP)
    assert runs[1][0] == pytest.approx(4.0, abs=HOP)


def test_activity_adapts_to_a_noise_floor():
    audio = bursts([(1.0, 2.0)], 4.0, noise=0.01)
    runs = speech_activity(audio, SR).runs()
    assert len(runs) == 1 and runs[0][0] == pytest.approx(1.0, abs=2 * HOP)


def test_first_word_after_long_silence_starts_on_the_onset():
    audio = bursts([(0.5, 1.0), (6.0, 6.4), (6.4, 6.9)], 8.0)
    # Whisper's classic error: the word after the pause placed seconds early, inside the silence
    refined = refine_word_times([(0.5, 1.0), (3.2, 6.4), (6.4, 6.9)], audio, SR)
    assert refined[1][0] == pytest.approx(6.0, abs=0.02)
    assert refined[0] == pytest.approx((0.5, 1.0), abs=0.02)


def test_end_is_not_stretched_into_the_pause_and_not_cut_short():
    audio = bursts([(1.0, 1.6), (3.0, 3.5)], 4.5)
    stretched = refine_word_times([(1.0, 2.5), (3.0, 3.5)], audio, SR)
    assert stretched[0][1] == pytest.approx(1.6, abs=0.02)
    short = refine_word_times([(1.0, 1.3), (3.0, 3.5)], audio, SR)
    assert short[0][1] == pytest.approx(1.6, abs=0.02)  # last word before a pause ends where speech ends


def test_boundary_in_running_speech_moves_to_the_energy_dip():
    audio = bursts([(1.0, 1.5), (1.5, 2.0)], 3.0)
    audio[int(1.5 * SR) : int(1.53 * SR)] *= 0.2  # a 14 dB dip between two words, no silence
    refined = refine_word_times([(1.0, 1.45), (1.45, 2.0)], audio, SR)
    assert refined[0][1] == pytest.approx(1.515, abs=0.02) and refined[1][0] == refined[0][1]


def test_a_quiet_closure_between_words_belongs_to_neither():
    # a 40 ms closure between two words, Whisper's boundary 30 ms early: the first word ends where it falls
    # quiet, the second starts on its own sound (its onset), not at the closure
    audio = bursts([(1.0, 1.5), (1.54, 1.8)], 3.0)
    refined = refine_word_times([(1.0, 1.47), (1.47, 1.8)], audio, SR, texts=["when", "the"], lag=BASE)
    assert refined[0][1] == pytest.approx(1.5, abs=0.011)
    assert refined[1][0] == pytest.approx(1.54, abs=0.011)


def test_two_closures_in_a_row_the_second_is_the_boundary():
    # "quick brown": quick's own final closure and release, then brown's closure; Whisper put the boundary on
    # the first closure. The boundary is brown's closure: quick keeps its release
    audio = bursts([(1.0, 1.30), (1.42, 1.75)], 2.5) + bursts([(1.34, 1.38)], 2.5, level=0.03)
    refined = refine_word_times([(1.0, 1.31), (1.31, 1.75)], audio, SR, texts=["quick", "brown"], lag=BASE)
    assert refined[0][1] == pytest.approx(1.38, abs=0.011)
    assert refined[1][0] == pytest.approx(1.42, abs=0.011)


def test_a_final_stop_keeps_its_release_before_a_vowel():
    # "left at": left's closure (1.30-1.34) and weak release (to 1.37), then "at" at full level
    audio = bursts([(1.0, 1.30), (1.37, 1.55)], 2.5) + bursts([(1.34, 1.37)], 2.5, level=0.02)
    refined = refine_word_times([(1.0, 1.30), (1.30, 1.55)], audio, SR, texts=["left", "at"], lag=BASE)
    assert refined[0][1] == refined[1][0] == pytest.approx(1.37, abs=0.021)
    # the same audio read as words without stops: the quiet run is the boundary, the release goes to "at"
    plain = refine_word_times([(1.0, 1.30), (1.30, 1.55)], audio, SR, texts=["fell", "on"], lag=BASE)
    assert plain[0][1] == pytest.approx(1.30, abs=0.011) and plain[1][0] == pytest.approx(1.34, abs=0.011)


def test_lag_is_calibrated_per_model():
    from captionbridge.core.speech.word_timing import UNCALIBRATED, lag_model_for

    base = lag_model_for("base")
    assert base.lag("the", "store", 0.3) < base.lag(
        "documentary", "store", 0.3
    )  # base: early after long words
    assert base.lag("the", "store", 0.2) < base.lag("the", "store", 0.4)
    assert base.lag("你好", "世界", 0.3) == base.average  # no spelling to go by: the model's average
    assert (
        base.low <= base.lag("a", "extraordinarily", 0.0) and base.lag("documentary", "a", 3.0) <= base.high
    )
    assert lag_model_for("tiny.en").average < 0 < base.average  # tiny.en's boundaries come late, base's early
    assert lag_model_for("large-v3") == UNCALIBRATED and UNCALIBRATED.lag("the", "store", 0.3) == 0.0


def test_a_calibration_file_beside_the_model_wins(tmp_path):
    import json

    from captionbridge.core.speech.word_timing import CALIBRATION_FILE, LagModel, lag_model_for

    (tmp_path / CALIBRATION_FILE).write_text(
        json.dumps({"average": -0.02, "base": 0.01, "per_letter_a": 0.003})
    )
    assert lag_model_for("base", str(tmp_path)) == LagModel(average=-0.02, base=0.01, per_letter_a=0.003)
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    assert lag_model_for("base", str(tmp_path)) == lag_model_for("base")  # damaged: ignored, not fatal


def test_a_renamed_model_folder_is_recognised_by_its_alignment_heads(tmp_path):
    import json

    from captionbridge.core.speech.word_timing import ALIGNMENT_HEADS, UNCALIBRATED, lag_model_for

    (tmp_path / "config.json").write_text(json.dumps({"alignment_heads": ALIGNMENT_HEADS["base"]}))
    assert lag_model_for("my-whisper", str(tmp_path)) == lag_model_for("base")
    (tmp_path / "config.json").write_text(json.dumps({"alignment_heads": [[0, 0]]}))
    assert lag_model_for("my-whisper", str(tmp_path)) == UNCALIBRATED


def test_an_uncalibrated_model_is_searched_around_its_own_boundary():
    # a 40 ms quiet run 30 ms after Whisper's boundary: found without any calibration
    audio = bursts([(1.0, 1.5), (1.54, 1.8)], 3.0)
    refined = refine_word_times([(1.0, 1.47), (1.47, 1.8)], audio, SR, texts=["when", "the"])
    assert refined[0][1] == pytest.approx(1.5, abs=0.011) and refined[1][0] == pytest.approx(1.54, abs=0.011)


def test_stops_read_from_spelling():
    from captionbridge.core.speech.word_timing import ends_with_stop, starts_with_stop

    assert all(starts_with_stop(w) for w in ["brown", "Cut", "just", "church", "Quick", '"Tell'])
    assert not any(starts_with_stop(w) for w in ["city", "thin", "phone", "know", "over", "and", "你好", ""])
    assert all(ends_with_stop(w) for w in ["quick", "left.", "made", "bridge", "dog,", "worked", "which"])
    assert not any(ends_with_stop(w) for w in ["sing", "through", "these", "fox", "mountains.", "谢谢", ""])


def test_order_count_and_no_overlap_are_kept():
    audio = bursts([(0.2, 2.8)], 3.0)
    times = [(0.2, 1.0), (0.9, 1.5), (1.4, 1.41), (1.5, 2.8)]
    refined = refine_word_times(times, audio, SR)
    assert len(refined) == 4
    for (s1, e1), (s2, e2) in zip(refined, refined[1:]):
        assert s1 <= e1 <= s2 <= e2
    assert refine_word_times([], audio, SR) == []
    assert refine_word_times([(0.5, 0.7)], np.zeros(SR, np.float32), SR) == [(0.5, 0.7)]


@pytest.mark.slow
def test_word_times_on_espeak_speech(base_whisper_model, espeak_english, speech_corpus_module):
    """Against espeak-ng's exact word times: refinement must beat raw Whisper, and stay within bounds."""
    import soundfile

    from captionbridge.core.model import Word
    from captionbridge.core.speech import models
    from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_audio
    from captionbridge.core.timeline.timebase import Timebase

    model = models.load_whisper(str(base_whisper_model), "cpu", "int8")
    raw = transcribe_audio(
        espeak_english.path, TranscribeOptions(language="en", refine_timing=False, cache=False), model=model
    ).words
    samples, _ = soundfile.read(espeak_english.path, dtype="float32")
    # the same step the pipeline runs when refine_timing is on
    refined = [
        Word.at(w.text, s, e, Timebase(25), w.confidence)
        for w, (s, e) in zip(
            raw,
            refine_word_times(
                [(w.start, w.end) for w in raw], samples, SR, texts=[w.text for w in raw], lag=BASE
            ),
        )
    ]
    errors = {}
    for name, words in (("raw", raw), ("refined", refined)):
        starts, ends = speech_corpus_module.timing_errors(espeak_english.words, words)
        errors[name] = np.abs(np.array(starts + ends))
        assert len(starts) >= 0.9 * len(espeak_english.words)
        assert speech_corpus_module.words_in_non_speech(espeak_english, words) == []
    assert errors["refined"].mean() < errors["raw"].mean()
    print(f"raw {errors['raw'].mean() * 1000:.1f} ms, refined {errors['refined'].mean() * 1000:.1f} ms")
    assert errors["refined"].mean() < 0.06, f"word boundary MAE {errors['refined'].mean() * 1000:.0f} ms"
    assert (errors["refined"] <= 0.1).mean() >= 0.8
