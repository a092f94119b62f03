"""Transcription somewhere else: the hook through which the engine hands its spans to a remote speech backend.

The engine (``transcribe.py``) stays the same for the editor: it reads the timeline, renders each source
span's audio and maps words back onto the timeline. When a backend is installed (``set_speech_backend``; the
facility cluster client in ``core/cluster`` is one), the spans that are not in the local cache go to the
backend instead of the local model. A backend that cannot be reached raises ``RemoteUnavailable``; the engine
then transcribes what is left locally and says so in the job's warnings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import CaptionBridgeError


@dataclass
class SpanRequest:
    """One source span to transcribe remotely.

    ``identity`` names the span's audio without decoding it (the media file's content hash + channels + gain +
    source range), or None when there is no file to hash; ``audio()`` decodes the span (16 kHz mono float32).
    Results come back as the engine's own span result: ``{"words": [[text, start, end, prob]], "language",
    "language_probability", "warnings"}``, times in seconds of the decoded audio."""

    index: int
    seconds: float
    identity: str | None
    audio: Callable[[], np.ndarray] = field(repr=False)


class RemoteUnavailable(CaptionBridgeError):
    """The remote backend cannot be used now. ``partial`` holds the span results it did finish (index ->
    result)."""

    code = "cluster_unavailable"
    http_status = 503

    def __init__(self, message: str, partial: dict | None = None):
        super().__init__(message)
        self.partial = partial or {}


class SpeechBackend(Protocol):
    def transcribe_spans(self, requests: list[SpanRequest], options, report: Callable[[float], None]) -> dict:
        """index -> span result for every request, or raise ``RemoteUnavailable`` (with what was done)."""


_lock = threading.Lock()
_backend: SpeechBackend | None = None


def set_speech_backend(backend: SpeechBackend | None) -> SpeechBackend | None:
    """Install ``backend`` for every transcription in this process (None: local again). Returns the previous
    one."""
    global _backend
    with _lock:
        previous, _backend = _backend, backend
    return previous


def speech_backend() -> SpeechBackend | None:
    return _backend
