"""One subtitle track per speaker in the Resolve (Studio) script, against the fake Resolve and the loopback
engine: each speaker's cues on its own track named after the speaker, verified by read-back, every cue on
exactly one track; refused when speakers are off; removed again when any speaker's track fails; and Update
Captions replacing the speaker tracks with an approved version."""

from __future__ import annotations

import json

import pytest
from fixtures.fake_resolve import FakeResolve
from fixtures.loopback_engine import LoopbackEngine
from fixtures.paths import REPO
from fixtures.review import PageClient
from test_resolve_script import RecordingUI, load_script, run_script, snapshot_state

from captionbridge.core.timeline.timebase import Timebase

SCRIPT = REPO / "resolve_scripts" / "Generate Captions.py"
SPEAKER_OPTIONS = {"speakers": "auto", "speaker_names": "Ana,Ben", "speaker_tracks": True}
NAMES = {"S1": "Ana", "S2": "Ben", "S3": "Speaker 3"}


def track_items(timeline, index):
    return [(i.GetStart(), i.GetEnd(), i._text) for i in timeline.GetItemListInTrack("subtitle", index)]


def tracks_by_name(timeline):
    return {
        timeline.GetTrackName("subtitle", i): track_items(timeline, i)
        for i in range(1, timeline.GetTrackCount("subtitle") + 1)
    }


def approve_view(client, job_id, change):
    """Approve a corrected version through the page as the browser does: ``change(view)`` edits the view's
    cues and speakers; returns the approved body."""
    page = PageClient(client.base_url)
    link = client.request("POST", "/v1/review/links", {"job_id": job_id})["url"]
    assert page.open_link(link)[0] == 303
    view = change(json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2]))
    body = {"cues": view["cues"], "speakers": view["speakers"]}
    status, _, text = page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", body, headers={"Origin": page.base}
    )
    assert status == 201, text
    return body


@pytest.mark.parametrize(
    "clock",
    [
        dict(rate_setting="25", start_timecode="01:00:00:00", start_frame=90000),
        dict(rate_setting="29.97", start_timecode="01:00:00;00", start_frame=107892, drop_frame_setting="1"),
    ],
)
def test_each_speaker_gets_its_own_track_and_every_cue_lands_once(tmp_path, clock):
    resolve = FakeResolve(**clock)
    before = snapshot_state(resolve)
    with LoopbackEngine(tmp_path, drop_frame="drop_frame_setting" in clock) as engine:
        gc, ui, report = run_script(tmp_path, engine, resolve, SPEAKER_OPTIONS)
        job = next(iter(engine.jobs.values()))
    assert report["ok"], ui.messages
    # the speaker options reached the engine
    assert job["options"]["speakers"] == "auto" and job["options"]["speaker_names"] == ["Ana", "Ben"]
    doc = job["document"]
    start = resolve.timeline.GetStartFrame()
    tracks = tracks_by_name(resolve.timeline)
    assert len(tracks) == 6, sorted(tracks)  # 3 speakers x 2 languages
    for lang, lang_name in (("en", "English"), ("zh", "Chinese")):
        placed = []
        for sid, who in NAMES.items():
            got = tracks[f"{who} - {lang_name} (CaptionBridge)"]
            mine = [c for c in doc.cues if c.speakers[0] == sid]
            assert mine, "the fixture gives every speaker cues"
            assert got == [(start + c.start_frame, start + c.end_frame, c.text[lang]) for c in mine]
            placed.extend(got)
        # nothing lost, nothing twice: the speaker tracks together are the language's cues
        assert sorted(placed) == sorted(
            (start + c.start_frame, start + c.end_frame, c.text[lang]) for c in doc.cues
        )
        lang_report = report["languages"][lang]
        assert lang_report["method"] == "subtitle_track" and lang_report["placed"] == len(doc.cues)
        assert [e["speaker"] for e in lang_report["speakers"]] == ["S1", "S2", "S3"]
    # the two-speaker (dash) cue sits on the track of the speaker who starts it, dashes kept
    two = next(c for c in doc.cues if len(c.speakers) == 2)
    first = NAMES[two.speakers[0]]
    assert (start + two.start_frame, start + two.end_frame, two.text["en"]) in tracks[
        f"{first} - English (CaptionBridge)"
    ]
    assert two.text["en"].startswith("- ")
    title, text, error = ui.messages[-1]
    assert title == "Captions added" and not error
    assert "3 speaker tracks" in text and "Ana - English: " in text and "two-speaker" in text
    assert snapshot_state(resolve) == before
    # Update Captions knows which tracks are this job's
    records = json.loads((engine.config / gc.RECORD_FILE).read_text())
    record = records[gc.timeline_key(resolve._project, resolve.timeline)]
    assert record["speaker_tracks"]["en"] == {
        "S1": "Ana - English (CaptionBridge)",
        "S2": "Ben - English (CaptionBridge)",
        "S3": "Speaker 3 - English (CaptionBridge)",
    }


