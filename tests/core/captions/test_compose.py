"""Composer: timing rules in frames, shot changes, splitting, presets, and never losing a word."""

from __future__ import annotations

from fractions import Fraction

import pytest
from fixtures.captions import words_from_text

from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.captions.cue_timing import Span, time_cues
from captionbridge.core.captions.line_breaking import _jieba
from captionbridge.core.captions.presets import resolve_preset
from captionbridge.core.errors import InputError
from captionbridge.core.model import Word
from captionbridge.core.timeline.timebase import Timebase

TB24 = Timebase(24)
NETFLIX = resolve_preset("netflix-en", "en")


def w(text: str, start_frame: int, end_frame: int, tb: Timebase = TB24) -> Word:
    return Word(
        text, float(tb.seconds(start_frame)), float(tb.seconds(end_frame)), 1.0, start_frame, end_frame
    )


# -- timing
# --------------------------------------------------------------------------------------------------------
def test_in_time_on_first_frame_and_out_time_twelve_frames_after_speech():
    cues = compose_cues([w("Hello", 100, 110), w("there,", 111, 120), w("friend.", 121, 140)], TB24)
    assert [(c.start_frame, c.end_frame) for c in cues] == [(100, 152)]
    assert cues[0].text["en"] == "Hello there, friend."


def test_minimum_duration_extends_into_silence():
    cues = compose_cues([w("Yes.", 48, 53)], TB24)
    assert (cues[0].start_frame, cues[0].end_frame) == (48, 48 + 20)  # 5/6 s = 20 frames at 24 fps
    cues = compose_cues([w("Yes.", 48, 53)], Timebase(Fraction(30000, 1001)))
    assert cues[0].duration == 25  # 5/6 s at 29.97 is 24.975 frames: rounded up


def test_out_time_stops_two_frames_before_the_next_cue():
    spans = [Span(0, 40, 10), Span(45, 90, 10)]
    assert time_cues(spans, Fraction(24), NETFLIX) == [(0, 43), (45, 102)]


@pytest.mark.parametrize("gap,expected_out", [(3, 61), (12, 70), (13, 60)])
def test_gaps_of_twelve_frames_or_fewer_are_closed_to_two(gap, expected_out):
    # first cue's speech ends at 48; its trail would end at 60; next cue starts 48 + 12 + gap
    nxt = 60 + gap
    times = time_cues([Span(0, 48, 10), Span(nxt, nxt + 30, 10)], Fraction(24), NETFLIX)
    assert (
        times[0][1] == expected_out
    )  # chained: 2 frames before the next cue; 13 frames: the trail's own end
    assert times[1][0] == nxt
    assert times[1][0] - times[0][1] == (2 if gap <= 12 else gap)


def test_dense_speech_never_overlaps_and_keeps_two_frame_gaps():
    spans = [Span(k * 10, k * 10 + 9, 30) for k in range(20)]
    times = time_cues(spans, Fraction(24), NETFLIX)
    for (a0, a1), (b0, b1) in zip(times, times[1:]):
        assert b0 - a1 >= 2 and a1 - a0 >= 20 and b1 > b0


def test_maximum_duration_is_enforced():
    times = time_cues([Span(0, 400, 40)], Fraction(25), NETFLIX)
    assert times == [(0, 175)]  # 7 s at 25 fps


def test_reading_speed_lingers_into_silence_but_not_past_linger_limit():
    # 60 characters need 3 s (72 frames) at 20 cps; speech is 1 s; 1.5 s linger allowed -> ends at 24 + 36
    times = time_cues([Span(0, 24, 60)], Fraction(24), NETFLIX)
    assert times == [(0, 60)]
    times = time_cues([Span(0, 24, 30)], Fraction(24), NETFLIX)
    assert times == [(0, 36)]  # 30 characters need 36 frames


# -- shot changes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "before,expected", [(1, 200), (8, 200), (9, 188), (11, 188), (12, 188), (13, 187), (0, 200)]
)
def test_in_times_near_a_cut(before, expected):
    start = 200 - before
    times = time_cues([Span(start, start + 40, 10)], Fraction(24), NETFLIX, cut_points=[200])
    assert times[0][0] == expected


