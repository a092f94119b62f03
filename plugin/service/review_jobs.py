"""The review side of a finished caption job: its view, drafts, approved versions and review audio.

Everything lives in the job's own folder, next to what the job wrote::

    <data>/jobs/<id>/out/.review/       mix.ogg, peaks.i8, media.json  (written by the caption job)
    <data>/jobs/<id>/review/media/      the same, made on first open for jobs that did not write it
    <data>/jobs/<id>/review/draft.json  the autosaved draft
    <data>/jobs/<id>/review/versions/<n>/  version.json and every output format of approved version n

An approved version is the job's document with the reviewed cues, written again in every format the job was
asked for, with the caption job's own writers (``plugin.caption_job.write_outputs``) and the same frame rules;
the validator's hard rules must pass first.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...core.captions.presets import language_family, resolve_preset
from ...core.captions.validate import HARD, validate_cues
from ...core.errors import CaptionBridgeError, InputError
from ...core.model import CaptionDocument, Cue
from ...core.pipeline import STYLE_PRESETS, default_preset
from ...core.timeline.review_audio import read_review_media, write_timeline_review_media
from ...core.timeline.timebase import parse_rate
from ..caption_job import ALL_FORMATS, output_stem, write_outputs
from .errors import BadRequest, JobNotFinished, ResultFileNotFound, service_error
from .jobs import REVIEW_MEDIA_DIR, JobService, _unsafe_name
from .store import Job, iso

# The same threshold that makes the editors' review markers (resolve_scripts' LOW_CONFIDENCE; a test keeps
# them equal).
LOW_CONFIDENCE = 0.5
MAX_DRAFT_CUES = 100_000
# rules about a cue's frames, not its text: shared by every language of a bilingual cue
TIMING_RULES = frozenset(
    {
        "overlap",
        "gap",
        "chaining",
        "min-duration",
        "max-duration",
        "off-frame",
        "shot-change-in",
        "shot-change-out",
    }
)

MAX_SPEAKERS = 64
_SPEAKER_ID = re.compile(r"[A-Za-z0-9_-]{1,24}")

ApprovalRefused = service_error("validation_failed", 422)
NoReviewAudio = service_error("no_review_audio", 404)
VersionNotFound = service_error("version_not_found", 404)
BadDraft = service_error("bad_draft", 422)


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


class ReviewJobs:
    """Review operations on the jobs of one ``JobService``."""

    def __init__(self, service: JobService):
        self.service = service
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._cuts: dict[str, list[int]] = {}
        self._lowconf: dict[tuple[str, float], int] = {}

    def _lock(self, job_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(job_id, threading.Lock())

    # ---- folders
    # ------------------------------------------------------------------------------------------------
    def review_dir(self, job_id: str) -> Path:
        return self.service.job_dir(job_id) / "review"

    def versions_dir(self, job_id: str) -> Path:
        return self.review_dir(job_id) / "versions"

    def finished_job(self, job_id: str) -> Job:
        job = self.service.get(job_id)
        if job.state != "succeeded":
            raise JobNotFinished(
                f"job {job_id} is {job.state}: only a finished caption job can be reviewed",
                details={"state": job.state},
            )
        return job

    # ---- the job list
    # ---------------------------------------------------------------------------------------------
    def job_list(self) -> list[dict]:
        """Every job, newest first: state, timeline, language, low-confidence words, versions."""
        out = []
        for job in reversed(self.service.store.list()):
            item = {
                "id": job.id,
                "state": job.state,
                "stage": job.stage,
                "created_at": iso(job.created_at),
                "timeline": Path(job.timeline_path).name,
                "languages": [],
                "low_confidence_words": None,
                "cues": None,
                "versions": 0,
                "draft": False,
            }
            if job.state == "succeeded":
                doc = self.service.store.document(job.id) or {}
                item["timeline"] = (doc.get("timeline") or {}).get("name") or item["timeline"]
                item["languages"] = list(doc.get("languages") or [doc.get("source_language", "und")])
                item["cues"] = len(doc.get("cues") or [])
                item["low_confidence_words"] = sum(
                    1 for w in doc.get("words") or () if float(w.get("confidence", 1.0)) < LOW_CONFIDENCE
                )
                item["versions"] = len(self._version_numbers(job.id))
                item["draft"] = (self.review_dir(job.id) / "draft.json").is_file()
            out.append(item)
        return out

    def queue(self, threshold: float = LOW_CONFIDENCE, limit: int = 500) -> dict:
        """The review queue across jobs: every cue of a finished job whose least sure word is below
        ``threshold``, least sure first (ties: newest job first), with whether the job already has an approved
        version."""
        from ...core.corrections.store import review_queue

        items = []
        for job in reversed(self.service.store.list()):
            if job.state != "succeeded":
                continue
            doc = self.service.store.document(job.id) or {}
            words = doc.get("words") or []
            starts = [int(w["start_frame"]) for w in words]
            reviewed = bool(self._version_numbers(job.id))
            language = doc.get("source_language", "und")
            for index, cue in enumerate(doc.get("cues") or []):
                lo = bisect.bisect_left(starts, int(cue["start_frame"]))
                hi = bisect.bisect_left(starts, int(cue["end_frame"]))
                inside = [float(w.get("confidence", 1.0)) for w in words[lo:hi]]
                if not inside:
                    continue
                items.append(
                    {
                        "job": job.id,
                        "timeline": (doc.get("timeline") or {}).get("name") or Path(job.timeline_path).name,
                        "cue": index,
                        "start_timecode": cue.get("start_timecode"),
                        "confidence": round(min(inside), 3),
                        "text": (cue.get("text") or {}).get(language, ""),
                        "reviewed": reviewed,
                    }
                )
        ranked = review_queue(items, threshold)
        return {"threshold": threshold, "total": len(ranked), "items": ranked[:limit]}

    # ---- one job
    # ----------------------------------------------------------------------------------------------------
    def base_document(self, job: Job) -> dict:
        doc = self.service.store.document(job.id)
        if not doc:
            raise JobNotFinished(f"job {job.id} has no captions document", details={"state": job.state})
        return doc

    def current(self, job: Job) -> tuple[dict, int]:
        """The latest approved document (or the engine's output) and its version number (0: not reviewed)."""
        numbers = self._version_numbers(job.id)
        if numbers:
            info = self.version(job.id, numbers[-1])
            return info["document"], numbers[-1]
        return self.base_document(job), 0

    def view(self, job_id: str) -> dict:
        """Everything the page needs to show one job."""
        job = self.finished_job(job_id)
        base = self.base_document(job)
        current, number = self.current(job)
        draft = self.read_draft(job_id)
        cues = draft["cues"] if draft else current.get("cues", [])
        languages = list(base.get("languages") or [base.get("source_language", "und")])
        speakers = draft["speakers"] if draft and "speakers" in draft else current.get("speakers", [])
        if not speakers:  # labelled cues without the list (an older captions JSON): their ids, default names
            speakers = [
                {"id": sid} for sid in dict.fromkeys(x for c in cues for x in c.get("speakers") or ())
            ]
        word_speakers = (
            draft.get("word_speakers", {}) if draft else _word_speaker_changes(base, current.get("words"))
        )
        media = self.media(job, create=False)
        return {
            "id": job.id,
            "timeline": base.get("timeline", {}),
            "source_language": base.get("source_language"),
            "languages": languages,
            "words": base.get("words", []),
            "cues": [
                {
                    "start_frame": c["start_frame"],
                    "end_frame": c["end_frame"],
                    "text": c["text"],
                    "speakers": list(c.get("speakers") or []),
                }
                for c in cues
            ],
            # who speaks: [{id, name}] (empty: the job has no speaker labels); word_speakers: word index (in
            # "words", whose "speaker" is the engine's) -> the speaker a person gave it instead
            "speakers": speakers,
            "word_speakers": {str(k): v for k, v in word_speakers.items()},
            "engine_cues": len(base.get("cues", [])),
            "version": number,
            "versions": self.versions(job_id),
            "draft": {"saved_at": draft["saved_at"], "base_version": draft.get("base_version", 0)}
            if draft
            else None,
            "limits": {lang: self._limits(job, lang) for lang in languages},
            "low_confidence": LOW_CONFIDENCE,
            "findings": self.findings(job, cues),
            "audio": media.to_dict() if media else None,
            "audio_available": media is not None or self._can_render(job),
            "audio_note": None
            if media is not None or self._can_render(job)
            else (
                "no audio for these captions: open them with 'captionbridge review CAPTIONS.json --timeline "
                "TIMELINE' to hear them"
                if job.options.get("review_import")
                else f"no audio for this job: its timeline {Path(job.timeline_path).name} is gone"
            ),
            "formats": self._formats(job),
            "warnings": base.get("warnings", []),
        }

    def _formats(self, job: Job) -> list[str]:
        formats = job.options.get("formats") or ["json", "srt"]
        if isinstance(formats, str):
            formats = formats.split(",")
        formats = [f.strip().lower() for f in formats if f.strip().lower() in ALL_FORMATS]
        return ["json"] + [f for f in formats if f != "json"]

    # ---- rules
    # ------------------------------------------------------------------------------------------------------
    def _preset_name(self, job: Job, language: str) -> str:
        preset = job.options.get("preset")
        base = self.service.store.document(job.id) or {}
        if preset and (
            preset in STYLE_PRESETS
            or language_family(language) == language_family(base.get("source_language") or language)
        ):
            return preset
        return default_preset(language)

    def _overrides(self, job: Job) -> dict:
        return {
            k: job.options[k]
            for k in ("max_chars_per_line", "max_lines", "max_chars_per_second", "speaker_marks")
            if job.options.get(k) is not None
        }

    def _limits(self, job: Job, language: str) -> dict:
        preset = resolve_preset(self._preset_name(job, language), language, **self._overrides(job))
        base = self.service.store.document(job.id) or {}
        rate = parse_rate((base.get("timeline") or {}).get("rate", 25))
        return {
            "preset": self._preset_name(job, language),
            "max_chars_per_line": preset.max_chars_per_line,
            "max_lines": preset.max_lines,
            "min_gap_frames": preset.min_gap_frames,
            "min_frames": preset.min_frames(rate),
            "max_frames": preset.max_frames(rate),
            "max_chars_per_second": preset.max_chars_per_second,
            "speaker_marks": preset.speaker_marks,
        }

    def _cut_points(self, job: Job) -> list[int]:
        if job.id not in self._cuts:
            cuts: list[int] = []
            try:
                from ...core.timeline.regions import video_cut_points

                loaded = self._load_timeline(job)
                if loaded is not None:
                    cuts = list(video_cut_points(loaded))
            except Exception:  # shot-change rules are soft; a timeline that no longer reads just has none
                cuts = []
            self._cuts[job.id] = cuts
        return self._cuts[job.id]

    def findings(self, job: Job, cue_dicts: list[dict]) -> list[dict]:
        """Every caption-rule finding of ``cue_dicts``, per language: {cue, language, rule, severity,
        message}."""
        base = self.service.store.document(job.id) or {}
        doc = CaptionDocument.from_dict({**base, "cues": [], "words": []})
        cues = self.parse_cues(cue_dicts, doc.languages or [doc.source_language])
        cuts = self._cut_points(job)
        out, seen = [], set()
        for language in doc.languages or [doc.source_language]:
            for v in validate_cues(
                cues,
                doc.timebase,
                self._preset_name(job, language),
                language,
                cut_points=cuts,
                **self._overrides(job),
            ):
                if (v.cue, v.rule, v.message) in seen:  # a timing rule both languages share: once is enough
                    continue
                seen.add((v.cue, v.rule, v.message))
                out.append(
                    {
                        "cue": v.cue,
                        "language": language,
                        "rule": v.rule,
                        "severity": v.severity,
                        "message": v.message,
                        "timing": v.rule in TIMING_RULES,
                    }
                )
        return out

    @staticmethod
    def parse_cues(cue_dicts: Any, languages: list[str], speaker_ids: set[str] | None = None) -> list[Cue]:
        """The draft's cues; a cue's ``speakers`` (ids, in speaking order) must be among ``speaker_ids``
        when that is given (a job without speakers takes none)."""
        if not isinstance(cue_dicts, list):
            raise BadDraft("'cues' must be a list of {start_frame, end_frame, text}")
        if len(cue_dicts) > MAX_DRAFT_CUES:
            raise BadDraft(f"{len(cue_dicts)} cues is more than a draft may hold ({MAX_DRAFT_CUES})")
        cues = []
        for n, item in enumerate(cue_dicts, 1):
            if not isinstance(item, dict):
                raise BadDraft(f"cue {n} is not an object")
            start, end, text = item.get("start_frame"), item.get("end_frame"), item.get("text")
            if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or start < 0:
                raise BadDraft(f"cue {n}: start_frame and end_frame must be whole frames (>= 0)")
            if end <= start:
                raise BadDraft(f"cue {n} ends at frame {end}, not after its start at frame {start}")
            if not isinstance(text, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in text.items()
            ):
                raise BadDraft(f"cue {n}: text must map a language to a string")
            unknown = sorted(set(text) - set(languages))
            if unknown:
                raise BadDraft(
                    f"cue {n} has text in {unknown[0]!r}, which this job does not carry "
                    f"({', '.join(languages)})"
                )
            speakers = item.get("speakers") or []
            if not isinstance(speakers, list) or not all(isinstance(x, str) for x in speakers):
                raise BadDraft(f"cue {n}: speakers must be a list of speaker ids")
            if len(set(speakers)) != len(speakers):
                raise BadDraft(f"cue {n} names speaker {speakers[0]!r} twice")
            unknown_ids = [x for x in speakers if speaker_ids is not None and x not in speaker_ids]
            if unknown_ids:
                raise BadDraft(
                    f"cue {n} is given to speaker {unknown_ids[0]!r}, who is not in the job's speakers "
                    f"({', '.join(sorted(speaker_ids or ())) or 'none'})"
                )
            cues.append(
                Cue(start, end, {lang: text.get(lang, "") for lang in languages}, (), tuple(speakers))
            )
        return cues

    @staticmethod
    def parse_speakers(value: Any, fallback: list[dict]) -> list[dict]:
        """The draft's speakers list [{id, name}] (``fallback``, the current one, when absent): ids unique,
        short and plain; a name one line of at most 60 characters (empty: the default "Speaker N")."""
        if value is None:
            return [dict(s) for s in fallback]
        if not isinstance(value, list) or len(value) > MAX_SPEAKERS:
            raise BadDraft(f"'speakers' must be a list of at most {MAX_SPEAKERS} {{id, name}}")
        out, seen = [], set()
        for n, item in enumerate(value, 1):
            sid = item.get("id") if isinstance(item, dict) else None
            if not isinstance(sid, str) or not _SPEAKER_ID.fullmatch(sid):
                raise BadDraft(f"speaker {n}: id must be 1-24 letters, digits, '_' or '-'")
            if sid in seen:
                raise BadDraft(f"speaker id {sid!r} is listed twice")
            seen.add(sid)
            name = item.get("name")
            if name is not None and not isinstance(name, str):
                raise BadDraft(f"speaker {sid}: name must be text")
            name = " ".join((name or "").split())
            if len(name) > 60 or any(ord(ch) < 32 for ch in name):
                raise BadDraft(f"speaker {sid}: a name is one line of at most 60 characters")
            out.append({"id": sid, "name": name} if name else {"id": sid})
        return out

    @staticmethod
    def parse_word_speakers(value: Any, words: list[dict], speaker_ids: set[str]) -> dict[int, str]:
        """Word index (in the engine's words) -> speaker id, for words given to another speaker."""
        if value in (None, {}):
            return {}
        if not isinstance(value, dict):
            raise BadDraft("'word_speakers' must map a word's index to a speaker id")
        out = {}
        for key, sid in value.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise BadDraft(f"word_speakers: {key!r} is not a word index") from None
            if not 0 <= index < len(words):
                raise BadDraft(f"word_speakers: the job has no word {index} (it has {len(words)})")
            if sid not in speaker_ids:
                raise BadDraft(f"word {index} is given to speaker {sid!r}, who is not in the job's speakers")
            if sid != words[index].get("speaker"):
                out[index] = sid
        return out

    # ---- drafts
    # -----------------------------------------------------------------------------------------------------
    def read_draft(self, job_id: str) -> dict | None:
        try:
            return json.loads((self.review_dir(job_id) / "draft.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save_draft(self, job_id: str, body: Any) -> dict:
        job = self.finished_job(job_id)
        if not isinstance(body, dict) or "cues" not in body:
            raise BadDraft('a draft is {"cues": [...], "base_version": n}')
        base = self.base_document(job)
        cues, speakers, word_speakers = self.parse_body(job, base, body)
        cue_dicts = [_cue_dict(c) for c in cues]
        with self._lock(job_id):
            draft = {
                "saved_at": iso(time.time()),
                "base_version": int(body.get("base_version") or 0),
                "cues": cue_dicts,
                "speakers": speakers,
                "word_speakers": {str(k): v for k, v in word_speakers.items()},
            }
            _write_json_atomic(self.review_dir(job_id) / "draft.json", draft)
        return {"saved_at": draft["saved_at"], "findings": self.findings(job, cue_dicts)}

    def parse_body(self, job: Job, base: dict, body: dict) -> tuple[list[Cue], list[dict], dict[int, str]]:
        """A draft's (or approval's) cues, speakers list and word speaker changes, checked against the
        job."""
        languages = list(base.get("languages") or [base.get("source_language", "und")])
        fallback: list[dict] = []
        ids = dict.fromkeys(sid for c in base.get("cues") or () for sid in c.get("speakers") or ())
        if body.get("speakers") is None and (base.get("speakers") or ids):  # (a job without speakers: no I/O)
            fallback = self.current(job)[0].get("speakers") or [{"id": sid} for sid in ids]
        speakers = self.parse_speakers(body.get("speakers"), fallback)
        ids = {s["id"] for s in speakers}
        cues = self.parse_cues(body["cues"], languages, ids)
        word_speakers = self.parse_word_speakers(body.get("word_speakers"), base.get("words") or [], ids)
        return cues, speakers, word_speakers

    def discard_draft(self, job_id: str) -> None:
        self.finished_job(job_id)
        with self._lock(job_id):
            try:
                (self.review_dir(job_id) / "draft.json").unlink()
            except FileNotFoundError:
                pass

    # ---- versions
    # ---------------------------------------------------------------------------------------------------
    def _version_numbers(self, job_id: str) -> list[int]:
        folder = self.versions_dir(job_id)
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "version.json").is_file()
        )

    def versions(self, job_id: str) -> list[dict]:
        out = []
        for n in self._version_numbers(job_id):
            info = self.version(job_id, n)
            out.append(
                {
                    k: info[k]
                    for k in ("version", "approved_at", "files", "cues", "exported_to", "warnings")
                    if k in info
                }
            )
        return out

    def version(self, job_id: str, number: int | str) -> dict:
        self.finished_job(job_id)
        numbers = self._version_numbers(job_id)
        if number == "latest":
            if not numbers:
                raise VersionNotFound(
                    f"job {job_id} has no approved version yet: review it and approve a draft",
                    details={"versions": []},
                )
            number = numbers[-1]
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = -1
        if number not in numbers:
            raise VersionNotFound(
                f"job {job_id} has no version {number}; its versions are "
                f"{', '.join(map(str, numbers)) or 'none (nothing approved yet)'}",
                details={"versions": numbers},
            )
        return json.loads(
            (self.versions_dir(job_id) / str(number) / "version.json").read_text(encoding="utf-8")
        )

    def version_file(self, job_id: str, number: int | str, name: str) -> Path:
        info = self.version(job_id, number)
        folder = (self.versions_dir(job_id) / str(info["version"])).resolve()
        if name not in info["files"] or _unsafe_name(name):
            raise ResultFileNotFound(
                f"version {info['version']} of job {job_id} has no file {name!r}; its files "
                f"are {', '.join(info['files'])}",
                details={"files": info["files"]},
            )
        path = (folder / name).resolve()
        if path.parent != folder or not path.is_file():
            raise ResultFileNotFound(
                f"file {name!r} of version {info['version']} is gone from disk",
                details={"files": info["files"]},
            )
        return path

    def approve(self, job_id: str, body: Any) -> dict:
        """Validate the draft's cues (hard rules must pass), then write version n+1 in every format."""
        job = self.finished_job(job_id)
        if not isinstance(body, dict) or "cues" not in body:
            raise BadDraft('approve with {"cues": [...]} (the draft to approve)')
        base = self.base_document(job)
        cues, speakers, word_speakers = self.parse_body(job, base, body)
        cue_dicts = [_cue_dict(c) for c in cues]
        findings = self.findings(job, cue_dicts)
        hard = [f for f in findings if f["severity"] == HARD]
        if hard:
            first = hard[0]
            raise ApprovalRefused(
                f"{len(hard)} caption-rule violation(s) must be fixed before approval; first: "
                f"cue {first['cue'] + 1} ({first['language']}) {first['rule']}: "
                f"{first['message']}",
                details={"findings": hard},
            )
        with self._lock(job_id):
            numbers = self._version_numbers(job_id)
            number = (numbers[-1] if numbers else 0) + 1
            previous_doc = self.version(job_id, numbers[-1])["document"] if numbers else base
            previous = previous_doc["cues"]
            doc = CaptionDocument.from_dict(base)
            doc.cues = cues
            if speakers or doc.speakers:
                doc.speakers = speakers
            doc.words = [
                replace(w, speaker=word_speakers[k]) if k in word_speakers else w
                for k, w in enumerate(doc.words)
            ]
            speaker_changes = _speaker_changes(previous_doc, doc.to_dict())
            loaded, warnings = self._load_for_writing(job)
            formats = self._formats(job)
            stem = output_stem(Path(job.timeline_path))
            if job.options.get("review_import"):
                stem = output_stem(Path(job.options["review_import"]))
                if stem.endswith(".captions"):
                    stem = stem[: -len(".captions")]
            folder = self.versions_dir(job_id) / str(number)
            staging = self.versions_dir(job_id) / f".{number}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            files = write_outputs(
                doc, staging, stem, formats, loaded, bool(job.options.get("absolute_times"))
            )
            exported = None
            target = job.options.get("review_export_dir")
            if target:  # an imported captions file: the version also lands beside it
                try:
                    write_outputs(
                        doc,
                        Path(target),
                        f"{stem}.v{number}",
                        formats,
                        loaded,
                        bool(job.options.get("absolute_times")),
                    )
                    exported = str(target)
                except (OSError, CaptionBridgeError) as exc:
                    warnings.append(f"could not also write version {number} into {target}: {exc}")
            info = {
                "job": job_id,
                "version": number,
                "approved_at": iso(time.time()),
                "files": files,
                "cues": len(cues),
                "based_on": int(body.get("base_version") or 0),
                "exported_to": exported,
                "warnings": warnings,
                "speaker_changes": speaker_changes,
                "document": doc.to_dict(),
            }
            _write_json_atomic(staging / "version.json", info)
            os.replace(staging, folder)
            try:
                (self.review_dir(job_id) / "draft.json").unlink()
            except FileNotFoundError:
                pass
        # speaker marks are layout, not words: a cue given to another speaker (its label rewritten) is no
        # transcription correction, and the dash/label never reaches the training data
        names = {s["id"]: s.get("name") for s in (previous_doc.get("speakers") or []) + speakers}
        info["corrections"] = self._capture(
            job,
            base,
            _without_speaker_marks([Cue.from_dict(c) for c in previous], names),
            _without_speaker_marks(cues, names),
            info["warnings"],
        )
        if doc.speakers or any(w.speaker for w in doc.words):
            self._remember_speakers(job, CaptionDocument.from_dict(previous_doc), doc, info["warnings"])
        return {k: v for k, v in info.items() if k != "document"}

    def _remember_speakers(
        self, job: Job, before: CaptionDocument, after: CaptionDocument, warnings: list[str]
    ) -> None:
        """Keep this approval's speaker corrections and names with the media's voices, so the next caption run
        on the same media (re-caption, Update) labels those words and names those speakers as approved; never
        fails the approval itself."""
        from ...core.corrections.speakers import effective_speakers, remember_speaker_corrections
        from ...core.timeline.regions import missing_media, regions_and_skipped

        engine = [w.speaker for w in CaptionDocument.from_dict(self.base_document(job)).words]
        old = effective_speakers(before.words, before.cues, engine)
        new = effective_speakers(after.words, after.cues, engine)
        if old == new and [(s.get("id"), s.get("name")) for s in before.speakers] == [
            (s.get("id"), s.get("name")) for s in after.speakers
        ]:
            return
        try:
            loaded = self._load_timeline(job)
            if loaded is None:
                return  # an imported captions file without its timeline: no media to remember voices of
            regions, _ = regions_and_skipped(loaded, job.options.get("tracks"), require_audio=True)
            missing = {(m["clip"], m["start_frame"]) for m in missing_media(regions)}
            regions = [r for r in regions if (r.clip_name, r.timeline_start_frame) not in missing]
            if regions:
                remember_speaker_corrections(regions, after.words, old, new, after.speakers)
        except (OSError, RuntimeError, ValueError, CaptionBridgeError) as exc:
            warnings.append(
                "the speaker corrections were approved but not remembered for the next run on this media "
                f"({exc})"
            )

    def _capture(
        self, job: Job, base: dict, before: list[Cue], approved: list[Cue], warnings: list[str]
    ) -> int:
        """Keep what this approval corrected as training data (``captionbridge corrections``); never fails the
        approval itself."""
        from ...core.corrections.capture import corrections_from_approval, span_audio
        from ...core.corrections.store import CorrectionStore

        records = corrections_from_approval(
            base, before, approved, job_id=job.id, model=str(job.options.get("model") or "default")
        )
        if not records:
            return 0
        try:
            media = self.media(job, create=True)
            store = CorrectionStore(self.service.data_dir)
            for record in records:
                store.add(record, span_audio(media.audio, media.sample_rate, record.start, record.end))
        except (OSError, RuntimeError, ValueError, CaptionBridgeError) as exc:
            warnings.append(f"the corrections were approved but not kept as training data ({exc})")
            return 0
        return len(records)

    # ---- the timeline and its audio
    # ----------------------------------------------------------------------------
    def _load_timeline(self, job: Job):
        from ...adapters.media_timeline import is_media_file, load_media_as_timeline
        from ...adapters.timeline_read import load_timeline

        path = Path(job.options.get("review_timeline") or job.timeline_path)
        if job.options.get("review_import") and not job.options.get("review_timeline"):
            return None
        if not path.exists():
            return None
        if is_media_file(path):
            return load_media_as_timeline(
                path,
                job.options.get("rate"),
                job.options.get("start_timecode"),
                job.options.get("drop_frame"),
            )
        return load_timeline(path, drop_frame=job.options.get("drop_frame"))

    def _load_for_writing(self, job: Job):
        warnings: list[str] = []
        needs = set(self._formats(job)) & {"otio", "fcpxml", "xmeml"}
        if not needs:
            return None, warnings
        try:
            loaded = self._load_timeline(job)
        except CaptionBridgeError as exc:
            loaded = None
            warnings.append(
                f"the timeline {job.timeline_path} no longer reads ({exc.message}): the "
                f"{', '.join(sorted(needs))} files hold the captions without the edit"
            )
        else:
            if loaded is None and not job.options.get("review_import"):
                warnings.append(
                    f"the timeline {job.timeline_path} is gone: the {', '.join(sorted(needs))} files "
                    "hold the captions without the edit"
                )
        return loaded, warnings

    def _can_render(self, job: Job) -> bool:
        path = job.options.get("review_timeline") or (
            None if job.options.get("review_import") else job.timeline_path
        )
        return bool(path) and Path(path).exists()

    def media(self, job: Job, create: bool = True):
        """The job's review audio; made from its timeline on first use when the job did not write it."""
        for folder in (
            self.service.job_dir(job.id) / "out" / REVIEW_MEDIA_DIR,
            self.review_dir(job.id) / "media",
        ):
            media = read_review_media(folder)
            if media is not None:
                return media
        if not create:
            return None
        with self._lock(job.id):
            folder = self.review_dir(job.id) / "media"
            media = read_review_media(folder)
            if media is not None:
                return media
            try:
                loaded = self._load_timeline(job)
            except CaptionBridgeError as exc:
                raise NoReviewAudio(
                    f"no audio to review job {job.id} with: its timeline does not read ({exc.message})"
                ) from None
            if loaded is None:
                raise NoReviewAudio(
                    f"no audio to review job {job.id} with: its timeline {job.timeline_path} is gone"
                    if not job.options.get("review_import")
                    else "no audio for these captions: run 'captionbridge review CAPTIONS.json "
                    "--timeline TIMELINE' to hear them"
                )
            tracks = job.options.get("tracks")
            return write_timeline_review_media(loaded, folder, tracks)

    # ---- captions files from elsewhere
    # ------------------------------------------------------------------------
    def import_document(self, document: Any, source: str | None, timeline: str | None) -> Job:
        """A finished job made from a captions JSON (``captionbridge review CAPTIONS.json``)."""
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("timeline"), dict)
            or not isinstance(document.get("cues"), list)
        ):
            raise BadRequest("'document' must be a CaptionBridge captions JSON (with 'timeline' and 'cues')")
        try:
            doc = CaptionDocument.from_dict(document)
        except (KeyError, TypeError, ValueError, CaptionBridgeError) as exc:
            raise BadRequest(f"the captions JSON does not read: {exc}") from None
        options: dict[str, Any] = {"formats": ["json", "srt"]}
        source_path = Path(source).expanduser() if source else None
        if source_path is not None:
            if not source_path.is_absolute():
                raise BadRequest(f"source {source!r} must be an absolute path")
            options["review_import"] = str(source_path)
            options["review_export_dir"] = str(source_path.parent)
            options["formats"] = _sibling_formats(source_path)
        if timeline:
            tl = Path(timeline).expanduser()
            if not tl.is_absolute() or not tl.exists():
                raise InputError(f"timeline {timeline} does not exist (pass its absolute path)")
            options["review_timeline"] = str(tl)
        service = self.service
        job_id = service.store.new_id()
        name = source_path.name if source_path else f"{doc.name or 'captions'}.captions.json"
        out = service.job_dir(job_id) / "out"
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        (out / name).write_text(json.dumps(doc.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        with service._cond:  # workers claim under this lock: the row is finished before any worker sees it
            service.store.add(job_id, str(source_path or out / name), options, uploaded=False)
            service.store.finish(job_id, "succeeded", document=doc.to_dict(), files=[name], stage="imported")
        return service.get(job_id)


def _cue_dict(cue: Cue) -> dict:
    out = {"start_frame": cue.start_frame, "end_frame": cue.end_frame, "text": cue.text}
    if cue.speakers:
        out["speakers"] = list(cue.speakers)
    return out


def _without_speaker_marks(cues: list[Cue], names: dict[str, str | None]) -> list[Cue]:
    """The cues with every line's leading speaker dash or speaker label (of a known speaker) taken off."""
    from ...core.captions.compose import speaker_label

    if not names and not any(c.speakers for c in cues):
        return cues
    labels = set()
    for sid, name in names.items():
        for language in ("en", "zh"):
            labels.add(speaker_label(sid, {sid: name} if name else {}, language).strip())
    pattern = re.compile(
        r"^(?:-\s?|(?:%s)\s*)" % "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
        if labels
        else r"^-\s?"
    )
    out = []
    for cue in cues:
        text = {
            lang: "\n".join(pattern.sub("", line, count=1) for line in value.split("\n"))
            for lang, value in cue.text.items()
        }
        out.append(replace(cue, text=text))
    return out


def _word_speaker_changes(base: dict, words: list[dict] | None) -> dict[int, str]:
    """Word index -> speaker, where ``words`` (an approved version's) differ from the engine's."""
    engine_words = base.get("words") or []
    if not words or len(words) != len(engine_words):
        return {}
    return {
        k: w["speaker"]
        for k, (w, e) in enumerate(zip(words, engine_words))
        if w.get("speaker") and w.get("speaker") != e.get("speaker")
    }


def _speaker_changes(before: dict, after: dict) -> dict:
    """What an approval changed about who speaks (kept in the version, beside its corrections): cues on the
    same frames whose speakers changed, words given to another speaker, and renamed or added speakers."""
    old_cues = {
        (c["start_frame"], c["end_frame"]): list(c.get("speakers") or []) for c in before.get("cues", [])
    }
    cues = [
        {
            "start_frame": c["start_frame"],
            "end_frame": c["end_frame"],
            "from": old_cues[(c["start_frame"], c["end_frame"])],
            "to": list(c.get("speakers") or []),
        }
        for c in after.get("cues", [])
        if (c["start_frame"], c["end_frame"]) in old_cues
        and old_cues[(c["start_frame"], c["end_frame"])] != list(c.get("speakers") or [])
    ]
    words = [
        {"word": k, "text": w.get("text"), "from": b.get("speaker"), "to": w.get("speaker")}
        for k, (w, b) in enumerate(zip(after.get("words") or [], before.get("words") or []))
        if w.get("speaker") != b.get("speaker")
    ]
    old_names = {s["id"]: s.get("name") for s in before.get("speakers") or []}
    names = [
        {"id": s["id"], "from": old_names.get(s["id"]), "to": s.get("name")}
        for s in after.get("speakers") or []
        if s["id"] not in old_names or old_names[s["id"]] != s.get("name")
    ]
    return {"cues": cues, "words": words, "speakers": names}


def _sibling_formats(source: Path) -> list[str]:
    """The formats written beside an imported captions JSON (the same job's other files), json always."""
    name = source.name
    stem = name[: -len(".captions.json")] if name.endswith(".captions.json") else source.stem
    folder = source.parent
    formats = ["json"]
    try:
        siblings = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        siblings = []
    for fmt, pattern in (
        ("srt", ".srt"),
        ("vtt", ".vtt"),
        ("ass", ".ass"),
        ("ttml", ".ttml"),
        ("otio", ".captions.otio"),
        ("fcpxml", ".captions.fcpxml"),
        ("xmeml", ".titles.xml"),
    ):
        if any(
            s.startswith(stem + ".") and s.endswith(pattern) and ".v" not in s[len(stem) : -len(pattern)]
            for s in siblings
        ):
            formats.append(fmt)
    if len(formats) == 1:
        formats.append("srt")
    return formats
