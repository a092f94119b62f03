"""Align a known script to audio with the Whisper model itself (no extra alignment model).

1. Silero VAD cuts the audio into speech windows of at most ~28 s (one Whisper encoder pass each), so a long
   recording never drifts: every window is timed on its own.
2. The audio is recognised once (the guarded transcription path) and the recognised words are matched to the
   script (difflib on normalised words); matches anchor script words to windows, unmatched script words are shared
   between the windows around them by the speech time left there.
3. Each window's script words are forced through the model: their tokens go to ``model.model.align`` (the
   cross-attention DTW that faster-whisper's word timestamps use) and each script word gets the span and mean
   token probability of its tokens. Boundaries are then refined on the audio like transcribed words.
4. Nothing is dropped: a word that could not be placed (no window, failed alignment) is given a time between its
   neighbours, confidence 0, and listed in ``unplaced``; runs of low-probability words are listed as
   ``low_confidence`` spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .chinese_text import has_cjk, is_cjk, is_punctuation
from .transcribe import SAMPLE_RATE, TranscribeOptions, _Engine
from .word_timing import refine_word_times, speech_activity

WINDOW_SECONDS = 28.0
LOW_CONFIDENCE = 0.15
MIN_LOW_RUN = 3


@dataclass
class AlignedWord:
    text: str
    start: float
    end: float
    confidence: float
    placed: bool = True


@dataclass
class Alignment:
    words: list[AlignedWord]
    language: str
    unplaced: list[dict] = field(default_factory=list)  # {"index", "text", "start", "end"}
    low_confidence: list[dict] = field(default_factory=list)  # {"start", "end", "text", "confidence"}
    warnings: list[str] = field(default_factory=list)


def script_units(text: str) -> list[str]:
    """The script as timed units: space-separated words, one unit per character for CJK (punctuation attached)."""
    units: list[str] = []
    for token in text.split():
        if not has_cjk(token):
            if units and all(is_punctuation(c) for c in token):
                units[-1] += token
            else:
                units.append(token)
            continue
        latin = False  # inside a run of Latin letters/digits within a CJK token ("AI", "2024")
        for ch in token:
            if is_punctuation(ch) and units:
                units[-1] += ch
                latin = False
            elif not is_cjk(ch) and latin:
                units[-1] += ch
            else:
                units.append(ch)
                latin = not is_cjk(ch)
    return units


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def speech_windows(samples: np.ndarray, vad_threshold: float = 0.5,
                   max_seconds: float = WINDOW_SECONDS) -> list[tuple[int, int]]:
    """Sample ranges of speech, grouped into windows no longer than ``max_seconds``."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(samples, VadOptions(threshold=vad_threshold, min_silence_duration_ms=300,
                                                       speech_pad_ms=150, max_speech_duration_s=max_seconds))
    windows: list[list[int]] = []
    limit = int(max_seconds * SAMPLE_RATE)
    for s in stamps:
        a, b = int(s["start"]), int(s["end"])
        if windows and b - windows[-1][0] <= limit and a - windows[-1][1] < 2 * SAMPLE_RATE:
            windows[-1][1] = b
        else:
            windows.append([a, b])
    return [(a, b) for a, b in windows]


