"""Cues -> sentences: what a translator should see at once.

Caption cues cut sentences wherever lines fill up; translating each cue alone reorders or garbles clauses.
Here each cue's source text is split at sentence ends into *fragments*, and consecutive fragments are grouped
into sentences: a sentence ends at sentence punctuation, at a real pause between cues (Chinese captions show
no full stops, so a pause is the usual sign there), or when it grows past a size a translation model handles
well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from ..captions.line_breaking import SENTENCE_END, has_cjk
from ..captions.presets import language_family
from ..errors import InputError
from ..model import Cue
from ..timeline.timebase import Timebase
from .glossary import normalize_language

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "vs",
    "etc",
    "jr",
    "sr",
    "prof",
    "no",
    "e.g",
    "i.e",
    "u.s",
    "mt",
}
_CLOSERS = "\"'”’»」』）)]】"
MAX_SENTENCE_CUES = 5
MAX_SENTENCE_CHARS = {"en": 240, "zh": 90}


@dataclass(frozen=True)
class Fragment:
    """A piece of one cue's source text that belongs to one sentence. ``weight`` is its share of the
    sentence."""

    cue: int
    text: str
    frames: float  # the cue's frames shared out by this fragment's length
    weight: float = 0.0


@dataclass
class Sentence:
    fragments: list[Fragment] = field(default_factory=list)
    language: str = "en"

    @property
    def text(self) -> str:
        sep = "" if language_family(self.language) == "zh" else " "
        out = ""
        for frag in self.fragments:
            if not frag.text:
                continue
            if out and sep == "" and not has_cjk(out[-1]) and not has_cjk(frag.text[0]):
                out += " "  # two Latin words across a cue boundary in Chinese text
            elif out:
                out += sep
            out += frag.text
        return out

    @property
    def cues(self) -> list[int]:
        return sorted({f.cue for f in self.fragments})


def source_text(cue: Cue, language: str, index: int, timebase: Timebase) -> str:
    """The cue's text in ``language`` as one line for translation (Chinese display spaces back to commas)."""
    text = cue.text.get(language)
    if text is None:  # "zh-Hans", "en-US" ... name the same language
        text = next((v for k, v in cue.text.items() if normalize_language(k) == language), None)
    if text is None:
        others = [k for k in cue.text if cue.text[k].strip()]
        if len(others) == 1 and others[0] in ("und", ""):
            text = cue.text[others[0]]
        else:
            raise InputError(
                f"cue {index + 1} at {timebase.timecode(cue.start_frame)} has no {language} text "
                f"(it has: {', '.join(sorted(cue.text)) or 'nothing'}); set the document's "
                "source_language to the language the cues are written in"
            )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if language_family(language) == "zh":
        joined = ""
        for line in lines:
            if joined and not has_cjk(joined[-1]) and not has_cjk(line[0]):
                joined += " "
            joined += line
        # Chinese captions show a comma/full stop as a space: give the model its comma back.
        return re.sub(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])", "，", joined)
    return " ".join(lines)


def split_sentences_in(text: str, language: str) -> list[str]:
    """``text`` cut after each sentence end ("Fine. And you?" -> ["Fine.", "And you?"])."""
    if language_family(language) == "zh":
        parts = re.split(rf"(?<=[。！？!?…])(?=[^{re.escape(_CLOSERS)}。！？!?…])", text)
        return [p.strip() for p in parts if p.strip()]
    pieces: list[str] = []
    start = 0
    for match in re.finditer(rf"[.!?…][{re.escape(_CLOSERS)}]*\s+(?=[\"'“‘(\[]?[A-Z0-9])", text):
        words = text[start : match.start() + 1].split()
        last = words[-1].lower().rstrip(".!?…") if words else ""
        if text[match.start()] == "." and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
            continue  # "Mr. Smith", "J. Smith"
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _ends_sentence(text: str) -> bool:
    stripped = text.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in SENTENCE_END


def group_sentences(
    cues: list[Cue], language: str, timebase: Timebase, pause: Fraction | None = None
) -> list[Sentence]:
    """Sentences over ``cues`` in order; every character of every cue lands in exactly one fragment."""
    family = language_family(language)
    if pause is None:
        pause = Fraction(1, 2) if family == "zh" else Fraction(3, 2)
    pause_frames = int(pause * timebase.rate)
    limit = MAX_SENTENCE_CHARS[family]
    sentences: list[Sentence] = []
    current = Sentence(language=language)
    for index, cue in enumerate(cues):
        text = source_text(cue, language, index, timebase)
        parts = split_sentences_in(text, language) or [text]
        total = sum(len(p) for p in parts) or 1
        for n, part in enumerate(parts):
            frames = cue.duration * len(part) / total
            current.fragments.append(Fragment(index, part, frames))
            last_part = n == len(parts) - 1
            nxt = cues[index + 1] if index + 1 < len(cues) else None
            end = (
                not last_part
                or _ends_sentence(part)
                or nxt is None
                or nxt.start_frame - cue.end_frame > pause_frames
                or len(current.cues) >= MAX_SENTENCE_CUES
                or len(current.text) >= limit
            )
            if end:
                sentences.append(_weighted(current))
                current = Sentence(language=language)
    if current.fragments:
        sentences.append(_weighted(current))
    return sentences


def _weighted(sentence: Sentence) -> Sentence:
    """Give each fragment its share of the sentence: half by screen time, half by source length."""
    frames = sum(f.frames for f in sentence.fragments) or 1.0
    chars = sum(len(f.text) for f in sentence.fragments) or 1
    sentence.fragments = [
        Fragment(f.cue, f.text, f.frames, 0.5 * f.frames / frames + 0.5 * len(f.text) / chars)
        for f in sentence.fragments
    ]
    return sentence
