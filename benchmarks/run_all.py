"""One entry point for every benchmark: runs each area's benchmark plus the end-to-end ones and writes one report.

    python benchmarks/run_all.py            # full run (tens of minutes on 2 CPU cores)
    python benchmarks/run_all.py --quick    # smaller inputs, same measurements (a few minutes)
    python benchmarks/run_all.py --only timeline,captions

Writes benchmarks/results/report.md and report.json, with the machine described.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name -> module in benchmarks/ exposing run(quick: bool) -> dict
BENCHMARKS = {
    "timeline": "bench_timeline",
    "captions": "bench_line_breaks",
    "transcription": "bench_transcribe",
    "translation": "bench_translate",
    "service": "bench_service",
    "end_to_end": "bench_end_to_end",
    "review": "bench_review",
}


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/meminfo") as fh:
            info["memory_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import ctranslate2

        info["cuda_devices"] = ctranslate2.get_cuda_device_count()
        info["ctranslate2"] = ctranslate2.__version__
    except Exception:
        info["cuda_devices"] = 0
    return info


def to_markdown(report: dict) -> str:
    lines = ["# CaptionBridge benchmark report", "",
             f"Date: {report['date']}  ", f"Mode: {'quick' if report['quick'] else 'full'}  ",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()), ""]
    for name, result in report["benchmarks"].items():
        lines += [f"## {name}", "", f"Measured {result.get('date', report['date'])}.", ""]
        if "error" in result:
            lines += ["```", result["error"].strip(), "```", ""]
            continue
        summary = result.get("summary") or {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
        lines += ["| measure | value |", "| --- | --- |"]
        for key, value in summary.items():
            lines.append(f"| {key} | {value} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHMARKS))
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    sys.path.insert(0, str(HERE))
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
              "machine": machine(), "benchmarks": {}}
    failed = 0
    for name in chosen:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            result = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
        except Exception:
            failed += 1
            result = {"error": traceback.format_exc()}
            print(result["error"], file=sys.stderr)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["date"] = report["date"]
        report["benchmarks"][name] = result
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    previous = RESULTS / f"report{suffix}.json"
    if args.only and previous.exists():
        # A partial run updates its entries in the last report and keeps the others (each keeps its own date).
        old = json.loads(previous.read_text())
        for name, result in old.get("benchmarks", {}).items():
            if name not in report["benchmarks"]:
                result.setdefault("date", old.get("date"))
                report["benchmarks"][name] = result
        report["benchmarks"] = {n: report["benchmarks"][n] for n in BENCHMARKS if n in report["benchmarks"]}
    (RESULTS / f"report{suffix}.json").write_text(json.dumps(report, indent=2, default=str))
    (RESULTS / f"report{suffix}.md").write_text(to_markdown(report))
    print(f"report: {RESULTS / f'report{suffix}.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
