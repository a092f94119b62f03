"""Validator: each hard and soft rule is found, on the right cue, and clean captions pass."""

from __future__ import annotations

from fractions import Fraction

import pytest
from fixtures.captions import words_from_text
from fixtures.exact_time import exact_ms_up

from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.captions.validate import HARD, SOFT, SourceTimes, has_hard, validate_cues
from captionbridge.core.model import Cue
from captionbridge.core.timeline.timebase import Timebase

TB = Timebase(Fraction(24000, 1001))


def rules(violations, severity=None):
    return [(v.cue, v.rule) for v in violations if severity is None or v.severity == severity]


def cue(a, b, text, lang="en"):
    return Cue(a, b, {lang: text})


def test_clean_cues_pass():
    cues = [cue(0, 48, "Hello there."), cue(50, 100, "General Kenobi.")]
    assert validate_cues(cues, TB) == []


@pytest.mark.parametrize(
    "cues,expected",
    [
        ([cue(0, 48, "One."), cue(40, 100, "Two.")], (1, "overlap")),
        ([cue(0, 48, "One."), cue(49, 100, "Two.")], (1, "gap")),
        ([cue(0, 48, "One\ntwo\nthree")], (0, "max-lines")),
        ([cue(0, 48, "x" * 43)], (0, "chars-per-line")),
        ([cue(0, 19, "Hi.")], (0, "min-duration")),
        ([cue(0, 169, "A long time.")], (0, "max-duration")),
        ([cue(0, 48, "  ")], (0, "empty")),
    ],
)
def test_hard_rules(cues, expected):
    found = validate_cues(cues, TB)
    assert expected in rules(found, HARD)
    assert has_hard(found)


def test_minimum_duration_depends_on_rate():
    assert validate_cues([cue(0, 20, "Hi.")], Timebase(24)) == []  # 5/6 s = 20 frames at 24
    assert (0, "min-duration") in rules(validate_cues([cue(0, 19, "Hi.")], Timebase(24)))  # 19 < 20 frames
    assert (0, "min-duration") in rules(validate_cues([cue(0, 24, "Hi.")], Timebase(Fraction(30000, 1001))))


def test_off_frame_millisecond_times():
    cues = [cue(3, 72, "Hello.")]
    good = SourceTimes([(TB.ms_ceil(3), TB.ms_ceil(72))])
    assert validate_cues(cues, TB, source_times=good) == []
    rounded = SourceTimes(
        [(round(3 * 1001 / 24), TB.ms_ceil(72))]
    )  # frame 3 = 125.125 ms: 125 floors to frame 2
    assert rounded.times[0][0] == 125 and TB.frame_from_ms(125) == 2
    found = validate_cues(cues, TB, source_times=rounded)
    # reported, with what editors do with it, but a rounding convention does not make a file undeliverable
    assert rules(found) == [(0, "off-frame")] and found[0].severity == SOFT
    assert "editors that floor land on 00:00:00:02, editors that round on 00:00:00:03" in found[0].message


def test_whole_second_times_from_other_tools_are_not_hard():
    """Issue 14: every whole-second time in a third-party SRT was a HARD off-frame violation (exit 5)."""
    cues = [cue(23, 71, "Hello.")]  # 1000 ms floors to frame 23 at 23.976 (frame 24 starts at 1001 ms)
    found = validate_cues(cues, TB, source_times=SourceTimes([(1000, 3000)]))
    assert not has_hard(found)
    assert [v.rule for v in found] == ["off-frame", "off-frame"]
    assert "in-time 1000 ms lies inside frame 00:00:00:23" in found[0].message
    assert "editors that floor land on 00:00:00:23, editors that round on 00:00:01:00" in found[0].message
    # a time just inside a frame: floor and round agree, and the message says so
    inside = validate_cues([cue(24, 71, "Hello.")], TB, source_times=SourceTimes([(1010, 2962)]))
    assert [v.severity for v in inside] == [SOFT] and "floor and round agree" in inside[0].message


def test_reading_speed_is_flagged_for_every_preset_and_rate():
    """Issue 14: a cue too fast for the preset's reading speed must be a soft finding (exactly at the limit:
    none)."""
    for preset, language, cps in (
        ("netflix-en", "en", 20),
        ("broadcast", "en", 17),
        ("social", "en", 22),
        ("netflix-zh", "zh", 9),
    ):
        for rate in (Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(50)):
            tb = Timebase(rate)
            frames = int(2 * rate)  # about two seconds on screen
            seconds = Fraction(frames) / rate
            ok_chars = int(cps * seconds)  # at or under the limit
            text = ("x" * ok_chars) if language == "zh" else "a" * ok_chars
            limits = {"max_chars_per_line": 200, "max_lines": 2}
            fine = validate_cues([cue(0, frames, text, language)], tb, preset, language, **limits)
            assert "reading-speed" not in [v.rule for v in fine], (preset, rate)
            fast = validate_cues(
                [cue(0, frames, text + ("x" if language == "zh" else "aa"), language)],
                tb,
                preset,
                language,
                **limits,
            )
            assert [(v.rule, v.severity) for v in fast if v.rule == "reading-speed"] == [
                ("reading-speed", SOFT)
            ], (preset, rate)


