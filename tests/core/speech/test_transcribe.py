"""Transcription plumbing with the tiny random Whisper: regions -> timeline words, cache, progress, guards.

The tiny model's text is noise, so these tests assert structure and mapping; real text is tested with the
packaged base model in test_transcribe_base.py.
"""

from __future__ import annotations

from collections import namedtuple
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from captionbridge.core.errors import Cancelled, InputError, ModelNotAvailableError
from captionbridge.core.progress import Progress
from captionbridge.core.speech import models
from captionbridge.core.speech import transcribe as tr
from captionbridge.core.speech.transcript_cache import TranscriptCache
from captionbridge.core.timeline.regions import AudioRegion
from captionbridge.core.timeline.render_audio import decode_region
from captionbridge.core.timeline.timebase import Timebase

FAST = dict(temperature=(0.0,), beam_size=1, language="en")


@pytest.fixture()
def tiny(tiny_whisper_model):
    return models.load_whisper(str(tiny_whisper_model), "cpu", "int8")


@pytest.fixture()
def cache(tmp_path):
    return TranscriptCache(tmp_path / "cache")


def region(path, start_frame, end_frame, offset, timebase, name="clip", speed=Fraction(1)):
    return AudioRegion(
        clip_name=name,
        track_name="A1",
        track_index=1,
        timeline_start_frame=start_frame,
        timeline_end_frame=end_frame,
        source_path=path,
        source_offset=Fraction(offset),
        timebase=timebase,
        speed=speed,
    )


def check_words(words, timebase):
    assert words == sorted(words, key=lambda w: (w.start, w.end))
    for w in words:
        assert w.text.strip() and w.start <= w.end
        assert 0.0 <= w.confidence <= 1.0
        assert w.start_frame == timebase.frame_at(w.start) and w.end_frame > w.start_frame
        assert w.end_frame == max(w.start_frame + 1, timebase.frame_at(w.end, "ceil"))


def test_transcribe_audio_structure(tiny, espeak_english, cache):
    result = tr.transcribe_audio(espeak_english.path, tr.TranscribeOptions(**FAST), model=tiny, cache=cache)
    assert result.language == "en" and result.words
    check_words(result.words, Timebase(25))
    assert all(0 <= w.start and w.end <= espeak_english.duration + 1e-6 for w in result.words)
    assert result.stats["spans"] == 1 and result.stats["cached_spans"] == 0


def test_language_is_detected_when_not_forced(tiny, espeak_english, cache):
    options = tr.TranscribeOptions(**{**FAST, "language": "auto"})
    result = tr.transcribe_audio(espeak_english.path, options, model=tiny, cache=cache)
    assert result.language in tiny.supported_languages
    assert 0.0 < result.language_probability <= 1.0


def test_silence_and_noise_give_no_words(tiny, cache):
    rng = np.random.default_rng(1)
    silence = np.zeros(16000 * 5, np.float32)
    hiss = (rng.standard_normal(16000 * 5) * 0.02).astype(np.float32)
    for audio in (silence, hiss):
        result = tr.transcribe_audio(audio, tr.TranscribeOptions(**FAST), model=tiny, cache=cache)
        assert result.words == []


@pytest.mark.slow
def test_regions_map_to_timeline_frames(base_whisper_model, espeak_english, cache):
    """Two cuts of one file at 23.976 with a 01:00:00:00 start: words land inside what each region plays.

    Real speech and the packaged model: which noise words the tiny random model emits in a region flips with
    floating-point details (it changed once torch had been imported into the process), so it cannot show that
    both regions were heard."""
    tb = Timebase.from_start_timecode("24000/1001", "01:00:00:00", False)
    a = region(espeak_english.path, 0, 200, Fraction(1), tb, "A")  # source 1 s .. 9.34 s
    b = region(espeak_english.path, 400, 700, Fraction(14), tb, "B")  # source 14 s .. 26.5 s (past the end)
    base = models.load_whisper(str(base_whisper_model), "cpu", "int8")
    result = tr.transcribe_regions([b, a], tb, tr.TranscribeOptions(**FAST), model=base, cache=cache)
    check_words(result.words, tb)
    assert result.stats["spans"] == 2
    for w in result.words:
        inside = [
            r
            for r in (a, b)
            if tb.seconds(r.timeline_start_frame) - 1e-6 <= w.start
            and w.end <= tb.seconds(r.timeline_end_frame) + 1e-6
        ]
        assert inside, f"{w} is outside every region"
    assert any(w.start_frame >= 400 for w in result.words) and any(w.start_frame < 200 for w in result.words)


