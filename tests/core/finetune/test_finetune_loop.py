"""The learning loop end to end on a tiny random Whisper, as a user runs it: corrections captured, exported,
fine-tuned (LoRA, merged, converted), registered, activated (or refused), resolved by the engine,
transcribed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures.tiny_whisper import build_tiny_whisper

from captionbridge.core.corrections.store import CorrectionRecord, CorrectionStore
from captionbridge.core.finetune import registry
from captionbridge.core.finetune.ct2_weights import read_ct2_weights
from captionbridge.core.speech.models import resolve_model
from captionbridge.plugin.cli import cli


@pytest.fixture
def engine_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CAPTIONBRIDGE_OFFLINE", "1")
    return tmp_path


def _speechlike(seed, seconds=1.5):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (
        0.2 * np.sin(2 * np.pi * (150 + 40 * seed) * t) * (1 + np.sin(7 * t)) + rng.normal(0, 0.01, t.size)
    ).astype(np.float32)


def _capture(store, n_jobs=3):
    for job in range(n_jobs):
        for k in range(2):
            store.add(
                CorrectionRecord(
                    id="",
                    language="en",
                    model="tiny",
                    calibration="uncalibrated",
                    timeline="t.otio",
                    job_id=f"job{job}",
                    start=1.0,
                    end=2.5,
                    model_words=[{"text": "harbor", "start": 1.0, "end": 1.4, "confidence": 0.3}],
                    corrected_text="Harbour master Dalby",
                ),
                _speechlike(job * 2 + k),
            )


def test_capture_export_finetune_activate_transcribe(engine_dirs, tmp_path):
    base = build_tiny_whisper(tmp_path / "tiny", word_like=False)
    data = tmp_path / "engine"
    _capture(CorrectionStore(data))
    runner = CliRunner()

    listed = runner.invoke(cli, ["corrections", "--data-dir", str(data), "list"])
    assert listed.exit_code == 0 and "6 correction(s)" in listed.output
    exported = runner.invoke(
        cli,
        [
            "corrections",
            "--data-dir",
            str(data),
            "export",
            "--format",
            "jsonl",
            "--out",
            str(tmp_path / "set"),
        ],
    )
    assert exported.exit_code == 0, exported.output

    result = runner.invoke(
        cli,
        [
            "finetune",
            "--base",
            str(base),
            "--name",
            "harbour-v1",
            "--epochs",
            "2",
            "--general",
            str(tmp_path / "set" / "corrections.jsonl"),
            "--data-dir",
            str(data),
            "--device",
            "cpu",
            "--quantization",
            "float32",
        ],
    )
    assert result.exit_code == 0, result.output
    card = registry.card("harbour-v1")
    assert card["base"] == "tiny" and card["data"]["corrections"] >= 4 and card["data"]["general"] >= 1
    assert card["scores"]["held_out_examples"] >= 1
    tuned = registry.model_folder("harbour-v1")
    # the LoRA deltas were merged into the attention projections LoRA targeted, and nowhere else
    before, after = read_ct2_weights(base), read_ct2_weights(tuned)
    changed = {
        n
        for n in before.variables
        if n in after
        and not np.array_equal(before.get(n).astype(np.float32), after.get(n).astype(np.float32))
    }
    assert changed and all(("self_attention/linear_0" in n or "attention/linear_" in n) for n in changed), (
        changed
    )

    # the engine resolves "auto" to the active model only once it is activated, and rolls back
    assert resolve_model("auto").source != "tuned" if _has_packaged() else True
    scores = card["scores"]
    if scores["held_out_wer_tuned"] <= scores["held_out_wer_base"]:
        assert runner.invoke(cli, ["finetune", "activate", "harbour-v1"]).exit_code == 0
        assert resolve_model("auto").path == str(tuned)
        assert runner.invoke(cli, ["finetune", "rollback"]).exit_code == 0
        assert resolve_model("auto").path != str(tuned) if _has_packaged() else True

    from faster_whisper import WhisperModel

    model = WhisperModel(str(tuned), device="cpu", compute_type="int8")
    segments, info = model.transcribe(
        _speechlike(9), language="en", beam_size=1, temperature=0.0, vad_filter=False, max_new_tokens=10
    )
    list(segments)  # runs through faster-whisper like any converted model
    assert info.language == "en"


def _has_packaged():
    from captionbridge.core.speech.models import PACKAGED_MODELS

    return any(p.installed() for p in PACKAGED_MODELS)


def test_a_model_worse_than_its_base_is_not_activated(engine_dirs, tmp_path):
    folder = registry.model_folder("worse")
    folder.mkdir(parents=True)
    build_tiny_whisper(folder, word_like=False)
    registry.register("worse", folder, "tiny", {}, {"held_out_wer_base": 0.10, "held_out_wer_tuned": 0.25})
    result = CliRunner().invoke(cli, ["finetune", "activate", "worse"])
    assert result.exit_code == 3 and "worse than its base" in result.output
    assert registry.active()["active"] is None
    assert resolve_model("worse").path == str(folder)  # still usable by name, just not the default


def test_finetune_needs_a_name_and_corrections(engine_dirs, tmp_path):
    base = build_tiny_whisper(tmp_path / "tiny", word_like=False)
    runner = CliRunner()
    no_name = runner.invoke(cli, ["finetune", "--base", str(base), "--data-dir", str(tmp_path / "d")])
    assert no_name.exit_code == 3 and "--name is required" in no_name.output
    empty = runner.invoke(
        cli, ["finetune", "--base", str(base), "--name", "x", "--data-dir", str(tmp_path / "d")]
    )
    assert empty.exit_code == 3 and "held-out" in empty.output
    bad_name = runner.invoke(cli, ["finetune", "--base", str(base), "--name", "../evil"])
    assert bad_name.exit_code == 3 and "model name" in bad_name.output


def test_rollback_without_an_active_model_says_so(engine_dirs):
    result = CliRunner().invoke(cli, ["finetune", "rollback"])
    assert result.exit_code == 3 and "no fine-tuned model is active" in result.output


def test_held_out_file_with_a_bad_line_names_it(engine_dirs, tmp_path):
    base = build_tiny_whisper(tmp_path / "tiny", word_like=False)
    data = tmp_path / "engine"
    _capture(CorrectionStore(data), n_jobs=1)
    bad = tmp_path / "held.jsonl"
    bad.write_text(json.dumps({"audio": "nope.flac", "text": "x"}) + "\n")
    result = CliRunner().invoke(
        cli, ["finetune", "--base", str(base), "--name", "y", "--held-out", str(bad), "--data-dir", str(data)]
    )
    assert result.exit_code == 3 and "line 1" in result.output and "nope.flac" in result.output