def align_script(samples: np.ndarray, script: str, language: str | None = None,
                 options: TranscribeOptions | None = None, model=None) -> Alignment:
    """Time every unit of ``script`` in ``samples`` (16 kHz mono); seconds are the samples' own."""
    samples = np.asarray(samples, dtype=np.float32)
    units = script_units(script)
    if not units:
        raise InputError("the script is empty: nothing to align")
    options = options or TranscribeOptions(language=language or "auto", cache=False)
    engine = _Engine(options, model)
    model = engine.model
    windows = speech_windows(samples, options.vad_threshold)
    if not windows:
        raise InputError("no speech found in the audio: there is nothing to align the script to")
    lang = language if language not in (None, "", "auto") else None
    if lang is None:
        lang, _ = engine.detect_language([samples])
    if not model.model.is_multilingual:
        lang = "en"
    recognised = engine.transcribe_samples(samples, lang)["words"]  # [text, start, end, prob]
    warnings: list[str] = []

    # -- anchor script units to windows through the recognised words --------------------------------------------
    def window_of(t: float) -> int:
        centre = t * SAMPLE_RATE
        best = min(range(len(windows)), key=lambda k: 0 if windows[k][0] <= centre <= windows[k][1]
                   else min(abs(centre - windows[k][0]), abs(centre - windows[k][1])))
        return best

    import difflib

    rec_keys = [_norm(w[0]) for w in recognised]
    unit_keys = [_norm(u) for u in units]
    if lang in ("zh", "yue", "ja"):  # recognised words are characters after normalisation; compare per character
        rec_keys = [k[:1] for k in rec_keys]
        unit_keys = [k[:1] for k in unit_keys]
    matcher = difflib.SequenceMatcher(a=unit_keys, b=rec_keys, autojunk=False)
    assigned: list[int | None] = [None] * len(units)
    anchor_time: dict[int, float] = {}
    for a, b, n in matcher.get_matching_blocks():
        for k in range(n):
            w = recognised[b + k]
            assigned[a + k] = window_of((w[1] + w[2]) / 2)
            anchor_time[a + k] = (w[1] + w[2]) / 2
    _fill_unanchored(assigned, anchor_time, windows, len(units))
    if not anchor_time:
        warnings.append("the recognised speech matched none of the script: words were spread over the speech by "
                        "length; check that the script belongs to this audio")

    # -- force each window's units through the model --------------------------------------------------------------
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=lang)
    timed: list[AlignedWord | None] = [None] * len(units)
    cjk = lang in ("zh", "yue", "ja")
    for k, (a, b) in enumerate(windows):
        idx = [i for i, w in enumerate(assigned) if w == k]
        if not idx:
            continue
        chunk = samples[a:b]
        features = model.feature_extractor(chunk)
        num_frames = min(features.shape[-1], 3000)
        encoder_output = model.encode(pad_or_trim(features))
        pieces = [units[i] for i in idx]
        text = "".join(pieces) if cjk else " " + " ".join(pieces)
        spans, pos = [], 0 if cjk else 1
        for p in pieces:
            spans.append((pos, pos + len(p)))
            pos += len(p) + (0 if cjk else 1)
        tokens = tokenizer.encode(text)
        if len(tokens) > 440:
            warnings.append(f"speech window at {a / SAMPLE_RATE:.1f} s has too many script tokens ({len(tokens)}) "
                            "for one pass: its words were placed by interpolation")
            continue
        try:
            alignment = model.find_alignment(tokenizer, [tokens], encoder_output, num_frames)[0]
        except Exception as exc:  # a CTranslate2 failure in one window must not lose the others
            warnings.append(f"alignment failed in the window at {a / SAMPLE_RATE:.1f} s: {exc}")
            continue
        # char spans of the tokenizer's words in the decoded text
        cursor = 0
        token_words = []
        for item in alignment:
            piece = item["word"]
            token_words.append((cursor, cursor + len(piece), float(item["start"]), float(item["end"]),
                                float(item["probability"])))
            cursor += len(piece)
        offset = a / SAMPLE_RATE
        for i, (lo, hi) in zip(idx, spans):
            hits = [t for t in token_words if t[0] < hi and t[1] > lo and t[1] > t[0]]
            if not hits:
                continue
            start = min(h[2] for h in hits) + offset
            end = max(h[3] for h in hits) + offset
            prob = float(np.mean([h[4] for h in hits]))
            timed[i] = AlignedWord(units[i], start, max(end, start), prob)

    # -- refine on the audio, then place what could not be placed ---------------------------------------------
    placed = [i for i, t in enumerate(timed) if t is not None]
    if placed and options.refine_timing:
        activity = speech_activity(samples, SAMPLE_RATE)
        refined = refine_word_times([(timed[i].start, timed[i].end) for i in placed], samples, SAMPLE_RATE,
                                    activity, texts=[timed[i].text for i in placed], lag=engine.lag_model())
        for i, (s, e) in zip(placed, refined):
            timed[i].start, timed[i].end = s, e
    unplaced = _interpolate_missing(timed, units, windows)
    words = [t for t in timed if t is not None]
    if unplaced:
        warnings.append(f"{len(unplaced)} script word(s) could not be placed and were given times between their "
                        "neighbours (confidence 0): " + ", ".join(repr(u["text"]) for u in unplaced[:10])
                        + (" ..." if len(unplaced) > 10 else ""))
    low = _low_confidence_spans(words)
    if low:
        warnings.append(f"{len(low)} low-confidence span(s): " + "; ".join(
            f"{s['start']:.2f}-{s['end']:.2f} s {s['text']!r}" for s in low[:5]))
    return Alignment(words, lang, unplaced, low, warnings)


