"""Whisper spans decoded together (``core.cluster.whisper_batch``, what a cluster replica runs with
``--whisper-batch-size``), with the packaged Whisper base model on real espeak-ng speech.

What batching must guarantee, checked without comparing a batched decode with an unbatched one word for word
(CTranslate2's choice at a near-tie moves with what ran before in the process and with threads beside it):
each span gets the words of its own audio (its own sentence within a generous error bound, and clearly not
another span's), its words lie where its speech is, every span is answered once, the spans that may not
batch (more than one window, other settings, too short) are decoded on their own (the rendezvous says which
span was decoded how), a failed batch falls back to decoding each span on its own, and a batch of one is
the unbatched decode exactly (both in one fresh single-threaded process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
import soundfile as sf
from fixtures.paths import REPO

from captionbridge.core.cluster.whisper_batch import WINDOW, transcribe_together
from captionbridge.core.finetune.evaluate import word_errors
from captionbridge.core.speech import models
from captionbridge.core.speech.transcribe import TranscribeOptions

pytestmark = pytest.mark.slow

SENTENCES = [
    "The harbour master walked along the quay at dawn, counting the boats that had come in overnight.",
    "Nobody in the village had expected the storm to pass so quickly, or the sea to be so calm afterwards.",
    "Her brother repaired the old radio in the kitchen while the children painted the garden fence.",
]
OWN_WER = 0.4  # generous: the base model mishears a few of espeak-ng's words
OTHER_WER = 0.75  # another sentence, or two sentences merged, is far above this
RATE = 16000


def speech(tmp_path: Path, name: str, text: str, repeat: int = 1, lead: float = 0.0, tail: float = 0.0):
    """espeak-ng speech at 16 kHz with ``lead`` / ``tail`` seconds of silence: (samples, (first, last)
    second with speech)."""
    raw, wav = tmp_path / f"{name}.22k.wav", tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=60)
    args = ["sox", str(raw)] + [str(raw)] * (repeat - 1) + ["-r", "16000", "-c", "1", "-b", "16", str(wav)]
    subprocess.run(args, check=True, timeout=60)
    samples, rate = sf.read(str(wav), dtype="float32")
    assert rate == RATE
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    first, last = loud[0] / RATE + lead, loud[-1] / RATE + lead
    pad = [np.zeros(int(lead * RATE), np.float32), samples, np.zeros(int(tail * RATE), np.float32)]
    return np.concatenate(pad), (first, last)


def text_of(result: dict) -> str:
    return " ".join(w[0] for w in result["words"])


def wer(reference: str, result: dict) -> float:
    errors, words = word_errors(reference, text_of(result))
    return errors / words


def assert_own_words(result: dict, own: str, others: list[str]) -> None:
    """Its own sentence (within a generous bound), and none of the others: a span given another span's
    words, or several spans' words, fails."""
    got = text_of(result)
    assert wer(own, result) <= OWN_WER, (got, own)
    for other in others:
        assert wer(other, result) >= OTHER_WER, (got, other)


def assert_words_on_its_speech(result: dict, speech_at: tuple[float, float], length: float) -> None:
    """Every word inside the span, ordered, and on its speech (not on the silence before or after it)."""
    first, last = speech_at
    words = result["words"]
    assert all(0 <= w[1] <= w[2] <= length for w in words), words
    assert all(a[1] <= b[1] for a, b in zip(words, words[1:])), words
    assert words[0][1] >= first - 0.3 and words[-1][2] <= last + 0.3, (speech_at, words[0], words[-1])
    assert words[0][1] <= first + 1.0 and words[-1][2] >= last - 1.0, (speech_at, words[0], words[-1])


def reseed() -> None:
    """What a replica does before each sequential decode."""
    ctranslate2.set_random_seed(0)


@pytest.fixture(scope="module")
def base(base_whisper_model):
    return models.load_whisper(str(base_whisper_model), "cpu", "int8", 1)


def options_for(base_whisper_model, **extra) -> TranscribeOptions:
    return TranscribeOptions(language="en", model=str(base_whisper_model), device="cpu", cache=False, **extra)


