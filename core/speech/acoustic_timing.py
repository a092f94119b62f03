"""English word timing from an acoustic model: Whisper's words re-timed by forced alignment.

Whisper's cross-attention places word boundaries to ~0.1 s; a phone-level acoustic model forced through the
known words places them to ~20 ms. ``pocketsphinx`` (BSD, a default dependency) ships CMU's en-us acoustic
model and the CMU pronouncing dictionary in its wheel, so this works offline with nothing to download.

Two engines use that model (``ENGINE``): ``EnglishAligner``, this project's aligner in numpy
(``sphinx_model``, ``sphinx_frontend``, ``forced_align``: pocketsphinx's front end, exact mixtures, exact
Viterbi; a third of the decoder's CPU and at least as accurate on the tuning set,
``benchmarks/results/word_timing_fast_aligner.md``), the default; and ``PocketsphinxAligner``, pocketsphinx's
own decoder, the engine before it, kept to compare against. The decoder notes below are about the latter.

How it is used (``transcribe`` and ``align``): one Whisper segment (or script window) at a time, the words are
prepared for the dictionary (``prepare_words``), the segment's audio (16 kHz, a little padding) is decoded
against exactly that word sequence, and each word gets the span of its dictionary words. The result is
checked: the words that come back must be the words sent, or the segment keeps the times it had (and is
counted as a fallback). The pause rules of ``word_timing`` (a word after a pause starts on the speech onset, a
word before one ends where the speech does) still run afterwards: the aligner counts a stop consonant's silent
closure as part of the word.

What makes or breaks it (measured on espeak-ng speech, see ``benchmarks/bench_transcribe.py``):

* ``bestpath=False`` and wide beams: the default beams silently fail on a few percent of sentences;
* ``silprob=1.0``: with the default, pauses inside a segment are swallowed by the next word;
* no language model (``lm=None``): the search is the forced word sequence only;
* ``topn=8`` Gaussians per frame: the stage's cost is per frame of audio (the Gaussian scores), not per word,
  so topn is what it costs. 4 loses boundaries (and fails a few pieces); 16 and 32 were a little more
  accurate on ends (``benchmarks/results/word_timing_settings.md``) for 1.4x / 2x the cost, and what 8 loses
  there is won back by ``word_timing``'s end-before-a-pause rule (``TRUSTED_END_SHIFT``; measured in
  ``benchmarks/results/word_timing_cost.md``);
* 0.4 s of padding (``PAD``) rather than 0.25 s: a little better on the same corpora;
* audio at the decoder's own rate (16 kHz): other rates give seconds of error without any warning, so they are
  refused here.

No Mandarin (or other) acoustic model ships in a package: other languages keep ``word_timing``'s refinement.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .blas import blas_threads

SAMPLE_RATE = 16000
FRAME = 0.01  # seconds per decoder frame (pocketsphinx's default frate of 100)
PAD = 0.4  # seconds of audio around a segment's words, so the first and last word can move
LANGUAGES = ("en",)
# "numpy": ``EnglishAligner`` (``forced_align``, exact Viterbi); "pocketsphinx": its decoder
# (``PocketsphinxAligner``, the engine before, kept to compare against). Same model, dictionary, rules.
ENGINE = "numpy"
DECODER_SETTINGS = dict(lm=None, bestpath=False, beam=1e-120, wbeam=1e-100, pbeam=1e-120, silprob=1.0, topn=8)
# bump when ``retime_words`` (or the pause rules it relies on) times the same words differently (2: sentence
# openers moved; 3: an aligned word's end before a pause moves out to the speech offset by up to 0.15 s; 4: a
# short silence after an aligned word ending in a stop is that word's closure and release; 5: in strong noise
# a word opening with a stop starts NOISY_STOP_LAG later)
RULES_VERSION = 5
_NOISE = ("<sil>", "<s>", "</s>", "[NOISE]", "++NOISE++")


class AcousticTimingUnavailable(RuntimeError):
    """pocketsphinx or its English model is not installed."""


def supports(language: str | None) -> bool:
    """Whether words in ``language`` are timed by the acoustic model (English only)."""
    return bool(language) and str(language).lower().split("-")[0] in LANGUAGES


def model_files() -> list[dict]:
    """The aligner's model files: [{"name", "path", "bytes"}] (empty when pocketsphinx is not installed)."""
    try:
        import pocketsphinx
    except ImportError:
        return []
    root = Path(pocketsphinx.get_model_path()) / "en-us"
    out = []
    for path in [root / "cmudict-en-us.dict", *sorted((root / "en-us").glob("*"))]:
        if path.is_file() and path.name != "README":
            out.append({"name": str(path.relative_to(root)), "path": str(path), "bytes": path.stat().st_size})
    return out


