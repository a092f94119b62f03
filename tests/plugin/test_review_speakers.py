"""Who speaks, on the review page's API, with a real engine whose job has two speakers: the view carries them,
a draft reassigns a cue or a word and renames a speaker (kept across reloads), and the approved version holds
the corrected speakers in every format, with the two-speaker form rule still checked and the change recorded.
"""

from __future__ import annotations

import json

import pytest
from fixtures.review import PageClient, mint_link, write_review_timeline

FORMATS = ["json", "srt", "vtt", "ass", "ttml"]


def speaker_job(engine_factory, tmp_path, options):
    eng = engine_factory("speaker-engine", job="fixtures.review:speaker_review_job")
    client = eng.start()
    timeline = write_review_timeline(tmp_path / "media" / "panel.otio")
    job = client.submit(timeline, {"formats": FORMATS, "speakers": 2, **options})
    status = client.wait(job["id"], timeout=60)
    assert status["state"] == "succeeded", status
    page = PageClient(client.base_url)
    assert page.open_link(mint_link(client, job["id"]))[0] == 303
    return eng, client, job["id"], page


@pytest.fixture
def dash_job(engine_factory, tmp_path):
    eng, client, job_id, page = speaker_job(engine_factory, tmp_path, {})
    yield eng, client, job_id, page
    eng.stop()


@pytest.fixture
def label_job(engine_factory, tmp_path):
    eng, client, job_id, page = speaker_job(engine_factory, tmp_path, {"speaker_marks": "label"})
    yield eng, client, job_id, page
    eng.stop()


def get(page, path):
    status, _, body = page.request("GET", path)
    assert status == 200, body
    return json.loads(body)


def send(page, method, path, body):
    status, _, text = page.request(method, path, body, headers={"Origin": page.base})
    return status, json.loads(text) if text else None


def body_of(view, **changes):
    body = {
        "base_version": view["version"],
        "cues": view["cues"],
        "speakers": view["speakers"],
        "word_speakers": view["word_speakers"],
    }
    body.update(changes)
    return body


def version_file(page, job_id, version, name):
    status, _, body = page.request("GET", f"/review/api/jobs/{job_id}/versions/{version}/files/{name}")
    assert status == 200
    return body.decode("utf-8") if isinstance(body, bytes) else body


def test_the_view_carries_who_speaks(dash_job):
    _, _, job_id, page = dash_job
    view = get(page, f"/review/api/jobs/{job_id}")
    assert view["speakers"] == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Ben"}]
    assert [c["speakers"] for c in view["cues"]] == [["S1"], ["S1"], ["S2"], ["S1"], ["S2"], ["S2"]]
    assert {w["speaker"] for w in view["words"]} == {"S1", "S2"} and view["word_speakers"] == {}
    assert view["limits"]["en"]["speaker_marks"] == "dash"


def test_reassign_a_cue_and_a_word_and_rename_survive_the_draft_and_reach_every_format(dash_job):
    _, _, job_id, page = dash_job
    view = get(page, f"/review/api/jobs/{job_id}")
    cues = view["cues"]
    cues[1]["speakers"] = ["S2"]  # the second line was Ben's
    speakers = [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]
    word = next(k for k, w in enumerate(view["words"]) if w["start_frame"] >= cues[3]["start_frame"])
    status, saved = send(
        page,
        "PUT",
        f"/review/api/jobs/{job_id}/draft",
        body_of(view, cues=cues, speakers=speakers, word_speakers={str(word): "S2"}),
    )
    assert status == 200, saved
    # a reload restores the draft: the reassignment, the rename and the word
    again = get(page, f"/review/api/jobs/{job_id}")
    assert again["cues"][1]["speakers"] == ["S2"] and again["speakers"] == speakers
    assert again["word_speakers"] == {str(word): "S2"}
    status, res = send(page, "POST", f"/review/api/jobs/{job_id}/approve", body_of(again))
    assert status == 201, res
    number = res["version"]
    doc = json.loads(version_file(page, job_id, number, next(f for f in res["files"] if f.endswith(".json"))))
    assert [c.get("speakers") for c in doc["cues"]] == [["S1"], ["S2"], ["S2"], ["S1"], ["S2"], ["S2"]]
    assert doc["speakers"] == speakers and doc["words"][word]["speaker"] == "S2"
    vtt = version_file(page, job_id, number, next(f for f in res["files"] if f.endswith(".vtt")))
    assert vtt.count("<v Bernard>") == 4 and vtt.count("<v Ana>") == 2 and "<v Ben>" not in vtt
    ass = version_file(page, job_id, number, next(f for f in res["files"] if f.endswith(".ass")))
    assert "Style: EN Bernard," in ass and "EN Ben" not in ass
    ttml = version_file(page, job_id, number, next(f for f in res["files"] if f.endswith(".ttml")))
    assert "Bernard" in ttml
    # what changed about who speaks is kept with the version
    changes = res["speaker_changes"]
    assert [(c["from"], c["to"]) for c in changes["cues"]] == [(["S1"], ["S2"])]
    assert [(w["word"], w["to"]) for w in changes["words"]] == [(word, "S2")]
    assert changes["speakers"] == [{"id": "S2", "from": "Ben", "to": "Bernard"}]
    # the engine's contract serves the same version to the editors' scripts
    after = get(page, f"/review/api/jobs/{job_id}")
    assert after["version"] == number and after["word_speakers"] == {str(word): "S2"}


