"""A process that registered its own folders (the engine service) never takes a file in them for media."""

from __future__ import annotations

import pytest

from captionbridge.core.errors import InputError
from captionbridge.core.storage import clear_protected, job_scope, protect_folder, protected_owner
from captionbridge.core.timeline.media_paths import media_path_from_url


@pytest.fixture
def engine_folder(tmp_path):
    folder = tmp_path / "engine-data"
    (folder / "jobs" / "abc" / "input").mkdir(parents=True)
    (folder / "jobs.sqlite3").write_bytes(b"SQLite format 3\0")
    protect_folder(folder, "the engine's data folder")
    yield folder
    clear_protected()


def test_media_in_a_protected_folder_is_refused_symlinks_too(engine_folder, tmp_path):
    link = tmp_path / "innocent.wav"
    link.symlink_to(engine_folder / "jobs.sqlite3")
    for url in ((engine_folder / "jobs.sqlite3").as_uri(), str(link), "../engine-data/jobs.sqlite3"):
        with pytest.raises(InputError, match="never reads its own files"):
            media_path_from_url(url, media_root=tmp_path / "elsewhere")
    ok = tmp_path / "a.wav"
    assert media_path_from_url(ok.as_uri()) == ok


def test_the_running_jobs_own_folder_is_readable(engine_folder):
    own = engine_folder / "jobs" / "abc"
    inside = own / "input" / "media.wav"
    with job_scope(own):
        assert media_path_from_url("media.wav", media_root=own / "input") == inside
        assert protected_owner(engine_folder / "jobs.sqlite3") is not None  # the database stays off limits
    assert protected_owner(inside) is not None
