"""Caption translation: throughput with the tiny Marian model, and how well translations are cut over cues.

    python benchmarks/bench_translate.py [--quick]

1. Throughput (cues per second) of ``translate_cues`` -- sentence grouping, batched n-best translation,
   distribution, line layout, fitting -- with the tiny random Marian model built as in the tests (no real
   zh<->en model ships in any package here): CTranslate2 int8 on CPU at batch 16 and batch 1, transformers on
   CPU, and CTranslate2 float16 / transformers on a GPU when one is present. A random model never stops early:
   it decodes up to the length limit (2 x source tokens + 16), so these are upper bounds on decoding work per
   sentence, not real-model speeds.
2. Sentence distribution on a hand-written zh/en set (``data/translate_distribution.json``): each multi-cue
   sentence gets its reference translation (best first, then shorter alternatives as n-best), and we count how
   often the cut matches a subtitler's (exactly, and in characters off per cut), how many cues needed a
   shorter candidate or re-split timing, and how many still break a limit. Writes
   benchmarks/results/translate.json and translate.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DATA = HERE / "data" / "translate_distribution.json"


class ItemTranslator:
    """Answers the item's reference list for the one sentence it is asked about (and records the question)."""

    name = backend = "reference"
    device = "cpu"

    def __init__(self, translations: list[str]):
        self.translations = translations
        self.asked: list[str] = []

    def supports(self, source_lang, target_lang):
        return True

    def translate(self, texts, source_lang, target_lang, num_hypotheses=1, batch_size=16):
        self.asked.extend(texts)
        return [self.translations[:num_hypotheses] for _ in texts]


def _norm(text: str, language: str) -> str:
    if language == "zh":
        return re.sub(r"[\s，。,.]", "", text)
    return " ".join(text.split())


def distribution_quality() -> dict:
    from captionbridge.core.model import Cue
    from captionbridge.core.timeline.timebase import Timebase
    from captionbridge.core.translate.cues import translate_cues

    data = json.loads(DATA.read_text(encoding="utf-8"))
    tb = Timebase(data["rate"])
    by_direction: dict[str, dict] = {}
    details = []
    for n, item in enumerate(data["items"]):
        src, tgt = item["source_lang"], item["target_lang"]
        cues, frame = [], 0
        for text, frames in item["cues"]:
            cues.append(Cue(frame, frame + frames, {src: text}))
            frame += frames + 2
        cues.append(
            Cue(frame + 40, frame + 90, {src: "。" if src == "zh" else "."})
        )  # the next speaker, later
        translator = ItemTranslator(item["translations"])
        out, report = translate_cues(cues, src, tgt, translator, tb)
        out, k = out[:-1], len(item["cues"])
        pieces = [c.text[tgt].replace("\n", " " if tgt == "en" else "") for c in out]
        stats = by_direction.setdefault(
            f"{src}->{tgt}",
            {
                "sentences": 0,
                "cues": 0,
                "grouping_errors": 0,
                "exact_cuts": 0,
                "cut_offsets": [],
                "shorter_candidate": 0,
                "retimed_cues": 0,
                "unfit_cues": 0,
            },
        )
        stats["sentences"] += 1
        stats["cues"] += k
        if len(translator.asked) != 2:  # the sentence, then the dot of the next speaker
            stats["grouping_errors"] += 1
        used_other = any(i < k for i in report.other_candidate_cues)
        stats["shorter_candidate"] += sum(1 for i in report.other_candidate_cues if i < k)
        stats["retimed_cues"] += sum(1 for r in report.retimed if r["cue"] < k)
        stats["unfit_cues"] += len({u["cue"] for u in report.unfit if u["cue"] < k})
        gold = item["gold"]
        if not used_other:
            got = [_norm(p, tgt) for p in pieces]
            want = [_norm(g, tgt) for g in gold]
            stats["exact_cuts"] += got == want
            pos_got = pos_want = 0
            for a, b in zip(got[:-1], want[:-1]):
                pos_got += len(a) + (tgt == "en")
                pos_want += len(b) + (tgt == "en")
                stats["cut_offsets"].append(abs(pos_got - pos_want))
        details.append(
            {
                "item": n,
                "direction": f"{src}->{tgt}",
                "pieces": pieces,
                "gold": gold,
                "shorter_candidate": used_other,
                "retimed": [r for r in report.retimed if r["cue"] < k],
                "unfit": [u for u in report.unfit if u["cue"] < k],
            }
        )
    for stats in by_direction.values():
        offsets = stats.pop("cut_offsets")
        stats["cuts_compared"] = len(offsets)
        stats["mean_cut_offset_chars"] = round(sum(offsets) / len(offsets), 2) if offsets else None
        stats["cuts_within_3_chars"] = sum(1 for o in offsets if o <= 3)
    return {"by_direction": by_direction, "items": details}


def _cues_for_throughput(count: int):
    from captionbridge.core.model import Cue

    data = json.loads(DATA.read_text(encoding="utf-8"))
    texts = [text for item in data["items"] if item["source_lang"] == "zh" for text, _ in item["cues"]]
    cues, frame = [], 0
    for i in range(count):
        text = texts[i % len(texts)]
        if i % 3 == 2:
            text += "。"
        cues.append(Cue(frame, frame + 48, {"zh": text}))
        frame += 50 if i % 3 != 2 else 80
    return cues


