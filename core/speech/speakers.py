"""Who said what: speaker diarization over the words already timed, offline.

The voice model is resemblyzer's pretrained speaker encoder (a 3-layer LSTM over 40 mel bands, 256-dimensional
L2-normed embeddings, Apache-2.0). Its 17 MB ``pretrained.pt`` ships inside the ``resemblyzer`` wheel, so
nothing is downloaded. Only the weights are taken from the package: the network is rebuilt here, in numpy on
CPU (the weights read by ``checkpoint.read_checkpoint``, so torch is never imported: its import cost as much
as the stage's own work) and in torch on a CUDA GPU. The mel spectrogram is computed with numpy exactly as
resemblyzer's ``wav_to_mel_spectrogram`` does (librosa's slaney mel filters, 25 ms Hann window, 10 ms hop),
so neither librosa, webrtcvad nor resemblyzer's own audio code (which breaks on numpy 2) is imported. Install
it with ``pip install --no-deps resemblyzer==0.1.4``: its declared dependencies would build ``webrtcvad``
from source and install the obsolete ``typing`` backport, neither of which is used.

Steps (``diarize``):

1. speech windows from the word timings: runs of words cut at pauses, long runs cut at word boundaries into
   windows of about 1.5 s (a window never splits a word, so a speaker turn never does either);
2. per window, from one mel spectrogram: a voice embedding (partials of 1.6 s averaged, as resemblyzer does;
   shorter windows are embedded whole; the LSTM on one CPU thread) and the cepstra of its loud frames; the
   audio is read CHUNK_SECONDS at a time (``label_speakers`` renders only those spans of the timeline);
3. clustering of the windows at least ``RELIABLE_SECONDS`` long: average linkage on cosine distance, cut at
   ``N`` clusters (``speakers=N``); in auto mode cut finer (``FINE_THRESHOLD``), clusters with too little
   speech merged into their nearest, then merged pairwise while BIC on full-covariance Gaussians of their
   cepstra finds one voice (``_bic_merge``); centroids refined and every window assigned to the nearest;
   auto mode then adds someone who only said short things when their windows are unexplained by every
   speaker's Gaussian (``_add_low_talkers``), and windows under ``RELIABLE_SECONDS`` go to the speaker whose
   Gaussian explains their frames best (``_assign_short``);
4. smoothing: a short window cut from one run of speech (no pause either side) between two windows of one
   other speaker, with little evidence for its own speaker, takes theirs;
5. ids ``S1``, ``S2`` ... in order of first speech, or the ids of a previous run's voices (``previous``) when
   a cluster matches one (cosine similarity >= ``MATCH_SIMILARITY``), so a re-caption of the same media keeps
   them;
6. corrections approved in review (``previous["corrected"]``, written by core/corrections/speakers.py): a
   window whose audio is a corrected window's (``SAME_AUDIO_SIMILARITY``) takes the approved speakers, word
   by word, and the voices are recomputed from the final assignment.

Thresholds were tuned on benchmarks/conversations.py seeds 101-160 only (``bench_speakers.py --set tune``;
``BIC_STRONG`` on seeds 101-200, ``bench_speakers_bic_strong.py``)
and jfk.flac checked; bench_speakers.py measures seeds 201-224.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelNotAvailableError
from ..model import Word
from .blas import blas_threads

SAMPLE_RATE = 16000
N_MELS = 40
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s partial utterances, as resemblyzer
PARTIAL_STEP = 80  # resemblyzer's rate 1.3/s is a ~77 frame step; 80 keeps windows on 0.8 s
EMBED_DIM = 256
CPU_THREADS = 1  # BLAS (numpy) or torch threads for the LSTM on CPU: its small per-step matrices gain little
# from more, and on a busy machine extra threads spin (2 torch threads took 1.5-6x the CPU time of one under
# load; bench_speakers.py)

WINDOW_TARGET = 1.5  # seconds of speech per embedding window
WINDOW_MAX = 2.4
PAUSE_SPLIT = 0.1  # a pause this long always ends a window (quick exchanges leave ~0.1 s between turns)
RELIABLE_SECONDS = 1.0  # windows at least this long are clustered; shorter ones are assigned afterwards
AUTO_THRESHOLD = (
    0.30  # cosine distance: clusters closer than this are one voice unless BIC parts them (see _bic_merge)
)
MIN_SPEAKER_SHARE = (
    0.04  # auto: a cluster with less of the speech (and under MIN_SPEAKER_SECONDS) is merged away
)
MIN_SPEAKER_SECONDS = 3.0
MAX_AUTO_SPEAKERS = 12
FINE_THRESHOLD = 0.25  # auto: average linkage stops here (pure clusters, some voices in two) ...
BIC_PENALTY = 1.8  # ... then clusters merge while BIC finds one voice in two (see _bic_merge)
BIC_MIN_FRAMES = 50
BIC_APART_SECONDS = 15.0  # (see _bic_merge)
BIC_STRONG = 2.08  # (see _bic_merge; seeds 101-200: forced merges of one voice reached 2.03, of two 2.13)
CEPSTRA = 19
LOUD_FRAMES = 6.0
LOW_TALKER_LIKELIHOOD = -8.0  # auto: a window whose cepstra are this much less likely under every speaker's
# Gaussian (mean log-likelihood per frame, against that speaker's median window) is unexplained ...
LOW_TALKER_SIMILARITY = 0.7  # ... unexplained windows alike among themselves are a new speaker when their
# voice is less like every other than this (or their pooled frames are unexplained too),
LOW_TALKER_SECONDS = 0.8  # ... with this much speech
LOW_TALKER_WINDOWS = 2  # ... in at least this many windows
MATCH_SIMILARITY = 0.75  # a new voice is a previous run's speaker from this cosine similarity up
SMOOTH_SECONDS = 1.0  # windows shorter than this may be smoothed into their neighbours' speaker
SMOOTH_MARGIN = 0.08  # ... when their own speaker is no more than this much more similar than the neighbours'
SMOOTH_PAUSE = PAUSE_SPLIT  # ... and no pause this long separates them from the neighbours


class SpeakerModelMissing(ModelNotAvailableError):
    """The speaker encoder's weights are not installed."""