def _fill_unanchored(assigned: list, anchor_time: dict, windows: list, n: int) -> None:
    """Give unmatched script units a window: between two anchors in one window, that window; across windows, split
    by each window's speech time; with no anchors at all, by length over the whole speech."""
    lengths = [b - a for a, b in windows]
    if not anchor_time:
        total = sum(lengths)
        bounds = np.cumsum(lengths) / total
        for i in range(n):
            assigned[i] = int(np.searchsorted(bounds, (i + 0.5) / n))
        return
    for i, j in _runs_of_none(assigned):
        left = assigned[i - 1] if i > 0 else None
        right = assigned[j] if j < n else None
        lo_w = left if left is not None else right
        hi_w = right if right is not None else left
        if lo_w == hi_w:
            for k in range(i, j):
                assigned[k] = lo_w
        else:
            span = list(range(min(lo_w, hi_w), max(lo_w, hi_w) + 1))
            weights = np.array([lengths[w] for w in span], float)
            bounds = np.cumsum(weights) / weights.sum()
            count = j - i
            for k in range(i, j):
                assigned[k] = span[int(np.searchsorted(bounds, (k - i + 0.5) / count))]


def _runs_of_none(items: list) -> list[tuple[int, int]]:
    """[i, j) ranges of consecutive ``None`` entries (units not yet placed), computed before any is filled."""
    runs, i, n = [], 0, len(items)
    while i < n:
        if items[i] is not None:
            i += 1
            continue
        j = i
        while j < n and items[j] is None:
            j += 1
        runs.append((i, j))
        i = j
    return runs


def _interpolate_missing(timed: list, units: list[str], windows: list) -> list[dict]:
    """Fill gaps (units with no time) between placed neighbours, evenly by length. Returns what was filled."""
    n = len(units)
    unplaced = []
    audio_start = windows[0][0] / SAMPLE_RATE
    audio_end = windows[-1][1] / SAMPLE_RATE
    for i, j in _runs_of_none(timed):
        lo = timed[i - 1].end if i > 0 else audio_start
        hi = timed[j].start if j < n else audio_end
        if hi <= lo:
            hi = lo + 0.05 * (j - i)
        weights = np.array([len(units[k]) + 1 for k in range(i, j)], float)
        edges = lo + np.concatenate([[0], np.cumsum(weights) / weights.sum()]) * (hi - lo)
        for k in range(i, j):
            timed[k] = AlignedWord(units[k], float(edges[k - i]), float(edges[k - i + 1]), 0.0, placed=False)
            unplaced.append({"index": k, "text": units[k], "start": round(float(edges[k - i]), 3),
                             "end": round(float(edges[k - i + 1]), 3)})
    return unplaced


def _low_confidence_spans(words: list[AlignedWord], threshold: float = LOW_CONFIDENCE,
                          min_words: int = MIN_LOW_RUN) -> list[dict]:
    """Runs of ``min_words``+ consecutive words the model found unlikely where they were forced: the script and
    the audio probably disagree there (a single short function word is often improbable even when right)."""
    spans, run = [], []
    for w in words + [None]:
        if w is not None and w.placed and w.confidence < threshold:
            run.append(w)
            continue
        if len(run) >= min_words:
            spans.append({"start": round(run[0].start, 3), "end": round(run[-1].end, 3),
                          "text": " ".join(x.text for x in run),
                          "confidence": round(float(np.mean([x.confidence for x in run])), 3)})
        run = []
    return spans


# -- whole files -> the JSON contract -------------------------------------------------------------------------
