"""Both Resolve scripts against one behaviour table (``fixtures/resolve_behaviours.py``): the Python script
and its Lua twin must find, start, or give up on the engine the same way, within the same time."""

from __future__ import annotations

import json

import pytest
from fixtures.loopback_engine import LoopbackEngine
from fixtures.resolve_behaviours import (
    BEHAVIOURS,
    LUA,
    HungEngine,
    closed_port,
    dead_pid,
    run_script,
    stop_engine_in,
    write_engine_launcher,
)

SCRIPTS = [
    "python",
    pytest.param(
        "lua",
        marks=pytest.mark.skipif(not LUA, reason="lua5.4 is not installed (Debian: apt-get install lua5.4)"),
    ),
]


def check(expect: dict, out: dict, tmpdir):
    assert out["ok"] is expect["ok"], out
    for words in expect["says"]:
        assert words in out["message"], (words, out["message"])
    assert out["wall_seconds"] <= expect["max_seconds"], out
    if expect.get("tmpdir_empty"):
        assert sorted(p.name for p in tmpdir.iterdir()) == []


@pytest.fixture
def tmpdir_(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_engine(script, tmp_path, tmpdir_):
    out = run_script(script, tmp_path / "config", tmpdir_)
    check(BEHAVIOURS["no_engine"], out, tmpdir_)


@pytest.mark.parametrize("script", SCRIPTS)
def test_hung_engine(script, tmp_path, tmpdir_):
    with HungEngine(tmp_path / "config") as hung:
        out = run_script(script, hung.config, tmpdir_)
    check(BEHAVIOURS["hung_engine"], out, tmpdir_)


@pytest.mark.parametrize("script", SCRIPTS)
def test_stale_service_json_starts_the_engine(script, tmp_path, tmpdir_):
    config = tmp_path / "config"
    write_engine_launcher(config, tmp_path / "bin")
    (config / "token").write_text("left-by-the-killed-engine-0123456789abcdef")
    (config / "service.json").write_text(
        json.dumps({"host": "127.0.0.1", "port": closed_port(), "pid": dead_pid(), "version": "old"})
    )
    try:
        out = run_script(script, config, tmpdir_)
        check(BEHAVIOURS["stale_service_json"], out, tmpdir_)
        assert json.loads((config / "service.json").read_text())["version"] != "old"
    finally:
        stop_engine_in(config)


@pytest.mark.parametrize("script", SCRIPTS)
def test_token_refused(script, tmp_path, tmpdir_):
    with LoopbackEngine(tmp_path / "e") as engine:
        (engine.config / "token").write_text("not-the-engine-token-0123456789abcdef")
        out = run_script(script, engine.config, tmpdir_)
    check(BEHAVIOURS["token_refused"], out, tmpdir_)


@pytest.mark.parametrize("script", SCRIPTS)
def test_live_engine(script, tmp_path, tmpdir_):
    with LoopbackEngine(tmp_path / "e") as engine:
        out = run_script(script, engine.config, tmpdir_)
        assert any(path == "/v1/health" for _, path, _ in engine.requests)
    check(BEHAVIOURS["live_engine"], out, tmpdir_)


def test_every_behaviour_has_a_test():
    tested = {"no_engine", "hung_engine", "stale_service_json", "token_refused", "live_engine"}
    assert tested == set(BEHAVIOURS)
