"""The numpy forced aligner on pocketsphinx's own en-us model (``sphinx_model``, ``sphinx_frontend``,
``forced_align``; ``acoustic_timing.EnglishAligner``): the model files as read, the front end against
pocketsphinx's own, alignments of espeak-ng sentences with exact word times, a damaged or missing model file,
and pieces that cannot be aligned."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from captionbridge.core.speech import acoustic_timing as at
from captionbridge.core.speech import forced_align, sphinx_frontend, sphinx_model
from tests.fixtures.paths import shared_file
from tests.fixtures.speech_corpus import synth_fresh

SR = 16000
JFK_TEXT = (
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
)


@pytest.fixture(scope="module")
def model():
    return sphinx_model.model()


def _pocketsphinx_frames(pcm: np.ndarray, text: str, cepstra: np.ndarray | None = None) -> list[tuple]:
    """pocketsphinx's forced alignment of ``text`` (words and frames, silences left out), from the audio or
    from the given cepstra."""
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL", **at.DECODER_SETTINGS)
    decoder.set_align_text(text)
    decoder.start_utt()
    if cepstra is None:
        decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
    else:
        cep = np.ascontiguousarray(cepstra, np.float32)
        decoder.process_cep(cep.tobytes(), no_search=False, full_utt=True)
    decoder.end_utt()
    return [(s.word, s.start_frame, s.end_frame) for s in decoder.seg() if s.word != "<sil>"]


def _jfk_pcm() -> np.ndarray:
    from captionbridge.core.speech.transcribe import _decode_file

    samples = _decode_file(shared_file("jfk.flac"))
    return (np.clip(samples, -1, 1) * 32767).astype(np.int16)


def test_the_model_files_are_read_with_their_shapes(model):
    assert len(model.ciphones) == 42 and model.ciphones[model.sil] == "SIL"
    assert model.means.shape == model.variances.shape == (42, 3, 128, 13)
    assert model.variances.min() >= sphinx_model.VAR_FLOOR
    n_sen = model.log_mixw.shape[0]
    assert model.log_mixw.shape == (n_sen, 3, 128) and n_sen > 5000
    # 8-bit quantised weights: each senone's mixture sums to about one in each stream
    sums = np.exp(model.log_mixw).sum(axis=2)
    assert 0.85 < sums.min() and sums.max() < 1.05
    # each transition matrix row is a distribution over staying, the next state and leaving
    assert model.log_tmat.shape == (42, 3, 4)
    assert np.allclose(np.log(np.exp(model.log_tmat).sum(axis=2)), 0, atol=1e-5)
    assert model.sseq.max() < n_sen and set(np.unique(model.sen2ci)) == set(range(42))
    # a triphone the model has, and the back-off to the CI phone for one it cannot have
    ah, hh, ll = (model.ci_index[p] for p in ("AH", "HH", "L"))
    assert model.phone_id(ah, hh, ll, "i") >= 42
    assert model.phone_id(model.sil, ah, ah, "i") == model.sil
    assert sphinx_model.dictionary()["the"] == [["DH", "AH"], ["DH", "IY"]]


def test_the_front_end_gives_pocketsphinx_the_same_alignment_as_its_own(speech_corpus_module):
    """pocketsphinx aligns the same words to the same frames from our cepstra (``process_cep``) as from its
    own front end (``process_raw``): real speech (JFK) and an espeak-ng sentence in pink noise."""
    jfk = _jfk_pcm()
    text = "the quick brown fox jumped over the lazy dog"
    audio, _ = speech_corpus_module.synth_sentence(text.capitalize() + ".", "en-us")
    rng = np.random.default_rng(5)
    noisy = audio + 0.02 * rng.standard_normal(len(audio))
    espeak = (np.clip(noisy, -1, 1) * 32767).astype(np.int16)
    for pcm, text in ((jfk, JFK_TEXT), (espeak, text)):
        own = _pocketsphinx_frames(pcm, text)
        ours = _pocketsphinx_frames(pcm, text, sphinx_frontend.cepstra(pcm))
        assert len(own) == len(text.split())
        assert ours == own
    assert sphinx_frontend.n_frames(len(jfk)) == len(sphinx_frontend.cepstra(jfk))


def test_jfk_is_aligned_near_where_pocketsphinx_puts_it():
    """Real speech: the same model's boundaries as pocketsphinx's decoder finds them, give or take what
    differs on purpose (exact mixtures, silence context at word edges, no beam)."""
    pcm = _jfk_pcm()
    theirs = _pocketsphinx_frames(pcm, JFK_TEXT)
    result = at.EnglishAligner().align(pcm.astype(np.float32) / 32767, [[w] for w in JFK_TEXT.split()])
    assert result.times is not None, result.reason
    starts = np.array([s for s, _ in result.times]) - np.array([a * 0.01 for _, a, _ in theirs])
    ends = np.array([e for _, e in result.times]) - np.array([(b + 1) * 0.01 for _, _, b in theirs])
    both = np.abs(np.concatenate([starts, ends]))
    assert both.mean() <= 0.02 and both.max() <= 0.08, (starts, ends)


SENTENCES = [
    ("She bought a new jacket for the winter trip.", "en-us"),
    ("Nobody expected the weather to change so quickly.", "en-us+f3"),
    ("The committee will announce its decision early next week.", "en-us+m3"),
]


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    """The three sentences, synthesised in a new process (the same audio whatever ran before)."""
    return synth_fresh(SENTENCES, tmp_path_factory.mktemp("sentences"))


def _sentence_errors(sentences, aligner, noise: float) -> np.ndarray:
    """|error| of each exact word start and end of three espeak-ng sentences (three voices), aligned and then
    refined by the pause rules as the stage does, in white noise of ``noise`` RMS."""
    from captionbridge.core.speech.word_timing import refine_word_times, speech_activity

    rng = np.random.default_rng(11)
    errors = []
    for audio, words in sentences:
        pad = np.zeros(int(0.5 * SR), np.float32)
        samples = np.concatenate([pad, audio, pad])
        samples = (samples + noise * rng.standard_normal(len(samples))).astype(np.float32)
        result = aligner.align(samples, [at.spell_token(text) for text, *_ in words])
        assert result.times is not None, result.reason
        texts = [text for text, *_ in words]
        refined = refine_word_times(
            result.times, samples, SR, speech_activity(samples, SR), texts=texts, trusted=[True] * len(texts)
        )
        for (_, start, end, start_exact, end_exact), (s, e) in zip(words, refined):
            if start_exact:
                errors.append(s - (start + 0.5))
            if end_exact:
                errors.append(e - (end + 0.5))
    return np.abs(np.array(errors))


@pytest.mark.parametrize("noise, within", [(0.0, 0.9), (0.03, 0.75)])
def test_espeak_sentences_are_timed_to_their_exact_word_times(sentences, noise, within):
    """Starts and ends within 50 ms (measured: 98 % clean, 80 % in this strong white noise), and no worse
    than pocketsphinx's decoder on the same sentences (94 % / 80 %)."""
    ours = _sentence_errors(sentences, at.EnglishAligner(), noise)
    theirs = _sentence_errors(sentences, at.PocketsphinxAligner(), noise)
    assert np.mean(ours <= 0.05) >= within and ours.mean() <= 0.035, ours
    assert np.mean(ours <= 0.05) >= np.mean(theirs <= 0.05) - 0.02, (ours, theirs)


