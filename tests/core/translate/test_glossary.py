import json

import pytest

from captionbridge.core.errors import InputError
from captionbridge.core.translate.glossary import Glossary, restore


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_with_language_header_and_comments(tmp_path):
    g = Glossary.load(
        write(
            tmp_path, "terms.tsv", "# people and products\nen\tzh\nZhang Wei\t张伟\n\nCaptionBridge\t字幕桥\n"
        )
    )
    assert len(g) == 2
    assert g.pairs("zh", "en") == [("字幕桥", "CaptionBridge"), ("张伟", "Zhang Wei")]
    assert g.pairs("en", "zh")[0] == ("CaptionBridge", "字幕桥")  # longest first


def test_tsv_without_header_reads_languages_from_the_script(tmp_path):
    g = Glossary.load(write(tmp_path, "terms.txt", "张伟\tZhang Wei\nDaVinci Resolve\t达芬奇\n"))
    assert {"zh": "张伟", "en": "Zhang Wei"} in g.entries
    assert {"en": "DaVinci Resolve", "zh": "达芬奇"} in g.entries


@pytest.mark.parametrize(
    "data",
    [
        [{"zh": "张伟", "en": "Zhang Wei"}],
        {"terms": [{"zh-Hans": "张伟", "en-US": "Zhang Wei"}]},
        {"张伟": "Zhang Wei"},
    ],
)
def test_json_forms(tmp_path, data):
    g = Glossary.load(write(tmp_path, "g.json", json.dumps(data, ensure_ascii=False)))
    assert g.pairs("zh", "en") == [("张伟", "Zhang Wei")]


@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("g.tsv", "", "has no terms"),
        ("g.tsv", "zh\ten\n张伟\n", "line 2"),
        ("g.tsv", "Alpha\tBeta\n", "cannot tell the languages"),
        ("g.json", "{not json", "not valid JSON"),
        ("g.json", '[["a", "b"]]', "term 1"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, name, text, needle):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as err:
        Glossary.load(path)
    assert needle in err.value.message and str(path) in err.value.message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Glossary.load(tmp_path / "nope.tsv")


def test_protect_and_restore_are_deterministic():
    g = Glossary(
        [
            {"en": "Zhang Wei", "zh": "张伟"},
            {"en": "Wei", "zh": "伟"},
            {"en": "CaptionBridge", "zh": "字幕桥"},
        ]
    )
    prot = g.protect("zhang wei met Wei at CaptionBridge; CaptionBridgeX is not a term.", "en", "zh")
    # longest term wins, case-insensitive for English, whole words only
    assert prot.text == "XQ0Z met XQ1Z at XQ2Z; CaptionBridgeX is not a term."
    assert [t for _, _, t in prot.terms] == ["张伟", "伟", "字幕桥"]
    assert restore("XQ0Z在XQ2Z见了XQ 1 Z", prot) == "张伟在字幕桥见了伟"
    assert g.protect("zhang wei met Wei at CaptionBridge; CaptionBridgeX is not a term.", "en", "zh") == prot


def test_restore_refuses_lost_or_doubled_placeholders():
    g = Glossary([{"zh": "张伟", "en": "Zhang Wei"}])
    prot = g.protect("张伟来了。", "zh", "en")
    assert prot.text == "XQ0Z来了。"
    assert restore("He came.", prot) is None
    assert restore("XQ0Z and XQ0Z came.", prot) is None
    assert restore("XQ0Z came.", prot) == "Zhang Wei came."


def test_hotwords_for_transcription():
    g = Glossary([{"zh": "张伟", "en": "Zhang Wei"}, {"zh": "字幕桥", "en": "CaptionBridge"}])
    assert g.hotwords("en") == "Zhang Wei, CaptionBridge"
    assert g.hotwords("zh-Hans") == "张伟，字幕桥"
    assert g.hotwords("fr") == ""
