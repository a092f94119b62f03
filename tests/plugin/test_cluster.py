"""The facility cluster end to end on this machine: a local Ray cluster (head + a second node process), the
Ray Serve application deployed by `captionbridge cluster deploy` (TLS on loopback) with two CPU replicas of
the packaged Whisper base model, and bay engines (`captionbridge caption --cluster`, real processes) against
it over loopback.

Covers: two bays at once with the same outputs as a local engine, the shared cache from a second bay (no
upload, no second transcription), a replica killed mid-request (the span completes, once), a bay asking for
another bay's job (refused), a revoked bay (refused), `cluster status`, and the whole cluster stopped (local
fallback). Everything started here is stopped by the fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from fixtures.ray_cluster import Facility, busy_replica, replica_pids, speech

pytestmark = pytest.mark.slow

SENTENCES = [
    "The harbour master walked along the quay at dawn, counting the boats that had come in overnight.",
    "Nobody in the village had expected the storm to pass so quickly, or the sea to be so calm afterwards.",
]


def words_of(out_dir: Path) -> list[tuple]:
    doc = json.loads(next(out_dir.glob("*.captions.json")).read_text(encoding="utf-8"))
    return [(w["text"], w["start_frame"], w["end_frame"]) for w in doc["words"]]


def assert_same_words(got: list[tuple], expected: list[tuple]) -> None:
    """What a local engine makes of the same audio: the same words on the same frames. Not bit-exact: CPU
    decoding on this shared machine is not deterministic from run to run even locally (near-ties in the beam
    went either way between two local runs, e.g. 'most' / 'motorcycle', and word timing follows the words
    around them), so: at least 85 % of the words match in order, at least 80 % of those sit on exactly the
    same frames, and none is more than 3 frames (120 ms) off. A span mapped to the wrong place, or another
    bay's span, fails all three."""
    import difflib

    a, b = [w[0].lower().strip(".,") for w in got], [w[0].lower().strip(".,") for w in expected]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    assert matcher.ratio() >= 0.85, (a, b)
    pairs = [(got[m.a + k], expected[m.b + k]) for m in matcher.get_matching_blocks() for k in range(m.size)]
    assert all(abs(g[1] - e[1]) <= 3 and abs(g[2] - e[2]) <= 3 for g, e in pairs), pairs
    assert sum(g[1:] == e[1:] for g, e in pairs) >= 0.8 * len(pairs), pairs