def encoder_weights_path() -> Path:
    """Where resemblyzer's ``pretrained.pt`` is, without importing resemblyzer (whose imports need
    librosa)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise SpeakerModelMissing(
            "speaker labels need the offline voice model: pip install --no-deps "
            "resemblyzer==0.1.4 (17 MB, no download at run time), or run without --speakers"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise SpeakerModelMissing(
            f"resemblyzer is installed but its voice model {path} is missing: reinstall it "
            "with pip install --force-reinstall --no-deps resemblyzer==0.1.4"
        )
    return path


# -- mel spectrogram (resemblyzer's, in numpy)
# --------------------------------------------------------------------
def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels) (slaney scale and area normalisation)."""
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    return (weights * enorm[:, None]).astype(np.float32)


_MEL = None
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram of 16 kHz samples, as resemblyzer's ``wav_to_mel_spectrogram``
    (librosa.feature.melspectrogram with n_fft=400, hop=160, centred frames, zero padding)."""
    global _MEL
    if _MEL is None:
        _MEL = mel_filters()
    wav = np.asarray(wav, dtype=np.float32)
    padded = np.pad(wav, (N_FFT // 2, N_FFT // 2))
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    if n_frames < 1:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    spec = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    return (spec.astype(np.float32) @ _MEL.T).astype(np.float32)


# -- the encoder
# --------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    """A CUDA GPU torch can use, asking ctranslate2 (already loaded for Whisper) first so that a machine
    without one never imports torch."""
    try:
        import ctranslate2

        if ctranslate2.get_cuda_device_count() < 1:
            return False
    except Exception:  # noqa: BLE001 - no ctranslate2, or no CUDA runtime for it: ask torch
        pass
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


_WEIGHT_SHAPES = {
    **{
        f"lstm.{name}_l{layer}": shape
        for layer in range(3)
        for name, shape in (
            ("weight_ih", (4 * EMBED_DIM, N_MELS if layer == 0 else EMBED_DIM)),
            ("weight_hh", (4 * EMBED_DIM, EMBED_DIM)),
            ("bias_ih", (4 * EMBED_DIM,)),
            ("bias_hh", (4 * EMBED_DIM,)),
        )
    },
    "linear.weight": (EMBED_DIM, EMBED_DIM),
    "linear.bias": (EMBED_DIM,),
}


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """The encoder's float32 weights from resemblyzer's ``pretrained.pt`` (a torch checkpoint) without torch:
    anything else (a foreign or damaged file, code in its pickle, other shapes) is SpeakerModelMissing."""
    from .checkpoint import CheckpointError, read_checkpoint

    fix = "reinstall it with pip install --force-reinstall --no-deps resemblyzer==0.1.4"
    try:
        state = read_checkpoint(path)
    except OSError as exc:
        raise SpeakerModelMissing(f"the voice model {path} could not be read ({exc}): {fix}") from None
    except CheckpointError as exc:
        raise SpeakerModelMissing(
            f"the voice model {path} is not resemblyzer's encoder ({exc}): {fix}"
        ) from None
    state = state.get("model_state") if isinstance(state, dict) else None
    if not isinstance(state, dict):
        raise SpeakerModelMissing(
            f"the voice model {path} has no model_state (not resemblyzer's encoder): {fix}"
        )
    out = {}
    for name, shape in _WEIGHT_SHAPES.items():
        value = state.get(name)
        if not isinstance(value, np.ndarray) or value.shape != shape:
            got = "missing" if not isinstance(value, np.ndarray) else f"shaped {value.shape}"
            raise SpeakerModelMissing(
                f"the voice model {path} is not resemblyzer's encoder ({name} is {got}, not {shape}): {fix}"
            )
        if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            raise SpeakerModelMissing(f"the voice model {path} has damaged weights ({name}): {fix}")
        out[name] = value.astype(np.float32)
    return out


NUMPY_BATCH = 64  # partials per LSTM pass in numpy (the input projections of a pass: 64 x 200 x 1024 floats)


class _NumpyEncoder:
    """resemblyzer's network (3-layer LSTM 40 -> 256, the last hidden state through Linear 256 -> 256, ReLU,
    L2 norm) in float32 numpy: per layer the input projection of every timestep is one matmul, then the
    recurrence; partials sorted by length, so at each step the ones still running are a prefix of the batch
    (packed-sequence semantics: every partial's state is its own last frame's)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.layers = [
            (
                np.ascontiguousarray(weights[f"lstm.weight_ih_l{k}"].T),
                np.ascontiguousarray(weights[f"lstm.weight_hh_l{k}"].T),
                weights[f"lstm.bias_ih_l{k}"] + weights[f"lstm.bias_hh_l{k}"],
            )
            for k in range(3)
        ]
        self.linear_t = np.ascontiguousarray(weights["linear.weight"].T)
        self.linear_b = weights["linear.bias"]

    def forward(self, mels: list[np.ndarray], threads: int | None = None) -> np.ndarray:
        if not mels:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        lengths = np.array([len(m) for m in mels])
        order = np.argsort(-lengths, kind="stable")
        out = np.zeros((len(mels), EMBED_DIM), dtype=np.float32)
        with blas_threads(threads):
            for a in range(0, len(order), NUMPY_BATCH):
                batch = order[a : a + NUMPY_BATCH]
                out[batch] = self._batch([mels[i] for i in batch], lengths[batch])
        return out

    def _batch(self, mels: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
        """Partials sorted by length, longest first."""
        H = EMBED_DIM
        steps = int(lengths[0])
        x = np.zeros((steps, len(mels), N_MELS), dtype=np.float32)  # time-major
        for b, mel in enumerate(mels):
            x[: len(mel), b] = mel
        running = (lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)  # partials still going at step t
        h = np.zeros((len(mels), H), dtype=np.float32)
        for w_ih, w_hh, bias in self.layers:
            gates_in = (x.reshape(-1, x.shape[2]) @ w_ih + bias).reshape(steps, len(mels), 4 * H)
            h = np.zeros((len(mels), H), dtype=np.float32)
            c = np.zeros((len(mels), H), dtype=np.float32)
            seq = np.zeros((steps, len(mels), H), dtype=np.float32)
            for t in range(steps):
                n = int(running[t])
                g = gates_in[t, :n] + h[:n] @ w_hh
                sig = np.tanh(g * 0.5)  # sigmoid(x) = (tanh(x/2) + 1) / 2, without exp's overflow
                sig += 1.0
                sig *= 0.5
                c[:n] = sig[:, H : 2 * H] * c[:n] + sig[:, :H] * np.tanh(g[:, 2 * H : 3 * H])
                h[:n] = sig[:, 3 * H :] * np.tanh(c[:n])
                seq[t, :n] = h[:n]
            x = seq
        raw = np.maximum(h @ self.linear_t + self.linear_b, 0.0)
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9)


