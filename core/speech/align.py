"""Align a known script to audio: English with the acoustic aligner (``acoustic_timing``), other languages
with the Whisper model itself.

1. Silero VAD cuts the audio into speech windows of at most ~28 s (one Whisper encoder pass each), so a long
   recording never drifts: every window is timed on its own. On a timeline, no window spans two clips
   (``breaks``): each clip's audio is timed on its own.
2. The audio is recognised once (the guarded transcription path) and the recognised words are matched to the
   script (difflib on normalised words); matches anchor script words to windows. Script words that differ from
   what was heard (a 'replace' run) go to the windows of the recognised words they stand against, in order, so
   a clip gets as many script words as were heard in it even when recognition is poor (espeak Mandarin);
   script words with nothing heard against them are shared between the windows around them by the speech time
   left there.
3. Each window's script words are timed. English: forced alignment with pocketsphinx's acoustic model
   (``acoustic_timing``); a window it cannot match falls back to Whisper. Otherwise: their tokens go to
   ``model.model.align`` (the cross-attention DTW that faster-whisper's word timestamps use) and each script
   word gets the span and mean token probability of its tokens. Boundaries are then refined on the audio like
   transcribed words.
4. Nothing is dropped: a word that could not be placed (no window, failed alignment) is given a time between
   its neighbours, confidence 0, and listed in ``unplaced``; runs of low-probability words are listed as
   ``low_confidence`` spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from . import acoustic_timing
from .chinese_text import has_cjk, is_cjk, is_punctuation
from .transcribe import SAMPLE_RATE, TranscribeOptions, _Engine
from .word_timing import refine_word_times, speech_activity

WINDOW_SECONDS = 28.0
LOW_CONFIDENCE = 0.15
UNHEARD = (
    0.1  # confidence of an acoustically aligned script word that Whisper did not hear (under LOW_CONFIDENCE)
)
ACOUSTIC_PAD = 0.2  # seconds of audio around a speech window for the acoustic aligner
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
    """The script as timed units: space-separated words, one unit per character for CJK (punctuation
    attached)."""
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


def speech_windows(
    samples: np.ndarray,
    vad_threshold: float = 0.5,
    max_seconds: float = WINDOW_SECONDS,
    breaks: list[float] | None = None,
) -> list[tuple[int, int]]:
    """Sample ranges of speech, grouped into windows no longer than ``max_seconds`` that never span a break
    (seconds: a timeline's clip edges)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(
        samples,
        VadOptions(
            threshold=vad_threshold,
            min_silence_duration_ms=300,
            speech_pad_ms=150,
            max_speech_duration_s=max_seconds,
        ),
    )
    windows: list[list[int]] = []
    limit = int(max_seconds * SAMPLE_RATE)
    cuts = sorted(int(round(t * SAMPLE_RATE)) for t in (breaks or []))
    pieces = []
    for s in stamps:  # a speech stretch running over a clip edge is two stretches
        a, b = int(s["start"]), int(s["end"])
        for cut in cuts:
            if a < cut < b:
                if cut - a >= SAMPLE_RATE // 20:
                    pieces.append((a, cut))
                a = cut
        if b - a >= SAMPLE_RATE // 20:
            pieces.append((a, b))

    def crosses(lo: int, hi: int) -> bool:
        return any(lo < cut < hi for cut in cuts)

    for a, b in pieces:
        if (
            windows
            and b - windows[-1][0] <= limit
            and a - windows[-1][1] < 2 * SAMPLE_RATE
            and not crosses(windows[-1][1], a + 1)
        ):
            windows[-1][1] = b
        else:
            windows.append([a, b])
    return [(a, b) for a, b in windows]


