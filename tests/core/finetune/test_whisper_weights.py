"""core.finetune: a CTranslate2 Whisper read back into transformers weights and converted again, unchanged."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from fixtures.paths import shared_file
from fixtures.tiny_whisper import build_tiny_whisper

from captionbridge.core.errors import InputError
from captionbridge.core.finetune.ct2_weights import read_ct2_weights
from captionbridge.core.finetune.whisper_weights import load_as_transformers, save_as_ct2


@pytest.fixture(scope="module")
def tiny_plain(tmp_path_factory):
    """A tiny Whisper shaped exactly like a transformers one (no output bias), with non-zero biases everywhere
    Whisper has them, so a bias mapped to the wrong place shows."""
    folder = build_tiny_whisper(tmp_path_factory.mktemp("tiny-plain"), word_like=False)
    return folder


def _transcribe(folder, audio):
    from faster_whisper import WhisperModel

    model = WhisperModel(str(folder), device="cpu", compute_type="float32")
    segments, _ = model.transcribe(
        audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        vad_filter=False,
        without_timestamps=True,
        max_new_tokens=20,
    )
    return [tuple(s.tokens) for s in segments]


def test_every_variable_survives_the_round_trip(tiny_plain, tmp_path):
    model, tokenizer = load_as_transformers(tiny_plain)
    assert (
        model.config.d_model == 64 and model.config.encoder_layers == 2 and model.config.decoder_layers == 2
    )
    assert model.config.encoder_attention_heads == 2 and model.config.num_mel_bins == 80
    back = save_as_ct2(model, tokenizer, tiny_plain, tmp_path / "back", quantization="float32")
    original, again = read_ct2_weights(tiny_plain), read_ct2_weights(back)
    names = set(original.variables) | set(original.aliases)
    assert names == set(again.variables) | set(again.aliases)
    different = [n for n in sorted(names) if not np.array_equal(original.get(n), again.get(n))]
    assert different == []
    assert (back / "config.json").read_text() == (tiny_plain / "config.json").read_text()
    assert (back / "vocabulary.json").read_text() == (tiny_plain / "vocabulary.json").read_text()


def test_the_round_trip_transcribes_the_same(tiny_plain, tmp_path):
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    model, tokenizer = load_as_transformers(tiny_plain)
    back = save_as_ct2(model, tokenizer, tiny_plain, tmp_path / "back", quantization="float32")
    assert _transcribe(back, audio) == _transcribe(tiny_plain, audio)


def test_mapping_moves_a_perturbed_weight_to_the_same_place(tiny_plain, tmp_path):
    """A change made in transformers' q projection of decoder layer 1 lands in CTranslate2's fused matrix rows
    0..d of that layer, and nowhere else."""
    import torch

    model, tokenizer = load_as_transformers(tiny_plain)
    with torch.no_grad():
        model.model.decoder.layers[1].self_attn.q_proj.weight[3, 5] += 1.0
        model.model.decoder.layers[0].encoder_attn.v_proj.bias[7] += 2.0
    back = read_ct2_weights(save_as_ct2(model, tokenizer, tiny_plain, tmp_path / "b", quantization="float32"))
    original = read_ct2_weights(tiny_plain)
    changed = [
        n
        for n in set(original.variables) | set(original.aliases)
        if not np.array_equal(original.get(n), back.get(n))
    ]
    assert sorted(changed) == [
        "decoder/layer_0/attention/linear_1/bias",
        "decoder/layer_1/self_attention/linear_0/weight",
    ]
    delta = back.get("decoder/layer_1/self_attention/linear_0/weight") - original.get(
        "decoder/layer_1/self_attention/linear_0/weight"
    )
    assert delta[3, 5] == pytest.approx(1.0) and np.count_nonzero(delta) == 1
    bias_delta = back.get("decoder/layer_0/attention/linear_1/bias") - original.get(
        "decoder/layer_0/attention/linear_1/bias"
    )
    assert bias_delta[64 + 7] == pytest.approx(2.0) and np.count_nonzero(bias_delta) == 1


def test_unreadable_models_are_refused_clearly(tiny_plain, tmp_path):
    truncated = tmp_path / "t" / "model.bin"
    truncated.parent.mkdir()
    truncated.write_bytes((tiny_plain / "model.bin").read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated"):
        read_ct2_weights(truncated)
    garbage = tmp_path / "g.bin"
    garbage.write_bytes(struct.pack("<I", 99) + b"\0" * 20)
    with pytest.raises(InputError, match="not a CTranslate2 model"):
        read_ct2_weights(garbage)
    with pytest.raises(InputError, match="cannot read"):
        read_ct2_weights(tmp_path / "missing")


def test_a_model_with_an_output_bias_cannot_be_fine_tuned(tmp_path):
    biased = build_tiny_whisper(tmp_path / "biased", word_like=True)
    with pytest.raises(InputError, match="output bias"):
        load_as_transformers(biased)


@pytest.mark.slow
def test_the_packaged_base_round_trips_to_the_same_transcript(base_whisper_model, tmp_path):
    """The offline default model itself: read back, converted again (float16, as shipped), same words on real
    speech."""
    from faster_whisper import decode_audio

    audio = decode_audio(str(shared_file("jfk.flac")), sampling_rate=16000)
    model, tokenizer = load_as_transformers(base_whisper_model)
    back = save_as_ct2(model, tokenizer, base_whisper_model, tmp_path / "base-back", quantization="float16")
    original, again = read_ct2_weights(base_whisper_model), read_ct2_weights(back)
    assert all(np.array_equal(original.get(n), again.get(n)) for n in original.variables)
    assert _transcribe(back, audio) == _transcribe(base_whisper_model, audio)
