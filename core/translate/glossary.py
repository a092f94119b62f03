"""A user's glossary: fixed translations of names, products and jargon, applied the same way every time.

A glossary file is either

* TSV (``.tsv``/``.txt``): one term per line, two columns separated by a tab. An optional first row of
  language codes (``zh<TAB>en``) names the columns; without it each cell's script decides (Chinese characters
  -> ``zh``, otherwise ``en``). ``#`` starts a comment line; blank lines are ignored.
* JSON (``.json``): ``[{"zh": "张伟", "en": "Zhang Wei"}, ...]``, or ``{"terms": [...same...]}``, or a flat
  ``{"张伟": "Zhang Wei"}`` mapping (languages from the script again).

Before translation each source term is replaced by a placeholder the model copies through (``protect``); after
it the placeholder becomes the fixed target term (``restore``). The same terms feed transcription as hotwords
/ an initial prompt (``hotwords``), so the recogniser spells the names the glossary expects.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..captions.line_breaking import has_cjk
from ..errors import InputError

_LANG_ALIASES = {
    "zh": "zh",
    "zh-hans": "zh",
    "zh-cn": "zh",
    "zh-sg": "zh",
    "cmn": "zh",
    "zho": "zh",
    "chinese": "zh",
    "en": "en",
    "en-us": "en",
    "en-gb": "en",
    "eng": "en",
    "english": "en",
}


def normalize_language(code: str) -> str:
    """``zh-Hans``/``cmn``/``zho`` -> ``zh``, ``en-US``/``eng`` -> ``en``; other codes lower-cased as
    given."""
    key = (code or "").strip().lower().replace("_", "-")
    return _LANG_ALIASES.get(key, key)


def _script_language(text: str) -> str:
    return "zh" if has_cjk(text) else "en"


@dataclass(frozen=True)
class Protected:
    """A source text with glossary terms replaced by placeholders, and what each placeholder stands for."""

    text: str
    terms: tuple[tuple[str, str, str], ...]  # (placeholder, source term as written, fixed target term)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(p for p, _, _ in self.terms)


class Glossary:
    """Fixed term translations between languages. ``entries`` are dicts language -> term."""

    def __init__(self, entries: list[dict[str, str]] | None = None, source: str = ""):
        self.entries: list[dict[str, str]] = []
        self.source = source
        for entry in entries or []:
            self.add(entry)

    def add(self, entry: dict[str, str]) -> None:
        clean = {normalize_language(k): str(v).strip() for k, v in entry.items() if str(v).strip()}
        if len(clean) >= 2:
            self.entries.append(clean)

    def __len__(self) -> int:
        return len(self.entries)

    # -- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        """Read a TSV or JSON glossary; a bad file raises ``InputError`` naming the file and the line."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError(f"glossary file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"glossary file {path} cannot be read as UTF-8 text: {exc}")
        if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
            glossary = cls._from_json(text, path)
        else:
            glossary = cls._from_tsv(text, path)
        if not glossary.entries:
            raise InputError(
                f"glossary file {path} has no terms: expected lines 'source<TAB>target' "
                "(optionally a first line such as 'zh<TAB>en') or JSON like "
                '[{"zh": "张伟", "en": "Zhang Wei"}]'
            )
        return glossary

    @classmethod
    def _from_tsv(cls, text: str, path: Path) -> Glossary:
        rows = [
            (n, row)
            for n, row in enumerate(csv.reader(io.StringIO(text), delimiter="\t"), start=1)
            if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
        ]
        columns: list[str] | None = None
        if (
            rows
            and all(
                normalize_language(c) in ("zh", "en") or re.fullmatch(r"[a-z]{2,3}(-[A-Za-z]+)?", c.strip())
                for c in rows[0][1]
            )
            and len(rows[0][1]) >= 2
        ):
            columns = [normalize_language(c) for c in rows[0][1]]
            rows = rows[1:]
        glossary = cls(source=str(path))
        for line_no, row in rows:
            cells = [c.strip() for c in row]
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise InputError(
                    f"glossary {path}, line {line_no}: expected two columns separated by a tab, got {row!r}"
                )
            if columns:
                glossary.add(dict(zip(columns, cells)))
            else:
                glossary.add(cls._by_script(cells[0], cells[1], path, line_no))
        return glossary

    @classmethod
    def _from_json(cls, text: str, path: Path) -> Glossary:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"glossary {path} is not valid JSON: {exc}")
        if isinstance(data, dict) and "terms" in data:
            data = data["terms"]
        glossary = cls(source=str(path))
        if isinstance(data, dict):
            for i, (a, b) in enumerate(data.items(), start=1):
                glossary.add(cls._by_script(str(a), str(b), path, i))
        elif isinstance(data, list):
            for i, item in enumerate(data, start=1):
                if not isinstance(item, dict) or len(item) < 2:
                    raise InputError(
                        f"glossary {path}, term {i}: expected an object with two languages such as "
                        f'{{"zh": "张伟", "en": "Zhang Wei"}}, got {item!r}'
                    )
                glossary.add({str(k): str(v) for k, v in item.items()})
        else:
            raise InputError(
                f"glossary {path}: expected a list of terms or an object, got {type(data).__name__}"
            )
        return glossary

    @staticmethod
    def _by_script(a: str, b: str, path: Path, where: int) -> dict[str, str]:
        la, lb = _script_language(a), _script_language(b)
        if la == lb:
            raise InputError(
                f"glossary {path}, term {where}: cannot tell the languages of {a!r} and {b!r}; "
                "add a first line naming the columns, e.g. 'en<TAB>zh'"
            )
        return {la: a, lb: b}

    # -- use -------------------------------------------------------------------------------------------------
    def pairs(self, source_lang: str, target_lang: str) -> list[tuple[str, str]]:
        """(source term, target term) for one direction, longest source term first (so longer names win)."""
        s, t = normalize_language(source_lang), normalize_language(target_lang)
        found = [(e[s], e[t]) for e in self.entries if s in e and t in e]
        return sorted(found, key=lambda p: (-len(p[0]), p[0]))

    def terms(self, language: str) -> list[str]:
        lang = normalize_language(language)
        seen: list[str] = []
        for entry in self.entries:
            if lang in entry and entry[lang] not in seen:
                seen.append(entry[lang])
        return seen

    def hotwords(self, language: str) -> str:
        """The glossary's terms in ``language`` as one string for faster-whisper's
        ``hotwords``/``initial_prompt``."""
        sep = "，" if normalize_language(language) == "zh" else ", "
        return sep.join(self.terms(language))

    def protect(self, text: str, source_lang: str, target_lang: str) -> Protected:
        """Replace each glossary term in ``text`` by a placeholder (``XQ0Z``, ``XQ1Z``, ...)."""
        pairs = self.pairs(source_lang, target_lang)
        if not pairs:
            return Protected(text, ())
        cjk = normalize_language(source_lang) == "zh"
        alternatives = "|".join(re.escape(s) for s, _ in pairs)
        pattern = re.compile(
            alternatives if cjk else rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE
        )
        lookup = {s.lower(): t for s, t in pairs}
        terms: list[tuple[str, str, str]] = []

        def swap(match: re.Match) -> str:
            placeholder = placeholder_for(len(terms))
            terms.append((placeholder, match.group(0), lookup[match.group(0).lower()]))
            return placeholder

        return Protected(pattern.sub(swap, text), tuple(terms))

    def __repr__(self) -> str:
        return f"Glossary({len(self.entries)} terms from {self.source or 'memory'})"


