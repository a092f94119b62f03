"""The house rules, checked on the source: imports run plugin -> adapters -> core, never back up, and inside
core the stages run timeline -> speech -> captions -> translate (a room imports only earlier rooms and core's
shared modules). Reads the files with ``ast``, so a lazy import inside a function counts as much as one at the
top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"core": 0, "adapters": 1, "plugin": 2}
ROOMS = ["timeline", "speech", "captions", "translate", "cluster", "corrections", "finetune"]  # in flow order
SHARED = {"model", "errors", "progress", "storage"}  # core's root modules every stage may use


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, absolute module parts inside the package) for every import of a captionbridge module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = _module(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "captionbridge":
                target = node.module.split(".")[1:]
            else:
                continue
            names = [a.name for a in node.names]
            if node.module is None or target == ["core"]:  # from . import x / from ..core import models
                found += [(node.lineno, target + [n]) for n in names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "captionbridge":
                    found.append((node.lineno, alias.name.split(".")[1:]))
    return found


def _sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def test_the_rule_reader_sees_imports(tmp_path):
    """The checker itself: a relative import two levels up from a room resolves to the right module."""
    sample = ROOT / "core" / "speech" / "transcribe.py"
    targets = [t for _, t in _imports(sample)]
    assert ["core", "timeline", "timebase"] in targets and ["core", "errors"] in targets


@pytest.mark.parametrize(
    "path", _sources("core", "adapters", "plugin"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_imports_run_one_way(path):
    layer = _module(path)[0]
    bad = [
        (line, ".".join(t))
        for line, t in _imports(path)
        if t and t[0] in LAYERS and LAYERS[t[0]] > LAYERS[layer]
    ]
    assert not bad, f"{path.relative_to(ROOT)} imports a layer above it ({layer}): {bad}"


@pytest.mark.parametrize("path", _sources("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_stages_run_in_order(path):
    here = _module(path)
    if len(here) > 2 and here[1] in ROOMS:
        allowed = set(ROOMS[: ROOMS.index(here[1]) + 1])
    elif len(here) == 2 and here[1] in SHARED:
        allowed = {"timeline"}  # the data model is in frames of a Timebase
    else:
        return  # core/__init__ and the pipeline run the stages in order, so they may use them all
    bad = []
    for line, target in _imports(path):
        if target[:1] != ["core"] or len(target) < 2:
            continue
        if target[1] in ROOMS and target[1] not in allowed:
            bad.append((line, ".".join(target)))
        elif target[1] not in ROOMS and target[1] not in SHARED:
            bad.append((line, ".".join(target)))  # a room must not reach the pipeline
    assert not bad, f"{'.'.join(here)} imports a later stage or the pipeline: {bad}"


def test_each_room_exists_and_core_root_is_shared_only():
    rooms = {p.name for p in (ROOT / "core").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert set(ROOMS) <= rooms
    root_modules = {p.stem for p in (ROOT / "core").glob("*.py")} - {"__init__"}
    assert root_modules <= SHARED | {"pipeline"}, root_modules - SHARED - {"pipeline"}
