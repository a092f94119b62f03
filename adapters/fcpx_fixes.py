"""FCPXML 1.8-1.10 (``.fcpxml`` files and Resolve's ``.fcpxmld`` bundles) through the fcpx_xml adapter, fixed.

The released adapter (otio-fcpx-xml-adapter 1.0.0) truncates rates to integers (23.976 becomes 23 fps, so
every NTSC timeline drifts), truncates times to whole frames with ``int()``, ignores the sequence's
``tcStart`` (a 1-hour gap appears before the first clip and the start timecode is lost), ignores ``tcFormat``
(drop-frame), cannot find media in FCPXML 1.9+/1.10 (``<media-rep src>`` instead of ``asset src``), ignores
``enabled="0"`` and puts the audio of video clips on video tracks. ``read_fcpxml`` fixes these: times are
exact rationals at the format's exact rate, clips start from the timeline's first frame, the start timecode
and drop-frame come from the sequence, and every clip whose asset has audio also sits on an audio track. A
constant-speed ``timeMap`` becomes a LinearTimeWarp; variable or reversed retimes are reported per clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from ..core.errors import InputError, TimelineError
from ..core.timeline.timebase import parse_rate
from .xml_input import parse_xml

NS = "captionbridge"

try:
    _fcpx = otio.adapters.from_name("fcpx_xml").module()
except Exception:  # pragma: no cover - dependency missing
    _fcpx = None


@dataclass
class FcpxmlInfo:
    rate: Fraction | None
    start_frame: int
    drop_frame: bool | None
    warnings: list[str] = field(default_factory=list)


def _seconds(value: str | None) -> Fraction:
    """FCPXML time ("3600s", "1001/24000s", "0s") as exact seconds."""
    if not value or value == "0s":
        return Fraction(0)
    text = value.strip()
    if text.endswith("s"):
        text = text[:-1]
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"unreadable FCPXML time {value!r}")


if _fcpx is not None:

    class FixedFcpxXml(_fcpx.FcpxXml):
        def __init__(self, xml_string):
            super().__init__(xml_string)
            self._tc_start: list[Fraction] = [Fraction(0)]
            self.warnings: list[str] = []
            self._assets = {a.get("id"): a for a in self.fcpx_xml.iter("asset")}
            self._formats = {f.get("id"): f for f in self.fcpx_xml.iter("format")}

        # -- exact time ------------------------------------------------------------------------------------
        def _exact_rate(self, format_id) -> Fraction:
            fmt = self._formats.get(format_id)
            if fmt is None or not fmt.get("frameDuration"):
                raise TimelineError(f"FCPXML format {format_id!r} has no frameDuration")
            return parse_rate(1 / _seconds(fmt.get("frameDuration")))

        def _format_frame_rate(self, format_id):
            return float(self._exact_rate(format_id))

        def _number_of_frames(self, time_value, format_id):
            return round(_seconds(time_value) * self._exact_rate(format_id))

        def _time_range(self, element, format_id):
            rate = self._exact_rate(format_id)
            return otio.opentime.TimeRange(
                otio.opentime.RationalTime(round(_seconds(element.get("start", "0s")) * rate), float(rate)),
                otio.opentime.RationalTime(round(_seconds(element.get("duration")) * rate), float(rate)),
            )

        def _asset_by_id(self, asset_id):
            return self._assets.get(asset_id)

        def _format_by_id(self, format_id):
            return self._formats.get(format_id)

        def _audio_only(self, element):
            # the released test is ``if asset and ...``: a childless <asset> (FCPXML 1.8) is falsy
            if element.tag == "asset-clip":
                asset = self._asset_by_id(element.get("ref"))
                return asset is not None and asset.get("hasVideo", "0") == "0"
            return super()._audio_only(element)

        def _reference_from_id(self, asset_id, default_format):
            asset = self._asset_by_id(asset_id)
            src = asset.get("src", "") if asset is not None else ""
            if not src and asset is not None:
                rep = asset.find("./media-rep[@kind='original-media']")
                if rep is None:
                    rep = asset.find("./media-rep")
                src = rep.get("src", "") if rep is not None else ""
            if asset is None or not src:
                return otio.schema.MissingReference(name=asset.get("name", "") if asset is not None else "")
            rate = self._exact_rate(asset.get("format", default_format) or default_format)
            available = otio.opentime.TimeRange(
                otio.opentime.RationalTime(round(_seconds(asset.get("start")) * rate), float(rate)),
                otio.opentime.RationalTime(round(_seconds(asset.get("duration")) * rate), float(rate)),
            )
            ref = otio.schema.ExternalReference(target_url=src, available_range=available)
            ref.name = asset.get("name", "")
            ref.metadata[NS] = {
                "has_audio": asset.get("hasAudio", "0") == "1",
                "has_video": asset.get("hasVideo", "0") == "1",
            }
            return ref

        # -- start timecode: clip offsets count from tcStart ----------------------------------------------
        def _squence_to_stack(self, sequence_element, name="", source_range=None):
            self._tc_start.append(_seconds(sequence_element.get("tcStart")))
            try:
                stack = super()._squence_to_stack(sequence_element, name, source_range)
            finally:
                self._tc_start.pop()
            self._add_audio_tracks(stack)
            self._order_lanes(stack)
            return stack

        @staticmethod
        def _order_lanes(stack) -> None:
            """Primary storyline first (V1/A1), then lanes below it (-1, -2 ...: A2, A3), then lanes above."""

            def lane_key(track):
                text = (track.name or "0").split()[0]
                try:
                    lane = int(text)
                except ValueError:
                    lane = 0
                order = 0 if lane == 0 else (-lane if lane < 0 else 1000 + lane)
                return (track.kind != otio.schema.TrackKind.Video, order)

            children = list(stack)
            ordered = sorted(children, key=lane_key)
            if ordered != children:
                for _ in range(len(children)):
                    del stack[0]
                for track in ordered:
                    stack.append(track)

        def _offset_and_lane(self, clip, default_format):
            offset, lane = super()._offset_and_lane(clip, default_format)
            tc = self._tc_start[-1]
            if tc:
                rate = _fcpx_rate(offset.rate)
                offset = otio.opentime.RationalTime(offset.value - round(tc * rate), offset.rate)
            return offset, lane

        # -- per-clip flags and constant speed ------------------------------------------------------------
        def _build_composable(self, element, default_format):
            item = super()._build_composable(element, default_format)
            timing = self._timing_clip(element)
            if timing.get("enabled", "1") == "0" or element.get("enabled", "1") == "0":
                item.enabled = False
            timemap = timing.find("./timeMap")
            if timemap is not None and isinstance(item, otio.schema.Clip):
                self._apply_time_map(item, timing, timemap)
            return item

        def _apply_time_map(self, item, timing, timemap) -> None:
            """A two-point (or collinear) timeMap is a constant speed: honour it. Anything else is
            reported."""
            name = timing.get("name", "") or item.name
            points = [
                (_seconds(p.get("time")), _seconds(p.get("value"))) for p in timemap.findall("./timept")
            ]
            slopes = {(v1 - v0) / (t1 - t0) for (t0, v0), (t1, v1) in zip(points, points[1:]) if t1 != t0}
            if len(slopes) != 1 or min(slopes) <= 0:
                kind = "reversed" if slopes and min(slopes) < 0 else "variable-speed"
                message = (
                    f"clip {name!r}: {kind} retime (timeMap) is not supported; its audio is placed at "
                    "100 % speed"
                )
                item.metadata.setdefault(NS, {})["warnings"] = [message]
                self.warnings.append(message)
                return
            speed = slopes.pop()
            if speed == 1:
                return
            # the clip's start is in the retimed (time) axis; the source position is the map's value there
            sr = item.source_range
            rate = parse_rate(sr.start_time.rate)
            t_start = _seconds(timing.get("start", "0s"))
            source = points[0][1] + (t_start - points[0][0]) * speed
            item.source_range = otio.opentime.TimeRange(
                otio.opentime.RationalTime(float(source * rate), sr.start_time.rate), sr.duration
            )
            item.effects.append(otio.schema.LinearTimeWarp(name="timeMap", time_scalar=float(speed)))

        # -- audio of video clips ------------------------------------------------------------------------
        @staticmethod
        def _add_audio_tracks(stack) -> None:
            """FCPXML keeps a clip's audio with its video: give every video lane holding clips with audio an
            audio track of the same clips (gaps elsewhere)."""
            new_tracks = []
            for track in list(stack):
                if not isinstance(track, otio.schema.Track) or track.kind != otio.schema.TrackKind.Video:
                    continue
                audio = otio.schema.Track(name=f"{track.name} audio", kind=otio.schema.TrackKind.Audio)
                any_audio = False
                for child in track:
                    has_audio = False
                    if isinstance(child, otio.schema.Clip):
                        meta = child.media_reference.metadata.get(NS, {}) if child.media_reference else {}
                        has_audio = bool(meta.get("has_audio", False)) if hasattr(meta, "get") else False
                    elif isinstance(child, otio.schema.Stack):
                        has_audio = any(
                            isinstance(t, otio.schema.Track) and t.kind == otio.schema.TrackKind.Audio
                            for t in child
                        )
                    if has_audio and not isinstance(child, otio.schema.Transition):
                        audio.append(child.clone())
                        any_audio = True
                    elif not isinstance(child, otio.schema.Transition):
                        audio.append(
                            otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=child.duration()))
                        )
                if any_audio:
                    new_tracks.append(audio)
            for track in new_tracks:
                stack.append(track)


def _fcpx_rate(rate: float) -> Fraction:
    return parse_rate(rate)


def read_fcpxml(data: bytes | str, source: str = "fcpxml") -> tuple[otio.schema.Timeline, FcpxmlInfo]:
    """Parse FCPXML (its first project) into (Timeline, clock info). Raises InputError."""
    if _fcpx is None:  # pragma: no cover
        raise InputError(
            "reading FCPXML needs the otio-fcpx-xml-adapter package: pip install otio-fcpx-xml-adapter"
        )
    root = parse_xml(data, source, "FCPXML", root_tag="fcpxml")
    project = root.find(".//project")
    sequence = project.find("./sequence") if project is not None else None
    if sequence is None:
        raise InputError(f"{source}: the FCPXML holds no project/sequence (export a timeline, not clips)")
    reader = FixedFcpxXml(data if isinstance(data, str) else data.decode("utf-8"))
    project = reader.fcpx_xml.find(".//project")  # the reader's own tree: it maps children to parents
    sequence = project.find("./sequence")
    try:
        rate = reader._exact_rate(sequence.get("format"))
        stack = reader._squence_to_stack(sequence, name=project.get("name", ""))
    except (InputError, TimelineError):
        raise
    except (AttributeError, KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
        raise InputError(f"{source}: the FCPXML could not be read ({type(exc).__name__}: {exc})")
    start_frame = round(_seconds(sequence.get("tcStart")) * rate)
    timeline = otio.schema.Timeline(
        name=project.get("name", "") or Path(source).stem,
        global_start_time=otio.opentime.RationalTime(start_frame, float(rate)),
    )
    timeline.tracks = stack
    tc_format = (sequence.get("tcFormat") or "").upper()
    drop = True if tc_format == "DF" else False if tc_format == "NDF" else None
    timeline.metadata[NS] = {"fcpxml_version": root.get("version"), "tcFormat": tc_format or None}
    return timeline, FcpxmlInfo(rate, start_frame, drop, list(reader.warnings))


def read_fcpxml_path(path: Path) -> tuple[otio.schema.Timeline, FcpxmlInfo]:
    """Read a ``.fcpxml`` file or a ``.fcpxmld`` bundle (its ``Info.fcpxml``)."""
    target = path / "Info.fcpxml" if path.is_dir() else path
    if not target.is_file():
        raise InputError(f"{path}: the .fcpxmld bundle has no Info.fcpxml")
    return read_fcpxml(target.read_bytes(), str(path))
