"""Speech -> timed words, in timeline time, with faster-whisper and guards editors can trust.

Per source span (adjacent regions of one source merged when contiguous):

1. decode 16 kHz mono; look the span up in the transcript cache (media content hash + source range + model +
   settings) and skip everything below on a hit;
2. Silero VAD finds speech; speech chunks are joined with short silences and only that is decoded, so nothing
   is emitted inside silence, music or noise (hallucination guard #1);
3. faster-whisper with ``condition_on_previous_text=False``, no-speech / log-probability / compression gates
   and word timestamps; known silence phrases in low-confidence segments and repetition loops are removed;
4. words are mapped back from the joined audio to the span (each to the speech chunk holding most of it),
   their boundaries refined on the audio (``word_timing``), Chinese normalised (``chinese_text``);
5. words are clipped to the region's visible range and mapped to the timeline through the region.

Language is forced, or detected once per job from several speech windows spread over all of the audio.

Short spans (cache misses of one job, up to ``packing.SPAN_MAX`` long, whose joined speech fits a window)
share Whisper windows: their speech is joined into stretches of up to ``packing.WINDOW`` seconds and decoded
once (step 3); each word goes back to the span holding most of it (step 4 within that span only), and steps
4-5 run per span as above. ``TranscribeOptions.pack`` turns it off; a packed span's cache key says so.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..model import Word
from ..progress import Progress
from ..timeline.timebase import Timebase
from . import acoustic_timing, packing
from .chinese_text import CJK_LANGUAGES, normalise_chinese
from .remote import RemoteUnavailable, SpanRequest, speech_backend
from .transcript_cache import TranscriptCache, cache_key, media_fingerprint, samples_fingerprint
from .word_timing import LagModel, lag_model_for, refine_word_times, speech_activity

SAMPLE_RATE = 16000
ALGORITHM_VERSION = "transcribe-6"  # bump when output for the same input changes (cache key)
_JOIN_GAP = 0.3  # seconds of silence between joined speech chunks
PREFETCH = True  # English pieces aligned beside Whisper's decoding (``acoustic_timing.Prefetcher``)
_HALLUCINATIONS = (
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "subtitles by",
    "subscribe to",
    "like and subscribe",
    "see you next time",
    "transcribed by",
    "字幕",
    "请不吝点赞",
    "請不吝點贊",
    "订阅",
    "訂閱",
    "明镜与点点",
    "amara.org",
)

RawWord = tuple[str, float, float, float]  # text, start, end, probability (seconds in the audio's own time)


@dataclass(frozen=True)
class TranscribeOptions:
    """How to transcribe. Defaults are the guarded, offline, professional settings."""

    language: str = "auto"  # "auto" or a Whisper code (en, zh, ...)
    model: str | None = (
        None  # None/"auto": packaged model; a folder; or a hub name (tiny ... large-v3, turbo)
    )
    device: str = "auto"  # auto | cpu | cuda
    device_index: int = 0  # which GPU (the service runs one worker per GPU)
    compute_type: str = "auto"  # auto: float16 on CUDA, int8 on CPU
    beam_size: int = 5
    vad: bool = True
    vad_threshold: float = 0.5
    simplified_chinese: bool = True  # convert Chinese output to Simplified (OpenCC)
    initial_prompt: str | None = None
    hotwords: str | None = None
    batch_size: int = 0  # 0: auto (8 on GPU, sequential on CPU)
    cpu_threads: int = 0
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    refine_timing: bool = True
    acoustic_timing: bool = True  # English words re-timed by the acoustic aligner (``acoustic_timing``)
    language_windows: int = 5  # speech windows used for language detection
    cache: bool = True
    pack: bool = True  # short spans' speech decoded together in shared 30 s windows (``packing``)

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise InputError(f"beam size must be at least 1, got {self.beam_size}")
        if self.hotwords is not None and not isinstance(self.hotwords, str):
            object.__setattr__(self, "hotwords", " ".join(self.hotwords))
        object.__setattr__(
            self,
            "temperature",
            tuple(self.temperature)
            if isinstance(self.temperature, (list, tuple))
            else (float(self.temperature),),
        )

    def settings_key(self) -> dict:
        """What changes the transcript (for the cache); device/threads only via compute type."""
        fields = (
            "language",
            "beam_size",
            "vad",
            "vad_threshold",
            "simplified_chinese",
            "initial_prompt",
            "hotwords",
            "no_speech_threshold",
            "log_prob_threshold",
            "compression_ratio_threshold",
            "temperature",
            "refine_timing",
            "acoustic_timing",
        )
        return {name: getattr(self, name) for name in fields}


@dataclass
class Transcript:
    words: list[Word]
    language: str
    language_probability: float
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        out = ""
        for w in self.words:
            cjk = w.language in CJK_LANGUAGES
            out += w.text if (cjk or not out) else " " + w.text
        return out


# -- spans: what gets transcribed --------------------------------------------------------------------------
@dataclass
class _Span:
    """One stretch of one source, as one region (merged from contiguous ones)."""

    region: object
    source_path: str | None
    source_start: Fraction  # seconds into the source
    source_duration: Fraction  # seconds of source audio covered
    timeline_start: Fraction  # timeline seconds of source_start
    speed: Fraction


def _speed(region) -> Fraction:
    speed = getattr(region, "speed", 1) or 1
    return Fraction(speed).limit_denominator(100000) if not isinstance(speed, Fraction) else speed


def _merge_regions(regions: Sequence, timebase: Timebase) -> list[_Span]:
    spans: list[_Span] = []
    # per track, in time: contiguous pieces of one source on one track become one span
    for region in sorted(
        regions,
        key=lambda r: (
            getattr(r, "track_index", 0) or 0,
            r.timeline_start_frame,
            str(getattr(r, "source_path", "")),
        ),
    ):
        speed = _speed(region)
        if speed <= 0:
            raise InputError(
                f"clip {getattr(region, 'name', '')!r} plays at speed {speed}: reverse or frozen audio "
                "cannot be transcribed; render it to a file first"
            )
        # exact edges where a region has them (a clip after one trimmed on audio samples starts between
        # frames)
        tl_start = getattr(region, "start_seconds", None)
        tl_start = timebase.seconds(region.timeline_start_frame) if tl_start is None else Fraction(tl_start)
        tl_end = getattr(region, "end_seconds", None)
        tl_dur = (
            timebase.seconds(region.timeline_end_frame) if tl_end is None else Fraction(tl_end)
        ) - tl_start
        if tl_dur <= 0:
            continue
        src = Fraction(getattr(region, "source_offset", 0) or 0)
        path = getattr(region, "source_path", None)
        last = spans[-1] if spans else None
        if (
            last is not None
            and path is not None
            and last.source_path == str(path)
            and last.speed == speed
            and getattr(last.region, "channels", None) == getattr(region, "channels", None)
            and getattr(last.region, "gain", 1.0) == getattr(region, "gain", 1.0)
            and last.timeline_start + last.source_duration / speed == tl_start
            and last.source_start + last.source_duration == src
        ):
            changes = {"timeline_end_frame": region.timeline_end_frame}
            if hasattr(region, "end_exact"):
                changes["end_exact"] = region.end_exact
            merged = _replace_region(last.region, **changes)
            last.region = merged
            last.source_duration += tl_dur * speed
            continue
        spans.append(_Span(region, None if path is None else str(path), src, tl_dur * speed, tl_start, speed))
    return spans


def _replace_region(region, **changes):
    try:
        return dataclasses.replace(region, **changes)
    except TypeError:  # not a dataclass: a shallow copy with the attribute changed
        import copy

        clone = copy.copy(region)
        for k, v in changes.items():
            object.__setattr__(clone, k, v)
        return clone


def _packed_family(family: str) -> str:
    """The transcript-cache family of spans decoded in a shared window (``packing``)."""
    return cache_key(family=family, decoding=packing.decoding_id())


def _span_key(family: str, span: "_Span") -> str:
    return cache_key(family=family, start=str(span.source_start), duration=str(span.source_duration))


def _decoded(span: "_Span", decode: Callable, ready: np.ndarray | None = None) -> np.ndarray:
    return ready if ready is not None else _span_audio(span, decode)[0]


def _default_decode(region, sample_rate: int) -> np.ndarray:
    from ..timeline import render_audio

    return render_audio.decode_region(region, sample_rate)


def _span_audio(span: _Span, decode: Callable) -> tuple[np.ndarray, Fraction]:
    """Samples of the span and how many source seconds one second of those samples is (1, or the speed when
    the decoder returned timeline-rate audio)."""
    samples = np.asarray(decode(span.region, SAMPLE_RATE), dtype=np.float32)
    if samples.ndim > 1:
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[-1] else 1).astype(np.float32)
    if span.speed != 1:
        timeline_len = float(span.source_duration / span.speed) * SAMPLE_RATE
        source_len = float(span.source_duration) * SAMPLE_RATE
        if abs(len(samples) - timeline_len) < abs(len(samples) - source_len):
            return samples, span.speed  # already retimed to the timeline
    return samples, Fraction(1)


# -- the public entry points
# -----------------------------------------------------------------------------------
def transcribe_regions(
    regions: Iterable,
    timebase: Timebase,
    options: TranscribeOptions | None = None,
    progress: Progress | None = None,
    decode: Callable | None = None,
    model=None,
    cache: TranscriptCache | None = None,
    backend=None,
) -> Transcript:
    """Timed words of the timeline's audio regions, in timeline time (``Word.at``, frames from frame 0).

    ``decode(region, sample_rate) -> np.ndarray`` (mono float32) defaults to ``render_audio.decode_region``.
    ``model`` (a loaded ``WhisperModel``) overrides ``options.model``. ``backend`` (default: the process's
    ``remote.speech_backend()``, unless a model object is given) transcribes the spans elsewhere (a facility
    cluster).
    """
    options = options or TranscribeOptions()
    decode = decode or _default_decode
    spans = _merge_regions(list(regions), timebase)
    engine = _Engine(
        options, model, cache, backend if backend is not None or model is not None else speech_backend()
    )
    return engine.run(spans, timebase, decode, progress)


def transcribe_audio(
    audio: np.ndarray | str | Path,
    options: TranscribeOptions | None = None,
    progress: Progress | None = None,
    timebase: Timebase | None = None,
    model=None,
    cache: TranscriptCache | None = None,
) -> Transcript:
    """Timed words of a bare audio file (any format PyAV reads) or 16 kHz mono samples; time 0 = its start."""
    options = options or TranscribeOptions()
    timebase = timebase or Timebase(25)
    if isinstance(audio, (str, Path)):
        path = Path(audio)
        if not path.is_file():
            raise InputError(f"audio file {path} does not exist")
        samples = _decode_file(path)
        source = str(path)
    else:
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise InputError("audio samples must be mono (one dimension) at 16 kHz")
        source = None
    region = _WholeAudio(samples, source)
    duration = Fraction(len(samples), SAMPLE_RATE)
    span = _Span(region, source, Fraction(0), duration, Fraction(0), Fraction(1))
    engine = _Engine(options, model, cache)
    return engine.run(
        [span],
        timebase,
        lambda r, sr: r.samples,
        progress,
        fingerprints={id(region): (media_fingerprint(source) if source else samples_fingerprint(samples))},
    )


def transcribe_span_samples(samples: np.ndarray, options: TranscribeOptions, model=None) -> dict:
    """One span's 16 kHz mono samples -> the engine's span result (what a remote replica runs): the language
    is detected on this span when ``options.language`` is auto, then the guarded transcription and word
    timing."""
    engine = _Engine(options, model, TranscriptCache(enabled=False))
    samples = np.asarray(samples, dtype=np.float32)
    language, probability = options.language, 1.0
    if language in ("auto", "", None):
        language, probability = engine.detect_language([samples])
    result = engine.transcribe_samples(samples, language)
    result["language_probability"] = probability
    result["warnings"] = _dedupe(engine.warnings + result.get("warnings", []))
    return result


@dataclass(frozen=True)
class _WholeAudio:
    samples: np.ndarray = field(repr=False)
    source_path: str | None = None
    timeline_start_frame: int = 0


def _decode_file(path: Path) -> np.ndarray:
    from faster_whisper.audio import decode_audio

    try:
        return decode_audio(str(path), sampling_rate=SAMPLE_RATE).astype(np.float32)
    except Exception as exc:  # PyAV raises many kinds
        raise InputError(f"cannot read audio from {path}: {exc}") from exc


# -- the engine ---------------------------------------------------------------------------------------------
class _Engine:
    def __init__(
        self, options: TranscribeOptions, model=None, cache: TranscriptCache | None = None, backend=None
    ):
        self.options = options
        self._model = model
        self.backend = backend
        self.remote_stats: dict = {}
        self.cache = cache or TranscriptCache(enabled=options.cache)
        self.warnings: list[str] = []
        self._lag: LagModel | None = None

    @property
    def model(self):
        if self._model is None:
            from .models import load_whisper

            self._model = load_whisper(
                self.options.model,
                self.options.device,
                self.options.compute_type,
                self.options.cpu_threads,
                self.options.device_index,
            )
        return self._model

    def _resolved(self):
        """Which model this is (a ``ResolvedModel``), or None for a model object of unknown origin."""
        resolved = getattr(self._model, "captionbridge_model", None) if self._model is not None else None
        if resolved is None and self._model is None:
            from .models import resolve_model

            resolved = resolve_model(self.options.model)
        return resolved

    def _model_id(self) -> str:
        resolved = self._resolved()
        if resolved is not None:
            return resolved.cache_key
        return f"object:{getattr(self._model, 'model', None).__class__.__name__}:{id(self._model)}"

    def lag_model(self) -> LagModel:
        """The word-timing calibration of the model in use (none for a model object of unknown origin)."""
        if self._lag is None:
            resolved = self._resolved()
            self._lag = (
                lag_model_for(None)
                if resolved is None
                else lag_model_for(resolved.name, resolved.path if Path(resolved.path).is_dir() else None)
            )
        return self._lag

    def _compute_id(self) -> str:
        from .models import resolve_device

        if self._model is not None and getattr(self._model, "captionbridge_model", None) is None:
            return "external"
        return ":".join(resolve_device(self.options.device, self.options.compute_type))

    def run(
        self,
        spans: list[_Span],
        timebase: Timebase,
        decode: Callable,
        progress: Progress | None,
        fingerprints: dict | None = None,
    ) -> Transcript:
        opts = self.options
        total = float(sum(s.source_duration for s in spans)) or 1.0
        report = (lambda f: progress.update("transcribe", f)) if progress else (lambda f: None)
        report(0.0)
        keys, results = [], {}
        if self.backend is not None and spans:
            results.update(self._run_remote(spans, decode, report, total, fingerprints))
        remote_done = set(results)
        if len(results) < len(spans):  # local work left (no backend, or it fell back): the local cache first
            model_id, compute_id = self._model_id(), self._compute_id()
            # everything that decides the word times: the model's lag calibration and the acoustic aligner
            timing = {
                **dataclasses.asdict(self.lag_model()),
                "acoustic": acoustic_timing.identity()
                if opts.acoustic_timing and opts.refine_timing
                else None,
            }
        for i, span in enumerate(spans):
            if i in results:
                keys.append((None, None))
                continue
            if fingerprints and id(span.region) in fingerprints:
                media = fingerprints[id(span.region)]
            elif span.source_path and Path(span.source_path).is_file():
                media = media_fingerprint(span.source_path)
            else:
                media = None  # no file to hash (generated audio): never cached
            family = (
                None
                if media is None
                else cache_key(
                    media=media,
                    model=model_id,
                    compute=compute_id,
                    settings=opts.settings_key(),
                    algorithm=ALGORITHM_VERSION,
                    timing=timing,
                )
            )
            if family is not None:  # which channels at what level: different audio from the same file
                channels = getattr(span.region, "channels", None)
                family = cache_key(
                    family=family,
                    channels=None if channels is None else list(channels),
                    gain=round(float(getattr(span.region, "gain", 1.0) or 1.0), 4),
                )
            key = (
                None
                if family is None
                else cache_key(
                    family=family, start=str(span.source_start), duration=str(span.source_duration)
                )
            )
            keys.append((key, family))
            # a span decoded alone, or (when packing is on) in a shared window: both are kept under keys that
            # say which; a run with packing off only takes what was decoded alone
            families = [] if family is None else [family] + ([_packed_family(family)] if opts.pack else [])
            hit = None
            for fam in families:
                hit = self.cache.get(_span_key(fam, span))
                if hit is not None:
                    break
            for fam in families if hit is None else ():  # a trimmed clip: a transcript of a range holding it
                covering = self.cache.find_covering(fam, span.source_start, span.source_duration)
                if covering is not None:
                    value, shift = covering
                    shift_s = float(shift)
                    hit = {
                        **value,
                        "words": [[t, s - shift_s, e - shift_s, p] for t, s, e, p in value["words"]],
                    }
                    break
            if hit is not None:
                results[i] = hit
        misses = [i for i in range(len(spans)) if i not in results]
        language, language_probability = opts.language, 1.0
        if misses and (opts.language in ("auto", "", None)):
            # several spans spread over the job (decoded again below: memory stays one span at a time)
            step = max(1, len(misses) // max(1, opts.language_windows))
            picked = misses[::step][: max(1, opts.language_windows)]
            language, language_probability = self.detect_language(
                [_span_audio(spans[i], decode)[0] for i in picked]
            )
        done = float(sum(spans[i].source_duration for i in results))
        report(done / total)
        open_packs: list[packing.Pack] = []
        packed_spans = packs = 0

        def store(i: int, rate: Fraction, result: dict) -> None:
            nonlocal done
            result["language_probability"] = language_probability
            if rate != 1:  # decoder gave timeline-rate audio: express times in source seconds
                result["words"] = [[t, s * float(rate), e * float(rate), p] for t, s, e, p in result["words"]]
            key, family = keys[i]
            if key and result.get("decoding", "").startswith("packed"):
                family = _packed_family(family)
                key = _span_key(family, spans[i])
            if key:
                self.cache.put(key, result, family, str(spans[i].source_start), str(spans[i].source_duration))
            results[i] = result
            done += float(spans[i].source_duration)
            report(done / total)

        def alone(i: int, samples: np.ndarray, rate: Fraction, chunks=None) -> None:
            span_len = float(spans[i].source_duration)

            def on_progress(
                seconds: float, base=done, scale=span_len / max(len(samples) / SAMPLE_RATE, 1e-9)
            ):
                report(min(1.0, (base + seconds * scale) / total))

            store(i, rate, self.transcribe_samples(samples, language, on_progress, chunks))

        def flush(pack: packing.Pack) -> None:
            nonlocal packed_spans, packs
            if len(pack) == 1:  # a pack of one is a span decoded alone (the same audio, the same key)
                (i, rate), samples, chunks = pack.members[0], pack.samples[0], pack.chunks[0]
                alone(i, samples, rate, chunks)
            elif len(pack) > 1:
                span_len = float(sum(spans[i].source_duration for i, _ in pack.members))

                def on_progress(seconds: float, base=done, scale=span_len / max(pack.seconds, 1e-9)):
                    report(min(1.0, (base + seconds * scale) / total))

                members, decoded = pack.members, self.transcribe_pack(pack, language, on_progress)
                packed_spans, packs = packed_spans + len(members), packs + 1
                for (i, rate), result in zip(members, decoded):
                    store(i, rate, result)

        for i in misses:
            samples, rate = _span_audio(spans[i], decode)
            if not (opts.pack and opts.vad) or len(samples) < SAMPLE_RATE // 10:
                alone(i, samples, rate)
                continue
            chunks = _speech_chunks(samples, opts)
            speech = packing.joined_seconds(chunks, SAMPLE_RATE, _JOIN_GAP)
            if not packing.packable(len(samples) / SAMPLE_RATE, speech):
                alone(i, samples, rate, chunks)  # long (or silent): decoded on its own, as it always was
                continue
            pack, full = packing.place(open_packs, speech, len(samples) / SAMPLE_RATE)
            if full is not None:
                flush(full)
            packing.add(pack, (i, rate), samples, chunks, speech)
        for pack in open_packs:
            flush(pack)

        tagged: list[tuple[Word, int]] = []
        seconds_by_language: dict[str, float] = {}
        probs: dict[str, float] = {}
        for i, span in enumerate(spans):
            result = results[i]
            lang = result.get("language") or "und"
            seconds_by_language[lang] = seconds_by_language.get(lang, 0.0) + float(span.source_duration)
            probs[lang] = max(probs.get(lang, 0.0), float(result.get("language_probability", 0.0)))
            self.warnings.extend(result.get("warnings", []))
            tagged.extend((w, i) for w in self._to_timeline(span, result["words"], lang, timebase))
        tagged.sort(key=lambda item: (item[0].start, item[0].end))
        words, duplicates = _drop_cross_track_duplicates(tagged)
        if duplicates:
            self.warnings.append(
                f"{duplicates} word(s) heard on more than one audio track at the same time were "
                "kept once (dual-mono or doubled microphones)"
            )
        final_language = (
            max(seconds_by_language, key=seconds_by_language.get)
            if seconds_by_language
            else (language if language not in ("auto", "", None) else "und")
        )
        report(1.0)
        return Transcript(
            words,
            final_language,
            probs.get(final_language, language_probability),
            _dedupe(self.warnings),
            {
                "spans": len(spans),
                "cached_spans": len(spans) - len(misses) - len(remote_done),
                "transcribed_seconds": float(sum(spans[i].source_duration for i in misses)),
                "packed_spans": packed_spans,
                "packs": packs,
                "audio_seconds": total,
                "acoustic_timing": _sum_timing_stats(results[i].get("acoustic_timing") for i in misses),
                **(
                    {"remote": {**self.remote_stats, "spans": len(remote_done)}}
                    if self.backend is not None
                    else {}
                ),
            },
        )

    def _run_remote(
        self,
        spans: list[_Span],
        decode: Callable,
        report: Callable[[float], None],
        total: float,
        fingerprints: dict | None,
    ) -> dict:
        """Span results from the backend (index -> result, times in source seconds). What it could not do is
        left out, with its message among the warnings, and is transcribed locally by the caller."""
        rates: dict[int, Fraction] = {}
        requests = []
        for i, span in enumerate(spans):
            if fingerprints and id(span.region) in fingerprints:
                media = fingerprints[id(span.region)]
            elif span.source_path and Path(span.source_path).is_file():
                media = media_fingerprint(span.source_path)
            else:
                media = None
            channels = getattr(span.region, "channels", None)
            identity = (
                None
                if media is None
                else cache_key(
                    media=media,
                    channels=None if channels is None else list(channels),
                    gain=round(float(getattr(span.region, "gain", 1.0) or 1.0), 4),
                    start=str(span.source_start),
                    duration=str(span.source_duration),
                    speed=str(span.speed),
                )
            )
            eager = None
            if span.speed != 1:  # the decoder decides the time scale of the samples: find it out now
                eager, rates[i] = _span_audio(span, decode)
            requests.append(
                SpanRequest(
                    i, float(span.source_duration), identity, functools.partial(_decoded, span, decode, eager)
                )
            )
        try:
            done = self.backend.transcribe_spans(requests, self.options, lambda f: report(min(1.0, f)))
        except RemoteUnavailable as exc:
            self.warnings.append(exc.message)
            done = dict(exc.partial)
        self.remote_stats = dict(getattr(self.backend, "last_stats", {}) or {})
        self.warnings.extend(self.remote_stats.pop("warnings", []))
        out = {}
        for i, result in done.items():
            rate = rates.get(i, Fraction(1))
            if rate != 1:
                result = {
                    **result,
                    "words": [[t, s * float(rate), e * float(rate), p] for t, s, e, p in result["words"]],
                }
            out[i] = result
        return out

    # -- mapping to the timeline ----------------------------------------------------------------------------
    @staticmethod
    def _to_timeline(span: _Span, raw: list, language: str, timebase: Timebase) -> list[Word]:
        out = []
        limit = float(span.source_duration)
        speed = float(span.speed)
        origin = span.timeline_start
        for text, start, end, prob in raw:
            start, end = float(start), float(end)
            visible_start, visible_end = max(start, 0.0), min(end, limit)
            length = max(end - start, 1e-9)
            if visible_end <= visible_start or (visible_end - visible_start) / length < 0.5:
                continue  # mostly outside what the timeline plays: cut away by the edit
            out.append(
                Word.at(
                    text,
                    origin + Fraction(visible_start / speed),
                    origin + Fraction(visible_end / speed),
                    timebase,
                    prob,
                    language,
                )
            )
        return out

    # -- language --------------------------------------------------------------------------------------------
    def detect_language(self, chunks: list[np.ndarray]) -> tuple[str, float]:
        """Language from up to ``language_windows`` 30 s speech windows spread over all the audio."""
        model = self.model
        if not model.model.is_multilingual:
            return "en", 1.0
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        # a few 45 s excerpts spread over each chunk (VAD over hours of audio would cost more than it tells)
        excerpt = 45 * SAMPLE_RATE
        per_chunk = max(1, int(np.ceil(self.options.language_windows / max(1, len(chunks)))))
        speech = []
        for samples in chunks:
            if len(samples) > excerpt * per_chunk:
                starts = np.linspace(0, len(samples) - excerpt, per_chunk).astype(int)
                pieces = [samples[a : a + excerpt] for a in starts]
            else:
                pieces = [samples]
            for piece in pieces:
                stamps = (
                    get_speech_timestamps(piece, VadOptions(threshold=self.options.vad_threshold))
                    if self.options.vad
                    else [{"start": 0, "end": len(piece)}]
                )
                speech.extend(piece[s["start"] : s["end"]] for s in stamps)
        if not speech:
            return "en", 0.0
        joined = np.concatenate(speech)
        window = 30 * SAMPLE_RATE
        count = max(1, min(self.options.language_windows, int(np.ceil(len(joined) / window))))
        starts = np.linspace(0, max(0, len(joined) - window), count).astype(int) if count > 1 else [0]
        scores: dict[str, float] = {}
        weight_total = 0.0
        for start in starts:
            piece = joined[start : start + window]
            weight = len(piece) / window
            features = model.feature_extractor(piece)
            encoder_output = model.encode(pad_or_trim(features))
            results = model.model.detect_language(encoder_output)[0]
            for token, prob in results:
                scores[token[2:-2]] = scores.get(token[2:-2], 0.0) + prob * weight
            weight_total += weight
        best = max(scores, key=scores.get)
        return best, scores[best] / (weight_total or 1.0)

    def _decode_kwargs(self, language: str | None) -> dict:
        """faster-whisper's settings for this job's guarded decoding."""
        opts = self.options
        return dict(
            language=None if language in ("auto", "", None) else language,
            task="transcribe",
            beam_size=opts.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            no_speech_threshold=opts.no_speech_threshold,
            log_prob_threshold=opts.log_prob_threshold,
            compression_ratio_threshold=opts.compression_ratio_threshold,
            temperature=list(opts.temperature),
            initial_prompt=opts.initial_prompt,
            hotwords=opts.hotwords,
            vad_filter=False,
        )

    # -- one stretch of audio
    # ----------------------------------------------------------------------------------
    def transcribe_samples(
        self,
        samples: np.ndarray,
        language: str | None,
        on_progress: Callable[[float], None] = lambda s: None,
        chunks: list[tuple[int, int]] | None = None,
    ) -> dict:
        """Words of 16 kHz samples in their own seconds: {"words": [[text, start, end, prob]], "language",
        ...}. ``chunks``: the samples' speech chunks when already found (``_speech_chunks``)."""
        opts = self.options
        if len(samples) < SAMPLE_RATE // 10:
            return {
                "words": [],
                "language": language if language not in ("auto", None) else "und",
                "warnings": [],
            }
        if chunks is None:
            chunks = _speech_chunks(samples, opts) if opts.vad else [(0, len(samples))]
        if not chunks:
            return {
                "words": [],
                "language": language if language not in ("auto", None) else "und",
                "warnings": [],
            }
        model = self.model
        batch = opts.batch_size or (8 if str(getattr(model.model, "device", "cpu")) == "cuda" else 0)
        kwargs = self._decode_kwargs(language)
        if batch > 1:
            # GPU: speech chunks (<= 28 s each) decoded side by side in batches, timestamps stay in our time
            from faster_whisper import BatchedInferencePipeline

            if opts.vad:
                chunks = _speech_chunks(samples, opts, max_seconds=28.0)
            else:
                step = 28 * SAMPLE_RATE
                chunks = [(a, min(len(samples), a + step)) for a in range(0, len(samples), step)]
            chunk_map = _ChunkMap([(a / SAMPLE_RATE, b / SAMPLE_RATE, a / SAMPLE_RATE) for a, b in chunks])
            kwargs.pop("condition_on_previous_text")  # batched decoding never conditions on previous text
            clips = [{"start": a / SAMPLE_RATE, "end": b / SAMPLE_RATE} for a, b in chunks]
            segments, info = BatchedInferencePipeline(model).transcribe(
                samples, batch_size=batch, clip_timestamps=clips, **kwargs
            )
        else:
            joined, chunk_map = _join(samples, chunks)
            segments, info = model.transcribe(joined, **kwargs)
        raw: list[RawWord] = []
        segment_of: list[int] = []  # which Whisper segment each word came from (the aligner's unit)
        dropped_segments = 0
        activity = speech_activity(samples, SAMPLE_RATE)
        acoustic = opts.refine_timing and opts.acoustic_timing and acoustic_timing.supports(info.language)
        # English pieces are aligned on a worker thread while Whisper decodes the rest (same times as without)
        prefetch = acoustic_timing.Prefetcher(samples, SAMPLE_RATE) if acoustic and PREFETCH else None
        try:
            for n_segment, segment in enumerate(segments):
                on_progress(chunk_map.to_source(segment.end))
                if _is_hallucination(segment):
                    dropped_segments += 1
                    continue
                for w in segment.words or []:
                    if w.word.strip():
                        raw.append((w.word.strip(), float(w.start), float(w.end), float(w.probability)))
                        segment_of.append(n_segment)
                if prefetch is not None:
                    _prefetch_settled(prefetch, raw, segment_of, chunk_map, activity, len(samples))
            return self._finish_samples(
                samples, raw, segment_of, chunk_map, activity, chunks, info, dropped_segments, prefetch
            )
        finally:
            if prefetch is not None:
                prefetch.close()

    def transcribe_pack(
        self, pack: packing.Pack, language: str | None, on_progress: Callable[[float], None] = lambda s: None
    ) -> list[dict]:
        """Several short spans decoded together in one shared window (``packing``); one result per member,
        in order, each exactly what ``transcribe_samples`` gives: words in the member's own seconds, mapped
        back only within its own speech, then timed (the aligner and the pause rules) on its own audio."""
        joined, pieces = packing.layout(pack, SAMPLE_RATE, _JOIN_GAP)
        kwargs = self._decode_kwargs(language)
        if packing.WITHOUT_TIMESTAMPS:
            kwargs["without_timestamps"] = True
        segments, info = self.model.transcribe(joined, **kwargs)
        members = len(pack)
        raw: list[list[RawWord]] = [[] for _ in range(members)]
        segment_of: list[list[int]] = [[] for _ in range(members)]
        dropped = [0] * members
        for n_segment, segment in enumerate(segments):
            on_progress(float(segment.end))
            if _is_hallucination(segment):
                for m in packing.members_in(pieces, float(segment.start), float(segment.end)):
                    dropped[m] += 1
                continue
            for w in segment.words or []:
                if w.word.strip():
                    m = packing.owner(pieces, float(w.start), float(w.end))
                    raw[m].append((w.word.strip(), float(w.start), float(w.end), float(w.probability)))
                    segment_of[m].append(n_segment)
        results = []
        for m in range(members):
            samples, chunks = pack.samples[m], pack.chunks[m]
            chunk_map = _ChunkMap(
                [(p.joined_start, p.joined_end, p.source_start) for p in pieces if p.member == m]
            )
            activity = speech_activity(samples, SAMPLE_RATE)
            result = self._finish_samples(
                samples, raw[m], segment_of[m], chunk_map, activity, chunks, info, dropped[m], None
            )
            result["decoding"] = packing.decoding_id()
            results.append(result)
        return results

    def _finish_samples(
        self, samples, raw, segment_of, chunk_map, activity, chunks, info, dropped_segments, prefetch
    ) -> dict:
        """Whisper's words -> mapped, timed, guarded words (the rest of ``transcribe_samples``)."""
        opts = self.options
        warnings: list[str] = []
        duration = len(samples) / SAMPLE_RATE
        if dropped_segments:
            warnings.append(f"{dropped_segments} low-confidence segment(s) dropped as likely hallucination")
        language = info.language
        words = [(*w, n) for w, n in zip(chunk_map.map_words(raw, activity), segment_of)]
        words, loops = _remove_repetition_loops(words)
        if loops:
            warnings.append(f"removed {loops} repeated word(s) of a recognition loop")
        groups = _segment_groups(words)
        words = [w[:4] for w in words]
        timing_stats = None
        if opts.refine_timing and words:
            times = [(s, e) for _, s, e, _ in words]
            trusted = None
            if opts.acoustic_timing and acoustic_timing.supports(language):
                times, trusted, timing_stats, problem = _acoustic(words, times, groups, samples, prefetch)
                if problem:
                    warnings.append(problem)
            refined = refine_word_times(
                times,
                samples,
                SAMPLE_RATE,
                activity,
                texts=[t for t, *_ in words],
                lag=self.lag_model(),
                trusted=trusted,
            )
            words = [(t, s, e, p) for (t, _, _, p), (s, e) in zip(words, refined)]
        words, outside = _drop_outside_speech(words, chunks, activity)
        if outside:
            warnings.append(f"dropped {outside} word(s) placed in silence or noise")
        if language in CJK_LANGUAGES[:2]:
            words = normalise_chinese(words, simplified=opts.simplified_chinese)
        words = [(t, max(0.0, s), min(duration, e), p) for t, s, e, p in words]
        out = {
            "words": [list(w) for w in words],
            "language": language,
            "language_probability": float(info.language_probability),
            "warnings": warnings,
        }
        if timing_stats is not None:
            out["acoustic_timing"] = timing_stats
        return out