def placeholder_for(index: int) -> str:
    # Upper-case Latin letters with a digit: tokenizers of both languages keep them whole and models copy
    # them.
    return f"XQ{index}Z"


def restore(translation: str, protected: Protected) -> str | None:
    """The translation with every placeholder replaced by its fixed term, or None if one got lost or
    doubled."""
    out = translation
    for placeholder, _, target in protected.terms:
        # Models sometimes insert spaces inside the placeholder ("XQ 0 Z"): accept that, nothing looser.
        pattern = re.compile(r"X\s?Q\s?" + placeholder[2:-1] + r"\s?Z")
        if len(pattern.findall(out)) != 1:
            return None
        out = pattern.sub(lambda _m, term=target: term, out)
    return out


def with_kept_terms(glossary: Glossary | None, terms, source: str, target: str) -> Glossary | None:
    """``glossary`` plus each Latin-script term (a name or jargon people corrected in review) kept exactly as
    spelled in the translation, so the model cannot mistranslate it; terms the glossary already has keep their
    entry. None when there is nothing to add to no glossary."""
    source, target = normalize_language(source), normalize_language(target)
    known = {e.get(source) for e in glossary.entries} if glossary else set()
    kept = [t for t in terms or () if t and not has_cjk(t) and t not in known]
    if not kept:
        return glossary
    out = Glossary(list(glossary.entries) if glossary else [], source=glossary.source if glossary else "")
    for term in kept:
        out.add({source: term, target: term})
    return out


def load_glossary(value: str | Path | Glossary | None) -> Glossary | None:
    """A ``Glossary`` from a path (or one already loaded, or None)."""
    if value is None or isinstance(value, Glossary):
        return value
    return Glossary.load(value)
