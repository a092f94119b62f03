"""`captionbridge render-audio` and `captionbridge inspect` from the command line (real process, real
files)."""

import json
import subprocess
import sys

import soundfile as sf
from fixtures.timelines import ClipSpec, SequenceSpec, find_clicks, write_click_wav, write_otio, write_xmeml


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _timeline(tmp_path, missing=False):
    a = write_click_wav(tmp_path / "素材 media" / "voice one.wav", 6, [1.0, 2.0])
    b = write_click_wav(tmp_path / "素材 media" / "music.wav", 6, [3.0])
    clips = [
        ClipSpec(0, 100, a.path, track="A1", name="voice"),
        ClipSpec(0, 150, b.path, track="A2", name="music"),
        ClipSpec(100, 120, a.path, track="A1", name="off", enabled=False),
        ClipSpec(0, 150, a.path, track="V1", name="pic"),
        ClipSpec(150, 180, a.path, track="V1", name="pic2"),
    ]
    if missing:
        clips.append(ClipSpec(150, 180, tmp_path / "lost 丢失.wav", track="A1", name="lost"))
    seq = SequenceSpec.at("CLI test", "30000/1001", "01:00:00;00", clips, drop_frame=True)
    return write_xmeml(tmp_path / "cli.xml", seq)


def test_render_audio_writes_the_mix_and_respects_tracks(tmp_path):
    tl = _timeline(tmp_path)
    out = tmp_path / "mix.wav"
    res = run("render-audio", tl, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "29.97 DF" in res.stdout
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 16000 and len(find_clicks(data, 0.2)) == 3
    res = run("render-audio", tl, "-o", out, "--tracks", "A1", "--sample-rate", "48000")
    assert res.returncode == 0, res.stderr
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 48000 and find_clicks(data, 0.2) == [48000, 96000]


def test_render_audio_errors_are_one_line(tmp_path):
    tl = _timeline(tmp_path, missing=True)
    out = tmp_path / "mix.wav"
    res = run("render-audio", tl, "-o", out)
    assert res.returncode == 3 and not out.exists()
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "lost 丢失.wav" in res.stderr and "01:00:05;00" in res.stderr and "--allow-missing" in res.stderr
    res = run("render-audio", tl, "-o", out, "--allow-missing")
    assert res.returncode == 0 and out.exists()
    assert "missing" in res.stderr and "lost 丢失.wav" in res.stderr
    res = run("render-audio", tl, "-o", out, "--tracks", "A9")
    assert res.returncode == 3 and "no audio track 'A9'" in res.stderr
    bad = tmp_path / "bad.xml"
    bad.write_text("<xmeml><sequence>", encoding="utf-8")
    res = run("render-audio", bad, "-o", out)
    assert res.returncode == 3 and "not well-formed" in res.stderr and "Traceback" not in res.stderr
    # a timeline with no audio at all
    silent = SequenceSpec.at(
        "Pictures", "25", "00:00:00:00", [ClipSpec(0, 50, tmp_path / "v.mov", track="V1")]
    )
    res = run("render-audio", write_otio(tmp_path / "pic.otio", silent), "-o", out)
    assert res.returncode == 3 and "no audible audio clips" in res.stderr


def test_inspect_text_and_json(tmp_path):
    tl = _timeline(tmp_path, missing=True)
    res = run("inspect", tl)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    for needle in (
        "CLI test",
        "29.97 fps (30000/1001)",
        "01:00:00;00 (frame 107892)",
        "Drop-frame:   yes",
        "A1",
        "A2",
        "V1",
        "voice",
        "music",
        "off: disabled",
        "Missing media: 1",
        "lost 丢失.wav",
        "Video cut points: 1",
    ):
        assert needle in text, needle
    res = run("inspect", tl, "--json")
    data = json.loads(res.stdout)
    assert data["rate"] == "30000/1001" and data["drop_frame"] is True and data["start_frame"] == 107892
    assert data["start_timecode"] == "01:00:00;00" and data["format"] == "fcp_xml"
    assert [t["track"] for t in data["tracks"]] == ["V1", "A1", "A2"]
    assert data["clip_counts"] == {"video": 2, "audio": 4, "disabled": 1, "nested": 0}
    assert [r["clip"] for r in data["audio_regions"]] == ["voice", "music", "lost"]
    assert (
        data["missing_media"][0]["clip"] == "lost" and data["missing_media"][0]["timecode"] == "01:00:05;00"
    )
    assert data["silent_clips"][0]["reason"] == "disabled"
    assert data["video_cut_points"] == [150]
    res = run("inspect", tl, "--json", "--tracks", "A2")
    assert [r["clip"] for r in json.loads(res.stdout)["audio_regions"]] == ["music"]


def test_help_lists_the_commands():
    res = run("--help")
    assert "render-audio" in res.stdout and "inspect" in res.stdout
