"""Translate caption cues sentence by sentence and pair the result with the source cues (identical timing).

``translate_cues`` groups cues into sentences (``translate_sentences``), protects glossary terms, translates
every sentence once in batches with n-best candidates, cuts each translation over the cues its sentence spans
(``translate_fit.distribute``), lays it out in lines, and checks characters per line and reading speed. When a
translation does not fit it tries the other candidates (shortest that fits first), then lends the cue frames
(``relieve_reading_speed``); whatever still does not fit is listed in the report, never hidden or dropped.
``translate_document`` does the same for a whole ``CaptionDocument``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from ..captions.line_breaking import has_cjk
from ..captions.presets import CaptionPreset, language_family, resolve_preset
from ..errors import InputError
from ..model import CaptionDocument, Cue
from ..progress import Progress
from ..timeline.timebase import Timebase
from .backends import Translator, resolve_translator
from .fit import distribute, fit_cue, relieve_reading_speed
from .glossary import Glossary, Protected, load_glossary, normalize_language, restore
from .sentences import Sentence, group_sentences, source_text

NUM_HYPOTHESES = 4
BATCH_SIZE = 16


@dataclass
class TranslationReport:
    """What happened while translating: counts, what was adjusted, and every cue that still breaks a limit."""

    source_lang: str
    target_lang: str
    model: str = ""
    backend: str = ""
    device: str = ""
    cues: int = 0
    sentences: int = 0
    multi_cue_sentences: int = 0
    batches: int = 0
    seconds: float = 0.0
    other_candidate_cues: list[int] = field(default_factory=list)  # text from a shorter n-best candidate
    retimed: list[dict] = field(default_factory=list)  # {"cue", "from": [in, out], "to": [in, out]}
    glossary_terms: dict[str, int] = field(default_factory=dict)  # target term -> times placed
    glossary_piecewise: int = 0  # sentences translated in pieces around terms (placeholders were lost)
    unfit: list[dict] = field(
        default_factory=list
    )  # {"cue", "timecode", "problem", "value", "limit", "text"}

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def warnings(self) -> list[str]:
        out = []
        for item in self.unfit:
            if item["problem"] == "empty":
                out.append(
                    f"cue {item['cue'] + 1} at {item['timecode']}: the {self.target_lang} translation is "
                    "empty; translate it by hand"
                )
            else:
                what = (
                    "characters per line" if item["problem"] == "chars_per_line" else "characters per second"
                )
                out.append(
                    f"cue {item['cue'] + 1} at {item['timecode']}: {self.target_lang} text has "
                    f"{item['value']} {what} (limit {item['limit']})"
                )
        if self.glossary_piecewise:
            out.append(
                f"{self.glossary_piecewise} sentence(s) were translated in pieces around glossary terms "
                "because the model did not keep the term placeholders; review them"
            )
        return out


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


def _clean(text: str, target: str, simplified: bool = True) -> str:
    text = " ".join(text.split())
    if target == "zh" and simplified:
        text = _t2s().convert(
            text
        )  # Simplified, as the zh presets expect (models sometimes answer Traditional)
    return text


def _join(parts: list[str], language: str) -> str:
    out = ""
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out and (language_family(language) != "zh" or not (has_cjk(out[-1]) or has_cjk(part[0]))):
            out += " "
        out += part
    return out


def _target_preset(preset: str | CaptionPreset | None, target: str) -> CaptionPreset:
    if isinstance(preset, CaptionPreset):
        return preset
    return resolve_preset(preset or "netflix", target)


def translate_cues(
    cues: list[Cue],
    source_lang: str,
    target_lang: str,
    translator: Translator,
    timebase: Timebase,
    preset: str | CaptionPreset | None = None,
    glossary: Glossary | str | Path | None = None,
    *,
    num_hypotheses: int = NUM_HYPOTHESES,
    batch_size: int = BATCH_SIZE,
    retime: bool = True,
    simplified_chinese: bool = True,
    progress: Progress | None = None,
) -> tuple[list[Cue], TranslationReport]:
    """Add ``text[target_lang]`` to every cue; returns new cues (same order, same count) and a report.

    Timing is shared by both languages: when ``retime`` lends a cue frames to meet reading speed, the cue
    moves for both (listed in ``report.retimed``).
    """
    src, tgt = normalize_language(source_lang), normalize_language(target_lang)
    if src == tgt:
        raise InputError(f"the captions are already in {tgt}: choose another target language")
    started = time.monotonic()
    report = TranslationReport(
        src,
        tgt,
        getattr(translator, "name", ""),
        getattr(translator, "backend", ""),
        getattr(translator, "device", ""),
        cues=len(cues),
    )
    if not cues:
        return [], report
    glossary = load_glossary(glossary)
    target_preset = _target_preset(preset, tgt)
    source_preset = resolve_preset("netflix", src)
    rate = timebase.rate

    sentences = group_sentences(cues, src, timebase)
    report.sentences = len(sentences)
    report.multi_cue_sentences = sum(1 for s in sentences if len(s.cues) > 1)
    protected = [glossary.protect(s.text, src, tgt) if glossary else Protected(s.text, ()) for s in sentences]

    # 1. translate every sentence once, in batches, with n-best candidates. Text without words ("♪", "...") is
    #    the same in every language: it is kept, not sent to a model that would invent something for it.
    wordy = [n for n, p in enumerate(protected) if re.search(r"\w", p.text)]
    texts = [protected[n].text for n in wordy]
    hypotheses: list[list[str]] = [[p.text] for p in protected]
    chunk = batch_size * 4
    for start in range(0, len(texts), chunk):
        if progress:
            progress.update("translate", start / len(texts))
        answers = translator.translate(texts[start : start + chunk], src, tgt, num_hypotheses, batch_size)
        for n, hyps in zip(wordy[start : start + chunk], answers):
            hypotheses[n] = hyps
    report.batches = -(-len(texts) // batch_size)

    # 2. put glossary terms back; sentences whose placeholders got lost are translated around the terms
    candidates: list[list[str]] = []
    piecewise: list[int] = []
    for n, (prot, hyps) in enumerate(zip(protected, hypotheses)):
        restored = (
            [r for r in (restore(h, prot) for h in hyps) if r is not None] if prot.terms else list(hyps)
        )
        candidates.append([c for c in (_clean(r, tgt, simplified_chinese) for r in restored) if c])
        if prot.terms and not candidates[-1]:
            piecewise.append(n)
    if piecewise:
        candidates_for = _translate_around_terms(
            [protected[n] for n in piecewise], src, tgt, translator, batch_size
        )
        report.batches += 1
        for n, text in zip(piecewise, candidates_for):
            candidates[n] = [_clean(text, tgt, simplified_chinese)] if text.strip() else []
        report.glossary_piecewise = len(piecewise)
    if progress:
        progress.update("translate", 1.0)

    # 3. cut each sentence's best-fitting candidate over its cues
    pieces_by_cue: list[list[str]] = [[] for _ in cues]
    other_candidate: set[int] = set()
    for sentence, cands in zip(sentences, candidates):
        pieces, index = _best_distribution(sentence, cands, cues, target_preset, rate, tgt)
        for frag, piece in zip(sentence.fragments, pieces):
            pieces_by_cue[frag.cue].append(piece)
        if index > 0:
            other_candidate.update(sentence.cues)
    report.other_candidate_cues = sorted(other_candidate)
    if glossary:
        for prot, cands in zip(protected, candidates):
            for _, _, term in prot.terms:
                if cands:
                    report.glossary_terms[term] = report.glossary_terms.get(term, 0) + 1

    target_texts = [_join(p, tgt) for p in pieces_by_cue]
    fits = [fit_cue(t, c.duration, tgt, target_preset, rate) for t, c in zip(target_texts, cues)]

    # 4. lend frames to cues that read too fast (both languages must still fit where they lend)
    spans = [[c.start_frame, c.end_frame] for c in cues]
    if retime and any(p[0] == "reading_speed" for f in fits for p in f.problems):
        chars = [
            {tgt: len(f.text.replace("\n", "")), src: len(source_text(c, src, i, timebase))}
            for i, (f, c) in enumerate(zip(fits, cues))
        ]
        sentence_of: list[set[int]] = [set() for _ in cues]
        for s in sentences:
            for i in s.cues:
                sentence_of[i].update(s.cues)
        changed = relieve_reading_speed(
            spans,
            chars,
            {tgt: target_preset, src: source_preset},
            sentence_of,
            [c.end_frame for c in cues],
            rate,
        )
        for i in changed:
            report.retimed.append(
                {"cue": i, "from": [cues[i].start_frame, cues[i].end_frame], "to": list(spans[i])}
            )
            fits[i] = fit_cue(target_texts[i], spans[i][1] - spans[i][0], tgt, target_preset, rate)

    out: list[Cue] = []
    for i, (cue, fit) in enumerate(zip(cues, fits)):
        out.append(
            replace(cue, start_frame=spans[i][0], end_frame=spans[i][1], text={**cue.text, tgt: fit.text})
        )
        for problem, value, limit in fit.problems:
            report.unfit.append(
                {
                    "cue": i,
                    "timecode": timebase.timecode(spans[i][0]),
                    "problem": problem,
                    "value": value,
                    "limit": limit,
                    "text": fit.text,
                }
            )
    report.seconds = round(time.monotonic() - started, 3)
    return out, report


def _capacities(sentence: Sentence, cues: list[Cue], preset: CaptionPreset, rate) -> list[float]:
    """How many target characters each fragment's share of its cue can hold (lines and reading speed)."""
    out = []
    for frag in sentence.fragments:
        cue = cues[frag.cue]
        share = frag.frames / cue.duration if cue.duration else 1.0
        by_lines = preset.max_chars_per_line * preset.max_lines * share
        by_speed = preset.max_chars_per_second * frag.frames / float(rate)
        out.append(min(by_lines, by_speed))
    return out


