"""`captionbridge caption`, `render-audio` and `inspect` as a new user meets them (issue 14): user and
environment mistakes are exit 3 with a sentence saying what to do, checked before any transcription; written
timelines open from where they were written; a failed or empty run never replaces earlier outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest
from fixtures.paths import REPO

EXAMPLE = REPO / "examples"
END_FRAME = 1415  # the bundled example's last frame (exclusive)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One transcript cache for the module: the example is transcribed once, later runs reuse it."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def unwritable_dir(tmp_path):
    """A real folder nobody can write into: permissions for a normal user; for root (who ignores them) the
    folder is made immutable, and where even that is not allowed, a folder under /sys (read-only for
    everyone)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            if shutil.which("chattr")
            else False
        )
    target = folder if (not os.access(folder, os.W_OK) or immutable) else Path("/sys/captionbridge-test")
    try:
        (target / "probe").write_bytes(b"")
    except OSError:
        pass
    else:  # pragma: no cover - nothing on this machine is unwritable
        pytest.fail("could not make an unwritable folder on this machine")
    yield target
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    folder.chmod(0o755)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return lines[0]


# -- outputs and cache are checked first
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_out_that_cannot_be_written_is_exit_3_before_anything_else(tmp_path, unwritable_dir, where):
    """Issue 14: these were exit 70 ("a CaptionBridge bug"), raised after transcription. Passing a model that
    does not exist shows the order: the --out problem is reported, so nothing was loaded or transcribed before
    it."""
    afile = tmp_path / "captions.srt"
    afile.write_text("earlier work\n")
    out = {"file": afile, "under-file": afile / "sub", "unwritable": unwritable_dir / "out"}[where]
    result = cli(
        "caption", EXAMPLE / "harbour_interview.xml", "--out", out, "--model", tmp_path / "no-model", "-q"
    )
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert f"cannot write captions into {out}" in line and "pass --out a folder you can write to" in line
    assert "no-model" not in line
    assert afile.read_text() == "earlier work\n"


@pytest.mark.parametrize("where", ["under-file", "unwritable"])
def test_unwritable_cache_folder_is_exit_3(tmp_path, unwritable_dir, where):
    afile = tmp_path / "afile"
    afile.write_text("x")
    cache = afile / "cache" if where == "under-file" else unwritable_dir / "cache"
    result = cli(
        "caption",
        EXAMPLE / "harbour_interview.xml",
        "--out",
        tmp_path / "out",
        "-q",
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache)},
    )
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert f"cannot use the cache folder {cache}" in line and "CAPTIONBRIDGE_CACHE_DIR" in line
    assert not (tmp_path / "out").exists()  # a failed job leaves no empty folder behind


