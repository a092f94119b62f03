"""`captionbridge translate` on a captions JSON a person corrected."""

import json

import pytest
from click.testing import CliRunner

from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase
from captionbridge.plugin.cli import cli


@pytest.fixture
def captions_json(tmp_path, offline_env):
    tb = Timebase.from_start_timecode("30000/1001", "01:00:00;00", True)
    cues = [
        Cue(0, 45, {"zh": "我们今天去公园"}),
        Cue(47, 100, {"zh": "然后一起吃午饭"}),
        Cue(160, 220, {"zh": "张伟在字幕桥工作"}),
    ]
    doc = CaptionDocument("interview", tb, "zh", [], cues, ["zh"])
    path = tmp_path / "interview.captions.json"
    path.write_text(json.dumps(doc.to_dict(), ensure_ascii=False), encoding="utf-8")
    return path


def test_translate_writes_a_bilingual_document_beside_the_input_without_overwriting_it(
    tiny_marian, captions_json
):
    before = captions_json.read_text(encoding="utf-8")
    glossary = captions_json.parent / "terms.tsv"
    glossary.write_text("张伟\tZhang Wei\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "translate",
            str(captions_json),
            "--to",
            "en",
            "--model",
            str(tiny_marian["zh-en-ct2"]),
            "--glossary",
            str(glossary),
            "--formats",
            "json,srt",
            "--report",
            str(captions_json.parent / "report.json"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert captions_json.read_text(encoding="utf-8") == before
    out = json.loads((captions_json.parent / "interview-en.captions.json").read_text(encoding="utf-8"))
    assert out["languages"] == ["zh", "en"]
    assert out["timeline"] == {
        "name": "interview",
        "rate": "30000/1001",
        "start_timecode": "01:00:00;00",
        "drop_frame": True,
    }
    assert len(out["cues"]) == 3 and all(set(c["text"]) == {"zh", "en"} for c in out["cues"])
    assert "Zhang Wei" in out["cues"][2]["text"]["en"].replace("\n", " ")
    report = json.loads((captions_json.parent / "report.json").read_text(encoding="utf-8"))
    moved = {r["cue"] for r in report["retimed"]}
    original = json.loads(before)["cues"]
    for i, (a, b) in enumerate(zip(original, out["cues"])):
        if i not in moved:
            assert (a["start_frame"], a["end_frame"]) == (b["start_frame"], b["end_frame"])
    for name in ("interview-en.zh.srt", "interview-en.en.srt", "interview-en.bilingual.srt"):
        assert (captions_json.parent / name).is_file(), name
    assert "3 cues (2 sentences) translated zh->en with opus-mt-zh-en-ct2 (ctranslate2, cpu)" in result.output


def test_translate_to_another_folder_keeps_the_stem(tiny_marian, captions_json, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "translate",
            str(captions_json),
            "--to",
            "en",
            "--model",
            str(tiny_marian["zh-en-ct2"]),
            "--out",
            str(tmp_path / "out"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "interview.captions.json").is_file()


def test_offline_without_a_model_fails_with_instructions(captions_json):
    result = CliRunner().invoke(cli, ["translate", str(captions_json), "--to", "en", "-q"])
    assert result.exit_code == 4
    assert "no zh->en translation model is available offline" in result.output
    assert "--model Helsinki-NLP/opus-mt-zh-en" in result.output
    assert not (captions_json.parent / "interview-en.captions.json").exists()  # nothing untranslated written


@pytest.mark.parametrize(
    "content,needle",
    [
        ("{not json", "is not a captions JSON file"),
        ('{"cues": []}', "does not follow the captions JSON contract"),
        ('{"timeline": {"rate": "25"}, "cues": []}', "has no cues"),
        ('{"timeline": {"rate": "fast"}, "cues": []}', "unreadable frame rate"),
    ],
)
def test_bad_input_files_are_named(tmp_path, content, needle):
    path = tmp_path / "bad.captions.json"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(cli, ["translate", str(path), "--to", "en", "-q"])
    assert result.exit_code == 3 and needle in result.output and str(path) in result.output


def test_translating_into_the_source_language_is_refused(captions_json):
    result = CliRunner().invoke(cli, ["translate", str(captions_json), "--to", "zh", "-q"])
    assert result.exit_code == 3 and "already in zh" in result.output


def test_translate_document_for_the_caption_pipeline(tiny_marian, captions_json):
    from captionbridge.core.errors import ModelNotAvailableError
    from captionbridge.core.progress import Progress
    from captionbridge.core.translate.cues import translate_document

    tb = Timebase(25)
    doc = CaptionDocument(
        "t",
        tb,
        "zh-Hans",
        [],
        [Cue(0, 50, {"zh-Hans": "请关上门坐下。"}), Cue(80, 130, {"zh-Hans": "谢谢。"})],
    )
    seen = []
    progress = Progress({"compose": 1.0, "translate": 1.0}, lambda stage, fraction, eta: seen.append(stage))
    out = translate_document(doc, "en", model=tiny_marian["zh-en-ct2"], progress=progress)
    assert out.languages == ["zh-Hans", "en"] and out.source_language == "zh-Hans"
    assert all(set(c.text) == {"zh-Hans", "en"} for c in out.cues) and "translate" in seen
    assert doc.cues[0].text == {"zh-Hans": "请关上门坐下。"}  # the input document is not changed
    with pytest.raises(ModelNotAvailableError, match="--translation-model Helsinki-NLP/opus-mt-zh-en"):
        translate_document(doc, "en")
