"""The stages besides transcription that a bay may send to the facility cluster: translation and speakers.

Both go through the same front desk as transcription (``hub``): per-bay tokens, per-bay queues served round
robin, a bay sees only its own jobs, a replica lost mid-request costs one retry on another replica, and the
results land in the shared cache, keyed by what decides them:

* **translate**: one sentence's translation, keyed by its text + source and target language + number of
  candidates + the cluster's translation model for that direction (so a sentence translated for one bay is
  free for every other, whichever job or timeline it comes in);
* **speakers**: ``speech.speakers.diarize`` over a timeline's rendered mix, keyed by the mix's PCM hash + the
  timed words + the number of speakers asked for + the previous run's voices + the voice model.

This module checks what a bay sends (a bay is not trusted to send well-formed work) and names the cache keys;
the Ray side (``plugin/cluster/app.py``) runs the models.
"""

from __future__ import annotations

import json
import math
import re

from ..errors import InputError
from ..speech.transcript_cache import cache_key

TRANSCRIBE, TRANSLATE, SPEAKERS = "transcribe", "translate", "speakers"
KINDS = (TRANSCRIBE, TRANSLATE, SPEAKERS)
STAGES_VERSION = 1  # bump when what a stage returns for the same input changes
MAX_TEXTS = 4000  # sentences in one translation request
MAX_TEXT_CHARS = 2000  # characters in one sentence
MAX_HYPOTHESES = 8
MAX_WORDS = 500_000  # timed words in one speakers request (about 50 hours of speech)
MAX_PREVIOUS_BYTES = 256 * 1024  # a previous run's voices (256 floats per speaker)
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


def kind_of(body: dict) -> str:
    kind = body.get("kind") or TRANSCRIBE
    if kind not in KINDS:
        raise InputError(f"unknown job kind {kind!r}: use {', '.join(KINDS)}")
    return kind


def direction(source: str, target: str) -> str:
    return f"{source}-{target}"


# -- translation ---------------------------------------------------------------------------------------------
def translate_request(body: dict) -> dict:
    """The checked, normalised translation request: source, target, num_hypotheses, texts."""
    if not isinstance(body, dict):
        raise InputError("a translation request is a JSON object")
    source, target = str(body.get("source") or "").lower(), str(body.get("target") or "").lower()
    if not (LANGUAGE.match(source) and LANGUAGE.match(target)) or source == target:
        raise InputError(
            f"translation needs two different language codes (source {source!r}, target {target!r})"
        )
    n = body.get("num_hypotheses", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_HYPOTHESES:
        raise InputError(f"num_hypotheses must be a whole number from 1 to {MAX_HYPOTHESES}")
    texts = body.get("texts")
    if not isinstance(texts, list) or not 0 < len(texts) <= MAX_TEXTS:
        raise InputError(f"texts must be a list of 1 to {MAX_TEXTS} sentences")
    for text in texts:
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            raise InputError(f"each text must be a string of at most {MAX_TEXT_CHARS} characters")
    return {"source": source, "target": target, "num_hypotheses": n, "texts": list(texts)}


def translate_keys(model: dict, request: dict) -> list[str]:
    """One cache key per text of a checked request, under ``model`` (the direction's model on the
    cluster)."""
    return [
        cache_key(
            stage=TRANSLATE,
            version=STAGES_VERSION,
            model=model["model_id"],
            source=request["source"],
            target=request["target"],
            num_hypotheses=request["num_hypotheses"],
            text=text,
        )
        for text in request["texts"]
    ]


# -- speakers ------------------------------------------------------------------------------------------------
def speakers_request(body: dict) -> dict:
    """The checked speakers request: audio (PCM hash), words ([text, start, end] in seconds of that audio),
    speakers ("auto" or a number), previous (an earlier run's voices or None), seconds."""
    from ..speech.speakers import parse_speakers

    if not isinstance(body, dict):
        raise InputError("a speakers request is a JSON object")
    digest = body.get("audio")
    if not isinstance(digest, str) or not re.match(r"^[0-9a-f]{64}$", digest):
        raise InputError("audio must be the 64-hex-digit sha256 of the mix's 16-bit PCM")
    words = body.get("words")
    if not isinstance(words, list) or not 0 < len(words) <= MAX_WORDS:
        raise InputError(f"words must be a list of 1 to {MAX_WORDS} [text, start, end] entries")
    clean = []
    for entry in words:
        ok = isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
        ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in entry[1:])
        ok = ok and math.isfinite(entry[1]) and math.isfinite(entry[2]) and 0 <= entry[1] <= entry[2]
        if not ok or len(entry[0]) > 200:
            raise InputError("each word must be [text, start, end] with 0 <= start <= end, in seconds")
        clean.append([entry[0], float(entry[1]), float(entry[2])])
    speakers = parse_speakers(body.get("speakers", "auto"))
    if speakers is None:
        raise InputError('speakers must be "auto" or a number of speakers')
    previous = body.get("previous")
    if previous is not None:
        if not isinstance(previous, dict) or len(json.dumps(previous)) > MAX_PREVIOUS_BYTES:
            raise InputError("previous must be an earlier run's speaker profile (an object)")
    seconds = body.get("seconds") or 0.0
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise InputError("seconds must be a number")
    return {
        "audio": digest,
        "words": clean,
        "speakers": speakers,
        "previous": previous,
        "seconds": float(seconds),
    }


def speakers_key(model: dict, request: dict) -> str:
    return cache_key(
        stage=SPEAKERS,
        version=STAGES_VERSION,
        model=model["model_id"],
        audio=request["audio"],
        words=request["words"],
        speakers=request["speakers"],
        previous=request["previous"],
    )
