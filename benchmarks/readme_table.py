"""The README's "Measured" table, generated from ONE benchmark report, each row saying what it was measured
on.

    python benchmarks/run_all.py            # one full run: benchmarks/results/report.json
    python benchmarks/readme_table.py       # prints the paragraph and table to paste under "## Measured"
    python benchmarks/readme_table.py --report results/report-quick.json --allow-quick

Refuses a report merged from several runs (``run_all.py --merge-into``) and, unless ``--allow-quick``, a quick
one: the README's figures come from one full run. A figure a benchmark did not produce is written as "not
measured in this run", never carried over from an older report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MISSING = "not measured in this run"


class ReportRefused(Exception):
    pass


def _get(result: dict | None, *keys, default=None):
    value = result
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def _fmt(template: str, **values) -> str:
    if any(v is None for v in values.values()):
        return MISSING
    return template.format(**values)


def rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(what, figure, measured on, target) for every README row."""
    b = report.get("benchmarks", {})
    e2e, tl, lb, tr, sv = (
        b.get(k) if "error" not in (b.get(k) or {}) else None
        for k in ("end_to_end", "timeline", "captions", "transcription", "service")
    )
    runs = _get(e2e, "speed_runs") or {}
    e2e_on = _fmt(
        "{m}-minute OTIO timeline at 23.976 @ 01:00:00:00, {n} clips of espeak-ng speech with gaps and "
        "picture cuts",
        m=_get(e2e, "timeline_minutes"),
        n=_get(e2e, "recordings"),
    )
    tuned_on = _get(e2e, "word_timing_measured_on") or MISSING
    out = [
        (
            "end-to-end speed (CPU int8, Whisper base, beam 5)",
            _fmt(
                "{x}× real time; bare faster-whisper {bx}×; medians of {n} whole-process runs per side, "
                "alternated "
                "(pipeline {p[min]}-{p[max]} s, bare {q[min]}-{q[max]} s)",
                x=_get(e2e, "x_real_time"),
                bx=_get(e2e, "bare_x_real_time"),
                n=_get(e2e, "speed_runs_per_side"),
                p=runs.get("pipeline_wall_s"),
                q=runs.get("bare_wall_s"),
            ),
            e2e_on + "; same stages and VAD settings on both sides",
            _fmt(
                "overhead ≤ 20 %: **{o} %** (per pair {r[min]} to {r[max]} %)",
                o=_get(e2e, "overhead_pct_vs_bare"),
                r=runs.get("overhead_pct_per_pair"),
            ),
        ),
        (
            "word timing on that timeline",
            _fmt(
                "MAE {mae} ms, {w50} % within 50 ms, {w100} % within 100 ms, F1 {f1} at a 200 ms collar",
                mae=_get(e2e, "word_mae_ms"),
                w50=_get(e2e, "within_50ms_pct"),
                w100=_get(e2e, "within_100ms_pct"),
                f1=_get(e2e, "f1_200ms"),
            ),
            tuned_on,
            "MAE ≤ 30 ms; ≥ 90 % within 50 ms",
        ),
        (
            "word timing on UNSEEN_SET (see its row below for what was chosen on it)",
            _fmt(
                "{v} (MAE ms / % within 50 ms)",
                v=_get(tr, "summary", "EN word MAE ms / % within 50 ms, unseen: all"),
            ),
            "speech_corpus.UNSEEN_SET (bench_transcribe.py)",
            "as above",
        ),
        (
            "drift over the timeline",
            _fmt(
                "mean start error {a} ms in the first tenth, {b} ms in the last",
                a=_get(e2e, "drift_ms_first_tenth"),
                b=_get(e2e, "drift_ms_last_tenth"),
            ),
            e2e_on,
            "none",
        ),
        (
            "words emitted in silence, noise, gaps",
            _fmt("{n}", n=_get(e2e, "words_in_non_speech")),
            e2e_on,
            "0",
        ),
        (
            "caption hard-rule conformance (`captionbridge check`)",
            _fmt(
                "{c} cues, {h} with a hard violation",
                c=_get(e2e, "cues"),
                h=_get(e2e, "cues_with_hard_violations"),
            ),
            e2e_on,
            "100 %",
        ),
        (
            "re-run after a re-edit (one clip re-trimmed)",
            _fmt("{p} % of the first run", p=_get(e2e, "re_edit_pct_of_first")),
            e2e_on,
            "≤ 5 %",
        ),
        (
            "peak memory by timeline length",
            _fmt(
                "{m}",
                m=", ".join(f"{v:g} MB at {k}" for k, v in (_get(e2e, "peak_rss_mb_by_length") or {}).items())
                or None,
            ),
            e2e_on + " and its first clips",
            "flat",
        ),
        (
            "timeline read (OTIO / Premiere xmeml; released xmeml adapter)",
            _fmt(
                "{o} s (wall; CPU) / {x} s ({r} s)",
                o=_get(tl, "summary", "otio read (s, best of 3; CPU s)"),
                x=_get(tl, "summary", "xmeml read, fixed reader (s)"),
                r=_get(tl, "summary", "xmeml read, released fcp_xml adapter (s)"),
            ),
            _fmt("generated timeline, {c} clips", c=_get(tl, "summary", "clips")),
            "OTIO ≤ 2 s",
        ),
        (
            "timeline audio render",
            _fmt(
                "{x}× real time at 16 kHz; peak memory (MB) by length {m}",
                x=_get(tl, "summary", "render speed @16 kHz (x real time)"),
                m=_get(tl, "summary", "peak memory by timeline length (MB)"),
            ),
            "generated timeline, about 2 hours",
            "≥ 200×, flat memory",
        ),
        (
            "line breaks at preferred points",
            _fmt(
                "{p} % on the frozen sets (en {e[preferred]}/{e[line_breaks]}, zh "
                "{z[preferred]}/{z[line_breaks]}); "
                "{s} % on the sets the rules were written or tuned on",
                p=_get(lb, "frozen", "all_pct"),
                e=_get(lb, "frozen", "en"),
                z=_get(lb, "frozen", "zh"),
                s=_get(lb, "line_break_preferred_pct"),
            ),
            _fmt(
                "frozen hand-annotated en + zh sets, never tuned on, scored once for rules {r} on {d}",
                r=_get(lb, "frozen", "rules"),
                d=_get(lb, "frozen", "date"),
            ),
            "≥ 95 %",
        ),
        (
            "engine service, 20 concurrent jobs",
            _fmt(
                "{ok}/{n} done, {lost} lost; {mk}/{ok} results carry their own job's marker; {w}/{ok} hold "
                "their own "
                "spoken word, {x} another job's",
                ok=_get(sv, "concurrent_1_worker", "succeeded"),
                n=_get(sv, "concurrent_1_worker", "jobs"),
                lost=_get(sv, "concurrent_1_worker", "lost"),
                mk=_get(sv, "concurrent_1_worker", "results_with_their_own_marker"),
                w=_get(sv, "concurrent_1_worker", "results_with_their_own_word"),
                x=_get(sv, "concurrent_1_worker", "results_with_another_jobs_word"),
            ),
            "20 OTIO timelines of espeak-ng speech, one word per job, on the real service",
            "every result its own job's",
        ),
    ]
    return out


