"""Line breaking: golden layouts of hand-written English and Chinese, and each break rule on its own."""

from __future__ import annotations

import pytest

from captionbridge.core.captions.line_breaking import (
    NEUTRAL,
    POOR,
    break_cost_en,
    break_costs,
    build_units,
    display_line,
    layout_lines,
)
from captionbridge.core.captions.presets import resolve_preset

EN = resolve_preset("netflix-en", "en")
ZH = resolve_preset("netflix-zh", "zh")


def layout(text: str, language: str = "en", preset=None):
    tokens = text.split() if language == "en" else list(text)
    units = [u.text for u in build_units(tokens, language)]
    result = layout_lines(
        units, break_costs(units, language) + [0], preset or (EN if language == "en" else ZH), language
    )
    return result.lines if result else None


ENGLISH_GOLDEN = [
    ("This fits on one line.", ("This fits on one line.",)),
    (
        "I told him that we would meet at the station before the last train.",
        ("I told him that we would meet", "at the station before the last train."),
    ),
    (
        "My brother John Smith is not coming to the wedding this weekend.",
        ("My brother John Smith is not coming", "to the wedding this weekend."),
    ),
    (
        "We could have gone to the beach, but it was raining all afternoon.",
        ("We could have gone to the beach,", "but it was raining all afternoon."),
    ),
    (
        "They will never understand why the red car was left in the garage.",
        ("They will never understand", "why the red car was left in the garage."),
    ),
    (
        "If you want to see the results, look at the third column of the table.",
        ("If you want to see the results,", "look at the third column of the table."),
    ),
    (
        "He opened the door and walked into a very dark and narrow hallway.",
        ("He opened the door and walked", "into a very dark and narrow hallway."),
    ),
]

CHINESE_GOLDEN = [
    ("我们明天早上在火车站见面，然后一起去博物馆。", ("我们明天早上在火车站见面", "然后一起去博物馆")),
    ("如果你想看结果的话，请看表格的第三列。", ("如果你想看结果的话", "请看表格的第三列")),
    ("虽然下着大雨，但是我们还是按时到达了机场。", ("虽然下着大雨", "但是我们还是按时到达了机场")),
    ("这个问题非常复杂，我们需要更多的时间来讨论。", ("这个问题非常复杂", "我们需要更多的时间来讨论")),
    ("他说山上那座老房子已经空了很多年了。", ("他说山上那座老房子", "已经空了很多年了")),
    ("好的，我们走吧。", ("好的 我们走吧",)),
    ("“你好，”他说，“我叫李明。”", ("“你好”他说 “我叫李明”",)),
]


@pytest.mark.parametrize("text,expected", ENGLISH_GOLDEN)
def test_english_golden_layouts(text, expected):
    assert layout(text) == expected


@pytest.mark.parametrize("text,expected", CHINESE_GOLDEN)
def test_chinese_golden_layouts(text, expected):
    assert layout(text, "zh") == expected


@pytest.mark.parametrize(
    "left,right,rule",
    [
        ("the", "house", "article+noun"),
        ("a", "car", "article+noun"),
        ("red", "car", "adjective+noun"),
        ("beautiful", "garden", "adjective+noun"),
        ("John", "Smith", "first+last name"),
        ("she", "said", "pronoun+verb"),
        ("will", "go", "auxiliary+verb"),
        ("have", "been", "auxiliary+verb"),
        ("is", "not", "verb+negation"),
        ("did", "not", "verb+negation"),
        ("to", "open", "infinitive"),
        ("very", "good", "intensifier+adjective"),
    ],
)
def test_never_split_pairs_are_poor(left, right, rule):
    assert break_cost_en(["Then", left, right], 2) >= POOR, rule


@pytest.mark.parametrize(
    "left,right",
    [
        ("morning,", "and"),
        ("home.", "She"),
        ("said", "because"),
        ("waited", "for"),
        ("him", "and"),
        ("sat", "on"),
    ],
)
def test_preferred_points_are_cheap(left, right):
    assert break_cost_en(["We", left, right, "them"], 2) < NEUTRAL


@pytest.mark.parametrize(
    "tokens,k", [(["put", "it", "down", "without"], 2), (["half", "of", "them"], 1), (["sat", "down."], 1)]
)
def test_particles_and_of_are_not_preferred(tokens, k):
    assert break_cost_en(tokens, k) >= 20


def test_a_line_never_starts_with_punctuation():
    assert break_cost_en(["yes", "!"], 1) >= 100


def test_chinese_units_follow_jieba_words_and_keep_punctuation_left():
    units = build_units(list("我们明天在火车站见面，好吗？"), "zh")
    assert [u.text for u in units] == ["我们", "明天", "在", "火车站", "见面，", "好", "吗？"]
    assert (units[3].first, units[3].last) == (5, 7)  # 火车站 = recogniser words 5..7


def test_chinese_units_from_multi_character_words():
    units = build_units(["火车", "站", "见面"], "zh")  # a recogniser word boundary inside a jieba word
    assert [u.text for u in units] == ["火车站", "见面"]


