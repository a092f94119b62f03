"""Job options: checked and normalised before a job is queued, so a bad option never costs a queue slot.

Options (all optional; the caption job applies its own defaults for what is left out):

- ``language``: ``"auto"``, ``"en"`` or ``"zh"`` (the spoken languages CaptionBridge captions)
- ``translate_to``: ``null``, ``"en"`` or ``"zh"``
- ``preset``: a caption preset name such as ``"netflix-en"``
- ``tracks``: audio tracks to caption, e.g. ``["A1", "A2"]``
- ``formats``: files to write, any of ``srt vtt ass ttml json otio fcpxml``
- ``model``: a model name (``"base"``, ``"large-v3"``) or an absolute path to a model folder
- ``device``: ``"auto"``, ``"cpu"`` or ``"cuda"``

and the caption job's finer controls: ``allow_missing`` (caption the rest when media is missing; those clips
are reported in the result's warnings), ``absolute_times`` (SRT/VTT times include the start timecode),
``simplified_chinese``, ``translation_model``, ``max_chars_per_line``, ``max_lines``,
``max_chars_per_second``, and speaker labels: ``speakers`` (``"auto"``, ``"off"``/null or a number 1-12),
``speaker_names`` (names for S1, S2, ... as a list or "Ana,Ben"), ``speaker_marks`` (``dash``, ``label`` or
``none``; default: the preset's), ``packing`` (false: each clip decoded on its own, not in shared Whisper
windows). A glossary file is not accepted through the service: a job reads only its
timeline and the media it references.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...core.pipeline import SOURCE_LANGUAGES
from .errors import BadOption, shown

FORMATS = ("srt", "vtt", "ass", "ttml", "json", "otio", "fcpxml", "xmeml")
DEVICES = ("auto", "cpu", "cuda")
TRANSLATE_TARGETS = ("en", "zh")
OPTION_NAMES = ("language", "translate_to", "preset", "tracks", "formats", "model", "device")
EXTRA_OPTION_NAMES = (
    "allow_missing",
    "absolute_times",
    "simplified_chinese",
    "drop_frame",
    "translation_model",
    "max_chars_per_line",
    "max_lines",
    "max_chars_per_second",
    "speakers",
    "speaker_names",
    "speaker_marks",
    "packing",
)
_BOOL_OPTIONS = ("allow_missing", "absolute_times", "simplified_chinese", "packing")
_NUMBER_OPTIONS = {
    "max_chars_per_line": (int, 8, 120),
    "max_lines": (int, 1, 4),
    "max_chars_per_second": (float, 3, 60),
}

_PRESET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TRACK = re.compile(r"^A([1-9][0-9]{0,2})$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")

# JSON schema of the options object, published in the OpenAPI spec.
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "language": {
            "type": "string",
            "enum": list(SOURCE_LANGUAGES),
            "default": "auto",
            "description": 'the spoken language, or "auto" to detect it (English and Chinese only)',
        },
        "translate_to": {
            "anyOf": [{"type": "string", "enum": list(TRANSLATE_TARGETS)}, {"type": "null"}],
            "default": None,
        },
        "preset": {"type": "string", "pattern": _PRESET.pattern, "examples": ["netflix-en", "netflix-zh"]},
        "tracks": {
            "type": "array",
            "items": {"type": "string", "pattern": _TRACK.pattern},
            "minItems": 1,
            "uniqueItems": True,
            "examples": [["A1"], ["A1", "A2"]],
        },
        "formats": {
            "type": "array",
            "items": {"type": "string", "enum": list(FORMATS)},
            "minItems": 1,
            "uniqueItems": True,
            "examples": [["srt", "json"]],
        },
        "model": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "description": "model name (base, large-v3, ...) or absolute path to a model folder",
        },
        "device": {"type": "string", "enum": list(DEVICES), "default": "auto"},
        "allow_missing": {"type": "boolean", "default": False},
        "absolute_times": {"type": "boolean", "default": False},
        "simplified_chinese": {"type": "boolean", "default": True},
        "packing": {
            "type": "boolean",
            "default": True,
            "description": "short clips' speech decoded together in shared 30 s Whisper windows",
        },
        "drop_frame": {
            "type": ["boolean", "null"],
            "default": None,
            "description": "the editor's drop-frame setting for the timeline (Resolve's OTIO may not say)",
        },
        "translation_model": {"type": "string", "minLength": 1, "maxLength": 1024},
        "max_chars_per_line": {"type": "integer", "minimum": 8, "maximum": 120},
        "max_lines": {"type": "integer", "minimum": 1, "maximum": 4},
        "max_chars_per_second": {"type": "number", "minimum": 3, "maximum": 60},
        "speakers": {
            "anyOf": [
                {"type": "string", "enum": ["auto", "off"]},
                {"type": "integer", "minimum": 1, "maximum": 12},
                {"type": "null"},
            ],
            "default": None,
            "description": "label who speaks: auto, a number of speakers, or off",
        },
        "speaker_names": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 64},
            "minItems": 1,
            "maxItems": 12,
            "examples": [["Ana", "Ben"]],
            "description": "names for speakers S1, S2, ... in order (implies speakers auto)",
        },
        "speaker_marks": {
            "type": "string",
            "enum": ["dash", "label", "none"],
            "description": "how a change of speaker shows (default: the preset's)",
        },
    },
}


def _cuda_devices() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


def _presets() -> frozenset[str]:
    try:
        from ...core.captions.presets import preset_names

        return frozenset(preset_names())
    except Exception:  # the caption presets are not part of this build: the job checks the name
        return frozenset()


def _model(name: str, value: Any) -> str:
    model = _string(name, value)
    if not model:
        raise BadOption(
            f"option {name!r} is empty: a model name such as base, or an absolute folder path",
            details={"option": name},
        )
    from .intake import check_path_text

    check_path_text(model, name, BadOption)
    looks_like_path = (
        model.startswith(("/", "\\", "~", ".")) or "\\" in model or (len(model) > 1 and model[1] == ":")
    )
    if looks_like_path:
        path = Path(model).expanduser()
        if not path.is_absolute():
            raise BadOption(f"{name} path {shown(model)} must be absolute", details={"option": name})
        try:
            is_dir = path.is_dir()
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            raise BadOption(
                f"{name} folder {shown(model)} does not exist: pass a model name or an existing folder",
                details={"option": name},
            )
        return str(path)
    if not _MODEL_NAME.match(model) or any(part in ("", ".", "..") for part in model.split("/")):
        raise BadOption(
            f"bad {name} name {shown(value)}: a name like base or large-v3, or an absolute folder path",
            details={"option": name},
        )
    return model


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadOption(
            f"option {name!r} must be a string, not {type(value).__name__}", details={"option": name}
        )
    return value.strip()


def _string_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):  # "A1,A2" as the CLI spells it
        value = [v for v in value.split(",")]
    if not isinstance(value, list) or not value:
        raise BadOption(f"option {name!r} must be a non-empty list of strings", details={"option": name})
    out: list[str] = []
    for item in value:
        item = _string(name, item)
        if item and item not in out:
            out.append(item)
    if not out:
        raise BadOption(f"option {name!r} must be a non-empty list of strings", details={"option": name})
    return out


def validate_options(options: Any, *, cuda_devices: int | None = None) -> dict[str, Any]:
    """Return the options normalised (lower-case codes, de-duplicated lists), or raise ``BadOption``."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise BadOption(f"options must be a JSON object, not {type(options).__name__}")
    known = OPTION_NAMES + EXTRA_OPTION_NAMES
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise BadOption(
            f"unknown option {shown(unknown[0])}: the options are {', '.join(known)}",
            details={"option": shown(unknown[0], 200), "known": list(known)},
        )
    out: dict[str, Any] = {}
    if "language" in options:
        lang = _string("language", options["language"]).lower()
        if lang not in SOURCE_LANGUAGES:
            raise BadOption(
                f"unsupported language {shown(options['language'])}: CaptionBridge captions English and "
                'Chinese speech, so use "auto", en or zh',
                details={"option": "language"},
            )
        out["language"] = lang
    if "translate_to" in options:
        target = options["translate_to"]
        if target is not None:
            target = _string("translate_to", target).lower()
            if target not in TRANSLATE_TARGETS:
                raise BadOption(
                    f'cannot translate to {shown(options["translate_to"])}: use "en", "zh" or null',
                    details={"option": "translate_to"},
                )
        out["translate_to"] = target
    if "preset" in options:
        preset = _string("preset", options["preset"])
        presets = _presets()
        if not _PRESET.match(preset) or (presets and preset not in presets):
            raise BadOption(
                f"unknown preset {shown(options['preset'])}: choose from "
                f"{', '.join(sorted(presets)) or 'names such as netflix-en'}",
                details={"option": "preset"},
            )
        out["preset"] = preset
    if "tracks" in options:
        tracks = [t.upper() for t in _string_list("tracks", options["tracks"])]
        bad = [t for t in tracks if not _TRACK.match(t)]
        if bad:
            raise BadOption(
                f"bad track {shown(bad[0])}: audio tracks are named A1, A2, ...", details={"option": "tracks"}
            )
        out["tracks"] = tracks
    if "formats" in options:
        formats = [f.lower().lstrip(".") for f in _string_list("formats", options["formats"])]
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise BadOption(
                f"unknown format {shown(bad[0])}: choose from {', '.join(FORMATS)}",
                details={"option": "formats"},
            )
        out["formats"] = formats
    for name in ("model", "translation_model"):
        if name in options and options[name] is not None:
            out[name] = _model(name, options[name])
    if "device" in options:
        device = _string("device", options["device"]).lower()
        if device not in DEVICES:
            raise BadOption(
                f"unknown device {shown(options['device'])}: use auto, cpu or cuda",
                details={"option": "device"},
            )
        if device == "cuda" and (cuda_devices if cuda_devices is not None else _cuda_devices()) == 0:
            raise BadOption(
                'device "cuda" asked for, but no CUDA GPU is visible to the engine: use auto or cpu',
                details={"option": "device"},
            )
        out["device"] = device
    if options.get("drop_frame") is not None:
        if not isinstance(options["drop_frame"], bool):
            raise BadOption(
                "option 'drop_frame' must be true, false or null", details={"option": "drop_frame"}
            )
        out["drop_frame"] = options["drop_frame"]
    for name in _BOOL_OPTIONS:
        if name in options:
            if not isinstance(options[name], bool):
                raise BadOption(f"option {name!r} must be true or false", details={"option": name})
            out[name] = options[name]
    out.update(_speaker_options(options))
    for name, (kind, low, high) in _NUMBER_OPTIONS.items():
        if name in options and options[name] is not None:
            value = options[name]
            ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok_type or not (low <= value <= high):
                raise BadOption(
                    f"option {name!r} must be {'a whole number' if kind is int else 'a number'} "
                    f"from {low} to {high}",
                    details={"option": name},
                )
            out[name] = kind(value)
    return out


