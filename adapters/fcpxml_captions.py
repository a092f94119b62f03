"""FCPXML 1.9/1.10 with ``<caption>`` elements, for Final Cut Pro and Resolve (File > Import > Timeline).

Neither OTIO adapter writes captions (the fcpx_xml adapter ignores ``<caption>`` and loses tcStart), so this
module writes the document with ElementTree. Layout::

    <fcpxml version="1.10">
      <resources><format id="r1" frameDuration="1001/24000s" .../></resources>
      <library><event name="CaptionBridge"><project name="Reel 1 captions">
        <sequence format="r1" tcStart="86486400/24000s" tcFormat="NDF" duration="...">
          <spine>
            <gap name="Gap" offset="<tcStart>" start="<tcStart>" duration="<whole timeline>">
              <caption lane="1" offset="<tcStart + cue start>" start="<tcStart>" duration="<cue>"
                       role="iTT?captionFormat=ITT.en" name="...">
                <text placement="bottom"><text-style ref="ts1">line 1\nline 2</text-style></text>
                <text-style-def id="ts1"><text-style font="Helvetica" fontSize="..." .../></text-style-def>
              </caption> ...

Every time is an exact multiple of the frame duration, written as ``<frames * num>/<den>s`` (``0s`` for zero),
so 23.976 stays 1001/24000 and 29.97 drop-frame stays 1001/30000 with ``tcFormat="DF"``. Anchored items'
offsets are in the parent gap's time, which starts at tcStart: a cue at timeline frame ``f`` sits at ``tcStart
+ f`` frames. Each language gets its own caption role (``ITT.<lang>``) and lane; cues of one language that
overlap go to a further lane instead of being dropped. Low-confidence words become ``<marker value="check:
word">`` elements on the gap, after the captions (the DTD's order), for review. The element order and
attributes follow Apple's FCPXML 1.10 DTD.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Iterable

from ..core.errors import CaptionBridgeError, InputError
from ..core.model import CaptionDocument, cue_lanes
from ..core.timeline.timebase import Timebase
from .xml_input import parse_xml

FCPXML_VERSIONS = ("1.9", "1.10")

# Final Cut's caption languages are BCP 47; these are the spellings its role menu uses.
_ROLE_LANGUAGE = {
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hant": "zh-Hant",
    "en": "en",
    "und": "en",
}


def caption_role(language: str) -> str:
    lang = _ROLE_LANGUAGE.get(language.lower(), language)
    return f"iTT?captionFormat=ITT.{lang}"


def frame_duration(timebase: Timebase) -> tuple[int, int]:
    """``(num, den)`` of one frame in FCPXML's conventional spelling: 1001/24000, 1001/30000, 1/25, 1/50..."""
    rate = Fraction(timebase.rate)
    if rate.denominator == 1001:
        return 1001, rate.numerator
    if rate.denominator == 1:
        return 1, rate.numerator
    return rate.denominator, rate.numerator


def fcp_time(frames: int, timebase: Timebase) -> str:
    """Exact rational seconds of ``frames`` frames: ``"86486400/24000s"``; whole seconds as ``"3600s"``."""
    if frames == 0:
        return "0s"
    num, den = frame_duration(timebase)
    value = Fraction(frames * num, den)
    if value.denominator == 1:
        return f"{value.numerator}s"
    return f"{frames * num}/{den}s"


def parse_fcp_time(text: str) -> Fraction:
    """``"1001/24000s"`` -> Fraction(1001, 24000); ``"3600s"`` -> 3600."""
    if not text.endswith("s"):
        raise ValueError(f"not an FCPXML time: {text!r}")
    return Fraction(text[:-1])


def _format_name(timebase: Timebase, height: int) -> str:
    rate = Fraction(timebase.rate)
    code = {Fraction(24000, 1001): "2398", Fraction(30000, 1001): "2997", Fraction(60000, 1001): "5994"}.get(
        rate, str(rate.numerator) if rate.denominator == 1 else ""
    )
    return f"FFVideoFormat{height}p{code}" if code else ""


