"""The engine service running the real caption job (`run_caption_job`) on a real timeline with generated
speech."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction

import pytest
import soundfile as sf
from fixtures.paths import absent
from fixtures.service import running_caption_engine, write_timeline

from captionbridge.plugin.caption_job import run_caption_job  # noqa: F401  (a broken import is a red run)
from captionbridge.plugin.service.client import EngineError

SPEECH = "And so, my fellow Americans, ask not what your country can do for you."


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        absent("espeak-ng is not installed (apt-get install espeak-ng)")
    path = tmp_path_factory.mktemp("speech") / "speech one.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), SPEECH], check=True)
    return path


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    """The engine with its default job function (the real pipeline), its caches in a temporary folder."""
    with running_caption_engine(tmp_path_factory.mktemp("real-engine")) as eng:
        yield eng


def speech_timeline(tmp_path, wav, **kw):
    frames = int(sf.info(str(wav)).duration * 25) + 1
    return write_timeline(
        tmp_path / "speech edit.otio",
        ["speech"],
        media=wav,
        rate=Fraction(25),
        start_tc="10:00:00:00",
        clip_frames=frames,
        **kw,
    )


# the random-weight model decodes noise to the token limit at every fallback temperature (~40 s)
@pytest.mark.slow
def test_real_job_with_tiny_model(real_engine, tiny_whisper_model, speech_wav, tmp_path):
    client = real_engine.client
    timeline = speech_timeline(tmp_path, speech_wav)
    job = client.submit(
        timeline,
        {
            "model": str(tiny_whisper_model),
            "language": "en",
            "tracks": ["A1"],
            "formats": ["json", "srt", "vtt", "otio"],
            "device": "cpu",
        },
    )
    stages = set()
    status = client.wait(job["id"], timeout=120, interval=0.1, on_progress=lambda s: stages.add(s["stage"]))
    assert status["state"] == "succeeded", status
    result = client.result(job["id"])
    assert result["timeline"]["rate"] == "25" and result["timeline"]["start_timecode"] == "10:00:00:00"
    assert result["source_language"] == "en"
    assert set(result["files"]) == set(status["files"])
    assert any(f.endswith(".srt") for f in result["files"]) and any(
        f.endswith(".otio") for f in result["files"]
    )
    for cue in result["cues"]:  # random weights: structure, not words
        assert 0 <= cue["start_frame"] < cue["end_frame"]
    json_name = next(f for f in result["files"] if f.endswith(".json"))
    assert json.loads(client.file(job["id"], json_name))["cues"] == result["cues"]
    assert len(stages) >= 2  # progress went through the pipeline's stages


def test_real_job_errors(real_engine, tiny_whisper_model, speech_wav, tmp_path):
    client = real_engine.client
    no_model = client.submit(
        speech_timeline(tmp_path / "a", speech_wav), {"model": "large-v3", "language": "en"}
    )
    missing = client.submit(
        speech_timeline(tmp_path / "b", speech_wav, missing=True), {"model": str(tiny_whisper_model)}
    )
    broken = tmp_path / "broken.otio"
    broken.write_text(json.dumps({"OTIO_SCHEMA": "Timeline.1", "name": "x", "tracks": 5}))
    broken_job = client.submit(broken, {"model": str(tiny_whisper_model)})

    status = client.wait(no_model["id"], timeout=120, interval=0.1)
    assert status["state"] == "failed" and status["error"]["code"] == "model_unavailable", status
    with pytest.raises(EngineError) as err:
        client.result(no_model["id"])
    assert err.value.status == 422 and "captionbridge[models]" in err.value.message

    status = client.wait(missing["id"], timeout=120, interval=0.1)
    assert status["state"] == "failed" and status["error"]["code"] == "missing_media", status
    assert "gone.wav" in status["error"]["message"]

    status = client.wait(broken_job["id"], timeout=120, interval=0.1)
    assert status["state"] == "failed", status
    assert status["error"]["code"] != "internal_error", status  # a user mistake, not a traceback
    for job in (no_model, missing, broken_job):
        assert not (real_engine.config / "jobs" / job["id"] / "out").exists()


def test_real_job_with_base_model_transcribes(real_engine, base_whisper_model, speech_wav, tmp_path):
    client = real_engine.client
    job = client.submit(
        speech_timeline(tmp_path, speech_wav),
        {"model": str(base_whisper_model), "language": "en", "formats": ["srt"]},
    )
    status = client.wait(job["id"], timeout=180, interval=0.2)
    assert status["state"] == "succeeded", status
    assert any(
        str(base_whisper_model) in m for m in client.health()["warm_models"]
    )  # kept warm for the next job
    text = " ".join(c["text"]["en"] for c in client.result(job["id"])["cues"]).lower()
    assert "country" in text and "ask" in text
    srt = client.file(job["id"], next(f for f in status["files"] if f.endswith(".srt"))).decode()
    assert "-->" in srt and "country" in srt.lower()
