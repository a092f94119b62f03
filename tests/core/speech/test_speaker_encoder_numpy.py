"""The voice encoder in numpy on CPU (no torch import): the same embeddings and diarization as resemblyzer's
network in torch, and its checkpoint reader refuses anything but a checkpoint of plain tensors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from captionbridge.core.model import Word
from captionbridge.core.speech import speakers as sp
from captionbridge.core.speech.checkpoint import CheckpointError, read_checkpoint


@pytest.fixture(scope="module")
def numpy_encoder():
    return sp.SpeakerEncoder("cpu")


@pytest.fixture(scope="module")
def torch_encoder():
    return sp.SpeakerEncoder("cpu", backend="torch")


def words_of(conv) -> list[Word]:
    return [Word(w.text, w.start, w.end) for w in conv.words]


def test_cpu_encoder_is_numpy(numpy_encoder):
    assert numpy_encoder.backend == "numpy"
    assert numpy_encoder.device == "cpu"


def test_a_gpu_asked_for_without_torch_runs_on_cpu(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    encoder = sp.SpeakerEncoder("cuda")
    assert (encoder.backend, encoder.device) == ("numpy", "cpu")


def test_numpy_embeddings_equal_torchs_on_real_speech_windows(two_voices, numpy_encoder, torch_encoder):
    windows = sp.speech_windows(words_of(two_voices))
    assert len(windows) >= 20 and min(w.duration for w in windows) < 1.0 < max(w.duration for w in windows)
    mels = [sp.mel_spectrogram(sp.window_audio(two_voices.samples, w)) for w in windows]
    mine = numpy_encoder.embed_mels(mels)
    theirs = torch_encoder.embed_mels(mels)
    cosine = (mine * theirs).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    # per partial too (short windows one partial of their own length, long ones several of 1.6 s)
    partials = [m[:n] for m in mels for n in (len(m), 37)]
    cos_partials = (numpy_encoder._forward(partials) * torch_encoder._forward(partials)).sum(axis=1)
    assert cos_partials.min() >= 0.9999


def test_diarization_is_unchanged_by_the_numpy_encoder(conversations_module, numpy_encoder, torch_encoder):
    conv = conversations_module.make_conversation(
        3, seed=11, turns=12, voices=["en-us+m3", "en-us+f2", "en-us+m7"]
    )
    for mode in ("auto", 3):
        a = sp.diarize(conv.samples, words_of(conv), mode, encoder=numpy_encoder)
        b = sp.diarize(conv.samples, words_of(conv), mode, encoder=torch_encoder)
        assert [w.speaker for w in a.words] == [w.speaker for w in b.words]
        assert a.speakers == b.speakers
        for sid in a.speakers:
            assert float(np.dot(a.voices[sid], b.voices[sid])) >= 0.9999


def test_cpu_stage_never_imports_torch():
    """The numpy path reads pretrained.pt and embeds without importing torch (its import was half the stage's
    CPU time), also with device "auto" on a machine without a GPU."""
    code = (
        "import sys, numpy as np\n"
        "from captionbridge.core.speech import speakers as sp\n"
        "import ctranslate2\n"
        "assert ctranslate2.get_cuda_device_count() == 0, 'this check is for a machine without a GPU'\n"
        "enc = sp.load_encoder('auto')\n"
        "e = enc.embed([np.random.default_rng(0).standard_normal(24000).astype('float32') * 0.1])\n"
        "assert e.shape == (1, 256) and abs(float(np.linalg.norm(e)) - 1) < 1e-4\n"
        "assert enc.backend == 'numpy', enc.backend\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if "this check is for a machine without a GPU" in done.stderr:
        pytest.skip("a CUDA GPU is present: auto takes torch there")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_reader_gives_torchs_tensors_in_both_formats(tmp_path):
    import torch

    path = sp.encoder_weights_path()
    mine = read_checkpoint(path)["model_state"]
    theirs = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    assert set(mine) == set(theirs)
    for name, value in theirs.items():
        assert np.array_equal(mine[name], value.numpy()), name
    # the zip format (torch >= 1.6), with a non-contiguous view and a shared storage
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {"model_state": {"a": base, "b": base.t(), "c": base[1:, 2:4], "d": torch.tensor([3, 4])}}
    torch.save(state, tmp_path / "new.pt")
    got = read_checkpoint(tmp_path / "new.pt")["model_state"]
    for name, value in state["model_state"].items():
        assert np.array_equal(got[name], value.numpy()), name
        assert got[name].dtype == value.numpy().dtype


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _legacy_with(obj) -> bytes:
    head = pickle.dumps(sp_magic()) + pickle.dumps(1001) + pickle.dumps({"little_endian": True})
    return head + pickle.dumps(obj, protocol=2) + pickle.dumps([])


def sp_magic():
    from captionbridge.core.speech.checkpoint import LEGACY_MAGIC

    return LEGACY_MAGIC


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda real: real[: len(real) // 2], "ends inside storage"),
        (lambda real: b"\x00" * 4096, "damaged"),
        (lambda real: b"", "damaged"),
        (lambda real: b"this is not a checkpoint at all, it is text\n" * 20, "damaged"),
        (lambda real: pickle.dumps({"model_state": {}}), "no magic number"),
        (lambda real: _legacy_with({"model_state": _Payload()}), "posix.system|nt.system|os.system"),
        (lambda real: _legacy_with({"model_state": {"lstm.weight_ih_l0": 1}}), "weight_ih_l0 is missing"),
    ],
)
def test_a_damaged_or_foreign_model_file_is_refused_clearly(tmp_path, monkeypatch, make, needle):
    monkeypatch.chdir(tmp_path)
    real = sp.encoder_weights_path().read_bytes()
    bad = tmp_path / "pretrained.pt"
    bad.write_bytes(make(real))
    with pytest.raises(sp.SpeakerModelMissing) as caught:
        sp.SpeakerEncoder("cpu", weights=bad)
    message = str(caught.value)
    assert str(bad) in message and "pip install --force-reinstall --no-deps resemblyzer==0.1.4" in message
    assert "\n" not in message
    import re

    assert re.search(needle, message), message
    assert not (tmp_path / "PWNED").exists()  # the pickle's code never ran


def test_a_checkpoint_of_another_network_is_refused(tmp_path):
    import torch

    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(8, 3)}}, tmp_path / "other.pt")
    with pytest.raises(sp.SpeakerModelMissing, match=r"weight_ih_l0 is shaped \(8, 3\), not \(1024, 40\)"):
        sp.SpeakerEncoder("cpu", weights=tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"(__builtin__|builtins)\.eval"):
        (tmp_path / "evil.pt").write_bytes(_legacy_with({"x": _Eval()}))
        read_checkpoint(tmp_path / "evil.pt")


class _Eval:
    def __reduce__(self):
        return (eval, ("1+1",))