@pytest.mark.parametrize("where", ["unwritable", "under-file"])
def test_render_audio_output_that_cannot_be_written_is_exit_3(tmp_path, unwritable_dir, where):
    """Issue 14: render-audio -o in a read-only folder was an internal error (exit 70)."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    target = {"unwritable": unwritable_dir / "mix.wav", "under-file": afile / "mix.wav"}[where]
    result = cli("render-audio", EXAMPLE / "harbour_interview.xml", "-o", target, "-q")
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert f"cannot write {target}" in line and "pass -o a WAV file" in line
    # -o naming a folder is a usage error, caught by the command line itself (exit 2, as the README's table
    # says)
    folder = cli("render-audio", EXAMPLE / "harbour_interview.xml", "-o", tmp_path, "-q")
    assert folder.returncode == 2 and "is a directory" in folder.stderr


@pytest.mark.parametrize("language", ["fr", "xx", "de"])
def test_languages_the_pipeline_cannot_caption_are_refused_up_front(tmp_path, language):
    """Issue 14: --language fr was accepted (French came out as "j 'ai"), --language xx failed with exit 70
    after the model had loaded. Both are exit 3 before anything is loaded (the missing model is never
    reached)."""
    result = cli(
        "caption",
        EXAMPLE / "harbour_interview.xml",
        "--out",
        tmp_path / "o",
        "--language",
        language,
        "--model",
        tmp_path / "no-model",
        "-q",
    )
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert f"unsupported language {language!r}" in line and "--language auto, en or zh" in line
    assert not (tmp_path / "o").exists()


def test_service_refuses_the_same_languages():
    from captionbridge.plugin.service.errors import BadOption
    from captionbridge.plugin.service.options import validate_options

    assert validate_options({"language": "ZH"})["language"] == "zh"
    with pytest.raises(BadOption, match="unsupported language 'fr'"):
        validate_options({"language": "fr"})


# -- small things
# -----------------------------------------------------------------------------------------------
def test_inspect_labels_each_audio_track_by_its_number():
    """Issue 14: every audio track of an OTIO was labelled "A0" (labels looked up by id() of OTIO
    wrappers)."""
    result = cli("inspect", EXAMPLE / "harbour_interview.otio", "--json")
    assert result.returncode == 0, result.stderr
    tracks = [t["track"] for t in json.loads(result.stdout)["tracks"]]
    assert tracks == ["V1", "A1", "A2"]


def test_help_explains_absolute_times_and_lists_presets():
    result = cli("caption", "--help")
    text = " ".join(result.stdout.split())
    assert "--absolute-times SRT/VTT/ASS times include the timeline's start timecode" in text
    assert "netflix|netflix-en|netflix-zh|broadcast|social" in text


def test_models_hint_names_the_caption_option_for_translation_models(tmp_path):
    result = cli(
        "models", env={"CAPTIONBRIDGE_CACHE_DIR": str(tmp_path), "CAPTIONBRIDGE_TRANSLATION_MODELS": ""}
    )
    assert result.returncode == 0, result.stderr
    if "no translation model installed" in result.stdout:
        assert "caption --translation-model" in result.stdout


# -- the real job on the bundled example
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def first_run(tmp_path_factory, cache_dir, base_whisper_model):
    """The README's command (every timeline format), with the progress bar on (stderr is a pipe here)."""
    out = tmp_path_factory.mktemp("first") / "out"
    result = cli(
        "caption",
        EXAMPLE / "harbour_interview.xml",
        "--tracks",
        "A1",
        "--language",
        "en",
        "--out",
        out,
        "--model",
        base_whisper_model,
        "--device",
        "cpu",
        "--formats",
        "json,srt,otio,fcpxml,xmeml",
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_progress_bar_stays_off_a_pipe(first_run):
    """Issue 14: progress bars were written to stderr when it is not a terminal (logs filled with \\r
    lines)."""
    _, result = first_run
    assert "\r" not in result.stderr and "captioning" not in result.stderr


@pytest.mark.slow
def test_nothing_ends_after_the_timeline_and_words_never_overlap(first_run):
    """Issue 14: the last cue ended at 1417 on a 1415-frame edit (OTIO subtitle track, FCPXML and xmeml came
    out longer than the edit), and 25 of 129 adjacent word pairs overlapped in frames."""
    import opentimelineio as otio

    out, _ = first_run
    data = json.loads((out / "harbour_interview.captions.json").read_text())
    assert data["cues"][-1]["end_frame"] <= END_FRAME and all(
        c["end_frame"] <= END_FRAME for c in data["cues"]
    )
    words = data["words"]
    assert all(a["end_frame"] <= b["start_frame"] for a, b in zip(words, words[1:]))
    assert all(w["end_frame"] <= END_FRAME for w in words)

    tl = otio.adapters.read_from_file(str(out / "harbour_interview.captions.otio"), adapter_name="otio_json")
    assert all(round(t.duration().to_frames()) <= END_FRAME for t in tl.tracks)
    seq = ET.parse(out / "harbour_interview.titles.xml").getroot().find(".//sequence")
    assert int(seq.findtext("duration")) == END_FRAME
    assert max(int(e.text) for e in seq.iter("end")) <= END_FRAME
    fcpxml = ET.parse(out / "harbour_interview.captions.fcpxml").getroot()
    sequence = fcpxml.find(".//sequence")
    num, den = sequence.get("duration").rstrip("s").split("/")
    assert Fraction(int(num), int(den)) <= Fraction(END_FRAME * 1001, 24000)


@pytest.mark.slow
def test_written_timelines_open_from_where_they_were_written(
    first_run, cache_dir, base_whisper_model, tmp_path
):
    """Issue 14: the OTIO and xmeml kept relative media/... paths, so opened from --out their media was
    missing (inspect said "Missing media: 3" and captioning them again exited 3). Caption our own outputs:
    same cues."""
    out, _ = first_run
    first = json.loads((out / "harbour_interview.captions.json").read_text())["cues"]
    moved = tmp_path / "elsewhere"
    shutil.copytree(out, moved)  # and from another folder still
    for folder in (out, moved):
        for name in ("harbour_interview.captions.otio", "harbour_interview.titles.xml"):
            inspected = cli("inspect", folder / name, "--json")
            assert inspected.returncode == 0, inspected.stderr
            info = json.loads(inspected.stdout)
            assert info["missing_media"] == [] and len(info["audio_regions"]) == 3, name
    for name in ("harbour_interview.captions.otio", "harbour_interview.titles.xml"):
        again = tmp_path / ("again-" + name)
        result = cli(
            "caption",
            moved / name,
            "--tracks",
            "A1",
            "--language",
            "en",
            "--out",
            again,
            "-q",
            "--model",
            base_whisper_model,
            "--device",
            "cpu",
            env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
        )
        assert result.returncode == 0, result.stderr
        (written,) = again.glob("*.captions.json")
        assert json.loads(written.read_text())["cues"] == first, name


@pytest.mark.slow
def test_missing_media_advice_once_and_all_missing_is_exit_3_keeping_earlier_outputs(
    first_run, cache_dir, base_whisper_model, tmp_path
):
    """Issue 14: with --allow-missing and every clip missing, the run exited 0, wrote an empty .und.srt and
    replaced the earlier captions.json; the advice was printed twice and still suggested --allow-missing."""
    out, _ = first_run
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    work = tmp_path / "proj"
    (work / "media").mkdir(parents=True)
    shutil.copy(EXAMPLE / "harbour_interview.xml", work)
    result = cli(
        "caption",
        work / "harbour_interview.xml",
        "--tracks",
        "A1",
        "--language",
        "en",
        "--out",
        out,
        "--allow-missing",
        "-q",
        "--model",
        base_whisper_model,
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert "nothing to caption" in line and "interview_a.flac" in line and "--allow-missing" not in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier

    shutil.copy(EXAMPLE / "media" / "interview_a.flac", work / "media")  # one of two A1 clips back
    some = cli(
        "caption",
        work / "harbour_interview.xml",
        "--tracks",
        "A1",
        "--language",
        "en",
        "--out",
        tmp_path / "some",
        "--allow-missing",
        "-q",
        "--model",
        base_whisper_model,
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert some.returncode == 0, some.stderr
    assert some.stderr.count("interview_b.flac") == 1 and "--allow-missing" not in some.stderr
    without = cli(
        "caption",
        work / "harbour_interview.xml",
        "--tracks",
        "A1",
        "--language",
        "en",
        "--out",
        tmp_path / "none",
        "-q",
        "--model",
        base_whisper_model,
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert without.returncode == 3
    assert one_line_error(without).count("--allow-missing") == 1


@pytest.mark.slow
def test_a_run_that_hears_no_speech_keeps_the_earlier_captions(tmp_path, cache_dir, base_whisper_model):
    from fixtures.timelines import ClipSpec, SequenceSpec, write_click_wav, write_xmeml

    silence = write_click_wav(tmp_path / "room tone.wav", 6, [], sample_rate=48000, noise=0.0005)
    seq = SequenceSpec.at("Quiet", Fraction(25), "10:00:00:00", [ClipSpec(0, 150, silence.path, track="A1")])
    timeline = write_xmeml(tmp_path / "quiet.xml", seq)
    out = tmp_path / "out"
    out.mkdir()
    (out / "quiet.captions.json").write_text('{"earlier": true}')
    (out / "quiet.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHand-made.\n")
    result = cli(
        "caption",
        timeline,
        "--language",
        "en",
        "--out",
        out,
        "-q",
        "--model",
        base_whisper_model,
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert result.returncode == 0, result.stderr
    assert "no speech was found" in result.stderr and "kept the earlier" in result.stderr
    assert (out / "quiet.captions.json").read_text() == '{"earlier": true}'
    assert "Hand-made." in (out / "quiet.en.srt").read_text()


def test_translate_out_that_cannot_be_written_is_exit_3_before_a_model_is_looked_for(
    tmp_path, unwritable_dir
):
    from captionbridge.core.model import CaptionDocument, Cue
    from captionbridge.core.timeline.timebase import Timebase

    doc = CaptionDocument(
        "t", Timebase(25), "en", cues=[Cue(0, 50, {"en": "Hello there."})], languages=["en"]
    )
    captions = tmp_path / "t.captions.json"
    captions.write_text(json.dumps(doc.to_dict()))
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile / "sub", unwritable_dir / "sub"):
        result = cli(
            "translate",
            captions,
            "--to",
            "zh",
            "--out",
            out,
            "--model",
            tmp_path / "no-model",
            env={"CAPTIONBRIDGE_OFFLINE": "1"},
        )
        assert result.returncode == 3, result.stderr
        line = one_line_error(result)
        assert f"cannot write the translation into {out}" in line and "no-model" not in line


@pytest.mark.slow
def test_a_folder_in_the_way_of_one_output_replaces_nothing(
    first_run, cache_dir, base_whisper_model, tmp_path
):
    out, _ = first_run
    target = tmp_path / "out"
    shutil.copytree(out, target)
    (target / "harbour_interview.en.srt").unlink()
    (target / "harbour_interview.en.srt").mkdir()
    (target / "harbour_interview.captions.json").write_text('{"earlier": true}')
    result = cli(
        "caption",
        EXAMPLE / "harbour_interview.xml",
        "--tracks",
        "A1",
        "--language",
        "en",
        "--out",
        target,
        "-q",
        "--model",
        base_whisper_model,
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert result.returncode == 3, result.stderr
    assert "a folder of that name is in the way" in one_line_error(result)
    assert (target / "harbour_interview.captions.json").read_text() == '{"earlier": true}'
    assert not [p for p in target.iterdir() if p.name.startswith(".captionbridge-")]


@pytest.mark.slow
def test_speech_detected_in_a_language_we_do_not_caption_is_exit_3(tmp_path, cache_dir, base_whisper_model):
    """With --language auto, French speech used to come out as French captions joined the English way ("j
    'ai", "Qu 'est -ce"). It is refused with a sentence saying what to do, and nothing is written."""
    wav = tmp_path / "bonjour.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            "fr",
            "-w",
            str(wav),
            "Bonjour à tous. Je m'appelle Marie et j'habite à "
            "Paris depuis dix ans. Qu'est-ce que vous faites aujourd'hui?",
        ],
        check=True,
    )
    result = cli(
        "caption",
        wav,
        "--rate",
        "25",
        "--out",
        tmp_path / "out",
        "-q",
        "--model",
        base_whisper_model,
        env={"CAPTIONBRIDGE_CACHE_DIR": str(cache_dir)},
    )
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert "detected as 'fr'" in line and "pass --language en or --language zh" in line
    assert not (tmp_path / "out").exists()
