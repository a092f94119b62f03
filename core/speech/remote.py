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


class BackendSlot:
    """Where a stage finds the backend installed for this process (None: the stage runs locally)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.backend = None

    def install(self, backend):
        """Install ``backend`` (None: local again); returns the previous one."""
        with self._lock:
            previous, self.backend = self.backend, backend
        return previous


_speech = BackendSlot()


def set_speech_backend(backend: SpeechBackend | None) -> SpeechBackend | None:
    """Install ``backend`` for every transcription in this process (None: local again). Returns the previous
    one."""
    return _speech.install(backend)


def speech_backend() -> SpeechBackend | None:
    return _speech.backend


# -- speakers ------------------------------------------------------------------------------------------------
class SpeakerBackend(Protocol):
    def diarize(self, samples: np.ndarray, words: list[list], speakers, previous: dict | None) -> dict:
        """``diarize`` done elsewhere: ``words`` are [text, start, end] in seconds of ``samples`` (16 kHz
        mono); returns {"speaker_of_word": [id per word, in order], "speakers", "voices", "seconds",
        "windows"}, or raises ``RemoteUnavailable``."""


_speakers = BackendSlot()


def set_speaker_backend(backend: SpeakerBackend | None) -> SpeakerBackend | None:
    """Install ``backend`` for every speaker stage in this process (None: local again). Returns the previous
    one."""
    return _speakers.install(backend)


def speaker_backend() -> SpeakerBackend | None:
    return _speakers.backend


def speaker_labeller() -> Callable:
    """What labels a caption job's speakers: ``speakers.label_speakers`` (the same arguments and answer),
    with ``diarize`` on the installed speaker backend when there is one."""
    from .speakers import label_speakers

    backend = _speakers.backend
    if backend is None:
        return label_speakers

    def labeller(*args, **kwargs):
        return _label_speakers_remotely(backend, label_speakers, *args, **kwargs)

    return labeller


def _label_speakers_remotely(
    backend: SpeakerBackend,
    local,
    regions,
    duration_frames: int,
    timebase,
    words,
    speakers="auto",
    names=None,
    device: str = "auto",
    cache=None,
):
    """``speakers.label_speakers`` with its ``diarize`` run by ``backend``: the same mix (the timeline's
    audio at 16 kHz), the same voices kept from the last run on the same media (sent along, so the ids
    stay), the same naming. When the backend cannot do it, ``local`` (``label_speakers``) does, with the
    reason in the warnings."""
    from dataclasses import replace

    from ..timeline.render_audio import render_audio
    from .speakers import SAMPLE_RATE, Diarization, name_and_remember, profile_key
    from .transcript_cache import TranscriptCache

    cache = cache if cache is not None else TranscriptCache()
    samples = render_audio(regions, duration_frames, timebase, SAMPLE_RATE).samples
    key = profile_key(regions)
    previous = cache.get(key) if key else None
    try:
        answer = backend.diarize(
            samples, [[w.text, float(w.start), float(w.end)] for w in words], speakers, previous
        )
        ids = answer["speaker_of_word"]
        if len(ids) != len(words):
            raise RemoteUnavailable(
                f"the facility cluster labelled {len(ids)} words of {len(words)}: labelled on this "
                "machine instead"
            )
    except RemoteUnavailable as exc:
        out_words, listing, warnings = local(
            regions, duration_frames, timebase, words, speakers, names, device=device, cache=cache
        )
        return out_words, listing, [str(exc)] + list(warnings)
    result = Diarization(
        [replace(w, speaker=s) for w, s in zip(words, ids)],
        list(answer["speakers"]),
        dict(answer.get("voices") or {}),
        dict(answer.get("seconds") or {}),
        int(answer.get("windows") or 0),
    )
    return name_and_remember(result, names, previous, key, cache)
