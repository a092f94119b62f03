"""The review page on a two-hour job: time to first render and per-edit latency, in a real browser.

    python benchmarks/bench_review.py [--quick] [--speakers N]

A synthetic job of a 2-hour timeline (23.976 fps at 01:00:00:00; 120 one-minute clips of a tone-burst signal
on A1) with 1,500 cues and 12,000 words (8 per cue, one in ten under the 0.5 confidence threshold) is made by
the caption job's own writers (json + srt) and review-media writer, served by the real engine app (uvicorn on
loopback, in this process) and opened in headless Debian Chromium through a one-time link (Selenium).

Measured in the page (``window.__cbPerf``):
- time to first render: from the job view's request to the cue list, confidence colours, findings and the
  waveform's first draw being in the DOM, and from navigation start to the same point (what a user waits);
- per-edit latency: from the key press's handler to the next frame after the DOM update, for in/out-point
  nudges (Alt+Arrow), split (S), merge (M), undo (Ctrl+Z) spread over the whole list;
- scrolling: frame intervals while the cue list is scrolled 120 px a frame for 240 frames (a mouse wheel), and
  from top to bottom in 60 frames (dragging the scrollbar), with long tasks (PerformanceObserver 'longtask', >
  50 ms) during each. Also the engine side: writing the review media (mix.ogg + peaks) for the 2 hours, and
  the job view's JSON size. Writes benchmarks/results/review.json and review.md. ``--quick`` uses a 20-minute
  job (250 cues). ``--speakers N`` gives the job N speakers taking turns of four cues (every cue and word
  labelled, names in the speakers list, so every row has its speaker menu), adds a reassignment (key 2) to the
  edits measured, and writes review-speakers.json/.md instead.
"""

from __future__ import annotations

import json
import platform
import random
import shutil
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VOCAB = (
    "the harbour report said that boats came in early today with more fish than last week while storms "
    "moved north and the council asked every captain to check nets before leaving port again"
).split()


