"""Caption files: SRT, WebVTT, ASS, TTML and the JSON contract, written frame-accurately and read back to
frames.

One registry from format name to writer (``WRITERS``) and from file extension to reader (``READERS``); every
writer has the same signature ``writer(doc, out_dir, stem, languages, absolute) -> list[Path]``. Add a format
with ``register_writer``.

Times
-----
Cue times are integer frames from the timeline's first frame. Millisecond formats (SRT, VTT) store each
frame's exact start rounded **up** to the millisecond (``Timebase.ms_ceil``); ASS stores centiseconds, rounded
up the same way. Editors floor a time to the frame that contains it, so every cue lands on its own frame. TTML
stores frames.

By default times are **relative to the timeline's first frame** (00:00:00,000 = first frame, whatever the
start timecode). What this relies on (from /work/shared/reference/editors.md; neither editor runs here):

* Premiere: ``sequence.createCaptionTrack(item, startAtSeconds, Sequence.CAPTION_FORMAT_SUBTITLE)`` places the
  file's time zero at ``startAtSeconds``; the panel passes the sequence start, so the file must be relative.
  **Verify** whether Premiere counts ``startAtSeconds`` from the sequence's zero point (``seq.zeroPoint``) or
  0.
* Resolve: no scripting call imports an SRT (File > Import > Subtitle is UI-only); a user drags the sidecar
  onto the timeline. The reference lists "captions one hour late on 01:00:00:00 timelines" as a known failure
  of another Resolve caption tool, which is what absolute times would do if Resolve counts SRT time from the
  timeline start. We assume it does. **Verify in a real Resolve** (import an SRT on a 01:00:00:00 timeline,
  check the first cue). The engine's own placement into Resolve does not depend on this: it uses frames
  (``recordFrame`` is absolute).

``absolute=True`` adds the start timecode (01:00:00:00 at 23.976 = frame 86400 = 3603.6 s) for tools that
place captions by record timecode; with drop-frame the file holds real time, so 01:00:00;00 at 29.97 DF is
00:59:59,997 (exact, but surprising to read). Readers detect absolute times (every cue at or after the start
timecode on a timeline that does not start at zero) unless told.

Files
-----
``<stem>.captions.json`` (the JSON contract, every language), ``<stem>.<lang>.srt|vtt|ass|ttml`` (one per
language), ``<stem>.bilingual.srt|ass`` (Chinese line over English in one cue; written for ``srt``/``ass``
when two or more languages are asked for, or explicitly as ``bilingual-srt``/``bilingual-ass``). All share
identical timing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysubs2

from ..core.captions.line_breaking import has_cjk
from ..core.captions.validate import SourceTimes
from ..core.errors import InputError
from ..core.model import CaptionDocument, Cue
from ..core.timeline.timebase import Timebase
from .caption_ttml import parse_ttml, ttml_string

CJK_FONT = "Noto Sans CJK SC"  # covers Simplified Chinese and Latin; installed with most CJK setups
LATIN_FONT = "Arial"  # English and other alphabetic languages: a font every player and editor has
ASS_PLAY_RES = (1920, 1080)

Writer = Callable[[CaptionDocument, Path, str, Sequence[str], bool], list[Path]]


# -- helpers
# -----------------------------------------------------------------------------------------------------
def _offset(doc_or_tb, absolute: bool) -> int:
    tb = doc_or_tb.timebase if isinstance(doc_or_tb, CaptionDocument) else doc_or_tb
    return tb.start_frame if absolute else 0


def _texts(doc: CaptionDocument, language: str) -> list[str]:
    """Each cue's text in ``language``; a cue without it is an error, never silently left out."""
    missing = [i for i, c in enumerate(doc.cues) if not c.text.get(language, "").strip()]
    if missing:
        first = doc.cues[missing[0]]
        raise InputError(
            f"{len(missing)} cue(s) have no {language!r} text (first: cue {missing[0] + 1} at "
            f"{doc.timebase.timecode(first.start_frame)}); translate them or leave {language!r} out "
            "of the languages to write"
        )
    return [doc.cues[i].text[language] for i in range(len(doc.cues))]


