"""The main job end to end: the bundled example (xmeml and OTIO) through the real pipeline and the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pysubs2
import pytest
from fixtures.paths import REPO, SHARED_DATA, shared_file

from captionbridge.core.captions.presets import resolve_preset
from captionbridge.core.captions.validate import validate_cues
from captionbridge.core.model import CaptionDocument
from captionbridge.core.pipeline import CaptionOptions
from captionbridge.plugin.caption_job import run_caption_job

EXAMPLE = REPO / "examples"
SCRIPT_WORDS = set(
    re.findall(
        r"[a-z]+",
        (EXAMPLE / "make_example.py")
        .read_text()
        .split("TEXT_A = (")[1]
        .split("def speak")[0]
        .replace("TEXT_B", "")
        .lower(),
    )
)


@pytest.fixture(scope="module", autouse=True)
def example_cache(tmp_path_factory):
    """One transcript cache for this module: the example's media is transcribed once by the base model, and
    the CLI runs below reuse it (as an editor's re-runs would)."""
    import os

    old = os.environ.get("CAPTIONBRIDGE_CACHE_DIR")
    os.environ["CAPTIONBRIDGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("CAPTIONBRIDGE_CACHE_DIR", None)
    else:
        os.environ["CAPTIONBRIDGE_CACHE_DIR"] = old


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def hard(cues, doc: CaptionDocument, language: str):
    return [
        v
        for v in validate_cues(cues, doc.timebase, resolve_preset("netflix-en", language), language)
        if v.severity == "hard"
    ]


@pytest.mark.slow
def test_bundled_example_captions_the_same_from_xmeml_and_otio(tmp_path, base_whisper_model):
    options = {
        "language": "en",
        "tracks": ["A1"],
        "model": str(base_whisper_model),
        "formats": ["json", "srt", "vtt", "otio", "fcpxml"],
    }
    from_xml = run_caption_job(EXAMPLE / "harbour_interview.xml", tmp_path / "xml", options)
    from_otio = run_caption_job(EXAMPLE / "harbour_interview.otio", tmp_path / "otio", options)

    doc = CaptionDocument.from_dict(from_xml["document"])
    assert from_xml["document"]["timeline"] == {
        "name": "Harbour interview",
        "rate": "24000/1001",
        "start_timecode": "01:00:00:00",
        "drop_frame": False,
    }
    assert [(c["start_frame"], c["end_frame"]) for c in from_xml["document"]["cues"]] == [
        (c["start_frame"], c["end_frame"]) for c in from_otio["document"]["cues"]
    ]
    assert sorted(from_xml["files"]) == sorted(
        [
            "harbour_interview.captions.json",
            "harbour_interview.en.srt",
            "harbour_interview.en.vtt",
            "harbour_interview.captions.otio",
            "harbour_interview.captions.fcpxml",
        ]
    )
    assert len(doc.cues) >= 8 and not hard(doc.cues, doc, "en")

    # Real speech, real model: most of the script's words come back, all within the edit (1415 frames).
    heard = set(re.findall(r"[a-z]+", " ".join(c.text["en"] for c in doc.cues).lower()))
    assert len(heard & SCRIPT_WORDS) >= 0.75 * len(SCRIPT_WORDS)
    assert all(0 <= w.start_frame < w.end_frame <= 1415 for w in doc.words)
    # No word is placed inside the 36-frame gap between the two interviews.
    import opentimelineio as otio

    a1 = [
        t
        for t in otio.adapters.read_from_file(str(EXAMPLE / "harbour_interview.otio")).audio_tracks()
        if t.name == "A1"
    ][0]
    gap = a1.range_of_child_at_index(1)
    gap_lo, gap_hi = round(gap.start_time.value), round(gap.end_time_exclusive().value)
    assert not [w.text for w in doc.words if gap_lo <= w.start_frame and w.end_frame <= gap_hi]
    assert any(w.end_frame <= gap_lo for w in doc.words) and any(w.start_frame >= gap_hi for w in doc.words)

    # Every word of every cue is in the words list, and every cue shows words (nothing lost on the way).
    cue_text = " ".join(c.text["en"].replace("\n", " ") for c in doc.cues).split()
    assert len(cue_text) == len(doc.words)

    # The SRT lands on the same frames when an editor floors its milliseconds.
    subs = pysubs2.load(str(tmp_path / "xml" / "harbour_interview.en.srt"))
    assert [(doc.timebase.frame_from_ms(e.start), doc.timebase.frame_from_ms(e.end)) for e in subs] == [
        (c.start_frame, c.end_frame) for c in doc.cues
    ]


@pytest.mark.slow
def test_caption_cli_writes_every_format(tmp_path, base_whisper_model):
    out = tmp_path / "out dir"
    result = cli(
        "caption",
        str(EXAMPLE / "harbour_interview.otio"),
        "--out",
        str(out),
        "--language",
        "en",
        "--tracks",
        "A1",
        "--model",
        str(base_whisper_model),
        "--device",
        "cpu",
        "-q",
        "--formats",
        "json,srt,vtt,ass,ttml,otio,fcpxml,xmeml",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "harbour_interview.captions.json").read_text())
    assert data["timeline"]["start_timecode"] == "01:00:00:00"
    for cue in data["cues"]:
        assert isinstance(cue["start_frame"], int) and cue["end_frame"] > cue["start_frame"]
    names = {p.name for p in out.iterdir()}
    assert {
        "harbour_interview.captions.json",
        "harbour_interview.en.srt",
        "harbour_interview.en.vtt",
        "harbour_interview.en.ass",
        "harbour_interview.en.ttml",
        "harbour_interview.captions.otio",
        "harbour_interview.captions.fcpxml",
        "harbour_interview.titles.xml",
    } <= names
    assert not [n for n in names if n.startswith(".captionbridge-")], "staging folder left behind"


@pytest.mark.slow
def test_missing_media_is_listed_with_clip_and_timecode_and_nothing_is_written(tmp_path, base_whisper_model):
    work = tmp_path / "proj"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("*.py"))
    (work / "media" / "interview_b.flac").unlink()
    result = cli(
        "caption",
        str(work / "harbour_interview.xml"),
        "--out",
        str(tmp_path / "o"),
        "--tracks",
        "A1",
        "--model",
        str(base_whisper_model),
        "-q",
    )
    assert result.returncode == 3
    assert (
        "interview_b.flac" in result.stderr and "Interview B" in result.stderr and "01:00:" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())

    allowed = cli(
        "caption",
        str(work / "harbour_interview.xml"),
        "--out",
        str(tmp_path / "o2"),
        "--tracks",
        "A1",
        "--model",
        str(base_whisper_model),
        "--language",
        "en",
        "--allow-missing",
        "-q",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "interview_b.flac" in allowed.stderr
    data = json.loads((tmp_path / "o2" / "harbour_interview.captions.json").read_text())
    assert any("interview_b.flac" in w for w in data["warnings"])


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["--formats", "srt,docx"], 3, "docx"),
        (["--tracks", "A7"], 3, "A7"),
        (["--model", "/nowhere/model"], 3, "/nowhere/model"),
    ],
)
def test_bad_options_fail_with_one_clear_line(tmp_path, args, code, needle):
    result = cli(
        "caption", str(EXAMPLE / "harbour_interview.otio"), "--out", str(tmp_path / "o"), "-q", *args
    )
    assert result.returncode == code, (result.returncode, result.stderr)
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_timeline_is_a_one_line_error(tmp_path):
    bad = tmp_path / "broken.otio"
    bad.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    result = cli("caption", str(bad), "--out", str(tmp_path / "o"), "-q")
    assert result.returncode == 3 and "broken.otio" in result.stderr and "Traceback" not in result.stderr


