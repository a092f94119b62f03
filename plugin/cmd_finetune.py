"""`captionbridge finetune` and `captionbridge corrections`: learn from approved corrections.

``finetune --base MODEL --name NAME`` trains LoRA adapters on the corrections store (plus a slice of general
speech so the model does not forget), merges and converts the result to CTranslate2, measures held-out WER of
base and new model with faster-whisper, and registers it. ``finetune activate NAME`` makes it the engine's
default (refused when it is worse than its base on held-out speech), ``finetune rollback`` goes back.
``corrections list|export| purge|vocabulary`` look after the store itself.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import click

from ..core.errors import InputError


def _data_dir(data_dir: Path | None) -> Path:
    from .service.paths import config_dir

    return Path(data_dir) if data_dir else config_dir()


def _load_examples(path: Path):
    """Examples from a JSON Lines file: {"audio": path (relative to the file), "text", "language"} per line
    (the ``corrections export --format jsonl`` layout also fits: its ``corrected_text`` is the text)."""
    import soundfile as sf

    from ..core.finetune.lora import SAMPLE_RATE, Example

    if not path.is_file():
        raise InputError(f"{path} does not exist: pass a JSON Lines file of audio paths and texts")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            audio_path = (path.parent / row["audio"]).resolve()
            text = row.get("text") or row["corrected_text"]
        except (ValueError, KeyError) as exc:
            raise InputError(f'{path}, line {n}: expected {{"audio": ..., "text": ...}} ({exc})') from None
        try:
            audio, rate = sf.read(str(audio_path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise InputError(f"{path}, line {n}: cannot read {audio_path} ({exc})") from None
        if rate != SAMPLE_RATE:
            raise InputError(
                f"{path}, line {n}: {audio_path} is {rate} Hz; resample it to {SAMPLE_RATE} Hz mono"
            )
        out.append(Example(audio.mean(axis=1), text, row.get("language", "en")))
    return out


def _corrections_as_examples(store):
    from ..core.finetune.lora import Example

    return [
        (r, Example(store.audio(r), r.corrected_text, r.language))
        for r in store.records()
        if not r.timing_only
    ]


@click.group("finetune", invoke_without_command=True)
@click.option(
    "--base",
    "base_model",
    default="auto",
    show_default=True,
    help="Model to start from: a CTranslate2 folder, a packaged model, or a registered name.",
)
@click.option("--name", default=None, help="Name to register the new model under (letters, digits, . _ -).")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option("--learning-rate", default=1e-3, show_default=True, type=float)
@click.option("--rank", default=8, show_default=True, type=click.IntRange(1, 256), help="LoRA rank.")
@click.option(
    "--general",
    "general_path",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON Lines of general speech mixed in so the model does not forget (recommended).",
)
@click.option(
    "--held-out",
    "held_out_path",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON Lines of held-out speech to score base and new model on (default: a fifth of the "
    "corrections, by job).",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--quantization",
    type=click.Choice(["float16", "float32", "int8", "int8_float16"]),
    default="float16",
    show_default=True,
    help="Weights of the converted model (as the base ships).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The engine's data folder holding the corrections (default: the engine's own).",
)
@click.pass_context
def finetune_cmd(
    ctx,
    base_model,
    name,
    epochs,
    learning_rate,
    rank,
    general_path,
    held_out_path,
    device,
    quantization,
    data_dir,
):
    """Fine-tune a Whisper model on approved corrections (LoRA, merged, converted for faster-whisper)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..core.corrections.store import CorrectionStore
    from ..core.finetune.evaluate import held_out_wer
    from ..core.finetune.lora import FinetuneSettings, finetune
    from ..core.finetune.registry import model_folder, register
    from ..core.speech.models import resolve_model
    from .progress_bar import progress_bar

    if not name:
        raise InputError("--name is required: the new model is registered under it (e.g. --name harbour-v1)")
    folder = model_folder(name)
    if folder.exists():
        raise InputError(f"a model called {name!r} is already registered ({folder}): choose another --name")
    base = resolve_model(base_model)
    if base.source == "hub":
        raise InputError(f"{base.name} is a hub name: download it first or pass a local CTranslate2 folder")
    store = CorrectionStore(_data_dir(data_dir))
    pairs = _corrections_as_examples(store)
    if held_out_path:
        train, held_out = [e for _, e in pairs], _load_examples(held_out_path)
    else:
        jobs = sorted({r.job_id for r, _ in pairs})
        random.Random(0).shuffle(jobs)
        held_jobs = set(jobs[: max(1, len(jobs) // 5)]) if len(jobs) > 1 else set()
        train = [e for r, e in pairs if r.job_id not in held_jobs]
        held_out = [e for r, e in pairs if r.job_id in held_jobs]
    if not held_out:
        raise InputError(
            "no held-out speech to score the new model on: pass --held-out, or approve corrections "
            "from at least two jobs"
        )
    general = _load_examples(general_path) if general_path else []
    settings = FinetuneSettings(
        epochs=epochs, learning_rate=learning_rate, rank=rank, device=device, quantization=quantization
    )
    with progress_bar(f"fine-tuning {name}", disable=not sys.stderr.isatty()) as listener:
        result = finetune(
            base.path,
            train,
            general,
            folder,
            settings,
            progress=lambda stage, fraction: listener(stage, fraction, None),
        )
    click.echo(
        f"trained on {result.device} in {result.seconds:.0f} s ({result.steps} steps); scoring base and "
        "new model on held-out speech",
        err=True,
    )
    scores = {
        "held_out_wer_base": held_out_wer(base.path, held_out),
        "held_out_wer_tuned": held_out_wer(folder, held_out),
        "held_out_examples": len(held_out),
    }
    card = register(
        name,
        folder,
        base.name,
        {
            "corrections": result.train_examples,
            "general": result.replay_examples,
            "epochs": epochs,
            "device": result.device,
            "seconds": round(result.seconds, 1),
        },
        scores,
    )
    click.echo(
        f"registered {name} ({folder}): held-out WER {scores['held_out_wer_base']:.1%} -> "
        f"{scores['held_out_wer_tuned']:.1%} on {len(held_out)} utterances; "
        f"`captionbridge finetune activate {name}` makes the engine use it"
    )
    return card


@finetune_cmd.command("activate")
@click.argument("name")
def activate_cmd(name: str) -> None:
    """Make NAME the engine's default model (refused when it is worse than its base on held-out speech)."""
    from ..core.finetune.registry import activate

    state = activate(name)
    click.echo(
        f"active model: {state['active']} (previous: {state['previous'] or 'the packaged default'}); a "
        "running engine switches between jobs after POST /v1/models/reload"
    )


@finetune_cmd.command("rollback")
def rollback_cmd() -> None:
    """Go back to the model that was active before."""
    from ..core.finetune.registry import rollback

    state = rollback()
    click.echo(f"active model: {state['active'] or 'the packaged default'}")


@finetune_cmd.command("list")
def list_cmd() -> None:
    """Registered fine-tuned models with their held-out scores."""
    from ..core.finetune.registry import active, registered

    current = active().get("active")
    cards = registered()
    if not cards:
        click.echo("no fine-tuned models yet (captionbridge finetune --name NAME)")
    for card in cards:
        s = card.get("scores", {})
        mark = "*" if card["name"] == current else " "
        click.echo(
            f"{mark} {card['name']}  base {card['base']}  held-out WER {s.get('held_out_wer_base', 0):.1%}"
            f" -> {s.get('held_out_wer_tuned', 0):.1%}  ({card['created']})"
        )


@click.group("corrections")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The engine's data folder (default: the engine's own).",
)
@click.pass_context
def corrections_cmd(ctx, data_dir):
    """Approved corrections kept as training data: list, export, purge, vocabulary."""
    from ..core.corrections.store import CorrectionStore

    ctx.obj = CorrectionStore(_data_dir(data_dir))


@corrections_cmd.command("list")
@click.pass_obj
def corrections_list(store) -> None:
    records = store.records()
    for r in records:
        kind = "timing" if r.timing_only else "text"
        click.echo(
            f"{r.id}  {r.language}  {r.start:8.2f}-{r.end:8.2f}s  {kind:6}  {r.model_text!r} -> "
            f"{r.corrected_text!r}  (job {r.job_id})"
        )
    click.echo(f"{len(records)} correction(s) in {store.folder}")


@corrections_cmd.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "hf"]),
    default="jsonl",
    show_default=True,
    help="jsonl: corrections.jsonl + audio/; hf: an audiofolder for datasets.load_dataset.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="A new, empty folder.")
@click.pass_obj
def corrections_export(store, fmt, out_dir) -> None:
    from ..core.corrections.export import export

    target = export(store, out_dir, fmt)
    hint = f' (datasets.load_dataset("audiofolder", data_dir="{out_dir}"))' if fmt == "hf" else ""
    click.echo(f"exported {len(store.records())} correction(s) -> {target}{hint}")


@corrections_cmd.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def corrections_purge(store, yes) -> None:
    if not yes:
        click.confirm(f"delete every correction and its audio in {store.folder}?", abort=True)
    click.echo(f"deleted {store.purge()} correction(s)")


@corrections_cmd.command("vocabulary")
@click.option("--min-count", default=2, show_default=True, type=click.IntRange(1, 1000))
@click.pass_obj
def corrections_vocabulary(store, min_count) -> None:
    """Words people corrected more than once: passed to the decoder as hotwords on the next job."""
    words = store.vocabulary(min_count)
    click.echo("\n".join(words) if words else "no word has been corrected more than once yet")