def test_contiguous_regions_of_one_source_are_merged():
    tb = Timebase(25)
    a = region("/m.wav", 0, 50, Fraction(10), tb)
    b = region("/m.wav", 50, 100, Fraction(12), tb)  # continues the source exactly
    c = region("/m.wav", 100, 150, Fraction(30), tb)  # a jump in the source: a cut
    d = region("/other.wav", 150, 175, Fraction(0), tb)
    spans = tr._merge_regions([c, a, d, b], tb)
    assert [(s.source_start, s.source_duration, s.timeline_start) for s in spans] == [
        (10, 4, 0),
        (30, 2, 4),
        (0, 1, 6),
    ]
    assert spans[0].region.timeline_end_frame == 100


def test_words_are_mapped_through_speed_and_clipped_to_the_region():
    tb = Timebase(25)
    span = tr._Span(None, "/m.wav", Fraction(10), Fraction(4), Fraction(2), Fraction(2))
    raw = [["a", 0.5, 1.0, 0.9], ["b", 3.9, 4.6, 0.8], ["c", 3.5, 4.2, 0.7], ["d", -0.5, 0.1, 0.6]]
    words = tr._Engine._to_timeline(span, raw, "en", tb)
    # speed 2: a source second is half a timeline second; "b" and "d" are mostly outside what plays
    assert [(w.text, w.start, w.end) for w in words] == [("a", 2.25, 2.5), ("c", 3.75, 4.0)]


def test_cache_hit_and_recut_only_transcribes_changed_media(tiny, espeak_english, cache, tmp_path):
    tb = Timebase(25)
    other = tmp_path / "other.wav"
    samples, rate = soundfile.read(espeak_english.path, dtype="float32")
    soundfile.write(other, samples[: rate * 9], rate)
    calls = []

    def counting_decode(r, sample_rate):
        calls.append(str(r.source_path))
        return decode_region(r, sample_rate)

    regions = [region(espeak_english.path, 0, 200, 1, tb), region(other, 250, 450, 0, tb)]
    options = tr.TranscribeOptions(**FAST)
    first = tr.transcribe_regions(regions, tb, options, decode=counting_decode, model=tiny, cache=cache)
    assert len(calls) == 2
    calls.clear()
    again = tr.transcribe_regions(regions, tb, options, decode=counting_decode, model=tiny, cache=cache)
    assert calls == [] and again.stats["cached_spans"] == 2
    assert [w.to_dict() for w in again.words] == [w.to_dict() for w in first.words]
    # trim: the first clip loses its first second (a sub-range of what was transcribed): reused, not re-run
    trimmed = tr.transcribe_regions(
        [region(espeak_english.path, 25, 200, 2, tb)],
        tb,
        options,
        decode=counting_decode,
        model=tiny,
        cache=cache,
    )
    assert calls == [] and trimmed.stats["cached_spans"] == 1
    assert [w.to_dict() for w in trimmed.words] == [
        w.to_dict() for w in first.words if w.start >= 1.0 and w.end <= 8.0
    ]
    # re-cut: the second clip moves later on the timeline (same media, same range): still cached
    moved = [regions[0], region(other, 300, 500, 0, tb)]
    shifted = tr.transcribe_regions(moved, tb, options, decode=counting_decode, model=tiny, cache=cache)
    assert calls == []
    assert [round(w.start - 2.0, 6) for w in shifted.words if w.start >= 10] == [
        round(w.start, 6) for w in first.words if w.start >= 10
    ]
    # the other file's content changes: only it is transcribed again
    soundfile.write(other, samples[rate : rate * 10], rate)
    tr.transcribe_regions(moved, tb, options, decode=counting_decode, model=tiny, cache=cache)
    assert calls == [str(other)]
    # other settings are other cache entries
    tr.transcribe_regions(
        moved[1:],
        tb,
        tr.TranscribeOptions(**{**FAST, "beam_size": 2}),
        decode=counting_decode,
        model=tiny,
        cache=cache,
    )
    assert len(calls) == 2


