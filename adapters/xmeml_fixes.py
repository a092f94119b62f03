"""FCP7 / Premiere xmeml through OTIO's ``fcp_xml`` adapter, with the released adapter's gaps fixed.

The released parser (otio-fcp-adapter 1.0.0) loses things that change what a timeline sounds like:

* nested sequences come through as an empty Stack (it parses the ``<sequence>`` instead of its ``<media>``):
  their audio silently disappears;
* ``<enabled>FALSE</enabled>`` on a clip or a track is only kept as metadata; ``Item.enabled`` stays True;
* a constant speed change (Time Remap) is a generic Effect and the source range ignores it (in/out of a
  retimed clipitem count *retimed* frames: source frame = in x speed);
* exploded multichannel audio keeps only the track of channel index 0;
* reading is super-linear in the number of clipitems.

``read_xmeml`` subclasses the adapter's parser and fixes all of these. What it adds lives in each object's
``metadata["captionbridge"]``: ``channels`` (0-based source channels), ``gain`` (linear clip level), ``speed``
(constant speed factor, also a real ``LinearTimeWarp`` effect) and ``warnings`` (what could not be
represented, per clip, e.g. variable speed or reversed clips).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction

import opentimelineio as otio
from opentimelineio import opentime, schema

from ..core.errors import InputError
from .xml_input import parse_xml

NS = "captionbridge"

try:  # the adapter from opentimelineio-plugins; it must be loaded through OTIO's plugin system
    _fcp = otio.adapters.from_name("fcp_xml").module()
except Exception:  # pragma: no cover - dependency missing
    _fcp = None


@dataclass(frozen=True)
class XmemlInfo:
    """What the document says about the sequence's clock, read straight from the XML (never guessed)."""

    timebase: int | None
    ntsc: bool
    start_frame: int | None
    start_string: str | None
    drop_frame: bool | None  # None: no <displayformat>
    warnings: tuple[
        str, ...
    ] = ()  # per-clip problems (also in each clip's metadata["captionbridge"]["warnings"])


