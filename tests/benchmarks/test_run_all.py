"""benchmarks/run_all.py: one run per report with its machine, date and command; partial runs never merge
silently."""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import pytest
from fixtures.paths import REPO


@pytest.fixture
def run_all(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("captionbridge_run_all", REPO / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    # two tiny benchmarks with the real interface (run(quick) -> dict with a summary)
    for name, value in (("bench_one", 1), ("bench_two", 2)):
        bench = types.ModuleType(name)
        bench.run = lambda quick, value=value: {"summary": {"value": value * (10 if quick else 1)}}
        monkeypatch.setitem(sys.modules, name, bench)
    monkeypatch.setattr(module, "BENCHMARKS", {"one": "bench_one", "two": "bench_two"})
    return module


def test_full_run_records_machine_date_and_command(run_all, tmp_path):
    assert run_all.main([]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["command"] == "python benchmarks/run_all.py"
    assert report["machine"]["cpus"] and report["date"].endswith("UTC")
    text = (tmp_path / "report.md").read_text()
    assert "One run: " in text and "`python benchmarks/run_all.py`" in text and "Merged" not in text


def test_partial_run_does_not_touch_the_full_report(run_all, tmp_path):
    run_all.main([])
    before = (tmp_path / "report.json").read_text()
    assert run_all.main(["--only", "two"]) == 0
    assert (tmp_path / "report.json").read_text() == before
    partial = json.loads((tmp_path / "report-partial.json").read_text())
    assert list(partial["benchmarks"]) == ["two"]


def test_explicit_merge_lists_every_run_and_labels_each_row(run_all, tmp_path):
    run_all.main([])
    assert run_all.main(["--only", "two", "--merge-into", "report.json"]) == 0
    merged = json.loads((tmp_path / "report.json").read_text())
    assert [r["command"] for r in merged["runs"]] == [
        "python benchmarks/run_all.py",
        "python benchmarks/run_all.py --only two --merge-into report.json",
    ]
    assert merged["benchmarks"]["one"]["run"] == 1 and merged["benchmarks"]["two"]["run"] == 2
    text = (tmp_path / "report.md").read_text()
    assert "Merged from several runs" in text and "(run 1)" in text and "(run 2)" in text


def test_merge_is_refused_across_modes_and_machines(run_all, tmp_path, capsys):
    run_all.main([])
    before = (tmp_path / "report.json").read_text()
    assert run_all.main(["--quick", "--only", "two", "--merge-into", "report.json"]) == 3
    assert "cannot merge a quick run into a full report" in capsys.readouterr().err
    old = json.loads(before)
    old["machine"]["cpu_model"] = "another machine"
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert run_all.main(["--only", "two", "--merge-into", "report.json"]) == 3
    assert "different machines" in capsys.readouterr().err
    assert json.loads((tmp_path / "report.json").read_text()) == old  # untouched
    with pytest.raises(SystemExit):
        run_all.main(["--merge-into", "report.json"])  # a full run is never merged
