"""Whisper batching on the facility cluster (`cluster deploy --whisper-batch-size 4`): a local Ray cluster
(head + a second node process, loopback, TLS), one CPU replica of the packaged Whisper base model; bays talk
to it over HTTP as their engines do.

Covers: two bays' short spans sent at the same moment are decoded in one batch and each bay gets the words of
its own audio (its own sentence, not the other bay's) on its own speech; a long span and a span with other
settings meet in a batch but are each decoded on their own (the replica's counters say so); the replica
killed mid-batch costs a retry, and each span is still answered, and transcribed, once. Nothing here
compares a batched decode with an unbatched one word for word (CTranslate2's near-ties move with what ran
before in a process). Everything started here is stopped by the fixtures (tests/fixtures/ray_cluster.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import numpy as np
import pytest
import soundfile as sf
from fixtures.ray_cluster import Facility, cpu_ticks, replica_pids, speech

from captionbridge.core.finetune.evaluate import word_errors

pytestmark = pytest.mark.slow

SENTENCES = [
    "The harbour master walked along the quay at dawn, counting the boats that had come in overnight.",
    "Nobody in the village had expected the storm to pass so quickly, or the sea to be so calm afterwards.",
]
OWN_WER, OTHER_WER = 0.4, 0.75  # see tests/core/cluster/test_whisper_batch.py (measured 0-0.18 / 0.9-1.1)


@pytest.fixture(scope="module")
def facility(ray_cluster, base_whisper_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("facility-batching")
    f = Facility(ray_cluster, root, base_whisper_model)
    f.deploy(
        min_replicas=1,
        max_replicas=1,
        whisper_batch_size=4,
        batch_wait_ms=1000,  # this loaded 2-core machine: two HTTP submissions can be a few hundred ms apart
        stages="none",
    )
    f.add_bay("bay-a")
    f.add_bay("bay-b")
    # a different silence before and after each sentence: words placed with another span's offset miss it
    f.media, f.speech_at = {}, {}
    for n, (text, lead, tail) in enumerate(zip(SENTENCES, (0.3, 2.0), (2.0, 0.4))):
        samples, _ = sf.read(str(speech(root / f"s{n}.raw.wav", text)), dtype="float32")
        loud = np.flatnonzero(np.abs(samples) > 0.01)
        f.speech_at[n] = (loud[0] / 16000 + lead, loud[-1] / 16000 + lead)
        silence = [np.zeros(int(seconds * 16000), np.float32) for seconds in (lead, tail)]
        f.media[n] = root / f"s{n}.wav"
        sf.write(str(f.media[n]), np.concatenate([silence[0], samples, silence[1]]), 16000, subtype="PCM_16")
    f.media["long"] = speech(root / "long.wav", " ".join(SENTENCES), repeat=3)  # about 40 s of speech
    return f


def _upload(facility, bay: str, media) -> tuple[str, float]:
    from captionbridge.core.cluster.wire import encode_flac

    samples, rate = sf.read(str(media), dtype="float32")
    flac, digest = encode_flac(samples)
    token = facility.token(bay)
    status, missing = facility.http("POST", "/v1/audio/missing", token, {"hashes": [digest]})
    assert status == 200, missing
    if missing["missing"]:
        assert facility.http("PUT", f"/v1/audio/{digest}", token, data=flac)[0] == 201
    return digest, len(samples) / rate


def _submit(facility, bay: str, digest: str, seconds: float, settings: dict) -> str:
    from captionbridge.core.cluster.client import wire_settings
    from captionbridge.core.speech.transcribe import TranscribeOptions

    status, job = facility.http(
        "POST",
        "/v1/jobs",
        facility.token(bay),
        {
            "request_id": uuid.uuid4().hex,
            "identity": f"test:{uuid.uuid4().hex}",  # never in the shared cache: each job is transcribed
            "audio": digest,
            "settings": wire_settings(TranscribeOptions(language="en", **settings)),
            "seconds": seconds,
        },
    )
    assert status == 201, job
    return job["id"]


def _together(facility, jobs: list[tuple]) -> list[dict]:
    """Each (bay, media, settings) uploaded first, then all submitted at the same moment; their finished
    results, in order."""
    uploaded = [_upload(facility, bay, media) for bay, media, _ in jobs]
    ids: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def go(n, bay, settings):
        start.wait()
        ids[n] = _submit(facility, bay, *uploaded[n], settings)

    threads = [threading.Thread(target=go, args=(n, job[0], job[2])) for n, job in enumerate(jobs)]
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


def _wer(reference: str, result: dict) -> float:
    errors, words = word_errors(reference, " ".join(w[0] for w in result["words"]))
    return errors / words


def assert_its_own_sentence(result: dict, n: int) -> None:
    """Sentence ``n`` within a generous bound, and not the other one (nor both merged)."""
    got = " ".join(w[0] for w in result["words"])
    assert _wer(SENTENCES[n], result) <= OWN_WER, (got, SENTENCES[n])
    assert _wer(SENTENCES[1 - n], result) >= OTHER_WER, (got, SENTENCES[1 - n])


def _batches(facility) -> dict:
    return facility.status()["transcriber_replica"]["batches"]


def test_two_bays_short_spans_are_decoded_in_one_batch_each_with_its_own_words(facility):
    before = _batches(facility)
    results = _together(facility, [("bay-a", facility.media[0], {}), ("bay-b", facility.media[1], {})])
    for n, result in enumerate(results):
        assert result["replica"]["batched_requests"] == 2 and result["replica"]["decoded_together"] == 2
        assert_its_own_sentence(result, n)
        first, last = facility.speech_at[n]
        words = result["words"]
        assert all(0 <= w[1] <= w[2] <= sf.info(str(facility.media[n])).duration for w in words), words
        assert words[0][1] >= first - 0.3 and words[-1][2] <= last + 0.3, (facility.speech_at[n], words)
        assert words[0][1] <= first + 1.0 and words[-1][2] >= last - 1.0, (facility.speech_at[n], words)
    after = _batches(facility)
    assert after["decoded_together"] - before.get("decoded_together", 0) == 2
    assert after.get("decoded_alone", 0) == before.get("decoded_alone", 0)
    assert after.get("failed_batches", 0) == 0


def test_a_long_span_and_other_settings_meet_but_decode_on_their_own(facility):
    # the short default span could pair with the long one (same settings) or with the other short one (same
    # length): neither may happen
    before = _batches(facility)
    jobs = [
        ("bay-a", facility.media["long"], {}),
        ("bay-b", facility.media[0], {}),
        ("bay-a", facility.media[1], {"beam_size": 2}),
    ]
    results = _together(facility, jobs)
    for result in results:
        assert result["replica"]["batched_requests"] == 3  # they met in one batch ...
        assert result["replica"]["decoded_together"] == 1  # ... and each was decoded on its own
    after = _batches(facility)
    assert after["decoded_alone"] == before.get("decoded_alone", 0) + 3
    assert after.get("decoded_together", 0) == before.get("decoded_together", 0)
    assert _wer(" ".join(SENTENCES * 3), results[0]) <= OWN_WER
    assert_its_own_sentence(results[1], 0)
    assert_its_own_sentence(results[2], 1)


def test_the_replica_killed_mid_batch_costs_a_retry_and_each_span_is_answered_once(facility):
    before = facility.status()
    replicas = replica_pids(facility)
    assert len(replicas) == 1, replicas
    victim = replicas[0]
    killed = threading.Event()

    def kill_when_busy():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ticks = cpu_ticks(victim)
            time.sleep(0.5)
            if cpu_ticks(victim) - ticks >= 20:  # >= 0.2 s of CPU in 0.5 s: the batch is being decoded
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
    assert_its_own_sentence(results[0], 1)
    assert_its_own_sentence(results[1], 0)
    after = facility.status()
    assert after["replicas_lost"] >= before["replicas_lost"] + 1  # the kill did interrupt the batch
    assert after["transcribed_spans"] == before["transcribed_spans"] + 2  # each span transcribed once
    assert after["max_transcriptions_per_span"] == 1 and after["failed"] == before["failed"]