def test_off_frame_in_centiseconds_and_absolute_times():
    tb = Timebase.from_start_timecode(Fraction(24000, 1001), "01:00:00:00", False)
    cues = [cue(24, 72, "Hello.")]
    rate = tb.rate
    times = SourceTimes(
        [(exact_ms_up(24 + tb.start_frame, rate, 10), exact_ms_up(72 + tb.start_frame, rate, 10))],
        quantum_ms=10,
        offset_frames=tb.start_frame,
    )
    assert validate_cues(cues, tb, source_times=times) == []
    late = SourceTimes(
        [(times.times[0][0] + 10, times.times[0][1])], quantum_ms=10, offset_frames=tb.start_frame
    )
    assert rules(validate_cues(cues, tb, source_times=late)) == [(0, "off-frame")]


@pytest.mark.parametrize(
    "rate", [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(60000, 1001)]
)
def test_off_frame_check_agrees_with_exact_fractions(rate):
    """The validator accepts exactly the oracle's rounded-up times and refuses the neighbouring
    millisecond."""
    tb = Timebase(rate)
    for frame in range(0, 20000, 37):
        want = exact_ms_up(frame, rate)
        cues = [cue(frame, frame + 100, "Hello.")]
        end = exact_ms_up(frame + 100, rate)
        assert validate_cues(cues, tb, source_times=SourceTimes([(want, end)])) == [], frame
        for wrong in (want - 1, want + 1):
            found = validate_cues(cues, tb, source_times=SourceTimes([(wrong, end)]))
            assert rules(found) == [(0, "off-frame")], (frame, wrong)


def test_soft_rules():
    cues = [
        cue(0, 24, "Far too much text to read in one second"),  # reading speed
        cue(30, 80, "I saw the\nhouse on the hill"),  # short enough for one line; "the | house" split
        cue(82, 140, "谢谢。"),
    ]
    found = validate_cues(cues, TB)
    assert not has_hard(found)
    assert {(0, "reading-speed"), (0, "chaining"), (1, "one-line-fits"), (1, "break-quality")} <= set(
        rules(found, SOFT)
    )


def test_chinese_rules():
    found = validate_cues([cue(0, 48, "你好，我们走吧。", "zh")], TB, "netflix-zh", "zh")
    assert rules(found) == [(0, "zh-punctuation")]
    found = validate_cues([cue(0, 48, "这是一个非常非常非常非常非常长的句子啊", "zh")], TB, "netflix", "zh")
    assert (0, "chars-per-line") in rules(found, HARD)


def test_shot_change_rules():
    cues = [
        cue(95, 150, "Starts five frames before a cut."),
        cue(190, 250, "Clean."),
        cue(300, 345, "Ends three frames before a cut."),
    ]
    found = validate_cues(cues, TB, cut_points=[100, 348])
    assert (0, "shot-change-in") in rules(found, SOFT)
    assert (2, "shot-change-out") in rules(found, SOFT)
    assert not any(v.cue == 1 for v in found)
    assert "start on the cut" in [v for v in found if v.rule == "shot-change-in"][0].message


def test_overrides_change_limits():
    assert (0, "chars-per-line") not in rules(
        validate_cues([cue(0, 100, "x" * 43)], TB, max_chars_per_line=50)
    )


def test_composed_captions_have_no_hard_violations():
    text = (
        "Ladies and gentlemen, thank you for coming tonight. We have a long programme ahead of us, "
        "so let me be brief. First, the results of the annual survey, which surprised everyone."
    )
    words = words_from_text(text, TB)
    cues = compose_cues(words, TB, cut_points=[60, 200])
    assert not has_hard(validate_cues(cues, TB, cut_points=[60, 200]))


def test_gap_after_an_out_time_two_frames_before_a_cut_is_not_a_chaining_fault():
    cues = [cue(0, 98, "Ends two frames before the cut."), cue(105, 160, "Starts after it.")]
    assert (0, "chaining") in rules(validate_cues(cues, TB))
    assert (0, "chaining") not in rules(validate_cues(cues, TB, cut_points=[100]))
