"""Chinese text for captions: Simplified script (OpenCC), per-character timing, punctuation to break captions
on.

Whisper often returns Traditional characters for Mandarin, and little or no punctuation. Captions need
Simplified (when asked), one timed unit per character (CJK has no spaces to break on), and sentence/clause
marks at the places the speaker pauses, so the caption composer can break there.
"""

from __future__ import annotations

import re
from functools import lru_cache

CJK_LANGUAGES = ("zh", "yue", "ja")
_FULLWIDTH = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；", ".": "。"}
SENTENCE_END = "。？！"
CLAUSE_MARKS = "，、；：" + SENTENCE_END
_PUNCT = set(CLAUSE_MARKS + "…—“”‘’《》「」『』（）,.!?;:'\"-")
_QUESTION_FINALS = ("吗", "嗎", "呢", "么", "麼")


def is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0xF900 <= code <= 0xFAFF
        or 0x3040 <= code <= 0x30FF
    )


def has_cjk(text: str) -> bool:
    return any(is_cjk(c) for c in text)


def is_punctuation(char: str) -> bool:
    return char in _PUNCT or (not char.isalnum() and not char.isspace())


@lru_cache(maxsize=2)
def _converter(config: str):
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional -> Simplified Chinese (OpenCC ``t2s``); other scripts pass through unchanged."""
    return _converter("t2s").convert(text) if has_cjk(text) else text


def fullwidth_punctuation(text: str) -> str:
    """ASCII punctuation next to Chinese characters becomes full-width (，。？！：；)."""
    if not has_cjk(text):
        return text
    out = []
    for i, ch in enumerate(text):
        if ch in _FULLWIDTH and (i == 0 or not text[i - 1].isdigit() or ch != "."):
            out.append(_FULLWIDTH[ch])
        else:
            out.append(ch)
    text = re.sub(r"\s+(?=[，。？！：；])", "", "".join(out))
    return re.sub(r"(?<=[，。？！：；])\s+", "", text)


def split_characters(
    text: str, start: float, end: float, confidence: float
) -> list[tuple[str, float, float, float]]:
    """Split a recognised CJK word into one timed unit per character (punctuation stays on its character).

    Time is shared evenly over the characters; runs of Latin letters/digits inside stay one unit.
    """
    units: list[str] = []
    for ch in text.strip():
        if ch.isspace():
            continue
        if is_punctuation(ch) and units:
            units[-1] += ch
        elif units and not is_cjk(ch) and not is_cjk(units[-1][-1]) and not is_punctuation(units[-1][-1]):
            units[-1] += ch  # keep "AI", "2024" together
        else:
            units.append(ch)
    if not units:
        return []
    step = (end - start) / len(units)
    return [(u, start + k * step, start + (k + 1) * step, confidence) for k, u in enumerate(units)]


def punctuate(
    units: list[tuple[str, float, float, float]], clause_gap: float = 0.25, sentence_gap: float = 0.7
) -> list[tuple[str, float, float, float]]:
    """Add ，/。/？ where the speaker pauses and Whisper gave no mark, and at the very end."""
    out = list(units)
    for i, (text, start, end, conf) in enumerate(out):
        if not text or is_punctuation(text[-1]):
            continue
        gap = out[i + 1][1] - end if i + 1 < len(out) else None
        if gap is None or gap >= sentence_gap:
            mark = "？" if text.endswith(_QUESTION_FINALS) else "。"
        elif gap >= clause_gap:
            mark = "，"
        else:
            continue
        out[i] = (text + mark, start, end, conf)
    return out


def normalise_chinese(
    words: list[tuple[str, float, float, float]],
    simplified: bool = True,
) -> list[tuple[str, float, float, float]]:
    """Whisper words of Chinese speech -> Simplified (optional), one unit per character, punctuated."""
    units: list[tuple[str, float, float, float]] = []
    for text, start, end, conf in words:
        text = fullwidth_punctuation(to_simplified(text) if simplified else text)
        if has_cjk(text):
            units.extend(split_characters(text, start, end, conf))
        elif text.strip():
            stripped = text.strip()
            if units and all(is_punctuation(c) for c in stripped):
                prev = units[-1]
                if has_cjk(prev[0]):
                    stripped = "".join(_FULLWIDTH.get(c, c) for c in stripped)
                units[-1] = (prev[0] + stripped, prev[1], prev[2], prev[3])
            else:
                units.append((stripped, start, end, conf))
    return punctuate(units)
