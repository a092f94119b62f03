"""Sentence-level translation of cues: grouping, distribution, fitting, retiming, glossary, pairing."""

import itertools
from fractions import Fraction

import jieba
import pytest

from captionbridge.core.captions.presets import resolve_preset
from captionbridge.core.captions.validate import HARD, validate_cues
from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase
from captionbridge.core.translate.backends import inspect_folder, load_folder
from captionbridge.core.translate.cues import translate_cues, translate_document_with_report
from captionbridge.core.translate.fit import relieve_reading_speed
from captionbridge.core.translate.glossary import Glossary
from captionbridge.core.translate.sentences import group_sentences

TB = Timebase(24)
WALK_ZH = [
    Cue(0, 40, {"zh": "我们今天下午"}),
    Cue(42, 90, {"zh": "先去公园散步"}),
    Cue(92, 150, {"zh": "然后一起吃午饭"}),
]
WALK_EN = "This afternoon we will take a walk in the park first and then have lunch together."


def test_a_sentence_over_three_cues_is_translated_once_and_cut_in_order(reference_translator):
    ref = reference_translator({"我们今天下午先去公园散步然后一起吃午饭": WALK_EN})
    out, report = translate_cues(WALK_ZH, "zh", "en", ref, TB)
    assert ref.calls == [["我们今天下午先去公园散步然后一起吃午饭"]]
    texts = [c.text["en"].replace("\n", " ") for c in out]
    assert all(texts) and " ".join(texts) == WALK_EN
    retimed = {r["cue"]: r for r in report.retimed}
    for i, (c, src) in enumerate(zip(out, WALK_ZH)):  # same timing, unless reported as lent a few frames
        if i in retimed:
            assert retimed[i]["to"] == [c.start_frame, c.end_frame]
            assert abs(c.start_frame - src.start_frame) + abs(c.end_frame - src.end_frame) <= 12
        else:
            assert (c.start_frame, c.end_frame) == (src.start_frame, src.end_frame)
    assert [c.text["zh"] for c in out] == [c.text["zh"] for c in WALK_ZH]
    assert report.sentences == 1 and report.multi_cue_sentences == 1 and not report.unfit
    # the cut follows each cue's share of the sentence (screen time and source length) ...
    from captionbridge.core.translate.sentences import group_sentences

    weights = [f.weight for f in group_sentences(WALK_ZH, "zh", TB)[0].fragments]
    for text, weight in zip(texts, weights):
        assert abs(len(text) / len(WALK_EN) - weight) < 0.15
    # ... at places the line-breaking rules allow (never after an article, pronoun or auxiliary)
    assert not any(t.split()[-1] in ("a", "the", "we", "will") for t in texts)


def test_chinese_target_is_cut_only_between_jieba_words(reference_translator):
    cues = [Cue(0, 48, {"en": "I think we should finish"}), Cue(50, 100, {"en": "the edit before Friday."})]
    zh = "我觉得我们应该在星期五之前完成剪辑。"
    ref = reference_translator({"I think we should finish the edit before Friday.": zh})
    out, report = translate_cues(cues, "en", "zh", ref, TB)
    first, second = out[0].text["zh"], out[1].text["zh"]
    assert first and second and first + second == zh.rstrip("。")  # no full stop at a Chinese line's end
    boundaries = set()
    pos = 0
    for word in jieba.lcut(zh):
        pos += len(word)
        boundaries.add(pos)
    assert len(first) in boundaries
    assert not report.unfit


def test_a_cue_holding_two_sentences_sends_each_whole(reference_translator):
    cues = [Cue(0, 48, {"en": "Fine, thanks. And you"}), Cue(50, 90, {"en": "are coming too?"})]
    ref = reference_translator({"Fine, thanks.": "很好，谢谢。", "And you are coming too?": "你也来吗？"})
    out, report = translate_cues(cues, "en", "zh", ref, TB)
    assert ref.calls == [["Fine, thanks.", "And you are coming too?"]]
    assert report.sentences == 2
    assert out[0].text["zh"].startswith("很好 谢谢")  # a comma shows as a space in a Chinese line
    assert (out[0].text["zh"] + out[1].text["zh"]).replace(" ", "").endswith("你也来吗？")


