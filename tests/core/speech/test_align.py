"""`captionbridge align`: a known script timed against audio with the Whisper model itself; nothing dropped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from captionbridge.core.errors import InputError
from captionbridge.core.speech import models
from captionbridge.core.speech.align import (
    AlignedWord,
    _fill_unanchored,
    _low_confidence_spans,
    align_script,
    script_units,
)
from captionbridge.core.speech.transcribe import TranscribeOptions
from captionbridge.plugin.cli import cli
from click.testing import CliRunner

FAST = dict(temperature=(0.0,), beam_size=1, cache=False)


def test_script_units_keep_every_word_and_split_cjk():
    assert script_units("Hello,  world ! It's 2024.") == ["Hello,", "world!", "It's", "2024."]
    assert script_units("今天天气很好，我们用AI。") == ["今", "天", "天", "气", "很", "好，", "我", "们", "用", "AI。"]


def test_unanchored_words_are_shared_between_windows():
    assigned = [0, None, None, None, 1, None]
    _fill_unanchored(assigned, {0: 0.1, 4: 5.0}, [(0, 16000), (32000, 48000)], 6)
    assert assigned[0] == 0 and assigned[4] == 1 and assigned[5] == 1
    assert assigned[1:4] in ([0, 0, 1], [0, 1, 1])
    nothing = [None] * 4
    _fill_unanchored(nothing, {}, [(0, 16000), (32000, 48000)], 4)
    assert nothing == [0, 0, 1, 1]


def test_low_confidence_runs_are_reported():
    words = [AlignedWord(t, i, i + 0.5, c) for i, (t, c) in enumerate(
        [("a", 0.9), ("b", 0.01), ("c", 0.02), ("d", 0.05), ("e", 0.8), ("the", 0.0)])]
    spans = _low_confidence_spans(words)
    assert [s["text"] for s in spans] == ["b c d"]


def test_tiny_model_places_every_script_word(tiny_whisper_model, espeak_english):
    model = models.load_whisper(str(tiny_whisper_model), "cpu", "int8")
    samples, _ = soundfile.read(espeak_english.path, dtype="float32")
    script = " ".join(espeak_english.sentences) + " and these extra words were never spoken at all"
    result = align_script(samples, script, "en", TranscribeOptions(language="en", **FAST), model)
    units = script_units(script)
    assert [w.text for w in result.words] == units  # never drops script text
    assert all(a.start <= b.start for a, b in zip(result.words, result.words[1:]))
    assert all(0 <= w.start <= w.end <= espeak_english.duration + 0.5 for w in result.words)
    for item in result.unplaced:
        assert result.words[item["index"]].confidence == 0.0 and not result.words[item["index"]].placed


def test_silence_is_a_clear_error(tiny_whisper_model):
    model = models.load_whisper(str(tiny_whisper_model), "cpu", "int8")
    with pytest.raises(InputError, match="no speech"):
        align_script(np.zeros(16000 * 3, np.float32), "hello there", "en", TranscribeOptions(**FAST), model)
    with pytest.raises(InputError, match="empty"):
        align_script(np.zeros(16000, np.float32), "  \n ", "en", TranscribeOptions(**FAST), model)


def test_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["align", str(tmp_path / "nope.wav"), "--text", str(tmp_path / "s.txt"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 3 and "script" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_align_cli_with_base_model(base_whisper_model, espeak_english, speech_corpus_module, tmp_path):
    """Real alignment: every word placed near espeak's ground truth, JSON contract written."""
    script = tmp_path / "script.txt"
    script.write_text("\n".join(espeak_english.sentences[:3]), encoding="utf-8")
    samples, rate = soundfile.read(espeak_english.path, dtype="float32")
    cut = int(16.0 * rate)  # the first three sentences and the noise stretch
    audio = tmp_path / "take1.wav"
    soundfile.write(audio, samples[:cut], rate)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["align", str(audio), "--text", str(script), "--out", str(out),
                                      "--language", "en", "--model", str(base_whisper_model), "--rate", "25"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "take1.captions.json").read_text(encoding="utf-8"))
    assert data["timeline"]["rate"] == "25" and data["source_language"] == "en"
    units = script_units(script.read_text(encoding="utf-8"))
    assert [w["text"] for w in data["words"]] == units
    assert data["alignment"]["unplaced"] == []
    reference = [w for w in espeak_english.words if w.end <= 16.0]
    words = [type("W", (), {"text": w["text"], "start": w["start"], "end": w["end"]}) for w in data["words"]]
    starts, ends = speech_corpus_module.timing_errors(reference, words)
    errors = np.abs(np.array(starts + ends))
    assert len(starts) >= 0.9 * len(reference)
    assert errors.mean() < 0.09, f"alignment MAE {errors.mean() * 1000:.0f} ms"
    assert data["cues"], "the caption composer made cues from the aligned words"
