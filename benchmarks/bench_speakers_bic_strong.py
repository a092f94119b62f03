"""BIC_STRONG A/B (core/speech/speakers.py, issue #18): `--speakers auto` with and without the safeguard that
keeps a small cluster apart from a similar voice when BIC's evidence for two voices is strong.

    python benchmarks/bench_speakers_bic_strong.py tune inf,2.08     # seeds 101-200 + 21 one-voice recordings
    python benchmarks/bench_speakers_bic_strong.py measure inf,2.08  # the measured set, seeds 201-224
    python benchmarks/bench_speakers_bic_strong.py fresh inf,2.08    # never-used seeds 301-320

Per conversation: setting, speakers found, wrongly mixed cues, DER (reference word times, as bench_speakers.py
--set tune); then one summary line per setting. Results: benchmarks/results/speakers-bic-strong.md/json.
"""

import json
import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import bench_speakers as b
from conversations import make_conversation

from captionbridge.core.captions.compose import compose_cues
from captionbridge.core.model import Word
from captionbridge.core.speech import speakers as sp
from captionbridge.core.timeline.timebase import Timebase

enc = sp.load_encoder("cpu")
which = sys.argv[1]
settings = [float(x) for x in sys.argv[2].split(",")]
if which == "tune":
    specs = (
        list(b.TUNE_SET)
        + [(3, x, x % 3 == 0) for x in range(161, 181)]
        + [(4, x, False) for x in range(181, 201)]
    )
    ones = [(v, s) for v, _ in __import__("conversations").VOICES for s in (5, 6, 7)]
elif which == "measure":
    specs = list(b.FULL_SET)
    ones = []
else:  # fresh
    specs = (
        [(2, 300 + k, k % 3 == 0) for k in range(1, 9)]
        + [(3, 308 + k, k % 3 == 0) for k in range(1, 9)]
        + [(4, 316 + k, False) for k in range(1, 5)]
    )
    ones = []
tot = {
    x: {"right": 0, "mixed": 0, "cues": 0, "der_num": 0.0, "der_den": 0.0, "one_split": 0} for x in settings
}
for n, seed, same in specs:
    conv = make_conversation(n, seed, same_gender=same)
    words = [Word.at(w.text, w.start, w.end, Timebase(25)) for w in conv.words]
    truth = {id(w): ref.speaker for w, ref in zip(words, conv.words)}
    row = [conv.name]
    for x in settings:
        sp.BIC_STRONG = x
        res = sp.diarize(conv.samples, words, "auto", encoder=enc)
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
    print(n, row, flush=True)
for v, s in ones:
    conv = make_conversation(1, s, voices=[v])
    words = [Word(w.text, w.start, w.end) for w in conv.words]
    for x in settings:
        sp.BIC_STRONG = x
        if len(sp.diarize(conv.samples, words, "auto", encoder=enc).speakers) != 1:
            tot[x]["one_split"] += 1
            print("one-voice split", v, s, x, flush=True)
for x, t in tot.items():
    print(
        json.dumps(
            {
                "BIC_STRONG": x,
                "conversations": len(specs),
                "right": t["right"],
                "mixed": t["mixed"],
                "cues": t["cues"],
                "der": round(t["der_num"] / max(t["der_den"], 1e-9), 4),
                "one_voice_splits": t["one_split"],
                "one_voice": len(ones),
            }
        )
    )
