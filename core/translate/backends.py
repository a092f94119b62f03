"""Machine translation backends and where their models come from: offline folders first, hub names when
online.

Two ways to run the same models (MarianMT ``Helsinki-NLP/opus-mt-*`` and NLLB-200 ``facebook/nllb-200-*``):

* **CTranslate2** (fast; int8 on CPU, float16 on GPU): a folder converted with ``ct2-transformers-converter``
  (``model.bin`` + ``config.json`` + vocabulary) plus the SentencePiece files copied beside it;
* **transformers + torch** (``pip install 'captionbridge[translate]'``): a Hugging Face model folder or hub
name.

Resolution (``resolve_translator``): an explicit folder; else a folder under
``CAPTIONBRIDGE_TRANSLATION_MODELS`` or ``<cache>/translation`` that translates the requested direction
(CTranslate2 preferred); else an already-downloaded hub copy; else -- only with a network -- the hub name.
With nothing, ``ModelNotAvailableError`` says exactly what to pass or download. There is never a silent
fallback to untranslated text.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import InputError, ModelNotAvailableError
from ..speech.models import register_model_source
from ..storage import cache_root, is_offline
from .glossary import normalize_language

MODELS_ENV = "CAPTIONBRIDGE_TRANSLATION_MODELS"
INSTALL_HINT = "pip install 'captionbridge[translate]' (CPU: pip install torch==2.13.0 first)"

# Default hub models per direction, best first. NLLB covers both directions (and more languages).
HUB_MODELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("zh", "en"): (
        "Helsinki-NLP/opus-mt-zh-en",
        "facebook/nllb-200-distilled-600M",
        "facebook/nllb-200-distilled-1.3B",
    ),
    ("en", "zh"): (
        "Helsinki-NLP/opus-mt-en-zh",
        "facebook/nllb-200-distilled-600M",
        "facebook/nllb-200-distilled-1.3B",
    ),
}
KNOWN_HUB_MODELS = (
    "Helsinki-NLP/opus-mt-zh-en",
    "Helsinki-NLP/opus-mt-en-zh",
    "facebook/nllb-200-distilled-600M",
    "facebook/nllb-200-distilled-1.3B",
)
NLLB_CODES = {
    "en": "eng_Latn",
    "zh": "zho_Hans",
    "zh-hant": "zho_Hant",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "fr": "fra_Latn",
    "de": "deu_Latn",
    "es": "spa_Latn",
    "it": "ita_Latn",
    "pt": "por_Latn",
    "ru": "rus_Cyrl",
}
# opus-mt models with several target languages need a ">>id<<" token first (opus-mt-en-zh: >>cmn_Hans<<).
MARIAN_TARGET_TOKENS = {"zh": (">>cmn_Hans<<", ">>zho_Hans<<", ">>cmn<<", ">>zho<<"), "en": (">>eng<<",)}
_LANG_CODES = {"zho": "zh", "cmn": "zh", "chi": "zh", "eng": "en"}


class Translator(Protocol):
    """What caption translation needs from a backend."""

    name: str
    backend: str
    device: str

    def supports(self, source_lang: str, target_lang: str) -> bool: ...

    def translate(
        self,
        texts: list[str],
        source_lang: str,
        target_lang: str,
        num_hypotheses: int = 1,
        batch_size: int = 16,
    ) -> list[list[str]]:
        """For each text, ``num_hypotheses`` translations, best first."""
        ...


# -- folder inspection
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFolder:
    """A translation model on disk: its format, family and (when known) its language pair."""

    path: Path
    fmt: str  # "ctranslate2" | "transformers"
    family: str  # "marian" | "nllb"
    source_lang: str | None = None  # None: multilingual (NLLB) or not stated
    target_lang: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def supports(self, source_lang: str, target_lang: str) -> bool:
        if self.family == "nllb":
            return (
                normalize_language(source_lang) in NLLB_CODES
                and normalize_language(target_lang) in NLLB_CODES
            )
        if self.source_lang is None or self.target_lang is None:
            return True  # the user named it; trust them
        return (self.source_lang, self.target_lang) == (
            normalize_language(source_lang),
            normalize_language(target_lang),
        )

    @property
    def languages(self) -> str:
        if self.family == "nllb":
            return "many (NLLB-200)"
        return f"{self.source_lang or '?'}->{self.target_lang or '?'}"


def _lang(code: str | None) -> str | None:
    if not code:
        return None
    code = code.strip().lower()
    return normalize_language(_LANG_CODES.get(code, code))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def inspect_folder(path: str | Path) -> ModelFolder | None:
    """What kind of translation model ``path`` holds, or None if it holds none."""
    path = Path(path)
    config = _read_json(path / "config.json")
    if (path / "model.bin").is_file() and config:
        fmt = "ctranslate2"
        vocab = path / "shared_vocabulary.json"
        vocab_text = vocab.read_text(encoding="utf-8") if vocab.is_file() else ""
        nllb = (path / "sentencepiece.bpe.model").is_file() or '"zho_Hans"' in vocab_text
        family = "nllb" if nllb else "marian"
    elif config.get("model_type") in ("marian", "m2m_100", "nllb-moe") and any(
        (path / f).is_file()
        for f in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
    ):
        fmt = "transformers"
        family = "marian" if config["model_type"] == "marian" else "nllb"
    else:
        return None
    src = tgt = None
    if family == "marian":
        tok = _read_json(path / "tokenizer_config.json")
        src, tgt = _lang(tok.get("source_lang")), _lang(tok.get("target_lang"))
        if not (src and tgt):
            match = re.search(r"opus-mt-(?:tc-big-)?([a-z]{2,3})-([a-z]{2,3})", path.name.lower())
            if match:
                src, tgt = _lang(match.group(1)), _lang(match.group(2))
    return ModelFolder(path, fmt, family, src, tgt)


# -- backends
# -----------------------------------------------------------------------------------------------------
def _cuda_available_ct2() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # noqa: BLE001 - no CUDA runtime at all
        return False


class _SentencePieceCodec:
    """Text <-> tokens for a CTranslate2 folder, the way the original tokenizer does it."""

    def __init__(self, folder: ModelFolder):
        self.folder = folder
        path = folder.path
        self.hf = None
        self.src = self.tgt = None
        if folder.family == "marian" and (path / "source.spm").is_file() and (path / "target.spm").is_file():
            import sentencepiece as spm

            self.src = spm.SentencePieceProcessor(model_file=str(path / "source.spm"))
            self.tgt = spm.SentencePieceProcessor(model_file=str(path / "target.spm"))
        elif folder.family == "nllb" and (path / "sentencepiece.bpe.model").is_file():
            import sentencepiece as spm

            self.src = self.tgt = spm.SentencePieceProcessor(model_file=str(path / "sentencepiece.bpe.model"))
        elif (path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file():
            self.hf = _import_transformers().AutoTokenizer.from_pretrained(str(path))
        else:
            raw = "source.spm target.spm" if folder.family == "marian" else "sentencepiece.bpe.model"
            raise ModelNotAvailableError(
                f"translation model folder {path} has no tokenizer files: reconvert it with "
                f"ct2-transformers-converter ... --copy_files {raw} tokenizer_config.json, or copy them "
                "beside "
                "model.bin"
            )

    def encode(self, text: str, prefix: list[str]) -> list[str]:
        if self.hf is not None:
            tokens = self.hf.convert_ids_to_tokens(self.hf.encode(text))
            return prefix + [t for t in tokens if t not in prefix]
        return prefix + self.src.encode(text, out_type=str) + ["</s>"]

    def decode(self, tokens: list[str]) -> str:
        tokens = [t for t in tokens if not _LANGUAGE_TOKEN.fullmatch(t)]
        if self.hf is not None:
            return self.hf.decode(self.hf.convert_tokens_to_ids(tokens), skip_special_tokens=True).strip()
        return self.tgt.decode_pieces(tokens).strip()


# Language tokens never belong in the text: Marian ">>cmn_Hans<<", NLLB "zho_Hans" (any of its 200 codes).
_LANGUAGE_TOKEN = re.compile(r">>[^<>\s]+<<|[a-z]{3}_[A-Z][a-z]{3}")


class CTranslate2Translator:
    """A converted Marian/NLLB folder on CTranslate2: int8 on CPU, float16 on GPU, batched, n-best."""

    backend = "ctranslate2"

    def __init__(
        self, folder: ModelFolder, device: str = "auto", compute_type: str | None = None, threads: int = 0
    ):
        import ctranslate2

        self.folder = folder
        self.name = folder.name
        self.device = ("cuda" if _cuda_available_ct2() else "cpu") if device == "auto" else device
        self.compute_type = compute_type or ("float16" if self.device == "cuda" else "int8")
        try:
            self.model = ctranslate2.Translator(
                str(folder.path), device=self.device, compute_type=self.compute_type, intra_threads=threads
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"cannot load translation model {folder.path} on {self.device}: {exc}"
            )
        self.codec = _SentencePieceCodec(folder)
        self._vocab = _ct2_vocabulary(folder.path)

    def supports(self, source_lang: str, target_lang: str) -> bool:
        return self.folder.supports(source_lang, target_lang)

    def _prefixes(self, target_lang: str) -> tuple[list[str], list[str] | None]:
        lang = normalize_language(target_lang)
        if self.folder.family == "nllb":
            return [], [NLLB_CODES[lang]]
        token = next((t for t in MARIAN_TARGET_TOKENS.get(lang, ()) if t in self._vocab), None)
        return ([token] if token else []), None

    def translate(
        self,
        texts: list[str],
        source_lang: str,
        target_lang: str,
        num_hypotheses: int = 1,
        batch_size: int = 16,
    ) -> list[list[str]]:
        if not texts:
            return []
        source_prefix, target_prefix = self._prefixes(target_lang)
        if self.folder.family == "nllb":
            source_prefix = [NLLB_CODES[normalize_language(source_lang)]]
        tokens = [self.codec.encode(t, source_prefix) for t in texts]
        # Batches of similar length (less padding), each with a decoding limit from its own longest input; the
        # order is by (length, text), so a text's batch does not depend on where it stood in ``texts``.
        order = sorted(range(len(texts)), key=lambda i: (len(tokens[i]), texts[i]))
        out: list[list[str]] = [[] for _ in texts]
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = [tokens[i] for i in chunk]
            results = self.model.translate_batch(
                batch,
                target_prefix=[target_prefix] * len(batch) if target_prefix else None,
                beam_size=max(4, num_hypotheses),
                num_hypotheses=num_hypotheses,
                max_batch_size=batch_size,
                max_decoding_length=min(512, 2 * max(len(b) for b in batch) + 16),
                return_scores=True,
            )
            for i, result in zip(chunk, results):
                out[i] = [self.codec.decode(h) for h in result.hypotheses]
        return out


def _ct2_vocabulary(path: Path) -> set[str]:
    for name in ("shared_vocabulary.json", "source_vocabulary.json"):
        f = path / name
        if f.is_file():
            try:
                return set(json.loads(f.read_text(encoding="utf-8")))
            except ValueError:
                return set()
    for name in ("shared_vocabulary.txt", "source_vocabulary.txt"):
        f = path / name
        if f.is_file():
            return set(f.read_text(encoding="utf-8").splitlines())
    return set()


def _import_transformers():
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"this translation model needs transformers and torch ({exc.name} is not installed): "
            f"{INSTALL_HINT}; "
            "or convert the model to CTranslate2 with ct2-transformers-converter and pass that folder"
        )
    transformers.logging.set_verbosity_error()
    return transformers


class TransformersTranslator:
    """MarianMT / NLLB through transformers + torch (GPU float16 when there is one)."""

    backend = "transformers"

    def __init__(
        self,
        name_or_path: str,
        family: str,
        device: str = "auto",
        local_files_only: bool = True,
        source_lang: str | None = None,
        target_lang: str | None = None,
    ):
        transformers = _import_transformers()
        import torch

        self.name = Path(name_or_path).name if os.path.isdir(name_or_path) else name_or_path
        self.family = family
        self.languages = (source_lang, target_lang)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                name_or_path, local_files_only=local_files_only
            )
            self.model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
                name_or_path, local_files_only=local_files_only
            )
        except OSError as exc:
            raise ModelNotAvailableError(
                f"cannot load translation model {name_or_path}: {exc}. "
                + _how_to_get(source_lang or "zh", target_lang or "en", "--model")
            )
        if self.device == "cuda":
            self.model = self.model.half()
        self.model.to(self.device).eval()
        self._torch = torch

    def supports(self, source_lang: str, target_lang: str) -> bool:
        if self.family == "nllb":
            return (
                normalize_language(source_lang) in NLLB_CODES
                and normalize_language(target_lang) in NLLB_CODES
            )
        src, tgt = self.languages
        return (
            src is None
            or tgt is None
            or (src, tgt) == (normalize_language(source_lang), normalize_language(target_lang))
        )

    def translate(
        self,
        texts: list[str],
        source_lang: str,
        target_lang: str,
        num_hypotheses: int = 1,
        batch_size: int = 16,
    ) -> list[list[str]]:
        tgt = normalize_language(target_lang)
        kwargs: dict = {}
        prefix = ""
        if self.family == "nllb":
            self.tokenizer.src_lang = NLLB_CODES[normalize_language(source_lang)]
            kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(NLLB_CODES[tgt])
        else:
            vocab = self.tokenizer.get_vocab()
            token = next((t for t in MARIAN_TARGET_TOKENS.get(tgt, ()) if t in vocab), None)
            prefix = f"{token} " if token else ""
        out: list[list[str]] = [[] for _ in texts]
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), texts[i]))  # similar lengths together
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = self.tokenizer(
                [prefix + texts[i] for i in chunk], return_tensors="pt", padding=True, truncation=True
            ).to(self.device)
            longest = int(enc["input_ids"].shape[1])
            with self._torch.inference_mode():
                generated = self.model.generate(
                    **enc,
                    num_beams=max(4, num_hypotheses),
                    num_return_sequences=num_hypotheses,
                    max_new_tokens=min(512, 2 * longest + 16),
                    **kwargs,
                )
            decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            for n, i in enumerate(chunk):
                out[i] = [d.strip() for d in decoded[n * num_hypotheses : (n + 1) * num_hypotheses]]
        return out


# -- resolution
# ---------------------------------------------------------------------------------------------------
_WARM: dict[tuple, Translator] = {}
_WARM_LOCK = threading.Lock()
_ONLINE: dict[str, bool] = {}


def model_dirs() -> list[Path]:
    """Folders searched for translation models (each holds model folders), in order."""
    dirs = [Path(p).expanduser() for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p.strip()]
    return dirs + [cache_root() / "translation"]


def is_online(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """False when told to stay offline (CAPTIONBRIDGE_OFFLINE/HF_HUB_OFFLINE) or when the hub cannot be
    reached."""
    if is_offline() or os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "")
    host = re.sub(r"^https?://", "", endpoint).split("/")[0].split(":")[0] if endpoint else host
    if host not in _ONLINE:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _ONLINE[host] = True
        except OSError:
            _ONLINE[host] = False
    return _ONLINE[host]


def local_models() -> list[ModelFolder]:
    """Every translation model folder found in ``model_dirs()`` (CTranslate2 first)."""
    found: list[ModelFolder] = []
    for root in model_dirs():
        if not root.is_dir():
            continue
        candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
        for path in candidates:
            folder = inspect_folder(path)
            if folder is not None:
                found.append(folder)
    return sorted(found, key=lambda f: f.fmt != "ctranslate2")


def _hub_cached(repo_id: str) -> Path | None:
    """An already-downloaded hub snapshot of ``repo_id``, never touching the network."""
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not downloaded, or huggingface_hub missing
        return None
    return path if inspect_folder(path) else None


def _how_to_get(source_lang: str, target_lang: str, flag: str) -> str:
    s, t = normalize_language(source_lang), normalize_language(target_lang)
    hub = HUB_MODELS.get((s, t), ("facebook/nllb-200-distilled-600M",))[0]
    short = hub.split("/")[-1]
    target_dir = cache_root() / "translation" / f"{short}-ct2"
    return (
        f"With a network, pass {flag} {hub} (downloaded once; NLLB also works: {flag} "
        f"facebook/nllb-200-distilled-600M; needs {INSTALL_HINT}). Offline, pass {flag} /path/to/folder "
        f"(a Hugging Face MarianMT/NLLB folder, or a CTranslate2 conversion of one), or put the folder in "
        f"{cache_root() / 'translation'} (or a folder listed in {MODELS_ENV}). To make the fast CTranslate2 "
        f"copy on a machine with a network: ct2-transformers-converter --model {hub} --output_dir "
        f"{target_dir} --quantization int8 --copy_files "
        + (
            "source.spm target.spm tokenizer_config.json vocab.json"
            if "opus-mt" in hub
            else "sentencepiece.bpe.model tokenizer_config.json special_tokens_map.json tokenizer.json"
        )
    )


def _looks_like_path(name: str) -> bool:
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or Path(name).expanduser().exists()
    )


def load_folder(folder: ModelFolder, device: str = "auto") -> Translator:
    key = (str(folder.path.resolve()), folder.fmt, device)
    with _WARM_LOCK:
        if key in _WARM:
            return _WARM[key]
    if folder.fmt == "ctranslate2":
        translator: Translator = CTranslate2Translator(folder, device)
    else:
        translator = TransformersTranslator(
            str(folder.path), folder.family, device, True, folder.source_lang, folder.target_lang
        )
    with _WARM_LOCK:
        _WARM[key] = translator
    return translator


def resolve_translator(
    source_lang: str,
    target_lang: str,
    model: str | os.PathLike | None = None,
    device: str = "auto",
    *,
    offline: bool | None = None,
    flag: str = "--model",
) -> Translator:
    """The translator to use for ``source_lang`` -> ``target_lang`` (see the module docstring for the order).

    ``model`` is a folder, a hub name (``Helsinki-NLP/opus-mt-zh-en``, ``facebook/nllb-200-distilled-600M``)
    or None. ``flag`` is how the caller's command line spells the option (for error messages).
    """
    src, tgt = normalize_language(source_lang), normalize_language(target_lang)
    if src == tgt:
        raise InputError(f"the captions are already in {tgt}: choose another target language")
    online = (not offline) if offline is not None else None

    def check(t: Translator | ModelFolder, label: str) -> None:
        if not t.supports(src, tgt):
            pair = t.languages if isinstance(t, ModelFolder) else "another direction"
            raise InputError(
                f"translation model {label} translates {pair}, not {src}->{tgt}: "
                + _how_to_get(src, tgt, flag)
            )

    if model is not None and os.fspath(model).strip():
        name = os.fspath(model).strip()
        if _looks_like_path(name):
            path = Path(name).expanduser()
            if not path.is_dir():
                raise InputError(
                    f"translation model folder {path} does not exist. " + _how_to_get(src, tgt, flag)
                )
            folder = inspect_folder(path)
            if folder is None:
                raise InputError(
                    f"{path} is not a translation model folder: expected a Hugging Face MarianMT/NLLB folder "
                    "(config.json + model.safetensors or pytorch_model.bin + tokenizer files) or a "
                    "CTranslate2 "
                    "conversion (model.bin + config.json + shared_vocabulary.json + source.spm/target.spm)"
                )
            check(folder, str(path))
            return load_folder(folder, device)
        _check_hub_direction(name, src, tgt, flag)
        short = name.split("/")[-1].lower()
        for folder in local_models():  # a converted copy named after the hub model wins
            if folder.name.lower() in (short, f"{short}-ct2", f"{short}-ctranslate2"):
                check(folder, str(folder.path))
                return load_folder(folder, device)
        cached = _hub_cached(name)
        if cached is not None:
            folder = inspect_folder(cached)
            check(folder, name)
            return load_folder(folder, device)
        if online is None:
            online = is_online()
        if not online:
            raise ModelNotAvailableError(
                f"translation model {name} is not downloaded and there is no network to download it. "
                + _how_to_get(src, tgt, flag),
                details={"model": name},
            )
        return _load_hub(name, src, tgt, device, flag)
    for folder in local_models():
        if folder.supports(src, tgt) and (folder.family == "nllb" or folder.source_lang is not None):
            return load_folder(folder, device)
    for hub in HUB_MODELS.get((src, tgt), ("facebook/nllb-200-distilled-600M",)):
        cached = _hub_cached(hub)
        if cached is not None:
            return load_folder(inspect_folder(cached), device)
    if online is None:
        online = is_online()
    if online:
        return _load_hub(
            HUB_MODELS.get((src, tgt), ("facebook/nllb-200-distilled-600M",))[0], src, tgt, device, flag
        )
    raise ModelNotAvailableError(
        f"no {src}->{tgt} translation model is available offline. " + _how_to_get(src, tgt, flag),
        details={"source_lang": src, "target_lang": tgt, "searched": [str(d) for d in model_dirs()]},
    )


def _check_hub_direction(name: str, src: str, tgt: str, flag: str) -> None:
    """An opus-mt hub name says its direction (``opus-mt-zh-en``): refuse the wrong one before any
    download."""
    match = re.search(r"opus-mt-(?:tc-big-)?([a-z]{2,3})-([a-z]{2,3})$", name.lower())
    if match and (_lang(match.group(1)), _lang(match.group(2))) != (src, tgt):
        raise InputError(
            f"translation model {name} translates {_lang(match.group(1))}->{_lang(match.group(2))}, "
            f"not {src}->{tgt}: " + _how_to_get(src, tgt, flag)
        )


def _load_hub(name: str, src: str, tgt: str, device: str, flag: str) -> Translator:
    family = "nllb" if "nllb" in name.lower() else "marian"
    key = (name, "hub", device)
    with _WARM_LOCK:
        if key in _WARM:
            return _WARM[key]
    translator = TransformersTranslator(
        name, family, device, local_files_only=False, source_lang=None, target_lang=None
    )
    with _WARM_LOCK:
        _WARM[key] = translator
    return translator


def clear_translator_cache() -> None:
    with _WARM_LOCK:
        _WARM.clear()


# -- listing (captionbridge models)
# ----------------------------------------------------------------------------
def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def translation_models() -> list[dict]:
    """Translation models for ``captionbridge models``: local folders, downloaded hub copies, and what to
    get."""
    out: list[dict] = []
    for folder in local_models():
        out.append(
            {
                "name": folder.name,
                "kind": "translation",
                "source": "folder",
                "backend": folder.fmt,
                "family": folder.family,
                "languages": folder.languages,
                "where": str(folder.path),
                "size": _folder_size(folder.path),
                "verified": None,
                "status": "ready",
            }
        )
    for hub in KNOWN_HUB_MODELS:
        cached = _hub_cached(hub)
        folder = inspect_folder(cached) if cached else None
        if folder is not None:
            out.append(
                {
                    "name": hub,
                    "kind": "translation",
                    "source": "hub",
                    "backend": "transformers",
                    "family": folder.family,
                    "languages": folder.languages,
                    "where": str(cached),
                    "size": _folder_size(cached),
                    "verified": None,
                    "status": "downloaded",
                }
            )
    if not out:
        out.append(
            {
                "name": "(none)",
                "kind": "translation",
                "source": "",
                "backend": "",
                "family": "",
                "languages": "zh<->en",
                "where": str(cache_root() / "translation"),
                "size": 0,
                "verified": None,
                "status": "no translation model installed: pass Helsinki-NLP/opus-mt-zh-en (with a network) "
                "as caption --translation-model or translate --model, or put a MarianMT/NLLB folder "
                "(or its CTranslate2 conversion) here",
            }
        )
    return out


register_model_source(translation_models)
