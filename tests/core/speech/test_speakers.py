"""Speaker diarization on real (generated) speech with exact turns, and the voice model against resemblyzer's
own."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.paths import shared_file

from captionbridge.core.errors import InputError
from captionbridge.core.model import Word
from captionbridge.core.speech import speakers as sp


@pytest.fixture(scope="module")
def encoder():
    return sp.load_encoder("cpu")


def words_of(conv) -> list[Word]:
    return [Word(w.text, w.start, w.end) for w in conv.words]


def word_accuracy(conv, labelled: list[Word]) -> float:
    """Share of words whose speaker is right under the best one-to-one mapping of ids."""
    import itertools

    truth = [w.speaker for w in conv.words]
    hyp = [w.speaker for w in labelled]
    ids = sorted(set(hyp))
    best = 0
    for perm in itertools.permutations(sorted(set(truth)), len(ids)):
        mapping = dict(zip(ids, perm))
        best = max(best, sum(mapping[h] == t for h, t in zip(hyp, truth)))
    return best / len(truth)


def test_mel_and_embeddings_match_resemblyzer(two_voices, encoder):
    """The numpy mel and the rebuilt network give resemblyzer's own numbers (its code needs librosa)."""
    import torch
    from resemblyzer import VoiceEncoder, wav_to_mel_spectrogram

    wav = two_voices.samples[: 16000 * 4]
    ref = wav_to_mel_spectrogram(wav)
    mine = sp.mel_spectrogram(wav)
    assert mine.shape == ref.shape
    assert np.abs(mine - ref).max() <= 1e-4 * np.abs(ref).max()
    theirs = VoiceEncoder("cpu", verbose=False)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(ref[None, :160])).numpy()[0]
    got = encoder.embed([wav[: 160 * 160 - 1]])[0]
    assert float(expected @ got) > 0.9999


def test_two_voices_are_found_and_told_apart(two_voices, encoder):
    result = sp.diarize(two_voices.samples, words_of(two_voices), "auto", encoder=encoder)
    assert result.speakers == ["S1", "S2"]  # auto found two, named in order of first speech
    assert word_accuracy(two_voices, result.words) >= 0.97
    assert result.words[0].speaker == "S1"
    fixed = sp.diarize(two_voices.samples, words_of(two_voices), 2, encoder=encoder)
    assert word_accuracy(two_voices, fixed.words) >= 0.97


def test_quick_replies_keep_their_own_speaker(two_voices, encoder):
    """Turns under a second ("Yes.") between long turns of the other voice are not smoothed away."""
    result = sp.diarize(two_voices.samples, words_of(two_voices), 2, encoder=encoder)
    turns = two_voices.turns()
    short = [t for t in turns if t[1] - t[0] < 1.0]
    assert short, "the fixture has quick replies"
    for start, end, truth in short:
        inside = [(w, ref) for w, ref in zip(result.words, two_voices.words) if start <= ref.start < end]
        mapped = {ref.speaker: w.speaker for w, ref in zip(result.words, two_voices.words)}
        assert all(w.speaker == mapped[truth] for w, _ in inside)


def test_one_voice_is_one_speaker(conversations_module, encoder):
    conv = conversations_module.make_conversation(1, seed=3, turns=6, voices=["en-us+m7"])
    result = sp.diarize(conv.samples, words_of(conv), "auto", encoder=encoder)
    assert result.speakers == ["S1"]


@pytest.mark.slow
def test_jfk_is_one_speaker(encoder, base_whisper_model):
    """Real speech, one speaker, a crowd behind him: auto must not invent a second (words from Whisper
    base)."""
    from captionbridge.core.speech.transcribe import TranscribeOptions, _decode_file, transcribe_audio

    samples = _decode_file(shared_file("jfk.flac"))
    words = transcribe_audio(
        samples, TranscribeOptions(model=str(base_whisper_model), language="en", cache=False)
    ).words
    assert len(words) > 15
    result = sp.diarize(samples, words, "auto", encoder=encoder)
    assert result.speakers == ["S1"]
    assert {w.speaker for w in result.words} == {"S1"}


def test_ids_stay_with_voices_across_runs(conversations_module, encoder):
    """A re-caption where the other voice speaks first keeps each voice's id from the previous run."""
    first = conversations_module.make_conversation(2, seed=21, turns=6, voices=["en-us+m3", "en-us+f2"])
    again = conversations_module.make_conversation(2, seed=22, turns=6, voices=["en-us+f2", "en-us+m3"])
    one = sp.diarize(first.samples, words_of(first), 2, encoder=encoder)
    two = sp.diarize(again.samples, words_of(again), 2, encoder=encoder, previous=one.profile())
    assert word_accuracy(again, two.words) >= 0.95
    assert two.words[0].speaker == "S2"  # the f2 voice was S2 in the first run, and speaks first now
    fresh = sp.diarize(again.samples, words_of(again), 2, encoder=encoder)
    assert fresh.words[0].speaker == "S1"  # without the profile ids follow first speech


def test_a_window_never_splits_a_word():
    words = [Word(f"w{k}", 0.3 * k, 0.3 * k + 0.28) for k in range(30)]
    windows = sp.speech_windows(words)
    covered = [k for w in windows for k in range(w.first, w.last + 1)]
    assert covered == list(range(30))
    assert all(w.duration <= sp.WINDOW_MAX for w in windows)


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("off", None), (None, None), ("3", 3), (2, 2)])
def test_speakers_option(value, expected):
    assert sp.parse_speakers(value) == expected


@pytest.mark.parametrize(
    "value, needle", [("many", "not understood"), ("0x", "not understood"), ("40", "1 to 12")]
)
def test_bad_speakers_option_is_one_clear_line(value, needle):
    with pytest.raises(InputError, match=needle):
        sp.parse_speakers(value)


def test_speaker_names():
    assert sp.parse_speaker_names(" Ana , Ben ") == ["Ana", "Ben"]
    with pytest.raises(InputError, match="empty name"):
        sp.parse_speaker_names("Ana,,Ben")
    with pytest.raises(InputError, match="twice"):
        sp.parse_speaker_names("Ana,ana")


def test_missing_voice_model_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "resemblyzer" else real(name, *a)
    )
    with pytest.raises(sp.SpeakerModelMissing, match="pip install --no-deps resemblyzer"):
        sp.encoder_weights_path()


def test_words_past_the_end_of_the_audio_do_not_break_clustering(two_voices, encoder):
    words = words_of(two_voices)
    end = len(two_voices.samples) / 16000
    words += [Word("late", end + 1.0, end + 1.4), Word("later", end + 2.0, end + 3.5)]
    result = sp.diarize(two_voices.samples, words, "auto", encoder=encoder)
    assert len(result.words) == len(words) and all(w.speaker for w in result.words)