def test_progress_reports_and_cancel_stops(tiny, espeak_english, cache):
    seen = []
    progress = Progress({"transcribe": 1.0}, listener=lambda stage, f, eta: seen.append((stage, f)))
    tr.transcribe_audio(
        espeak_english.path, tr.TranscribeOptions(**FAST), progress=progress, model=tiny, cache=cache
    )
    assert seen[0] == ("transcribe", 0.0) and seen[-1][1] == pytest.approx(1.0)
    assert all(b[1] >= a[1] for a, b in zip(seen, seen[1:]))
    cancelled = Progress({"transcribe": 1.0})
    cancelled.cancel()
    with pytest.raises(Cancelled):
        tr.transcribe_audio(
            espeak_english.path,
            tr.TranscribeOptions(**FAST),
            progress=cancelled,
            model=tiny,
            cache=TranscriptCache(enabled=False),
        )


def test_no_model_offline_is_a_clear_error(monkeypatch, tmp_path, espeak_english):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "c"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(models, "PACKAGED_MODELS", ())
    with pytest.raises(ModelNotAvailableError, match=r"pip install 'captionbridge\[models\]'"):
        tr.transcribe_audio(espeak_english.path, tr.TranscribeOptions(model=None))


def test_bad_inputs_are_clear_errors(tiny, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        tr.transcribe_audio(tmp_path / "missing.wav", model=tiny)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(InputError, match="cannot read audio"):
        tr.transcribe_audio(bad, model=tiny)
    with pytest.raises(InputError, match="beam size"):
        tr.TranscribeOptions(beam_size=0)


# -- guards, unit level
# -----------------------------------------------------------------------------------------
def test_repetition_loops_are_collapsed():
    words = [
        (t, i * 0.1, i * 0.1 + 0.1, 0.9)
        for i, t in enumerate(
            [
                "so",
                "we",
                "go",
                "thank",
                "you",
                "thank",
                "you",
                "thank",
                "you",
                "thank",
                "you",
                "and",
                "no",
                "no",
                "no",
                "no",
                "no",
                "end",
            ]
        )
    ]
    kept, removed = tr._remove_repetition_loops(words)
    assert [w[0] for w in kept] == ["so", "we", "go", "thank", "you", "and", "no", "end"]
    assert removed == 10
    normal = [(t, 0, 1, 1) for t in ["no", "no", "we", "go"]]
    assert tr._remove_repetition_loops(normal) == (normal, 0)


Seg = namedtuple("Seg", "text no_speech_prob avg_logprob compression_ratio")


def test_silence_phrases_are_dropped_only_when_the_model_was_unsure():
    assert tr._is_hallucination(Seg(" Thank you for watching!", 0.5, -0.4, 1.2))
    assert not tr._is_hallucination(Seg(" Thank you for watching!", 0.01, -0.2, 1.2))
    assert not tr._is_hallucination(
        Seg(" Thank you for watching the whole film with us tonight", 0.5, -0.9, 1.2)
    )
    assert tr._is_hallucination(Seg(" ♪ ♪", 0.1, -0.2, 1.0))
    assert tr._is_hallucination(Seg(" la la la la la la la la la la la", 0.1, -0.9, 4.0))


def test_chunk_map_moves_a_first_word_left_on_silence_to_its_speech():
    from captionbridge.core.speech.word_timing import Activity

    # chunk 0 plays source 0..2 s (speech 0.2..1.5), chunk 1 plays source 10..12 s (speech 10.2..11.8)
    active = np.zeros(1200, bool)
    active[20:150] = True
    active[1020:1180] = True
    activity = Activity(active, np.where(active, -20.0, -90.0))
    cmap = tr._ChunkMap([(0.0, 2.0, 0.0), (2.3, 4.3, 10.0)])
    words = [("end", 1.2, 1.5, 0.9), ("Our", 1.6, 1.95, 0.9), ("budget", 2.6, 3.0, 0.9)]
    mapped = cmap.map_words(words, activity)
    assert mapped[0][1:3] == (1.2, 1.5)
    assert mapped[1][0] == "Our" and 10.0 <= mapped[1][1] < mapped[1][2] <= mapped[2][1]
    assert mapped[2][1:3] == pytest.approx((10.3, 10.7))


def test_batched_decoding_keeps_times_in_the_audio(tiny, espeak_english, cache, monkeypatch):
    """The GPU path (batched, speech chunks as clips) run on CPU: same structure, times inside the audio."""
    import faster_whisper

    calls = []
    real = faster_whisper.BatchedInferencePipeline.transcribe

    def observed(self, audio, *args, **kwargs):  # the real pipeline, observed: it must be the one that ran
        calls.append((kwargs.get("batch_size"), len(kwargs.get("clip_timestamps") or [])))
        return real(self, audio, *args, **kwargs)

    monkeypatch.setattr(faster_whisper.BatchedInferencePipeline, "transcribe", observed)
    result = tr.transcribe_audio(
        espeak_english.path, tr.TranscribeOptions(**FAST, batch_size=2, cache=False), model=tiny
    )
    assert len(calls) == 1 and calls[0][0] == 2 and calls[0][1] >= 1, calls
    assert result.words, "batched decoding returned no words"
    check_words(result.words, Timebase(25))
    assert all(0 <= w.start and w.end <= espeak_english.duration + 1e-6 for w in result.words)


def test_media_fingerprint_is_content_based_and_remembered(tmp_path, monkeypatch):
    from captionbridge.core.speech import transcript_cache as tc

    media = tmp_path / "a.bin"
    media.write_bytes(b"x" * 5000)
    copy = tmp_path / "b.bin"
    copy.write_bytes(b"x" * 5000)
    first = tc.media_fingerprint(media, tmp_path)
    assert first == tc.media_fingerprint(copy, tmp_path)  # same content, another name: same media
    media.write_bytes(b"y" * 5000)
    assert tc.media_fingerprint(media, tmp_path) != first
    monkeypatch.setattr(tc, "FULL_HASH_LIMIT", 1000)  # huge camera files are fingerprinted from samples
    sampled = tc._content_digest(copy, copy.stat().st_size)
    assert sampled.startswith("sampled-") and sampled == tc._content_digest(copy, copy.stat().st_size)


def test_the_same_speech_on_two_tracks_is_captioned_once(tiny, espeak_english, cache):
    """Dual-mono: one file on A1 and A2 at the same place. Each word comes out once."""
    tb = Timebase(25)
    a1 = region(espeak_english.path, 0, 200, 1, tb, "A1")
    a2 = AudioRegion(
        clip_name="A2",
        track_name="A2",
        track_index=2,
        timeline_start_frame=0,
        timeline_end_frame=200,
        source_path=espeak_english.path,
        source_offset=Fraction(1),
        timebase=tb,
        channels=(0,),
    )
    single = tr.transcribe_regions([a1], tb, tr.TranscribeOptions(**FAST), model=tiny, cache=cache)
    both = tr.transcribe_regions([a1, a2], tb, tr.TranscribeOptions(**FAST), model=tiny, cache=cache)
    assert [w.text for w in both.words] == [w.text for w in single.words]


def test_cross_track_duplicates_keep_the_more_confident_copy():
    tb = Timebase(25)
    w = lambda text, start, conf: tr.Word.at(text, start, start + 0.3, tb, conf)  # noqa: E731
    tagged = [
        (w("Hello", 1.0, 0.6), 0),
        (w("hello,", 1.1, 0.9), 1),
        (w("hello", 1.2, 0.8), 0),
        (w("again", 2.0, 0.5), 1),
    ]
    words, dropped = tr._drop_cross_track_duplicates(tagged)
    assert dropped == 1 and [(x.text, x.confidence) for x in words] == [
        ("hello,", 0.9),
        ("hello", 0.8),
        ("again", 0.5),
    ]
