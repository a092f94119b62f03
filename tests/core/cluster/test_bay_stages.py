"""The bay's side of translation and speakers on the facility cluster, without Ray: a remote backend that
does the work (over the wire formats: 16-bit FLAC, JSON) gives exactly what the local stage gives; one that
cannot (unreachable, no model for the direction) means the local stage with the reason in the warnings; told
to wait, the bay fails clearly instead. On Ray: ``tests/plugin/test_cluster_stages.py``."""

from __future__ import annotations

import json
import math
import socket
from fractions import Fraction

import pytest

from captionbridge.core.cluster.client import ClusterBackend, ClusterStages, ClusterUnreachable
from captionbridge.core.cluster.facility import ClusterConfig
from captionbridge.core.cluster.stages import speakers_request
from captionbridge.core.cluster.wire import decode_flac, encode_flac
from captionbridge.core.model import Word
from captionbridge.core.speech import speakers as sp
from captionbridge.core.speech.remote import RemoteUnavailable, _label_speakers_remotely
from captionbridge.core.speech.transcript_cache import TranscriptCache
from captionbridge.core.timeline.regions import AudioRegion
from captionbridge.core.timeline.timebase import Timebase
from captionbridge.core.translate.backends import load_folder
from captionbridge.core.translate.remote import RemoteTranslator


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


class SpeakersElsewhere:
    """What the cluster does with a speakers request, here: the mix through 16-bit FLAC, the request through
    JSON and the desk's checks, ``diarize`` with a warm encoder, the answer through JSON."""

    def __init__(self, fail: bool = False):
        self.fail, self.calls = fail, 0

    def diarize(self, samples, words, speakers, previous):
        self.calls += 1
        if self.fail:
            raise RemoteUnavailable("facility cluster unreachable: labelled on this machine instead")
        flac, digest = encode_flac(samples)
        body = json.loads(
            json.dumps({"audio": digest, "words": words, "speakers": speakers, "previous": previous})
        )
        request = speakers_request(body)
        result = sp.diarize(
            decode_flac(flac, digest),
            [Word(t, s, e) for t, s, e in request["words"]],
            request["speakers"],
            encoder=sp.load_encoder("cpu"),
            previous=request["previous"],
        )
        answer = {
            "speaker_of_word": [w.speaker for w in result.words],
            "speakers": result.speakers,
            "voices": result.voices,
            "seconds": result.seconds,
            "windows": result.windows,
        }
        return json.loads(json.dumps(answer))


@pytest.fixture(scope="module")
def conversation(two_voices, tmp_path_factory):
    media = two_voices.save(tmp_path_factory.mktemp("conversation"))
    tb = Timebase(25)
    frames = math.ceil(two_voices.duration * 25)
    region = AudioRegion(
        clip_name="talk",
        track_name="A1",
        track_index=1,
        timeline_start_frame=0,
        timeline_end_frame=frames,
        source_path=media,
        source_offset=Fraction(0),
        timebase=tb,
    )
    words = [Word.at(w.text, w.start, w.end, tb) for w in two_voices.words]
    return [region], frames, tb, words


def test_speakers_labelled_remotely_are_what_the_local_stage_gives(conversation, tmp_path):
    regions, frames, tb, words = conversation
    local = sp.label_speakers(
        regions, frames, tb, words, "auto", ["Ana"], device="cpu", cache=TranscriptCache(tmp_path / "l", True)
    )
    remote_cache = TranscriptCache(tmp_path / "r", True)
    backend = SpeakersElsewhere()
    remote = _label_speakers_remotely(
        backend, sp.label_speakers, regions, frames, tb, words, "auto", ["Ana"], "cpu", remote_cache
    )
    assert backend.calls == 1
    assert [w.speaker for w in remote[0]] == [w.speaker for w in local[0]]
    assert remote[0] == local[0] and remote[1] == local[1] and remote[2] == local[2]
    assert remote[1][0] == {"id": "S1", "name": "Ana"} and len(remote[1]) == 2
    # the voices are kept for the next run as the local stage keeps them, so ids stay on a re-caption
    key = sp.profile_key(regions)
    assert [e["id"] for e in remote_cache.get(key)["speakers"]] == ["S1", "S2"]
    again = _label_speakers_remotely(
        backend, sp.label_speakers, regions, frames, tb, words, "auto", None, "cpu", remote_cache
    )
    assert again[1][0] == {"id": "S1", "name": "Ana"}  # the name given last time stays with the voice


