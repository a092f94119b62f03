"""The caption model shared by every stage: words with times, cues on frames, and the document that carries
them.

Like pysubs2's SSAFile of SSAEvents, but in integer frames at the timeline's exact rate. Words keep measured
seconds (float, from the recognizer) *and* frames; cue in/out are frames only. ``CaptionDocument.to_dict`` is
the JSON contract written to ``<stem>.captions.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from .timeline.timebase import Timebase

if TYPE_CHECKING:
    import opentimelineio as otio


@dataclass(frozen=True)
class Word:
    """One recognised (or aligned) word in timeline time.

    ``start``/``end`` are seconds from the timeline's first frame; ``start_frame`` is the frame containing
    ``start`` and ``end_frame`` the first frame at or after ``end`` (exclusive), so a word always spans at
    least one frame. The caption pipeline then settles them (``captions.cue_timing.settle_word_frames``): a
    word ends where the next begins, so consecutive words never share a frame, and none runs past the
    timeline's end.
    """

    text: str
    start: float
    end: float
    confidence: float = 1.0
    start_frame: int = 0
    end_frame: int = 0
    language: str | None = None
    speaker: str | None = None  # speaker id ("S1") when diarization ran; see core/speech/speakers.py

    @classmethod
    def at(
        cls,
        text: str,
        start: float,
        end: float,
        timebase: Timebase,
        confidence: float = 1.0,
        language: str | None = None,
    ) -> "Word":
        start_frame = timebase.frame_at(start, "floor")
        end_frame = max(start_frame + 1, timebase.frame_at(end, "ceil"))
        return cls(text, float(start), float(end), float(confidence), start_frame, end_frame, language)

    def to_dict(self) -> dict:
        out = {
            "text": self.text,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "confidence": round(self.confidence, 3),
        }
        if self.speaker is not None:
            out["speaker"] = self.speaker
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Word":
        speaker = data.get("speaker")
        return cls(
            str(data["text"]),
            float(data["start"]),
            float(data["end"]),
            float(data.get("confidence", 1.0)),
            int(data["start_frame"]),
            int(data["end_frame"]),
            data.get("language"),
            None if speaker is None else str(speaker),
        )


@dataclass(frozen=True)
class Cue:
    """One caption event: [start_frame, end_frame) in timeline frames, text per language ("\\n" between
    lines)."""

    start_frame: int
    end_frame: int
    text: dict[str, str]
    words: tuple[Word, ...] = ()
    # speaker ids in the order they speak in this cue: () when unknown, two for the two-speaker (dash) form
    speakers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (isinstance(self.start_frame, int) and isinstance(self.end_frame, int)):
            raise TypeError("cue times are integer frames")
        if self.end_frame <= self.start_frame:
            raise ValueError(f"cue ends ({self.end_frame}) at or before it starts ({self.start_frame})")

    @property
    def duration(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def speaker(self) -> str | None:
        """The cue's one speaker, or None (unknown, or two speakers in the dash form)."""
        return self.speakers[0] if len(self.speakers) == 1 else None

    def with_text(self, language: str, text: str) -> "Cue":
        return replace(self, text={**self.text, language: text})

    def to_dict(self, timebase: Timebase) -> dict:
        out = {
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_timecode": timebase.timecode(self.start_frame),
            "end_timecode": timebase.timecode(self.end_frame),
            "text": dict(self.text),
        }
        if self.speakers:
            out["speakers"] = list(self.speakers)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Cue":
        text = data["text"]
        if isinstance(text, str):
            text = {"und": text}
        return cls(
            int(data["start_frame"]),
            int(data["end_frame"]),
            dict(text),
            speakers=tuple(str(s) for s in data.get("speakers") or ()),
        )


T = TypeVar("T")


def default_speaker_name(speaker_id: str) -> str:
    """ "S2" -> "Speaker 2"; any other id is its own name."""
    if speaker_id[:1] == "S" and speaker_id[1:].isdigit():
        return f"Speaker {int(speaker_id[1:])}"
    return speaker_id


def cue_lanes(items: list[T], cue_of: Callable[[T], "Cue"] = lambda item: item) -> list[list[T]]:
    """Greedy interval partitioning: cues that overlap go to further lanes (tracks), none is dropped.

    ``items`` are cues, or anything carrying one (``cue_of`` gets it). Lane 0 holds every cue that fits first.
    """
    lanes: list[list[T]] = []
    for item in sorted(items, key=lambda x: (cue_of(x).start_frame, cue_of(x).end_frame)):
        for lane in lanes:
            if cue_of(lane[-1]).end_frame <= cue_of(item).start_frame:
                lane.append(item)
                break
        else:
            lanes.append([item])
    return lanes


@dataclass
class CaptionDocument:
    """What the engine returns for one timeline: its clock, the words, the cues, and the languages they
    carry."""

    name: str
    timebase: Timebase
    source_language: str
    words: list[Word] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # [{"id": "S1", "name": "Ana"}, ...] when speakers were labelled (name absent when none was given)
    speakers: list[dict] = field(default_factory=list)

    def speaker_name(self, speaker_id: str | None) -> str | None:
        """The display name of ``speaker_id``: its given name, else "Speaker N" for "SN", else the id."""
        if speaker_id is None:
            return None
        for entry in self.speakers:
            if entry.get("id") == speaker_id and entry.get("name"):
                return str(entry["name"])
        return default_speaker_name(speaker_id)

    def to_dict(self) -> dict:
        out = {
            "timeline": {"name": self.name, **self.timebase.to_dict()},
            "source_language": self.source_language,
            "languages": list(self.languages or [self.source_language]),
            "words": [w.to_dict() for w in self.words],
            "cues": [c.to_dict(self.timebase) for c in self.cues],
        }
        if self.speakers:
            out["speakers"] = [dict(s) for s in self.speakers]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "CaptionDocument":
        tl = data["timeline"]
        timebase = Timebase.from_start_timecode(
            tl["rate"], tl.get("start_timecode", "00:00:00:00"), bool(tl.get("drop_frame", False))
        )
        return cls(
            name=tl.get("name", ""),
            timebase=timebase,
            source_language=data.get("source_language", "und"),
            words=[Word.from_dict(w) for w in data.get("words", [])],
            cues=[Cue.from_dict(c) for c in data.get("cues", [])],
            languages=list(data.get("languages", [])),
            warnings=list(data.get("warnings", [])),
            speakers=[dict(s) for s in data.get("speakers") or [] if isinstance(s, dict) and "id" in s],
        )


@dataclass
class LoadedTimeline:
    """A timeline read from disk: the OTIO object, its exact clock, and where it came from.

    For an ``.otioz`` the media is unpacked to a temporary ``media_root`` that is removed when this object is
    garbage-collected: keep it alive while regions taken from it are rendered or decoded.
    """

    timeline: otio.schema.Timeline
    timebase: Timebase
    name: str
    path: Path
    format: str
    media_root: Path
    warnings: list[str] = field(default_factory=list)
    # whether items may carry metadata["captionbridge"] (our readers' fixes, or a document we wrote); lets
    # bulk walks skip metadata look-ups, which are slow on OTIO's AnyDictionary when the key is absent
    annotated: bool = True

    @property
    def duration_frames(self) -> int:
        """Length of the timeline in frames (end of its longest track)."""
        from .timeline.otio_time import to_frames

        return to_frames(self.timeline.tracks.duration(), self.timebase.rate)

    def resolve_media_path(self, target_url: str) -> Path:
        from .timeline.media_paths import media_path_from_url

        return media_path_from_url(target_url, self.media_root)