def test_chinese_display_line_punctuation():
    assert display_line(["价格是", "3.14", "元，", "好吗?"], "zh") == "价格是3.14元 好吗？"
    assert display_line(["我用", "iPhone", "15", "拍的。"], "zh") == "我用iPhone 15拍的"


def test_no_layout_when_too_long_for_the_lines():
    assert layout("word " * 30) is None
    assert layout("a much too long line for a social caption", preset=resolve_preset("social", "en")) is None


def test_orphans_are_avoided():
    lines = layout("Whatever happens tomorrow we will be ready for the storm that is coming, okay")
    assert all(len(line.split()) > 1 for line in lines)


def test_punctuation_only_words_attach_to_their_neighbours():
    units = build_units(["He", "said", ",", "“", "stop", "”", "."], "en")
    assert [u.text for u in units] == ["He", "said,", "“stop”."]
    assert (units[2].first, units[2].last) == (3, 6)
    assert display_line([u.text for u in units], "en") == "He said, “stop”."
    zh = build_units(["你好", "，", "世界", "。"], "zh")
    assert [u.text for u in zh] == ["你好，", "世界。"]


def test_chinese_punctuation_alone_joins_a_neighbour():
    assert [u.text for u in build_units(["。", "你好"], "zh")] == ["。你好"]
    assert [u.text for u in build_units(["你好", "世界", "，", "。"], "zh")] == ["你好", "世界，。"]


# --- rules added with the fresh evaluation sets (each a general rule, tested on its own)
# ---------------------
@pytest.mark.parametrize(
    "tokens,k,rule",
    [
        (["I", "honestly", "don't", "remember"], 3, "negative contraction + verb"),
        (["we", "can't", "go"], 2, "negative contraction + verb"),
        (["carries", "millions", "of", "tons"], 2, "quantity noun + of"),
        (["the", "desert", "becomes", "surprisingly", "cold"], 3, "linking verb + complement"),
        (["I", "honestly", "don't"], 2, "subject + adverb + verb"),
        (["can't", "tell", "you", "exactly"], 2, "verb + object you"),
        (["they", "wanted", "to", "talk"], 2, "semi-modal + to"),
        (["walk", "more", "than", "fifty"], 2, "more than"),
        (["will", "fly", "south", "before"], 2, "verb + direction"),
    ],
)
def test_new_english_never_split_rules(tokens, k, rule):
    assert break_cost_en(tokens, k) >= 35, rule


def test_focus_adverb_goes_with_the_clause_it_opens():
    tokens = ["tell", "you", "exactly", "what", "happened"]
    assert break_cost_en(tokens, 2) < NEUTRAL  # tell you | exactly what happened
    assert break_cost_en(tokens, 3) >= 35  # not: exactly | what


def _zh_cost(words: list[str], k: int) -> int:
    return break_costs(words, "zh")[k]


@pytest.mark.parametrize(
    "words,k,rule",
    [
        (["来自", "小", "村庄"], 2, "adjective + noun"),
        (["非法", "商贩"], 1, "adjective + noun"),
        (["两百多个", "湖泊"], 1, "numeral + measure word + noun"),
        (["这座", "城市"], 1, "demonstrative + measure + noun"),
        (["已经", "消失"], 1, "adverb + verb"),
        (["孵化", "出来"], 1, "verb + directional complement"),
        (["整理", "成"], 1, "verb + resultative complement"),
        (["上", "世纪", "七十年代"], 2, "time phrase"),
        (["城市", "港口", "历史"], 1, "noun + noun"),
        (["那支", "来自", "小", "村庄", "的", "球队"], 2, "inside a noun phrase"),
        (["把", "书", "放", "在", "桌子", "上"], 3, "one-character verb + 在"),
    ],
)
def test_chinese_never_split_rules(words, k, rule):
    assert _zh_cost(words, k) >= 30, rule


@pytest.mark.parametrize(
    "words,k,rule",
    [
        (["珊瑚礁", "可能", "会"], 1, "subject | modal"),
        (["小镇", "一直", "很难"], 1, "subject | adverb"),
        (["推出", "一个", "展览"], 1, "verb | classifier-led object"),
        (["贝克", "以前", "是"], 1, "name | time adverb"),
        (["数量", "之所以", "多"], 1, "before a conjunction (by part of speech)"),
    ],
)
def test_chinese_preferred_points_are_cheap(words, k, rule):
    assert _zh_cost(words, k) < NEUTRAL, rule


def test_foreign_name_with_interpunct_is_one_unit():
    units = [u.text for u in build_units(list("向导托马斯·贝克以前是军人"), "zh")]
    assert "托马斯·贝克" in units


def test_a_whole_clause_may_stand_alone_on_the_top_line():
    assert layout("说实话，这是我这辈子做过的最艰难的决定。", "zh") == (
        "说实话",
        "这是我这辈子做过的最艰难的决定",
    )


def test_a_time_adverbial_is_a_preferred_point():
    assert break_cost_en(["opened", "this", "restaurant", "twenty", "years", "ago"], 3) < NEUTRAL
    assert break_cost_en(["we", "met", "every", "summer"], 2) < NEUTRAL
    assert break_cost_en(["the", "twenty", "years"], 1) >= POOR  # not after an article