def _speaker_options(options: dict[str, Any]) -> dict[str, Any]:
    from ...core.errors import InputError
    from ...core.speech.speakers import parse_speaker_names, parse_speakers

    out: dict[str, Any] = {}
    name = "speakers"
    try:
        if options.get("speakers") is not None:
            value = options["speakers"]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise InputError('option \'speakers\' must be "auto", "off", null or a number from 1 to 12')
            out["speakers"] = parse_speakers(value)
        if options.get("speaker_names") is not None:
            name = "speaker_names"
            names = options["speaker_names"]
            if isinstance(names, list) and not all(isinstance(n, str) for n in names):
                raise InputError("option 'speaker_names' must be a list of names")
            if not isinstance(names, (str, list)):
                raise InputError("option 'speaker_names' must be a list of names")
            out["speaker_names"] = parse_speaker_names(names)
        if options.get("speaker_marks") is not None:
            name = "speaker_marks"
            if options["speaker_marks"] not in ("dash", "label", "none"):
                raise InputError("option 'speaker_marks' must be dash, label or none")
            out["speaker_marks"] = options["speaker_marks"]
    except InputError as exc:
        raise BadOption(
            str(exc).replace("--speaker-names", "speaker_names").replace("--speakers", "speakers"),
            details={"option": name},
        ) from None
    if isinstance(out.get("speakers"), int) and len(out.get("speaker_names") or []) > out["speakers"]:
        raise BadOption(
            f"{len(out['speaker_names'])} speaker_names for speakers {out['speakers']}: at most one "
            "name per speaker",
            details={"option": "speaker_names"},
        )
    return out