def test_one_language_tracks_are_named_after_the_speaker_alone(tmp_path):
    gc = load_script()
    names = {"S1": "Ana", "S2": "Speaker 2"}
    assert gc.speaker_track_name("S1", names, "en", ["en"]) == "Ana (CaptionBridge)"
    assert gc.speaker_track_name("S2", names, "zh", ["en", "zh"]) == "Speaker 2 - Chinese (CaptionBridge)"
    assert gc.speaker_track_name("", names, "en", ["en"]) == "No speaker (CaptionBridge)"
    # a cue the engine gave no speaker still lands on a track (of its own), never dropped
    cues = [
        {"start_frame": 0, "end_frame": 10, "text": {"en": "a"}, "speakers": ["S2"]},
        {"start_frame": 12, "end_frame": 20, "text": {"en": "b"}},
        {"start_frame": 22, "end_frame": 30, "text": {"en": "- c\n- d"}, "speakers": ["S1", "S2"]},
        {"start_frame": 32, "end_frame": 40, "text": {"en": ""}, "speakers": ["S1"]},
    ]
    groups = gc.speaker_groups(cues, "en", names)
    assert [(sid, [c["text"]["en"] for c in group]) for sid, group in groups] == [
        ("S1", ["- c\n- d"]),
        ("S2", ["a"]),
        ("", ["b"]),
    ]


def test_speaker_tracks_need_speakers_on(tmp_path):
    resolve = FakeResolve()
    before = snapshot_state(resolve)
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve, {"speaker_tracks": True, "speakers": None})
        assert not engine.jobs, "refused before anything was exported or sent"
    assert not report["ok"]
    title, text, error = ui.messages[-1]
    assert error and "One subtitle track per speaker needs speaker labels" in text and "Detect" in text
    assert resolve.timeline.GetTrackCount("subtitle") == 0 and snapshot_state(resolve) == before


def test_names_alone_turn_speakers_on(tmp_path):
    gc = load_script()
    assert gc.engine_options({"speaker_names": "Ana, Ben", "speakers": None}) == {
        "speakers": "auto",
        "speaker_names": ["Ana", "Ben"],
    }
    assert "speakers" not in gc.engine_options({"speakers": "off"})
    assert gc.engine_options({"speakers": 2})["speakers"] == 2


def test_a_result_without_speakers_goes_on_one_track_per_language_and_says_why(tmp_path, monkeypatch):
    import fixtures.loopback_engine as loopback

    monkeypatch.setattr(loopback, "label_speakers", lambda doc, options: doc)  # the engine found no voices
    resolve = FakeResolve()
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve, SPEAKER_OPTIONS)
        doc = next(iter(engine.jobs.values()))["document"]
    assert report["ok"], ui.messages
    assert sorted(tracks_by_name(resolve.timeline)) == ["Chinese (CaptionBridge)", "English (CaptionBridge)"]
    assert len(track_items(resolve.timeline, 1)) == len(doc.cues)
    assert "No speakers were found" in ui.messages[-1][1]


