"""The cluster's front desk (``core.cluster.hub``) with its replicas replaced by a coroutine: isolation
between bays, the shared cache, idempotent submits, fair share, and a replica lost mid-span. The same rules
run on Ray in ``tests/plugin/test_cluster.py``."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from fixtures.cluster_hub import drain

from captionbridge.core.cluster.client import wire_settings
from captionbridge.core.cluster.hub import Hub, NotFound, ReplicaLost, Unauthorized
from captionbridge.core.cluster.wire import encode_flac
from captionbridge.core.errors import InputError
from captionbridge.core.speech.transcribe import TranscribeOptions

MODEL = {"model_id": "test-model", "model_name": "test", "compute": "cpu:int8", "timing": None}
SETTINGS = wire_settings(TranscribeOptions(language="en"))


class Replicas:
    """Stands in for the Transcriber replicas: records the order spans arrive in; can die on chosen calls."""

    def __init__(self, die_on: set[int] = frozenset()):
        self.calls: list[str] = []
        self.die_on = set(die_on)

    async def __call__(self, flac: bytes, digest: str, settings: dict) -> dict:
        self.calls.append(digest)
        await asyncio.sleep(0.01)
        if len(self.calls) in self.die_on:
            raise ReplicaLost("ActorDiedError: the replica's process was killed")
        return {
            "words": [["word", 0.1, 0.4, 0.9]],
            "language": "en",
            "language_probability": 1.0,
            "warnings": [],
            "audio": digest,
        }


def audio(seed: int) -> tuple[bytes, str]:
    return encode_flac(np.random.default_rng(seed).standard_normal(1600).astype(np.float32) * 0.1)


def job(hub: Hub, bay: str, seed: int, identity: str | None = None, request_id: str | None = None) -> dict:
    flac, digest = audio(seed)
    if hub.missing_audio(bay, [digest]):
        hub.put_audio(bay, digest, flac)
    return hub.submit(
        bay,
        {
            "request_id": request_id or f"req-{bay}-{seed}-{identity}",
            "identity": identity or f"media-{seed}",
            "audio": digest,
            "settings": SETTINGS,
            "seconds": 0.1,
        },
    )


@pytest.fixture()
def hub(tmp_path):
    h = Hub(tmp_path, Replicas(), MODEL, max_inflight=1)
    h.tokens = {name: h.bays.add(name) for name in ("a", "b")}
    return h


def test_bays_see_only_their_own_jobs_and_need_a_live_token(hub):
    mine = job(hub, "a", 1)
    assert hub.view("a", mine["id"])["state"] == "queued"
    with pytest.raises(NotFound):
        hub.view("b", mine["id"])
    assert hub.authenticate(f"Bearer {hub.tokens['b']}") == "b"
    hub.bays.revoke("b")
    with pytest.raises(Unauthorized):
        hub.authenticate(f"Bearer {hub.tokens['b']}")
    with pytest.raises(Unauthorized):
        hub.authenticate(None)
    log = [json.loads(line) for line in hub._access.read_text().splitlines()]
    assert {"bay": "b", "action": "refused"} == {k: log[-1][k] for k in ("bay", "action")}


def test_a_resent_submit_is_the_same_job_and_unknown_audio_is_refused(hub):
    first = job(hub, "a", 1, request_id="same-request-1")
    again = job(hub, "a", 1, request_id="same-request-1")
    assert first["id"] == again["id"] and len(hub.jobs) == 1
    with pytest.raises(InputError, match="upload it first"):
        hub.submit(
            "a",
            {"request_id": "req-unknown-audio", "identity": "x", "audio": "ab" * 32, "settings": SETTINGS},
        )
    with pytest.raises(InputError, match="unknown transcription setting"):
        hub.submit(
            "a",
            {
                "request_id": "req-bad-settings",
                "identity": "x",
                "audio": "ab" * 32,
                "settings": {**SETTINGS, "model": "large-v3"},
            },
        )


def test_a_span_done_for_one_bay_is_free_for_another(hub):
    job(hub, "a", 1)
    asyncio.run(drain(hub))
    assert hub.lookup("b", SETTINGS, ["media-1", "media-2"])[0]["words"] == [["word", 0.1, 0.4, 0.9]]
    assert hub.lookup("b", SETTINGS, ["media-2"]) == [None]
    other = hub.lookup("b", wire_settings(TranscribeOptions(language="zh")), ["media-1"])
    assert other == [None]  # other settings: another transcript
    done = job(hub, "b", 1, request_id="req-b-again")  # submitted anyway: answered from the cache at once
    assert done["state"] == "done" and len(hub.runner.calls) == 1
    stats = hub.stats()
    assert stats["bays"]["b"]["cache_hits"] == 2 and stats["cache"]["hit_rate"] == pytest.approx(2 / 5)


def test_one_bays_long_job_does_not_starve_the_others(hub):
    for k in range(6):
        job(hub, "a", 100 + k)  # a feature's six spans, queued first
    job(hub, "b", 200)
    asyncio.run(drain(hub))
    order = [hub.runner.calls.index(audio(s)[1]) for s in (100, 200)]
    assert order == [0, 1]  # bay b's span went second, not seventh


def test_a_replica_lost_mid_span_costs_one_retry_and_the_span_is_done_once(tmp_path):
    replicas = Replicas(die_on={1})
    hub = Hub(tmp_path, replicas, MODEL, max_inflight=2)
    hub.bays.add("a")
    submitted = job(hub, "a", 1)
    asyncio.run(drain(hub))
    view = hub.view("a", submitted["id"])
    assert view["state"] == "done" and view["attempts"] == 2
    assert hub.stats()["replicas_lost"] == 1 and hub.stats()["max_transcriptions_per_span"] == 1

    unlucky = Hub(tmp_path / "2", Replicas(die_on={1, 2}), MODEL)
    unlucky.bays.add("a")
    failed = job(unlucky, "a", 1)
    asyncio.run(drain(unlucky))
    view = unlucky.view("a", failed["id"])
    assert view["state"] == "failed" and "killed" in view["error"] and view["attempts"] == 2


def test_the_same_span_asked_for_by_two_bays_at_once_is_transcribed_once(tmp_path):
    hub = Hub(tmp_path, Replicas(), MODEL, max_inflight=2)
    for bay in ("a", "b"):
        hub.bays.add(bay)
    first, second = job(hub, "a", 1), job(hub, "b", 1)  # same audio, same identity, both queued
    assert first["state"] == second["state"] == "queued"
    asyncio.run(drain(hub))
    assert hub.view("a", first["id"])["result"] == hub.view("b", second["id"])["result"]
    assert len(hub.runner.calls) == 1 and hub.stats()["max_transcriptions_per_span"] == 1


def test_unused_audio_expires_but_audio_in_use_stays(tmp_path):
    hub = Hub(tmp_path, Replicas(), MODEL, audio_ttl_s=60)
    hub.bays.add("a")
    queued = job(hub, "a", 1)
    flac, old = audio(2)
    hub.put_audio("a", old, flac)
    later = time.time() + 3600
    assert hub.expire_audio(later) == 1  # the unused upload goes; the queued job's audio stays
    assert hub.missing_audio("a", [old]) == [old]
    assert hub.missing_audio("a", [audio(1)[1]]) == [] and hub.view("a", queued["id"])["state"] == "queued"
