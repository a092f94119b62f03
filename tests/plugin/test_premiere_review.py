"""The Premiere panel's Review captions and Update captions (js/review.js + jsx/review.jsx, with the real
jsx/host.jsx, under Node with a fake `app`) against a real engine: the sequence's job is found, the review
page opens on it, and the approved version becomes new caption tracks whose SRT lands every cue on its
frame."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction

import pytest
from fixtures.fake_resolve import srt_frames
from fixtures.paths import REPO
from fixtures.review import PageClient, write_review_timeline

NODE = shutil.which("node")
HARNESS = REPO / "tests" / "premiere" / "review_harness.js"
if NODE is None:  # pragma: no cover - .ci/system-packages installs it
    pytest.fail("Node.js is not installed: run bash .ci/system-packages", pytrace=False)
CLOCK = dict(rate="24000/1001", start_frame=86400, display_format=110, name="Sequence 01")


def panel(tmp_path, config, **cfg):
    cfg = {"output_dir": str(tmp_path / "out"), **CLOCK, **cfg}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(config), TMPDIR=str(tmp_path / "tmp"))
    run = subprocess.run(
        [NODE, str(HARNESS), json.dumps(cfg)], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["leftovers"] == [], "the read-back's temporary folder is removed"
    return out


def test_review_then_update_in_premiere(engine_factory, tmp_path):
    eng = engine_factory("premiere-review", job="fixtures.review:review_job")
    client = eng.start()
    # no job for this sequence yet
    out = panel(tmp_path, eng.config, action="update")
    assert out["error"]["user"] and "Generate captions" in out["error"]["message"]
    # the job the panel's Generate captions makes: the sequence exported as "<name>.xml", formats srt + json
    timeline = write_review_timeline(tmp_path / "export" / "Sequence 01.otio")
    job_id = client.submit(timeline, {"formats": ["srt", "json"]})["id"]
    assert client.wait(job_id, timeout=60)["state"] == "succeeded"

    out = panel(tmp_path, eng.config, action="update")
    assert out["error"]["user"] and "Approve" in out["error"]["message"]

    out = panel(tmp_path, eng.config, action="review")
    assert out["result"]["job"] == job_id and out["calls"]["opened"] == [out["result"]["url"]]
    page = PageClient(client.base_url)
    assert page.open_link(out["result"]["url"])[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    cues = view["cues"][:4]
    cues[1]["text"]["en"] = "where the editor checks every word"
    status, _, body = page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201, body

    out = panel(tmp_path, eng.config, action="update")
    result = out["result"]
    assert result["ok"] and result["version"] == 1, out
    [track] = out["calls"]["captionTracks"]
    assert (track["start"], track["format"]) == (0, 6)
    assert srt_frames(track["path"], Fraction(24000, 1001)) == [
        (c["start_frame"], c["end_frame"]) for c in cues
    ]
    assert "where the editor checks every word" in open(track["path"], encoding="utf-8").read()
    assert "CaptionBridge v1 English" in out["items"]
    assert "delete the caption track" in result["message"]
    # read back as Generate captions' tracks are: the sequence exported alone before and after
    assert result["verified"] and "read back from Premiere" in result["message"]
    assert len(out["calls"]["projectExports"]) == 2
    # again: already there, nothing added
    out = panel(tmp_path, eng.config, action="update")
    assert out["result"]["ok"] and "already has version 1" in out["result"]["message"]
    assert out["calls"]["captionTracks"] == []
    # Premiere refusing the track: reported with the files to import by hand
    page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues[:3]}, headers={"Origin": page.base}
    )
    out = panel(tmp_path, eng.config, action="update", refuse_captions=True)
    assert not out["result"]["ok"] and "File > Import" in out["result"]["message"]
    # Premiere saying it made the track while the sequence does not hold it: not "added", and not recorded
    out = panel(tmp_path, eng.config, action="update", caption_track_silently_missing=True)
    result = out["result"]
    assert not result["ok"] and "reading the sequence back does not show them" in result["message"]
    assert "v2.en.srt" in result["message"] and "File > Import" in result["message"]
    # a Premiere without Sequence.exportAsProject: added as Premiere reports, and said to be unchecked
    out = panel(tmp_path, eng.config, action="update", no_export_as_project=True)
    result = out["result"]
    assert result["ok"] and result["version"] == 2 and not result["verified"]
    assert "no way to read them back" in result["message"]
    assert "read back from Premiere" not in result["message"]


def test_the_job_generate_recorded_is_the_sequences_job(engine_factory, tmp_path):
    """Generate captions records its job per sequence id: Review and Update work on that one, not on the
    newest job from a sequence of the same name; a recorded job the engine no longer has is said so."""
    eng = engine_factory("premiere-recorded", job="fixtures.review:review_job")
    client = eng.start()
    timeline = write_review_timeline(tmp_path / "export" / "Sequence 01.otio")
    jobs = []
    for _ in range(2):  # the same sequence name twice (another project's "Sequence 01", say)
        jobs.append(client.submit(timeline, {"formats": ["srt", "json"]})["id"])
        assert client.wait(jobs[-1], timeout=60)["state"] == "succeeded"
    records = eng.config / "editor-jobs.json"
    records.write_text(
        json.dumps({"premiere:seq-1": {"job": jobs[0], "version": 0, "sequence": "Sequence 01"}})
    )
    out = panel(tmp_path, eng.config, action="review")
    assert out["result"]["job"] == jobs[0], "the recorded job, not the newest of that name"
    records.write_text(
        json.dumps({"premiere:seq-1": {"job": "0" * 32, "version": 0, "sequence": "Sequence 01"}})
    )
    out = panel(tmp_path, eng.config, action="review")
    assert (
        out["result"]["ok"]
        and out["result"]["job"] is None
        and "no longer has job" in out["result"]["message"]
    )
    assert out["calls"]["opened"] == [out["result"]["url"]]
    out = panel(tmp_path, eng.config, action="update")
    assert out["error"]["user"] and "no longer has job" in out["error"]["message"]
    assert "Generate captions" in out["error"]["message"] and out["calls"]["captionTracks"] == []
    # a record file that is not JSON is said so, and left as it is (the Resolve scripts keep jobs in it too)
    records.write_text('{"resolve:Project/Reel 1": {"job"')
    out = panel(tmp_path, eng.config, action="review")
    assert out["error"]["user"] and "cannot be read" in out["error"]["message"]
    assert records.read_text() == '{"resolve:Project/Reel 1": {"job"'


def test_review_jsx_is_es3():
    code = (REPO / "plugin" / "premiere" / "jsx" / "review.jsx").read_text()
    assert "=>" not in code and "`" not in code and ".indexOf(" not in code and "let " not in code
