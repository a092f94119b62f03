"""Packing short spans into shared Whisper windows (``core.speech.packing``) with the real Whisper base model
on timelines of short espeak-ng clips: every clip gets its own sentence back, no word leaves its clip, each
span is cached under its own key, language detection still works per job, and the option off (or a long
span) decodes spans alone as before."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from fixtures.paths import SHARED_DATA, shared_file

from captionbridge.core.speech import models, packing
from captionbridge.core.speech.chinese_text import is_cjk
from captionbridge.core.speech.transcribe import TranscribeOptions, transcribe_regions
from captionbridge.core.speech.transcript_cache import TranscriptCache
from captionbridge.core.timeline.regions import AudioRegion
from captionbridge.core.timeline.timebase import Timebase

pytestmark = pytest.mark.slow

TB = Timebase(25)
PAD = 0.4  # seconds of silence before and after each clip's sentence
SENTENCES = [  # distinct sentences: a word given to the wrong clip shows in both clips' scores
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We finished the edit on Friday and sent the final cut to the network.",
    "Nobody expected the weather to change so quickly over the mountains.",
    "Six spoons of fresh snow peas and a big toy frog for the kids.",
    "Turn left at the old bridge and follow the river for two miles.",
]


@pytest.fixture(scope="module")
def base(base_whisper_model):
    return models.load_whisper(str(base_whisper_model), "cpu", "int8")


def _timeline(corpus, folder, sentences, voice="en-us", gap=2.0, stem="clip", words_per_minute=165):
    """One WAV per sentence (``PAD`` of silence either side), placed one after another with ``gap`` seconds
    between them: regions, each clip's (start, end) in timeline seconds, and each clip's sentence."""
    import soundfile

    regions, ranges = [], []
    cursor = 1.0
    for k, text in enumerate(sentences):
        if isinstance(text, tuple):  # Mandarin: (characters, pinyin)
            samples, _ = corpus.synth_sentence(text[1], "cmn", tokens=list(text[0]), words_per_minute=110)
        else:
            samples, _ = corpus.synth_sentence(text, voice, words_per_minute=words_per_minute)
        pad = np.zeros(int(PAD * 16000), np.float32)
        audio = np.concatenate([pad, samples.astype(np.float32), pad])
        path = folder / f"{stem}{k}.wav"
        soundfile.write(path, audio, 16000, subtype="PCM_16")
        start = TB.frame_at(Fraction(cursor).limit_denominator(1000), "ceil")
        frames = TB.frame_at(Fraction(len(audio), 16000), "floor")
        regions.append(
            AudioRegion(
                clip_name=f"{stem}{k}",
                track_name="A1",
                track_index=1,
                timeline_start_frame=start,
                timeline_end_frame=start + frames,
                source_path=path,
                source_offset=Fraction(0),
                timebase=TB,
            )
        )
        ranges.append((float(TB.seconds(start)), float(TB.seconds(start + frames))))
        cursor = ranges[-1][1] + gap
    return regions, ranges


def _per_clip(words, ranges):
    """Each clip's words (by where they start), and the words that lie outside every clip."""
    clips: list[list] = [[] for _ in ranges]
    outside = []
    for w in words:
        k = next((k for k, (a, b) in enumerate(ranges) if a - 1e-6 <= w.start and w.end <= b + 1e-6), None)
        (outside if k is None else clips[k]).append(w)
    return clips, outside


@pytest.fixture(scope="module")
def english(speech_corpus_module, tmp_path_factory):
    return _timeline(speech_corpus_module, tmp_path_factory.mktemp("packing-en"), SENTENCES)


def test_packed_clips_get_their_own_words(base, english, speech_corpus_module, tmp_path):
    regions, ranges = english
    result = transcribe_regions(
        regions, TB, TranscribeOptions(language="en"), model=base, cache=TranscriptCache(tmp_path)
    )
    assert result.stats["packed_spans"] == len(regions) and result.stats["packs"] < len(regions)
    clips, outside = _per_clip(result.words, ranges)
    assert outside == []  # no word outside its own clip's range
    for k, words in enumerate(clips):
        text = " ".join(w.text for w in words)
        assert speech_corpus_module.wer(SENTENCES[k], text) <= 0.2, (k, text)
        # a swap (another clip's sentence here) would score far worse: the check can tell
        other = SENTENCES[(k + 1) % len(SENTENCES)]
        assert speech_corpus_module.wer(other, text) >= 0.6, (k, text)


