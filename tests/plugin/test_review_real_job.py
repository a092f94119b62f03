"""The review page on a job of the real caption pipeline (Whisper base, packaged): the job keeps the review
copy of its mix, the page shows the recognised words with their confidences, and an approved version is
written."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction

import pytest
import soundfile as sf
from fixtures.review import PageClient, mint_link
from fixtures.service import write_timeline

SPEECH = "And so, my fellow Americans, ask not what your country can do for you."


def test_a_real_job_is_reviewed(caption_engine, base_whisper_model, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run bash .ci/system-packages", pytrace=False)
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SPEECH], check=True)
    frames = int(sf.info(str(wav)).duration * 25) + 1
    timeline = write_timeline(
        tmp_path / "edit.otio",
        ["speech"],
        media=wav,
        rate=Fraction(25),
        start_tc="10:00:00:00",
        clip_frames=frames,
    )
    client = caption_engine.client
    job = client.submit(
        timeline, {"model": str(base_whisper_model), "language": "en", "formats": ["json", "srt"]}
    )
    assert client.wait(job["id"], timeout=180, interval=0.2)["state"] == "succeeded"
    review = caption_engine.config / "jobs" / job["id"] / "out" / ".review"
    assert (review / "mix.ogg").is_file() and (
        review / "peaks.i8"
    ).is_file()  # kept by the caption job itself
    assert ".review" not in json.dumps(client.status(job["id"])["files"])  # never a published job file

    page = PageClient(client.base_url)
    assert page.open_link(mint_link(client, job["id"]))[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job['id']}")[2])
    assert view["audio"]["duration"] == pytest.approx(frames / 25, abs=0.01)
    assert view["timeline"]["start_timecode"] == "10:00:00:00" and view["words"]
    assert all(0 <= w["confidence"] <= 1 for w in view["words"])
    cues = view["cues"]
    cues[0]["text"]["en"] = "And so, my fellow Americans,"
    status, _, body = page.request(
        "POST", f"/review/api/jobs/{job['id']}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201, body
    srt_name = next(f for f in json.loads(body)["files"] if f.endswith(".srt"))
    srt = client.request("GET", f"/v1/jobs/{job['id']}/versions/1/files/{srt_name}", raw=True).decode()
    assert srt.startswith("1\n") and "And so, my fellow Americans," in srt
    # the approval kept what it corrected as training data (issue 17): the model's words, the approved text
    # and the span's audio at 16 kHz, in the engine's own data folder
    from captionbridge.core.corrections.store import CorrectionStore

    store = CorrectionStore(caption_engine.config)
    records = store.records()
    assert json.loads(body)["corrections"] == len(records) >= 1
    first = records[0]
    assert first.corrected_text == "And so, my fellow Americans," and first.job_id == job["id"]
    assert first.model_words and not first.timing_only and first.language == "en"
    audio = store.audio(first)
    assert len(audio) == pytest.approx((first.end - first.start) * 16000, abs=400) and abs(audio).max() > 0.01

    # approving the same cues again records nothing new; moving only an out-point is a timing record
    status, _, again = page.request(
        "POST", f"/review/api/jobs/{job['id']}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201 and json.loads(again)["corrections"] == 0 and len(store.records()) == len(records)
    cues[-1]["end_frame"] -= 2
    status, _, moved = page.request(
        "POST", f"/review/api/jobs/{job['id']}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201 and json.loads(moved)["corrections"] == 1
    assert [r.timing_only for r in store.records()].count(True) == 1