def test_sentences_end_at_punctuation_or_a_pause():
    cues = [
        Cue(0, 40, {"zh": "第一句没有标点"}),
        Cue(42, 80, {"zh": "还在说"}),
        Cue(200, 240, {"zh": "停顿以后"}),
        Cue(242, 280, {"zh": "新的一句。"}),
        Cue(282, 320, {"zh": "再来"}),
    ]
    sentences = group_sentences(cues, "zh", TB)
    assert [s.cues for s in sentences] == [[0, 1], [2, 3], [4]]
    assert sentences[0].text == "第一句没有标点还在说"
    assert abs(sum(f.weight for f in sentences[1].fragments) - 1) < 1e-9


def test_a_shorter_candidate_is_used_when_the_best_does_not_fit(reference_translator):
    cues = [Cue(0, 30, {"zh": "感谢观看。"})]
    ref = reference_translator(
        {"感谢观看。": ["Thank you very much for watching this video today.", "Thanks for watching."]}
    )
    out, report = translate_cues(cues, "zh", "en", ref, TB, num_hypotheses=2)
    assert out[0].text["en"] == "Thanks for watching."
    assert report.other_candidate_cues == [0] and not report.unfit


def test_retiming_lends_a_cue_the_silence_after_it(reference_translator):
    cues = [Cue(0, 40, {"zh": "我们今天去公园。"}), Cue(200, 240, {"zh": "谢谢。"})]
    table = {"我们今天去公园。": "We are going to the park today, my friend.", "谢谢。": "Thank you."}
    out, report = translate_cues(cues, "zh", "en", reference_translator(table), TB)
    # 42 characters at 20 characters/s need 51 frames at 24 fps; the trail allows 12 past the original
    # out-time
    assert (out[0].start_frame, out[0].end_frame) == (0, 51)
    assert report.retimed == [{"cue": 0, "from": [0, 40], "to": [0, 51]}]
    assert not report.unfit
    kept, report = translate_cues(cues, "zh", "en", reference_translator(table), TB, retime=False)
    assert kept[0].end_frame == 40
    assert [(u["cue"], u["problem"]) for u in report.unfit] == [(0, "reading_speed")]


def test_retiming_borrows_from_a_neighbour_of_the_same_sentence_only_what_it_can_spare():
    spans = [[0, 30], [32, 150]]
    presets = {"en": resolve_preset("netflix", "en"), "zh": resolve_preset("netflix", "zh")}
    changed = relieve_reading_speed(
        spans, [{"en": 40, "zh": 4}, {"en": 10, "zh": 10}], presets, [{0, 1}, {0, 1}], [30, 150], Fraction(24)
    )
    assert spans == [[0, 48], [50, 150]] and changed == [0, 1]
    spans = [[0, 30], [32, 59]]  # the neighbour needs all 27 frames for 10 Chinese characters
    assert (
        relieve_reading_speed(
            spans,
            [{"en": 40, "zh": 4}, {"en": 10, "zh": 10}],
            presets,
            [{0, 1}, {0, 1}],
            [30, 59],
            Fraction(24),
        )
        == []
    )
    assert spans == [[0, 30], [32, 59]]


def test_what_cannot_fit_is_kept_whole_and_reported(reference_translator):
    long = (
        "This sentence is far too long to ever fit into a single caption of two lines at forty-two "
        "characters per line, however it is cut."
    )
    cues = [Cue(0, 24, {"zh": "太长了。"}), Cue(26, 40, {"zh": "好。"})]
    out, report = translate_cues(
        cues, "zh", "en", reference_translator({"太长了。": long, "好。": "OK."}), TB
    )
    assert out[0].text["en"].split() == long.split()  # every word kept
    problems = {(u["cue"], u["problem"]) for u in report.unfit}
    assert (0, "chars_per_line") in problems and (0, "reading_speed") in problems
    assert any("cue 1 at 00:00:00:00" in w for w in report.warnings())