def test_speakers_fall_back_to_the_local_stage_with_the_reason(conversation, tmp_path):
    regions, frames, tb, words = conversation
    local = sp.label_speakers(
        regions, frames, tb, words, 2, device="cpu", cache=TranscriptCache(tmp_path, True)
    )
    got = _label_speakers_remotely(
        SpeakersElsewhere(fail=True),
        sp.label_speakers,
        regions,
        frames,
        tb,
        words,
        2,
        None,
        "cpu",
        TranscriptCache(tmp_path / "other", True),
    )
    assert got[0] == local[0] and got[1] == local[1]
    assert got[2] == ["facility cluster unreachable: labelled on this machine instead"]


class TranslationElsewhere:
    """The cluster's translation replica, here: the same model folder, the request through JSON."""

    def __init__(self, folder, model_name: str, fail_after: int | None = None):
        self.translator = load_folder(folder)
        self.last_stats = {"model": model_name}
        self.fail_after, self.calls = fail_after, 0

    def translate(self, texts, source, target, num_hypotheses):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RemoteUnavailable("facility cluster went away during the translation: done here instead")
        texts = json.loads(json.dumps(texts))
        return json.loads(json.dumps(self.translator.translate(texts, source, target, num_hypotheses, 16)))


def test_translation_on_a_remote_backend_is_the_local_translation(tiny_marian, reference_translator):
    from captionbridge.core.translate.backends import inspect_folder

    folder = inspect_folder(tiny_marian["en-zh-ct2"])
    local = load_folder(folder)
    texts = [f"We are going to the park today, and then number {k}." for k in range(40)]
    expected = local.translate(texts, "en", "zh", 4, 16)
    remote = RemoteTranslator(TranslationElsewhere(folder, folder.name), str(folder.path), "cpu")
    assert remote.translate(texts, "en", "zh", 4, 16) == expected
    assert remote.warnings == [] and remote.remote_texts == 40
    # the cluster goes away after the first request: the rest is translated here, said once, same model
    flaky = RemoteTranslator(TranslationElsewhere(folder, folder.name, fail_after=1), str(folder.path), "cpu")
    first, rest = (
        flaky.translate(texts[:20], "en", "zh", 4, 16),
        flaky.translate(texts[20:], "en", "zh", 4, 16),
    )
    assert first + rest == expected
    assert flaky.warnings == ["facility cluster went away during the translation: done here instead"]
    assert flaky.local is not None
    # another model on the cluster than the one asked for: said
    other = RemoteTranslator(TranslationElsewhere(folder, "opus-mt-en-zh"), str(folder.path), "cpu")
    other.translate(texts[:2], "en", "zh", 1)
    assert other.warnings == [
        f"translation model {str(folder.path)!r} was asked for; the facility cluster translates with "
        "'opus-mt-en-zh'"
    ]


def test_an_unreachable_cluster_means_local_stages_or_waiting_as_configured():
    stages = ClusterStages(ClusterBackend(ClusterConfig(url=dead_url(), token="cbb_x")))
    with pytest.raises(RemoteUnavailable, match="the translation was done on this machine instead"):
        stages.translate(["Hello."], "en", "zh", 1)
    with pytest.raises(RemoteUnavailable, match="the speaker labelling was done on this machine instead"):
        stages.diarize([0.0] * 1600, [["hi", 0.0, 0.1]], "auto", None)
    waiting = ClusterStages(
        ClusterBackend(
            ClusterConfig(url=dead_url(), token="cbb_x", on_unreachable="wait", wait_timeout_s=0.5)
        )
    )
    with pytest.raises(ClusterUnreachable, match="the translation was not done"):
        waiting.translate(["Hello."], "en", "zh", 1)
