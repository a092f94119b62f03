"""The corrections store: one record per approved correction, in the engine's data folder.

Layout: ``<root>/corrections/<id>.json`` (the record) beside ``<id>.flac`` (the audio span, 16 kHz mono), both
private to the user (0700 folder, 0600 files), written atomically. A record holds the model's words with their
confidences, the corrected text, language, model name and timing calibration, timeline and job, and whether
only the timing changed (ground truth for word timing). Nothing is recorded unless a person approved it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InputError

SAMPLE_RATE = 16000


@dataclass
class CorrectionRecord:
    id: str
    language: str
    model: str
    calibration: str
    timeline: str
    job_id: str
    start: float  # seconds from the timeline's first frame
    end: float
    model_words: list[dict]  # {"text", "start", "end", "confidence"} as the model produced them
    corrected_text: str
    corrected_words: list[dict] = field(default_factory=list)  # {"text", "start", "end"} as approved
    timing_only: bool = False
    created: str = ""

    @property
    def model_text(self) -> str:
        return " ".join(w["text"].strip() for w in self.model_words).strip()

    @property
    def lowest_confidence(self) -> float:
        return min((float(w.get("confidence", 1.0)) for w in self.model_words), default=1.0)


class CorrectionStore:
    def __init__(self, root: str | Path):
        self.folder = Path(root) / "corrections"

    def _private_folder(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        return self.folder

    def add(self, record: CorrectionRecord, audio: np.ndarray) -> CorrectionRecord:
        """Keep ``record`` and its audio span (mono float32 at 16 kHz)."""
        import soundfile as sf

        if record.end <= record.start:
            raise InputError(f"correction {record.id or '(new)'}: its span ends before it starts")
        folder = self._private_folder()
        record.id = record.id or uuid.uuid4().hex[:16]
        record.created = record.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        audio_tmp, json_tmp = folder / f".{record.id}.flac.tmp", folder / f".{record.id}.json.tmp"
        old = os.umask(0o077)
        try:
            sf.write(str(audio_tmp), np.asarray(audio, np.float32), SAMPLE_RATE, format="FLAC")
            json_tmp.write_text(json.dumps(asdict(record), ensure_ascii=False, indent=1), encoding="utf-8")
        finally:
            os.umask(old)
        os.replace(audio_tmp, folder / f"{record.id}.flac")
        os.replace(json_tmp, folder / f"{record.id}.json")
        return record

    def records(self) -> list[CorrectionRecord]:
        out = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                out.append(CorrectionRecord(**json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue  # a record being written, or not ours
        out.sort(key=lambda r: (r.created, r.id))
        return out

    def audio_path(self, record: CorrectionRecord) -> Path:
        return self.folder / f"{record.id}.flac"

    def audio(self, record: CorrectionRecord) -> np.ndarray:
        import soundfile as sf

        data, rate = sf.read(str(self.audio_path(record)), dtype="float32")
        if rate != SAMPLE_RATE:
            raise InputError(f"{self.audio_path(record)}: expected {SAMPLE_RATE} Hz audio, found {rate}")
        return data

    def purge(self) -> int:
        """Delete every record and its audio. Returns how many records there were."""
        count = len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
        return count

    def vocabulary(self, min_count: int = 2, language: str | None = None) -> list[str]:
        """Words people corrected more than once (names, jargon), most frequent first: hotwords for the
        decoder and terms for the translation glossary. ``language`` None or "auto": every language."""
        language = None if language in (None, "", "auto") else language
        counts: Counter[str] = Counter()
        for record in self.records():
            if record.timing_only or (language and record.language != language):
                continue
            heard = {w["text"].strip(" ,.?!;:\"'()") for w in record.model_words}
            for word in record.corrected_text.split():
                clean = word.strip(" ,.?!;:\"'()")
                if clean and clean not in heard:  # a new word, or a name the model wrote in lower case
                    counts[clean] += 1
        return [w for w, n in counts.most_common() if n >= min_count]


def review_queue(items: list[dict], threshold: float) -> list[dict]:
    """Spans to review across jobs, most uncertain first: ``items`` are dicts with a ``confidence`` (the
    lowest word confidence of the span); those at or above ``threshold`` are left out."""
    return sorted(
        (i for i in items if float(i["confidence"]) < threshold), key=lambda i: float(i["confidence"])
    )
