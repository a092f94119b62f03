"""LoRA fine-tuning of a Whisper model on corrected speech, merged and converted back for faster-whisper.

``finetune(base_folder, train, replay, held_out, out_folder)``: the CTranslate2 base is read back into
transformers weights (``whisper_weights``), LoRA adapters (``peft``) are trained on the decoder's and
encoder's attention projections with the corrections mixed with a slice of general speech (``replay``) so the
model does not forget, then merged into the weights and converted to CTranslate2. Held-out WER is measured
with faster-whisper on both the base and the new model, so what is reported is what the engine will run.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .whisper_weights import load_as_transformers, save_as_ct2

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Example:
    """One utterance to learn from: mono float32 audio at 16 kHz (at most 30 s), its text and language."""

    audio: np.ndarray
    text: str
    language: str = "en"


@dataclass
class FinetuneSettings:
    epochs: int = 3
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    batch_size: int = 4
    replay_share: float = 0.5  # general speech per correction example, so the model does not forget
    seed: int = 0
    device: str = "auto"
    quantization: str = "float16"
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")


@dataclass
class FinetuneResult:
    folder: Path
    steps: int
    seconds: float
    device: str
    train_examples: int
    replay_examples: int
    losses: list[float] = field(default_factory=list)


def _device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "--device cuda was asked for but torch sees no CUDA GPU: use --device cpu (slow) or auto"
        )
    return requested


def label_ids(tokenizer, text: str, language: str) -> list[int]:
    """Whisper's target sequence for ``text`` (without the start token, which the model prepends):
    language, transcribe, no timestamps, the text's tokens, end of text."""
    special = tokenizer.convert_tokens_to_ids
    lang = special(f"<|{language}|>")
    if lang is None or lang == tokenizer.unk_token_id:
        raise InputError(f"the model has no language token for {language!r}")
    body = tokenizer.encode(" " + text.strip(), add_special_tokens=False)
    return [lang, special("<|transcribe|>"), special("<|notimestamps|>")] + body + [special("<|endoftext|>")]


def finetune(
    base_folder: str | Path,
    train: Sequence[Example],
    replay: Sequence[Example],
    out_folder: str | Path,
    settings: FinetuneSettings | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> FinetuneResult:
    """Train LoRA adapters on ``train`` (+ a share of ``replay``), merge them, write a CTranslate2 model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import WhisperFeatureExtractor

    settings = settings or FinetuneSettings()
    if not train:
        raise InputError(
            "nothing to fine-tune on: approve some corrections first (captionbridge corrections list)"
        )
    started = time.perf_counter()
    device = _device(settings.device)
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    model, tokenizer = load_as_transformers(base_folder)
    features = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins, sampling_rate=SAMPLE_RATE)
    replay_count = min(len(replay), math.ceil(len(train) * settings.replay_share))
    examples = list(train) + rng.sample(list(replay), replay_count)
    lora = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
    )
    model = get_peft_model(model, lora).to(device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    pad = model.config.pad_token_id
    batches_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = max(1, settings.epochs * batches_per_epoch)
    losses: list[float] = []
    step = 0
    model.train()
    for epoch in range(settings.epochs):
        rng.shuffle(examples)
        for start in range(0, len(examples), settings.batch_size):
            batch = examples[start : start + settings.batch_size]
            inputs = features([e.audio for e in batch], sampling_rate=SAMPLE_RATE, return_tensors="pt")
            labels = [label_ids(tokenizer, e.text, e.language) for e in batch]
            width = max(len(x) for x in labels)
            label_tensor = torch.full((len(batch), width), -100, dtype=torch.long)
            for i, ids in enumerate(labels):
                label_tensor[i, : len(ids)] = torch.tensor(ids)
            decoder_inputs = torch.full((len(batch), width), pad, dtype=torch.long)
            decoder_inputs[:, 0] = model.config.decoder_start_token_id
            for i, ids in enumerate(labels):
                decoder_inputs[i, 1 : len(ids)] = torch.tensor(ids[:-1])
            out = model(
                input_features=inputs.input_features.to(device),
                decoder_input_ids=decoder_inputs.to(device),
                labels=label_tensor.to(device),
            )
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(out.loss.detach()))
            step += 1
            if progress:
                progress(
                    f"fine-tuning on {device} (epoch {epoch + 1}/{settings.epochs}, loss {losses[-1]:.3f})"
                    + (" - CPU training is slow" if device == "cpu" else ""),
                    step / total,
                )
    merged = model.merge_and_unload().to("cpu").eval()
    folder = save_as_ct2(merged, tokenizer, base_folder, out_folder, quantization=settings.quantization)
    return FinetuneResult(
        folder=Path(folder),
        steps=step,
        seconds=time.perf_counter() - started,
        device=device,
        train_examples=len(train),
        replay_examples=replay_count,
        losses=losses,
    )
