"""A tqdm progress bar fed by ``core.progress.Progress`` listeners (stage name, overall fraction, ETA)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm


@contextmanager
def progress_bar(description: str, disable: bool = False) -> Iterator:
    """A bar on stderr, shown only when stderr is a terminal: logs and pipes get no ``\\r`` lines."""
    disable = disable or not _is_terminal(sys.stderr)
    bar = tqdm(
        total=100,
        desc=description,
        unit="%",
        disable=disable,
        bar_format="{desc}: {percentage:3.0f}%|{bar}|{postfix}",
        file=sys.stderr,
        leave=False,
    )

    def listener(stage: str, fraction: float, eta: float | None) -> None:
        bar.n = round(fraction * 100, 1)
        bar.set_description_str(f"{description} ({stage})", refresh=False)
        bar.set_postfix_str(f"~{eta:.0f}s left" if eta is not None else "", refresh=False)
        bar.refresh()

    try:
        yield listener
    finally:
        bar.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