def align_script(
    samples: np.ndarray,
    script: str,
    language: str | None = None,
    options: TranscribeOptions | None = None,
    model=None,
    breaks: list[float] | None = None,
) -> Alignment:
    """Time every unit of ``script`` in ``samples`` (16 kHz mono); seconds are the samples' own. ``breaks``:
    seconds where the audio changes clip (a timeline's region edges): no speech window spans one."""
    samples = np.asarray(samples, dtype=np.float32)
    units = script_units(script)
    if not units:
        raise InputError("the script is empty: nothing to align")
    options = options or TranscribeOptions(language=language or "auto", cache=False)
    engine = _Engine(options, model)
    model = engine.model
    windows = speech_windows(samples, options.vad_threshold, breaks=breaks)
    if not windows:
        raise InputError("no speech found in the audio: there is nothing to align the script to")
    lang = language if language not in (None, "", "auto") else None
    if lang is None:
        lang, _ = engine.detect_language([samples])
    if not model.model.is_multilingual:
        lang = "en"
    recognised = engine.transcribe_samples(samples, lang)["words"]  # [text, start, end, prob]
    warnings: list[str] = []

    # -- anchor script units to windows through the recognised words
    # --------------------------------------------
    def window_of(t: float) -> int:
        centre = t * SAMPLE_RATE
        best = min(
            range(len(windows)),
            key=lambda k: (
                0
                if windows[k][0] <= centre <= windows[k][1]
                else min(abs(centre - windows[k][0]), abs(centre - windows[k][1]))
            ),
        )
        return best

    import difflib

    rec_keys = [_norm(w[0]) for w in recognised]
    unit_keys = [_norm(u) for u in units]
    if lang in (
        "zh",
        "yue",
        "ja",
    ):  # recognised words are characters after normalisation; compare per character
        rec_keys = [k[:1] for k in rec_keys]
        unit_keys = [k[:1] for k in unit_keys]
    matcher = difflib.SequenceMatcher(a=unit_keys, b=rec_keys, autojunk=False)
    assigned: list[int | None] = [None] * len(units)
    anchor_time: dict[int, float] = {}
    anchor_prob: dict[int, float] = {}
    heard_against: dict[int, int] = {}  # script unit -> the recognised word standing against it
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                w = recognised[j1 + k]
                assigned[i1 + k] = window_of((w[1] + w[2]) / 2)
                anchor_time[i1 + k] = (w[1] + w[2]) / 2
                anchor_prob[i1 + k] = float(w[3])
        elif tag == "replace":  # heard differently: in order against what was heard there
            for k in range(i1, i2):
                heard_against[k] = j1 + min(j2 - j1 - 1, int((k - i1 + 0.5) * (j2 - j1) / (i2 - i1)))
    for k, j in heard_against.items():
        w = recognised[j]
        assigned[k] = window_of((w[1] + w[2]) / 2)
    _fill_unanchored(assigned, anchor_time, windows, len(units))
    if not anchor_time:
        warnings.append(
            "the recognised speech matched none of the script: words were spread over the speech by "
            "length; check that the script belongs to this audio"
        )

    # -- force each window's units through the model
    # --------------------------------------------------------------
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=lang)
    timed: list[AlignedWord | None] = [None] * len(units)
    acoustic = [False] * len(units)
    cjk = lang in ("zh", "yue", "ja")
    use_acoustic = options.refine_timing and options.acoustic_timing and acoustic_timing.supports(lang)
    aligner = None
    fallback_windows = 0
    for k, (a, b) in enumerate(windows):
        idx = [i for i, w in enumerate(assigned) if w == k]
        if not idx:
            continue
        if use_acoustic:
            lo = max(windows[k - 1][1] if k else 0, a - int(ACOUSTIC_PAD * SAMPLE_RATE))
            hi = min(
                windows[k + 1][0] if k + 1 < len(windows) else len(samples),
                b + int(ACOUSTIC_PAD * SAMPLE_RATE),
            )
            try:
                aligner = aligner or acoustic_timing.new_aligner()  # one per script: its state stays its own
                result = aligner.align(
                    samples[lo:hi],
                    [acoustic_timing.spell_token(units[i]) for i in idx],
                    SAMPLE_RATE,
                    lo / SAMPLE_RATE,
                )
            except acoustic_timing.AcousticTimingUnavailable as exc:
                warnings.append(f"English words timed by Whisper only: {exc}")
                use_acoustic = False
                result = acoustic_timing.SegmentResult(None)
            if result.times is not None:
                for i, (start, end) in zip(idx, result.times):
                    # how sure: what Whisper heard there (a script word it did not hear is reported when in a
                    # run)
                    timed[i] = AlignedWord(units[i], start, end, anchor_prob.get(i, UNHEARD))
                    acoustic[i] = True
                continue
            fallback_windows += 1
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
            warnings.append(
                f"speech window at {a / SAMPLE_RATE:.1f} s has too many script tokens ({len(tokens)}) "
                "for one pass: its words were placed by interpolation"
            )
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
            token_words.append(
                (
                    cursor,
                    cursor + len(piece),
                    float(item["start"]),
                    float(item["end"]),
                    float(item["probability"]),
                )
            )
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

    # -- refine on the audio, then place what could not be placed
    # ---------------------------------------------
    if fallback_windows:
        warnings.append(
            f"{fallback_windows} speech window(s) could not be matched by the acoustic aligner and "
            "were timed with Whisper's own alignment"
        )
    placed = [i for i, t in enumerate(timed) if t is not None]
    if placed and options.refine_timing:
        activity = speech_activity(samples, SAMPLE_RATE)
        refined = refine_word_times(
            [(timed[i].start, timed[i].end) for i in placed],
            samples,
            SAMPLE_RATE,
            activity,
            texts=[timed[i].text for i in placed],
            lag=engine.lag_model(),
            trusted=[acoustic[i] for i in placed],
        )
        for i, (s, e) in zip(placed, refined):
            timed[i].start, timed[i].end = s, e
    unplaced = _interpolate_missing(timed, units, windows)
    words = [t for t in timed if t is not None]
    if unplaced:
        warnings.append(
            f"{len(unplaced)} script word(s) could not be placed and were given times between their "
            "neighbours (confidence 0): "
            + ", ".join(repr(u["text"]) for u in unplaced[:10])
            + (" ..." if len(unplaced) > 10 else "")
        )
    low = _low_confidence_spans(words)
    if low:
        warnings.append(
            f"{len(low)} low-confidence span(s): "
            + "; ".join(f"{s['start']:.2f}-{s['end']:.2f} s {s['text']!r}" for s in low[:5])
        )
    return Alignment(words, lang, unplaced, low, warnings)


