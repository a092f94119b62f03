"""Whisper batching on the facility cluster (`cluster deploy --whisper-batch-size 4`): a local Ray cluster
(head + a second node process, loopback, TLS), one CPU replica of the packaged Whisper base model; bays talk
to it over HTTP as their engines do.

Covers: two bays' short spans sent at the same moment are decoded in one batch and each gets what the
engine's own span transcription gives it; a long span and a span with other settings meet in a batch but
are not decoded together; the replica killed mid-batch costs a retry, and each span is still transcribed
once. Everything started here is stopped by the fixtures (tests/fixtures/ray_cluster.py).
"""

from __future__ import annotations

import difflib
import os
import signal
import threading
import time
import uuid

import pytest
from test_cluster import SENTENCES, Facility, _cpu_ticks, _replica_pids, speech

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def facility(ray_cluster, base_whisper_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("facility-batching")
    f = Facility(ray_cluster, root, base_whisper_model)
    result = f.cli(
        "cluster",
        "deploy",
        "--address",
        ray_cluster.address,
        "--data-dir",
        str(f.data),
        "--model",
        str(base_whisper_model),
        "--device",
        "cpu",
        "--min-replicas",
        "1",
        "--max-replicas",
        "1",
        "--whisper-batch-size",
        "4",
        "--batch-wait-ms",
        "1000",  # this loaded 2-core machine: two HTTP submissions can be a few hundred ms apart
        "--stages",
        "none",
        "--port",
        str(f.port),
        "--tls-cert",
        str(f.cert),
        "--tls-key",
        str(f.key),
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    f.add_bay("bay-a")
    f.add_bay("bay-b")
    f.media = {n: speech(root / f"s{n}.wav", text) for n, text in enumerate(SENTENCES)}
    f.media["long"] = speech(root / "long.wav", " ".join(SENTENCES), repeat=3)  # about 40 s of speech
    return f


def _submit(facility, bay: str, media, **settings) -> str:
    import soundfile as sf

    from captionbridge.core.cluster.client import wire_settings
    from captionbridge.core.cluster.wire import encode_flac
    from captionbridge.core.speech.transcribe import TranscribeOptions

    samples, rate = sf.read(str(media), dtype="float32")
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
            "settings": wire_settings(TranscribeOptions(language="en", **settings)),
            "seconds": len(samples) / rate,
        },
    )
    assert status == 201, job
    return job["id"]


def _together(facility, jobs: list[tuple]) -> list[dict]:
    """Each (bay, media, settings) uploaded first, then all submitted at the same moment; their finished
    results."""
    import soundfile as sf

    from captionbridge.core.cluster.wire import encode_flac

    for bay, media, _ in jobs:  # uploads first: the submissions then arrive together
        samples, _ = sf.read(str(media), dtype="float32")
        flac, digest = encode_flac(samples)
        token = facility.token(bay)
        status, missing = facility.http("POST", "/v1/audio/missing", token, {"hashes": [digest]})
        if missing["missing"]:
            assert facility.http("PUT", f"/v1/audio/{digest}", facility.token(bay), data=flac)[0] == 201
    ids: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def go(n, bay, media, settings):
        start.wait()
        ids[n] = _submit(facility, bay, media, **settings)

    threads = [threading.Thread(target=go, args=(n, *job)) for n, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(ids), ids
    return [_wait(facility, bay, job_id) for (bay, _, _), job_id in zip(jobs, ids)]


def _wait(facility, bay: str, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, view = facility.http("GET", f"/v1/jobs/{job_id}", facility.token(bay))
        assert status == 200, view
        if view["state"] == "done":
            return view["result"]
        assert view["state"] in ("queued", "running"), view
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} of {bay} not done in {timeout:.0f} s")


def _texts(words) -> list[str]:
    return [w[0].lower().strip(".,") for w in words]


def test_two_bays_short_spans_are_decoded_in_one_batch(facility, base_whisper_model):
    import soundfile as sf

    from captionbridge.core.speech import models
    from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_span_samples

    results = _together(facility, [("bay-a", facility.media[0], {}), ("bay-b", facility.media[1], {})])
    for result in results:
        assert result["replica"]["batched_requests"] == 2 and result["replica"]["decoded_together"] == 2
    model = models.load_whisper(str(base_whisper_model), "cpu", "auto", 1)  # as the replica loads it
    options = TranscribeOptions(language="en", model=str(base_whisper_model), device="cpu", cache=False)
    for result, media in zip(results, (facility.media[0], facility.media[1])):
        samples, _ = sf.read(str(media), dtype="float32")
        alone = transcribe_span_samples(samples, options, model)  # the engine on this machine, alone
        got, want = _texts(result["words"]), _texts(alone["words"])
        assert len(want) >= 12, want
        matcher = difflib.SequenceMatcher(a=got, b=want, autojunk=False)
        # each bay its own words (the other bay's span would share almost none). Not all of them: a replica's
        # decode in another process and thread count is not bit-exact with this one; near-ties in the beam go
        # either way (seen here: 'the most that had' / 'the motorcycle had'), as test_cluster.py notes
        assert matcher.ratio() >= 0.85, (got, want)
        pairs = [
            (result["words"][m.a + k], alone["words"][m.b + k])
            for m in matcher.get_matching_blocks()
            for k in range(m.size)
        ]
        # the acoustic aligner places the words from the audio in both; 80 ms = two frames at 25 fps
        assert max(max(abs(g[1] - w[1]), abs(g[2] - w[2])) for g, w in pairs) <= 0.08, pairs
    batches = facility.status()["transcriber_replica"]["batches"]
    assert batches["largest_decoded_together"] >= 2 and batches.get("failed_batches", 0) == 0


def test_a_long_span_and_other_settings_are_not_decoded_together(facility):
    # the short default span could pair with the long one (same settings) or with the other short one (same
    # length): neither may happen
    jobs = [
        ("bay-a", facility.media["long"], {}),
        ("bay-b", facility.media[0], {}),
        ("bay-a", facility.media[1], {"beam_size": 2}),
    ]
    results = _together(facility, jobs)
    for result in results:
        assert result["replica"]["batched_requests"] == 3  # they met in one batch ...
        assert result["replica"]["decoded_together"] == 1  # ... and each was decoded on its own
        assert len(result["words"]) >= 12


def test_the_replica_killed_mid_batch_costs_a_retry_and_each_span_is_transcribed_once(facility):
    before = facility.status()
    replicas = _replica_pids(facility)
    assert len(replicas) == 1, replicas
    victim = replicas[0]
    killed = threading.Event()

    def kill_when_busy():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ticks = _cpu_ticks(victim)
            time.sleep(0.5)
            if _cpu_ticks(victim) - ticks >= 20:  # >= 0.2 s of CPU in 0.5 s: the batch is being decoded
                os.kill(victim, signal.SIGKILL)
                killed.set()
                return

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        results = _together(facility, [("bay-a", facility.media[1], {}), ("bay-b", facility.media[0], {})])
    finally:
        killer.join(120)
    assert killed.is_set(), "the replica was never seen working"
    assert all(len(r["words"]) >= 12 for r in results)
    after = facility.status()
    assert after["replicas_lost"] >= before["replicas_lost"] + 1  # the kill did interrupt the batch
    assert after["transcribed_spans"] == before["transcribed_spans"] + 2  # each span transcribed once
    assert after["max_transcriptions_per_span"] == 1 and after["failed"] == before["failed"]