def test_a_failing_speaker_track_removes_that_languages_tracks_and_falls_back(tmp_path):
    # Resolve stops adding subtitle tracks after 4: English's three fit, Chinese fails at its second
    resolve = FakeResolve(subtitle_track_limit=4)
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve, SPEAKER_OPTIONS)
        doc = next(iter(engine.jobs.values()))["document"]
    tracks = tracks_by_name(resolve.timeline)
    assert sorted(tracks) == sorted(f"{who} - English (CaptionBridge)" for who in NAMES.values())
    assert report["languages"]["en"]["method"] == "subtitle_track"
    assert report["languages"]["zh"]["method"] == "fcpxml_timeline"
    assert all(e["track"] is None for e in report["languages"]["zh"]["speakers"])
    # the fallback timeline holds all of Chinese
    imported = resolve._project._timelines[1]
    counts = [len(imported.GetItemListInTrack("subtitle", i)) for i in (1, 2)]
    assert counts == [len(doc.cues)] * 2
    title, text, error = ui.messages[-1]
    assert error and "Ben - Chinese (CaptionBridge)" in text and "did not add a subtitle track" in text


def test_placement_that_places_nothing_leaves_no_speaker_track(tmp_path):
    resolve = FakeResolve(placement="nothing", fcpxml_import=False)
    with LoopbackEngine(tmp_path) as engine:
        _, ui, report = run_script(tmp_path, engine, resolve, SPEAKER_OPTIONS)
    assert not report["ok"] and resolve.timeline.GetTrackCount("subtitle") == 0
    title, text, error = ui.messages[-1]
    assert error and title == "Import the captions by hand"
    for lang in ("en", "zh"):  # the sidecar is the whole language
        assert report["languages"][lang]["method"] == "sidecar"
        assert (
            report["languages"][lang]["srt"].endswith(f".{lang}.srt")
            and report["languages"][lang]["srt"] in text
        )


def test_read_back_catches_a_cue_on_the_wrong_speakers_track(tmp_path):
    gc = load_script()
    resolve = FakeResolve()
    tl = resolve.timeline
    cues = [
        {"start_frame": 0, "end_frame": 10, "text": {"en": "a"}, "speakers": ["S1"]},
        {"start_frame": 12, "end_frame": 20, "text": {"en": "b"}, "speakers": ["S2"]},
    ]
    from fixtures.fake_resolve import FakeTimelineItem

    for _ in range(2):
        tl.AddTrack("subtitle")
    start = tl.GetStartFrame()
    # both cues ended up on S1's track: S2's is empty, and the count would still add up
    tl._place("subtitle", 1, FakeTimelineItem(resolve, "a", start, start + 10, "subtitle", 1, "a"))
    tl._place("subtitle", 1, FakeTimelineItem(resolve, "b", start + 12, start + 20, "subtitle", 1, "b"))
    entries = [
        {"track": 1, "name": "Ana (CaptionBridge)", "expected": [(start, start + 10)]},
        {"track": 2, "name": "Ben (CaptionBridge)", "expected": [(start + 12, start + 20)]},
    ]
    check = gc.verify_speaker_tracks(tl, entries, cues, "en", start)
    assert not check["ok"] and any("Ana (CaptionBridge)" in p for p in check["problems"])
    assert any("0 of 1 captions of Ben" in p for p in check["problems"])