def _best_distribution(
    sentence: Sentence, candidates: list[str], cues: list[Cue], preset: CaptionPreset, rate, language: str
) -> tuple[list[str], int]:
    """The first (best-scored) candidate that fits its cues; else the one that overflows least (shorter
    wins)."""
    k = len(sentence.fragments)
    if not candidates:
        return [""] * k, 0
    weights = [f.weight for f in sentence.fragments]
    capacities = _capacities(sentence, cues, preset, rate)
    best: tuple[float, int, int, list[str]] | None = None
    for index, text in enumerate(candidates):
        pieces, overflow = distribute(text, weights, capacities, language)
        if overflow <= 0:
            return pieces, index
        key = (overflow, len(text), index, pieces)
        if best is None or key[:3] < best[:3]:
            best = key
    return best[3], best[2]


def _translate_around_terms(
    protected: list[Protected], src: str, tgt: str, translator: Translator, batch_size: int
) -> list[str]:
    """Translate the text between glossary placeholders and put the fixed terms between the pieces, in
    order."""
    layouts: list[list[tuple[str, str]]] = []  # per sentence: ("text", s) or ("term", t)
    queue: list[str] = []
    for prot in protected:
        lookup = {p: t for p, _, t in prot.terms}
        parts = re.split(r"(XQ\d+Z)", prot.text)
        layout = []
        for part in parts:
            if part in lookup:
                layout.append(("term", lookup[part]))
            elif re.search(r"\w", part):
                layout.append(("text", part.strip()))
                queue.append(part.strip())
        layouts.append(layout)
    translated = (
        iter(h[0] if h else "" for h in translator.translate(queue, src, tgt, 1, batch_size))
        if queue
        else iter(())
    )
    out = []
    for layout in layouts:
        out.append(_join([value if kind == "term" else next(translated) for kind, value in layout], tgt))
    return out


