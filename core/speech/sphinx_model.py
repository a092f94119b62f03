"""CMU's en-us acoustic model and dictionary, as shipped in the ``pocketsphinx`` wheel, read into numpy.

The model is PTM (phonetically tied mixtures): one codebook of 128 diagonal Gaussians per CI phone (42),
three feature streams of 13 dimensions, ~5k senones each with its own 8-bit quantised mixture weights over its
phone's codebook, 3-state left-to-right phone HMMs with one transition matrix per CI phone, and
context-dependent triphones (by word position) listed in a binary model definition. Formats as pocketsphinx
reads them (``ms_gauden.c``, ``ptm_mgau.c`` ``read_sendump``, ``bin_mdef.c``, ``tmat.c``).

All scores here are natural logarithms. A file that is missing or does not parse raises ``ModelFileError``
naming the file.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VAR_FLOOR = 1e-4  # pocketsphinx's -varfloor
TP_FLOOR = 1e-4  # pocketsphinx's -tmatfloor (applied to non-zero transitions only)
MIXW_LOG_UNIT = 1024 * np.log(1.0001)  # sendump values are -log in base 1.0001**1024 (SENSCR_SHIFT 10)
WORD_POSITIONS = "ibes"  # internal, begin, end, single (bin_mdef's WPOS_NAME order)


class ModelFileError(RuntimeError):
    """A model file is missing or damaged: the message names the file."""


@dataclass
class SphinxModel:
    ciphones: list[str]
    ci_index: dict[str, int]
    sil: int
    filler: np.ndarray  # (n_ci,) bool
    means: np.ndarray  # (n_ci, 3, 128, 13) float32
    variances: np.ndarray  # (n_ci, 3, 128, 13) float32, floored
    log_mixw: np.ndarray  # (n_sen, 3, 128) float32: log weight of each codebook density, per stream
    sen2ci: np.ndarray  # (n_sen,) codebook (CI phone) of each senone
    phone_ssid: np.ndarray  # (n_phone,)
    phone_tmat: np.ndarray  # (n_phone,)
    sseq: np.ndarray  # (n_sseq, 3) senone ids
    log_tmat: np.ndarray  # (n_tmat, 3, 4) log transition probabilities (-inf where not allowed)
    triphones: dict[int, int]  # _key(wpos, ci, lc, rc) -> phone id
    root: Path

    def phone_id(self, ci: int, lc: int, rc: int, wpos: str) -> int:
        """The triphone for ``ci`` between ``lc`` and ``rc`` at word position ``wpos`` (one of "ibes"), backed
        off as pocketsphinx's ``bin_mdef_phone_id_nearest`` does: other word positions, then silence for the
        context outside the word, then the CI phone."""
        pos = WORD_POSITIONS.index(wpos)
        lc = self.sil if self.filler[lc] else lc
        rc = self.sil if self.filler[rc] else rc
        order = [pos] + [p for p in range(4) if p != pos]
        for p in order:
            pid = self.triphones.get(_key(p, ci, lc, rc))
            if pid is not None:
                return pid
        newl = self.sil if wpos in "bs" else lc
        newr = self.sil if wpos in "es" else rc
        if (newl, newr) != (lc, rc):
            for p in order:
                pid = self.triphones.get(_key(p, ci, newl, newr))
                if pid is not None:
                    return pid
        return ci


def _key(wpos, ci, lc, rc):
    """One integer for a triphone's (word position, phone, left, right) (works on arrays too)."""
    return ((wpos * 256 + ci) * 256 + lc) * 256 + rc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFileError(
            f"acoustic model file {path} cannot be read ({exc.strerror or exc}): reinstall pocketsphinx "
            "(pip install --force-reinstall pocketsphinx)"
        ) from exc


def _damaged(path: Path, what: str) -> ModelFileError:
    return ModelFileError(
        f"acoustic model file {path} is damaged ({what}): reinstall pocketsphinx "
        "(pip install --force-reinstall pocketsphinx)"
    )


def _s3_body(path: Path) -> tuple[bytes, int]:
    """The data after an s3 binary header (``bio_readhdr``), and its offset; little-endian only."""
    data = _read(path)
    end = data.find(b"endhdr\n")
    if not data.startswith(b"s3\n") or end < 0 or len(data) < end + 11:
        raise _damaged(path, "no s3 header")
    off = end + len(b"endhdr\n")
    if struct.unpack_from("<I", data, off)[0] != 0x11223344:
        raise _damaged(path, "unknown byte order")
    return data, off + 4


