"""benchmarks/readme_table.py: the README's Measured table comes from one run, and says what each row was
measured on."""

from __future__ import annotations

import importlib.util
import json

import pytest
from fixtures.paths import REPO


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location(
        "captionbridge_readme_table", REPO / "benchmarks" / "readme_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_run(date="2026-12-06 04:00 UTC"):
    spread = {"median": 1, "min": 0.9, "max": 1.2}
    return {
        "date": date,
        "quick": False,
        "command": "python benchmarks/run_all.py",
        "machine": {"cpus": 2, "cpu_model": "AMD EPYC", "memory_gib": 23.5, "cuda_devices": 0},
        "load_average_start": [0.5, 0.4, 0.3],
        "benchmarks": {
            "end_to_end": {
                "date": date,
                "timeline_minutes": 20.4,
                "recordings": 17,
                "x_real_time": 9.1,
                "bare_x_real_time": 10.2,
                "speed_runs_per_side": 3,
                "overhead_pct_vs_bare": 12.1,
                "speed_runs": {
                    "pipeline_wall_s": spread,
                    "bare_wall_s": spread,
                    "overhead_pct_per_pair": {"min": 9.0, "max": 15.5},
                },
                "word_timing_measured_on": "the calibration sentences",
                "word_mae_ms": 20.0,
                "within_50ms_pct": 86.0,
                "within_100ms_pct": 94.0,
                "f1_200ms": 0.96,
            },
            "captions": {
                "date": date,
                "line_break_preferred_pct": 95.2,
                "frozen": {
                    "all_pct": 87.5,
                    "en": {"preferred": 40, "line_breaks": 46},
                    "zh": {"preferred": 16, "line_breaks": 18},
                    "rules": "abc",
                    "date": date,
                },
            },
        },
    }


def test_rows_come_from_the_run_and_say_what_they_were_measured_on(table):
    text = table.render(one_run())
    assert "one full run on 2026-12-06 04:00 UTC" in text and "AMD EPYC" in text
    assert "| what | figure | measured on | target |" in text
    assert "**12.1 %** (per pair 9.0 to 15.5 %)" in text and "medians of 3 whole-process runs" in text
    assert "| the calibration sentences |" in text  # word timing says what it was tuned on
    assert "87.5 % on the frozen sets (en 40/46, zh 16/18)" in text
    service = next(line for line in text.splitlines() if line.startswith("| engine service"))
    assert table.MISSING in service  # nothing is carried over from an older report


def test_merged_or_quick_reports_are_refused(table):
    merged = one_run()
    merged["runs"] = [{"date": "a"}, {"date": "b"}]
    with pytest.raises(table.ReportRefused, match="merges 2 runs"):
        table.render(merged)
    mixed = one_run()
    mixed["benchmarks"]["captions"]["date"] = "2026-11-23 19:51 UTC"
    with pytest.raises(table.ReportRefused, match="2 different dates"):
        table.render(mixed)
    quick = {**one_run(), "quick": True}
    with pytest.raises(table.ReportRefused, match="quick"):
        table.render(quick)
    assert "one quick run" in table.render(quick, allow_quick=True)


def test_cli_refuses_with_a_one_line_error(table, tmp_path, capsys):
    merged = one_run()
    merged["benchmarks"]["captions"]["date"] = "2026-11-23 19:51 UTC"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(merged))
    assert table.main(["--report", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