def bilingual_order(languages: Sequence[str]) -> list[str]:
    """Chinese (CJK) first, then the others, as bilingual captions show them (Chinese line above English)."""
    from ..core.captions.presets import language_family

    return sorted(languages, key=lambda lang: (language_family(lang) != "zh", list(languages).index(lang)))


# Longest time each format can hold (pysubs2 clamps silently beyond it: a caption would land on the wrong
# frame).
MAX_TIME_MS = {"srt": 359_999_999, "vtt": 359_999_999, "ass": 35_999_990}  # 99:59:59,999 / 9:59:59.99


def _too_late(number: int, cue: Cue, tb: Timebase, fmt: str, absolute: bool) -> InputError:
    hint = " (absolute times include the start timecode: write relative times)" if absolute else ""
    return InputError(
        f"cue {number} ends at {tb.timecode(cue.end_frame)}, later than {fmt.upper()} can store{hint}"
    )


def _ms_events(
    doc: CaptionDocument, texts: list[str], absolute: bool, quantum_ms: int = 1, fmt: str = "srt"
) -> pysubs2.SSAFile:
    tb, off = doc.timebase, _offset(doc, absolute)
    ssa = pysubs2.SSAFile()
    for number, (cue, text) in enumerate(zip(doc.cues, texts), 1):
        start = tb.ms_ceil(cue.start_frame + off, quantum_ms)
        end = tb.ms_ceil(cue.end_frame + off, quantum_ms)
        if end > MAX_TIME_MS[fmt]:
            raise _too_late(number, cue, tb, fmt, absolute)
        ssa.append(pysubs2.SSAEvent(start=start, end=end, text=text.replace("\n", "\\N")))
    return ssa