# -- helpers -------------------------------------------------------------------------------------------------
_GROUP_GAP = 1.0  # seconds: a Whisper segment is aligned in pieces split at pauses this long
_GROUP_MAX = (
    8.0  # seconds: a longer piece is split at its widest gap between words (the aligner's search, with
)
# its wide beams, costs frames x words: short pieces are much cheaper and as accurate)


def _segment_groups(words: list) -> list[list[int]]:
    """Word indices per alignment unit: one Whisper segment, split where its words are a long pause apart (a
    segment spanning two speech chunks), and pieces longer than ``_GROUP_MAX`` split at their widest gap."""
    groups: list[list[int]] = []
    for i, w in enumerate(words):
        if groups and words[groups[-1][-1]][4] == w[4] and w[1] - words[groups[-1][-1]][2] < _GROUP_GAP:
            groups[-1].append(i)
        else:
            groups.append([i])
    out: list[list[int]] = []
    todo = groups[::-1]
    while todo:
        group = todo.pop()
        if len(group) < 4 or words[group[-1]][2] - words[group[0]][1] <= _GROUP_MAX:
            out.append(group)
            continue
        # the widest gap, not too near either end (a piece keeps at least two words)
        k = max(range(2, len(group) - 1), key=lambda j: words[group[j]][1] - words[group[j - 1]][2])
        todo += [group[k:], group[:k]]
    return out