def render(report: dict, allow_quick: bool = False) -> str:
    runs = report.get("runs") or []
    if len(runs) > 1:
        raise ReportRefused(
            f"the report merges {len(runs)} runs; the README's figures come from one run: "
            "run python benchmarks/run_all.py"
        )
    dates = {
        r.get("date") for r in report.get("benchmarks", {}).values() if isinstance(r, dict) and r.get("date")
    }
    if len(dates) > 1:
        raise ReportRefused(
            f"the report's benchmarks come from {len(dates)} different dates ({', '.join(sorted(dates))})"
            ": the README's figures come from one run: run python benchmarks/run_all.py"
        )
    if report.get("quick") and not allow_quick:
        raise ReportRefused(
            "a quick report: the README's figures come from a full run (or pass --allow-quick)"
        )
    machine = report.get("machine", {})
    head = (
        f"`{report.get('command', 'python benchmarks/run_all.py')}`, one "
        f"{'quick' if report.get('quick') else 'full'}"
        f" run on {report.get('date')}: {machine.get('cpus')} CPUs ({machine.get('cpu_model', '?')}), "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('cuda_devices', 0)} GPU(s); load average at "
        "start "
        f"{report.get('load_average_start')}. Full report: `benchmarks/results/report.md`."
    )
    lines = [head, "", "| what | figure | measured on | target |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(report)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--report", default="results/report.json", help="relative to benchmarks/ (default %(default)s)"
    )
    parser.add_argument("--allow-quick", action="store_true")
    args = parser.parse_args(argv)
    path = HERE / args.report
    try:
        print(render(json.loads(path.read_text(encoding="utf-8")), args.allow_quick), end="")
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 3
    except ReportRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
