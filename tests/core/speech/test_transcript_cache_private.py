"""The transcript cache and the media index hold word-level transcripts and source paths: owner-only on
disk."""

from __future__ import annotations

import os
import stat

import pytest

from captionbridge.core.speech.transcript_cache import TranscriptCache, media_fingerprint
from captionbridge.core.storage import job_scope


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_cache_entries_are_owner_only_and_noted_for_the_job(tmp_path):
    media = tmp_path / "media.wav"
    media.write_bytes(b"RIFF" + b"\0" * 100)
    root = tmp_path / "cache"
    old = root / "transcripts" / "ab"
    old.mkdir(parents=True, mode=0o755)
    os.chmod(old, 0o755)  # made by an older version
    with job_scope(tmp_path / "job") as scope:
        digest = media_fingerprint(media, root=root)
        cache = TranscriptCache(root)
        cache.put("ab" + "0" * 62, {"words": ["secret"]}, family="f" * 64, start="0", duration="1")
        cache.put("cd" + "0" * 62, {"words": ["words"]})
    assert digest
    files = [p for p in root.rglob("*") if p.is_file()]
    folders = [p for p in root.rglob("*") if p.is_dir()]
    assert len(files) == 4
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in folders:
        if path.name != "transcripts":  # holds only the two-letter folders, which are 0700
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert scope.cache_files == {str(p) for p in files}
    with job_scope(tmp_path / "job2") as again:  # a later job that reads the same entries owns them too
        media_fingerprint(media, root=root)
        assert TranscriptCache(root).get("ab" + "0" * 62) == {"words": ["secret"]}
    assert len(again.cache_files) == 2