def _sum_timing_stats(items) -> dict:
    """The acoustic aligner's counts over the spans transcribed in this run."""
    total = {
        "segments": 0,
        "aligned": 0,
        "fallback": 0,
        "moved": 0,
        "prefetched": 0,
        "seconds": 0.0,
        "cpu_seconds": 0.0,
    }
    for item in items:
        for k in total:
            total[k] += (item or {}).get(k, 0)
    total["seconds"] = round(total["seconds"], 3)
    total["cpu_seconds"] = round(total["cpu_seconds"], 3)
    return total


def _prefetch_settled(
    prefetch: acoustic_timing.Prefetcher,
    raw: list[RawWord],
    segment_of: list[int],
    chunk_map: "_ChunkMap",
    activity,
    n_samples: int,
    context: int = 4,
) -> None:
    """Hands the prefetcher the pieces whose words are final now that another segment has come: planned on the
    last ``context`` segments' words only (mapping and grouping look at neighbours, not further), leaving out
    the first of them (its first word's mapping looks back) and pieces in, or next to, the newest."""
    if not segment_of:
        return
    newest = segment_of[-1]
    first = len(segment_of)
    seen = 0
    while first > 0 and seen < context:
        first -= 1
        if first == 0 or segment_of[first - 1] != segment_of[first]:
            seen += 1
    if seen < 3:
        return
    oldest = segment_of[first]
    # only the speech chunks around these words (mapping looks at a word's chunk and the next one)
    lo = min(w[1] for w in raw[first:]) - 1.0
    hi = max(w[2] for w in raw[first:]) + 1.0
    near = [k for k, (js, je, _) in enumerate(chunk_map.spans) if je >= lo and js <= hi]
    if not near:
        return
    local = _ChunkMap(chunk_map.spans[max(0, near[0] - 1) : near[-1] + 2])
    words = [(*w, n) for w, n in zip(local.map_words(raw[first:], activity), segment_of[first:])]
    words, _ = _remove_repetition_loops(words)
    groups = _segment_groups(words)
    follows = {tuple(g): (groups[k + 1] if k + 1 < len(groups) else None) for k, g in enumerate(groups)}

    def settled(group: list[int]) -> bool:
        nxt = follows.get(tuple(group))
        return words[group[0]][4] != oldest and nxt is not None and words[nxt[0]][4] != newest

    prefetch.submit(
        acoustic_timing.plan_pieces(
            [w[0] for w in words], [(w[1], w[2]) for w in words], groups, n_samples, SAMPLE_RATE, settled
        )
    )


