"""`captionbridge caption --speakers`: end to end on a two-voice recording, and one-line errors for bad
options."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--speakers", "lots"], "--speakers 'lots' is not understood"),
        (["--speakers", "99"], "give 1 to 12 speakers"),
        (["--speaker-names", "Ana,,Ben"], "empty name"),
        (["--speakers", "2", "--speaker-names", "Ana,Ben,Cy"], "3 names for --speakers 2"),
    ],
)
def test_bad_speaker_options_are_one_line_errors(tmp_path, args, needle):
    media = tmp_path / "talk.wav"
    media.write_bytes(b"")
    result = cli("caption", str(media), "--out", str(tmp_path / "o"), "--rate", "25", "-q", *args)
    assert result.returncode == 3, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_two_voices_are_labelled_in_every_format_and_keep_their_names(
    tmp_path, two_voices, base_whisper_model
):
    media = two_voices.save(tmp_path / "media")
    env = {"CAPTIONBRIDGE_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "out"
    result = cli(
        "caption",
        str(media),
        "--out",
        str(out),
        "--rate",
        "25",
        "--model",
        str(base_whisper_model),
        "--language",
        "en",
        "--speakers",
        "auto",
        "--speaker-names",
        "Ana,Ben",
        "--formats",
        "json,srt,vtt,ass,ttml,otio",
        "-q",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    stem = media.stem
    data = json.loads((out / f"{stem}.captions.json").read_text())
    assert data["speakers"] == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Ben"}]
    # every word has a speaker, and it is the true one for nearly all (Whisper's words, the voices' turns)
    truth = two_voices.words
    right = total = 0
    for w in data["words"]:
        assert w["speaker"] in ("S1", "S2")
        mid = (w["start"] + w["end"]) / 2
        ref = min(
            truth, key=lambda r: 0 if r.start <= mid <= r.end else min(abs(r.start - mid), abs(r.end - mid))
        )
        right += ref.speaker == w["speaker"]
        total += 1
    assert right >= 0.95 * total
    for cue in data["cues"]:
        assert 1 <= len(cue["speakers"]) <= 2
        if len(cue["speakers"]) == 2:
            assert all(line.startswith("- ") for line in cue["text"]["en"].split("\n"))
    assert (
        "<v Ana>" in (out / f"{stem}.en.vtt").read_text()
        and "<v Ben>" in (out / f"{stem}.en.vtt").read_text()
    )
    assert "Style: EN Ana" in (out / f"{stem}.en.ass").read_text()
    assert 'ttm:agent="S2"' in (out / f"{stem}.en.ttml").read_text()
    assert '"speakers"' in (out / f"{stem}.captions.otio").read_text()
    check = cli("check", str(out / f"{stem}.en.srt"), "--rate", "25", "--language", "en")
    assert check.returncode == 0, check.stdout + check.stderr

    # a re-caption of the same media without names keeps the ids and the names given last time
    again = cli(
        "caption",
        str(media),
        "--out",
        str(tmp_path / "again"),
        "--rate",
        "25",
        "--model",
        str(base_whisper_model),
        "--language",
        "en",
        "--speakers",
        "2",
        "-q",
        env=env,
    )
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "again" / f"{stem}.captions.json").read_text())
    assert second["speakers"] == data["speakers"]
    assert [w["speaker"] for w in second["words"]] == [w["speaker"] for w in data["words"]]


def test_the_engine_service_takes_speaker_options():
    from captionbridge.plugin.service.errors import BadOption
    from captionbridge.plugin.service.options import validate_options

    assert validate_options(
        {"speakers": "auto", "speaker_names": ["Ana", "Ben"], "speaker_marks": "label"}
    ) == {"speakers": "auto", "speaker_names": ["Ana", "Ben"], "speaker_marks": "label"}
    assert validate_options({"speakers": 3}) == {"speakers": 3}
    assert validate_options({"speakers": "off"}) == {"speakers": None}
    for bad, option in [
        ({"speakers": "many"}, "speakers"),
        ({"speakers": True}, "speakers"),
        ({"speakers": 40}, "speakers"),
        ({"speaker_names": ["Ana", ""]}, "speaker_names"),
        ({"speaker_names": [1]}, "speaker_names"),
        ({"speaker_marks": "colour"}, "speaker_marks"),
        ({"speakers": 1, "speaker_names": ["Ana", "Ben"]}, "speaker_names"),
    ]:
        with pytest.raises(BadOption) as info:
            validate_options(bad)
        assert info.value.details["option"] == option, (bad, str(info.value))
        assert "--" not in str(info.value)  # the service speaks of options, not CLI flags
