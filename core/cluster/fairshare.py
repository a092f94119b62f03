"""Fair share between bays: one queue per bay, served round robin, so one bay's three-hour feature waits its
turn span by span instead of holding every replica until it is done."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any


class FairQueue:
    """Per-bay FIFO queues; ``pop`` takes the next bay in turn that has work (a bay that just got a slot goes
    to the back of the line)."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque] = OrderedDict()

    def push(self, bay: str, item: Any) -> None:
        self._queues.setdefault(bay, deque()).append(item)

    def pop(self) -> tuple[str, Any] | None:
        for bay in list(self._queues):
            queue = self._queues[bay]
            if queue:
                item = queue.popleft()
                self._queues.move_to_end(bay)  # next time, every other waiting bay comes first
                return bay, item
        return None

    def remove(self, bay: str, predicate) -> int:
        queue = self._queues.get(bay)
        if not queue:
            return 0
        kept = deque(x for x in queue if not predicate(x))
        removed = len(queue) - len(kept)
        self._queues[bay] = kept
        return removed

    def depth(self) -> dict[str, int]:
        return {bay: len(q) for bay, q in self._queues.items() if q}

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())