def make_timeline(folder: Path, minutes: int) -> Path:
    import numpy as np
    import opentimelineio as otio
    import soundfile as sf

    rate = Fraction(24000, 1001)
    sr = 16000
    t = np.arange(60 * sr) / sr
    signal = 0.25 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) * np.sin(2 * np.pi * 180 * t)
    wav = folder / "minute.wav"
    sf.write(str(wav), signal.astype(np.float32), sr, subtype="PCM_16")
    tl = otio.schema.Timeline(
        name=f"{minutes}-minute reel",
        global_start_time=otio.opentime.from_timecode("01:00:00:00", float(rate)),
    )
    track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    frames = int(60 * rate)
    for i in range(minutes):
        track.append(
            otio.schema.Clip(
                name=f"clip {i:03d}",
                media_reference=otio.schema.ExternalReference(target_url=wav.resolve().as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, float(rate)),
                    otio.opentime.RationalTime(frames, float(rate)),
                ),
            )
        )
    tl.tracks.append(track)
    path = folder / "reel.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def make_document(loaded, cues_n: int, words_per_cue: int = 8, speakers: int = 0):
    from captionbridge.core.model import CaptionDocument, Cue, Word

    tb = loaded.timebase
    total = loaded.duration_frames / float(tb.rate)
    span = (total - 2) / cues_n
    rng = random.Random(16)
    cues, words = [], []
    for i in range(cues_n):
        t0 = 1 + i * span
        length = span * 0.8
        tokens = [rng.choice(VOCAB) for _ in range(words_per_cue)]
        step = length / words_per_cue
        for k, token in enumerate(tokens):
            conf = rng.uniform(0.1, 0.49) if rng.random() < 0.1 else rng.uniform(0.55, 0.99)
            words.append(Word.at(token, t0 + k * step, t0 + (k + 0.85) * step, tb, conf, "en"))
        half = words_per_cue // 2
        who = (f"S{(i // 4) % speakers + 1}",) if speakers else ()
        if who:
            words[-words_per_cue:] = [replace(w, speaker=who[0]) for w in words[-words_per_cue:]]
        cues.append(
            Cue(
                tb.frame_at(t0, "floor"),
                tb.frame_at(t0 + length, "ceil"),
                {"en": " ".join(tokens[:half]) + "\n" + " ".join(tokens[half:])},
                (),
                who,
            )
        )
    doc = CaptionDocument(loaded.name, tb, "en", words=words, cues=cues, languages=["en"])
    names = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay"]
    doc.speakers = [{"id": f"S{k + 1}", "name": names[k % len(names)]} for k in range(speakers)]
    return doc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(quick: bool = True, speakers: int = 0) -> dict:
    import uvicorn

    from captionbridge.adapters.timeline_read import load_timeline
    from captionbridge.core.timeline.review_audio import write_timeline_review_media
    from captionbridge.plugin.caption_job import write_outputs
    from captionbridge.plugin.service.app import GuardSettings, create_app
    from captionbridge.plugin.service.jobs import REVIEW_MEDIA_DIR, JobService

    minutes, cues_n = (20, 250) if quick else (120, 1500)
    result: dict = {
        "job": f"{minutes}-minute OTIO timeline (23.976 @ 01:00:00:00), {cues_n} cues, {cues_n * 8} "
        "words (synthetic: fixed vocabulary, 10 % under 0.5 confidence), formats json+srt"
        + (f", {speakers} speakers in turns of 4 cues" if speakers else ""),
        "browser": "headless Debian Chromium via Selenium, 1280x800",
    }
    timings: dict = {}

    def job_function(timeline_path, out_dir, options, progress):
        loaded = load_timeline(timeline_path)
        doc = make_document(loaded, cues_n, speakers=speakers)
        files = write_outputs(doc, out_dir, "reel", ["json", "srt"], loaded)
        started = time.perf_counter()
        write_timeline_review_media(loaded, out_dir / REVIEW_MEDIA_DIR)
        timings["review_media_s"] = round(time.perf_counter() - started, 2)
        return {"document": doc.to_dict(), "files": files}

    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        tmp = Path(tmp)
        timeline = make_timeline(tmp, minutes)
        service = JobService(tmp / "data", job_function=job_function, workers=1)
        service.start()
        port = free_port()
        app = create_app(service, GuardSettings(token="bench-token"))
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        driver = None
        try:
            while not server.started:
                time.sleep(0.05)
            from captionbridge.plugin.service.client import EngineClient

            client = EngineClient(f"http://127.0.0.1:{port}", "bench-token")
            job = client.submit(timeline, {"formats": ["json", "srt"]})
            client.wait(job["id"], timeout=600)
            result["review_media_s"] = timings.get("review_media_s")
            media = tmp / "data" / "jobs" / job["id"] / "out" / REVIEW_MEDIA_DIR
            result["review_media_mb"] = {p.name: round(p.stat().st_size / 1e6, 2) for p in media.iterdir()}
            driver = start_browser()
            result.update(measure(driver, client, job["id"], speakers))
        finally:
            if driver is not None:
                driver.quit()
            server.should_exit = True
            thread.join(10)
            service.stop()
    result["summary"] = {
        "job view opens (navigation start to rendered, median of 3)": f"{result['open_ms_median']} ms",
        "of which the view's request + render": f"{result['first_render_ms_median']} ms",
        "per-edit latency to next frame (median / p95 / max)": f"{result['edit_ms_median']} / "
        f"{result['edit_ms_p95']} / "
        f"{result['edit_ms_max']} ms",
        "per-edit latency by kind (median / max ms)": "; ".join(
            f"{k} {v['median']} / {v['max']}" for k, v in result["edit_ms_by_kind"].items()
        ),
        "scrolling the cue list 120 px a frame (wheel): frame interval median / p95 / max; long tasks": (
            f"{result['scroll_wheel_frame_ms_median']} / {result['scroll_wheel_frame_ms_p95']} / "
            f"{result['scroll_wheel_frame_ms_max']} ms; {result['scroll_wheel_long_tasks']}"
        ),
        "scrolling a screenful and more a frame (top to bottom in 60 frames): median / p95 / max; "
        "long tasks": (
            f"{result['scroll_page_frame_ms_median']} / {result['scroll_page_frame_ms_p95']} / "
            f"{result['scroll_page_frame_ms_max']} ms; {result['scroll_page_long_tasks']}"
        ),
        "review media for the timeline (render + Ogg Vorbis + peaks)": f"{result['review_media_s']} s",
        "target: opens under 2 s": "met" if result["open_ms_median"] < 2000 else "NOT met",
    }
    return result


