"""Word boundary refinement: put Whisper's word times on the speech they belong to.

Whisper's cross-attention word times are good to ~0.1 s but fail in known ways: the first word after a long
silence starts early (inside the silence), a word before a pause ends early or is stretched into the pause,
and boundaries in running speech are quantised to 20 ms. We fix those against the audio itself:

* an energy-based activity mask (10 ms frames, threshold adapted to the chunk's own noise floor and peak)
  finds pauses; a pause is at least ``min_pause`` long so stop closures inside words are not mistaken for
  pauses;
* a word start that lies in a pause moves to the next speech onset; a word that is the first of its speech run
  starts at the run's onset (when that onset is near); the mirror rules hold for ends;
* a boundary between two words in running speech is placed on the audio near where Whisper's boundary really
  points. Each model's cross-attention has its own habit, calibrated per model (``LagModel``, fitted by
  ``benchmarks/calibrate_word_timing.py``): Whisper base's boundaries come early, by an amount that grows with
  the length of the word before (about 30 ms after a 1-3 letter word, 140-160 ms after 6 or more) and with how
  long Whisper made the word after (its start is pulled early, its end much less); tiny.en's come ~90 ms late.
  The calibrated lag gives the corrected point (a model nobody calibrated is searched around its own
  boundary). The search runs from 80 ms before to 60 ms after that point: - a quiet run there (a stop closure
  or a short pause, >= 35 dB under the loudest frame near it) separates the words: the first ends where it
  falls quiet, the second starts where sound returns (its speech onset, as for a caption). Of several, the one
  ending nearest the corrected point is taken; when the first word ends in a stop and the second starts with
  one (two closures in a row, "quick brown"), the later of the two nearest, since the first closure is the
  first word's own; - when the first word ends in a stop and the second does not ("left at"), a quiet run
  shorter than 150 ms is the first word's own closure: the boundary is after its release burst, at the
  strongest rise in level within 80 ms; - otherwise the deepest energy dip (>= 6 dB) in the window, and with
  no dip, the corrected point itself. Which words open or close with a stop is read from their spelling
  (English letters; other scripts have no stop hints and use the quiet-run and dip rules only);
* words never overlap and never get shorter than ``min_word``.

Everything here is measured by ``benchmarks/bench_transcribe.py`` against espeak-ng ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOP = 0.010  # seconds per activity frame


@dataclass(frozen=True)
class Activity:
    """Per-frame speech activity of a chunk of audio (frame i covers [i*HOP, (i+1)*HOP))."""

    active: np.ndarray  # bool per frame
    energy_db: np.ndarray  # float per frame

    @property
    def frames(self) -> int:
        return len(self.active)

    def runs(self) -> list[tuple[float, float]]:
        """Active runs as (start, end) seconds."""
        return [(a * HOP, b * HOP) for a, b in _true_runs(self.active)]

    def is_active(self, t: float) -> bool:
        i = int(t / HOP)
        return 0 <= i < self.frames and bool(self.active[i])

    def speech_in(self, start: float, end: float) -> float:
        """Seconds of activity inside [start, end]."""
        a, b = max(0, int(start / HOP)), min(self.frames, int(np.ceil(end / HOP)))
        return float(self.active[a:b].sum()) * HOP if b > a else 0.0


def speech_activity(
    samples: np.ndarray,
    sample_rate: int = 16000,
    min_pause: float = 0.12,
    min_speech: float = 0.03,
    floor_margin_db: float = 15.0,
    peak_range_db: float = 42.0,
) -> Activity:
    """Energy activity with an adaptive threshold: above both (noise floor + margin) and (peak - range).

    Short gaps (< ``min_pause``) are filled and blips (< ``min_speech``) removed, so the result is speech runs
    separated by real pauses.
    """
    hop = int(round(sample_rate * HOP))
    n = len(samples) // hop
    if n == 0:
        return Activity(np.zeros(0, bool), np.zeros(0))
    frames = samples[: n * hop].astype(np.float64).reshape(n, hop)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    peak = np.percentile(energy, 99.5)
    floor = np.percentile(energy, 10)
    threshold = max(floor + floor_margin_db, peak - peak_range_db)
    active = energy > threshold
    active = _close_gaps(active, int(round(min_pause / HOP)), value=False)
    active = _close_gaps(active, int(round(min_speech / HOP)), value=True)
    return Activity(active, energy)


def _close_gaps(mask: np.ndarray, max_len: int, value: bool) -> np.ndarray:
    """Flip interior runs of ``value`` shorter than ``max_len`` frames (fill pauses / drop blips)."""
    out = mask.copy()
    for a, b in _true_runs(mask == value):
        interior = value or (a > 0 and b < len(mask))  # leading/trailing silence is not a gap to fill
        if b - a < max_len and interior:
            out[a:b] = not value
    return out


def refine_word_times(
    times: list[tuple[float, float]],
    samples: np.ndarray,
    sample_rate: int = 16000,
    activity: Activity | None = None,
    max_shift: float = 0.6,
    dip_before: float = 0.08,
    dip_after: float = 0.06,
    dip_db: float = 6.0,
    min_word: float = 0.04,
    min_dip_word: float = 0.08,
    texts: list[str] | None = None,
    lag: LagModel | None = None,
    trusted: list[bool] | None = None,
) -> list[tuple[float, float]]:
    """Refined (start, end) for each word, in the chunk's seconds. Order and count are kept.

    ``texts`` are the words (stop consonants and the lag read from spelling); ``lag`` is the model's
    calibration (``lag_model_for``); without one, boundaries in running speech are searched around Whisper's
    own. ``trusted`` marks words already timed by the acoustic model (``acoustic_timing``): only the pause
    rules apply to them (onset after a pause, end before one); a boundary between two trusted words in running
    speech stays.
    """
    if not times:
        return []
    act = activity or speech_activity(samples, sample_rate)
    duration = len(samples) / sample_rate
    runs = act.runs()
    if not runs:
        return list(times)
    run_starts = np.array([r[0] for r in runs])
    run_ends = np.array([r[1] for r in runs])
    out = [[max(0.0, min(s, duration)), max(0.0, min(e, duration))] for s, e in times]

    def run_at(t: float) -> int | None:
        k = int(np.searchsorted(run_starts, t, side="right")) - 1
        return k if k >= 0 and t < run_ends[k] else None

    def next_onset(t: float) -> float | None:
        k = int(np.searchsorted(run_starts, t, side="left"))
        return float(run_starts[k]) if k < len(runs) else None

    def prev_offset(t: float) -> float | None:
        k = int(np.searchsorted(run_ends, t, side="right")) - 1
        return float(run_ends[k]) if k >= 0 else None

    db_all = act.energy_db
    # in strong noise (speech hardly above the floor) the activity mask is too coarse to correct the aligner
    noisy = float(np.percentile(db_all, 99.5) - np.percentile(db_all, 10)) < NOISY_RANGE_DB
    for i, (s, e) in enumerate(out):
        if trusted is not None and trusted[i] and noisy:
            if texts is not None and starts_with_stop(texts[i]):
                # noise fills a word-initial stop's silent closure, and the aligner counts it as the word's
                out[i][0] = min(s + NOISY_STOP_LAG, max(s, e - min_word))
            continue
        prev_end = out[i - 1][1] if i > 0 else -1.0
        next_start = times[i + 1][0] if i + 1 < len(times) else duration + 1.0
        # an aligned word is already near its sound: the pause rules only nudge it (in noise the activity mask
        # is coarse, and a big move would undo the aligner)
        aligned = trusted is not None and trusted[i]
        shift = TRUSTED_SHIFT if aligned else max_shift
        # -- start ------------------------------------------------------------------------------------------
        k = run_at(s)
        if k is None:  # starts in a pause: speech begins at the next onset (if it is inside the word)
            onset = next_onset(s)
            if (
                onset is not None
                and onset < max(e, s + min_word) + 0.1
                and (not aligned or onset - s <= shift)
            ):
                s = onset
        else:
            onset = float(run_starts[k])
            if onset >= prev_end - 1e-6 and s - onset <= shift:
                # first word of this speech run (the previous word ended before it began): start at the onset
                s = onset
        # -- end --------------------------------------------------------------------------------------------
        k = run_at(max(s, e - 1e-6))
        if k is None:  # ends in a pause: speech stopped at the previous offset (if it is inside the word)
            offset = prev_offset(e)
            if offset is not None and offset > s and (not aligned or e - offset <= shift):
                e = offset
        else:
            offset = float(run_ends[k])
            # last word of the run: it ends where the speech does, not before (the aligner often leaves an
            # aligned word's final sound before a pause out: a stop's closure and release, a fading sound)
            if offset <= next_start + 1e-6 and offset - e <= (TRUSTED_END_SHIFT if aligned else shift):
                e = offset
        if e - s < min_word:
            e = min(duration, s + min_word)
        out[i] = [s, e]

    # boundaries inside running speech
    db = act.energy_db
    floor = float(np.percentile(db, 10))
    if trusted is not None and texts is not None:
        _give_gaps_to_final_stops(out, trusted, texts, None if noisy else act)
    if trusted is not None and not noisy:
        _close_aligner_gaps(out, db, floor, trusted)
    for i in range(len(out) - 1):
        a_end, b_start = out[i][1], out[i + 1][0]
        if abs(b_start - a_end) > 0.03 or not act.is_active(a_end):
            continue
        if trusted is not None and trusted[i] and trusted[i + 1]:
            continue

        placed = _running_boundary(
            db,
            floor,
            out[i],
            out[i + 1],
            (a_end + b_start) / 2,
            dip_before,
            dip_after,
            dip_db,
            min_dip_word,
            texts[i] if texts else None,
            texts[i + 1] if texts else None,
            times[i + 1][1] - times[i + 1][0],
            lag or UNCALIBRATED,
        )
        if placed is not None:
            out[i][1], out[i + 1][0] = placed

    # no overlaps, monotonic
    for i in range(1, len(out)):
        if out[i][0] < out[i - 1][1]:
            mid = (out[i][0] + out[i - 1][1]) / 2
            out[i - 1][1] = max(out[i - 1][0] + 1e-3, min(out[i - 1][1], mid))
            out[i][0] = max(out[i][0], out[i - 1][1])
        out[i][1] = max(out[i][1], out[i][0])
    return [(float(s), float(e)) for s, e in out]


NOISY_RANGE_DB = (
    28.0  # loudest frames less than this over the noise floor: pause rules leave aligned words alone
)
# ... and in strong noise they keep the aligner's times, except that a word opening with a stop starts this
# much later: noise fills the stop's silent closure and the aligner counts it as the word's
# (CALIBRATION_SET at 10 dB SNR, pocketsphinx's decoder: such words started 24 ms early on average; starts MAE
# 21.2 -> 19.2 ms, within 50 ms 91.3 -> 94.8 %; the numpy aligner: 17.9 -> 15.9 ms, 96.6 -> 97.3 %)
NOISY_STOP_LAG = 0.02
TRUSTED_SHIFT = 0.08  # seconds: the most the pause rules move an acoustically aligned word's start or end
# ... except the end of the last word before a pause, which moves out to where the speech stops by up to this:
# the aligner leaves a final stop's closure and release (or a fading sound) out of the word as silence, 90-130
# ms (chosen on CALIBRATION_SET: ends 89.5 -> 91.3 % within 50 ms at topn 16; no change at 10 dB, where the
# pause rules leave aligned words alone)
TRUSTED_END_SHIFT = 0.15
TAIL_DB = 40.0  # a word's sound lasts while its level is within this of the loudest frame near it
MAX_ALIGNER_GAP = (
    0.5  # seconds: a longer silence the aligner put between two words is a pause (the pause rules)
)


def _give_gaps_to_final_stops(
    out: list, trusted: list[bool], texts: list[str], act: Activity | None = None
) -> None:
    """Between two acoustically aligned words in running speech, a short silence after a word that ends in a
    stop or affricate ("sent the", "worked miracles", "music started") is that stop's closure and release:
    the aligner leaves it out of the word as silence. The word ends where the next one starts, unless the next
    word opens with a stop itself (then the silence may be its closure: ``_close_aligner_gaps`` decides), or
    ``act`` (speech activity, None in strong noise) finds a real pause there. From spelling, so it holds in
    noise too (chosen on CALIBRATION_SET with the pocketsphinx decoder: ends within 50 ms 89.9 -> 93.2 %
    clean, 85.6 -> 86.5 % at 10 dB; with the numpy aligner 95.6 -> 96.9 % and 86.6 -> 87.3 %)."""
    for i in range(len(out) - 1):
        gap = out[i + 1][0] - out[i][1]
        if (
            trusted[i]
            and trusted[i + 1]
            and HOP <= gap <= MAX_CLOSURE + RELEASE
            and ends_with_stop(texts[i])
            and not starts_with_stop(texts[i + 1])
            and (act is None or act.speech_in(out[i][1], out[i + 1][0]) >= gap - HOP - 1e-9)
        ):
            out[i][1] = out[i + 1][0]


def _close_aligner_gaps(out: list, db: np.ndarray, floor: float, trusted: list[bool]) -> None:
    """Between two acoustically aligned words the aligner often puts a short silence where the first word's
    sound is still dying away (a nasal, a final stop's release): the first word ends where the last quiet run
    before the next word begins (quiet: ``TAIL_DB`` under the loudest frame within 0.5 s), so its own final
    stop (closure and burst) stays in it and the next word's closure does not; with no quiet frame, where the
    next word starts."""
    for i in range(len(out) - 1):
        if not (trusted[i] and trusted[i + 1]):
            continue
        a_end, b_start = out[i][1], out[i + 1][0]
        if b_start - a_end < HOP or b_start - a_end > MAX_ALIGNER_GAP:
            continue
        lo, hi = int(a_end / HOP), int(np.ceil(b_start / HOP))
        if hi <= lo or lo >= len(db):
            continue
        near = db[max(0, lo - 50) : min(len(db), hi + 50)]
        level = max(floor + 6.0, float(near.max()) - TAIL_DB)
        runs = _true_runs(db[lo : min(hi, len(db))] < level)
        # no quiet frame: the sound runs on into the next word; else up to the last quiet run before it
        end = b_start if not runs else (lo + runs[-1][0]) * HOP
        out[i][1] = float(min(b_start, max(a_end, end)))


@dataclass(frozen=True)
class LagModel:
    """How much later than a Whisper model's boundary between two words in running speech the real one is.

    Each model's cross-attention has its own habit (base comes early, tiny.en late), so the lag is calibrated
    per model with ``benchmarks/calibrate_word_timing.py``: a least-squares fit on both words' letters and the
    second word's Whisper length, for English words; ``average`` for words not in Latin script.
    """

    average: float = 0.0
    base: float = 0.0
    per_letter_a: float = 0.0
    per_letter_b: float = 0.0
    per_second_b: float = 0.0
    low: float = -0.35
    high: float = 0.35

    def lag(self, a_text: str | None, b_text: str | None, b_duration: float) -> float:
        la, lb = len(_letters(a_text or "")), len(_letters(b_text or ""))
        if not la or not lb:
            return self.average
        lag = self.base + self.per_letter_a * la + self.per_letter_b * lb + self.per_second_b * b_duration
        return float(min(self.high, max(self.low, lag)))

    @classmethod
    def from_dict(cls, data: dict) -> LagModel:
        return cls(**{k: float(data[k]) for k in cls.__dataclass_fields__ if k in data})


# Fitted by benchmarks/calibrate_word_timing.py (espeak-ng calibration corpora: three voices, two sentence
# sets, 140-190 words per minute; CPU int8). Measured on the unseen corpora, refined word boundaries: base
# 22.7 ms mean error, 82.9 % within 50 ms (uncalibrated 67.0 ms, 57.6 %); tiny.en 126 ms, 64.8 % (uncalibrated
# 170 ms, 45.3 %).
LAG_MODELS = {
    "base": LagModel(
        average=0.0803,
        base=-0.0211,
        per_letter_a=0.01147,
        per_letter_b=-0.02122,
        per_second_b=0.4848,
        low=-0.038,
        high=0.33,
    ),
    "tiny.en": LagModel(
        average=-0.093,
        base=-0.193,
        per_letter_a=0.02008,
        per_letter_b=-0.01284,
        per_second_b=0.2311,
        low=-0.248,
        high=0.125,
    ),
}
# A model folder is recognised by its config.json's cross-attention alignment heads, which OpenAI published
# per checkpoint: a renamed or re-converted base is still base.
ALIGNMENT_HEADS = {
    "base": [[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]],
    "tiny.en": [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]],
}
UNCALIBRATED = LagModel()  # a model nobody calibrated: search around its own boundary
CALIBRATION_FILE = "captionbridge_word_timing.json"  # a calibration beside a model folder's model.bin wins


def lag_model_for(name: str | None, folder: str | None = None) -> LagModel:
    """The calibration for a model: a ``captionbridge_word_timing.json`` in its folder, else the table entry
    for its name, else for the checkpoint its folder's alignment heads identify, else none."""
    import json
    from pathlib import Path

    def read(path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing or damaged: ignored, not fatal

    if folder:
        own = read(Path(folder) / CALIBRATION_FILE)
        if isinstance(own, dict):
            try:
                return LagModel.from_dict(own)
            except (TypeError, ValueError):
                pass
    if name in LAG_MODELS:
        return LAG_MODELS[name]
    config = read(Path(folder) / "config.json") if folder else None
    heads = config.get("alignment_heads") if isinstance(config, dict) else None
    for key, known in ALIGNMENT_HEADS.items():
        if heads == known:
            return LAG_MODELS[key]
    return UNCALIBRATED


GAP_DB = 35.0  # a quiet run is this far under the loudest frame near the boundary (or at the noise floor)
MAX_CLOSURE = 0.15  # seconds: a longer quiet run is a pause, not a stop closure
RELEASE = 0.08  # seconds after a final stop's closure in which its release burst gives way to the next word


def _running_boundary(
    db: np.ndarray,
    floor: float,
    a: list,
    b: list,
    centre: float,
    before: float,
    after: float,
    dip_db: float,
    min_word: float,
    a_text: str | None,
    b_text: str | None,
    b_duration: float,
    lag_model: LagModel,
) -> tuple[float, float] | None:
    """(end of a, start of b) for two words in running speech whose shared boundary Whisper put at
    ``centre``."""
    # each word keeps a plausible length: at least min_word and half of what it had
    keep_a = max(min_word, 0.5 * (centre - a[0]))
    keep_b = max(min_word, 0.5 * (b[1] - centre))
    prior = centre + lag_model.lag(a_text, b_text, b_duration)
    lo = max(int((prior - before) / HOP), int(np.ceil((a[0] + keep_a) / HOP)))
    hi = min(int((prior + after) / HOP), int((b[1] - keep_b) / HOP), len(db) - 1)
    if hi - lo < 2:
        return None
    window = db[lo : hi + 1]
    level = max(floor + 6.0, float(window.max()) - GAP_DB)
    runs = [_grow_run(db, lo + x, lo + y, level) for x, y in _true_runs(window < level)]
    # a quiet run that would leave either word too short is not their boundary (Whisper put a word in a pause)
    runs = [r for r in runs if r[0] * HOP >= a[0] + min_word and r[1] * HOP <= b[1] - min_word]
    a_stop, b_stop = ends_with_stop(a_text or ""), starts_with_stop(b_text or "")
    if runs:
        if a_stop and b_stop and len(runs) > 1:  # two closures: the first word's own final stop, then b's
            gap = max(sorted(runs, key=lambda r: abs(r[1] * HOP - prior))[:2])
        else:
            gap = min(runs, key=lambda r: abs(r[1] * HOP - prior))
        closure = (gap[1] - gap[0]) * HOP <= MAX_CLOSURE  # longer is a pause, which ends a and nothing else
        if (
            a_stop and not b_stop and closure
        ):  # a's own closure: a ends after its release, where b's sound rises
            rise_at = _strongest_rise(db, gap[1], int(RELEASE / HOP))
            if rise_at is not None and (rise_at + 0.5) * HOP < b[1] - min_word:
                t = (rise_at + 0.5) * HOP
                return t, t
        return gap[0] * HOP, gap[1] * HOP
    j = int(np.argmin(window))
    if window.max() - window[j] >= dip_db:  # only a real dip: clearly below the loudest part of the window
        t = (lo + j + 0.5) * HOP
        return t, t
    # nothing on the audio to go by: where Whisper's boundary really points
    t = min(max(prior, a[0] + keep_a), b[1] - keep_b)
    return t, t


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True as [start, end) indices."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _grow_run(db: np.ndarray, a: int, b: int, level: float) -> tuple[int, int]:
    """A quiet run cut off by the search window, grown to its full extent."""
    while a > 0 and db[a - 1] < level:
        a -= 1
    while b < len(db) and db[b] < level:
        b += 1
    return a, b


def _strongest_rise(db: np.ndarray, start: int, span: int, min_rise_db: float = 3.0) -> int | None:
    """The frame after ``start`` (within ``span``) where the level rises most over the next 20 ms."""
    stop = min(len(db) - 2, start + span)
    if stop - start < 3:
        return None
    rise = db[start + 2 : stop + 2] - db[start:stop]
    k = int(np.argmax(rise))
    return start + k if rise[k] >= min_rise_db else None


# -- which words open or close with a stop consonant (p t k b d g, and the affricates), from English spelling
# -------
_NOT_STOP_ONSETS = ("th", "ph", "kn", "gn", "ps", "pn", "wh", "ce", "ci", "cy")
_STOP_ONSETS = ("p", "t", "k", "b", "d", "g", "q", "j", "ch", "c")
_STOP_CODAS = ("p", "t", "k", "b", "d", "g", "c", "ck", "ch", "dg")  # "c": music, traffic


def _letters(word: str) -> str:
    return "".join(ch for ch in word.lower() if "a" <= ch <= "z")


def starts_with_stop(word: str) -> bool:
    """Whether an English word opens with a stop or affricate ("brown", "cut", "just"; not "city", "thin")."""
    w = _letters(word)
    return bool(w) and not w.startswith(_NOT_STOP_ONSETS) and w.startswith(_STOP_ONSETS)


def ends_with_stop(word: str) -> bool:
    """Whether an English word closes with a stop or affricate ("quick", "left", "made", "bridge", "music";
    not "sing")."""
    w = _letters(word)
    if len(w) > 3 and w.endswith("e") and w[-2] not in "aeiouy":  # silent e: "made", "bridge", "like"
        w = w[:-1]
    return w.endswith(_STOP_CODAS) and not w.endswith(("ng", "gh"))