def identity() -> str:
    """What produced the times (part of the transcript cache key): package version and decoder settings."""
    try:
        from importlib.metadata import version

        ver = version("pocketsphinx")
    except Exception:  # not installed: the stage does not run, and the key says so
        return "none"
    if ENGINE == "pocketsphinx":
        settings = str(sorted((k, str(v)) for k, v in DECODER_SETTINGS.items()))
    else:
        from . import forced_align

        settings = f"numpy-viterbi-{forced_align.VERSION}"
    return f"pocketsphinx-{ver}:en-us:{settings}:{PAD}:rules-{RULES_VERSION}"


def model_status() -> str:
    """ "ready", or what is wrong with the model files (one line naming the file)."""
    if ENGINE == "pocketsphinx":
        return "ready"
    from . import sphinx_model

    try:
        sphinx_model.model()
        sphinx_model.dictionary()
    except sphinx_model.ModelFileError as exc:
        return f"BROKEN: English word times come from Whisper alone: {exc}"
    return "ready"


def available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return bool(model_files())


# -- text for the dictionary
# --------------------------------------------------------------------------------------
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_SYMBOLS = {"%": "percent", "&": "and", "+": "plus", "@": "at", "=": "equals", "°": "degrees"}
_CURRENCY = {"$": "dollars", "£": "pounds", "€": "euros", "¥": "yen"}


