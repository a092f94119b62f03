"""What an approval corrected: the cues whose text (or only timing) a person changed, with the model's words.

``corrections_from_approval`` compares the approved cues with the ones before (the previous approved version,
or the model's own cues) and returns one ``CorrectionRecord`` per changed cue, carrying the model's words that
fall in it (with their confidences) and the approved text; a cue whose text is unchanged but whose in or out
moved is a timing-only record. ``span_audio`` cuts the span out of the job's review mix at 16 kHz for the
store.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..model import CaptionDocument, Cue
from .store import SAMPLE_RATE, CorrectionRecord

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _joined(words: list[dict]) -> str:
    out = ""
    for w in words:
        piece = w["text"].strip()
        glue = "" if (not out or (_CJK.search(out[-1]) and _CJK.search(piece[:1] or " "))) else " "
        out += glue + piece
    return out


def corrections_from_approval(
    model_doc: dict,
    before: list[Cue],
    approved: list[Cue],
    *,
    job_id: str,
    model: str = "",
    calibration: str = "",
) -> list[CorrectionRecord]:
    """Records for every approved cue that differs from ``before`` (text, or only its in/out)."""
    doc = CaptionDocument.from_dict(model_doc)
    language = doc.source_language
    tb = doc.timebase
    words = [w.to_dict() for w in doc.words]
    out: list[CorrectionRecord] = []
    for cue in approved:
        text = _flat(cue.text.get(language, ""))
        overlapping = [b for b in before if b.start_frame < cue.end_frame and cue.start_frame < b.end_frame]
        if any(
            _flat(b.text.get(language, "")) == text
            and (b.start_frame, b.end_frame) == (cue.start_frame, cue.end_frame)
            for b in overlapping
        ):
            continue  # untouched
        heard = [
            w for w in words if cue.start_frame <= (w["start_frame"] + w["end_frame"]) // 2 < cue.end_frame
        ]
        timing_only = any(_flat(b.text.get(language, "")) == text for b in overlapping)
        if not text or (not heard and not timing_only):
            continue  # an emptied cue, or text typed over silence: nothing the model heard to learn from
        out.append(
            CorrectionRecord(
                id="",
                language=language,
                model=model,
                calibration=calibration,
                timeline=doc.name,
                job_id=job_id,
                start=float(tb.seconds(cue.start_frame)),
                end=float(tb.seconds(cue.end_frame)),
                model_words=[{k: w[k] for k in ("text", "start", "end", "confidence")} for w in heard],
                corrected_text=text,
                timing_only=timing_only,
            )
        )
    return out


def span_audio(mix: Path, sample_rate: int, start: float, end: float) -> np.ndarray:
    """Seconds ``start``..``end`` of a review mix (sample 0 = the timeline's first frame), mono at 16 kHz."""
    import av
    import soundfile as sf

    with sf.SoundFile(str(mix)) as fh:
        fh.seek(max(0, int(start * sample_rate)))
        chunk = fh.read(max(1, int((end - start) * sample_rate)), dtype="float32", always_2d=True).mean(
            axis=1
        )
    if sample_rate == SAMPLE_RATE:
        return chunk
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(chunk.reshape(1, -1)), format="flt", layout="mono"
    )
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    pieces = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame) + resampler.resample(None)]
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
