"""Translation and speakers on the facility cluster, end to end on this machine: a local Ray cluster (head +
a second node process), the application deployed by `captionbridge cluster deploy` (TLS on loopback) with a
CPU Whisper replica and a CPU stage replica holding the (tiny, offline) translation models and the voice
encoder, and bay engines (`captionbridge caption --cluster ...`, real processes) against it.

Covers: a job with translation and speakers from a bay comes out exactly as a local engine makes it from the
same words; a second bay gets the first bay's translation and speakers from the shared cache (nothing
uploaded, nothing computed again) and cannot read the first bay's jobs; `cluster status` shows the stages; a
stage replica killed mid-request costs a retry on the other one (done once, the job completes on the
cluster); the whole cluster stopped means local translation and speakers with a clear message each.
Everything started here is stopped by the fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.ray_cluster import Facility, busy_replica, replica_pids

pytestmark = pytest.mark.slow

STAGE_FLAGS = ("--translate-to", "zh", "--speakers", "auto", "--formats", "json")


def document(out_dir: Path) -> dict:
    doc = json.loads(next(out_dir.glob("*.captions.json")).read_text(encoding="utf-8"))
    doc.pop("warnings", None)
    return doc


@pytest.fixture(scope="module")
def facility(ray_cluster, base_whisper_model, tiny_marian, conversations_module, tmp_path_factory):
    root = tmp_path_factory.mktemp("facility-stages")
    f = Facility(ray_cluster, root, base_whisper_model)
    f.deploy(
        min_replicas=1,
        max_replicas=1,
        stages="translate,speakers",
        stage_replicas=2,
        stage_cpus=0.5,
        translation_model=[tiny_marian["en-zh-ct2"], tiny_marian["zh-en-ct2"]],
    )
    f.add_bay("bay-a")
    f.add_bay("bay-b")
    talk = conversations_module.make_conversation(2, seed=7, turns=4, voices=["en-us+m3", "en-us+f2"])
    f.media = talk.save(root / "media")
    f.translation_model = tiny_marian["en-zh-ct2"]
    return f


def caption(facility: Facility, out: Path, bay: str | None, cache: Path, *extra: str):
    args = facility.caption_args(
        facility.media, out, bay, *STAGE_FLAGS, "--translation-model", str(facility.translation_model), *extra
    )
    return facility.cli(*args, env={"CAPTIONBRIDGE_CACHE_DIR": str(cache)}, timeout=300)


def test_translation_and_speakers_from_a_bay_are_what_a_local_engine_makes(facility, tmp_path):
    """Transcribed here (so both runs caption the same words: the bay's transcript cache), translated and
    labelled on the cluster, then the same job with no cluster at all: the same captions, both languages,
    the same speakers."""
    cache = tmp_path / "bay-a-cache"
    remote = caption(facility, tmp_path / "remote", "bay-a", cache, "--cluster-stages", "translate,speakers")
    assert remote.returncode == 0, remote.stderr
    assert "on this machine instead" not in remote.stderr and "facility cluster" not in remote.stderr
    status = facility.status()
    assert (
        status["stages"]["translate"]["done"] >= 1 and status["stages"]["translate"]["texts_translated"] > 0
    )
    assert status["stages"]["speakers"]["done"] == 1
    assert status["bays"]["bay-a"]["jobs"] == 0  # transcription stayed on the bay, as configured
    local = caption(facility, tmp_path / "local", None, cache)
    assert local.returncode == 0, local.stderr
    got, expected = document(tmp_path / "remote"), document(tmp_path / "local")
    assert got["cues"] and all("zh" in c["text"] and "en" in c["text"] for c in got["cues"])
    assert [s["id"] for s in got["speakers"]] == ["S1", "S2"]
    assert got["cues"] == expected["cues"]
    assert got["words"] == expected["words"] and got["speakers"] == expected["speakers"]
    facility.local_document = expected
    facility.cache_a = cache


def test_a_second_bay_gets_translation_and_speakers_from_the_shared_cache(facility, tmp_path):
    first = caption(facility, tmp_path / "a", "bay-a", tmp_path / "cache-a")  # every stage on the cluster
    assert first.returncode == 0, first.stderr
    assert "on this machine instead" not in first.stderr
    before = facility.status()
    second = caption(facility, tmp_path / "b", "bay-b", tmp_path / "cache-b")  # another bay, nothing local
    assert second.returncode == 0, second.stderr
    after = facility.status()
    assert document(tmp_path / "b") == document(tmp_path / "a")
    bay_b = after["bays"]["bay-b"]
    assert bay_b["translate_lookups"] > 0 and bay_b["translate_hits"] == bay_b["translate_lookups"]
    assert bay_b["speakers_hits"] == 1 and bay_b["cache_hits"] >= 1 and bay_b["uploaded_bytes"] == 0
    for kind in ("translate", "speakers"):  # nothing was computed again: answered from the cache
        assert after["stages"][kind]["done"] == before["stages"][kind]["done"]
    assert bay_b["translate_jobs"] >= 1 and bay_b["speakers_jobs"] == 0  # the mix was never even sent
    assert (
        after["stages"]["translate"]["texts_translated"] == before["stages"]["translate"]["texts_translated"]
    )
    assert after["transcribed_spans"] == before["transcribed_spans"]
    # bay b cannot read bay a's speakers job
    log = [json.loads(line) for line in (facility.data / "access.log").read_text().splitlines()]
    job = next(
        r["job"] for r in log if r["bay"] == "bay-a" and r["action"] == "job" and r.get("stage") == "speakers"
    )
    status, body = facility.http("GET", f"/v1/jobs/{job}", facility.token("bay-b"))
    assert status == 404 and "result" not in body
    assert facility.http("GET", f"/v1/jobs/{job}", facility.token("bay-a"))[0] == 200
    text = facility.cli("cluster", "status", "--address", facility.cluster.address, timeout=90)
    assert text.returncode == 0, text.stderr
    assert "deployment Stages: healthy" in text.stdout
    assert "stage translate (en-zh " in text.stdout and "stage speakers (resemblyzer)" in text.stdout


def test_a_stage_replica_killed_mid_request_costs_a_retry_not_the_job(
    facility, conversations_module, tmp_path
):
    import os
    import signal
    import subprocess
    import sys

    before = facility.status()
    talk = conversations_module.make_conversation(2, seed=11, turns=14, voices=["en-us+m3", "en-us+f2"])
    media = talk.save(tmp_path / "media")
    args = facility.caption_args(
        media,
        tmp_path / "out",
        "bay-a",
        "--speakers",
        "2",
        "--formats",
        "json",
        "--cluster-stages",
        "speakers",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "captionbridge.plugin.cli", *args],
        env={**facility.cluster.env, "CAPTIONBRIDGE_CACHE_DIR": str(tmp_path / "cache")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        replicas = replica_pids(facility, "Stages")
        assert len(replicas) == 2, replicas
        victim = busy_replica(replicas, proc, seconds=240, every=0.3, ticks=12)  # >= 0.12 s of CPU in 0.3 s
        assert victim is not None, "no stage replica was seen labelling the speakers"
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "on this machine instead" not in err  # finished on the cluster, on the other replica
    doc = document(tmp_path / "out")
    assert [s["id"] for s in doc["speakers"]] == ["S1", "S2"]
    after = facility.status()
    assert after["replicas_lost"] == before["replicas_lost"] + 1  # the kill did interrupt the request
    assert after["stages"]["speakers"]["done"] == before["stages"]["speakers"]["done"] + 1  # done once
    assert after["failed"] == before["failed"]


def test_the_cluster_stopped_means_local_translation_and_speakers_with_a_clear_message(facility, tmp_path):
    facility.cluster.stop()  # the whole cluster goes away (the fixture's own stop is then a no-op)
    result = caption(facility, tmp_path / "out", "bay-a", facility.cache_a)
    assert result.returncode == 0, result.stderr
    url = facility.url
    assert f"facility cluster at {url} unreachable" in result.stderr
    assert "transcribed on this machine instead" in result.stderr
    assert "the translation was done on this machine instead" in result.stderr
    assert "the speaker labelling was done on this machine instead" in result.stderr
    assert document(tmp_path / "out") == facility.local_document
