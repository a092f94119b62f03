"""Speaker corrections approved in review are remembered with the media's voices: the next run on the same
media labels the corrected words (whole windows, single words, a new speaker) as approved and keeps the
reviewed names, on real (generated) speech through the real speaker stage."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from captionbridge.core.corrections.speakers import effective_speakers, remember_speaker_corrections
from captionbridge.core.model import Cue, Word
from captionbridge.core.speech import speakers as sp
from captionbridge.core.speech.transcript_cache import TranscriptCache
from captionbridge.core.timeline.regions import AudioRegion
from captionbridge.core.timeline.timebase import Timebase


@pytest.fixture
def timeline(tmp_path, two_voices):
    media = two_voices.save(tmp_path / "media")
    tb = Timebase(25)
    frames = int(len(two_voices.samples) / 16000 * 25)
    regions = [AudioRegion("talk", "A1", 0, 0, frames, media, Fraction(0), tb)]
    words = [Word.at(w.text, w.start, w.end, tb) for w in two_voices.words]
    return regions, frames, tb, words


def run(timeline, cache, names=("Ana", "Ben")):
    regions, frames, tb, words = timeline
    labelled, listing, _ = sp.label_speakers(regions, frames, tb, words, "auto", list(names), cache=cache)
    return labelled, listing


def test_a_rerun_keeps_the_approved_speakers_and_names(timeline, tmp_path):
    cache = TranscriptCache(tmp_path / "cache")
    labelled, listing = run(timeline, cache)
    assert listing == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Ben"}]
    engine = [w.speaker for w in labelled]
    windows = sp.speech_windows(labelled)
    s1 = [w for w in windows if w.last > w.first and engine[w.first] == "S1"]
    s2 = [w for w in windows if w.last > w.first + 1 and engine[w.first] == "S2"]
    assert len(s1) >= 2 and len(s2) >= 2
    corrected = list(engine)
    for k in range(s1[0].first, s1[0].last + 1):  # a whole stretch given to the other speaker
        corrected[k] = "S2"
    corrected[s2[0].first + 1] = "S1"  # one word inside a window
    for k in range(s2[1].first, s2[1].last + 1):  # a third person the engine did not tell apart
        corrected[k] = "S3"
    approved = [{"id": "S1", "name": "Anabel"}, {"id": "S2", "name": "Ben"}, {"id": "S3", "name": "Cleo"}]
    done = remember_speaker_corrections(timeline[0], labelled, engine, corrected, approved, cache=cache)
    assert done["windows"] == 3 and done["key"]

    again, listing = run(timeline, cache)  # the same --speaker-names as the reviewed run
    assert [w.speaker for w in again] == corrected
    assert listing == approved
    third, listing = run(timeline, cache)  # and on every later run
    assert [w.speaker for w in third] == corrected and listing == approved
    # names given differently this time win over the reviewed ones; the corrected words stay
    renamed, listing = run(timeline, cache, names=("Xavier", "Yolanda", "Zoe"))
    assert [w.speaker for w in renamed] == corrected
    assert [s["name"] for s in listing] == ["Xavier", "Yolanda", "Zoe"]
    # without the remembered corrections the engine labels as before (the test above is not vacuous)
    fresh, _ = run(timeline, TranscriptCache(tmp_path / "fresh"))
    assert [w.speaker for w in fresh] == engine != corrected


def test_a_second_approval_replaces_the_first_for_the_same_audio(timeline, tmp_path):
    cache = TranscriptCache(tmp_path / "cache")
    labelled, listing = run(timeline, cache)
    engine = [w.speaker for w in labelled]
    window = next(w for w in sp.speech_windows(labelled) if engine[w.first] == "S1")
    first = list(engine)
    for k in range(window.first, window.last + 1):
        first[k] = "S2"
    remember_speaker_corrections(timeline[0], labelled, engine, first, listing, cache=cache)
    assert [w.speaker for w in run(timeline, cache)[0]] == first
    # the person changes their mind: the window goes back to S1 (before = the first approval)
    remember_speaker_corrections(timeline[0], labelled, first, engine, listing, cache=cache)
    assert [w.speaker for w in run(timeline, cache)[0]] == engine
    key = sp.profile_key(timeline[0])
    assert len(cache.get(key)["corrected"]["words"]) == 1  # one window, its latest correction


def test_words_of_a_cue_given_to_one_speaker_are_that_speakers():
    tb = Timebase(25)
    words = [
        Word.at(t, s, e, tb).__class__(t, s, e, 1.0, int(s * 25), int(e * 25), None, who)
        for t, s, e, who in [("Hi", 0.0, 0.4, "S1"), ("there", 0.4, 0.8, "S1"), ("Yes", 1.2, 1.5, "S2")]
    ]
    cues = [Cue(0, 20, {"en": "Hi there"}, (), ("S2",)), Cue(28, 40, {"en": "- A\n- B"}, (), ("S1", "S2"))]
    assert effective_speakers(words, cues) == ["S2", "S2", "S2"]
    # a word a person gave to someone (its speaker is not the engine's) keeps it inside a reassigned cue
    assert effective_speakers(words, cues, ["S2", "S1", "S2"]) == ["S1", "S2", "S2"]


def test_packed_embeddings_are_compact_and_faithful():
    rng = np.random.default_rng(0)
    emb = sp._normed(rng.standard_normal((50, sp.EMBED_DIM)).astype(np.float32))
    packed = sp.pack_embeddings(emb)
    back = sp.unpack_embeddings(packed)
    assert (back * emb).sum(axis=1).min() >= 0.9999
    assert len(packed["int8"]) <= 50 * 350
    with pytest.raises(ValueError):
        sp.unpack_embeddings({"int8": packed["int8"][:-8], "scale": packed["scale"]})


def test_different_windows_of_one_voice_are_never_the_same_audio(two_voices):
    """SAME_AUDIO_SIMILARITY is far above what two different stretches of one voice reach, and far below
    the same stretch re-embedded with its word times rounded to the millisecond (as a captions JSON keeps
    them)."""
    words = [Word(w.text, w.start, w.end) for w in two_voices.words]
    windows = sp.speech_windows(words)
    encoder = sp.load_encoder("cpu")
    emb = encoder.embed([sp.window_audio(two_voices.samples, w) for w in windows])
    sims = emb @ emb.T
    np.fill_diagonal(sims, -1)
    assert sims.max() < sp.SAME_AUDIO_SIMILARITY - 0.02
    rounded = [
        sp.Window(w.first, w.last, round(w.start, 3) + 0.0004, round(w.end, 3) - 0.0004) for w in windows
    ]
    again = encoder.embed([sp.window_audio(two_voices.samples, w) for w in rounded])
    assert (again * emb).sum(axis=1).min() >= 0.995


def test_the_most_corrections_kept_still_fit_a_cluster_request():
    """The profile (with every corrected window kept and twelve voices) is sent to the facility cluster with
    the speaker request, which refuses one over MAX_PREVIOUS_BYTES."""
    import json

    from captionbridge.core.cluster.stages import MAX_PREVIOUS_BYTES
    from captionbridge.core.corrections.speakers import MAX_CORRECTED_WINDOWS

    rng = np.random.default_rng(1)
    name = "N" * 60  # the review page's longest name
    emb = sp._normed(rng.standard_normal((MAX_CORRECTED_WINDOWS, sp.EMBED_DIM)).astype(np.float32))
    profile = {
        "speakers": [
            {"id": f"S{k}", "voice": [round(float(x), 5) for x in emb[k]], "seconds": 1234.5, "name": name}
            for k in range(1, 13)
        ],
        "given_names": [name] * 12,
        "corrected": {"embeddings": sp.pack_embeddings(emb), "words": [["S10"] * 6] * MAX_CORRECTED_WINDOWS},
    }
    assert len(json.dumps(profile)) < MAX_PREVIOUS_BYTES
