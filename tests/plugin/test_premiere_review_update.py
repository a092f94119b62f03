"""The Premiere panel's Review captions and Update captions (js/panel.js + jsx/host.jsx under Node with the fake
`app`), against a real engine: the sequence's job is recorded, the review page opens on it, and the approved
version becomes new caption tracks whose SRT lands every cue on its frame."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction

import pytest
from fixtures.fake_resolve import srt_frames
from fixtures.paths import REPO
from fixtures.review import PageClient

NODE = shutil.which("node")
HARNESS = REPO / "tests" / "premiere" / "harness.js"
pytestmark = pytest.mark.skipif(not NODE, reason="Node.js is not installed")
CLOCK = dict(rate="30000/1001", start_frame=107892, start_tc="01:00:00;00", df=True, display_format=102)


def panel(tmp_path, config, **cfg):
    cfg = {"output_dir": str(tmp_path / "out"), **CLOCK, **cfg}
    env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(config))
    run = subprocess.run([NODE, str(HARNESS), json.dumps(cfg)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_review_then_update_in_premiere(engine_factory, tmp_path):
    eng = engine_factory("premiere-review", job="fixtures.review:review_job_bare")
    client = eng.start()
    out = panel(tmp_path, eng.config)
    assert out["result"]["ok"], out
    record = json.loads((eng.config / "editor-jobs.json").read_text())["premiere:seq-1"]
    job_id = record["job"]

    # nothing approved yet
    out = panel(tmp_path, eng.config, action="update")
    assert out["error"]["user"] and "Approve" in out["error"]["message"]

    # Review captions opens a one-time link on this job
    out = panel(tmp_path, eng.config, action="review")
    assert out["result"]["job"] == job_id and out["calls"]["opened"] == [out["result"]["url"]]
    page = PageClient(client.base_url)
    assert page.open_link(out["result"]["url"])[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    cues = view["cues"][:3]
    cues[1]["text"]["en"] = "where the editor checks every word"
    status, _, body = page.request("POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues},
                                   headers={"Origin": page.base})
    assert status == 201, body

    out = panel(tmp_path, eng.config, action="update")
    result = out["result"]
    assert result["ok"] and result["version"] == 1, out
    track = out["calls"]["captionTracks"][-1]
    assert (track["start"], track["format"]) == (0, 6)
    assert srt_frames(track["path"], Fraction(30000, 1001)) == [(c["start_frame"], c["end_frame"]) for c in cues]
    assert "where the editor checks every word" in open(track["path"], encoding="utf-8").read()
    assert "CaptionBridge v1 English" in [item["name"] for item in out["calls"]["items"]]
    assert "delete the caption track" in result["message"]
    # run again: already there, nothing added
    out = panel(tmp_path, eng.config, action="update")
    assert out["result"]["ok"] and "already has version 1" in out["result"]["message"]
    assert out["calls"]["captionTracks"] == []
