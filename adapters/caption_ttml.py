"""TTML (IMSC 1 text profile) with frame-exact times.

Times are written as offset frames (``begin="1234f"``) under ``ttp:timeBase="media"`` with the timeline's
exact rate as ``ttp:frameRate`` and ``ttp:frameRateMultiplier`` ("24" and "1000 1001" for 23.976), so no
rounding happens anywhere: frame N is N frames. pysubs2's TTML writer uses milliseconds, which is why this one
is ours. One ``<div xml:lang>`` per file (one file per language, like the other formats).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from fractions import Fraction

from ..core.errors import InputError
from ..core.model import Cue
from ..core.timeline.timebase import Timebase
from .xml_input import parse_xml

TT = "http://www.w3.org/ns/ttml"
TTP = "http://www.w3.org/ns/ttml#parameter"
TTS = "http://www.w3.org/ns/ttml#styling"
TTM = "http://www.w3.org/ns/ttml#metadata"
XML = "http://www.w3.org/XML/1998/namespace"
ET.register_namespace("", TT)
ET.register_namespace("ttm", TTM)
ET.register_namespace("ttp", TTP)
ET.register_namespace("tts", TTS)


def _rate_attributes(timebase: Timebase) -> dict[str, str]:
    rate = timebase.rate
    nominal = timebase.nominal_fps
    attrs = {f"{{{TTP}}}timeBase": "media", f"{{{TTP}}}frameRate": str(nominal)}
    multiplier = rate / nominal
    if multiplier != 1:
        attrs[f"{{{TTP}}}frameRateMultiplier"] = f"{multiplier.numerator} {multiplier.denominator}"
    return attrs


def ttml_string(
    cues: list[Cue],
    timebase: Timebase,
    language: str,
    absolute: bool = False,
    font: str = "Noto Sans CJK SC, Arial, sans-serif",
    speakers: dict[str, str] | None = None,
) -> str:
    """A TTML document for ``cues``' text in ``language``; ``absolute`` adds the start timecode's frames.

    ``speakers`` (id -> name) declares one ``ttm:agent`` per speaker in the head, and each ``<p>`` names its
    speakers in ``ttm:agent`` (two ids, space-separated, for the two-speaker form)."""
    offset = timebase.start_frame if absolute else 0
    root = ET.Element(f"{{{TT}}}tt", {f"{{{XML}}}lang": language, **_rate_attributes(timebase)})
    head = ET.SubElement(root, f"{{{TT}}}head")
    agents = dict(speakers or {})
    for cue in cues:
        for sid in cue.speakers:
            agents.setdefault(sid, sid)
    if agents:
        metadata = ET.SubElement(head, f"{{{TT}}}metadata")
        for sid, name in agents.items():
            agent = ET.SubElement(
                metadata, f"{{{TTM}}}agent", {f"{{{XML}}}id": _agent_id(sid), "type": "person"}
            )
            ET.SubElement(agent, f"{{{TTM}}}name", {"type": "full"}).text = name
    styling = ET.SubElement(head, f"{{{TT}}}styling")
    ET.SubElement(
        styling,
        f"{{{TT}}}style",
        {
            f"{{{XML}}}id": "s1",
            f"{{{TTS}}}fontFamily": font,
            f"{{{TTS}}}textAlign": "center",
            f"{{{TTS}}}color": "white",
        },
    )
    layout = ET.SubElement(head, f"{{{TT}}}layout")
    ET.SubElement(
        layout,
        f"{{{TT}}}region",
        {
            f"{{{XML}}}id": "bottom",
            f"{{{TTS}}}origin": "10% 80%",
            f"{{{TTS}}}extent": "80% 15%",
            f"{{{TTS}}}displayAlign": "after",
        },
    )
    body = ET.SubElement(root, f"{{{TT}}}body", {"style": "s1", "region": "bottom"})
    div = ET.SubElement(body, f"{{{TT}}}div", {f"{{{XML}}}lang": language})
    for cue in cues:
        p = ET.SubElement(
            div, f"{{{TT}}}p", {"begin": f"{cue.start_frame + offset}f", "end": f"{cue.end_frame + offset}f"}
        )
        if cue.speakers:
            p.set(f"{{{TTM}}}agent", " ".join(_agent_id(s) for s in cue.speakers))
        lines = cue.text[language].split("\n")
        p.text = lines[0]
        for line in lines[1:]:
            br = ET.SubElement(p, f"{{{TT}}}br")
            br.tail = line
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _agent_id(speaker_id: str) -> str:
    """An xml:id for a speaker id (an NCName: letters, digits, ._- and not starting with a digit)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", speaker_id)
    return safe if safe[:1].isalpha() or safe[:1] == "_" else f"s_{safe}"


_CLOCK = re.compile(r"^(\d+):(\d\d):(\d\d)(?:\.(\d+))?$")
_CLOCK_FRAMES = re.compile(r"^(\d+):(\d\d):(\d\d):(\d+)$")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)(h|m|s|ms|f|t)$")


def parse_ttml(
    text: str, timebase: Timebase, source: str, language: str | None = None, absolute: bool = False
) -> list[Cue]:
    """Cues of a TTML document (offset, clock and frame times; ``absolute``: subtract the start timecode)."""
    root = parse_xml(text, source, "TTML")
    frame_rate = Fraction(root.get(f"{{{TTP}}}frameRate", str(timebase.nominal_fps)))
    mult = root.get(f"{{{TTP}}}frameRateMultiplier")
    if mult:
        a, b = mult.split()
        frame_rate *= Fraction(int(a), int(b))
    tick_rate = int(root.get(f"{{{TTP}}}tickRate", "1"))
    lang = language or root.get(f"{{{XML}}}lang") or "und"
    offset = timebase.start_frame if absolute else 0

    def frame(value: str | None, what: str) -> int:
        if value is None:
            raise InputError(f"{source}: a <p> without {what}")
        value = value.strip()
        if m := _OFFSET.match(value):
            number, unit = Fraction(m.group(1)), m.group(2)
            if unit == "f":
                seconds = number / frame_rate
            elif unit == "t":
                seconds = number / tick_rate
            else:
                seconds = number * {"h": 3600, "m": 60, "s": 1, "ms": Fraction(1, 1000)}[unit]
        elif m := _CLOCK_FRAMES.match(value):
            h, mi, s, f = (int(g) for g in m.groups())
            seconds = h * 3600 + mi * 60 + s + Fraction(f) / frame_rate
        elif m := _CLOCK.match(value):
            h, mi, s = (int(g) for g in m.groups()[:3])
            seconds = h * 3600 + mi * 60 + s + Fraction(f"0.{m.group(4) or 0}")
        else:
            raise InputError(f"{source}: unreadable TTML time {value!r}")
        return timebase.frame_at(seconds, "floor") - offset

    cues = []
    for p in root.iter(f"{{{TT}}}p"):
        parts = [p.text or ""]
        for child in p:
            if child.tag == f"{{{TT}}}br":
                parts.append("\n")
            else:
                parts.append("".join(child.itertext()))
            parts.append(child.tail or "")
        body = "\n".join(line.strip() for line in "".join(parts).strip().split("\n"))
        start, end = frame(p.get("begin"), "begin"), frame(p.get("end"), "end")
        if end <= start:
            raise InputError(f"{source}: caption {body[:30]!r} ends at or before it starts")
        cues.append(Cue(start, end, {lang: body}))
    return cues