def test_options_reject_unknown_keys():
    with pytest.raises(Exception, match="unknown option"):
        CaptionOptions.from_dict({"langauge": "en"})


@pytest.mark.slow
def test_caption_translate_to_zh_writes_bilingual_files_with_identical_timing(
    tmp_path, base_whisper_model, tiny_marian
):
    out = tmp_path / "bi"
    result = cli(
        "caption",
        str(EXAMPLE / "harbour_interview.otio"),
        "--out",
        str(out),
        "--language",
        "en",
        "--tracks",
        "A1",
        "--model",
        str(base_whisper_model),
        "--translate-to",
        "zh",
        "--translation-model",
        str(tiny_marian["en-zh-ct2"]),
        "--formats",
        "json,srt,ass",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "harbour_interview.captions.json").read_text())
    assert data["languages"] == ["en", "zh"]
    assert all(set(c["text"]) == {"en", "zh"} and c["text"]["zh"].strip() for c in data["cues"])
    en = pysubs2.load(str(out / "harbour_interview.en.srt"))
    zh = pysubs2.load(str(out / "harbour_interview.zh.srt"))
    bi = pysubs2.load(str(out / "harbour_interview.bilingual.srt"))
    assert [(e.start, e.end) for e in en] == [(e.start, e.end) for e in zh] == [(e.start, e.end) for e in bi]
    assert (out / "harbour_interview.bilingual.ass").exists()


def test_translation_without_a_model_is_a_clear_error_not_untranslated_text(offline_env):
    from captionbridge.core.errors import ModelNotAvailableError
    from captionbridge.core.model import Cue
    from captionbridge.core.timeline.timebase import Timebase
    from captionbridge.core.translate.cues import translate_document

    doc = CaptionDocument(
        "t", Timebase("24000/1001"), "en", cues=[Cue(0, 48, {"en": "Hello there."})], languages=["en"]
    )
    with pytest.raises(ModelNotAvailableError, match="opus-mt-en-zh|--translation-model"):
        translate_document(doc, "zh")


JFK = SHARED_DATA / "jfk.flac"
JFK_REFERENCE = (
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
).split()


@pytest.mark.slow
def test_a_bare_recording_is_captioned_on_the_given_clock(tmp_path, base_whisper_model):
    shared_file("jfk.flac")
    no_rate = cli("caption", str(JFK), "--out", str(tmp_path / "x"), "-q")
    assert no_rate.returncode == 3 and "--rate" in no_rate.stderr and "Traceback" not in no_rate.stderr

    result = cli(
        "caption",
        str(JFK),
        "--out",
        str(tmp_path / "o"),
        "--rate",
        "25",
        "--start-timecode",
        "10:00:00:00",
        "--model",
        str(base_whisper_model),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "o" / "jfk.captions.json").read_text())
    assert data["timeline"] == {
        "name": "jfk",
        "rate": "25",
        "start_timecode": "10:00:00:00",
        "drop_frame": False,
    }
    assert data["source_language"] == "en"
    heard = re.findall(r"[a-z]+", " ".join(w["text"] for w in data["words"]).lower())
    import difflib

    matched = sum(b.size for b in difflib.SequenceMatcher(a=JFK_REFERENCE, b=heard).get_matching_blocks())
    assert matched >= 0.85 * len(JFK_REFERENCE)  # real speech, real model: a loose word-error bound
    assert all(0 <= w["start_frame"] < w["end_frame"] <= 275 for w in data["words"])  # 11 s at 25 fps
    assert data["cues"][0]["start_timecode"].startswith("10:00:00:")

    clocked = cli(
        "caption", str(EXAMPLE / "harbour_interview.otio"), "--out", str(tmp_path / "y"), "--rate", "25", "-q"
    )
    assert clocked.returncode == 3 and "bare media" in clocked.stderr
