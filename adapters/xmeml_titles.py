"""FCP7 XML (xmeml) with captions as Text generator items: the fallback for editors without a caption import.

xmeml has no caption element. This writes a sequence at the timeline's clock (``<rate><timebase>/<ntsc>``, the
start timecode with ``<frame>`` and ``<displayformat>`` DF/NDF) whose video tracks hold one Text generator per
cue, one track per language (plus a further track where cues of one language overlap). ``<start>``/``<end>``
are record frames from the sequence start, so a cue at timeline frame ``f`` sits at ``f``. Premiere, Resolve
and FCP7 import it as a timeline whose titles can be copied onto the edit at its first frame.

With ``source`` (the xmeml the captions were made from), the title tracks are added on top of that edit's
video tracks instead, so importing the file gives the whole edit with its titles.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape

from ..core.errors import CaptionBridgeError, InputError
from ..core.model import CaptionDocument, cue_lanes
from ..core.timeline.timebase import Timebase
from .xml_input import parse_xml


def _rate(parent: ET.Element, tb: Timebase) -> ET.Element:
    rate = ET.SubElement(parent, "rate")
    ET.SubElement(rate, "timebase").text = str(tb.nominal_fps)
    ET.SubElement(rate, "ntsc").text = "TRUE" if Fraction(tb.rate).denominator == 1001 else "FALSE"
    return rate


def _param(effect: ET.Element, pid: str, name: str, value: str | None = None, **extra: str) -> ET.Element:
    p = ET.SubElement(effect, "parameter", authoringApp="PremierePro")
    ET.SubElement(p, "parameterid").text = pid
    ET.SubElement(p, "name").text = name
    for key, val in extra.items():
        ET.SubElement(p, key).text = val
    v = ET.SubElement(p, "value")
    if value is not None:
        v.text = value
    return v


_SLOT = "\ue001{}\ue001"


def _generator_template(tb: Timebase, font_size: int) -> str:
    """One Text generator item serialised once by ElementTree, with slots filled per cue (fast for
    features)."""
    gen = ET.Element("generatoritem", id=_SLOT.format("id"))
    ET.SubElement(gen, "name").text = _SLOT.format("name")
    ET.SubElement(gen, "enabled").text = "TRUE"
    ET.SubElement(gen, "duration").text = _SLOT.format("duration")
    _rate(gen, tb)
    ET.SubElement(gen, "start").text = _SLOT.format("start")
    ET.SubElement(gen, "end").text = _SLOT.format("end")
    ET.SubElement(gen, "in").text = "0"
    ET.SubElement(gen, "out").text = _SLOT.format("duration")
    ET.SubElement(gen, "anamorphic").text = "FALSE"
    ET.SubElement(gen, "alphatype").text = "black"
    effect = ET.SubElement(gen, "effect")
    ET.SubElement(effect, "name").text = "Text"
    ET.SubElement(effect, "effectid").text = "Text"
    ET.SubElement(effect, "effectcategory").text = "Text"
    ET.SubElement(effect, "effecttype").text = "generator"
    ET.SubElement(effect, "mediatype").text = "video"
    _param(effect, "str", "Text", _SLOT.format("text"))
    _param(effect, "fontname", "Font", "Helvetica")
    _param(effect, "fontsize", "Size", str(font_size), valuemin="0", valuemax="1000")
    _param(effect, "fontstyle", "Style", "1", valuemin="1", valuemax="4")
    _param(effect, "fontalign", "Alignment", "2", valuemin="1", valuemax="3")
    origin = _param(effect, "origin", "Origin")
    ET.SubElement(origin, "horiz").text = "0"
    ET.SubElement(origin, "vert").text = "0.38"
    color = _param(effect, "fontcolor", "Font Color")
    for key, val in (("alpha", "255"), ("red", "255"), ("green", "255"), ("blue", "255")):
        ET.SubElement(color, key).text = val
    labels = ET.SubElement(gen, "labels")
    ET.SubElement(labels, "label2").text = _SLOT.format("label")
    ET.indent(gen, space="  ", level=5)
    return ET.tostring(gen, encoding="unicode")


def _fill(template: str, values: dict[str, str]) -> str:
    parts = template.split("\ue001")
    # odd positions are slot names
    return "".join(values[p] if i % 2 else p for i, p in enumerate(parts))


def _languages(doc: CaptionDocument, languages: Iterable[str] | None) -> list[str]:
    langs = list(languages) if languages else (list(doc.languages) or [doc.source_language])
    if not languages:
        for cue in doc.cues:
            for lang in cue.text:
                if lang not in langs:
                    langs.append(lang)
    return langs


def _title_tracks(doc: CaptionDocument, langs: list[str], font_size: int) -> list[str]:
    """The inner XML of one video track per language (and overlap lane): Text generators, one per cue."""
    template = _generator_template(doc.timebase, font_size)
    tracks: list[str] = []
    item_no = 0
    for lang in langs:
        cues = [c for c in doc.cues if (c.text.get(lang) or "").strip()]
        for lane_index, lane in enumerate(cue_lanes(cues)):
            items = []
            label = escape(f"Captions {lang}" + (f" {lane_index + 1}" if lane_index else ""))
            for cue in lane:
                if cue.start_frame < 0:
                    raise InputError(f"caption at frame {cue.start_frame} starts before the timeline")
                item_no += 1
                text = cue.text[lang].strip()
                items.append(
                    _fill(
                        template,
                        {
                            "id": escape(f"captionbridge-{lang}-{item_no}", {'"': "&quot;"}),
                            "name": escape(" ".join(text.split())[:60] or "Text"),
                            "duration": str(cue.duration),
                            "start": str(cue.start_frame),
                            "end": str(cue.end_frame),
                            # FCP7 text uses CR between lines, written as &#13; (a raw CR would be read back
                            # as LF).
                            "text": escape(text).replace("\n", "&#13;"),
                            "label": label,
                        },
                    )
                )
            tracks.append("\n          " + "\n          ".join(items) + "\n        ")
    return tracks


def _add_tracks(video: ET.Element, contents: list[str]) -> dict[str, str]:
    slots = {}
    for content in contents:
        key = f"cbtrack{len(slots)}"
        track = ET.SubElement(video, "track")
        track.text = _SLOT.format(key)
        ET.SubElement(track, "enabled").text = "TRUE"
        ET.SubElement(track, "locked").text = "FALSE"
        slots[key] = content
    return slots


def build_xmeml(
    doc: CaptionDocument,
    languages: Iterable[str] | None = None,
    width: int = 1920,
    height: int = 1080,
    font_size: int = 42,
) -> str:
    """A new sequence holding only the title tracks, as text (see module docstring)."""
    tb = doc.timebase
    langs = _languages(doc, languages)
    total = max((c.end_frame for c in doc.cues), default=1)

    root = ET.Element("xmeml", version="5")
    seq = ET.SubElement(root, "sequence", id="captionbridge-sequence")
    ET.SubElement(seq, "name").text = f"{doc.name or 'Timeline'} captions"
    ET.SubElement(seq, "duration").text = str(total)
    _rate(seq, tb)
    tc = ET.SubElement(seq, "timecode")
    _rate(tc, tb)
    ET.SubElement(tc, "string").text = tb.start_timecode
    ET.SubElement(tc, "frame").text = str(tb.start_frame)
    ET.SubElement(tc, "displayformat").text = "DF" if tb.drop_frame else "NDF"
    media = ET.SubElement(seq, "media")
    video = ET.SubElement(media, "video")
    fmt = ET.SubElement(ET.SubElement(video, "format"), "samplecharacteristics")
    _rate(fmt, tb)
    ET.SubElement(fmt, "width").text = str(width)
    ET.SubElement(fmt, "height").text = str(height)
    ET.SubElement(fmt, "anamorphic").text = "FALSE"
    ET.SubElement(fmt, "pixelaspectratio").text = "square"
    ET.SubElement(fmt, "fielddominance").text = "none"
    slots = _add_tracks(video, _title_tracks(doc, langs, font_size))
    ET.SubElement(media, "audio")
    ET.indent(root, space="  ")
    return _fill(ET.tostring(root, encoding="unicode"), slots)


def _top_sequence(root: ET.Element) -> ET.Element | None:
    for path in ("sequence", "project/children/sequence", "children/sequence"):
        found = root.find(path)
        if found is not None:
            return found
    return next(root.iter("sequence"), None)


def _sequence_clock(seq: ET.Element, source: Path) -> Timebase:
    try:
        nominal = int(seq.findtext("rate/timebase"))
        ntsc = (seq.findtext("rate/ntsc") or "FALSE").strip().upper() == "TRUE"
        rate = Fraction(nominal * 1000, 1001) if ntsc else Fraction(nominal)
        frame = int(seq.findtext("timecode/frame") or 0)
        drop = (seq.findtext("timecode/displayformat") or "NDF").strip().upper() == "DF"
        return Timebase(rate, frame, drop and rate in (Fraction(30000, 1001), Fraction(60000, 1001)))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: the sequence has no readable <rate>/<timecode> ({exc})") from None


def add_titles_to_xmeml(
    doc: CaptionDocument,
    source: str | os.PathLike,
    languages: Iterable[str] | None = None,
    font_size: int = 42,
) -> str:
    """The source xmeml (the edit the captions were made from) with title tracks added on top of its video
    tracks.

    Everything else is kept as ElementTree reads it, except relative media ``<pathurl>``s, which become
    absolute (against the source's folder) so the written file finds its media from wherever it is written.
    Refuses a source whose clock differs from the captions'.
    """
    from .media_rebase import rebase_xmeml_pathurls

    source = Path(source)
    root = parse_xml(source, source, "FCP7 XML")
    rebase_xmeml_pathurls(root, source.parent)
    seq = _top_sequence(root) if root.tag == "xmeml" else None
    if seq is None:
        raise InputError(f"{source}: no <sequence> in this FCP7 XML")
    clock = _sequence_clock(seq, source)
    if clock.rate != doc.timebase.rate or clock.start_frame != doc.timebase.start_frame:
        raise InputError(
            f"{source}: the sequence runs at {clock.describe()} but the captions were made for "
            f"{doc.timebase.describe()}: caption this sequence again"
        )
    media = seq.find("media")
    if media is None:
        media = ET.SubElement(seq, "media")
    video = media.find("video")
    if video is None:
        video = ET.Element("video")
        media.insert(0, video)
    slots = _add_tracks(video, _title_tracks(doc, _languages(doc, languages), font_size))
    return _fill(ET.tostring(root, encoding="unicode"), slots)


def write_xmeml_titles(
    doc: CaptionDocument,
    out_path: str | os.PathLike,
    languages: Iterable[str] | None = None,
    source: str | os.PathLike | None = None,
) -> Path:
    """Write FCP7 XML with one Text generator per cue on new video tracks (one per language).

    Without ``source``: a new sequence holding only the titles, at the captions' clock. With ``source`` (the
    xmeml the timeline was read from): that edit with the title tracks added on top of its video tracks.
    """
    path = Path(out_path)
    body = add_titles_to_xmeml(doc, source, languages) if source else build_xmeml(doc, languages)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n')
            handle.write(body.encode("utf-8"))
            handle.write(b"\n")
    except OSError as exc:
        raise CaptionBridgeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
