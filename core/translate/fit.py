"""Fitting a translated sentence onto the cues its source spans: split it, lay it out in lines, check the
limits.

``distribute`` cuts a translation into one contiguous piece per source fragment, in order (so no cue shows
half a clause out of place), choosing cut points by (a) how much of the sentence each fragment carries in
screen time and source length, (b) the line-breaking rules (never inside a Chinese word -- jieba decides --
nor between article and noun...), and (c) what each cue can hold at the target's characters-per-line and
reading speed.

``relieve_reading_speed`` is the last resort before reporting: it lends a cue frames from the silence after it
(up to the preset's trail, keeping gaps either chained at the minimum or longer than the chaining threshold)
or from a neighbour of the same sentence that has time to spare in every language.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from fractions import Fraction

from ..captions.line_breaking import CLAUSE_END, SENTENCE_END, _jieba, break_costs, layout_lines
from ..captions.presets import CaptionPreset, language_family

POSITION_WEIGHT = 200.0  # 10 % away from the ideal cut costs 2 points, 30 % costs 18
BREAK_WEIGHT = 1.0  # line-breaking rule costs (0 after a full stop, 1 after a comma, 10 neutral, 30+ never)
OVERFLOW_WEIGHT = 10.0  # each character a cue cannot hold costs as much as a neutral break
EMPTY_COST = 1000.0
_ATTACH_LEFT = SENTENCE_END | CLAUSE_END | set("\"'”’»」』）)]】%")
_ATTACH_RIGHT = set("\"'“‘«「『（([【")


# Where a cut between cues is worse than the line-breaking rules alone say (a cue boundary is read as a
# pause):
# localisers and postpositions close the phrase before them (在星期五|之前), measure words and degree/time
# adverbs open the phrase after them (十二个|不同的, 已经快|二十年).
ZH_CLOSE_LEFT = {
    "之前",
    "之后",
    "以前",
    "以后",
    "以来",
    "为止",
    "时",
    "时候",
    "的时候",
    "里",
    "上",
    "下",
    "中",
    "内",
    "外",
    "左右",
    "之间",
    "一样",
    "似的",
}
ZH_OPEN_RIGHT = {
    "快",
    "已经",
    "正在",
    "刚",
    "刚刚",
    "曾经",
    "将",
    "将要",
    "马上",
    "立刻",
    "一直",
    "总是",
    "没法",
    "无法",
    "能够",
    "必须",
    "需要",
    "可能",
}
ZH_MEASURE_END = set("个位部台套把张条只件次种些份本支家场")
EXTRA_COST = 30


def _extra_cut_cost(atoms: list[str], k: int, language: str) -> int:
    """Cost a cue boundary before ``atoms[k]`` adds to ``break_costs`` (Chinese phrase structure)."""
    if language_family(language) != "zh":
        return 0
    punctuation = "".join(_ATTACH_LEFT | _ATTACH_RIGHT) + " "
    left, right = atoms[k - 1].strip(punctuation), atoms[k].strip(punctuation)
    if right in ZH_CLOSE_LEFT or left in ZH_OPEN_RIGHT:
        return EXTRA_COST
    if (
        len(left) > 1
        and left[-1] in ZH_MEASURE_END
        and any(ch in "一二两三四五六七八九十百千万几每这那0123456789" for ch in left[:-1])
    ):
        return EXTRA_COST
    return 0


def target_atoms(text: str, language: str) -> list[str]:
    """Pieces a cut may not enter: English words; Chinese jieba words with their punctuation attached."""
    if language_family(language) != "zh":
        return text.split()
    atoms: list[str] = []
    glue_next = False
    for token in _jieba().lcut(text.strip(), HMM=True):
        if token.isspace():
            glue_next = False
            if atoms:
                atoms[-1] = atoms[-1].rstrip() + " "
            continue
        if atoms and (glue_next or all(ch in _ATTACH_LEFT for ch in token)):
            atoms[-1] += token
        else:
            atoms.append(token)
        glue_next = all(ch in _ATTACH_RIGHT for ch in token)
    return atoms


def join_atoms(atoms: list[str], language: str) -> str:
    if language_family(language) != "zh":
        return " ".join(atoms)
    return "".join(atoms).strip()


def distribute(
    text: str, weights: list[float], capacities: list[float], language: str
) -> tuple[list[str], float]:
    """Cut ``text`` into ``len(weights)`` contiguous pieces; returns the pieces and the characters that
    overflow their capacity in total (0 when every piece fits)."""
    k = len(weights)
    atoms = target_atoms(text, language)
    if k == 1:
        whole = join_atoms(atoms, language)
        return [whole], max(0.0, len(whole) - capacities[0])
    if len(atoms) < k:
        # Fewer words than cues (a short translation of a long sentence): cut between characters rather than
        # leave a cue without text.
        atoms = list(join_atoms(atoms, language))
        language = "zh"  # character atoms join without spaces
    n = len(atoms)
    space = 0 if language_family(language) == "zh" else 1
    cum = [0]
    for a in atoms:
        cum.append(cum[-1] + len(a) + space)
    total = max(1, cum[-1] - space)
    rule = break_costs([a.strip() for a in atoms], language) + [0]
    for b in range(1, n):
        rule[b] += _extra_cut_cost(atoms, b, language)
    ideal = []
    acc = 0.0
    for w in weights[:-1]:
        acc += w
        ideal.append(acc / (sum(weights) or 1.0))
    min_piece = 1 if n >= k else 0

    def piece_len(a: int, b: int) -> int:
        return max(0, cum[b] - cum[a] - space) if b > a else 0

    def piece_cost(j: int, a: int, b: int) -> float:
        length = piece_len(a, b)
        cost = OVERFLOW_WEIGHT * max(0.0, length - capacities[j])
        if b == a:
            cost += EMPTY_COST
        if j < k - 1:
            cost += POSITION_WEIGHT * (cum[b] / (total + space) - ideal[j]) ** 2
            if 0 < b < n:
                cost += BREAK_WEIGHT * rule[b]
        return cost

    inf = math.inf
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    back = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(k):
        for a in range(n + 1):
            if best[j][a] == inf:
                continue
            last = j == k - 1
            ends = [n] if last else range(a + min_piece, n - min_piece * (k - j - 1) + 1)
            for b in ends:
                if b < a + min_piece:
                    continue
                c = best[j][a] + piece_cost(j, a, b)
                if c < best[j + 1][b]:
                    best[j + 1][b], back[j + 1][b] = c, a
    bounds = [n]
    for j in range(k, 0, -1):
        bounds.append(back[j][bounds[-1]])
    bounds.reverse()
    pieces = [join_atoms(atoms[a:b], language) for a, b in itertools.pairwise(bounds)]
    overflow = sum(max(0.0, len(p) - cap) for p, cap in zip(pieces, capacities))
    return pieces, overflow


@dataclass(frozen=True)
class CueFit:
    """A cue's target text laid out in lines, and what (if anything) breaks the limits."""

    text: str
    problems: tuple[tuple[str, float, float], ...]  # (problem, value, limit)