def _acoustic(
    words: list,
    times: list,
    groups: list[list[int]],
    samples: np.ndarray,
    prefetch: acoustic_timing.Prefetcher | None = None,
) -> tuple[list, list[bool] | None, dict | None, str | None]:
    """English words re-timed by the acoustic aligner, per group; (times, trusted flags, stats, warning)."""
    try:
        new, flags, stats = acoustic_timing.retime_words(
            [t for t, *_ in words],
            times,
            groups,
            samples,
            SAMPLE_RATE,
            prefetched=prefetch.take if prefetch is not None else None,
        )
    except acoustic_timing.AcousticTimingUnavailable as exc:
        return times, None, None, f"English word timing from Whisper only: {exc}"
    if prefetch is not None:
        prefetch.close()  # what it aligned that was not used still cost CPU: counted
        stats.cpu_seconds += prefetch.cpu_seconds
    problem = None
    if stats.fallback:
        problem = (
            f"{stats.fallback} of {stats.segments} speech segment(s) kept Whisper's word times: the acoustic "
            f"aligner could not match their words to the audio"
        )
    return new, flags, stats.as_dict(), problem


def _drop_cross_track_duplicates(
    tagged: list[tuple[Word, int]], tolerance: float = 0.3
) -> tuple[list[Word], int]:
    """The same speech on two tracks (dual-mono interviews, boom + lav, camera + recorder) is recognised
    twice: keep one copy of a word that another span also produced at (about) the same time, the more
    confident one. Matching is one to one: a kept word absorbs at most one copy from each other span (a
    repeated word stays)."""
    kept: list[list] = []  # [word, spans that produced it]
    dropped = 0
    for word, span in tagged:
        key = _norm(word.text)
        duplicate = None
        for k in range(len(kept) - 1, -1, -1):
            other, spans = kept[k]
            if other.start < word.start - tolerance:
                break
            if span not in spans and _norm(other.text) == key and abs(other.start - word.start) <= tolerance:
                duplicate = k
                break
        if duplicate is None:
            kept.append([word, {span}])
            continue
        dropped += 1
        kept[duplicate][1].add(span)
        if word.confidence > kept[duplicate][0].confidence:
            kept[duplicate][0] = word
    return [w for w, _ in kept], dropped


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _speech_chunks(
    samples: np.ndarray, opts: TranscribeOptions, max_seconds: float = float("inf")
) -> list[tuple[int, int]]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(
        samples,
        VadOptions(
            threshold=opts.vad_threshold,
            min_silence_duration_ms=500,
            speech_pad_ms=200,
            min_speech_duration_ms=120,
            max_speech_duration_s=max_seconds,
        ),
    )
    return [(int(s["start"]), int(s["end"])) for s in stamps]