def test_a_damaged_or_missing_model_file_is_named_in_one_line(tmp_path, monkeypatch):
    root = tmp_path / "en-us"
    shutil.copytree(sphinx_model.model_root(), root)
    means = root / "en-us" / "means"
    means.write_bytes(means.read_bytes()[:5000])
    with pytest.raises(sphinx_model.ModelFileError) as caught:
        sphinx_model.load_model(root)
    message = str(caught.value)
    assert str(means) in message and "damaged" in message and "\n" not in message
    shutil.copy(sphinx_model.model_root() / "en-us" / "means", means)
    params = root / "en-us" / "feat.params"
    params.write_text(params.read_text().replace("-nfilt 25", "-nfilt 40"))
    other_front_end = r"feat.params describes another front end.*nfilt 40"
    with pytest.raises(sphinx_model.ModelFileError, match=other_front_end):
        sphinx_model.load_model(root)
    shutil.copy(sphinx_model.model_root() / "en-us" / "feat.params", params)
    (root / "en-us" / "sendump").unlink()
    with pytest.raises(sphinx_model.ModelFileError, match="sendump.*cannot be read"):
        sphinx_model.load_model(root)
    # the stage then says so once and English keeps Whisper's times; `models` shows which file
    monkeypatch.setattr(sphinx_model, "model_root", lambda: root)
    monkeypatch.setattr(sphinx_model, "_CACHE", {})
    monkeypatch.setattr(at, "_IDLE", [])
    with pytest.raises(at.AcousticTimingUnavailable, match="sendump"):
        at.EnglishAligner()
    assert "sendump" in at.model_status() and at.model_status().startswith("BROKEN")
    # what transcription catches and turns into its one warning (the words keep Whisper's times)
    audio = np.zeros(SR, np.float32)
    with pytest.raises(at.AcousticTimingUnavailable, match=r"sendump cannot be read.*reinstall pocketsphinx"):
        at.retime_words(["hello"], [(0.2, 0.5)], [[0]], audio, SR)


