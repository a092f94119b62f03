"""Speaker corrections approved in review, remembered with the voices of the media (the speaker profile cached
with the transcripts, ``core/speech/speakers.py``), so that the next caption run on the same media (a
re-caption, an Update) labels those words the way the person did and keeps the names they gave.

What is stored, per approval:

- the windows (``speakers.speech_windows`` of the words) whose words changed speaker, each as its voice
  embedding (int8, ~350 bytes) and the corrected speaker of each of its words: a later run gives its
  windows whose audio is one of these (``speakers.SAME_AUDIO_SIMILARITY``) those speakers, word by word;
- each speaker's voice recomputed: the windows moved away from a speaker taken out of its duration-weighted
  sum of window embeddings and added to the speaker they were given (a new speaker's voice is its windows'),
  so the run's clusters are matched to the corrected voices;
- the names from the approved speakers list, marked as reviewed (they win over the same ``--speaker-names``
  given again; names given differently on the next run win over them).

The latest MAX_CORRECTED_WINDOWS corrected windows are kept (about ten minutes of corrected speech). Only
the changed windows are rendered and embedded (the voice model in numpy on CPU, ~0.1 s to load), so an
approval stays quick on an hour-long timeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..model import Word
from ..speech import speakers as sp

MAX_CORRECTED_WINDOWS = 400  # the latest corrected windows kept (~380 bytes each: with 12 voices the profile
# stays under the facility cluster's 256 KB limit on a previous run's voices, core/cluster/stages.py)


def effective_speakers(
    words: Sequence[Word], cues: Sequence, engine: Sequence[str | None] | None = None
) -> list[str | None]:
    """Each word's speaker as a captions document says it: a word a person gave to a speaker (its speaker
    differs from the engine's, ``engine``) is that speaker's; otherwise a word inside a cue given to one
    speaker is that speaker's (the review page reassigns whole cues without touching their words); otherwise
    its own."""
    import bisect

    spans = sorted(
        (c.start_frame, c.end_frame, c.speakers[0]) for c in cues if c.speakers and len(c.speakers) == 1
    )
    starts = [s for s, _, _ in spans]
    out = []
    for k, w in enumerate(words):
        if engine is not None and k < len(engine) and w.speaker != engine[k]:
            out.append(w.speaker)
            continue
        middle = (w.start_frame + max(w.end_frame, w.start_frame + 1) - 1) / 2
        i = bisect.bisect_right(starts, middle) - 1
        out.append(spans[i][2] if i >= 0 and spans[i][0] <= middle < spans[i][1] else w.speaker)
    return out


def remember_speaker_corrections(
    regions,
    words: Sequence[Word],
    before: Sequence[str | None],
    after: Sequence[str | None],
    speakers: Sequence[dict],
    cache=None,
    encoder=None,
) -> dict:
    """Store what an approval changed about who speaks in the speaker profile of ``regions``' media.

    ``words`` are the job's words (timeline seconds, as the run labelled them), ``before`` their speakers as
    last approved (or as the engine gave them) and ``after`` as approved now; ``speakers`` the approved
    [{"id", "name"?}] list. Returns {"windows": corrected windows stored, "speakers": voices updated,
    "key": the profile's cache key or None when the media has no files to key it by}."""
    from ..speech.transcript_cache import TranscriptCache
    from ..timeline.render_audio import render_span

    cache = cache if cache is not None else TranscriptCache()
    key = sp.profile_key(regions)
    if key is None:
        return {"windows": 0, "speakers": 0, "key": None}
    previous = cache.get(key) or {}
    profile = {k: v for k, v in previous.items()}
    entries = {str(e.get("id")): dict(e) for e in previous.get("speakers", []) if isinstance(e, dict)}

    order = sorted(range(len(words)), key=lambda k: (words[k].start, words[k].end))
    ordered = [replace(words[k], speaker=None) for k in order]
    windows = sp.speech_windows(ordered) if ordered else []
    changed = []
    for i, win in enumerate(windows):
        old = [before[order[p]] for p in range(win.first, win.last + 1)]
        new = [after[order[p]] for p in range(win.first, win.last + 1)]
        if old != new and all(new):
            changed.append((i, old, new))

    if changed:
        encoder = encoder or sp.load_encoder("cpu")
        mels = []
        targets = [windows[i] for i, _, _ in changed]
        for first, last in sp._chunks(targets):  # nearby windows rendered together, CHUNK_SECONDS at most
            lo = max(0, int((targets[first].start - sp.WINDOW_PAD) * sp.SAMPLE_RATE))
            hi = max(lo, int(math.ceil((targets[last].end + sp.WINDOW_PAD) * sp.SAMPLE_RATE)))
            chunk = render_span(regions, lo, hi)
            for w in targets[first : last + 1]:
                mels.append(sp.mel_spectrogram(sp.window_audio(chunk, w, offset=lo)))
        emb = encoder.embed_mels(mels)
        # voices: duration-weighted sums of window embeddings, the changed windows moved between speakers
        sums = {}
        for sid, e in entries.items():
            try:
                voice = np.asarray(e["voice"], dtype=np.float64)
                seconds = float(e.get("seconds") or 0.0)
            except (KeyError, TypeError, ValueError):
                continue
            if voice.shape == (sp.EMBED_DIM,):
                sums[sid] = [voice * seconds, seconds]
        for (i, old, new), vector in zip(changed, emb):
            duration = max(windows[i].duration, 0.05)
            for ids, sign in ((old, -1.0), (new, 1.0)):
                for sid in dict.fromkeys(x for x in ids if x):
                    part = duration * ids.count(sid) / len(ids)
                    total = sums.setdefault(sid, [np.zeros(sp.EMBED_DIM), 0.0])
                    total[0] = total[0] + sign * part * vector
                    total[1] = max(0.0, total[1] + sign * part)
        for sid, (vector, seconds) in sums.items():
            entry = entries.setdefault(sid, {"id": sid})
            norm = float(np.linalg.norm(vector))
            if seconds < 0.05 or norm < 1e-6:  # every window of this voice was given to someone else
                entries.pop(sid, None)
                continue
            entry["voice"] = [round(float(x), 5) for x in vector / norm]
            entry["seconds"] = round(seconds, 2)
        # the corrected windows: new ones replace stored ones of the same audio
        stored_emb, stored_words = np.zeros((0, sp.EMBED_DIM), dtype=np.float32), []
        if previous.get("corrected"):
            try:
                stored_emb = sp.unpack_embeddings(previous["corrected"]["embeddings"])
                stored_words = [[str(x) for x in ids] for ids in previous["corrected"]["words"]]
                if len(stored_words) != len(stored_emb):
                    raise ValueError("corrected windows do not match their embeddings")
            except (KeyError, TypeError, ValueError):
                stored_emb, stored_words = np.zeros((0, sp.EMBED_DIM), dtype=np.float32), []
        if len(stored_emb):
            keep = (stored_emb @ emb.T).max(axis=1) < sp.SAME_AUDIO_SIMILARITY
            stored_emb = stored_emb[keep]
            stored_words = [w for w, k in zip(stored_words, keep) if k]
        all_emb = np.concatenate([stored_emb, emb.astype(np.float32)])[-MAX_CORRECTED_WINDOWS:]
        profile["corrected"] = {
            "embeddings": sp.pack_embeddings(all_emb),
            "words": (stored_words + [list(new) for _, _, new in changed])[-MAX_CORRECTED_WINDOWS:],
        }

    # names as approved (a name cleared in review is cleared here too); every listed speaker is reviewed
    for item in speakers:
        sid = str(item["id"])
        if sid not in entries:
            continue  # a speaker without any speech has no voice to remember
        entry = entries[sid]
        if item.get("name"):
            entry["name"] = item["name"]
        else:
            entry.pop("name", None)
        entry["reviewed"] = True
    profile["speakers"] = list(entries.values())
    cache.put(key, profile)
    return {"windows": len(changed), "speakers": len(entries), "key": key}
