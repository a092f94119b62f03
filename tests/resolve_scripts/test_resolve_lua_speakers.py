"""One subtitle track per speaker in ``Generate Captions.lua`` (the free edition's script), with lua5.4
against the Lua fake Resolve and the loopback engine through the real curl."""

from __future__ import annotations

from collections import Counter

from fixtures.loopback_engine import LoopbackEngine
from test_resolve_lua import run_lua

CLOCK = {"rate": "25", "start_frame": 90000, "start_tc": "01:00:00:00", "df": False}
OPTIONS = {"speakers": "auto", "speaker_names": "Ana,Ben", "speaker_tracks": True}
NAMES = {"S1": "Ana", "S2": "Ben", "S3": "Speaker 3"}


def test_lua_one_track_per_speaker_every_cue_once(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, dict(CLOCK, studio=False, version=[21, 1, 0]), engine, OPTIONS)
        job = next(iter(engine.jobs.values()))
    report, state, doc = out["report"], out["state"], job["document"]
    assert report["ok"], out["messages"]
    assert job["options"]["speakers"] == "auto" and job["options"]["speaker_names"] == ["Ana", "Ben"]
    tracks = {t["name"]: t["items"] for t in state["subtitle"]}
    assert len(tracks) == 6
    start = CLOCK["start_frame"]
    for lang, lang_name in (("en", "English"), ("zh", "Chinese")):
        got = []
        for sid, who in NAMES.items():
            items = tracks[f"{who} - {lang_name} (CaptionBridge)"]
            mine = [c for c in doc.cues if c.speakers[0] == sid]
            assert [tuple(i) for i in items] == [
                (start + c.start_frame, start + c.end_frame, c.text[lang]) for c in mine
            ]
            got.extend((s, e) for s, e, _ in items)
        assert Counter(got) == Counter((start + c.start_frame, start + c.end_frame) for c in doc.cues)
    title, text, error = out["messages"][-1]
    assert (
        title == "Captions added" and not error and "3 speaker tracks" in text and "Ana - English: " in text
    )
    # the engine's two-speaker (dash) cue, once per language, on its first speaker's track: the user is told
    assert "2 two-speaker captions (one dashed line per speaker)" in text


def test_lua_a_result_without_speakers_goes_on_one_track_per_language_and_says_why(tmp_path, monkeypatch):
    import fixtures.loopback_engine as loopback

    monkeypatch.setattr(loopback, "label_speakers", lambda doc, options: doc)  # the engine found no voices
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(tmp_path, dict(CLOCK, studio=False, version=[21, 1, 0]), engine, OPTIONS)
        doc = next(iter(engine.jobs.values()))["document"]
    assert out["report"]["ok"], out["messages"]
    tracks = {t["name"]: t["items"] for t in out["state"]["subtitle"]}
    assert sorted(tracks) == ["Chinese (CaptionBridge)", "English (CaptionBridge)"]
    assert len(tracks["English (CaptionBridge)"]) == len(doc.cues)
    title, text, error = out["messages"][-1]
    assert title == "Captions added"
    assert "No speakers were found in these captions (Speakers was auto)" in text