def _save(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- writers
# -----------------------------------------------------------------------------------------------------
def write_json(
    doc: CaptionDocument, out_dir: Path, stem: str, languages: Sequence[str], absolute: bool
) -> list[Path]:
    for lang in languages:
        _texts(doc, lang)
    data = doc.to_dict()
    data["languages"] = list(dict.fromkeys(list(languages) + list(data["languages"])))
    return [_save(out_dir / f"{stem}.captions.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n")]


def _per_language(fmt: str) -> Writer:
    def write(
        doc: CaptionDocument, out_dir: Path, stem: str, languages: Sequence[str], absolute: bool
    ) -> list[Path]:
        return [
            _save(out_dir / f"{stem}.{lang}.{fmt}", captions_string(doc, fmt, [lang], absolute))
            for lang in languages
        ]

    write.__name__ = f"write_{fmt}"
    write.__doc__ = f"One ``<stem>.<lang>.{fmt}`` per language."
    return write


def _bilingual(fmt: str) -> Writer:
    def write(
        doc: CaptionDocument, out_dir: Path, stem: str, languages: Sequence[str], absolute: bool
    ) -> list[Path]:
        if len(languages) < 2:
            raise InputError(
                f"bilingual {fmt.upper()} needs two languages, got {', '.join(languages) or 'none'}"
            )
        return [_save(out_dir / f"{stem}.bilingual.{fmt}", captions_string(doc, fmt, languages, absolute))]

    write.__name__ = f"write_bilingual_{fmt}"
    return write


def captions_string(doc: CaptionDocument, fmt: str, languages: Sequence[str], absolute: bool = False) -> str:
    """The text of a caption file. Several languages: one cue holds one block per language (CJK first)."""
    order = bilingual_order(languages) if len(languages) > 1 else list(languages)
    per_lang = [_texts(doc, lang) for lang in order]
    if fmt == "ass":
        return ass_string(doc, order, per_lang, absolute)
    if fmt == "ttml":
        if len(order) != 1:
            raise InputError("TTML is written one file per language")
        return ttml_string(doc.cues, doc.timebase, order[0], absolute, speakers=speaker_names(doc))
    if fmt not in ("srt", "vtt"):
        raise InputError(f"no text writer for {fmt!r}")
    texts = ["\n".join(parts) for parts in zip(*per_lang)]
    if fmt == "vtt" and any(c.speakers for c in doc.cues):
        texts = [vtt_voice_text(doc, cue, text) for cue, text in zip(doc.cues, texts)]
    return _ms_events(doc, texts, absolute, fmt=fmt).to_string(fmt)


# -- speakers
# ----------------------------------------------------------------------------------------------------
# BBC subtitle colours for speakers, in order: white, yellow, cyan, green (then more, distinct on black)
SPEAKER_COLOURS = [
    (255, 255, 255),
    (255, 255, 0),
    (0, 255, 255),
    (0, 255, 0),
    (255, 170, 255),
    (255, 190, 120),
]


def speaker_names(doc: CaptionDocument) -> dict[str, str]:
    """Every speaker id in ``doc`` (its list, then any found only on cues) -> display name."""
    ids = [s["id"] for s in doc.speakers] + [sid for c in doc.cues for sid in c.speakers]
    return {sid: doc.speaker_name(sid) for sid in dict.fromkeys(ids)}


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_voice_text(doc: CaptionDocument, cue: Cue, text: str) -> str:
    """WebVTT voice spans: ``<v Ana>text`` for one speaker; in the two-speaker form each line gets its own
    ``<v Name>...</v>`` (the first speaker's lines up to the second speaker's dash line)."""
    if not cue.speakers:
        return text
    names = [_vtt_escape(doc.speaker_name(s)) for s in cue.speakers]
    lines = text.split("\n")
    if len(names) == 1:
        return f"<v {names[0]}>" + "\n".join(_vtt_escape(ln) for ln in lines) + "</v>"
    # two speakers, one line each; a bilingual file stacks the languages' two-line blocks, so lines alternate
    out = [
        f"<v {names[k % 2 if len(lines) % 2 == 0 else min(k, 1)]}>{_vtt_escape(line)}</v>"
        for k, line in enumerate(lines)
    ]
    return "\n".join(out)


def _ass_colour_tag(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return f"\\1c&H{b:02X}{g:02X}{r:02X}&"


def _ass_style(language: str, size: int) -> pysubs2.SSAStyle:
    from ..core.captions.presets import language_family

    font = CJK_FONT if language_family(language) == "zh" else LATIN_FONT
    return pysubs2.SSAStyle(
        fontname=font,
        fontsize=size,
        primarycolor=pysubs2.Color(255, 255, 255),
        outlinecolor=pysubs2.Color(0, 0, 0),
        backcolor=pysubs2.Color(0, 0, 0, 128),
        bold=False,
        outline=2.5,
        shadow=0,
        alignment=pysubs2.Alignment.BOTTOM_CENTER,
        marginl=96,
        marginr=96,
        marginv=54,
    )


def ass_style_name(language: str) -> str:
    return language.upper()


def ass_string(doc: CaptionDocument, order: list[str], per_lang: list[list[str]], absolute: bool) -> str:
    """ASS with one style per language; a bilingual event switches style per line
    (``{\\rZH}中文\\N{\\rEN}...``), so the Chinese line always sits directly above the English one, in any
    player and at any line count."""
    from ..core.captions.presets import language_family

    ssa = _ms_events(doc, [""] * len(doc.cues), absolute, quantum_ms=10, fmt="ass")
    ssa.info["PlayResX"], ssa.info["PlayResY"] = str(ASS_PLAY_RES[0]), str(ASS_PLAY_RES[1])
    ssa.info["WrapStyle"] = "2"  # we break lines ourselves; never let the renderer re-wrap
    ssa.info["ScaledBorderAndShadow"] = "yes"
    ssa.styles.clear()
    for lang in order:
        ssa.styles[ass_style_name(lang)] = _ass_style(lang, 64 if language_family(lang) == "zh" else 56)
    ssa.styles["Default"] = ssa.styles[ass_style_name(order[-1])].copy()
    names = speaker_names(doc)
    colour = {sid: SPEAKER_COLOURS[k % len(SPEAKER_COLOURS)] for k, sid in enumerate(names)}
    if names and len(order) == 1:  # one style per speaker (its colour), named after the speaker
        for sid, name in names.items():
            style = ssa.styles[ass_style_name(order[0])].copy()
            style.primarycolor = pysubs2.Color(*colour[sid])
            ssa.styles[ass_speaker_style(order[0], name)] = style
    for event, cue, parts in zip(ssa.events, doc.cues, zip(*per_lang)):
        event.style = ass_style_name(order[-1])
        if cue.speakers:
            event.name = " / ".join(
                names[s].replace(",", " ") for s in cue.speakers
            )  # the Actor field (no commas)
        if len(order) == 1 and len(cue.speakers) == 1:
            event.style = ass_speaker_style(order[0], names[cue.speakers[0]])
            event.text = parts[0].replace("\n", "\\N")
        elif len(order) == 1 and len(cue.speakers) == 2:
            lines = parts[0].split("\n")
            event.style = ass_speaker_style(order[0], names[cue.speakers[0]])
            event.text = "\\N".join(
                f"{{\\r{ass_speaker_style(order[0], names[cue.speakers[min(k, 1)]])}}}" + line
                for k, line in enumerate(lines)
            )
        elif len(order) == 1:
            event.text = parts[0].replace("\n", "\\N")
        else:
            tag = f"{{{_ass_colour_tag(colour[cue.speakers[0]])}}}" if len(cue.speakers) == 1 else ""
            event.text = "\\N".join(
                f"{{\\r{ass_style_name(lang)}}}" + tag + text.replace("\n", "\\N")
                for lang, text in zip(order, parts)
            )
    return ssa.to_string("ass")


def ass_speaker_style(language: str, name: str) -> str:
    """The ASS style of one speaker in one language: "EN Ana" (commas are field separators in ASS)."""
    return f"{ass_style_name(language)} {name.replace(',', ' ')}"


WRITERS: dict[str, Writer] = {
    "json": write_json,
    "srt": _per_language("srt"),
    "vtt": _per_language("vtt"),
    "ass": _per_language("ass"),
    "ttml": _per_language("ttml"),
    "bilingual-srt": _bilingual("srt"),
    "bilingual-ass": _bilingual("ass"),
}
# Formats that are written by their own adapters (they need the timeline, not just the cues); write_captions
# leaves them to the caller unless someone registers a writer for them here.
HANDLED_ELSEWHERE = {
    "otio": "captionbridge.adapters.otio_subtitles.write_otio_with_subtitles",
    "fcpxml": "captionbridge.adapters.fcpxml_captions.write_fcpxml_captions",
}
AUTO_BILINGUAL = {"srt": "bilingual-srt", "ass": "bilingual-ass"}


def register_writer(name: str, writer: Writer) -> None:
    """Add (or replace) a format: ``writer(doc, out_dir, stem, languages, absolute) -> list[Path]``."""
    WRITERS[name] = writer


def known_formats() -> list[str]:
    return sorted(set(WRITERS) | set(HANDLED_ELSEWHERE))


def write_captions(
    doc: CaptionDocument,
    out_dir: str | os.PathLike,
    stem: str,
    formats: Sequence[str],
    languages: Sequence[str] | None = None,
    absolute: bool = False,
) -> list[Path]:
    """Write ``doc`` in each of ``formats``; returns the files written.

    ``languages`` defaults to the document's languages. With two or more languages, ``srt`` and ``ass`` also
    write the bilingual file. ``otio``/``fcpxml`` are skipped here (see ``HANDLED_ELSEWHERE``) unless
    registered.
    """
    out = Path(out_dir)
    langs = list(dict.fromkeys(languages or doc.languages or [doc.source_language]))
    if not stem or os.sep in stem or (os.altsep and os.altsep in stem):
        raise InputError(f"output name {stem!r} must be a plain file stem (no folders)")
    unknown = [f for f in formats if f not in WRITERS and f not in HANDLED_ELSEWHERE]
    if unknown:
        raise InputError(
            f"unknown caption format(s) {', '.join(unknown)}; known: {', '.join(known_formats())}"
        )
    wanted = list(dict.fromkeys(formats))
    if len(langs) >= 2:
        wanted += [
            AUTO_BILINGUAL[f] for f in formats if f in AUTO_BILINGUAL and AUTO_BILINGUAL[f] not in wanted
        ]
    _preflight(doc, wanted, langs, absolute)
    paths: list[Path] = []
    for fmt in wanted:
        if fmt in WRITERS:
            paths.extend(WRITERS[fmt](doc, out, stem, langs, absolute))
    return paths


def _preflight(
    doc: CaptionDocument, formats: Sequence[str], languages: Sequence[str], absolute: bool
) -> None:
    """Raise before anything is written, so a failed call leaves no half set of files."""
    for lang in languages:
        _texts(doc, lang)
    for fmt in formats:
        base = fmt.replace("bilingual-", "")
        if base in MAX_TIME_MS and doc.cues:
            quantum = 10 if base == "ass" else 1
            index = max(range(len(doc.cues)), key=lambda i: doc.cues[i].end_frame)
            latest = doc.cues[index]
            if doc.timebase.ms_ceil(latest.end_frame + _offset(doc, absolute), quantum) > MAX_TIME_MS[base]:
                raise _too_late(index + 1, latest, doc.timebase, base, absolute)


# -- readers
# -----------------------------------------------------------------------------------------------------
@dataclass
class CaptionFile:
    """What a caption file holds, in frames: cues, the clock used, and the file's own times (for off-frame
    checks)."""

    path: Path
    cues: list[Cue]
    timebase: Timebase
    languages: list[str]
    source_times: SourceTimes | None = None
    absolute: bool = False
    warnings: list[str] = field(default_factory=list)


_LANG = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def language_from_name(path: Path) -> str | None:
    """``talk.en.srt`` -> "en", ``talk.bilingual.srt`` -> "bilingual", ``talk.srt`` -> None."""
    suffixes = path.name.split(".")
    if len(suffixes) >= 3 and (suffixes[-2] == "bilingual" or _LANG.match(suffixes[-2])):
        return suffixes[-2]
    return None


def _split_languages(text: str, language: str | None, bilingual: bool) -> dict[str, str]:
    """A cue's text per language. Bilingual text: CJK lines are Chinese, the others English."""
    if not bilingual:
        return {language or "und": text}
    zh = [ln for ln in text.split("\n") if has_cjk(ln)]
    other = [ln for ln in text.split("\n") if not has_cjk(ln)]
    out = {}
    if zh:
        out["zh"] = "\n".join(zh)
    if other:
        out["en"] = "\n".join(other)
    return out


_ASS_RESET = re.compile(r"\{\\r([^}\\]*)\}")
_ASS_TAG = re.compile(r"\{[^}]*\}")


def _ass_text(event: pysubs2.SSAEvent, styles: set[str]) -> dict[str, str] | None:
    """Per-language text of an ASS event whose styles are language codes (our writer), else None."""
    current = event.style
    lines: dict[str, list[str]] = {}
    for raw in re.split(r"\\N|\\n", event.text):
        resets = _ASS_RESET.findall(raw)
        if resets and raw.lstrip().startswith("{"):
            current = resets[0] or event.style
        plain = _ASS_TAG.sub("", raw).replace("\\h", " ").strip()
        if resets:
            current = resets[-1] or event.style
        if plain:
            lines.setdefault(current, []).append(plain)
    if not all(name.upper() == name and _LANG.match(name.lower()) for name in lines):
        return None
    return {name.lower(): "\n".join(parts) for name, parts in lines.items()}


def _detect_absolute(starts_ms: list[int], timebase: Timebase) -> bool:
    """Times at or after the start timecode on a timeline that does not start at zero are absolute."""
    return (
        bool(starts_ms)
        and timebase.start_frame > 0
        and min(starts_ms) >= timebase.ms_ceil(timebase.start_frame)
    )


def _read_pysubs2(
    path: Path, text: str, fmt: str, timebase: Timebase, absolute: bool | None, language: str | None
) -> CaptionFile:
    try:
        ssa = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as exc:  # pysubs2 raises many kinds for bad input
        raise InputError(f"{path}: not a readable {fmt.upper()} file ({exc})") from exc
    events = [e for e in ssa.events if not e.is_comment and e.plaintext.strip()]
    if absolute is None:
        absolute = _detect_absolute([e.start for e in events], timebase)
    offset = timebase.start_frame if absolute else 0
    name_lang = language_from_name(path)
    bilingual = name_lang == "bilingual" and language is None
    lang = language or (None if name_lang == "bilingual" else name_lang)
    cues, times = [], []
    for number, event in enumerate(events, 1):
        if event.start < 0 or event.end <= event.start:
            raise InputError(
                f"{path}: caption {number} ({event.plaintext[:30]!r}) ends at or before it starts"
            )
        start = timebase.frame_from_ms(event.start) - offset
        end = timebase.frame_from_ms(event.end) - offset
        if start < 0:
            raise InputError(
                f"{path}: caption {number} starts before the timeline's first frame; if the file uses "
                "absolute times pass the right start timecode, otherwise times are relative"
            )
        if end <= start:
            end = start + 1  # shorter than a frame in the file: keep it (the validator reports its duration)
        text = None
        if fmt == "ass":
            text = _ass_text(event, set(ssa.styles))
            if text and len(text) == 1 and lang:
                text = {lang: next(iter(text.values()))}
        if not text:
            text = _split_languages(event.plaintext.strip(), lang, bilingual)
        cues.append(Cue(start, end, text))
        times.append((event.start, event.end))
    languages = list(dict.fromkeys(k for c in cues for k in c.text))
    return CaptionFile(
        path, cues, timebase, languages, SourceTimes(times, 10 if fmt == "ass" else 1, offset), absolute
    )


def _read_json(
    path: Path, text: str, timebase: Timebase | None, absolute: bool | None, language: str | None
) -> CaptionFile:
    try:
        doc = CaptionDocument.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a CaptionBridge captions JSON ({type(exc).__name__}: {exc})") from exc
    if timebase is not None and (timebase.rate != doc.timebase.rate):
        raise InputError(
            f"{path}: captions are at {doc.timebase.describe()}, not {timebase.describe()}; "
            "leave the rate out or pass the file's rate"
        )
    return CaptionFile(path, doc.cues, doc.timebase, list(doc.languages or [doc.source_language]))


def _read_ttml(
    path: Path, text: str, timebase: Timebase, absolute: bool | None, language: str | None
) -> CaptionFile:
    cues = parse_ttml(text, timebase, str(path), language, bool(absolute))
    return CaptionFile(
        path, cues, timebase, list(dict.fromkeys(k for c in cues for k in c.text)), absolute=bool(absolute)
    )


READERS: dict[str, str] = {
    ".srt": "srt",
    ".vtt": "vtt",
    ".ass": "ass",
    ".ssa": "ass",
    ".json": "json",
    ".ttml": "ttml",
    ".dfxp": "ttml",
    ".xml": "ttml",
}


def read_caption_file(
    path: str | os.PathLike,
    timebase: Timebase | None = None,
    absolute: bool | None = None,
    language: str | None = None,
) -> CaptionFile:
    """Read a caption file into frames. ``timebase`` is required except for JSON (which carries its own).

    ``absolute``: None detects it (times at or after the start timecode on a timeline not starting at zero).
    ``language``: the text's language; default from the name (``x.en.srt``), "bilingual" files split
    CJK/other.
    """
    p = Path(path)
    fmt = READERS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{p}: unknown caption file type {p.suffix!r}; readable: {', '.join(sorted(READERS))}"
        )
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such caption file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{p}: not UTF-8 text; save it as UTF-8 and try again") from None
    if fmt == "json":
        return _read_json(p, text, timebase, absolute, language)
    if timebase is None:
        raise InputError(f"{p}: a {fmt.upper()} file has no frame rate; give the timeline's rate (--rate)")
    if fmt == "ttml":
        return _read_ttml(p, text, timebase, absolute, language)
    return _read_pysubs2(p, text, fmt, timebase, absolute, language)


def read_captions(
    path: str | os.PathLike,
    timebase: Timebase | None = None,
    absolute: bool | None = None,
    language: str | None = None,
) -> list[Cue]:
    """Cues of an SRT/VTT/ASS/TTML/JSON file in timeline frames (see ``read_caption_file``)."""
    return read_caption_file(path, timebase, absolute, language).cues
