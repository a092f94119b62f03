"""Errors a user can act on. Each carries a stable code, a one-line message naming the fix, and an exit
status.

The CLI prints ``error: <message>`` and exits with ``exit_code``; the service returns ``{"error": {"code",
"message"}}`` with ``http_status``. Anything that is not a CaptionBridgeError is a bug in CaptionBridge, not a
user mistake.
"""

from __future__ import annotations

# Every exit status the ``captionbridge`` command uses, and what it means. The README's table is this table
# (``exit_code_table``; tests/plugin/test_exit_codes.py compares them and runs each case).
EXIT_DONE = 0
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_CODES: dict[int, str] = {
    EXIT_DONE: "done (for `check`: no hard rule broken)",
    EXIT_USAGE: "the command line itself is wrong: an unknown option, a missing argument, a value not among "
    "an "
    "option's choices (the usage line says which)",
    3: "bad input: a timeline, caption file, media file or `--model` folder that is missing, unreadable or "
    "corrupt; "
    "an output or cache folder that cannot be written; a language CaptionBridge does not caption; nothing to "
    "caption",
    4: "no usable speech or translation model: none installed, not offline-available, or it cannot be loaded",
    5: "`check` found hard caption-rule violations (with `--strict`, soft ones too)",
    6: "`install`/`uninstall` or `serve` could not do its job: an editor folder it cannot write, an editor "
    "this "
    "system does not run, the engine's port already in use",
    EXIT_INTERNAL: "an internal error: a CaptionBridge bug (please report it)",
    130: "cancelled (Ctrl-C, or the job was cancelled)",
}


def exit_code_table() -> str:
    """The README's exit-code table, as Markdown."""
    rows = ["| exit | meaning |", "| --- | --- |"]
    rows += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(rows)


class CaptionBridgeError(Exception):
    """Base class: a clear reason the user can act on."""

    code = "error"
    exit_code = 3  # a reason the user can act on; subclasses narrow it (see EXIT_CODES)
    http_status = 400

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InputError(CaptionBridgeError):
    """A file the user gave us is missing, unreadable, corrupt or of an unknown kind."""

    code = "bad_input"
    exit_code = 3


class TimelineError(InputError):
    """The timeline can be read but cannot be used as it is (unsupported rate, no audio, ...)."""

    code = "bad_timeline"


class MissingMediaError(InputError):
    """One or more clips point at media that is not on disk. ``missing`` lists every one."""

    code = "missing_media"

    def __init__(self, message: str, missing: list[dict]):
        super().__init__(message, details={"missing": missing})
        self.missing = missing


class ModelNotAvailableError(CaptionBridgeError):
    """No usable model: says exactly what to install or which folder to pass."""

    code = "model_unavailable"
    exit_code = 4
    http_status = 422


class ValidationFailed(CaptionBridgeError):
    """Captions break hard rules (``captionbridge check``)."""

    code = "validation_failed"
    exit_code = 5


class Cancelled(CaptionBridgeError):
    """The job was cancelled by the user."""

    code = "cancelled"
    exit_code = 130
    http_status = 409