def test_pieces_that_cannot_be_aligned_are_refused_with_a_reason():
    aligner = at.EnglishAligner()
    silence = np.zeros(int(0.5 * SR), np.float32)
    assert aligner.align(silence, [[]]).reason == "no speakable words"
    assert aligner.align(silence[:800], [["hello"]]).reason == "segment shorter than 0.1 s"
    # twenty words need at least 3 frames per phone: they cannot fit in half a second
    too_many = aligner.align(silence, [["everything"]] * 20)
    assert too_many.times is None and too_many.reason == "no alignment found"
    with pytest.raises(ValueError, match="16000 Hz"):
        aligner.align(np.zeros(48000, np.float32), [["hello"]], sample_rate=48000)


def test_words_that_are_not_in_the_audio_are_refused_not_squeezed_in(speech_corpus_module):
    """An exact Viterbi always finds a path where there are frames enough; a script sentence cut off by the
    end of the audio had its 14 words squeezed into 1.6 s (92 % of the phones at 3 frames, `align` 120 ms
    off on average). Such a piece is refused, and its words keep the times they had."""
    said = "Bright lights."
    script = "Bright lights filled the hall before the concert started on time."
    audio, _ = speech_corpus_module.synth_sentence(said, "en-us")
    pad = 0.003 * np.random.default_rng(2).standard_normal(int(0.3 * SR)).astype(np.float32)
    samples = np.concatenate([pad, audio, pad])
    aligner = at.EnglishAligner()
    fits = aligner.align(samples, [at.spell_token(t) for t in said.split()])
    assert fits.times is not None, fits.reason
    refused = aligner.align(samples, [at.spell_token(t) for t in script.split()])
    assert refused.times is None and refused.reason == "no alignment found"
    assert aligner._engine.squeezed > forced_align.SQUEEZE_MAX


def test_the_graph_allows_each_pronunciation_and_optional_silences(model):
    """A word with two pronunciations is one slot with two chains; silences before, between and after the
    words may be skipped; every transition goes forward (or stays)."""
    the = [[model.ci_index[p] for p in pron] for pron in sphinx_model.dictionary()["the"]]
    graph = forced_align.build_graph(model, [the, [[model.ci_index["AH"]]]])
    # SIL (3) + "the" two chains of 2 phones (12) + SIL (3) + "a" (3) + SIL (3)
    assert len(graph.senones) == 24
    assert graph.word_states == [(3, 14), (18, 20)]
    assert set(np.nonzero(graph.starts > forced_align.NEG / 2)[0]) == {0, 3, 9}
    assert set(np.nonzero(graph.ends > forced_align.NEG / 2)[0]) == {20, 23}
    real = graph.pred_lp > forced_align.NEG / 2
    rows = np.arange(len(graph.senones))[:, None]
    assert np.all(graph.pred[real] <= np.broadcast_to(rows, graph.pred.shape)[real])


def test_identity_names_the_engine():
    numpy_id = at.identity()
    assert "numpy-viterbi" in numpy_id and f"rules-{at.RULES_VERSION}" in numpy_id
    saved = at.ENGINE
    try:
        at.ENGINE = "pocketsphinx"
        assert "topn" in at.identity() and at.identity() != numpy_id
        assert isinstance(at.new_aligner(), at.PocketsphinxAligner)
    finally:
        at.ENGINE = saved
    assert isinstance(at.new_aligner(), at.EnglishAligner)
