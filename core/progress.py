"""Progress and cancellation for long work, shared by the CLI (progress bars) and the service (job state).

A stage reports a fraction of its own work; ``Progress`` maps it onto the whole job by stage weights, computes
an ETA, and raises ``Cancelled`` at the next check once cancellation was asked for. No globals: one object per
job.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .errors import Cancelled

Listener = Callable[[str, float, "float | None"], None]  # (stage, overall fraction 0..1, eta seconds or None)


class Progress:
    def __init__(
        self,
        stages: dict[str, float] | None = None,
        listener: Listener | None = None,
        cancel_event: threading.Event | None = None,
    ):
        weights = stages or {"work": 1.0}
        total = sum(weights.values()) or 1.0
        self._spans: dict[str, tuple[float, float]] = {}
        acc = 0.0
        for name, weight in weights.items():
            self._spans[name] = (acc / total, (acc + weight) / total)
            acc += weight
        self.listener = listener
        self.cancel_event = cancel_event or threading.Event()
        self.stage = next(iter(weights))
        self.fraction = 0.0
        self._started = time.monotonic()

    def update(self, stage: str, fraction: float = 0.0) -> None:
        """Report that ``stage`` is ``fraction`` done (0..1); raises ``Cancelled`` when cancelled."""
        self.check_cancelled()
        lo, hi = self._spans.get(stage, (self.fraction, self.fraction))
        overall = max(self.fraction, lo + (hi - lo) * min(max(fraction, 0.0), 1.0))
        self.stage, self.fraction = stage, overall
        if self.listener:
            self.listener(stage, overall, self.eta())

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the pace so far; None until there is a pace to go by (the first
        second of a job, or under 1 % done), so a fast first stage never shows "0 s left" for a long job."""
        elapsed = time.monotonic() - self._started
        if self.fraction <= 0.01 or elapsed < 1.0:
            return None
        return max(0.0, elapsed * (1.0 - self.fraction) / self.fraction)

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled("cancelled by the user")

    def done(self) -> None:
        self.update(list(self._spans)[-1], 1.0)


def null_progress() -> Progress:
    return Progress()