def test_update_moves_a_reassigned_cue_to_its_new_speakers_track(tmp_path, engine_factory):
    """Generate with speaker tracks, approve a version where a cue changed speaker and a speaker was renamed
    (as the review page does), then Update Captions: the new tracks replace the old ones."""
    eng = engine_factory("resolve-speakers", job="fixtures.review:speaker_review_job")
    eng.start()
    gc = load_script()
    resolve = FakeResolve(rate_setting="23.976", start_timecode="01:00:00:00", start_frame=86400)
    client = gc.Engine.discover(config=str(eng.config), start=False)
    ui = RecordingUI(
        dict(SPEAKER_OPTIONS, output_dir=str(tmp_path / "out"), poll=0.05, formats=["srt", "json"])
    )
    report = gc.run(resolve, ui=ui, engine=client, work_dir=str(tmp_path / "work"))
    assert report["ok"], ui.messages
    assert sorted(tracks_by_name(resolve.timeline)) == ["Ana (CaptionBridge)", "Ben (CaptionBridge)"]

    def change(view):
        view["cues"][0]["speakers"] = ["S2"]  # Ana's first cue was Ben's
        view["speakers"] = [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]
        return view

    approved = approve_view(client, report["job"], change)
    ui = RecordingUI()
    result = gc.update(resolve, ui=ui, engine=client)
    assert result["ok"], ui.messages
    tb = Timebase.from_start_timecode("24000/1001", "01:00:00:00", False)
    tracks = tracks_by_name(resolve.timeline)
    assert sorted(tracks) == ["Ana (CaptionBridge)", "Bernard (CaptionBridge)"], "old tracks gone"
    for sid, who in (("S1", "Ana"), ("S2", "Bernard")):
        assert tracks[f"{who} (CaptionBridge)"] == [
            (tb.start_frame + c["start_frame"], tb.start_frame + c["end_frame"], c["text"]["en"])
            for c in approved["cues"]
            if c["speakers"][0] == sid
        ]
    record = gc.find_job(client, resolve._project, resolve.timeline)
    assert record["version"] == 1
    assert record["speaker_tracks"]["en"] == {"S1": "Ana (CaptionBridge)", "S2": "Bernard (CaptionBridge)"}
    assert json.dumps(record)  # still a plain JSON record


class FakeFusionUI:
    """Fusion's UIManager and UIDispatcher as scripts use them (``ui.VGroup([...])``, ``ui.ComboBox({"ID":
    ...})``, ``disp.AddWindow(props, layout)``, ``win.GetItems()[id]`` with ``AddItem``, ``CurrentIndex``,
    ``Text``, ``Checked``, ``Enabled``, handlers set as ``win.On.<ID>.<Event> = fn(ev)``, ``disp.RunLoop()`` /
    ``ExitLoop()``). ``user(items, fire)`` plays the person at the dialog during ``RunLoop``."""

    class Element:
        def __init__(self, kind, props=None, children=()):
            self.kind, self.children = kind, list(children)
            self.ID = (props or {}).get("ID")
            self.Text = (props or {}).get("Text", "")
            self.Checked = (props or {}).get("Checked", False)
            self.Enabled = (props or {}).get("Enabled", True)
            self.CurrentIndex = 0
            self.items = []

        def AddItem(self, label):
            self.items.append(label)

    class Handlers:
        def __init__(self):
            object.__setattr__(self, "by_id", {})

        def __getattr__(self, element_id):
            return self.by_id.setdefault(element_id, type("On", (), {})())

    def __init__(self, user):
        self.user = user
        self.windows = []

    def __getattr__(self, kind):  # ui.VGroup, ui.Label, ui.ComboBox, ...
        def make(arg=None):
            if kind in ("VGroup", "HGroup"):
                return FakeFusionUI.Element(kind, None, arg or [])
            return FakeFusionUI.Element(kind, arg)

        return make

    # bmd.UIDispatcher(ui) is this object too
    def AddWindow(self, props, layout):
        items = {}

        def walk(e):
            if e.ID:
                items[e.ID] = e
            for c in e.children:
                walk(c)

        walk(layout)
        win = type("Window", (), {})()
        win.props, win.items, win.On = props, items, FakeFusionUI.Handlers()
        win.GetItems = lambda: items
        win.Show = win.Hide = lambda: None
        self.windows.append(win)
        return win

    def RunLoop(self):
        win = self.windows[-1]

        def fire(element_id, event):
            handler = getattr(getattr(win.On, element_id), event, None)
            if handler is not None:
                handler({"who": element_id})

        self.user(win.items, fire)

    def ExitLoop(self):
        pass