def test_glossary_placeholders_come_back_as_the_fixed_terms(reference_translator):
    glossary = Glossary([{"zh": "张伟", "en": "Zhang Wei"}, {"zh": "字幕桥", "en": "CaptionBridge"}])
    ref = reference_translator({"XQ0Z在XQ1Z工作。": ["XQ1Z employs XQ0Z.", "XQ0Z works at XQ1Z."]})
    out, report = translate_cues(
        [Cue(0, 60, {"zh": "张伟在字幕桥工作。"})], "zh", "en", ref, TB, glossary=glossary
    )
    assert out[0].text["en"] == "CaptionBridge employs Zhang Wei."
    assert report.glossary_terms == {"Zhang Wei": 1, "CaptionBridge": 1} and report.glossary_piecewise == 0


def test_glossary_terms_appear_even_when_a_model_loses_the_placeholders(tiny_marian, tmp_path):
    translator = load_folder(inspect_folder(tiny_marian["zh-en-ct2"]))
    glossary_file = tmp_path / "terms.tsv"
    glossary_file.write_text("zh\ten\n张伟\tZhang Wei\n字幕桥\tCaptionBridge\n", encoding="utf-8")
    cues = [Cue(0, 60, {"zh": "张伟在字幕桥工作。"}), Cue(100, 160, {"zh": "请关上门坐下。"})]
    runs = [translate_cues(cues, "zh", "en", translator, TB, glossary=glossary_file) for _ in range(2)]
    (out, report), (again, _) = runs
    text = out[0].text["en"].replace("\n", " ")
    assert "Zhang Wei" in text and "CaptionBridge" in text
    assert text.index("Zhang Wei") < text.index("CaptionBridge")  # terms keep the source order
    assert [c.text for c in out] == [c.text for c in again]  # deterministic
    assert report.glossary_terms == {"Zhang Wei": 1, "CaptionBridge": 1}


def test_bilingual_files_share_timing_and_pass_check(reference_translator, tmp_path):
    from click.testing import CliRunner

    from captionbridge.adapters.caption_formats import write_captions
    from captionbridge.plugin.cli import cli

    doc = CaptionDocument(
        "walk", Timebase.from_start_timecode(24, "01:00:00:00", False), "zh", [], list(WALK_ZH), ["zh"]
    )
    ref = reference_translator({"我们今天下午先去公园散步然后一起吃午饭": WALK_EN})
    bilingual, report = translate_document_with_report(doc, "en", translator=ref)
    assert bilingual.languages == ["zh", "en"] and not report.unfit
    assert all(set(c.text) == {"zh", "en"} for c in bilingual.cues)
    files = {p.name: p for p in write_captions(bilingual, tmp_path, "walk", ["srt", "ass"])}
    assert {"walk.zh.srt", "walk.en.srt", "walk.bilingual.srt", "walk.bilingual.ass"} <= set(files)
    times = [
        [line for line in files[f"walk.{lang}.srt"].read_text().splitlines() if "-->" in line]
        for lang in ("zh", "en")
    ]
    assert times[0] == times[1] and len(times[0]) == 3
    runner = CliRunner()
    for name in ("walk.bilingual.srt", "walk.bilingual.ass", "walk.en.srt"):
        result = runner.invoke(
            cli, ["check", str(files[name]), "--rate", "24", "--start-timecode", "01:00:00:00"]
        )
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize("key", ["zh-en-ct2", "zh-en"])
def test_tiny_model_end_to_end_pairs_every_cue_and_reports_what_the_validator_finds(tiny_marian, key):
    translator = load_folder(inspect_folder(tiny_marian[key]))
    texts = [
        "会议明天早上九点开始。",
        "我们今天去公园",
        "然后一起吃午饭。",
        "感谢您观看这个视频。",
        "张伟在上海的字幕桥工作。",
        "请关上门坐下。",
        "这台相机多少钱？",
        "我觉得我们应该",
        "在星期五之前完成剪辑。",
        "好的。",
    ]
    cues = []
    frame = 0
    for n, text in enumerate(texts):
        cues.append(Cue(frame, frame + 48, {"zh": text}))
        frame += 50 if n in (1, 7) else 80
    out, report = translate_cues(cues, "zh", "en", translator, TB, batch_size=3)
    assert len(out) == len(cues) and report.sentences == 8 and report.batches == 3
    assert all("en" in c.text and c.text["zh"] == src.text["zh"] for c, src in zip(out, cues))
    for c, src in zip(out, cues):  # timing identical, or moved within the documented limits
        assert c.start_frame <= src.start_frame + 48 and c.end_frame <= src.end_frame + 48
    for a, b in itertools.pairwise(out):
        assert b.start_frame - a.end_frame >= 2
    found = {
        v.cue
        for v in validate_cues(out, TB, "netflix", "en")
        if v.rule == "chars-per-line" and v.severity == HARD
    }
    assert found == {u["cue"] for u in report.unfit if u["problem"] == "chars_per_line"}
    empty = {i for i, c in enumerate(out) if not c.text["en"].strip()}
    assert empty == {u["cue"] for u in report.unfit if u["problem"] == "empty"}