def number_words(n: int) -> list[str]:
    """An integer in English words: 4000 -> ["four", "thousand"], 1984 read as a number (see
    ``_year_words``)."""
    if n < 0:
        return ["minus", *number_words(-n)]
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return number_words(n // scale) + [name] + (number_words(rest) if rest else [])
    return [str(n)]


def _year_words(n: int) -> list[str]:
    """1984 -> nineteen eighty four; 2005 -> two thousand five; 1900 -> nineteen hundred."""
    if 2000 <= n <= 2009:
        return number_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_words(hi) + ["hundred"]
    return number_words(hi) + (["oh"] if lo < 10 else []) + number_words(lo)


def _ordinal(words: list[str]) -> list[str]:
    last = words[-1]
    if last in _ORDINAL:
        last = _ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return words[:-1] + [last]


def spell_token(token: str) -> list[str]:
    """One written token as the words a speaker says, lower case, no punctuation (may be empty)."""
    t = token.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    t = t.replace("\u2014", " ").replace("\u2013", " ")
    out: list[str] = []
    for piece in re.split(r"[\s/\-]+", t):
        out += _spell_piece(piece)
    return out


def _spell_piece(piece: str) -> list[str]:
    currency = next((_CURRENCY[c] for c in piece if c in _CURRENCY), None)
    m = re.search(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|s)?", piece)
    if m:
        before = _spell_piece(piece[: m.start()]) if m.start() else []
        after = _spell_piece(piece[m.end() :]) if m.end() < len(piece) else []
        num = m.group(0)
        suffix = re.search(r"(st|nd|rd|th|s)$", num)
        digits = num[: suffix.start()] if suffix else num
        whole, _, frac = digits.replace(",", "").partition(".")
        words: list[str] = []
        value = int(whole) if whole else 0
        plain_year = (
            (not suffix or suffix.group(1) == "s")
            and "," not in digits
            and not frac
            and len(whole) == 4
            and 1100 <= value <= 2099
            and not currency
        )
        words = _year_words(value) if plain_year else number_words(value)
        if frac:
            words += ["point"] + [_ONES[int(d)] for d in frac]
        if suffix and suffix.group(1) in ("st", "nd", "rd", "th"):
            words = _ordinal(words)
        elif suffix:  # "1980s", "90s"
            words = words[:-1] + [words[-1][:-1] + "ies" if words[-1].endswith("y") else words[-1] + "s"]
        if currency:
            words.append(currency)
        return before + words + after
    letters = re.sub(r"[^a-z']+", "", piece).strip("'")
    return ([letters] if letters else []) + [_SYMBOLS[c] for c in piece if c in _SYMBOLS]


def glue_pieces(texts: list[str]) -> list[list[int]]:
    """Group Whisper's word indices into written tokens: a piece that does not begin a new word (",000" after
    " 4", ".5" after "3", "'s" after a name, "%" after a number) joins the one before it."""
    groups: list[list[int]] = []
    for i, text in enumerate(texts):
        t = text.strip()
        joins = (
            bool(groups)
            and bool(t)
            and (
                re.match(r"^[,.]\d", t) is not None
                or (re.match(r"^['\u2019](s|d|ll|re|ve|m|t)\b", t.lower()) is not None)
                or (t in ("%",) and bool(re.search(r"\d$", texts[groups[-1][-1]].strip())))
                or (
                    re.match(r"^\d", t) is not None
                    and bool(re.search(r"\d[,.]$", texts[groups[-1][-1]].strip()))
                )
            )
        )
        if joins:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


# -- pronunciations for words the dictionary lacks
# --------------------------------------------------------------
_DIGRAPHS = [
    ("tch", ["CH"]),
    ("sch", ["S", "K"]),
    ("ough", ["AO"]),
    ("igh", ["AY"]),
    ("eigh", ["EY"]),
    ("th", ["TH"]),
    ("sh", ["SH"]),
    ("ch", ["CH"]),
    ("ph", ["F"]),
    ("wh", ["W"]),
    ("ck", ["K"]),
    ("ng", ["NG"]),
    ("qu", ["K", "W"]),
    ("gh", ["G"]),
    ("kn", ["N"]),
    ("wr", ["R"]),
    ("ee", ["IY"]),
    ("ea", ["IY"]),
    ("oo", ["UW"]),
    ("ou", ["AW"]),
    ("ow", ["OW"]),
    ("oi", ["OY"]),
    ("oy", ["OY"]),
    ("ai", ["EY"]),
    ("ay", ["EY"]),
    ("au", ["AO"]),
    ("aw", ["AO"]),
    ("ie", ["IY"]),
    ("ei", ["EY"]),
    ("er", ["ER"]),
    ("ir", ["ER"]),
    ("ur", ["ER"]),
    ("ar", ["AA", "R"]),
    ("or", ["AO", "R"]),
]
_LETTERS = {
    "a": ["AE"],
    "b": ["B"],
    "c": ["K"],
    "d": ["D"],
    "e": ["EH"],
    "f": ["F"],
    "g": ["G"],
    "h": ["HH"],
    "i": ["IH"],
    "j": ["JH"],
    "k": ["K"],
    "l": ["L"],
    "m": ["M"],
    "n": ["N"],
    "o": ["AA"],
    "p": ["P"],
    "q": ["K"],
    "r": ["R"],
    "s": ["S"],
    "t": ["T"],
    "u": ["AH"],
    "v": ["V"],
    "w": ["W"],
    "x": ["K", "S"],
    "y": ["Y"],
    "z": ["Z"],
}


def letter_to_sound(word: str) -> list[str]:
    """A rough pronunciation from spelling (digraphs, then letters; a final silent e dropped, soft c/g before
    e/i/y). Good enough to hold a name's place in a forced alignment; never empty for a word with letters."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if len(w) > 2 and w.endswith("e") and w[-2] not in "aeiouy":
        w = w[:-1]
    phones: list[str] = []
    i = 0
    while i < len(w):
        for graph, ph in _DIGRAPHS:
            if w.startswith(graph, i):
                phones += ph
                i += len(graph)
                break
        else:
            ch = w[i]
            nxt = w[i + 1] if i + 1 < len(w) else ""
            if ch == "c" and nxt in "eiy" and nxt:
                phones.append("S")
            elif ch == "g" and nxt in "eiy" and nxt:
                phones.append("JH")
            elif ch == "y" and i > 0:
                phones.append("IY")
            elif not (phones and _LETTERS.get(ch) == phones[-1:]):  # a doubled letter is one sound
                phones += _LETTERS.get(ch, [])
            i += 1
    return phones or ["AH"]


# -- the aligner
# ------------------------------------------------------------------------------------------------
@dataclass
class SegmentResult:
    """Times for one segment's words (seconds in the caller's audio), or None where the alignment was
    refused."""

    times: list[tuple[float, float]] | None
    reason: str = ""


@dataclass
class AlignStats:
    segments: int = 0
    aligned: int = 0
    fallback: int = 0
    moved: int = 0  # words moved to the next piece (Whisper had put them before a pause)
    prefetched: int = 0  # pieces aligned by a ``Prefetcher`` while Whisper was decoding
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # this thread's CPU time (the stage runs in the caller's thread)

    def as_dict(self) -> dict:
        return {
            "segments": self.segments,
            "aligned": self.aligned,
            "fallback": self.fallback,
            "moved": self.moved,
            "prefetched": self.prefetched,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }


def _int16(samples: np.ndarray) -> np.ndarray:
    """Mono float audio as the 16-bit samples the acoustic model's front end was built for."""
    return (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


class _Aligner:
    """What both engines share: words the dictionary lacks get a pronunciation (``_pronounce``), and the
    aligned dictionary words' spans become times per entry (``_entry_times``)."""

    def lookup(self, word: str) -> str | None:  # pragma: no cover - each engine has its own
        raise NotImplementedError

    def _pronounce(self, word: str) -> list[str]:
        """A word not in the dictionary: a possessive/contraction of a known word, a compound of known words,
        or letter-to-sound rules."""
        lookup = self.lookup
        for ending, extra in (
            ("'s", ["Z"]),
            ("s'", ["Z"]),
            ("'d", ["D"]),
            ("'ll", ["L"]),
            ("'re", ["R"]),
            ("'ve", ["V"]),
            ("s", ["Z"]),
        ):
            if word.endswith(ending) and len(word) > len(ending) + 1:
                base = lookup(word[: -len(ending)])
                if base:
                    return base.split() + extra
        compound = self._compound(word.replace("'", ""))
        if compound:
            return compound
        return letter_to_sound(word)

    def _compound(self, word: str) -> list[str] | None:
        """Fewest dictionary pieces (of 3+ letters) spelling the word, as phones (e.g. timeline,
        whiteboard)."""
        n = len(word)
        best: list[list[str] | None] = [None] * (n + 1)
        count = [10**6] * (n + 1)
        best[0], count[0] = [], 0
        for i in range(n):
            if best[i] is None:
                continue
            for j in range(i + 3, n + 1):
                phones = self.lookup(word[i:j])
                if phones and count[i] + 1 < count[j]:
                    best[j], count[j] = best[i] + phones.split(), count[i] + 1
        return best[n] if n and best[n] is not None and count[n] <= 3 else None

    @staticmethod
    def _check(samples: np.ndarray, words: list[list[str]], sample_rate: int) -> str:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"acoustic alignment needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if not any(words):
            return "no speakable words"
        if len(samples) < int(0.1 * SAMPLE_RATE):
            return "segment shorter than 0.1 s"
        return ""

    @staticmethod
    def _entry_times(words: list[list[str]], frames: list[tuple[int, int]], offset: float) -> SegmentResult:
        """Frame spans of the dictionary words -> (start, end) seconds of each entry; an entry with no
        speakable words sits at the end of the word before (or the start of the next)."""
        spans = [(offset + a * FRAME, offset + (b + 1) * FRAME) for a, b in frames]
        out: list[tuple[float, float] | None] = []
        k = 0
        for entry in words:
            if entry:
                out.append((spans[k][0], spans[k + len(entry) - 1][1]))
                k += len(entry)
            else:
                out.append(None)
        for i, t in enumerate(out):
            if t is None:
                prev = next((out[j] for j in range(i - 1, -1, -1) if out[j] is not None), None)
                nxt = next((out[j] for j in range(i + 1, len(out)) if out[j] is not None), None)
                at = prev[1] if prev else nxt[0]
                out[i] = (at, at)
        return SegmentResult([(float(s), float(e)) for s, e in out])


class EnglishAligner(_Aligner):
    """Forced alignment of English in numpy (``forced_align``) with the acoustic model and dictionary that
    pocketsphinx ships. Holds no state between alignments (the model is read once per process and shared), so
    the times of a piece of audio never depend on what was aligned before."""

    engine = "numpy"

    def __init__(self) -> None:
        try:
            from . import forced_align, sphinx_model

            self._model = sphinx_model.model()
            self._dict = sphinx_model.dictionary()
            self._engine = forced_align.Aligner(self._model)
        except ImportError as exc:  # a broken install: the caller falls back and says so
            raise AcousticTimingUnavailable(
                f"pocketsphinx is not installed ({exc}): pip install pocketsphinx"
            ) from exc
        except sphinx_model.ModelFileError as exc:
            raise AcousticTimingUnavailable(str(exc)) from exc
        self._extra: dict[str, list[str]] = {}

    def lookup(self, word: str) -> str | None:
        prons = self._dict.get(word)
        return " ".join(prons[0]) if prons else None

    def _prons(self, word: str) -> list[list[str]]:
        """The word's pronunciations: the dictionary's (alternates included, as pocketsphinx's alignment uses
        them), or one made up (``_pronounce``)."""
        prons = self._dict.get(word) or self._extra.get(word)
        if prons is None:
            known = [p for p in self._pronounce(word) if p in self._model.ci_index]
            prons = self._extra[word] = [known or ["AH"]]
        return prons

    def align(
        self, samples: np.ndarray, words: list[list[str]], sample_rate: int = SAMPLE_RATE, offset: float = 0.0
    ) -> SegmentResult:
        """Times for each entry of ``words`` (each a list of dictionary words; an empty entry gets no sound of
        its own and is placed at its neighbour's edge) in ``samples`` (mono float), as seconds +
        ``offset``."""
        refused = self._check(samples, words, sample_rate)
        if refused:
            return SegmentResult(None, refused)
        flat = [w for entry in words for w in entry]
        pcm = _int16(samples)
        with blas_threads(1):  # small products; the stage's CPU time stays in its own thread
            frames = self._engine.align(pcm, [self._prons(w) for w in flat])
        if frames is None:
            return SegmentResult(None, "no alignment found")
        return self._entry_times(words, frames, offset)


class PocketsphinxAligner(_Aligner):
    """The pocketsphinx decoder set up for forced alignment of English (the engine before ``EnglishAligner``;
    kept to compare against, ``ENGINE = "pocketsphinx"``). Not for two threads at once (``borrow`` hands each
    thread its own); every alignment starts from the decoder's initial front-end state, so the times of a
    piece of audio do not depend on what the decoder aligned before."""

    engine = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:  # a broken install: the caller falls back and says so
            raise AcousticTimingUnavailable(
                f"pocketsphinx is not installed ({exc}): pip install pocketsphinx"
            ) from exc
        self.decoder = Decoder(loglevel="FATAL", **DECODER_SETTINGS)
        rate = int(self.decoder.config["samprate"])
        if rate != SAMPLE_RATE:
            raise AcousticTimingUnavailable(
                f"the acoustic model expects {rate} Hz audio, not {SAMPLE_RATE} Hz"
            )
        self._known: dict[str, bool] = {}
        self._cmn_start = self.decoder.get_cmn(False)

    def lookup(self, word: str) -> str | None:
        return self.decoder.lookup_word(word)

    def _reset(self) -> None:
        """Back to the state of a new decoder: the front end's noise estimate (``start_stream``, deprecated in
        pocketsphinx 5 but still what resets it) and the cepstral mean both carry over from one utterance to
        the next; left alone, the same audio timed up to a frame differently by what came before it."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.decoder.start_stream()
        self.decoder.set_cmn(self._cmn_start)

    def _ensure_word(self, word: str) -> None:
        if word in self._known:
            return
        known = self.decoder.lookup_word(word) is not None
        if not known:
            self.decoder.add_word(word, " ".join(self._pronounce(word)), True)
        self._known[word] = True

    def align(
        self, samples: np.ndarray, words: list[list[str]], sample_rate: int = SAMPLE_RATE, offset: float = 0.0
    ) -> SegmentResult:
        """As ``EnglishAligner.align``."""
        refused = self._check(samples, words, sample_rate)
        if refused:
            return SegmentResult(None, refused)
        flat = [w for entry in words for w in entry]
        for w in set(flat):
            self._ensure_word(w)
        pcm = _int16(samples)
        d = self.decoder
        try:
            self._reset()
            d.set_align_text(" ".join(flat))
            d.start_utt()
            d.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
            d.end_utt()
            found = d.seg()
            if found is None:  # the search found no path through the words
                return SegmentResult(None, "no alignment found")
            segs = [(re.sub(r"\(\d+\)$", "", s.word), s.start_frame, s.end_frame) for s in found]
        except RuntimeError as exc:
            return SegmentResult(None, f"decoder failed: {exc}")
        got = [s for s in segs if s[0] not in _NOISE]
        if [s[0] for s in got] != flat:
            return SegmentResult(None, "aligned words differ from the words sent")
        return self._entry_times(words, [(a, b) for _, a, b in got], offset)


def new_aligner() -> _Aligner:
    """An aligner of the configured engine (``ENGINE``)."""
    return PocketsphinxAligner() if ENGINE == "pocketsphinx" else EnglishAligner()


_IDLE: list[_Aligner] = []  # aligners not in use (a pocketsphinx decoder costs ~65 ms of CPU to build)
_IDLE_LOCK = threading.Lock()
_IDLE_MAX = 4  # decoders kept idle (~28 MB each): as many as transcriptions a process runs at once, usually 1


@contextmanager
def borrow() -> Iterator[_Aligner]:
    """A decoder for this thread for the duration of the block, reused from earlier transcriptions when one is
    idle (each alignment starts from a new decoder's state, see ``PocketsphinxAligner._reset``)."""
    aligner = _take_idle() or new_aligner()
    try:
        yield aligner
    finally:
        _give_back(aligner)


def _take_idle() -> _Aligner | None:
    with _IDLE_LOCK:
        while _IDLE:
            aligner = _IDLE.pop()
            if aligner.engine == ENGINE:  # one kept from before ENGINE changed is dropped
                return aligner
        return None


def _give_back(aligner: _Aligner) -> None:
    if ENGINE != getattr(aligner, "engine", None):
        return
    with _IDLE_LOCK:
        if len(_IDLE) < _IDLE_MAX:
            _IDLE.append(aligner)


STRANDED_GAP = 1.0  # seconds of Whisper's own gap after a piece's last word for it to be a candidate to move


def _stranded(
    aligner: _Aligner,
    entries: list[list[str]],
    aligned: list[tuple[float, float]],
    groups: list[list[int]],
    next_index: int,
    times: list[tuple[float, float]],
) -> bool:
    """Whether a piece's last word was squeezed to the aligner's minimum length (3 frames per phone) while the
    next piece starts after a long gap: the word's sound is not in this piece."""
    if next_index >= len(groups) or not entries or not entries[-1]:
        return False
    this_end = times[groups[next_index - 1][-1]][1]
    if times[groups[next_index][0]][0] - this_end < STRANDED_GAP:
        return False
    phones = sum(len((aligner.lookup(w) or "x").split()) for w in entries[-1])
    s, e = aligned[-1]
    return e - s <= phones * 3 * FRAME + FRAME / 2


_SENTENCE_END = re.compile(r"[.?!][\"'\u201d\u2019)\]]*$")
OPENER_MAX_WORDS = 3  # the most words of a next sentence that can be left at the end of a piece


def _move_sentence_openers(
    texts: list[str], times: list[tuple[float, float]], groups: list[list[int]]
) -> int:
    """Whisper sometimes ends a segment with the first word(s) of the next sentence ("... last week. The"),
    seconds before they are spoken. In clean audio the aligner notices (``_stranded``: the word is squeezed to
    its shortest); in noise it finds "speech" for them in the noise and the words stay seconds early. So the
    text decides too: words after a sentence end at the end of a piece, with no sentence end of their own,
    followed after a pause (``STRANDED_GAP``) by a piece that continues in lower case, open that piece. Their
    provisional times move to just before the next piece (so its audio window does not reach back over the
    pause). Changes ``times`` and ``groups`` in place; returns how many words moved."""
    moved = 0
    for gi in range(len(groups) - 1):
        group, nxt = groups[gi], groups[gi + 1]
        ends = [k for k, i in enumerate(group) if _SENTENCE_END.search(texts[i].strip())]
        if ends:
            tail = group[ends[-1] + 1 :]
        elif (  # the piece is only the opener, right after a sentence that ended in the piece before
            gi
            and groups[gi - 1]
            and _SENTENCE_END.search(texts[groups[gi - 1][-1]].strip())
            and times[group[0]][0] - times[groups[gi - 1][-1]][1] < STRANDED_GAP
        ):
            tail = list(group)
        else:
            continue
        if not tail:
            continue
        first_next = texts[nxt[0]].strip()
        if (
            len(tail) > OPENER_MAX_WORDS
            or not first_next[:1].islower()
            or times[nxt[0]][0] - times[tail[-1]][1] < STRANDED_GAP
            or not all(re.search(r"[A-Za-z]", texts[i]) for i in tail)
        ):
            continue
        at = times[nxt[0]][0]
        step = 0.01
        for k, i in enumerate(tail):
            s = at - step * (len(tail) - k)
            times[i] = (s, s + step)
        groups[gi + 1] = tail + nxt
        groups[gi] = group[: len(group) - len(tail)]
        moved += len(tail)
    groups[:] = [g for g in groups if g]
    return moved


def _piece(
    texts: list[str],
    times: list[tuple[float, float]],
    groups: list[list[int]],
    gi: int,
    sample_rate: int,
    bounds: tuple[float, float],
    duration: float,
) -> tuple[int, int, list[list[int]], list[list[str]]]:
    """The audio (first and last sample) and words of piece ``gi``: from its first word's start to its last
    word's end, padded by ``PAD`` but never past the neighbouring pieces' words (nor ``bounds``); its written
    tokens (Whisper's split pieces glued back, as indices into the piece) and their dictionary words."""
    group = groups[gi]
    first, last = group[0], group[-1]
    start = times[first][0] - PAD
    end = times[last][1] + PAD
    if gi > 0:
        prev_end = max(times[i][1] for i in groups[gi - 1])
        start = max(start, min(prev_end, times[first][0]))
    if gi + 1 < len(groups):
        next_start = min(times[i][0] for i in groups[gi + 1])
        end = min(end, max(next_start, times[last][1]))
    start, end = max(bounds[0], 0.0, start), min(bounds[1], duration, end)
    a, b = int(round(start * sample_rate)), int(round(end * sample_rate))
    tokens = glue_pieces([texts[i] for i in group])
    entries = [spell_token("".join(texts[group[k]].strip() for k in tok)) for tok in tokens]
    return a, b, tokens, entries


def plan_pieces(
    texts: list[str],
    times: list[tuple[float, float]],
    groups: list[list[int]],
    n_samples: int,
    sample_rate: int = SAMPLE_RATE,
    settled: Callable[[list[int]], bool] | None = None,
) -> list[tuple[int, int, list[list[str]]]]:
    """The pieces ``retime_words`` will align first (before any piece is re-cut after its result), as (first
    sample, last sample, dictionary words); with ``settled``, only the pieces (word indices) it accepts
    (their words and their neighbours' are final): what a ``Prefetcher`` can align while Whisper is still
    decoding."""
    times = list(times)
    groups = [list(g) for g in groups if g]
    _move_sentence_openers(texts, times, groups)
    duration = n_samples / sample_rate
    out = []
    for gi, group in enumerate(groups):
        if settled is not None and not settled(group):
            continue
        a, b, _, entries = _piece(texts, times, groups, gi, sample_rate, (0.0, duration), duration)
        if b > a:
            out.append((a, b, entries))
    return out


def _piece_key(a: int, b: int, entries: list[list[str]]) -> tuple:
    return (a, b, tuple(tuple(e) for e in entries))


class Prefetcher:
    """Aligns pieces on a worker thread while Whisper decodes the rest of the audio, so the stage adds little
    wall time where there is a core to spare (CTranslate2 releases the GIL while it decodes; measured here:
    Whisper alone 10.0-13.3 s, the same work with the aligner's 2.4-2.8 s beside it in a thread 10.3 s).
    ``take`` gives ``retime_words`` a piece's result only for exactly the same audio and words, so the times
    are the same as without it; a piece it does not have is aligned there as before."""

    def __init__(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE):
        from concurrent.futures import ThreadPoolExecutor

        self.samples = samples
        self.sample_rate = sample_rate
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="captionbridge-aligner")
        self._jobs: dict[tuple, object] = {}
        self._aligner: _Aligner | None = None
        self._lock = threading.Lock()
        self.cpu_seconds = 0.0
        self.submitted = 0
        self.failed = False

    def submit(self, pieces: list[tuple[int, int, list[list[str]]]]) -> None:
        for a, b, entries in pieces:
            key = _piece_key(a, b, entries)
            if key in self._jobs or self.failed:
                continue
            self._jobs[key] = self._pool.submit(self._align, a, b, entries)
            self.submitted += 1

    def _align(self, a: int, b: int, entries: list[list[str]]) -> SegmentResult | None:
        import time

        started = time.thread_time()
        try:
            if self._aligner is None:
                self._aligner = _take_idle() or new_aligner()
            return self._aligner.align(self.samples[a:b], entries, self.sample_rate, a / self.sample_rate)
        except AcousticTimingUnavailable:
            self.failed = True
            return None
        finally:
            with self._lock:
                self.cpu_seconds += time.thread_time() - started

    def take(self, a: int, b: int, entries: list[list[str]]) -> SegmentResult | None:
        job = self._jobs.pop(_piece_key(a, b, entries), None)
        try:
            return None if job is None else job.result()
        except Exception:  # whatever went wrong there, the piece is aligned again by the caller
            return None

    def close(self) -> None:
        """Drops what was not asked for and stops the worker (always call it: ``with`` does)."""
        for job in self._jobs.values():
            job.cancel()
        self._jobs.clear()
        self._pool.shutdown(wait=True)
        if self._aligner is not None:
            _give_back(self._aligner)
            self._aligner = None

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def retime_words(
    texts: list[str],
    times: list[tuple[float, float]],
    groups: list[list[int]],
    samples: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    bounds: tuple[float, float] | None = None,
    aligner: _Aligner | None = None,
    prefetched: Callable[[int, int, list[list[str]]], SegmentResult | None] | None = None,
) -> tuple[list[tuple[float, float]], list[bool], AlignStats]:
    """Re-time words (``texts``/``times`` in the audio's seconds) one group (a Whisper segment, a script
    window) at a time. Returns (times, aligned flags, stats): a group whose alignment fails keeps its times
    (flags False).

    Each group's audio runs from its first word's start to its last word's end, padded by ``PAD`` but never
    past the neighbouring groups' words (nor ``bounds``).
    """
    import time

    if aligner is None and texts:
        started, cpu = time.perf_counter(), time.thread_time()
        with borrow() as own:
            result = retime_words(texts, times, groups, samples, sample_rate, bounds, own, prefetched)
        # a decoder built for this call counts too
        result[2].seconds, result[2].cpu_seconds = time.perf_counter() - started, time.thread_time() - cpu
        return result
    started, cpu = time.perf_counter(), time.thread_time()
    stats = AlignStats()
    out = list(times)
    flags = [False] * len(texts)
    if not texts:
        return out, flags, stats
    duration = len(samples) / sample_rate
    lo_bound, hi_bound = bounds if bounds else (0.0, duration)
    groups = [list(g) for g in groups if g]
    times = list(times)
    moved_early = _move_sentence_openers(texts, times, groups)
    stats.moved += moved_early
    for i in range(len(out)):  # a moved word's provisional time is its fallback too
        out[i] = times[i]
    gi = 0
    while gi < len(groups):
        group = groups[gi]
        a, b, tokens, entries = _piece(texts, times, groups, gi, sample_rate, (lo_bound, hi_bound), duration)
        ready = prefetched(a, b, entries) if prefetched is not None and b > a else None
        if ready is not None:
            stats.prefetched += 1
        result = (
            ready
            if ready is not None
            else aligner.align(samples[a:b], entries, sample_rate, a / sample_rate)
            if b > a
            else SegmentResult(None, "empty segment")
        )
        gi += 1
        if result.times is not None and _stranded(aligner, entries, result.times, groups, gi, times):
            # Whisper put the first word after a pause at the end of the segment before it: the aligner could
            # only squeeze it in at its shortest. It opens the next piece instead; this piece is aligned again
            # without it
            move = [group[k] for k in tokens[-1]]
            groups[gi] = move + groups[gi]
            stats.moved += len(move)
            if len(move) == len(group):  # the piece was only that word
                del groups[gi - 1]
            else:
                groups[gi - 1] = group[: len(group) - len(move)]
            gi -= 1
            continue
        stats.segments += 1
        if result.times is None:
            stats.fallback += 1
            stats.reasons.append(result.reason)
            continue
        stats.aligned += 1
        for tok, (s, e) in zip(tokens, result.times):
            members = [group[k] for k in tok]
            if len(members) == 1:
                out[members[0]] = (s, e)
                flags[members[0]] = True
                continue
            weights = np.array([max(1, len(texts[i].strip())) for i in members], float)
            edges = s + np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * (e - s)
            for j, i in enumerate(members):
                out[i] = (float(edges[j]), float(edges[j + 1]))
                flags[i] = True
    stats.seconds, stats.cpu_seconds = time.perf_counter() - started, time.thread_time() - cpu
    return out, flags, stats
