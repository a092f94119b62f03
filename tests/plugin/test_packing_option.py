"""The packing switch (``core.speech.packing``) as users reach it: ``caption --no-packing`` and the engine
service's ``packing`` option both reach the transcription engine; a non-boolean service value is refused."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fixtures.paths import REPO

from captionbridge.core.errors import InputError
from captionbridge.plugin.cli import cli
from captionbridge.plugin.service.errors import BadOption
from captionbridge.plugin.service.options import validate_options

EXAMPLE = REPO / "examples" / "harbour_interview.xml"


@pytest.fixture
def seen(monkeypatch):
    """What the transcription engine was asked for: records its options and stops the job there (exit 3)."""
    from captionbridge.core.speech import transcribe

    asked = []

    def stop(regions, timebase, options, **kwargs):
        asked.append(options)
        raise InputError("stopped by the test after the options were seen")

    monkeypatch.setattr(transcribe, "transcribe_regions", stop)
    return asked


@pytest.mark.parametrize("flag, packed", [([], True), (["--no-packing"], False)])
def test_caption_no_packing_reaches_the_engine(seen, tmp_path, flag, packed):
    result = CliRunner().invoke(
        cli, ["caption", str(EXAMPLE), "--language", "en", "--out", str(tmp_path / "out"), "-q", *flag]
    )
    assert result.exit_code == 3 and "stopped by the test" in result.output, result.output
    assert [o.pack for o in seen] == [packed]


def test_service_packing_option_is_a_boolean():
    assert validate_options({"packing": False})["packing"] is False
    assert "packing" not in validate_options({})
    with pytest.raises(BadOption, match="packing"):
        validate_options({"packing": "no"})
