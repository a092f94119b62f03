"""Translation and speakers at the cluster's front desk (``core.cluster.hub`` with ``stages``), replicas
replaced by coroutines: the per-sentence and per-mix shared cache, isolation between bays, one retry when a
replica is lost, the same mix asked for twice at once labelled once, and requests the desk refuses. The same
rules run on Ray in ``tests/plugin/test_cluster_stages.py``."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fixtures.cluster_hub import drain

from captionbridge.core.cluster.hub import Hub, NotFound, ReplicaLost
from captionbridge.core.cluster.wire import encode_flac
from captionbridge.core.errors import InputError

MODEL = {"model_id": "whisper", "model_name": "test", "compute": "cpu:int8", "timing": None}
EN_ZH = {"model_id": "marian-en-zh-v1", "model_name": "opus-mt-en-zh"}
VOICES = {"model_id": "resemblyzer-v1", "model_name": "resemblyzer"}


class Translator:
    """Stands in for the translation replicas: upper-cases, records every request's texts."""

    def __init__(self, die_on: set[int] = frozenset()):
        self.calls: list[list[str]] = []
        self.die_on = set(die_on)

    async def __call__(self, request: dict) -> dict:
        self.calls.append(list(request["texts"]))
        await asyncio.sleep(0.01)
        if len(self.calls) in self.die_on:
            raise ReplicaLost("ActorDiedError: the replica's process was killed")
        return {"hypotheses": [[t.upper(), t.title()][: request["num_hypotheses"]] for t in request["texts"]]}


class Diarizer:
    def __init__(self):
        self.calls: list[str] = []

    async def __call__(self, flac: bytes, digest: str, request: dict) -> dict:
        self.calls.append(digest)
        await asyncio.sleep(0.05)
        ids = ["S1" if k % 2 == 0 else "S2" for k in range(len(request["words"]))]
        return {"speaker_of_word": ids, "speakers": ["S1", "S2"], "voices": {}, "seconds": {}, "windows": 2}


def make_hub(tmp_path, translator=None, diarizer=None) -> Hub:
    stages = {
        "translate": {"runner": translator or Translator(), "models": {"en-zh": EN_ZH}, "max_inflight": 4},
        "speakers": {"runner": diarizer or Diarizer(), "model": VOICES, "max_inflight": 2},
    }
    hub = Hub(tmp_path, None, MODEL, stages=stages)
    for bay in ("a", "b"):
        hub.bays.add(bay)
    return hub


def translate(hub: Hub, bay: str, texts: list[str], request_id: str, n: int = 2) -> dict:
    body = {"kind": "translate", "source": "en", "target": "zh", "num_hypotheses": n, "texts": texts}
    return hub.submit(bay, {**body, "request_id": request_id})


def mix(seed: int = 1) -> tuple[bytes, str]:
    return encode_flac(np.random.default_rng(seed).standard_normal(16000).astype(np.float32) * 0.1)


def speakers_body(digest: str, words=None, speakers="auto", previous=None) -> dict:
    words = words or [["one", 0.1, 0.3], ["two", 0.4, 0.6], ["three", 0.7, 0.9]]
    return {"kind": "speakers", "audio": digest, "words": words, "speakers": speakers, "previous": previous}


def test_a_sentence_translated_for_one_bay_is_free_for_every_other(tmp_path):
    hub = make_hub(tmp_path)
    first = translate(hub, "a", ["Good morning.", "The boat is late."], "req-a-first")
    assert first["state"] == "queued" and first["kind"] == "translate"
    asyncio.run(drain(hub))
    done = hub.view("a", first["id"])
    assert done["result"]["hypotheses"] == [
        ["GOOD MORNING.", "Good Morning."],
        ["THE BOAT IS LATE.", "The Boat Is Late."],
    ]
    # bay b: one sentence known, one new; only the new one goes to a replica
    second = translate(hub, "b", ["The boat is late.", "See you at noon."], "req-b-first")
    asyncio.run(drain(hub))
    assert hub.stages["translate"]["runner"].calls == [
        ["Good morning.", "The boat is late."],
        ["See you at noon."],
    ]
    assert hub.view("b", second["id"])["result"]["hypotheses"][0] == [
        "THE BOAT IS LATE.",
        "The Boat Is Late.",
    ]
    assert hub.lookup_stage(
        "b",
        "translate",
        {"source": "en", "target": "zh", "num_hypotheses": 2, "texts": ["Good morning.", "Unseen."]},
    ) == [["GOOD MORNING.", "Good Morning."], None]
    # all known: done at once, no replica
    third = translate(hub, "b", ["Good morning."], "req-b-second")
    assert third["state"] == "done" and len(hub.stages["translate"]["runner"].calls) == 2
    # another number of candidates is another translation
    assert hub.lookup_stage(
        "a", "translate", {"source": "en", "target": "zh", "num_hypotheses": 1, "texts": ["Good morning."]}
    ) == [None]
    stats = hub.stats()["stages"]["translate"]
    assert stats["texts_translated"] == 3 and stats["hits"] == 3
    assert hub.stats()["bays"]["b"]["translate_hits"] == 3