def test_cache_is_per_span_and_says_packed(base, english, tmp_path):
    regions, _ = english
    cache = TranscriptCache(tmp_path)
    first = transcribe_regions(regions, TB, TranscribeOptions(language="en"), model=base, cache=cache)
    assert first.stats["packed_spans"] == len(regions)
    assert len(list(tmp_path.rglob("*.json"))) >= len(regions)  # an entry per span
    again = transcribe_regions(regions, TB, TranscribeOptions(language="en"), model=base, cache=cache)
    assert again.stats["cached_spans"] == len(regions) and again.stats["packs"] == 0
    assert [(w.text, w.start, w.end) for w in again.words] == [(w.text, w.start, w.end) for w in first.words]
    # one clip trimmed: the packed transcript of the range holding it is reused (shifted), nothing decoded
    trimmed = dataclasses.replace(
        regions[2], source_offset=Fraction(1, 5), timeline_start_frame=regions[2].timeline_start_frame + 5
    )
    recut = transcribe_regions(
        regions[:2] + [trimmed] + regions[3:], TB, TranscribeOptions(language="en"), model=base, cache=cache
    )
    assert recut.stats["cached_spans"] == len(regions) and recut.stats["transcribed_seconds"] == 0
    # packing off: what was decoded in a shared window is not taken for a span decoded alone
    off = transcribe_regions(
        regions, TB, TranscribeOptions(language="en", pack=False), model=base, cache=cache
    )
    assert off.stats["cached_spans"] == 0 and off.stats["packs"] == 0
    # packing on takes either kind: with both in the cache, nothing is decoded
    on = transcribe_regions(regions, TB, TranscribeOptions(language="en"), model=base, cache=cache)
    assert on.stats["cached_spans"] == len(regions) and on.stats["transcribed_seconds"] == 0
    # and a span decoded alone is found by a packing run (a fresh cache holding only what `off` wrote)
    alone_only = TranscriptCache(tmp_path / "alone")
    transcribe_regions(
        regions[:2], TB, TranscribeOptions(language="en", pack=False), model=base, cache=alone_only
    )
    on_options = TranscribeOptions(language="en")
    mixed = transcribe_regions(regions[:3], TB, on_options, model=base, cache=alone_only)
    assert mixed.stats["cached_spans"] == 2 and mixed.stats["packs"] == 0  # the third decoded alone


def test_option_off_decodes_each_clip_alone(base, english, speech_corpus_module):
    regions, ranges = english
    options = TranscribeOptions(language="en", pack=False, cache=False)
    off = transcribe_regions(regions[:3], TB, options, model=base)
    assert off.stats["packs"] == 0 and off.stats["packed_spans"] == 0
    mine, _ = _per_clip(off.words, ranges)
    for k in range(3):  # the words of that clip transcribed on its own (CTranslate2 may flip an unsure word
        # between two decodes of the same audio in one process, so by word error rate, not equality)
        alone = transcribe_regions([regions[k]], TB, options, model=base)
        assert alone.stats["packs"] == 0
        reference = " ".join(w.text for w in alone.words)
        assert speech_corpus_module.wer(reference, " ".join(w.text for w in mine[k])) <= 0.1
        other = " ".join(w.text for w in mine[(k + 1) % 3])
        assert speech_corpus_module.wer(reference, other) >= 0.6


def _file_regions(paths, gap=1.5):
    import soundfile

    regions, ranges, cursor = [], [], 1.0
    for k, path in enumerate(paths):
        start = TB.frame_at(Fraction(cursor).limit_denominator(1000), "ceil")
        frames = TB.frame_at(Fraction(soundfile.info(str(path)).frames, 16000), "floor")
        regions.append(AudioRegion(f"zh{k}", "A1", 1, start, start + frames, path, Fraction(0), TB))
        ranges.append((float(TB.seconds(start)), float(TB.seconds(start + frames))))
        cursor = ranges[-1][1] + gap
    return regions, ranges


def test_auto_language_real_mandarin_clips_packed_stay_chinese_and_their_own(base, speech_corpus_module):
    """Two real Mandarin recordings (AISHELL) as clips, language auto: detected once for the job, decoded in
    one window, and each clip's text is what it gives decoded alone (not the other clip's)."""
    names = ["BAC009S0764W0121.wav", "BAC009S0764W0122.wav"]
    for name in names:
        shared_file(f"zh/{name}")
    regions, ranges = _file_regions([SHARED_DATA / "zh" / name for name in names])
    options = TranscribeOptions(language="auto", cache=False)
    result = transcribe_regions(regions, TB, options, model=base)
    assert result.language == "zh" and result.stats["packed_spans"] == 2 and result.stats["packs"] == 1
    clips, outside = _per_clip(result.words, ranges)
    assert outside == []
    alone = ["".join(w.text for w in transcribe_regions([r], TB, options, model=base).words) for r in regions]
    for k, words in enumerate(clips):
        assert words and all(w.language == "zh" for w in words), k
        text = "".join(w.text for w in words)
        assert sum(is_cjk(c) for c in text) >= 8, (k, text)
        assert speech_corpus_module.cer(alone[k], text) <= 0.2, (k, text, alone[k])
        assert speech_corpus_module.cer(alone[1 - k], text) >= 0.6, (k, text, alone[1 - k])


