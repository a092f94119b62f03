"""The main job, engine side: a loaded timeline -> audio regions -> words -> cues -> (translation) -> a
CaptionDocument.

No files are written here and nothing editor-specific happens: reading the timeline and writing caption files
are adapters' work (``plugin/caption_job.py`` ties the three together for the CLI and the service).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .captions.compose import compose_cues
from .captions.cue_timing import settle_word_frames
from .captions.presets import language_family
from .errors import InputError, MissingMediaError
from .model import CaptionDocument
from .progress import Progress
from .timeline.regions import describe_missing, missing_media, regions_and_skipped, video_cut_points

# Relative cost of each stage, for one progress bar / ETA over the whole job.
STAGES = {"read": 1.0, "transcribe": 80.0, "speakers": 6.0, "compose": 2.0, "translate": 12.0, "write": 1.0}
LANGUAGES = ("en", "zh")
# Spoken languages CaptionBridge captions: word joining, line breaking and presets exist for these only
# (Whisper recognises ~100, but e.g. French through this pipeline came out as "j 'ai"). Anything else is
# refused (exit 3).
SOURCE_LANGUAGES = ("auto",) + LANGUAGES
STYLE_PRESETS = ("broadcast", "social")  # language-neutral styles that also apply to the translated language


def unsupported_language(language: str, detected: bool = False) -> str:
    """The one-line refusal for a spoken language CaptionBridge does not caption."""
    if detected:
        return (
            f"the speech was detected as {language!r}, which CaptionBridge does not caption (it captions en "
            "and "
            "zh); if the detection is wrong, pass --language en or --language zh"
        )
    return (
        f"unsupported language {language!r}: CaptionBridge captions English and Chinese speech, so use "
        "--language auto, en or zh"
    )


@dataclass
class CaptionOptions:
    """Everything a caption job can be told. Defaults are what a professional expects out of the box."""

    language: str = "auto"  # forced source language, or auto-detect
    translate_to: str | None = None  # "en" or "zh" for bilingual captions
    preset: str | None = None  # netflix-en / netflix-zh / broadcast / social; None: by language
    tracks: list[str] | None = None  # audio tracks to caption ("A1"); None: every audible track
    model: str | None = None  # Whisper model name or folder; None: packaged offline model
    device: str = "auto"  # auto | cpu | cuda
    device_index: int = 0  # which GPU; the engine service gives each worker its own
    formats: list[str] = field(default_factory=lambda: ["json", "srt"])
    allow_missing: bool = False  # render silence for missing media instead of stopping
    simplified_chinese: bool = True  # convert Chinese output to Simplified
    glossary: str | None = None  # file of fixed term translations / hotwords
    vocabulary: list[str] | None = None  # words people corrected more than once: hotwords for the decoder
    translation_model: str | None = None  # translation model name or folder
    absolute_times: bool = False  # SRT/VTT times include the start timecode
    drop_frame: bool | None = None  # the editor's own drop-frame setting (overrides the file, with a warning)
    rate: str | None = None  # for a bare media file: the frame rate the captions are for
    start_timecode: str | None = None  # for a bare media file: where its first frame sits
    max_chars_per_line: int | None = None
    max_lines: int | None = None
    max_chars_per_second: float | None = None
    speakers: str | int | None = None  # label speakers: "auto", a number, or None/"off"
    speaker_names: list[str] | None = None  # names for S1, S2, ... ("Ana,Ben")
    speaker_marks: str | None = None  # dash | label | none; None: the preset's
    packing: bool = True  # short clips' speech decoded together in shared 30 s Whisper windows

    @classmethod
    def from_dict(cls, data: dict) -> "CaptionOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"unknown option(s): {', '.join(unknown)}; known options are {', '.join(sorted(known))}"
            )
        opts = cls(**{k: v for k, v in data.items() if v is not None or k in ("translate_to", "preset")})
        opts.validate()
        return opts

    def validate(self) -> None:
        self.language = (self.language or "auto").strip().lower()
        if self.language not in SOURCE_LANGUAGES:
            raise InputError(unsupported_language(self.language))
        if isinstance(self.tracks, str):
            self.tracks = [t.strip() for t in self.tracks.split(",") if t.strip()]
        if isinstance(self.formats, str):
            self.formats = [f.strip() for f in self.formats.split(",") if f.strip()]
        if self.translate_to is not None:
            if self.translate_to not in LANGUAGES:
                raise InputError(
                    f"cannot translate to {self.translate_to!r}: supported targets are en and zh"
                )
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"unknown device {self.device!r}: use auto, cpu or cuda")
        from .speech.speakers import parse_speaker_names, parse_speakers

        self.speakers = parse_speakers(self.speakers)
        self.speaker_names = parse_speaker_names(self.speaker_names) or None
        if self.speaker_names and self.speakers is None:
            self.speakers = "auto"  # naming speakers asks for them
        if isinstance(self.speakers, int) and self.speaker_names and len(self.speaker_names) > self.speakers:
            raise InputError(
                f"--speaker-names gives {len(self.speaker_names)} names for --speakers "
                f"{self.speakers}: give at most one name per speaker"
            )
        if self.speaker_marks is not None and self.speaker_marks not in ("dash", "label", "none"):
            raise InputError(f"unknown speaker marks {self.speaker_marks!r}: use dash, label or none")

    def overrides(self) -> dict:
        return {
            k: v
            for k, v in (
                ("max_chars_per_line", self.max_chars_per_line),
                ("max_lines", self.max_lines),
                ("max_chars_per_second", self.max_chars_per_second),
                ("speaker_marks", self.speaker_marks),
            )
            if v is not None
        }


def default_preset(language: str) -> str:
    return "netflix-zh" if language_family(language) == "zh" else "netflix-en"


def caption_timeline(loaded, options: CaptionOptions, progress: Progress | None = None) -> CaptionDocument:
    """Caption one loaded timeline (``adapters.timeline_read.LoadedTimeline``)."""
    from .speech.transcribe import TranscribeOptions, transcribe_regions  # heavy: faster-whisper

    progress = progress or Progress(STAGES)
    progress.update("read", 0.0)
    timebase = loaded.timebase
    regions, skipped_list = regions_and_skipped(loaded, options.tracks, require_audio=True)
    warnings: list[str] = list(getattr(loaded, "warnings", []))
    for skipped in skipped_list:
        if not skipped.reason.startswith(("disabled", "muted", "track muted", "track disabled")):
            warnings.append(
                f"clip {skipped.clip_name!r} on {skipped.track_label} at "
                f"{timebase.timecode(skipped.timeline_start_frame)} is not captioned: {skipped.reason}"
            )
    missing = missing_media(regions)
    if missing:
        listing = describe_missing(missing, advice=False)
        if not options.allow_missing:
            raise MissingMediaError(
                f"{listing}. Relink the media, or pass --allow-missing to "
                "caption the rest (those clips stay uncaptioned)",
                missing,
            )
        warnings.append(f"missing media left uncaptioned: {listing}")
        missing_clips = {(m["clip"], m["start_frame"]) for m in missing}
        regions = [r for r in regions if (r.clip_name, r.timeline_start_frame) not in missing_clips]
        if not regions:
            raise MissingMediaError(
                f"nothing to caption: every audio clip's media is missing ({listing}); relink "
                "the media and run again",
                missing,
            )
    cut_points = video_cut_points(loaded)
    progress.update("read", 1.0)

    glossary = None
    if options.glossary:
        from .translate.glossary import load_glossary

        glossary = load_glossary(options.glossary)
    hotwords = [glossary.hotwords(options.language)] if glossary and options.language != "auto" else []
    hotwords += list(options.vocabulary or [])
    topts = TranscribeOptions(
        language=options.language,
        model=options.model,
        device=options.device,
        device_index=options.device_index,
        simplified_chinese=options.simplified_chinese,
        pack=options.packing,
        hotwords=" ".join(h for h in hotwords if h) or None,
    )
    transcript = transcribe_regions(regions, timebase, topts, progress=progress)
    warnings.extend(transcript.warnings)
    language = transcript.language
    if transcript.words and language.lower().replace("_", "-").split("-")[0] not in LANGUAGES + ("yue",):
        raise InputError(unsupported_language(language, detected=True))

    words, speaker_list, names = transcript.words, [], {}
    if options.speakers is not None and words:
        from .speech.remote import speaker_labeller  # label_speakers, or it with diarize on a cluster

        progress.update("speakers", 0.0)
        words, speaker_list, speaker_warnings = speaker_labeller()(
            regions,
            loaded.duration_frames,
            timebase,
            words,
            options.speakers,
            options.speaker_names,
            device=options.device,
        )
        warnings.extend(speaker_warnings)
        names = {s["id"]: s["name"] for s in speaker_list if s.get("name")}
        progress.update("speakers", 1.0)

    progress.update("compose", 0.0)
    preset = options.preset or default_preset(language)
    # nothing may end after the timeline: words and cues stop at its last frame
    end_frame = loaded.duration_frames
    words = settle_word_frames(words, end_frame)
    cues = compose_cues(
        words,
        timebase,
        preset,
        language,
        cut_points,
        end_frame=end_frame,
        speaker_names=names,
        **options.overrides(),
    )
    doc = CaptionDocument(
        name=loaded.name,
        timebase=timebase,
        source_language=language,
        words=words,
        cues=cues,
        languages=[language],
        warnings=warnings,
        speakers=speaker_list,
    )
    progress.update("compose", 1.0)

    if options.translate_to and options.translate_to != language_family(language):
        from .translate.cues import translate_document_with_report
        from .translate.glossary import with_kept_terms
        from .translate.remote import remote_translator

        # names and jargon people corrected in review stay as they spelled them
        glossary = with_kept_terms(glossary, options.vocabulary, language, options.translate_to)

        remote = remote_translator(options.translation_model, options.device, "--translation-model")
        doc = translate_document_with_report(
            doc,
            options.translate_to,
            model=options.translation_model,
            device=options.device,
            glossary=glossary,
            progress=progress,
            simplified_chinese=options.simplified_chinese,
            preset=options.preset if options.preset in STYLE_PRESETS else None,
            translator=remote,  # None: the local model
            flag="--translation-model",
        )[0]
        if remote is not None:
            doc.warnings.extend(remote.warnings)
    return doc


def align_document(
    source,
    script: str,
    language: str | None = None,
    options=None,
    model=None,
    rate=25,
    preset: str | None = None,
    tracks=None,
    progress=None,
):
    """Align ``script`` to a loaded timeline (its own clock, audio rendered from its regions) or to an audio
    file (time 0 = its start, frames at ``rate``). Returns (CaptionDocument with words and composed cues,
    Alignment)."""
    from pathlib import Path

    from .model import LoadedTimeline, Word
    from .speech.align import align_script
    from .speech.transcribe import SAMPLE_RATE, _decode_file
    from .timeline.regions import audio_regions
    from .timeline.render_audio import render_audio
    from .timeline.timebase import Timebase

    progress and progress.update("align", 0.0)
    cut_points: list[int] = []
    breaks: list[float] | None = None
    if isinstance(source, LoadedTimeline):
        timebase = source.timebase
        regions = audio_regions(source, tracks)
        if not regions:
            raise InputError(f"timeline {source.path.name} has no audible audio clips to align the script to")
        samples = render_audio(regions, source.duration_frames, timebase, SAMPLE_RATE).samples
        cut_points = list(video_cut_points(source))
        name = source.name or source.path.stem
        # each clip's audio is aligned on its own: no speech window spans a clip edge or a gap
        breaks = sorted(
            {
                float(timebase.seconds(f))
                for r in regions
                for f in (r.timeline_start_frame, r.timeline_end_frame)
            }
        )
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(
                f"{path} does not exist: pass an audio file or a timeline (.otio, .xml, .fcpxml)"
            )
        timebase = Timebase(rate)
        samples = _decode_file(path)
        name = path.stem
    alignment = align_script(samples, script, language, options, model, breaks=breaks)
    progress and progress.update("align", 0.9)
    words = [
        Word.at(w.text, w.start, w.end, timebase, w.confidence, alignment.language) for w in alignment.words
    ]
    cues = []
    if words:
        cues = compose_cues(
            words, timebase, preset or default_preset(alignment.language), alignment.language, cut_points
        )
    doc = CaptionDocument(
        name=name,
        timebase=timebase,
        source_language=alignment.language,
        words=words,
        cues=cues,
        languages=[alignment.language],
        warnings=list(alignment.warnings),
    )
    progress and progress.update("align", 1.0)
    return doc, alignment
