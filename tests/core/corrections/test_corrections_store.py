"""core.corrections: approved corrections kept privately, exported as datasets, turned into a vocabulary."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from captionbridge.core.corrections.export import export
from captionbridge.core.corrections.store import CorrectionRecord, CorrectionStore, review_queue
from captionbridge.core.errors import InputError


def record(job="job1", heard=("the", "harbor", "master"), text="the Harbour master", timing_only=False):
    words = [
        {"text": w, "start": 1.0 + i * 0.3, "end": 1.25 + i * 0.3, "confidence": 0.9 - 0.3 * (w == "harbor")}
        for i, w in enumerate(heard)
    ]
    return CorrectionRecord(
        id="",
        language="en",
        model="base",
        calibration="calibrated",
        timeline="harbour.xml",
        job_id=job,
        start=1.0,
        end=2.0,
        model_words=words,
        corrected_text=text,
        timing_only=timing_only,
    )


def tone(seconds=1.0):
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_records_are_private_and_complete(tmp_path):
    store = CorrectionStore(tmp_path)
    kept = store.add(record(), tone())
    assert kept.id and kept.created
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    for path in store.folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    [back] = store.records()
    assert back.corrected_text == "the Harbour master" and back.model_text == "the harbor master"
    assert back.lowest_confidence == pytest.approx(0.6)
    assert np.allclose(store.audio(back), tone(), atol=1e-4)  # FLAC is lossless at 16 bits


def test_a_span_that_ends_before_it_starts_is_refused(tmp_path):
    bad = record()
    bad.end = 0.5
    with pytest.raises(InputError, match="ends before it starts"):
        CorrectionStore(tmp_path).add(bad, tone())


def test_export_jsonl_and_hf_audiofolder(tmp_path):
    store = CorrectionStore(tmp_path / "data")
    store.add(record(), tone())
    store.add(record(job="job2", heard=("dalby", "quay"), text="Dalby Quay"), tone(0.5))
    target = export(store, tmp_path / "jsonl", "jsonl")
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["corrected_text"] for r in rows} == {"the Harbour master", "Dalby Quay"}
    assert all((target.parent / r["audio"]).is_file() for r in rows)

    export(store, tmp_path / "hf", "hf")
    import datasets

    loaded = datasets.load_dataset("audiofolder", data_dir=str(tmp_path / "hf"), split="train")
    loaded = loaded.cast_column("audio", datasets.Audio(decode=False))
    assert sorted(loaded["text"]) == ["Dalby Quay", "the Harbour master"]
    assert set(loaded["language"]) == {"en"} and set(loaded["job_id"]) == {"job1", "job2"}

    with pytest.raises(InputError, match="not empty"):
        export(store, tmp_path / "hf", "hf")
    with pytest.raises(InputError, match="use one of"):
        export(store, tmp_path / "x", "csv")


def test_export_of_an_empty_store_says_so(tmp_path):
    with pytest.raises(InputError, match="no approved corrections"):
        export(CorrectionStore(tmp_path), tmp_path / "out")


def test_vocabulary_keeps_words_corrected_more_than_once(tmp_path):
    store = CorrectionStore(tmp_path)
    store.add(record(), tone())
    store.add(record(job="job2"), tone())
    store.add(record(job="job3", heard=("dalby",), text="Dalby"), tone())
    store.add(record(job="job4", text="the Harbour master", timing_only=True), tone())
    assert store.vocabulary() == ["Harbour"]  # "Dalby" once; timing-only edits are not word corrections
    assert store.vocabulary(min_count=1) == ["Harbour", "Dalby"]
    assert store.vocabulary(language="auto") == store.vocabulary(language="en") == ["Harbour"]
    assert store.vocabulary(language="zh") == []


def test_purge_removes_records_and_audio(tmp_path):
    store = CorrectionStore(tmp_path)
    store.add(record(), tone())
    assert store.purge() == 1
    assert not store.folder.exists() and store.records() == []


def test_review_queue_sorts_by_uncertainty():
    items = [{"id": "a", "confidence": 0.9}, {"id": "b", "confidence": 0.2}, {"id": "c", "confidence": 0.6}]
    assert [i["id"] for i in review_queue(items, 0.7)] == ["b", "c"]
