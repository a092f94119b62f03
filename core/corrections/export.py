"""Corrections as a dataset: JSON Lines, or a Hugging Face ``audiofolder`` that ``datasets.load_dataset``
reads."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..errors import InputError
from .store import CorrectionStore

FORMATS = ("jsonl", "hf")


def export(store: CorrectionStore, out: str | Path, fmt: str = "jsonl") -> Path:
    """Write every record with its audio. ``jsonl``: ``corrections.jsonl`` + ``audio/``; ``hf``: an
    audiofolder (``metadata.jsonl`` with ``file_name`` + ``text`` + metadata, FLAC files beside it) for
    ``datasets.load_dataset("audiofolder", data_dir=out)``."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    records = store.records()
    if not records:
        raise InputError("there are no approved corrections to export yet")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty: export into a new folder so nothing is overwritten")
    audio_dir = out / ("audio" if fmt == "jsonl" else "data")
    audio_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for record in records:
        name = f"{record.id}.flac"
        shutil.copy2(store.audio_path(record), audio_dir / name)
        row = asdict(record)
        text = record.corrected_text
        if fmt == "hf":
            meta = {
                "file_name": f"data/{name}",
                "text": text,
                "model_text": record.model_text,
                "language": record.language,
                "model": record.model,
                "job_id": record.job_id,
                "timeline": record.timeline,
                "start": record.start,
                "end": record.end,
                "timing_only": record.timing_only,
                "words": json.dumps(record.corrected_words),
            }
            lines.append(json.dumps(meta, ensure_ascii=False))
        else:
            row["audio"] = f"audio/{name}"
            lines.append(json.dumps(row, ensure_ascii=False))
    target = out / ("metadata.jsonl" if fmt == "hf" else "corrections.jsonl")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
