"""Held-out word error rate of a Whisper folder, measured the way the engine runs it (faster-whisper)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def _words(text: str) -> list[str]:
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return text.split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)], len(ref)


def held_out_wer(
    folder, examples: Sequence, device: str = "cpu", compute_type: str = "int8", hotwords: str | None = None
) -> float:
    """Corpus WER of ``folder`` on ``examples`` (``lora.Example``), beam 5, language forced, no timestamps."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(folder), device=device, compute_type=compute_type, cpu_threads=2)
    errors = total = 0
    for example in examples:
        segments, _ = model.transcribe(
            example.audio,
            language=example.language,
            beam_size=5,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            hotwords=hotwords or None,
        )
        e, n = word_errors(example.text, " ".join(s.text for s in segments))
        errors, total = errors + e, total + n
    return errors / max(1, total)