def _languages(doc: CaptionDocument, languages: Iterable[str] | None) -> list[str]:
    if languages:
        langs = list(languages)
        known = set(doc.languages) | {lang for c in doc.cues for lang in c.text}
        missing = [lang for lang in langs if lang not in known]
        if missing:
            raise InputError(
                f"the captions have no {', '.join(missing)} text (they have: {', '.join(sorted(known))})"
            )
        return langs
    out = list(doc.languages)
    for cue in doc.cues:
        for lang in cue.text:
            if lang not in out:
                out.append(lang)
    return out or [doc.source_language]


def build_fcpxml(
    doc: CaptionDocument,
    languages: Iterable[str] | None = None,
    version: str = "1.10",
    width: int = 1920,
    height: int = 1080,
    project_name: str | None = None,
    duration_frames: int | None = None,
    markers: bool = True,
    confidence_threshold: float = 0.5,
) -> ET.ElementTree:
    """The FCPXML document as an ElementTree (see module docstring)."""
    if version not in FCPXML_VERSIONS:
        raise InputError(f"FCPXML version {version} is not supported (use {' or '.join(FCPXML_VERSIONS)})")
    tb = doc.timebase
    langs = _languages(doc, languages)
    last = max((c.end_frame for c in doc.cues), default=0)
    total = max(duration_frames or 0, last, 1)
    num, den = frame_duration(tb)
    tc_start = tb.start_frame

    root = ET.Element("fcpxml", version=version)
    resources = ET.SubElement(root, "resources")
    fmt = ET.SubElement(
        resources,
        "format",
        id="r1",
        frameDuration=f"{num}/{den}s" if num != 1 else f"1/{den}s",
        width=str(width),
        height=str(height),
        colorSpace="1-1-1 (Rec. 709)",
    )
    name = _format_name(tb, height)
    if name:
        fmt.set("name", name)
    library = ET.SubElement(root, "library")
    event = ET.SubElement(library, "event", name="CaptionBridge")
    project = ET.SubElement(event, "project", name=project_name or f"{doc.name or 'Timeline'} captions")
    sequence = ET.SubElement(
        project,
        "sequence",
        format="r1",
        duration=fcp_time(total, tb),
        tcStart=fcp_time(tc_start, tb),
        tcFormat="DF" if tb.drop_frame else "NDF",
        audioLayout="stereo",
        audioRate="48k",
    )
    spine = ET.SubElement(sequence, "spine")
    gap = ET.SubElement(
        spine,
        "gap",
        name="Gap",
        offset=fcp_time(tc_start, tb),
        start=fcp_time(tc_start, tb),
        duration=fcp_time(total, tb),
    )

    style_id = 0
    lane_no = 0
    from .caption_formats import SPEAKER_COLOURS, speaker_names

    names = speaker_names(doc)
    colours = {sid: SPEAKER_COLOURS[k % len(SPEAKER_COLOURS)] for k, sid in enumerate(names)}
    for lang in langs:
        cues = [c for c in doc.cues if (c.text.get(lang) or "").strip()]
        for lane in cue_lanes(cues) or []:
            lane_no += 1
            for cue in lane:
                if cue.start_frame < 0:
                    raise InputError(f"caption at frame {cue.start_frame} starts before the timeline")
                text = cue.text[lang].strip()
                style_id += 1
                cap = ET.SubElement(
                    gap,
                    "caption",
                    lane=str(lane_no),
                    offset=fcp_time(tc_start + cue.start_frame, tb),
                    name=" ".join(text.split())[:100],
                    start=fcp_time(tc_start, tb),
                    duration=fcp_time(cue.duration, tb),
                    role=caption_role(lang),
                )
                text_el = ET.SubElement(cap, "text", placement="bottom")
                ET.SubElement(text_el, "text-style", ref=f"ts{style_id}").text = text
                style_def = ET.SubElement(cap, "text-style-def", id=f"ts{style_id}")
                # one speaker: the speaker's colour (as in ASS); the speakers also go in the caption's note
                rgb = colours[cue.speakers[0]] if len(cue.speakers) == 1 else (255, 255, 255)
                ET.SubElement(
                    style_def,
                    "text-style",
                    font=".AppleSystemUIFont",
                    fontSize="13",
                    fontFace="Regular",
                    fontColor=" ".join(f"{c / 255:.4g}" for c in rgb) + " 1",
                    backgroundColor="0 0 0 1",
                )
                if cue.speakers:
                    ET.SubElement(cap, "note").text = "Speaker: " + ", ".join(names[s] for s in cue.speakers)
    if markers:
        # Low-confidence words as markers on the gap (after its anchored captions, as the DTD orders them).
        seen = set()
        for w in doc.words:
            if w.confidence < confidence_threshold and w.start_frame not in seen and w.start_frame >= 0:
                seen.add(w.start_frame)
                ET.SubElement(
                    gap,
                    "marker",
                    start=fcp_time(tc_start + w.start_frame, tb),
                    duration=fcp_time(max(1, w.end_frame - w.start_frame), tb),
                    value=f"check: {w.text.strip()}",
                    note=f"CaptionBridge: low confidence ({round(100 * w.confidence)}%)",
                )
    ET.indent(root, space="    ")
    return ET.ElementTree(root)


