"""Whisper spans decoded together (``core.cluster.whisper_batch``, what a cluster replica runs with
``--whisper-batch-size``): with the packaged Whisper base model on real espeak-ng speech, spans of one window
with the same settings are decoded in one batch and each gets what the engine's own span transcription gives
it alone; a span with more than one window of speech, a span asking for other settings and a span too short
to decode are not batched, and the batch still completes."""

from __future__ import annotations

import difflib
import subprocess
import threading

import ctranslate2
import numpy as np
import pytest
import soundfile as sf

from captionbridge.core.cluster.whisper_batch import WINDOW, transcribe_together
from captionbridge.core.speech import models
from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_span_samples

pytestmark = pytest.mark.slow

SENTENCES = [
    "The harbour master walked along the quay at dawn, counting the boats that had come in overnight.",
    "Nobody in the village had expected the storm to pass so quickly, or the sea to be so calm afterwards.",
    "Her brother repaired the old radio in the kitchen while the children painted the garden fence.",
]


def speech(tmp_path, name: str, text: str, repeat: int = 1) -> np.ndarray:
    raw, wav = tmp_path / f"{name}.22k.wav", tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=60)
    args = ["sox", str(raw)] + [str(raw)] * (repeat - 1) + ["-r", "16000", "-c", "1", "-b", "16", str(wav)]
    subprocess.run(args, check=True, timeout=60)
    samples, rate = sf.read(str(wav), dtype="float32")
    assert rate == 16000
    return samples


def reseed() -> None:
    """What a replica does before each span (temperature fallback samples: same seed, same words)."""
    ctranslate2.set_random_seed(0)


def alone(samples, options, model) -> dict:
    """The span transcribed on its own, as a replica without batching does it."""
    reseed()
    return transcribe_span_samples(samples, options, model)


def texts(result: dict) -> list[str]:
    return [w[0].lower().strip(".,") for w in result["words"]]


@pytest.fixture(scope="module")
def base(base_whisper_model):
    return models.load_whisper(str(base_whisper_model), "cpu", "int8")


def test_short_spans_are_decoded_together_and_get_what_each_gets_alone(base, base_whisper_model, tmp_path):
    options = TranscribeOptions(language="en", model=str(base_whisper_model), device="cpu", cache=False)
    other = TranscribeOptions(
        language="en", model=str(base_whisper_model), device="cpu", cache=False, beam_size=2
    )
    short = [speech(tmp_path, f"s{n}", text) for n, text in enumerate(SENTENCES)]
    long = speech(tmp_path, "long", " ".join(SENTENCES), repeat=3)  # about a minute of speech
    assert all(len(s) < WINDOW for s in short) and len(long) > WINDOW + 5 * 16000
    tiny = np.zeros(800, dtype=np.float32)  # 50 ms: nothing to decode (the span leaves without decoding)
    spans = [
        (short[0], options),
        (long, options),
        (short[1], options),
        (tiny, options),
        (short[2], options),
        (short[0], other),  # other settings: alone in its group
    ]
    results, meeting = transcribe_together(base, spans, threading.Lock(), reseed)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert meeting.batched == [3] and meeting.failure is None  # the three short spans, nothing else
    assert results[3]["words"] == []

    for n in (1, 5):  # not batched (meeting.batched above): the engine's own sequential decode
        got, want = texts(results[n]), texts(alone(spans[n][0], spans[n][1], base))
        # Not compared for equality: decoded while other spans decode on other threads, CTranslate2's output
        # can differ in a word or two where Whisper is unsure (a clean-clone run got "Kiatorn," where the
        # run alone heard "key"); run alone, a batch of one is today's decode exactly (next test).
        assert difflib.SequenceMatcher(a=got, b=want, autojunk=False).ratio() >= 0.75, (n, got, want)
    for n in (0, 2, 4):
        single = alone(spans[n][0], options, base)
        got, want = texts(results[n]), texts(single)
        assert len(want) >= 12, want  # real words: the comparison means something
        # one window decoded at the first temperature, without timestamp tokens: nearly the same words
        # (0.91-1.0 in full-suite runs, where CTranslate2's numerics move with what ran before); a span given
        # another span's window (different sentences) would score far below 0.75
        matcher = difflib.SequenceMatcher(a=got, b=want, autojunk=False)
        assert matcher.ratio() >= 0.75, (got, want)
        pairs = [
            (results[n]["words"][m.a + k], single["words"][m.b + k])
            for m in matcher.get_matching_blocks()
            for k in range(m.size)
        ]
        # word times: both go through the same acoustic aligner and refinement, which place English words
        # from the audio; Whisper's own (cross-attention) times only seed it. 80 ms: two frames at 25 fps
        worst = max(max(abs(g[1] - w[1]), abs(g[2] - w[2])) for g, w in pairs)
        assert worst <= 0.08, (worst, pairs)
        assert results[n]["language"] == "en"


def test_a_batch_of_one_is_todays_decode(base, base_whisper_model, tmp_path):
    """A span that meets nobody (a batch of one) is decoded exactly as a replica without batching does."""
    options = TranscribeOptions(language="en", model=str(base_whisper_model), device="cpu", cache=False)
    samples = speech(tmp_path, "one", SENTENCES[1])
    results, meeting = transcribe_together(base, [(samples, options)], threading.Lock(), reseed)
    assert meeting.batched == []
    assert results[0]["words"] == alone(samples, options, base)["words"]