class _ChunkMap:
    """Where each speech chunk sits in the joined audio and in the original."""

    def __init__(self, spans: list[tuple[float, float, float]]):
        self.spans = spans  # (joined_start, joined_end, source_start) seconds

    def to_source(self, t: float) -> float:
        for js, je, ss in self.spans:
            if t <= je + _JOIN_GAP / 2:
                return ss + max(0.0, min(t, je) - js)
        js, je, ss = self.spans[-1]
        return ss + (je - js)

    def map_words(self, words: list[RawWord], activity=None) -> list[RawWord]:
        """Source times of words: each goes to the chunk holding most of it, clipped to that chunk. A word
        left on silence at the end of a chunk while the next word opens the next chunk, which has unclaimed
        speech before that word, is moved there (Whisper often puts the first word after a pause at the end of
        the previous speech)."""
        assigned: list[int] = []
        out = []
        for text, start, end, prob in words:
            best, overlap = 0, -1.0
            for k, (js, je, _) in enumerate(self.spans):
                ov = min(end, je) - max(start, js)
                if ov > overlap:
                    best, overlap = k, ov
            if overlap <= 0:  # entirely in an inserted gap: the nearest chunk
                mid = (start + end) / 2
                best = min(
                    range(len(self.spans)),
                    key=lambda k: min(abs(mid - self.spans[k][0]), abs(mid - self.spans[k][1])),
                )
            js, je, ss = self.spans[best]
            s, e = min(max(start, js), je), min(max(end, js), je)
            assigned.append(best)
            out.append((text, ss + s - js, ss + max(e, s) - js, prob))
        if activity is None:
            return out
        for i, (text, s, e, prob) in enumerate(out):
            if activity.speech_in(s, e) >= 0.75 * max(e - s, 1e-3):
                continue  # mostly on speech: where Whisper put it
            k = assigned[i]
            if i + 1 < len(out) and assigned[i + 1] == k + 1 and (i == 0 or assigned[i - 1] <= k):
                nxt = out[i + 1][1]
                new_start = self.spans[k + 1][2]
                # only when the next chunk has unclaimed speech before its first recognised word
                if new_start < nxt and activity.speech_in(new_start, nxt) >= 0.08:
                    out[i] = (text, new_start, max(new_start, min(nxt, new_start + (e - s))), prob)
                    assigned[i] = k + 1
        return out


