"""Diarization quality fixes, each against the case that showed the fault (tuning conversations, seeds
101-160 of benchmarks/conversations.py), and the speaker stage's cost: one CPU thread, the mix read a chunk at
a time."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from captionbridge.core.model import Word
from captionbridge.core.speech import speakers as sp


@pytest.fixture(scope="module")
def encoder():
    return sp.load_encoder("cpu")


def words_of(conv) -> list[Word]:
    return [Word(w.text, w.start, w.end) for w in conv.words]


def ids_by_truth(conv, labelled) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for w, ref in zip(labelled, conv.words):
        out.setdefault(ref.speaker, Counter())[w.speaker] += 1
    return out


def test_a_reply_after_a_pause_is_not_smoothed_away():
    """A one-word reply 0.24 s after one voice and 0.12 s before it again, whose embedding is only a little
    closer to its own voice: it was given to the other voice (conversation 101: "Yes." / "No." / "That
    sounds..."). Only a window cut from one run of speech (under 0.1 s either side) is smoothed."""
    a, b, c = np.eye(4, dtype=np.float32)[:3]
    reply = sp._normed(0.85 * a + 0.75 * b + 0.3 * c)  # nearer b's centroid, by less than SMOOTH_MARGIN
    emb = np.stack([a, reply, a, a, reply, a])
    labels = np.array([0, 1, 0, 0, 1, 0])
    windows = [
        sp.Window(0, 0, 0.0, 1.5),
        sp.Window(1, 1, 1.74, 2.2),  # a reply after a 0.24 s pause
        sp.Window(2, 2, 2.32, 3.8),
        sp.Window(3, 3, 5.0, 6.5),
        sp.Window(4, 4, 6.52, 7.0),  # cut from a run of speech: no pause either side
        sp.Window(5, 5, 7.03, 8.5),
    ]
    durations = np.array([w.duration for w in windows])
    emb = np.concatenate([emb, np.stack([b, b])])  # the other voice, elsewhere
    labels = np.concatenate([labels, [1, 1]])
    windows += [sp.Window(6, 6, 10.0, 11.5), sp.Window(7, 7, 12.0, 13.5)]
    durations = np.concatenate([durations, [1.5, 1.5]])
    cent = sp._centroids(emb, labels, durations, 2)
    assert 0 < float(reply @ cent[1] - reply @ cent[0]) < sp.SMOOTH_MARGIN
    out = sp._smooth(labels, windows, emb, durations)
    assert out[1] != out[0]  # the reply keeps its speaker
    assert out[4] == out[3]  # the window inside a run of one voice is smoothed


def test_a_short_reply_takes_the_speaker_its_sound_fits(conversations_module, encoder):
    """Conversation 106: "Sure." (0.5 s, f3) between m2's turns; its voice embedding is nearer m2 (0.70 vs
    0.63), so it was m2's and its cue mixed speakers. The speakers' cepstral Gaussians place it."""
    conv = conversations_module.make_conversation(2, 106)
    result = sp.diarize(conv.samples, words_of(conv), "auto", encoder=encoder)
    k = next(i for i, w in enumerate(conv.words) if w.text == "Sure." and 1.0 < w.start < 1.2)
    truth = conv.words[k].speaker
    others = Counter(w.speaker for w, ref in zip(result.words, conv.words) if ref.speaker == truth)
    assert result.words[k].speaker == others.most_common(1)[0][0]
    assert len(result.speakers) == 2


def test_someone_who_says_little_is_counted(conversations_module, encoder):
    """Conversation 147: the fourth voice only says two short replies (1.15 s in all), no window long enough
    to be clustered; auto found three speakers. Now the replies, which no other voice's Gaussian explains,
    are a speaker of their own."""
    conv = conversations_module.make_conversation(4, 147)
    result = sp.diarize(conv.samples, words_of(conv), "auto", encoder=encoder)
    assert len(result.speakers) == 4
    by_truth = ids_by_truth(conv, result.words)
    main = {truth: ids.most_common(1)[0][0] for truth, ids in by_truth.items()}
    assert len(set(main.values())) == 4  # each true voice has its own id


def _reliable_windows(conv, encoder):
    """The conversation's speech windows of at least RELIABLE_SECONDS, as the clustering sees them: their
    embeddings, cepstra, durations and true speakers."""
    windows = sp.speech_windows(words_of(conv))
    mels = [sp.mel_spectrogram(sp.window_audio(conv.samples, w)) for w in windows]
    emb = encoder.embed_mels(mels)
    feats = [sp.cepstra(m) for m in mels]
    durations = np.array([w.duration for w in windows])
    idx = np.flatnonzero(durations >= sp.RELIABLE_SECONDS)
    truth = np.array([conv.words[windows[i].first].speaker for i in idx])
    return emb[idx], [feats[i] for i in idx], durations[idx], truth


def test_bic_joins_a_voice_split_in_two_and_keeps_two_voices_apart(conversations_module, encoder):
    """Conversation 104 (two voices) with each true voice's clustered windows split in two by time (four
    clusters of 20 s or more, so BIC alone decides): the BIC merges give back the two voices, each one
    voice. (Built from the truth rather than from what average linkage happens to split, which moves with
    espeak-ng's state between syntheses.)"""
    conv = conversations_module.make_conversation(2, 104)
    emb, feats, durations, truth = _reliable_windows(conv, encoder)
    labels = np.zeros(len(truth), dtype=int)
    for j, voice in enumerate(sorted(set(truth))):
        mine = np.flatnonzero(truth == voice)
        labels[mine[: len(mine) // 2]] = 2 * j
        labels[mine[len(mine) // 2 :]] = 2 * j + 1
        assert durations[mine[: len(mine) // 2]].sum() > sp.BIC_APART_SECONDS
        assert durations[mine[len(mine) // 2 :]].sum() > sp.BIC_APART_SECONDS
    merged = sp._bic_merge(labels, feats, emb, durations)
    assert merged.max() + 1 == 2
    assert all(len(set(truth[merged == c])) == 1 for c in range(2))


def test_strong_cepstral_evidence_keeps_a_small_similar_voice_apart(
    conversations_module, encoder, monkeypatch
):
    """Tuning conversation 112: m3 says 7 s in long windows, m2 45 s; their embeddings are as close as one
    voice's (linkage under AUTO_THRESHOLD), so the small-cluster rule joined them whatever BIC said and their
    turns were labelled one speaker. BIC's evidence for two voices there is strong (>= BIC_STRONG): they stay
    apart. Clusters built from the truth (what average linkage splits moves with espeak-ng's state)."""
    conv = conversations_module.make_conversation(3, 112)
    emb, feats, durations, truth = _reliable_windows(conv, encoder)
    voices = {v: k for k, v in conv.voices.items()}
    ids = sorted(set(truth))
    labels = np.array([ids.index(t) for t in truth])
    small, large = ids.index(voices["en-us+m3"]), ids.index(voices["en-us+m2"])
    # the precondition: the small-cluster rule applies to this pair
    assert durations[labels == small].sum() < sp.BIC_APART_SECONDS
    assert 1 - float((emb[labels == small] @ emb[labels == large].T).mean()) < sp.AUTO_THRESHOLD
    merged = sp._bic_merge(labels, feats, emb, durations)
    assert merged.max() + 1 == 3 and all(len(set(truth[merged == c])) == 1 for c in range(3))
    monkeypatch.setattr(sp, "BIC_STRONG", math.inf)  # the rule without the safeguard joins them
    assert sp._bic_merge(labels, feats, emb, durations).max() + 1 == 2


def test_one_voice_stays_one_after_the_bic_merges(conversations_module, encoder):
    conv = conversations_module.make_conversation(1, seed=5, turns=10, voices=["en-us+f3"])
    assert sp.diarize(conv.samples, words_of(conv), "auto", encoder=encoder).speakers == ["S1"]


def test_the_lstm_runs_on_one_cpu_thread_and_leaves_torch_as_it_was(two_voices):
    import torch

    encoder = sp.SpeakerEncoder("cpu", backend="torch")  # (the CPU default is numpy: see below)
    seen = []
    handle = encoder.lstm.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        encoder.embed([two_voices.samples[:32000]])
    finally:
        handle.remove()
    assert seen == [sp.CPU_THREADS]
    assert torch.get_num_threads() == before


def test_the_numpy_lstm_runs_on_one_blas_thread_and_leaves_numpy_as_it_was(encoder, two_voices, monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen = []
    real = sp._NumpyEncoder._batch

    def spy(self, *args):
        seen.append(blas_threads())
        return real(self, *args)

    monkeypatch.setattr(sp._NumpyEncoder, "_batch", spy)
    before = blas_threads()
    encoder.embed([two_voices.samples[:32000]])
    assert encoder.backend == "numpy"
    assert seen and all(t == [sp.CPU_THREADS] * len(t) for t in seen)
    assert blas_threads() == before


def test_render_span_is_the_same_mix_as_render_audio(tmp_path, two_voices):
    from captionbridge.core.timeline.regions import AudioRegion
    from captionbridge.core.timeline.render_audio import render_audio, render_span
    from captionbridge.core.timeline.timebase import Timebase

    media = two_voices.save(tmp_path)
    tb = Timebase(25)
    frames = int(len(two_voices.samples) / 16000 * 25)
    regions = [  # a cut and an overlap (the second clip mixes over the first's tail)
        AudioRegion("a", "A1", 0, 0, frames // 2, media, Fraction(0), tb),
        AudioRegion("b", "A2", 1, frames // 2 - 50, frames, media, Fraction(3), tb),
    ]
    whole = render_audio(regions, frames, tb, 16000).samples
    for lo, hi in ((0, 16000), (16000 * 17, 16000 * 23 + 7), (len(whole) - 5000, len(whole))):
        np.testing.assert_array_equal(render_span(regions, lo, hi, 16000), whole[lo:hi])


def test_the_stage_reads_the_mix_a_chunk_at_a_time(tmp_path, two_voices, monkeypatch):
    """label_speakers renders only spans of at most CHUNK_SECONDS (plus a window) around the words, never the
    whole timeline, and labels exactly as diarize on the whole mix."""
    from captionbridge.core.speech.transcript_cache import TranscriptCache
    from captionbridge.core.timeline import render_audio as ra
    from captionbridge.core.timeline.regions import AudioRegion
    from captionbridge.core.timeline.timebase import Timebase

    media = two_voices.save(tmp_path / "media")
    tb = Timebase(25)
    frames = int(len(two_voices.samples) / 16000 * 25)
    regions = [AudioRegion("talk", "A1", 0, 0, frames, media, Fraction(0), tb)]
    spans = []
    real = ra.render_span

    def spy(regions, lo, hi, sample_rate=16000):
        spans.append((lo, hi))
        return real(regions, lo, hi, sample_rate)

    monkeypatch.setattr(ra, "render_span", spy)
    monkeypatch.setattr(ra, "render_audio", lambda *a, **k: pytest.fail("the whole mix was rendered"))
    monkeypatch.setattr(sp, "CHUNK_SECONDS", 15.0)
    words = words_of(two_voices)
    labelled, listing, _ = sp.label_speakers(
        regions, frames, tb, words, "auto", cache=TranscriptCache(tmp_path / "cache")
    )
    assert len(spans) >= len(two_voices.samples) / 16000 / 20
    assert max(hi - lo for lo, hi in spans) <= (15.0 + sp.WINDOW_MAX + 2 * sp.WINDOW_PAD) * 16000 + 1
    whole = real(regions, 0, ra.sample_of_frame(frames, tb, 16000), 16000)
    expected = sp.diarize(whole, words, "auto", encoder=sp.load_encoder("cpu"))
    assert [w.speaker for w in labelled] == [w.speaker for w in expected.words]
    assert [s["id"] for s in listing] == ["S1", "S2"]


def test_cepstra_are_the_orthonormal_dct_of_the_loud_frames():
    from scipy.fft import dct

    mel = np.abs(np.random.default_rng(0).normal(size=(300, sp.N_MELS))).astype(np.float32)
    mel[::7] *= 1e-6  # quiet frames are left out
    log = np.log(mel.astype(np.float64) + 1e-6)
    loud = log.max(axis=1) > log.max() - sp.LOUD_FRAMES
    expected = dct(log[loud], type=2, norm="ortho", axis=1)[:, 1 : sp.CEPSTRA + 1]
    got = sp.cepstra(mel)
    assert got.shape == expected.shape and loud.sum() < 300
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_auto_never_reports_more_speakers_than_it_accepts():
    """Windows all unlike each other (noisy voices, music) left every window its own cluster: 400 windows were
    400 speakers, and the BIC merges over them ran for minutes. Auto now bounds the candidates (4 x
    MAX_AUTO_SPEAKERS) and never reports more than MAX_AUTO_SPEAKERS."""
    rng = np.random.default_rng(0)
    centers = sp._normed(rng.normal(size=(8, sp.EMBED_DIM)))
    truth = rng.integers(0, 8, 400)
    emb = sp._normed(centers[truth] + 0.9 * rng.normal(size=(400, sp.EMBED_DIM)) / 16)
    means = rng.normal(size=(8, sp.CEPSTRA)) * 2
    feats = [(means[t] + rng.normal(size=(150, sp.CEPSTRA))).astype(np.float32) for t in truth]
    durations = np.full(400, 1.5)
    assert sp._average_linkage(emb, None, sp.FINE_THRESHOLD).max() + 1 > 4 * sp.MAX_AUTO_SPEAKERS
    for with_cepstra in (feats, None):
        labels = sp._cluster(emb, durations, "auto", sp.AUTO_THRESHOLD, with_cepstra)
        assert labels.max() + 1 <= sp.MAX_AUTO_SPEAKERS
    labels = sp._cluster(emb, durations, "auto", sp.AUTO_THRESHOLD, feats)
    assert labels.max() + 1 == 8  # and here BIC finds the eight cepstral voices
