"""Wrongly mixed cues (issue #18): the composer's sentence stop in speaker mode (``SENTENCE_TURN_GAP`` in
core/captions/compose.py) on and off, and what it costs.

    python benchmarks/bench_speakers_mixed_cues.py tune off,0,0/1,0.15 # tuning seeds 101-200 + 400-429
    python benchmarks/bench_speakers_mixed_cues.py whisper off,0      # 10 tuning conversations, Whisper words
    python benchmarks/bench_speakers_mixed_cues.py measure off,0      # the measured set, seeds 201-224 (lead)
    python benchmarks/bench_speakers_mixed_cues.py fresh off,0        # never-used seeds 301-320 (lead)

Settings: ``off`` (no sentence stop: the composer before this change) or a pause in seconds (a sentence end
followed by at least that much silence always ends a cue when words carry speakers; 0: every sentence end),
optionally ``/N``: the stop only when the words carry at least N speakers (``SENTENCE_TURN_SPEAKERS``,
default 2; ``0/1``: also when diarization found one voice); ``0c0.25``: also a clause end (comma) followed by
a pause of 0.25 s or more (``CLAUSE_TURN_GAP``: tried and not adopted; it needs
``git apply benchmarks/results/speakers-mixed-cues-clause.patch``).

Each conversation is diarized once (``--speakers auto``, reference word times, as bench_speakers.py --set
tune; ``whisper``: the whole path, Whisper base words settled on frames, each word's truth the speaker of the
nearest reference word); the diarization does not depend on the setting, so DER and counts are one figure per
set. Then the same labelled words are composed (netflix-en; ``--preset broadcast`` for name labels) with each
setting and measured:

* wrongly mixed cues: ``bench_speakers.wrongly_mixed`` (two true speakers and not the two-speaker form split
  exactly at the true turn, or three);
* cues, two-speaker cues, one-word cues, cues under 1 s on screen;
* validator (``validate_cues``) hard violations by rule, and soft ones by rule (reading speed, line breaks);
* late cues: in-time more than 0.25 s / 0.5 s after the cue's first word starts (a short cue held for its
  minimum duration pushes the next one late), and the frames of lateness summed over all cues.

The same cue measures on the "tune" set's one-voice material: the 21 one-voice recordings (7 voices x seeds
5-7, as the other speaker benchmarks) and ../shared/data/jfk.flac (real speech; Whisper base words), each
composed from the diarized words (speaker mode) and, for comparison, with the speakers removed (the composer
without diarization). Results: benchmarks/results/speakers-mixed-cues.md/json (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import bench_speakers as b  # noqa: E402
from bench_speakers_voicing import hard  # noqa: E402
from conversations import VOICES, make_conversation  # noqa: E402

from captionbridge.core.captions import compose  # noqa: E402
from captionbridge.core.captions.validate import validate_cues  # noqa: E402
from captionbridge.core.model import Word  # noqa: E402
from captionbridge.core.speech import speakers as sp  # noqa: E402
from captionbridge.core.timeline.timebase import Timebase  # noqa: E402

TB = Timebase(25)
PRESET = "netflix-en"


def specs_of(which: str):
    if which == "tune":
        conv = list(b.TUNE_SET) + [(3, x, x % 3 == 0) for x in range(161, 181)]
        conv += [(4, x, False) for x in range(181, 201)]
        conv += [(3, x, hard(x)) for x in range(400, 430)]
        return conv, [(v, s) for v, _ in VOICES for s in (5, 6, 7)], True
    if which == "hard":  # a quick pass: the hard class alone
        return [(3, x, hard(x)) for x in range(400, 430)], [], False
    if which == "whisper":  # tuning conversations, Whisper base words: the five that mixed cues + five others
        conv = [(4, 123, False), (4, 133, False), (3, 179, False), (4, 195, False), (3, 416, hard(416))]
        conv += [(2, 101, False), (3, 107, False), (4, 119, False), (3, 151, False), (3, 400, hard(400))]
        return conv, [], False
    if which == "measure":
        return list(b.FULL_SET), [], False
    return (
        (
            [(2, 300 + k, k % 3 == 0) for k in range(1, 9)]
            + [(3, 308 + k, k % 3 == 0) for k in range(1, 9)]
            + [(4, 316 + k, False) for k in range(1, 5)]
        ),
        [],
        False,
    )


def whisper_words(conv, model_dir):
    """Whisper base words of the conversation, settled on frames as the pipeline does, and each word's true
    speaker: the speaker of the reference word nearest its middle."""
    from captionbridge.core.captions.cue_timing import settle_word_frames
    from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_audio

    options = TranscribeOptions(model=model_dir, language="en", cache=False, device="cpu")
    heard = transcribe_audio(conv.samples, options).words
    words = settle_word_frames([Word.at(w.text, w.start, w.end, TB, w.confidence) for w in heard])

    return words, {id(w): nearest_speaker(conv.words, w) for w in words}


def nearest_speaker(reference, word) -> str:
    """The speaker of the reference word nearest ``word``'s middle (0 inside it)."""
    mid = (word.start + word.end) / 2
    return min(reference, key=lambda r: max(r.start - mid, mid - r.end, 0.0)).speaker


