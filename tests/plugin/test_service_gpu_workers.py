"""One worker per GPU: each worker's jobs run on its own GPU (device_index), so every GPU keeps a warm
model."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from captionbridge.plugin.service import jobs as jobs_module
from captionbridge.plugin.service.jobs import JobService


def test_each_worker_gets_its_own_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_module, "cuda_device_count", lambda: 2)
    seen: list[tuple[str, int | None]] = []
    both_running = threading.Barrier(2, timeout=10)

    def job_function(timeline_path: Path, out_dir: Path, options: dict, progress) -> dict:
        seen.append((threading.current_thread().name, options.get("device_index")))
        both_running.wait()  # two jobs at once: one per worker
        (out_dir / "x.json").write_text("{}")
        return {"document": {"cues": []}, "files": ["x.json"]}

    service = JobService(tmp_path / "data", job_function=job_function)
    assert service.workers == 2  # default: one per GPU
    timeline = tmp_path / "t.otio"
    timeline.write_text("{}")
    service.start()
    try:
        ids = [uuid.uuid4().hex for _ in range(2)]
        for job_id in ids:
            service.submit(job_id, timeline, {"device": "auto"}, uploaded=False)
        deadline = time.monotonic() + 15
        while any(service.get(j).state != "succeeded" for j in ids):
            assert time.monotonic() < deadline, [service.get(j).state for j in ids]
            time.sleep(0.05)
    finally:
        service.stop()
    assert sorted(index for _, index in seen) == [0, 1]
    assert {name: index for name, index in seen} == {"captionbridge-worker-0": 0, "captionbridge-worker-1": 1}