def test_distribute_keeps_order_prefers_clause_breaks_and_never_leaves_a_cue_empty():
    from captionbridge.core.translate.fit import distribute

    text = "We went to the park, and then we had a long lunch together."
    pieces, overflow = distribute(text, [0.5, 0.5], [60, 60], "en")
    assert pieces == ["We went to the park,", "and then we had a long lunch together."] and overflow == 0
    # a cue that can hold little pushes the cut, without breaking "a long lunch"
    pieces, _ = distribute(text, [0.5, 0.5], [60, 20], "en")
    assert " ".join(pieces) == text and not pieces[0].endswith(("a", "a long"))
    pieces, _ = distribute("Yes.", [0.3, 0.3, 0.4], [40, 40, 40], "en")
    assert all(pieces) and "".join(pieces) == "Yes."


def test_text_without_words_is_kept_not_sent_to_the_model(reference_translator):
    cues = [Cue(0, 40, {"en": "♪ ♪"}), Cue(100, 140, {"en": "Thank you."})]
    ref = reference_translator({"Thank you.": "谢谢。"})
    out, report = translate_cues(cues, "en", "zh", ref, TB)
    assert ref.calls == [["Thank you."]]
    assert [c.text["zh"].replace(" ", "") for c in out] == ["♪♪", "谢谢"]


def test_corrected_names_are_kept_as_spelled_in_the_translation(reference_translator):
    """Issue 17: the corrections vocabulary also goes into the translation glossary (Latin-script terms kept
    as spelled)."""
    from captionbridge.core.translate.glossary import with_kept_terms

    glossary = with_kept_terms(None, ["Oyelaran", "测试"], "en", "zh")
    assert [e for e in glossary.entries] == [{"en": "Oyelaran", "zh": "Oyelaran"}]
    assert with_kept_terms(None, [], "en", "zh") is None
    given = Glossary([{"en": "Oyelaran", "zh": "奥耶拉兰"}])
    assert with_kept_terms(given, ["Oyelaran"], "en", "zh") is given  # the user's own entry wins
    ref = reference_translator({"Captain XQ0Z docked.": "XQ0Z船长靠岸了。"})
    out, report = translate_cues(
        [Cue(0, 60, {"en": "Captain Oyelaran docked."})], "en", "zh", ref, TB, glossary=glossary
    )
    assert out[0].text["zh"] == "Oyelaran船长靠岸了" and report.glossary_terms == {"Oyelaran": 1}
