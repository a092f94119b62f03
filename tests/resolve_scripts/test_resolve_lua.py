"""``Generate Captions.lua``: syntax-checked with luac5.4 and run with lua5.4 against a Lua fake Resolve,
talking to a loopback engine through the real curl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from fixtures.exact_time import exact_ms_up
from fixtures.fake_resolve import srt_frames
from fixtures.loopback_engine import LoopbackEngine
from fixtures.paths import REPO, absent

ROOT = REPO
SCRIPT = ROOT / "resolve_scripts" / "Generate Captions.lua"
FAKE_DIR = ROOT / "tests" / "lua"
LUA = shutil.which("lua5.4") or shutil.which("lua")
LUAC = shutil.which("luac5.4") or shutil.which("luac")


@pytest.fixture(autouse=True)
def _needs_lua():
    if not LUA:
        absent("lua5.4 is not installed (Debian: apt-get install lua5.4)")


DRIVER = r"""
CAPTIONBRIDGE_NO_MAIN = true
package.path = [==[%(fake_dir)s]==] .. "/?.lua;" .. package.path
local Fake = require("fake_resolve")
local M = dofile([==[%(script)s]==])
local cfg = M.json.decode([==[%(cfg)s]==])
local resolve, app = Fake.new(cfg.resolve)
local ui = Fake.recording_ui()
local engine = nil
if type(cfg.engine_config) == "string" then
  engine = assert(M.Engine.discover(cfg.engine_config))
end
local report = M.run(resolve, cfg.options, ui, engine)
report.product = nil
io.write(M.json.encode({ report = report, state = Fake.dump(app), messages = ui.messages,
                         progress_calls = ui.progress_calls }))
"""


def run_lua(tmp_path, resolve_cfg, engine=None, options=None, env=None):
    cfg = {
        "resolve": resolve_cfg,
        "options": dict({"output_dir": str(tmp_path / "out"), "poll": 0.01}, **(options or {})),
        "engine_config": str(engine.config) if engine else None,
    }
    (tmp_path / "out").mkdir(exist_ok=True)
    driver = tmp_path / "driver.lua"
    driver.write_text(DRIVER % {"fake_dir": str(FAKE_DIR), "script": str(SCRIPT), "cfg": json.dumps(cfg)})
    run = subprocess.run(
        [LUA, str(driver)], capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {}))
    )
    assert run.returncode == 0, run.stderr + run.stdout
    return json.loads(run.stdout)


def test_syntax():
    if not LUAC:
        absent("luac5.4 is not installed (Debian: apt-get install lua5.4)")
    out = subprocess.run([LUAC, "-p", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("path", [SCRIPT, ROOT / "resolve_scripts" / "menu_entry.lua.template"])
def test_lua_51_compatible_source(path):
    """Fusion's Lua is LuaJIT (5.1): no integer division, goto or bitwise operators."""
    import re

    source = re.sub(r"--\[\[.*?\]\]", "", path.read_text(), flags=re.S)
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    assert "//" not in code.replace("://", "")
    assert "goto " not in code and "<<" not in code and ">>" not in code and "utf8." not in code


