"""Review Captions and Update Captions in the Resolve script, against a fake Resolve and a real engine: the
job a timeline was captioned by is recorded, the review page opens on it, and the approved version replaces
its tracks (verified by read-back; a failed placement leaves the previous captions)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from fixtures.fake_resolve import FakeResolve
from fixtures.paths import REPO
from fixtures.review import PageClient

from captionbridge.core.timeline.timebase import Timebase
from captionbridge.plugin import installers

SCRIPTS = REPO / "resolve_scripts"


def load_script():
    spec = importlib.util.spec_from_file_location(
        "generate_captions_resolve_review", SCRIPTS / "Generate Captions.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingUI:
    def __init__(self, options=None):
        self.options = options
        self.messages = []

    def ask_options(self, defaults, context):
        return dict(defaults, **(self.options or {}))

    def progress(self, stage, percent, eta):
        pass

    def cancelled(self):
        return False

    def message(self, title, text, error=False):
        self.messages.append((title, text, error))

    def close(self):
        pass


@pytest.fixture
def captioned(engine_factory, tmp_path):
    """A fake Resolve whose timeline was captioned through a real engine: (script module, resolve, engine,
    report)."""
    eng = engine_factory("resolve-review", job="fixtures.review:review_job")
    eng.start()
    gc = load_script()
    resolve = FakeResolve(rate_setting="23.976", start_timecode="01:00:00:00", start_frame=86400)
    client = gc.Engine.discover(config=str(eng.config), start=False)
    ui = RecordingUI({"output_dir": str(tmp_path / "out"), "poll": 0.05, "formats": ["srt", "json"]})
    report = gc.run(resolve, ui=ui, engine=client, work_dir=str(tmp_path / "work"))
    assert report["ok"], ui.messages
    yield gc, resolve, eng, client, report
    eng.stop()


def approve(eng, client, job_id, change):
    """Approve a corrected version through the page, as the browser does."""
    page = PageClient(client.base_url)
    link = json.loads(json.dumps(client.request("POST", "/v1/review/links", {"job_id": job_id})))["url"]
    assert page.open_link(link)[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    cues = change(view["cues"])
    status, _, body = page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201, body
    return cues


def items(resolve, index):
    return [
        (i.GetStart(), i.GetEnd(), i._text) for i in resolve.timeline.GetItemListInTrack("subtitle", index)
    ]


def test_review_opens_the_page_on_the_timelines_job(captioned):
    gc, resolve, eng, client, report = captioned
    opened = []
    ui = RecordingUI()
    result = gc.review(resolve, ui=ui, engine=client, open_url=opened.append)
    assert result["ok"] and result["job"] == report["job"] and opened == [result["url"]]
    page = PageClient(client.base_url)
    status, headers, _ = page.open_link(opened[0])
    assert status == 303 and headers["location"].endswith(f"#job={report['job']}")
    assert "Update Captions" in ui.messages[-1][1]


def test_update_replaces_the_track_with_the_approved_version(captioned):
    gc, resolve, eng, client, report = captioned
    tb = Timebase.from_start_timecode("24000/1001", "01:00:00:00", False)
    job_id = report["job"]
    before = items(resolve, 1)
    assert resolve.timeline.GetTrackCount("subtitle") == 1
    # nothing approved yet: told what to do, nothing touched
    ui = RecordingUI()
    result = gc.update(resolve, ui=ui, engine=client)
    assert not result["ok"] and "Approve" in ui.messages[-1][1] and items(resolve, 1) == before

    def change(cues):
        cues[0]["text"]["en"] = "Every deliverable goes through review"
        cues[2]["start_frame"] += 5
        return cues[:4] + [
            {
                **cues[4],
                "end_frame": cues[5]["end_frame"],
                "text": {"en": cues[4]["text"]["en"] + "\n" + cues[5]["text"]["en"]},
            }
        ]

    cues = approve(eng, client, job_id, change)
    ui = RecordingUI()
    result = gc.update(resolve, ui=ui, engine=client)
    assert result["ok"], ui.messages
    assert result["version"] == 1 and "version 1" in ui.messages[-1][1]
    tl = resolve.timeline
    assert tl.GetTrackCount("subtitle") == 1, "the old track is gone, the new one took its place"
    assert tl.GetTrackName("subtitle", 1) == "English (CaptionBridge)"
    assert items(resolve, 1) == [
        (tb.start_frame + c["start_frame"], tb.start_frame + c["end_frame"], c["text"]["en"]) for c in cues
    ]
    # the record now says version 1: running it again changes nothing and says so
    record = gc.find_job(client, resolve._project, tl)
    assert record["job"] == job_id and record["version"] == 1


def test_a_failed_update_leaves_the_previous_captions(captioned):
    gc, resolve, eng, client, report = captioned
    before = items(resolve, 1)
    approve(eng, client, report["job"], lambda cues: cues[:3])
    resolve._placement = "nothing"  # Resolve's reported bug: AppendToTimeline answers True and places nothing
    ui = RecordingUI()
    result = gc.update(resolve, ui=ui, engine=client)
    assert not result["ok"] and ui.messages[-1][2]
    assert "previous captions" in ui.messages[-1][1]
    assert resolve.timeline.GetTrackCount("subtitle") == 1 and items(resolve, 1) == before


def test_update_without_a_recorded_job_says_generate_first(tmp_path, engine_factory):
    eng = engine_factory("resolve-none", job="fixtures.review:review_job")
    eng.start()
    gc = load_script()
    client = gc.Engine.discover(config=str(eng.config), start=False)
    ui = RecordingUI()
    result = gc.update(FakeResolve(), ui=ui, engine=client)
    assert not result["ok"] and "Generate Captions on it first" in ui.messages[-1][1]


@pytest.mark.parametrize("title", sorted(installers.RESOLVE_MENU_ENTRIES))
def test_menu_entries_load_the_main_script(title, tmp_path, monkeypatch):
    """The installer writes each Python menu entry from one template: it loads "Generate Captions.py" from its
    own folder, else from the folder it was installed in, and runs that entry's function."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no real Resolve install is found by accident
    folder = tmp_path / "Utility"
    folder.mkdir()
    (folder / "Generate Captions.py").write_text((SCRIPTS / "Generate Captions.py").read_text())
    stub = folder / f"{title}.py"
    stub.write_text(installers.render_menu_entry(title, "py", folder))

    def load(path):
        spec = importlib.util.spec_from_file_location("menu_entry", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # no Resolve globals: nothing runs on import
        return module

    module = load(stub)
    assert module.ENTRY == installers.RESOLVE_MENU_ENTRIES[title][0] and title in module.__doc__
    main = module.load_main()
    assert main.__file__ == str(folder / "Generate Captions.py") and callable(getattr(main, module.ENTRY))
    elsewhere = tmp_path / "copied elsewhere"  # run from a copy: the folder it was installed in still works
    elsewhere.mkdir()
    (elsewhere / stub.name).write_text(stub.read_text())
    assert load(elsewhere / stub.name).load_main().__file__ == str(folder / "Generate Captions.py")
    (folder / "Generate Captions.py").unlink()
    with pytest.raises(SystemExit, match="captionbridge install resolve"):
        load(stub).load_main()


def test_menu_entry_folder_names_are_quoted(tmp_path):
    odd = tmp_path / 'it\'s "odd" \\ here'
    module_globals = {}
    exec(
        compile(installers.render_menu_entry("Update Captions", "py", odd), "stub.py", "exec"), module_globals
    )
    assert module_globals["INSTALLED_IN"] == str(odd) and module_globals["ENTRY"] == "main_update"
