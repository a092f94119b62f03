"""POST /v1/models/reload on a real engine: new jobs take the model `finetune activate` chose, a rollback goes
back, and a model worse than its base never becomes active."""

from __future__ import annotations

import pytest
from fixtures.tiny_whisper import build_tiny_whisper

from captionbridge.core.finetune import registry


def _register(name, base_wer, tuned_wer):
    folder = registry.model_folder(name)
    folder.mkdir(parents=True)
    build_tiny_whisper(folder, word_like=False)
    registry.register(
        name, folder, "tiny", {}, {"held_out_wer_base": base_wer, "held_out_wer_tuned": tuned_wer}
    )
    return folder


def test_reload_switches_new_jobs_and_rolls_back(engine_factory, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CAPTIONBRIDGE_CACHE_DIR", str(cache))
    v1 = _register("harbour-v1", 0.30, 0.20)
    v2 = _register("harbour-v2", 0.30, 0.10)
    engine = engine_factory(
        "engine", env={"CAPTIONBRIDGE_CACHE_DIR": str(cache), "CAPTIONBRIDGE_OFFLINE": "1"}
    )
    client = engine.start()
    try:
        registry.activate("harbour-v1")
        first = client.request("POST", "/v1/models/reload")
        assert first["source"] == "tuned" and first["path"] == str(v1) and first["model"] == "harbour-v1"
        registry.activate("harbour-v2")
        second = client.request("POST", "/v1/models/reload")
        assert second["path"] == str(v2) and second["previous"] == "harbour-v1"
        registry.rollback()
        back = client.request("POST", "/v1/models/reload")
        assert back["path"] == str(v1) and back["previous"] == "harbour-v2"
        registry.register("harbour-v1", v1, "tiny", {}, {"held_out_wer_base": 0.3, "held_out_wer_tuned": 0.4})
        with pytest.raises(Exception, match="worse than its base"):
            registry.activate("harbour-v1")  # already active, but a re-scored card is still checked
    finally:
        engine.stop()
