"""Issue 14: no cue (and no word) ends after the timeline, and words never overlap in frames."""

from __future__ import annotations

from fractions import Fraction

import pytest
from fixtures.captions import words_from_text

from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.captions.cue_timing import Span, settle_word_frames, time_cues
from captionbridge.core.captions.presets import resolve_preset
from captionbridge.core.model import Word
from captionbridge.core.timeline.timebase import Timebase

TB = Timebase(Fraction(24000, 1001))
NETFLIX = resolve_preset("netflix-en", "en")


def test_last_cue_is_cut_at_the_timeline_end_and_keeps_its_minimum_duration():
    # speech ends 5 frames before the end: the 12-frame trail would run 7 frames past it (the example:
    # 1417/1415)
    spans = [Span(0, 60, 30), Span(1300, 1410, 40)]
    assert time_cues(spans, TB.rate, NETFLIX)[-1][1] > 1415  # what the end clamp is for
    times = time_cues(spans, TB.rate, NETFLIX, end_frame=1415)
    assert times[-1][1] == 1415 and times[0] == time_cues(spans, TB.rate, NETFLIX)[0]
    # a short last cue against the end starts earlier, into the silence before it, to keep 5/6 s on screen
    times = time_cues([Span(0, 20, 10), Span(100, 105, 4)], TB.rate, NETFLIX, end_frame=110)
    assert times[-1] == (110 - NETFLIX.min_frames(TB.rate), 110)
    assert times[-1][0] - times[0][1] >= NETFLIX.min_gap_frames


def test_end_clamp_never_overlaps_the_cue_before():
    times = time_cues([Span(0, 40, 20), Span(44, 50, 10)], TB.rate, NETFLIX, end_frame=52)
    assert all(end <= 52 for _, end in times)
    assert times[1][0] >= times[0][1] + NETFLIX.min_gap_frames
    assert all(end > start for start, end in times)


@pytest.mark.parametrize("rate", ["24000/1001", "25", "30000/1001", "60"])
def test_composed_cues_and_words_stay_inside_the_timeline(rate):
    tb = Timebase(rate)
    words = words_from_text(
        "We went down to the harbour at dawn, and the boats were already leaving for the day.", tb, start=0.4
    )
    end_frame = words[-1].end_frame + 1  # the timeline ends one frame after the last word
    settled = settle_word_frames(words, end_frame)
    cues = compose_cues(settled, tb, end_frame=end_frame)
    assert cues[-1].end_frame == end_frame
    assert all(c.end_frame <= end_frame for c in cues)
    assert " ".join(c.text["en"].replace("\n", " ") for c in cues).split() == [w.text for w in words]


def test_words_that_meet_inside_a_frame_do_not_overlap():
    # at 23.976 a frame is 41.7 ms: words meeting mid-frame both claimed that frame (25 of 129 pairs in the
    # example)
    words = [
        Word.at("back", 0.0, 0.15, TB),
        Word.at("to", 0.15, 0.23, TB),
        Word.at("the", 0.23, 0.31, TB),
        Word.at("harbor.", 0.31, 0.72, TB),
    ]
    assert any(a.end_frame > b.start_frame for a, b in zip(words, words[1:]))  # the defect, before settling
    settled = settle_word_frames(words)
    assert all(a.end_frame <= b.start_frame for a, b in zip(settled, settled[1:]))
    assert all(w.end_frame > w.start_frame for w in settled)
    assert [w.start for w in settled] == [w.start for w in words]  # measured seconds are left as they were


def test_words_in_one_frame_each_keep_a_frame_and_none_passes_the_end():
    words = [Word.at(t, 1.0 + k * 0.01, 1.0 + (k + 1) * 0.01, TB) for k, t in enumerate(["a", "b", "c"])]
    settled = settle_word_frames(words)
    assert [(w.start_frame, w.end_frame) for w in settled] == [(23, 24), (24, 25), (25, 26)]
    crowded = settle_word_frames(words, end_frame=25)
    assert all(w.end_frame <= 25 and w.end_frame > w.start_frame for w in crowded)
    assert all(a.end_frame <= b.start_frame for a, b in zip(crowded, crowded[1:]))
    past = settle_word_frames([Word.at("late", 10.0, 10.5, TB)], end_frame=200)
    assert (past[0].start_frame, past[0].end_frame) == (199, 200)


# -- segmentation (issue 14): word frames as Whisper base + word timing gave them on the bundled example
# ---------
SOLAR = [
    ("Today,", 494, 508),
    ("most", 513, 524),
    ("of", 524, 528),
    ("the", 529, 533),
    ("crews", 535, 545),
    ("rely", 546, 557),
    ("on", 557, 563),
    ("solar", 564, 576),
    ("and", 580, 587),
    ("satellite", 587, 603),
    ("weather", 603, 617),
    ("reports.", 617, 630),
]
MARKET = [
    ("The", 832, 837),
    ("market", 837, 851),
    ("opens", 851, 863),
    ("at", 864, 871),
    ("six.", 871, 883),
    ("By", 892, 898),
    ("seven,", 899, 912),
    ("the", 918, 923),
    ("best", 924, 935),
    ("fish", 935, 942),
    ("have", 943, 950),
    ("already", 951, 962),
    ("been", 963, 969),
    ("sold", 970, 981),
    ("to", 982, 987),
    ("restaurants", 987, 1004),
    ("in", 1004, 1010),
    ("the", 1010, 1014),
    ("city.", 1015, 1025),
]


def _words(spec):
    return [Word(t, float(TB.seconds(a)), float(TB.seconds(b)), 1.0, a, b) for t, a, b in spec]


def test_a_sentence_that_fits_one_two_line_cue_is_not_split():
    """ "...rely on solar" | "and satellite weather reports." read worse than one two-line cue."""
    cues = compose_cues(_words(SOLAR), TB)
    assert [c.text["en"] for c in cues] == [
        "Today, most of the crews rely on solar\nand satellite weather reports."
    ]


def test_no_one_second_fragment_before_the_rest_of_its_sentence():
    """ "By seven," stood alone for one second before the rest of its sentence."""
    cues = compose_cues(_words(MARKET), TB)
    texts = [c.text["en"] for c in cues]
    assert "By seven," not in texts
    assert texts[0] == "The market opens at six."
    assert all(c.duration >= TB.rate * Fraction(3, 2) for c in cues)
