""".otioz bundles are unpacked streaming, with a cap on size and ratio, into the running job's own scratch
folder."""

from __future__ import annotations

import gc
import io
import json
import os
import zipfile

import opentimelineio as otio
import pytest
from fixtures.service import write_wav

from captionbridge.adapters.timeline_read import MAX_UNPACK_RATIO, load_timeline, unpack_bundle
from captionbridge.core.errors import InputError
from captionbridge.core.storage import job_scope


def _bundle(path, media: bytes | None = None, zeros: int = 0):
    tl = otio.schema.Timeline(name="b", global_start_time=otio.opentime.RationalTime(0, 25))
    track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    track.append(
        otio.schema.Clip(
            name="c",
            media_reference=otio.schema.ExternalReference(target_url="media/a.wav"),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(25, 25)
            ),
        )
    )
    tl.tracks.append(track)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("content.otio", otio.adapters.write_to_string(tl, "otio_json"))
        if media is not None:
            zf.writestr("media/a.wav", media)
        if zeros:
            with zf.open("media/zeros.bin", "w", force_zip64=True) as member:
                for _ in range(zeros >> 20):
                    member.write(b"\0" * (1 << 20))
    return path


def test_bundle_unpacks_into_the_jobs_scratch_folder_and_is_removed(tmp_path):
    wav = write_wav(tmp_path / "a.wav", 1.0)
    bundle = _bundle(tmp_path / "ok.otioz", media=wav.read_bytes())
    scratch = tmp_path / "job" / "scratch"
    with job_scope(tmp_path / "job", scratch=scratch):
        loaded = load_timeline(bundle)
    root = loaded.media_root
    assert root.parent == scratch and (root / "media" / "a.wav").read_bytes() == wav.read_bytes()
    assert loaded.resolve_media_path("media/a.wav") == root / "media" / "a.wav"
    del loaded
    gc.collect()
    assert not root.exists()


def test_bomb_is_refused_before_and_while_unpacking(tmp_path):
    bundle = _bundle(tmp_path / "bomb.otioz", zeros=256 * 1024 * 1024)
    assert os.path.getsize(bundle) * MAX_UNPACK_RATIO < 256 * 1024 * 1024
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InputError, match="over the .*-byte limit"):
        unpack_bundle(bundle, dest)
    assert not any(p.is_file() for p in dest.rglob("*"))
    scratch = tmp_path / "scratch"
    with job_scope(tmp_path, scratch=scratch), pytest.raises(InputError):
        load_timeline(bundle)
    assert list(scratch.iterdir()) == []


def test_scope_limit_caps_an_upload(tmp_path):
    bundle = _bundle(
        tmp_path / "big.otioz", media=os.urandom(3 * 1024 * 1024)
    )  # incompressible: ratio about 1
    with job_scope(tmp_path, scratch=tmp_path / "s", unpack_limit=1024 * 1024), pytest.raises(InputError):
        load_timeline(bundle)
    with job_scope(tmp_path, scratch=tmp_path / "s2", unpack_limit=16 * 1024 * 1024):
        assert load_timeline(bundle).timeline.name == "b"


def test_unsafe_member_path_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("content.otio", json.dumps({"OTIO_SCHEMA": "Timeline.1"}))
        zf.writestr("../escape.txt", "x")
    path = tmp_path / "evil.otioz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="unsafe path"):
        unpack_bundle(path, tmp_path / "d")
    assert not (tmp_path / "escape.txt").exists()