def test_an_approval_without_speakers_keeps_them(dash_job):
    """A client that sends only cues (as the page did before speakers) must not strip them."""
    _, client, job_id, page = dash_job
    view = get(page, f"/review/api/jobs/{job_id}")
    status, res = send(page, "POST", f"/review/api/jobs/{job_id}/approve", {"cues": view["cues"]})
    assert status == 201, res
    version = client.request("GET", f"/v1/jobs/{job_id}/versions/latest")
    assert version["speakers"] == view["speakers"]
    assert [c["speakers"] for c in version["cues"]] == [c["speakers"] for c in view["cues"]]


def test_the_two_speaker_form_rule_still_applies(dash_job):
    _, _, job_id, page = dash_job
    view = get(page, f"/review/api/jobs/{job_id}")
    cues = view["cues"]
    cues[0]["speakers"] = ["S1", "S2"]  # two speakers, but not as one dashed line each
    status, res = send(page, "POST", f"/review/api/jobs/{job_id}/approve", body_of(view, cues=cues))
    assert status == 422 and res["error"]["code"] == "validation_failed"
    assert "speaker-form" in res["error"]["message"] and "cue 1" in res["error"]["message"]
    # in the form it is approved
    cues[0]["text"]["en"] = "- Every caption deliverable\n- goes through a review pass"
    status, res = send(page, "POST", f"/review/api/jobs/{job_id}/approve", body_of(view, cues=cues))
    assert status == 201, res


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b["cues"][0].update(speakers=["S9"]), "cue 1 is given to speaker 'S9'"),
        (lambda b: b["cues"][0].update(speakers="S1"), "cue 1: speakers must be a list"),
        (lambda b: b.update(speakers=[{"id": "S1"}, {"id": "S1"}]), "speaker id 'S1' is listed twice"),
        (lambda b: b.update(speakers=[{"id": "S 1"}]), "speaker 1: id must be"),
        (lambda b: b["speakers"][0].update(name="A" * 61), "at most 60 characters"),
        (lambda b: b.update(word_speakers={"100000": "S1"}), "the job has no word 100000"),
        (lambda b: b.update(word_speakers={"0": "S7"}), "word 0 is given to speaker 'S7'"),
    ],
)
def test_bad_speaker_drafts_get_one_clear_line(dash_job, change, message):
    _, _, job_id, page = dash_job
    view = get(page, f"/review/api/jobs/{job_id}")
    body = body_of(view)
    change(body)
    status, res = send(page, "PUT", f"/review/api/jobs/{job_id}/draft", body)
    assert status == 422 and res["error"]["code"] == "bad_draft"
    assert message in res["error"]["message"] and "\n" not in res["error"]["message"]


def test_a_relabelled_cue_is_not_a_transcription_correction(label_job):
    """With name labels, reassigning a cue rewrites its label ("ANA: " -> "BEN: "): the version has it, but
    the corrections store (training data) gets no record for it; a real text fix still does."""
    eng, _, job_id, page = label_job
    view = get(page, f"/review/api/jobs/{job_id}")
    cues = view["cues"]
    assert cues[0]["text"]["en"].startswith("ANA: ") and cues[2]["text"]["en"].startswith("BEN: ")
    cues[0]["speakers"] = ["S2"]
    cues[0]["text"]["en"] = cues[0]["text"]["en"].replace("ANA: ", "BEN: ", 1)
    status, res = send(page, "POST", f"/review/api/jobs/{job_id}/approve", body_of(view, cues=cues))
    assert status == 201, res
    assert res["corrections"] == 0 and len(res["speaker_changes"]["cues"]) == 1
    srt = version_file(page, job_id, res["version"], next(f for f in res["files"] if f.endswith(".srt")))
    assert srt.split("\n")[2].startswith("BEN: Every")
    view = get(page, f"/review/api/jobs/{job_id}")
    cues = view["cues"]
    cues[2]["text"]["en"] = cues[2]["text"]["en"].replace("model", "modal")
    status, res = send(page, "POST", f"/review/api/jobs/{job_id}/approve", body_of(view, cues=cues))
    assert status == 201 and res["corrections"] == 1


def test_labelled_cues_without_a_speakers_list_are_reviewable(dash_job):
    """A captions JSON whose cues carry speaker ids but no top-level list (imported for review): the page gets
    the ids with default names, and an approval that sends only cues keeps them."""
    _, client, job_id, page = dash_job
    doc = client.request("GET", f"/v1/jobs/{job_id}/result")
    doc.pop("speakers")
    body = json.dumps({"document": doc}).encode()
    imported = client.request("POST", "/v1/review/imports", body=body, content_type="application/json")
    page = PageClient(client.base_url)
    assert page.open_link(mint_link(client, imported["id"]))[0] == 303
    view = get(page, f"/review/api/jobs/{imported['id']}")
    assert view["speakers"] == [{"id": "S1"}, {"id": "S2"}]
    status, res = send(page, "POST", f"/review/api/jobs/{imported['id']}/approve", {"cues": view["cues"]})
    assert status == 201, res
    version = client.request("GET", f"/v1/jobs/{imported['id']}/versions/latest")
    assert [c["speakers"] for c in version["cues"]] == [c["speakers"] for c in view["cues"]]