@pytest.mark.parametrize(
    "clock",
    [
        {"rate": "25", "start_frame": 90000, "start_tc": "01:00:00:00", "df": False},
        {"rate": "29.97", "start_frame": 107892, "start_tc": "01:00:00;00", "df": True},
        {"rate": "23.976", "start_frame": 86400, "start_tc": "01:00:00:00", "df": False},
    ],
)
def test_lua_places_every_cue_on_its_frame(tmp_path, clock):
    with LoopbackEngine(tmp_path, drop_frame=clock["df"]) as engine:
        out = run_lua(tmp_path, dict(clock, studio=False, version=[21, 1, 0]), engine)
        job = next(iter(engine.jobs.values()))
    doc = job["document"]
    report, state = out["report"], out["state"]
    assert report["ok"], out["messages"]
    assert job["timeline_path"].endswith(".otio")
    assert job["options"]["drop_frame"] is clock["df"], (
        "the timeline's own drop-frame setting goes to the engine"
    )
    assert doc.timebase.start_frame == clock["start_frame"] and doc.timebase.drop_frame == clock["df"]
    assert [t["name"] for t in state["subtitle"]] == ["English (CaptionBridge)", "Chinese (CaptionBridge)"]
    for track, lang in zip(state["subtitle"], ("en", "zh")):
        assert [(s, e) for s, e, _ in track["items"]] == [
            (clock["start_frame"] + c.start_frame, clock["start_frame"] + c.end_frame) for c in doc.cues
        ]
        assert [t for _, _, t in track["items"]] == [c.text[lang] for c in doc.cues]
        assert srt_frames(report["languages"][lang]["srt"], doc.timebase.rate) == [
            (c.start_frame, c.end_frame) for c in doc.cues
        ]
    assert state["markers"] == sorted({w.start_frame for w in doc.words if w.confidence < 0.5})
    # free edition: no Studio-only call, no upsell dialog; user state restored
    assert state["upsell_dialogs"] == 0 and not state["called_studio_only"]
    assert state["page"] == "edit" and state["playhead"] == clock["start_tc"] and state["marks"] == [10, 500]
    assert state["current_is_original"] and state["folder"] == "Master"
    assert state["track_states"] == [[True, False], [True, False], [False, True]]
    assert out["messages"][-1][0] == "Captions added" and out["progress_calls"] >= 2
    # the token went in a header, never as a URL or Origin
    assert all(
        "Origin" not in h and h.get("Authorization") == f"Bearer {engine.token}"
        for _, _, h in engine.requests
    )


def test_lua_sidecar_fallback_tells_user(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, {"placement": "nothing"}, engine)
        doc = next(iter(engine.jobs.values()))["document"]
    report, state = out["report"], out["state"]
    assert not report["ok"] and not state["subtitle"]
    title, text, is_error = out["messages"][-1]
    assert is_error and title == "Import the captions by hand"
    for lang in ("en", "zh"):
        assert report["languages"][lang]["method"] == "sidecar" and report["languages"][lang]["srt"] in text
    assert "record frame 90000" in text and doc.timebase.timecode(doc.cues[0].start_frame) in text
    assert "0 of 30 captions are on the track" in text


def test_lua_whole_file_strategy(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, {"placement": "whole_file"}, engine)
    assert out["report"]["ok"] and out["report"]["languages"]["en"]["strategy"] == "whole-file"


def test_lua_engine_errors_are_clear(tmp_path):
    with LoopbackEngine(tmp_path, fail_with="no audio on the timeline") as engine:
        out = run_lua(tmp_path, {}, engine)
    assert not out["report"]["ok"] and "no audio on the timeline" in out["messages"][-1][1]
    assert not out["state"]["subtitle"]
    # no engine running at all
    out = run_lua(tmp_path, {}, None, env={"CAPTIONBRIDGE_CONFIG_DIR": str(tmp_path / "nowhere")})
    assert "captionbridge serve" in out["messages"][-1][1]
    # an engine that does not listen any more
    with LoopbackEngine(tmp_path / "gone") as engine:
        config = engine.config
    out = run_lua(tmp_path, {}, None, env={"CAPTIONBRIDGE_CONFIG_DIR": str(config)})
    assert "Cannot reach the CaptionBridge engine" in out["messages"][-1][1]


