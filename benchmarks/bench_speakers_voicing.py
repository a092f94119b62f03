"""Voicing cue A/B (core/speech/speakers.py, issue #18): `--speakers auto` with and without ``VOICING_T``, the
test that keeps two clusters apart when their windows' voicing statistics (F0 spread, voiced fraction,
periodicity) clearly differ.

    python benchmarks/bench_speakers_voicing.py tune inf,4,6   # seeds 101-200, 400-429, one-voice recordings
    python benchmarks/bench_speakers_voicing.py measure inf,X  # the measured set, seeds 201-224
    python benchmarks/bench_speakers_voicing.py fresh inf,X    # never-used seeds 301-320

Seeds 400-429 are tuning conversations of the known hard class: three voices, two of them similar espeak-ng
male variants (m3, m7, m2, klatt). Per conversation: setting, speakers found, wrongly mixed cues, DER
(reference word times, as bench_speakers.py --set tune); then one summary line per setting. Embeddings are
computed once per conversation (the encoder's output does not depend on the setting).
Results: benchmarks/results/speakers-pitch.md/json. The cue did not help and is NOT in speakers.py: this
benchmark runs with the experiment applied, ``git apply benchmarks/results/speakers-pitch.patch`` (revert it
with ``git apply -R`` afterwards).
"""

import hashlib
import json
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import bench_speakers as b
from conversations import VOICES, make_conversation

from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.model import Word
from captionbridge.core.speech import speakers as sp
from captionbridge.core.timeline.timebase import Timebase

MALES = ["en-us+m3", "en-us+m7", "en-us+m2", "en-us+klatt"]
OTHERS = [v for v, _ in VOICES]


class CachedEncoder:
    def __init__(self, enc):
        self.enc, self.memo = enc, {}

    def embed_mels(self, mels):
        key = hashlib.sha1(b"".join(np.ascontiguousarray(m).tobytes() for m in mels)).hexdigest()
        if key not in self.memo:
            self.memo[key] = self.enc.embed_mels(mels)
        return self.memo[key]


def hard(seed):
    """Three voices, two similar male variants, by seed (tuning seeds 400-460 only)."""
    rng = np.random.default_rng(seed)
    a, c = rng.choice(len(MALES), size=2, replace=False)
    rest = [v for v in OTHERS if v not in (MALES[a], MALES[c])]
    return [MALES[int(a)], MALES[int(c)], rest[int(rng.integers(len(rest)))]]


def specs_of(which):
    if which == "tune":
        conv = list(b.TUNE_SET) + [(3, x, x % 3 == 0) for x in range(161, 181)]
        conv += [(4, x, False) for x in range(181, 201)]
        conv += [(3, x, hard(x)) for x in range(400, 430)]
        ones = [(v, s) for v, _ in VOICES for s in (5, 6, 7)]
        return conv, ones
    if which == "hard":  # the hard class alone, and the one-voice recordings (a quick tuning pass)
        return [(3, x, hard(x)) for x in range(400, 430)], [(v, s) for v, _ in VOICES for s in (5, 6, 7)]
    if which == "measure":
        return list(b.FULL_SET), []
    return (
        [(2, 300 + k, k % 3 == 0) for k in range(1, 9)]
        + [(3, 308 + k, k % 3 == 0) for k in range(1, 9)]
        + [(4, 316 + k, False) for k in range(1, 5)]
    ), []


def main():
    if not hasattr(sp, "VOICING_T"):
        sys.exit(
            "the voicing cue is not in core/speech/speakers.py (it was not adopted): apply the experiment "
            "first with git apply benchmarks/results/speakers-pitch.patch"
        )
    which = sys.argv[1]
    settings = [float(x) for x in sys.argv[2].split(",")]
    enc = sp.load_encoder("cpu")
    specs, ones = specs_of(which)
    zero = {"right": 0, "mixed": 0, "cues": 0, "der_num": 0.0, "der_den": 0.0, "one_split": 0}
    tot = {x: dict(zero) for x in settings}
    rows = []
    t0 = time.process_time()
    for n, seed, same in specs:
        if isinstance(same, list):
            conv = make_conversation(n, seed, voices=same, name=f"conv-hard-{seed}")
        else:
            conv = make_conversation(n, seed, same_gender=same)
        words = [Word.at(w.text, w.start, w.end, Timebase(25)) for w in conv.words]
        truth = {id(w): ref.speaker for w, ref in zip(words, conv.words)}
        row = [conv.name]
        cached = CachedEncoder(enc)
        for x in settings:
            sp.VOICING_T = x
            res = sp.diarize(conv.samples, words, "auto", encoder=cached)
            cues = compose_cues(res.words, Timebase(25), "netflix-en", "en")
            mixed = b.mixed_in(cues, res.words, words, truth)
            d = b.der(conv.turns(), b.turns_of(res.words, lambda w: w.speaker))
            t = tot[x]
            t["right"] += len(res.speakers) == n
            t["mixed"] += mixed
            t["cues"] += len(cues)
            t["der_num"] += d * conv.duration
            t["der_den"] += conv.duration
            row += [x, len(res.speakers), mixed, round(d, 4)]
        rows.append({"n": n, "voices": conv.voices, "row": row})
        print(n, conv.voices, row, flush=True)
    for v, s in ones:
        conv = make_conversation(1, s, voices=[v])
        words = [Word(w.text, w.start, w.end) for w in conv.words]
        cached = CachedEncoder(enc)
        for x in settings:
            sp.VOICING_T = x
            if len(sp.diarize(conv.samples, words, "auto", encoder=cached).speakers) != 1:
                tot[x]["one_split"] += 1
                print("one-voice split", v, s, x, flush=True)
    summary = [
        {
            "VOICING_T": x,
            "conversations": len(specs),
            "right": t["right"],
            "mixed": t["mixed"],
            "cues": t["cues"],
            "der": round(t["der_num"] / max(t["der_den"], 1e-9), 4),
            "one_voice_splits": t["one_split"],
            "one_voice": len(ones),
        }
        for x, t in tot.items()
    ]
    for s in summary:
        print(json.dumps(s))
    print("cpu_s", round(time.process_time() - t0, 1))
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            json.dump({"set": which, "summary": summary, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
