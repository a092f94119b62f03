"""The front end of CMU's en-us model in numpy: 13 MFCCs per 10 ms frame and the 1s_c_d_dd feature streams.

It computes what pocketsphinx's float front end does for this model's ``feat.params`` (``fe_sigproc.c``,
``feat.c``): 16 kHz int16-scaled samples, pre-emphasis 0.97, frames of 410 samples (25.625 ms) every 160
with a symmetric Hamming window, a 512-point power spectrum, 25 unit-area triangular mel filters from 130 to
6800 Hz (edges rounded to FFT bins), log (+1e-4), the unitary DCT-II to 13 cepstra, lifter 22. Then batch
cepstral mean normalisation over the piece and the three streams: cepstra, their ±2-frame difference, and
the difference of ±1-frame-shifted differences (ends padded by repeating the first and last frame).

Not done: pocketsphinx's ``remove_noise`` spectral subtraction (``feat.params`` switches it on). With it off
in both, pocketsphinx aligns the same words to the same frames from these cepstra (``process_cep``) as from
its own (tested); see ``benchmarks/results/word_timing_fast_aligner.md`` for what leaving it out costs.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
FRAME_SHIFT = 160
FRAME_SIZE = 410  # int(0.025625 * 16000 + 0.5)
NFFT = 512
ALPHA = 0.97
LOWER_HZ, UPPER_HZ, NFILT = 130.0, 6800.0, 25
NCEP = 13
LIFTER = 22
LOG_FLOOR = 1e-4


def _mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _melinv(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window (FRAME_SIZE,), mel filter bank (NFFT/2+1, NFILT), DCT with lifter (NFILT, NCEP)), float32."""
    i = np.arange(FRAME_SIZE // 2)
    half = 0.54 - 0.46 * np.cos(2 * np.pi * i / (FRAME_SIZE - 1.0))
    window = np.zeros(FRAME_SIZE)
    window[: FRAME_SIZE // 2] = half
    window[FRAME_SIZE - 1 - i] = half  # pocketsphinx windows the two halves with the same coefficients
    fftfreq = SAMPLE_RATE / NFFT
    melmin, melmax = _mel(np.float32(LOWER_HZ)), _mel(np.float32(UPPER_HZ))
    melbw = (melmax - melmin) / (NFILT + 1)
    bank = np.zeros((NFFT // 2 + 1, NFILT))
    for f in range(NFILT):
        freqs = [np.float32(_melinv((f + j) * melbw + melmin)) for j in range(3)]
        freqs = [int(fr / fftfreq + 0.5) * fftfreq for fr in freqs]  # round_filters
        for j in range(NFFT // 2 + 1):
            hz = j * fftfreq
            if hz < freqs[0]:
                continue
            if hz > freqs[2] or j == NFFT // 2:
                break
            lo = (hz - freqs[0]) / (freqs[1] - freqs[0])
            hi = (freqs[2] - hz) / (freqs[2] - freqs[1])
            scale = 2 / (freqs[2] - freqs[0])  # unit area
            bank[j, f] = min(lo, hi) * scale
    k = np.arange(NCEP)[None, :]
    j = np.arange(NFILT)[:, None]
    dct = np.cos(np.pi / NFILT * k * (j + 0.5)) * np.sqrt(2.0 / NFILT)
    dct[:, 0] = np.sqrt(1.0 / NFILT)
    lifter = 1 + LIFTER / 2 * np.sin(np.arange(NCEP) * np.pi / LIFTER)
    return window.astype(np.float32), bank.astype(np.float32), (dct * lifter[None, :]).astype(np.float32)


def n_frames(n_samples: int) -> int:
    """Frames pocketsphinx makes of a whole utterance: full frames, plus one zero-padded for a remainder."""
    if n_samples < FRAME_SIZE:
        return 1 if n_samples else 0
    full = 1 + (n_samples - FRAME_SIZE) // FRAME_SHIFT
    return full + (1 if (n_samples - FRAME_SIZE) % FRAME_SHIFT else 0)


def cepstra(samples: np.ndarray, dither: bool = False) -> np.ndarray:
    """(frames, 13) MFCCs of mono 16 kHz audio (floats in [-1, 1], or int16 values); ``dither`` adds 1 to a
    quarter of the samples (sphinx's ``-dither``, seeded so the result is always the same)."""
    x = np.asarray(samples)
    if x.dtype != np.int16:
        x = (np.clip(x.astype(np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)  # as pocketsphinx is fed
    x = x.astype(np.float32)
    if dither:
        x = x + (np.random.default_rng(0).random(len(x)) < 0.25).astype(np.float32)
    n = n_frames(len(x))
    if n == 0:
        return np.zeros((0, NCEP), np.float32)
    emph = np.empty_like(x)
    emph[0] = x[0]
    emph[1:] = x[1:] - ALPHA * x[:-1]
    need = (n - 1) * FRAME_SHIFT + FRAME_SIZE
    if need > len(emph):
        emph = np.concatenate([emph, np.zeros(need - len(emph), np.float32)])
    window, bank, dct = _tables()
    frames = np.lib.stride_tricks.as_strided(
        emph, shape=(n, FRAME_SIZE), strides=(emph.strides[0] * FRAME_SHIFT, emph.strides[0])
    )
    spec = np.fft.rfft(frames * window, NFFT)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ bank
    if REMOVE_NOISE:
        mel = remove_noise(mel)
    logmel = np.log(mel + np.float32(LOG_FLOOR))
    return logmel @ dct


REMOVE_NOISE = True
# pocketsphinx's noise removal (fe_noise.c): smoothed power, a lower envelope as the noise estimate, temporal
# masking, a gain per filter smoothed over +-4 filters
LAMBDA_POWER, LAMBDA_A, LAMBDA_B, LAMBDA_T, MU_T, MAX_GAIN, SMOOTH = 0.7, 0.995, 0.5, 0.85, 0.2, 20.0, 4
POWER_TAPS = 64


def remove_noise(mel: np.ndarray) -> np.ndarray:
    """Mel power spectra (frames, filters) with pocketsphinx's spectral noise removal applied, from a fresh
    noise estimate (as after ``start_stream``). Equal to ``fe_noise.c``'s per-frame loop: the linear
    smoothing runs as one filter, the temporal masking as a running maximum in logs, and only the two
    asymmetric envelopes (noise and floor) step frame by frame. (scipy's lfilter would do the smoothing too,
    but importing scipy.signal costs 0.6 s of CPU.)"""
    mel = np.asarray(mel, np.float64)
    n, nf = mel.shape
    # power_t = LAMBDA_POWER * power_{t-1} + (1 - LAMBDA_POWER) * mel_t from power_{-1} = mel_0, as a 64-tap
    # filter (LAMBDA_POWER ** 64 ~ 1e-10: what is cut off is below float precision)
    taps = (1 - LAMBDA_POWER) * LAMBDA_POWER ** np.arange(POWER_TAPS)
    padded = np.concatenate([np.repeat(mel[:1], POWER_TAPS, axis=0), mel])
    windows = np.lib.stride_tricks.sliding_window_view(padded[1:], POWER_TAPS, axis=0)  # (n, nf, taps)
    power = windows @ taps[::-1] + LAMBDA_POWER**POWER_TAPS * mel[0]
    noise = mel[0] / MAX_GAIN
    floor = mel[0] / MAX_GAIN
    coef = np.array([1 - LAMBDA_B, 1 - LAMBDA_A])  # falling, rising
    signal = np.empty_like(mel)
    floors = np.empty_like(mel)
    d = np.empty(nf)
    for t in range(n):
        p = power[t]
        np.subtract(p, noise, out=d)
        noise += d * coef[(d >= 0).view(np.uint8)]
        s = np.maximum(p - noise, 1.0)
        np.subtract(s, floor, out=d)
        floor += d * coef[(d >= 0).view(np.uint8)]
        signal[t] = s
        floors[t] = floor
    # temporal masking: peak_t = max(LAMBDA_T * peak_{t-1}, s_t) from 0, i.e. a running maximum in logs; a
    # frame below LAMBDA_T times the decayed peak of the frames before it is set to MU_T times that
    ramp = np.arange(n)[:, None] * np.log(LAMBDA_T)
    peak = np.exp(np.maximum.accumulate(np.log(signal) - ramp, axis=0) + ramp)
    decayed = np.vstack([np.zeros((1, nf)), peak[:-1] * LAMBDA_T])
    signal = np.where(signal < LAMBDA_T * decayed, decayed * MU_T, signal)
    signal = np.maximum(signal, floors)
    with np.errstate(divide="ignore"):  # digital silence: no power, the largest gain (as pocketsphinx)
        gains = np.clip(signal / power, 1.0 / MAX_GAIN, MAX_GAIN)
    return (mel * (gains @ _smoothing(nf))).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _smoothing(nf: int) -> np.ndarray:
    """(nf, nf): each filter's gain is the mean of the gains of the filters within SMOOTH of it."""
    out = np.zeros((nf, nf))
    for i in range(nf):
        lo, hi = max(i - SMOOTH, 0), min(i + SMOOTH, nf - 1)
        out[lo : hi + 1, i] = 1.0 / (hi - lo + 1)
    return out


def features(cep: np.ndarray) -> np.ndarray:
    """(frames, 39): batch-CMN cepstra, deltas (c[t+2] - c[t-2]) and double deltas ((c[t+3] - c[t-1]) -
    (c[t+1] - c[t-3])), as pocketsphinx's 1s_c_d_dd."""
    c = cep - cep.mean(axis=0, keepdims=True)
    n = len(c)
    p = np.concatenate([np.repeat(c[:1], 3, axis=0), c, np.repeat(c[-1:], 3, axis=0)])
    at = lambda k: p[3 + k : 3 + k + n]  # noqa: E731
    d = at(2) - at(-2)
    dd = (at(3) - at(-1)) - (at(1) - at(-3))
    return np.concatenate([c, d, dd], axis=1).astype(np.float32)
