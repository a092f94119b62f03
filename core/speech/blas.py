"""numpy's BLAS held to a few threads for a block of small matrix products (the speaker encoder's LSTM, the
English aligner's Gaussian scores): on those, extra BLAS threads cost more than they give on a busy machine,
and a stage's CPU time then stays in its own thread. ``threadpoolctl`` does it when installed; without it the
block runs unlimited."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# threadpoolctl's view of the BLAS libraries loaded (finding them costs ~1 ms, a real share of the aligner's
# per-piece work), found again only after an import may have loaded another; False: no threadpoolctl
_CONTROLLER = None
_MODULES_SEEN = 0


@contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Every loaded BLAS library limited to ``threads`` inside the block, restored after (``None`` or 0: no
    limit)."""
    global _CONTROLLER, _MODULES_SEEN
    if not threads:
        yield
        return
    if _CONTROLLER is None or (_CONTROLLER and len(sys.modules) != _MODULES_SEEN):
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER, _MODULES_SEEN = ThreadpoolController(), len(sys.modules)
        except ImportError:
            _CONTROLLER = False
    if not _CONTROLLER:
        yield
        return
    with _CONTROLLER.limit(limits=threads, user_api="blas"):
        yield