def test_the_dialog_offers_one_track_per_speaker_only_with_speakers():
    gc = load_script()
    seen = {}

    def user(items, fire):
        assert items["Speakers"].items == ["Off", "Detect", "2", "3", "4", "5", "6"]
        seen["initially"] = items["SpeakerTracks"].Enabled
        items["Speakers"].CurrentIndex = 1  # Detect
        fire("Speakers", "CurrentIndexChanged")
        seen["with_detect"] = items["SpeakerTracks"].Enabled
        items["SpeakerTracks"].Checked = True
        items["Speakers"].CurrentIndex = 0  # Off again: the option goes off with it
        fire("Speakers", "CurrentIndexChanged")
        seen["off_again"] = (items["SpeakerTracks"].Enabled, items["SpeakerTracks"].Checked)
        items["SpeakerNames"].Text = "Ana, Ben"  # names alone turn speakers on
        fire("SpeakerNames", "TextChanged")
        seen["with_names"] = items["SpeakerTracks"].Enabled
        items["SpeakerTracks"].Checked = True
        fire("OK", "Clicked")

    fake = FakeFusionUI(user)
    ui = gc.FusionUI.__new__(gc.FusionUI)
    ui.ui, ui.disp, ui.window, ui._cancel = fake, fake, None, False
    options = ui.ask_options(dict(gc.DEFAULT_OPTIONS), {"name": "Reel 1", "clock": "25 fps"})
    assert seen == {"initially": False, "with_detect": True, "off_again": (False, False), "with_names": True}
    assert options["speakers"] is None and options["speaker_names"] == ["Ana", "Ben"]
    assert options["speaker_tracks"] is True
    assert gc.engine_options(options)["speakers"] == "auto"
    gc.check_speaker_options(options)  # allowed: names turn speakers on


def test_update_of_a_language_left_without_captions_keeps_its_speaker_tracks(tmp_path):
    """A version with no text left in a language (the review page refuses to approve one; a hand-made version
    could hold it) has nothing to put on that language's speaker tracks: they stay, and the reason is given,
    instead of the script failing half way."""
    resolve = FakeResolve()
    with LoopbackEngine(tmp_path) as engine:
        gc, ui, report = run_script(tmp_path, engine, resolve, SPEAKER_OPTIONS)
        assert report["ok"], ui.messages
        client = gc.Engine.discover(config=str(engine.config), start=False)
        record = gc.find_job(client, resolve._project, resolve.timeline)
        result = client.result(report["job"])
    before = tracks_by_name(resolve.timeline)
    timeline = resolve.timeline
    ctx = {
        "resolve": resolve,
        "project": resolve._project,
        "timeline": timeline,
        "media_pool": resolve._project.GetMediaPool(),
        "ui": RecordingUI(),
        "clock": gc.timeline_clock(timeline),
    }
    cues = [dict(c, text=dict(c["text"], zh="")) for c in result["cues"]]
    version = dict(result, cues=cues, version=1)
    folder = tmp_path / "update"
    folder.mkdir()
    speakers_before = json.loads(json.dumps(record["speaker_tracks"]))
    languages = ["en", "zh"]
    lang_report = gc._update_speaker_tracks(ctx, record, "zh", version, cues, str(folder), "Reel", languages)
    assert lang_report["method"] is None
    assert lang_report["problems"] == ["the approved version has no Chinese captions"]
    assert tracks_by_name(timeline) == before and record["speaker_tracks"] == speakers_before
