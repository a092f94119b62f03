"""Words with times -> cues on exact frames, by professional caption rules.

``compose_cues`` is the one entry point. It never drops a word: every word's text appears in exactly one cue,
in order. Steps (each in its own module):

1. words -> units that may not be split (``line_breaking.build_units``; jieba words in Chinese);
2. units -> cues by dynamic programming over cue boundaries: each cue must lay out in the preset's lines and
   characters (``line_breaking.layout_lines``) and span at most the maximum duration of speech; boundaries are
   cheap after sentence/clause punctuation and at pauses, dear where a rule says never; short orphan cues and
   cues that cannot be read in their time cost extra;
3. cue spans -> in/out frames (``cue_timing.time_cues``, shot changes from ``shot_changes``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from fractions import Fraction

from ..model import Cue, Word
from ..timeline.timebase import Timebase
from .cue_timing import Span, time_cues
from .line_breaking import (
    NEUTRAL,
    Layout,
    break_costs,
    build_units,
    display_line,
    ends_sentence,
    join_texts,
    layout_lines,
    line_length,
)
from .presets import CaptionPreset, language_family, resolve_preset

CUE_COST = 6.0  # each extra cue costs this much: fills cues rather than scattering words
BOUNDARY_WEIGHT = 1.5  # a cue boundary at a poor point hurts more than a line break there
ORPHAN_COST = 30.0  # a one-word cue that is not a sentence or phrase of its own
LAG_COST = 12.0  # a cue too short for its minimum duration before the next one (will start late)
STRADDLE_COST = 10.0  # a cue that ends one sentence and starts another that runs on into the next cue
SPLIT_FIT_COST = 4.0  # a cue boundary inside a sentence that would fit one cue (lines, characters, duration)
FRAGMENT_COST = 8.0  # a cue of under FRAGMENT_SECONDS of speech that is not a whole sentence ("By seven,")
FRAGMENT_SECONDS = Fraction(3, 2)
TWO_SPEAKER_COST = 14.0  # the two-speaker (dash) form: for quick exchanges, not where two cues read as well
# With speakers (at least SENTENCE_TURN_SPEAKERS of them among the words): a sentence end followed by a pause
# of at least SENTENCE_TURN_GAP always ends the cue, even when both sides have the same speaker, since a turn
# that diarization missed (two similar voices given one id) falls there; a cue across it would show one
# speaker's label on two people's words. 0: every sentence end (words the pipeline settled never overlap);
# None: off. One voice found (a monologue, jfk.flac) composes as without speakers. Measured on tuning
# conversations only: benchmarks/results/speakers-mixed-cues.md.
SENTENCE_TURN_GAP: Fraction | None = Fraction(0)
SENTENCE_TURN_SPEAKERS = 2


def compose_cues(
    words: list[Word],
    timebase: Timebase,
    preset: "str | CaptionPreset" = "netflix-en",
    language: str = "en",
    cut_points: Sequence[int] = (),
    end_frame: int | None = None,
    speaker_names: Mapping[str, str] | None = None,
    **overrides,
) -> list[Cue]:
    """Compose caption cues from timed words.

    ``words`` are in timeline time (frame 0 = the timeline's first frame); ``cut_points`` are the video
    track's cut frames in the same time. ``overrides`` change any preset limit (``max_chars_per_line=37``,
    ``max_lines=1``, ``max_chars_per_second=17``, ``min_duration=1``, ...). Each cue's text is stored under
    ``language``; its ``words`` are the words it shows. ``end_frame`` (the timeline's length in frames): no
    cue ends after it.

    When words carry speakers (``Word.speaker``), a change of speaker is a preferred cue boundary and a cue
    never mixes speakers, except in the two-speaker form when the preset's ``speaker_marks`` is "dash" (one
    line per speaker, each starting with "- ", "-" in Chinese) or "label" (each line starting with the
    speaker's label); with "label" a turn's first cue starts with the label ("ANA: "). ``speaker_names`` maps
    ids to names for labels ("Speaker 2" for "S2" otherwise). Each cue's ``speakers`` lists who speaks in it.
    With two or more speakers a cue also ends at every sentence end (``SENTENCE_TURN_GAP``): a turn that
    diarization missed (two similar voices given one id) falls there, and a cue across it would show one
    speaker's label on two people's words.
    """
    limits = resolve_preset(preset, language, **overrides)
    words = _clean_words(words, limits, language)
    if not words:
        return []
    units = build_units([w.text for w in words], language)
    units = _split_long_units(units, words, limits, language)
    speakers = None
    by_word = _word_speakers(words)
    if by_word is not None:
        units, speakers = _split_mixed_units(units, words, by_word)
    texts = [u.text for u in units]
    costs = break_costs(texts, language)
    if speakers is not None and limits.speaker_marks == "label":
        texts = _label_turns(texts, speakers, speaker_names or {}, language, limits.max_chars_per_line)
    starts = [words[u.first].start_frame for u in units]
    ends = [max(words[k].end_frame for k in range(u.first, u.last + 1)) for u in units]
    segments = _segment(
        texts, costs, starts, ends, timebase.rate, limits, language, speakers, speaker_names or {}
    )

    spans, layouts = [], []
    for i, j, layout in segments:
        layouts.append(layout)
        spans.append(Span(starts[i], max(ends[i:j]), sum(line_length(x) for x in layout.lines)))
    times = time_cues(spans, timebase.rate, limits, cut_points, end_frame)
    cues = []
    for (i, j, layout), (start, end) in zip(segments, times):
        cue_words = tuple(words[units[i].first : units[j - 1].last + 1])
        text = "\n".join(layout.lines)
        if (
            not text.strip()
        ):  # nothing but dropped punctuation (a stream of "。"): show it rather than nothing
            text = join_texts([u.text for u in units[i:j]], language)
        cue_speakers: tuple[str, ...] = ()
        if speakers is not None:
            cue_speakers = tuple(dict.fromkeys(speakers[i:j]))
        cues.append(Cue(start, end, {language: text}, cue_words, cue_speakers))
    return cues


# -- speakers
# -----------------------------------------------------------------------------------------------------
def speaker_label(speaker_id: str, names: Mapping[str, str], language: str) -> str:
    """ "ANA: " (Chinese: "ANA：") for a speaker named Ana; "SPEAKER 2: " for an unnamed "S2"."""
    from ..model import default_speaker_name

    name = (names.get(speaker_id) or default_speaker_name(speaker_id)).upper()
    return f"{name}：" if language_family(language) == "zh" else f"{name}: "


def speaker_dash(language: str) -> str:
    """The Netflix two-speaker mark: "- " in English and other spaced scripts, "-" in Chinese."""
    return "-" if language_family(language) == "zh" else "- "


def _word_speakers(words: list[Word]) -> list[str] | None:
    """Each word's speaker, or None when no word has one. A word without a speaker among labelled ones takes
    the speaker before it (or the first one known)."""
    if not any(w.speaker for w in words):
        return None
    known = [w.speaker for w in words if w.speaker]
    current = known[0]
    by_word = []
    for w in words:
        current = w.speaker or current
        by_word.append(current)
    return by_word


def _split_mixed_units(units, words, by_word):
    """Units and each unit's speaker; a unit whose words have two speakers (jieba joining across a turn) is
    split back into its words."""
    from .line_breaking import Unit

    out_units, out_speakers = [], []
    for u in units:
        if len({by_word[k] for k in range(u.first, u.last + 1)}) == 1:
            out_units.append(u)
            out_speakers.append(by_word[u.first])
        else:
            for k in range(u.first, u.last + 1):
                out_units.append(Unit(words[k].text, k, k))
                out_speakers.append(by_word[k])
    return out_units, out_speakers


def _label_turns(
    texts: list[str], speakers: list[str], names: Mapping[str, str], language: str, max_chars_per_line: int
) -> list[str]:
    """ "label" marks: the first unit of every turn starts with the speaker's label (when label and unit fit
    one line: a long name before a long word in a narrow preset is left off rather than overflowing the
    line)."""
    out = []
    for k, (t, spk) in enumerate(zip(texts, speakers)):
        if k == 0 or speakers[k - 1] != spk:
            label = speaker_label(spk, names, language)
            if line_length(display_line([label + t], language)) <= max_chars_per_line:
                t = label + t
        out.append(t)
    return out


def _two_speaker_layout(
    texts, costs, i, k, j, preset: CaptionPreset, language: str, speakers, names: Mapping[str, str]
) -> Layout | None:
    """Units i..k-1 (one speaker) and k..j-1 (the next) as the two-speaker form, one line each, or None."""
    if preset.speaker_marks == "none" or preset.max_lines < 2:
        return None
    lines, cost = [], TWO_SPEAKER_COST
    for a, b in ((i, k), (k, j)):
        if preset.speaker_marks == "dash":
            mark = speaker_dash(language)
        else:  # label: a turn's first unit already carries it; a cue starting mid-turn adds it
            label = speaker_label(speakers[a], names, language)
            mark = "" if texts[a].startswith(label) else label
        if preset.max_chars_per_line - line_length(mark) < 4:  # (a preset needs 4 characters a line)
            return None
        one_line = replace(
            preset, max_lines=1, max_chars_per_line=preset.max_chars_per_line - line_length(mark)
        )
        layout = layout_lines(texts[a:b], costs[a:b] + [0], one_line, language)
        if layout is None:
            return None
        lines.append(mark + layout.lines[0])
        cost += layout.cost
    return Layout(tuple(lines), (k - i,), cost)


# -- input hygiene
# ------------------------------------------------------------------------------------------------
def _clean_words(words: list[Word], preset: CaptionPreset, language: str) -> list[Word]:
    """Words in time order, with text, at least one frame long; a word too long for a line is split."""
    out: list[Word] = []
    for w in sorted(words, key=lambda w: (w.start_frame, w.end_frame)):
        text = " ".join(w.text.split())  # no newlines or runs of spaces inside a word
        if not text:
            continue
        start = max(0, int(w.start_frame))
        end = max(start + 1, int(w.end_frame))
        w = replace(w, text=text, start_frame=start, end_frame=end)
        out.extend(_split_word(w, preset.max_chars_per_line))
    return out


def _split_word(word: Word, limit: int) -> list[Word]:
    """A word longer than a line (a URL, a long compound) becomes pieces, at hyphens/slashes where possible.

    Each piece is a ``Word`` with its share of the frames, so nothing is lost and every piece fits a line.
    """
    if len(word.text) <= limit:
        return [word]
    pieces: list[str] = []
    for part in re.findall(r"[^-/]*[-/]?", word.text):
        if not part:
            continue
        if pieces and len(pieces[-1]) + len(part) <= limit:
            pieces[-1] += part
        else:
            pieces.extend(part[k : k + limit] for k in range(0, len(part), limit))
    n, span = len(pieces), word.end_frame - word.start_frame
    out = []
    for k, piece in enumerate(pieces):
        a = word.start_frame + span * k // n
        b = max(a + 1, word.start_frame + span * (k + 1) // n)
        out.append(replace(word, text=piece, start_frame=a, end_frame=b))
    return out


def _split_long_units(units, words, preset: CaptionPreset, language: str):
    """A unit wider than a line (a run of Latin letters jieba glued together) is split back into its words."""
    from .line_breaking import Unit

    out = []
    for u in units:
        if u.first == u.last or line_length(display_line([u.text], language)) <= preset.max_chars_per_line:
            out.append(u)
        else:
            out.extend(Unit(words[k].text, k, k) for k in range(u.first, u.last + 1))
    return out


# -- segmentation
# ---------------------------------------------------------------------------------------------
def _segment(
    texts,
    costs,
    starts,
    ends,
    rate,
    preset: CaptionPreset,
    language: str,
    speakers=None,
    names: Mapping[str, str] | None = None,
) -> list[tuple[int, int, Layout]]:
    """Split units into cues: ``[(first_unit, end_unit_exclusive, layout), ...]``.

    With ``speakers`` (one per unit), a speaker change is a free boundary and a cue holds one change at most,
    in the two-speaker form; a sentence end always ends a cue (``_sentence_stops``: a possible turn between
    two voices that diarization gave one id)."""
    n = len(texts)
    max_f = preset.max_frames(rate)
    min_f = preset.min_frames(rate)
    pause = preset.frames(preset.pause_split, rate)
    force = preset.frames(preset.force_split_pause, rate)
    capacity = preset.max_chars_per_line * preset.max_lines
    linger = preset.frames(preset.max_linger, rate)
    frames_per_char = float(rate) / preset.max_chars_per_second  # for a penalty only: float is fine here
    short_f = max(1, math.ceil(FRAGMENT_SECONDS * rate))
    joiner = 0 if language_family(language) == "zh" else 1
    # gap before unit k (frames of silence between unit k-1 and k)
    gaps = [0] + [starts[k] - ends[k - 1] for k in range(1, n)]
    boundary = [0.0] * (n + 1)
    for k in range(1, n):
        c = float(costs[k])
        if gaps[k] >= pause:
            c = min(c, 0.5)
        elif gaps[k] >= pause // 2 and c >= NEUTRAL:
            c = c * 0.6
        boundary[k] = c * BOUNDARY_WEIGHT
        if speakers is not None and speakers[k] != speakers[k - 1]:
            boundary[k] = 0.0  # a change of speaker is the best place for a new cue
    stop = _sentence_stops(texts, gaps, rate, speakers)
    # a sentence that fits one cue (a two-line cue if need be) should not be split across two: "... rely on
    # solar" | "and satellite weather reports." read worse than one two-line cue
    for a, b in _sentences(texts):
        if b - a < 2 or max(ends[a:b]) - starts[a] > max_f or any(gaps[k] >= force for k in range(a + 1, b)):
            continue
        if (
            sum(len(t) for t in texts[a:b]) + joiner * (b - a - 1) > capacity
            or layout_lines(texts[a:b], costs[a:b] + [0], preset, language) is None
        ):
            continue
        for k in range(a + 1, b):
            if gaps[k] < pause and (speakers is None or speakers[k] == speakers[k - 1]):
                boundary[k] += SPLIT_FIT_COST

    INF = float("inf")
    best = [INF] * (n + 1)
    back: list[tuple[int, Layout] | None] = [None] * (n + 1)
    best[0] = 0.0
    for j in range(1, n + 1):
        width = 0
        change_at = None  # with speakers: the unit where the second speaker of units i..j-1 starts
        for i in range(j - 1, -1, -1):
            width += len(texts[i]) + (joiner if i < j - 1 else 0)
            if i < j - 1 and (width > capacity + 4 or gaps[i + 1] >= force or stop[i + 1]):
                break
            span = max(ends[i:j]) - starts[i]
            if i < j - 1 and span > max_f:
                break
            if speakers is not None and i < j - 1 and speakers[i] != speakers[i + 1]:
                if change_at is not None:
                    break  # never three turns in one cue
                change_at = i + 1
            if best[i] == INF:
                continue
            if change_at is not None:
                layout = _two_speaker_layout(
                    texts, costs, i, change_at, j, preset, language, speakers, names or {}
                )
            else:
                layout = layout_lines(texts[i:j], costs[i:j] + [0], preset, language)
            if layout is None:
                if i == j - 1:  # a unit that cannot fit on its own cannot happen after _split_long_units
                    raise AssertionError(f"unit {texts[i]!r} does not fit a caption line")
                continue
            cost = best[i] + boundary[i] + CUE_COST + layout.cost
            cost += _cue_penalty(
                i,
                j,
                layout,
                texts,
                starts,
                ends,
                gaps,
                preset,
                min_f,
                pause,
                linger,
                frames_per_char,
                short_f,
            )
            if cost < best[j]:
                best[j] = cost
                back[j] = (i, layout)
    segments = []
    j = n
    while j > 0:
        i, layout = back[j]
        segments.append((i, j, layout))
        j = i
    segments.reverse()
    return segments


def _sentence_stops(texts, gaps, rate, speakers) -> list[bool]:
    """Whether a cue must end before unit k: with ``SENTENCE_TURN_SPEAKERS`` or more speakers, after a
    sentence end followed by a pause of at least ``SENTENCE_TURN_GAP`` (in conversation a turn changes there,
    and when diarization joined two similar voices, nothing else marks it). Without speakers, never."""
    stop = [False] * (len(texts) + 1)
    if speakers is None or SENTENCE_TURN_GAP is None or len(set(speakers)) < SENTENCE_TURN_SPEAKERS:
        return stop
    least = math.ceil(SENTENCE_TURN_GAP * rate)
    for k in range(1, len(texts)):
        stop[k] = speakers[k] == speakers[k - 1] and ends_sentence(texts[k - 1]) and gaps[k] >= least
    return stop


def _sentences(texts: list[str]) -> list[tuple[int, int]]:
    """[first, end) unit ranges of the sentences in ``texts`` (the last may run on without an ending)."""
    out, start = [], 0
    for k, t in enumerate(texts):
        if ends_sentence(t) or k == len(texts) - 1:
            out.append((start, k + 1))
            start = k + 1
    return out


def _cue_penalty(
    i, j, layout, texts, starts, ends, gaps, preset, min_f, pause, linger, frames_per_char, short_f=1
) -> float:
    """Timing-related cost of units i..j-1 as one cue: too short before the next, too fast to read, an
    orphan."""
    n = len(texts)
    penalty = 0.0
    chars = sum(line_length(x) for x in layout.lines)
    end = max(ends[i:j])
    nxt = starts[j] if j < n else None
    room = (nxt - preset.min_gap_frames) if nxt is not None else end + 10 * min_f
    available = min(room, end + linger)
    available = max(available, end) - starts[i]
    if room - starts[i] < min_f:
        penalty += LAG_COST * (1 + (min_f - (room - starts[i])) / min_f)
    need = math.ceil(chars * frames_per_char)
    if need > max(available, min_f):
        penalty += 20.0 * (need / max(available, min_f) - 1)
    if j < n and not ends_sentence(texts[j - 1]) and any(ends_sentence(texts[k]) for k in range(i, j - 1)):
        penalty += STRADDLE_COST
    whole = (i == 0 or ends_sentence(texts[i - 1])) and (j == n or ends_sentence(texts[j - 1]))
    speech = end - starts[i]
    if not whole and n > 1 and speech < short_f:
        penalty += FRAGMENT_COST * (1 - speech / short_f)
    if j - i == 1 and n > 1:
        alone = ends_sentence(texts[i]) and (i == 0 or ends_sentence(texts[i - 1]))
        pauses = (i == 0 or gaps[i] >= pause) and (j == n or gaps[j] >= pause)
        if not (alone or pauses):
            penalty += ORPHAN_COST
    return penalty
