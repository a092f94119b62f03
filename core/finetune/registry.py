"""Fine-tuned models by name: where they live, what they came from, and which one the engine runs.

A registered model is a CTranslate2 folder under ``<cache>/models/tuned/<name>/`` with a
``captionbridge_model.json`` (base model, the data it saw, held-out WER of base and tuned model, when).
``activate`` makes it the engine's default model (``resolve_model("auto")``) and keeps the previous choice for
``rollback``; a model whose held-out WER is worse than its base's is refused.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InputError
from ..speech.models import ACTIVE_FILE, MODEL_CARD, tuned_root

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def model_folder(name: str) -> Path:
    if not _NAME.match(name or ""):
        raise InputError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64 characters)")
    return tuned_root() / name


def register(name: str, folder: Path, base: str, data: dict, scores: dict) -> dict:
    """Write the model card of ``folder`` (which must be ``model_folder(name)``) and return it."""
    card = {
        "name": name,
        "base": base,
        "data": data,
        "scores": scores,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (Path(folder) / MODEL_CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    return card


def card(name: str) -> dict:
    path = model_folder(name) / MODEL_CARD
    if not path.is_file():
        known = ", ".join(c["name"] for c in registered()) or "none yet"
        raise InputError(f"no fine-tuned model called {name!r} (registered: {known})")
    return json.loads(path.read_text(encoding="utf-8"))


def registered() -> list[dict]:
    root = tuned_root()
    cards = []
    for path in sorted(root.glob(f"*/{MODEL_CARD}")) if root.is_dir() else []:
        try:
            cards.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return cards


def active() -> dict:
    path = tuned_root() / ACTIVE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"active": None, "previous": None}


def _write_active(state: dict) -> None:
    root = tuned_root()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (ACTIVE_FILE + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, root / ACTIVE_FILE)


def activate(name: str) -> dict:
    """Make ``name`` the engine's default model. Refused when its held-out WER is worse than its base's."""
    info = card(name)
    scores = info.get("scores") or {}
    base_wer, tuned_wer = scores.get("held_out_wer_base"), scores.get("held_out_wer_tuned")
    if base_wer is None or tuned_wer is None:
        raise InputError(
            f"{name} has no held-out scores, so it cannot be activated: fine-tune it again with held-out data"
        )
    if tuned_wer > base_wer:
        raise InputError(
            f"{name} is worse than its base on held-out speech (WER {tuned_wer:.1%} against "
            f"{base_wer:.1%}): not activated"
        )
    state = active()
    if state.get("active") != name:
        state = {"active": name, "previous": state.get("active")}
        _write_active(state)
    return state


def rollback() -> dict:
    """Go back to the model that was active before (or to the packaged default when there was none)."""
    state = active()
    if state.get("active") is None:
        raise InputError("no fine-tuned model is active: the engine already runs the default model")
    state = {"active": state.get("previous"), "previous": state.get("active")}
    _write_active(state)
    return state