@pytest.mark.parametrize(
    "speech_end,expected_out",
    [(300 - 25, 287), (300 - 14, 298), (300 - 5, 298), (300 - 2, 298), (300 + 5, 317)],
)
def test_out_times_near_a_cut_end_two_frames_before_it(speech_end, expected_out):
    # natural out-time is speech end + 12; cut at 300
    times = time_cues([Span(200, speech_end, 10)], Fraction(24), NETFLIX, cut_points=[300])
    assert times[0][1] == expected_out


def test_out_time_keeps_minimum_duration_even_near_a_cut():
    times = time_cues([Span(280, 283, 5)], Fraction(24), NETFLIX, cut_points=[300])
    assert times[0] == (280, 300)  # moving to 298 would leave 18 frames (< 20): not allowed


def test_compose_uses_cut_points_end_to_end():
    words = [w("We", 95, 100), w("begin", 100, 110), w("here.", 110, 130)]
    cues = compose_cues(words, TB24, cut_points=[100, 150])
    assert cues[0].start_frame == 100  # 5 frames before the cut: snapped to it
    assert cues[0].end_frame == 148  # out-time 142 is 8 frames before the next cut: 2 frames before it


# -- splitting
# ---------------------------------------------------------------------------------------------------
def test_one_line_when_it_fits_two_when_not():
    short = words_from_text("This fits on one line.", TB24)
    assert compose_cues(short, TB24)[0].text["en"] == "This fits on one line."
    long = words_from_text("This sentence is quite a bit longer and will not fit on a single line.", TB24)
    cue = compose_cues(long, TB24)[0]
    assert cue.text["en"].count("\n") == 1


def test_long_pause_splits_cues():
    words = [w("Wait", 0, 10), w("for", 11, 15), w("it", 16, 20), w("now", 100, 110)]
    cues = compose_cues(words, TB24)
    assert [c.text["en"] for c in cues] == ["Wait for it", "now"]


def test_sentences_split_before_length_and_no_cue_exceeds_seven_seconds():
    text = (
        "I went to the station this morning to meet my sister who was coming back from Paris. "
        "The train was late again and we waited for almost an hour on the cold platform. "
        "When she finally arrived she had lost her ticket and her phone."
    )
    words = words_from_text(text, TB24)
    cues = compose_cues(words, TB24)
    for cue in cues:
        assert cue.duration <= 168
    # each sentence ends a cue: no cue holds the end of one sentence and the start of the next on one line
    for cue in cues:
        for line in cue.text["en"].split("\n"):
            assert ". " not in line


def test_never_drops_words_even_odd_ones():
    words = [
        w("  ", 0, 1),
        w("second", 30, 20),
        w("first", 5, 9),
        w("x" * 100, 40, 48),
        w("", 50, 51),
        w("end.", 60, 61),
    ]
    cues = compose_cues(words, TB24)
    shown = "".join(x.text for c in cues for x in c.words)
    assert shown == "firstsecond" + "x" * 100 + "end."
    assert all(len(line) <= 42 for c in cues for line in c.text["en"].split("\n"))


def test_empty_input_gives_no_cues():
    assert compose_cues([], TB24) == []


# -- Chinese
# -----------------------------------------------------------------------------------------------------
ZH_TEXT = (
    "今天早上我去了市场，卖苹果的老人告诉我，张三终于把他的房子卖掉了。我简直不敢相信。"
    "他说新房主下个星期就要搬进来，因为他们想在街角开一家小面包店。"
)


def test_chinese_per_character_words_never_split_inside_a_jieba_word():
    words = words_from_text(ZH_TEXT, TB24)  # one character per word, as Whisper gives Chinese
    cues = compose_cues(words, TB24, "netflix-zh", "zh")
    joined = "".join(x.text for x in words)
    bounds, pos = {0}, 0
    for token in _jieba().lcut(joined):
        pos += len(token)
        bounds.add(pos)
    pos = 0
    for cue in cues:
        pos += len(cue.words)
        assert pos in bounds, f"cue ends inside a word: {cue.text['zh']!r}"
        for line in cue.text["zh"].split("\n"):
            assert len(line) <= 16
            assert "，" not in line and "。" not in line


