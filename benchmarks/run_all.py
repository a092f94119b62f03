"""One entry point for every benchmark: runs each area's benchmark plus the end-to-end ones and writes one
report.

    python benchmarks/run_all.py            # full run (tens of minutes on 2 CPU cores)
    python benchmarks/run_all.py --quick    # smaller inputs, same measurements (a few minutes)
    python benchmarks/run_all.py --only timeline,captions                 # writes report-partial.md/.json
    python benchmarks/run_all.py --only service --merge-into report.json  # replaces rows, says so per row

Writes benchmarks/results/report.md and report.json from ONE run, with the machine, the date and the exact
command. A partial run (``--only``) never rewrites the full report: it writes its own ``report-partial``
files, unless ``--merge-into`` names a report to merge into; then the merged report lists every run it holds
(date, machine, command) and each benchmark says which run it came from, and merging refuses a report from
another machine or another mode (quick/full).
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
    "word_timing": "bench_word_timing",
}


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
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
    runs = report.get("runs") or [
        {"date": report["date"], "command": report.get("command", "?"), "machine": report["machine"]}
    ]
    lines = [
        "# CaptionBridge benchmark report",
        "",
        f"Mode: {'quick' if report['quick'] else 'full'}  ",
        f"Load average (1, 5, 15 min) at start / end: {report.get('load_average_start')} / "
        f"{report.get('load_average_end')}  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
        "",
    ]
    if len(runs) == 1:
        lines += [f"One run: {runs[0]['date']}, command `{runs[0]['command']}`.", ""]
    else:
        lines += ["**Merged from several runs** (each benchmark says which):", ""]
        lines += [f"- run {n}: {r['date']}, command `{r['command']}`" for n, r in enumerate(runs, 1)]
        lines.append("")
    for name, result in report["benchmarks"].items():
        run_no = result.get("run", 1)
        where = f"Measured {result.get('date', report['date'])}" + (
            f" (run {run_no})" if len(runs) > 1 else ""
        )
        lines += [f"## {name}", "", where + ".", ""]
        if "error" in result:
            lines += ["```", result["error"].strip(), "```", ""]
            continue
        summary = result.get("summary") or {
            k: v for k, v in result.items() if not isinstance(v, (dict, list))
        }
        lines += ["| measure | value |", "| --- | --- |"]
        for key, value in summary.items():
            lines.append(f"| {key} | {value} |")
        lines.append("")
    return "\n".join(lines)


class MergeRefused(Exception):
    pass


def merge(old: dict, new: dict) -> dict:
    """``new`` (a partial run) merged into ``old``: refused across machines or modes; every run is listed and
    every benchmark keeps the number of the run it came from."""
    if old.get("quick") != new["quick"]:
        raise MergeRefused(
            f"cannot merge a {'quick' if new['quick'] else 'full'} run into a "
            f"{'quick' if old.get('quick') else 'full'} report"
        )
    if old.get("machine") != new["machine"]:
        raise MergeRefused(
            f"cannot merge runs from different machines: {old.get('machine')} vs {new['machine']}"
        )
    runs = list(
        old.get("runs")
        or [
            {"date": old.get("date"), "command": old.get("command", "unknown"), "machine": old.get("machine")}
        ]
    )
    runs.append({"date": new["date"], "command": new["command"], "machine": new["machine"]})
    merged = {**old, "runs": runs, "date": new["date"], "benchmarks": {}}
    for name in BENCHMARKS:
        if name in new["benchmarks"]:
            merged["benchmarks"][name] = {**new["benchmarks"][name], "run": len(runs)}
        elif name in old.get("benchmarks", {}):
            merged["benchmarks"][name] = {"run": 1, **old["benchmarks"][name]}
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHMARKS))
    parser.add_argument(
        "--merge-into",
        default="",
        help="with --only: a report .json in benchmarks/results to "
        "merge this run into (refused across machines/modes)",
    )
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if args.merge_into and not args.only:
        parser.error("--merge-into is for a partial run (--only); a full run writes a report of its own")
    command = "python benchmarks/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sys.path.insert(0, str(HERE))
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "command": command.strip(),
        "machine": machine(),
        "benchmarks": {},
    }
    report["load_average_start"] = [
        round(x, 2) for x in os.getloadavg()
    ]  # a shared machine's load, for the record
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
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    if args.only and not args.merge_into:
        stem = f"report-partial{suffix}"
    elif args.merge_into:
        target = RESULTS / args.merge_into
        if not target.is_file():
            print(f"error: {target} does not exist: nothing to merge into", file=sys.stderr)
            return 3
        try:
            report = merge(json.loads(target.read_text()), report)
        except MergeRefused as exc:
            print(f"error: {exc}; the run is kept in report-partial{suffix}.json", file=sys.stderr)
            (RESULTS / f"report-partial{suffix}.json").write_text(json.dumps(report, indent=2, default=str))
            return 3
        stem = target.stem
    else:
        stem = f"report{suffix}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (RESULTS / f"{stem}.md").write_text(to_markdown(report))
    print(f"report: {RESULTS / f'{stem}.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