def throughput(quick: bool) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import ctranslate2
    from fixtures.tiny_marian import build_tiny_marian, convert_to_ct2

    from captionbridge.core.timeline.timebase import Timebase
    from captionbridge.core.translate.backends import (
        CTranslate2Translator,
        TransformersTranslator,
        inspect_folder,
    )
    from captionbridge.core.translate.cues import translate_cues

    count = 120 if quick else 600
    cues = _cues_for_throughput(count)
    tb = Timebase(24)
    out: dict = {
        "cues": count,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        hf = build_tiny_marian(Path(tmp) / "opus-mt-zh-en")
        ct2 = convert_to_ct2(hf, Path(tmp) / "opus-mt-zh-en-ct2")
        out["build_seconds"] = round(time.perf_counter() - started, 2)
        runs = [
            ("ct2_cpu_int8_batch16", lambda: CTranslate2Translator(inspect_folder(ct2), "cpu"), 16),
            ("ct2_cpu_int8_batch1", lambda: CTranslate2Translator(inspect_folder(ct2), "cpu"), 1),
            ("transformers_cpu_batch16", lambda: TransformersTranslator(str(hf), "marian", "cpu"), 16),
        ]
        if ctranslate2.get_cuda_device_count() > 0:
            runs.append(
                ("ct2_cuda_float16_batch16", lambda: CTranslate2Translator(inspect_folder(ct2), "cuda"), 16)
            )
        try:
            import torch

            if torch.cuda.is_available():
                runs.append(
                    (
                        "transformers_cuda_batch16",
                        lambda: TransformersTranslator(str(hf), "marian", "cuda"),
                        16,
                    )
                )
        except ImportError:
            pass
        for name, make, batch in runs:
            translator = make()
            subset = cues if not name.startswith("transformers_cpu") else cues[: max(30, count // 4)]
            translate_cues(subset[:6], "zh", "en", translator, tb, batch_size=batch)  # warm up
            started = time.perf_counter()
            result, report = translate_cues(subset, "zh", "en", translator, tb, batch_size=batch)
            seconds = time.perf_counter() - started
            out[name] = {
                "cues": len(subset),
                "sentences": report.sentences,
                "seconds": round(seconds, 3),
                "cues_per_second": round(len(subset) / seconds, 1),
                "mean_output_chars": round(sum(len(c.text["en"]) for c in result) / len(result), 1),
            }
    return out


def to_markdown(result: dict) -> str:
    tp = result["throughput"]
    lines = [
        "# Caption translation benchmark",
        "",
        "## Throughput (tiny random Marian, upper-bound decoding)",
        "",
        f"{tp['cpus']} CPUs, load average {tp['load_average_at_start']} at start (the machine is shared: "
        "compare runs only at similar load). No GPU was lent for this run."
        if "ct2_cuda_float16_batch16" not in tp
        else f"{tp['cpus']} CPUs, load average {tp['load_average_at_start']} at start.",
        "",
        "| run | cues | sentences | seconds | cues/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, run in result["throughput"].items():
        if isinstance(run, dict):
            lines.append(
                f"| {name} | {run['cues']} | {run['sentences']} | {run['seconds']} | "
                f"{run['cues_per_second']} |"
            )
    lines += [
        "",
        "## Sentence distribution (hand-written zh/en set)",
        "",
        (
            "| direction | sentences | cues | exact cuts | mean cut offset (chars) | cuts within 3 chars | "
            "shorter candidate (cues) | re-split timing (cues) | still over limits (cues) | grouping errors |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for direction, s in result["distribution"]["by_direction"].items():
        lines.append(
            f"| {direction} | {s['sentences']} | {s['cues']} | {s['exact_cuts']} | "
            f"{s['mean_cut_offset_chars']} | {s['cuts_within_3_chars']}/{s['cuts_compared']} | "
            f"{s['shorter_candidate']} | {s['retimed_cues']} | {s['unfit_cues']} | "
            f"{s['grouping_errors']} |"
        )
    lines += ["", "Cuts that differ from the subtitler's:", ""]
    for item in result["distribution"]["items"]:
        if not item["shorter_candidate"] and [p.replace(" ", "") for p in item["pieces"]] != [
            g.replace(" ", "") for g in item["gold"]
        ]:
            lines.append(
                f"- {item['direction']}: got {' | '.join(item['pieces'])}  \n  want "
                f"{' | '.join(item['gold'])}"
            )
    return "\n".join(lines) + "\n"


def run(quick: bool = False) -> dict:
    result = {"quick": quick, "throughput": throughput(quick), "distribution": distribution_quality()}
    dist = result["distribution"]["by_direction"]
    tp = result["throughput"]
    result["summary"] = {
        "ct2_cpu_int8_cues_per_s": tp["ct2_cpu_int8_batch16"]["cues_per_second"],
        "ct2_cpu_int8_batch1_cues_per_s": tp["ct2_cpu_int8_batch1"]["cues_per_second"],
        "transformers_cpu_cues_per_s": tp["transformers_cpu_batch16"]["cues_per_second"],
        **(
            {"ct2_cuda_fp16_cues_per_s": tp["ct2_cuda_float16_batch16"]["cues_per_second"]}
            if "ct2_cuda_float16_batch16" in tp
            else {}
        ),
        **{f"{d}_exact_cuts": f"{s['exact_cuts']}/{s['sentences']}" for d, s in dist.items()},
        **{f"{d}_mean_cut_offset_chars": s["mean_cut_offset_chars"] for d, s in dist.items()},
        **{f"{d}_cues_resplit": s["retimed_cues"] for d, s in dist.items()},
        **{f"{d}_cues_shorter_candidate": s["shorter_candidate"] for d, s in dist.items()},
        **{f"{d}_cues_still_unfit": s["unfit_cues"] for d, s in dist.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if quick else ""
    (RESULTS / f"translate{suffix}.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (RESULTS / f"translate{suffix}.md").write_text(to_markdown(result), encoding="utf-8")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.quick)["summary"], ensure_ascii=False, indent=2))
