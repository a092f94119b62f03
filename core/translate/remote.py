"""Translation somewhere else: the hook through which a caption job's sentences go to a remote translation
backend (the facility cluster, ``core/cluster``), with the same sentence grouping, glossary, fitting and
retiming done here as for a local model (``translate_cues`` gets a ``Translator`` that happens to be remote).

A backend that cannot do it (unreachable, no model for the direction, a rejected request) raises
``RemoteUnavailable``; the rest of the job is then translated with the local model (resolved exactly as a job
without a cluster would), and the reason is in the job's warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..speech.remote import BackendSlot, RemoteUnavailable
from .backends import Translator, resolve_translator


class TranslationBackend(Protocol):
    last_stats: dict

    def translate(self, texts: list[str], source: str, target: str, num_hypotheses: int) -> list[list[str]]:
        """For each text, up to ``num_hypotheses`` translations (best first), or raise
        ``RemoteUnavailable``."""


_translation = BackendSlot()


def set_translation_backend(backend: TranslationBackend | None) -> TranslationBackend | None:
    """Install ``backend`` for every translation in this process (None: local again). Returns the previous
    one."""
    return _translation.install(backend)


def translation_backend() -> TranslationBackend | None:
    return _translation.backend


class RemoteTranslator:
    """A ``Translator`` whose model runs on a remote backend. Once the backend fails, the rest of the job is
    translated with the local model (one model per job: candidates from two models are never mixed in one
    sentence)."""

    backend = "remote"
    device = "remote"

    def __init__(self, remote: TranslationBackend, model=None, device: str = "auto", flag: str = "--model"):
        self.remote, self.model, self.local_device, self.flag = remote, model, device, flag
        self.name = "facility cluster"
        self.local: Translator | None = None
        self.warnings: list[str] = []
        self.remote_texts = 0

    def supports(self, source_lang: str, target_lang: str) -> bool:
        return True

    def translate(
        self,
        texts: list[str],
        source_lang: str,
        target_lang: str,
        num_hypotheses: int = 1,
        batch_size: int = 16,
    ) -> list[list[str]]:
        if self.local is None:
            try:
                out = self.remote.translate(list(texts), source_lang, target_lang, num_hypotheses)
                self.remote_texts += len(texts)
                used = (getattr(self.remote, "last_stats", None) or {}).get("model")
                asked = Path(str(self.model)).name if self.model else None
                note = (
                    f"translation model {self.model!r} was asked for; the facility cluster translates with "
                    f"{used!r}"
                )
                if asked and used and asked != used and note not in self.warnings:
                    self.warnings.append(note)
                return out
            except RemoteUnavailable as exc:
                self.warnings.append(str(exc))
                self.local = resolve_translator(
                    source_lang, target_lang, self.model, self.local_device, flag=self.flag
                )
        return self.local.translate(texts, source_lang, target_lang, num_hypotheses, batch_size)


def remote_translator(model=None, device: str = "auto", flag: str = "--model") -> RemoteTranslator | None:
    """A ``RemoteTranslator`` on the installed backend, or None when translation is local."""
    backend = _translation.backend
    return None if backend is None else RemoteTranslator(backend, model, device, flag)