def test_each_span_of_a_batch_gets_its_own_words_and_the_others_decode_alone(
    base, base_whisper_model, tmp_path
):
    options = options_for(base_whisper_model)
    other = options_for(base_whisper_model, beam_size=2)
    # different silences before and after each: words placed by another span's offset land on silence
    short = [
        speech(tmp_path, f"s{n}", text, lead=lead, tail=tail)
        for n, (text, lead, tail) in enumerate(zip(SENTENCES, (0.2, 1.5, 3.0), (2.5, 1.2, 0.3)))
    ]
    long_text = " ".join(SENTENCES)
    long, _ = speech(tmp_path, "long", long_text, repeat=3)  # about 47 s: more than one window
    assert all(len(s) < WINDOW for s, _ in short) and len(long) > WINDOW + 10 * RATE
    tiny = np.zeros(800, dtype=np.float32)  # 50 ms: nothing to decode (the span leaves without decoding)
    spans = [
        (short[0][0], options),
        (long, options),
        (short[1][0], options),
        (tiny, options),
        (short[2][0], options),
        (short[1][0], other),  # other settings: alone in its group
    ]
    results, meeting = transcribe_together(base, spans, threading.Lock(), reseed)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(results) == len(spans)
    # the three short spans with the same settings in one batch; the long one and the one with other
    # settings each decoded once on its own; the tiny one never decoded
    assert meeting.groups == [[0, 2, 4]] and meeting.failure is None
    assert sorted(meeting.alone) == [1, 5]
    assert [meeting.together_with(n) for n in range(len(spans))] == [3, 1, 3, 1, 3, 1]
    assert results[3]["words"] == []

    for slot, n in ((0, 0), (2, 1), (4, 2), (5, 1)):
        samples = spans[slot][0]
        assert_own_words(results[slot], SENTENCES[n], [s for m, s in enumerate(SENTENCES) if m != n])
        assert_words_on_its_speech(results[slot], short[n][1], len(samples) / RATE)
        assert results[slot]["language"] == "en"
    assert wer(" ".join([long_text] * 3), results[1]) <= OWN_WER, text_of(results[1])
    assert results[1]["words"][-1][2] > WINDOW / RATE  # all of it, not its first window only


def test_a_failed_batch_decodes_each_span_on_its_own(base, base_whisper_model, tmp_path, monkeypatch):
    import faster_whisper

    def broken(self, *args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(faster_whisper.BatchedInferencePipeline, "transcribe", broken)
    options = options_for(base_whisper_model)
    short = [speech(tmp_path, f"f{n}", text) for n, text in enumerate(SENTENCES[:2])]
    results, meeting = transcribe_together(base, [(s, options) for s, _ in short], threading.Lock(), reseed)
    assert meeting.failure == "RuntimeError: out of memory (simulated)"
    assert meeting.groups == [] and sorted(meeting.alone) == [0, 1]
    for n, result in enumerate(results):
        assert_own_words(result, SENTENCES[n], [SENTENCES[1 - n]])


# Both decodes in one fresh process with one CTranslate2 thread: what ran before in a pytest process (other
# tests' decodes, their threads) cannot move a near-tie word in one and not the other.
BATCH_OF_ONE = """
import json, sys, threading
import ctranslate2, soundfile as sf
from captionbridge.core.cluster.whisper_batch import transcribe_together
from captionbridge.core.speech import models
from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_span_samples

model_path, wav = sys.argv[1], sys.argv[2]
samples, _ = sf.read(wav, dtype="float32")
options = TranscribeOptions(language="en", model=model_path, device="cpu", cache=False)
model = models.load_whisper(model_path, "cpu", "int8", 1)
reseed = lambda: ctranslate2.set_random_seed(0)
results, meeting = transcribe_together(model, [(samples, options)], threading.Lock(), reseed)
reseed()
alone = transcribe_span_samples(samples, options, model)
print(json.dumps({"batched": results[0]["words"], "alone": alone["words"], "groups": meeting.groups,
                  "decoded_alone": meeting.alone}))
"""


def test_a_batch_of_one_is_the_unbatched_decode(base_whisper_model, tmp_path):
    """A span that meets nobody is decoded exactly as a replica without batching decodes it."""
    samples, _ = speech(tmp_path, "one", SENTENCES[1])
    sf.write(str(tmp_path / "one16k.wav"), samples, RATE, subtype="PCM_16")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO.parent)])}
    done = subprocess.run(
        [sys.executable, "-c", BATCH_OF_ONE, str(base_whisper_model), str(tmp_path / "one16k.wav")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["groups"] == [] and out["decoded_alone"] == [0]
    assert len(out["alone"]) >= 12, out["alone"]  # real words: the comparison means something
    assert out["batched"] == out["alone"]