def test_a_bay_cannot_see_another_bays_translation_or_speakers_job(tmp_path):
    hub = make_hub(tmp_path)
    job = translate(hub, "a", ["Private line."], "req-a-private")
    with pytest.raises(NotFound):
        hub.view("b", job["id"])
    flac, digest = mix()
    hub.put_audio("a", digest, flac)
    labelled = hub.submit("a", {**speakers_body(digest), "request_id": "req-a-speakers"})
    with pytest.raises(NotFound):
        hub.view("b", labelled["id"])


def test_a_translation_replica_lost_mid_request_costs_one_retry(tmp_path):
    hub = make_hub(tmp_path, translator=Translator(die_on={1}))
    job = translate(hub, "a", ["Once only."], "req-a-retry")
    asyncio.run(drain(hub))
    view = hub.view("a", job["id"])
    assert view["state"] == "done" and view["attempts"] == 2
    assert hub.stats()["replicas_lost"] == 1

    unlucky = make_hub(tmp_path / "2", translator=Translator(die_on={1, 2}))
    job = translate(unlucky, "a", ["Twice unlucky."], "req-a-unlucky")
    asyncio.run(drain(unlucky))
    view = unlucky.view("a", job["id"])
    assert view["state"] == "failed" and "killed" in view["error"]
    assert unlucky.lookup_stage(
        "a", "translate", {"source": "en", "target": "zh", "num_hypotheses": 2, "texts": ["Twice unlucky."]}
    ) == [None]  # nothing half-done was cached


def test_one_bays_long_translation_does_not_starve_the_others(tmp_path):
    hub = make_hub(tmp_path)
    hub.stages["translate"]["max_inflight"] = 1
    for k in range(5):
        translate(hub, "a", [f"Feature line {k}."], f"req-a-long-{k}")
    translate(hub, "b", ["Short one."], "req-b-short")
    asyncio.run(drain(hub))
    calls = hub.stages["translate"]["runner"].calls
    assert calls.index(["Short one."]) == 1  # second, not sixth


def test_the_same_mix_asked_for_by_two_bays_at_once_is_labelled_once(tmp_path):
    hub = make_hub(tmp_path)
    flac, digest = mix()
    assert hub.lookup_stage("a", "speakers", speakers_body(digest)) == [None]
    with pytest.raises(InputError, match="upload it first"):
        hub.submit("a", {**speakers_body(digest), "request_id": "req-a-noaudio"})
    hub.put_audio("a", digest, flac)
    first = hub.submit("a", {**speakers_body(digest), "request_id": "req-a-speak"})
    second = hub.submit("b", {**speakers_body(digest), "request_id": "req-b-speak"})
    asyncio.run(drain(hub))
    assert hub.view("a", first["id"])["result"] == hub.view("b", second["id"])["result"]
    assert len(hub.stages["speakers"]["runner"].calls) == 1
    assert hub.lookup_stage("b", "speakers", speakers_body(digest))[0]["speakers"] == ["S1", "S2"]
    # what decides the labels is in the key: other words, another count, a previous run's voices
    for other in (
        speakers_body(digest, words=[["one", 0.1, 0.3]]),
        speakers_body(digest, speakers=2),
        speakers_body(digest, previous={"speakers": [{"id": "S1", "voice": [0.1]}]}),
    ):
        assert hub.lookup_stage("b", "speakers", other) == [None]


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"kind": "translate", "source": "en", "target": "en", "texts": ["x"]}, "two different language"),
        ({"kind": "translate", "source": "en", "target": "zh", "texts": []}, "texts must be a list"),
        ({"kind": "translate", "source": "en", "target": "zh", "texts": [3]}, "each text must be"),
        ({"kind": "translate", "source": "zh", "target": "ja", "texts": ["x"]}, "no zh->ja translation"),
        (
            {"kind": "translate", "source": "en", "target": "zh", "texts": ["x"], "num_hypotheses": 99},
            "num_hypotheses",
        ),
        ({"kind": "speakers", "audio": "zz", "words": [["a", 0, 1]]}, "64-hex-digit"),
        ({"kind": "speakers", "audio": "ab" * 32, "words": [["a", 1, 0]]}, "start <= end"),
        ({"kind": "speakers", "audio": "ab" * 32, "words": [["a", 0, 1]], "speakers": 40}, "give 1 to 12"),
        ({"kind": "sing", "texts": ["x"]}, "unknown job kind"),
    ],
)
def test_bad_stage_requests_are_refused_with_the_reason(tmp_path, body, needle):
    hub = make_hub(tmp_path)
    with pytest.raises(InputError, match=needle):
        hub.submit("a", {**body, "request_id": "req-a-bad"})


def test_a_cluster_deployed_without_a_stage_says_so(tmp_path):
    hub = Hub(tmp_path, None, MODEL)
    hub.bays.add("a")
    assert hub.offered() == {}
    with pytest.raises(InputError, match="does not run the translate stage"):
        translate(hub, "a", ["x"], "req-a-none")
