"""A speaker correction approved on the review page is kept at the next run on the same media: the real
engine (Whisper base, the real speaker stage) captions a two-voice conversation, a person gives a cue and a
word to the other speaker and renames one, approves, and a re-caption of the same timeline labels those words
and names as approved."""

from __future__ import annotations

import json
from fractions import Fraction

from fixtures.review import PageClient, mint_link
from fixtures.service import write_timeline


def view_of(client, job_id):
    page = PageClient(client.base_url)
    assert page.open_link(mint_link(client, job_id))[0] == 303
    status, _, body = page.request("GET", f"/review/api/jobs/{job_id}")
    assert status == 200, body
    return page, json.loads(body)


def speaker_of_words(view):
    """Each word's speaker as the document says it: its cue's when the cue has one speaker (the page
    reassigns whole cues), else its own; a person's word reassignment wins."""
    spans = [
        (c["start_frame"], c["end_frame"], c["speakers"][0]) for c in view["cues"] if len(c["speakers"]) == 1
    ]
    out = []
    for k, w in enumerate(view["words"]):
        middle = (w["start_frame"] + w["end_frame"] - 1) / 2
        who = next((s for a, b, s in spans if a <= middle < b), w["speaker"])
        out.append(view["word_speakers"].get(str(k), who))
    return out


def test_an_approved_speaker_correction_is_kept_at_the_next_run(
    caption_engine, two_voices, base_whisper_model, tmp_path
):
    media = two_voices.save(tmp_path / "media")
    frames = int(two_voices.duration * 25)
    timeline = write_timeline(
        tmp_path / "edit.otio",
        ["talk"],
        media=media,
        rate=Fraction(25),
        start_tc="10:00:00:00",
        clip_frames=frames,
    )
    options = {
        "model": str(base_whisper_model),
        "language": "en",
        "formats": ["json"],
        "speakers": "auto",
        "speaker_names": "Ana,Ben",
    }
    client = caption_engine.client
    first = client.submit(timeline, options)
    assert client.wait(first["id"], timeout=300, interval=0.5)["state"] == "succeeded"
    page, view = view_of(client, first["id"])
    assert view["speakers"] == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Ben"}]
    engine_said = speaker_of_words(view)

    cues = view["cues"]
    moved = next(k for k, c in enumerate(cues) if c["speakers"] == ["S1"] and k > 0)
    cues[moved]["speakers"] = ["S2"]  # a cue given to the other speaker
    in_s2 = [
        k
        for k, w in enumerate(view["words"])
        if engine_said[k] == "S2"
        and not cues[moved]["start_frame"] <= w["start_frame"] < cues[moved]["end_frame"]
    ]
    word = in_s2[len(in_s2) // 2]  # a word given to the other speaker
    speakers = [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]
    body = {"base_version": 0, "cues": cues, "speakers": speakers, "word_speakers": {str(word): "S1"}}
    status, _, text = page.request(
        "POST", f"/review/api/jobs/{first['id']}/approve", body, headers={"Origin": page.base}
    )
    assert status == 201, text
    assert not any("not remembered" in w for w in json.loads(text)["warnings"]), text
    _, approved = view_of(client, first["id"])
    wanted = speaker_of_words(approved)
    assert wanted != engine_said and wanted[word] == "S1"

    second = client.submit(timeline, options)  # the re-caption: same media, same options
    assert client.wait(second["id"], timeout=300, interval=0.5)["state"] == "succeeded"
    _, again = view_of(client, second["id"])
    assert [w["text"] for w in again["words"]] == [w["text"] for w in view["words"]]
    assert again["speakers"] == speakers  # the reviewed name, over the same --speaker-names
    assert [w["speaker"] for w in again["words"]] == wanted  # the corrected words, word by word
