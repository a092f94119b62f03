"""The line-break benchmark (benchmarks/bench_line_breaks.py): the frozen sets stay frozen and unseen, and a
break after punctuation counts as preferred only where the rules put one."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest
from fixtures.paths import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "captionbridge_bench_line_breaks", REPO / "benchmarks" / "bench_line_breaks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frozen_files_are_unchanged(bench):
    """Editing a frozen set (text or marks) after it was scored would make its score meaningless."""
    for name, pinned in bench.FROZEN.values():
        assert hashlib.sha256((REPO / "benchmarks" / "data" / name).read_bytes()).hexdigest() == pinned, name
    assert not {name for name, _ in bench.FROZEN.values()} & {
        f for _, _, f in bench.SETS
    }  # never in the seen sets


def test_every_data_file_says_what_it_was_used_for():
    for path in sorted((REPO / "benchmarks" / "data").glob("line_breaks_*.txt")):
        header = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("#")]
        assert any("USED FOR" in ln or "FROZEN" in ln or "冻结" in ln for ln in header), path.name


@pytest.mark.parametrize(
    "text,pos,expected",
    [
        ("It rained. We left", 9, True),  # after a full stop (positions count non-space characters)
        ("It rained, so we left", 9, True),  # after a comma
        ('He said "stop." Then', 13, True),  # after a full stop inside closing quotes
        ('the word "stop" and', 13, False),  # a closing quote alone is not punctuation the rules break after
        ("it cost 3.14 euros", 8, False),  # a decimal point
        ("about 1,000 people", 7, False),  # a thousands separator
        ("下雨了，我们走了", 4, True),  # Chinese comma
        ("the (old) house", 8, False),  # a closing bracket alone
    ],
)
def test_after_punctuation_follows_the_rules(bench, text, pos, expected):
    para = bench._core(text)
    assert bench.after_punctuation(para, pos) is expected, (para[:pos], para[pos:])


def test_frozen_scoring_is_once_per_rule_version_and_refuses_edits(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "FROZEN_LOG", tmp_path / "log.json")
    monkeypatch.setattr(bench, "rules_fingerprint", lambda: "rules-A")
    first = bench.score_frozen()
    assert first["scored_now"] and first["rules"] == "rules-A"
    assert set(first) >= {"en", "zh", "all_pct", "date"}
    assert "poor_line_breaks" not in json.dumps(first)  # counts only: the misses are never kept
    again = bench.score_frozen()
    assert not again["scored_now"] and again["all_pct"] == first["all_pct"]
    assert len(json.loads((tmp_path / "log.json").read_text())) == 1
    monkeypatch.setattr(bench, "rules_fingerprint", lambda: "rules-B")  # a rule change: scored once more
    assert bench.score_frozen()["scored_now"]
    assert [e["rules"] for e in json.loads((tmp_path / "log.json").read_text())] == ["rules-A", "rules-B"]
    edited = tmp_path / "data"
    edited.mkdir()
    for name, _ in bench.FROZEN.values():
        text = (REPO / "benchmarks" / "data" / name).read_text(encoding="utf-8")
        (edited / name).write_text(text.replace(" | ", " ", 1).replace("|", "", 1), encoding="utf-8")
    monkeypatch.setattr(bench, "DATA", edited)
    monkeypatch.setattr(bench, "rules_fingerprint", lambda: "rules-C")
    with pytest.raises(RuntimeError, match="was edited"):
        bench.score_frozen()


def test_reports_never_show_the_frozen_sentences(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "FROZEN_LOG", tmp_path / "log.json")
    results = bench.run(quick=True)
    assert results["frozen"]["all_pct"] is not None
    written = "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("line_breaks*"))
    for name, _ in bench.FROZEN.values():
        for paragraph in bench.load(name):
            _, _, text = bench.parse(paragraph, "zh" if "_zh_" in name else "en")
            assert text[:25] not in written, text