def test_lua_time_helpers_match_timebase(tmp_path):
    from captionbridge.core.timeline.timebase import Timebase

    frames = [0, 1, 1799, 1800, 17982, 107892, 123456, 863136]
    code = r"""
CAPTIONBRIDGE_NO_MAIN = true
local M = dofile([==[%(script)s]==])
local out = {}
local specs = { {30000, 1001, 30, true}, {60000, 1001, 60, true}, {25, 1, 25, false},
                {24000, 1001, 24, false} }
for _, spec in ipairs(specs) do
  local row = {}
  for _, f in ipairs(%(frames)s) do
    local tc = M.frames_to_timecode(f, spec[3], spec[4])
    row[#row + 1] = { tc, M.timecode_to_frames(tc, spec[3], spec[4]), M.frame_ms_ceil(f, spec[1], spec[2]) }
  end
  out[#out + 1] = row
end
local n, d = M.parse_rate("23.976")
local n2, d2 = M.parse_rate("29.97 DF")
out[#out + 1] = { n, d, n2, d2, M.json.decode('{"a":[1,2,{"b":"\\u4e2d\\u6587"}],"c":null}').a[3].b }
io.write(M.json.encode(out))
""" % {"script": str(SCRIPT), "frames": "{" + ",".join(map(str, frames)) + "}"}
    driver = tmp_path / "t.lua"
    driver.write_text(code)
    run = subprocess.run([LUA, str(driver)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    for row, (rate, df) in zip(
        rows, (("30000/1001", True), ("60000/1001", True), ("25", False), ("24000/1001", False))
    ):
        tb = Timebase(rate, 0, df)
        assert row == [[tb.timecode(f), f, exact_ms_up(f, tb.rate)] for f in frames]
    assert rows[-1] == [24000, 1001, 30000, 1001, "中文"]


def test_lua_against_the_real_service(tmp_path, real_service):
    class Config:
        config = real_service

    out = run_lua(tmp_path, {"studio": False}, Config)
    assert out["report"]["ok"], out["messages"]
    assert [len(t["items"]) for t in out["state"]["subtitle"]] == [30, 30]
    assert out["state"]["subtitle"][0]["items"][0][0] >= 90000


def test_lua_starts_the_engine_recorded_by_the_installer(tmp_path):
    import time

    marker = tmp_path / "started.txt"
    cli = tmp_path / "captionbridge"
    cli.write_text(f"#!/bin/sh\necho \"$@\" > '{marker}'\n")
    cli.chmod(0o755)
    (tmp_path / "install.json").write_text(json.dumps({"cli": str(cli)}))
    driver = tmp_path / "s.lua"
    driver.write_text(
        "CAPTIONBRIDGE_NO_MAIN = true\nlocal M = dofile([==[%s]==])\n"
        "io.write(tostring(M.start_engine([==[%s]==])))" % (SCRIPT, tmp_path)
    )
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONBRIDGE_CLI"}
    run = subprocess.run([LUA, str(driver)], capture_output=True, text=True, env=env, timeout=30)
    assert run.stdout == "true", run.stderr
    deadline = time.time() + 10
    # the shell creates the file before echo writes into it: wait for the words, not the file
    while time.time() < deadline and not (marker.exists() and marker.read_text().strip()):
        time.sleep(0.05)
    assert marker.read_text().strip() == "serve"


def test_lua_fcpxml_timeline_fallback(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, {"placement": "nothing", "fcpxml_import": True}, engine)
        doc = next(iter(engine.jobs.values()))["document"]
    report, state = out["report"], out["state"]
    assert not report["ok"] and not state["subtitle"] and state["current_is_original"]
    assert {r["method"] for r in report["languages"].values()} == {"fcpxml_timeline"}
    assert state["imported"]["name"] == "Reel 1 captions"
    assert state["imported"]["tracks"] == [[90000 + c.start_frame for c in doc.cues]] * 2
    title, text, is_error = out["messages"][-1]
    assert is_error and title == "Captions on a new timeline" and "01:00:00:00" in text


def test_lua_token_file_is_private_and_removed_after_every_request(tmp_path):
    """The token's header file: in a 0700 folder with a random name, itself 0600, gone after each request
    (including a failed one); a full run leaves nothing in TMPDIR."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    seen = tmp_path / "seen.txt"
    curl = tmp_path / "curl"
    curl.write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in @*h.txt) f="${a#@}";'
        f' echo "$f $(stat -c %a "$f") $(stat -c %a "$(dirname "$f")")" >> \'{seen}\';; esac; done\n'
        f"exec '{shutil.which('curl')}' \"$@\"\n"
    )
    curl.chmod(0o755)
    env = {"TMPDIR": str(tmpdir), "CAPTIONBRIDGE_CURL": str(curl)}
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, {"studio": False}, engine, env=env)
        assert out["report"]["ok"], out["messages"]
        with LoopbackEngine(tmp_path / "failing", fail_with="no audio") as failing:
            out = run_lua(tmp_path, {}, failing, env=env)
            assert not out["report"]["ok"]
    rows = [line.split() for line in seen.read_text().splitlines()]
    assert len(rows) >= 6
    folders = [os.path.dirname(path) for path, _, _ in rows]
    assert len(set(folders)) == len(folders), "each request gets its own folder"
    for path, file_mode, dir_mode in rows:
        assert (file_mode, dir_mode) == ("600", "700"), (path, file_mode, dir_mode)
        name = os.path.basename(os.path.dirname(path))
        assert name.startswith("captionbridge-") and len(name) == len("captionbridge-") + 32
        assert not os.path.exists(path)
    assert list(tmpdir.iterdir()) == []


def test_lua_refuses_a_folder_someone_made_first(tmp_path):
    taken = tmp_path / "captionbridge-taken"
    taken.mkdir(mode=0o777)
    driver = tmp_path / "p.lua"
    driver.write_text(
        "CAPTIONBRIDGE_NO_MAIN = true\nlocal M = dofile([==[%s]==])\n"
        "local a, err = M.make_private_dir([==[%s]==], {'h.txt'})\n"
        "local b = M.make_private_dir([==[%s]==], {'h.txt'})\n"
        "io.write(tostring(a) .. '|' .. tostring(err) .. '|' .. tostring(b) .. '|' .. M.random_name()"
        " .. '|' .. M.random_name())" % (SCRIPT, taken, tmp_path / "fresh")
    )
    run = subprocess.run([LUA, str(driver)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    made, err, fresh, r1, r2 = run.stdout.split("|")
    assert made == "nil" and "already exist" in err
    assert list(taken.iterdir()) == []  # nothing written into the foreign folder
    assert fresh == str(tmp_path / "fresh") and oct((tmp_path / "fresh").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "fresh" / "h.txt").stat().st_mode & 0o777) == "0o600"
    assert r1 != r2 and len(r1) == 32 and all(c in "0123456789abcdef" for c in r1)


STUB_DRIVER = r"""
package.path = [==[%(fake_dir)s]==] .. "/?.lua;" .. package.path
local Fake = require("fake_resolve")
resolve = Fake.new({ studio = false, version = { 21, 1, 0 } })  -- the globals Resolve gives a menu script
fu = {}  -- a Fusion without UIManager: messages go to the console
local opened = {}
bmd = { openurl = function(url) opened[#opened + 1] = url end }
dofile([==[%(stub)s]==])
io.write("\nOPENED " .. table.concat(opened, " ") .. "\n")
"""


def run_stub(tmp_path, stub, config):
    driver = tmp_path / "stub-driver.lua"
    driver.write_text(STUB_DRIVER % {"fake_dir": str(FAKE_DIR), "stub": str(stub)})
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONBRIDGE_CLI"}
    env.update(CAPTIONBRIDGE_CONFIG_DIR=str(config), HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path))
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not os.path.exists(p + "/captionbridge")
    )
    run = subprocess.run([LUA, str(driver)], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr + run.stdout
    return run.stdout


def test_lua_menu_entries_run_review_and_update(tmp_path, engine_factory):
    """The installer writes "Review Captions.lua" and "Update Captions.lua" from one template: each runs its
    function of "Generate Captions.lua" from its own folder (else the folder it was installed in), as the free
    edition's Workspace > Scripts menu does, with Resolve's globals."""
    from fixtures.review import PageClient

    from captionbridge.plugin import installers

    eng = engine_factory("lua-menu", job="fixtures.review:review_job")
    client = eng.start()
    folder = tmp_path / "Utility"
    folder.mkdir()
    shutil.copyfile(SCRIPT, folder / "Generate Captions.lua")
    stubs = {}
    for title in installers.RESOLVE_MENU_ENTRIES:
        stubs[title] = folder / f"{title}.lua"
        stubs[title].write_text(installers.render_menu_entry(title, "lua", folder))
        if LUAC:
            check = subprocess.run([LUAC, "-p", str(stubs[title])], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr
    out = run_stub(tmp_path, stubs["Review Captions"], eng.config)
    assert "Review Captions: No CaptionBridge job is recorded for this timeline" in out
    url = out.rsplit("OPENED ", 1)[1].strip()
    assert url in out and PageClient(client.base_url).open_link(url)[0] == 303
    out = run_stub(tmp_path, stubs["Update Captions"], eng.config)
    assert "ERROR Update Captions: No CaptionBridge job is recorded for 'Reel 1'" in out
    # a copy run from elsewhere finds the scripts where the installer put them
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(stubs["Update Captions"], elsewhere / "Update Captions.lua")
    assert "Generate Captions on it first" in run_stub(
        tmp_path, elsewhere / "Update Captions.lua", eng.config
    )
    # and without the main script anywhere: what to do, not a Lua error
    (folder / "Generate Captions.lua").unlink()
    out = run_stub(tmp_path, stubs["Review Captions"], eng.config)
    assert "'Generate Captions.lua' was not found next to this script" in out
    assert "captionbridge install resolve" in out