def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,800",
        "--mute-audio",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(
        options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    )


def measure(driver, client, job_id: str, speakers: int = 0) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def link():
        return client.request(
            "POST",
            "/v1/review/links",
            body=json.dumps({"job_id": job_id}).encode(),
            content_type="application/json",
        )["url"]

    opens, renders = [], []
    for _ in range(3):
        driver.get("about:blank")
        driver.get(link())
        WebDriverWait(driver, 60, 0.02).until(
            lambda d: d.execute_script("return document.body.dataset.ready")
        )
        perf = driver.execute_script("return window.__cbPerf")
        opens.append(perf["loads"][-1]["sinceNavigation"] + perf["firstRender"] * 0)
        renders.append(perf["firstRender"])
    out = {
        "open_ms": [round(x) for x in opens],
        "open_ms_median": round(statistics.median(opens)),
        "first_render_ms": [round(x) for x in renders],
        "first_render_ms_median": round(statistics.median(renders)),
    }
    cue_count = driver.execute_script("return window.__cbReview.state().cues.length")
    out["cues_rendered"] = len(driver.find_elements(By.CSS_SELECTOR, "#cues .cue"))
    out["word_spans_rendered"] = len(driver.find_elements(By.CSS_SELECTOR, "#cues .w"))

    def select(i):
        driver.execute_script(
            "const r = document.querySelectorAll('#cues .cue')[arguments[0]];"
            "r.scrollIntoView({block: 'center'}); r.click();",
            i,
        )

    def keys(*k, mods=()):
        chain = ActionChains(driver)
        for m in mods:
            chain = chain.key_down(m)
        chain = chain.send_keys(*k)
        for m in reversed(mods):
            chain = chain.key_up(m)
        chain.perform()

    for i in (10, cue_count // 4, cue_count // 2, 3 * cue_count // 4, cue_count - 10):
        select(i)
        keys(Keys.ARROW_RIGHT, mods=(Keys.ALT,))
        keys(Keys.ARROW_LEFT, mods=(Keys.ALT, Keys.SHIFT))
        word = driver.execute_script(
            "const r = document.querySelectorAll('#cues .cue')[arguments[0]]; const w = "
            "r.querySelectorAll('.w');"
            "if (w.length > 3) { w[3].click(); return true } return false",
            i,
        )
        if word:
            keys("s")
            keys("m")
        keys("z", mods=(Keys.CONTROL,))
        if speakers:  # the cue to the second speaker (its row and the speakers' counts), then back
            keys("2")
            keys("z", mods=(Keys.CONTROL,))
    time.sleep(0.3)
    edits = driver.execute_script("return window.__cbPerf.edits")
    ms = sorted(e["ms"] for e in edits)
    out["edits"] = len(ms)
    out["edit_kinds"] = sorted({e["label"] for e in edits})
    out["edit_ms_median"] = round(statistics.median(ms), 1)
    out["edit_ms_p95"] = round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1)
    out["edit_ms_max"] = round(ms[-1], 1)
    kinds: dict = {}
    for e in edits:
        label = "give to a speaker" if e["label"].startswith("cue ") and " to " in e["label"] else e["label"]
        kinds.setdefault(label, []).append(e["ms"])
    out["edit_ms_by_kind"] = {
        k: {"n": len(v), "median": round(statistics.median(v), 1), "max": round(max(v), 1)}
        for k, v in sorted(kinds.items())
    }
    for name, step_px, steps in (("wheel", 120, 240), ("page", None, 60)):
        scroll = driver.execute_async_script(
            """
            const [stepPx, steps, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
            const box = document.getElementById('cues');
            const long = [];
            const obs = new PerformanceObserver((list) => {
              for (const e of list.getEntries()) long.push(e.duration);
            });
            try { obs.observe({type: 'longtask', buffered: false}); } catch (e) {}
            box.scrollTop = stepPx ? box.scrollHeight / 3 : 0;
            const from = box.scrollTop, frames = [];
            let k = 0, last = performance.now();
            function step(now) {
              frames.push(now - last); last = now;
              if (k++ >= steps) { obs.disconnect(); done({frames, long}); return; }
              box.scrollTop = stepPx ? from + stepPx * k : (box.scrollHeight - box.clientHeight) * k / steps;
              requestAnimationFrame(step);
            }
            requestAnimationFrame(step);""",
            step_px,
            steps,
        )
        frames = sorted(scroll["frames"][1:])
        out[f"scroll_{name}_frame_ms_median"] = round(statistics.median(frames), 1)
        out[f"scroll_{name}_frame_ms_p95"] = round(frames[int(0.95 * (len(frames) - 1))], 1)
        out[f"scroll_{name}_frame_ms_max"] = round(frames[-1], 1)
        out[f"scroll_{name}_long_tasks"] = (
            f"{len(scroll['long'])} (longest {round(max(scroll['long']), 1) if scroll['long'] else 0} ms)"
        )
    return out


