"""Audio on the wire: 16 kHz mono, 16-bit FLAC, named by the sha256 of its PCM (the same audio rendered in two
bays has one name, whatever FLAC encoder either bay has)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import soundfile as sf

from ..errors import InputError
from ..speech.transcribe import SAMPLE_RATE


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, the way the engine's decoder made them (x 32768, rounded,
    clipped)."""
    data = np.asarray(samples, dtype=np.float32)
    return np.clip(np.round(data * 32768.0), -32768, 32767).astype(np.int16)


def pcm_hash(pcm: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pcm, dtype="<i2").tobytes()).hexdigest()


def encode_flac(samples: np.ndarray) -> tuple[bytes, str]:
    """(FLAC bytes, PCM hash) of mono float samples at 16 kHz."""
    pcm = to_pcm16(samples)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue(), pcm_hash(pcm)


def decode_flac(data: bytes, expected_hash: str | None = None) -> np.ndarray:
    """Mono float32 samples of an uploaded FLAC; checks rate, channels and (when given) the PCM hash."""
    try:
        pcm, rate = sf.read(io.BytesIO(data), dtype="int16", always_2d=False)
    except Exception as exc:  # libsndfile raises its own error types
        raise InputError(f"the uploaded audio is not a readable FLAC file: {exc}") from exc
    if rate != SAMPLE_RATE or pcm.ndim != 1:
        raise InputError(
            f"the uploaded audio must be 16 kHz mono FLAC, got {rate} Hz with "
            f"{1 if pcm.ndim == 1 else pcm.shape[1]} channel(s)"
        )
    if expected_hash is not None and pcm_hash(pcm) != expected_hash:
        raise InputError(
            "the uploaded audio does not match the hash it was sent under (corrupted on the way?)"
        )
    return pcm.astype(np.float32) / 32768.0
