"""The corrections vocabulary reaches the decoder: from the pipeline's option, from the CLI's engine store,
and in engine jobs (issue 17, 'use it at once, without training')."""

from __future__ import annotations

import time

import numpy as np
import soundfile as sf
from click.testing import CliRunner
from fixtures.service import write_timeline

from captionbridge.core.corrections.store import CorrectionRecord, CorrectionStore
from captionbridge.core.pipeline import CaptionOptions, caption_timeline
from captionbridge.core.speech import transcribe
from captionbridge.plugin.service.jobs import JobService


def _teach(store: CorrectionStore, times: int = 2) -> None:
    for job in range(times):
        store.add(
            CorrectionRecord(
                id="",
                language="en",
                model="base",
                calibration="",
                timeline="t",
                job_id=f"j{job}",
                start=0.0,
                end=1.0,
                model_words=[{"text": "dolby", "start": 0.1, "end": 0.5, "confidence": 0.4}],
                corrected_text="Dalby",
            ),
            np.zeros(16000, np.float32),
        )


def _capture_hotwords(monkeypatch) -> list:
    seen = []

    def fake(regions, timebase, options, progress=None):
        seen.append(options.hotwords)
        return transcribe.Transcript(words=[], language="en", language_probability=1.0)

    monkeypatch.setattr(transcribe, "transcribe_regions", fake)
    return seen


def test_pipeline_passes_the_vocabulary_as_hotwords(monkeypatch, tmp_path):
    from captionbridge.adapters.timeline_read import load_timeline

    seen = _capture_hotwords(monkeypatch)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), np.zeros(16000, np.float32), 16000)
    loaded = load_timeline(write_timeline(tmp_path / "t.otio", ["x"], media=wav))
    caption_timeline(loaded, CaptionOptions(language="en", vocabulary=["Dalby", "Quillinan"]))
    caption_timeline(loaded, CaptionOptions(language="en"))
    assert seen == ["Dalby Quillinan", None]


def test_the_cli_reads_the_engine_store(monkeypatch, tmp_path):
    from captionbridge.plugin import cmd_caption

    monkeypatch.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(tmp_path / "config"))
    assert cmd_caption._corrections_vocabulary("en") is None
    _teach(CorrectionStore(tmp_path / "config"))
    assert cmd_caption._corrections_vocabulary("en") == ["Dalby"]
    assert cmd_caption._corrections_vocabulary("zh") is None
    help_text = CliRunner().invoke(cmd_caption.caption_cmd, ["--help"]).output
    assert "--no-corrections-vocabulary" in help_text


def test_engine_jobs_get_the_vocabulary(tmp_path):
    seen = []

    def job(timeline_path, out_dir, options, progress):
        seen.append(options.get("vocabulary"))
        return {"document": {"cues": [], "words": []}, "files": []}

    data = tmp_path / "data"
    _teach(CorrectionStore(data))
    service = JobService(data, job_function=job, workers=1)
    service.start()
    try:
        timeline = write_timeline(tmp_path / "t.otio", ["x"])
        service.submit("a" * 32, timeline, {"language": "en"}, False)
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()
    assert seen == [["Dalby"]]


def test_translation_keeps_the_corrected_names(monkeypatch, tmp_path):
    from captionbridge.adapters.timeline_read import load_timeline
    from captionbridge.core.translate import cues as translate_cues

    _capture_hotwords(monkeypatch)
    given = []
    monkeypatch.setattr(  # what the pipeline calls (with a translator: the cluster's, or None for local)
        translate_cues,
        "translate_document_with_report",
        lambda doc, target, **kw: (given.append(kw) or doc, None),
    )
    wav = tmp_path / "a.wav"
    sf.write(str(wav), np.zeros(16000, np.float32), 16000)
    loaded = load_timeline(write_timeline(tmp_path / "t.otio", ["x"], media=wav))
    caption_timeline(loaded, CaptionOptions(language="en", translate_to="zh", vocabulary=["Dalby"]))
    assert given[0]["glossary"].entries == [{"en": "Dalby", "zh": "Dalby"}]