def read_gaussians(path: Path, shape: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """means or variances: (n_codebook, n_stream, n_density, veclen) float32."""
    data, off = _s3_body(path)
    try:
        n_mgau, n_feat, n_density = struct.unpack_from("<3i", data, off)
        veclen = struct.unpack_from(f"<{n_feat}i", data, off + 12)
        (blk,) = struct.unpack_from("<i", data, off + 12 + 4 * n_feat)
    except struct.error as exc:
        raise _damaged(path, "truncated header") from exc
    if len(set(veclen)) != 1 or blk != n_mgau * n_feat * n_density * veclen[0]:
        raise _damaged(path, "inconsistent dimensions")
    start = off + 16 + 4 * n_feat
    if len(data) < start + 4 * blk:
        raise _damaged(path, f"truncated: {len(data)} bytes for {blk} values")
    arr = np.frombuffer(data, "<f4", blk, start).reshape(n_mgau, n_feat, n_density, veclen[0])
    if shape is not None and arr.shape != shape:
        raise _damaged(path, f"shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise _damaged(path, "values that are not numbers")
    return arr.astype(np.float32)


def read_tmat(path: Path) -> np.ndarray:
    """(n_tmat, n_emit, n_emit + 1) log transition probabilities, normalised and floored as ``tmat.c``."""
    data, off = _s3_body(path)
    try:
        n_tmat, n_src, n_dst, blk = struct.unpack_from("<4i", data, off)
    except struct.error as exc:
        raise _damaged(path, "truncated header") from exc
    if blk != n_tmat * n_src * n_dst or n_dst != n_src + 1 or len(data) < off + 16 + 4 * blk:
        raise _damaged(path, "inconsistent dimensions")
    tp = np.frombuffer(data, "<f4", blk, off + 16).reshape(n_tmat, n_src, n_dst).astype(np.float64)
    if not np.all(np.isfinite(tp)) or np.any(tp < 0):
        raise _damaged(path, "negative or non-number probabilities")
    sums = tp.sum(axis=2, keepdims=True)
    if np.any(sums <= 0):
        raise _damaged(path, "a state with no transitions")
    tp = tp / sums
    tp = np.where((tp > 0) & (tp < TP_FLOOR), TP_FLOOR, tp)
    tp = tp / tp.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(tp).astype(np.float32)


def read_sendump(path: Path, n_sen: int, n_feat: int, n_density: int) -> np.ndarray:
    """Mixture weights: (n_sen, n_feat, n_density) log weights (8-bit quantised, as ``read_sendump``)."""
    data = _read(path)
    off = 0
    n_clust, n_bits = 0, 8
    try:
        first = True
        while True:
            (n,) = struct.unpack_from("<i", data, off)
            off += 4
            if first and not 1 <= n <= 999:
                raise _damaged(path, "not a little-endian sendump")
            if n == 0 and not first:
                break
            line = data[off : off + n].rstrip(b"\0").decode("ascii", "replace")
            off += n
            first = False
            key, _, value = line.partition(" ")
            if key == "cluster_count":
                n_clust = int(value)
            elif key == "cluster_bits":
                n_bits = int(value)
            elif key == "model_count" and int(value) != n_sen:
                raise _damaged(path, f"{value} senones, the model definition has {n_sen}")
        rows, cols = n_density, n_sen
        if n_clust == 0:
            rows, cols = struct.unpack_from("<2i", data, off)
            off += 8
    except (struct.error, ValueError) as exc:
        raise _damaged(path, "truncated header") from exc
    if n_clust or n_bits != 8:
        raise _damaged(path, "clustered (4-bit) mixture weights are not supported")
    if rows != n_density or cols != n_sen:
        raise _damaged(path, f"{rows} x {cols} weights, expected {n_density} x {n_sen}")
    size = n_feat * rows * cols
    if len(data) < off + size:
        raise _damaged(path, f"truncated: {len(data) - off} bytes of weights for {size}")
    q = np.frombuffer(data, np.uint8, size, off).reshape(n_feat, rows, cols)
    return np.ascontiguousarray((-q.astype(np.float32) * np.float32(MIXW_LOG_UNIT)).transpose(2, 0, 1))


def read_mdef(path: Path) -> dict:
    """The binary model definition (``bin_mdef_read``): CI phones, phone table, senone sequences."""
    data = _read(path)
    try:
        magic, version, desc_len = struct.unpack_from("<3i", data, 0)
        if magic != 0x46444D42:  # "BMDF"
            raise _damaged(path, "not a binary model definition")
        off = 12 + desc_len
        n_ci, n_phone, n_emit, n_ci_sen, n_sen, n_tmat, n_sseq, n_ctx, n_cd_tree, sil = struct.unpack_from(
            "<10i", data, off
        )
        off += 40
        names = []
        for _ in range(n_ci):
            end = data.index(b"\0", off)
            names.append(data[off:end].decode("ascii"))
            off = end + 1
        off = (off + 3) & ~3
        off += 8 * n_cd_tree
        entry = np.dtype([("ssid", "<i4"), ("tmat", "<i4"), ("attr", "u1", 4)])
        phones = np.frombuffer(data, entry, n_phone, off)
        off += 12 * n_phone
        (sseq_size,) = struct.unpack_from("<i", data, off)
        off += 4
        sseq = np.frombuffer(data, "<u2", sseq_size, off)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise _damaged(path, "truncated or unreadable") from exc
    if n_emit != 3 or sseq_size != n_sseq * n_emit or n_ci != len(names):
        raise _damaged(path, "unexpected topology (not 3 emitting states per phone)")
    sseq = sseq.reshape(n_sseq, n_emit).astype(np.int32)
    if sseq.max() >= n_sen or phones["ssid"].max() >= n_sseq or phones["tmat"].max() >= n_tmat:
        raise _damaged(path, "ids out of range")
    return dict(names=names, phones=phones, sseq=sseq, n_sen=n_sen, n_ci=n_ci, n_tmat=n_tmat, sil=sil)


class Dictionary:
    """The pronouncing dictionary: ``get(word)`` -> its pronunciations (each a list of phones), the first one
    first (``word(2)`` lines are the alternates), or None.

    The file is sorted by word (byte order, each word's alternates after it), so a word is found by binary
    search over its lines; parsing all 135k lines up front cost 0.1-0.2 s of CPU per process. A file that is
    not sorted (checked on a sample of lines) is parsed whole instead."""

    def __init__(self, data: bytes):
        self._data = data
        nl = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        self._starts = np.concatenate([[0], nl + 1]).tolist()
        if self._starts[-1] >= len(data):
            self._starts.pop()
        self._parsed: dict[str, list[list[str]] | None] = {}
        self._all: dict[str, list[list[str]]] | None = None
        sample = np.random.default_rng(0).integers(0, max(len(self._starts) - 1, 1), 200)
        if any(self._base(i) > self._base(i + 1) for i in sample.tolist() if i + 1 < len(self._starts)):
            self._all = {}
            for line in data.decode("utf-8", "replace").splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    self._all.setdefault(parts[0].split("(")[0], []).append(parts[1:])

    def __len__(self) -> int:
        return len(self._starts) if self._all is None else len(self._all)

    def _line(self, i: int) -> bytes:
        end = self._starts[i + 1] if i + 1 < len(self._starts) else len(self._data)
        return self._data[self._starts[i] : end]

    def _base(self, i: int) -> bytes:
        head = self._line(i).split(None, 1)[0] if self._line(i).strip() else b""
        return head.split(b"(")[0] if head.endswith(b")") else head

    def get(self, word: str) -> list[list[str]] | None:
        if self._all is not None:
            return self._all.get(word)
        if word in self._parsed:
            return self._parsed[word]
        key = word.encode("utf-8")
        lo, hi = 0, len(self._starts)
        while lo < hi:  # first line whose word is >= key
            mid = (lo + hi) // 2
            if self._base(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        prons = []
        while lo < len(self._starts) and self._base(lo) == key:
            prons.append(self._line(lo).decode("utf-8", "replace").split()[1:])
            lo += 1
        self._parsed[word] = [p for p in prons if p] or None
        return self._parsed[word]

    def __getitem__(self, word: str) -> list[list[str]]:
        prons = self.get(word)
        if prons is None:
            raise KeyError(word)
        return prons


def read_dictionary(path: Path) -> Dictionary:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(
            f"pronouncing dictionary {path} cannot be read ({exc.strerror or exc}): reinstall pocketsphinx"
        ) from exc
    out = Dictionary(data)
    if len(out) < 1000:
        raise ModelFileError(
            f"pronouncing dictionary {path} is damaged ({len(out)} words): reinstall pocketsphinx"
        )
    return out


# what sphinx_frontend computes and forced_align assumes; the model's feat.params must say the same
FEAT_PARAMS = {
    "lowerf": "130",
    "upperf": "6800",
    "nfilt": "25",
    "transform": "dct",
    "lifter": "22",
    "feat": "1s_c_d_dd",
    "svspec": "0-12/13-25/26-38",
    "agc": "none",
    "cmn": "batch",
    "varnorm": "no",
    "model": "ptm",
}


def check_feat_params(path: Path) -> None:
    """The model's front-end settings are the ones this aligner computes (a different model would be scored
    on the wrong features without any error)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ModelFileError(
            f"acoustic model file {path} cannot be read ({exc.strerror or exc}): reinstall pocketsphinx "
            "(pip install --force-reinstall pocketsphinx)"
        ) from exc
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("-"):
            found[parts[0][1:]] = parts[1]
    wrong = [
        f"{k} {found.get(k, '(missing)')} (expected {v})" for k, v in FEAT_PARAMS.items() if found.get(k) != v
    ]
    if wrong:
        raise ModelFileError(
            f"acoustic model file {path} describes another front end than this aligner's: "
            f"{', '.join(wrong)}; use the en-us model of pocketsphinx 5.1 or set acoustic_timing.ENGINE = "
            "'pocketsphinx'"
        )


def model_root() -> Path:
    """The en-us model folder inside the pocketsphinx package."""
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us"


def load_model(root: Path | None = None) -> SphinxModel:
    root = Path(root) if root is not None else model_root()
    am = root / "en-us"
    check_feat_params(am / "feat.params")
    mdef = read_mdef(am / "mdef")
    n_ci, names = mdef["n_ci"], mdef["names"]
    means = read_gaussians(am / "means")
    if means.shape[0] != n_ci:
        raise _damaged(am / "means", f"{means.shape[0]} codebooks for {n_ci} phones (not a PTM model)")
    variances = np.maximum(read_gaussians(am / "variances", means.shape), VAR_FLOOR)
    n_feat, n_density = means.shape[1], means.shape[2]
    log_mixw = read_sendump(am / "sendump", mdef["n_sen"], n_feat, n_density)
    log_tmat = read_tmat(am / "transition_matrices")
    if log_tmat.shape[0] != mdef["n_tmat"] or log_tmat.shape[1] != 3:
        raise _damaged(am / "transition_matrices", f"{log_tmat.shape[0]} matrices, expected {mdef['n_tmat']}")
    phones, sseq = mdef["phones"], mdef["sseq"]
    attr = phones["attr"].astype(np.int64)
    # senones belong to the codebook of the first phone that uses them (bin_mdef's sen2cimap)
    ci_of_phone = np.where(np.arange(len(phones)) < n_ci, np.arange(len(phones)), attr[:, 1])
    used = sseq[phones["ssid"]].ravel()
    senones, first = np.unique(used, return_index=True)
    if len(senones) != mdef["n_sen"]:
        raise _damaged(am / "mdef", "senones no phone uses")
    sen2ci = np.repeat(ci_of_phone, 3)[first].astype(np.int32)
    keys = _key(attr[n_ci:, 0], attr[n_ci:, 1], attr[n_ci:, 2], attr[n_ci:, 3])
    triphones = dict(zip(keys.tolist(), range(n_ci, len(phones))))
    filler = np.zeros(n_ci, bool)
    filler[:n_ci] = attr[:n_ci, 0] != 0
    sil = names.index("SIL") if "SIL" in names else mdef["sil"]
    return SphinxModel(
        ciphones=names,
        ci_index={n: i for i, n in enumerate(names)},
        sil=sil,
        filler=filler,
        means=means,
        variances=variances,
        log_mixw=log_mixw,
        sen2ci=sen2ci,
        phone_ssid=phones["ssid"].astype(np.int32),
        phone_tmat=phones["tmat"].astype(np.int32),
        sseq=sseq,
        log_tmat=log_tmat,
        triphones=triphones,
        root=root,
    )


_CACHE: dict[str, object] = {}
_LOCK = threading.Lock()


def model() -> SphinxModel:
    """The packaged model, read once per process."""
    with _LOCK:
        if "model" not in _CACHE:
            _CACHE["model"] = load_model()
        return _CACHE["model"]  # type: ignore[return-value]


def dictionary() -> Dictionary:
    """The packaged CMU dictionary, read once per process."""
    with _LOCK:
        if "dict" not in _CACHE:
            _CACHE["dict"] = read_dictionary(model_root() / "cmudict-en-us.dict")
        return _CACHE["dict"]  # type: ignore[return-value]
