"""The README's exit-code table is the code's (``core.errors.EXIT_CODES``), and each code is what the CLI
really exits with (issue 14: the README said unknown options exit 3, click exits 2)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from fixtures.paths import REPO

from captionbridge.core import errors
from captionbridge.core.errors import EXIT_CODES, CaptionBridgeError, exit_code_table

EXAMPLE = REPO / "examples" / "harbour_interview.otio"


def readme_table() -> dict[int, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- exit-codes:start -->\n(.*?)\n<!-- exit-codes:end -->", text, re.S)
    assert match, "README.md has no exit-code table between <!-- exit-codes:start/end --> markers"
    block = match.group(1)
    assert block == exit_code_table(), (
        "README's exit-code table differs from core/errors.py: paste exit_code_table()"
    )
    rows = {}
    for line in block.splitlines()[2:]:
        code, meaning = (cell.strip() for cell in line.strip("|").split("|", 1))
        rows[int(code)] = meaning
    return rows


def cli(*args, env=None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "captionbridge.plugin.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_readme_table_is_the_code_table():
    assert readme_table() == EXIT_CODES


def test_every_error_class_exits_with_a_documented_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, CaptionBridgeError)]
    from captionbridge.plugin.service import errors as service_errors

    classes += [
        c for c in vars(service_errors).values() if isinstance(c, type) and issubclass(c, CaptionBridgeError)
    ]
    for cls in classes:
        if cls is CaptionBridgeError:
            continue
        assert cls.exit_code in EXIT_CODES, cls


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["caption", EXAMPLE, "--bogus"], 2, "No such option"),
        (["caption"], 2, "Missing argument"),
        (["caption", EXAMPLE, "--out", "o", "--preset", "hollywood"], 2, "hollywood"),
        (["check", REPO / "README.md"], 3, "unknown caption file type"),
        (["inspect", REPO / "no-such-timeline.otio"], 3, "no-such-timeline.otio"),
    ],
)
def test_each_documented_code_is_what_the_cli_exits_with(tmp_path, args, code, needle):
    result = cli(*[tmp_path / a if a == "o" else a for a in args])
    assert result.returncode == code, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_no_usable_model_is_4(tmp_path):
    result = cli(
        "caption",
        EXAMPLE,
        "--out",
        tmp_path / "o",
        "--tracks",
        "A1",
        "--language",
        "en",
        "-q",
        "--model",
        "large-v3",
        env={"CAPTIONBRIDGE_OFFLINE": "1", "CAPTIONBRIDGE_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 4, result.stderr
    assert "large-v3" in result.stderr and "offline" in result.stderr


def test_a_model_folder_that_does_not_exist_is_bad_input_3(tmp_path):
    # the table says so: a --model folder that is missing is a path the user gave (3), not "no usable model"
    # (4)
    result = cli(
        "caption",
        EXAMPLE,
        "--out",
        tmp_path / "o",
        "--tracks",
        "A1",
        "--language",
        "en",
        "-q",
        "--model",
        tmp_path / "nonexistent",
        env={"CAPTIONBRIDGE_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 3, result.stderr
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    "raised, code",
    [
        (RuntimeError("boom"), errors.EXIT_INTERNAL),
        (KeyboardInterrupt(), 130),
        (errors.Cancelled("stopped"), 130),
        (errors.ModelNotAvailableError("none"), 4),
    ],
)
def test_internal_errors_and_cancelling(monkeypatch, capsys, raised, code):
    from captionbridge.plugin import cli as cli_module
    from captionbridge.plugin.cmd_models import models_cmd

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(models_cmd, "callback", fail)
    with pytest.raises(SystemExit) as exited:
        cli_module.main(["models"])
    assert exited.value.code == code
    if code == errors.EXIT_INTERNAL:
        assert "a CaptionBridge bug" in capsys.readouterr().err
