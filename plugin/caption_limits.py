"""The caption-limit options ``caption`` and ``check`` share: one name each, help text showing every preset's
default."""

from __future__ import annotations

from ..core.captions.presets import PRESETS


def _defaults(field: str) -> str:
    """``"netflix-en 42, netflix-zh 16, broadcast 37 (zh 14), social 28 (zh 12)"`` for one preset field."""
    parts = []
    for name, by_family in PRESETS.items():
        en, zh = by_family["en"].get(field), by_family["zh"].get(field)
        if name == "netflix-en":
            parts.append(f"{name} {en:g}")
        elif name == "netflix-zh":
            parts.append(f"{name} {zh:g}")
        else:
            parts.append(f"{name} {en:g}" + (f" (zh {zh:g})" if zh != en else ""))
    return ", ".join(parts)


PRESET_LIMITS = {
    field: _defaults(field) for field in ("max_chars_per_line", "max_lines", "max_chars_per_second")
}
PRESET_NAMES = ("netflix", "netflix-en", "netflix-zh", "broadcast", "social")
