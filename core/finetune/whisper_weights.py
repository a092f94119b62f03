"""A CTranslate2 Whisper folder as a transformers ``WhisperForConditionalGeneration``, and back again.

The default offline model ships only in CTranslate2 form. ``load_as_transformers`` reads its ``model.bin``
(``ct2_weights``), undoes CTranslate2's layer fusion (self-attention q/k/v are one matrix, cross-attention k/v
another; Whisper's k projections have no bias, so CTranslate2 stored zeros there) and fills a transformers
model of the same shape, with a generation config taken from the folder's ``config.json`` (suppressed tokens,
language ids, alignment heads) and a fast tokenizer from its ``tokenizer.json``. ``save_as_ct2`` goes the
other way through CTranslate2's own ``TransformersConverter``, so a fine-tuned model runs in faster-whisper
like any other.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .ct2_weights import Ct2Weights, read_ct2_weights

# Files faster-whisper reads beside model.bin, copied into converted folders.
SIDE_FILES = ("tokenizer.json", "preprocessor_config.json")  # the converter writes the vocabulary itself


def _count_layers(weights: Ct2Weights, side: str) -> int:
    found = {
        int(m.group(1))
        for name in list(weights.variables) + list(weights.aliases)
        if (m := re.match(rf"{side}/layer_(\d+)/", name))
    }
    return max(found) + 1 if found else 0


def whisper_config(weights: Ct2Weights, ct2_config: dict):
    """The transformers ``WhisperConfig`` of a CTranslate2 Whisper model's weights."""
    from transformers import WhisperConfig

    if weights.spec != "WhisperSpec":
        raise InputError(
            f"not a Whisper model (the CTranslate2 file holds a {weights.spec or 'unknown'} model)"
        )
    conv1 = weights.get("encoder/conv1/weight")
    embeddings = weights.get("decoder/embeddings/weight")
    vocab, d_model = embeddings.shape
    eot = 50257 if vocab >= 51865 else 50256
    return WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=conv1.shape[1],
        d_model=d_model,
        encoder_layers=_count_layers(weights, "encoder"),
        decoder_layers=_count_layers(weights, "decoder"),
        encoder_attention_heads=int(weights.get("encoder/num_heads")),
        decoder_attention_heads=int(weights.get("decoder/num_heads")),
        encoder_ffn_dim=weights.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=weights.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=weights.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=weights.get("decoder/position_encodings/encodings").shape[0],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=eot + 1,
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
    )