class SpeakerEncoder:
    """resemblyzer's voice encoder; ``embed`` takes windows of 16 kHz samples.

    On CPU the network runs in numpy (``backend="numpy"``, the weights read from ``pretrained.pt`` without
    torch: importing torch cost the stage as much CPU as its own work on a 1.5-minute clip); on CUDA in torch.
    ``device="auto"`` is CUDA when ctranslate2 sees a GPU and torch can use it, otherwise CPU (torch is not
    imported to find out on a machine without a GPU)."""

    def __init__(
        self,
        device: str = "auto",
        weights: str | Path | None = None,
        threads: int = CPU_THREADS,
        backend: str | None = None,
    ):
        path = Path(weights) if weights else encoder_weights_path()
        if device == "auto":
            device = "cuda" if _cuda_available() else "cpu"
        if backend is None and device != "cpu" and importlib.util.find_spec("torch") is None:
            device = "cpu"  # a GPU asked for (--device cuda, for Whisper) but no torch: the encoder on CPU
        backend = backend or ("numpy" if device == "cpu" else "torch")
        if backend not in ("numpy", "torch") or (backend == "numpy" and device != "cpu"):
            raise ValueError(f"no speaker encoder backend {backend!r} on {device}")
        self.backend = backend
        self.threads = threads
        if backend == "numpy":
            self.device = "cpu"
            self._net = _NumpyEncoder(_read_weights(path))
            return
        import torch
        from torch import nn

        self._torch_device = torch.device(device)
        self.device = str(self._torch_device)
        self.lstm = nn.LSTM(N_MELS, EMBED_DIM, 3, batch_first=True)
        self.linear = nn.Linear(EMBED_DIM, EMBED_DIM)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
            self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
            self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        except (OSError, KeyError, RuntimeError, TypeError, pickle.UnpicklingError) as exc:
            raise SpeakerModelMissing(
                f"the voice model {path} could not be loaded ({exc}): reinstall it with pip "
                "install --force-reinstall --no-deps resemblyzer==0.1.4"
            ) from exc
        self.lstm.to(self._torch_device).eval()
        self.linear.to(self._torch_device).eval()
        self._torch = torch

    def _forward(self, mels: list[np.ndarray]) -> np.ndarray:
        """Embeddings of mel sequences of any lengths (each to its own end: short ones are not padded with
        silence)."""
        if self.backend == "numpy":
            return self._net.forward(mels, self.threads)
        torch = self._torch
        from torch.nn.utils.rnn import pack_sequence

        out = []
        threads = torch.get_num_threads()
        if self._torch_device.type == "cpu" and self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.no_grad():
                for a in range(0, len(mels), 256):
                    batch = [torch.from_numpy(m) for m in mels[a : a + 256]]
                    packed = pack_sequence(batch, enforce_sorted=False).to(self._torch_device)
                    _, (hidden, _) = self.lstm(packed)
                    raw = torch.relu(self.linear(hidden[-1]))
                    out.append(
                        (raw / torch.clamp(torch.norm(raw, dim=1, keepdim=True), min=1e-9)).cpu().numpy()
                    )
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(out) if out else np.zeros((0, EMBED_DIM), dtype=np.float32)

    def embed(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normed embedding per window: the mean of its 1.6 s partials (one partial when shorter)."""
        return self.embed_mels([mel_spectrogram(wav) for wav in windows])

    def embed_mels(self, mels: Sequence[np.ndarray]) -> np.ndarray:
        """``embed`` of windows whose mel spectrograms (``mel_spectrogram``) are already computed."""
        partials: list[np.ndarray] = []
        owner: list[int] = []
        for k, mel in enumerate(mels):
            if len(mel) == 0:
                mel = np.zeros((1, N_MELS), dtype=np.float32)
            if len(mel) <= PARTIAL_FRAMES + PARTIAL_STEP // 2:
                partials.append(mel)
                owner.append(k)
                continue
            last = len(mel) - PARTIAL_FRAMES
            starts = list(range(0, last + 1, PARTIAL_STEP))
            if last - starts[-1] > PARTIAL_STEP // 2:
                starts.append(last)
            for s in starts:
                partials.append(np.ascontiguousarray(mel[s : s + PARTIAL_FRAMES]))
                owner.append(k)
        emb = self._forward(partials)
        out = np.zeros((len(mels), EMBED_DIM), dtype=np.float32)
        np.add.at(out, np.asarray(owner, dtype=int), emb)
        return _normed(out)


def _normed(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


_ENCODERS: dict[str, SpeakerEncoder] = {}


def load_encoder(device: str = "auto") -> SpeakerEncoder:
    """One encoder per device per process (loading takes ~0.3 s)."""
    if device not in _ENCODERS:
        _ENCODERS[device] = SpeakerEncoder(device)
    return _ENCODERS[device]


# -- windows
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Words ``first``..``last`` (inclusive indices into the word list) and the seconds they span."""

    first: int
    last: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def speech_windows(
    words: Sequence[Word],
    target: float = WINDOW_TARGET,
    longest: float = WINDOW_MAX,
    pause: float = PAUSE_SPLIT,
) -> list[Window]:
    """Words grouped into embedding windows: a pause of ``pause`` s ends one; a longer run is cut at word
    boundaries into windows of about ``target`` s (never over ``longest`` unless one word is), at its widest
    gaps. Every word is in exactly one window."""
    runs: list[list[int]] = []
    for k, w in enumerate(words):
        if runs and w.start - words[runs[-1][-1]].end < pause:
            runs[-1].append(k)
        else:
            runs.append([k])
    out: list[Window] = []
    for run in runs:
        start, end = words[run[0]].start, words[run[-1]].end
        pieces = max(1, round((end - start) / target))
        if end - start <= longest or len(run) == 1:
            pieces = 1
        cuts: list[int] = []  # positions in run where a new window starts
        if pieces > 1:
            for p in range(1, pieces):
                ideal = start + (end - start) * p / pieces
                best, best_cost = None, None
                for pos in range(1, len(run)):
                    if cuts and pos <= cuts[-1]:
                        continue
                    t = words[run[pos]].start
                    gap = t - words[run[pos - 1]].end
                    cost = abs(t - ideal) - 2.0 * gap
                    if best_cost is None or cost < best_cost:
                        best, best_cost = pos, cost
                if best is not None:
                    cuts.append(best)
        bounds = [0] + cuts + [len(run)]
        for a, b in zip(bounds, bounds[1:]):
            if a < b:
                out.append(Window(run[a], run[b - 1], words[run[a]].start, words[run[b - 1]].end))
    return out


WINDOW_PAD = 0.05  # seconds of audio either side of a window's words


def window_audio(
    samples: np.ndarray,
    window: Window,
    sample_rate: int = SAMPLE_RATE,
    pad: float = WINDOW_PAD,
    offset: int = 0,
) -> np.ndarray:
    """A window's samples (and ``pad`` s either side) from ``samples``, whose first sample is sample
    ``offset`` of the timeline."""
    a = max(0, int((window.start - pad) * sample_rate) - offset)
    b = min(len(samples), int(math.ceil((window.end + pad) * sample_rate)) - offset)
    return samples[a : max(a, b)]


def _chunks(windows: Sequence[Window], seconds: float | None = None) -> list[tuple[int, int]]:
    """Runs of consecutive windows (first, last index) spanning at most ``seconds`` (CHUNK_SECONDS) each."""
    seconds = CHUNK_SECONDS if seconds is None else seconds
    out: list[tuple[int, int]] = []
    for k, w in enumerate(windows):
        if out and w.end - windows[out[-1][0]].start <= seconds:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return out


# -- clustering
# ---------------------------------------------------------------------------------------------------
def _average_linkage(emb: np.ndarray, n_clusters: int | None, threshold: float | None) -> np.ndarray:
    """Labels 0..k-1 from average-linkage agglomerative clustering on cosine distance (scipy)."""
    n = len(emb)
    if n <= 1:
        return np.zeros(n, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    # (a window with no audio, e.g. past the end of the mix, embeds to zeros: its distances are 1, not NaN)
    dist = np.clip(np.nan_to_num(pdist(emb.astype(np.float64), metric="cosine"), nan=1.0), 0.0, 2.0)
    tree = linkage(dist, method="average")
    if n_clusters is not None:
        labels = fcluster(tree, t=min(n_clusters, n), criterion="maxclust")
    else:
        labels = fcluster(tree, t=threshold, criterion="distance")
    return np.unique(labels, return_inverse=True)[1]


def cepstra(mel: np.ndarray) -> np.ndarray:
    """(frames, CEPSTRA) cepstral coefficients 1..CEPSTRA (DCT-II of the log mel bands) of a window's frames
    within LOUD_FRAMES (natural log, about 26 dB) of its loudest: the voice's spectral envelope, for the BIC
    test between clusters."""
    if len(mel) == 0:
        return np.zeros((0, CEPSTRA), dtype=np.float32)
    log = np.log(mel.astype(np.float64) + 1e-6)
    loud = log.max(axis=1)
    return (log[loud > loud.max() - LOUD_FRAMES] @ _DCT).astype(np.float32)


# orthonormal DCT-II rows 1..CEPSTRA over the mel bands (scipy.fft.dct(type=2, norm="ortho") without the 0.2 s
# import of scipy.fft)
_DCT = (
    math.sqrt(2.0 / N_MELS)
    * np.cos(np.pi * np.arange(1, CEPSTRA + 1)[None, :] * (2 * np.arange(N_MELS)[:, None] + 1) / (2 * N_MELS))
).astype(np.float64)


def _bic_merge(
    labels: np.ndarray,
    feats: Sequence[np.ndarray],
    emb: np.ndarray,
    durations: np.ndarray,
    threshold: float = AUTO_THRESHOLD,
) -> np.ndarray:
    """Auto mode: clusters merged pairwise, the most alike first, while one full-covariance Gaussian over
    their cepstral frames explains them as well as two by the Bayesian information criterion (the gain of two
    models under BIC_PENALTY times BIC's parameter cost; Chen & Gopalakrishnan's test). Two clusters whose
    voice embeddings average linkage would join at ``threshold`` are merged whatever BIC says when one has
    under BIC_APART_SECONDS of speech: a few seconds of one voice can differ from the rest of it in
    cepstra alone (what is said), and one person split in two is worse than two similar voices joined;
    unless BIC's evidence for two voices is strong (ratio >= BIC_STRONG): two similar male voices, one of
    whom said little, were joined by the embedding rule alone and mixed in cues.
    Clusters with under BIC_MIN_FRAMES frames are left as they are."""
    labels = labels.copy()
    d = CEPSTRA
    # per window: frame count, sum and sum of outer products (a cluster's Gaussian from these, without
    # concatenating hours of frames for every pair)
    wide = [f.astype(np.float64) for f in feats]
    stats = [(len(f), f.sum(axis=0), f.T @ f) for f in wide]
    while int(labels.max()) >= 1:
        k = int(labels.max()) + 1
        members = [np.flatnonzero(labels == c) for c in range(k)]
        pooled = [
            (
                sum(stats[i][0] for i in m),
                sum((stats[i][1] for i in m), np.zeros(d)),
                sum((stats[i][2] for i in m), np.zeros((d, d))),
            )
            for m in members
        ]
        dets = [_logdet_of(*p) if p[0] >= BIC_MIN_FRAMES else None for p in pooled]
        seconds = [float(durations[m].sum()) for m in members]
        best = None
        for a, b in itertools.combinations(range(k), 2):
            ratio = None
            if dets[a] is not None and dets[b] is not None:
                (n1, s1, q1), (n2, s2, q2) = pooled[a], pooled[b]
                n = n1 + n2
                gain = 0.5 * (n * _logdet_of(n, s1 + s2, q1 + q2) - n1 * dets[a] - n2 * dets[b])
                ratio = gain / (0.5 * (d + d * (d + 1) / 2) * math.log(n))
            if min(seconds[a], seconds[b]) < BIC_APART_SECONDS and (ratio is None or ratio < BIC_STRONG):
                linkage = 1.0 - float((emb[members[a]] @ emb[members[b]].T).mean())
                if linkage < threshold:
                    best = (-math.inf, a, b) if best is None or -math.inf < best[0] else best
                    continue
            if ratio is None:
                continue
            if best is None or ratio < best[0]:
                best = (ratio, a, b)
        if best is None or best[0] >= BIC_PENALTY:
            break
        labels = np.where(labels == best[2], best[1], labels)
        labels = np.unique(labels, return_inverse=True)[1]
    return labels


def _logdet_of(n: int, total: np.ndarray, outer: np.ndarray) -> float:
    """``_logdet`` of frames given by their count, sum and sum of outer products."""
    mean = total / n
    cov = (outer - n * np.outer(mean, mean)) / max(n - 1, 1) + 1e-4 * np.eye(len(total))
    return float(np.linalg.slogdet(cov)[1])


def _centroids(emb: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    cent = np.zeros((k, emb.shape[1]), dtype=np.float32)
    for c in range(k):
        mask = labels == c
        if mask.any():
            cent[c] = (emb[mask] * weights[mask, None]).sum(axis=0)
    return _normed(cent)


@dataclass
class Diarization:
    """What ``diarize`` found: words with ``speaker`` set, the speakers' voices and how sure it was."""

    words: list[Word]
    speakers: list[str]  # ids in order of first speech
    voices: dict[str, list[float]] = field(
        default_factory=dict
    )  # id -> centroid embedding (for the next run)
    seconds: dict[str, float] = field(default_factory=dict)  # id -> seconds of speech
    windows: int = 0

    def profile(self) -> dict:
        """What a later run needs to keep the same ids (stored with the transcript cache)."""
        return {
            "speakers": [
                {
                    "id": s,
                    "voice": [round(float(x), 5) for x in self.voices[s]],
                    "seconds": round(self.seconds.get(s, 0.0), 2),
                }
                for s in self.speakers
            ]
        }


def parse_speakers(value: str | int | None) -> int | str | None:
    """``--speakers``: None/"off" -> None, "auto" -> "auto", "N" -> N (1..12). Anything else: InputError."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if text in ("", "off", "none", "0", "false"):
            return None
        if text == "auto":
            return "auto"
        try:
            number = int(text)
        except ValueError:
            raise InputError(
                f"--speakers {value!r} is not understood: use auto, off, or a number of speakers "
                f"from 1 to {MAX_AUTO_SPEAKERS}"
            ) from None
    if not 1 <= number <= MAX_AUTO_SPEAKERS:
        raise InputError(f"--speakers {number}: give 1 to {MAX_AUTO_SPEAKERS} speakers, or auto")
    return number


def parse_speaker_names(value: str | Sequence[str] | None) -> list[str]:
    """``--speaker-names "Ana,Ben"`` -> ["Ana", "Ben"] (names for S1, S2, ... in order)."""
    if value is None:
        return []
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value)]
    if any(not n for n in names):
        raise InputError(
            f'--speaker-names {value!r} has an empty name: give names separated by commas, e.g. "Ana,Ben"'
        )
    if len({n.casefold() for n in names}) != len(names):
        raise InputError(f"--speaker-names {value!r} gives one name twice: each speaker needs its own name")
    return names


def diarize(
    samples: np.ndarray,
    words: Sequence[Word],
    speakers: int | str = "auto",
    *,
    encoder: SpeakerEncoder | None = None,
    device: str = "auto",
    previous: dict | None = None,
    sample_rate: int = SAMPLE_RATE,
    threshold: float = AUTO_THRESHOLD,
) -> Diarization:
    """Speaker ids for ``words`` (timed in the seconds of ``samples``, 16 kHz mono).

    ``speakers`` is a number of speakers or "auto"; ``previous`` is an earlier run's
    ``Diarization.profile()``.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError("diarize expects 16 kHz samples")

    def audio(lo: int, hi: int) -> np.ndarray:
        return samples[lo:hi]

    return _diarize(
        audio, len(samples), words, speakers, encoder or load_encoder(device), previous, threshold
    )


CHUNK_SECONDS = 120.0  # the speaker stage holds this much of the timeline's audio at a time


def _diarize(
    audio, total: int, words: Sequence[Word], speakers, encoder, previous, threshold: float
) -> Diarization:
    """``diarize`` with the audio read through ``audio(lo, hi)`` (samples lo..hi-1 of ``total``), a chunk of
    up to CHUNK_SECONDS of windows at a time: only the windows' mel spectrograms' summaries are kept."""
    order = sorted(range(len(words)), key=lambda k: (words[k].start, words[k].end))
    ordered = [words[k] for k in order]
    if not ordered:
        return Diarization([], [])
    windows = speech_windows(ordered)
    emb_parts, feats = [], []
    for first, last in _chunks(windows):
        lo = min(total, max(0, int((windows[first].start - WINDOW_PAD) * SAMPLE_RATE)))
        hi = max(lo, min(total, int(math.ceil((windows[last].end + WINDOW_PAD) * SAMPLE_RATE))))
        chunk = audio(lo, hi)
        mels = [mel_spectrogram(window_audio(chunk, w, offset=lo)) for w in windows[first : last + 1]]
        emb_parts.append(encoder.embed_mels(mels))
        feats += [cepstra(m) for m in mels]
    emb = np.concatenate(emb_parts)
    durations = np.array([max(w.duration, 0.05) for w in windows])
    labels = _cluster(emb, durations, speakers, threshold, feats)
    labels = _smooth(labels, windows, emb, durations)
    k = int(labels.max()) + 1
    cent = _centroids(emb, labels, durations, k)
    ids = _name_clusters(labels, cent, previous)
    # per window, the id of each of its words: its cluster's, unless a person corrected this stretch of audio
    said = [[ids[int(labels[i])]] * (win.last - win.first + 1) for i, win in enumerate(windows)]
    for i, corrected in corrected_windows(previous, emb).items():
        said[i] = corrected if len(corrected) == len(said[i]) else [_majority(corrected)] * len(said[i])
    by_word = {}
    for w_index, win in enumerate(windows):
        for pos in range(win.first, win.last + 1):
            by_word[order[pos]] = said[w_index][pos - win.first]
    out_words = [replace(w, speaker=by_word[k]) for k, w in enumerate(words)]
    first_seen: list[str] = list(dict.fromkeys(sid for window_ids in said for sid in window_ids))
    share = {sid: np.array([ws.count(sid) / len(ws) for ws in said]) for sid in first_seen}
    voices = {
        sid: _normed((emb * (durations * share[sid])[:, None]).sum(axis=0)).tolist() for sid in first_seen
    }
    seconds = {
        sid: float(sum(win.duration * share[sid][i] for i, win in enumerate(windows))) for sid in first_seen
    }
    return Diarization(out_words, first_seen, voices, seconds, len(windows))


def _majority(ids: Sequence[str]) -> str:
    return max(dict.fromkeys(ids), key=list(ids).count)


# -- corrections a person made in review, remembered with the voices (core/corrections/speakers.py)
# -------------------------------------------------
SAME_AUDIO_SIMILARITY = 0.97  # a window of a later run is a window a person corrected when their embeddings
# are this alike: the same stretch of the same media (the same words re-embedded give 0.999+; on the tuning
# conversations two different windows of one voice gave at most ~0.93)


def pack_embeddings(emb: np.ndarray) -> dict:
    """L2-normed embeddings, compactly for the cache: int8 per component with one scale per row (base64,
    ~350 bytes a window; cosine to the original >= 0.9999)."""
    import base64

    emb = np.asarray(emb, dtype=np.float32).reshape(-1, EMBED_DIM)
    scale = np.maximum(np.abs(emb).max(axis=1), 1e-9)
    q = np.clip(np.round(emb / scale[:, None] * 127), -127, 127).astype(np.int8)
    return {
        "int8": base64.b64encode(q.tobytes()).decode("ascii"),
        "scale": [float(f"{x:.6g}") for x in scale],
    }


def unpack_embeddings(packed: dict) -> np.ndarray:
    """``pack_embeddings``'s rows, L2-normed again. ValueError when malformed."""
    import base64
    import binascii

    try:
        raw = base64.b64decode(packed["int8"], validate=True)
        scale = np.asarray(packed["scale"], dtype=np.float32)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"packed embeddings are malformed ({exc})") from None
    q = np.frombuffer(raw, dtype=np.int8)
    if scale.ndim != 1 or q.size != len(scale) * EMBED_DIM:
        raise ValueError("packed embeddings have the wrong size")
    return _normed(q.reshape(len(scale), EMBED_DIM).astype(np.float32) * (scale[:, None] / 127))


def corrected_windows(previous: dict | None, emb: np.ndarray) -> dict[int, list[str]]:
    """Window index -> the speaker ids of its words as a person corrected them, for this run's windows whose
    audio is a corrected window's (``previous["corrected"]``, written when a review is approved). A cache
    entry that does not read is ignored (the run labels as if nothing was corrected)."""
    stored = (previous or {}).get("corrected")
    if not stored or not len(emb):
        return {}
    try:
        known = unpack_embeddings(stored["embeddings"])
        said = [[str(x) for x in ids] for ids in stored["words"]]
        if len(said) != len(known) or not all(said):
            return {}
    except (KeyError, TypeError, ValueError):
        return {}
    sims = emb @ known.T
    best = np.argmax(sims, axis=1)
    return {i: said[int(best[i])] for i in range(len(emb)) if sims[i, best[i]] >= SAME_AUDIO_SIMILARITY}


def _cluster(
    emb: np.ndarray,
    durations: np.ndarray,
    speakers: int | str,
    threshold: float,
    feats: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    n = len(emb)
    if speakers == 1 or n == 1:
        return np.zeros(n, dtype=int)
    reliable = durations >= RELIABLE_SECONDS
    if reliable.sum() < 2:
        reliable = np.ones(n, dtype=bool)
    idx = np.flatnonzero(reliable)
    if speakers == "auto":
        if feats is not None:
            sub = _average_linkage(emb[idx], None, min(threshold, FINE_THRESHOLD))
            if sub.max() + 1 > 4 * MAX_AUTO_SPEAKERS:
                # windows all unlike each other (noise, music): keep the candidates, and BIC's work, bounded
                sub = _average_linkage(emb[idx], 4 * MAX_AUTO_SPEAKERS, None)
            sub = _merge_small(sub, emb[idx], durations[idx])
            sub = _bic_merge(sub, [feats[i] for i in idx], emb[idx], durations[idx], threshold)
        else:
            sub = _average_linkage(emb[idx], None, threshold)
        sub = _merge_small(sub, emb[idx], durations[idx])
        if sub.max() + 1 > MAX_AUTO_SPEAKERS:  # auto never reports more voices than --speakers accepts
            sub = _average_linkage(emb[idx], MAX_AUTO_SPEAKERS, None)
    else:
        sub = _average_linkage(emb[idx], int(speakers), None)
    labels = _refine(emb, durations, idx, sub)
    if speakers == "auto":
        labels = _add_low_talkers(labels, emb, durations, threshold, feats)
    if feats is not None:
        labels = _assign_short(labels, durations, feats)
    return labels


def _speaker_models(labels: np.ndarray, durations: np.ndarray, feats: Sequence[np.ndarray]) -> dict:
    """Cluster -> (full-covariance Gaussian of the cepstra of its windows at least RELIABLE_SECONDS long,
    [those windows]), for clusters with at least 3 * BIC_MIN_FRAMES such frames."""
    models = {}
    for c in range(int(labels.max()) + 1):
        own = [i for i in np.flatnonzero((labels == c) & (durations >= RELIABLE_SECONDS)) if len(feats[i])]
        if own and sum(len(feats[i]) for i in own) >= 3 * BIC_MIN_FRAMES:
            models[c] = (_gaussian(np.concatenate([feats[i] for i in own])), own)
    return models


def _assign_short(labels: np.ndarray, durations: np.ndarray, feats: Sequence[np.ndarray]) -> np.ndarray:
    """Windows under RELIABLE_SECONDS (a "Yes." between turns) go to the speaker whose cepstral Gaussian
    explains their frames best: a voice embedding of half a second is unsteady, while a Gaussian fitted on a
    speaker's seconds of speech scores a few dozen frames well (on the tuning conversations, with the true
    speakers' models: 281 of 287 short windows right, against 274 by embedding). Windows of a speaker
    without a model (too little long speech) keep their label."""
    models = _speaker_models(labels, durations, feats)
    if len(models) < 2:
        return labels
    labels = labels.copy()
    for i in np.flatnonzero(durations < RELIABLE_SECONDS):
        if int(labels[i]) in models and len(feats[i]) >= 10:
            labels[i] = max(models, key=lambda c: _mean_loglik(feats[i], models[c][0]))
    return labels


def _refine(emb: np.ndarray, durations: np.ndarray, idx: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """Centroids of the clustered windows ``idx`` (labels ``sub``), every window to its nearest, a few rounds
    k-means style."""
    k = int(sub.max()) + 1
    labels = np.full(len(emb), -1, dtype=int)
    labels[idx] = sub
    for _ in range(5):
        cent = _centroids(emb[idx], labels[idx], durations[idx], k)
        new = np.argmax(emb @ cent.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        if len(np.unique(labels[idx])) < k:  # a cluster emptied: keep the previous centroids' assignment
            break
    return np.unique(labels, return_inverse=True)[1]


def _gaussian(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    frames = frames.astype(np.float64)
    cov = np.cov(frames.T) + 1e-4 * np.eye(frames.shape[1])
    return frames.mean(axis=0), np.linalg.inv(cov), float(np.linalg.slogdet(cov)[1])


def _mean_loglik(frames: np.ndarray, model: tuple[np.ndarray, np.ndarray, float]) -> float:
    mu, precision, logdet = model
    x = frames.astype(np.float64) - mu
    return float(-0.5 * (np.einsum("ij,jk,ik->i", x, precision, x) + logdet).mean())


def _add_low_talkers(
    labels: np.ndarray,
    emb: np.ndarray,
    durations: np.ndarray,
    threshold: float,
    feats: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Auto mode: someone who only says a few short things ("Exactly.", "No.") has no window long enough to
    be clustered, and their windows went to the nearest voice. A window is unexplained when its cepstral
    frames are less likely under every speaker's Gaussian than LOW_TALKER_LIKELIHOOD below that speaker's
    own median window. (The voice embedding of a window under a second is too unsteady to tell alone: on
    jfk.flac's real speech it made a second speaker.) Unexplained windows alike among themselves (average
    linkage at ``threshold``) are a new speaker when they are at least LOW_TALKER_WINDOWS windows with
    LOW_TALKER_SECONDS of speech, and their voice is less like every other than LOW_TALKER_SIMILARITY or
    their pooled frames are unexplained too."""
    k = int(labels.max()) + 1
    reliable = durations >= RELIABLE_SECONDS
    cent = _centroids(emb, labels, durations * reliable + 1e-3, k)
    unexplained = np.zeros(len(emb), dtype=bool)
    models = []
    if feats is not None:
        for model, own in _speaker_models(labels, durations, feats).values():
            models.append((model, float(np.median([_mean_loglik(feats[i], model) for i in own]))))

    def score(frames: np.ndarray) -> float:
        return max(_mean_loglik(frames, m) - median for m, median in models)

    if models:
        for i in range(len(emb)):
            if len(feats[i]) >= 10 and score(feats[i]) < LOW_TALKER_LIKELIHOOD:
                unexplained[i] = True
    candidates = np.flatnonzero(unexplained)
    if len(candidates) < LOW_TALKER_WINDOWS:
        return labels
    groups = _average_linkage(emb[candidates], None, threshold)
    labels = labels.copy()
    for g in range(int(groups.max()) + 1):
        members = candidates[groups == g]
        if len(members) < LOW_TALKER_WINDOWS or durations[members].sum() < LOW_TALKER_SECONDS:
            continue
        voice = _normed((emb[members] * durations[members, None]).sum(axis=0))
        apart = float((cent @ voice).max()) < LOW_TALKER_SIMILARITY
        if not apart and models:
            pooled = np.concatenate([feats[i] for i in members])
            apart = len(pooled) >= 10 and score(pooled) < LOW_TALKER_LIKELIHOOD
        if apart:
            labels[members] = int(labels.max()) + 1
    return np.unique(labels, return_inverse=True)[1]


def _merge_small(labels: np.ndarray, emb: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """Auto mode: a cluster with under MIN_SPEAKER_SHARE of the speech and under MIN_SPEAKER_SECONDS is not a
    speaker of its own (a cough, a laugh, a window across a turn): its windows join the nearest cluster."""
    total = durations.sum()
    while True:
        k = int(labels.max()) + 1
        if k <= 1:
            return labels
        amount = np.array([durations[labels == c].sum() for c in range(k)])
        small = [
            c for c in range(k) if amount[c] < MIN_SPEAKER_SECONDS or amount[c] < MIN_SPEAKER_SHARE * total
        ]
        if not small or len(small) == k:
            return labels
        c = min(small, key=lambda c: amount[c])
        cent = _centroids(emb, labels, durations, k)
        sims = cent @ cent[c]
        sims[c] = -np.inf
        target = int(np.argmax(sims))
        labels = np.where(labels == c, target, labels)
        labels = np.unique(labels, return_inverse=True)[1]


def _smooth(labels: np.ndarray, windows: list[Window], emb: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """A short window between two windows of one other speaker, joined to both without a pause and barely
    closer to its own speaker than to theirs, takes their speaker (a turn is never shorter than its
    evidence)."""
    labels = labels.copy()
    k = int(labels.max()) + 1
    if k < 2 or len(labels) < 3:
        return labels
    cent = _centroids(emb, labels, durations, k)
    sims = emb @ cent.T
    for i in range(1, len(labels) - 1):
        a, b = labels[i - 1], labels[i + 1]
        if a != b or labels[i] == a or durations[i] >= SMOOTH_SECONDS:
            continue
        joined = (
            windows[i].start - windows[i - 1].end < SMOOTH_PAUSE
            and windows[i + 1].start - windows[i].end < SMOOTH_PAUSE
        )  # (cut from one run of speech: a reply after even a short pause is a turn of its own)
        if joined and sims[i, labels[i]] - sims[i, a] < SMOOTH_MARGIN:
            labels[i] = a
    return np.unique(labels, return_inverse=True)[1]


def _name_clusters(labels: np.ndarray, cent: np.ndarray, previous: dict | None) -> list[str]:
    """Cluster index -> id: a previous run's id where the voice matches, otherwise S<n> in order of first
    speech."""
    k = len(cent)
    first = []
    for c in labels:
        if int(c) not in first:
            first.append(int(c))
    ids: dict[int, str] = {}
    old = []
    for entry in (previous or {}).get("speakers", []):
        try:
            voice = _normed(np.asarray(entry["voice"], dtype=np.float32))
            if voice.shape == (EMBED_DIM,):
                old.append((str(entry["id"]), voice))
        except (KeyError, TypeError, ValueError):
            continue
    if old:
        sims = cent @ np.stack([v for _, v in old]).T  # (k, old)
        pairs = sorted(((sims[c, o], c, o) for c in range(k) for o in range(len(old))), reverse=True)
        used_c, used_o = set(), set()
        for sim, c, o in pairs:  # greedy on the best similarity first: optimal enough for a handful of voices
            if sim < MATCH_SIMILARITY or c in used_c or o in used_o:
                continue
            ids[c] = old[o][0]
            used_c.add(c)
            used_o.add(o)
    taken = set(ids.values()) | {sid for sid, _ in old}
    counter = itertools.count(1)
    for c in first + [c for c in range(k) if c not in first]:
        if c in ids:
            continue
        while True:
            sid = f"S{next(counter)}"
            if sid not in taken:
                break
        ids[c] = sid
        taken.add(sid)
    return [ids[c] for c in range(k)]


# -- the pipeline's speaker stage
# ---------------------------------------------------------------------------------
PROFILE_VERSION = 1


def profile_key(regions: Sequence) -> str | None:
    """Cache key of a timeline's voices: the content of its media files (None when a clip has no file)."""
    from .transcript_cache import cache_key, media_fingerprint

    prints = set()
    for region in regions:
        path = getattr(region, "source_path", None)
        if path is None or not Path(path).is_file():
            return None
        prints.add(media_fingerprint(path))
    return cache_key(speaker_profile=PROFILE_VERSION, media=sorted(prints)) if prints else None


def label_speakers(
    regions: Sequence,
    duration_frames: int,
    timebase,
    words: Sequence[Word],
    speakers: int | str = "auto",
    names: Sequence[str] | None = None,
    device: str = "auto",
    cache=None,
) -> tuple[list[Word], list[dict], list[str]]:
    """The speaker stage of a caption job: the timeline's mix at 16 kHz (rendered CHUNK_SECONDS at a time,
    only around the words), ``diarize``, ids kept from the last
    run on the same media (voices cached with the transcripts) and names applied (given names win, then the
    names the last run was given). Returns (words with speakers, [{"id", "name"?}], warnings)."""
    from ..timeline.render_audio import render_span, sample_of_frame
    from .transcript_cache import TranscriptCache

    cache = cache if cache is not None else TranscriptCache()
    key = profile_key(regions)
    previous = cache.get(key) if key else None

    def audio(lo: int, hi: int) -> np.ndarray:  # the mix, a chunk at a time (never the whole timeline)
        return render_span(regions, lo, hi, SAMPLE_RATE)

    total = sample_of_frame(duration_frames, timebase, SAMPLE_RATE)
    result = _diarize(audio, total, words, speakers, load_encoder(device), previous, AUTO_THRESHOLD)
    return name_and_remember(result, names, previous, key, cache)


def name_and_remember(
    result: Diarization, names: Sequence[str] | None, previous: dict | None, key: str | None, cache
) -> tuple[list[Word], list[dict], list[str]]:
    """What the speaker stage does with ``diarize``'s answer, wherever it ran (here or on a facility
    cluster): names applied (given names win, then the names the last run on the same media was given),
    and the voices cached under ``key`` for the next run (voices of the last run not heard this time stay
    known: a re-edit may drop a speaker). Returns (words with speakers, [{"id", "name"?}], warnings)."""
    warnings = []
    old_names = {str(e.get("id")): e["name"] for e in (previous or {}).get("speakers", []) if e.get("name")}
    given = dict(zip(sorted(result.speakers, key=_id_order), names or []))
    # names a person gave in review beat the --speaker-names of the run they reviewed (given again unchanged
    # on a re-caption); names given differently this time win
    if list(names or []) == list((previous or {}).get("given_names") or []):
        reviewed = {str(e.get("id")) for e in (previous or {}).get("speakers", []) if e.get("reviewed")}
        given = {sid: name for sid, name in given.items() if sid not in reviewed}
    else:
        reviewed = set()
    if names and len(names) > len(result.speakers):
        warnings.append(
            f"{len(names)} speaker names were given but {len(result.speakers)} speaker(s) were heard: "
            f"{', '.join(names[len(result.speakers) :])} not used (pass --speakers {len(names)} if "
            "that many people speak)"
        )
    listing = []
    for sid in sorted(result.speakers, key=_id_order):
        entry = {"id": sid}
        name = given.get(sid) or old_names.get(sid)
        if name:
            entry["name"] = name
        listing.append(entry)
    if key:
        profile = result.profile()
        for entry in profile["speakers"]:
            name = given.get(entry["id"]) or old_names.get(entry["id"])
            if name:
                entry["name"] = name
            if entry["id"] in reviewed and entry["id"] not in given:
                entry["reviewed"] = True
        heard = {e["id"] for e in profile["speakers"]}
        profile["speakers"] += [e for e in (previous or {}).get("speakers", []) if e.get("id") not in heard]
        profile["given_names"] = list(names or [])
        if (previous or {}).get("corrected"):  # what people corrected stays known for every later run
            profile["corrected"] = previous["corrected"]
        cache.put(key, profile)
    return result.words, listing, warnings


def _id_order(speaker_id: str) -> tuple:
    return (
        (0, int(speaker_id[1:]), "")
        if speaker_id[:1] == "S" and speaker_id[1:].isdigit()
        else (1, 0, speaker_id)
    )