def translate_document_with_report(
    doc: CaptionDocument,
    target_lang: str,
    model=None,
    device: str = "auto",
    glossary: Glossary | str | Path | None = None,
    progress: Progress | None = None,
    preset: str | CaptionPreset | None = None,
    translator: Translator | None = None,
    flag: str = "--model",
    retime: bool = True,
    simplified_chinese: bool = True,
) -> tuple[CaptionDocument, TranslationReport]:
    """``translate_document`` plus the report (for the CLI and the service)."""
    tgt = normalize_language(target_lang)
    src = _document_language(doc)
    if normalize_language(doc.source_language or "und") in ("", "und"):  # cues keyed "und": name the language
        doc = replace(
            doc,
            source_language=src,
            languages=[src if k in ("", "und") else k for k in doc.languages],
            cues=[
                replace(c, text={(src if k == "und" else k): v for k, v in c.text.items()}) for c in doc.cues
            ],
        )
    if translator is None:
        if progress:
            progress.update("translate", 0.0)
        translator = resolve_translator(src, tgt, model, device, flag=flag)
    cues, report = translate_cues(
        doc.cues,
        src,
        tgt,
        translator,
        doc.timebase,
        preset,
        glossary,
        retime=retime,
        simplified_chinese=simplified_chinese,
        progress=progress,
    )
    # The source keeps the document's own spelling (zh-Hans stays zh-Hans); the new language is added once.
    languages = [k for k in (doc.languages or [doc.source_language]) if normalize_language(k) != tgt]
    languages.append(tgt)
    out = replace(doc, cues=cues, languages=languages, warnings=list(doc.warnings) + report.warnings())
    return out, report


def translate_document(
    doc: CaptionDocument,
    target_lang: str,
    model=None,
    device: str = "auto",
    glossary: Glossary | str | Path | None = None,
    progress: Progress | None = None,
    *,
    preset: str | CaptionPreset | None = None,
    simplified_chinese: bool = True,
    flag: str = "--translation-model",
) -> CaptionDocument:
    """A copy of ``doc`` whose cues also carry ``target_lang`` text (identical timing); problems go to
    warnings.

    ``model``: a folder or hub name (None: resolve offline first, see ``translate_backends``). Raises
    ``ModelNotAvailableError`` when no model can be had -- never returns untranslated text. ``flag`` is how
    the caller's command line spells the model option, for that error's instructions.
    """
    return translate_document_with_report(
        doc,
        target_lang,
        model,
        device,
        glossary,
        progress,
        preset,
        flag=flag,
        simplified_chinese=simplified_chinese,
    )[0]


def _document_language(doc: CaptionDocument) -> str:
    src = normalize_language(doc.source_language or "und")
    if src not in ("", "und"):
        return src
    sample = " ".join(t for c in doc.cues[:20] for t in c.text.values())
    if not sample.strip():
        raise InputError("the captions have no text to translate")
    return "zh" if has_cjk(sample) else "en"