def test_lua_speaker_tracks_need_speakers(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(
            tmp_path, dict(CLOCK, studio=False, version=[21, 1, 0]), engine, {"speaker_tracks": True}
        )
        assert not engine.jobs, "refused before anything was exported or sent"
    title, text, error = out["messages"][-1]
    assert error and "One subtitle track per speaker needs speaker labels" in text
    assert not out["state"]["subtitle"]  # (an empty Lua table encodes as {})


def test_lua_a_failing_speaker_track_leaves_none_and_falls_back(tmp_path):
    with LoopbackEngine(tmp_path) as engine:
        out = run_lua(
            tmp_path,
            dict(CLOCK, studio=False, version=[21, 1, 0], placement="nothing", fcpxml_import=False),
            engine,
            OPTIONS,
        )
    assert not out["report"]["ok"] and not out["state"]["subtitle"]
    title, text, error = out["messages"][-1]
    assert error and title == "Import the captions by hand"
    for lang in ("en", "zh"):
        srt = out["report"]["languages"][lang]["srt"]
        assert srt.endswith(f".{lang}.srt") and srt in text


FUSION_DRIVER = r"""
CAPTIONBRIDGE_NO_MAIN = true
local M = dofile([==[%(script)s]==])
-- Fusion's UIManager / UIDispatcher as the script uses them: ui:VGroup({...}), ui:ComboBox({ID = ...}),
-- disp:AddWindow(props, layout), win:GetItems(), item:AddItem(label), CurrentIndex, Text, Checked, Enabled,
-- handlers as win.On.<ID>.<Event> = function(ev), disp:RunLoop() / disp:ExitLoop().
local function element(kind, props)
  props = props or {}
  local e = { kind = kind, ID = props.ID, Text = props.Text or "", Checked = props.Checked or false,
              CurrentIndex = 0, items = {}, children = {} }
  if props.Enabled == nil then e.Enabled = true else e.Enabled = props.Enabled end
  function e:AddItem(label) self.items[#self.items + 1] = label end
  return e
end
local ui = setmetatable({}, { __index = function(_, kind)
  return function(_, arg)
    if kind == "VGroup" or kind == "HGroup" then local g = element(kind); g.children = arg; return g end
    return element(kind, arg)
  end
end })
local seen, win = {}, nil
local disp = {}
function disp:AddWindow(props, layout)
  local items = {}
  local function walk(e)
    if e.ID then items[e.ID] = e end
    for _, c in ipairs(e.children or {}) do walk(c) end
  end
  walk(layout)
  local handlers = { __index = function(t, k) local h = {}; rawset(t, k, h); return h end }
  win = { items = items, On = setmetatable({}, handlers) }
  function win:GetItems() return items end
  function win:Show() end
  function win:Hide() end
  return win
end
function disp:ExitLoop() end
function disp:RunLoop()  -- the person at the dialog
  local it = win.items
  seen.choices = it.Speakers.items
  seen.initially = it.SpeakerTracks.Enabled
  it.Speakers.CurrentIndex = 1; win.On.Speakers.CurrentIndexChanged({})
  seen.with_detect = it.SpeakerTracks.Enabled
  it.SpeakerTracks.Checked = true
  it.Speakers.CurrentIndex = 0; win.On.Speakers.CurrentIndexChanged({})
  seen.off_again = { it.SpeakerTracks.Enabled, it.SpeakerTracks.Checked }
  it.SpeakerNames.Text = "Ana, Ben"; win.On.SpeakerNames.TextChanged({})
  seen.with_names = it.SpeakerTracks.Enabled
  it.SpeakerTracks.Checked = true
  win.On.OK.Clicked({})
end
local fui = M.FusionUI.new({ UIManager = ui }, { UIDispatcher = function() return disp end })
local options = fui:ask_options({ language = "auto" }, { name = "Reel 1", clock = "25 fps" })
local engine_options = M.speaker_engine_options(options, {})
io.write(M.json.encode({ seen = seen, speaker_tracks = options.speaker_tracks,
                         speakers = options.speakers or "none", engine = engine_options,
                         refused = M.check_speaker_options(options) or "no" }))
"""


def test_lua_dialog_offers_one_track_per_speaker_only_with_speakers(tmp_path):
    import json
    import subprocess

    from test_resolve_lua import LUA, SCRIPT

    driver = tmp_path / "dialog.lua"
    driver.write_text(FUSION_DRIVER % {"script": str(SCRIPT)})
    run = subprocess.run([LUA, str(driver)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr + run.stdout
    out = json.loads(run.stdout)
    assert out["seen"] == {
        "choices": ["Off", "Detect", "2", "3", "4", "5", "6"],
        "initially": False,
        "with_detect": True,
        "off_again": [False, False],
        "with_names": True,
    }
    assert out["speaker_tracks"] is True and out["speakers"] == "none"
    assert out["engine"] == {"speakers": "auto", "speaker_names": ["Ana", "Ben"]} and out["refused"] == "no"


NAME_DRIVER = r"""
CAPTIONBRIDGE_NO_MAIN = true
local M = dofile(arg[1])
local out = {}
for _, case in ipairs(M.json.decode(io.read("a"))) do
  local who = { names = { S1 = case[1] }, order = { "S1" } }
  out[#out + 1] = M.speaker_track_name("S1", who, case[2], case[3])
end
io.write(M.json.encode(out))
"""


def test_lua_speaker_track_names_are_the_python_scripts(tmp_path):
    """The shared job record holds speaker track names, so both scripts must name a track alike: trimmed,
    control characters as spaces, at most 40 characters (never half a UTF-8 character)."""
    import json
    import subprocess

    from test_resolve_lua import LUA, SCRIPT
    from test_resolve_script import load_script

    long_name = "Zoë Ångström-Bérénice de la Montagne-Sainte-Geneviève"
    cases = [
        ["Ana", "en", ["en"]],
        ["  Bernard \t", "en", ["en"]],
        ["Ben\nBenson", "zh", ["en", "zh"]],
        [long_name, "en", ["en"]],
        ["李" * 45, "en", ["en"]],
        ["   ", "en", ["en"]],
    ]
    driver = tmp_path / "names.lua"
    driver.write_text(NAME_DRIVER)
    run = subprocess.run(
        [LUA, str(driver), str(SCRIPT)], input=json.dumps(cases), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr + run.stdout
    gc = load_script()
    python = [gc.speaker_track_name("S1", {"S1": name}, lang, langs) for name, lang, langs in cases]
    assert json.loads(run.stdout) == python
    assert python[3] == long_name[:40] + " (CaptionBridge)" and python[5] == "Speaker (CaptionBridge)"