def to_markdown(result: dict, quick: bool, speakers: int = 0) -> str:
    flags = (" --quick" if quick else "") + (f" --speakers {speakers}" if speakers else "")
    lines = [
        "# Review page: two-hour job in the browser"
        + (" (quick: 20 minutes)" if quick else "")
        + (f", {speakers} speakers" if speakers else ""),
        "",
        f"Measured {result['date']} on {result['machine']}.",
        "",
        f"Command: `python benchmarks/bench_review.py{flags}`",
        "",
        f"Data: {result['job']}. Browser: {result['browser']}.",
        "",
        "Tuned on this data: the first runs on this same synthetic job (open 1.3-2.3 s, edit p95 130-310 ms "
        "on "
        "this machine under a load average of 9-12) led to three changes: the job view's JSON is sent "
        "without "
        "FastAPI's encoder, cue rows use `content-visibility: auto`, and word tooltips are made on hover. "
        "The "
        "figures below are after them. The machine is shared by several sessions: between runs on the same "
        "day the opening time ranged 0.56-1.06 s and the edit p95 47-169 ms.",
        "",
    ]
    if speakers:
        lines += [
            "Speakers, tuned on this data (2026-12-06, this machine, load average about 5-6): the first "
            "version gave every row a speaker menu (a <select> of the speakers): the job opened in 943 ms "
            "(render 762 ms) against 649 ms (492 ms) for the same job without speakers measured minutes "
            "later, edit p95 116 ms against 59 ms. Rows now show the speaker as a button that becomes the "
            "menu when clicked; the figures below are after that change.",
            "",
        ]
    lines += [
        "| what | figure |",
        "| --- | --- |",
    ]
    for key, value in result["summary"].items():
        lines.append(f"| {key} | {value} |")
    stem = "review" + ("-speakers" if speakers else "") + ("-quick" if quick else "")
    lines += ["", f"Raw numbers: `{stem}.json`.", ""]
    return "\n".join(lines)


def main() -> None:
    import argparse
    import os

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--speakers", type=int, default=0, help="give the job this many speakers")
    args = parser.parse_args()
    result = run(quick=args.quick, speakers=args.speakers)
    result["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    result["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}; "
        f"load average {load[0]:.1f} at the end (the machine is shared: figures vary with it)"
    )
    suffix = ("-speakers" if args.speakers else "") + ("-quick" if args.quick else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"review{suffix}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"review{suffix}.md").write_text(to_markdown(result, args.quick, args.speakers))
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