def test_chinese_punctuation_becomes_space_inside_a_line():
    words = words_from_text("好的，我们走吧。", TB24)
    cue = compose_cues(words, TB24, "netflix", "zh")[0]
    assert cue.text["zh"] == "好的 我们走吧"


# -- presets
# -----------------------------------------------------------------------------------------------------
def test_presets_and_overrides():
    assert resolve_preset("netflix", "zh").max_chars_per_line == 16
    assert resolve_preset("netflix", "en").max_chars_per_line == 42
    assert resolve_preset("social", "en").max_lines == 1
    p = resolve_preset("netflix-en", "en", max_chars_per_line=30, min_duration=1.5, max_lines=None)
    assert p.max_chars_per_line == 30 and p.min_duration == Fraction(3, 2) and p.max_lines == 2
    with pytest.raises(InputError, match="unknown caption preset"):
        resolve_preset("hollywood", "en")
    with pytest.raises(InputError, match="unknown caption option"):
        resolve_preset("netflix-en", "en", max_charz=3)
    with pytest.raises(InputError, match="max_lines"):
        resolve_preset("netflix-en", "en", max_lines=0)


def test_social_preset_gives_single_short_lines():
    words = words_from_text("This sentence is quite a bit longer and will not fit on a single line.", TB24)
    cues = compose_cues(words, TB24, "social", "en")
    assert len(cues) > 1 and all("\n" not in c.text["en"] and len(c.text["en"]) <= 28 for c in cues)


def test_a_cue_pushed_late_near_a_cut_is_moved_clear_of_it():
    # the first cue needs its minimum duration (20 frames: 0..20), pushing the second to 22, 8 frames before
    # the cut at 30: it starts on the cut instead of flickering 8 frames before it
    times = time_cues([Span(0, 4, 3), Span(10, 60, 10)], Fraction(24), NETFLIX, cut_points=[30])
    assert times == [(0, 28), (30, 72)]  # and the first one, chained, ends 2 frames before the cut
    # pushed to 10 frames before the cut at 32: also starts on the cut (12 before would overlap the first cue)
    times = time_cues([Span(0, 4, 3), Span(10, 60, 10)], Fraction(24), NETFLIX, cut_points=[32])
    assert times[1][0] == 32 and times[0] == (0, 30)


def test_golden_paragraphs():
    tb = Timebase(25)
    en = (
        "Good evening, and welcome to the programme. Tonight we travel to the mountains of Yunnan, where "
        "farmers "
        "have grown tea for more than a thousand years. The work begins before dawn, when the air is still "
        "cold "
        "and the leaves are wet with dew. Nobody here is in a hurry."
    )
    assert [c.text["en"] for c in compose_cues(words_from_text(en, tb), tb)] == [
        "Good evening,\nand welcome to the programme.",
        "Tonight we travel\nto the mountains of Yunnan,",
        "where farmers have grown tea\nfor more than a thousand years.",
        "The work begins before dawn,\nwhen the air is still cold",
        "and the leaves are wet with dew.\nNobody here is in a hurry.",
    ]
    zh = (
        "晚上好，欢迎收看本节目。今晚我们前往云南的群山，那里的农民种茶已有一千多年的历史。"
        "工作在黎明前就开始了，那时空气依然寒冷，茶叶上还带着露水。这里没有人着急。"
    )
    cues = compose_cues(words_from_text(zh, tb, per_char=0.15), tb, "netflix-zh", "zh")
    assert [c.text["zh"] for c in cues] == [
        "晚上好 欢迎收看本节目",
        "今晚我们前往云南的群山",
        "那里的农民种茶已有一千多年的历史",
        "工作在黎明前就开始了",
        "那时空气依然寒冷\n茶叶上还带着露水",
        "这里没有人着急",
    ]


def test_a_stream_of_chinese_punctuation_still_shows_text():
    cues = compose_cues([w("。", 0, 5), w("，", 6, 8)], TB24, "netflix-zh", "zh")
    assert [c.text["zh"] for c in cues] == ["。，"]
    cues = compose_cues([w("。", 0, 5), w("好", 6, 8)], TB24, "netflix-zh", "zh")
    assert [c.text["zh"] for c in cues] == ["好"] and len(cues[0].words) == 2
