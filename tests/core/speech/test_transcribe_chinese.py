"""Chinese output for captions: Simplified script, one timed unit per character, punctuation at pauses."""

from __future__ import annotations

import pytest

from captionbridge.core.speech.chinese_text import (
    fullwidth_punctuation,
    normalise_chinese,
    punctuate,
    split_characters,
    to_simplified,
)


def test_traditional_becomes_simplified_and_latin_is_untouched():
    assert to_simplified("這個節目非常有意思") == "这个节目非常有意思"
    assert to_simplified("Hello, world") == "Hello, world"


def test_ascii_punctuation_next_to_chinese_is_full_width():
    assert fullwidth_punctuation("你好, 世界?") == "你好，世界？"
    assert fullwidth_punctuation("版本 2.5 很好.") == "版本 2.5 很好。"


def test_words_split_into_characters_sharing_the_time():
    units = split_characters("天氣好，", 1.0, 1.6, 0.9)
    assert [u[0] for u in units] == ["天", "氣", "好，"]
    assert units[0][1:3] == (1.0, pytest.approx(1.2)) and units[-1][2] == pytest.approx(1.6)
    assert [u[0] for u in split_characters("用AI做", 0, 0.3, 1)] == ["用", "AI", "做"]


def test_pauses_get_clause_and_sentence_marks():
    units = [
        ("今", 0.0, 0.2, 1),
        ("天", 0.2, 0.4, 1),
        ("好", 0.4, 0.6, 1),
        ("吗", 0.6, 0.8, 1),
        ("我", 1.1, 1.3, 1),
        ("们", 1.3, 1.5, 1),
        ("走", 2.5, 2.7, 1),
    ]
    text = "".join(u[0] for u in punctuate(units))
    assert text == "今天好吗，我们。走。"


def test_whisper_words_to_caption_units():
    words = [("這個", 0.0, 0.4, 0.9), ("節目", 0.4, 0.8, 0.8), (",", 0.8, 0.8, 0.9), ("很好", 1.5, 1.9, 0.7)]
    units = normalise_chinese(words, simplified=True)
    assert [u[0] for u in units] == ["这", "个", "节", "目，", "很", "好。"]
    assert all(a[1] <= b[1] for a, b in zip(units, units[1:]))
    kept = normalise_chinese(words, simplified=False)
    assert kept[0][0] == "這"


def test_question_particle_before_a_long_pause_gets_a_question_mark():
    units = [("你", 0.0, 0.2, 1), ("好", 0.2, 0.4, 1), ("吗", 0.4, 0.6, 1), ("好", 2.0, 2.2, 1)]
    assert "".join(u[0] for u in punctuate(units)) == "你好吗？好。"