def write_fcpxml_captions(
    doc: CaptionDocument,
    out_path: str | os.PathLike,
    languages: Iterable[str] | None = None,
    version: str = "1.10",
    duration_frames: int | None = None,
    markers: bool = True,
) -> Path:
    """Write ``doc`` as FCPXML with one caption role per language. ``.fcpxmld`` writes the bundle folder
    (Info.fcpxml).

    ``version`` "1.9" or "1.10"; ``duration_frames`` extends the sequence to the edit's length; ``markers``
    adds a marker per low-confidence word (for review).
    """
    path = Path(out_path)
    tree = build_fcpxml(doc, languages, version, duration_frames=duration_frames, markers=markers)
    target = path / "Info.fcpxml" if path.suffix.lower() == ".fcpxmld" else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n')
            tree.write(handle, encoding="utf-8", xml_declaration=False)
            handle.write(b"\n")
    except OSError as exc:
        raise CaptionBridgeError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return path


def read_fcpxml_captions(path: str | os.PathLike) -> dict:
    """Parse an FCPXML written by any tool back to ``{"frame_duration", "tc_start_frames", "tc_format",
    "captions": [{"language", "lane", "start_frame", "end_frame", "text"}], "markers": [{"start_frame",
    "end_frame", "value", "note"}]}`` with frames from the sequence start.

    Used to verify our output (and by the Resolve script's FCPXML fallback tests); anchored offsets are
    resolved through the parent gap/clip (parent offset + child offset - parent start).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "Info.fcpxml"
    root = parse_xml(path, path, "FCPXML")
    formats = {f.get("id"): f for f in root.iter("format")}
    sequence = root.find(".//sequence")
    if sequence is None:
        raise InputError(f"{path}: no <sequence> in the FCPXML")
    fd = parse_fcp_time(formats[sequence.get("format")].get("frameDuration"))
    tc_start = parse_fcp_time(sequence.get("tcStart", "0s"))
    out = {
        "frame_duration": fd,
        "tc_start_frames": tc_start / fd,
        "tc_format": sequence.get("tcFormat", "NDF"),
        "captions": [],
        "markers": [],
    }
    spine = sequence.find("spine")
    for parent in list(spine) if spine is not None else []:
        p_offset = parse_fcp_time(parent.get("offset", "0s"))
        p_start = parse_fcp_time(parent.get("start", "0s"))
        for cap in parent.findall("caption"):
            start = p_offset + parse_fcp_time(cap.get("offset")) - p_start
            dur = parse_fcp_time(cap.get("duration"))
            s_frames, d_frames = (start - tc_start) / fd, dur / fd
            if s_frames.denominator != 1 or d_frames.denominator != 1:
                raise InputError(f"{path}: caption {cap.get('name')!r} is not on a frame boundary")
            role = cap.get("role", "")
            lang = role.split("ITT.")[-1] if "ITT." in role else role
            text = "".join(t.text or "" for t in cap.iter("text-style") if t.get("ref"))
            out["captions"].append(
                {
                    "language": lang,
                    "lane": int(cap.get("lane", "0")),
                    "start_frame": int(s_frames),
                    "end_frame": int(s_frames + d_frames),
                    "text": text,
                }
            )
        for marker in parent.findall("marker"):
            start = p_offset + parse_fcp_time(marker.get("start")) - p_start
            frames = (start - tc_start) / fd
            dur = parse_fcp_time(marker.get("duration", "0s")) / fd
            out["markers"].append(
                {
                    "start_frame": int(frames),
                    "end_frame": int(frames + dur),
                    "value": marker.get("value"),
                    "note": marker.get("note"),
                }
            )
    return out
