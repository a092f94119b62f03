"""Both Resolve scripts against one behaviour table (``fixtures/resolve_behaviours.py``): the Python script
and its Lua twin must find, start, or give up on the engine the same way, within the same time."""

from __future__ import annotations

import json
import shutil

import pytest
from fixtures.loopback_engine import LoopbackEngine
from fixtures.resolve_behaviours import (
    BEHAVIOURS,
    LUA,
    REVIEW_BEHAVIOURS,
    SPEAKER_OPTIONS,
    HungEngine,
    ScriptSession,
    closed_port,
    dead_pid,
    run_script,
    stop_engine_in,
    write_engine_launcher,
)
from fixtures.review import PageClient, mint_link
from fixtures.service import EngineProcess

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
    assert set(REVIEW_CASES) == set(REVIEW_BEHAVIOURS)


# ------------------------------------------------------------------------------------------------------------
# Review Captions and Update Captions (REVIEW_BEHAVIOURS), against a real engine running the review job
# ------------------------------------------------------------------------------------------------------------
REVIEW_JOB = "fixtures.review:review_job"
SPEAKER_JOB = "fixtures.review:speaker_review_job"
START = 90000  # both fakes: 25 fps from 01:00:00:00
TRACK = "English (CaptionBridge)"


# the cases that stop their engine (it goes down under the script) get one of their own
OWN_ENGINE = {"review_engine_down", "update_engine_down"}


class CaseEngine:
    """One case's view of a shared engine: its own config folder (the engine's service.json and token copied,
    so the scripts find the shared engine there) holding its own editor-jobs.json; its jobs are its own."""

    def __init__(self, shared, config):
        self.config = config
        config.mkdir(parents=True)
        for name in ("service.json", "token"):
            shutil.copy(shared.config / name, config / name)

    def stop(self):
        raise AssertionError("this case stops its engine: list it in OWN_ENGINE")


@pytest.fixture(scope="module")
def review_engines(tmp_path_factory):
    """One real engine per job kind for the module's review/update cases (starting one per case cost ~3 s
    each); each case stays isolated by its own config folder (record file), fake timeline and job."""
    started = {}

    def get(job):
        if job not in started:
            eng = EngineProcess(tmp_path_factory.mktemp("review-engine") / "config", job=job)
            started[job] = (eng, eng.start())
        return started[job]

    yield get
    for eng, _ in started.values():
        eng.stop()


def make_review_setup(job, own, engine_factory, review_engines, tmp_path, tmpdir_):
    if own:
        eng = engine_factory("review-behaviours", job=job)
        client = eng.start()
    else:
        shared, client = review_engines(job)
        eng = CaseEngine(shared, tmp_path / "config")
    sessions = []

    def session(script):
        s = ScriptSession(script, eng.config, tmpdir_)
        sessions.append(s)
        return s

    options = {"output_dir": str(tmp_path / "out"), "poll": 0.05, "formats": ["srt", "json"]}
    return (eng, client, session, options), sessions


