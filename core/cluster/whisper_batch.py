"""Whisper spans from different requests decoded in one batch (the cluster's opt-in ``cluster deploy
--whisper-batch-size``).

Each span of a batch runs the engine's own span transcription (``transcribe_span_samples``: VAD, language
detection, the guards, word timing) on its own thread, with a stand-in for the replica's model whose
``transcribe`` is the one call that decodes. The stand-ins meet at a ``Rendezvous``: once every span of the
batch has either asked to decode or finished without needing to (too short, no speech), the speech of spans
that fits one 30 s window and was asked for with the same decoding settings (language, beam, temperatures,
prompt, hotwords, thresholds) is decoded together, one window per span, by faster-whisper's
``BatchedInferencePipeline`` (the engine's GPU path for one span's chunks); each span gets its own segments
back in its own time and carries on. A span with more than one window of speech, or alone with its settings,
takes the engine's usual sequential decode (one at a time, the random seed reset first, as a replica without
batching does).

What batched decoding does differently (why it is opt-in): one decode per window at the first temperature,
with no fallback to higher temperatures when the compression-ratio or log-probability checks fail, and one
segment per window (``without_timestamps``, as in the engine's GPU batched path). The engine's guards
(hallucinated segments dropped, repetition loops removed, words outside speech dropped) and its word timing
run on the result as usual. On a GPU replica, a span of one window decodes sequentially when it meets no
partner (the replica sets its ``batch_size`` to 1), not through its own batched pipeline.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

SAMPLE_RATE = 16000
WINDOW = 30 * SAMPLE_RATE  # speech that one Whisper window holds
GAP = SAMPLE_RATE  # silence between spans in the batch's joined audio (never decoded: the clips are explicit)
log = logging.getLogger("captionbridge.cluster")


def batch_key(audio: np.ndarray, kwargs: dict):
    """What must be equal for two decodes to share a batch, or None when this one cannot be batched."""
    if len(audio) > WINDOW or len(audio) < SAMPLE_RATE // 10 or not kwargs.get("language"):
        return None
    if kwargs.get("task", "transcribe") != "transcribe" or not kwargs.get("word_timestamps"):
        return None
    return repr(sorted((k, v if not isinstance(v, list) else tuple(v)) for k, v in kwargs.items()))


class _Model:
    """The replica's model for one span of a batch: all of it, except that ``transcribe`` meets the other
    spans at the rendezvous."""

    def __init__(self, model, rendezvous: "Rendezvous", slot: int):
        self._model, self._rendezvous, self._slot = model, rendezvous, slot

    def __getattr__(self, name):
        return getattr(self._model, name)

    def transcribe(self, audio, **kwargs):
        return self._rendezvous.decode(self._slot, audio, kwargs)


class Rendezvous:
    """Where the ``count`` spans of one batch meet to decode together (see the module's docstring)."""

    def __init__(self, model, count: int, lock: threading.Lock, reseed=None):
        self.model = model
        self.count = count
        self.lock = lock  # one decode on the model at a time (the seed below must hold for the whole decode)
        self.reseed = reseed or (lambda: None)
        self._cond = threading.Condition()
        self._pending: dict[int, tuple] = {}
        self._left: set[int] = set()
        self._answers: dict[int, object] = {}
        self._ran = False
        self.batched: list[int] = []  # sizes of the groups decoded together
        self.groups: list[list[int]] = []  # the slots of each group decoded together
        self.alone: list[int] = []  # the slots decoded on their own (the sequential decode), in order
        self.failure: str | None = None

    def together_with(self, slot: int) -> int:
        """How many spans span ``slot`` was decoded with, itself included (1: on its own or not at all)."""
        return next((len(group) for group in self.groups if slot in group), 1)

    def model_for(self, slot: int) -> _Model:
        return _Model(self.model, self, slot)

    def leave(self, slot: int) -> None:
        """Span ``slot`` is done (or failed): the others no longer wait for it."""
        with self._cond:
            self._left.add(slot)
            self._run_if_all_here()
            self._cond.notify_all()

    def decode(self, slot: int, audio, kwargs: dict):
        with self._cond:
            if self._ran:  # a second decode for the same span (not something the engine does): on its own
                answer = None
            else:
                self._pending[slot] = (np.asarray(audio, dtype=np.float32), dict(kwargs))
                self._run_if_all_here()
                while slot not in self._answers:
                    self._cond.wait()
                answer = self._answers.pop(slot)
        if answer is not None:
            return answer
        with self.lock:  # the sequential decode, as a replica without batching runs it
            self.alone.append(slot)
            self.reseed()
            segments, info = self.model.transcribe(audio, **kwargs)
            return list(segments), info

    # -- the batch, on the thread of the span that arrived last
    def _run_if_all_here(self) -> None:
        if self._ran or len(set(self._pending) | self._left) < self.count:
            return
        self._ran = True
        groups: dict = {}
        for slot, (audio, kwargs) in self._pending.items():
            key = batch_key(audio, kwargs)
            if key is not None:
                groups.setdefault(key, []).append(slot)
        answers = {slot: None for slot in self._pending}
        for members in groups.values():
            if len(members) < 2:
                continue
            try:
                with self.lock:
                    answers.update(self._decode_together(members))
                self.batched.append(len(members))
                self.groups.append(sorted(members))
            except Exception as exc:  # the batch failed as a whole: each span decodes on its own instead
                self.failure = f"{type(exc).__name__}: {exc}"
                log.warning("batched Whisper decode failed (%s); decoding the spans one by one", self.failure)
        self._answers.update(answers)
        self._cond.notify_all()

    def _decode_together(self, members: list[int]) -> dict:
        from faster_whisper import BatchedInferencePipeline

        kwargs = dict(self._pending[members[0]][1])
        kwargs.pop("condition_on_previous_text", None)  # batched decoding never conditions on earlier text
        kwargs.pop("vad_filter", None)
        pieces, clips, offsets = [], [], []
        at = 0
        for slot in members:
            audio = self._pending[slot][0]
            offsets.append(at / SAMPLE_RATE)
            clips.append({"start": at / SAMPLE_RATE, "end": (at + len(audio)) / SAMPLE_RATE})
            pieces += [audio, np.zeros(GAP, dtype=np.float32)]
            at += len(audio) + GAP
        segments, info = BatchedInferencePipeline(self.model).transcribe(
            np.concatenate(pieces), batch_size=len(members), clip_timestamps=clips, vad_filter=False, **kwargs
        )
        out: dict = {slot: [] for slot in members}
        for segment in segments:
            # the window a segment came from: the last that starts at or before it (windows are a second
            # apart and a segment never starts before its window; times are rounded to the millisecond)
            n = max(i for i, offset in enumerate(offsets) if offset <= segment.start + 0.01 or i == 0)
            out[members[n]].append(_shifted(segment, offsets[n], clips[n]["end"] - offsets[n]))
        return {slot: (segs, info) for slot, segs in out.items()}


def _shifted(segment, offset: float, duration: float):
    """A batch's segment in its own span's time (0 = the start of that span's speech)."""
    import dataclasses

    def at(t: float) -> float:
        return round(min(duration, max(0.0, t - offset)), 3)

    words = None
    if segment.words is not None:
        words = [dataclasses.replace(w, start=at(w.start), end=at(w.end)) for w in segment.words]
    return dataclasses.replace(segment, start=at(segment.start), end=at(segment.end), words=words)


def transcribe_together(model, spans: list, lock: threading.Lock, reseed=None) -> tuple[list, Rendezvous]:
    """Each ``(samples, TranscribeOptions)`` of ``spans`` -> its span result (``transcribe_span_samples``'s)
    or the exception it raised, with the spans that can share a batch decoded together; and the rendezvous
    (``batched``: the sizes of the groups decoded together, ``groups`` their slots, ``alone`` the slots
    decoded on their own)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..speech.transcribe import transcribe_span_samples

    meeting = Rendezvous(model, len(spans), lock, reseed)

    def one(slot: int):
        samples, options = spans[slot]
        try:
            return transcribe_span_samples(samples, options, meeting.model_for(slot))
        except Exception as exc:  # this span's own failure, not its batch's
            return exc
        finally:
            meeting.leave(slot)

    with ThreadPoolExecutor(max_workers=max(1, len(spans)), thread_name_prefix="span") as pool:
        return list(pool.map(one, range(len(spans)))), meeting
