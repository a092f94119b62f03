"""Relative media references in the timelines we write become absolute URLs the readers resolve to the same
files; references that are already absolute stay exactly as the editor wrote them (issue 14)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import opentimelineio as otio
import pytest

from captionbridge.adapters.media_rebase import (
    file_url,
    is_relative_reference,
    rebase_otio_media,
    rebase_xmeml_pathurls,
)
from captionbridge.core.timeline.media_paths import media_path_from_url


@pytest.mark.parametrize(
    "url, relative",
    [
        ("media/a.flac", True),
        ("../shared/b c.wav", True),
        ("素材/对白 1.wav", True),
        ("a%20b.wav", True),
        ("/abs/a.wav", False),
        ("file:///abs/a.wav", False),
        ("file://localhost/Volumes/x/a.wav", False),
        ("C:\\Media\\a.wav", False),
        ("D:/Media/a.wav", False),
        ("\\\\server\\share\\a.wav", False),
        ("", False),
    ],
)
def test_which_references_are_relative(url, relative):
    assert is_relative_reference(url) is relative


@pytest.mark.parametrize("name", ["interview a.flac", "素材 对白#1.wav", "100% take.wav"])
def test_file_urls_read_back_to_the_same_path(tmp_path, name):
    path = (tmp_path / "Media folder" / name).resolve()
    for localhost in (False, True):
        assert media_path_from_url(file_url(path, localhost)) == path


def test_otio_media_everywhere_in_the_timeline(tmp_path):
    root = tmp_path / "project"
    tl = otio.schema.Timeline("t")
    track = otio.schema.Track("A1", kind=otio.schema.TrackKind.Audio)
    track.append(otio.schema.Clip("rel", otio.schema.ExternalReference("media/a b.flac")))
    track.append(otio.schema.Clip("abs", otio.schema.ExternalReference("C:\\Media\\x.wav")))
    nest = otio.schema.Stack("nest")
    inner = otio.schema.Track("inner", kind=otio.schema.TrackKind.Audio)
    inner.append(otio.schema.Clip("nested", otio.schema.ExternalReference("../elsewhere/n.wav")))
    nest.append(inner)
    track.append(nest)
    tl.tracks.append(track)
    assert rebase_otio_media(tl, root) == 2
    urls = {c.name: c.media_reference.target_url for c in tl.find_clips()}
    assert media_path_from_url(urls["rel"]) == (root / "media" / "a b.flac").resolve()
    assert media_path_from_url(urls["nested"]) == (tmp_path / "elsewhere" / "n.wav").resolve()
    assert urls["abs"] == "C:\\Media\\x.wav"


def test_xmeml_pathurls(tmp_path):
    root = ET.fromstring(
        "<xmeml><sequence><media><audio><track><clipitem><file id='f1'>"
        "<pathurl>media/a.flac</pathurl></file></clipitem><clipitem><file id='f2'>"
        "<pathurl>file://localhost/Volumes/Media/b.wav</pathurl></file></clipitem></track></audio>"
        "</media></sequence></xmeml>"
    )
    assert rebase_xmeml_pathurls(root, tmp_path) == 1
    first, second = [e.text for e in root.iter("pathurl")]
    assert (
        first.startswith("file://localhost/")
        and media_path_from_url(first) == (tmp_path / "media/a.flac").resolve()
    )
    assert second == "file://localhost/Volumes/Media/b.wav"
    assert Path(media_path_from_url(first)).is_absolute()