def _join(samples: np.ndarray, chunks: list[tuple[int, int]]) -> tuple[np.ndarray, _ChunkMap]:
    gap = np.zeros(int(_JOIN_GAP * SAMPLE_RATE), np.float32)
    pieces, spans, cursor = [], [], 0
    for k, (a, b) in enumerate(chunks):
        if k:
            pieces.append(gap)
            cursor += len(gap)
        pieces.append(samples[a:b])
        spans.append((cursor / SAMPLE_RATE, (cursor + b - a) / SAMPLE_RATE, a / SAMPLE_RATE))
        cursor += b - a
    return np.concatenate(pieces).astype(np.float32), _ChunkMap(spans)


def _norm(text: str) -> str:
    return re.sub(r"[^\w]", "", text.lower())


def _is_hallucination(segment) -> bool:
    """Known silence phrases when the model itself was unsure, and degenerate (highly repetitive) segments."""
    text = _norm(segment.text)
    if not text:
        return True
    unsure = segment.no_speech_prob > 0.3 or segment.avg_logprob < -0.7
    if unsure and any(_norm(p) in text and len(text) <= len(_norm(p)) + 12 for p in _HALLUCINATIONS):
        return True
    return segment.compression_ratio > 3.0 and segment.avg_logprob < -0.5


