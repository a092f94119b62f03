"""Calibrate word timing for one Whisper model: how far its boundaries in running speech sit from the real
ones.

Each model's cross-attention has its own habit (base puts the boundary after a long word 140-160 ms early,
tiny.en puts boundaries ~140 ms late), so ``core.speech.word_timing`` corrects Whisper's boundary by a
per-model ``LagModel`` before looking at the audio. This fits one:

1. the calibration corpora (``speech_corpus.CALIBRATION_SET``: espeak-ng speech with exact word times, three
   voices, two sentence sets, 140-190 words per minute) are transcribed with the model, boundary refinement
   off;
2. for every boundary between two matched words in running speech, the real boundary minus Whisper's is fitted
   by least squares on the two words' letters and the second word's Whisper length;
3. the result is measured on the unseen corpora (``speech_corpus.UNSEEN_SET``, never used for any tuning):
   refined word timing with the new calibration against no calibration.

    python benchmarks/calibrate_word_timing.py [--model NAME_OR_FOLDER] [--write]

``--write`` saves the calibration as ``captionbridge_word_timing.json`` in the model's folder, where the
engine picks it up (``core.speech.word_timing.lag_model_for``). Built-in calibrations live in
``core.speech.word_timing.LAG_MODELS``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import speech_corpus as sc


class _W:
    def __init__(self, text: str, start: float, end: float):
        self.text, self.start, self.end = text, float(start), float(end)


def raw_words(model, corpus: sc.Corpus) -> list[_W]:
    """The model's words on a corpus, boundary refinement off (what the calibration corrects)."""
    from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_audio

    options = TranscribeOptions(language="en", refine_timing=False, cache=False)
    return [_W(w.text, w.start, w.end) for w in transcribe_audio(corpus.samples, options, model=model).words]


def boundary_rows(corpus: sc.Corpus, words: list[_W]) -> list[tuple[float, int, int, float]]:
    """(real minus Whisper boundary, letters of the word before, letters of the word after, Whisper length of
    the word after) for each matched word that starts inside running speech."""
    from captionbridge.core.speech.word_timing import _letters  # counted exactly as the lag model counts them

    index = {id(w): i for i, w in enumerate(words)}
    sentence_starts = [a for a, _ in corpus.speech]
    rows = []
    for ref, hyp in sc.match_words(corpus.words, words):
        i = index[id(hyp)]
        if not ref.start_exact or i == 0 or any(abs(ref.start - a) < 1e-6 for a in sentence_starts):
            continue
        before = words[i - 1]
        if hyp.start - before.end > 0.03:  # Whisper saw a pause there: not a running-speech boundary
            continue
        centre = (before.end + hyp.start) / 2
        rows.append(
            (ref.start - centre, len(_letters(before.text)), len(_letters(hyp.text)), hyp.end - hyp.start)
        )
    return rows


def fit(rows: list[tuple[float, int, int, float]]):
    """A ``LagModel`` fitted to boundary rows (least squares; bounds at the 1st and 99th percentile of the
    lags)."""
    from captionbridge.core.speech.word_timing import LagModel

    y = np.array([r[0] for r in rows])
    x = np.array([[1.0, r[1], r[2], r[3]] for r in rows])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    low, high = np.percentile(y, [1, 99])
    return LagModel(
        average=round(float(y.mean()), 4),
        base=round(float(coef[0]), 4),
        per_letter_a=round(float(coef[1]), 5),
        per_letter_b=round(float(coef[2]), 5),
        per_second_b=round(float(coef[3]), 4),
        low=round(float(low), 3),
        high=round(float(high), 3),
    )


def timing(corpus: sc.Corpus, words: list[_W], lag) -> np.ndarray:
    """Absolute boundary errors (s) of refined word times under a calibration."""
    from captionbridge.core.speech.word_timing import refine_word_times

    times = refine_word_times(
        [(w.start, w.end) for w in words],
        corpus.samples,
        corpus.sample_rate,
        texts=[w.text for w in words],
        lag=lag,
    )
    starts, ends = sc.timing_errors(corpus.words, [_W(w.text, s, e) for w, (s, e) in zip(words, times)])
    return np.abs(np.array(starts + ends))


def calibrate(model, sentences: int | None = None) -> dict:
    from captionbridge.core.speech.word_timing import UNCALIBRATED

    rows = []
    for kwargs in sc.CALIBRATION_SET.values():
        corpus = sc.make_corpus("en", sentences=sentences, tone_seconds=4.0, **kwargs)
        rows += boundary_rows(corpus, raw_words(model, corpus))
    lag = fit(rows)
    measured = {}
    for name, kwargs in sc.UNSEEN_SET.items():
        corpus = sc.make_corpus("en", sentences=sentences, tone_seconds=4.0, **kwargs)
        words = raw_words(model, corpus)
        raw = np.abs(np.array(sum(sc.timing_errors(corpus.words, words), [])))
        measured[name] = {
            label: errors
            for label, errors in (
                ("raw", raw),
                ("uncalibrated", timing(corpus, words, UNCALIBRATED)),
                ("calibrated", timing(corpus, words, lag)),
            )
        }
    summary = {}
    for label in ("raw", "uncalibrated", "calibrated"):
        errors = np.concatenate([m[label] for m in measured.values()])
        summary[label] = {
            "mae_ms": round(float(errors.mean()) * 1000, 1),
            "within_50ms_pct": round(float(np.mean(errors <= 0.05)) * 100, 1),
        }
    return {"calibration": asdict(lag), "boundaries_fitted": len(rows), "unseen": summary}


def main(argv: list[str] | None = None) -> None:
    import argparse

    from captionbridge.core.speech.models import load_whisper, resolve_model
    from captionbridge.core.speech.word_timing import CALIBRATION_FILE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or folder (default: the packaged model)")
    parser.add_argument("--write", action="store_true", help=f"save {CALIBRATION_FILE} in the model's folder")
    parser.add_argument(
        "--sentences", type=int, default=None, help="sentences per corpus (fewer: quicker, rougher)"
    )
    args = parser.parse_args(argv)
    resolved = resolve_model(args.model)
    result = calibrate(load_whisper(resolved, "auto", "auto"), args.sentences)
    result["model"] = resolved.name
    print(json.dumps(result, indent=2))
    if args.write:
        folder = Path(resolved.path)
        if not folder.is_dir():
            raise SystemExit(f"{resolved.name} has no local folder to write {CALIBRATION_FILE} into")
        (folder / CALIBRATION_FILE).write_text(
            json.dumps(result["calibration"], indent=2) + "\n", encoding="utf-8"
        )
        print(f"wrote {folder / CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