@pytest.fixture(scope="module")
def facility(ray_cluster, base_whisper_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("facility")
    ray_cluster.env["CAPTIONBRIDGE_CACHE_DIR"] = str(root / "bay-cache")
    f = Facility(ray_cluster, root, base_whisper_model)
    # transcription only: translation and speakers are tests/plugin/test_cluster_stages.py
    f.deploy(min_replicas=2, max_replicas=2, stages="none")
    f.add_bay("bay-a")
    f.add_bay("bay-b")
    f.media = {name: speech(root / f"{name}.wav", text) for name, text in zip(("one", "two"), SENTENCES)}
    return f


@pytest.fixture(scope="module")
def local_words(facility, tmp_path_factory):
    """What a local engine (no cluster) makes of each medium with the same model."""
    out = {}
    for name, media in facility.media.items():
        target = tmp_path_factory.mktemp(f"local-{name}")
        result = facility.caption(media, target, None)
        assert result.returncode == 0, result.stderr
        out[name] = words_of(target)
        assert len(out[name]) >= 12, out[name]  # real words: the comparisons below mean something
    return out


def test_two_bays_at_once_get_what_a_local_engine_gets(facility, local_words, tmp_path):
    procs = {}
    for bay, name in (("bay-a", "one"), ("bay-b", "two")):
        procs[bay] = subprocess.Popen(
            [
                os.fspath(Path(os.sys.executable)),
                "-m",
                "captionbridge.plugin.cli",
                *facility.caption_args(facility.media[name], tmp_path / bay, bay),
            ],
            env=facility.cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for bay, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "transcribed on this machine" not in err  # the cluster did it
    assert_same_words(words_of(tmp_path / "bay-a"), local_words["one"])
    assert_same_words(words_of(tmp_path / "bay-b"), local_words["two"])
    facility.outputs["one"] = words_of(tmp_path / "bay-a")
    status = facility.status()
    assert status["bays"]["bay-a"]["jobs"] == 1 and status["bays"]["bay-b"]["jobs"] == 1
    assert status["bays"]["bay-a"]["uploaded_bytes"] > 0 and status["bays"]["bay-b"]["uploaded_bytes"] > 0
    assert status["max_transcriptions_per_span"] == 1
    access = [json.loads(line) for line in (facility.data / "access.log").read_text().splitlines()]
    assert {("bay-a", "job"), ("bay-b", "job")} <= {(r["bay"], r["action"]) for r in access}


def test_second_bay_gets_the_first_bays_transcript_from_the_shared_cache(facility, tmp_path):
    before = facility.status()
    copy = tmp_path / "elsewhere" / "same-interview.wav"  # the same media under another path in another bay
    copy.parent.mkdir()
    shutil.copy(facility.media["one"], copy)
    result = facility.caption(copy, tmp_path / "out", "bay-b")
    assert result.returncode == 0, result.stderr
    assert words_of(tmp_path / "out") == facility.outputs["one"]  # bay a's transcript, exactly
    after = facility.status()
    assert after["bays"]["bay-b"]["cache_hits"] == before["bays"]["bay-b"]["cache_hits"] + 1
    assert (
        after["bays"]["bay-b"]["uploaded_bytes"] == before["bays"]["bay-b"]["uploaded_bytes"]
    )  # nothing sent
    assert after["transcribed_spans"] == before["transcribed_spans"]  # nothing transcribed again
    assert after["cache"]["hit_rate"] > 0
    text = facility.cli("cluster", "status", "--address", facility.cluster.address, timeout=90)
    assert text.returncode == 0, text.stderr
    assert (
        "nodes: 2 alive of 2" in text.stdout
        and "deployment Transcriber: healthy; replicas: running 2" in text.stdout
        and "bay bay-b:" in text.stdout
        and "cache hit rate" in text.stdout
    )


def _upload_and_submit(facility, bay: str, media: Path) -> dict:
    import soundfile as sf

    from captionbridge.core.cluster.client import wire_settings
    from captionbridge.core.cluster.wire import encode_flac
    from captionbridge.core.speech.transcribe import TranscribeOptions

    samples, rate = sf.read(str(media), dtype="float32")
    assert rate == 16000
    flac, digest = encode_flac(samples)
    token = facility.token(bay)
    status, missing = facility.http("POST", "/v1/audio/missing", token, {"hashes": [digest]})
    assert status == 200
    if missing["missing"]:
        assert facility.http("PUT", f"/v1/audio/{digest}", token, data=flac)[0] == 201
    status, job = facility.http(
        "POST",
        "/v1/jobs",
        token,
        {
            "request_id": uuid.uuid4().hex,
            "identity": f"test:{uuid.uuid4().hex}",
            "audio": digest,
            "settings": wire_settings(TranscribeOptions(language="en")),
            "seconds": len(samples) / rate,
        },
    )
    assert status == 201, job
    return job


def test_a_bay_cannot_read_another_bays_job(facility):
    job = _upload_and_submit(facility, "bay-a", facility.media["two"])
    status, body = facility.http("GET", f"/v1/jobs/{job['id']}", facility.token("bay-b"))
    assert status == 404 and "result" not in body and body["error"]["code"] == "not_found"
    status, body = facility.http("GET", f"/v1/jobs/{job['id']}", facility.token("bay-a"))
    assert status == 200 and body["id"] == job["id"]
    assert facility.http("GET", f"/v1/jobs/{job['id']}", "cbb_made-up-token")[0] == 401
    assert facility.http("GET", "/v1/info", "")[0] == 401


def test_the_ingress_speaks_only_tls_and_a_bay_checks_the_certificate(facility, tmp_path):
    plain = urllib.request.Request(facility.url.replace("https://", "http://") + "/v1/info")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(plain, timeout=10).read()
    args = [a for a in facility.caption_args(facility.media["one"], tmp_path / "out", "bay-a")]
    cut = args.index("--cluster-ca-cert")
    unverified = facility.cli(
        *(args[:cut] + args[cut + 2 :])
    )  # no CA: the self-signed certificate is not trusted
    assert unverified.returncode == 0, unverified.stderr
    assert "TLS failed" in unverified.stderr and "check ca_cert" in unverified.stderr
    assert "transcribed on this machine instead" in unverified.stderr
    refused = facility.cli("cluster", "deploy", "--address", facility.cluster.address, "--host", "0.0.0.0")
    assert refused.returncode == 3 and "without TLS" in refused.stderr


def test_a_revoked_bay_is_refused(facility, tmp_path):
    facility.add_bay("bay-c")
    assert facility.http("GET", "/v1/info", facility.token("bay-c"))[0] == 200
    result = facility.cli("cluster", "revoke-bay", "bay-c", "--data-dir", str(facility.data))
    assert result.returncode == 0, result.stderr
    status, body = facility.http("GET", "/v1/info", facility.token("bay-c"))
    assert status == 401 and "revoked" in body["error"]["message"]
    result = facility.caption(facility.media["one"], tmp_path / "out", "bay-c")
    assert result.returncode == 3
    assert "refused this bay" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.srt"))


def test_a_bays_engine_service_sends_its_jobs_to_the_cluster(facility, tmp_path):
    """`captionbridge serve --cluster` (the engine the editors' scripts talk to) transcribes through the
    cluster."""
    from fractions import Fraction

    import soundfile as sf
    from fixtures.service import write_timeline

    from captionbridge.plugin.service.client import EngineClient

    facility.add_bay("bay-d")
    media = speech(tmp_path / "three.wav", "The ferry to the island leaves at noon, weather permitting.")
    frames = int(sf.info(str(media)).duration * 25)
    timeline = write_timeline(
        tmp_path / "edit.otio",
        ["interview"],
        media=media,
        rate=Fraction(25),
        start_tc="10:00:00:00",
        clip_frames=frames,
    )
    config = tmp_path / "engine-config"
    env = {**facility.cluster.env, "CAPTIONBRIDGE_CONFIG_DIR": str(config)}
    engine = subprocess.Popen(
        [
            os.sys.executable,
            "-m",
            "captionbridge.plugin.cli",
            "serve",
            "--port",
            "0",
            "--cluster",
            facility.url,
            "--cluster-token-file",
            str(facility.tokens["bay-d"]),
            "--cluster-ca-cert",
            str(facility.cert),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (config / "service.json").exists():
            assert engine.poll() is None and time.monotonic() < deadline, engine.stderr.read()
            time.sleep(0.1)
        client = EngineClient.discover(config, timeout=30)
        job = client.submit(
            timeline, {"model": str(facility.model), "language": "en", "formats": ["json", "srt"]}
        )
        status = client.wait(job["id"], timeout=120, interval=0.2)
        assert status["state"] == "succeeded", status
        document = client.result(job["id"])
    finally:
        engine.terminate()
        try:
            engine.wait(15)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
    words = [w["text"].lower().strip(".,") for w in document["words"]]
    assert "island" in words and len(words) >= 6, words  # base mishears espeak's 'ferry' and 'noon'
    assert document["timeline"]["start_timecode"] == "10:00:00:00"
    assert not [w for w in document.get("warnings", []) if "facility cluster" in w]
    assert facility.status()["bays"]["bay-d"]["jobs"] == 1


def test_a_replica_killed_mid_request_costs_a_retry_not_the_job(facility, tmp_path):
    before = facility.status()
    media = speech(tmp_path / "long.wav", " ".join(SENTENCES), repeat=3)  # about 40 seconds
    proc = subprocess.Popen(
        [
            os.fspath(Path(os.sys.executable)),
            "-m",
            "captionbridge.plugin.cli",
            *facility.caption_args(media, tmp_path / "out", "bay-a"),
        ],
        env=facility.cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        replicas = replica_pids(facility)
        assert len(replicas) == 2, replicas
        victim = busy_replica(replicas, proc, seconds=90, every=0.5, ticks=20)  # >= 0.2 s of CPU in 0.5 s
        assert victim is not None, "no replica was seen working on the span"
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "transcribed on this machine" not in err  # finished on the cluster, on the other replica
    assert words_of(tmp_path / "out")
    after = facility.status()
    assert after["replicas_lost"] == before["replicas_lost"] + 1  # the kill did interrupt the span
    assert after["transcribed_spans"] == before["transcribed_spans"] + 1  # and it was transcribed once
    assert after["max_transcriptions_per_span"] == 1 and after["failed"] == before["failed"]


def test_the_front_door_restarting_mid_job_loses_nothing(facility, tmp_path):
    """The ingress replica (the cluster's front desk, with the queue in memory) is killed while a bay waits
    for a span: Serve restarts it, the bay's engine sees its job gone and queues the span again, and finishes
    on the cluster."""
    media = speech(tmp_path / "long.wav", SENTENCES[1], repeat=4)  # about 25 s
    proc = subprocess.Popen(
        [
            os.fspath(Path(os.sys.executable)),
            "-m",
            "captionbridge.plugin.cli",
            *facility.caption_args(media, tmp_path / "out", "bay-b"),
        ],
        env=facility.cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = facility.data / "access.log"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            jobs = [
                json.loads(line)
                for line in log.read_text().splitlines()
                if '"action": "job"' in line and '"bay": "bay-b"' in line
            ]
            if any(j["seconds"] > 15 for j in jobs):  # the long span is queued or running
                break
            time.sleep(0.2)
        [ingress] = [
            pid
            for pid in facility.cluster._our_pids()
            if Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .startswith(b"ray::ServeReplica:captionbridge:Ingress")
        ]
        assert proc.poll() is None, "the bay finished before the front desk could be killed"
        os.kill(ingress, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "transcribed on this machine" not in err
    assert words_of(tmp_path / "out")
    long_jobs = [
        json.loads(line)
        for line in log.read_text().splitlines()
        if '"action": "job"' in line and '"bay": "bay-b"' in line and json.loads(line)["seconds"] > 15
    ]
    assert len(long_jobs) == 2  # queued once, and once more after the front desk came back


def test_the_cluster_stopped_means_local_transcription_with_a_clear_message(facility, local_words, tmp_path):
    facility.cluster.stop()  # the whole cluster goes away (the fixture's own stop is then a no-op)
    result = facility.caption(facility.media["two"], tmp_path / "out", "bay-a")
    assert result.returncode == 0, result.stderr
    assert f"facility cluster at {facility.url} unreachable" in result.stderr
    assert "transcribed on this machine instead" in result.stderr
    assert_same_words(words_of(tmp_path / "out"), local_words["two"])
    config = (
        tmp_path / "facility.toml"
    )  # told to wait (briefly): the job fails, saying why, and nothing is written
    config.write_text(
        f'[cluster]\nurl = "{facility.url}"\ntoken_file = "{facility.tokens["bay-a"]}"\n'
        f'ca_cert = "{facility.cert}"\non_unreachable = "wait"\nwait_timeout_s = 2\n',
        encoding="utf-8",
    )
    waiting = facility.cli(
        *facility.caption_args(
            facility.media["two"], tmp_path / "wait", None, "--facility-config", str(config)
        ),
        timeout=90,
    )
    assert waiting.returncode == 1 and "Traceback" not in waiting.stderr
    assert "stayed unreachable for 2 s" in waiting.stderr and "the job was not transcribed" in waiting.stderr
    assert not list((tmp_path / "wait").glob("*.srt"))