def _state_dict(weights: Ct2Weights, config) -> dict[str, np.ndarray]:
    """transformers parameter name -> array, undoing CTranslate2's fusions."""
    d = config.d_model
    out: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        return np.asarray(weights.get(name), dtype=np.float32)

    def has(name: str) -> bool:
        return name in weights

    def linear(src: str, dst: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = get(f"{src}/weight")
        if bias:
            out[f"{dst}.bias"] = (
                get(f"{src}/bias")
                if has(f"{src}/bias")
                else np.zeros(out[f"{dst}.weight"].shape[0], np.float32)
            )

    def norm(src: str, dst: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = get(f"{src}/gamma"), get(f"{src}/beta")

    def split(src: str, dst: str, names: tuple[str, ...]) -> None:
        weight = get(f"{src}/weight")
        bias = get(f"{src}/bias") if has(f"{src}/bias") else np.zeros(weight.shape[0], np.float32)
        for i, name in enumerate(names):
            out[f"{dst}.{name}.weight"] = weight[i * d : (i + 1) * d]
            if name != "k_proj":  # Whisper's key projections have no bias (CTranslate2 stored zeros)
                out[f"{dst}.{name}.bias"] = bias[i * d : (i + 1) * d]

    for side in ("encoder", "decoder"):
        prefix = f"model.{side}"
        out[f"{prefix}.embed_positions.weight"] = get(f"{side}/position_encodings/encodings")
        norm(f"{side}/layer_norm", f"{prefix}.layer_norm")
        for i in range(config.encoder_layers if side == "encoder" else config.decoder_layers):
            src, dst = f"{side}/layer_{i}", f"{prefix}.layers.{i}"
            split(f"{src}/self_attention/linear_0", f"{dst}.self_attn", ("q_proj", "k_proj", "v_proj"))
            linear(f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
            norm(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
            if side == "decoder":
                linear(f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
                kv = get(f"{src}/attention/linear_1/weight")
                kv_bias = (
                    get(f"{src}/attention/linear_1/bias")
                    if has(f"{src}/attention/linear_1/bias")
                    else np.zeros(2 * d, np.float32)
                )
                out[f"{dst}.encoder_attn.k_proj.weight"] = kv[:d]
                out[f"{dst}.encoder_attn.v_proj.weight"], out[f"{dst}.encoder_attn.v_proj.bias"] = (
                    kv[d:],
                    kv_bias[d:],
                )
                linear(f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
                norm(f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
            linear(f"{src}/ffn/linear_0", f"{dst}.fc1")
            linear(f"{src}/ffn/linear_1", f"{dst}.fc2")
            norm(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    for conv in ("conv1", "conv2"):
        out[f"model.encoder.{conv}.weight"] = get(f"encoder/{conv}/weight")
        out[f"model.encoder.{conv}.bias"] = get(f"encoder/{conv}/bias")
    out["model.decoder.embed_tokens.weight"] = get("decoder/embeddings/weight")
    out["proj_out.weight"] = get("decoder/projection/weight")
    return out


def load_as_transformers(folder: str | Path):
    """(``WhisperForConditionalGeneration`` in float32, ``WhisperTokenizerFast``) from a CTranslate2
    folder."""
    import torch
    from transformers import GenerationConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    folder = Path(folder)
    weights = read_ct2_weights(folder)
    ct2_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if "decoder/projection/bias" in weights and np.any(weights.get("decoder/projection/bias")):
        raise InputError(
            f"{folder}: this model has an output bias that Whisper in transformers cannot hold, so it "
            "cannot be fine-tuned here"
        )
    if not np.array_equal(weights.get("decoder/projection/weight"), weights.get("decoder/embeddings/weight")):
        raise InputError(f"{folder}: the output projection is not tied to the embeddings as in Whisper")
    config = whisper_config(weights, ct2_config)
    model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in _state_dict(weights, config).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise InputError(
            f"{folder}: the weights do not fit Whisper (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.tie_weights()
    generation = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        max_length=config.max_target_positions,
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads") or []],
    )
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    lang_ids = ct2_config.get("lang_ids") or []
    if lang_ids:
        generation.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in lang_ids}
        generation.is_multilingual = True
    generation._from_model_config = False  # else transformers 5 regenerates it and lang_ids come out empty
    model.generation_config = generation
    return model.eval(), tokenizer


def save_as_ct2(
    model, tokenizer, source_folder: str | Path, out_folder: str | Path, quantization: str = "float16"
) -> Path:
    """Convert a transformers Whisper (e.g. a merged fine-tune) with CTranslate2's ``TransformersConverter``
    into ``out_folder``; the tokenizer and preprocessor files come from ``source_folder`` unchanged."""
    from ctranslate2.converters import TransformersConverter

    source_folder, out_folder = Path(source_folder), Path(out_folder)
    with tempfile.TemporaryDirectory(prefix="captionbridge-hf-") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        copy = [name for name in SIDE_FILES if (source_folder / name).is_file()]
        for name in copy:
            if not (Path(tmp) / name).exists():
                shutil.copy2(source_folder / name, Path(tmp) / name)
        if out_folder.exists():
            shutil.rmtree(out_folder)
        TransformersConverter(tmp, copy_files=[n for n in copy if n != "tokenizer.json"]).convert(
            str(out_folder), quantization=quantization
        )
    shutil.copy2(source_folder / "tokenizer.json", out_folder / "tokenizer.json")
    # Fine-tuning does not change the vocabulary: keep the source's exactly (the converter rebuilds it from
    # the tokenizer, and e.g. renames the empty entry 50256 by which CTranslate2 recognises a multilingual
    # model).
    source_vocab = [f for f in ("vocabulary.json", "vocabulary.txt") if (source_folder / f).is_file()]
    if source_vocab:
        for name in ("vocabulary.json", "vocabulary.txt"):
            (out_folder / name).unlink(missing_ok=True)
        shutil.copy2(source_folder / source_vocab[0], out_folder / source_vocab[0])
    return out_folder
