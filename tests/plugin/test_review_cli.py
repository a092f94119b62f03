"""`captionbridge review`, imports of a captions JSON, approval refused by the validator, and the review
audio, against a real engine process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from fixtures.review import PageClient, mint_link, script_document, write_review_timeline

from captionbridge.adapters.timeline_read import load_timeline
from captionbridge.plugin.caption_job import write_outputs


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(config))
    return subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", "review", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def open_page(client, url: str) -> PageClient:
    page = PageClient(client.base_url)
    status, headers, body = page.open_link(url)
    assert status == 303, body
    return page


def test_review_a_job_id_prints_a_working_one_time_link(review_engine):
    eng, client, job_id, _ = review_engine
    done = run_cli(eng.config, job_id, "--no-open")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert (
        url.startswith(client.base_url + "/review/open?code=") and eng.token not in done.stdout + done.stderr
    )
    page = open_page(client, url)
    assert page.request("GET", f"/review/api/jobs/{job_id}")[0] == 200
    assert PageClient(client.base_url).open_link(url)[0] == 403  # once only


def test_review_a_captions_json_imports_it_and_writes_versions_beside_it(review_engine, tmp_path):
    eng, client, _, _ = review_engine
    timeline = write_review_timeline(tmp_path / "cut" / "reel2.otio")
    loaded = load_timeline(timeline)
    out = tmp_path / "out"
    write_outputs(script_document(loaded), out, "reel2", ["json", "srt", "vtt"], loaded)
    done = run_cli(eng.config, str(out / "reel2.captions.json"), "--timeline", str(timeline), "--no-open")
    assert done.returncode == 0, done.stderr
    page = open_page(client, done.stdout.strip())
    jobs = json.loads(page.request("GET", "/review/api/jobs")[2])["jobs"]
    assert jobs[0]["timeline"] == "reel2" and jobs[0]["state"] == "succeeded"  # newest first
    assert jobs[0]["low_confidence_words"] == sum(1 for n in range(50) if n % 4 == 3)
    job_id = jobs[0]["id"]
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    assert view["audio_available"] and view["formats"] == ["json", "srt", "vtt"]
    # the audio is the timeline's own mix, made on first use: Ogg Vorbis, as long as the timeline
    status, headers, audio = page.request("GET", f"/review/api/jobs/{job_id}/audio")
    assert status == 200 and audio[:4] == b"OggS"
    (tmp_path / "mix.ogg").write_bytes(audio)
    info = sf.info(str(tmp_path / "mix.ogg"))
    assert abs(info.duration - loaded.duration_frames * 1001 / 24000) < 0.05
    status, headers, peaks = page.request("GET", f"/review/api/jobs/{job_id}/peaks")
    assert status == 200 and len(peaks) == 2 * int(np.ceil(info.duration * 100))
    cues = view["cues"]
    cues[0]["text"]["en"] = "Every deliverable goes through review"
    status, _, body = page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201, body
    assert json.loads(body)["exported_to"] == str(out)
    srt = (out / "reel2.v1.en.srt").read_text(encoding="utf-8")
    assert "Every deliverable goes through review" in srt
    assert (out / "reel2.v1.en.vtt").is_file() and (out / "reel2.v1.captions.json").is_file()
    assert "Every caption deliverable" in (out / "reel2.en.srt").read_text(
        encoding="utf-8"
    )  # the original stays


def test_approval_is_refused_while_a_hard_rule_fails(review_engine):
    eng, client, job_id, _ = review_engine
    page = open_page(client, mint_link(client, job_id))
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    cues = view["cues"]
    cues[2]["start_frame"] = cues[1]["end_frame"]  # no gap: a hard rule
    cues[3]["text"]["en"] = ""  # empty: another
    own = {"Origin": page.base}
    status, _, body = page.request("PUT", f"/review/api/jobs/{job_id}/draft", {"cues": cues}, headers=own)
    assert status == 200
    rules = {(f["cue"], f["rule"]) for f in json.loads(body)["findings"] if f["severity"] == "hard"}
    assert {(2, "gap"), (3, "empty")} <= rules
    status, _, body = page.request("POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues}, headers=own)
    assert status == 422
    error = json.loads(body)["error"]
    assert error["code"] == "validation_failed" and "cue 3" in error["message"]
    assert client.request("GET", f"/v1/jobs/{job_id}/versions") == {"versions": []}
    # a malformed draft gets one clear line, and nothing is written
    bad = [{"start_frame": 10, "end_frame": 5, "text": {"en": "x"}}]
    status, _, body = page.request("PUT", f"/review/api/jobs/{job_id}/draft", {"cues": bad}, headers=own)
    assert status == 422 and "cue 1 ends at frame 5" in json.loads(body)["error"]["message"]
    bad = [{"start_frame": 10, "end_frame": 50, "text": {"fr": "x"}}]
    status, _, body = page.request("PUT", f"/review/api/jobs/{job_id}/draft", {"cues": bad}, headers=own)
    assert status == 422 and "'fr'" in json.loads(body)["error"]["message"]


def test_review_cli_errors_are_one_line(review_engine, tmp_path):
    eng, _, _, _ = review_engine
    done = run_cli(eng.config, str(tmp_path / "nothing.json"), "--no-open")
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "neither a job id" in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = run_cli(eng.config, str(bad), "--no-open")
    assert done.returncode == 3 and "not a readable captions JSON" in done.stderr
    done = run_cli(eng.config, "0" * 32, "--no-open")
    assert done.returncode == 3 and "no job" in done.stderr and "Traceback" not in done.stderr
    done = run_cli(tmp_path / "no-engine", "--no-open")
    assert done.returncode == 6 and "captionbridge serve" in done.stderr and done.stderr.count("\n") == 1


def test_resolve_markers_and_the_page_share_one_threshold():
    from captionbridge.plugin.service.review_jobs import LOW_CONFIDENCE

    script = (Path(__file__).resolve().parents[2] / "resolve_scripts" / "Generate Captions.py").read_text()
    assert f"LOW_CONFIDENCE = {LOW_CONFIDENCE}" in script
