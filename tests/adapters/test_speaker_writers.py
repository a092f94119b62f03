"""Speakers in every format: JSON ids and names, VTT voices, ASS styles, TTML agents, SRT marks, OTIO
metadata."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import pysubs2

from captionbridge.adapters.caption_formats import captions_string, read_captions, write_captions
from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.model import CaptionDocument, Word
from captionbridge.core.timeline.timebase import Timebase

TB = Timebase.from_start_timecode(25, "10:00:00:00", False)
SCRIPT = [
    ("S1", "Did you finish the edit before the screening on Friday?"),
    ("S2", "Yes."),
    ("S1", "Good. Then we can send the final cut to the network tonight."),
    ("S2", "No problem, I will export it after lunch and check the audio."),
]


def document(preset="netflix-en", names=(("S1", "Ana"), ("S2", "Ben & Co, Jr"))) -> CaptionDocument:
    words, t = [], 0.5
    for speaker, text in SCRIPT:
        for tok in text.split():
            words.append(replace(Word.at(tok, t, t + 0.3, TB), speaker=speaker))
            t += 0.32
        t += 0.15
    names = dict(names)
    cues = compose_cues(words, TB, preset, "en", speaker_names=names)
    return CaptionDocument(
        "talk",
        TB,
        "en",
        words,
        cues,
        ["en"],
        speakers=[{"id": sid, "name": name} for sid, name in names.items()],
    )


def test_json_carries_speakers_and_older_json_still_reads(tmp_path):
    doc = document()
    data = doc.to_dict()
    assert data["speakers"] == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Ben & Co, Jr"}]
    assert all(w["speaker"] in ("S1", "S2") for w in data["words"])
    assert any(c.get("speakers") == ["S2", "S1"] for c in data["cues"])
    back = CaptionDocument.from_dict(json.loads(json.dumps(data)))
    assert [c.speakers for c in back.cues] == [c.speakers for c in doc.cues]
    assert [w.speaker for w in back.words] == [w.speaker for w in doc.words]
    assert back.speakers == doc.speakers
    for key in ("speakers",):
        data.pop(key)
    for w in data["words"]:
        w.pop("speaker")
    for c in data["cues"]:
        c.pop("speakers", None)
    old = CaptionDocument.from_dict(data)  # a file from before speakers
    assert all(c.speakers == () for c in old.cues) and all(w.speaker is None for w in old.words)
    assert "speakers" not in old.to_dict() and "speaker" not in old.to_dict()["words"][0]


def test_vtt_voices_escape_names_and_read_back():
    doc = document()
    text = captions_string(doc, "vtt", ["en"])
    assert "<v Ana>Did you finish the edit\nbefore the screening on Friday?</v>" in text
    assert "<v Ben &amp; Co, Jr>- Yes.</v>\n<v Ana>- Good.</v>" in text


def test_ass_has_one_coloured_style_per_speaker():
    doc = document()
    ssa = pysubs2.SSAFile.from_string(captions_string(doc, "ass", ["en"]))
    assert {"EN Ana", "EN Ben & Co  Jr"} <= set(ssa.styles)
    assert ssa.styles["EN Ana"].primarycolor != ssa.styles["EN Ben & Co  Jr"].primarycolor
    first = ssa.events[0]
    assert first.style == "EN Ana" and first.name == "Ana"
    assert any(e.name == "Ben & Co  Jr / Ana" for e in ssa.events)  # the Actor field of a two-speaker event
    dashed = next(e for e in ssa.events if "- Yes." in e.text)
    assert dashed.text == "{\\rEN Ben & Co  Jr}- Yes.\\N{\\rEN Ana}- Good."


def test_ttml_declares_agents_and_each_paragraph_names_its_speakers():
    doc = document()
    root = ET.fromstring(captions_string(doc, "ttml", ["en"]).split("?>", 1)[1])
    ttm = "{http://www.w3.org/ns/ttml#metadata}"
    agents = {
        a.get("{http://www.w3.org/XML/1998/namespace}id"): a.find(f"{ttm}name").text
        for a in root.iter(f"{ttm}agent")
    }
    assert agents == {"S1": "Ana", "S2": "Ben & Co, Jr"}
    paragraphs = [p.get(f"{ttm}agent") for p in root.iter("{http://www.w3.org/ns/ttml}p")]
    assert paragraphs == [" ".join(c.speakers) for c in doc.cues]
    assert "S2 S1" in paragraphs


def test_srt_shows_the_presets_marks(tmp_path):
    dash = captions_string(document(), "srt", ["en"])
    assert "- Yes.\n- Good." in dash and "ANA:" not in dash
    label = captions_string(document("broadcast"), "srt", ["en"])
    assert "ANA: Did you" in label and "BEN & CO, JR: Yes." in label
    paths = write_captions(document(), tmp_path, "talk", ["srt"])
    back = read_captions(paths[0], TB)
    assert [next(iter(c.text.values())) for c in back] == [c.text["en"] for c in document().cues]


def test_otio_cues_carry_their_speakers(tmp_path):
    from captionbridge.adapters.otio_subtitles import document_from_otio, timeline_from_document

    doc = document()
    timeline = timeline_from_document(doc)
    back = document_from_otio(timeline)
    assert [c.speakers for c in back.cues] == [c.speakers for c in doc.cues]
    assert {s["id"]: s["name"] for s in back.speakers} == {"S1": "Ana", "S2": "Ben & Co, Jr"}


def test_fcpxml_captions_name_their_speakers_in_a_note_and_colour(tmp_path):
    from captionbridge.adapters.fcpxml_captions import write_fcpxml_captions

    doc = document()
    path = tmp_path / "talk.fcpxml"
    write_fcpxml_captions(doc, path)
    captions = list(ET.parse(path).getroot().iter("caption"))
    assert len(captions) == len(doc.cues)
    notes = [c.find("note").text for c in captions]
    assert notes[0] == "Speaker: Ana"
    assert "Speaker: Ben & Co, Jr, Ana" in notes
    assert all([child.tag for child in c][-1] == "note" for c in captions)  # the DTD puts note last
    colours = {c.find("note").text: c.find("text-style-def/text-style").get("fontColor") for c in captions}
    assert colours["Speaker: Ana"] == "1 1 1 1" and colours["Speaker: Ben & Co, Jr"] == "1 1 0 1"