def _text(element, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _is_false(element, path: str) -> bool:
    value = _text(element, path)
    return value is not None and value.upper() == "FALSE"


if _fcp is not None:

    class _Context(_fcp._Context):
        """The adapter's inherited-value context with memoised look-ups.

        The released context runs ``element.find("./rate/timebase")`` on every ancestor for every clipitem; on
        a track or sequence element that scans all its children, so reading was quadratic in the clip count
        (10,000 clipitems: ~11 s). Look-ups on big elements are cached per parse.
        """

        def __init__(self, element=None, parent_elements=None, cache=None):
            super().__init__(element, parent_elements)
            self.cache = {} if cache is None else cache

        def context_pushing_element(self, element):
            return _Context(element, self.elements, self.cache)

        def __getitem__(self, key):
            cache = self.cache
            for element in reversed(self.elements):
                if len(element) > 8:
                    ck = (element, key)
                    try:
                        found = cache[ck]
                    except KeyError:
                        found = cache[ck] = element.find(key)
                else:
                    found = element.find(key)
                if found is not None:
                    return found
            raise KeyError(key)

    class FixedFCP7XMLParser(_fcp.FCP7XMLParser):
        """``FCP7XMLParser`` with nested sequences, enabled flags, speed, channel mapping and gain."""

        def __init__(self, element_tree):
            super().__init__(element_tree)
            self.warnings: list[str] = []

        # Our annotations are staged in plain dicts and written to each object's metadata once: a look-up that
        # misses on OTIO's AnyDictionary costs a C++ exception, which dominated reading 10,000 clipitems.
        def _ours(self, obj) -> dict:
            staged = self.__dict__.setdefault("_staged", {})
            return staged.setdefault(id(obj), (obj, {}))[1]

        def _flush(self, obj) -> None:
            entry = self.__dict__.get("_staged", {}).pop(id(obj), None)
            if entry is not None and entry[1]:
                obj.metadata[NS] = entry[1]

        def _warn(self, item, message: str) -> None:
            self._ours(item).setdefault("warnings", []).append(message)
            self.warnings.append(message)

        def top_level_sequences(self):
            context = _Context()
            top = list(self._derefed_iterfind(self._etree, "./sequence"))
            nested = list(self._derefed_iterfind(self._etree, ".//children/sequence"))
            return [self.timeline_for_sequence(s, context) for s in top + nested]

        # -- tracks: keep every exploded channel track, honour track <enabled> -------------------------------
        def stack_for_element(self, element, context):
            if element.tag == "sequence":
                # A nested sequence: its tracks live in <media>; rates inherit from the nested sequence.
                context = context.context_pushing_element(element)
                media = self._derefed_element(element.find("./media"))
                name = _fcp._name_from_element(element)
                if media is None:
                    return schema.Stack(name=name)
                stack = self.stack_for_element(media, context)
                stack.name = name
                timecode = element.find("./timecode")
                if timecode is not None:
                    self._ours(stack)["nest_start_timecode"] = _text(timecode, "./string") or ""
                return stack
            local_context = context.context_pushing_element(element)
            tracks = []
            for media_type_element in self._derefed_iterfind(element, "./"):
                try:
                    track_kind = _fcp._track_kind_from_element(media_type_element)
                except ValueError:
                    continue
                audio_index = 0
                for track_element in self._derefed_iterfind(media_type_element, "./track"):
                    track = self.track_for_element(track_element, track_kind, local_context)
                    if track_kind == schema.TrackKind.Audio:
                        audio_index += 1
                        exploded_index = track_element.attrib.get("currentExplodedTrackIndex")
                        exploded_count = track_element.attrib.get("totalExplodedTrackCount")
                        if exploded_count and exploded_count != "1":
                            track.metadata[NS] = {
                                "exploded": {"index": int(exploded_index or 0), "count": int(exploded_count)}
                            }
                    if _is_false(track_element, "./enabled"):
                        track.enabled = False
                    tracks.append(track)
            return schema.Stack(
                children=tracks,
                markers=_fcp.markers_from_element(element, context),
                name=_fcp._name_from_element(element),
            )

        # -- media: one reference per <file>, shared by every clipitem that uses it -------------------------
        def media_reference_for_file_element(self, file_element, context):
            cache = self.__dict__.setdefault("_ref_cache", {})
            key = (file_element, _fcp._rate_from_context(context.context_pushing_element(file_element)))
            ref = cache.get(key)
            if ref is None:
                ref = cache[key] = super().media_reference_for_file_element(file_element, context)
            return ref

        # -- clips -------------------------------------------------------------------------------------------
        def clip_for_element(self, clipitem_element, item_range, start_offset, context):
            item = super().clip_for_element(clipitem_element, item_range, start_offset, context)
            if _is_false(clipitem_element, "./enabled"):
                item.enabled = False
            if isinstance(item, schema.Clip):
                self._apply_channels(item, clipitem_element)
            elif isinstance(item, schema.Stack):
                index = _text(clipitem_element, "./sourcetrack/trackindex")
                if index and index.isdigit():
                    self._ours(item)["nest_output_channel"] = int(index) - 1
            self._apply_filters(item, clipitem_element)
            self._flush(item)
            # the caller then does metadata.setdefault("fcp_xml", {}): make that a hit, not a C++ KeyError
            item.metadata[_fcp.META_NAMESPACE] = {}
            return item

        def _apply_channels(self, item, clipitem_element) -> None:
            index = _text(clipitem_element, "./sourcetrack/trackindex")
            mediatype = _text(clipitem_element, "./sourcetrack/mediatype")
            if index is not None and (mediatype or "audio").lower() == "audio":
                try:
                    channel = int(index) - 1
                except ValueError:
                    return
                if channel >= 0:
                    # xmeml audio tracks are mono: each clipitem plays one channel of its file (a stereo clip
                    # is an exploded pair of tracks, channel 1 on the first, channel 2 on the second).
                    self._ours(item)["channels"] = [channel]

        def _apply_filters(self, item, clipitem_element) -> None:
            for filter_element in self._derefed_iterfind(clipitem_element, "./filter"):
                effect = filter_element.find("./effect")
                if effect is None:
                    continue
                effect_id = (_text(effect, "./effectid") or "").lower()
                if effect_id == "timeremap":
                    self._apply_speed(item, effect, filter_element)
                elif effect_id == "audiolevels":
                    self._apply_gain(item, effect)

        @staticmethod
        def _parameter(effect, parameter_id: str):
            for parameter in effect.iterfind("./parameter"):
                if (_text(parameter, "./parameterid") or "").lower() == parameter_id:
                    return parameter
            return None

        def _apply_speed(self, item, effect, filter_element) -> None:
            name = item.name or "clip"
            if _is_false(filter_element, "./enabled"):
                return
            variable = self._parameter(effect, "variablespeed")
            speed_param = self._parameter(effect, "speed")
            reverse = self._parameter(effect, "reverse")
            try:
                percent = Fraction(_text(speed_param, "./value") or "100")
            except (ValueError, ZeroDivisionError):
                self._warn(item, f"clip {name!r}: unreadable Time Remap speed; played at 100 %")
                return
            if variable is not None and (_text(variable, "./value") or "0") not in ("0", "FALSE", "false"):
                self._warn(
                    item,
                    f"clip {name!r}: variable speed (Time Remap keyframes) is not supported; "
                    f"its audio is placed at a constant {float(percent):g} %",
                )
            if reverse is not None and (_text(reverse, "./value") or "").upper() == "TRUE":
                percent = -abs(percent)
            if percent < 0:
                self._warn(
                    item, f"clip {name!r}: reversed playback is not supported; its audio is left silent"
                )
                self._ours(item)["unsupported"] = "reverse"
                return
            if percent == 0:
                self._warn(item, f"clip {name!r}: a freeze frame (0 % speed) has no audio; left silent")
                self._ours(item)["unsupported"] = "freeze"
                return
            if percent == 100:
                return
            speed = percent / 100
            # in/out of a retimed clipitem count retimed frames: the source starts at in x speed.
            sr = item.source_range
            if sr is not None:
                media_start = opentime.RationalTime(0, sr.start_time.rate)
                ref = getattr(item, "media_reference", None)
                if ref is not None and getattr(ref, "available_range", None) is not None:
                    media_start = ref.available_range.start_time.rescaled_to(sr.start_time.rate)
                in_frames = sr.start_time.value - media_start.value
                new_start = media_start.value + float(Fraction(in_frames).limit_denominator(10**6) * speed)
                item.source_range = opentime.TimeRange(
                    opentime.RationalTime(new_start, sr.start_time.rate), sr.duration
                )
            item.effects.append(schema.LinearTimeWarp(name="Time Remap", time_scalar=float(speed)))
            self._ours(item)["speed"] = [speed.numerator, speed.denominator]

        def _apply_gain(self, item, effect) -> None:
            for parameter in effect.iterfind("./parameter"):
                if (_text(parameter, "./parameterid") or "").lower() != "level":
                    continue
                value = _text(parameter, "./value")
                if value is None and parameter.find("./keyframe") is not None:
                    value = _text(parameter, "./keyframe/value")
                    self._warn(item, f"clip {item.name!r}: keyframed audio level; using its first value")
                try:
                    gain = float(value) if value is not None else None
                except ValueError:
                    gain = None
                if gain is not None:
                    ours = self._ours(item)
                    ours["gain"] = gain * ours.get("gain", 1.0)


def xmeml_info(root: ET.Element) -> XmemlInfo:
    """The first top-level sequence's timebase and timecode, straight from the XML."""
    seq = root.find("./sequence")
    if seq is None:
        seq = root.find(".//children/sequence")
    if seq is None:
        seq = root.find(".//sequence")
    if seq is None:
        return XmemlInfo(None, False, None, None, None)
    tb = _text(seq, "./rate/timebase")
    ntsc = (_text(seq, "./rate/ntsc") or "FALSE").upper() == "TRUE"
    tc = seq.find("./timecode")
    frame = _text(tc, "./frame")
    display = (_text(tc, "./displayformat") or "").upper()
    return XmemlInfo(
        timebase=int(float(tb)) if tb else None,
        ntsc=ntsc,
        start_frame=int(frame) if frame and frame.lstrip("-").isdigit() else None,
        start_string=_text(tc, "./string"),
        drop_frame=(display == "DF") if display in ("DF", "NDF") else None,
    )


def read_xmeml(data: bytes | str, source: str = "xmeml") -> tuple[otio.schema.Timeline, XmemlInfo]:
    """Parse an xmeml document into (Timeline of its first sequence, clock info). Raises InputError."""
    if _fcp is None:  # pragma: no cover
        raise InputError(
            "reading Premiere/FCP7 XML needs the opentimelineio-plugins package: "
            "pip install opentimelineio-plugins"
        )
    root = parse_xml(data, source, "Premiere/FCP7 XML", root_tag="xmeml")
    parser = FixedFCP7XMLParser(root)
    elements = list(parser._derefed_iterfind(root, "./sequence")) + list(
        parser._derefed_iterfind(root, ".//children/sequence")
    )
    if not elements:
        raise InputError(f"{source}: the XML holds no <sequence> (export the sequence itself, not a bin)")
    try:
        timeline = parser.timeline_for_sequence(elements[0], _Context())
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise InputError(f"{source}: the XML could not be read as a sequence ({type(exc).__name__}: {exc})")
    if len(elements) > 1:
        parser.warnings.insert(
            0,
            f"the file holds {len(elements)} sequences; using the first, {timeline.name!r} "
            "(export one sequence to choose another)",
        )
    info = xmeml_info(root)
    return timeline, XmemlInfo(
        info.timebase, info.ntsc, info.start_frame, info.start_string, info.drop_frame, tuple(parser.warnings)
    )