def test_a_long_span_is_decoded_alone(base, speech_corpus_module, tmp_path):
    long_text = " ".join(speech_corpus_module.ENGLISH[:9])  # about 35 s of speech: more than a window
    regions, ranges = _timeline(
        speech_corpus_module, tmp_path, [long_text, SENTENCES[0], SENTENCES[4]], stem="long"
    )
    long_seconds = ranges[0][1] - ranges[0][0]
    assert long_seconds > packing.WINDOW + 2 * PAD
    result = transcribe_regions(
        regions, TB, TranscribeOptions(language="en", cache=False, beam_size=1), model=base
    )
    assert result.stats["packs"] == 1 and result.stats["packed_spans"] == 2
    clips, outside = _per_clip(result.words, ranges)
    assert outside == [] and len(clips[0]) > 40


def test_a_word_straddling_a_join_goes_to_the_span_holding_most_of_it():
    pack = packing.Pack()
    one, two = np.ones(16000, np.float32), np.ones(8000, np.float32)
    packing.add(pack, "a", one, [(0, 16000)], 1.0)
    packing.add(pack, "b", two, [(0, 8000)], 0.5)
    joined, pieces = packing.layout(pack, 16000, 0.3)
    assert len(joined) == 16000 + int(packing.SPAN_GAP * 16000) + 8000
    start_b = 1.0 + packing.SPAN_GAP
    assert pieces[1].joined_start == pytest.approx(start_b) and pieces[1].member == 1
    assert packing.owner(pieces, 0.9, 1.2) == 0  # mostly in a's speech
    assert packing.owner(pieces, start_b - 0.1, start_b + 0.3) == 1  # mostly in b's
    assert packing.owner(pieces, 1.05, 1.2) == 0  # in the silence, nearer a
    assert packing.owner(pieces, start_b - 0.15, start_b - 0.05) == 1  # in the silence, nearer b
    # a dropped segment is reported to every span whose speech it covers, not only to its owner
    assert packing.members_in(pieces, 0.5, start_b + 0.2) == [0, 1]
    assert packing.members_in(pieces, 0.2, 0.8) == [0]
    assert packing.members_in(pieces, 1.05, 1.2) == [0]
    assert packing.fits(pack, packing.WINDOW - pack.seconds - packing.SPAN_GAP)
    assert not packing.fits(pack, packing.WINDOW - pack.seconds)
    assert not packing.packable(10.0, packing.WINDOW + 0.1)
    assert not packing.packable(packing.SPAN_MAX + 1, 5.0)


def test_first_fit_over_a_few_open_packs_and_bounded_memory():
    packs: list[packing.Pack] = []
    short = np.zeros(16000 * 4, np.float32)
    first, full = packing.place(packs, 20.0, 4.0)
    assert full is None and packs == [first]
    packing.add(first, 0, short, [(0, 16000 * 4)], 20.0)
    second, full = packing.place(packs, 10.0, 4.0)  # 20 + gap + 10 > window: a new pack
    assert full is None and second is not first
    packing.add(second, 1, short, [(0, 16000 * 4)], 10.0)
    back, _ = packing.place(packs, 5.0, 4.0)  # fits the first again: first fit, not next fit
    assert back is first
    for k in range(packing.OPEN_PACKS - 2):
        pack, full = packing.place(packs, 25.0, 4.0)
        assert full is None
        packing.add(pack, 2 + k, short, [(0, 16000 * 4)], 25.0)
    pack, full = packing.place(packs, 25.0, 4.0)  # none has room and all are open: the fullest is decoded
    assert full is not None and full.seconds == 25.0 and full not in packs
    assert len(packs) == packing.OPEN_PACKS and pack is packs[-1] and not pack.members
    # a pack holds at most HOLD_MAX seconds of span audio, however little speech the spans have
    held = packing.Pack()
    long_quiet = np.zeros(int(16000 * packing.SPAN_MAX), np.float32)
    while packing.fits(held, 0.5, packing.SPAN_MAX):
        packing.add(held, len(held), long_quiet, [(0, 8000)], 0.5)
    assert held.held <= packing.HOLD_MAX and held.seconds < packing.WINDOW
