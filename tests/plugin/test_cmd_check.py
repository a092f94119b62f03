"""`captionbridge check`: per-cue report, exit 5 on hard violations, 0 otherwise, JSON output, timeline
cuts."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from click.testing import CliRunner
from fixtures.captions import words_from_text

from captionbridge.adapters.caption_formats import write_captions
from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.errors import ValidationFailed
from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase
from captionbridge.plugin.cli import cli

TB = Timebase.from_start_timecode(Fraction(24000, 1001), "01:00:00:00", False)


def run(*args):
    return CliRunner().invoke(cli, ["check", *map(str, args)])


def good_srt(tmp_path):
    words = words_from_text("Good evening. Tonight we travel to the mountains, where farmers grow tea.", TB)
    doc = CaptionDocument("x", TB, "en", cues=compose_cues(words, TB), languages=["en"])
    return doc, write_captions(doc, tmp_path, "talk", ["srt", "json"])


def test_clean_file_exits_zero(tmp_path):
    _, (srt, js) = good_srt(tmp_path)
    result = run(srt, "--rate", "24000/1001", "--start-timecode", "01:00:00:00")
    assert result.exit_code == 0, result.output
    assert "0 hard" in result.output
    result = run(js)  # the JSON carries its own clock
    assert result.exit_code == 0, result.output


def test_hard_violations_exit_5_and_every_cue_is_reported(tmp_path):
    srt = tmp_path / "bad.en.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nFirst line is fine\n\n"
        "2\n00:00:02,500 --> 00:00:02,700\n"
        "This one overlaps the first caption and is far too long to fit\n\n",
        encoding="utf-8",
    )
    result = run(srt, "--rate", "24000/1001", "--language", "en")
    assert result.exit_code == ValidationFailed.exit_code == 5
    out = result.output
    assert "cue 2" in out and "overlap" in out and "chars-per-line" in out and "min-duration" in out
    assert (
        "off-frame" in out
    )  # 1000 ms is not the start of a 23.976 frame (frame 23 starts at 959.3 ms, 24 at 1001)


def test_json_report(tmp_path):
    srt = tmp_path / "bad.srt"
    srt.write_text("1\n00:00:01,001 --> 00:00:01,335\nToo short\n", encoding="utf-8")
    result = run(srt, "--rate", "24000/1001", "--language", "en", "--json")
    assert result.exit_code == 5
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert report["hard"] == 1 and report["cues"] == 1
    (violation,) = [v for v in report["languages"]["en"] if v["severity"] == "hard"]
    assert violation["cue"] == 1 and violation["rule"] == "min-duration" and violation["severity"] == "hard"


def test_soft_only_exits_zero_unless_strict(tmp_path):
    tb = Timebase(25)
    doc = CaptionDocument("x", tb, "en", cues=[Cue(0, 30, {"en": "I saw the\nhouse"})], languages=["en"])
    (srt,) = write_captions(doc, tmp_path, "soft", ["srt"])
    result = run(srt, "--rate", "25")
    assert result.exit_code == 0 and "SOFT" in result.output and "one-line-fits" in result.output
    assert run(srt, "--rate", "25", "--strict").exit_code == 5


def test_bilingual_file_checks_each_language_with_its_limits(tmp_path):
    tb = Timebase(25)
    doc = CaptionDocument(
        "x",
        tb,
        "zh",
        cues=[Cue(0, 75, {"zh": "这是一个超过十六个字的很长很长的中文句子", "en": "Short."})],
        languages=["zh", "en"],
    )
    (srt,) = write_captions(doc, tmp_path, "bi", ["bilingual-srt"])
    result = run(srt, "--rate", "25", "--json")
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert [v["rule"] for v in report["languages"]["zh"]] == ["chars-per-line"]
    assert report["languages"]["en"] == []
    assert result.exit_code == 5


def test_overrides(tmp_path):
    tb = Timebase(25)
    doc = CaptionDocument("x", tb, "en", cues=[Cue(0, 50, {"en": "x" * 45})], languages=["en"])
    (srt,) = write_captions(doc, tmp_path, "o", ["srt"])
    assert run(srt, "--rate", "25").exit_code == 5
    assert run(srt, "--rate", "25", "--max-chars", "50").exit_code == 0


def test_user_mistakes_are_clear_errors(tmp_path):
    _, (srt, _) = good_srt(tmp_path)
    result = run(srt)
    assert result.exit_code == 3 and "--rate" in result.output
    result = run(srt, "--rate", "abc")
    assert result.exit_code == 3 and "frame rate" in result.output
    result = run(srt, "--rate", "25", "--preset", "hollywood")
    assert result.exit_code == 3 and "unknown caption preset" in result.output
    plain = tmp_path / "plain.srt"
    plain.write_text("1\n00:00:01,000 --> 00:00:02,000\nHi\n")
    result = run(plain, "--rate", "25")
    assert result.exit_code == 3 and "--language" in result.output


def test_timeline_cuts_drive_shot_change_rules(tmp_path):
    from fixtures.timelines import ClipSpec, SequenceSpec, write_click_wav, write_xmeml

    wav = write_click_wav(tmp_path / "a.wav", 20.0)
    media = getattr(wav, "path", tmp_path / "a.wav")
    seq = SequenceSpec.at(
        "cuts",
        Fraction(24000, 1001),
        "01:00:00:00",
        [
            ClipSpec(0, 100, media, track="V1"),
            ClipSpec(100, 300, media, source_in=100, track="V1"),
            ClipSpec(0, 300, media, track="A1"),
        ],
    )
    timeline = write_xmeml(tmp_path / "cuts.xml", seq)
    doc = CaptionDocument(
        "x", TB, "en", cues=[Cue(95, 150, {"en": "Starts just before the cut."})], languages=["en"]
    )
    (srt,) = write_captions(doc, tmp_path, "cut", ["srt"])
    result = run(srt, "--timeline", timeline, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert report["shot_cuts"] == 1
    assert [v["rule"] for v in report["languages"]["en"]] == ["shot-change-in"]


@pytest.mark.parametrize("content", ["", "hello this is not subtitles\n", "1\nnot a time\nHi\n\n"])
@pytest.mark.parametrize("with_language", [True, False])
def test_a_file_without_any_cue_is_bad_input(tmp_path, content, with_language):
    """Issue 14: a garbage or empty SRT passed ("0 cue(s) ... no violations", exit 0) once --language was
    given, and without it the message asked for a language instead of saying the file is not a subtitle
    file."""
    srt = tmp_path / "junk.srt"
    srt.write_text(content, encoding="utf-8")
    result = run(srt, "--rate", "25", *(["--language", "en"] if with_language else []))
    assert result.exit_code == 3, result.output
    assert "no caption could be read" in result.output and "not a SRT file" in result.output
    assert "--language" not in result.output and "Traceback" not in result.output


def test_third_party_whole_second_times_are_not_hard_violations(tmp_path):
    """Issue 14: whole-second times (another tool's rounding) were HARD off-frame violations, exit 5."""
    srt = tmp_path / "other_tool.en.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nA caption from another tool.\n\n"
        "2\n00:00:04,000 --> 00:00:06,000\nAnd another one.\n\n",
        encoding="utf-8",
    )
    result = run(srt, "--rate", "24000/1001", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert report["hard"] == 0
    off = [v for v in report["languages"]["en"] if v["rule"] == "off-frame"]
    assert len(off) == 4 and all(v["severity"] == "soft" for v in off)
    assert "editors that floor land on 00:00:00:23, editors that round on 00:00:01:00" in off[0]["message"]
    assert (
        run(srt, "--rate", "24000/1001", "--strict").exit_code == 5
    )  # --strict still fails on soft findings


def test_too_fast_caption_is_flagged(tmp_path):
    """Issue 14: a hand-made cue too fast for the preset's reading speed must get a soft finding."""
    srt = tmp_path / "fast.en.srt"
    srt.write_text(
        "1\n00:00:01,001 --> 00:00:03,003\nThe quick brown fox jumps over the\nlazy dog again and again.\n\n",
        encoding="utf-8",
    )
    result = run(srt, "--rate", "24000/1001")
    assert result.exit_code == 0, result.output
    assert "SOFT reading-speed: 29.5 characters/s (at most 20)" in result.output
    assert "reading-speed" not in run(srt, "--rate", "24000/1001", "--max-chars-per-second", "30").output


def test_caption_and_check_name_the_limits_the_same_way():
    """Issue 14: check said --max-chars/--max-cps, caption --max-chars-per-line/--max-chars-per-second
    (without help or defaults). One vocabulary, each option with help that shows the presets' defaults."""
    check_help = CliRunner().invoke(cli, ["check", "--help"], terminal_width=200).output
    caption_help = CliRunner().invoke(cli, ["caption", "--help"], terminal_width=200).output
    for option, default in (
        ("--max-chars-per-line", "netflix-en 42"),
        ("--max-lines", "social 1"),
        ("--max-chars-per-second", "netflix-en 20"),
    ):
        for text in (check_help, caption_help):
            line = next(ln for ln in text.splitlines() if ln.strip().startswith(option))
            assert default in " ".join(text.split(option, 1)[1].split()[:40]), (option, line)
    assert "--preset [netflix|netflix-en|netflix-zh|broadcast|social]" in caption_help
    assert (
        "--absolute-times" in caption_help
        and "start timecode" in caption_help.split("--absolute-times")[1][:300]
    )