def _fill_unanchored(assigned: list, anchor_time: dict, windows: list, n: int) -> None:
    """Give unmatched script units a window: between two placed units in one window, that window; across
    windows, split by each window's speech time (only the part after/before a neighbour's anchor in the
    neighbours' windows); before the first or after the last placed unit, over the windows from the start / to
    the end; with nothing placed at all, by length over the whole speech."""
    lengths = [b - a for a, b in windows]
    if all(a is None for a in assigned):
        total = sum(lengths)
        bounds = np.cumsum(lengths) / total
        for i in range(n):
            assigned[i] = int(np.searchsorted(bounds, (i + 0.5) / n))
        return
    for i, j in _runs_of_none(assigned):
        left = assigned[i - 1] if i > 0 else None
        right = assigned[j] if j < n else None
        lo_w = (
            left if left is not None else 0
        )  # a leading run may belong to any window up to the first anchor
        hi_w = right if right is not None else len(windows) - 1  # a trailing one to any after the last
        lo_w, hi_w = min(lo_w, hi_w), max(lo_w, hi_w)
        if lo_w == hi_w:
            for k in range(i, j):
                assigned[k] = lo_w
        else:
            span = list(range(lo_w, hi_w + 1))
            weights = np.array([lengths[w] for w in span], float)
            t_left = anchor_time.get(i - 1) if left is not None else None
            t_right = anchor_time.get(j) if right is not None else None
            if t_left is not None:  # only the speech after the left neighbour in its window
                weights[0] = min(weights[0], max(0.0, windows[lo_w][1] - t_left * SAMPLE_RATE))
            if t_right is not None:
                weights[-1] = min(weights[-1], max(0.0, t_right * SAMPLE_RATE - windows[hi_w][0]))
            if weights.sum() <= 0:
                weights[:] = 1.0
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
            unplaced.append(
                {
                    "index": k,
                    "text": units[k],
                    "start": round(float(edges[k - i]), 3),
                    "end": round(float(edges[k - i + 1]), 3),
                }
            )
    return unplaced


def _low_confidence_spans(
    words: list[AlignedWord], threshold: float = LOW_CONFIDENCE, min_words: int = MIN_LOW_RUN
) -> list[dict]:
    """Runs of ``min_words``+ consecutive words the model found unlikely where they were forced: the script
    and the audio probably disagree there (a single short function word is often improbable even when
    right)."""
    spans, run = [], []
    for w in words + [None]:
        if w is not None and w.placed and w.confidence < threshold:
            run.append(w)
            continue
        if len(run) >= min_words:
            spans.append(
                {
                    "start": round(run[0].start, 3),
                    "end": round(run[-1].end, 3),
                    "text": " ".join(x.text for x in run),
                    "confidence": round(float(np.mean([x.confidence for x in run])), 3),
                }
            )
        run = []
    return spans


# -- whole files -> the JSON contract
# -------------------------------------------------------------------------