@pytest.fixture
def review_setup(request, engine_factory, review_engines, tmp_path, tmpdir_):
    # the engine's job: the review fixture's English script, or (a case's "job") another
    callspec = getattr(request.node, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    job = REVIEW_BEHAVIOURS.get(case, {}).get("job", REVIEW_JOB)
    own = case in OWN_ENGINE
    setup, sessions = make_review_setup(job, own, engine_factory, review_engines, tmp_path, tmpdir_)
    yield setup
    for s in sessions:
        s.close()


@pytest.fixture
def speaker_setup(engine_factory, review_engines, tmp_path, tmpdir_):
    setup, sessions = make_review_setup(SPEAKER_JOB, False, engine_factory, review_engines, tmp_path, tmpdir_)
    yield setup
    for s in sessions:
        s.close()


def approve(client, job_id, change):
    """Approve a corrected version through the review page, as the browser does; returns its cues."""
    page = PageClient(client.base_url)
    assert page.open_link(mint_link(client, job_id))[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    cues = change(view["cues"])
    status, _, body = page.request(
        "POST", f"/review/api/jobs/{job_id}/approve", {"cues": cues}, headers={"Origin": page.base}
    )
    assert status == 201, body
    return cues


def corrected(cues):
    cues[0]["text"]["en"] = "Every deliverable goes through review"
    cues[2]["start_frame"] += 5
    return cues[:4] + [
        {
            **cues[4],
            "end_frame": cues[5]["end_frame"],
            "text": {"en": cues[4]["text"]["en"] + "\n" + cues[5]["text"]["en"]},
        }
    ]


def on_track(cues):
    return [[START + c["start_frame"], START + c["end_frame"], c["text"]["en"]] for c in cues]


def tracks(out):
    return out["state"]["subtitle"] or []  # Lua encodes an empty list as {}


def check_review(name, out, before=None):
    expect = REVIEW_BEHAVIOURS[name]
    assert out["ok"] is expect["ok"], out["messages"]
    title, text, is_error = out["messages"][-1]
    assert is_error is (not expect["ok"]), out["messages"]
    for words in expect["says"]:
        assert words in text, (words, text)
    if expect.get("unchanged"):
        assert tracks(out) == before
    if "tracks" in expect:
        assert len(tracks(out)) == expect["tracks"], tracks(out)


def case_review_after_generate(s, eng, client, options):
    out = s.step("generate", options=options, accept_review=True)
    check_review("review_after_generate", out)
    assert out["messages"][-2][0] == "Captions added" and out["review_job"] == out["job"]
    (url,) = out["opened"]
    status, headers, _ = PageClient(client.base_url).open_link(url)
    assert status == 303 and headers["location"].endswith(f"#job={out['job']}")


def case_review_opens_the_job(s, eng, client, options):
    generated = s.step("generate", options=options)
    assert generated["opened"] == [] and generated["messages"][-1][0] == "Captions added"
    job = generated["job"]
    out = s.step("review")
    check_review("review_opens_the_job", out)
    assert out["job"] == job and out["opened"] == [out["url"]]
    status, headers, _ = PageClient(client.base_url).open_link(out["url"])
    assert status == 303 and headers["location"].endswith(f"#job={job}")


def case_review_engine_down(s, eng, client, options):
    s.step("generate", options=options)
    eng.stop()
    out = s.step("review")
    check_review("review_engine_down", out)
    assert out["opened"] == []


def case_review_without_a_job(s, eng, client, options):
    out = s.step("review")
    check_review("review_without_a_job", out)
    assert out.get("job") is None and out["opened"] == [out["url"]]
    status, headers, _ = PageClient(client.base_url).open_link(out["url"])
    assert status == 303 and "#job=" not in headers["location"]


def forget_job(eng, generated):
    """The engine lost the recorded job (deleted, expired): the record names a job it does not know."""
    records = eng.config / "editor-jobs.json"
    recorded = json.loads(records.read_text())
    (key,) = recorded
    assert recorded[key]["job"] == generated["job"] and recorded[key]["tracks"] == {"en": TRACK}
    recorded[key]["job"] = "0123456789abcdef0123456789abcdef"
    records.write_text(json.dumps(recorded))


def case_review_job_unknown(s, eng, client, options):
    forget_job(eng, s.step("generate", options=options))
    out = s.step("review")
    check_review("review_job_unknown", out)
    assert out.get("job") is None and out["opened"] == [out["url"]]
    assert "0123456789abcdef0123456789abcdef" in out["messages"][-1][1]


def case_update_replaces(s, eng, client, options):
    job = s.step("generate", options=options)["job"]
    cues = approve(client, job, corrected)
    out = s.step("update")
    check_review("update_replaces", out)
    assert out["version"] == 1
    assert tracks(out) == [{"name": TRACK, "items": on_track(cues)}]


def case_update_every_language(s, eng, client, options):
    generated = s.step("generate", options=options)
    assert [t["name"] for t in tracks(generated)] == [TRACK, "Chinese (CaptionBridge)"]

    def change(cues):
        cues[0]["text"]["en"] = "Every deliverable goes through review"
        cues[1]["text"]["zh"] = "改过的字幕"
        cues[3]["end_frame"] -= 10
        return cues

    cues = approve(client, generated["job"], change)
    out = s.step("update")
    check_review("update_every_language", out)
    assert tracks(out) == [
        {"name": TRACK, "items": on_track(cues)},
        {
            "name": "Chinese (CaptionBridge)",
            "items": [[START + c["start_frame"], START + c["end_frame"], c["text"]["zh"]] for c in cues],
        },
    ]


def case_update_twice(s, eng, client, options):
    job = s.step("generate", options=options)["job"]
    cues = approve(client, job, corrected)
    assert s.step("update")["ok"]
    out = s.step("update")
    check_review("update_twice", out)
    assert tracks(out) == [{"name": TRACK, "items": on_track(cues)}]


def case_update_not_approved(s, eng, client, options):
    before = tracks(s.step("generate", options=options))
    check_review("update_not_approved", s.step("update"), before)


def case_update_without_a_job(s, eng, client, options):
    check_review("update_without_a_job", s.step("update"), [])


def case_update_engine_down(s, eng, client, options):
    job = s.step("generate", options=options)["job"]
    approve(client, job, corrected)
    before = tracks(s.step("state"))
    eng.stop()
    check_review("update_engine_down", s.step("update"), before)


def case_update_job_unknown(s, eng, client, options):
    generated = s.step("generate", options=options)
    forget_job(eng, generated)
    check_review("update_job_unknown", s.step("update"), tracks(generated))


def case_records_unreadable(s, eng, client, options):
    records = eng.config / "editor-jobs.json"
    records.write_text('{"premiere:seq-1": {"job": "cut short')
    generated = s.step("generate", options=options)
    assert generated["ok"] and tracks(generated), "the captions are placed all the same"
    assert records.read_text() == '{"premiere:seq-1": {"job": "cut short', "nobody's records overwritten"
    check_review("records_unreadable", s.step("update"), tracks(generated))
    out = s.step("review")
    assert not out["ok"] and "cannot be read" in out["messages"][-1][1]


def case_update_placement_fails(s, eng, client, options):
    generated = s.step("generate", options=options)
    approve(client, generated["job"], lambda cues: cues[:3])
    # Resolve's reported bug: AppendToTimeline answers True and places nothing
    s.step("placement", mode="nothing")
    check_review("update_placement_fails", s.step("update"), tracks(generated))


def case_update_track_renamed(s, eng, client, options):
    generated = s.step("generate", options=options)
    cues = approve(client, generated["job"], corrected)
    s.step("rename_track", index=1, name="EN final")
    out = s.step("update")
    check_review("update_track_renamed", out)
    assert tracks(out) == [
        {"name": "EN final", "items": tracks(generated)[0]["items"]},
        {"name": TRACK, "items": on_track(cues)},
    ]


def case_update_track_deleted(s, eng, client, options):
    job = s.step("generate", options=options)["job"]
    cues = approve(client, job, corrected)
    s.step("delete_track", index=1)
    out = s.step("update")
    check_review("update_track_deleted", out)
    assert tracks(out) == [{"name": TRACK, "items": on_track(cues)}]


SPEAKER_TRACKS = {"en": {"S1": "Ana (CaptionBridge)", "S2": "Ben (CaptionBridge)"}}


def recorded(eng):
    """The one record in the engine's editor-jobs.json."""
    (record,) = json.loads((eng.config / "editor-jobs.json").read_text()).values()
    return record


def approve_speakers(client, job_id):
    """Approve a version where Ana's first cue was Ben's and Ben is renamed Bernard, as the review page does
    (cue speakers and the speakers list); returns the approved cues."""
    page = PageClient(client.base_url)
    assert page.open_link(mint_link(client, job_id))[0] == 303
    view = json.loads(page.request("GET", f"/review/api/jobs/{job_id}")[2])
    first_of_ana = next(c for c in view["cues"] if c["speakers"] == ["S1"])
    first_of_ana["speakers"] = ["S2"]
    speakers = [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]
    status, _, body = page.request(
        "POST",
        f"/review/api/jobs/{job_id}/approve",
        {"cues": view["cues"], "speakers": speakers},
        headers={"Origin": page.base},
    )
    assert status == 201, body
    return view["cues"], first_of_ana


def speaker_tracks_of(cues):
    """What the timeline must hold after Update: Ana's and Bernard's tracks, each with its own cues."""
    return [
        {"name": "Ana (CaptionBridge)", "items": on_track([c for c in cues if c["speakers"][0] == "S1"])},
        {"name": "Bernard (CaptionBridge)", "items": on_track([c for c in cues if c["speakers"][0] == "S2"])},
    ]


def case_update_speaker_tracks(s, eng, client, options):
    generated = s.step("generate", options=dict(options, **SPEAKER_OPTIONS))
    assert [t["name"] for t in tracks(generated)] == ["Ana (CaptionBridge)", "Ben (CaptionBridge)"]
    record = recorded(eng)
    assert record["speaker_tracks"] == SPEAKER_TRACKS and record["tracks"] == {"en": "Ana (CaptionBridge)"}
    cues, moved = approve_speakers(client, generated["job"])
    assert [START + moved["start_frame"], START + moved["end_frame"], moved["text"]["en"]] in tracks(
        generated
    )[0]["items"], "the moved cue was on Ana's track"
    out = s.step("update")
    check_review("update_speaker_tracks", out)
    assert tracks(out) == speaker_tracks_of(cues)
    record = recorded(eng)
    assert record["version"] == 1 and record["job"] == generated["job"]
    assert record["speaker_tracks"] == {"en": {"S1": "Ana (CaptionBridge)", "S2": "Bernard (CaptionBridge)"}}
    assert record["tracks"] == {"en": "Ana (CaptionBridge)"}
    again = s.step("update")  # the record names the new tracks: Update again replaces them, nothing piles up
    assert again["ok"] and tracks(again) == speaker_tracks_of(cues), again["messages"]


def case_update_speaker_tracks_every_language(s, eng, client, options):
    generated = s.step("generate", options=dict(options, **SPEAKER_OPTIONS))
    names = [f"{who} - {lang} (CaptionBridge)" for lang in ("English", "Chinese") for who in ("Ana", "Ben")]
    assert [t["name"] for t in tracks(generated)] == names
    cues, _ = approve_speakers(client, generated["job"])
    out = s.step("update")
    check_review("update_speaker_tracks_every_language", out)
    assert tracks(out) == [
        {
            "name": f"{who} - {lang_name} (CaptionBridge)",
            "items": [
                [START + c["start_frame"], START + c["end_frame"], c["text"][lang]]
                for c in cues
                if c["speakers"][0] == sid
            ],
        }
        for lang, lang_name in (("en", "English"), ("zh", "Chinese"))
        for sid, who in (("S1", "Ana"), ("S2", "Bernard"))
    ]
    record = recorded(eng)
    assert record["speaker_tracks"] == {
        lang: {"S1": f"Ana - {name} (CaptionBridge)", "S2": f"Bernard - {name} (CaptionBridge)"}
        for lang, name in (("en", "English"), ("zh", "Chinese"))
    }
    assert record["tracks"] == {"en": "Ana - English (CaptionBridge)", "zh": "Ana - Chinese (CaptionBridge)"}


def case_update_speaker_track_renamed(s, eng, client, options):
    generated = s.step("generate", options=dict(options, **SPEAKER_OPTIONS))
    cues, _ = approve_speakers(client, generated["job"])
    s.step("rename_track", index=2, name="Ben final")
    out = s.step("update")
    check_review("update_speaker_track_renamed", out)
    theirs = {"name": "Ben final", "items": tracks(generated)[1]["items"]}
    assert tracks(out) == [theirs] + speaker_tracks_of(cues)
    assert "'Ana (CaptionBridge)'" not in out["messages"][-1][1], "Ana's old track was found and replaced"


def case_update_speaker_tracks_placement_fails(s, eng, client, options):
    generated = s.step("generate", options=dict(options, **SPEAKER_OPTIONS))
    before = recorded(eng)
    approve_speakers(client, generated["job"])
    s.step("placement", mode="nothing")
    out = s.step("update")
    check_review("update_speaker_tracks_placement_fails", out, tracks(generated))
    assert recorded(eng) == before, "the record still names the old speaker tracks"


REVIEW_CASES = {name[len("case_") :]: fn for name, fn in globals().items() if name.startswith("case_")}


@pytest.mark.parametrize("case", sorted(REVIEW_BEHAVIOURS))
@pytest.mark.parametrize("script", SCRIPTS)
def test_review_and_update(script, case, review_setup):
    eng, client, session, options = review_setup
    REVIEW_CASES[case](session(script), eng, client, options)


@pytest.mark.skipif(not LUA, reason="lua5.4 is not installed (Debian: apt-get install lua5.4)")
def test_the_two_scripts_share_the_job_record(review_setup):
    """Captions made by the Lua script (free edition) are found by the Python one (Studio) and back: the same
    record file, the same keys, plain ASCII whatever the timeline is called."""
    eng, client, session, options = review_setup
    lua = session("lua")
    job = lua.step("generate", options=options)["job"]
    python = session("python")
    assert python.step("review")["job"] == job
    approve(client, job, corrected)
    assert python.step("update")["version"] == 1
    assert lua.step("review")["job"] == job
    raw = (eng.config / "editor-jobs.json").read_bytes()
    assert raw.isascii() and json.loads(raw)["resolve:Project/Reel 1"]["version"] == 1


@pytest.mark.skipif(not LUA, reason="lua5.4 is not installed (Debian: apt-get install lua5.4)")
@pytest.mark.parametrize("maker,updater", [("lua", "python"), ("python", "lua")])
def test_the_two_scripts_share_a_speaker_job_record(maker, updater, speaker_setup):
    """One track per speaker made by one script is updated by the other (free edition <-> Studio): both
    record the speaker tracks alike, and each Update replaces the other's speaker tracks."""
    eng, client, session, options = speaker_setup
    options = dict(options, **SPEAKER_OPTIONS)
    # the same timeline in the other edition: captioned there alike (same job script, same tracks)
    other = session(updater)
    assert other.step("generate", options=options)["ok"]
    theirs = recorded(eng)
    made = session(maker).step("generate", options=options)
    ours = recorded(eng)  # the record file now names the maker's job, as when the project moves edition
    assert ours["job"] == made["job"] != theirs["job"]
    for record in (ours, theirs):
        del record["job"], record["at"]
    assert ours == theirs and ours["speaker_tracks"] == SPEAKER_TRACKS
    cues, _ = approve_speakers(client, made["job"])
    out = other.step("update")
    assert out["ok"] and out["version"] == 1, out["messages"]
    assert tracks(out) == speaker_tracks_of(cues)
    record = recorded(eng)
    assert record["job"] == made["job"] and record["version"] == 1
    assert record["speaker_tracks"] == {"en": {"S1": "Ana (CaptionBridge)", "S2": "Bernard (CaptionBridge)"}}