def _remove_repetition_loops(words: list[RawWord], max_ngram: int = 8) -> tuple[list[RawWord], int]:
    """Collapse an n-gram repeated back to back (4+ times for single words, 3+ for longer) to one
    occurrence."""
    keys = [_norm(w[0]) for w in words]
    keep = [True] * len(words)
    removed = 0
    i = 0
    while i < len(words):
        advanced = False
        for n in range(1, max_ngram + 1):
            gram = keys[i : i + n]
            if len(gram) < n or not all(gram):
                break
            reps = 1
            while keys[i + reps * n : i + (reps + 1) * n] == gram:
                reps += 1
            if reps >= (4 if n == 1 else 3):
                for j in range(i + n, i + reps * n):
                    keep[j] = False
                removed += (reps - 1) * n
                i += reps * n
                advanced = True
                break
        if not advanced:
            i += 1
    return [w for w, k in zip(words, keep) if k], removed


def _drop_outside_speech(
    words: list[RawWord], chunks: list[tuple[int, int]], activity
) -> tuple[list[RawWord], int]:
    """Words with no speech under them: not inside any VAD chunk and no audible energy."""
    out, dropped = [], 0
    spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in chunks]
    for w in words:
        _, s, e, _ = w
        in_vad = any(min(e, b) - max(s, a) > 0 for a, b in spans)
        if not in_vad and activity.speech_in(s, e) <= 0.0:
            dropped += 1
            continue
        out.append(w)
    return out, dropped