def compose_with(setting, words):
    """Cues of ``words`` with the composer's sentence stop as ``setting`` says; the settings are restored."""
    names = ("SENTENCE_TURN_GAP", "SENTENCE_TURN_SPEAKERS", "CLAUSE_TURN_GAP")
    saved = {k: getattr(compose, k) for k in names if hasattr(compose, k)}
    try:
        return _compose_with(setting, words)
    finally:
        for k, v in saved.items():
            setattr(compose, k, v)


def _compose_with(setting, words):
    gap, _, least = setting.partition("/")
    gap, _, clause = gap.partition("c")
    compose.SENTENCE_TURN_GAP = None if gap == "off" else Fraction(gap)
    if clause and not hasattr(compose, "CLAUSE_TURN_GAP"):
        sys.exit(
            "the clause stop was not adopted: apply it first with "
            "git apply benchmarks/results/speakers-mixed-cues-clause.patch (git apply -R to revert)"
        )
    if hasattr(compose, "CLAUSE_TURN_GAP"):
        compose.CLAUSE_TURN_GAP = Fraction(clause) if clause else None
    compose.SENTENCE_TURN_SPEAKERS = int(least or 2)
    return compose.compose_cues(words, TB, PRESET, "en")


def cue_measures(cues) -> dict:
    violations = validate_cues(cues, TB, PRESET, "en")
    lag = [c.start_frame - c.words[0].start_frame for c in cues]
    return {
        "cues": len(cues),
        "two_speaker_cues": sum(1 for c in cues if len(c.speakers) == 2),
        "one_word_cues": sum(1 for c in cues if len(c.words) == 1),
        "cues_under_1s": sum(1 for c in cues if c.duration < TB.rate),
        "hard": dict(Counter(v.rule for v in violations if v.severity == "hard")),
        "reading_speed": sum(1 for v in violations if v.rule == "reading-speed"),
        "soft": dict(Counter(v.rule for v in violations if v.severity != "hard")),
        "late_over_quarter_second": sum(1 for x in lag if x > TB.rate / 4),
        "late_over_half_second": sum(1 for x in lag if x > TB.rate / 2),
        "late_frames_total": sum(max(0, x) for x in lag),
    }