def lay_out(text: str, language: str, preset: CaptionPreset) -> tuple[list[str], bool]:
    """Lines for ``text`` within the preset if possible (True), else the most balanced lines it allows
    (False)."""
    atoms = [a.strip() for a in target_atoms(text, language) if a.strip()]
    if not atoms:
        return [""], True
    costs = break_costs(atoms, language)
    layout = layout_lines(atoms, costs, preset, language)
    if layout is not None:
        return list(layout.lines), True
    # Too long for the limits: keep every word anyway (nothing is dropped), balanced over the allowed lines.
    longest = max(len(a) for a in atoms)
    cpl = max(preset.max_chars_per_line, math.ceil(len(text) / preset.max_lines) + longest)
    while True:
        layout = layout_lines(atoms, costs, replace(preset, max_chars_per_line=cpl), language)
        if layout is not None:
            return list(layout.lines), False
        cpl += max(1, cpl // 4)


def reading_chars(text: str) -> int:
    return len(text.replace("\n", ""))


def frames_needed(chars: int, preset: CaptionPreset, rate: Fraction) -> int:
    """Fewest frames that show ``chars`` characters within the reading speed."""
    cps = Fraction(str(preset.max_chars_per_second))
    return math.ceil(Fraction(chars) * rate / cps)


def fit_cue(text: str, frames: int, language: str, preset: CaptionPreset, rate: Fraction) -> CueFit:
    lines, fits = lay_out(text, language, preset)
    display = "\n".join(lines)
    problems: list[tuple[str, float, float]] = []
    if not display.strip():
        problems.append(("empty", 0, 1))
    if not fits:
        problems.append(("chars_per_line", max(len(line) for line in lines), preset.max_chars_per_line))
    chars = reading_chars(display)
    seconds = Fraction(frames) / rate
    if chars and frames_needed(chars, preset, rate) > frames:
        problems.append(("reading_speed", round(float(chars / seconds), 2), preset.max_chars_per_second))
    return CueFit(display, tuple(problems))


def relieve_reading_speed(
    spans: list[list[int]],
    chars: list[dict[str, int]],
    presets: dict[str, CaptionPreset],
    sentence_of: list[set[int]],
    original_end: list[int],
    rate: Fraction,
) -> list[int]:
    """Lengthen cues that read too fast (in any language) by borrowing frames; ``spans`` is changed in place.

    Returns the indices of cues whose timing changed (a neighbour that lent frames counts too).
    """
    changed: set[int] = set()
    any_preset = next(iter(presets.values()))
    min_gap, chain = any_preset.min_gap_frames, any_preset.chain_gap_frames

    def required(i: int) -> int:
        need = max((frames_needed(chars[i].get(lang, 0), p, rate) for lang, p in presets.items()), default=0)
        return max(need, max(p.min_frames(rate) for p in presets.values()))

    def cap(i: int) -> int:
        return min(p.max_frames(rate) for p in presets.values())

    for i in range(len(spans)):
        need = max((frames_needed(chars[i].get(lang, 0), p, rate) for lang, p in presets.items()), default=0)
        short = need - (spans[i][1] - spans[i][0])
        if short <= 0:
            continue
        start, end = spans[i]
        # (a) into the silence after the cue
        nxt = spans[i + 1][0] if i + 1 < len(spans) else None
        limit = min(original_end[i] + any_preset.max_trail_frames, start + cap(i))
        if nxt is not None:
            limit = min(limit, nxt - min_gap)
        best_end = end
        for new_end in range(end + 1, limit + 1):
            gap_ok = nxt is None or nxt - new_end == min_gap or nxt - new_end > chain
            if gap_ok:
                best_end = new_end
                if new_end - start >= need:
                    break
        if best_end != end:
            spans[i][1] = best_end
            changed.add(i)
            short = need - (spans[i][1] - spans[i][0])
        # (b) from the next cue of the same sentence, (c) from the previous one
        for j in (i + 1, i - 1):
            if short <= 0 or not 0 <= j < len(spans) or j not in sentence_of[i]:
                continue
            left, right = (i, j) if j > i else (j, i)
            if spans[right][0] - spans[left][1] > chain:
                continue  # a real pause between them: keep it
            spare = (spans[j][1] - spans[j][0]) - required(j)
            room = cap(i) - (spans[i][1] - spans[i][0])
            lend = min(short, spare, room)
            if lend <= 0:
                continue
            if j > i:
                spans[i][1] += lend
                spans[j][0] += lend
            else:
                spans[i][0] -= lend
                spans[j][1] -= lend
            changed.update((i, j))
            short -= lend
    return sorted(changed)