def add(total: dict, row: dict) -> None:
    for k, v in row.items():
        if isinstance(v, dict):
            sub = total.setdefault(k, {})
            for r, n in v.items():
                sub[r] = sub.get(r, 0) + n
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("tune", "hard", "whisper", "measure", "fresh"))
    parser.add_argument("settings", help="comma-separated: off, or a pause in seconds (0, 0.3, ...)")
    parser.add_argument("--out", type=Path, default=None, help="write <out>/speakers-mixed-cues-<set>.json")
    parser.add_argument("--no-jfk", action="store_true", help="skip jfk.flac (no Whisper run)")
    parser.add_argument("--preset", default=PRESET, help="caption preset (netflix-en; broadcast: labels)")
    args = parser.parse_args(argv)
    globals()["PRESET"] = args.preset
    settings = args.settings.split(",")
    specs, ones, with_jfk = specs_of(args.which)
    enc = sp.load_encoder("cpu")
    model_dir = b.whisper_base() if args.which == "whisper" else None
    c0 = time.process_time()
    totals = {s: {} for s in settings}
    diar = {"right": 0, "der_num": 0.0, "der_den": 0.0, "conversations": 0}
    rows = []
    for n, seed, same in specs:
        if isinstance(same, list):
            conv = make_conversation(n, seed, voices=same, name=f"conv-hard-{seed}")
        else:
            conv = make_conversation(n, seed, same_gender=same)
        if args.which == "whisper":
            words, truth = whisper_words(conv, model_dir)
        else:
            words = [Word.at(w.text, w.start, w.end, TB) for w in conv.words]
            truth = {id(w): ref.speaker for w, ref in zip(words, conv.words)}
        res = sp.diarize(conv.samples, words, "auto", encoder=enc)
        d = b.der(conv.turns(), b.turns_of(res.words, lambda w: w.speaker))
        diar["right"] += len(res.speakers) == n
        diar["der_num"] += d * conv.duration
        diar["der_den"] += conv.duration
        diar["conversations"] += 1
        row = {"name": conv.name, "voices": list(conv.voices.values()), "found": len(res.speakers)}
        row["der"] = round(d, 4)
        for s in settings:
            cues = compose_with(s, res.words)
            m = {"mixed": b.mixed_in(cues, res.words, words, truth), **cue_measures(cues)}
            add(totals[s], m)
            row[s] = m
        rows.append(row)
        print(row["name"], row["found"], "/", n, {s: (row[s]["mixed"], row[s]["cues"]) for s in settings})
    one_voice = {s: {} for s in settings + ["no speakers"]}
    splits = 0
    for v, seed in ones:
        conv = make_conversation(1, seed, voices=[v])
        words = [Word.at(w.text, w.start, w.end, TB) for w in conv.words]
        res = sp.diarize(conv.samples, words, "auto", encoder=enc)
        splits += len(res.speakers) != 1
        for s in settings:
            add(one_voice[s], cue_measures(compose_with(s, res.words)))
        plain = [replace(w, speaker=None) for w in words]
        add(one_voice["no speakers"], cue_measures(compose_with("off", plain)))
    jfk = None
    if with_jfk and not args.no_jfk:
        from captionbridge.core.speech.transcribe import TranscribeOptions, _decode_file, transcribe_audio

        path = Path("/work/shared/data/jfk.flac")
        samples = _decode_file(path)
        tr = transcribe_audio(samples, TranscribeOptions(model=b.whisper_base(), language="en", cache=False))
        words = [Word.at(w.text, w.start, w.end, TB, confidence=w.confidence) for w in tr.words]
        res = sp.diarize(samples, words, "auto", encoder=enc)
        jfk = {"found_auto": len(res.speakers)}
        for s in settings:
            cues = compose_with(s, res.words)
            jfk[s] = {**cue_measures(cues), "text": [c.text["en"] for c in cues]}
        cues = compose_with("off", [replace(w, speaker=None) for w in res.words])
        jfk["no speakers"] = {**cue_measures(cues), "text": [c.text["en"] for c in cues]}
    summary = {
        "set": args.which,
        "conversations": diar["conversations"],
        "count_right": diar["right"],
        "der": round(diar["der_num"] / max(diar["der_den"], 1e-9), 4),
        "by_setting": totals,
        "one_voice_recordings": len(ones),
        "one_voice_splits": splits,
        "one_voice_by_setting": one_voice if ones else None,
        "jfk": jfk,
        "cpu_seconds": round(time.process_time() - c0, 1),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible, {platform.platform()}",
            "command": "python benchmarks/bench_speakers_mixed_cues.py " + " ".join(argv or sys.argv[1:]),
            "summary": summary,
            "conversations": rows,
        }
        suffix = "" if args.preset == "netflix-en" else f"-{args.preset}"
        report["preset"] = args.preset
        path = args.out / f"speakers-mixed-cues-{args.which}{suffix}.json"
        path.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
